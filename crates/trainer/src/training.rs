//! The training loop shared by every network: Adam or AdamW, a learning-rate [`Schedule`],
//! mini-batches from a [`BatchBuilder`] (optionally augmented), validation every epoch,
//! [`EarlyStopping`] on validation loss with the best weights restored, and a checkpoint after
//! every epoch so that a crash or Ctrl-C loses at most the epoch in progress. The steps run on
//! burn's autodiff or, for the compact CNN on the CPU, on the hand-written kernels ([`Engine`]).
//!
//! burn's `Learner` would give most of this, but its checkpoints do not hold our early-stopping
//! state, the epochs' weights for averaging, or the hand-written kernels' optimizer state.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use burn::{
    nn::loss::CrossEntropyLossConfig,
    optim::{AdamConfig, AdamWConfig, ModuleOptimizer},
    prelude::*,
    store::ModuleRecord,
    tensor::Bytes,
};
use fashion_model::{Architecture, IMAGE_PIXELS, LabelledImages, Network, finetune::train_step, network::images_tensor};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::{
    augment::Augment,
    average::{AveragedEpochs, WeightAverage, average_last_epochs},
    fsutil::write_atomic,
    kernels::{AdamW, CpuTrainer},
    metrics::evaluate,
    progress::Progress,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate (Adam, or AdamW when `weight_decay` > 0).
    pub learning_rate: f64,
    pub schedule: Schedule,
    /// Decoupled weight decay (AdamW); 0 is plain Adam, as in the report.
    pub weight_decay: f32,
    /// Cross-entropy label smoothing (0: none, as in the report).
    pub label_smoothing: f32,
    /// Early stopping: epochs without a better validation loss before stopping (0: never).
    pub patience: usize,
    /// Halve the learning rate after this many epochs without improvement (0 = never).
    pub lr_halve_after: usize,
    pub seed: u64,
    pub augment: Option<Augment>,
    /// The last `.0` epochs train with this lighter augmentation instead: the network ends
    /// on images close to the test distribution at a low learning rate, after learning
    /// pose-robust features under the full augmentation.
    #[serde(default)]
    pub calm_finish: Option<(usize, Augment)>,
    /// Keep an exponential moving average of the weights with this decay ([`WeightAverage`]);
    /// validation, early stopping and the saved weights then use the average.
    #[serde(default)]
    pub weight_average: Option<f64>,
    /// Which code runs the training steps.
    #[serde(default)]
    pub engine: Engine,
    /// After the run, average the weights of the last k epochs for every k up to this many
    /// (within the final augmentation's epochs), re-estimate batch norm for each, and keep the
    /// average that validates best when it beats the best single epoch
    /// ([`crate::average::average_last_epochs`]; 0: off).
    #[serde(default)]
    pub average_epochs: usize,
}

/// Which code runs the training steps. Part of the checkpoint's fingerprint: the two keep
/// their optimizer state in different forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// burn's autodiff and optimizers, on the selected backend (every network, CPU or GPU).
    #[default]
    Burn,
    /// The hand-written CPU training step ([`crate::kernels`]): the compact CNN only, without
    /// the moving weight average (`--weight-average`); 2.3–2.8× as fast as burn's CPU backend on 2 cores.
    Kernels,
}

impl TrainConfig {
    /// The augmentation used in `epoch` (1-based).
    pub fn augment_for(&self, epoch: usize) -> Option<Augment> {
        match self.calm_finish {
            Some((_, augment)) if epoch >= self.final_augment_from() => Some(augment),
            _ => self.augment,
        }
    }

    /// The first epoch (1-based) trained with the run's final augmentation: the calm
    /// finish's first, else 1.
    pub fn final_augment_from(&self) -> usize {
        self.calm_finish.map_or(1, |(calm, _)| self.epochs.saturating_sub(calm) + 1)
    }

    /// The first epoch whose weights the averages after the run may use: the last
    /// `average_epochs`, none before the final augmentation. `None` when averaging is off.
    pub fn average_from(&self) -> Option<usize> {
        (self.average_epochs > 0).then(|| self.final_augment_from().max((self.epochs + 1).saturating_sub(self.average_epochs)))
    }
}

/// How the learning rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate throughout (the report's Keras default).
    Constant,
    /// Linear warm-up from a tenth of the peak over `warmup_epochs`, then a cosine decay to
    /// `peak / 20` at the last planned step; updated every step.
    WarmupCosine { warmup_epochs: f64 },
}

