//! Photo-style test images made from Fashion-MNIST items, so that the trainer's and the
//! page's tests check the same thing: a phone-like photo of a known item must come back as
//! (nearly) the original 28×28 image and get its true class.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

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
