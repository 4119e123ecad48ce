//! A class Fashion-MNIST lacks, drawn in its style, for teaching the page and the model a
//! class of the user's own: brimmed hats (a dome-shaped crown with a band, on a wide brim),
//! each one different in size, proportions, shade, texture, position and tilt.

use crate::{unit_hash, varied_photo};

/// Hat `i` as a 28×28 Fashion-MNIST-style image: a light item on black, gray levels 0..=255.
pub fn hat(i: usize) -> Vec<u8> {
    let h = |k: usize| unit_hash(i + 7_000_000, k);
    let brim_half = 8.5 + 4.0 * h(0);
    let brim_thick = 1.3 + 1.2 * h(1);
    let crown_half = (4.5 + 3.0 * h(2)).min(brim_half - 1.5);
    let crown_high = 7.0 + 6.0 * h(3);
    let base = 17.0 + 3.0 * h(4);
    let (dx, dy) = (3.0 * (h(5) - 0.5), 2.0 * (h(6) - 0.5));
    let tilt = (h(7) - 0.5) * 16f32.to_radians();
    let crown_ink = 0.55 + 0.4 * h(8);
    let brim_ink = (crown_ink + 0.2 * (h(9) - 0.5)).clamp(0.4, 1.0);
    let band = h(10) < 0.7;
    let grain = 0.1 + 0.15 * h(11);
    let (sin, cos) = tilt.sin_cos();
    let mut out = vec![0u8; 28 * 28];
    for (p, value) in out.iter_mut().enumerate() {
        let mut ink = 0.0;
        // 3×3 samples per pixel: smooth edges, as Fashion-MNIST's downscaled photos have.
        for s in 0..9 {
            let x = (p % 28) as f32 + (s % 3) as f32 / 3.0 + 1.0 / 6.0 - 14.0 - dx;
            let y = (p / 28) as f32 + (s / 3) as f32 / 3.0 + 1.0 / 6.0 - base - dy;
            let (x, y) = (cos * x + sin * y, -sin * x + cos * y);
            let on_brim = (x / brim_half).powi(2) + (y / brim_thick).powi(2) <= 1.0;
            let on_crown = y <= 0.0 && (x / crown_half).powi(2) + (y / crown_high).powi(2) <= 1.0;
            ink += if on_crown {
                let shade = crown_ink * (0.8 + 0.2 * (1.0 + y / crown_high));
                if band && (-3.0..-1.2).contains(&y) { shade * 0.55 } else { shade }
            } else if on_brim {
                brim_ink
            } else {
                0.0
            };
        }
        let texture = 1.0 - grain * unit_hash(i * 1000 + p, 99);
        *value = (ink / 9.0 * texture * 255.0).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Hat `i` as a photo a user would upload (the catalog-photo style of [`varied_photo`]):
/// the encoded file and its extension.
pub fn hat_photo(i: usize) -> (Vec<u8>, &'static str) {
    varied_photo(&hat(i), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hats_differ_and_look_like_fashion_mnist_items() {
        let (a, b) = (hat(0), hat(1));
        assert_ne!(a, b);
        for image in [&a, &b] {
            let lit = image.iter().filter(|&&v| v > 60).count();
            // A garment covers a good part of the square but not all of it, and the border is black.
            assert!((120..500).contains(&lit), "{lit} lit pixels");
            assert!(image[..28].iter().all(|&v| v == 0), "top row not black");
        }
    }
}
