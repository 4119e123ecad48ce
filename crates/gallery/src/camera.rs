//! The live camera as the page shows it: whether it is starting, live, stopped or failed (and
//! why, in a user's words), how many answers per second the backend gives, and when the next
//! frame is due while the user holds "Record". Times are the page's clock in milliseconds.

use std::collections::VecDeque;

/// Frames recorded per second while "Record" is held: a few a second give varied examples
/// (the garment moves, the light changes) without hundreds of near-copies.
pub const RECORD_PER_SECOND: f64 = 3.0;

/// The guide square's side, as a fraction of the video's shorter side, centred: the network is
/// shown what lies inside it, and the page draws it over the video.
pub const GUIDE_FRACTION: f64 = 0.8;

/// The guide square on a `width × height` video: left, top and side in video pixels.
pub fn guide_square(width: u32, height: u32) -> (f64, f64, f64) {
    let side = GUIDE_FRACTION * f64::from(width.min(height));
    ((f64::from(width) - side) / 2.0, (f64::from(height) - side) / 2.0, side)
}

/// Why the camera is not running, as the page says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    #[error(
        "The camera was not allowed. Allow it in the browser's site settings (the icon left of the address), then press Start camera again."
    )]
    Refused,
    #[error("No camera was found. Plug one in, or upload photos instead.")]
    NoCamera,
    #[error("The camera is in use by another application or tab, or did not start. Close the other one, then press Start camera again.")]
    Busy,
    #[error("The camera stopped (unplugged or switched off). Press Start camera to go on.")]
    Ended,
    #[error(
        "This browser offers no camera to this page (it needs a secure https:// page and a browser with camera access). Upload photos instead."
    )]
    Unsupported,
    #[error("The camera could not start: {0}")]
    Other(String),
}

impl CameraError {
    /// The error `getUserMedia` rejected with, by its `DOMException` name.
    pub fn from_dom(name: &str, message: &str) -> Self {
        match name {
            "NotAllowedError" | "PermissionDeniedError" | "SecurityError" => Self::Refused,
            "NotFoundError" | "DevicesNotFoundError" | "OverconstrainedError" => Self::NoCamera,
            "NotReadableError" | "TrackStartError" | "AbortError" => Self::Busy,
            "TypeError" | "NotSupportedError" => Self::Unsupported,
            _ if message.is_empty() => Self::Other(name.to_string()),
            _ => Self::Other(format!("{name}: {message}")),
        }
    }
}

/// Where the camera is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CameraPhase {
    #[default]
    Off,
    /// Asked the browser (and maybe the user) for the camera.
    Starting,
    Live,
    Failed(CameraError),
}

/// Why recording cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("Choose the class to record first (“Record as”).")]
    NoClass,
    #[error("Start the camera first.")]
    NotLive,
}

/// The camera panel's state. Each start opens a new session; a frame loop or a late answer of
/// an older session sees that it is stale and stops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Camera {
    pub phase: CameraPhase,
    session: u64,
    /// When the last second's answers came.
    answers: VecDeque<f64>,
    /// The class being recorded while "Record" is held, and when its next frame is due.
    recording: Option<(u8, f64)>,
    /// Frames recorded since the camera started.
    pub recorded: usize,
    /// Answers in the second before the last one: at most the camera's frame rate.
    pub rate: usize,
    /// Milliseconds of work per answer (cutting the frame, preprocessing, classifying),
    /// averaged over the last few: 1000 / this is the rate the backend allows.
    pub work_ms: f64,
}

impl Camera {
    /// Asks for the camera: the new session's number, or `None` while one is starting or live.
    pub fn start(&mut self) -> Option<u64> {
        if matches!(self.phase, CameraPhase::Starting | CameraPhase::Live) {
            return None;
        }
        self.session += 1;
        self.phase = CameraPhase::Starting;
        self.answers.clear();
        self.rate = 0;
        self.work_ms = 0.0;
        self.recording = None;
        self.recorded = 0;
        Some(self.session)
    }

    /// The browser gave the camera to `session`; false if that session is over (stopped
    /// meanwhile), and the stream is then to be closed.
    pub fn started(&mut self, session: u64) -> bool {
        if !self.is_current(session) || self.phase != CameraPhase::Starting {
            return false;
        }
        self.phase = CameraPhase::Live;
        true
    }

    /// `session` failed (refused, no camera, unplugged mid-stream); an older session's failure
    /// is ignored.
    pub fn failed(&mut self, session: u64, error: CameraError) {
        if self.is_current(session) && self.phase != CameraPhase::Off {
            self.phase = CameraPhase::Failed(error);
            self.recording = None;
        }
    }

    /// The user stopped the camera: the session ends.
    pub fn stop(&mut self) {
        self.phase = CameraPhase::Off;
        self.session += 1;
        self.recording = None;
        self.answers.clear();
    }

    pub fn is_current(&self, session: u64) -> bool {
        self.session == session
    }

    /// Whether `session` is the live one: its frame loop goes on while this holds.
    pub fn is_live(&self, session: u64) -> bool {
        self.is_current(session) && self.phase == CameraPhase::Live
    }

    /// An answer came at `now`, after `work_ms` of work.
    pub fn answered(&mut self, now: f64, work_ms: f64) {
        // A moving average over about ten answers: steady to read, quick to follow a change
        // of backend.
        self.work_ms = if self.work_ms == 0.0 { work_ms } else { 0.9 * self.work_ms + 0.1 * work_ms };
        self.answers.push_back(now);
        while self.answers.front().is_some_and(|&t| t <= now - 1000.0) {
            self.answers.pop_front();
        }
        self.rate = self.answers.len();
    }

