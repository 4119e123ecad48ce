//! The compact CNN's inference written by hand, for the page's CPU path (one core, wasm SIMD).
//!
//! Why by hand: burn Flex runs each convolution as im2col, then a general matrix product,
//! which in the tab leaves most of a core's 128-bit SIMD throughput unused (the figures, and
//! TF.js's XNNPACK on the same core: `docs/benchmarks.md`).
//!
//! Every convolution whose input has channels in fours runs in Winograd's form
//! ([`crate::winograd`]: about half the multiply-adds); the first (one input channel) runs
//! directly over channels-last maps kept with a zero border (no im2col, no padding branches),
//! with the sums of 4 output pixels × 8 output channels held in registers while the input
//! channels go by: per input channel, 2 weight loads and 4 pixel loads feed 32 multiply-adds.
//! The 4 pixels are consecutive in reading order, across row ends, so that a row whose length
//! is not a multiple of 4 does not leave its last pixels to a one-pixel block. Wider blocks
//! would not fit: wasm engines give 16 vector registers, too few for the sums of 5 or 6 pixels,
//! the weights and the products. ReLU, the max-pools and the pooled head are written out
//! plainly.
//!
//! Inference only, from the network with batch norm folded into its convolutions
//! ([`crate::compact::CompactCnn::folded`]); training and fine-tuning stay on burn. The same
//! code runs natively (for the tests, with a portable 4-lane type, [`crate::lanes`]) and in
//! wasm32 with `simd128` (wasm SIMD intrinsics).

use crate::{
    IMAGE_PIXELS, IMAGE_SIDE,
    blocks::{Map, accumulate},
    lanes::V4,
    winograd::{Scratch, Winograd},
};

/// Output pixels of one register block.
const PIXELS: usize = 4;
/// Output channels of one register block (two 4-lane vectors).
const CHANNELS: usize = 8;

/// A 3×3 'same' convolution followed by ReLU (by the shortcut, then ReLU, in the second
/// convolution of a residual block).
#[derive(Clone, Debug)]
pub struct Conv3x3 {
    pub cin: usize,
    pub cout: usize,
    /// `[ky][kx][cin][cout]`: a block's output channels are contiguous.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    /// A 2×2 max-pool halves the maps before this convolution (the first of every stage but the first).
    pub pool_before: bool,
    /// The previous convolution's input is added (zero-padded) before the ReLU
    /// ([`crate::plan::ConvStep::shortcut`]).
    pub shortcut: bool,
}

impl Conv3x3 {
    /// From burn's layout, `[cout][cin][ky][kx]`.
    pub fn from_oihw(cin: usize, cout: usize, oihw: &[f32], bias: Vec<f32>, pool_before: bool) -> Self {
        assert_eq!(oihw.len(), cout * cin * 9);
        let mut weights = vec![0.0; oihw.len()];
        for o in 0..cout {
            for i in 0..cin {
                for k in 0..9 {
                    weights[(k * cin + i) * cout + o] = oihw[(o * cin + i) * 9 + k];
                }
            }
        }
        Self { cin, cout, weights, bias, pool_before, shortcut: false }
    }

    /// This convolution as the second of a residual block.
    pub fn with_shortcut(self) -> Self {
        Self { shortcut: true, ..self }
    }
}

/// A dense layer, `[inputs][outputs]` as burn stores it.
#[derive(Clone, Debug)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// What a [`DirectCnn`] is built from: the network's convolutions (batch norm folded) and
/// dense layers as plain vectors, in order. Plain data, so that another thread (the page's
/// worker) can be sent them and build the same network there.
#[derive(Clone, Debug)]
pub struct DirectParts {
    pub convs: Vec<Conv3x3>,
    /// Side of the grid the last maps are average-pooled to.
    pub pooled_side: usize,
    pub hidden: Dense,
    pub output: Dense,
}

/// The compact CNN ready to classify: see the module's documentation.
#[derive(Clone, Debug)]
pub struct DirectCnn {
    layers: Vec<Layer>,
    pooled_side: usize,
    hidden: Dense,
    output: Dense,
}

