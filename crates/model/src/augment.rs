//! On-the-fly augmentation of 28×28 training images.
//!
//! Two recipes share one pipeline:
//! - [`Augment::report`]: the report's Keras settings (`rotation_range=8`, `zoom_range=0.08`,
//!   `width/height_shift_range=0.08`), a random affine warp, bilinear, zero fill;
//! - [`Augment::pose`]: what users upload and Fashion-MNIST never shows: mirrored items
//!   (shoes pointing right), strong tilts (±35°), other scales and aspect ratios, shear and
//!   perspective (three-quarter views), other contrast, gamma and brightness, blur, the
//!   "drawing" look of icons and clip art (flat fills, bright outlines after the photo → ink
//!   preprocessing, few grey levels), occluded parts, and the look of a garment found on a
//!   floor or a bed (flattened shading, a soft edge, a shadow joined on one side).
//!
//! Every part can be switched on alone ([`AugmentPart`]), for the ablation table in the README.
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
    /// Probability that an image is warped (rotation, zoom, shift, aspect, shear, perspective).
    pub probability: f32,
    /// Mirror half of the images left-right.
    #[serde(default)]
    pub flip: bool,
    /// Largest change of aspect ratio, as a fraction either way (width up, height down).
    #[serde(default)]
    pub aspect: f32,
    /// Largest horizontal shear (x += shear · y), either way.
    #[serde(default)]
    pub shear: f32,
    /// Largest perspective coefficient, per pixel from the centre, each axis.
    #[serde(default)]
    pub perspective: f32,
    /// Probability of a contrast, gamma and brightness change, and a blur for a third of those.
    #[serde(default)]
    pub photometric: f32,
    /// Probability of the drawing look: flat fill or few grey levels, bright outline.
    #[serde(default)]
    pub drawing: f32,
    /// Probability of erasing a random rectangle (2–20% of the image).
    #[serde(default)]
    pub erase: f32,
    /// Probability of the surface look: what the preprocessing makes of a garment found on a
    /// textured surface.
    #[serde(default)]
    pub surface: f32,
}

/// One part of the pose-robust recipe, for the ablation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentPart {
    /// Horizontal flips.
    Flip,
    /// Rotation ±35°, zoom ±15%, aspect ±15%, shear, perspective, shift ±10%.
    Geometry,
    /// Contrast, gamma, brightness, blur.
    Photometric,
    /// Flat fills, few grey levels, outlines.
    Drawing,
    /// Random erasing.
    Erase,
    /// Flattened shading, a soft edge, a shadow joined on one side.
    Surface,
}

impl AugmentPart {
    /// The shipped recipe's parts (`--aug-parts all`).
    pub const ALL: [AugmentPart; 5] =
        [AugmentPart::Flip, AugmentPart::Geometry, AugmentPart::Photometric, AugmentPart::Drawing, AugmentPart::Erase];
    /// Parts that can be named but are not in the shipped recipe: the surface look cost 5.6
    /// points of "not a garment" doubts for 0.4 points on surfaces (docs/experiments.md).
    pub const EXTRA: [AugmentPart; 1] = [AugmentPart::Surface];

    pub fn name(self) -> &'static str {
        match self {
            AugmentPart::Flip => "flip",
            AugmentPart::Geometry => "geometry",
            AugmentPart::Photometric => "photometric",
            AugmentPart::Drawing => "drawing",
            AugmentPart::Erase => "erase",
            AugmentPart::Surface => "surface",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().chain(Self::EXTRA).find(|p| p.name() == name)
    }
}

impl Augment {
    /// The report's augmentation (applied to every image).
    pub fn report() -> Self {
        Self {
            rotation_deg: 8.0,
            zoom: 0.08,
            shift: 0.08,
            probability: 1.0,
            flip: false,
            aspect: 0.0,
            shear: 0.0,
            perspective: 0.0,
            photometric: 0.0,
            drawing: 0.0,
            erase: 0.0,
            surface: 0.0,
        }
    }

