//! The trainer as a library, so integration tests and benchmarks reach the same code as the
//! `trainer` binary.

pub use fashion_model::augment;
pub mod average;
pub mod backend;
pub mod bench;
pub mod calibrate;
pub mod convert;
pub mod data;
pub mod export;
pub mod finetune_sets;
pub mod fsutil;
pub mod kernels;
pub mod metrics;
pub mod photographed;
pub mod predict;
pub mod progress;
pub mod report;
pub mod robustness;
pub mod study;
#[cfg(feature = "suite")]
pub mod suite;
pub mod training;

pub use cli::CommonArgs;
pub mod cli;
