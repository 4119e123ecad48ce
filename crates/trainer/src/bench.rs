//! `trainer bench`: images per second for training and inference of the shipped CNN on each
//! backend that opens here. Prints figures; it asserts nothing.

use std::{process::ExitCode, time::Instant};

use anyhow::{Context, Result};
use burn::{nn::loss::CrossEntropyLossConfig, optim::AdamConfig, prelude::*};
use clap::Args;
use fashion_model::{Architecture, CnnConfig, CompactConfig, IMAGE_PIXELS, Network, finetune::train_step, network::images_tensor};
use rand::{SeedableRng, rngs::StdRng};

use crate::{
    backend::{self, BackendChoice},
    kernels::{AdamW, CpuTrainer},
};

#[derive(Args)]
pub struct BenchArgs {
    /// Backends to measure (cpu, wgpu); default: every one that opens.
    #[arg(long, value_enum)]
    backend: Vec<BackendChoice>,
    /// Training steps timed (after 2 warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Training batch sizes to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "128,256,512")]
    batch_size: Vec<usize>,
    /// Measure the report's CNN instead of the shipped one.
    #[arg(long, conflicts_with = "cnn_config")]
    report_cnn: bool,
    /// Measure another CNN, given as the JSON of its architecture (see `trainer --help`).
    #[arg(long)]
    cnn_config: Option<String>,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let choices = if args.backend.is_empty() { vec![BackendChoice::Cpu, BackendChoice::Wgpu] } else { args.backend.clone() };
    let arch = match &args.cnn_config {
        Some(json) => serde_json::from_str(json).context("--cnn-config is not an architecture")?,
        None if args.report_cnn => Architecture::Cnn(CnnConfig::report()),
        None => Architecture::Compact(CompactConfig::shipped()),
    };
    arch.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("machine: {} cores; model: {} ({} multiply-adds per image)", backend::cores(), arch.name(), arch.multiply_adds());
    for choice in choices {
        let selected = match backend::select(choice) {
            Ok(s) => s,
            Err(e) => {
                println!("{choice:?}: skipped ({e})");
                continue;
            }
        };
        let device = &selected.device;
        for &batch_size in &args.batch_size {
            let train = train_throughput(&arch, device, batch_size.max(1), args.steps)?;
            println!("{}: train {:.0} img/s at batch {batch_size}", selected.description, train);
        }
        if let (Architecture::Compact(config), BackendChoice::Cpu | BackendChoice::Auto) = (&arch, choice)
            && !selected.gpu
        {
            for &batch_size in &args.batch_size {
                let train = kernels_throughput(config, batch_size.max(1), args.steps)?;
                println!("CPU (hand-written training kernels, {} threads): train {train:.0} img/s at batch {batch_size}", backend::cores());
            }
        }
        let (median_ms, p90_ms) = latency_batch1(&arch, device, 50)?;
        let b256 = inference_throughput(&arch, device, 256, 5)?;
        println!("{}: inference batch 1 median {:.2} ms (p90 {:.2}), batch 256 {:.0} img/s", selected.description, median_ms, p90_ms, b256);
    }
    Ok(ExitCode::SUCCESS)
}

/// `n` synthetic images (a fixed pattern: speed does not depend on the pixels).
fn pixels(n: usize) -> Vec<f32> {
    (0..n * IMAGE_PIXELS).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect()
}

fn batch(n: usize, device: &Device) -> Tensor<3> {
    images_tensor(pixels(n), device)
}

fn train_throughput(arch: &Architecture, device: &Device, batch_size: usize, steps: usize) -> Result<f64> {
    let device = device.clone().autodiff();
    let mut model = arch.init(&device);
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let images = batch(batch_size, &device);
    let targets =
        Tensor::<1, Int>::from_data(TensorData::new((0..batch_size as i64).map(|i| i % 10).collect::<Vec<_>>(), [batch_size]), &device);
    let mut started = Instant::now();
    for step in 0..steps + 2 {
        if step == 2 {
            started = Instant::now();
        }
        let (next, loss, _) = train_step(model, &mut optim, &loss_fn, images.clone(), targets.clone(), 1e-3);
        model = next;
        let _ = loss.into_scalar::<f32>();
    }
    Ok((steps * batch_size) as f64 / started.elapsed().as_secs_f64())
}

/// The training step `trainer` uses for the compact CNN on the CPU ([`crate::kernels`]).
fn kernels_throughput(config: &CompactConfig, batch_size: usize, steps: usize) -> Result<f64> {
    let Network::Compact(start) = Architecture::Compact(config.clone()).init(&Device::flex()) else {
        unreachable!("a compact architecture builds a compact network")
    };
    let mut trainer = CpuTrainer::new(config, &start.params(), AdamW { weight_decay: 0.05 }, 0.1)?;
    let pixels = pixels(batch_size);
    let labels: Vec<u8> = (0..batch_size).map(|i| (i % 10) as u8).collect();
    let mut rng = StdRng::seed_from_u64(0);
    let mut started = Instant::now();
    for step in 0..steps + 2 {
        if step == 2 {
            started = Instant::now();
        }
        trainer.step(&pixels, &labels, 1e-3, &mut rng);
    }
    Ok((steps * batch_size) as f64 / started.elapsed().as_secs_f64())
}

fn latency_batch1(arch: &Architecture, device: &Device, runs: usize) -> Result<(f64, f64)> {
    let model = arch.init(device);
    let input = batch(1, device);
    for _ in 0..3 {
        let _ = model.forward(input.clone()).into_data();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let _ = model.forward(input.clone()).into_data();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Ok((times[runs / 2], times[runs * 9 / 10]))
}

fn inference_throughput(arch: &Architecture, device: &Device, n: usize, runs: usize) -> Result<f64> {
    let model = arch.init(device);
    let input = batch(n, device);
    let _ = model.forward(input.clone()).into_data();
    let started = Instant::now();
    for _ in 0..runs {
        let _ = model.forward(input.clone()).into_data();
    }
    Ok((n * runs) as f64 / started.elapsed().as_secs_f64())
}
