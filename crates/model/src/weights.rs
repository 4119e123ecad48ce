//! The weights file: one versioned, checksummed file holding the architecture, the class
//! names, the parameters and the training summary.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `FMNISTW\0` |
//! | 4 | format version (`FORMAT_VERSION`) |
//! | 4 | header length `h` |
//! | h | header, JSON ([`Header`]) |
//! | 8 | parameter block length `p` |
//! | p | parameters, burn's burnpack format (f32 or, from version 3, f16 tensors: [`Precision`]) |
//! | 4 | CRC-32 of everything above |
//!
//! The same bytes are written by the trainer, downloaded from the page after fine-tuning and
//! loaded from a `fetch` in the browser, so everything here works on bytes, not paths.

use burn::{
    module::Module,
    store::ModuleRecord,
    tensor::{Bytes, DType, Device},
};
use serde::{Deserialize, Serialize};

use crate::{
    NUM_CLASSES,
    classes::{self, ClassNameError},
    network::{Architecture, Network},
    verdict::UnsureRule,
};

const MAGIC: &[u8; 8] = b"FMNISTW\0";
/// Bump when the layout or the meaning of a field changes; files of versions this build does
/// not know are refused with [`WeightsError::UnsupportedVersion`] rather than misread.
///
/// - 1: the report's CNN layout (with or without batch norm) and logistic regression;
/// - 2: adds the compact CNN (`"kind": "compact"`) and the calibration temperature. Version 1
///   files are a subset and still load; builds that know only version 1 refuse version 2
///   files by their version number instead of failing on an unknown architecture.
/// - 3: parameters may be stored in half precision ([`Precision::F16`]), widened to f32 when
///   read. Older builds would misread such tensors, so they refuse version 3 by number.
/// - 4: the class list may go on after the ten Fashion-MNIST classes with the user's own
///   (fine-tuned in the tab); the output layer has one row per class. Older builds would
///   refuse such a file for its class count anyway; the number says why.
/// - 5: the compact CNN's stages may hold residual blocks (`{"residual": width}`, see
///   [`crate::plan::Block`]). Older builds would fail on the block; the number says why.
pub const FORMAT_VERSION: u32 = 5;
/// The oldest version this build still reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Conventional file extension.
pub const EXTENSION: &str = "fmw";

/// How the parameters are stored in the file. Computation is always in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Exactly as trained: for checkpoints of the user's own work (fine-tuned downloads).
    F32,
    /// Half the bytes: what the page downloads. Rounding to f16 (11 significant bits) moves
    /// the shipped CNN's logits by about 1e-3 and its test accuracy by at most a few hundredths
    /// of a point (README, "Weights file"); values beyond f16's range are refused when writing.
    F16,
}

/// What went wrong reading a weights file. Every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(
        "not a weights file (it does not start with the FMNISTW signature); expected a .fmw file written by `trainer` or downloaded from the page"
    )]
    NotAWeightsFile,
    #[error(
        "weights file format version {found} is not supported (this build reads versions 1 to {supported}); re-export it with a matching trainer or update this app"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("weights file is truncated ({0}); the download or copy was cut short, fetch it again")]
    Truncated(&'static str),
    #[error("weights file is corrupt (checksum mismatch); fetch or copy it again")]
    Checksum,
    #[error("weights file header is unreadable: {0}")]
    Header(String),
    #[error("weights file holds a {found} but a {expected} was expected")]
    WrongArchitecture { expected: String, found: String },
    #[error("weights file's class list is unusable: {0}")]
    Classes(ClassNameError),
    #[error(
        "weights file has {found} classes where only the ten Fashion-MNIST classes fit (the logistic-regression baseline knows only those)"
    )]
    OnlyTheTen { found: usize },
    #[error("weights do not fit the {architecture} they claim to be: {detail}")]
    Mismatch { architecture: String, detail: String },
    #[error("weights file contains non-finite values (NaN or infinity) in `{0}`; the training run that wrote it diverged")]
    NonFinite(String),
    #[error("could not serialise the weights: {0}")]
    Encode(String),
    #[error("parameter `{0}` has values beyond half precision's range (±65504); store these weights in f32")]
    OutOfHalfRange(String),
}

