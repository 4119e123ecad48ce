//! Training on the user's own photos, in the tab (and natively, for tests): one optimisation
//! step shared with the trainer, and a fine-tuner that mixes the user's labelled photos,
//! lightly augmented, with replayed Fashion-MNIST training images so the model does not
//! forget the rest.
//!
//! Nothing here reads tensors back: the caller reads the returned loss synchronously
//! (natively) or with `into_scalar_async` (in the browser, where WebGPU cannot read
//! synchronously).

use burn::{
    module::Module,
    nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig},
    optim::{AdamConfig, GradientsParams, module_optimizer::ModuleOptimizer},
    prelude::*,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::{IMAGE_PIXELS, Network, augment::Augment, labelled::LabelledImages, network::images_tensor};

/// One Adam step on a batch. Returns the updated network and the batch's loss and logits,
/// still on the device.
pub fn train_step(
    network: Network,
    optim: &mut ModuleOptimizer,
    loss_fn: &CrossEntropyLoss,
    images: Tensor<3>,
    targets: Tensor<1, Int>,
    learning_rate: f64,
) -> (Network, Tensor<1>, Tensor<2>) {
    let logits = network.forward(images);
    let loss = loss_fn.forward(logits.clone(), targets);
    let grads = GradientsParams::from_grads(loss.backward(), &network);
    let network = optim.step(learning_rate, network, grads);
    (network, loss, logits)
}

/// A fine-tuning run's before and after, for the user to judge it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub heldout_images: usize,
    pub heldout_before: f64,
    pub heldout_after: f64,
    pub user_images: usize,
    pub user_before: f64,
    pub user_after: f64,
    pub steps: usize,
    pub seconds: f64,
    /// Training throughput (forward + backward + optimizer step).
    pub images_per_second: f64,
}

/// Which parameters fine-tuning changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainableLayers {
    /// Only the dense layers: the convolutional features (and their batch-norm statistics)
    /// stay as trained on 60,000 images. Fast and hard to break.
    Head,
    /// Everything, batch-norm statistics included.
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneConfig {
    pub steps: usize,
    pub batch_size: usize,
    /// How many of each batch's images are the user's photos (the rest are replayed
    /// Fashion-MNIST images).
    pub user_per_batch: usize,
    pub learning_rate: f64,
    pub layers: TrainableLayers,
    /// Light warps of the user's photos, so a handful of them is not simply memorised.
    pub augment: Augment,
    pub seed: u64,
}

impl Default for FineTuneConfig {
    /// The settings that learnt every photo of `cargo run --release -p trainer --example
    /// finetune_sweep` while forgetting least of the held-out slice, at half the steps of the
    /// next best (the sweep's table: `docs/experiments.md`). Only the dense layers train, and
    /// without dropout, so that WebGPU and the CPU reach the same weights.
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 32,
            user_per_batch: 4,
            learning_rate: 3e-4,
            layers: TrainableLayers::Head,
            augment: Augment { rotation_deg: 6.0, zoom: 0.06, shift: 0.06, probability: 0.75, ..Augment::report() },
            seed: 42,
        }
    }
}

/// A fine-tuning run in progress.
pub struct FineTuner {
    network: Network,
    optim: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    device: Device,
    config: FineTuneConfig,
    user: LabelledImages,
    replay: LabelledImages,
    rng: StdRng,
    pub steps_done: usize,
}

impl FineTuner {
    /// Starts from `network` (on a plain device); training runs on that device's autodiff
    /// twin. `user` must hold at least one photo.
    pub fn new(network: &Network, device: &Device, config: FineTuneConfig, user: LabelledImages, replay: LabelledImages) -> Self {
        assert!(!user.is_empty(), "fine-tuning needs at least one labelled photo");
        let ad_device = device.clone().autodiff();
        let network = network.clone().fork(&ad_device).train();
        let network = match config.layers {
            TrainableLayers::Head => network.freeze_features(),
            TrainableLayers::All => network,
        };
        ad_device.seed(config.seed);
        Self {
            network,
            optim: AdamConfig::new().init(),
            loss_fn: CrossEntropyLossConfig::new().init(&ad_device),
            device: ad_device,
            rng: StdRng::seed_from_u64(config.seed),
            config,
            user,
            replay,
            steps_done: 0,
        }
    }

    pub fn config(&self) -> &FineTuneConfig {
        &self.config
    }

