//! The networks, as burn modules: the logistic-regression baseline, the report's CNN (and the
//! batch-norm variant shipped before the pose-robust model), and the compact CNN the page
//! ships now ([`crate::compact`]).
//!
//! Both take a batch of images `[batch, 28, 28]` with pixels in `0..=1` (Fashion-MNIST's
//! `pixels / 255`, or the output of [`crate::preprocess`]) and return logits `[batch, classes]`:
//! the ten Fashion-MNIST classes, then any the user added ([`crate::head`]).

use burn::{
    module::{ModuleMapper, ModuleVisitor, Param},
    nn::{
        BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
        conv::{Conv2d, Conv2dConfig},
        pool::{MaxPool2d, MaxPool2dConfig},
    },
    prelude::*,
    tensor::{Transaction, activation::relu},
};
use serde::{Deserialize, Serialize};

use crate::{
    IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES,
    compact::{CompactCnn, CompactConfig},
};

/// Which network a weights file holds, with everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    /// 784 → 10 softmax regression, the report's baseline.
    Logistic,
    /// The report's convolutional network (Flatten → Dense head), with or without batch norm.
    Cnn(CnnConfig),
    /// The compact CNN with a pooled head, shipped since weights format 2.
    Compact(CompactConfig),
}

impl Architecture {
    /// Short human name, used in logs, reports and the page.
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Logistic => "logistic regression",
            Architecture::Cnn(c) if *c == CnnConfig::report() => "CNN (report)",
            Architecture::Cnn(_) => "CNN (report layout + batch norm)",
            Architecture::Compact(_) => "compact CNN",
        }
    }

    /// Whether this is one of the convolutional networks (the page's main model) rather
    /// than the baseline.
    pub fn is_cnn(&self) -> bool {
        !matches!(self, Architecture::Logistic)
    }

    /// Multiply-adds of one forward pass on one image.
    pub fn multiply_adds(&self) -> u64 {
        match self {
            Architecture::Logistic => (IMAGE_PIXELS * NUM_CLASSES) as u64,
            Architecture::Cnn(c) => c.multiply_adds(),
            Architecture::Compact(c) => c.multiply_adds(),
        }
    }

    /// Refuses shapes that cannot be built (a weights file's header is untrusted input).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Architecture::Logistic => Ok(()),
            Architecture::Cnn(c) if c.channels.contains(&0) || c.hidden == 0 => Err("a layer with no channels".into()),
            Architecture::Cnn(_) => Ok(()),
            Architecture::Compact(c) => c.validate(),
        }
    }

    /// A fresh, randomly initialised network of this architecture.
    pub fn init(&self, device: &Device) -> Network {
        match self {
            Architecture::Logistic => Network::Logistic(Logistic::new(device)),
            Architecture::Cnn(config) => Network::Cnn(config.init(device)),
            Architecture::Compact(config) => Network::Compact(config.init(device)),
        }
    }
}

/// The CNN's shape. Three 3×3 'same' conv blocks, max-pool 2×2 after the first two,
/// flatten (7·7·c3), a dense hidden layer, dropout, and the 10-way output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// Output channels of the three conv layers.
    pub channels: [usize; 3],
    /// Width of the dense hidden layer.
    pub hidden: usize,
    /// Dropout before the output layer.
    pub dropout: f64,
    /// Batch normalisation after each conv (not in the report; it trains faster and generalises better).
    pub batch_norm: bool,
}

impl CnnConfig {
    /// Exactly the report's CNN: Conv 32/64/128, Dense 128, Dropout 0.5, no batch norm.
    pub fn report() -> Self {
        Self { channels: [32, 64, 128], hidden: 128, dropout: 0.5, batch_norm: false }
    }

    /// The network the page ships: the report's layout plus batch norm, which lifts test
    /// accuracy for the same parameter count and inference cost (see README).
    pub fn shipped() -> Self {
        Self { batch_norm: true, ..Self::report() }
    }

    /// Multiply-adds of one forward pass on one image (convolutions and dense layers).
    pub fn multiply_adds(&self) -> u64 {
        let [c1, c2, c3] = self.channels;
        let (s28, s14, s7) = (IMAGE_PIXELS, IMAGE_PIXELS / 4, (IMAGE_SIDE / 4) * (IMAGE_SIDE / 4));
        (s28 * 9 * c1 + s14 * 9 * c1 * c2 + s7 * 9 * c2 * c3 + self.flat_features() * self.hidden + self.hidden * NUM_CLASSES) as u64
    }

    fn flat_features(&self) -> usize {
        // Two 2×2 pools: 28 → 14 → 7.
        self.channels[2] * (IMAGE_SIDE / 4) * (IMAGE_SIDE / 4)
    }

