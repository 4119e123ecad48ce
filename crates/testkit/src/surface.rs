//! Photos of garments lying on a surface, the way people take them: a Fashion-MNIST item given
//! a colour and its own shading, upscaled, turned a little and laid off-centre with a soft
//! shadow on a floor, a bed, a table or the grass (procedural textures of several scales and
//! contrasts, or a plain surface), under uneven light, with sensor noise, JPEG-compressed.
//!
//! Every choice is drawn from a hash of the picture's number, so a set is reproducible and can
//! grow; the choices are spread wide on purpose (the product is measured on real surface photos
//! this code never sees): texture family, scale, contrast and colours; the item lighter than,
//! darker than, or as bright as its surface but of another colour; item size, position, angle,
//! shadow, light fall-off and JPEG quality.

use image::{DynamicImage, GrayImage, Rgb, RgbImage, codecs::jpeg::JpegEncoder, imageops};

use crate::unit_hash;

/// Surface families, in the order [`Surface::for_picture`] cycles through them.
pub const SURFACE_KINDS: [&str; 9] = ["plain", "wood", "weave", "knit", "carpet", "tiles", "stone", "grass", "pattern"];

/// How bright the item is against its surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contrast {
    Lighter,
    Darker,
    /// About the surface's brightness, another hue: visible in colour, not in grayscale.
    SameBrightness,
}

/// A deterministic stream of numbers in 0..1 for one picture.
struct Draw {
    seed: usize,
    k: usize,
}

impl Draw {
    fn new(seed: usize) -> Self {
        Self { seed, k: 0 }
    }
    fn unit(&mut self) -> f32 {
        self.k += 1;
        unit_hash(self.seed, self.k)
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    fn pick(&mut self, n: usize) -> usize {
        ((self.unit() * n as f32) as usize).min(n - 1)
    }
}

/// Smooth value noise at (x, y) on a lattice of unit spacing, in 0..1.
fn value_noise(seed: usize, x: f32, y: f32) -> f32 {
    let (xi, yi) = (x.floor(), y.floor());
    let (fx, fy) = (x - xi, y - yi);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let corner = |dx: i64, dy: i64| {
        let (cx, cy) = (xi as i64 + dx, yi as i64 + dy);
        unit_hash(seed, (cx.wrapping_mul(73_856_093) ^ cy.wrapping_mul(19_349_663)) as usize)
    };
    let top = corner(0, 0) * (1.0 - sx) + corner(1, 0) * sx;
    let bottom = corner(0, 1) * (1.0 - sx) + corner(1, 1) * sx;
    top * (1.0 - sy) + bottom * sy
}

/// Fractal noise: `octaves` of value noise, each twice as fine and half as strong, in 0..1.
fn fbm(seed: usize, x: f32, y: f32, octaves: usize) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * value_noise(seed + o * 7919, x * f, y * f);
        norm += amp;
        amp *= 0.5;
        f *= 2.0;
    }
    sum / norm
}

/// Colour from hue (0..1), saturation and value.
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let c = v * s;
    let x = c * (1.0 - (h6 % 2.0 - 1.0).abs());
    let (r, g, b) = match h6 as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

fn luma(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    std::array::from_fn(|c| a[c] * (1.0 - t) + b[c] * t)
}

/// A surface: a texture family with its scale, contrast and two colours.
#[derive(Debug, Clone, Copy)]
pub struct Surface {
    pub kind: &'static str,
    /// Feature size in pixels (grain spacing, tile side, thread pitch…).
    scale: f32,
    /// How far the texture swings between its two colours, 0..1.
    contrast: f32,
    base: [f32; 3],
    other: [f32; 3],
    angle: f32,
    seed: usize,
}

impl Surface {
    /// The surface of picture `i`: families in turn, everything else drawn.
    pub fn for_picture(i: usize) -> Self {
        let mut d = Draw::new(i * 31 + 5);
        let kind = SURFACE_KINDS[i % SURFACE_KINDS.len()];
        // Typical colours per family, each drawn over a wide range.
        let base = match kind {
            "wood" => hsv(d.range(0.04, 0.11), d.range(0.3, 0.75), d.range(0.25, 0.85)),
            "grass" => hsv(d.range(0.2, 0.38), d.range(0.4, 0.85), d.range(0.2, 0.7)),
            "stone" | "tiles" => hsv(d.unit(), d.range(0.0, 0.25), d.range(0.3, 0.9)),
            _ => hsv(d.unit(), d.range(0.0, 0.7), d.range(0.15, 0.95)),
        };
        let contrast = if kind == "plain" { 0.0 } else { d.range(0.08, 0.55) };
        let other = if kind == "pattern" {
            hsv(d.unit(), d.range(0.2, 0.8), d.range(0.3, 0.95))
        } else {
            let shift = if luma(base) > 0.5 { 0.45 } else { 1.6 };
            base.map(|c| (c * shift).clamp(0.0, 1.0))
        };
        Self { kind, scale: d.range(3.0, 24.0), contrast, base, other, angle: d.range(0.0, std::f32::consts::PI), seed: i }
    }

