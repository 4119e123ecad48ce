//! 3×3 convolutions in Winograd's F(2×2, 3×3) form (Lavin and Gray, 2015), for the compact
//! CNN's inference on the page's CPU path ([`crate::direct`]).
//!
//! Why: wasm SIMD has no fused multiply-add that every browser runs, so the direct kernels are
//! bound by arithmetic (two instructions per multiply-add). Winograd's form computes a 2×2
//! tile of outputs from a 4×4 input patch with 16 multiply-adds per input channel and output
//! channel instead of 36: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, where `G g Gᵀ` (the kernel `g`
//! transformed) is computed once when the network is built, and `Bᵀ d B`, `Aᵀ · A` are
//! additions only. The products become 16 independent matrix products (tiles × input
//! channels by input × output channels), run in the same register blocks as the direct
//! kernels (4 tiles × 8 output channels). 2.25× fewer multiply-adds on 14×14 maps; 1.7× on
//! 7×7 maps, whose last row and column of tiles lie half outside. The first convolution (one
//! input channel) stays direct: its transforms would cost more than its products.

use std::array::from_fn;

use crate::{
    blocks::{Map, accumulate},
    lanes::V4,
};

/// Tiles of one register block.
const TILES: usize = 4;
/// Output channels of one register block (two 4-lane vectors).
const CHANNELS: usize = 8;
/// Positions ξ = 4·i + j of a transformed 4×4 tile.
const POSITIONS: usize = 16;

/// A 3×3 'same' convolution followed by ReLU, with its kernels transformed.
#[derive(Clone, Debug)]
pub struct Winograd {
    pub cin: usize,
    pub cout: usize,
    /// `G g Gᵀ` of every kernel, `[ξ][cin][cout]`: a block's output channels are contiguous.
    u: Vec<f32>,
    bias: Vec<f32>,
    /// Off for a residual block's second convolution, whose ReLU follows the shortcut.
    relu: bool,
}

/// Buffers kept across images: the transformed input patches `[ξ][tile][cin]` and their
/// products with the kernels `[ξ][tile][cout]`.
#[derive(Default)]
pub struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
}

impl Winograd {
    /// From kernels in [`crate::direct::Conv3x3`]'s layout, `[ky][kx][cin][cout]`; `None` when
    /// the channel counts do not fit the blocks (input channels in fours, output in eights).
    pub fn new(cin: usize, cout: usize, weights: &[f32], bias: Vec<f32>) -> Option<Self> {
        if cin == 0 || !cin.is_multiple_of(4) || !cout.is_multiple_of(CHANNELS) || weights.len() != 9 * cin * cout || bias.len() != cout {
            return None;
        }
        const G: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
        let mut u = vec![0.0; POSITIONS * cin * cout];
        for ci in 0..cin {
            for co in 0..cout {
                let g = |ky: usize, kx: usize| weights[((ky * 3 + kx) * cin + ci) * cout + co];
                for i in 0..4 {
                    for j in 0..4 {
                        let mut sum = 0.0;
                        for a in 0..3 {
                            for b in 0..3 {
                                sum += G[i][a] * g(a, b) * G[j][b];
                            }
                        }
                        u[((4 * i + j) * cin + ci) * cout + co] = sum;
                    }
                }
            }
        }
        Some(Self { cin, cout, u, bias, relu: true })
    }

    /// This convolution with or without the ReLU after the bias.
    pub fn with_relu(self, relu: bool) -> Self {
        Self { relu, ..self }
    }

    /// Convolution, bias and ReLU of `input` into `output`, a map of the same side whose
    /// inside it overwrites (the border stays zero).
    pub(crate) fn apply(&self, input: &Map, output: &mut Map, scratch: &mut Scratch) {
        let (cin, cout) = (self.cin, self.cout);
        assert!(input.channels == cin && output.channels == cout && output.side == input.side);
        let tiles = input.side.div_ceil(2);
        let count = tiles * tiles;
        transform_input(input, tiles, &mut scratch.v);
        scratch.m.resize(POSITIONS * count * cout, 0.0);
        for xi in 0..POSITIONS {
            let v = &scratch.v[xi * count * cin..][..count * cin];
            let u = &self.u[xi * cin * cout..][..cin * cout];
            let m = &mut scratch.m[xi * count * cout..][..count * cout];
            multiply(v, u, m, cin, cout);
        }
        transform_output(&scratch.m, &self.bias, self.relu, tiles, output);
    }
}

/// `[a₀ − a₂, a₁ + a₂, a₂ − a₁, a₁ − a₃]`: one side of `Bᵀ d B`.
#[inline(always)]
fn bt(a: [V4; 4]) -> [V4; 4] {
    [a[0] - a[2], a[1] + a[2], a[2] - a[1], a[1] - a[3]]
}

/// `[a₀ + a₁ + a₂, a₁ − a₂ − a₃]`: one side of `Aᵀ M A`.
#[inline(always)]
fn at(a: [V4; 4]) -> [V4; 2] {
    [a[0] + a[1] + a[2], a[1] - a[2] - a[3]]
}