/// The learning rate at `step` (0-based, counted over the whole run) of `total_steps`.
pub fn learning_rate(config: &TrainConfig, step: usize, steps_per_epoch: usize) -> f64 {
    let peak = config.learning_rate;
    match config.schedule {
        Schedule::Constant => peak,
        Schedule::WarmupCosine { warmup_epochs } => {
            let total = (config.epochs * steps_per_epoch).max(1) as f64;
            let warmup = (warmup_epochs * steps_per_epoch as f64).min(total - 1.0).max(0.0);
            let step = step as f64;
            if step < warmup {
                return peak * (0.1 + 0.9 * step / warmup);
            }
            let t = ((step - warmup) / (total - warmup).max(1.0)).min(1.0);
            let floor = peak / 20.0;
            floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

/// Early stopping on validation loss: remembers the best epoch and says when `patience`
/// epochs have passed without a better one (`patience` 0: never; the run ends with its
/// schedule).
///
/// Only epochs from `from_epoch` on compete: those trained with the run's final augmentation.
/// Validation loss falls when the calm finish starts, but not always below the best epoch
/// before it; a run that stopped early in the calm finish would restore weights that never
/// saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    from_epoch: usize,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    since_best: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize, from_epoch: usize) -> Self {
        Self { patience, from_epoch, best_epoch: 0, best_val_loss: f64::INFINITY, since_best: 0 }
    }

    /// For a run with `config`: its patience, and its final augmentation's epochs.
    pub fn for_run(config: &TrainConfig) -> Self {
        Self::new(config.patience, config.final_augment_from())
    }

    /// Rebuilt from a checkpoint's history.
    fn restore(config: &TrainConfig, history: &[EpochRecord]) -> Self {
        let mut stopping = Self::for_run(config);
        for record in history {
            stopping.observe(record.epoch, record.val_loss);
        }
        stopping
    }

    /// Records an epoch's validation loss; true when it is the best so far.
    pub fn observe(&mut self, epoch: usize, val_loss: f64) -> bool {
        if epoch < self.from_epoch {
            false
        } else if val_loss < self.best_val_loss {
            (self.best_val_loss, self.best_epoch, self.since_best) = (val_loss, epoch, 0);
            true
        } else {
            self.since_best += 1;
            false
        }
    }

    pub fn epochs_since_best(&self) -> usize {
        self.since_best
    }

    pub fn should_stop(&self) -> bool {
        self.patience > 0 && self.since_best >= self.patience
    }
}

impl Engine {
    /// An error saying what to do when this engine cannot train `arch` with `config`.
    pub fn check(self, arch: &Architecture, config: &TrainConfig) -> Result<()> {
        if self == Engine::Kernels {
            if !matches!(arch, Architecture::Compact(_)) {
                bail!("the hand-written kernels train the compact CNN only; use --engine burn for the {}", arch.name());
            }
            if config.weight_average.is_some() {
                bail!("the moving weight average runs on burn's networks; use --engine burn with --weight-average");
            }
        }
        Ok(())
    }
}

/// Turns a list of training-set indices into a batch: images (augmented or not) and labels.
struct BatchBuilder<'a> {
    data: &'a LabelledImages,
    augment: Option<Augment>,
    pixels: Vec<f32>,
}

impl<'a> BatchBuilder<'a> {
    fn new(data: &'a LabelledImages, augment: Option<Augment>, batch_size: usize) -> Self {
        Self { data, augment, pixels: vec![0f32; batch_size * IMAGE_PIXELS] }
    }

    /// Fills the batch's pixels (augmented or not) and returns its labels.
    fn fill(&mut self, indices: &[usize], rng: &mut StdRng) -> Vec<u8> {
        for (k, &i) in indices.iter().enumerate() {
            let dst = &mut self.pixels[k * IMAGE_PIXELS..(k + 1) * IMAGE_PIXELS];
            match &self.augment {
                Some(aug) => aug.apply(self.data.image(i), dst, rng),
                None => dst.iter_mut().zip(self.data.image(i)).for_each(|(d, &s)| *d = s as f32 / 255.0),
            }
        }
        indices.iter().map(|&i| self.data.labels[i]).collect()
    }

