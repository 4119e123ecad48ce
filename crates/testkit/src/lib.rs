//! Photo-style test images made from Fashion-MNIST items, so that the trainer's and the
//! page's tests check the same thing: a phone-like photo of a known item must come back as
//! (nearly) the original 28×28 image and get its true class.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

pub mod new_class;
pub mod onnx;
mod surface;
pub mod video;
pub use surface::{Contrast, SURFACE_KINDS, SurfacePhoto, lit_overlap, surface_photo};

/// Turns a Fashion-MNIST image (light item on black) into a photo-style picture: dark item on
/// an off-white background, upscaled `scale`×, placed off-centre on a larger canvas, tinted.
pub fn fmnist_to_photo(pixels: &[u8], scale: u32, offset: (u32, u32), canvas: (u32, u32), tint: [f32; 3]) -> DynamicImage {
    let side = 28 * scale;
    assert!(offset.0 + side <= canvas.0 && offset.1 + side <= canvas.1);
    let small = image::GrayImage::from_fn(28, 28, |x, y| image::Luma([pixels[(y * 28 + x) as usize]]));
    let big = image::imageops::resize(&small, side, side, image::imageops::FilterType::CatmullRom);
    let bg = [246.0, 244.0, 240.0];
    DynamicImage::ImageRgb8(RgbImage::from_fn(canvas.0, canvas.1, |x, y| {
        let ink = if x >= offset.0 && x < offset.0 + side && y >= offset.1 && y < offset.1 + side {
            big.get_pixel(x - offset.0, y - offset.1).0[0] as f32 / 255.0
        } else {
            0.0
        };
        // Background where ink is 0; a dark tinted item where ink is 1.
        Rgb(std::array::from_fn(|c| (bg[c] * (1.0 - ink) + 255.0 * tint[c] * 0.15 * ink) as u8))
    }))
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encoding a generated image");
    out.into_inner()
}

/// A varied photo for test item `i`: scale 4–9, position, tint and format change with `i`.
/// Returns the encoded file and its extension (`jpg` or `png`).
pub fn varied_photo(pixels: &[u8], i: usize) -> (Vec<u8>, &'static str) {
    let scale = 4 + (i % 6) as u32;
    let side = 28 * scale;
    let canvas = (side + 60 + (i % 7) as u32 * 40, side + 30 + (i % 5) as u32 * 50);
    let offset = ((i % 3) as u32 * (canvas.0 - side) / 2, ((i + 1) % 3) as u32 * (canvas.1 - side) / 2);
    let tints = [[1.0, 1.0, 1.0], [1.6, 0.4, 0.4], [0.4, 0.6, 1.6], [0.5, 1.2, 0.6]];
    let photo = fmnist_to_photo(pixels, scale, offset, canvas, tints[i % tints.len()]);
    if i % 2 == 0 { (encode(&photo, ImageFormat::Jpeg), "jpg") } else { (encode(&photo, ImageFormat::Png), "png") }
}

/// A dark coat-like blob on a light background, `w`×`h`: a stand-in for any clothing photo
/// when only size or format matters (6000×4000 for "a huge but valid photo").
pub fn blob_photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (cx, cy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
        if cx.abs() < 0.25 && cy.abs() < 0.35 { Rgb([60, 50, 40]) } else { Rgb([235, 235, 230]) }
    })
}

/// A decompression bomb: a valid PNG header claiming `side`×`side` RGB pixels, then a little
/// data. Decoding 30,000×30,000 would need 2.7 GB; it must be refused from the header.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    png.extend_from_slice(&[0u8; 64]);
    png
}

/// A small SVG drawing: a format the app must name as unsupported.
pub const SVG: &[u8] =
    br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>"#;

/// How [`posed_photo`] changes the pose of a photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pose {
    /// Mirrored left-right (shoes then point right).
    Mirror,
    /// Rotated by this many degrees (positive: clockwise on screen).
    Rotate(f32),
    /// Mirrored, then rotated.
    MirrorRotate(f32),
    /// A three-quarter view: perspective (`strength` per pixel from the centre, x and y) plus a tilt.
    Perspective { strength: f32, tilt: f32 },
}

impl Pose {
    /// The pose test item `i` gets: the four kinds in turn, angles spread over ±45°.
    pub fn for_item(i: usize) -> Self {
        // A fixed, well-spread sequence of angles in -45..=45 (golden-ratio steps).
        let angle = ((i as f32 * 0.618_034).fract() * 90.0 - 45.0).round();
        match i % 4 {
            0 => Pose::Mirror,
            1 => Pose::Rotate(angle),
            2 => Pose::MirrorRotate(angle),
            _ => Pose::Perspective { strength: if i % 8 == 3 { 0.0012 } else { -0.0012 }, tilt: angle / 2.0 },
        }
    }
}

