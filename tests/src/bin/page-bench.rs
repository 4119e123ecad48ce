//! `cargo xtask bench-page`: the page's speed and size in headless Chromium, per backend.
//!
//! Prints, for WebGPU (SwiftShader here) and the CPU path: time from navigation to `ready`,
//! decode + preprocess of a photo, CNN inference at batch 1 and the page's whole answer for a
//! photo (CNN and baseline; medians), throughput at batch 64, fine-tuning throughput at batch
//! 32 (forward + backward + Adam step), the longest main-thread task (PerformanceObserver
//! `longtask`) while a 12-megapixel (4000×3000) JPEG of a garment on a surface is uploaded and
//! classified (and the decoding worker's time for it, first and again) and, on the CPU, while a
//! fine-tuning run started from the page trains, and the bytes fetched before the page could
//! answer (every request before `ready`, gzip -9); on WebGPU, the compute dispatches and queue
//! submissions of one batch-1 forward pass; the live camera's answers per second (Chromium's
//! fake camera playing a video of a garment) and the longest main-thread task meanwhile. Then the same network, exported to ONNX, in ONNX
//! Runtime Web (wasm, one and two threads), and how the page's CPU path compares.

use std::{io::Write, time::Duration};

use anyhow::{Context, Result};
use fantoccini::Locator;
use page_tests::{
    browser::{Browser, Gpu, fake_camera},
    dist,
    server::StaticServer,
};
use serde_json::{Value, json};

const RUNS: u32 = 60;
/// How long the live camera runs.
const CAMERA_SECONDS: usize = 6;

/// Compute dispatches and queue submissions per batch-1 forward pass of the CNN on WebGPU,
/// counted at the browser's WebGPU API (wgpu's web backend calls it for every kernel), over
/// `arguments[0]` passes after one uncounted pass.
const COUNT_GPU_CALLS: &str = "(async () => {
    const count = { dispatches: 0, submits: 0 };
    const wrap = (proto, names, key) => names.map(name => {
        const original = proto[name];
        proto[name] = function (...args) { count[key]++; return original.apply(this, args); };
        return () => { proto[name] = original; };
    });
    const image = new Float32Array(784).fill(0.5);
    await wasmBindings.fashionLogits(image, 'current');
    const restore = [
        ...wrap(GPUComputePassEncoder.prototype, ['dispatchWorkgroups', 'dispatchWorkgroupsIndirect'], 'dispatches'),
        ...wrap(GPUQueue.prototype, ['submit'], 'submits'),
    ];
    try {
        for (let i = 0; i < arguments[0]; i++) await wasmBindings.fashionLogits(image, 'current');
    } finally {
        restore.forEach(r => r());
    }
    return { dispatches: count.dispatches / arguments[0], submits: count.submits / arguments[0] };
})()";

