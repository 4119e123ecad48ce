//! The training loop shared by both networks: Adam, mini-batches, optional augmentation,
//! validation every epoch, early stopping on validation loss with the best weights restored,
//! and a checkpoint after every epoch so that a crash or Ctrl-C loses at most the epoch in
//! progress.
//!
//! burn's `Learner` would give most of this, but its checkpoints do not hold our early-stopping
//! state and it cannot run in the browser, where the same loop runs for fine-tuning.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use burn::{nn::loss::CrossEntropyLossConfig, optim::AdamConfig, prelude::*, store::ModuleRecord, tensor::Bytes};
use fashion_model::{Architecture, IMAGE_PIXELS, LabelledImages, NUM_CLASSES, Network, finetune::train_step, network::images_tensor};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::{augment::Augment, fsutil::write_atomic, metrics::Evaluation, progress::Progress};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Early stopping: epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Halve the learning rate after this many epochs without improvement (0 = never).
    pub lr_halve_after: usize,
    /// Cosine decay of the learning rate from `learning_rate` (first epoch) to a twentieth of
    /// it (last planned epoch).
    pub cosine: bool,
    pub seed: u64,
    pub augment: Option<Augment>,
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
}

/// What survives a restart: written after every epoch, atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PhaseState {
    /// The run this checkpoint belongs to; a mismatch refuses `--resume`.
    fingerprint: String,
    history: Vec<EpochRecord>,
    best_epoch: usize,
    best_val_loss: f64,
    learning_rate: f64,
    finished: bool,
}

pub struct PhaseResult {
    pub network: Network,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub train_seconds: f64,
    /// Epochs that came from a checkpoint instead of being run now.
    pub resumed_epochs: usize,
}

/// Where one phase ("lr" or "cnn") keeps its checkpoint files.
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
    let fp = fingerprint(arch, config, train);
    let mut model = arch.init(&ad_device);
    let mut optim = AdamConfig::new().init();
    let mut state = PhaseState {
        fingerprint: fp.clone(),
        history: Vec::new(),
        best_epoch: 0,
        best_val_loss: f64::INFINITY,
        learning_rate: config.learning_rate,
        finished: false,
    };

    if resume && checkpoints.exists() {
        let raw = std::fs::read(checkpoints.state_path()).with_context(|| format!("reading {}", checkpoints.state_path().display()))?;
        let saved: PhaseState = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is damaged; delete the checkpoint folder to start over", checkpoints.state_path().display()))?;
        if saved.fingerprint != fp {
            bail!(
                "the checkpoint in {} was made with other settings (architecture, epochs, seed, --limit…); \
                 rerun with the same flags, or with --fresh to discard it",
                checkpoints.dir.display()
            );
        }
        let epoch = saved.history.len();
        if saved.finished {
            let best = std::fs::read(checkpoints.best_path(saved.best_epoch))?;
            let network = load_network(arch, device, best)?;
            progress.note(&format!("{}: already finished in the checkpoint, best epoch {}", checkpoints.name, saved.best_epoch));
            return Ok(PhaseResult {
                network,
                train_seconds: saved.history.iter().map(|h| h.seconds).sum(),
                resumed_epochs: epoch,
                best_epoch: saved.best_epoch,
                history: saved.history,
            });
        }
        if epoch > 0 {
            model = load_network(arch, &ad_device, std::fs::read(checkpoints.path(&format!("e{epoch}.model")))?)?;
            optim = optim
                .from_bytes(Bytes::from_bytes_vec(std::fs::read(checkpoints.path(&format!("e{epoch}.optim")))?))
                .map_err(|e| anyhow::anyhow!("optimizer state: {e}"))?;
            progress.note(&format!("{}: resuming after epoch {epoch}", checkpoints.name));
        }
        state = saved;
    }
    let resumed_epochs = state.history.len();

    let loss_fn = CrossEntropyLossConfig::new().init(&ad_device);
    let mut epochs_since_best = state.history.len().saturating_sub(state.best_epoch);
    let epoch_bar = progress.epochs(config.epochs as u64, state.history.len() as u64, &checkpoints.name);
    let mut input = vec![0f32; config.batch_size * IMAGE_PIXELS];
    for epoch in state.history.len() + 1..=config.epochs {
        if epochs_since_best >= config.patience {
            break;
        }
        if config.cosine {
            let t = (epoch - 1) as f64 / config.epochs.max(2).saturating_sub(1) as f64;
            let floor = config.learning_rate / 20.0;
            state.learning_rate = floor + 0.5 * (config.learning_rate - floor) * (1.0 + (std::f64::consts::PI * t).cos());
        }
        let started = Instant::now();
        // Per-epoch seeds make a resumed run replay exactly what an uninterrupted one would.
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        ad_device.seed(config.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let batches = order.len().div_ceil(config.batch_size);
        let bar = progress.batches(batches as u64, epoch);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for chunk in order.chunks(config.batch_size) {
            let n = chunk.len();
            let mut labels = Vec::with_capacity(n);
            for (k, &i) in chunk.iter().enumerate() {
                let dst = &mut input[k * IMAGE_PIXELS..(k + 1) * IMAGE_PIXELS];
                match &config.augment {
                    Some(aug) => aug.apply(train.image(i), dst, &mut rng),
                    None => dst.iter_mut().zip(train.image(i)).for_each(|(d, &s)| *d = s as f32 / 255.0),
                }
                labels.push(train.labels[i] as i64);
            }
            let images = images_tensor(input[..n * IMAGE_PIXELS].to_vec(), &ad_device);
            let targets = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), &ad_device);
            let (next, loss, logits) = train_step(model, &mut optim, &loss_fn, images, targets, state.learning_rate);
            model = next;
            let predicted = logits.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
            correct += predicted.iter().zip(&labels).filter(|(p, l)| p == l).count();
            let batch_loss = loss.clone().into_scalar::<f32>() as f64;
            if !batch_loss.is_finite() {
                bail!("training diverged (loss is {batch_loss}) at epoch {epoch}; lower --lr");
            }
            loss_sum += batch_loss * n as f64;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        let eval = evaluate(&model.valid(), val, device, 500)?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            learning_rate: state.learning_rate,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: train.len() as f64 / train_seconds,
        };
        progress.note(&format!(
            "{} epoch {epoch:>2}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% | {:.0} img/s, {:.0}s",
            checkpoints.name,
            record.train_loss,
            100.0 * record.train_accuracy,
            record.val_loss,
            100.0 * record.val_accuracy,
            record.images_per_second,
            record.seconds
        ));
        let best_before = state.best_epoch;
        if record.val_loss < state.best_val_loss {
            state.best_val_loss = record.val_loss;
            state.best_epoch = epoch;
            epochs_since_best = 0;
        } else {
            epochs_since_best += 1;
            if config.lr_halve_after > 0 && epochs_since_best % config.lr_halve_after == 0 {
                state.learning_rate /= 2.0;
                progress.note(&format!(
                    "{}: no improvement for {epochs_since_best} epochs, learning rate now {:.2e}",
                    checkpoints.name, state.learning_rate
                ));
            }
        }
        state.history.push(record);
        save_epoch(checkpoints, &state, epoch, best_before, &model, &optim).with_context(|| {
            format!(
                "saving the {} checkpoint after epoch {epoch}; everything saved before this epoch is intact, \
                 and once this is fixed the same command with `--resume` continues from there",
                checkpoints.name
            )
        })?;
        epoch_bar.inc(1);
    }
    epoch_bar.finish_and_clear();
    state.finished = true;
    write_atomic(&checkpoints.state_path(), &serde_json::to_vec_pretty(&state)?)?;
    let network = load_network(arch, device, std::fs::read(checkpoints.best_path(state.best_epoch))?)?;
    Ok(PhaseResult {
        network,
        train_seconds: state.history.iter().map(|h| h.seconds).sum(),
        best_epoch: state.best_epoch,
        history: state.history,
        resumed_epochs,
    })
}

