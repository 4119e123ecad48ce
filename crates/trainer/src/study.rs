//! The study: split, train the baseline and the CNN, evaluate both on the test set, write
//! the page's weights and the report.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use clap::Args;
use fashion_model::{
    Architecture, CnnConfig, CompactConfig, LabelledImages, Precision, TrainingSummary, WeightsFile, augment::AugmentPart, calibration,
    verdict::UnsureRule,
};

use crate::{
    CommonArgs,
    augment::Augment,
    backend, data, finetune_sets,
    fsutil::write_atomic,
    metrics::{self, Evaluation},
    photographed::Photographed,
    progress::Progress,
    report::{self, ModelReport, RunReport},
    training::{Checkpoints, Phase, PhaseResult, Schedule, StepCode, TrainConfig},
};

#[derive(Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output folder: `cnn.fmw`, `baseline.fmw`, `report/` and, while running, `checkpoint/`.
    #[arg(long, default_value = "web")]
    pub out: PathBuf,
    /// Most epochs per model [default: 20 with --report-cnn (early stopping usually ends
    /// sooner), else the shipped recipe's 44]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train on the first N training images only (quick runs, tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the train/validation split, shuffling, augmentation and initialisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Mini-batch size (128 trained fastest on 2 cores: README "Benchmarks")
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (Adam / AdamW) [default: 1e-3 with --report-cnn, else 2e-3]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Early-stopping patience, in epochs without a lower validation loss; 0 runs every epoch
    /// [default: 5 with --report-cnn (the report's protocol), else 0: a cosine schedule is
    /// meant to run to its end]. The best epoch is restored either way, chosen among the
    /// epochs of the final augmentation (the calm finish's, when there is one).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Halve the CNN's learning rate after this many epochs without improvement (0: never).
    #[arg(long, default_value_t = 0)]
    pub lr_halve_after: usize,
    /// Keep the CNN's learning rate constant instead of warm-up and cosine decay.
    #[arg(long)]
    pub constant_lr: bool,
    /// Share of training images the CNN sees geometrically warped; 0 turns warping off
    /// [default: 1 with --report-cnn, else 0.5]
    #[arg(long)]
    pub augment: Option<f32>,
    /// Parts of the pose-robust augmentation, comma-separated: flip, geometry, photometric,
    /// drawing, erase; `all` (those five) or `none`; and `surface`, the look of a garment
    /// found on a floor, not in the shipped recipe [default: all; none with --report-cnn]
    #[arg(long, value_delimiter = ',')]
    pub aug_parts: Option<Vec<String>>,
    /// Share of images given random erasing (a rectangle of 2–20% of the image, set to black or
    /// a grey) before the calm finish [default: 0.2 with `erase` among --aug-parts, else 0]
    #[arg(long)]
    pub erase: Option<f32>,
    /// Share of the CNN's augmented images replaced by a photograph of the same item lying on a
    /// surface, preprocessed as the page does (textured and plain surfaces, uneven light,
    /// shadows; pictures apart from `trainer suite`'s); 0 turns it off [default: 0.2 in the
    /// shipped recipe (0 without augmentation, with --report-cnn, or in a trainer built without
    /// its `suite` feature, which has no picture generator)]
    #[arg(long)]
    pub surface_photos: Option<f32>,
    /// The share of surface photographs in the calm finish [default: 0 in the shipped recipe
    /// (its last epochs see Fashion-MNIST's look only), else that of --surface-photos]
    #[arg(long)]
    pub calm_photos: Option<f32>,
    /// How many training items get a photograph for --surface-photos (rendered once, before
    /// the CNN trains, on every core)
    #[arg(long, default_value_t = 15_000)]
    pub photographed_items: usize,
    /// Epochs at the end that train with a lighter augmentation (flips, and the geometric warp
    /// on a quarter of the images) [default: 10; 0 with --report-cnn]
    #[arg(long)]
    pub calm_epochs: Option<usize>,
    /// Parts of the pose-robust augmentation kept in the calm finish, as in --aug-parts; its
    /// warp goes to half as many images as --augment's [default: flip,geometry, those of
    /// --aug-parts among them]
    #[arg(long, value_delimiter = ',')]
    pub calm_parts: Option<Vec<String>>,
    /// Cross-entropy label smoothing [default: 0.1; 0 with --report-cnn]
    #[arg(long)]
    pub label_smoothing: Option<f32>,
    /// AdamW weight decay [default: 0.05; 0 (plain Adam) with --report-cnn]
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Train the report's CNN with the report's protocol (no batch norm, Adam at a constant
    /// 1e-3, the report's augmentation on every image, 20 epochs at most) instead of the
    /// shipped network and recipe.
    #[arg(long, conflicts_with = "cnn_config")]
    pub report_cnn: bool,
    /// Another CNN, as the JSON of its architecture (as in a weights file's header), e.g.
    /// '{"kind":"compact","stages":[[32],[64],[128]],"pooled_side":1,"hidden":128,"dropout":0.3}'.
    #[arg(long)]
    pub cnn_config: Option<String>,
    /// Keep an exponential moving average of the CNN's weights with this decay (e.g. 0.999) and
    /// validate and ship it instead of the last step's weights [default: 0, off: at the end of
    /// the shipped schedule it scored below the trained weights, README "How the recipe was chosen"]
    #[arg(long)]
    pub weight_average: Option<f64>,
    /// After the run, average the CNN's weights over its last k epochs for each k up to this
    /// many (epochs of the calm finish only), re-estimate batch norm, and ship the average that
    /// validates best if it beats the best single epoch; 0 turns it off [default: the calm
    /// finish's epochs; 0 with --report-cnn]
    #[arg(long)]
    pub average_epochs: Option<usize>,
    /// What runs the CNN's training steps [default: the hand-written kernels for the compact
    /// CNN on the CPU without --weight-average, else burn]
    #[arg(long, value_enum)]
    pub engine: Option<StepCode>,
    /// A description stored in the CNN's weights file (shown by `trainer suite`).
    #[arg(long)]
    pub note: Option<String>,
    /// Continue the interrupted run whose checkpoint is in OUT/checkpoint.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Discard an interrupted run's checkpoint and start over.
    #[arg(long)]
    pub fresh: bool,
}

