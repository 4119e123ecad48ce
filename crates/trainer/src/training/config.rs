//! A run's recipe ([`TrainConfig`]), its learning-rate [`Schedule`], and which code runs its
//! steps ([`StepCode`]).

use anyhow::{Result, bail};
use fashion_model::Architecture;
use serde::{Deserialize, Serialize};

use crate::augment::Augment;

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
    /// Which code runs the training steps. Named `engine` as in the `--engine` flag and in
    /// the checkpoints that runs already wrote.
    #[serde(default)]
    pub engine: StepCode,
    /// After the run, average the weights of the last k epochs for every k up to this many
    /// (within the final augmentation's epochs), re-estimate batch norm for each, and keep the
    /// average that validates best when it beats the best single epoch
    /// ([`crate::average::average_last_epochs`]; 0: off).
    #[serde(default)]
    pub average_epochs: usize,
    /// Share of the augmented images replaced by their item's photograph on a surface, as the
    /// page preprocesses it ([`crate::photographed`]; 0: none). When only some items have one,
    /// those show it more often. Left out of the JSON at 0, so the checkpoints of runs without
    /// it still resume.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub surface_photos: f32,
    /// The share of photographs in the calm finish, where it differs from `surface_photos`
    /// (the calm finish brings training back to the test images' look). Left out of the JSON
    /// when unset, for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calm_photos: Option<f32>,
}

fn is_zero(share: &f32) -> bool {
    *share == 0.0
}

/// Which code runs the training steps. Part of the checkpoint's fingerprint: the two keep
/// their optimizer state in different forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StepCode {
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

    /// The share of the augmented images that are surface photographs in `epoch` (1-based).
    pub fn photos_for(&self, epoch: usize) -> f32 {
        match self.calm_photos {
            Some(share) if self.calm_finish.is_some() && epoch >= self.final_augment_from() => share,
            _ => self.surface_photos,
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

impl StepCode {
    /// An error saying what to do when this code cannot train `arch` with `config`.
    pub fn check(self, arch: &Architecture, config: &TrainConfig) -> Result<()> {
        if self == StepCode::Kernels {
            if !matches!(arch, Architecture::Compact(_)) {
                bail!("the hand-written kernels train the compact CNN only; use --engine burn for the {}", arch.name());
            }
            if config.weight_average.is_some() {
                bail!("the moving weight average runs on burn's networks; use --engine burn with --weight-average");
            }
        }
        Ok(())
    }

    /// What the progress line and the report call it.
    pub fn describe(self) -> &'static str {
        match self {
            StepCode::Burn => "burn",
            StepCode::Kernels => "the hand-written CPU kernels",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config(schedule: Schedule) -> TrainConfig {
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
            engine: StepCode::Burn,
            average_epochs: 0,
            surface_photos: 0.0,
            calm_photos: None,
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
}
