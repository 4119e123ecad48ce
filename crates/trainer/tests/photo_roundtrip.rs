//! A Fashion-MNIST test image turned into a photo (dark on white, upscaled, off-centre, tinted,
//! JPEG) must come back close to the original 28×28 and get the same class from the shipped CNN.

use testkit as common;

use burn::prelude::*;
use fashion_model::{DecodeLimits, IMAGE_PIXELS, WeightsFile, network::images_tensor, preprocess_bytes};
use image::ImageFormat;

#[test]
fn photos_of_test_images_come_back_close_and_classified_the_same() {
    let data = trainer::data::load(None).expect("Fashion-MNIST is installed by `cargo xtask test`");
    let device = Device::flex();
    let weights = std::fs::read(trainer::predict::shipped_weights()).expect("shipped web/cnn.fmw");
    let model = WeightsFile::decode(&weights, &device).unwrap().network;

    let n = 200;
    let (mut originals, mut roundtrips) = (Vec::new(), Vec::new());
    let mut worst = 0.0f32;
    let mut total = 0.0f32;
    for i in 0..n {
        let img = data.test.image(i);
        let photo = common::fmnist_to_photo(img, 6, (37 + (i as u32 % 5) * 20, 15), (300, 240), [1.0, 0.8, 0.6]);
        let back = preprocess_bytes(&common::encode(&photo, ImageFormat::Jpeg), DecodeLimits::default()).unwrap();
        let original: Vec<f32> = img.iter().map(|&p| p as f32 / 255.0).collect();
        let diff = original.iter().zip(&back.pixels).map(|(a, b)| (a - b).abs()).sum::<f32>() / IMAGE_PIXELS as f32;
        worst = worst.max(diff);
        total += diff;
        originals.extend(original);
        roundtrips.extend(back.pixels);
    }
    let mean = total / n as f32;
    eprintln!("mean |original - round trip| = {mean:.4}, worst image {worst:.4}");

    let classify = |pixels: Vec<f32>| -> Vec<i64> {
        model.forward(images_tensor(pixels, &device)).argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap()
    };
    let (a, b) = (classify(originals), classify(roundtrips));
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    eprintln!("same class for {same}/{n} round-tripped photos");
    assert!(mean < 0.065, "round trip too far from the original: mean abs diff {mean}");
    assert!(worst < 0.18, "worst image differs by {worst}");
    assert!(same as f32 >= 0.95 * n as f32, "only {same}/{n} photos classified like their originals");
}