    pub fn init(&self, device: &Device) -> Cnn {
        let conv = |cin: usize, cout: usize| Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Same).init(device);
        let [c1, c2, c3] = self.channels;
        let norm = |c: usize| self.batch_norm.then(|| BatchNormConfig::new(c).init(device));
        Cnn {
            conv1: conv(1, c1),
            norm1: norm(c1),
            conv2: conv(c1, c2),
            norm2: norm(c2),
            conv3: conv(c2, c3),
            norm3: norm(c3),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(self.flat_features(), self.hidden).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc2: LinearConfig::new(self.hidden, NUM_CLASSES).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Cnn {
    pub(crate) conv1: Conv2d,
    pub(crate) norm1: Option<BatchNorm>,
    pub(crate) conv2: Conv2d,
    pub(crate) norm2: Option<BatchNorm>,
    pub(crate) conv3: Conv2d,
    pub(crate) norm3: Option<BatchNorm>,
    pub(crate) pool: MaxPool2d,
    pub(crate) fc1: Linear,
    dropout: Dropout,
    pub(crate) fc2: Linear,
}

impl Cnn {
    pub fn forward(&self, images: Tensor<3>) -> Tensor<2> {
        self.fc2.forward(self.dropout.forward(self.features(images)))
    }

    /// The dense hidden layer's output (after ReLU): what the output layer weighs.
    pub fn features(&self, images: Tensor<3>) -> Tensor<2> {
        let [batch, h, w] = images.dims();
        let x = images.reshape([batch, 1, h, w]);
        let block = |x: Tensor<4>, conv: &Conv2d, norm: &Option<BatchNorm>| {
            let x = conv.forward(x);
            let x = match norm {
                Some(norm) => norm.forward(x),
                None => x,
            };
            relu(x)
        };
        let x = self.pool.forward(block(x, &self.conv1, &self.norm1));
        let x = self.pool.forward(block(x, &self.conv2, &self.norm2));
        let x = block(x, &self.conv3, &self.norm3);
        let x = x.flatten::<2>(1, 3);
        relu(self.fc1.forward(x))
    }
}

/// Softmax regression on raw pixels.
#[derive(Module, Debug)]
pub struct Logistic {
    pub(crate) linear: Linear,
}

impl Logistic {
    pub fn new(device: &Device) -> Self {
        Self { linear: LinearConfig::new(IMAGE_PIXELS, NUM_CLASSES).init(device) }
    }

    pub fn forward(&self, images: Tensor<3>) -> Tensor<2> {
        let [batch, h, w] = images.dims();
        self.linear.forward(images.reshape([batch, h * w]))
    }
}

/// Either network, so callers (trainer, page) hold one type whatever the weights file holds.
#[derive(Module, Debug)]
pub enum Network {
    Logistic(Logistic),
    Cnn(Cnn),
    Compact(CompactCnn),
}

impl Network {
    /// Freezes the convolutional feature extractor (weights and batch-norm statistics) and
    /// turns dropout off, so that training changes only the dense head. The baseline has no features to freeze.
    pub fn freeze_features(self) -> Self {
        match self {
            Network::Logistic(m) => Network::Logistic(m),
            Network::Cnn(m) => Network::Cnn(Cnn {
                conv1: m.conv1.freeze(),
                norm1: m.norm1.map(Module::freeze),
                conv2: m.conv2.freeze(),
                norm2: m.norm2.map(Module::freeze),
                conv3: m.conv3.freeze(),
                norm3: m.norm3.map(Module::freeze),
                // No dropout either: a short run on a few photos does not need it, and without
                // it the result no longer depends on each backend's random numbers.
                dropout: m.dropout.freeze(),
                ..m
            }),
            Network::Compact(m) => Network::Compact(m.freeze_features()),
        }
    }

    #[cfg(test)]
    pub(crate) fn conv_weights_equal(&self, other: &Network) -> bool {
        match (self, other) {
            (Network::Cnn(a), Network::Cnn(b)) => [(&a.conv1, &b.conv1), (&a.conv2, &b.conv2), (&a.conv3, &b.conv3)]
                .iter()
                .all(|(x, y)| x.weight.val().into_data() == y.weight.val().into_data()),
            (Network::Compact(a), Network::Compact(b)) => a.conv_weights() == b.conv_weights(),
            _ => false,
        }
    }

    /// The network to classify with: the compact CNN with batch norm folded into its
    /// convolutions ([`CompactCnn::folded`]); the other networks unchanged. Fine-tuning and
    /// saving use `self`.
    pub fn for_inference(&self) -> Network {
        match self {
            Network::Compact(m) => Network::Compact(m.folded()),
            other => other.clone(),
        }
    }

    /// Logits `[batch, classes]` for images `[batch, 28, 28]` in `0..=1`.
    pub fn forward(&self, images: Tensor<3>) -> Tensor<2> {
        match self {
            Network::Logistic(m) => m.forward(images),
            Network::Cnn(m) => m.forward(images),
            Network::Compact(m) => m.forward(images),
        }
    }
}

/// A copy of `network` on `target`, its parameters read asynchronously. Saving a network reads
/// every parameter, and WebGPU in the browser cannot read synchronously: copy a network that
/// lives on the GPU to the CPU with this first, then encode it.
pub async fn copy_to_device_async(network: &Network, target: &Device) -> Result<Network, burn::tensor::ExecutionError> {
    struct Collect(Option<Transaction>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 = self.0.take().map(|tx| tx.register(param.val()));
        }
    }
    struct Place {
        values: std::vec::IntoIter<TensorData>,
        device: Device,
    }
    impl ModuleMapper for Place {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let value = self.values.next().expect("a module maps its parameters in the order it visits them");
            let (id, _, mapper) = param.consume();
            Param::from_mapped_value(id, Tensor::from_data(value, &self.device), mapper)
        }
    }
    let network = network.valid();
    let mut collect = Collect(Some(Transaction::default()));
    network.visit(&mut collect);
    let values = collect.0.expect("set above").execute_async().await?;
    Ok(network.map(&mut Place { values: values.into_iter(), device: target.clone() }))
}

