//! The training loop shared by every network, in named pieces:
//! - the recipe ([`TrainConfig`]): Adam or AdamW, a learning-rate [`Schedule`], which code runs
//!   the steps ([`StepCode`]: burn's autodiff, or the hand-written kernels for the compact CNN
//!   on the CPU);
//! - [`epoch`]: one epoch's shuffled, optionally augmented batches and their steps;
//! - [`EarlyStopping`] on validation loss, with the best weights restored;
//! - [`checkpoint`]: a checkpoint after every epoch, so that a crash or Ctrl-C loses at most the
//!   epoch in progress, and `--resume`;
//! - [`averages`]: the averages of the last epochs' weights after the run.
//!
//! [`Phase::train`] runs them in order. burn's `Learner` would give most of this, but its
//! checkpoints do not hold our early-stopping state, the epochs' weights for averaging, or the
//! hand-written kernels' optimizer state.

mod averages;
mod checkpoint;
mod config;
mod epoch;
mod stepper;
mod stopping;

use anyhow::{Context, Result};
use burn::prelude::*;
use fashion_model::{Architecture, LabelledImages};

pub use checkpoint::{Checkpoints, PhaseResult};
use checkpoint::{FinishedPhase, Resumed, RunInProgress, save_epoch};
pub use config::{Schedule, StepCode, TrainConfig, learning_rate};
pub use epoch::EpochRecord;
use epoch::{Epochs, Trained};
pub use stopping::EarlyStopping;

use crate::{average::WeightAverage, fsutil::write_atomic, metrics::evaluate, photographed::Photographed, progress::Progress};

/// One phase of a run ("baseline" or "cnn"): a network, its data and its recipe.
pub struct Phase<'a> {
    pub arch: &'a Architecture,
    pub train: &'a LabelledImages,
    /// Early stopping and the averages are judged on this.
    pub val: &'a LabelledImages,
    pub config: &'a TrainConfig,
    /// Photographs of training items; used where the recipe's `surface_photos` is above 0.
    pub photos: Option<&'a Photographed>,
    /// Where validation runs; the steps run on its autodiff twin or on the kernels.
    pub device: &'a Device,
}

impl Phase<'_> {
    /// Trains the network, checkpointing every epoch into `checkpoints`; with `resume`, goes
    /// on from what they hold.
    pub fn train(&self, checkpoints: &Checkpoints, resume: bool, progress: &Progress) -> Result<PhaseResult> {
        let Self { arch, train, config, photos, device, .. } = *self;
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
        let mut epochs = Epochs::new(config, train, photos, &ad_device);
        let bar = progress.phase(&checkpoints.name, config.epochs, resumed_epochs, epochs.steps_per_epoch());
        for epoch in resumed_epochs + 1..=config.epochs {
            if stopping.should_stop() {
                break;
            }
            let trained = epochs.train(epoch, &mut run.stepper, &mut run.average, run.state.learning_rate, &bar)?;
            let (record, live) = self.validate(epoch, trained, &run)?;
            progress.note(&record.line(&checkpoints.name));
            let best_before = stopping.best_epoch;
            if !stopping.observe(epoch, record.val_loss) && stopping.plateau_of(config.lr_halve_after) {
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
        bar.finish_and_clear();
        if let Some(from) = config.average_from() {
            let averages = averages::AfterRunAverages { arch, train, val: self.val, batch_size: config.batch_size, device };
            averages.run(checkpoints, from, &mut run.state, progress)?;
        }
        run.state.finished = true;
        write_atomic(&checkpoints.state_path(), &serde_json::to_vec_pretty(&run.state)?)?;
        FinishedPhase { state: run.state, resumed_epochs }.into_phase(arch, device, checkpoints)
    }

    /// Validates the network after epoch `epoch`'s steps (the moving average where there is
    /// one); returns the epoch's record and the network as trained.
    fn validate(&self, epoch: usize, trained: Trained, run: &RunInProgress) -> Result<(EpochRecord, fashion_model::Network)> {
        let steps_seconds = trained.started.elapsed().as_secs_f64();
        let live = run.stepper.network(self.device)?;
        let (eval, live_val_accuracy) = match &run.average {
            Some(average) => {
                (evaluate(average.network(), self.val, self.device, 500)?, Some(evaluate(&live, self.val, self.device, 500)?.accuracy))
            }
            None => (evaluate(&live, self.val, self.device, 500)?, None),
        };
        let record = EpochRecord {
            epoch,
            train_loss: trained.train_loss,
            train_accuracy: trained.train_accuracy,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            learning_rate: trained.learning_rate,
            seconds: trained.started.elapsed().as_secs_f64(),
            images_per_second: self.train.len() as f64 / steps_seconds,
            live_val_accuracy,
        };
        Ok((record, live))
    }
}
