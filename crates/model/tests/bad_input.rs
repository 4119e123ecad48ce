//! The bad-input corpus: every odd file a user may drop on the page or pass to
//! `trainer predict`, with its expected outcome. Nothing may panic; errors must be specific.

use std::time::Instant;

use fashion_model::{DecodeLimits, PreprocessError, preprocess_bytes};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage, codecs::gif::GifEncoder};
use testkit::{blob_photo as photo, encode};

fn run(bytes: &[u8]) -> Result<fashion_model::Preprocessed, PreprocessError> {
    preprocess_bytes(bytes, DecodeLimits::default())
}

fn assert_classifiable(name: &str, bytes: &[u8]) {
    let p = run(bytes).unwrap_or_else(|e| panic!("{name}: expected a classification, got: {e}"));
    assert!(p.pixels.iter().any(|&v| v > 0.5), "{name}: no item in the model input");
}

#[test]
fn empty_and_non_image_files() {
    assert_eq!(run(b"").unwrap_err(), PreprocessError::Empty);
    let e = run(b"hello, I am a text file named photo.png").unwrap_err();
    assert_eq!(e, PreprocessError::UnknownFormat);
    assert!(e.to_string().contains("PNG, JPEG, WebP, GIF, BMP"));
}

#[test]
fn truncated_files_are_corrupt_not_half_classified() {
    let img = DynamicImage::ImageRgb8(photo(120, 160));
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
        let full = encode(&img, format);
        for cut in [full.len() / 2, full.len() * 9 / 10] {
            let e = run(&full[..cut]).unwrap_err();
            assert!(matches!(e, PreprocessError::Corrupt { .. }), "{format:?} cut at {cut}: {e:?}");
            assert!(e.to_string().contains("damaged or cut short"));
        }
    }
}

#[test]
fn one_pixel_image_is_too_small() {
    let one = encode(&DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([10, 10, 10]))), ImageFormat::Png);
    assert_eq!(run(&one).unwrap_err(), PreprocessError::TooSmall { width: 1, height: 1 });
}

/// A PNG header claiming 30,000 × 30,000 pixels followed by a little data: decoding it would
/// need 2.7 GB. It must be refused from the header, before any large allocation.
#[test]
fn decompression_bomb_is_refused_by_limits() {
    let png = testkit::png_bomb(30_000);
    let started = Instant::now();
    let e = run(&png).unwrap_err();
    assert!(matches!(e, PreprocessError::TooLarge { .. } | PreprocessError::TooMuchMemory(_)), "{e:?}");
    assert!(e.to_string().contains("scale it down"));
    assert!(started.elapsed().as_secs_f32() < 1.0);
}

#[test]
fn huge_valid_photo_is_classified() {
    let big = encode(&DynamicImage::ImageRgb8(photo(6000, 4000)), ImageFormat::Jpeg);
    let started = Instant::now();
    assert_classifiable("6000x4000 JPEG", &big);
    eprintln!("6000×4000 JPEG preprocessed in {:.2} s", started.elapsed().as_secs_f32());
}

#[test]
fn animated_gif_uses_the_first_frame() {
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        let first =
            RgbaImage::from_fn(80, 80, |x, _| if (20..60).contains(&x) { Rgba([0, 0, 0, 255]) } else { Rgba([255, 255, 255, 255]) });
        let second = RgbaImage::from_pixel(80, 80, Rgba([255, 255, 255, 255]));
        enc.encode_frames(vec![image::Frame::new(first), image::Frame::new(second)]).unwrap();
    }
    // The second frame is blank: a classification proves the first frame was used.
    assert_classifiable("animated GIF", &gif);
}

#[test]
fn unusual_pixel_formats_are_classified() {
    let sixteen = ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(64, 64, |x, y| {
        if (16..48).contains(&x) && (8..56).contains(&y) { Rgb([3000, 2000, 1000]) } else { Rgb([65000, 65000, 65000]) }
    });
    assert_classifiable("16-bit PNG", &encode(&DynamicImage::ImageRgb16(sixteen), ImageFormat::Png));

    let gray_alpha =
        ImageBuffer::<LumaA<u8>, Vec<u8>>::from_fn(64, 64, |x, _| if (16..48).contains(&x) { LumaA([30, 255]) } else { LumaA([0, 0]) });
    assert_classifiable("gray+alpha PNG", &encode(&DynamicImage::ImageLumaA8(gray_alpha), ImageFormat::Png));

    let gray = ImageBuffer::<Luma<u8>, Vec<u8>>::from_fn(50, 70, |x, y| Luma([if (10..40).contains(&x) && y > 5 { 20 } else { 240 }]));
    assert_classifiable("grayscale BMP", &encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Bmp));

    // CMYK JPEG (print workflows export these).
    let (w, h) = (64u16, 64u16);
    let mut cmyk = Vec::with_capacity(w as usize * h as usize * 4);
    for y in 0..h {
        for x in 0..w {
            let ink = (16..48).contains(&x) && (8..56).contains(&y);
            cmyk.extend_from_slice(if ink { &[0, 0, 0, 230] } else { &[0, 0, 0, 5] });
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90).encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk).unwrap();
    assert_classifiable("CMYK JPEG", &jpeg);
}

