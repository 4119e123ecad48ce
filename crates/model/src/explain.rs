//! "Why did it say that?": occlusion sensitivity. The 28×28 input is shown to the network
//! again with one square patch blanked at a time (set to the background, 0); where blanking
//! a patch lowers the probability of the answer most, that part of the picture drove it.
//!
//! Chosen over Grad-CAM because it needs only forward passes, so it runs the same way on
//! every backend (and on the folded inference network), and its result does not depend on
//! which layer one picks. Cost: [`variants`] images, one batched forward pass.

use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// Side of the blanked square, in model pixels: about a sleeve, a heel or a handle.
pub const PATCH: usize = 6;
/// Step between patches.
pub const STRIDE: usize = 2;

/// Top-left corners of the patches, row by row.
fn corners() -> impl Iterator<Item = (usize, usize)> {
    let steps = (IMAGE_SIDE - PATCH) / STRIDE + 1;
    (0..steps).flat_map(move |y| (0..steps).map(move |x| (x * STRIDE, y * STRIDE)))
}

/// How many occluded images [`occluded`] makes.
pub fn variants() -> usize {
    corners().count()
}

/// The occluded copies of one 28×28 input (`variants() × 784` pixels).
pub fn occluded(pixels: &[f32]) -> Vec<f32> {
    assert_eq!(pixels.len(), IMAGE_PIXELS, "one 28×28 image");
    let mut out = Vec::with_capacity(variants() * IMAGE_PIXELS);
    for (cx, cy) in corners() {
        let start = out.len();
        out.extend_from_slice(pixels);
        for y in cy..cy + PATCH {
            out[start + y * IMAGE_SIDE + cx..start + y * IMAGE_SIDE + cx + PATCH].fill(0.0);
        }
    }
    out
}

/// The heatmap (28×28, 0..=1, 1 where it mattered most) of the answer `class`, from the
/// probabilities of the original image and of each [`occluded`] copy, in order. Each pixel
/// gets the mean drop in `class`'s probability over the patches that covered it; rises
/// (a patch hiding a distraction) count as 0.
pub fn heatmap<P: AsRef<[f32]>>(class: usize, original: &[f32], occluded_probs: &[P]) -> Vec<f32> {
    assert_eq!(occluded_probs.len(), variants(), "one probability row per occluded copy");
    let (mut sum, mut count) = (vec![0f32; IMAGE_PIXELS], vec![0u32; IMAGE_PIXELS]);
    for ((cx, cy), probs) in corners().zip(occluded_probs) {
        let drop = (original[class] - probs.as_ref()[class]).max(0.0);
        for y in cy..cy + PATCH {
            for x in cx..cx + PATCH {
                sum[y * IMAGE_SIDE + x] += drop;
                count[y * IMAGE_SIDE + x] += 1;
            }
        }
    }
    let mut heat: Vec<f32> = sum.iter().zip(&count).map(|(s, &c)| if c > 0 { s / c as f32 } else { 0.0 }).collect();
    let max = heat.iter().copied().fold(0f32, f32::max);
    // Below this, no patch changed the answer noticeably: show no heat rather than noise.
    if max > 1e-4 {
        heat.iter_mut().for_each(|h| *h /= max);
    } else {
        heat.fill(0.0);
    }
    heat
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NUM_CLASSES;

    #[test]
    fn patches_cover_the_whole_image() {
        let covered = occluded(&[1.0; IMAGE_PIXELS]).chunks_exact(IMAGE_PIXELS).fold(vec![false; IMAGE_PIXELS], |mut seen, img| {
            img.iter().enumerate().filter(|(_, v)| **v == 0.0).for_each(|(i, _)| seen[i] = true);
            seen
        });
        assert!(covered.iter().all(|&c| c));
        assert_eq!(variants(), 144);
    }

    #[test]
    fn heat_lies_where_occlusion_hurts_the_answer() {
        // A fake network: class 3's probability falls when the top-left 6×6 corner is hidden.
        let original = [0.1; NUM_CLASSES].map(|_| 0.0);
        let mut original = original;
        original[3] = 0.9;
        let probs: Vec<[f32; NUM_CLASSES]> = occluded(&[1.0; IMAGE_PIXELS])
            .chunks_exact(IMAGE_PIXELS)
            .map(|img| {
                let hidden = (0..6).flat_map(|y| (0..6).map(move |x| y * IMAGE_SIDE + x)).filter(|&i| img[i] == 0.0).count();
                let mut p = [0.0; NUM_CLASSES];
                p[3] = 0.9 - 0.8 * hidden as f32 / 36.0;
                p
            })
            .collect();
        let heat = heatmap(3, &original, &probs);
        assert_eq!(heat.iter().copied().fold(0f32, f32::max), 1.0);
        assert!(heat[2 * IMAGE_SIDE + 2] > 0.5, "the corner is hot");
        assert_eq!(heat[20 * IMAGE_SIDE + 20], 0.0, "far from the corner is cold");
    }

    #[test]
    fn no_effect_means_no_heat() {
        let original = [0.1; NUM_CLASSES];
        assert!(heatmap(0, &original, &vec![original; variants()]).iter().all(|&h| h == 0.0));
    }
}