    fn pixels(&self, n: usize) -> &[f32] {
        &self.pixels[..n * IMAGE_PIXELS]
    }
}

/// A batch as burn's tensors.
fn tensors(pixels: &[f32], labels: &[u8], device: &Device) -> (Tensor<3>, Tensor<1, Int>) {
    let images = images_tensor(pixels.to_vec(), device);
    let targets = labels.iter().map(|&l| l as i64).collect::<Vec<_>>();
    (images, Tensor::<1, Int>::from_data(TensorData::new(targets, [labels.len()]), device))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub learning_rate: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// With the moving weight average: the validation accuracy of the trained (not averaged) weights.
    #[serde(default)]
    pub live_val_accuracy: Option<f64>,
}

/// What survives a restart: written after every epoch, atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PhaseState {
    /// The run this checkpoint belongs to; a mismatch refuses `--resume`.
    fingerprint: String,
    history: Vec<EpochRecord>,
    best_epoch: usize,
    /// Infinite until an epoch competes (the calm finish's first): kept as `null`.
    #[serde(with = "infinite_as_null")]
    best_val_loss: f64,
    learning_rate: f64,
    finished: bool,
    /// Optimiser steps folded into the weight average so far.
    #[serde(default)]
    average_updates: u64,
    /// Every average of the last epochs validated after the run (`TrainConfig::average_epochs`).
    #[serde(default)]
    averages: Vec<AveragedEpochs>,
    /// The one that replaced the best epoch's weights (saved as `averaged.model`), if any did.
    #[serde(default)]
    average_chosen: Option<AveragedEpochs>,
}

/// serde_json writes an infinite f64 as `null` and refuses to read `null` back as an f64; a
/// run interrupted before its calm finish has no best loss yet, and its checkpoint must still
/// resume.
mod infinite_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() { serializer.serialize_some(value) } else { serializer.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::INFINITY))
    }
}

pub struct PhaseResult {
    pub network: Network,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub train_seconds: f64,
    /// Epochs that came from a checkpoint instead of being run now.
    pub resumed_epochs: usize,
    /// The averages of the last epochs validated after the run, and the one `network` is
    /// (when one validated better than the best epoch).
    pub averages: Vec<AveragedEpochs>,
    pub average_chosen: Option<AveragedEpochs>,
}

/// Where one phase ("baseline" or "cnn") keeps its checkpoint files.
pub struct Checkpoints {
    dir: PathBuf,
    name: String,
}

impl Checkpoints {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self { dir: dir.to_path_buf(), name: name.to_string() }
    }
    fn path(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}-{what}", self.name))
    }
    /// Each best model gets its own file, named by epoch in the state file, so the state and
    /// the best weights it names are always replaced together.
    fn best_path(&self, epoch: usize) -> PathBuf {
        self.path(&format!("best-e{epoch}.bpk"))
    }
    fn state_path(&self) -> PathBuf {
        self.path("state.json")
    }
    fn averaged_path(&self) -> PathBuf {
        self.path("averaged.model")
    }
    pub fn exists(&self) -> bool {
        self.state_path().exists()
    }
    /// Epochs completed according to the checkpoint, for messages.
    pub fn describe(&self) -> Option<String> {
        let state: PhaseState = serde_json::from_slice(&std::fs::read(self.state_path()).ok()?).ok()?;
        Some(if state.finished {
            format!("{}: finished", self.name)
        } else {
            format!("{}: {} epoch(s) done", self.name, state.history.len())
        })
    }
}

fn fingerprint(arch: &Architecture, config: &TrainConfig, train: &LabelledImages) -> String {
    format!("{}|{}|{}", serde_json::to_string(arch).unwrap(), serde_json::to_string(config).unwrap(), train.len())
}

fn record_bytes(network: Network) -> Result<Vec<u8>> {
    Ok(network.into_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec())
}

fn load_network(arch: &Architecture, device: &Device, bytes: Vec<u8>) -> Result<Network> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| anyhow::anyhow!("{e}"))?;
    arch.init(device).try_load_record(record).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Trains `arch` on `train`, early-stopping on `val`, resuming from `checkpoints` if asked.