    /// Answers in the second before `now`.
    pub fn answers_per_second(&self, now: f64) -> usize {
        self.answers.iter().filter(|&&t| t > now - 1000.0).count()
    }

    /// The user pressed "Record" with `class` chosen (`None`: none chosen yet).
    pub fn hold(&mut self, class: Option<u8>, now: f64) -> Result<(), RecordError> {
        if self.phase != CameraPhase::Live {
            return Err(RecordError::NotLive);
        }
        let class = class.ok_or(RecordError::NoClass)?;
        self.recording = Some((class, now));
        Ok(())
    }

    /// The user let go of "Record".
    pub fn release(&mut self) {
        self.recording = None;
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The class to record the current frame as, if a frame is due at `now` (the first at once
    /// on pressing, then [`RECORD_PER_SECOND`]); the frame is counted as recorded.
    pub fn record_due(&mut self, now: f64) -> Option<u8> {
        let (class, due) = self.recording.as_mut()?;
        if now < *due {
            return None;
        }
        *due = now.max(*due) + 1000.0 / RECORD_PER_SECOND;
        self.recorded += 1;
        Some(*class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_is_centred_on_the_shorter_side() {
        assert_eq!(guide_square(640, 480), (128.0, 48.0, 384.0));
        let (left, top, side) = guide_square(720, 1280);
        assert_eq!((left, side), (72.0, 576.0));
        assert_eq!(top, (1280.0 - 576.0) / 2.0);
    }

    #[test]
    fn a_session_goes_from_starting_to_live_to_off() {
        let mut camera = Camera::default();
        let session = camera.start().unwrap();
        assert_eq!(camera.start(), None, "a second start while starting is ignored");
        assert!(!camera.is_live(session));
        assert!(camera.started(session));
        assert!(camera.is_live(session));
        camera.stop();
        assert_eq!(camera.phase, CameraPhase::Off);
        assert!(!camera.is_live(session), "the frame loop of a stopped session ends");
    }

    #[test]
    fn a_camera_granted_after_stop_is_not_taken() {
        let mut camera = Camera::default();
        let session = camera.start().unwrap();
        camera.stop();
        assert!(!camera.started(session), "the stream that arrives late is to be closed");
        assert_eq!(camera.phase, CameraPhase::Off);
        let next = camera.start().unwrap();
        assert_ne!(next, session);
        camera.failed(session, CameraError::Ended);
        assert_eq!(camera.phase, CameraPhase::Starting, "an old session's failure changes nothing");
    }

    #[test]
    fn failures_are_worded_for_the_user_and_a_new_start_is_allowed() {
        let mut camera = Camera::default();
        let session = camera.start().unwrap();
        camera.failed(session, CameraError::from_dom("NotAllowedError", "Permission denied"));
        assert_eq!(camera.phase, CameraPhase::Failed(CameraError::Refused));
        assert!(CameraError::Refused.to_string().contains("Allow it"));
        assert_eq!(CameraError::from_dom("NotFoundError", ""), CameraError::NoCamera);
        assert_eq!(CameraError::from_dom("NotReadableError", "Could not start video source"), CameraError::Busy);
        assert_eq!(CameraError::from_dom("Weird", "it broke"), CameraError::Other("Weird: it broke".into()));
        assert!(camera.start().is_some(), "after a failure the user may try again");
    }

    #[test]
    fn answers_per_second_count_the_last_second() {
        let mut camera = Camera::default();
        for i in 0..40 {
            camera.answered(i as f64 * 50.0, 8.0);
        }
        assert_eq!(camera.work_ms, 8.0);
        camera.answered(2000.0, 18.0);
        assert!((camera.work_ms - 9.0).abs() < 1e-9, "the work time follows slowly: {}", camera.work_ms);
        // The 20 answers at 1,000 … 1,950 ms are within the second before 1,950.
        assert_eq!(camera.answers_per_second(1950.0), 20);
        assert_eq!(camera.answers_per_second(2000.0), 20, "the one at 1,000 ms left, the one at 2,000 came");
        assert_eq!(camera.answers_per_second(5000.0), 0, "no answers for a while: zero, not the old rate");
    }

    #[test]
    fn recording_needs_a_live_camera_and_a_class_and_takes_a_few_frames_a_second() {
        let mut camera = Camera::default();
        assert_eq!(camera.hold(Some(3), 0.0), Err(RecordError::NotLive));
        let session = camera.start().unwrap();
        camera.started(session);
        assert_eq!(camera.hold(None, 0.0), Err(RecordError::NoClass));
        camera.hold(Some(3), 1000.0).unwrap();
        // Frames every 16 ms for two seconds: the first at once, then three a second.
        let recorded: Vec<f64> = (0..125).map(|i| 1000.0 + i as f64 * 16.0).filter(|&t| camera.record_due(t).is_some()).collect();
        assert_eq!(recorded.len(), 6, "{recorded:?}");
        assert_eq!(recorded[0], 1000.0);
        assert_eq!(camera.recorded, 6);
        camera.release();
        assert_eq!(camera.record_due(5000.0), None);
        camera.stop();
        assert!(!camera.is_recording());
    }
}
