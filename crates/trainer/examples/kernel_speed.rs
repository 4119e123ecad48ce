//! The page's CPU kernels (`fashion_model::direct`, the same code the page runs compiled to
//! wasm) natively on one core: batch-1 time of each weights file's CNN, to compare networks'
//! costs before a page benchmark. Native figures are not the page's; their ratios are close.
//!
//!     cargo run --release -p trainer --example kernel_speed -- web/cnn.fmw other.fmw ...

use std::time::Instant;

use burn::prelude::*;
use fashion_model::{IMAGE_PIXELS, Network, WeightsFile, direct::DirectCnn};

fn main() -> anyhow::Result<()> {
    let device = Device::flex();
    let data = trainer::data::load(None)?;
    let image: Vec<f32> = data.test.image(0).iter().map(|&p| p as f32 / 255.0).collect();
    assert_eq!(image.len(), IMAGE_PIXELS);
    for path in std::env::args().skip(1) {
        let file = WeightsFile::decode(&std::fs::read(&path)?, &device)?;
        let Network::Compact(net) = &file.network else {
            println!("{path}: not a compact CNN; the page's kernels run the compact CNN only");
            continue;
        };
        let cnn = DirectCnn::new(net.direct_parts().ok_or_else(|| anyhow::anyhow!("{path}: no kernels for it"))?)
            .ok_or_else(|| anyhow::anyhow!("{path}: the kernels refused its parts"))?;
        for _ in 0..200 {
            std::hint::black_box(cnn.forward(&image));
        }
        // Medians of 15 rounds of 200 images each.
        let mut rounds: Vec<f64> = (0..15)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..200 {
                    std::hint::black_box(cnn.forward(std::hint::black_box(&image)));
                }
                started.elapsed().as_secs_f64() * 1000.0 / 200.0
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        println!("{path}: {} multiply-adds, batch 1 median {:.3} ms", file.architecture.multiply_adds(), rounds[rounds.len() / 2]);
    }
    Ok(())
}
