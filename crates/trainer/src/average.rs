//! Averages of a network's weights: an exponential moving average (EMA) during training
//! ([`WeightAverage`]), and the plain average of the last epochs' weights after it
//! ([`average_last_epochs`], stochastic weight averaging).
//!
//! The average of the last few thousand steps' weights sits nearer the centre of the basin the
//! optimiser is moving around in than any single step's weights do, and usually scores a few
//! tenths of a point higher on held-out data for no extra cost at inference: the page ships the
//! average, not the last step. Batch-norm running statistics are averaged the same way, so the
//! averaged network is complete and needs no recalibration pass.

use anyhow::Result;
use burn::{
    module::{Module, ModuleMapper, ModuleVisitor, Param},
    prelude::*,
};
use fashion_model::{Architecture, LabelledImages, Network};
use serde::{Deserialize, Serialize};

use crate::{
    kernels::{AdamW, CpuTrainer},
    metrics::evaluate,
};

/// The averaged copy of a network being trained, kept off the autodiff graph.
pub struct WeightAverage {
    network: Network,
    decay: f64,
    updates: u64,
}

impl WeightAverage {
    /// Starts the average at `model`'s current weights. `decay` close to 1 averages over about
    /// `1 / (1 − decay)` steps.
    pub fn new(model: &Network, decay: f64) -> Self {
        Self { network: model.valid(), decay, updates: 0 }
    }

    /// Resumes an average saved with a checkpoint, `updates` steps in.
    pub fn restore(network: Network, decay: f64, updates: u64) -> Self {
        Self { network: network.valid(), decay, updates }
    }

    /// The decay in effect at this step: lower during the first steps, so that the average
    /// does not keep the random initial weights for thousands of steps (the usual warm-up,
    /// `(1 + t) / (10 + t)`).
    fn current_decay(&self) -> f64 {
        let t = self.updates as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Moves the average towards `model`'s weights after one optimiser step.
    pub fn update(&mut self, model: &Network) {
        let mut current = Collect(Vec::new());
        model.visit(&mut current);
        let mut blend = Blend { sources: current.0.into_iter(), decay: self.current_decay() };
        self.network = self.network.clone().map(&mut blend);
        self.updates += 1;
    }

    /// The averaged network, ready for evaluation.
    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn updates(&self) -> u64 {
        self.updates
    }
}

/// The average of the weights of epochs `first_epoch..=last_epoch`, as validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AveragedEpochs {
    pub first_epoch: usize,
    pub last_epoch: usize,
    pub val_loss: f64,
    pub val_accuracy: f64,
}

impl AveragedEpochs {
    /// "the average of epochs 35–44", or "epoch 44" for the last epoch alone.
    pub fn epochs(&self) -> String {
        match self.first_epoch == self.last_epoch {
            true => format!("epoch {}", self.last_epoch),
            false => format!("the average of epochs {}–{}", self.first_epoch, self.last_epoch),
        }
    }
}

/// Averages the weights of the last k `snapshots` (epoch, network; in epoch order) for every k,
/// re-estimates batch norm for each average on `recalibration` images (plain training images:
/// the running statistics of the epochs describe none of the averages), validates each on `val`
/// and returns them all, with the one of lowest validation loss and its network.
///
/// Why: at the end of a schedule the weights move around the bottom of a basin from epoch to
/// epoch; their average sits nearer its centre (Izmailov et al. 2018, "Averaging weights leads
/// to wider optima"). Measured on the shipped recipe: README "How the recipe was chosen".
pub fn average_last_epochs(
    arch: &Architecture,
    snapshots: Vec<(usize, Network)>,
    recalibration: &[f32],
    batch_size: usize,
    val: &LabelledImages,
    device: &Device,
) -> Result<(Vec<AveragedEpochs>, Option<(AveragedEpochs, Network)>)> {
    let last_epoch = snapshots.last().map_or(0, |(epoch, _)| *epoch);
    let (mut tried, mut best): (Vec<AveragedEpochs>, Option<(AveragedEpochs, Network)>) = (Vec::new(), None);
    let mut average: Option<Network> = None;
    for (k, (epoch, network)) in snapshots.into_iter().rev().enumerate() {
        let merged = match average.take() {
            None => network,
            Some(mean) => add_to_mean(mean, k, &network),
        };
        let candidate = recalibrated(arch, &merged, recalibration, batch_size, device)?;
        let eval = evaluate(&candidate, val, device, 500)?;
        let window = AveragedEpochs { first_epoch: epoch, last_epoch, val_loss: eval.loss, val_accuracy: eval.accuracy };
        if best.as_ref().is_none_or(|(b, _)| window.val_loss < b.val_loss) {
            best = Some((window.clone(), candidate));
        }
        tried.push(window);
        average = Some(merged);
    }
    Ok((tried, best))
}

/// The mean of `k` networks' weights and `next`'s: a blend with weight k / (k + 1).
fn add_to_mean(mean: Network, k: usize, next: &Network) -> Network {
    let mut current = Collect(Vec::new());
    next.visit(&mut current);
    mean.map(&mut Blend { sources: current.0.into_iter(), decay: k as f64 / (k + 1) as f64 })
}

