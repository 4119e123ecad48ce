//! `cargo xtask bench-page`: the page's speed and size in headless Chromium, per backend.
//!
//! Prints, for WebGPU (SwiftShader here) and the CPU path: time from navigation to `ready`,
//! decode + preprocess of a photo, CNN inference at batch 1 and the page's whole answer for a
//! photo (CNN and baseline; medians), throughput at batch 64, fine-tuning throughput at batch
//! 32 (forward + backward + Adam step); then the size of what the page downloads, raw and
//! gzipped.

use std::{io::Write, time::Duration};

use anyhow::{Context, Result};
use page_tests::{
    browser::{Browser, Gpu},
    dist,
    server::StaticServer,
};
use serde_json::{Value, json};

const RUNS: u32 = 60;

async fn measure(server: &StaticServer, gpu: Gpu, photo: &[u8]) -> Result<Value> {
    let browser = Browser::launch(gpu).await?;
    let url = match gpu {
        Gpu::WebGpu => server.url.clone(),
        Gpu::Unavailable => format!("{}?backend=cpu", server.url),
    };
    let result = async {
        browser.client.goto(&url).await?;
        browser.wait_for("document.querySelector('[data-testid=ready]')", Duration::from_secs(600)).await?;
        let ready_ms = browser.eval("return performance.getEntriesByName('fashion-ready')[0].startTime", vec![]).await?;
        let bench = browser
            .eval_promise("wasmBindings.fashionBench(new Uint8Array(arguments[0]), arguments[1])", vec![json!(photo), json!(RUNS)])
            .await?;
        let mut bench: Value = serde_json::from_str(bench.as_str().context("bench result")?)?;
        bench["ready_ms"] = ready_ms;
        let steps = if gpu == Gpu::WebGpu { 8 } else { 20 };
        let training = browser.eval_promise("wasmBindings.fashionBenchTraining(arguments[0])", vec![json!(steps)]).await?;
        bench["training"] = serde_json::from_str(training.as_str().context("training bench result")?)?;
        anyhow::Ok(bench)
    }
    .await;
    let _ = browser.close().await;
    result
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let dist = dist();
    let data = trainer::data::load(None)?;
    let (photo, _) = testkit::varied_photo(data.test.image(0), 0);
    let server = StaticServer::start(dist.clone());

    println!(
        "backend  | ready after | decode+preprocess | inference batch 1 | answer (CNN+LR) | batch 64     | fine-tune (dense layers / all)"
    );
    for gpu in [Gpu::Unavailable, Gpu::WebGpu] {
        match measure(&server, gpu, &photo).await {
            Ok(b) => println!(
                "{:<8} | {:>8.0} ms | {:>14.2} ms | {:>14.2} ms | {:>12.2} ms | {:>6.0} img/s | {:>5.1} / {:.1} img/s   ({}, median of {RUNS})",
                b["backend"].as_str().unwrap_or("?"),
                b["ready_ms"].as_f64().unwrap_or(f64::NAN),
                b["preprocess_ms_median"].as_f64().unwrap_or(f64::NAN),
                b["infer_batch1_ms_median"].as_f64().unwrap_or(f64::NAN),
                b["classify_batch1_ms_median"].as_f64().unwrap_or(f64::NAN),
                b["batch64_images_per_s"].as_f64().unwrap_or(f64::NAN),
                b["training"]["head"].as_f64().unwrap_or(f64::NAN),
                b["training"]["all"].as_f64().unwrap_or(f64::NAN),
                b["detail"].as_str().unwrap_or(""),
            ),
            Err(e) => println!("{gpu:?}: failed: {e:#}"),
        }
    }

    // What a visitor downloads before the page is ready (the report pictures load only when
    // the "about" panel is opened).
    let mut wasm = (0, 0);
    let mut total = (0, 0);
    for entry in std::fs::read_dir(&dist)? {
        let path = entry?.path();
        // Not fetched at start: host config, and the sample sets fine-tuning loads on demand.
        let lazy = path.file_name().is_some_and(|n| n == "_headers" || n == "replay.fms" || n == "heldout.fms");
        if !path.is_file() || lazy {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let sizes = (bytes.len(), gzip_len(&bytes));
        if path.extension().is_some_and(|e| e == "wasm") {
            wasm = sizes;
        }
        total = (total.0 + sizes.0, total.1 + sizes.1);
    }
    println!(
        "wasm: {} raw, {} gzipped; everything loaded at start: {} raw, {} gzipped",
        mib(wasm.0),
        mib(wasm.1),
        mib(total.0),
        mib(total.1)
    );
    Ok(())
}