/// What the trainer (or the page, after fine-tuning) knows about how the weights were made.
/// Every field is optional so that older or partial files stay readable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingSummary {
    /// Accuracy on the 10,000 Fashion-MNIST test images, 0..1.
    pub test_accuracy: Option<f64>,
    /// Accuracy on the validation split, 0..1, of the restored (best) epoch.
    pub val_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    /// Epoch whose weights these are (1-based).
    pub best_epoch: Option<usize>,
    pub epochs_run: Option<usize>,
    pub train_images: Option<usize>,
    pub train_seconds: Option<f64>,
    pub backend: Option<String>,
    /// Set by the page when the user fine-tuned these weights on their own photos.
    pub fine_tuned: Option<bool>,
    pub note: Option<String>,
    /// Softmax temperature fitted on the validation split ([`crate::calibration`]); absent
    /// means 1 (uncalibrated, as in version 1 files).
    pub temperature: Option<f32>,
    /// Expected calibration error on the test set before and after temperature scaling.
    pub test_ece: Option<(f64, f64)>,
    /// When an answer is "not sure" ([`crate::verdict`]); fitted on the validation split.
    pub unsure: Option<UnsureRule>,
}

impl TrainingSummary {
    /// The calibration temperature to divide logits by: 1 when absent or not a positive number.
    pub fn softmax_temperature(&self) -> f32 {
        self.temperature.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(1.0)
    }

    /// The "not sure" rule: the fitted one, else the confidence threshold alone.
    pub fn unsure_rule(&self) -> UnsureRule {
        self.unsure.unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    architecture: Architecture,
    classes: Vec<String>,
    #[serde(default)]
    summary: TrainingSummary,
}

/// A decoded weights file: the network, ready on its device, and what it says about itself.
#[derive(Debug)]
pub struct WeightsFile {
    pub architecture: Architecture,
    pub classes: Vec<String>,
    pub summary: TrainingSummary,
    pub network: Network,
}

impl WeightsFile {
    /// Serialises a network of the ten Fashion-MNIST classes. The network is consumed (burn
    /// records take ownership); clone it first to keep using it.
    pub fn encode(
        architecture: &Architecture,
        summary: &TrainingSummary,
        network: Network,
        precision: Precision,
    ) -> Result<Vec<u8>, WeightsError> {
        Self::encode_with_classes(architecture, &classes::fashion_names(), summary, network, precision)
    }

    /// Serialises a network whose output rows are the classes `class_names`, in label order
    /// (the ten, then the user's own).
    pub fn encode_with_classes(
        architecture: &Architecture,
        class_names: &[String],
        summary: &TrainingSummary,
        network: Network,
        precision: Precision,
    ) -> Result<Vec<u8>, WeightsError> {
        classes::check_names(class_names).map_err(WeightsError::Classes)?;
        if network.classes() != class_names.len() {
            return Err(WeightsError::Mismatch {
                architecture: architecture.name().into(),
                detail: format!("{} class names for an output layer of {}", class_names.len(), network.classes()),
            });
        }
        let header = Header { architecture: architecture.clone(), classes: class_names.to_vec(), summary: summary.clone() };
        let header = serde_json::to_vec(&header).map_err(|e| WeightsError::Encode(e.to_string()))?;
        let params = network.into_record().into_bytes().map_err(|e| WeightsError::Encode(e.to_string()))?;
        let params = match precision {
            Precision::F32 => params.to_vec(),
            Precision::F16 => convert_floats(&params, DType::F16)?,
        };
        Ok(frame(&header, &params))
    }