impl DirectCnn {
    /// `None` when the shape is not one these kernels handle (a channel count that is not a
    /// multiple of 8, a head that does not match): the caller keeps burn's forward pass.
    pub fn new(parts: DirectParts) -> Option<Self> {
        let DirectParts { convs, pooled_side, hidden, output } = parts;
        let mut cin = 1;
        for (i, conv) in convs.iter().enumerate() {
            if conv.cin != cin || conv.cout % CHANNELS != 0 || conv.bias.len() != conv.cout || conv.weights.len() != 9 * cin * conv.cout {
                return None;
            }
            // A shortcut adds the previous convolution's input (after its pool), widened.
            if conv.shortcut && (i == 0 || conv.pool_before || convs[i - 1].cin > conv.cout) {
                return None;
            }
            cin = conv.cout;
        }
        let pools = convs.iter().filter(|c| c.pool_before).count();
        let side = IMAGE_SIDE >> pools;
        let fits = !convs.is_empty()
            && !convs[0].pool_before
            && (1..=side).contains(&pooled_side)
            && hidden.inputs == cin * pooled_side * pooled_side
            && output.inputs == hidden.outputs
            && output.outputs > 0
            && [&hidden, &output].iter().all(|d| d.weights.len() == d.inputs * d.outputs && d.bias.len() == d.outputs);
        if !fits {
            return None;
        }
        let layers = convs
            .into_iter()
            .map(|conv| {
                let (pool_before, shortcut) = (conv.pool_before, conv.shortcut);
                // The shortcut's sum takes the ReLU: the kernel leaves it out.
                let kernel = match Winograd::new(conv.cin, conv.cout, &conv.weights, conv.bias.clone()) {
                    Some(winograd) => Kernel::Winograd(winograd.with_relu(!shortcut)),
                    None => Kernel::Direct(conv),
                };
                Layer { kernel, pool_before, shortcut }
            })
            .collect();
        Some(Self { layers, pooled_side, hidden, output })
    }

    /// Logits (n × classes) for `pixels` (n × 784, in 0..=1).
    pub fn forward(&self, pixels: &[f32]) -> Vec<f32> {
        let mut maps = Maps::default();
        let mut out = Vec::with_capacity(pixels.len() / IMAGE_PIXELS * self.output.outputs);
        for image in pixels.chunks_exact(IMAGE_PIXELS) {
            out.extend(self.forward_one(image, &mut maps));
        }
        out
    }

    fn forward_one(&self, image: &[f32], maps: &mut Maps) -> Vec<f32> {
        let mut side = IMAGE_SIDE;
        maps.input.reset(side, 1);
        for y in 0..side {
            for x in 0..side {
                maps.input.set(y, x, 0, image[y * side + x]);
            }
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.pool_before {
                side /= 2;
                max_pool(&maps.input, &mut maps.output, side);
                std::mem::swap(&mut maps.input, &mut maps.output);
            }
            if self.layers.get(i + 1).is_some_and(|next| next.shortcut) {
                maps.skip.copy_from(&maps.input);
            }
            maps.output.reset(side, layer.cout());
            match &layer.kernel {
                Kernel::Direct(conv) => convolve(conv, &maps.input, &mut maps.output),
                Kernel::Winograd(conv) => conv.apply(&maps.input, &mut maps.output, &mut maps.scratch),
            }
            if layer.shortcut {
                add_and_relu(&mut maps.output, &maps.skip);
            }
            std::mem::swap(&mut maps.input, &mut maps.output);
        }
        let flat = average_pool(&maps.input, self.pooled_side);
        let mut hidden = dense(&self.hidden, &flat);
        hidden.iter_mut().for_each(|h| *h = h.max(0.0));
        dense(&self.output, &hidden)
    }
}

/// One convolution of the network, in the kernels that run it fastest: Winograd's form
/// wherever the channels fit it, direct for the first (one input channel).
#[derive(Clone, Debug)]
enum Kernel {
    Direct(Conv3x3),
    Winograd(Winograd),
}

