//! burn in the browser tab: which device runs the models ([`engine::Backend`]), the loaded
//! weights files, classification and the "Why?" heatmap ([`engine::Engine`]), fine-tuning runs
//! ([`tuning`]) and the benchmark hooks' measurements ([`bench`]).
//!
//! The page (`fashion-web`) runs this on burn's CPU backend; `src/bin/gpu.rs`, built with the
//! `webgpu` feature, runs the same code on burn-wgpu as a second module the page loads after
//! its first answer. Everything else (photos, the gallery, storage) is the page's.

pub mod bench;
pub mod engine;
pub mod error;
pub mod js;
pub mod tuning;

pub use engine::{Backend, BackendKind, Engine, Model, Scores};
pub use error::EngineError;