    /// `bytes` with the class names `class_names` instead of its own (renaming a class of the
    /// user's): the parameters are copied unchanged. Same count and the ten first, or an error.
    pub fn renamed(bytes: &[u8], class_names: &[String]) -> Result<Vec<u8>, WeightsError> {
        let (mut header, params) = split(bytes)?;
        classes::check_names(class_names).map_err(WeightsError::Classes)?;
        if class_names.len() != header.classes.len() {
            return Err(WeightsError::Mismatch {
                architecture: header.architecture.name().into(),
                detail: format!("{} class names for {} classes", class_names.len(), header.classes.len()),
            });
        }
        header.classes = class_names.to_vec();
        let header = serde_json::to_vec(&header).map_err(|e| WeightsError::Encode(e.to_string()))?;
        Ok(frame(&header, params))
    }
}

impl WeightsFile {
    /// Reads a weights file of any architecture and builds its network on `device`.
    pub fn decode(bytes: &[u8], device: &Device) -> Result<Self, WeightsError> {
        let (header, params) = split(bytes)?;
        classes::check_names(&header.classes).map_err(WeightsError::Classes)?;
        if !header.architecture.is_cnn() && header.classes.len() != NUM_CLASSES {
            return Err(WeightsError::OnlyTheTen { found: header.classes.len() });
        }
        header
            .architecture
            .validate()
            .map_err(|detail| WeightsError::Mismatch { architecture: header.architecture.name().into(), detail })?;
        let params = convert_floats(params, DType::F32)?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(params))
            .map_err(|e| WeightsError::Mismatch { architecture: header.architecture.name().into(), detail: e.to_string() })?;
        let network = header
            .architecture
            .init(device)
            .with_class_count(header.classes.len(), device)
            .try_load_record(record)
            .map_err(|e| WeightsError::Mismatch { architecture: header.architecture.name().into(), detail: e.to_string() })?;
        Ok(Self { architecture: header.architecture, classes: header.classes, summary: header.summary, network })
    }

    /// Like [`decode`](Self::decode), but refuses a file whose architecture is not of the
    /// expected kind (a CNN slot given a logistic-regression file, say).
    pub fn decode_expecting(bytes: &[u8], device: &Device, expect_cnn: bool) -> Result<Self, WeightsError> {
        let file = Self::decode(bytes, device)?;
        if file.architecture.is_cnn() != expect_cnn {
            return Err(WeightsError::WrongArchitecture {
                expected: if expect_cnn { "CNN" } else { "logistic regression" }.into(),
                found: file.architecture.name().into(),
            });
        }
        Ok(file)
    }

    /// The calibration temperature to divide logits by (1 when the file has none).
    pub fn temperature(&self) -> f32 {
        self.summary.softmax_temperature()
    }

    /// Reads only the header (architecture and summary), without building the network.
    pub fn peek(bytes: &[u8]) -> Result<(Architecture, TrainingSummary), WeightsError> {
        let (header, _) = split(bytes)?;
        Ok((header.architecture, header.summary))
    }

    /// The class names in label order, read from the header only.
    pub fn class_names(bytes: &[u8]) -> Result<Vec<String>, WeightsError> {
        Ok(split(bytes)?.0.classes)
    }
}