#[derive(Clone, Debug)]
struct Layer {
    kernel: Kernel,
    /// A 2×2 max-pool halves the maps before this convolution.
    pool_before: bool,
    /// The kernel's output (without ReLU) gets the previous layer's input added, then ReLU.
    shortcut: bool,
}

impl Layer {
    fn cout(&self) -> usize {
        match &self.kernel {
            Kernel::Direct(conv) => conv.cout,
            Kernel::Winograd(conv) => conv.cout,
        }
    }
}

/// The two maps a forward pass alternates between, a residual block's input and the
/// Winograd kernels' buffers, kept across images.
#[derive(Default)]
struct Maps {
    input: Map,
    output: Map,
    skip: Map,
    scratch: Scratch,
}

/// `output ← relu(output + skip)`, `skip`'s channels added to the first of `output`'s (the
/// rest of a widening shortcut is zero); borders stay zero.
fn add_and_relu(output: &mut Map, skip: &Map) {
    assert!(skip.side == output.side && skip.channels <= output.channels);
    let (from, to) = (skip.channels, output.channels);
    for (out, add) in output.data.chunks_exact_mut(to).zip(skip.data.chunks_exact(from)) {
        out[..from].iter_mut().zip(add).for_each(|(o, a)| *o += a);
        out.iter_mut().for_each(|o| *o = o.max(0.0));
    }
}

pub(crate) fn convolve(conv: &Conv3x3, input: &Map, output: &mut Map) {
    let side = input.side;
    let (cin, cout) = (conv.cin, conv.cout);
    // What `block` reads and writes unchecked lies inside these three buffers.
    assert!(input.channels == cin && output.channels == cout && output.side == side);
    assert!(input.data.len() == (side + 2) * (side + 2) * cin && output.data.len() == (side + 2) * (side + 2) * cout);
    assert!(conv.weights.len() == 9 * cin * cout && conv.bias.len() == cout && cout % CHANNELS == 0);
    // Blocks run over the output pixels in reading order, across row ends: a 7-pixel row
    // would otherwise leave 3 of 7 pixels to the slow one-pixel block.
    let pixels = side * side;
    for co in (0..cout).step_by(CHANNELS) {
        let mut first = 0;
        while first + PIXELS <= pixels {
            block::<PIXELS>(conv, input, output, co, first);
            first += PIXELS;
        }
        while first < pixels {
            block::<1>(conv, input, output, co, first);
            first += 1;
        }
    }
}

/// Output pixels `first..first + P` (in reading order), channels `co..co + 8`. The innermost
/// loop runs 9 × `cin` times per block, so it reads through raw pointers: bounds checks there
/// cost more than the arithmetic ([`convolve`] checks the buffers' sizes once).
#[inline(always)]
fn block<const P: usize>(conv: &Conv3x3, input: &Map, output: &mut Map, co: usize, first: usize) {
    let (cin, cout, side) = (conv.cin, conv.cout, input.side);
    let wide = side + 2;
    // Output pixel (y, x) reads the padded pixels (y + ky, x + kx): padded row y + ky holds
    // input row y + ky − 1, so its top-left tap starts at padded (y, x).
    let at: [(usize, usize); P] = std::array::from_fn(|p| ((first + p) / side, (first + p) % side));
    let start: [usize; P] = at.map(|(y, x)| (y * wide + x) * cin);
    let bias = [V4::load(&conv.bias[co..]), V4::load(&conv.bias[co + 4..])];
    let mut acc = [bias; P];
    for ky in 0..3 {
        for kx in 0..3 {
            // Every offset stays inside the buffers for y, x < side and co + 8 ≤ cout
            // (asserted in `convolve`).
            // SAFETY: see above; `V4::read` allows unaligned addresses.
            unsafe {
                let taps = input.data.as_ptr().add((ky * wide + kx) * cin);
                let weights = conv.weights.as_ptr().add((ky * 3 + kx) * cin * cout + co);
                accumulate(&mut acc, start.map(|s| taps.add(s)), weights, cin, cout);
            }
        }
    }
    // A residual block's second convolution takes its ReLU after the shortcut.
    let relu = |v: V4| if conv.shortcut { v } else { v.relu() };
    for (&(y, x), acc) in at.iter().zip(&acc) {
        let to = output.at(y, x) + co;
        relu(acc[0]).store(&mut output.data[to..]);
        relu(acc[1]).store(&mut output.data[to + 4..]);
    }
}