/// The shipped recipe's length, chosen on the validation split (README "Shipped models").
pub const SHIPPED_EPOCHS: usize = 44;
/// Of which the last ones train with the lighter augmentation.
pub const SHIPPED_CALM_EPOCHS: usize = 10;
/// Share of the augmented images that are a surface photograph of their item before the calm
/// finish, and in it (docs/surfaces.md).
pub const SHIPPED_SURFACE_PHOTOS: (f32, f32) = (0.2, 0.0);
/// The report's early stopping: epochs without a lower validation loss (`--report-cnn` and
/// the baseline; the shipped CNN runs its whole schedule).
pub const REPORT_PATIENCE: usize = 5;

impl TrainArgs {
    /// The CNN to train and how: the report's protocol with `--report-cnn`, else the shipped
    /// recipe; each flag overrides its part.
    pub fn cnn_recipe(&self) -> Result<(Architecture, TrainConfig)> {
        let report = self.report_cnn;
        let arch = match &self.cnn_config {
            Some(json) => {
                let arch: Architecture = serde_json::from_str(json).context("--cnn-config is not an architecture")?;
                arch.validate().map_err(|e| anyhow::anyhow!("--cnn-config: {e}"))?;
                arch
            }
            None if report => Architecture::Cnn(CnnConfig::report()),
            None => Architecture::Compact(CompactConfig::shipped()),
        };
        let parts = match &self.aug_parts {
            None if report => Vec::new(),
            None => AugmentPart::ALL.to_vec(),
            Some(names) => parse_parts(names)?,
        };
        let probability = self.augment.unwrap_or(if report { 1.0 } else { 0.5 }).clamp(0.0, 1.0);
        let mut augment = Augment::with_parts(probability, &parts);
        if let Some(erase) = self.erase {
            if !(0.0..=1.0).contains(&erase) {
                bail!("--erase is a share of the images: give a number from 0 to 1, not {erase}");
            }
            augment.erase = erase;
        }
        let any_augment = probability > 0.0 || !parts.is_empty();
        // The shipped recipe's photographs need augmented epochs and the picture generator.
        let shipped_photos = !report && any_augment && cfg!(feature = "suite");
        let config = TrainConfig {
            epochs: self.epochs.unwrap_or(if report { 20 } else { SHIPPED_EPOCHS }),
            batch_size: self.batch_size.unwrap_or(128),
            learning_rate: self.lr.unwrap_or(if report { 1e-3 } else { 2e-3 }),
            schedule: if report || self.constant_lr { Schedule::Constant } else { Schedule::WarmupCosine { warmup_epochs: 1.0 } },
            weight_decay: self.weight_decay.unwrap_or(if report { 0.0 } else { 0.05 }),
            label_smoothing: self.label_smoothing.unwrap_or(if report { 0.0 } else { 0.1 }),
            patience: self.patience.unwrap_or(if report { REPORT_PATIENCE } else { 0 }),
            lr_halve_after: self.lr_halve_after,
            seed: self.seed,
            augment: any_augment.then_some(augment),
            calm_finish: None,
            weight_average: Some(self.weight_average.unwrap_or(0.0)).filter(|&decay| decay > 0.0),
            engine: self.engine.unwrap_or(StepCode::Burn),
            average_epochs: 0,
            surface_photos: self.surface_photos.unwrap_or(if shipped_photos { SHIPPED_SURFACE_PHOTOS.0 } else { 0.0 }),
            calm_photos: self.calm_photos.or((shipped_photos && self.surface_photos.is_none()).then_some(SHIPPED_SURFACE_PHOTOS.1)),
        };
        let calm_epochs = self.calm_epochs.unwrap_or(if report { 0 } else { SHIPPED_CALM_EPOCHS }).min(config.epochs);
        let calm_parts = match &self.calm_parts {
            None => parts.iter().copied().filter(|p| matches!(p, AugmentPart::Flip | AugmentPart::Geometry)).collect(),
            Some(names) => parse_parts(names)?,
        };
        let calm = Augment::with_parts(probability / 2.0, &calm_parts);
        let config = TrainConfig {
            calm_finish: (calm_epochs > 0 && config.augment.is_some()).then_some((calm_epochs, calm)),
            average_epochs: self.average_epochs.unwrap_or(if report { 0 } else { calm_epochs }),
            ..config
        };
        config.engine.check(&arch, &config)?;
        if config.batch_size == 0 || config.epochs == 0 {
            bail!("--batch-size and --epochs must be at least 1");
        }
        if config.weight_average.is_some_and(|decay| decay >= 1.0) {
            bail!("--weight-average must be below 1 (0.999 averages over about the last 1,000 steps; 0 turns it off)");
        }
        for (flag, share) in [("--surface-photos", config.surface_photos), ("--calm-photos", config.calm_photos.unwrap_or(0.0))] {
            if !(0.0..=1.0).contains(&share) {
                bail!("{flag} is a share of the images: give a number from 0 to 1, not {share}");
            }
        }
        if config.calm_photos.is_some_and(|share| share > 0.0) && config.surface_photos <= 0.0 {
            bail!("--calm-photos needs photographs to draw from: give --surface-photos a share above 0 too");
        }
        if config.surface_photos > 0.0 && (config.augment.is_none() || cfg!(not(feature = "suite"))) {
            bail!(
                "--surface-photos replaces augmented images and needs the picture generator: train with augmentation, \
                 and a trainer built with its default `suite` feature"
            );
        }
        if !(0.0..1.0).contains(&config.label_smoothing) || config.weight_decay < 0.0 || config.learning_rate <= 0.0 {
            bail!("--label-smoothing must be in 0..1, --weight-decay at least 0 and --lr above 0");
        }
        Ok((arch, config))
    }