    /// The report's warp on a share `probability` of the images plus the given parts of the
    /// pose-robust recipe.
    pub fn with_parts(probability: f32, parts: &[AugmentPart]) -> Self {
        let mut aug = Self { probability, ..Self::report() };
        for part in parts {
            match part {
                AugmentPart::Flip => aug.flip = true,
                AugmentPart::Geometry => {
                    aug.rotation_deg = 35.0;
                    aug.zoom = 0.15;
                    aug.shift = 0.1;
                    aug.aspect = 0.15;
                    aug.shear = 0.15;
                    aug.perspective = 0.012;
                }
                AugmentPart::Photometric => aug.photometric = 0.3,
                AugmentPart::Drawing => aug.drawing = 0.15,
                AugmentPart::Erase => aug.erase = 0.2,
                AugmentPart::Surface => aug.surface = 0.2,
            }
        }
        aug
    }

    /// The shipped model's recipe: every part.
    pub fn pose(probability: f32) -> Self {
        Self::with_parts(probability, &AugmentPart::ALL)
    }

    /// Writes `src` (bytes) into `dst` as floats in 0..1, augmented.
    pub fn apply(&self, src: &[u8], dst: &mut [f32], rng: &mut impl Rng) {
        debug_assert_eq!(src.len(), IMAGE_PIXELS);
        let mut image = [0f32; IMAGE_PIXELS];
        let mirror = self.flip && rng.random::<bool>();
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                let sx = if mirror { IMAGE_SIDE - 1 - x } else { x };
                image[y * IMAGE_SIDE + x] = src[y * IMAGE_SIDE + sx] as f32 / 255.0;
            }
        }
        if self.probability > 0.0 && rng.random::<f32>() < self.probability {
            self.warp(&image, dst, rng);
        } else {
            dst.copy_from_slice(&image);
        }
        if self.photometric > 0.0 && rng.random::<f32>() < self.photometric {
            photometric(dst, rng);
        }
        if self.surface > 0.0 && rng.random::<f32>() < self.surface {
            on_surface(dst, rng);
        } else if self.drawing > 0.0 && rng.random::<f32>() < self.drawing {
            drawing(dst, rng);
        }
        if self.erase > 0.0 && rng.random::<f32>() < self.erase {
            erase(dst, rng);
        }
    }

    /// A random projective warp (rotation, zoom, aspect, shear, shift, perspective), sampled
    /// by inverse mapping with bilinear interpolation and zero fill.
    fn warp(&self, src: &[f32], dst: &mut [f32], rng: &mut impl Rng) {
        let sym = |rng: &mut _, r: f32| if r > 0.0 { Rng::random_range(rng, -r..=r) } else { 0.0 };
        let angle = sym(rng, self.rotation_deg).to_radians();
        let zoom = 1.0 + sym(rng, self.zoom);
        let aspect = 1.0 + sym(rng, self.aspect);
        let shear = sym(rng, self.shear);
        let side = IMAGE_SIDE as f32;
        let (tx, ty) = (sym(rng, self.shift) * side, sym(rng, self.shift) * side);
        let (px, py) = (sym(rng, self.perspective), sym(rng, self.perspective));
        let (sin, cos) = angle.sin_cos();
        // Output → source: undo the shift, the perspective, the rotation, then the shear and
        // the scale (zoom × aspect).
        let (zx, zy) = (zoom * aspect, zoom / aspect);
        let c = (side - 1.0) / 2.0;
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                let (mut dx, mut dy) = (x as f32 - c - tx, y as f32 - c - ty);
                let w = 1.0 + px * dx + py * dy;
                if w > 0.1 {
                    dx /= w;
                    dy /= w;
                }
                let rx = cos * dx + sin * dy;
                let ry = -sin * dx + cos * dy;
                let sy = ry / zy;
                let sx = (rx - shear * ry) / zx;
                dst[y * IMAGE_SIDE + x] = bilinear(src, sx + c, sy + c);
            }
        }
    }
}

