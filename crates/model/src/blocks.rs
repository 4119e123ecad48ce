//! What the page's two CPU convolution kernels share ([`crate::direct`] and
//! [`crate::winograd`]): the channels-last feature map with a zero border, and the register
//! block's multiply-accumulate. Kept apart so that neither kernel depends on the other's file.

use crate::lanes::V4;

/// A stack of channels-last feature maps with a one-pixel zero border.
#[derive(Default)]
pub(crate) struct Map {
    pub(crate) side: usize,
    pub(crate) channels: usize,
    pub(crate) data: Vec<f32>,
}

impl Map {
    pub(crate) fn reset(&mut self, side: usize, channels: usize) {
        self.side = side;
        self.channels = channels;
        self.data.clear();
        self.data.resize((side + 2) * (side + 2) * channels, 0.0);
    }

    /// Offset of pixel (y, x) of the map, border excluded (the border is at −1 and `side`).
    pub(crate) fn at(&self, y: usize, x: usize) -> usize {
        ((y + 1) * (self.side + 2) + x + 1) * self.channels
    }

    /// `other`'s side, channels and values, reusing this map's buffer.
    pub(crate) fn copy_from(&mut self, other: &Map) {
        self.side = other.side;
        self.channels = other.channels;
        self.data.clone_from(&other.data);
    }

    pub(crate) fn set(&mut self, y: usize, x: usize, c: usize, v: f32) {
        let i = self.at(y, x) + c;
        self.data[i] = v;
    }
}

/// The innermost loop of both kernels: for each of
/// `cin` input channels, the value at `rows[p] + ci` times the 8 weights at
/// `weights + ci · cout`, added into `acc[p]`.
///
/// # Safety
/// `rows[p]..rows[p] + cin` and, for every `ci < cin`, `weights + ci · cout` and the 7 floats
/// after it must be readable (any alignment).
#[inline(always)]
pub(crate) unsafe fn accumulate<const P: usize>(
    acc: &mut [[V4; 2]; P],
    rows: [*const f32; P],
    weights: *const f32,
    cin: usize,
    cout: usize,
) {
    let mut w = weights;
    for ci in 0..cin {
        // SAFETY: inside the ranges the caller vouches for.
        let (w0, w1) = unsafe { (V4::read(w), V4::read(w.add(4))) };
        for (p, acc) in acc.iter_mut().enumerate() {
            let v = unsafe { V4::read_splat(rows[p].add(ci)) };
            acc[0] = acc[0].mul_add(v, w0);
            acc[1] = acc[1].mul_add(v, w1);
        }
        w = w.wrapping_add(cout);
    }
}
