//! The shipped network: a compact VGG-style CNN. Stages of 3×3 conv blocks (conv, batch norm,
//! ReLU) at 28×28, 14×14 and 7×7 with a 2×2 max-pool between stages, then average pooling
//! to a small grid (global average pooling when the grid is 1×1), a dense hidden layer,
//! dropout and the 10-way output.
//!
//! Against the report's CNN (Flatten of 7·7·128 into Dense 128: 803K of its 897K parameters)
//! the pooled head needs a fraction of the parameters, so the compute goes into more
//! convolutions instead, and the features it pools do not depend on where the item sits.
//! The dense hidden layer stays: fine-tuning in the tab trains the head only.

use burn::{
    module::{Param, RunningState},
    nn::{
        BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
        conv::{Conv2d, Conv2dConfig},
        pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig},
    },
    prelude::*,
    tensor::activation::relu,
};
use serde::{Deserialize, Serialize};

use crate::{
    NUM_CLASSES,
    direct::{Conv3x3, Dense, DirectCnn, DirectParts},
    plan::{self, Block, ConvStep},
};

/// Stages at most: a 2×2 max-pool between stages takes 28 → 14 → 7 → 3 pixels a side.
const MAX_STAGES: usize = 4;

/// The compact CNN's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactConfig {
    /// The blocks of each stage ([`Block`]: a conv block, or a residual block of two);
    /// stages run at 28, 14, 7 and 3 pixels a side.
    pub stages: Vec<Vec<Block>>,
    /// Side of the grid the last stage is average-pooled to before the head (1: global average pooling).
    pub pooled_side: usize,
    /// Width of the dense hidden layer.
    pub hidden: usize,
    /// Dropout before the output layer.
    pub dropout: f64,
}

impl CompactConfig {
    /// The network the page ships (chosen on the validation split and the development
    /// pictures; docs/experiments.md): a plain block at 28×28, then one residual block at 14×14
    /// and one at 7×7.
    pub fn shipped() -> Self {
        Self {
            stages: vec![vec![Block::Conv(24)], vec![Block::Residual { residual: 48 }], vec![Block::Residual { residual: 96 }]],
            pooled_side: 3,
            hidden: 128,
            dropout: 0.2,
        }
    }

    /// Side of the feature maps in stage `i` (the one rule for every engine: 7 pools to 3).
    pub fn stage_side(i: usize) -> usize {
        plan::stage_side(i)
    }

    /// The 3×3 convolutions the blocks unfold into, in order: what every implementation runs.
    pub fn steps(&self) -> Vec<ConvStep> {
        plan::steps(&self.stages)
    }

    fn last_channels(&self) -> usize {
        self.stages.iter().flatten().last().map_or(1, |b| b.width())
    }

    /// Multiply-adds of one forward pass on one image (convolutions and dense layers; batch
    /// norm, ReLU and pooling are a few per activation and left out, as is customary).
    pub fn multiply_adds(&self) -> u64 {
        let mut total = 0u64;
        for step in self.steps() {
            total += (step.side * step.side * step.cin * step.cout * 9) as u64;
        }
        let flat = self.last_channels() * self.pooled_side * self.pooled_side;
        total + (flat * self.hidden + self.hidden * NUM_CLASSES) as u64
    }

