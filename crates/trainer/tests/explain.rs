//! "Why": the occlusion heatmap of the shipped CNN lies on the garment, not on a distracting
//! blob beside it (`fashion_model::explain`).

use burn::prelude::*;
use fashion_model::{
    DecodeLimits, IMAGE_PIXELS, NUM_CLASSES, WeightsFile, calibration::probabilities, explain, network::images_tensor, preprocess_bytes,
};

#[test]
fn the_heat_lies_on_the_item_not_on_the_blob() {
    let data = trainer::data::load(None).expect("Fashion-MNIST is installed by `cargo xtask test`");
    let device = Device::flex();
    let file = WeightsFile::decode(&std::fs::read(trainer::predict::shipped_weights()).unwrap(), &device).unwrap();
    let network = file.network.for_inference();
    let run = |pixels: Vec<f32>| {
        let logits = network.forward(images_tensor(pixels, &device)).into_data().try_to_vec::<f32>().unwrap();
        probabilities(&logits, file.temperature())
    };
    let (mut item_share_sum, mut hottest_on_item) = (0.0f32, 0);
    let items = 20;
    for i in 0..items {
        let input = preprocess_bytes(&testkit::with_distracting_blob(data.test.image(i)), DecodeLimits::default()).unwrap();
        let original = run(input.pixels.to_vec())[0];
        let class = fashion_model::network::argmax(&original);
        let heat = explain::heatmap(class, &original, &run(explain::occluded(&input.pixels)));
        assert_eq!(heat.len(), IMAGE_PIXELS);
        let on_item = testkit::on_item_beside_blob;
        let total: f32 = heat.iter().sum();
        let item: f32 = heat.iter().enumerate().filter(|(k, _)| on_item(*k)).map(|(_, h)| h).sum();
        let hottest = (0..IMAGE_PIXELS).max_by(|&a, &b| heat[a].total_cmp(&heat[b])).unwrap();
        item_share_sum += if total > 0.0 { item / total } else { 1.0 };
        hottest_on_item += on_item(hottest) as usize;
        assert!(class < NUM_CLASSES);
    }
    let mean_share = item_share_sum / items as f32;
    eprintln!("heat on the item: {:.1}% on average; hottest pixel on the item in {hottest_on_item} of {items}", 100.0 * mean_share);
    assert!(mean_share >= 0.8, "only {:.1}% of the heat on the item", 100.0 * mean_share);
    assert!(hottest_on_item >= items * 8 / 10, "hottest pixel on the item in only {hottest_on_item} of {items}");
}
