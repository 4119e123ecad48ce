//! The compact CNN's layers with their backward passes, on channels-last (NHWC) activations:
//! a row per pixel, the channels of a pixel contiguous, so that a 3×3 convolution is one
//! matrix product over `batch · side²` rows and batch norm runs along rows.

use rayon::prelude::*;

use super::matmul::{Layout, matmul};

/// Batch norm's epsilon and running-statistics momentum: burn's defaults, which the weights
/// file's networks use.
pub const BN_EPSILON: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;

/// A trained tensor with its gradient and Adam's two moments.
#[derive(Debug, Clone)]
pub struct Weights {
    pub value: Vec<f32>,
    pub grad: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl Weights {
    pub fn new(value: Vec<f32>) -> Self {
        let n = value.len();
        Self { value, grad: vec![0.0; n], m: vec![0.0; n], v: vec![0.0; n] }
    }
}

/// Grows `buffer` to `len` (never shrinks: the last, smaller batch of an epoch reuses it).
fn ensure(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// 2×2 max pooling with stride 2, remembering which input won.
#[derive(Debug, Default, Clone)]
pub struct MaxPool {
    /// Input side; an odd one drops its last row and column (burn's floor).
    pub side: usize,
    pub channels: usize,
    pub out: Vec<f32>,
    winner: Vec<u8>,
}

impl MaxPool {
    pub fn new(side: usize, channels: usize) -> Self {
        Self { side, channels, out: Vec::new(), winner: Vec::new() }
    }

    pub fn forward(&mut self, input: &[f32], batch: usize) {
        let (side, c, half) = (self.side, self.channels, self.side / 2);
        ensure(&mut self.out, batch * half * half * c);
        if self.winner.len() < batch * half * half * c {
            self.winner.resize(batch * half * half * c, 0);
        }
        let per_image = half * half * c;
        self.out[..batch * per_image]
            .par_chunks_mut(per_image)
            .zip(self.winner[..batch * per_image].par_chunks_mut(per_image))
            .zip(input.par_chunks(side * side * c))
            .for_each(|((out, winner), image)| {
                for y in 0..half {
                    for x in 0..half {
                        let o = (y * half + x) * c;
                        for ch in 0..c {
                            let mut best = f32::NEG_INFINITY;
                            let mut which = 0u8;
                            for (k, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                                let v = image[((2 * y + dy) * side + 2 * x + dx) * c + ch];
                                if v > best {
                                    best = v;
                                    which = k as u8;
                                }
                            }
                            out[o + ch] = best;
                            winner[o + ch] = which;
                        }
                    }
                }
            });
    }

    /// The input's gradient: each output's gradient goes to the input that won.
    pub fn backward(&self, d_out: &[f32], d_in: &mut [f32], batch: usize) {
        let (side, c, half) = (self.side, self.channels, self.side / 2);
        let per_image = half * half * c;
        d_in[..batch * side * side * c]
            .par_chunks_mut(side * side * c)
            .zip(d_out.par_chunks(per_image))
            .zip(self.winner.par_chunks(per_image))
            .for_each(|((d_image, d_out), winner)| {
                d_image.fill(0.0);
                for y in 0..half {
                    for x in 0..half {
                        let o = (y * half + x) * c;
                        for ch in 0..c {
                            let k = winner[o + ch] as usize;
                            let (dy, dx) = (k / 2, k % 2);
                            d_image[((2 * y + dy) * side + 2 * x + dx) * c + ch] = d_out[o + ch];
                        }
                    }
                }
            });
    }
}

/// 3×3 'same' convolution (no bias), batch norm (batch statistics), ReLU.
#[derive(Debug, Clone)]
pub struct ConvBlock {
    pub cin: usize,
    pub cout: usize,
    pub side: usize,
    /// `[(ky·3 + kx)·cin + ci][cout]`: the im2col rows' order.
    pub kernel: Weights,
    pub gamma: Weights,
    pub beta: Weights,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    /// Weight of this batch's statistics in the running ones: [`BN_MOMENTUM`] while training;
    /// `1/k` for the k-th batch when re-estimating them as a plain average.
    pub stats_momentum: f32,
    /// The 3×3 neighbourhoods of every pixel (`rows × 9·cin`); reused for their gradient.
    col: Vec<f32>,
    /// The normalised convolution output (`rows × cout`), kept for the backward pass.
    normalised: Vec<f32>,
    inv_std: Vec<f32>,
    /// ReLU's output: the block's output.
    pub out: Vec<f32>,
}

impl ConvBlock {
    /// `kernel_oihw` in burn's layout, `[cout][cin][3][3]`.
    pub fn new(
        cin: usize,
        cout: usize,
        side: usize,
        kernel_oihw: &[f32],
        gamma: Vec<f32>,
        beta: Vec<f32>,
        running: (Vec<f32>, Vec<f32>),
    ) -> Self {
        let mut kernel = vec![0f32; 9 * cin * cout];
        for o in 0..cout {
            for i in 0..cin {
                for k in 0..9 {
                    kernel[(k * cin + i) * cout + o] = kernel_oihw[(o * cin + i) * 9 + k];
                }
            }
        }
        Self {
            cin,
            cout,
            side,
            kernel: Weights::new(kernel),
            gamma: Weights::new(gamma),
            beta: Weights::new(beta),
            running_mean: running.0,
            running_var: running.1,
            stats_momentum: BN_MOMENTUM,
            col: Vec::new(),
            normalised: Vec::new(),
            inv_std: vec![0.0; cout],
            out: Vec::new(),
        }
    }

    /// A kernel-shaped tensor (the kernel or its gradient) in burn's `[cout][cin][3][3]` layout.
    pub fn to_oihw(&self, kernel: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.cin, self.cout);
        let mut oihw = vec![0f32; 9 * cin * cout];
        for o in 0..cout {
            for i in 0..cin {
                for k in 0..9 {
                    oihw[(o * cin + i) * 9 + k] = kernel[(k * cin + i) * cout + o];
                }
            }
        }
        oihw
    }

    pub fn forward(&mut self, input: &[f32], batch: usize) {
        let (side, cin, cout) = (self.side, self.cin, self.cout);
        let rows = batch * side * side;
        ensure(&mut self.col, rows * 9 * cin);
        ensure(&mut self.normalised, rows * cout);
        ensure(&mut self.out, rows * cout);
        im2col(input, &mut self.col[..rows * 9 * cin], batch, side, cin);
        let z = &mut self.normalised[..rows * cout];
        matmul(z, &self.col, Layout::Normal, &self.kernel.value, Layout::Normal, rows, 9 * cin, cout, false);

        let mean = channel_sums(z, z, cout, |v, _, _| v).into_iter().map(|s| (s / rows as f64) as f32).collect::<Vec<_>>();
        let var: Vec<f32> =
            channel_sums(z, z, cout, |v, _, c| (v - mean[c]) * (v - mean[c])).into_iter().map(|s| (s / rows as f64) as f32).collect();
        let momentum = self.stats_momentum;
        for c in 0..cout {
            self.inv_std[c] = 1.0 / (var[c] + BN_EPSILON).sqrt();
            self.running_mean[c] = (1.0 - momentum) * self.running_mean[c] + momentum * mean[c];
            self.running_var[c] = (1.0 - momentum) * self.running_var[c] + momentum * var[c];
        }
        let (inv_std, gamma, beta) = (&self.inv_std, &self.gamma.value, &self.beta.value);
        z.par_chunks_mut(cout * 64).zip(self.out[..rows * cout].par_chunks_mut(cout * 64)).for_each(|(z, out)| {
            for (z, out) in z.chunks_exact_mut(cout).zip(out.chunks_exact_mut(cout)) {
                for c in 0..cout {
                    let n = (z[c] - mean[c]) * inv_std[c];
                    z[c] = n;
                    out[c] = (gamma[c] * n + beta[c]).max(0.0);
                }
            }
        });
    }

    /// Accumulates the parameters' gradients from `d_out` (overwritten) and, when asked,
    /// writes the input's gradient.
    pub fn backward(&mut self, d_out: &mut [f32], d_in: Option<&mut [f32]>, batch: usize) {
        let (side, cin, cout) = (self.side, self.cin, self.cout);
        let rows = batch * side * side;
        let d = &mut d_out[..rows * cout];
        // Through ReLU, then batch norm's sums: dβ = Σ d, dγ = Σ d·x̂.
        d.par_chunks_mut(cout * 64).zip(self.out.par_chunks(cout * 64)).for_each(|(d, out)| {
            for (d, out) in d.chunks_exact_mut(cout).zip(out.chunks_exact(cout)) {
                for c in 0..cout {
                    if out[c] <= 0.0 {
                        d[c] = 0.0;
                    }
                }
            }
        });
        let normalised = &self.normalised[..rows * cout];
        let d_beta = channel_sums(d, d, cout, |v, _, _| v);
        let d_gamma = channel_sums(d, normalised, cout, |v, x, _| v * x);
        for c in 0..cout {
            self.beta.grad[c] += d_beta[c] as f32;
            self.gamma.grad[c] += d_gamma[c] as f32;
        }
        // dz = γ·inv_std/N · (N·d − dβ − x̂·dγ)
        let n = rows as f32;
        let scale: Vec<f32> = (0..cout).map(|c| self.gamma.value[c] * self.inv_std[c] / n).collect();
        let (d_beta, d_gamma): (Vec<f32>, Vec<f32>) = (0..cout).map(|c| (d_beta[c] as f32, d_gamma[c] as f32)).unzip();
        d.par_chunks_mut(cout * 64).zip(normalised.par_chunks(cout * 64)).for_each(|(d, x)| {
            for (d, x) in d.chunks_exact_mut(cout).zip(x.chunks_exact(cout)) {
                for c in 0..cout {
                    d[c] = scale[c] * (n * d[c] - d_beta[c] - x[c] * d_gamma[c]);
                }
            }
        });
        // The kernel's gradient: col^T · dz; the input's: dz · kernel^T, folded back.
        matmul(&mut self.kernel.grad, &self.col, Layout::Transposed, d, Layout::Normal, 9 * cin, rows, cout, true);
        if let Some(d_in) = d_in {
            let d_col = &mut self.col[..rows * 9 * cin];
            matmul(d_col, d, Layout::Normal, &self.kernel.value, Layout::Transposed, rows, cout, 9 * cin, false);
            col2im(d_col, &mut d_in[..rows * cin], batch, side, cin);
        }
    }

    pub fn weights_mut(&mut self) -> [&mut Weights; 3] {
        [&mut self.kernel, &mut self.gamma, &mut self.beta]
    }
}

/// The 3×3 neighbourhood of every pixel (zero outside the image), one row per pixel.
fn im2col(input: &[f32], col: &mut [f32], batch: usize, side: usize, cin: usize) {
    let per_image = side * side * 9 * cin;
    col[..batch * per_image].par_chunks_mut(per_image).zip(input.par_chunks(side * side * cin)).for_each(|(col, image)| {
        for y in 0..side {
            for x in 0..side {
                let row = &mut col[(y * side + x) * 9 * cin..][..9 * cin];
                for k in 0..9 {
                    let (sy, sx) = ((y + k / 3) as isize - 1, (x + k % 3) as isize - 1);
                    let dst = &mut row[k * cin..(k + 1) * cin];
                    if sy < 0 || sx < 0 || sy >= side as isize || sx >= side as isize {
                        dst.fill(0.0);
                    } else {
                        let s = (sy as usize * side + sx as usize) * cin;
                        dst.copy_from_slice(&image[s..s + cin]);
                    }
                }
            }
        }
    });
}

/// The reverse of [`im2col`]: each neighbourhood's gradient added back onto its pixels.
fn col2im(col: &[f32], d_in: &mut [f32], batch: usize, side: usize, cin: usize) {
    let per_image = side * side * 9 * cin;
    d_in[..batch * side * side * cin].par_chunks_mut(side * side * cin).zip(col.par_chunks(per_image)).for_each(|(image, col)| {
        image.fill(0.0);
        for y in 0..side {
            for x in 0..side {
                let row = &col[(y * side + x) * 9 * cin..][..9 * cin];
                for k in 0..9 {
                    let (sy, sx) = ((y + k / 3) as isize - 1, (x + k % 3) as isize - 1);
                    if sy >= 0 && sx >= 0 && sy < side as isize && sx < side as isize {
                        let s = (sy as usize * side + sx as usize) * cin;
                        image[s..s + cin].iter_mut().zip(&row[k * cin..(k + 1) * cin]).for_each(|(d, g)| *d += g);
                    }
                }
            }
        }
    });
}

/// Per-channel sums of `f(a, b, channel)` over the rows of two `rows × channels` matrices
/// (`b` as long as `a`); partial sums over blocks of rows in f32, their total in f64.
fn channel_sums(a: &[f32], b: &[f32], channels: usize, f: impl Fn(f32, f32, usize) -> f32 + Sync) -> Vec<f64> {
    a.par_chunks(channels * 256)
        .zip(b.par_chunks(channels * 256))
        .map(|(a, b)| {
            let mut s = vec![0f32; channels];
            for (ra, rb) in a.chunks_exact(channels).zip(b.chunks_exact(channels)) {
                for c in 0..channels {
                    s[c] += f(ra[c], rb[c], c);
                }
            }
            s.into_iter().map(f64::from).collect::<Vec<_>>()
        })
        .reduce(|| vec![0f64; channels], |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect())
}

/// Adaptive average pooling of `side × side` maps to `pooled × pooled` (burn's bins:
/// `[⌊i·side/pooled⌋, ⌈(i+1)·side/pooled⌉)`, overlapping when they do not divide), written
/// channel-major per image (`[c][i][j]`) as burn's flatten of NCHW orders them.
#[derive(Debug, Default, Clone)]
pub struct AvgPool {
    pub side: usize,
    pub pooled: usize,
    pub channels: usize,
    pub out: Vec<f32>,
}

impl AvgPool {
    fn bins(&self) -> Vec<(usize, usize)> {
        (0..self.pooled).map(|i| (i * self.side / self.pooled, ((i + 1) * self.side).div_ceil(self.pooled))).collect()
    }