    /// The logistic-regression baseline's recipe: the report's (Adam 1e-3, no augmentation,
    /// early stopping with patience 5).
    fn baseline_recipe(&self, cnn: &TrainConfig) -> TrainConfig {
        TrainConfig {
            learning_rate: self.lr.filter(|_| self.report_cnn).unwrap_or(1e-3),
            batch_size: 128,
            schedule: Schedule::Constant,
            weight_decay: 0.0,
            label_smoothing: 0.0,
            patience: self.patience.unwrap_or(REPORT_PATIENCE),
            lr_halve_after: 0,
            augment: None,
            calm_finish: None,
            weight_average: None,
            average_epochs: 0,
            surface_photos: 0.0,
            calm_photos: None,
            epochs: self.epochs.unwrap_or(20),
            ..cnn.clone()
        }
    }
}

/// The hand-written kernels where they can run (the compact CNN, on the CPU, without the moving
/// weight average): 2.3–2.8× as fast as burn's CPU steps on 2 cores. burn everywhere else.
fn default_engine(arch: &Architecture, config: &TrainConfig, gpu: bool) -> StepCode {
    if matches!(arch, Architecture::Compact(_)) && !gpu && config.weight_average.is_none() { StepCode::Kernels } else { StepCode::Burn }
}

/// The training items' photographs when the recipe uses them (`--surface-photos`).
fn photographs(train: &LabelledImages, config: &TrainConfig, items: usize, progress: &Progress) -> Option<Photographed> {
    // No epoch draws from them (e.g. a short run that is all calm finish): none to render.
    if (1..=config.epochs).all(|epoch| config.photos_for(epoch) <= 0.0) {
        return None;
    }
    #[cfg(feature = "suite")]
    {
        let (started, items) = (std::time::Instant::now(), items.min(train.len()));
        let bar = progress.task("photos", items);
        bar.set_message("surface photographs of training items");
        let photos = Photographed::render(train, items, || bar.inc(1));
        bar.finish_and_clear();
        progress.note(&format!(
            "surface photographs: {} of {items} training items found by the preprocessing, in {:.0} s",
            photos.len(),
            started.elapsed().as_secs_f64()
        ));
        Some(photos)
    }
    #[cfg(not(feature = "suite"))]
    {
        let _ = (train, items, progress);
        None
    }
}