/// A photo of test item `i` ([`varied_photo`]'s framing and tint) in another pose: mirrored,
/// rotated up to ±45° or seen in perspective, on a canvas large enough to keep the whole item,
/// background filled with the photo's own background colour. Returns a PNG or a JPEG.
pub fn posed_photo(pixels: &[u8], i: usize, pose: Pose) -> (Vec<u8>, &'static str) {
    let scale = 4 + (i % 4) as u32;
    let side = 28 * scale;
    let margin = side / 2;
    let canvas = (side + 2 * margin, side + 2 * margin);
    let tints = [[1.0, 1.0, 1.0], [1.6, 0.4, 0.4], [0.4, 0.6, 1.6], [0.5, 1.2, 0.6]];
    let photo = fmnist_to_photo(pixels, scale, (margin, margin), canvas, tints[i % tints.len()]).to_rgb8();
    let (mirror, angle, persp) = match pose {
        Pose::Mirror => (true, 0.0, 0.0),
        Pose::Rotate(a) => (false, a, 0.0),
        Pose::MirrorRotate(a) => (true, a, 0.0),
        Pose::Perspective { strength, tilt } => (false, tilt, strength),
    };
    let bg = *photo.get_pixel(0, 0);
    let (w, h) = (canvas.0 as f32, canvas.1 as f32);
    let (cx, cy) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let (sin, cos) = angle.to_radians().sin_cos();
    let posed = RgbImage::from_fn(canvas.0, canvas.1, |x, y| {
        // Output → source: undo the perspective, then the rotation, then the mirror.
        let (mut dx, mut dy) = (x as f32 - cx, y as f32 - cy);
        let wgt = 1.0 + persp * dx + persp * 0.5 * dy;
        dx /= wgt;
        dy /= wgt;
        let (mut sx, sy) = (cos * dx + sin * dy, -sin * dx + cos * dy);
        if mirror {
            sx = -sx;
        }
        sample(&photo, sx + cx, sy + cy).unwrap_or(bg)
    });
    let posed = DynamicImage::ImageRgb8(posed);
    if i % 2 == 0 { (encode(&posed, ImageFormat::Jpeg), "jpg") } else { (encode(&posed, ImageFormat::Png), "png") }
}

/// Bilinear sample of `img` at (x, y); `None` outside.
fn sample(img: &RgbImage, x: f32, y: f32) -> Option<Rgb<u8>> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    if x < 0.0 || y < 0.0 || x > w - 1.0 || y > h - 1.0 {
        return None;
    }
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(img.width() - 1), (y0 + 1).min(img.height() - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx, yy, c: usize| img.get_pixel(xx, yy).0[c] as f32;
    Some(Rgb(std::array::from_fn(|c| {
        let top = p(x0, y0, c) * (1.0 - fx) + p(x1, y0, c) * fx;
        let bottom = p(x0, y1, c) * (1.0 - fx) + p(x1, y1, c) * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    })))
}

/// Backgrounds the drawings are shown on: white, light grey, beige, and none (transparent).
pub const DRAWING_BACKGROUNDS: [(&str, Option<[u8; 3]>); 4] =
    [("white", Some([255, 255, 255])), ("grey", Some([200, 200, 200])), ("beige", Some([240, 228, 205])), ("transparent", None)];

/// A transparent drawing (RGBA PNG bytes) composited on `background` (`None`: left
/// transparent), encoded as PNG.
pub fn drawing_on(png: &[u8], background: Option<[u8; 3]>) -> Vec<u8> {
    let art = image::load_from_memory(png).expect("committed drawings are valid PNGs").to_rgba8();
    let Some(bg) = background else { return encode(&DynamicImage::ImageRgba8(art), ImageFormat::Png) };
    let flat = RgbImage::from_fn(art.width(), art.height(), |x, y| {
        let p = art.get_pixel(x, y).0;
        let a = p[3] as f32 / 255.0;
        Rgb(std::array::from_fn(|c| (p[c] as f32 * a + bg[c] as f32 * (1.0 - a)).round() as u8))
    });
    encode(&DynamicImage::ImageRgb8(flat), ImageFormat::Png)
}

/// A deterministic pseudo-random number in 0..1 for (`i`, `k`): fixtures stay reproducible
/// without a random-number crate.
fn unit_hash(i: usize, k: usize) -> f32 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

/// Kinds of [`not_a_garment`] pictures.
pub const NOT_GARMENT_KINDS: [&str; 5] = ["noise", "landscape", "digit", "text", "gradient"];

