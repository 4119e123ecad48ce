//! One epoch's training steps: the training set shuffled, cut into batches (augmented as the
//! recipe says for this epoch) and stepped through; and what an epoch leaves in the history.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::{
    nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig},
    prelude::*,
};
use fashion_model::{IMAGE_PIXELS, LabelledImages, network::images_tensor};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use super::{Schedule, TrainConfig, learning_rate, stepper::Stepper};
use crate::{augment::Augment, average::WeightAverage, photographed::Photographed};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub learning_rate: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// With the moving weight average: the validation accuracy of the trained (not averaged) weights.
    #[serde(default)]
    pub live_val_accuracy: Option<f64>,
}

impl EpochRecord {
    /// The progress line for this epoch of phase `phase`.
    pub fn line(&self, phase: &str) -> String {
        format!(
            "{phase} epoch {:>2}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{} | lr {:.2e} | {:.0} img/s, {:.0}s",
            self.epoch,
            self.train_loss,
            100.0 * self.train_accuracy,
            self.val_loss,
            100.0 * self.val_accuracy,
            self.live_val_accuracy.map(|a| format!(" (averaged; trained weights {:.2}%)", 100.0 * a)).unwrap_or_default(),
            self.learning_rate,
            self.images_per_second,
            self.seconds
        )
    }
}

/// What an epoch's steps give, before validation.
pub struct Trained {
    pub started: Instant,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// The rate of the epoch's last step.
    pub learning_rate: f64,
}

/// Runs the epochs' steps of one phase.
pub struct Epochs<'a> {
    config: &'a TrainConfig,
    train: &'a LabelledImages,
    batches: BatchBuilder<'a>,
    photos: Option<&'a Photographed>,
    loss_fn: CrossEntropyLoss,
    ad_device: &'a Device,
}

impl<'a> Epochs<'a> {
    pub fn new(config: &'a TrainConfig, train: &'a LabelledImages, photos: Option<&'a Photographed>, ad_device: &'a Device) -> Self {
        let mut loss_config = CrossEntropyLossConfig::new();
        if config.label_smoothing > 0.0 {
            loss_config = loss_config.with_smoothing(Some(config.label_smoothing));
        }
        Self {
            config,
            train,
            batches: BatchBuilder {
                data: train,
                augment: config.augment,
                photos: None,
                pixels: vec![0f32; config.batch_size * IMAGE_PIXELS],
            },
            photos: photos.filter(|p| !p.is_empty()),
            loss_fn: loss_config.init(ad_device),
            ad_device,
        }
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.config.batch_size)
    }

    /// Trains epoch `epoch` (1-based). `constant_rate` is the rate of a constant schedule (it
    /// halves on a plateau where the recipe says so); the other schedules set it every step.
    pub fn train(
        &mut self,
        epoch: usize,
        stepper: &mut Stepper,
        average: &mut Option<WeightAverage>,
        constant_rate: f64,
        bar: &ProgressBar,
    ) -> Result<Trained> {
        let (config, train) = (self.config, self.train);
        let started = Instant::now();
        // Per-epoch seeds make a resumed run replay exactly what an uninterrupted one would.
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        self.ad_device.seed(config.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        self.batches.augment = config.augment_for(epoch);
        // The share is of all images: an item with a photograph shows it more often when
        // fewer items have one.
        let share = config.photos_for(epoch);
        self.batches.photos = self.photos.filter(|_| share > 0.0).map(|p| (p, (share * train.len() as f32 / p.len() as f32).min(1.0)));
        let steps_per_epoch = self.steps_per_epoch();
        let (mut loss_sum, mut correct, mut rate) = (0.0f64, 0usize, constant_rate);
        for (step_in_epoch, chunk) in order.chunks(config.batch_size).enumerate() {
            if config.schedule != Schedule::Constant {
                rate = learning_rate(config, (epoch - 1) * steps_per_epoch + step_in_epoch, steps_per_epoch);
            }
            let labels = self.batches.fill(chunk, &mut rng);
            let pixels = self.batches.pixels(chunk.len());
            let (batch_loss, batch_correct) = stepper.step(pixels, &labels, rate, &mut rng, &self.loss_fn, self.ad_device, average);
            if !batch_loss.is_finite() {
                bail!("training diverged (loss is {batch_loss}) at epoch {epoch}; lower --lr");
            }
            correct += batch_correct;
            loss_sum += batch_loss * chunk.len() as f64;
            bar.inc(1);
        }
        Ok(Trained {
            started,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            learning_rate: rate,
        })
    }
}

