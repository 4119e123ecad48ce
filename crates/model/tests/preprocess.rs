//! Preprocessing on synthetic photos: position, scale, background and alpha must not matter.

use std::io::Cursor;

use fashion_model::{DecodeLimits, IMAGE_SIDE, PreprocessError, preprocess_bytes, preprocess_image};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A "trouser-like" tall item: ink 1.0 inside a w×h box with a gap (legs).
fn item_mask(x: f32, y: f32) -> f32 {
    // x, y in 0..1 over the item's box.
    if (0.42..0.58).contains(&x) && y > 0.3 { 0.0 } else { 1.0 }
}

/// Item of `iw`×`ih` drawn at (`ox`,`oy`) on a `w`×`h` canvas, colours given as RGB.
fn photo(w: u32, h: u32, ox: u32, oy: u32, iw: u32, ih: u32, bg: [u8; 3], fg: [u8; 3]) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if x >= ox && x < ox + iw && y >= oy && y < oy + ih {
            let m = item_mask((x - ox) as f32 / iw as f32, (y - oy) as f32 / ih as f32);
            let mix = |b: u8, f: u8| (b as f32 * (1.0 - m) + f as f32 * m) as u8;
            Rgb([mix(bg[0], fg[0]), mix(bg[1], fg[1]), mix(bg[2], fg[2])])
        } else {
            Rgb(bg)
        }
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn bbox(p: &[f32]) -> (usize, usize, usize, usize) {
    let on: Vec<(usize, usize)> = (0..p.len()).filter(|&i| p[i] > 0.3).map(|i| (i % 28, i / 28)).collect();
    let xs = on.iter().map(|c| c.0);
    let ys = on.iter().map(|c| c.1);
    (xs.clone().min().unwrap(), ys.clone().min().unwrap(), xs.max().unwrap(), ys.max().unwrap())
}

fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

#[test]
fn off_centre_item_is_trimmed_scaled_to_28_and_centred() {
    let img = DynamicImage::ImageRgb8(photo(900, 600, 40, 300, 120, 240, [250, 250, 250], [30, 30, 30]));
    let p = preprocess_image(&img).unwrap();
    assert!(p.light_background);
    let (x0, y0, x1, y1) = bbox(&p.pixels);
    // Longest edge (height) fills the canvas; the item is centred horizontally.
    assert!(y0 <= 1 && y1 >= 26, "rows {y0}..{y1}");
    let centre = (x0 + x1) as f32 / 2.0;
    assert!((centre - 13.5).abs() <= 1.5, "centre {centre}");
    // Background is black, item is light (Fashion-MNIST's negation).
    assert_eq!(p.pixels[0], 0.0);
    assert!(p.pixels[5 * IMAGE_SIDE + 14] > 0.7);
}

#[test]
fn light_and_dark_backgrounds_and_colours_agree() {
    let on_white = preprocess_image(&DynamicImage::ImageRgb8(photo(300, 300, 50, 20, 100, 200, [255, 255, 255], [20, 20, 20]))).unwrap();
    let on_black = preprocess_image(&DynamicImage::ImageRgb8(photo(300, 300, 150, 80, 100, 200, [0, 0, 0], [235, 235, 235]))).unwrap();
    let red_on_cream =
        preprocess_image(&DynamicImage::ImageRgb8(photo(500, 400, 300, 100, 75, 150, [245, 240, 225], [200, 20, 20]))).unwrap();
    assert!(!on_black.light_background);
    assert!(mean_abs_diff(&on_white.pixels, &on_black.pixels) < 0.05);
    // A red item is mid-gray after grayscale: same shape, less ink.
    let (a, b) = (bbox(&on_white.pixels), bbox(&red_on_cream.pixels));
    assert!(a.0.abs_diff(b.0) <= 1 && a.2.abs_diff(b.2) <= 1 && a.1.abs_diff(b.1) <= 1 && a.3.abs_diff(b.3) <= 1, "{a:?} vs {b:?}");
}

#[test]
fn transparency_is_flattened_against_the_item() {
    // A white item cut out on a transparent background must not vanish.
    let rgba = RgbaImage::from_fn(200, 200, |x, y| {
        if (60..140).contains(&x) && (30..170).contains(&y) { Rgba([250, 250, 250, 255]) } else { Rgba([0, 0, 0, 0]) }
    });
    let p = preprocess_image(&DynamicImage::ImageRgba8(rgba)).unwrap();
    let (x0, y0, x1, y1) = bbox(&p.pixels);
    assert!(y1 - y0 >= 26 && x1 - x0 >= 14, "{:?}", (x0, y0, x1, y1));

    let clear = RgbaImage::from_pixel(64, 64, Rgba([255, 0, 0, 0]));
    assert_eq!(preprocess_image(&DynamicImage::ImageRgba8(clear)).unwrap_err(), PreprocessError::NoItem);
}

