//! Everything the trainer and the page share: the classes, the networks, the
//! photo → 28×28 preprocessing, the weights file format, the sample sets shipped with the
//! page, augmentation and the training step (fine-tuning included).
//!
//! The crate compiles for native targets and for `wasm32-unknown-unknown`; it never touches
//! the file system, so the page can feed it bytes from an upload or a fetch.

pub mod augment;
mod blocks;
pub mod calibration;
pub mod classes;
pub mod compact;
pub mod direct;
pub mod explain;
pub mod finetune;
pub mod framing;
pub mod head;
pub mod labelled;
pub mod lanes;
pub mod network;
pub mod onnx;
pub mod plan;
pub mod preprocess;
mod surface;
pub mod verdict;
pub mod weights;
pub mod winograd;

pub use classes::{CLASS_NAMES, NUM_CLASSES};
pub use compact::CompactConfig;
pub use framing::{CropBox, FramedPhoto, Framing, preprocess_framed, preprocess_framed_image};
pub use labelled::{LabelledImages, SamplesError};
pub use network::{Architecture, CnnConfig, Network};
pub use plan::Block;
pub use preprocess::{DecodeLimits, PreprocessError, Preprocessed, preprocess_bytes, preprocess_image};
pub use weights::{Precision, TrainingSummary, WeightsError, WeightsFile};

/// Side length of a Fashion-MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in one model input (28 × 28).
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
