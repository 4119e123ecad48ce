//! A class of the user's own, taught as the page teaches it (`fashion_model::head` imprints its
//! row, `FineTuner` trains the head with replayed Fashion-MNIST images): 12 photos of a shape
//! Fashion-MNIST lacks (hats, drawn by `testkit`), 8 more held out. The fine-tuned model must
//! get most held-out hats right and keep the ten classes within 1.5 points on the page's
//! held-out slice.

use burn::prelude::*;
use fashion_model::{
    LabelledImages, Network, Precision, WeightsFile,
    classes::fashion_names,
    finetune::{FineTuneConfig, FineTuner},
    network::{argmax, images_tensor},
};

fn answers(network: &Network, set: &LabelledImages) -> Vec<usize> {
    let logits = network.forward(images_tensor(set.to_f32(), &Device::flex())).into_data().try_to_vec::<f32>().unwrap();
    logits.chunks_exact(network.classes()).map(argmax).collect()
}

fn accuracy(network: &Network, set: &LabelledImages) -> f64 {
    let right = answers(network, set).iter().zip(&set.labels).filter(|(a, l)| **a == **l as usize).count();
    right as f64 / set.len() as f64
}

fn hats(range: std::ops::Range<usize>) -> LabelledImages {
    let mut set = LabelledImages::default();
    range.for_each(|i| set.push(&testkit::new_class::hat(i), 10));
    set
}

#[test]
fn a_new_class_is_learnt_from_twelve_photos_without_forgetting_the_ten() {
    let device = Device::flex();
    let web = trainer::predict::shipped_weights().parent().unwrap().to_path_buf();
    let file = WeightsFile::decode(&std::fs::read(web.join("cnn.fmw")).unwrap(), &device).unwrap();
    let read_set = |name: &str| LabelledImages::decode(&std::fs::read(web.join(name)).unwrap()).unwrap();
    let (replay, heldout) = (read_set(trainer::finetune_sets::REPLAY_FILE), read_set(trainer::finetune_sets::HELDOUT_FILE));
    let (taught, held_out_hats) = (hats(0..12), hats(12..20));
    let mut names = fashion_names();
    names.push("Hat".into());

    let before = accuracy(&file.network, &heldout);
    let start = file.network.clone().with_new_classes(names.len(), &taught, &replay, &names).unwrap();
    let imprinted = accuracy(&start, &held_out_hats);
    let mut tuner = FineTuner::new(&start, &device, FineTuneConfig::default(), taught, replay);
    for _ in 0..tuner.config().steps {
        tuner.step();
    }
    let tuned = tuner.network();
    let (hats_right, after) = (accuracy(&tuned, &held_out_hats), accuracy(&tuned, &heldout));
    eprintln!(
        "held-out hats right: {:.0}% after imprinting, {:.0}% after fine-tuning; Fashion-MNIST held-out slice ({} images): {:.1}% -> {:.1}%",
        100.0 * imprinted,
        100.0 * hats_right,
        heldout.len(),
        100.0 * before,
        100.0 * after
    );
    assert!(hats_right >= 5.0 / 8.0, "only {:.0}% of the held-out hats are recognised", 100.0 * hats_right);
    assert!(before - after <= 0.015, "the ten classes lost {:.1} points", 100.0 * (before - after));

    // The class's name travels in the weights file: `trainer predict` names it, on photos of the
    // held-out hats as a user would upload them.
    let dir = std::env::temp_dir().join(format!("own-class-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("hats.fmw");
    let bytes = WeightsFile::encode_with_classes(&file.architecture, &names, &file.summary, tuned, Precision::F32).unwrap();
    std::fs::write(&weights, bytes).unwrap();
    let photos: Vec<_> = (12..20)
        .map(|i| {
            let (bytes, ext) = testkit::new_class::hat_photo(i);
            let path = dir.join(format!("hat-{i}.{ext}"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["predict", "--json", "--weights"])
        .arg(&weights)
        .args(&photos)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 8);
    assert!(lines.iter().all(|l| l["probs"].as_array().unwrap().len() == 11));
    let named = lines.iter().filter(|l| l["class"] == "Hat").count();
    eprintln!("trainer predict names {named} of 8 held-out hat photos “Hat”");
    assert!(named >= 5, "trainer predict named only {named} of 8 hat photos “Hat”: {lines:?}");
    std::fs::remove_dir_all(&dir).ok();
}
