//! How the page's fine-tuning defaults were chosen: photos of test items (past the held-out
//! slice) that the shipped CNN gets wrong are learnt with several settings, natively on the
//! CPU with the same `FineTuner` the page runs; for each, accuracy on those photos and on the
//! held-out slice after training.
//!
//!     cargo run --release -p trainer --example finetune_sweep

use burn::prelude::*;
use fashion_model::{
    DecodeLimits, LabelledImages, WeightsFile,
    finetune::{FineTuneConfig, FineTuner, TrainableLayers},
    network::{Network, argmax, images_tensor},
    preprocess_bytes,
};

fn accuracy(network: &Network, set: &LabelledImages, device: &Device) -> f64 {
    let logits = network.forward(images_tensor(set.to_f32(), device)).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let correct = logits.chunks_exact(10).zip(&set.labels).filter(|(row, l)| argmax(row) == **l as usize).count();
    correct as f64 / set.len() as f64
}

fn main() -> anyhow::Result<()> {
    let device = Device::flex();
    let model = WeightsFile::decode(&std::fs::read("web/cnn.fmw")?, &device)?;
    let replay = LabelledImages::decode(&std::fs::read("web/replay.fms")?)?;
    let heldout = LabelledImages::decode(&std::fs::read("web/heldout.fms")?)?;
    let data = trainer::data::load(None)?;

    // Groups of 4 wrongly classified photos, as a user would label them.
    let mut wrong = LabelledImages::default();
    for i in 1000..3000 {
        let (bytes, _) = testkit::varied_photo(data.test.image(i), i);
        let input = preprocess_bytes(&bytes, DecodeLimits::default())?;
        let set = {
            let mut s = LabelledImages::default();
            s.push(&input.to_u8(), data.test.labels[i]);
            s
        };
        if accuracy(&model.network, &set, &device) == 0.0 {
            wrong.push(&input.to_u8(), data.test.labels[i]);
        }
        if wrong.len() == 12 {
            break;
        }
    }
    let groups: Vec<LabelledImages> = (0..3)
        .map(|g| {
            let mut s = LabelledImages::default();
            for i in g * 4..g * 4 + 4 {
                s.push(wrong.image(i), wrong.labels[i]);
            }
            s
        })
        .collect();
    let base = accuracy(&model.network, &heldout, &device);
    println!("held-out before: {:.2}%", 100.0 * base);

    let d = FineTuneConfig::default();
    let configs = [
        ("default", d.clone()),
        ("lr 1e-4", FineTuneConfig { learning_rate: 1e-4, ..d.clone() }),
        ("lr 1e-3", FineTuneConfig { learning_rate: 1e-3, ..d.clone() }),
        ("40 steps", FineTuneConfig { steps: 40, ..d.clone() }),
        ("200 steps", FineTuneConfig { steps: 200, ..d.clone() }),
        ("2 user/batch", FineTuneConfig { user_per_batch: 2, ..d.clone() }),
        ("8 user/batch", FineTuneConfig { user_per_batch: 8, ..d.clone() }),
        ("16 user/batch", FineTuneConfig { user_per_batch: 16, ..d.clone() }),
        ("batch 64", FineTuneConfig { batch_size: 64, ..d.clone() }),
        ("all layers", FineTuneConfig { layers: TrainableLayers::All, ..d.clone() }),
    ];
    let only: Option<String> = std::env::args().nth(1);
    println!("{:<14} {:>28} {:>34}", "setting", "user photos (3 groups × 2 seeds)", "held-out change, points");
    for (name, config) in configs {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mut users = Vec::new();
        let mut drops = Vec::new();
        for seed in [42, 7] {
            for group in &groups {
                let config = FineTuneConfig { seed, ..config.clone() };
                let mut tuner = FineTuner::new(&model.network, &device, config.clone(), group.clone(), replay.clone());
                for _ in 0..config.steps {
                    tuner.step();
                }
                let tuned = tuner.network();
                users.push(format!("{:.0}", 100.0 * accuracy(&tuned, group, &device)));
                drops.push(format!("{:+.1}", 100.0 * (accuracy(&tuned, &heldout, &device) - base)));
            }
        }
        println!("{name:<14} {:>28} {:>34}", users.join(" "), drops.join(" "));
    }
    Ok(())
}
