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

/// 3×3 'same' convolution (no bias), batch norm (batch statistics), then (the second
/// convolution of a residual block) the shortcut, then ReLU.
#[derive(Debug, Clone)]
pub struct ConvBlock {
    pub cin: usize,
    pub cout: usize,
    pub side: usize,
    /// Channels of the shortcut added before the ReLU (the residual block's input, zero-padded
    /// to `cout`); 0 without one.
    pub shortcut: usize,
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
    /// The shortcut's gradient (`rows × shortcut`), for the residual block's input.
    pub d_shortcut: Vec<f32>,
}

impl ConvBlock {
    /// `kernel_oihw` in burn's layout, `[cout][cin][3][3]`; `shortcut` as the field.
    pub fn new(
        (cin, cout, side, shortcut): (usize, usize, usize, usize),
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
            shortcut,
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
            d_shortcut: Vec::new(),
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

    /// `skip`: the residual block's input (`rows × shortcut`), given exactly when
    /// `shortcut > 0`.
    pub fn forward(&mut self, input: &[f32], skip: Option<&[f32]>, batch: usize) {
        assert_eq!(skip.is_some(), self.shortcut > 0, "a shortcut's input goes with a residual block's second conv");
        let (side, cin, cout) = (self.side, self.cin, self.cout);
        let rows = batch * side * side;
        ensure(&mut self.col, rows * 9 * cin);
        ensure(&mut self.normalised, rows * cout);
        ensure(&mut self.out, rows * cout);
        im2col(input, &mut self.col[..rows * 9 * cin], batch, side, cin);
        let z = &mut self.normalised[..rows * cout];
        matmul(z, &self.col, Layout::Normal, &self.kernel.value, Layout::Normal, rows, 9 * cin, cout, false);

        let zeros = vec![0f32; cout];
        let mean: Vec<f32> = channel_sums(z, z, &zeros, |v, _, _| v).into_iter().map(|s| (s / rows as f64) as f32).collect();
        let var: Vec<f32> =
            channel_sums(z, z, &mean, |v, _, mean| (v - mean) * (v - mean)).into_iter().map(|s| (s / rows as f64) as f32).collect();
        let momentum = self.stats_momentum;
        for c in 0..cout {
            self.inv_std[c] = 1.0 / (var[c] + BN_EPSILON).sqrt();
            self.running_mean[c] = (1.0 - momentum) * self.running_mean[c] + momentum * mean[c];
            self.running_var[c] = (1.0 - momentum) * self.running_var[c] + momentum * var[c];
        }
        let (inv_std, gamma, beta) = (&self.inv_std[..cout], &self.gamma.value[..cout], &self.beta.value[..cout]);
        let width = self.shortcut;
        // Per-channel parameters zipped, not indexed: without bounds checks the loops vectorise.
        z.par_chunks_mut(cout * 64).zip(self.out[..rows * cout].par_chunks_mut(cout * 64)).enumerate().for_each(|(k, (z, out))| {
            for (r, (z, out)) in z.chunks_exact_mut(cout).zip(out.chunks_exact_mut(cout)).enumerate() {
                for ((((z, out), mean), inv_std), (gamma, beta)) in
                    z.iter_mut().zip(out.iter_mut()).zip(&mean).zip(inv_std).zip(gamma.iter().zip(beta))
                {
                    let n = (*z - mean) * inv_std;
                    *z = n;
                    *out = gamma * n + beta;
                }
                if let Some(skip) = skip {
                    let row = k * 64 + r;
                    out[..width].iter_mut().zip(&skip[row * width..(row + 1) * width]).for_each(|(o, s)| *o += s);
                }
                out.iter_mut().for_each(|o| *o = o.max(0.0));
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
        let normalised = &self.normalised[..rows * cout];
        let (d_beta, d_gamma) = relu_backward_and_sums(d, &self.out[..rows * cout], normalised, cout);
        // The sum's gradient also goes, unchanged, to the shortcut's channels.
        if self.shortcut > 0 {
            let width = self.shortcut;
            ensure(&mut self.d_shortcut, rows * width);
            for (to, from) in self.d_shortcut.chunks_exact_mut(width).zip(d.chunks_exact(cout)) {
                to.copy_from_slice(&from[..width]);
            }
        }
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
                for ((((d, x), scale), d_beta), d_gamma) in d.iter_mut().zip(x).zip(&scale).zip(&d_beta).zip(&d_gamma) {
                    *d = scale * (n * *d - d_beta - x * d_gamma);
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
                for (ky, dst) in row.chunks_exact_mut(3 * cin).enumerate() {
                    let Some(sy) = neighbour(y, ky, side) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let line = &image[sy * side * cin..(sy + 1) * side * cin];
                    // Inside the image a kernel row's three taps are one run of the input line.
                    if x > 0 && x + 1 < side {
                        dst.copy_from_slice(&line[(x - 1) * cin..(x + 2) * cin]);
                        continue;
                    }
                    for (kx, dst) in dst.chunks_exact_mut(cin).enumerate() {
                        match neighbour(x, kx, side) {
                            Some(sx) => dst.copy_from_slice(&line[sx * cin..(sx + 1) * cin]),
                            None => dst.fill(0.0),
                        }
                    }
                }
            }
        }
    });
}

/// The row (or column) `i + k − 1` that tap `k` of a 3×3 kernel centred on `i` reads, if it
/// lies inside the image.
fn neighbour(i: usize, k: usize, side: usize) -> Option<usize> {
    (i + k).checked_sub(1).filter(|&s| s < side)
}

/// The reverse of [`im2col`]: each neighbourhood's gradient added back onto its pixels.
fn col2im(col: &[f32], d_in: &mut [f32], batch: usize, side: usize, cin: usize) {
    let per_image = side * side * 9 * cin;
    d_in[..batch * side * side * cin].par_chunks_mut(side * side * cin).zip(col.par_chunks(per_image)).for_each(|(image, col)| {
        image.fill(0.0);
        let add = |d: &mut [f32], g: &[f32]| d.iter_mut().zip(g).for_each(|(d, g)| *d += g);
        for y in 0..side {
            for x in 0..side {
                let row = &col[(y * side + x) * 9 * cin..][..9 * cin];
                for (ky, taps) in row.chunks_exact(3 * cin).enumerate() {
                    let Some(sy) = neighbour(y, ky, side) else { continue };
                    let line = &mut image[sy * side * cin..(sy + 1) * side * cin];
                    // Each input value still receives its terms in the same order as tap by
                    // tap, so the sums do not change.
                    if x > 0 && x + 1 < side {
                        add(&mut line[(x - 1) * cin..(x + 2) * cin], taps);
                        continue;
                    }
                    for (kx, tap) in taps.chunks_exact(cin).enumerate() {
                        if let Some(sx) = neighbour(x, kx, side) {
                            add(&mut line[sx * cin..(sx + 1) * cin], tap);
                        }
                    }
                }
            }
        }
    });
}

/// ReLU's backward pass (`d` zeroed where `out` was cut) fused with batch norm's per-channel
/// sums of the result, `Σ d` and `Σ d·x̂` (dβ and dγ): one pass over the gradient instead of
/// three. Partial sums over blocks of rows in f32, as [`channel_sums`] makes them.
fn relu_backward_and_sums(d: &mut [f32], out: &[f32], normalised: &[f32], channels: usize) -> (Vec<f64>, Vec<f64>) {
    let block = channels * SUM_BLOCK_ROWS;
    d.par_chunks_mut(block)
        .zip(out.par_chunks(block))
        .zip(normalised.par_chunks(block))
        .map(|((d, out), x)| {
            let (mut sum, mut sum_x) = (vec![0f32; channels], vec![0f32; channels]);
            for ((d, out), x) in d.chunks_exact_mut(channels).zip(out.chunks_exact(channels)).zip(x.chunks_exact(channels)) {
                for ((((d, out), x), s), sx) in d.iter_mut().zip(out).zip(x).zip(&mut sum).zip(&mut sum_x) {
                    if *out <= 0.0 {
                        *d = 0.0;
                    }
                    *s += *d;
                    *sx += *d * x;
                }
            }
            (widen(sum), widen(sum_x))
        })
        .reduce(|| (vec![0f64; channels], vec![0f64; channels]), |a, b| (add(a.0, &b.0), add(a.1, &b.1)))
}

/// Rows per partial sum in [`channel_sums`] and [`relu_backward_and_sums`]: short enough for
/// f32, the same in both so that their sums agree to the bit.
const SUM_BLOCK_ROWS: usize = 256;

fn widen(sums: Vec<f32>) -> Vec<f64> {
    sums.into_iter().map(f64::from).collect()
}

fn add(mut total: Vec<f64>, part: &[f64]) -> Vec<f64> {
    total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    total
}

/// Per-channel sums of `f(a, b, param)` over the rows of two `rows × channels` matrices
/// (`b` as long as `a`), `param` being the channel's entry of `params`; partial sums over
/// blocks of rows in f32, their total in f64.
fn channel_sums(a: &[f32], b: &[f32], params: &[f32], f: impl Fn(f32, f32, f32) -> f32 + Sync) -> Vec<f64> {
    let channels = params.len();
    a.par_chunks(channels * SUM_BLOCK_ROWS)
        .zip(b.par_chunks(channels * SUM_BLOCK_ROWS))
        .map(|(a, b)| {
            let mut s = vec![0f32; channels];
            for (ra, rb) in a.chunks_exact(channels).zip(b.chunks_exact(channels)) {
                for (((s, &x), &y), &p) in s.iter_mut().zip(ra).zip(rb).zip(params) {
                    *s += f(x, y, p);
                }
            }
            widen(s)
        })
        .reduce(|| vec![0f64; channels], |a, b| add(a, &b))
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