/// Builds a `[n, 28, 28]` input tensor from `n × 784` pixels in `0..=1`.
pub fn images_tensor(pixels: Vec<f32>, device: &Device) -> Tensor<3> {
    let n = pixels.len() / IMAGE_PIXELS;
    assert_eq!(n * IMAGE_PIXELS, pixels.len(), "pixel buffer is not a whole number of images");
    Tensor::from_data(TensorData::new(pixels, [n, IMAGE_SIDE, IMAGE_SIDE]), device)
}

/// Softmax of one row of logits, of any width, on the host (cheap for a few dozen classes, and
/// avoids a device read-back per op).
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = out.iter().sum();
    out.iter_mut().for_each(|o| *o /= sum);
    out
}

/// Row-wise [`softmax`] of `n × 10` logits: the Fashion-MNIST evaluations' fixed width.
pub fn softmax_rows(logits: &[f32]) -> Vec<[f32; NUM_CLASSES]> {
    logits.chunks_exact(NUM_CLASSES).map(|row| softmax(row).try_into().expect("a row of ten")).collect()
}

/// Index of the largest value (first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_cnn_has_the_reports_shape_and_stays_under_a_million_parameters() {
        let device = Device::flex();
        let report = CnnConfig::report().init(&device);
        // conv 320 + 18,496 + 73,856; dense 6272·128+128 = 802,944; out 1,290.
        assert_eq!(report.num_params(), 896_906);
        // The figure the issues quote: 8.3M multiply-adds per image.
        assert_eq!(CnnConfig::report().multiply_adds(), 8_255_232);
        let shipped = CnnConfig::shipped().init(&device);
        assert!(shipped.num_params() < 1_000_000);
        let x = images_tensor(vec![0.5; 2 * IMAGE_PIXELS], &device);
        assert_eq!(shipped.forward(x).dims(), [2, NUM_CLASSES]);
    }

    #[test]
    fn async_copy_to_another_device_keeps_every_parameter() {
        let device = Device::flex();
        let network = Network::Cnn(CnnConfig::shipped().init(&device));
        let copy = futures_lite_block_on(copy_to_device_async(&network, &device)).unwrap();
        let x = images_tensor((0..2 * IMAGE_PIXELS).map(|i| (i % 7) as f32 / 7.0).collect(), &device);
        let (a, b) = (network.forward(x.clone()).into_data(), copy.forward(x).into_data());
        assert_eq!(a, b);
        let bytes = |n: Network| n.into_record().into_bytes().unwrap().to_vec();
        assert_eq!(bytes(network), bytes(copy));
    }

    /// The future above completes without waiting on anything on a CPU device.
    fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn logistic_is_784_to_10() {
        let device = Device::flex();
        let lr = Logistic::new(&device);
        assert_eq!(lr.num_params(), 7_850);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_argmax_picks_the_largest() {
        let p = softmax_rows(&[0., 1., 2., 3., 4., 5., 6., 7., 8., 30.]);
        assert!((p[0].iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(argmax(&p[0]), 9);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