fn bilinear(src: &[f32], x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| {
        if xi < 0.0 || yi < 0.0 || xi >= IMAGE_SIDE as f32 || yi >= IMAGE_SIDE as f32 {
            0.0
        } else {
            src[yi as usize * IMAGE_SIDE + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Contrast/brightness (ink scaled by 0.5–1.3), gamma (0.55–1.8) and, a third of the time, a
/// 3×3 blur. The background stays 0: the preprocessing maps any background there.
fn photometric(image: &mut [f32], rng: &mut impl Rng) {
    let gain = rng.random_range(0.5f32..=1.3);
    let gamma = rng.random_range(-0.6f32..=0.6).exp();
    for v in image.iter_mut() {
        *v = (v.powf(gamma) * gain).clamp(0.0, 1.0);
    }
    if rng.random::<f32>() < 1.0 / 3.0 {
        blur(image);
    }
}

/// Separable [1 2 1]/4 blur, zero outside.
fn blur(image: &mut [f32]) {
    let n = IMAGE_SIDE;
    let mut tmp = [0f32; IMAGE_PIXELS];
    let at = |img: &[f32], x: isize, y: isize| {
        if x < 0 || y < 0 || x >= n as isize || y >= n as isize { 0.0 } else { img[y as usize * n + x as usize] }
    };
    for y in 0..n as isize {
        for x in 0..n as isize {
            tmp[y as usize * n + x as usize] = (at(image, x - 1, y) + 2.0 * at(image, x, y) + at(image, x + 1, y)) / 4.0;
        }
    }
    for y in 0..n as isize {
        for x in 0..n as isize {
            image[y as usize * n + x as usize] = (at(&tmp, x, y - 1) + 2.0 * at(&tmp, x, y) + at(&tmp, x, y + 1)) / 4.0;
        }
    }
}

/// The image's brightest value and which pixels belong to the item: those above a random
/// share (5% to `highest`) of it. `None` for an empty image.
fn item_pixels(image: &[f32], highest: f32, rng: &mut impl Rng) -> Option<(f32, Vec<bool>)> {
    let max = image.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return None;
    }
    let threshold = max * rng.random_range(0.05f32..=highest);
    Some((max, image.iter().map(|&v| v > threshold).collect()))
}

/// The look of a drawing or icon after the photo → ink preprocessing: the item's inside
/// becomes a flat grey (or 2–4 grey levels; sometimes empty, for line art) and its edge a
/// bright 1-pixel outline.
fn drawing(image: &mut [f32], rng: &mut impl Rng) {
    let Some((max, inside)) = item_pixels(image, 0.3, rng) else { return };
    let fill = if rng.random::<f32>() < 0.2 { 0.0 } else { rng.random_range(0.15f32..=0.8) };
    let levels = if rng.random::<bool>() { 0 } else { rng.random_range(2..=4) };
    let outline = rng.random_range(0.85f32..=1.0);
    let n = IMAGE_SIDE;
    for y in 0..n {
        for x in 0..n {
            let i = y * n + x;
            if !inside[i] {
                image[i] = 0.0;
                continue;
            }
            let edge = x == 0 || y == 0 || x == n - 1 || y == n - 1 || !inside[i - 1] || !inside[i + 1] || !inside[i - n] || !inside[i + n];
            image[i] = if edge {
                outline
            } else if levels > 0 {
                let l = levels as f32;
                ((image[i] / max * l).floor().min(l - 1.0) + 0.5) / l * 0.8
            } else {
                fill
            };
        }
    }
}

/// The look of a garment found on a textured surface (`preprocess` → `surface`): its ink there
/// is its colour distance from the surface, so the shading inside it flattens (a navy shirt on a
/// light floor is nearly one level), its edge is the mask's soft edge, and its shadow may join
/// it on one side.
fn on_surface(image: &mut [f32], rng: &mut impl Rng) {
    let Some((max, inside)) = item_pixels(image, 0.2, rng) else { return };
    // How much of the item's own shading is left: 0 = a flat silhouette.
    let kept = rng.random_range(0.0f32..=0.6);
    let gamma = rng.random_range(-0.5f32..=0.5).exp();
    for (v, &inn) in image.iter_mut().zip(&inside) {
        *v = if inn { 1.0 - kept * (1.0 - (*v / max).powf(gamma)) } else { 0.0 };
    }
    // The shadow: the item's outline shifted a pixel or two, mostly downwards, joined to it.
    if rng.random::<bool>() {
        let (dx, dy) = (rng.random_range(-1i32..=1) as isize, rng.random_range(0i32..=2) as isize);
        let depth = rng.random_range(0.3f32..=0.8);
        let n = IMAGE_SIDE as isize;
        let source = image.to_vec();
        for y in 0..n {
            for x in 0..n {
                let (sx, sy) = (x - dx, y - dy);
                if (0..n).contains(&sx) && (0..n).contains(&sy) {
                    let i = (y * n + x) as usize;
                    image[i] = image[i].max(depth * source[(sy * n + sx) as usize]);
                }
            }
        }
    }
    blur(image);
}

/// Random erasing: a rectangle of 2–20% of the image, aspect 0.3–3.3, set to 0 or to a random grey.
fn erase(image: &mut [f32], rng: &mut impl Rng) {
    let area = rng.random_range(0.02f32..=0.2) * IMAGE_PIXELS as f32;
    let aspect = rng.random_range(0.3f32.ln()..=3.3f32.ln()).exp();
    let w = ((area * aspect).sqrt().round() as usize).clamp(1, IMAGE_SIDE);
    let h = ((area / aspect).sqrt().round() as usize).clamp(1, IMAGE_SIDE);
    let (x0, y0) = (rng.random_range(0..=IMAGE_SIDE - w), rng.random_range(0..=IMAGE_SIDE - h));
    let value = if rng.random::<bool>() { 0.0 } else { rng.random::<f32>() };
    for y in y0..y0 + h {
        image[y * IMAGE_SIDE + x0..y * IMAGE_SIDE + x0 + w].fill(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    /// A filled rectangle, wider at the top (a "T" shape), so mirror and rotation are visible.
    fn item() -> Vec<u8> {
        (0..IMAGE_PIXELS)
            .map(|i| {
                let (x, y) = ((i % 28) as i32, (i / 28) as i32);
                let top = (4..10).contains(&y) && (4..20).contains(&x);
                let stem = (10..24).contains(&y) && (8..14).contains(&x);
                if top || stem { 200 } else { 0 }
            })
            .collect()
    }

    fn mass(v: &[f32]) -> f32 {
        v.iter().sum()
    }

    fn centroid_x(v: &[f32]) -> f32 {
        v.iter().enumerate().map(|(i, &p)| (i % IMAGE_SIDE) as f32 * p).sum::<f32>() / mass(v)
    }

    #[test]
    fn identity_when_every_part_is_off() {
        let aug = Augment { probability: 0.0, ..Augment::report() };
        let mut out = vec![0.0; IMAGE_PIXELS];
        aug.apply(&item(), &mut out, &mut StdRng::seed_from_u64(1));
        assert!(out.iter().zip(item()).all(|(o, b)| (o - b as f32 / 255.0).abs() < 1e-6));
    }

    #[test]
    fn report_warps_keep_the_item_roughly_intact_and_vary() {
        let aug = Augment::report();
        let mut rng = StdRng::seed_from_u64(7);
        let src = item();
        let m0: f32 = src.iter().map(|&v| v as f32 / 255.0).sum();
        let mut seen = Vec::new();
        for _ in 0..20 {
            let mut out = vec![0.0; IMAGE_PIXELS];
            aug.apply(&src, &mut out, &mut rng);
            // Zoom ±8% changes area by at most ~17%; the item stays inside the frame.
            assert!((mass(&out) / m0 - 1.0).abs() < 0.25, "mass ratio {}", mass(&out) / m0);
            seen.push(out);
        }
        assert!(seen.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn flips_mirror_about_half_of_the_images() {
        let aug = Augment { probability: 0.0, ..Augment::with_parts(0.0, &[AugmentPart::Flip]) };
        let mut rng = StdRng::seed_from_u64(3);
        let src = item();
        let original: Vec<f32> = src.iter().map(|&v| v as f32 / 255.0).collect();
        let mirrored: Vec<f32> = (0..IMAGE_PIXELS).map(|i| original[(i / 28) * 28 + 27 - i % 28]).collect();
        let (mut same, mut flipped) = (0, 0);
        for _ in 0..200 {
            let mut out = vec![0.0; IMAGE_PIXELS];
            aug.apply(&src, &mut out, &mut rng);
            if out == original {
                same += 1;
            } else if out == mirrored {
                flipped += 1;
            }
        }
        assert_eq!(same + flipped, 200);
        assert!((70..=130).contains(&flipped), "{flipped} of 200 mirrored");
    }

    #[test]
    fn geometry_reaches_strong_tilts_but_keeps_most_of_the_item() {
        let aug = Augment::with_parts(1.0, &[AugmentPart::Geometry]);
        let mut rng = StdRng::seed_from_u64(11);
        let src = item();
        let m0: f32 = src.iter().map(|&v| v as f32 / 255.0).sum();
        let c0 = centroid_x(&src.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let mut largest_move = 0.0f32;
        for _ in 0..100 {
            let mut out = vec![0.0; IMAGE_PIXELS];
            aug.apply(&src, &mut out, &mut rng);
            let ratio = mass(&out) / m0;
            assert!((0.5..1.6).contains(&ratio), "mass ratio {ratio}");
            largest_move = largest_move.max((centroid_x(&out) - c0).abs());
        }
        // ±35° about the centre moves an off-centre stem by several pixels; ±8° would not.
        assert!(largest_move > 3.0, "{largest_move}");
    }

    #[test]
    fn photometric_drawing_and_erase_stay_in_range_and_change_the_image() {
        for part in [AugmentPart::Photometric, AugmentPart::Drawing, AugmentPart::Erase] {
            let mut aug = Augment::with_parts(0.0, &[part]);
            // Always on, to see each part at work.
            aug.photometric = f32::from(aug.photometric > 0.0);
            aug.drawing = f32::from(aug.drawing > 0.0);
            aug.erase = f32::from(aug.erase > 0.0);
            let mut rng = StdRng::seed_from_u64(5);
            let src = item();
            let original: Vec<f32> = src.iter().map(|&v| v as f32 / 255.0).collect();
            let mut changed = 0;
            for _ in 0..50 {
                let mut out = vec![0.0; IMAGE_PIXELS];
                aug.apply(&src, &mut out, &mut rng);
                assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{part:?} out of range");
                changed += usize::from(out != original);
            }
            assert!(changed >= 40, "{part:?} changed only {changed} of 50");
        }
    }

    #[test]
    fn drawing_look_has_an_outline_brighter_than_its_fill() {
        let mut image: Vec<f32> = item().iter().map(|&v| v as f32 / 255.0 * 0.6).collect();
        let mut rng = StdRng::seed_from_u64(2);
        drawing(&mut image, &mut rng);
        // The top bar's corner is an edge; a pixel well inside it is fill.
        let (edge, inside) = (image[4 * 28 + 4], image[6 * 28 + 10]);
        assert!(edge >= 0.85 && inside < edge, "edge {edge}, inside {inside}");
        assert_eq!(image[0], 0.0);
    }

    #[test]
    fn surface_look_flattens_the_shading_and_keeps_the_shape() {
        // The test item, shaded top to bottom as a garment's folds would be.
        let src: Vec<u8> = item().iter().enumerate().map(|(i, &v)| if v > 0 { 60 + (i / IMAGE_SIDE * 8) as u8 } else { 0 }).collect();
        let aug = Augment { surface: 1.0, ..Augment::with_parts(0.0, &[]) };
        let mut rng = StdRng::seed_from_u64(5);
        let plain: Vec<f32> = src.iter().map(|&v| v as f32 / 255.0).collect();
        let spread = |v: &[f32]| {
            let inside: Vec<f32> = v.iter().copied().filter(|&x| x > 0.5).collect();
            let mean = inside.iter().sum::<f32>() / inside.len() as f32;
            inside.iter().map(|x| (x - mean).abs()).sum::<f32>() / inside.len() as f32
        };
        for _ in 0..20 {
            let mut out = [0f32; IMAGE_PIXELS];
            aug.apply(&src, &mut out, &mut rng);
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
            // Every pixel of the item is still ink; a little more may be (the joined shadow).
            let lit = |v: &[f32]| v.iter().filter(|&&x| x > 0.3).count();
            assert!(lit(&out) >= lit(&plain) * 9 / 10 && lit(&out) <= lit(&plain) * 14 / 10, "{} vs {}", lit(&out), lit(&plain));
            assert!(spread(&out) <= spread(&plain) + 0.05, "{} vs {}", spread(&out), spread(&plain));
            assert!((centroid_x(&out) - centroid_x(&plain)).abs() < 1.5);
        }
    }

    #[test]
    fn parts_parse_by_name() {
        for part in AugmentPart::ALL.into_iter().chain(AugmentPart::EXTRA) {
            assert_eq!(AugmentPart::parse(part.name()), Some(part));
        }
        assert_eq!(AugmentPart::parse("rotate"), None);
    }
}
