//! Adversarial robustness, the report's third "future work" point: accuracy on a fixed slice
//! of the test set when every pixel may move by at most ε (of the pixel range 0..=1) in the
//! direction that hurts the network most.
//!
//! - **FGSM**: one step of ε along the sign of the loss's gradient with respect to the image.
//! - **PGD**: [`PGD_STEPS`] steps of `2.5 ε / steps` (Madry et al.'s step size), each
//!   projected back into the ε-box around the image and into the pixel range. It starts at the
//!   image itself (no random start), so the figures repeat exactly; an image counts as broken
//!   if any step's image is misclassified.
//!
//! The gradients come from burn's autodiff on the network as stored (batch norm on its
//! running statistics, dropout off), so every network the weights format holds is attacked by
//! the same code. No adversarial training is done anywhere: this measures, it does not defend.

use anyhow::{Context, Result};
use burn::{module::Module, nn::loss::CrossEntropyLossConfig, prelude::*};
use fashion_model::{IMAGE_PIXELS, Network, network::argmax, network::images_tensor};
use serde::Serialize;

/// Attack sizes, as fractions of the pixel range.
pub const EPSILONS: [f32; 3] = [0.02, 0.05, 0.1];
/// Gradient steps of the PGD attack.
pub const PGD_STEPS: usize = 7;
/// Images per forward/backward pass.
const BATCH: usize = 250;

/// One network's accuracy, clean and under each attack (one entry per [`EPSILONS`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Robustness {
    pub images: usize,
    pub clean: f64,
    pub fgsm: Vec<f64>,
    pub pgd: Vec<f64>,
}

/// Attacks `network` (on a plain device) on `pixels` (n × 784 in 0..=1) with their `labels`.
pub fn measure(network: &Network, pixels: &[f32], labels: &[u8], device: &Device) -> Result<Robustness> {
    let attacked = Attacked::new(network, device);
    let n = labels.len();
    let (mut clean, mut fgsm, mut pgd) = (0usize, [0usize; EPSILONS.len()], [0usize; EPSILONS.len()]);
    for (images, labels) in pixels.chunks(BATCH * IMAGE_PIXELS).zip(labels.chunks(BATCH)) {
        let (logits, gradient) = attacked.loss_gradient(images, labels)?;
        let right = |logits: &[f32], k: usize| argmax(&logits[k * attacked.classes..(k + 1) * attacked.classes]) == labels[k] as usize;
        let still_right: Vec<bool> = (0..labels.len()).map(|k| right(&logits, k)).collect();
        clean += still_right.iter().filter(|&&r| r).count();
        for (e, &epsilon) in EPSILONS.iter().enumerate() {
            let one_step = step(images, images, &gradient, epsilon, epsilon);
            let logits = attacked.logits(&one_step)?;
            fgsm[e] += (0..labels.len()).filter(|&k| still_right[k] && right(&logits, k)).count();

            let size = 2.5 * epsilon / PGD_STEPS as f32;
            let mut survived = still_right.clone();
            let mut current = step(images, images, &gradient, size, epsilon);
            for taken in 1..=PGD_STEPS {
                let (logits, next_gradient) = if taken < PGD_STEPS {
                    let (logits, g) = attacked.loss_gradient(&current, labels)?;
                    (logits, Some(g))
                } else {
                    (attacked.logits(&current)?, None)
                };
                survived.iter_mut().enumerate().for_each(|(k, s)| *s &= right(&logits, k));
                if let Some(g) = next_gradient {
                    current = step(&current, images, &g, size, epsilon);
                }
            }
            pgd[e] += survived.iter().filter(|&&r| r).count();
        }
    }
    let share = |count: usize| count as f64 / n.max(1) as f64;
    Ok(Robustness { images: n, clean: share(clean), fgsm: fgsm.map(share).to_vec(), pgd: pgd.map(share).to_vec() })
}

/// `current` moved by `size` along the sign of `gradient`, then projected into the ε-box
/// around `origin` and into the pixel range.
pub fn step(current: &[f32], origin: &[f32], gradient: &[f32], size: f32, epsilon: f32) -> Vec<f32> {
    current
        .iter()
        .zip(origin)
        .zip(gradient)
        .map(|((&x, &o), &g)| {
            let moved = if g > 0.0 {
                x + size
            } else if g < 0.0 {
                x - size
            } else {
                x
            };
            moved.clamp(o - epsilon, o + epsilon).clamp(0.0, 1.0)
        })
        .collect()
}

/// A network on the autodiff twin of its device, frozen: its parameters take no gradient and
/// batch norm and dropout behave as in inference, so only the image's gradient is computed.
struct Attacked {
    network: Network,
    device: Device,
    classes: usize,
}

