//! The study: split, train the baseline and the CNN, evaluate both on the test set, write
//! the page's weights and the report.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use clap::Args;
use fashion_model::{Architecture, CnnConfig, TrainingSummary, WeightsFile};

use crate::{
    CommonArgs,
    augment::Augment,
    backend, data,
    fsutil::write_atomic,
    progress::Progress,
    report::{self, ModelReport, RunReport},
    samples,
    training::{self, Checkpoints, PhaseResult, TrainConfig},
};

#[derive(Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output folder: `cnn.fmw`, `lr.fmw`, `report/` and, while running, `checkpoint/`.
    #[arg(long, default_value = "web")]
    pub out: PathBuf,
    /// Most epochs per model (early stopping usually ends sooner).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Train on the first N training images only (quick runs, tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the train/validation split, shuffling, augmentation and initialisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Early-stopping patience, in epochs without a lower validation loss.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Halve the CNN's learning rate after this many epochs without improvement (0: never).
    #[arg(long, default_value_t = 0)]
    pub lr_halve_after: usize,
    /// Keep the CNN's learning rate constant instead of the cosine decay to lr/20.
    #[arg(long)]
    pub constant_lr: bool,
    /// Share of training images the CNN sees warped (rotation ±8°, zoom ±8%, shift ±8%); 0 turns augmentation off.
    #[arg(long, default_value_t = 0.5)]
    pub augment: f32,
    /// Train the report's CNN exactly (no batch norm) instead of the shipped variant.
    #[arg(long)]
    pub report_cnn: bool,
    /// Continue the interrupted run whose checkpoint is in OUT/checkpoint.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Discard an interrupted run's checkpoint and start over.
    #[arg(long)]
    pub fresh: bool,
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let progress = Progress::new();
    if args.batch_size == 0 || args.epochs == 0 {
        bail!("--batch-size and --epochs must be at least 1");
    }
    let checkpoint_dir = args.out.join("checkpoint");
    let phases = [Checkpoints::new(&checkpoint_dir, "lr"), Checkpoints::new(&checkpoint_dir, "cnn")];
    if !args.resume && phases.iter().any(|p| p.exists()) {
        if args.fresh {
            std::fs::remove_dir_all(&checkpoint_dir).with_context(|| format!("removing {}", checkpoint_dir.display()))?;
        } else {
            let what: Vec<String> = phases.iter().filter_map(|p| p.describe()).collect();
            bail!(
                "an interrupted run is saved in {} ({}); pass --resume to continue it or --fresh to discard it",
                checkpoint_dir.display(),
                what.join(", ")
            );
        }
    }
    if args.resume && !phases.iter().any(|p| p.exists()) {
        progress.note(&format!("no checkpoint in {}; starting a new run", checkpoint_dir.display()));
    }
    // Fail on an unwritable output folder now, not after an hour of training.
    std::fs::create_dir_all(&checkpoint_dir).with_context(|| format!("cannot create the output folder {}", checkpoint_dir.display()))?;
    write_atomic(&checkpoint_dir.join(".write-test"), b"ok")
        .with_context(|| format!("the output folder {} is not writable", args.out.display()))?;
    let _ = std::fs::remove_file(checkpoint_dir.join(".write-test"));

    let selected = backend::select(args.common.backend)?;
    progress.note(&format!("backend: {}", selected.description));
    let device = &selected.device;

    let data = data::load(args.common.data_dir.as_deref())?;
    let full_train = match args.limit {
        Some(n) => data.train.clone().truncate(n),
        None => data.train.clone(),
    };
    if full_train.len() < 20 {
        bail!("--limit {} leaves too few images to split into train and validation (need 20)", full_train.len());
    }
    let (train, val) = data::train_val_split(&full_train, args.seed);
    progress.note(&format!(
        "data: {} — {} train / {} validation / {} test",
        data.source.display(),
        train.len(),
        val.len(),
        data.test.len()
    ));

    let base = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        patience: args.patience,
        lr_halve_after: 0,
        cosine: false,
        seed: args.seed,
        augment: None,
    };
    let lr_arch = Architecture::Logistic;
    let lr = training::train_phase(&lr_arch, &train, &val, &base, device, &phases[0], args.resume, &progress)?;

    let augment = (args.augment > 0.0).then(|| Augment { probability: args.augment.min(1.0), ..Augment::report() });
    let cnn_config = TrainConfig { lr_halve_after: args.lr_halve_after, cosine: !args.constant_lr, augment, ..base };
    let cnn_arch = Architecture::Cnn(if args.report_cnn { CnnConfig::report() } else { CnnConfig::shipped() });
    let cnn = training::train_phase(&cnn_arch, &train, &val, &cnn_config, device, &phases[1], args.resume, &progress)?;

    let lr_report = finish("lr.fmw", &lr_arch, lr, &args, &data, &selected.description, train.len(), device, &progress)?;
    let cnn_report = finish("cnn.fmw", &cnn_arch, cnn, &args, &data, &selected.description, train.len(), device, &progress)?;
    let run = RunReport {
        backend: selected.description.clone(),
        cores: backend::cores(),
        data_source: data.source.display().to_string(),
        train_images: train.len(),
        val_images: val.len(),
        test_images: data.test.len(),
        seed: args.seed,
        augment,
        cnn_gain_points: 100.0 * (cnn_report.test.accuracy - lr_report.test.accuracy),
        logistic: lr_report,
        cnn: cnn_report,
    };
    report::write(&args.out.join("report"), &run)?;
    // What the page needs to fine-tune these weights: replay images and a held-out slice.
    samples::write(&args.out, &train, &data.test)?;
    progress.note(&format!(
        "test accuracy: logistic regression {:.2}%, CNN {:.2}% ({:+.2} points); report in {}",
        100.0 * run.logistic.test.accuracy,
        100.0 * run.cnn.test.accuracy,
        run.cnn_gain_points,
        args.out.join("report").display()
    ));
    // The run is complete and its outputs are written: the checkpoint has served its purpose.
    std::fs::remove_dir_all(&checkpoint_dir).ok();
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    file: &str,
    arch: &Architecture,
    phase: PhaseResult,
    args: &TrainArgs,
    data: &data::Dataset,
    backend: &str,
    train_images: usize,
    device: &burn::prelude::Device,
    progress: &Progress,
) -> Result<ModelReport> {
    let test = training::evaluate(&phase.network, &data.test, device, 500)?;
    let best = &phase.history[phase.best_epoch.max(1) - 1];
    let summary = TrainingSummary {
        test_accuracy: Some(test.accuracy),
        val_accuracy: Some(best.val_accuracy),
        val_loss: Some(best.val_loss),
        best_epoch: Some(phase.best_epoch),
        epochs_run: Some(phase.history.len()),
        train_images: Some(train_images),
        train_seconds: Some(phase.train_seconds),
        backend: Some(backend.to_string()),
        fine_tuned: Some(false),
        note: None,
    };
    let parameters = phase.network.num_params();
    let bytes = WeightsFile::encode(arch, &summary, phase.network)?;
    let path = args.out.join(file);
    write_atomic(&path, &bytes)?;
    progress.note(&format!("wrote {} ({} test accuracy {:.2}%)", path.display(), arch.name(), 100.0 * test.accuracy));
    Ok(ModelReport {
        name: match arch {
            Architecture::Logistic => "Logistic regression".into(),
            Architecture::Cnn(_) => arch.name().to_string(),
        },
        architecture: arch.clone(),
        parameters,
        best_epoch: phase.best_epoch,
        epochs_run: phase.history.len(),
        train_seconds: phase.train_seconds,
        history: phase.history,
        test,
    })
}
