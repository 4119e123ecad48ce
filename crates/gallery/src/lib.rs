//! The page's domain model, as plain data with the operations the page performs on it: the
//! gallery of cards (newest first, bounded), each card's answer, the teaching set drawn from
//! the cards the user labelled, the classes (the ten and the user's own), where a fine-tuning run is, and the project file that saves
//! the teaching set with the model, and the live camera's state. No browser and no Leptos here,
//! so every rule is unit-tested natively with the rest of the workspace (the page crate builds
//! for wasm32 only). The page (`crates/web/src/state/`) wraps these values in signals and
//! performs the browser actions around them.

mod answer;
pub mod camera;
mod classes;
mod finetune;
mod gallery;
pub mod project;

pub use answer::{CardResult, Classified, describe};
pub use camera::{Camera, CameraError, CameraPhase, RecordError};
pub use classes::{ClassList, ModelChange};
pub use finetune::{FineTunePhase, FineTuneRun, HeldOutScore, Taught, TeachError, TeachingSet, accuracy, gray_levels, teaching_set};
pub use gallery::{Gallery, MAX_CARDS, MAX_TAUGHT};