    pub fn forward(&mut self, input: &[f32], batch: usize) {
        let (side, p, c) = (self.side, self.pooled, self.channels);
        let bins = self.bins();
        ensure(&mut self.out, batch * c * p * p);
        for b in 0..batch {
            let image = &input[b * side * side * c..][..side * side * c];
            let out = &mut self.out[b * c * p * p..][..c * p * p];
            for (i, &(y0, y1)) in bins.iter().enumerate() {
                for (j, &(x0, x1)) in bins.iter().enumerate() {
                    let mut sums = vec![0f32; c];
                    for y in y0..y1 {
                        for x in x0..x1 {
                            sums.iter_mut().zip(&image[(y * side + x) * c..][..c]).for_each(|(s, v)| *s += v);
                        }
                    }
                    let area = ((y1 - y0) * (x1 - x0)) as f32;
                    for ch in 0..c {
                        out[(ch * p + i) * p + j] = sums[ch] / area;
                    }
                }
            }
        }
    }

    pub fn backward(&self, d_out: &[f32], d_in: &mut [f32], batch: usize) {
        let (side, p, c) = (self.side, self.pooled, self.channels);
        let bins = self.bins();
        for b in 0..batch {
            let d_image = &mut d_in[b * side * side * c..][..side * side * c];
            d_image.fill(0.0);
            let d_out = &d_out[b * c * p * p..][..c * p * p];
            for (i, &(y0, y1)) in bins.iter().enumerate() {
                for (j, &(x0, x1)) in bins.iter().enumerate() {
                    let area = ((y1 - y0) * (x1 - x0)) as f32;
                    for y in y0..y1 {
                        for x in x0..x1 {
                            let px = &mut d_image[(y * side + x) * c..][..c];
                            for ch in 0..c {
                                px[ch] += d_out[(ch * p + i) * p + j] / area;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y = x · W + b`, burn's `[inputs][outputs]` weight layout.
#[derive(Debug, Clone)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Weights,
    pub bias: Weights,
    pub out: Vec<f32>,
}

impl Dense {
    pub fn new(inputs: usize, outputs: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        Self { inputs, outputs, weight: Weights::new(weight), bias: Weights::new(bias), out: Vec::new() }
    }

    pub fn forward(&mut self, x: &[f32], batch: usize) {
        let o = self.outputs;
        ensure(&mut self.out, batch * o);
        for row in self.out[..batch * o].chunks_exact_mut(o) {
            row.copy_from_slice(&self.bias.value);
        }
        matmul(&mut self.out, x, Layout::Normal, &self.weight.value, Layout::Normal, batch, self.inputs, o, true);
    }

    /// Accumulates the gradients of W and b and writes the input's gradient.
    pub fn backward(&mut self, x: &[f32], d_out: &[f32], d_in: &mut [f32], batch: usize) {
        let (i, o) = (self.inputs, self.outputs);
        matmul(&mut self.weight.grad, x, Layout::Transposed, d_out, Layout::Normal, i, batch, o, true);
        for row in d_out[..batch * o].chunks_exact(o) {
            self.bias.grad.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
        matmul(d_in, d_out, Layout::Normal, &self.weight.value, Layout::Transposed, batch, o, i, false);
    }

    pub fn weights_mut(&mut self) -> [&mut Weights; 2] {
        [&mut self.weight, &mut self.bias]
    }
}

/// Mean cross-entropy of `logits` (`batch × classes`) against labels smoothed by `smoothing`
/// (burn's: `(1 − α)·one-hot + α/classes`); writes its gradient into `d_logits`. Returns
/// the loss and how many rows had the label as their largest logit.
pub fn cross_entropy(logits: &[f32], labels: &[u8], classes: usize, smoothing: f32, d_logits: &mut [f32]) -> (f64, usize) {
    let batch = labels.len();
    let (mut loss, mut correct) = (0f64, 0usize);
    for (b, &label) in labels.iter().enumerate() {
        let row = &logits[b * classes..][..classes];
        let d = &mut d_logits[b * classes..][..classes];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        if fashion_model::network::argmax(row) == label as usize {
            correct += 1;
        }
        for c in 0..classes {
            let target = if c == label as usize { 1.0 - smoothing } else { 0.0 } + smoothing / classes as f32;
            let log_p = row[c] - max - log_sum;
            loss -= (target * log_p) as f64;
            d[c] = (log_p.exp() - target) / batch as f32;
        }
    }
    (loss / batch as f64, correct)
}
