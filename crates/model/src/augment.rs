//! On-the-fly augmentation, as in the report (Keras `rotation_range=8`, `zoom_range=0.08`,
//! `width/height_shift_range=0.08`): a random affine warp per image, bilinear, zero fill.
//!
//! Written by hand: it runs on 28×28 bytes inside the batch loop, where a general image crate
//! would cost an allocation and a colour conversion per image.

use crate::{IMAGE_PIXELS, IMAGE_SIDE};
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Largest rotation, degrees either way.
    pub rotation_deg: f32,
    /// Largest zoom, as a fraction either way.
    pub zoom: f32,
    /// Largest shift, as a fraction of the side, each axis.
    pub shift: f32,
    /// Probability that an image is warped at all; the rest are seen as they are.
    pub probability: f32,
}

impl Augment {
    pub fn report() -> Self {
        Self { rotation_deg: 8.0, zoom: 0.08, shift: 0.08, probability: 1.0 }
    }

    /// Writes `src` (bytes) into `dst` as floats in 0..1, warped with probability `probability`.
    pub fn apply(&self, src: &[u8], dst: &mut [f32], rng: &mut impl Rng) {
        debug_assert_eq!(src.len(), IMAGE_PIXELS);
        if self.probability <= 0.0 || rng.random::<f32>() >= self.probability {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s as f32 / 255.0;
            }
            return;
        }
        let angle = rng.random_range(-self.rotation_deg..=self.rotation_deg).to_radians();
        let zoom = 1.0 + rng.random_range(-self.zoom..=self.zoom);
        let side = IMAGE_SIDE as f32;
        let (tx, ty) = (rng.random_range(-self.shift..=self.shift) * side, rng.random_range(-self.shift..=self.shift) * side);
        // Inverse map: for each output pixel, where it comes from in the source.
        let (sin, cos) = angle.sin_cos();
        let c = (side - 1.0) / 2.0;
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                let (dx, dy) = (x as f32 - c - tx, y as f32 - c - ty);
                let sx = (cos * dx + sin * dy) / zoom + c;
                let sy = (-sin * dx + cos * dy) / zoom + c;
                dst[y * IMAGE_SIDE + x] = bilinear(src, sx, sy) / 255.0;
            }
        }
    }
}

fn bilinear(src: &[u8], x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| {
        if xi < 0.0 || yi < 0.0 || xi >= IMAGE_SIDE as f32 || yi >= IMAGE_SIDE as f32 {
            0.0
        } else {
            src[yi as usize * IMAGE_SIDE + xi as usize] as f32
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn blob() -> Vec<u8> {
        (0..IMAGE_PIXELS)
            .map(|i| {
                let (x, y) = ((i % 28) as i32, (i / 28) as i32);
                if (8..20).contains(&x) && (6..22).contains(&y) { 200 } else { 0 }
            })
            .collect()
    }

    #[test]
    fn identity_when_probability_is_zero() {
        let aug = Augment { probability: 0.0, ..Augment::report() };
        let mut out = vec![0.0; IMAGE_PIXELS];
        aug.apply(&blob(), &mut out, &mut StdRng::seed_from_u64(1));
        assert!(out.iter().zip(blob()).all(|(o, b)| (o - b as f32 / 255.0).abs() < 1e-6));
    }

    #[test]
    fn warps_keep_the_item_roughly_intact_and_vary() {
        let aug = Augment::report();
        let mut rng = StdRng::seed_from_u64(7);
        let src = blob();
        let mass: f32 = src.iter().map(|&v| v as f32 / 255.0).sum();
        let mut seen = Vec::new();
        for _ in 0..20 {
            let mut out = vec![0.0; IMAGE_PIXELS];
            aug.apply(&src, &mut out, &mut rng);
            let m: f32 = out.iter().sum();
            // Zoom ±8% changes area by at most ~17%; the blob stays inside the frame.
            assert!((m / mass - 1.0).abs() < 0.25, "mass ratio {}", m / mass);
            seen.push(out);
        }
        assert!(seen.windows(2).any(|w| w[0] != w[1]));
    }
}