    /// Checks the shape before building it: four stages at most (28 → 14 → 7 → 3; the last
    /// pool drops the 7×7 maps' last row and column, whose receptive field the others cover),
    /// no empty stage or block without channels, no residual block that narrows its input,
    /// a grid no larger than the last stage's maps.
    pub fn validate(&self) -> Result<(), String> {
        if self.stages.is_empty() || self.stages.len() > MAX_STAGES {
            return Err(format!("{} stages; 1 to {MAX_STAGES} are possible (28, 14, 7 and 3 pixels a side)", self.stages.len()));
        }
        plan::check_blocks(&self.stages)?;
        let side = Self::stage_side(self.stages.len() - 1);
        if self.pooled_side == 0 || self.pooled_side > side || self.hidden == 0 {
            return Err(format!("pooled side {} must be 1..={side} and the hidden layer non-empty", self.pooled_side));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> CompactCnn {
        // A stage holds the convolutions of its blocks in order (a residual block's two
        // included): the module's tensors keep the paths files before residual blocks used.
        let mut stages: Vec<Vec<ConvBlock>> = self.stages.iter().map(|_| Vec::new()).collect();
        for step in self.steps() {
            stages[step.stage].push(ConvBlock::new(step, device));
        }
        let flat = self.last_channels() * self.pooled_side * self.pooled_side;
        CompactCnn {
            stages,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            head_pool: AdaptiveAvgPool2dConfig::new([self.pooled_side, self.pooled_side]).init(),
            fc1: LinearConfig::new(flat, self.hidden).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc2: LinearConfig::new(self.hidden, NUM_CLASSES).init(device),
        }
    }
}

/// 3×3 'same' convolution, batch norm, then (the second conv of a residual block) the
/// shortcut, then ReLU: one [`ConvStep`].
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub(crate) conv: Conv2d,
    /// `None` once folded into `conv` for inference ([`CompactCnn::folded`]); weights files
    /// always hold it.
    pub(crate) norm: Option<BatchNorm>,
    /// Adds the previous convolution's input before the ReLU ([`ConvStep::shortcut`]). Comes
    /// from the architecture, not the file: not a tensor.
    #[module(skip)]
    pub(crate) shortcut: bool,
    /// A 2×2 max-pool comes before it ([`ConvStep::pool_before`]); from the architecture too.
    #[module(skip)]
    pub(crate) pool_before: bool,
}

impl ConvBlock {
    fn new(step: ConvStep, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([step.cin, step.cout], [3, 3]).with_padding(PaddingConfig2d::Same).with_bias(false).init(device),
            norm: Some(BatchNormConfig::new(step.cout).init(device)),
            shortcut: step.shortcut,
            pool_before: step.pool_before,
        }
    }

    /// `skip`: the residual block's input, given exactly when this is its second convolution.
    fn forward(&self, x: Tensor<4>, skip: Option<Tensor<4>>) -> Tensor<4> {
        let x = self.conv.forward(x);
        let x = match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        relu(match skip {
            Some(skip) => x.clone() + zero_padded(skip, x.dims()[1]),
            None => x,
        })
    }

    fn freeze(self) -> Self {
        Self { conv: self.conv.freeze(), norm: self.norm.map(Module::freeze), ..self }
    }

    /// Batch norm folded into the convolution ([`fold_batch_norm`]): one pass over the
    /// activations instead of three.
    fn folded(&self) -> Self {
        match &self.norm {
            Some(norm) => {
                Self { conv: fold_batch_norm(&self.conv, norm), norm: None, shortcut: self.shortcut, pool_before: self.pool_before }
            }
            None => self.clone(),
        }
    }

    #[cfg(test)]
    pub(crate) fn weight_data(&self) -> TensorData {
        self.conv.weight.val().into_data()
    }
}

/// `x` with zero channels appended up to `channels` (a residual block's widening shortcut).
fn zero_padded(x: Tensor<4>, channels: usize) -> Tensor<4> {
    let [batch, have, h, w] = x.dims();
    if have >= channels {
        return x;
    }
    let zeros = Tensor::zeros([batch, channels - have, h, w], &x.device());
    Tensor::cat(vec![x, zeros], 1)
}