async fn measure(server: &StaticServer, gpu: Gpu, photo: &[u8], huge: &std::path::Path, camera: &std::path::Path) -> Result<Value> {
    let browser = Browser::launch_with(gpu, &fake_camera(camera)).await?;
    let url = match gpu {
        Gpu::WebGpu => server.url.clone(),
        Gpu::Unavailable => format!("{}?backend=cpu", server.url),
    };
    let result = async {
        browser.client.goto(&url).await?;
        browser.wait_ready(Duration::from_secs(600)).await?;
        let ready_ms = browser.eval("return performance.getEntriesByName('fashion-ready')[0].startTime", vec![]).await?;
        // The page answers on the CPU first; this is when WebGPU took over.
        let webgpu_ready_ms =
            browser.eval("return performance.getEntriesByName('fashion-webgpu-ready')[0]?.startTime ?? null", vec![]).await?;
        let (raw, gzipped) = page_tests::download_size(&dist(), &browser.fetched_before_ready().await?);
        // The offline copy downloads after the first answer; let it finish before timing.
        browser.wait_for_offline_copy().await?;
        browser.observe_long_tasks().await?;
        let huge_ms = upload_answered(&browser, huge, 1).await?;
        // Let a last long task be reported.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let longest = browser.longest_task_ms().await?;
        // The same photo again: the worker's code is then compiled by the optimizing tier (the
        // first photo of a visit runs on WebAssembly's baseline compiler).
        let huge_again_ms = upload_answered(&browser, huge, 2).await?;
        let bench = browser
            .eval_promise("wasmBindings.fashionBench(new Uint8Array(arguments[0]), arguments[1])", vec![json!(photo), json!(RUNS)])
            .await?;
        let mut bench: Value = serde_json::from_str(bench.as_str().context("bench result")?)?;
        bench["ready_ms"] = ready_ms;
        bench["webgpu_ready_ms"] = webgpu_ready_ms;
        bench["first_answer_bytes"] = json!([raw, gzipped]);
        bench["longest_task_upload_ms"] = json!(longest);
        bench["huge_decode_ms"] = huge_ms;
        bench["huge_decode_again_ms"] = huge_again_ms;
        if gpu == Gpu::WebGpu {
            bench["gpu_calls_per_image"] = browser.eval_promise(COUNT_GPU_CALLS, vec![json!(RUNS)]).await?;
        }
        bench["camera"] = live_camera(&browser).await?;
        let steps = if gpu == Gpu::WebGpu { 8 } else { 20 };
        let training = browser.eval_promise("wasmBindings.fashionBenchTraining(arguments[0])", vec![json!(steps)]).await?;
        bench["training"] = serde_json::from_str(training.as_str().context("training bench result")?)?;
        // A whole fine-tuning run from the page (the uploaded photo taught as "T-shirt/top"),
        // as a user starts it: on the CPU it trains in a worker, and this is what the page's
        // main thread still does meanwhile.
        if gpu == Gpu::Unavailable {
            browser.client.find(Locator::Css(".card [data-testid=teach]")).await?.select_by_value("0").await?;
            browser.observe_long_tasks().await?;
            browser.client.find(Locator::Css("[data-testid=finetune]")).await?.click().await?;
            browser.wait_for("document.querySelector('[data-testid=finetune-done]')", Duration::from_secs(600)).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            bench["longest_task_finetune_ms"] = json!(browser.longest_task_ms().await?);
        }
        anyhow::Ok(bench)
    }
    .await;
    let _ = browser.close().await;
    result
}

/// Uploads `photo`, waits until the `cards`-th card is answered (or refused) and returns the
/// decoding worker's milliseconds for it.
async fn upload_answered(browser: &Browser, photo: &std::path::Path, cards: usize) -> Result<Value> {
    browser.upload(&[photo.to_path_buf()]).await?;
    let answered = format!(
        "[...document.querySelectorAll('.card')].filter(c => c.querySelector('[data-testid=prediction],[data-testid=error]')).length >= {cards}"
    );
    browser.wait_for(&answered, Duration::from_secs(300)).await?;
    Ok(browser.eval("return wasmBindings.fashionLastDecodeMs()", vec![]).await?)
}

/// The live camera for `CAMERA_SECONDS`: its answers per second (median of one reading a
/// second, after the first answer) and the longest main-thread task meanwhile.
async fn live_camera(browser: &Browser) -> Result<Value> {
    browser.client.find(Locator::Css("[data-testid=camera-start]")).await?.click().await?;
    browser.wait_for("document.querySelector('[data-testid=camera-answer]')", Duration::from_secs(120)).await?;
    browser.observe_long_tasks().await?;
    let (mut rates, mut work) = (Vec::new(), Vec::new());
    for _ in 0..CAMERA_SECONDS {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let read = browser
            .eval(
                "const d = document.querySelector('[data-testid=camera-rate]').dataset; return [Number(d.rate), Number(d.workMs)]",
                vec![],
            )
            .await?;
        rates.push(read[0].as_f64().unwrap_or(f64::NAN));
        work.push(read[1].as_f64().unwrap_or(f64::NAN));
    }
    let longest = browser.longest_task_ms().await?;
    browser.client.find(Locator::Css("[data-testid=camera-stop]")).await?.click().await?;
    rates.sort_by(f64::total_cmp);
    work.sort_by(f64::total_cmp);
    Ok(json!({ "answers_per_s": rates[rates.len() / 2], "work_ms": work[work.len() / 2], "longest_task_ms": longest }))
}