/// Model, optimizer and (when this epoch is the best so far) best weights go to
/// epoch-numbered files first; the state file that names them is replaced last, and only then
/// are the files it no longer names removed. A kill or a full disk at any moment leaves the
/// previous consistent checkpoint.
fn save_epoch(
    checkpoints: &Checkpoints,
    state: &PhaseState,
    epoch: usize,
    best_before: usize,
    model: &Network,
    optim: &burn::optim::ModuleOptimizer,
) -> Result<()> {
    let new_files =
        [checkpoints.best_path(epoch), checkpoints.path(&format!("e{epoch}.model")), checkpoints.path(&format!("e{epoch}.optim"))];
    let written = (|| -> Result<()> {
        if state.best_epoch == epoch {
            write_atomic(&new_files[0], &record_bytes(model.valid())?)?;
        }
        write_atomic(&new_files[1], &record_bytes(model.clone())?)?;
        let optim_bytes = optim.into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
        write_atomic(&new_files[2], &optim_bytes)?;
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
        for what in ["model", "optim"] {
            let _ = std::fs::remove_file(checkpoints.path(&format!("e{}.{what}", epoch - 1)));
        }
    }
    if best_before != state.best_epoch && best_before > 0 {
        let _ = std::fs::remove_file(checkpoints.best_path(best_before));
    }
    Ok(())
}

/// Logits for every image of `split`, in batches, as one flat `n × 10` vector.
pub fn logits(network: &Network, split: &LabelledImages, device: &Device, batch: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(split.len() * NUM_CLASSES);
    for start in (0..split.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(split.len());
        let pixels: Vec<f32> = split.pixels[start * IMAGE_PIXELS..end * IMAGE_PIXELS].iter().map(|&p| p as f32 / 255.0).collect();
        let batch_logits = network.forward(images_tensor(pixels, device));
        out.extend(batch_logits.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?);
    }
    Ok(out)
}

/// Accuracy, loss and per-class metrics of `network` on `split`.
pub fn evaluate(network: &Network, split: &LabelledImages, device: &Device, batch: usize) -> Result<Evaluation> {
    let logits = logits(network, split, device, batch)?;
    let mut loss = 0.0f64;
    let mut predicted = Vec::with_capacity(split.len());
    for (row, &label) in logits.chunks_exact(NUM_CLASSES).zip(&split.labels) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let log_sum = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
        loss += log_sum - row[label as usize] as f64;
        predicted.push(fashion_model::network::argmax(row) as u8);
    }
    Ok(Evaluation::from_predictions(&split.labels, &predicted, loss / split.len().max(1) as f64))
}
