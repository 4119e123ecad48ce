//! Small labelled image sets that ship with the page, written by the trainer:
//!
//! - the **replay set**: Fashion-MNIST training images mixed into every fine-tuning batch so
//!   the model keeps what it knew while it learns the user's photos;
//! - the **held-out slice**: the first images of the test set, to score a model before and
//!   after fine-tuning (`trainer evaluate --limit N` scores the same slice).
//!
//! Layout (little-endian): magic `FMNISTS\0`, version u32, count u32, `count` labels (u8),
//! `count × 784` pixels (u8, Fashion-MNIST's 0 = background), CRC-32 of everything before it.

use crate::{IMAGE_PIXELS, NUM_CLASSES};

const MAGIC: &[u8; 8] = b"FMNISTS\0";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SamplesError {
    #[error("not a sample set (no FMNISTS signature)")]
    NotASampleSet,
    #[error("sample set version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    #[error("sample set is truncated or has trailing bytes; download it again")]
    BadLength,
    #[error("sample set is corrupt (checksum mismatch); download it again")]
    Checksum,
    #[error("sample set has a label {0}, outside 0..10")]
    BadLabel(u8),
}

/// Labelled 28×28 images, stored as Fashion-MNIST stores them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledImages {
    pub labels: Vec<u8>,
    /// `len() × 784` bytes.
    pub pixels: Vec<u8>,
}

impl LabelledImages {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    /// The first `n` items (all of them if `n` is larger).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * IMAGE_PIXELS);
        self
    }

    /// The items at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        let mut out = Self::default();
        for &i in indices {
            out.push(self.image(i), self.labels[i]);
        }
        out
    }

    pub fn push(&mut self, image: &[u8], label: u8) {
        assert_eq!(image.len(), IMAGE_PIXELS, "an image is 28×28");
        self.pixels.extend_from_slice(image);
        self.labels.push(label);
    }

    /// All images as model input (`pixels / 255`).
    pub fn to_f32(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| p as f32 / 255.0).collect()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.labels.len() + self.pixels.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.labels);
        out.extend_from_slice(&self.pixels);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SamplesError> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(SamplesError::NotASampleSet);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version != VERSION {
            return Err(SamplesError::UnsupportedVersion(version));
        }
        let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let body = 16 + count * (1 + IMAGE_PIXELS);
        if bytes.len() != body + 4 {
            return Err(SamplesError::BadLength);
        }
        if crc32fast::hash(&bytes[..body]) != u32::from_le_bytes(bytes[body..].try_into().unwrap()) {
            return Err(SamplesError::Checksum);
        }
        let labels = bytes[16..16 + count].to_vec();
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= NUM_CLASSES) {
            return Err(SamplesError::BadLabel(bad));
        }
        Ok(Self { labels, pixels: bytes[16 + count..body].to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LabelledImages {
        let mut set = LabelledImages::default();
        for i in 0..5u8 {
            set.push(&[i * 40; IMAGE_PIXELS], i);
        }
        set
    }

    #[test]
    fn round_trips() {
        let set = sample();
        let back = LabelledImages::decode(&set.encode()).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.image(3)[0], 120);
        assert_eq!(back.to_f32()[IMAGE_PIXELS], 40.0 / 255.0);
    }

    #[test]
    fn refuses_damaged_files() {
        let bytes = sample().encode();
        assert_eq!(LabelledImages::decode(b"hello"), Err(SamplesError::NotASampleSet));
        assert_eq!(LabelledImages::decode(&bytes[..bytes.len() - 1]), Err(SamplesError::BadLength));
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert_eq!(LabelledImages::decode(&flipped), Err(SamplesError::Checksum));
    }
}