#[test]
fn blank_images_have_no_item() {
    let transparent = encode(&DynamicImage::ImageRgba8(RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0]))), ImageFormat::Png);
    let white = encode(&DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 40, Rgb([255, 255, 255]))), ImageFormat::Png);
    let black = encode(&DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 40, Rgb([0, 0, 0]))), ImageFormat::Jpeg);
    for (name, bytes) in [("transparent", transparent), ("white", white), ("black", black)] {
        let e = run(&bytes).unwrap_err();
        assert_eq!(e, PreprocessError::NoItem, "{name}");
        assert!(e.to_string().contains("no item found"));
    }
}

#[test]
fn svg_and_heic_name_the_supported_formats() {
    let e = run(testkit::SVG).unwrap_err();
    assert_eq!(e, PreprocessError::Unsupported("SVG"));
    assert!(e.to_string().starts_with("SVG images are not supported; supported formats: PNG, JPEG"));

    let mut heic = vec![0, 0, 0, 24];
    heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    heic.extend_from_slice(&[0u8; 100]);
    let e = run(&heic).unwrap_err();
    assert_eq!(e, PreprocessError::Unsupported("HEIC/HEIF"));

    // A TIFF (recognised, but not a format the page decodes).
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&[0u8; 64]);
    assert_eq!(run(&tiff).unwrap_err(), PreprocessError::Unsupported("TIFF"));
}

#[test]
fn misleading_extension_is_ignored_content_decides() {
    // A PNG saved as "photo.jpg": the content is sniffed, so it classifies.
    let png = encode(&DynamicImage::ImageRgb8(photo(90, 120)), ImageFormat::Png);
    assert_classifiable("PNG named .jpg", &png);
}

#[test]
fn exif_orientation_is_applied() {
    // A tall item in a JPEG whose EXIF says "rotate 90°": after rotation the item is wide.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(200, 200, |x, y| {
        if (80..120).contains(&x) && (20..180).contains(&y) { Rgb([20, 20, 20]) } else { Rgb([250, 250, 250]) }
    }));
    let jpeg = encode(&img, ImageFormat::Jpeg);
    // APP1 Exif segment: big-endian TIFF, one IFD entry, Orientation (0x0112) = 6 (rotate 90° CW).
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&[0xFF, 0xE1]);
    with_exif.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    with_exif.extend_from_slice(&app1);
    with_exif.extend_from_slice(&jpeg[2..]);

    let upright = run(&jpeg).unwrap();
    let rotated = run(&with_exif).unwrap();
    let width_of = |p: &fashion_model::Preprocessed| (0..28).filter(|&x| (0..28).any(|y| p.pixels[y * 28 + x] > 0.5)).count();
    assert!(width_of(&upright) < 12, "upright bar is narrow");
    assert!(width_of(&rotated) > 20, "EXIF-rotated bar is wide: {}", width_of(&rotated));
}

/// A header claiming 100,000 × 100,000 pixels: the message names the size the file claims,
/// not "0×0".
#[test]
fn oversized_header_names_the_claimed_size() {
    let e = run(&testkit::png_bomb(100_000)).unwrap_err();
    assert_eq!(e, PreprocessError::TooLarge { width: 100_000, height: 100_000, max: DecodeLimits::default().max_side });
    let message = e.to_string();
    assert!(message.contains("100000×100000") && message.contains("scale it down"), "{message}");
}

/// A PNG with damaged bytes (in its pixel data, or its checksum) gets a message in a user's
/// words: no chunk dumps, struct names or braces from the decoder.
#[test]
fn damaged_png_is_explained_in_plain_words() {
    let png = encode(&DynamicImage::ImageRgb8(photo(120, 160)), ImageFormat::Png);
    let idat = png.windows(4).position(|w| w == b"IDAT").expect("an IDAT chunk");
    for offset in [idat + 6, idat + 20, idat - 4] {
        let mut damaged = png.clone();
        damaged[offset] ^= 0x5A;
        let e = run(&damaged).unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, PreprocessError::Corrupt { format: "PNG", .. }), "byte {offset}: {e:?}");
        assert!(message.contains("damaged or cut short"), "{message}");
        for internal in ["Chunk", "{", "}", "0x", "Format error", "IDAT"] {
            assert!(!message.contains(internal), "byte {offset}: the message shows the decoder's internals ({internal}): {message}");
        }
    }
}