/// The file around an encoded header and parameter block: signature, version, lengths and
/// checksum.
fn frame(header: &[u8], params: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 4 + 4 + header.len() + 8 + params.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&(params.len() as u64).to_le_bytes());
    out.extend_from_slice(params);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], WeightsError> {
    if bytes.len() < n {
        return Err(WeightsError::Truncated(what));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// Checks the framing and checksum; returns the parsed header and the burnpack bytes.
fn split(bytes: &[u8]) -> Result<(Header, &[u8]), WeightsError> {
    let mut rest = bytes;
    let magic = take(&mut rest, MAGIC.len(), "no signature").map_err(|_| WeightsError::NotAWeightsFile)?;
    if magic != MAGIC {
        return Err(WeightsError::NotAWeightsFile);
    }
    let version = u32::from_le_bytes(take(&mut rest, 4, "no version")?.try_into().unwrap());
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(WeightsError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let header_len = u32::from_le_bytes(take(&mut rest, 4, "no header length")?.try_into().unwrap()) as usize;
    let header_bytes = take(&mut rest, header_len, "header cut short")?;
    let params_len = u64::from_le_bytes(take(&mut rest, 8, "no parameter length")?.try_into().unwrap());
    let params_len = usize::try_from(params_len).map_err(|_| WeightsError::Truncated("parameter block cut short"))?;
    let params = take(&mut rest, params_len, "parameter block cut short")?;
    let crc = take(&mut rest, 4, "no checksum")?;
    let body_len = bytes.len() - rest.len() - 4;
    if u32::from_le_bytes(crc.try_into().unwrap()) != crc32fast::hash(&bytes[..body_len]) {
        return Err(WeightsError::Checksum);
    }
    let header: Header = serde_json::from_slice(header_bytes).map_err(|e| WeightsError::Header(e.to_string()))?;
    Ok((header, params))
}

fn pack_error(e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Mismatch { architecture: "network".into(), detail: e.to_string() }
}

/// Rewrites a burnpack block with every float tensor in `target` (f32 or f16), and refuses
/// NaN or infinite parameters on the way: a diverged run's file would otherwise load fine and
/// classify everything as one class. The metadata burn's record needs is carried over.
fn convert_floats(params: &[u8], target: DType) -> Result<Vec<u8>, WeightsError> {
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(params.to_vec())).map_err(pack_error)?;
    let metadata = reader.metadata().clone();
    let scalars = reader.scalars().clone();
    let mut converted = Vec::new();
    for tensor in reader.into_tensors().map_err(pack_error)? {
        let (path, dtype, shape, id, bytes) = tensor.into_parts().map_err(pack_error)?;
        let values: Vec<f32> = match dtype {
            DType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            DType::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect(),
            _ => {
                converted.push(burn_pack::Tensor::new(path, dtype, shape, id, bytes));
                continue;
            }
        };
        if !values.iter().all(|v| v.is_finite()) {
            return Err(WeightsError::NonFinite(path));
        }
        let bytes: Vec<u8> = match target {
            DType::F16 => {
                let halves: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
                if !halves.iter().all(|h| h.is_finite()) {
                    return Err(WeightsError::OutOfHalfRange(path));
                }
                halves.iter().flat_map(|h| h.to_le_bytes()).collect()
            }
            _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        converted.push(burn_pack::Tensor::new(path, target, shape, id, Bytes::from_bytes_vec(bytes)));
    }
    let mut writer = burn_pack::Writer::new(converted);
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    for (key, value) in scalars {
        writer = writer.with_scalar(&key, value);
    }
    Ok(writer.into_bytes().map_err(|e| WeightsError::Encode(e.to_string()))?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(values: &[f32]) -> Vec<u8> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensor = burn_pack::Tensor::new("w".into(), DType::F32, vec![values.len()], None, Bytes::from_bytes_vec(bytes));
        burn_pack::Writer::new(vec![tensor]).with_metadata("k", "v").into_bytes().unwrap().to_vec()
    }

    #[test]
    fn f16_round_trip_keeps_metadata_and_rounds_values() {
        let half = convert_floats(&pack(&[1.0, -0.333, 65000.0]), DType::F16).unwrap();
        let back = convert_floats(&half, DType::F32).unwrap();
        let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(back)).unwrap();
        assert_eq!(reader.metadata().get("k").map(String::as_str), Some("v"));
        let (_, dtype, _, _, bytes) = reader.into_tensors().unwrap().remove(0).into_parts().unwrap();
        assert_eq!(dtype, DType::F32);
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(values[0], 1.0);
        assert!((values[1] + 0.333).abs() < 1e-3 && values[1] != -0.333);
        assert!((values[2] - 65000.0).abs() <= 32.0);
    }

    #[test]
    fn values_beyond_half_range_are_refused_not_made_infinite() {
        let e = convert_floats(&pack(&[1.0, 1e6]), DType::F16).unwrap_err();
        assert!(matches!(e, WeightsError::OutOfHalfRange(ref p) if p == "w"), "{e}");
        assert!(e.to_string().contains("f32"));
    }
}