fn parse_parts(names: &[String]) -> Result<Vec<AugmentPart>> {
    let mut parts = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        match name {
            "all" => parts.extend(AugmentPart::ALL),
            "none" | "" => {}
            other => parts.push(AugmentPart::parse(other).with_context(|| {
                format!("unknown augmentation part `{other}`; use flip, geometry, photometric, drawing, erase, surface, all or none")
            })?),
        }
    }
    Ok(parts)
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let progress = Progress::new();
    let (cnn_arch, cnn_config) = args.cnn_recipe()?;
    let baseline_config = args.baseline_recipe(&cnn_config);
    let checkpoint_dir = args.out.join("checkpoint");
    let phases = [Checkpoints::new(&checkpoint_dir, "baseline"), Checkpoints::new(&checkpoint_dir, "cnn")];
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

    let cnn_config =
        TrainConfig { engine: args.engine.unwrap_or_else(|| default_engine(&cnn_arch, &cnn_config, selected.gpu)), ..cnn_config };
    let baseline_arch = Architecture::Logistic;
    let photos = photographs(&train, &cnn_config, args.photographed_items, &progress);
    // Epochs use the photographs only where their recipe asks for them (not the baseline's).
    let phase = |arch, config| Phase { arch, train: &train, val: &val, config, photos: photos.as_ref(), device };
    let baseline = phase(&baseline_arch, &baseline_config).train(&phases[0], args.resume, &progress)?;
    progress.note(&format!(
        "cnn: {} ({} multiply-adds per image), {} epochs at most, batch {}, steps by {}, augmentation {:?}{}{}",
        cnn_arch.name(),
        cnn_arch.multiply_adds(),
        cnn_config.epochs,
        cnn_config.batch_size,
        cnn_config.engine.describe(),
        cnn_config.augment,
        cnn_config.calm_finish.map(|(n, a)| format!(", for the last {n} epochs {a:?}")).unwrap_or_default(),
        if cnn_config.surface_photos > 0.0 {
            let calm = match cnn_config.calm_photos {
                Some(share) if cnn_config.calm_finish.is_some() => format!(" ({:.0}% in the calm finish)", 100.0 * share),
                _ => String::new(),
            };
            format!("; {:.0}% of the augmented images replaced by their surface photograph{calm}", 100.0 * cnn_config.surface_photos)
        } else {
            String::new()
        }
    ));
    let cnn = phase(&cnn_arch, &cnn_config).train(&phases[1], args.resume, &progress)?;

    // The device evaluates; the CNN's steps may have run on the kernels instead of it.
    let cnn_backend = match cnn_config.engine {
        StepCode::Burn => selected.description.clone(),
        StepCode::Kernels => format!("{}; the CNN's training steps on the hand-written CPU kernels", selected.description),
    };
    let finish = |file, arch, phase, backend: &str| finish(file, arch, phase, &args, &data, &val, backend, train.len(), device, &progress);
    let baseline_report = finish("baseline.fmw", &baseline_arch, baseline, &selected.description)?;
    let cnn_report = finish("cnn.fmw", &cnn_arch, cnn, &cnn_backend)?;
    let augment = cnn_config.augment;
    let run = RunReport {
        backend: cnn_backend.clone(),
        cores: backend::cores(),
        data_source: data.source.display().to_string(),
        train_images: train.len(),
        val_images: val.len(),
        test_images: data.test.len(),
        seed: args.seed,
        augment,
        cnn_gain_points: 100.0 * (cnn_report.test.accuracy - baseline_report.test.accuracy),
        cnn_recipe: cnn_config,
        logistic: baseline_report,
        cnn: cnn_report,
    };
    report::write(&args.out.join("report"), &run)?;
    // What the page needs to fine-tune these weights: replay images and a held-out slice.
    finetune_sets::write(&args.out, &train, &data.test)?;
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

