//! Confidence that means something: temperature scaling and the expected calibration error.
//!
//! A network trained with cross-entropy is usually over-confident. Temperature scaling divides
//! the logits by one number `T`, fitted on the validation split to minimise the negative
//! log-likelihood; it changes no answer, only how sure the answers say they are. The
//! temperature travels in the weights file, and every consumer (the page, `trainer predict`,
//! `trainer evaluate`) turns logits into probabilities through [`probabilities`].

use crate::{NUM_CLASSES, network::softmax};

/// Probabilities `softmax(logits / temperature)` of one row of logits, of any width (the
/// network's classes, the user's own included).
pub fn row_probabilities(row: &[f32], temperature: f32) -> Vec<f32> {
    let t = if temperature.is_finite() && temperature > 0.0 { temperature } else { 1.0 };
    softmax(&row.iter().map(|&v| v / t).collect::<Vec<_>>())
}

/// [`row_probabilities`] for each row of `n × classes` logits.
pub fn probability_rows(logits: &[f32], classes: usize, temperature: f32) -> Vec<Vec<f32>> {
    logits.chunks_exact(classes.max(1)).map(|row| row_probabilities(row, temperature)).collect()
}

/// [`probability_rows`] of `n × 10` logits, as arrays (the Fashion-MNIST evaluations).
pub fn probabilities(logits: &[f32], temperature: f32) -> Vec<[f32; NUM_CLASSES]> {
    probability_rows(logits, NUM_CLASSES, temperature).into_iter().map(|row| row.try_into().expect("a row of ten")).collect()
}

/// Mean negative log-likelihood of `labels` under `softmax(logits / temperature)` (a row of
/// logits per label, of any width).
pub fn nll(logits: &[f32], labels: &[u8], temperature: f32) -> f64 {
    let mut total = 0.0f64;
    let classes = (logits.len() / labels.len().max(1)).max(1);
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let scaled: Vec<f64> = row.iter().map(|&v| v as f64 / temperature as f64).collect();
        let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = scaled.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        total += log_sum - scaled[label as usize];
    }
    total / labels.len().max(1) as f64
}

/// The temperature in 0.05..20 that minimises the NLL (golden-section search on log T; the NLL
/// is unimodal in T).
pub fn fit_temperature(logits: &[f32], labels: &[u8]) -> f32 {
    let f = |log_t: f64| nll(logits, labels, log_t.exp() as f32);
    let (mut a, mut b) = (0.05f64.ln(), 20f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - ratio * (b - a), a + ratio * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - ratio * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + ratio * (b - a);
            fd = f(d);
        }
    }
    (((a + b) / 2.0).exp()) as f32
}

/// Expected calibration error with `bins` equal-width confidence bins: the gap between
/// confidence and accuracy, averaged over bins weighted by how many answers fall in each.
pub fn expected_calibration_error(probs: &[[f32; NUM_CLASSES]], labels: &[u8], bins: usize) -> f64 {
    let mut count = vec![0usize; bins];
    let mut confidence = vec![0f64; bins];
    let mut correct = vec![0usize; bins];
    for (p, &label) in probs.iter().zip(labels) {
        let predicted = crate::network::argmax(p);
        let conf = p[predicted] as f64;
        let bin = ((conf * bins as f64) as usize).min(bins - 1);
        count[bin] += 1;
        confidence[bin] += conf;
        correct[bin] += usize::from(predicted == label as usize);
    }
    let n = probs.len().max(1) as f64;
    (0..bins).filter(|&b| count[b] > 0).map(|b| (confidence[b] - correct[b] as f64).abs() / n).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Logits of a model that is right 70% of the time but says so with logit margins `scale`.
    fn overconfident(n: usize, scale: f32) -> (Vec<f32>, Vec<u8>) {
        let mut rng = StdRng::seed_from_u64(9);
        let (mut logits, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let label = rng.random_range(0..NUM_CLASSES as u8);
            let answer = if rng.random::<f32>() < 0.7 { label } else { (label + 1) % NUM_CLASSES as u8 };
            let mut row = [0f32; NUM_CLASSES];
            for v in row.iter_mut() {
                *v = rng.random::<f32>();
            }
            row[answer as usize] += scale;
            logits.extend(row);
            labels.push(label);
        }
        (logits, labels)
    }

    #[test]
    fn temperature_scaling_cools_an_overconfident_model_and_lowers_its_ece() {
        let (logits, labels) = overconfident(2000, 8.0);
        let t = fit_temperature(&logits, &labels);
        assert!(t > 2.0, "temperature {t}");
        assert!(nll(&logits, &labels, t) < nll(&logits, &labels, 1.0));
        let before = expected_calibration_error(&probabilities(&logits, 1.0), &labels, 15);
        let after = expected_calibration_error(&probabilities(&logits, t), &labels, 15);
        assert!(before > 0.2 && after < 0.05, "ECE {before} → {after}");
    }

    #[test]
    fn temperature_keeps_every_answer_and_bad_values_mean_none() {
        let (logits, _) = overconfident(50, 3.0);
        let (a, b) = (probabilities(&logits, 1.0), probabilities(&logits, 2.5));
        for (p, q) in a.iter().zip(&b) {
            assert_eq!(crate::network::argmax(p), crate::network::argmax(q));
        }
        assert_eq!(probabilities(&logits, 0.0), a);
        assert_eq!(probabilities(&logits, f32::NAN), a);
    }
}