/// Picture `i` of a set of things that are not garments, PNG bytes and its kind: uniform
/// noise, a flat-colour landscape (sky, hills, a sun), a printed digit, lines of text-like
/// dashes, a two-colour gradient. The "not sure" rule must doubt these.
pub fn not_a_garment(i: usize) -> (Vec<u8>, &'static str) {
    let kind = NOT_GARMENT_KINDS[i % NOT_GARMENT_KINDS.len()];
    let h = |k: usize| unit_hash(i, k);
    let colour = |k: usize| Rgb([(h(k) * 255.0) as u8, (h(k + 1) * 255.0) as u8, (h(k + 2) * 255.0) as u8]);
    let image = match kind {
        "noise" => RgbImage::from_fn(160, 160, |x, y| {
            let v = |c: usize| (unit_hash(i * 100_000 + (y * 160 + x) as usize, c) * 255.0) as u8;
            Rgb([v(0), v(1), v(2)])
        }),
        "landscape" => {
            let (sky, hill, sun) = (colour(1), colour(4), colour(7));
            let (horizon, sun_x) = (0.45 + 0.3 * h(10), 0.2 + 0.6 * h(11));
            RgbImage::from_fn(240, 160, |x, y| {
                let (fx, fy) = (x as f32 / 240.0, y as f32 / 160.0);
                let ridge = horizon + 0.08 * (fx * 9.0 + h(12) * 6.0).sin();
                if fy > ridge {
                    hill
                } else if (fx - sun_x).powi(2) + (fy - 0.2).powi(2) < 0.006 {
                    sun
                } else {
                    sky
                }
            })
        }
        "digit" => {
            // Seven-segment digit `i % 10`, dark on light, thick strokes.
            const SEGMENTS: [u8; 10] = [0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F];
            let on = SEGMENTS[(i / NOT_GARMENT_KINDS.len()) % 10];
            let ink = Rgb([(h(1) * 80.0) as u8; 3]);
            RgbImage::from_fn(160, 160, |x, y| {
                let (x, y) = (x as i32 - 50, y as i32 - 20);
                let horizontal = |row: i32| (0..=60).contains(&x) && (y - row).abs() <= 6;
                let vertical = |col: i32, top: i32| (x - col).abs() <= 6 && (top..=top + 60).contains(&y);
                let lit =
                    [horizontal(0), vertical(60, 0), vertical(60, 60), horizontal(120), vertical(0, 60), vertical(0, 0), horizontal(60)];
                if lit.iter().enumerate().any(|(s, &l)| l && on & (1 << s) != 0) { ink } else { Rgb([245, 245, 240]) }
            })
        }
        "text" => RgbImage::from_fn(200, 160, |x, y| {
            let line = y / 16;
            let word = (x / 24) as usize;
            let inked = y % 16 < 7
                && (10..190).contains(&x)
                && (14..150).contains(&y)
                && x % 24 < 18
                && unit_hash(i * 1000 + line as usize, word) > 0.2;
            if inked { Rgb([30, 30, 40]) } else { Rgb([250, 250, 250]) }
        }),
        _ => {
            let (a, b) = (colour(1), colour(4));
            RgbImage::from_fn(160, 160, |x, y| {
                let t = (x + y) as f32 / 318.0;
                Rgb(std::array::from_fn(|c| (a.0[c] as f32 * (1.0 - t) + b.0[c] as f32 * t) as u8))
            })
        }
    };
    (encode(&DynamicImage::ImageRgb8(image), ImageFormat::Png), kind)
}

/// A Fashion-MNIST item as a photo (224 px, bottom right of a 320 px canvas) with a dark
/// 28 px square in the top-left corner, PNG bytes. In the 28×28 view the square lands in the
/// top-left 3×3 pixels and the item in the rest (x and y from 7 on): an explanation of the
/// answer ("Why?") must point at the item, not at the square.
pub fn with_distracting_blob(pixels: &[u8]) -> Vec<u8> {
    let DynamicImage::ImageRgb8(mut photo) = fmnist_to_photo(pixels, 8, (90, 90), (320, 320), [1.0, 1.0, 1.0]) else {
        unreachable!("fmnist_to_photo makes RGB images")
    };
    for y in 8..36 {
        for x in 8..36 {
            photo.put_pixel(x, y, Rgb([30, 30, 30]));
        }
    }
    encode(&DynamicImage::ImageRgb8(photo), ImageFormat::Png)
}

/// Whether pixel `k` of the 28×28 view of [`with_distracting_blob`] belongs to the item.
pub fn on_item_beside_blob(k: usize) -> bool {
    k % 28 >= 7 && k / 28 >= 7
}