/// The page's own network (`web/cnn.fmw`, exported by `trainer export --onnx`) in ONNX Runtime
/// Web's wasm backend with one and two threads, and the page's CPU path against it. The
/// package is `$FASHION_ORT_WEB` (its `dist/` folder), which `cargo xtask bench-page` installs.
async fn ort_web_beside_the_page(scratch: &std::path::Path, page: Option<&Value>) -> Result<()> {
    let Some(ort) = std::env::var_os("FASHION_ORT_WEB") else {
        println!("ONNX Runtime Web: not measured ($FASHION_ORT_WEB is unset; `cargo xtask bench-page` installs it)");
        return Ok(());
    };
    let site = scratch.join("ort-web");
    std::fs::create_dir_all(&site)?;
    std::os::unix::fs::symlink(&ort, site.join("ort")).context("linking ONNX Runtime Web's files")?;
    std::fs::write(site.join("index.html"), include_str!("ort-web-bench.html"))?;
    trainer::export::run(trainer::export::ExportArgs {
        onnx: site.join("model.onnx"),
        weights: Some(page_tests::root().join("web/cnn.fmw")),
    })?;
    let server = StaticServer::start_isolated(site);
    for threads in [1, 2] {
        let browser = Browser::launch(Gpu::Unavailable).await?;
        let result = async {
            browser.client.goto(&format!("{}?threads={threads}&runs={RUNS}", server.url)).await?;
            browser.wait_for("window.ortResult", Duration::from_secs(300)).await?;
            browser.eval("return window.ortResult", vec![]).await
        }
        .await;
        let _ = browser.close().await;
        let r = match result {
            Ok(r) if r["error"].is_null() => r,
            Ok(r) => {
                println!("ONNX Runtime Web, {threads} thread(s): failed: {}", r["error"]);
                continue;
            }
            Err(e) => {
                println!("ONNX Runtime Web, {threads} thread(s): failed: {e:#}");
                continue;
            }
        };
        let (ms, per_s) = (r["batch1_ms_median"].as_f64().unwrap_or(f64::NAN), r["batch64_images_per_s"].as_f64().unwrap_or(f64::NAN));
        let page_ms = page.and_then(|p| p["infer_batch1_ms_median"].as_f64()).unwrap_or(f64::NAN);
        let page_per_s = page.and_then(|p| p["batch64_images_per_s"].as_f64()).unwrap_or(f64::NAN);
        let two_cores_per_s = page.and_then(|p| p["batch64_two_cores_images_per_s"].as_f64()).unwrap_or(f64::NAN);
        println!(
            "ort-web {threads}t | the shipped CNN (ONNX export): batch 1 {ms:.2} ms, batch 64 {per_s:.0} img/s | the page's CPU path is {:.2}× as fast at batch 1, {:.2}× at batch 64 on one core, {:.2}× on two (onnxruntime-web {}, cross-origin isolated: {}, {} worker(s))",
            ms / page_ms,
            page_per_s / per_s,
            two_cores_per_s / per_s,
            r["version"].as_str().unwrap_or("?"),
            r["crossOriginIsolated"],
            r["workers"],
        );
    }
    Ok(())
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
    let scratch = tempfile::tempdir()?;
    // A 12-megapixel phone photo of a garment lying on a floor (the surface path's worst case).
    let huge = scratch.path().join("surface-4000x3000.jpg");
    // The first picture of the surface set that the preprocessing finds on its surface.
    let on_surface = (0..)
        .map(|i| testkit::surface_photo(Some(data.test.image(i)), i).0)
        .find(|bytes| fashion_model::preprocess_bytes(bytes, fashion_model::DecodeLimits::default()).is_ok_and(|p| p.on_surface))
        .expect("some surface photo is found on its surface");
    let surface = image::load_from_memory(&on_surface)?;
    let surface = surface.resize_exact(4000, 3000, image::imageops::FilterType::Triangle);
    std::fs::write(&huge, testkit::encode(&surface, image::ImageFormat::Jpeg))?;
    // What the fake camera shows: a sneaker held in front of it.
    let camera = page_tests::fixtures::camera_video(scratch.path(), 7)?;

    println!(
        "backend  | ready after | decode+preprocess | inference batch 1 | answer (CNN+LR) | batch 64     | fine-tune (dense layers / all)"
    );
    let mut cpu = None;
    for gpu in [Gpu::Unavailable, Gpu::WebGpu] {
        match measure(&server, gpu, &photo, &huge, &camera).await {
            Ok(b) => {
                if gpu == Gpu::Unavailable {
                    cpu = Some(b.clone());
                }
                println!(
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
                );
                let bytes = &b["first_answer_bytes"];
                println!(
                    "         | before the first answer: {} raw, {} gzipped | longest main-thread task during a 4000×3000 upload: {:.0} ms{}",
                    mib(bytes[0].as_u64().unwrap_or(0) as usize),
                    mib(bytes[1].as_u64().unwrap_or(0) as usize),
                    b["longest_task_upload_ms"].as_f64().unwrap_or(f64::NAN),
                    b["webgpu_ready_ms"].as_f64().map(|ms| format!(" | WebGPU took over at {ms:.0} ms")).unwrap_or_default()
                );
                println!(
                    "         | 12-megapixel (4000×3000) photo of a garment on a surface: decode + preprocessing in the decoding worker {:.0} ms (the visit's first photo), {:.0} ms (the same photo again)",
                    b["huge_decode_ms"].as_f64().unwrap_or(f64::NAN),
                    b["huge_decode_again_ms"].as_f64().unwrap_or(f64::NAN)
                );
                let work_ms = b["camera"]["work_ms"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "         | live camera (640×480 fake capture at 30 frames/s): {:.0} answers/s; {work_ms:.1} ms of work per answer (frame cut, preprocessing, classifying: up to {:.0} answers/s); longest main-thread task meanwhile {:.0} ms",
                    b["camera"]["answers_per_s"].as_f64().unwrap_or(f64::NAN),
                    1000.0 / work_ms,
                    b["camera"]["longest_task_ms"].as_f64().unwrap_or(f64::NAN)
                );
                if let Some(dispatches) = b["gpu_calls_per_image"]["dispatches"].as_f64() {
                    println!(
                        "         | per batch-1 forward pass: {dispatches:.1} compute dispatches, {:.1} queue submissions",
                        b["gpu_calls_per_image"]["submits"].as_f64().unwrap_or(f64::NAN)
                    );
                }
                if let Some(per_s) = b["batch64_two_cores_images_per_s"].as_f64() {
                    println!(
                        "         | batch 64 on two cores (half in the decoding worker): {per_s:.0} img/s{}",
                        if b["second_core_ready"] == true { "" } else { " (the worker was not ready: one core)" }
                    );
                }
                if let Some(ms) = b["burn"]["infer_batch1_ms_median"].as_f64() {
                    println!(
                        "         | burn Flex's own forward pass of the same network (the page uses the hand-written kernels): batch 1 {ms:.2} ms, batch 64 {:.0} img/s",
                        b["burn"]["batch64_images_per_s"].as_f64().unwrap_or(f64::NAN)
                    );
                }
                if let Some(ms) = b["longest_task_finetune_ms"].as_f64() {
                    println!("         | longest main-thread task during a fine-tuning run started from the page: {ms:.0} ms");
                }
            }
            Err(e) => println!("{gpu:?}: failed: {e:#}"),
        }
    }

    ort_web_beside_the_page(scratch.path(), cpu.as_ref()).await?;

    // The module itself; `.br` is written by `cargo xtask build-page` (brotli, quality 11).
    for entry in std::fs::read_dir(&dist)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let bytes = std::fs::read(&path)?;
            let mut br = path.clone().into_os_string();
            br.push(".br");
            let br = std::fs::metadata(&br).map(|m| mib(m.len() as usize)).unwrap_or_else(|_| "no .br".into());
            println!("wasm: {} raw, {} gzip -9, {br} brotli", mib(bytes.len()), mib(gzip_len(&bytes)));
        }
    }
    Ok(())
}
