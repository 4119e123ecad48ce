//! Checkpoints: what a phase keeps on disk after every epoch, so that a crash or Ctrl-C loses
//! at most the epoch in progress, and how `--resume` picks a run up again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::{prelude::*, store::ModuleRecord, tensor::Bytes};
use fashion_model::{Architecture, LabelledImages, Network};
use serde::{Deserialize, Serialize};

use super::{TrainConfig, epoch::EpochRecord, stepper::Stepper};
use crate::{
    average::{AveragedEpochs, WeightAverage},
    fsutil::write_atomic,
};

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
    pub(super) name: String,
}

impl Checkpoints {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self { dir: dir.to_path_buf(), name: name.to_string() }
    }
    pub(super) fn path(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}-{what}", self.name))
    }
    /// Each best model gets its own file, named by epoch in the state file, so the state and
    /// the best weights it names are always replaced together.
    pub(super) fn best_path(&self, epoch: usize) -> PathBuf {
        self.path(&format!("best-e{epoch}.bpk"))
    }
    pub(super) fn state_path(&self) -> PathBuf {
        self.path("state.json")
    }
    pub(super) fn averaged_path(&self) -> PathBuf {
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

pub(super) fn record_bytes(network: Network) -> Result<Vec<u8>> {
    Ok(network.into_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec())
}

pub(super) fn load_network(arch: &Architecture, device: &Device, bytes: Vec<u8>) -> Result<Network> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| anyhow::anyhow!("{e}"))?;
    arch.init(device).try_load_record(record).map_err(|e| anyhow::anyhow!("{e}"))
}

/// What survives a restart: written after every epoch, atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PhaseState {
    /// The run this checkpoint belongs to; a mismatch refuses `--resume`.
    pub(super) fingerprint: String,
    pub(super) history: Vec<EpochRecord>,
    pub(super) best_epoch: usize,
    /// Infinite until an epoch competes (the calm finish's first): kept as `null`.
    #[serde(with = "infinite_as_null")]
    pub(super) best_val_loss: f64,
    pub(super) learning_rate: f64,
    pub(super) finished: bool,
    /// Optimiser steps folded into the weight average so far.
    #[serde(default)]
    pub(super) average_updates: u64,
    /// Every average of the last epochs validated after the run (`TrainConfig::average_epochs`).
    #[serde(default)]
    pub(super) averages: Vec<AveragedEpochs>,
    /// The one that replaced the best epoch's weights (saved as `averaged.model`), if any did.
    #[serde(default)]
    pub(super) average_chosen: Option<AveragedEpochs>,
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

/// A phase being trained: what runs the steps, the weight average and the state that the
/// checkpoint keeps.
pub(super) struct RunInProgress {
    pub(super) stepper: Stepper,
    pub(super) average: Option<WeightAverage>,
    pub(super) state: PhaseState,
}

impl RunInProgress {
    pub(super) fn new(arch: &Architecture, config: &TrainConfig, train: &LabelledImages, ad_device: &Device) -> Result<Self> {
        let model = arch.init(ad_device);
        Ok(Self {
            average: config.weight_average.map(|decay| WeightAverage::new(&model, decay)),
            stepper: Stepper::new(arch, config, model)?,
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

/// A phase whose checkpoint says it is done.
pub(super) struct FinishedPhase {
    pub(super) state: PhaseState,
    pub(super) resumed_epochs: usize,
}

impl FinishedPhase {
    /// Loads the best epoch's weights (early stopping's "best weights restored"), or the
    /// average of the last epochs where one validated better.
    pub(super) fn into_phase(self, arch: &Architecture, device: &Device, checkpoints: &Checkpoints) -> Result<PhaseResult> {
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

pub(super) enum Resumed {
    Finished(FinishedPhase),
    Running(RunInProgress),
}

impl Checkpoints {
    /// The saved run, if any; an error when it belongs to other settings or is damaged.
    pub(super) fn load(
        &self,
        arch: &Architecture,
        config: &TrainConfig,
        train: &LabelledImages,
        ad_device: &Device,
    ) -> Result<Option<Resumed>> {
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
            run.stepper = Stepper::new(arch, config, model)?;
            match &mut run.stepper {
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

/// Saves epoch `epoch`. Model, optimizer and (when this epoch is the best so far) best weights go to
/// epoch-numbered files first; the state file that names them is replaced last, and only then
/// are the files it no longer names removed. A kill or a full disk at any moment leaves the
/// previous consistent checkpoint.
///
/// `live` is the network as trained so far, the one this epoch validated.
/// The weights of epochs from `keep_from` on stay, for the averages after the run.
pub(super) fn save_epoch(
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
        write_atomic(&new_files[2], &run.stepper.optimizer_state()?)?;
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
