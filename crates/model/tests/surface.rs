//! Finding the garment on a surface (`crates/model/src/surface.rs`): a textured or unevenly lit
//! floor is learnt from the picture's border and the item is the region unlike it; a catalog
//! shot on a plain backdrop takes the plain path as before; an empty surface has no item.

use fashion_model::{DecodeLimits, IMAGE_PIXELS, PreprocessError, preprocess_bytes, preprocess_image};
use image::{DynamicImage, Rgb, RgbImage};

/// A T-shirt-like item as a Fashion-MNIST image (light on black): a body with sleeves and a
/// neck opening, with a little shading.
fn tshirt() -> Vec<u8> {
    (0..IMAGE_PIXELS)
        .map(|k| {
            let (x, y) = ((k % 28) as i32, (k / 28) as i32);
            let body = (8..20).contains(&x) && (2..27).contains(&y);
            let sleeves = (1..27).contains(&x) && (3..11).contains(&y) && (y - 3) >= (x - 13).abs() / 2 - 4;
            let neck = (11..17).contains(&x) && y < 5;
            if (body || sleeves) && !neck { 150 + (y * 4) as u8 } else { 0 }
        })
        .collect()
}

/// On every surface family, both brightness relations and the same-brightness one, the model
/// input shows the item's shape (the generator turns it up to 12° and JPEG-compresses it).
#[test]
fn item_on_a_surface_is_found_on_every_family() {
    let item = tshirt();
    let truth: Vec<f32> = item.iter().map(|&v| v as f32 / 255.0).collect();
    let n = 4 * testkit::SURFACE_KINDS.len();
    let mut good = 0;
    for i in 0..n {
        let (bytes, what) = testkit::surface_photo(Some(&item), i);
        match preprocess_bytes(&bytes, DecodeLimits::default()) {
            Ok(p) => {
                let o = testkit::lit_overlap(&p.pixels, &truth);
                eprintln!("picture {i} ({}, {:?}): overlap {o:.2}, on surface {}", what.surface, what.contrast, p.on_surface);
                good += (o > 0.6) as usize;
            }
            Err(e) => eprintln!("picture {i} ({}, {:?}): {e}", what.surface, what.contrast),
        }
    }
    assert!(good * 10 >= n * 8, "the item's shape came back in only {good} of {n} pictures");
}

/// A red square on a green cloth of the same brightness: invisible in grayscale, found in
/// colour; the item box the framing panel outlines lies on it.
#[test]
fn item_of_another_colour_but_the_same_brightness_is_found() {
    let (red, green) = ([200u8, 40, 40], [40u8, 110, 40]);
    let luma = |c: [u8; 3]| 0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32;
    assert!((luma(red) - luma(green)).abs() < 12.0, "the test colours must be as bright as each other");
    let photo = RgbImage::from_fn(300, 200, |x, y| {
        let weave = if (x / 3 + y / 3) % 2 == 0 { 6 } else { 0 };
        let on_item = (150..240).contains(&x) && (50..150).contains(&y);
        let c = if on_item { red } else { green };
        Rgb(c.map(|v| v.saturating_add(weave)))
    });
    let p = preprocess_image(&DynamicImage::ImageRgb8(photo)).unwrap();
    assert!(p.on_surface);
    let [left, top, width, height] = p.item;
    let near = |a: f32, b: f32| (a - b).abs() < 0.04;
    assert!(near(left, 0.5) && near(top, 0.25) && near(width, 0.3) && near(height, 0.5), "item box {:?}", p.item);
    // The square fills the 28×28 input (its longest side is 28, both are equal).
    assert!(p.pixels.iter().filter(|&&v| v > 0.5).count() > 600, "{:?}", p.to_u8());
}

/// Photos of empty surfaces: the preprocessing says there is no item rather than make one up.
#[test]
fn empty_surfaces_have_no_item() {
    let n = 36;
    let refused = (0..n)
        .filter(|&i| {
            matches!(
                preprocess_bytes(&testkit::surface_photo(None, 900_000 + i).0, DecodeLimits::default()),
                Err(PreprocessError::NoItemOnSurface)
            )
        })
        .count();
    assert!(refused * 10 >= n * 8, "only {refused} of {n} empty surfaces refused");
    assert!(PreprocessError::NoItemOnSurface.to_string().contains("no item found"));
}

/// Catalog shots (a plain backdrop, the item darker than it) take the plain path, so their
/// model input is what it was before surfaces were handled.
#[test]
fn catalog_shots_take_the_plain_path() {
    let item = tshirt();
    for i in 0..12 {
        let (bytes, _) = testkit::varied_photo(&item, i);
        let p = preprocess_bytes(&bytes, DecodeLimits::default()).unwrap();
        assert!(!p.on_surface, "photo {i} was treated as a surface");
        let truth: Vec<f32> = item.iter().map(|&v| v as f32 / 255.0).collect();
        assert!(testkit::lit_overlap(&p.pixels, &truth) > 0.8, "photo {i}");
    }
}