/// `conv` followed by `norm` (with its running statistics, as at inference) as one
/// convolution: `γ·(w∗x + b − μ)/√(σ² + ε) + β` has weights `w·s` and bias `(b − μ)·s + β`,
/// where `s = γ/√(σ² + ε)` per output channel.
pub(crate) fn fold_batch_norm(conv: &Conv2d, norm: &BatchNorm) -> Conv2d {
    let scale = norm.gamma.val() / (norm.running_var.value() + norm.epsilon).sqrt();
    let [cout, ..] = conv.weight.dims();
    let weight = conv.weight.val() * scale.clone().reshape([cout, 1, 1, 1]);
    let shift = match &conv.bias {
        Some(bias) => bias.val() - norm.running_mean.value(),
        None => -norm.running_mean.value(),
    };
    let bias = shift * scale + norm.beta.val();
    Conv2d { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)), ..conv.clone() }
}

/// The compact CNN's tensors as plain vectors in burn's layouts (conv weights
/// `[cout][cin][3][3]`, dense weights `[inputs][outputs]`), for code that trains it without
/// burn: the trainer's CPU kernels. Blocks in order, stage after stage.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactParams {
    pub blocks: Vec<BlockParams>,
    pub fc1: DenseParams,
    pub fc2: DenseParams,
}

/// One conv block: its 3×3 kernel (no bias: batch norm follows) and batch norm.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockParams {
    pub cin: usize,
    pub cout: usize,
    pub weight: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DenseParams {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Why plain parameters do not fit a network.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the parameters do not fit this network: {0}")]
pub struct ParamsMismatch(String);

fn plain<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data")
}

fn tensor<const D: usize>(values: &[f32], shape: [usize; D], like: &Tensor<D>) -> Result<Tensor<D>, ParamsMismatch> {
    if like.dims() != shape || values.len() != shape.iter().product::<usize>() {
        return Err(ParamsMismatch(format!("{} values of shape {shape:?} for a tensor of shape {:?}", values.len(), like.dims())));
    }
    Ok(Tensor::from_data(TensorData::new(values.to_vec(), shape), &like.device()))
}

#[derive(Module, Debug)]
pub struct CompactCnn {
    pub(crate) stages: Vec<Vec<ConvBlock>>,
    pub(crate) pool: MaxPool2d,
    pub(crate) head_pool: AdaptiveAvgPool2d,
    pub(crate) fc1: Linear,
    dropout: Dropout,
    pub(crate) fc2: Linear,
}

impl CompactCnn {
    pub fn forward(&self, images: Tensor<3>) -> Tensor<2> {
        self.fc2.forward(self.dropout.forward(self.features(images)))
    }