    /// Mean colour of the surface (before light and shadow).
    pub fn mean_colour(&self) -> [f32; 3] {
        mix(self.base, self.other, self.contrast * 0.5)
    }

    /// The surface's colour at pixel (x, y).
    fn colour(&self, x: f32, y: f32) -> [f32; 3] {
        let (sin, cos) = self.angle.sin_cos();
        let (u, v) = (cos * x + sin * y, -sin * x + cos * y);
        let s = self.scale;
        let seed = self.seed * 13 + 1;
        let t = match self.kind {
            "plain" => 0.0,
            "wood" => {
                // Grain: stripes along the planks, bent by noise; seams between planks.
                let plank = (v / (s * 8.0)).floor();
                let warp = fbm(seed, u / (s * 6.0), v / (s * 2.0) + plank * 3.1, 3) * 4.0;
                let grain = 0.5 + 0.5 * (v / s * 2.2 + warp * 3.0).sin();
                let seam = if (v / (s * 8.0)).fract() < 0.04 { 1.0 } else { 0.0 };
                (0.6 * grain + 0.4 * fbm(seed + 1, u / (s * 20.0), plank, 2)).max(seam)
            }
            "weave" => {
                // Over-under threads: a checker of horizontal and vertical stripes.
                let (cu, cv) = ((u / s).floor() as i64, (v / s).floor() as i64);
                let over = (cu + cv).rem_euclid(2) == 0;
                let across = if over { (u / s * std::f32::consts::PI).sin() } else { (v / s * std::f32::consts::PI).sin() };
                0.5 + 0.5 * across.abs() * if over { 1.0 } else { -1.0 } + 0.1 * value_noise(seed, u, v)
            }
            "knit" => {
                // Rows of V-shaped stitches.
                let row = v / s;
                let col = u / (s * 0.8);
                let vee = ((col.fract() - 0.5).abs() * 2.0 - (row.fract())).abs();
                (1.0 - vee).clamp(0.0, 1.0) * 0.8 + 0.2 * value_noise(seed, u / 2.0, v / 2.0)
            }
            "carpet" => 0.7 * value_noise(seed, x / 1.5, y / 1.5) + 0.3 * fbm(seed + 2, x / (s * 3.0), y / (s * 3.0), 3),
            "tiles" => {
                let side = s * 5.0;
                let (tu, tv) = ((u / side).floor(), (v / side).floor());
                let grout = (u / side).fract() < 0.06 || (v / side).fract() < 0.06;
                if grout {
                    1.0
                } else {
                    0.3 * unit_hash(seed, (tu as i64 * 1000 + tv as i64) as usize) + 0.1 * value_noise(seed, u / 4.0, v / 4.0)
                }
            }
            "stone" => {
                // Gravel: Worley cells, each stone its own shade, dark gaps between.
                let cell = s * 1.5;
                let (cu, cv) = ((u / cell).floor() as i64, (v / cell).floor() as i64);
                let (mut d1, mut d2, mut shade) = (f32::MAX, f32::MAX, 0.0);
                for dv in -1..=1 {
                    for du in -1..=1 {
                        let id = ((cu + du).wrapping_mul(92_821) ^ (cv + dv).wrapping_mul(68_917)) as usize;
                        let px = (cu + du) as f32 + unit_hash(seed, id);
                        let py = (cv + dv) as f32 + unit_hash(seed + 1, id);
                        let dist = ((u / cell - px).powi(2) + (v / cell - py).powi(2)).sqrt();
                        if dist < d1 {
                            d2 = d1;
                            d1 = dist;
                            shade = unit_hash(seed + 2, id);
                        } else if dist < d2 {
                            d2 = dist;
                        }
                    }
                }
                if d2 - d1 < 0.08 { 1.0 } else { 0.7 * shade }
            }
            "grass" => {
                // Blades: short strokes, mostly upright, in several shades.
                let blade = s * 0.5;
                let (cu, cv) = ((x / blade).floor(), (y / (blade * 5.0)).floor());
                let lean = (unit_hash(seed, (cu as i64 * 7919 + cv as i64) as usize) - 0.5) * 0.6;
                let across = ((x + (y - cv * blade * 5.0) * lean) / blade).fract();
                let lit = unit_hash(seed + 3, (cu as i64 * 31 + cv as i64) as usize);
                if across < 0.55 { lit } else { 0.2 * lit }
            }
            _ => {
                // A printed bedsheet: dots or stripes of a second colour.
                if self.seed % 2 == 0 {
                    let (fu, fv) = ((u / (s * 2.0)).fract() - 0.5, (v / (s * 2.0)).fract() - 0.5);
                    if fu * fu + fv * fv < 0.09 { 1.0 } else { 0.0 }
                } else if (u / (s * 2.0)).fract() < 0.4 {
                    1.0
                } else {
                    0.0
                }
            }
        };
        let amount = if self.kind == "pattern" { t.clamp(0.0, 1.0) } else { (t.clamp(0.0, 1.0) * self.contrast).clamp(0.0, 1.0) };
        mix(self.base, self.other, amount)
    }
}

