//! Experiment: does the network read garments on surfaces better once it has seen what the
//! surface path makes of them? Photographs *training* items on surfaces (pictures numbered
//! from 2,000,000, apart from the suite's and the development set's), preprocesses them as
//! the page does, fine-tunes the shipped CNN on them mixed with plain training images (the
//! same `FineTuner` the page runs), and compares before and after on the development surface
//! pictures (test items from 5,000, pictures from 1,000,000), on photo-style pictures of the
//! same items and on the Fashion-MNIST test set.
//!
//!     cargo run --release -p trainer --example surface_tune -- [photos] [steps] [user per batch of 64]

use burn::prelude::*;
use fashion_model::{
    DecodeLimits, IMAGE_PIXELS, LabelledImages, NUM_CLASSES, WeightsFile,
    finetune::{FineTuneConfig, FineTuner, TrainableLayers},
    network::{Network, argmax, images_tensor},
    preprocess_bytes,
};
use rayon::prelude::*;

const TRAIN_OFFSET: usize = 2_000_000;
const DEV_OFFSET: usize = 1_000_000;

/// Preprocessed pictures: inputs, labels, found on a surface.
fn preprocess(files: Vec<(Vec<u8>, u8)>) -> (LabelledImages, Vec<bool>) {
    let inputs: Vec<_> = files.par_iter().map(|(bytes, label)| (preprocess_bytes(bytes, DecodeLimits::default()).ok(), *label)).collect();
    let (mut set, mut surface) = (LabelledImages::default(), Vec::new());
    for (input, label) in inputs {
        if let Some(input) = input {
            set.push(&input.to_u8(), label);
            surface.push(input.on_surface);
        }
    }
    (set, surface)
}

/// Accuracy over `total` pictures (refused ones count wrong) and the share answered wrong and sure.
fn score(file: &WeightsFile, network: &Network, set: &LabelledImages, surface: &[bool], total: usize, device: &Device) -> (f64, f64) {
    let (rule, t) = (file.summary.unsure_rule(), file.temperature());
    let network = network.for_inference();
    let (mut right, mut sure_wrong) = (0, 0);
    for (start, chunk) in set.pixels.chunks(500 * IMAGE_PIXELS).enumerate() {
        let pixels: Vec<f32> = chunk.iter().map(|&p| p as f32 / 255.0).collect();
        let logits = network.forward(images_tensor(pixels, device)).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for (k, row) in logits.chunks_exact(NUM_CLASSES).enumerate() {
            let i = start * 500 + k;
            if argmax(row) == set.labels[i] as usize {
                right += 1;
            } else if rule.judge_input(row, t, surface.get(i).copied().unwrap_or(false)).is_sure() {
                sure_wrong += 1;
            }
        }
    }
    (right as f64 / total as f64, sure_wrong as f64 / total as f64)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let photos = args.first().copied().unwrap_or(4000);
    let steps = args.get(1).copied().unwrap_or(600);
    let user_per_batch = args.get(2).copied().unwrap_or(16);
    let device = Device::flex();
    let data = trainer::data::load(None)?;
    let file = WeightsFile::decode(&std::fs::read(trainer::predict::shipped_weights())?, &device)?;
    let started = std::time::Instant::now();

    let dev_n = 600;
    let dev_files: Vec<_> = (0..dev_n)
        .into_par_iter()
        .map(|k| (testkit::surface_photo(Some(data.test.image(5000 + k)), DEV_OFFSET + k).0, data.test.labels[5000 + k]))
        .collect();
    let (dev, dev_surface) = preprocess(dev_files);
    let photo_files: Vec<_> =
        (0..dev_n).map(|k| (testkit::varied_photo(data.test.image(5000 + k), 5000 + k).0, data.test.labels[5000 + k])).collect();
    let (photo, photo_surface) = preprocess(photo_files);
    let test = data.test.clone();

    // Training items from the end of the training file (the validation split is drawn from all of it).
    let train_files: Vec<_> = (0..photos)
        .into_par_iter()
        .map(|k| {
            let i = data.train.len() - 1 - k;
            (testkit::surface_photo(Some(data.train.image(i)), TRAIN_OFFSET + k).0, data.train.labels[i])
        })
        .collect();
    let (user, _) = preprocess(train_files);
    let mut replay = LabelledImages::default();
    for i in 0..20_000 {
        replay.push(data.train.image(i), data.train.labels[i]);
    }
    eprintln!("{} surface inputs made in {:.0} s", user.len(), started.elapsed().as_secs_f64());

    let report = |name: &str, network: &Network| {
        let (s, sw) = score(&file, network, &dev, &dev_surface, dev_n, &device);
        let (p, _) = score(&file, network, &photo, &photo_surface, dev_n, &device);
        let (f, _) = score(&file, network, &test, &[], test.len(), &device);
        println!(
            "{name:<40} surfaces {:.1}% (wrong and sure {:.1}%) | photo-style {:.1}% | Fashion-MNIST test {:.2}%",
            100.0 * s,
            100.0 * sw,
            100.0 * p,
            100.0 * f
        );
    };
    report("shipped", &file.network);
    for (name, layers, lr) in [("all layers, lr 3e-4", TrainableLayers::All, 3e-4), ("head only, lr 1e-3", TrainableLayers::Head, 1e-3)] {
        let config = FineTuneConfig { steps, batch_size: 64, user_per_batch, learning_rate: lr, layers, ..FineTuneConfig::default() };
        let mut tuner = FineTuner::new(&file.network, &device, config, user.clone(), replay.clone());
        for _ in 0..steps {
            tuner.step();
        }
        report(&format!("{name}, {steps} steps, {user_per_batch}/64 surface"), &tuner.network());
    }
    eprintln!("{:.0} s in all", started.elapsed().as_secs_f64());
    Ok(())
}
