//! Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix; and
//! running a network over a labelled set to get them.

use anyhow::Result;
use burn::prelude::*;
use fashion_model::{CLASS_NAMES, IMAGE_PIXELS, LabelledImages, NUM_CLASSES, Network, network::images_tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    pub accuracy: f64,
    pub loss: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`: a row per Fashion-MNIST class, a column per class the
    /// network answers with (more than ten for a model with classes of the user's own).
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    pub fn from_predictions(truth: &[u8], predicted: &[u8], loss: f64) -> Self {
        let columns = predicted.iter().map(|&p| p as usize + 1).max().unwrap_or(0).max(NUM_CLASSES);
        let mut confusion = vec![vec![0usize; columns]; NUM_CLASSES];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t as usize][p as usize] += 1;
        }
        let correct: usize = (0..NUM_CLASSES).map(|c| confusion[c][c]).sum();
        let per_class: Vec<ClassMetrics> = (0..NUM_CLASSES)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let support: usize = confusion[c].iter().sum();
                let predicted_c: usize = (0..NUM_CLASSES).map(|t| confusion[t][c]).sum();
                let precision = if predicted_c > 0 { tp / predicted_c as f64 } else { 0.0 };
                let recall = if support > 0 { tp / support as f64 } else { 0.0 };
                let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
                ClassMetrics { class: CLASS_NAMES[c].to_string(), precision, recall, f1, support }
            })
            .collect();
        Self {
            accuracy: correct as f64 / truth.len().max(1) as f64,
            loss,
            macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / NUM_CLASSES as f64,
            per_class,
            confusion,
        }
    }
}

/// Logits for every image of `split`, in batches, as one flat `n × classes` vector.
pub fn logits(network: &Network, split: &LabelledImages, device: &Device, batch: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(split.len() * NUM_CLASSES);
    // Batch norm folded, as the page classifies (same logits within float rounding, faster).
    let network = network.for_inference();
    for start in (0..split.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(split.len());
        let pixels: Vec<f32> = split.pixels[start * IMAGE_PIXELS..end * IMAGE_PIXELS].iter().map(|&p| p as f32 / 255.0).collect();
        let batch_logits = network.forward(images_tensor(pixels, device));
        out.extend(batch_logits.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?);
    }
    Ok(out)
}

/// Accuracy, loss and per-class metrics of `network` on `split`.
pub fn evaluate(network: &Network, split: &LabelledImages, device: &Device, batch: usize) -> Result<Evaluation> {
    let logits = logits(network, split, device, batch)?;
    Ok(Evaluation::from_logits(&logits, &split.labels))
}

impl Evaluation {
    /// Metrics of `n × classes` logits against `labels`; the loss is the mean cross-entropy.
    /// An answer of a class of the user's own counts as wrong.
    pub fn from_logits(logits: &[f32], labels: &[u8]) -> Self {
        let classes = (logits.len() / labels.len().max(1)).max(1);
        let predicted: Vec<u8> = logits.chunks_exact(classes).map(|row| fashion_model::network::argmax(row) as u8).collect();
        Self::from_predictions(labels, &predicted, fashion_model::calibration::nll(logits, labels, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_a_hand_computed_case() {
        // Class 0: 2 right, 1 predicted as 1. Class 1: 1 right. Predicted 1 twice.
        let e = Evaluation::from_predictions(&[0, 0, 0, 1], &[0, 0, 1, 1], 0.5);
        assert!((e.accuracy - 0.75).abs() < 1e-12);
        assert_eq!(e.confusion[0][1], 1);
        assert!((e.per_class[0].precision - 1.0).abs() < 1e-12);
        assert!((e.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.per_class[1].precision - 0.5).abs() < 1e-12);
        assert!((e.per_class[1].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.per_class[2].support, 0);
    }
}