/// `network` with its batch-norm running statistics re-estimated on `images` (the compact CNN,
/// through the training kernels' forward pass); networks without batch norm as they are.
fn recalibrated(arch: &Architecture, network: &Network, images: &[f32], batch_size: usize, device: &Device) -> Result<Network> {
    let (Architecture::Compact(config), Network::Compact(compact)) = (arch, network) else {
        return Ok(network.clone());
    };
    let mut kernels = CpuTrainer::new(config, &compact.params(), AdamW { weight_decay: 0.0 }, 0.0)?;
    kernels.recalibrate_batch_norm(images, batch_size)?;
    kernels.network(device)
}

/// Every float tensor of a module (parameters and running statistics), flattened, in visit order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().inner().flatten::<1>(0, D - 1));
    }
}

/// Replaces each float tensor `a` of the average with `decay·a + (1 − decay)·w`, where `w` is
/// the trained network's tensor at the same position (both networks share one architecture, so
/// visit order matches).
struct Blend {
    sources: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let source = self.sources.next().expect("the average and the trained network have the same architecture");
        let decay = self.decay;
        param.map(|average| {
            let dims = average.dims();
            let source = source.to_device(&average.device()).reshape(dims);
            average * decay + source * (1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fashion_model::{Architecture, Block, CompactConfig};

    fn weights(network: &Network) -> Vec<f32> {
        let mut all = Collect(Vec::new());
        network.visit(&mut all);
        all.0.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect()
    }

    /// Two initialisations of one tiny network: the weights before and after "training".
    fn start_and_later() -> (Network, Network) {
        let device = Device::default();
        let arch = Architecture::Compact(CompactConfig { stages: Block::plain(vec![vec![4]]), pooled_side: 1, hidden: 8, dropout: 0.0 });
        (arch.init(&device), arch.init(&device))
    }

    #[test]
    fn the_average_moves_part_of_the_way_towards_the_trained_weights() {
        let (start, later) = start_and_later();
        let mut average = WeightAverage::restore(start.clone(), 0.9, 1_000);
        average.update(&later);
        let (a, b, avg) = (weights(&start), weights(&later), weights(average.network()));
        assert_eq!(avg.len(), a.len());
        assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3), "two initialisations should differ");
        for ((x, y), m) in a.iter().zip(&b).zip(&avg) {
            assert!((m - (0.9 * x + 0.1 * y)).abs() < 1e-5, "{m} is not 0.9·{x} + 0.1·{y}");
        }
        assert_eq!(average.updates(), 1_001);
    }

    #[test]
    fn the_last_epochs_are_averaged_for_every_window_and_the_best_is_returned() {
        let device = Device::default();
        let arch = Architecture::Logistic; // no batch norm: the averages are exact means
        let nets: Vec<Network> = (0..3).map(|_| arch.init(&device)).collect();
        let (w1, w2, w3) = (weights(&nets[0]), weights(&nets[1]), weights(&nets[2]));
        let three = add_to_mean(add_to_mean(nets[2].clone(), 1, &nets[1]), 2, &nets[0]);
        for (((a, b), c), m) in w1.iter().zip(&w2).zip(&w3).zip(weights(&three)) {
            assert!((m - (a + b + c) / 3.0).abs() < 1e-6, "{m} is not the mean of {a}, {b}, {c}");
        }

        let mut val = LabelledImages { pixels: Vec::new(), labels: Vec::new() };
        for i in 0..40u8 {
            val.pixels.extend((0..fashion_model::IMAGE_PIXELS).map(|p| ((p * (i as usize + 3)) % 256) as u8));
            val.labels.push(i % 10);
        }
        let snapshots = nets.into_iter().enumerate().map(|(i, n)| (i + 5, n)).collect();
        let (tried, best) = average_last_epochs(&arch, snapshots, &[], 8, &val, &device).unwrap();
        let windows: Vec<(usize, usize)> = tried.iter().map(|t| (t.first_epoch, t.last_epoch)).collect();
        assert_eq!(windows, [(7, 7), (6, 7), (5, 7)], "the last epoch alone, then ever longer windows ending with it");
        let lowest = tried.iter().map(|t| t.val_loss).fold(f64::INFINITY, f64::min);
        let (window, network) = best.unwrap();
        assert_eq!(window.val_loss, lowest, "{window:?} is not the window of lowest validation loss");
        let best = evaluate(&network, &val, &device, 500).unwrap();
        assert!((best.loss - lowest).abs() < 1e-9, "returned the network with val loss {} instead of {lowest}", best.loss);
    }

    #[test]
    fn early_updates_follow_the_trained_weights_closely() {
        let (start, later) = start_and_later();
        let mut average = WeightAverage::new(&start, 0.999);
        average.update(&later);
        // First step: decay (1 + 0) / (10 + 0) = 0.1, so the average is 90% the new weights.
        let (a, b, avg) = (weights(&start), weights(&later), weights(average.network()));
        for ((x, y), m) in a.iter().zip(&b).zip(&avg) {
            assert!((m - (0.1 * x + 0.9 * y)).abs() < 1e-5);
        }
    }
}
