//! The averages of a run's last epochs, made and validated once its epochs are done.

use anyhow::{Context, Result};
use burn::prelude::*;
use fashion_model::{Architecture, IMAGE_PIXELS, LabelledImages};

use super::checkpoint::{Checkpoints, PhaseState, load_network, record_bytes};
use crate::{average::average_last_epochs, fsutil::write_atomic, progress::Progress};

/// Training images the averages' batch norm is re-estimated on: plain (the network meets
/// plain images in validation, testing and the page), and 20,000 are plenty for 128
/// channels' means and variances.
const RECALIBRATION_IMAGES: usize = 20_000;

/// The averages of the last epochs' weights after a run: what they are made from and
/// judged on.
pub(super) struct AfterRunAverages<'a> {
    pub(super) arch: &'a Architecture,
    /// Batch norm is re-estimated on (the first [`RECALIBRATION_IMAGES`] of) these.
    pub(super) train: &'a LabelledImages,
    pub(super) val: &'a LabelledImages,
    pub(super) batch_size: usize,
    pub(super) device: &'a Device,
}

impl AfterRunAverages<'_> {
    /// Averages the last epochs' weights (from `from` on) once the epochs have run, validates
    /// every average and keeps the best in the checkpoint when it beats the best epoch. A run
    /// killed in here redoes it on `--resume`: the epochs' weights stay until it is done.
    pub(super) fn run(&self, checkpoints: &Checkpoints, from: usize, state: &mut PhaseState, progress: &Progress) -> Result<()> {
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
