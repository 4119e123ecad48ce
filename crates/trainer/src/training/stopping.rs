//! Early stopping on validation loss, restored from a checkpoint's history on `--resume`.

use super::{TrainConfig, epoch::EpochRecord};

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
    pub(super) fn restore(config: &TrainConfig, history: &[EpochRecord]) -> Self {
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

    /// Whether a plateau of `every` epochs (0: never) has just passed without a better one,
    /// for halving the learning rate: after `every`, `2 × every`… epochs since the best.
    pub fn plateau_of(&self, every: usize) -> bool {
        every > 0 && self.since_best > 0 && self.since_best.is_multiple_of(every)
    }

    pub fn should_stop(&self) -> bool {
        self.patience > 0 && self.since_best >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        augment::Augment,
        training::{Schedule, config::tests::config},
    };

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
