//! Writes the page's example pictures (`web/examples/`), which a newcomer classifies with one
//! click: a catalog shot, a garment lying on a surface, a drawing. Made by the project's own
//! test-picture code from Fashion-MNIST test items (and one committed drawing), and picked
//! among the first candidates as ones the shipped CNN answers right and sure: an example shows
//! what the page does, it is not a measurement (the README's tables are).
//!
//!     cargo run --release -p trainer --example page_examples

use burn::prelude::*;
use fashion_model::{DecodeLimits, WeightsFile, network::argmax, network::images_tensor, preprocess_bytes};

fn main() -> anyhow::Result<()> {
    let device = Device::flex();
    let data = trainer::data::load(None)?;
    let file = WeightsFile::decode(&std::fs::read(trainer::predict::shipped_weights())?, &device)?;
    let network = file.network.for_inference();
    let (rule, t) = (file.summary.unsure_rule(), file.temperature());
    // Right and sure, through the page's own preprocessing.
    let answers_right = |bytes: &[u8], label: u8| -> anyhow::Result<bool> {
        let Ok(input) = preprocess_bytes(bytes, DecodeLimits::default()) else { return Ok(false) };
        let logits = network
            .forward(images_tensor(input.pixels.to_vec(), &device))
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(argmax(&logits) == label as usize && rule.judge_input(&logits, t, input.on_surface).is_sure())
    };
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/examples");
    std::fs::create_dir_all(&out)?;

    // A catalog shot of an ankle boot.
    let boot = (0..data.test.len())
        .filter(|&i| data.test.labels[i] == 9)
        .map(|i| {
            (
                i,
                testkit::encode(
                    &testkit::fmnist_to_photo(data.test.image(i), 8, (40, 30), (320, 290), [1.0, 1.0, 1.0]),
                    image::ImageFormat::Jpeg,
                ),
            )
        })
        .find(|(_, bytes)| answers_right(bytes, 9).unwrap_or(false))
        .expect("an ankle boot the shipped CNN gets right");
    std::fs::write(out.join("catalog-ankle-boot.jpg"), &boot.1)?;

    // A T-shirt lying on a wooden floor.
    let shirt = (0..data.test.len())
        .filter(|&i| data.test.labels[i] == 0 && testkit::SURFACE_KINDS[i % testkit::SURFACE_KINDS.len()] == "wood")
        .map(|i| (i, testkit::surface_photo(Some(data.test.image(i)), i).0))
        .find(|(_, bytes)| answers_right(bytes, 0).unwrap_or(false))
        .expect("a T-shirt on wood the shipped CNN gets right");
    std::fs::write(out.join("surface-t-shirt-on-wood.jpg"), &shirt.1)?;

    // A drawing: Noto Emoji's jeans (Apache 2.0) on white.
    let jeans = std::fs::read(trainer::suite::tests_dir().join("ood/drawings/png/1-jeans-noto.png"))?;
    let drawing = testkit::drawing_on(&jeans, Some([255, 255, 255]));
    anyhow::ensure!(answers_right(&drawing, 1)?, "the shipped CNN does not get the jeans drawing right");
    std::fs::write(out.join("drawing-jeans.png"), &drawing)?;
    println!("wrote {} (test items {} and {})", out.display(), boot.0, shirt.0);
    Ok(())
}
