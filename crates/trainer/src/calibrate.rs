//! `trainer calibrate`: refits a weights file's calibration on the validation split (the
//! 6,000 images the seed-42 split holds out, as in training) and rewrites it: the softmax
//! temperature, and the "not sure" rule's garment-score threshold. For files written before
//! the rule existed, and after fine-tuning elsewhere.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use fashion_model::{Precision, WeightsFile, calibration, verdict::UnsureRule};

use crate::{CommonArgs, backend, data, fsutil::write_atomic, metrics};

#[derive(clap::Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Weights file to calibrate; rewritten in place (atomically) unless --out is given.
    #[arg(long)]
    weights: PathBuf,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the train/validation split (the training run's).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Store the parameters in f32 instead of the shipped f16.
    #[arg(long)]
    full_precision: bool,
}

pub fn run(args: CalibrateArgs) -> Result<ExitCode> {
    let device = backend::select(args.common.backend)?.device;
    let data = data::load(args.common.data_dir.as_deref())?;
    let (_, val) = data::train_val_split(&data.train, args.seed);
    let bytes = std::fs::read(&args.weights).with_context(|| format!("reading {}", args.weights.display()))?;
    let file = WeightsFile::decode(&bytes, &device).with_context(|| format!("{} is not a usable weights file", args.weights.display()))?;
    let logits = metrics::logits(&file.network, &val, &device, 500)?;
    let temperature = calibration::fit_temperature(&logits, &val.labels);
    let unsure = UnsureRule::fit(&logits, file.classes.len(), temperature);
    let mut summary = file.summary.clone();
    eprintln!(
        "temperature {:.3} → {temperature:.3}; not sure below {:.0}% confidence or a garment score of {:.2}",
        summary.softmax_temperature(),
        100.0 * unsure.min_confidence,
        unsure.min_garment_score.unwrap_or(f32::NAN)
    );
    summary.temperature = Some(temperature);
    summary.unsure = Some(unsure);
    let precision = if args.full_precision { Precision::F32 } else { Precision::F16 };
    let out = WeightsFile::encode_with_classes(&file.architecture, &file.classes, &summary, file.network, precision)?;
    let path = args.out.unwrap_or(args.weights);
    write_atomic(&path, &out)?;
    eprintln!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