    /// Next batch: `user_per_batch` user photos (augmented; all of them, cycled, when there
    /// are fewer), the rest drawn from the replay set.
    fn batch(&mut self) -> (Vec<f32>, Vec<i64>) {
        let replay = if self.replay.is_empty() { 0 } else { self.config.batch_size.saturating_sub(self.config.user_per_batch) };
        let user = self.config.batch_size - replay;
        let mut pixels = vec![0f32; (user + replay) * IMAGE_PIXELS];
        let mut labels = Vec::with_capacity(user + replay);
        for (k, dst) in pixels.chunks_exact_mut(IMAGE_PIXELS).enumerate() {
            if k < user {
                let i = self.rng.random_range(0..self.user.len());
                self.config.augment.apply(self.user.image(i), dst, &mut self.rng);
                labels.push(self.user.labels[i] as i64);
            } else {
                let i = self.rng.random_range(0..self.replay.len());
                dst.iter_mut().zip(self.replay.image(i)).for_each(|(d, &s)| *d = s as f32 / 255.0);
                labels.push(self.replay.labels[i] as i64);
            }
        }
        (pixels, labels)
    }

    /// One step; returns the batch loss, still on the device.
    pub fn step(&mut self) -> Tensor<1> {
        let (pixels, labels) = self.batch();
        let n = labels.len();
        let images = images_tensor(pixels, &self.device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &self.device);
        let network = self.network.clone();
        let (network, loss, _) = train_step(network, &mut self.optim, &self.loss_fn, images, targets, self.config.learning_rate);
        self.network = network;
        self.steps_done += 1;
        loss
    }

    /// The network as it is now, for inference on the plain device.
    pub fn network(&self) -> Network {
        self.network.valid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CnnConfig;

    fn fixed_images() -> LabelledImages {
        // Ten distinct bars, one per class.
        let mut set = LabelledImages::default();
        for class in 0..10u8 {
            let image: Vec<u8> =
                (0..IMAGE_PIXELS).map(|i| if (i % 28) / 3 == class as usize || (i / 28) / 3 == class as usize { 220 } else { 0 }).collect();
            set.push(&image, class);
        }
        set
    }

    #[test]
    fn loss_goes_down_on_a_fixed_tiny_batch() {
        let device = Device::flex();
        let network = Network::Cnn(CnnConfig { channels: [4, 8, 8], hidden: 16, dropout: 0.0, batch_norm: true }.init(&device));
        let config = FineTuneConfig {
            batch_size: 10,
            user_per_batch: 10,
            learning_rate: 3e-3,
            layers: TrainableLayers::All,
            augment: Augment { probability: 0.0, ..Augment::report() },
            ..FineTuneConfig::default()
        };
        let mut tuner = FineTuner::new(&network, &device, config, fixed_images(), LabelledImages::default());
        let losses: Vec<f32> = (0..40).map(|_| tuner.step().into_scalar::<f32>()).collect();
        let (first, last) = (losses[..5].iter().sum::<f32>() / 5.0, losses[35..].iter().sum::<f32>() / 5.0);
        assert!(last < first * 0.5, "loss went from {first} to {last}");
    }

    #[test]
    fn head_only_leaves_the_convolutions_untouched() {
        let device = Device::flex();
        let report_layout = Network::Cnn(CnnConfig { channels: [4, 8, 8], hidden: 16, dropout: 0.0, batch_norm: true }.init(&device));
        let compact = Network::Compact(
            crate::CompactConfig {
                stages: crate::Block::plain(vec![vec![4], vec![8], vec![8, 8]]),
                pooled_side: 1,
                hidden: 16,
                dropout: 0.3,
            }
            .init(&device),
        );
        for network in [report_layout, compact] {
            let before = network.clone().into_record().into_bytes().unwrap().to_vec();
            let mut tuner = FineTuner::new(
                &network,
                &device,
                FineTuneConfig { batch_size: 10, user_per_batch: 10, ..FineTuneConfig::default() },
                fixed_images(),
                LabelledImages::default(),
            );
            for _ in 0..3 {
                tuner.step();
            }
            let after = tuner.network();
            assert!(after.conv_weights_equal(&network), "a frozen convolution changed");
            let after = after.into_record().into_bytes().unwrap().to_vec();
            assert_ne!(before, after, "nothing was trained");
        }
    }
}
