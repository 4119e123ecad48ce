//! burn in the browser tab: which device runs the models ([`engine::Backend`]), the loaded
//! weights files, classification and the "Why?" heatmap ([`engine::Engine`]), fine-tuning runs
//! ([`finetune`]) and what the page benchmark measures ([`bench`]).
//!
//! The page (`fashion-web`) runs this on burn's CPU backend; the engine module
//! (`crates/engine-module`), built with the `webgpu` feature, runs the same code on burn-wgpu
//! as a second module the page loads after its first answer. Everything else (photos, the
//! gallery, storage) is the page's.

pub mod bench;
pub mod engine;
pub mod error;
pub mod finetune;
pub mod js;

pub use engine::{Backend, BackendKind, Engine, Model};
pub use error::EngineError;
pub use fashion_model::verdict::Scores;