/// `Bᵀ d B` of every tile's 4×4 input patch, 4 channels at a time. Tile (ty, tx) makes outputs
/// (2ty..2ty + 2, 2tx..2tx + 2), from the padded map's rows 2ty..2ty + 4 and columns
/// 2tx..2tx + 4.
fn transform_input(input: &Map, tiles: usize, v: &mut Vec<f32>) {
    let (cin, wide) = (input.channels, input.side + 2);
    let count = tiles * tiles;
    v.resize(POSITIONS * count * cin, 0.0);
    for ty in 0..tiles {
        for tx in 0..tiles {
            let t = ty * tiles + tx;
            for c in (0..cin).step_by(4) {
                // On odd sides the last tiles reach one row or column past the zero border,
                // which reads as zero too.
                let d: [[V4; 4]; 4] = from_fn(|i| {
                    from_fn(|j| {
                        let (y, x) = (2 * ty + i, 2 * tx + j);
                        if y < wide && x < wide { V4::load(&input.data[(y * wide + x) * cin + c..]) } else { V4::splat(0.0) }
                    })
                });
                // Bᵀ d down each column, then B across each row.
                let columns: [[V4; 4]; 4] = from_fn(|j| bt([d[0][j], d[1][j], d[2][j], d[3][j]]));
                for i in 0..4 {
                    let row = bt([columns[0][i], columns[1][i], columns[2][i], columns[3][i]]);
                    for (j, value) in row.iter().enumerate() {
                        value.store(&mut v[((4 * i + j) * count + t) * cin + c..]);
                    }
                }
            }
        }
    }
}

/// `m = v · u` for one position: `v` is tiles × `cin`, `u` is `cin` × `cout`, `m` is tiles ×
/// `cout`, in blocks of 4 tiles × 8 output channels.
fn multiply(v: &[f32], u: &[f32], m: &mut [f32], cin: usize, cout: usize) {
    let count = v.len() / cin;
    // What `block` reads unchecked lies inside these slices.
    assert!(v.len() == count * cin && u.len() == cin * cout && m.len() == count * cout && cout % CHANNELS == 0);
    for co in (0..cout).step_by(CHANNELS) {
        let mut t = 0;
        while t + TILES <= count {
            block::<TILES>(v, u, m, t, co, cin, cout);
            t += TILES;
        }
        while t < count {
            block::<1>(v, u, m, t, co, cin, cout);
            t += 1;
        }
    }
}

/// Rows `t..t + P` of `m`, columns `co..co + 8`, by the direct kernels' innermost loop
/// ([`accumulate`], raw pointers: bounds checks there would cost more than the arithmetic).
#[inline(always)]
fn block<const P: usize>(v: &[f32], u: &[f32], m: &mut [f32], t: usize, co: usize, cin: usize, cout: usize) {
    let mut acc = [[V4::splat(0.0); 2]; P];
    // SAFETY: rows t..t + P of `v` (each `cin` long) and columns co..co + 8 of the `cin` rows of
    // `u` lie inside the slices for t + P ≤ tiles and co + 8 ≤ cout (asserted in `multiply`);
    // `V4::read` allows unaligned addresses.
    unsafe {
        let rows: [*const f32; P] = from_fn(|p| v.as_ptr().add((t + p) * cin));
        accumulate(&mut acc, rows, u.as_ptr().add(co), cin, cout);
    }
    for (p, acc) in acc.iter().enumerate() {
        let row = (t + p) * cout + co;
        acc[0].store(&mut m[row..]);
        acc[1].store(&mut m[row + 4..]);
    }
}

/// `Aᵀ M A` of every tile, plus bias, then ReLU if `relu`, into the outputs inside the map.
fn transform_output(m: &[f32], bias: &[f32], relu: bool, tiles: usize, output: &mut Map) {
    let (side, cout) = (output.side, output.channels);
    let count = tiles * tiles;
    for ty in 0..tiles {
        for tx in 0..tiles {
            let t = ty * tiles + tx;
            for c in (0..cout).step_by(4) {
                let at_position = |i: usize, j: usize| V4::load(&m[((4 * i + j) * count + t) * cout + c..]);
                let columns: [[V4; 2]; 4] = from_fn(|j| at([at_position(0, j), at_position(1, j), at_position(2, j), at_position(3, j)]));
                let b = V4::load(&bias[c..]);
                for i in 0..2 {
                    let y = 2 * ty + i;
                    if y >= side {
                        continue;
                    }
                    let row = at([columns[0][i], columns[1][i], columns[2][i], columns[3][i]]);
                    for (j, value) in row.iter().enumerate() {
                        let x = 2 * tx + j;
                        if x < side {
                            let to = output.at(y, x) + c;
                            let v = *value + b;
                            if relu { v.relu() } else { v }.store(&mut output.data[to..]);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_counts_outside_the_blocks_are_refused() {
        assert!(Winograd::new(1, 8, &vec![0.0; 72], vec![0.0; 8]).is_none());
        assert!(Winograd::new(8, 12, &vec![0.0; 9 * 96], vec![0.0; 12]).is_none());
        assert!(Winograd::new(8, 8, &vec![0.0; 10], vec![0.0; 8]).is_none());
    }
}