impl Attacked {
    fn new(network: &Network, device: &Device) -> Self {
        let ad_device = device.clone().autodiff();
        let network = network.clone().fork(&ad_device).freeze();
        let classes = network.forward(images_tensor(vec![0.0; IMAGE_PIXELS], &ad_device)).dims()[1];
        Self { network, device: ad_device, classes }
    }

    /// Logits (n × classes) for `images`.
    fn logits(&self, images: &[f32]) -> Result<Vec<f32>> {
        let logits = self.network.forward(images_tensor(images.to_vec(), &self.device)).detach();
        logits.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))
    }

    /// Logits for `images` and the gradient of the mean cross-entropy with respect to them.
    fn loss_gradient(&self, images: &[f32], labels: &[u8]) -> Result<(Vec<f32>, Vec<f32>)> {
        let x = images_tensor(images.to_vec(), &self.device).require_grad();
        let logits = self.network.forward(x.clone());
        let targets = labels.iter().map(|&l| l as i64).collect::<Vec<_>>();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [labels.len()]), &self.device);
        let loss = CrossEntropyLossConfig::new().init(&self.device).forward(logits.clone(), targets);
        let gradient = x.grad(&loss.backward()).context("burn's autodiff gave no gradient for the image")?;
        let to_vec = |t: TensorData| t.convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"));
        Ok((to_vec(logits.detach().into_data())?, to_vec(gradient.into_data())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fashion_model::Architecture;

    #[test]
    fn a_step_stays_in_the_box_and_the_pixel_range() {
        // Binary fractions, so that the sums are exact.
        let origin = [0.0, 0.5, 1.0, 0.5, 0.9375];
        let gradient = [-1.0, 2.0, 3.0, 0.0, 1.0];
        assert_eq!(step(&origin, &origin, &gradient, 0.25, 0.125), vec![0.0, 0.625, 1.0, 0.5, 1.0]);
        // From a point already at the box's edge, a step back moves inside it.
        assert_eq!(step(&[0.625], &[0.5], &[-1.0], 0.0625, 0.125), vec![0.5625]);
    }

    /// The image gradient that the attacks follow is the loss's: finite differences on the
    /// logistic regression (smooth, so a finite difference is exact to rounding).
    #[test]
    fn the_image_gradient_matches_finite_differences() {
        let device = Device::flex();
        let network = Architecture::Logistic.init(&device);
        let attacked = Attacked::new(&network, &device);
        let image: Vec<f32> = (0..IMAGE_PIXELS).map(|i| (i * 37 % 101) as f32 / 100.0).collect();
        let label = [3u8];
        let (_, gradient) = attacked.loss_gradient(&image, &label).unwrap();
        let loss = |x: &[f32]| {
            let logits = attacked.logits(x).unwrap();
            let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            (max + sum.ln() - logits[label[0] as usize]) as f64
        };
        let largest = gradient.iter().fold(0f32, |m, g| m.max(g.abs()));
        assert!(largest > 1e-4, "the gradient is all but zero: {largest}");
        for pixel in [0, 100, 406, 783] {
            let h = 0.05;
            let (mut up, mut down) = (image.clone(), image.clone());
            up[pixel] += h;
            down[pixel] -= h;
            let numeric = ((loss(&up) - loss(&down)) / (2.0 * h as f64)) as f32;
            assert!(
                (numeric - gradient[pixel]).abs() <= 0.02 * largest,
                "pixel {pixel}: {numeric} by differences, {} by autodiff",
                gradient[pixel]
            );
        }
    }

    /// The attacks break images that the network answered right, and PGD's steps at least as
    /// many as FGSM's one.
    #[test]
    fn attacks_break_answers() {
        let device = Device::flex();
        device.seed(7);
        let network = Architecture::Logistic.init(&device);
        let n = 40;
        let pixels: Vec<f32> = (0..n * IMAGE_PIXELS).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        // Label each image with the network's own answer, so the clean accuracy is 1.
        let plain = Attacked::new(&network, &device).logits(&pixels).unwrap();
        let labels: Vec<u8> = plain.chunks(10).map(|row| argmax(row) as u8).collect();
        let r = measure(&network, &pixels, &labels, &device).unwrap();
        assert_eq!((r.images, r.clean), (n, 1.0), "{r:?}");
        for e in 0..EPSILONS.len() {
            assert!(r.pgd[e] <= r.fgsm[e], "{r:?}");
        }
        assert!(r.pgd[EPSILONS.len() - 1] < 1.0, "ε = 0.1 broke no image: {r:?}");
    }
}
