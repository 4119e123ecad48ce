//! Property-based fuzzing of decode + preprocess: random bytes, and valid images of every
//! supported format with random bytes overwritten or cut. Any outcome but a panic is fine;
//! a success must be a valid model input. `PROPTEST_CASES` raises the count (CI runs 3×256).

use std::io::Cursor;

use fashion_model::{DecodeLimits, preprocess_bytes};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;

fn check(bytes: &[u8]) {
    // Small limits keep each case fast; the limits themselves are part of what is fuzzed.
    let limits = DecodeLimits { max_side: 4096, max_bytes: 64 << 20 };
    if let Ok(p) = preprocess_bytes(bytes, limits) {
        assert!(p.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

fn seed_image(format: usize, w: u32, h: u32) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x + y) % 2 * 200) as u8])
    }));
    let formats = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::Bmp, ImageFormat::WebP];
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, formats[format % formats.len()]).unwrap();
    out.into_inner()
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn mutated_images_never_panic(
        format in 0usize..5,
        w in 1u32..70,
        h in 1u32..70,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = seed_image(format, w, h);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            let n = cut.index(bytes.len() + 1);
            bytes.truncate(n);
        }
        check(&bytes);
    }

    #[test]
    fn valid_images_of_any_shape_give_a_result_or_a_clear_error(format in 0usize..5, w in 1u32..300, h in 1u32..300) {
        check(&seed_image(format, w, h));
    }
}
