//! `trainer samples`: the small image sets the page ships beside the weights (format in
//! `fashion_model::labelled`). Written by every training run, and on their own by this
//! subcommand, so existing weights need no retraining.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::Args;
use fashion_model::{LabelledImages, NUM_CLASSES};

use crate::fsutil::write_atomic;

/// Replayed training images per class: enough variety to keep every class in mind during
/// a few hundred fine-tuning steps, small enough to ship (784 KB for 100 per class).
pub const REPLAY_PER_CLASS: usize = 100;
/// The held-out slice: the first this many test images (`trainer evaluate --limit 500`).
pub const HELDOUT: usize = 500;
pub const REPLAY_FILE: &str = "replay.fms";
pub const HELDOUT_FILE: &str = "heldout.fms";

#[derive(Args)]
pub struct SamplesArgs {
    #[command(flatten)]
    common: crate::CommonArgs,
    /// Folder to write replay.fms and heldout.fms into (the page's folder).
    #[arg(long, default_value = "web")]
    out: PathBuf,
    /// Seed of the train/validation split; replay images come from the training part.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// The first `per_class` images of each class in `train` (already shuffled by the split).
pub fn replay_set(train: &LabelledImages, per_class: usize) -> LabelledImages {
    let mut taken = [0usize; NUM_CLASSES];
    let mut set = LabelledImages::default();
    for i in 0..train.len() {
        let label = train.labels[i];
        if taken[label as usize] < per_class {
            taken[label as usize] += 1;
            set.push(train.image(i), label);
        }
    }
    set
}

pub fn heldout(test: &LabelledImages, n: usize) -> LabelledImages {
    test.select(&(0..n.min(test.len())).collect::<Vec<_>>())
}

/// Writes both sets into `out`.
pub fn write(out: &std::path::Path, train: &LabelledImages, test: &LabelledImages) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(REPLAY_FILE), &replay_set(train, REPLAY_PER_CLASS).encode())?;
    write_atomic(&out.join(HELDOUT_FILE), &heldout(test, HELDOUT).encode())?;
    Ok(())
}

pub fn run(args: SamplesArgs) -> Result<ExitCode> {
    let data = crate::data::load(args.common.data_dir.as_deref())?;
    let (train, _) = crate::data::train_val_split(&data.train, args.seed);
    write(&args.out, &train, &data.test)?;
    println!(
        "wrote {} ({} per class) and {} (first {HELDOUT} test images)",
        args.out.join(REPLAY_FILE).display(),
        REPLAY_PER_CLASS,
        args.out.join(HELDOUT_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fashion_model::IMAGE_PIXELS;

    #[test]
    fn replay_takes_the_same_number_of_each_class() {
        let mut split = LabelledImages::default();
        for i in 0..300u32 {
            split.labels.push((i % 10) as u8);
            split.pixels.extend(std::iter::repeat_n(i as u8, IMAGE_PIXELS));
        }
        let set = replay_set(&split, 7);
        assert_eq!(set.len(), 70);
        for class in 0..10u8 {
            assert_eq!(set.labels.iter().filter(|&&l| l == class).count(), 7);
        }
        assert_eq!(heldout(&split, 20).labels, split.labels[..20]);
    }
}