/// 2×2 max-pool of `input` into `output` (`side` a side after pooling).
fn max_pool(input: &Map, output: &mut Map, side: usize) {
    let channels = input.channels;
    output.reset(side, channels);
    for y in 0..side {
        for x in 0..side {
            let to = output.at(y, x);
            let from = [input.at(2 * y, 2 * x), input.at(2 * y, 2 * x + 1), input.at(2 * y + 1, 2 * x), input.at(2 * y + 1, 2 * x + 1)];
            for c in 0..channels {
                let m = from.iter().map(|&f| input.data[f + c]).fold(f32::NEG_INFINITY, f32::max);
                output.data[to + c] = m;
            }
        }
    }
}

/// Rows (or columns) `start..end` of an `s`-pixel side that cell `i` of a `k`-cell adaptive
/// average pool covers: `⌊i·s/k⌋..⌈(i+1)·s/k⌉`, as burn's.
pub(crate) fn pool_span(i: usize, s: usize, k: usize) -> (usize, usize) {
    (i * s / k, ((i + 1) * s).div_ceil(k))
}

/// Adaptive average pooling to a `k × k` grid (cell `i` spans `⌊i·s/k⌋..⌈(i+1)·s/k⌉`, as
/// burn's), flattened channel-major as burn flattens `[c, k, k]`.
fn average_pool(input: &Map, k: usize) -> Vec<f32> {
    let (s, channels) = (input.side, input.channels);
    let span = |i: usize| pool_span(i, s, k);
    let mut out = vec![0.0; channels * k * k];
    for i in 0..k {
        let (y0, y1) = span(i);
        for j in 0..k {
            let (x0, x1) = span(j);
            let count = ((y1 - y0) * (x1 - x0)) as f32;
            for c in 0..channels {
                let mut sum = 0.0;
                for y in y0..y1 {
                    for x in x0..x1 {
                        sum += input.data[input.at(y, x) + c];
                    }
                }
                out[(c * k + i) * k + j] = sum / count;
            }
        }
    }
    out
}

fn dense(layer: &Dense, x: &[f32]) -> Vec<f32> {
    let mut out = layer.bias.clone();
    for (i, &v) in x.iter().enumerate() {
        if v == 0.0 {
            continue;
        }
        let row = &layer.weights[i * layer.outputs..(i + 1) * layer.outputs];
        out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2654435761).max(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as f32 / u32::MAX as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn matches_the_direct_convolution_on_even_and_odd_sides() {
        let (cin, cout) = (8, 16);
        for side in [1, 2, 3, 5, 7, 14] {
            let oihw = noise(cout * cin * 9, 1);
            let bias = noise(cout, 2);
            let direct = Conv3x3::from_oihw(cin, cout, &oihw, bias.clone(), false);
            let winograd = Winograd::new(cin, cout, &direct.weights, bias).expect("channels fit");
            let mut input = Map::default();
            input.reset(side, cin);
            let values = noise(side * side * cin, side as u32 + 3);
            for y in 0..side {
                for x in 0..side {
                    for c in 0..cin {
                        input.set(y, x, c, values[(y * side + x) * cin + c]);
                    }
                }
            }
            let (mut want, mut got) = (Map::default(), Map::default());
            want.reset(side, cout);
            got.reset(side, cout);
            convolve(&direct, &input, &mut want);
            winograd.apply(&input, &mut got, &mut Scratch::default());
            // Border included: it must stay zero.
            let worst = want.data.iter().zip(&got.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-5, "side {side}: differs by {worst}");
            assert!(want.data.iter().any(|&v| v > 0.0), "side {side}: the test compares something");
        }
    }
}
