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
//! | p | parameters, burn's burnpack format |
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
    CLASS_NAMES,
    network::{Architecture, Network},
};

const MAGIC: &[u8; 8] = b"FMNISTW\0";
/// Bump when the layout or the meaning of a field changes; files of versions this build does
/// not know are refused with [`WeightsError::UnsupportedVersion`] rather than misread.
///
/// - 1: the report's CNN layout (with or without batch norm) and logistic regression;
/// - 2: adds the compact CNN (`"kind": "compact"`) and the calibration temperature. Version 1
///   files are a subset and still load; builds that know only version 1 refuse version 2
///   files by their version number instead of failing on an unknown architecture.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build still reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Conventional file extension.
pub const EXTENSION: &str = "fmw";

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
    #[error("weights file has {0} class names, expected the 10 Fashion-MNIST classes")]
    WrongClasses(usize),
    #[error("weights do not fit the {architecture} they claim to be: {detail}")]
    Mismatch { architecture: String, detail: String },
    #[error("weights file contains non-finite values (NaN or infinity) in `{0}`; the training run that wrote it diverged")]
    NonFinite(String),
    #[error("could not serialise the weights: {0}")]
    Encode(String),
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
}

impl TrainingSummary {
    /// The calibration temperature to divide logits by: 1 when absent or not a positive number.
    pub fn softmax_temperature(&self) -> f32 {
        self.temperature.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(1.0)
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
    /// Serialises a network. The network is consumed (burn records take ownership); clone it
    /// first to keep using it.
    pub fn encode(architecture: &Architecture, summary: &TrainingSummary, network: Network) -> Result<Vec<u8>, WeightsError> {
        let header = Header {
            architecture: architecture.clone(),
            classes: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            summary: summary.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| WeightsError::Encode(e.to_string()))?;
        let params = network.into_record().into_bytes().map_err(|e| WeightsError::Encode(e.to_string()))?;
        let mut out = Vec::with_capacity(8 + 4 + 4 + header.len() + 8 + params.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(params.len() as u64).to_le_bytes());
        out.extend_from_slice(&params);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Reads a weights file of any architecture and builds its network on `device`.
    pub fn decode(bytes: &[u8], device: &Device) -> Result<Self, WeightsError> {
        let (header, params) = split(bytes)?;
        if header.classes.len() != CLASS_NAMES.len() {
            return Err(WeightsError::WrongClasses(header.classes.len()));
        }
        header
            .architecture
            .validate()
            .map_err(|detail| WeightsError::Mismatch { architecture: header.architecture.name().into(), detail })?;
        check_finite(params)?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(params.to_vec()))
            .map_err(|e| WeightsError::Mismatch { architecture: header.architecture.name().into(), detail: e.to_string() })?;
        let network = header
            .architecture
            .init(device)
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

/// Refuses NaN or infinite parameters before they reach a device: a diverged run's file
/// would otherwise load fine and classify everything as one class.
fn check_finite(params: &[u8]) -> Result<(), WeightsError> {
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(params.to_vec()))
        .map_err(|e| WeightsError::Mismatch { architecture: "network".into(), detail: e.to_string() })?;
    let tensors = reader.into_tensors().map_err(|e| WeightsError::Mismatch { architecture: "network".into(), detail: e.to_string() })?;
    for tensor in tensors {
        let (path, dtype, _shape, _id, bytes) =
            tensor.into_parts().map_err(|e| WeightsError::Mismatch { architecture: "network".into(), detail: e.to_string() })?;
        if dtype == DType::F32 {
            let finite = bytes.chunks_exact(4).all(|b| f32::from_le_bytes(b.try_into().unwrap()).is_finite());
            if !finite {
                return Err(WeightsError::NonFinite(path));
            }
        }
    }
    Ok(())
}