#[allow(clippy::too_many_arguments)]
pub fn train_phase(
    arch: &Architecture,
    train: &LabelledImages,
    val: &LabelledImages,
    config: &TrainConfig,
    device: &Device,
    checkpoints: &Checkpoints,
    resume: bool,
    progress: &Progress,
) -> Result<PhaseResult> {
    let ad_device = device.clone().autodiff();
    let mut run = match resume.then(|| checkpoints.load(arch, config, train, &ad_device)).transpose()?.flatten() {
        Some(Resumed::Finished(result)) => {
            progress.note(&format!("{}: already finished in the checkpoint, best epoch {}", checkpoints.name, result.state.best_epoch));
            return result.into_phase(arch, device, checkpoints);
        }
        Some(Resumed::Running(run)) => {
            progress.note(&format!("{}: resuming after epoch {}", checkpoints.name, run.state.history.len()));
            run
        }
        None => RunInProgress::new(arch, config, train, &ad_device)?,
    };
    let resumed_epochs = run.state.history.len();
    let mut stopping = EarlyStopping::restore(config, &run.state.history);

    let mut loss_config = CrossEntropyLossConfig::new();
    if config.label_smoothing > 0.0 {
        loss_config = loss_config.with_smoothing(Some(config.label_smoothing));
    }
    let loss_fn = loss_config.init(&ad_device);
    let steps_per_epoch = train.len().div_ceil(config.batch_size);
    let phase_bar = progress.phase(&checkpoints.name, config.epochs, resumed_epochs, steps_per_epoch);
    let mut batches = BatchBuilder::new(train, config.augment, config.batch_size);
    for epoch in resumed_epochs + 1..=config.epochs {
        if stopping.should_stop() {
            break;
        }
        let started = Instant::now();
        // Per-epoch seeds make a resumed run replay exactly what an uninterrupted one would.
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        ad_device.seed(config.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        batches.augment = config.augment_for(epoch);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        let mut rate = run.state.learning_rate;
        for (step_in_epoch, chunk) in order.chunks(config.batch_size).enumerate() {
            if config.schedule != Schedule::Constant {
                rate = learning_rate(config, (epoch - 1) * steps_per_epoch + step_in_epoch, steps_per_epoch);
            }
            let labels = batches.fill(chunk, &mut rng);
            let pixels = batches.pixels(chunk.len());
            let (batch_loss, batch_correct) = match &mut run.engine {
                Stepper::Burn { model, optim } => {
                    let (images, targets) = tensors(pixels, &labels, &ad_device);
                    let taken = model.take().expect("the model is back after every step");
                    let (next, loss, logits) = train_step(taken, optim, &loss_fn, images, targets, rate);
                    if let Some(average) = &mut run.average {
                        average.update(&next);
                    }
                    *model = Some(next);
                    let predicted = logits.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
                    (loss.into_scalar::<f32>() as f64, predicted.iter().zip(&labels).filter(|&(&p, &l)| p == l as i64).count())
                }
                Stepper::Kernels(trainer) => {
                    let outcome = trainer.step(pixels, &labels, rate, &mut rng);
                    (outcome.loss, outcome.correct)
                }
            };
            correct += batch_correct;
            if !batch_loss.is_finite() {
                bail!("training diverged (loss is {batch_loss}) at epoch {epoch}; lower --lr");
            }
            loss_sum += batch_loss * chunk.len() as f64;
            phase_bar.inc(1);
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let live = run.engine.network(device)?;
        let (eval, live_val_accuracy) = match &run.average {
            Some(average) => (evaluate(average.network(), val, device, 500)?, Some(evaluate(&live, val, device, 500)?.accuracy)),
            None => (evaluate(&live, val, device, 500)?, None),
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            learning_rate: rate,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: train.len() as f64 / train_seconds,
            live_val_accuracy,
        };
        progress.note(&format!(
            "{} epoch {epoch:>2}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{} | lr {:.2e} | {:.0} img/s, {:.0}s",
            checkpoints.name,
            record.train_loss,
            100.0 * record.train_accuracy,
            record.val_loss,
            100.0 * record.val_accuracy,
            record.live_val_accuracy.map(|a| format!(" (averaged; trained weights {:.2}%)", 100.0 * a)).unwrap_or_default(),
            record.learning_rate,
            record.images_per_second,
            record.seconds
        ));
        let best_before = stopping.best_epoch;
        if !stopping.observe(epoch, record.val_loss)
            && config.lr_halve_after > 0
            && stopping.epochs_since_best() > 0
            && stopping.epochs_since_best().is_multiple_of(config.lr_halve_after)
        {
            run.state.learning_rate /= 2.0;
            progress.note(&format!(
                "{}: no improvement for {} epochs, learning rate now {:.2e}",
                checkpoints.name,
                stopping.epochs_since_best(),
                run.state.learning_rate
            ));
        }
        (run.state.best_epoch, run.state.best_val_loss) = (stopping.best_epoch, stopping.best_val_loss);
        run.state.history.push(record);
        run.state.average_updates = run.average.as_ref().map_or(0, WeightAverage::updates);
        save_epoch(checkpoints, epoch, best_before, config.average_from(), &mut run, live).with_context(|| {
            format!(
                "saving the {} checkpoint after epoch {epoch}; everything saved before this epoch is intact, \
                 and once this is fixed the same command with `--resume` continues from there",
                checkpoints.name
            )
        })?;
    }
    phase_bar.finish_and_clear();
    if let Some(from) = config.average_from() {
        let averages = AfterRunAverages { arch, train, val, batch_size: config.batch_size, device };
        averages.run(checkpoints, from, &mut run.state, progress)?;
    }
    run.state.finished = true;
    write_atomic(&checkpoints.state_path(), &serde_json::to_vec_pretty(&run.state)?)?;
    let result = FinishedPhase { state: run.state, resumed_epochs };
    result.into_phase(arch, device, checkpoints)
}

/// What runs the steps: burn's network on the autodiff device with its optimizer, or the
/// hand-written kernels.
#[allow(clippy::large_enum_variant)] // one per run
enum Stepper {
    /// `model` is `None` only inside a step, which moves it through burn's optimizer.
    Burn {
        model: Option<Network>,
        optim: ModuleOptimizer,
    },
    Kernels(CpuTrainer),
}

impl Stepper {
    fn new(arch: &Architecture, config: &TrainConfig, model: Network) -> Result<Self> {
        match config.engine {
            Engine::Burn => Ok(Stepper::Burn { model: Some(model), optim: optimizer(config) }),
            Engine::Kernels => {
                config.engine.check(arch, config)?;
                let (Architecture::Compact(compact), Network::Compact(network)) = (arch, &model) else {
                    unreachable!("Engine::check lets the kernels train the compact CNN only")
                };
                let optimizer = AdamW { weight_decay: config.weight_decay };
                Ok(Stepper::Kernels(CpuTrainer::new(compact, &network.params(), optimizer, config.label_smoothing)?))
            }
        }
    }

    /// The network as trained so far, for evaluation on `device` (no autodiff).
    fn network(&self, device: &Device) -> Result<Network> {
        match self {
            Stepper::Burn { model, .. } => Ok(model.as_ref().expect("the model is back after every step").valid()),
            Stepper::Kernels(trainer) => trainer.network(device),
        }
    }

    fn optimizer_state(&mut self) -> Result<Vec<u8>> {
        match self {
            Stepper::Burn { optim, .. } => Ok(optim.into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec()),
            Stepper::Kernels(trainer) => Ok(trainer.optimizer_state()),
        }
    }
}

/// A phase being trained: what runs the steps, the weight average and the state that the
/// checkpoint keeps.
struct RunInProgress {
    engine: Stepper,
    average: Option<WeightAverage>,
    state: PhaseState,
}

impl RunInProgress {
    fn new(arch: &Architecture, config: &TrainConfig, train: &LabelledImages, ad_device: &Device) -> Result<Self> {
        let model = arch.init(ad_device);
        Ok(Self {
            average: config.weight_average.map(|decay| WeightAverage::new(&model, decay)),
            engine: Stepper::new(arch, config, model)?,
            state: PhaseState {
                fingerprint: fingerprint(arch, config, train),
                history: Vec::new(),
                best_epoch: 0,
                best_val_loss: f64::INFINITY,
                learning_rate: config.learning_rate,
                finished: false,
                average_updates: 0,
                averages: Vec::new(),
                average_chosen: None,
            },
        })
    }
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    if config.weight_decay > 0.0 { AdamWConfig::new().with_weight_decay(config.weight_decay).init() } else { AdamConfig::new().init() }
}

/// A phase whose checkpoint says it is done.
struct FinishedPhase {
    state: PhaseState,
    resumed_epochs: usize,
}

impl FinishedPhase {
    /// Loads the best epoch's weights (early stopping's "best weights restored"), or the
    /// average of the last epochs where one validated better.
    fn into_phase(self, arch: &Architecture, device: &Device, checkpoints: &Checkpoints) -> Result<PhaseResult> {
        let path = match self.state.average_chosen {
            Some(_) => checkpoints.averaged_path(),
            None => checkpoints.best_path(self.state.best_epoch),
        };
        let network = load_network(arch, device, std::fs::read(path)?)?;
        Ok(PhaseResult {
            network,
            train_seconds: self.state.history.iter().map(|h| h.seconds).sum(),
            best_epoch: self.state.best_epoch,
            history: self.state.history,
            resumed_epochs: self.resumed_epochs,
            averages: self.state.averages,
            average_chosen: self.state.average_chosen,
        })
    }
}

/// Training images the averages' batch norm is re-estimated on: plain (the network meets
/// plain images in validation, testing and the page), and 20,000 are plenty for 128
/// channels' means and variances.
const RECALIBRATION_IMAGES: usize = 20_000;

/// The averages of the last epochs' weights after a run: what they are made from and
/// judged on.
struct AfterRunAverages<'a> {
    arch: &'a Architecture,
    /// Batch norm is re-estimated on (the first [`RECALIBRATION_IMAGES`] of) these.
    train: &'a LabelledImages,
    val: &'a LabelledImages,
    batch_size: usize,
    device: &'a Device,
}

impl AfterRunAverages<'_> {
    /// Averages the last epochs' weights (from `from` on) once the epochs have run, validates
    /// every average and keeps the best in the checkpoint when it beats the best epoch. A run
    /// killed in here redoes it on `--resume`: the epochs' weights stay until it is done.
    fn run(&self, checkpoints: &Checkpoints, from: usize, state: &mut PhaseState, progress: &Progress) -> Result<()> {
        let Self { arch, train, val, batch_size, device } = *self;
        let last = state.history.len();
        if last < from {
            return Ok(()); // stopped early, before the epochs to average
        }
        progress.note(&format!(
            "{}: averaging the weights of the last 1 to {} epochs, batch norm re-estimated on training images, each validated",
            checkpoints.name,
            last + 1 - from
        ));
        let snapshots = (from..=last)
            .map(|epoch| {
                let path = checkpoints.path(&format!("e{epoch}.model"));
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("reading epoch {epoch}'s weights for the average ({})", path.display()))?;
                Ok((epoch, load_network(arch, device, bytes)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let n = train.len().min(RECALIBRATION_IMAGES);
        let images: Vec<f32> = train.pixels[..n * IMAGE_PIXELS].iter().map(|&p| p as f32 / 255.0).collect();
        let (averages, best) = average_last_epochs(arch, snapshots, &images, batch_size.min(n), val, device)?;
        for a in &averages {
            progress.note(&format!(
                "{}: {}, batch norm re-estimated: val loss {:.4} acc {:.2}%",
                checkpoints.name,
                a.epochs(),
                a.val_loss,
                100.0 * a.val_accuracy
            ));
        }
        state.average_chosen = None;
        if let Some((winner, network)) = best {
            if winner.val_loss < state.best_val_loss {
                write_atomic(&checkpoints.averaged_path(), &record_bytes(network)?)?;
                progress.note(&format!(
                    "{}: keeping {} (batch norm re-estimated; val loss {:.4}; best single epoch {}, as trained: {:.4})",
                    checkpoints.name,
                    winner.epochs(),
                    winner.val_loss,
                    state.best_epoch,
                    state.best_val_loss
                ));
                state.average_chosen = Some(winner);
            } else {
                progress.note(&format!("{}: no average beat epoch {}; keeping its weights", checkpoints.name, state.best_epoch));
            }
        }
        state.averages = averages;
        Ok(())
    }
}

enum Resumed {
    Finished(FinishedPhase),
    Running(RunInProgress),
}

impl Checkpoints {
    /// The saved run, if any; an error when it belongs to other settings or is damaged.
    fn load(&self, arch: &Architecture, config: &TrainConfig, train: &LabelledImages, ad_device: &Device) -> Result<Option<Resumed>> {
        if !self.exists() {
            return Ok(None);
        }
        let raw = std::fs::read(self.state_path()).with_context(|| format!("reading {}", self.state_path().display()))?;
        let saved: PhaseState = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is damaged; delete the checkpoint folder to start over", self.state_path().display()))?;
        if saved.fingerprint != fingerprint(arch, config, train) {
            bail!(
                "the checkpoint in {} was made with other settings (architecture, epochs, seed, --limit…); \
                 rerun with the same flags, or with --fresh to discard it",
                self.dir.display()
            );
        }
        let epoch = saved.history.len();
        if saved.finished {
            return Ok(Some(Resumed::Finished(FinishedPhase { state: saved, resumed_epochs: epoch })));
        }
        let mut run = RunInProgress::new(arch, config, train, ad_device)?;
        if epoch > 0 {
            let model = load_network(arch, ad_device, std::fs::read(self.path(&format!("e{epoch}.model")))?)?;
            let optim = std::fs::read(self.path(&format!("e{epoch}.optim")))?;
            run.engine = Stepper::new(arch, config, model)?;
            match &mut run.engine {
                Stepper::Burn { optim: optimizer, .. } => {
                    *optimizer =
                        optimizer.clone().from_bytes(Bytes::from_bytes_vec(optim)).map_err(|e| anyhow::anyhow!("optimizer state: {e}"))?;
                }
                Stepper::Kernels(trainer) => trainer.restore_optimizer_state(&optim)?,
            }
            if let Some(decay) = config.weight_average {
                let average = load_network(arch, ad_device, std::fs::read(self.path(&format!("e{epoch}.average")))?)?;
                run.average = Some(WeightAverage::restore(average, decay, saved.average_updates));
            }
        }
        run.state = saved;
        Ok(Some(Resumed::Running(run)))
    }
}

/// Model, optimizer and (when this epoch is the best so far) best weights go to
/// epoch-numbered files first; the state file that names them is replaced last, and only then
/// are the files it no longer names removed. A kill or a full disk at any moment leaves the
/// previous consistent checkpoint.
///
/// `live` is the network as trained so far, the one this epoch validated.
/// The weights of epochs from `keep_from` on stay, for the averages after the run.
fn save_epoch(
    checkpoints: &Checkpoints,
    epoch: usize,
    best_before: usize,
    keep_from: Option<usize>,
    run: &mut RunInProgress,
    live: Network,
) -> Result<()> {
    let state = &run.state;
    let new_files = [
        checkpoints.best_path(epoch),
        checkpoints.path(&format!("e{epoch}.model")),
        checkpoints.path(&format!("e{epoch}.optim")),
        checkpoints.path(&format!("e{epoch}.average")),
    ];
    let written = (|| -> Result<()> {
        if state.best_epoch == epoch {
            // The weights that were validated: the average when there is one.
            let kept = run.average.as_ref().map_or_else(|| live.clone(), |a| a.network().clone());
            write_atomic(&new_files[0], &record_bytes(kept)?)?;
        }
        write_atomic(&new_files[1], &record_bytes(live)?)?;
        write_atomic(&new_files[2], &run.engine.optimizer_state()?)?;
        if let Some(average) = &run.average {
            write_atomic(&new_files[3], &record_bytes(average.network().clone())?)?;
        }
        write_atomic(&checkpoints.state_path(), &serde_json::to_vec_pretty(state)?)
    })();
    if written.is_err() {
        // The state file still names the epoch before, so this epoch's files are unused: give
        // their space back (the usual failure is a full disk).
        for file in &new_files {
            let _ = std::fs::remove_file(file);
        }
        return written;
    }
    if epoch > 1 {
        let kept = keep_from.is_some_and(|from| epoch - 1 >= from);
        for what in ["model", "optim", "average"].into_iter().filter(|&what| !(kept && what == "model")) {
            let _ = std::fs::remove_file(checkpoints.path(&format!("e{}.{what}", epoch - 1)));
        }
    }
    if best_before != state.best_epoch && best_before > 0 {
        let _ = std::fs::remove_file(checkpoints.best_path(best_before));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: Schedule) -> TrainConfig {
        TrainConfig {
            epochs: 10,
            batch_size: 100,
            learning_rate: 1e-3,
            schedule,
            weight_decay: 0.0,
            label_smoothing: 0.0,
            patience: 5,
            lr_halve_after: 0,
            seed: 1,
            augment: None,
            calm_finish: None,
            weight_average: None,
            engine: Engine::Burn,
            average_epochs: 0,
        }
    }

    #[test]
    fn warmup_rises_to_the_peak_then_cosine_falls_to_a_twentieth() {
        let c = config(Schedule::WarmupCosine { warmup_epochs: 1.0 });
        let lr = |step| learning_rate(&c, step, 100);
        assert!((lr(0) - 1e-4).abs() < 1e-12);
        assert!(lr(50) > lr(0) && lr(50) < 1e-3);
        assert!((lr(100) - 1e-3).abs() < 1e-9);
        assert!(lr(500) < lr(200) && lr(900) < lr(500));
        assert!((lr(999) - 5e-5).abs() < 1e-6, "{}", lr(999));
        assert_eq!(learning_rate(&config(Schedule::Constant), 999, 100), 1e-3);
    }

    #[test]
    fn the_calm_finish_takes_over_for_the_last_epochs() {
        let full = Augment::pose(0.5);
        let calm = Augment::report();
        let c = TrainConfig { augment: Some(full), calm_finish: Some((3, calm)), ..config(Schedule::Constant) };
        assert_eq!(c.augment_for(7), Some(full));
        assert_eq!(c.augment_for(8), Some(calm));
        assert_eq!(c.augment_for(10), Some(calm));
        assert_eq!(TrainConfig { calm_finish: None, ..c }.augment_for(10), Some(full));
    }

    #[test]
    fn early_stopping_counts_epochs_without_a_better_loss() {
        let mut s = EarlyStopping::new(2, 1);
        assert!(s.observe(1, 0.5));
        assert!(!s.observe(2, 0.6));
        assert!(!s.should_stop());
        assert!(s.observe(3, 0.4));
        assert!(!s.observe(4, 0.4));
        assert!(!s.observe(5, 0.45));
        assert!(s.should_stop());
        assert_eq!((s.best_epoch, s.best_val_loss), (3, 0.4));
        let history: Vec<EpochRecord> = [0.5, 0.6, 0.4, 0.4, 0.45]
            .iter()
            .enumerate()
            .map(|(i, &val_loss)| EpochRecord {
                epoch: i + 1,
                train_loss: 0.0,
                train_accuracy: 0.0,
                val_loss,
                val_accuracy: 0.0,
                learning_rate: 0.0,
                seconds: 0.0,
                images_per_second: 0.0,
                live_val_accuracy: None,
            })
            .collect();
        let c = TrainConfig { patience: 2, epochs: 5, ..config(Schedule::Constant) };
        assert_eq!(EarlyStopping::restore(&c, &history), s);
    }

    #[test]
    fn the_averages_use_the_last_epochs_of_the_final_augmentation_only() {
        let calm = |epochs, calm, average| TrainConfig {
            epochs,
            augment: Some(Augment::pose(0.5)),
            calm_finish: (calm > 0).then(|| (calm, Augment::report())),
            average_epochs: average,
            ..config(Schedule::Constant)
        };
        assert_eq!(calm(44, 10, 10).average_from(), Some(35));
        assert_eq!(calm(44, 10, 4).average_from(), Some(41));
        assert_eq!(calm(44, 10, 30).average_from(), Some(35), "never before the calm finish");
        assert_eq!(calm(44, 0, 6).average_from(), Some(39));
        assert_eq!(calm(3, 0, 6).average_from(), Some(1));
        assert_eq!(calm(44, 10, 0).average_from(), None);
    }

    #[test]
    fn only_the_final_augmentations_epochs_compete_and_patience_0_never_stops() {
        // 10 epochs, the last 4 calm: epochs 1–6 are trained on, not selected.
        let c = TrainConfig { augment: Some(Augment::pose(0.5)), calm_finish: Some((4, Augment::report())), ..config(Schedule::Constant) };
        let mut s = EarlyStopping::for_run(&c);
        for epoch in 1..=6 {
            assert!(!s.observe(epoch, 0.1), "epoch {epoch} is before the calm finish");
        }
        assert!(!s.should_stop(), "patience 5 counts the calm finish's epochs only");
        assert!(s.observe(7, 0.3), "the calm finish's first epoch is the best so far, though 0.1 came before");
        assert_eq!(s.best_epoch, 7);
        let mut never = EarlyStopping::new(0, 1);
        never.observe(1, 0.1);
        for epoch in 2..50 {
            never.observe(epoch, 1.0);
        }
        assert!(!never.should_stop());
        assert_eq!(never.best_epoch, 1);
    }
}