/// Evaluates a trained network on the test set, fits its calibration temperature on the
/// validation split, and writes its weights file.
#[allow(clippy::too_many_arguments)]
fn finish(
    file: &str,
    arch: &Architecture,
    phase: PhaseResult,
    args: &TrainArgs,
    data: &data::Dataset,
    val: &fashion_model::LabelledImages,
    backend: &str,
    train_images: usize,
    device: &burn::prelude::Device,
    progress: &Progress,
) -> Result<ModelReport> {
    // The file is written in f16: score the network as stored, so that the report, the
    // calibration and `trainer evaluate` on the file all see the same weights.
    let as_stored = WeightsFile::encode(arch, &TrainingSummary::default(), phase.network.clone(), Precision::F16)?;
    let network = WeightsFile::decode(&as_stored, device)?.network;
    let test_logits = metrics::logits(&network, &data.test, device, 500)?;
    let test = Evaluation::from_logits(&test_logits, &data.test.labels);
    let val_logits = metrics::logits(&network, val, device, 500)?;
    let temperature = calibration::fit_temperature(&val_logits, &val.labels);
    let unsure = UnsureRule::fit(&val_logits, fashion_model::NUM_CLASSES, temperature);
    let ece = |t| calibration::expected_calibration_error(&calibration::probabilities(&test_logits, t), &data.test.labels, 15);
    let test_ece = (ece(1.0), ece(temperature));
    progress.note(&format!(
        "{}: temperature {temperature:.3} (fitted on validation); test ECE {:.2}% → {:.2}%",
        arch.name(),
        100.0 * test_ece.0,
        100.0 * test_ece.1
    ));
    let best = &phase.history[phase.best_epoch.max(1) - 1];
    let (val_accuracy, val_loss) = match &phase.average_chosen {
        Some(average) => (average.val_accuracy, average.val_loss),
        None => (best.val_accuracy, best.val_loss),
    };
    let summary = TrainingSummary {
        test_accuracy: Some(test.accuracy),
        val_accuracy: Some(val_accuracy),
        val_loss: Some(val_loss),
        best_epoch: Some(phase.best_epoch),
        epochs_run: Some(phase.history.len()),
        train_images: Some(train_images),
        train_seconds: Some(phase.train_seconds),
        backend: Some(backend.to_string()),
        fine_tuned: Some(false),
        note: if arch.is_cnn() { args.note.clone() } else { None },
        temperature: Some(temperature),
        test_ece: Some(test_ece),
        unsure: Some(unsure),
    };
    let parameters = network.num_params();
    // Half precision: what the page downloads (README "Weights file": the accuracy change).
    let bytes = WeightsFile::encode(arch, &summary, network, Precision::F16)?;
    let path = args.out.join(file);
    write_atomic(&path, &bytes)?;
    progress.note(&format!("wrote {} ({} test accuracy {:.2}%)", path.display(), arch.name(), 100.0 * test.accuracy));
    Ok(ModelReport {
        name: match arch {
            Architecture::Logistic => "Logistic regression".into(),
            _ => arch.name().to_string(),
        },
        architecture: arch.clone(),
        parameters,
        best_epoch: phase.best_epoch,
        epochs_run: phase.history.len(),
        train_seconds: phase.train_seconds,
        history: phase.history,
        averages: phase.averages,
        average_chosen: phase.average_chosen,
        test,
        temperature,
        test_ece,
        multiply_adds: arch.multiply_adds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn args(flags: &[&str]) -> TrainArgs {
        Cli::try_parse_from(std::iter::once("trainer").chain(flags.iter().copied())).unwrap().train
    }

    #[test]
    fn the_shipped_recipe_runs_its_schedule_and_the_reports_stops_early() {
        let shipped = args(&[]);
        let (_, cnn) = shipped.cnn_recipe().unwrap();
        assert_eq!((cnn.patience, cnn.epochs), (0, SHIPPED_EPOCHS));
        let (calm_epochs, calm) = cnn.calm_finish.unwrap();
        assert_eq!(calm_epochs, SHIPPED_CALM_EPOCHS);
        assert_eq!(calm, Augment::with_parts(0.25, &[AugmentPart::Flip, AugmentPart::Geometry]));
        assert_eq!(shipped.baseline_recipe(&cnn).patience, 5, "the baseline keeps the report's early stopping");

        let (_, report) = args(&["--report-cnn"]).cnn_recipe().unwrap();
        assert_eq!((report.patience, report.calm_finish), (5, None));
        assert_eq!(args(&["--patience", "3"]).cnn_recipe().unwrap().1.patience, 3);
    }

    #[test]
    fn the_calm_finish_keeps_the_parts_asked_for() {
        let (_, cnn) = args(&["--calm-parts", "flip", "--calm-epochs", "7"]).cnn_recipe().unwrap();
        assert_eq!(cnn.calm_finish, Some((7, Augment::with_parts(0.25, &[AugmentPart::Flip]))));
        let error = args(&["--calm-parts", "flip,tilt"]).cnn_recipe().unwrap_err().to_string();
        assert!(error.contains("`tilt`") && error.contains("geometry"), "{error}");
    }

    #[test]
    fn erasing_takes_the_share_asked_for_before_the_calm_finish_only() {
        let (_, shipped) = args(&[]).cnn_recipe().unwrap();
        assert_eq!(shipped.augment.unwrap().erase, 0.2);
        let (_, more) = args(&["--erase", "0.5"]).cnn_recipe().unwrap();
        assert_eq!(more.augment.unwrap().erase, 0.5);
        assert_eq!(more.calm_finish.unwrap().1.erase, 0.0, "the calm finish erases nothing");
        let error = args(&["--erase", "1.5"]).cnn_recipe().unwrap_err().to_string();
        assert!(error.contains("--erase") && error.contains("1.5"), "{error}");
    }

    #[test]
    fn surface_photographs_take_a_share_of_augmented_images_only() {
        let (_, shipped) = args(&[]).cnn_recipe().unwrap();
        let generator = cfg!(feature = "suite");
        let last = shipped.epochs;
        assert_eq!((shipped.photos_for(1), shipped.photos_for(last)), if generator { SHIPPED_SURFACE_PHOTOS } else { (0.0, 0.0) });
        assert_eq!(args(&[]).baseline_recipe(&shipped).surface_photos, 0.0, "the baseline trains on the images");
        assert_eq!(args(&["--report-cnn"]).cnn_recipe().unwrap().1.surface_photos, 0.0, "the report's protocol has none");
        let (_, plain) = args(&["--augment", "0", "--aug-parts", "none"]).cnn_recipe().unwrap();
        assert_eq!(plain.surface_photos, 0.0, "no augmentation, no photographs");
        let (_, cnn) = args(&["--surface-photos", "0.2"]).cnn_recipe().unwrap();
        assert_eq!(cnn.surface_photos, 0.2);
        assert_eq!(args(&["--surface-photos", "0.2"]).baseline_recipe(&cnn).surface_photos, 0.0, "the baseline trains on the images");
        let error = args(&["--surface-photos", "1.5"]).cnn_recipe().unwrap_err().to_string();
        assert!(error.contains("--surface-photos") && error.contains("1.5"), "{error}");
        let (_, calm) = args(&["--surface-photos", "0.2", "--calm-photos", "0"]).cnn_recipe().unwrap();
        let last = calm.epochs;
        assert_eq!((calm.photos_for(1), calm.photos_for(last - SHIPPED_CALM_EPOCHS), calm.photos_for(last)), (0.2, 0.2, 0.0));
        assert_eq!(cnn.photos_for(last), 0.2, "without --calm-photos the calm finish keeps the share");
        let error = args(&["--surface-photos", "0", "--calm-photos", "0.2"]).cnn_recipe().unwrap_err().to_string();
        assert!(error.contains("--calm-photos"), "{error}");
        let error = args(&["--surface-photos", "0.2", "--augment", "0", "--aug-parts", "none"]).cnn_recipe().unwrap_err().to_string();
        assert!(error.contains("augmentation"), "{error}");
    }
}
