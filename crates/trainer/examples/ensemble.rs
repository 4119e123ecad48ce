//! How far averaging networks would go: validation and test accuracy of each weights file and
//! of the mean of their softmax outputs (temperature 1). An ensemble is over the page's compute
//! budget; its accuracy bounds what distilling it into one network of the budget could give.
//!
//!     cargo run --release -p trainer --example ensemble -- web/cnn.fmw OTHER.fmw…

use burn::prelude::*;
use fashion_model::{
    LabelledImages, NUM_CLASSES, WeightsFile,
    network::{argmax, softmax_rows},
};

fn accuracy(probabilities: &[[f32; NUM_CLASSES]], set: &LabelledImages) -> f64 {
    let right = probabilities.iter().zip(&set.labels).filter(|(row, label)| argmax(&row[..]) == **label as usize).count();
    100.0 * right as f64 / set.len() as f64
}

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(files.len() >= 2, "give two weights files or more");
    let device = Device::flex();
    let data = trainer::data::load(None)?;
    let (_, val) = trainer::data::train_val_split(&data.train, 42);
    for (name, set) in [("validation", &val), ("test", &data.test)] {
        let mut sum = vec![[0f32; NUM_CLASSES]; set.len()];
        for file in &files {
            let model = WeightsFile::decode(&std::fs::read(file)?, &device)?;
            let probabilities = softmax_rows(&trainer::metrics::logits(&model.network, set, &device, 256)?);
            println!("{name}, {file}: {:.2}%", accuracy(&probabilities, set));
            for (s, p) in sum.iter_mut().zip(&probabilities) {
                s.iter_mut().zip(p).for_each(|(s, p)| *s += p);
            }
        }
        println!("{name}, mean of the {} networks: {:.2}%", files.len(), accuracy(&sum, set));
    }
    Ok(())
}