/// The item's colour against a surface of mean colour `surface`, for the asked contrast.
fn item_colour(d: &mut Draw, surface: [f32; 3], contrast: Contrast) -> [f32; 3] {
    let ls = luma(surface);
    let sat = d.range(0.0, 0.8);
    let hue = d.unit();
    let target = match contrast {
        Contrast::Lighter => (ls + d.range(0.25, 0.5)).min(0.97),
        Contrast::Darker => (ls - d.range(0.25, 0.5)).max(0.04),
        Contrast::SameBrightness => ls + d.range(-0.05, 0.05),
    };
    let (hue, sat) = if contrast == Contrast::SameBrightness {
        // Another hue, clearly saturated, so that colour tells it apart.
        let surface_hue = {
            let [r, g, b] = surface;
            (g - b).atan2(r - 0.5 * (g + b)) / std::f32::consts::TAU
        };
        (surface_hue + d.range(0.3, 0.7), d.range(0.5, 0.9))
    } else {
        (hue, sat)
    };
    let c = hsv(hue, sat, 1.0);
    let l = luma(c).max(1e-3);
    // Scale to the target brightness, then desaturate what would overflow.
    let scaled = c.map(|v| v * target / l);
    let over = scaled.iter().cloned().fold(0.0f32, f32::max);
    if over > 1.0 {
        let t = ((over - 1.0) / (over - target).max(1e-3)).clamp(0.0, 1.0);
        mix(scaled, [target; 3], t).map(|v| v.min(1.0))
    } else {
        scaled
    }
}

/// What one surface photo holds, for per-family reports.
#[derive(Debug, Clone, Copy)]
pub struct SurfacePhoto {
    pub surface: &'static str,
    pub contrast: Contrast,
}

