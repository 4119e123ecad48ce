//! Teaching: the set of photos the user labelled, split into those the network learns from
//! and those held out to measure it, and a fine-tuning run as the page shows it (where it is,
//! its loss per step, whether the user asked to stop it, what it achieved).

use std::borrow::Borrow;

use fashion_model::{LabelledImages, finetune::Report};

use crate::CardResult;

/// Why fine-tuning cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeachError {
    #[error("Choose the right class under at least one photo first (“Teach”).")]
    NothingTaught,
    #[error("Every taught photo is held out: untick “held out” under at least one, so that there is something to learn from.")]
    AllHeldOut,
    #[error("A fine-tuning run is already going on; wait for it or cancel it.")]
    AlreadyRunning,
    #[error("Class “{0}” has no photo to learn from: teach it at least one photo (not held out), or remove the class.")]
    ClassWithoutPhotos(String),
}

/// What a card contributes to teaching: the class the user says it shows, and whether it is
/// held out (only measured on, never learnt from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taught {
    pub label: Option<u8>,
    pub held_out: bool,
}

/// The user's photos for fine-tuning, as bytes (the format of the replay and held-out sets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeachingSet {
    /// What the network learns from.
    pub train: LabelledImages,
    /// What measures it, before and after: photos it never learnt from.
    pub held_out: LabelledImages,
}

/// The teaching set: every answered card the user taught a class, split by its "held out"
/// mark. Cards still working, failed or not taught are left out; a set with nothing to learn
/// from is an error the user can act on.
pub fn teaching_set<R: Borrow<CardResult>>(cards: impl IntoIterator<Item = (Taught, R)>) -> Result<TeachingSet, TeachError> {
    let mut set = TeachingSet::default();
    for (taught, result) in cards {
        if let (Some(label), CardResult::Done(c)) = (taught.label, result.borrow()) {
            let part = if taught.held_out { &mut set.held_out } else { &mut set.train };
            part.push(&gray_levels(&c.pixels), label);
        }
    }
    match (set.train.is_empty(), set.held_out.is_empty()) {
        (true, true) => Err(TeachError::NothingTaught),
        (true, false) => Err(TeachError::AllHeldOut),
        _ => Ok(set),
    }
}

/// Accuracy on the user's held-out photos before and after a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOutScore {
    pub images: usize,
    pub before: f64,
    pub after: f64,
}

/// The share of `predicted` classes that match `labels`.
pub fn accuracy(predicted: &[usize], labels: &[u8]) -> f64 {
    let right = predicted.iter().zip(labels).filter(|&(&p, &l)| p == l as usize).count();
    right as f64 / labels.len().max(1) as f64
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
    Done {
        report: Report,
        /// On the user's held-out photos, when some are held out.
        held_out: Option<HeldOutScore>,
    },
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

    /// The run ended: a new model with its report and its score on the user's held-out photos,
    /// cancelled (`Ok(None)`), or failed.
    pub fn finish(&mut self, outcome: Result<Option<(Report, Option<HeldOutScore>)>, String>) {
        self.phase = match outcome {
            Ok(Some((report, held_out))) => FineTunePhase::Done { report, held_out },
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
        let set = teaching_set([(as_class(5), &taught), (Taught::default(), &untaught), (as_class(2), &failed), (as_class(3), &working)])
            .unwrap();
        assert_eq!(set.train.labels, [5]);
        assert!(set.held_out.is_empty());
        // 0.5 × 255 = 127.5 rounds to 128, as the trainer's sets store pixels.
        assert_eq!(set.train.pixels, vec![128; IMAGE_PIXELS]);
    }

    fn as_class(label: u8) -> Taught {
        Taught { label: Some(label), held_out: false }
    }

    fn held_out(label: u8) -> Taught {
        Taught { label: Some(label), held_out: true }
    }

    #[test]
    fn nothing_taught_is_an_error_that_says_what_to_do() {
        let error = teaching_set([(as_class(1), &CardResult::Working), (Taught::default(), &done(2, 0.1))]).unwrap_err();
        assert_eq!(error, TeachError::NothingTaught);
        assert!(error.to_string().contains("Teach"));
    }

    #[test]
    fn held_out_photos_are_measured_on_never_learnt_from() {
        let (a, b, c) = (done(1, 0.2), done(2, 0.4), done(3, 0.6));
        let set = teaching_set([(as_class(1), &a), (held_out(2), &b), (held_out(3), &c)]).unwrap();
        assert_eq!(set.train.labels, [1]);
        assert_eq!(set.held_out.labels, [2, 3]);
        // A held-out mark on an untaught card means nothing.
        let set = teaching_set([(as_class(1), &a), (Taught { label: None, held_out: true }, &b)]).unwrap();
        assert!(set.held_out.is_empty());
        let error = teaching_set([(held_out(2), &b)]).unwrap_err();
        assert_eq!(error, TeachError::AllHeldOut);
        assert!(error.to_string().contains("held out"));
        assert_eq!(accuracy(&[2, 3, 3], &[2, 3, 4]), 2.0 / 3.0);
        assert_eq!(accuracy(&[], &[]), 0.0);
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
        let score = HeldOutScore { images: 4, before: 0.25, after: 0.75 };
        run.finish(Ok(Some((report(), Some(score)))));
        assert_eq!(run.phase, FineTunePhase::Done { report: report(), held_out: Some(score) });
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