#[test]
fn jpeg_png_and_webp_of_the_same_photo_agree() {
    let img = DynamicImage::ImageRgb8(photo(400, 300, 200, 40, 90, 180, [240, 240, 240], [40, 60, 90]));
    let png = preprocess_bytes(&encode(&img, ImageFormat::Png), DecodeLimits::default()).unwrap();
    let jpg = preprocess_bytes(&encode(&img, ImageFormat::Jpeg), DecodeLimits::default()).unwrap();
    let webp = preprocess_bytes(&encode(&img, ImageFormat::WebP), DecodeLimits::default()).unwrap();
    let d = mean_abs_diff(&png.pixels, &jpg.pixels);
    assert!(d < 0.03, "JPEG vs PNG differ by {d}");
    assert_eq!(png.pixels, webp.pixels, "lossless WebP decodes to the same pixels as PNG");
}

#[test]
fn flat_images_and_tiny_images_are_refused_clearly() {
    for colour in [[255, 255, 255], [0, 0, 0], [128, 40, 200]] {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(100, 80, Rgb(colour)));
        assert_eq!(preprocess_image(&flat).unwrap_err(), PreprocessError::NoItem);
    }
    let tiny = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([0, 0, 0])));
    let e = preprocess_image(&tiny).unwrap_err();
    assert_eq!(e, PreprocessError::TooSmall { width: 1, height: 1 });
    assert!(e.to_string().contains("1×1"));
}

/// The frame says where the 28×28 view lies on the photo: a tall item drawn at a known place
/// has the frame centred on it, as tall as the item (plus the 28×28's margin).
#[test]
fn the_frame_locates_the_28x28_view_on_the_photo() {
    let img = DynamicImage::ImageRgb8(photo(400, 300, 100, 50, 80, 160, [240, 240, 240], [20, 20, 20]));
    let p = preprocess_image(&img).unwrap();
    let [left, top, width, height] = p.frame;
    let (cx, cy) = ((left + width / 2.0) * 400.0, (top + height / 2.0) * 300.0);
    assert!((cx - 140.0).abs() < 4.0 && (cy - 130.0).abs() < 4.0, "frame centre ({cx}, {cy})");
    // The item (160 px tall) fills the 28×28 frame's height; the frame is square.
    assert!((height * 300.0 - 160.0).abs() < 8.0, "frame height {}", height * 300.0);
    assert!((width * 400.0 - height * 300.0).abs() < 1.0);
}

#[test]
fn a_large_jpeg_is_decoded_at_reduced_scale_with_the_same_result() {
    // 4000×3000, as a 12-megapixel phone photo: decoded at 1/4 scale (1,000 px, above the 768 px
    // the reduced decode keeps), it gives the input a full decode gives.
    let img = DynamicImage::ImageRgb8(photo(4000, 3000, 1900, 500, 900, 1800, [235, 230, 225], [50, 70, 110]));
    let jpeg = encode(&img, ImageFormat::Jpeg);
    let decoded = fashion_model::preprocess::decode(&jpeg, DecodeLimits::default()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (1000, 750), "decoded at 1/4 scale");
    let reduced = preprocess_bytes(&jpeg, DecodeLimits::default()).unwrap();
    let full = preprocess_bytes(&encode(&img, ImageFormat::Png), DecodeLimits::default()).unwrap();
    let d = mean_abs_diff(&reduced.pixels, &full.pixels);
    assert!(d < 0.03, "reduced JPEG vs full PNG differ by {d}");
    assert_eq!(bbox(&reduced.pixels), bbox(&full.pixels));

    // Below twice 768 px a JPEG is decoded whole.
    let small = encode(&DynamicImage::ImageRgb8(photo(1500, 1000, 600, 100, 300, 700, [235, 230, 225], [50, 70, 110])), ImageFormat::Jpeg);
    let decoded = fashion_model::preprocess::decode(&small, DecodeLimits::default()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (1500, 1000));
}

#[test]
fn a_large_cmyk_jpeg_is_decoded_whole_and_still_found() {
    // The reduced decode takes only gray and RGB; a CMYK file goes to the full decoder.
    let (w, h) = (2400u16, 1800u16);
    let rgb = photo(w.into(), h.into(), 1000, 300, 500, 1200, [240, 240, 240], [40, 60, 90]);
    let cmyk: Vec<u8> = rgb.pixels().flat_map(|p| p.0.iter().map(|&c| 255 - c).chain([0]).collect::<Vec<_>>()).collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90).encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk).unwrap();
    let decoded = fashion_model::preprocess::decode(&jpeg, DecodeLimits::default()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (2400, 1800), "decoded whole");
    let p = preprocess_bytes(&jpeg, DecodeLimits::default()).unwrap();
    let full = preprocess_bytes(&encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Png), DecodeLimits::default()).unwrap();
    assert_eq!(bbox(&p.pixels), bbox(&full.pixels));
}

/// The page's decoding worker warms the browser's compiler on a built-in photo: it must decode
/// and take both the surface path and the plain path, or the user's first photo stays slow.
#[test]
fn warm_up_runs_the_surface_path_and_the_plain_path() {
    assert_eq!(fashion_model::preprocess::warm_up().unwrap(), true);
}