/// Turns a list of training-set indices into a batch: images (augmented or not) and labels.
struct BatchBuilder<'a> {
    data: &'a LabelledImages,
    augment: Option<Augment>,
    /// The items' photographs and the chance that an item which has one shows it.
    photos: Option<(&'a Photographed, f32)>,
    pixels: Vec<f32>,
}

impl BatchBuilder<'_> {
    /// Fills the batch's pixels (augmented or not) and returns its labels.
    fn fill(&mut self, indices: &[usize], rng: &mut StdRng) -> Vec<u8> {
        for (k, &i) in indices.iter().enumerate() {
            let dst = &mut self.pixels[k * IMAGE_PIXELS..(k + 1) * IMAGE_PIXELS];
            let Some(aug) = &self.augment else {
                dst.iter_mut().zip(self.data.image(i)).for_each(|(d, &s)| *d = s as f32 / 255.0);
                continue;
            };
            // The photograph is already posed and framed by the preprocessing: only mirrored.
            // The draw happens only when there are photographs, so recipes without them replay
            // the random stream they always had.
            let photo = self.photos.and_then(|(photos, share)| photos.of(i).filter(|_| rng.random::<f32>() < share));
            match photo {
                Some(photo) => Augment { flip: aug.flip, ..Augment::with_parts(0.0, &[]) }.apply(photo, dst, rng),
                None => aug.apply(self.data.image(i), dst, rng),
            }
        }
        indices.iter().map(|&i| self.data.labels[i]).collect()
    }

    fn pixels(&self, n: usize) -> &[f32] {
        &self.pixels[..n * IMAGE_PIXELS]
    }
}

/// A batch as burn's tensors.
pub(super) fn tensors(pixels: &[f32], labels: &[u8], device: &Device) -> (Tensor<3>, Tensor<1, Int>) {
    let images = images_tensor(pixels.to_vec(), device);
    let targets = labels.iter().map(|&l| l as i64).collect::<Vec<_>>();
    (images, Tensor::<1, Int>::from_data(TensorData::new(targets, [labels.len()]), device))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three items of distinct constant images (labels 0, 1, 2); item 1 has a photograph.
    fn three_items() -> (LabelledImages, Photographed) {
        let mut data = LabelledImages::default();
        for label in 0..3u8 {
            data.push(&[10 * (label + 1); IMAGE_PIXELS], label);
        }
        let photos = Photographed { inputs: vec![200; IMAGE_PIXELS], of_item: vec![None, Some(0), None] };
        (data, photos)
    }

    fn builder<'a>(data: &'a LabelledImages, photos: Option<(&'a Photographed, f32)>) -> BatchBuilder<'a> {
        // No warp and no mirror: each image comes out as its source.
        BatchBuilder { data, augment: Some(Augment::with_parts(0.0, &[])), photos, pixels: vec![0.0; 3 * IMAGE_PIXELS] }
    }

    #[test]
    fn a_share_of_one_shows_every_photographed_item_as_its_photograph() {
        let (data, photos) = three_items();
        let mut batches = builder(&data, Some((&photos, 1.0)));
        let labels = batches.fill(&[2, 1, 0], &mut StdRng::seed_from_u64(1));
        assert_eq!(labels, [2, 1, 0], "a photograph keeps its item's label");
        let first = |k: usize| batches.pixels(3)[k * IMAGE_PIXELS];
        assert_eq!((first(0), first(1), first(2)), (30.0 / 255.0, 200.0 / 255.0, 10.0 / 255.0));
    }

    #[test]
    fn photographs_replace_about_their_share() {
        let (data, photos) = three_items();
        let mut batches = builder(&data, Some((&photos, 0.25)));
        let mut rng = StdRng::seed_from_u64(2);
        let shown = (0..2000)
            .filter(|_| {
                batches.fill(&[1], &mut rng);
                batches.pixels(1)[0] > 0.5
            })
            .count();
        assert!((400..600).contains(&shown), "{shown} of 2000 were the photograph at a share of 0.25");
    }
}
