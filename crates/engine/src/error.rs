//! What can go wrong in the engine, as a type: the page decides from the kind whether the
//! device is still usable (only a device failure moves classification off WebGPU).

use fashion_model::WeightsError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The device stopped working (a lost or reset GPU, out of memory): nothing more can run
    /// on it.
    #[error("the device failed: {0}")]
    Device(String),
    /// The network's output could not be read as logits.
    #[error("unexpected model output: {0}")]
    Output(String),
    /// A weights file could not be read or written.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A fine-tuning run's loss stopped being a number.
    #[error("training diverged at step {step} (loss {loss}); lower the learning rate")]
    Diverged { step: usize, loss: f32 },
    /// The classes to fine-tune into do not fit the model or the photos.
    #[error("{0}")]
    Classes(String),
    /// The photo of a benchmark could not be read.
    #[error("{0}")]
    Photo(String),
}

impl EngineError {
    /// A device failure from burn's error, told in its first line (the rest is a chain of
    /// causes and a backtrace notice, not for the page's badge).
    pub fn device(e: impl std::fmt::Debug) -> Self {
        let full = format!("{e:?}");
        EngineError::Device(full.lines().next().unwrap_or_default().trim().to_string())
    }

    /// Whether the device is gone, so that the models must move elsewhere.
    pub fn is_device_failure(&self) -> bool {
        matches!(self, EngineError::Device(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats like burn's execution errors: the message, then its causes.
    struct Poisoned;

    impl std::fmt::Debug for Poisoned {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("The device is poisoned\nCaused by:\n  Destroyed: Device was destroyed.\nBacktrace:\nNo backtrace available")
        }
    }

    #[test]
    fn a_device_failure_is_told_in_one_line_and_only_it_counts_as_one() {
        let e = EngineError::device(Poisoned);
        assert_eq!(e.to_string(), "the device failed: The device is poisoned");
        assert!(e.is_device_failure());
        assert!(!EngineError::Diverged { step: 3, loss: f32::NAN }.is_device_failure());
        assert!(!EngineError::Output("shape".into()).is_device_failure());
    }
}
