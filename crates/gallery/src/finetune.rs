//! Teaching: the set of photos the user labelled, and a fine-tuning run as the page shows it
//! (where it is, its loss per step, whether the user asked to stop it).

use std::borrow::Borrow;

use fashion_model::{LabelledImages, finetune::Report};

use crate::CardResult;

/// Why fine-tuning cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeachError {
    #[error("Choose the right class under at least one photo first (“Teach”).")]
    NothingTaught,
    #[error("A fine-tuning run is already going on; wait for it or cancel it.")]
    AlreadyRunning,
}

/// The fine-tuning set: every answered card the user taught a class, its model input as
/// bytes (the format of the replay and held-out sets). Cards still working, failed or not
/// taught are left out; a set with nothing in it is an error the user can act on.
pub fn teaching_set<R: Borrow<CardResult>>(cards: impl IntoIterator<Item = (Option<u8>, R)>) -> Result<LabelledImages, TeachError> {
    let mut set = LabelledImages::default();
    for (teach, result) in cards {
        if let (Some(label), CardResult::Done(c)) = (teach, result.borrow()) {
            set.push(&gray_levels(&c.pixels), label);
        }
    }
    if set.is_empty() { Err(TeachError::NothingTaught) } else { Ok(set) }
}

/// A model input (0..=1) as the 8-bit gray levels of the teaching sets and the project file.
/// The preprocessing already quantises its output to 1/255, so nothing is lost.
pub fn gray_levels(pixels: &[f32]) -> Vec<u8> {
    pixels.iter().map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect()
}

/// Where fine-tuning is.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum FineTunePhase {
    #[default]
    Idle,
    Running {
        step: usize,
        steps: usize,
    },
    Done(Report),
    Cancelled,
    Failed(String),
}

/// A fine-tuning run as the page shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FineTuneRun {
    pub phase: FineTunePhase,
    /// The loss of every step so far, for the live chart.
    pub losses: Vec<f32>,
    cancel_requested: bool,
}

impl FineTuneRun {
    pub fn is_running(&self) -> bool {
        matches!(self.phase, FineTunePhase::Running { .. })
    }

    /// A new run of `steps` steps: the previous run's chart and cancel request are cleared.
    pub fn start(&mut self, steps: usize) -> Result<(), TeachError> {
        if self.is_running() {
            return Err(TeachError::AlreadyRunning);
        }
        *self = Self { phase: FineTunePhase::Running { step: 0, steps }, losses: Vec::new(), cancel_requested: false };
        Ok(())
    }

    /// Step `step` is done with `loss`. Ignored once the run has ended (a late message).
    pub fn step(&mut self, step: usize, loss: f32) {
        if let FineTunePhase::Running { steps, .. } = self.phase {
            self.phase = FineTunePhase::Running { step, steps };
            self.losses.push(loss);
        }
    }

    /// The user asks to stop; the run stops after its current step.
    pub fn cancel(&mut self) {
        self.cancel_requested |= self.is_running();
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested
    }

    /// The run ended: a new model and its report, cancelled (`Ok(None)`), or failed.
    pub fn finish(&mut self, outcome: Result<Option<Report>, String>) {
        self.phase = match outcome {
            Ok(Some(report)) => FineTunePhase::Done(report),
            Ok(None) => FineTunePhase::Cancelled,
            Err(why) => FineTunePhase::Failed(why),
        };
        self.cancel_requested = false;
    }

    /// The model went back to the shipped one: no run's report applies any more.
    pub fn forget(&mut self) {
        if !self.is_running() {
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use fashion_model::IMAGE_PIXELS;

    use super::*;
    use crate::answer::tests::done;

    fn report() -> Report {
        Report {
            heldout_images: 10,
            heldout_before: 0.9,
            heldout_after: 0.89,
            user_images: 2,
            user_before: 0.0,
            user_after: 1.0,
            steps: 3,
            seconds: 1.0,
            images_per_second: 96.0,
        }
    }

    #[test]
    fn the_teaching_set_holds_only_answered_taught_cards_as_bytes() {
        let (taught, untaught, failed, working) =
            (done(7, 0.5), done(1, 1.0), CardResult::Failed("unreadable".into()), CardResult::Working);
        let set = teaching_set([(Some(5), &taught), (None, &untaught), (Some(2), &failed), (Some(3), &working)]).unwrap();
        assert_eq!(set.labels, [5]);
        // 0.5 × 255 = 127.5 rounds to 128, as the trainer's sets store pixels.
        assert_eq!(set.pixels, vec![128; IMAGE_PIXELS]);
    }

    #[test]
    fn nothing_taught_is_an_error_that_says_what_to_do() {
        let error = teaching_set([(Some(1), &CardResult::Working), (None, &done(2, 0.1))]).unwrap_err();
        assert_eq!(error, TeachError::NothingTaught);
        assert!(error.to_string().contains("Teach"));
    }

    #[test]
    fn a_run_goes_from_start_through_steps_to_its_report() {
        let mut run = FineTuneRun::default();
        run.start(3).unwrap();
        run.step(1, 2.0);
        run.step(2, 1.5);
        assert_eq!(run.phase, FineTunePhase::Running { step: 2, steps: 3 });
        assert_eq!(run.losses, [2.0, 1.5]);
        assert_eq!(run.start(3), Err(TeachError::AlreadyRunning));
        run.finish(Ok(Some(report())));
        assert_eq!(run.phase, FineTunePhase::Done(report()));
        // A step reported after the end changes nothing.
        run.step(3, 1.0);
        assert_eq!(run.losses, [2.0, 1.5]);
        // The next run starts with an empty chart.
        run.start(5).unwrap();
        assert!(run.losses.is_empty());
    }

    #[test]
    fn cancelling_is_remembered_only_while_running_and_ends_as_cancelled() {
        let mut run = FineTuneRun::default();
        run.cancel();
        assert!(!run.cancel_requested());
        run.start(4).unwrap();
        run.cancel();
        assert!(run.cancel_requested());
        run.finish(Ok(None));
        assert_eq!(run.phase, FineTunePhase::Cancelled);
        assert!(!run.cancel_requested());
        run.start(4).unwrap();
        assert!(!run.cancel_requested());
    }

    #[test]
    fn a_failure_is_kept_for_the_user_and_a_reset_forgets_finished_runs_only() {
        let mut run = FineTuneRun::default();
        run.start(2).unwrap();
        run.forget();
        assert!(run.is_running());
        run.finish(Err("diverged".into()));
        assert_eq!(run.phase, FineTunePhase::Failed("diverged".into()));
        run.forget();
        assert_eq!(run, FineTuneRun::default());
    }
}