/// Picture `i` of the surface set: the Fashion-MNIST item `pixels` (28×28, light on black)
/// lying on a surface. `None` for `pixels` photographs the empty surface (no item). Returns
/// JPEG bytes and what was drawn.
pub fn surface_photo(pixels: Option<&[u8]>, i: usize) -> (Vec<u8>, SurfacePhoto) {
    let mut d = Draw::new(i * 977 + 3);
    let surface = Surface::for_picture(i);
    let contrast = match d.pick(5) {
        0 | 1 => Contrast::Darker,
        2 | 3 => Contrast::Lighter,
        _ => Contrast::SameBrightness,
    };
    // A lighter item on a white sheet (or darker on black) cannot be: take the other side.
    let ls = luma(surface.mean_colour());
    let contrast = match contrast {
        Contrast::Lighter if ls > 0.72 => Contrast::Darker,
        Contrast::Darker if ls < 0.28 => Contrast::Lighter,
        c => c,
    };
    let item = item_colour(&mut d, surface.mean_colour(), contrast);

    let long = d.range(240.0, 520.0);
    let aspect = d.range(0.72, 1.38);
    let (w, h) = if aspect >= 1.0 { (long, long / aspect) } else { (long * aspect, long) };
    let (w, h) = (w as u32, h as u32);
    let short = w.min(h) as f32;

    // The item: 40–95% of the short side, turned up to ±12°, anywhere that keeps it whole.
    let side = d.range(0.4, 0.95) * short;
    let angle = d.range(-12.0f32, 12.0).to_radians();
    let half = side / 2.0 * (angle.cos().abs() + angle.sin().abs());
    let cx = d.range(half, w as f32 - half);
    let cy = d.range(half, h as f32 - half);
    let alpha_and_ink: Option<(GrayImage, GrayImage)> = pixels.map(|p| {
        let small = GrayImage::from_fn(28, 28, |x, y| image::Luma([p[(y * 28 + x) as usize]]));
        let big = imageops::resize(&small, side as u32, side as u32, imageops::FilterType::CatmullRom);
        // Item pixels in the canvas frame (rotated about the item's centre).
        let (sin, cos) = angle.sin_cos();
        let ink = GrayImage::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let (sx, sy) = (cos * dx + sin * dy + side / 2.0, -sin * dx + cos * dy + side / 2.0);
            if sx < 0.0 || sy < 0.0 || sx >= side - 1.0 || sy >= side - 1.0 {
                image::Luma([0])
            } else {
                *big.get_pixel(sx as u32, sy as u32)
            }
        });
        // Opacity: where the item has any ink (Fashion-MNIST's faint edges are its outline).
        let alpha = GrayImage::from_fn(w, h, |x, y| {
            let v = ink.get_pixel(x, y).0[0] as f32 / 255.0;
            image::Luma([(((v - 0.03) / 0.12).clamp(0.0, 1.0) * 255.0) as u8])
        });
        (alpha, ink)
    });

    // Soft shadow: the opacity shifted and blurred, darkening the surface.
    let shadow = alpha_and_ink.as_ref().map(|(alpha, _)| {
        let (sx, sy) = (d.range(-0.06, 0.06) * side, d.range(0.0, 0.08) * side);
        let shifted = GrayImage::from_fn(w, h, |x, y| {
            let (ox, oy) = (x as f32 - sx, y as f32 - sy);
            if ox < 0.0 || oy < 0.0 || ox >= w as f32 || oy >= h as f32 { image::Luma([0]) } else { *alpha.get_pixel(ox as u32, oy as u32) }
        });
        imageops::blur(&shifted, d.range(0.015, 0.06) * side)
    });
    let shadow_depth = d.range(0.15, 0.45);

    // Light: a ramp in a random direction and a vignette, sometimes strong.
    let ramp = d.range(0.0, 0.5);
    let ramp_angle = d.range(0.0, std::f32::consts::TAU);
    let vignette = d.range(0.0, 0.35);
    let warm = d.range(-0.06, 0.06);
    let noise = d.range(0.005, 0.03);
    let shading_depth = d.range(0.25, 0.6);
    let quality = d.range(55.0, 92.0) as u8;
    let (rs, rc) = ramp_angle.sin_cos();

    let photo = RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
        let mut c = surface.colour(x as f32, y as f32);
        if let (Some((alpha, ink)), Some(shadow)) = (&alpha_and_ink, &shadow) {
            let s = shadow.get_pixel(x, y).0[0] as f32 / 255.0;
            c = c.map(|v| v * (1.0 - shadow_depth * s));
            let a = alpha.get_pixel(x, y).0[0] as f32 / 255.0;
            if a > 0.0 {
                // The item's own shading: Fashion-MNIST's ink is the catalog photo negated, so
                // more ink is a darker part of the garment (a fold, a seam, a print).
                let v = ink.get_pixel(x, y).0[0] as f32 / 255.0;
                let shade = 1.0 - shading_depth * v;
                c = mix(c, item.map(|ch| ch * shade), a);
            }
        }
        let light = 1.0 + ramp * (rc * fx + rs * fy) * 2.0 - vignette * (fx * fx + fy * fy) * 2.0;
        let grain = (unit_hash(i * 7 + 1, (y * w + x) as usize) - 0.5) * 2.0 * noise;
        Rgb([
            ((c[0] * light * (1.0 + warm) + grain).clamp(0.0, 1.0) * 255.0) as u8,
            ((c[1] * light + grain).clamp(0.0, 1.0) * 255.0) as u8,
            ((c[2] * light * (1.0 - warm) + grain).clamp(0.0, 1.0) * 255.0) as u8,
        ])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).encode_image(&DynamicImage::ImageRgb8(photo)).expect("encoding a generated photo");
    (out, SurfacePhoto { surface: surface.kind, contrast })
}

/// How much of an item's shape a 28×28 model input shows: the share of the pixels lit in either
/// image (above 0.3, both 0..1) that are lit in both. The surface tests and `surface_lab` compare
/// the preprocessing's output with the Fashion-MNIST item this way; the item is turned up to 12°
/// in a surface photo, so even a perfect mask scores below 1.
pub fn lit_overlap(a: &[f32], b: &[f32]) -> f32 {
    let (mut both, mut either) = (0, 0);
    for (x, y) in a.iter().zip(b) {
        both += (*x > 0.3 && *y > 0.3) as usize;
        either += (*x > 0.3 || *y > 0.3) as usize;
    }
    both as f32 / either.max(1) as f32
}
