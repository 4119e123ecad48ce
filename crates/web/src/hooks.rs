//! Functions exported to JavaScript for the browser tests and the page benchmark (Trunk
//! exposes them as `window.wasmBindings`), built only with the `test-hooks` feature: the
//! shipped page has none of them. They drive the same models as the UI through the page's
//! [`Router`], on WebGPU when the page runs there and otherwise on its CPU engine; none of them
//! touches the user's photos or the network.

use std::{cell::Cell, rc::Rc};

use fashion_engine::{Engine, bench};
use fashion_model::IMAGE_PIXELS;
use wasm_bindgen::prelude::*;

use crate::{
    finetune_sets,
    gpu::Gpu,
    second_core,
    state::{AppState, Router},
};

thread_local! {
    // The hooks are free functions called from JavaScript: they reach the app through this.
    static ROUTER: Cell<Option<Router>> = const { Cell::new(None) };
}

/// Gives the hooks the app's router (once, when the app starts).
pub fn register(state: AppState) {
    ROUTER.with(|router| router.set(Some(state.router)));
}

fn router() -> Result<Router, JsValue> {
    ROUTER.with(Cell::get).ok_or_else(|| JsValue::from_str("the app has not started"))
}

fn engine() -> Result<Rc<Engine>, JsValue> {
    router()?.models().ok_or_else(|| JsValue::from_str("the model is not loaded yet"))
}

/// The engine module on WebGPU, while the page runs there.
fn gpu() -> Option<Rc<Gpu>> {
    router().ok()?.gpu()
}

fn js(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// CNN logits (n × 10) for `pixels` (n × 784) on the backend in use (`"current"`), on the
/// page's CPU engine (`"cpu"`) or on the CPU's two cores (`"two-cores"`: [`second_core`]),
/// to compare the paths.
#[wasm_bindgen(js_name = fashionLogits)]
pub async fn logits(pixels: Vec<f32>, backend: String) -> Result<Vec<f32>, JsValue> {
    if pixels.is_empty() || pixels.len() % IMAGE_PIXELS != 0 {
        return Err(JsValue::from_str("pixels must be a whole number of 28×28 images"));
    }
    let engine = engine()?;
    match (backend.as_str(), gpu()) {
        ("current", Some(gpu)) => Ok(gpu.logits(&pixels).await.map_err(js)?.0),
        ("current" | "cpu", _) => engine.cnn.logits(&pixels, &engine.backend.device).await.map_err(js),
        ("two-cores", _) => second_core::cnn_logits(&engine, &pixels).await.map_err(js),
        (other, _) => Err(JsValue::from_str(&format!("unknown backend {other:?}"))),
    }
}

/// Whether the decoding worker holds the CNN in use and answered every batch since it got
/// it ([`second_core`]).
#[wasm_bindgen(js_name = fashionSecondCoreHolds)]
pub fn second_core_holds() -> Result<bool, JsValue> {
    Ok(second_core::holds(&*engine()?))
}

/// The occlusion heatmap (784 values) of the CNN's answer for one 28×28 input, on the backend
/// in use (`"current"`, the CPU's two cores where the page runs there) or on the page's CPU
/// engine alone (`"cpu"`), to compare the paths.
#[wasm_bindgen(js_name = fashionHeatmap)]
pub async fn heatmap(pixels: Vec<f32>, backend: String) -> Result<Vec<f32>, JsValue> {
    if pixels.len() != IMAGE_PIXELS {
        return Err(JsValue::from_str("pixels must be one 28×28 image"));
    }
    match backend.as_str() {
        "current" => router()?.explain(&pixels).await.map_err(js),
        "cpu" => engine()?.explain(&pixels).await.map_err(js),
        other => Err(JsValue::from_str(&format!("unknown backend {other:?}"))),
    }
}

/// Times, on the backend in use: decode + preprocess of `photo`, CNN inference at batch 1 and
/// the page's whole answer for one photo (CNN and baseline), as medians over `runs` after
/// warm-up, and throughput at batch 64 ([`bench::inference`]). Returns JSON.
#[wasm_bindgen(js_name = fashionBench)]
pub async fn bench(photo: Vec<u8>, runs: u32) -> Result<String, JsValue> {
    match gpu() {
        Some(gpu) => gpu.bench(&photo, runs).await.map_err(js),
        None => {
            let engine = engine()?;
            let figures = bench::inference(&engine, &photo, runs).await.map_err(js)?;
            let mut figures: serde_json::Value = serde_json::from_str(&figures).map_err(js)?;
            // The same batch of 64 on the CPU's two cores, timed right after.
            let image = fashion_model::preprocess_bytes(&photo, Default::default()).map_err(js)?.pixels.to_vec();
            let batch: Vec<f32> = image.iter().copied().cycle().take(64 * IMAGE_PIXELS).collect();
            let run = |p: Vec<f32>| {
                let engine = engine.clone();
                async move { second_core::cnn_logits(&engine, &p).await }
            };
            let (_, two_cores) = bench::time_forward(run, &image, &batch, runs).await.map_err(js)?;
            figures["batch64_two_cores_images_per_s"] = two_cores.into();
            figures["second_core_ready"] = crate::decoder::ready().into();
            Ok(figures.to_string())
        }
    }
}

/// Milliseconds the decoding worker spent decoding and preprocessing the last photo given to
/// the page (`null` before the worker answered one).
#[wasm_bindgen(js_name = fashionLastDecodeMs)]
pub fn last_decode_ms() -> Option<f64> {
    crate::decoder::last_worker_ms()
}

/// Size of the wasm heaps in bytes, the page's and (once loaded) the engine module's: they
/// only grow, so they bound what the tab holds.
#[wasm_bindgen(js_name = fashionWasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    fashion_engine::js::wasm_memory_bytes() + gpu().map_or(0.0, |gpu| gpu.memory_bytes())
}

/// Classifies `pixels` `times` times as the page does, as a long session would.
#[wasm_bindgen(js_name = fashionClassifyRepeatedly)]
pub async fn classify_repeatedly(pixels: Vec<f32>, times: u32) -> Result<u32, JsValue> {
    let router = router()?;
    for _ in 0..times {
        router.classify(&pixels).await.map_err(js)?;
    }
    Ok(times)
}

/// Panics on purpose, to test that the panic hook shows the error and the page survives.
#[wasm_bindgen(js_name = fashionPanicForTest)]
pub fn panic_for_test() {
    panic!("deliberate panic from fashionPanicForTest()");
}

/// The CNN weights file in use: exactly what "Download weights" saves.
#[wasm_bindgen(js_name = fashionCurrentWeights)]
pub fn current_weights() -> Result<Vec<u8>, JsValue> {
    Ok(engine()?.cnn.bytes.to_vec())
}

/// Fine-tuning throughput (forward + backward + optimizer step, images/s) on the backend in
/// use ([`bench::training`]). Returns JSON.
#[wasm_bindgen(js_name = fashionBenchTraining)]
pub async fn bench_training(steps: u32) -> Result<String, JsValue> {
    let sets = finetune_sets::load().await.map_err(js)?;
    match gpu() {
        Some(gpu) => gpu.bench_training(steps, &sets).await.map_err(js),
        None => bench::training(&*engine()?, &sets, steps).await.map_err(js),
    }
}