    /// The dense hidden layer's output (after ReLU): what the output layer weighs.
    pub fn features(&self, images: Tensor<3>) -> Tensor<2> {
        let [batch, h, w] = images.dims();
        let mut x = images.reshape([batch, 1, h, w]);
        // The previous convolution's input: a residual block's input when `block.shortcut`.
        let mut previous_input = x.clone();
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                x = self.pool.forward(x);
            }
            for block in stage {
                let skip = block.shortcut.then(|| previous_input.clone());
                previous_input = x.clone();
                x = block.forward(x, skip);
            }
        }
        let x = self.head_pool.forward(x).flatten::<2>(1, 3);
        relu(self.fc1.forward(x))
    }

    /// A copy for inference only, batch norm folded into the convolutions (same outputs as
    /// this network in evaluation mode, within float rounding). Never train or save it: the
    /// weights format and fine-tuning keep batch norm separate.
    pub fn folded(&self) -> Self {
        Self { stages: self.stages.iter().map(|s| s.iter().map(ConvBlock::folded).collect()).collect(), ..self.clone() }
    }

    /// The hand-written inference of this network ([`crate::direct`]: batch norm folded,
    /// weights read once); `None` where its kernels do not fit the shape, and the caller
    /// keeps burn's forward pass.
    pub fn direct(&self) -> Option<DirectCnn> {
        DirectCnn::new(self.direct_parts()?)
    }

    /// What [`Self::direct`] builds the kernels from (batch norm folded), to build them
    /// elsewhere; `None` where the layers are not 3×3 convolutions with biases.
    pub fn direct_parts(&self) -> Option<DirectParts> {
        let folded = self.folded();
        let read = |data: TensorData| data.convert::<f32>().try_to_vec::<f32>().ok();
        let mut convs = Vec::new();
        for block in folded.stages.iter().flatten() {
            let [cout, cin, kh, kw] = block.conv.weight.dims();
            if [kh, kw] != [3, 3] {
                return None;
            }
            let weights = read(block.conv.weight.val().into_data())?;
            let bias = read(block.conv.bias.as_ref()?.val().into_data())?;
            let conv = Conv3x3::from_oihw(cin, cout, &weights, bias, block.pool_before);
            convs.push(if block.shortcut { conv.with_shortcut() } else { conv });
        }
        let dense = |layer: &Linear| {
            let [inputs, outputs] = layer.weight.dims();
            let bias = match &layer.bias {
                Some(b) => read(b.val().into_data())?,
                None => vec![0.0; outputs],
            };
            Some(Dense { inputs, outputs, weights: read(layer.weight.val().into_data())?, bias })
        };
        let [side, other] = folded.head_pool.output_size;
        if side != other {
            return None;
        }
        Some(DirectParts { convs, pooled_side: side, hidden: dense(&folded.fc1)?, output: dense(&folded.fc2)? })
    }

    /// Every trained tensor and batch-norm statistic, as plain vectors.
    pub fn params(&self) -> CompactParams {
        let dense = |layer: &Linear| {
            let [inputs, outputs] = layer.weight.dims();
            DenseParams {
                inputs,
                outputs,
                weight: plain(layer.weight.val()),
                bias: layer.bias.as_ref().map_or_else(|| vec![0.0; outputs], |b| plain(b.val())),
            }
        };
        let blocks = self
            .stages
            .iter()
            .flatten()
            .map(|block| {
                let [cout, cin, ..] = block.conv.weight.dims();
                let norm = block.norm.as_ref().expect("a trainable network keeps batch norm separate");
                BlockParams {
                    cin,
                    cout,
                    weight: plain(block.conv.weight.val()),
                    gamma: plain(norm.gamma.val()),
                    beta: plain(norm.beta.val()),
                    running_mean: plain(norm.running_mean.value_sync()),
                    running_var: plain(norm.running_var.value_sync()),
                }
            })
            .collect();
        CompactParams { blocks, fc1: dense(&self.fc1), fc2: dense(&self.fc2) }
    }

    /// This network with `params` in place of its tensors (same shapes required).
    pub fn with_params(mut self, params: &CompactParams) -> Result<Self, ParamsMismatch> {
        let blocks: Vec<&mut ConvBlock> = self.stages.iter_mut().flatten().collect();
        if blocks.len() != params.blocks.len() {
            return Err(ParamsMismatch(format!("{} conv blocks for a network of {}", params.blocks.len(), blocks.len())));
        }
        for (block, p) in blocks.into_iter().zip(&params.blocks) {
            let weight = tensor(&p.weight, [p.cout, p.cin, 3, 3], &block.conv.weight.val())?;
            block.conv.weight = Param::from_tensor(weight);
            let norm = block.norm.as_mut().ok_or_else(|| ParamsMismatch("batch norm folded".into()))?;
            norm.gamma = Param::from_tensor(tensor(&p.gamma, [p.cout], &norm.gamma.val())?);
            norm.beta = Param::from_tensor(tensor(&p.beta, [p.cout], &norm.beta.val())?);
            norm.running_mean = RunningState::new(tensor(&p.running_mean, [p.cout], &norm.running_mean.value())?);
            norm.running_var = RunningState::new(tensor(&p.running_var, [p.cout], &norm.running_var.value())?);
        }
        for (layer, p) in [(&mut self.fc1, &params.fc1), (&mut self.fc2, &params.fc2)] {
            layer.weight = Param::from_tensor(tensor(&p.weight, [p.inputs, p.outputs], &layer.weight.val())?);
            let bias = layer.bias.as_ref().ok_or_else(|| ParamsMismatch("dense layer without bias".into()))?.val();
            layer.bias = Some(Param::from_tensor(tensor(&p.bias, [p.outputs], &bias)?));
        }
        Ok(self)
    }

    /// The convolutions and their batch-norm statistics frozen, dropout off: only the dense
    /// head trains (fine-tuning's default).
    pub fn freeze_features(self) -> Self {
        Self {
            stages: self.stages.into_iter().map(|s| s.into_iter().map(ConvBlock::freeze).collect()).collect(),
            dropout: self.dropout.freeze(),
            ..self
        }
    }

    #[cfg(test)]
    pub(crate) fn conv_weights(&self) -> Vec<TensorData> {
        self.stages.iter().flatten().map(ConvBlock::weight_data).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IMAGE_PIXELS, network::images_tensor};

    #[test]
    fn shipped_fits_the_parameter_and_compute_budget() {
        let device = Device::flex();
        let config = CompactConfig::shipped();
        config.validate().unwrap();
        let net = config.init(&device);
        // The residual network's budget (issue 29): ≤ 1M parameters, ≤ 24M multiply-adds.
        assert!(net.num_params() <= 1_000_000, "{}", net.num_params());
        assert!(config.multiply_adds() <= 24_000_000, "{}", config.multiply_adds());
        assert!(config.stages.iter().flatten().any(|b| matches!(b, Block::Residual { .. })), "the shipped network is residual");
        let x = images_tensor(vec![0.5; 3 * IMAGE_PIXELS], &device);
        assert_eq!(net.forward(x).dims(), [3, NUM_CLASSES]);
    }

    #[test]
    fn plain_parameters_round_trip_and_other_shapes_are_refused() {
        let device = Device::flex();
        let config = CompactConfig { stages: Block::plain(vec![vec![4], vec![8]]), pooled_side: 3, hidden: 16, dropout: 0.0 };
        let (a, b) = (config.init(&device), config.init(&device));
        let x = images_tensor((0..2 * IMAGE_PIXELS).map(|i| (i % 17) as f32 / 17.0).collect(), &device);
        let params = a.params();
        assert_eq!(params.blocks.len(), 2);
        assert_eq!(params.blocks[1].weight.len(), 8 * 4 * 9);
        let copied = b.with_params(&params).unwrap();
        assert_eq!(copied.params(), params);
        let (want, got) = (a.forward(x.clone()).into_data(), copied.forward(x).into_data());
        assert_eq!(want, got, "the copy computes what the original does");

        let mut wrong = params.clone();
        wrong.blocks[1].weight.pop();
        assert!(config.init(&device).with_params(&wrong).is_err());
        let mut fewer = params;
        fewer.blocks.pop();
        assert!(config.init(&device).with_params(&fewer).is_err());
    }

    #[test]
    fn a_3x3_grid_head_and_two_stages_also_build() {
        let device = Device::flex();
        let config = CompactConfig { stages: Block::plain(vec![vec![4], vec![8, 8]]), pooled_side: 3, hidden: 16, dropout: 0.0 };
        config.validate().unwrap();
        let x = images_tensor(vec![0.5; 2 * IMAGE_PIXELS], &device);
        assert_eq!(config.init(&device).forward(x).dims(), [2, NUM_CLASSES]);
    }

    #[test]
    fn impossible_shapes_are_refused() {
        let bad = [
            CompactConfig { stages: Block::plain(vec![]), ..CompactConfig::shipped() },
            CompactConfig { stages: vec![vec![Block::Conv(4)]; 5], ..CompactConfig::shipped() },
            CompactConfig { stages: vec![vec![Block::Conv(4)]; 4], pooled_side: 4, ..CompactConfig::shipped() },
            CompactConfig { stages: Block::plain(vec![vec![4], vec![]]), ..CompactConfig::shipped() },
            CompactConfig { pooled_side: 8, ..CompactConfig::shipped() },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    /// The hand-written kernels give burn's logits for the shipped weights, on varied inputs.
    #[test]
    fn the_direct_forward_pass_matches_burns() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/cnn.fmw")).unwrap();
        let device = Device::flex();
        let crate::network::Network::Compact(net) = crate::WeightsFile::decode(&bytes, &device).unwrap().network else {
            panic!("the shipped CNN is the compact one")
        };
        let direct = net.direct().expect("the shipped CNN fits the kernels");
        let mut pixels: Vec<f32> = (0..12 * IMAGE_PIXELS).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect();
        // A blank image and a white one: the borders and saturation.
        pixels.extend(vec![0.0; IMAGE_PIXELS]);
        pixels.extend(vec![1.0; IMAGE_PIXELS]);
        let expected = net.folded().forward(images_tensor(pixels.clone(), &device)).into_data().try_to_vec::<f32>().unwrap();
        let got = direct.forward(&pixels);
        assert_eq!(got.len(), expected.len());
        let worst = got.iter().zip(&expected).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(worst <= 1e-4 * scale.max(1.0), "largest logit difference {worst} (logits up to {scale})");
    }

    /// Channel counts that are not a multiple of 8 keep burn's forward pass.
    #[test]
    fn shapes_the_kernels_do_not_handle_are_refused() {
        let device = Device::flex();
        let odd = CompactConfig { stages: Block::plain(vec![vec![4], vec![8, 8]]), pooled_side: 3, hidden: 16, dropout: 0.0 };
        assert!(odd.init(&device).direct().is_none());
        let even = CompactConfig { stages: Block::plain(vec![vec![8], vec![16], vec![16, 24]]), pooled_side: 1, hidden: 16, dropout: 0.0 };
        let worst = largest_direct_difference(&even.init(&device), &device);
        assert!(worst <= 1e-4, "largest logit difference {worst} with global average pooling");
    }

    /// The largest difference between the hand-written kernels' logits and burn's (batch norm
    /// folded) for three varied images; panics if the kernels refuse the shape.
    fn largest_direct_difference(net: &CompactCnn, device: &Device) -> f32 {
        let pixels: Vec<f32> = (0..3 * IMAGE_PIXELS).map(|i| ((i * 31) % 97) as f32 / 96.0).collect();
        let expected = net.folded().forward(images_tensor(pixels.clone(), device)).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(expected.len(), 3 * NUM_CLASSES);
        let got = net.direct().expect("multiples of 8 fit").forward(&pixels);
        got.iter().zip(&expected).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
    }

    /// A fourth stage runs at 3×3 (the 7×7 maps pooled, their last row and column dropped):
    /// burn and the hand-written kernels agree on it, with and without the grid head.
    #[test]
    fn a_fourth_stage_at_3x3_runs_on_burn_and_the_kernels_alike() {
        let device = Device::flex();
        for pooled_side in [1, 3] {
            let config = CompactConfig {
                stages: Block::plain(vec![vec![8], vec![16], vec![16], vec![24, 32]]),
                pooled_side,
                hidden: 16,
                dropout: 0.0,
            };
            config.validate().unwrap();
            let worst = largest_direct_difference(&config.init(&device), &device);
            assert!(worst <= 1e-4, "largest logit difference {worst} with a {pooled_side}×{pooled_side} head");
        }
    }

    /// `net` with every batch norm's four vectors drawn at random (positive variances), so
    /// that folding and the shortcuts meet values other than a fresh network's 1s and 0s.
    fn with_random_batch_norm(net: CompactCnn, rng: &mut impl rand::Rng) -> CompactCnn {
        let mut params = net.params();
        for block in &mut params.blocks {
            let mut draw = |v: &mut Vec<f32>, low: f32, high: f32| v.iter_mut().for_each(|x| *x = rng.random_range(low..high));
            draw(&mut block.gamma, 0.5, 1.5);
            draw(&mut block.beta, -0.3, 0.3);
            draw(&mut block.running_mean, -0.2, 0.2);
            draw(&mut block.running_var, 0.5, 2.0);
        }
        net.with_params(&params).unwrap()
    }

    /// Random descriptions, residual blocks among them: burn's module and the page's kernels
    /// compute the same logits.
    #[test]
    fn random_descriptions_run_alike_on_burn_and_the_kernels() {
        use rand::{Rng, SeedableRng};
        let device = Device::flex();
        let mut rng = rand::rngs::StdRng::seed_from_u64(29);
        for _ in 0..8 {
            let stages = plan::random_stages(&mut rng, &[8, 16, 24]);
            let last_side = CompactConfig::stage_side(stages.len() - 1);
            let config = CompactConfig { stages, pooled_side: rng.random_range(1..=last_side.min(3)), hidden: 16, dropout: 0.0 };
            config.validate().unwrap();
            let net = with_random_batch_norm(config.init(&device), &mut rng);
            let worst = largest_direct_difference(&net, &device);
            assert!(worst <= 1e-4, "largest logit difference {worst} for {config:?}");
        }
    }

    /// A residual block whose second convolution and batch-norm shift are zero passes its
    /// input through (`relu(0 + x) = x` for the ReLU outputs it gets), so the network computes
    /// what it computes without the block; the widened channels are zero.
    #[test]
    fn a_residual_block_adds_its_input_to_its_second_convolution() {
        let device = Device::flex();
        let plain = CompactConfig { stages: Block::plain(vec![vec![8], vec![8]]), pooled_side: 1, hidden: 16, dropout: 0.0 };
        let residual =
            CompactConfig { stages: vec![vec![Block::Conv(8), Block::Residual { residual: 8 }], vec![Block::Conv(8)]], ..plain.clone() };
        assert_eq!(residual.steps().len(), 4);
        assert_eq!(residual.multiply_adds() - plain.multiply_adds(), 2 * 28 * 28 * 8 * 8 * 9);
        let a = plain.init(&device);
        let mut params = residual.init(&device).params();
        let from = a.params();
        params.blocks[0] = from.blocks[0].clone();
        params.blocks[2].weight.iter_mut().for_each(|w| *w = 0.0);
        params.blocks[3] = from.blocks[1].clone();
        (params.fc1, params.fc2) = (from.fc1.clone(), from.fc2.clone());
        let b = residual.init(&device).with_params(&params).unwrap();
        let x = images_tensor((0..2 * IMAGE_PIXELS).map(|i| (i % 23) as f32 / 22.0).collect(), &device);
        let (want, got) = (super::plain(a.forward(x.clone())), super::plain(b.forward(x)));
        let worst = want.iter().zip(&got).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-5, "the pass-through block changed the logits by {worst}");
    }

    /// Batch norm folded into the convolutions: the shipped weights give the same logits.
    #[test]
    fn folding_batch_norm_keeps_the_logits() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/cnn.fmw")).unwrap();
        let device = Device::flex();
        let crate::network::Network::Compact(net) = crate::WeightsFile::decode(&bytes, &device).unwrap().network else {
            panic!("the shipped CNN is the compact one")
        };
        let folded = net.folded();
        assert!(folded.stages.iter().flatten().all(|b| b.norm.is_none() && b.conv.bias.is_some()));
        assert!(folded.num_params() < net.num_params());
        let pixels: Vec<f32> = (0..16 * IMAGE_PIXELS).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect();
        let x = images_tensor(pixels, &device);
        let a = net.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let b = folded.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(worst <= 1e-5 * scale.max(1.0), "largest logit difference {worst} (logits up to {scale})");
    }
}
