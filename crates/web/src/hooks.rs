//! Functions exported to JavaScript for the browser tests and the page benchmark (Trunk
//! exposes them as `window.wasmBindings`). They drive the same engine as the UI; none of them
//! touches the user's photos or the network.

use fashion_model::{DecodeLimits, IMAGE_PIXELS, preprocess_bytes};
use wasm_bindgen::{JsCast, prelude::*};

use crate::{browser, engine};

fn engine() -> Result<std::rc::Rc<engine::Engine>, JsValue> {
    engine::current().ok_or_else(|| JsValue::from_str("the model is not loaded yet"))
}

/// The engine in use (`"current"`) or a CPU copy of its models (`"cpu"`), to compare the paths.
fn engine_on(backend: &str) -> Result<engine::Engine, JsValue> {
    let engine = engine()?;
    match backend {
        "current" => Ok((*engine).clone()),
        "cpu" => engine.on_cpu("comparison copy").map_err(|e| JsValue::from_str(&e.to_string())),
        other => Err(JsValue::from_str(&format!("unknown backend {other:?}"))),
    }
}

/// CNN logits (n × 10) for `pixels` (n × 784) on the backend in use (`"current"`) or on a CPU
/// copy of the same model (`"cpu"`), to compare the two paths.
#[wasm_bindgen(js_name = fashionLogits)]
pub async fn logits(pixels: Vec<f32>, backend: String) -> Result<Vec<f32>, JsValue> {
    if pixels.is_empty() || pixels.len() % IMAGE_PIXELS != 0 {
        return Err(JsValue::from_str("pixels must be a whole number of 28×28 images"));
    }
    let engine = engine_on(&backend)?;
    engine::logits(&engine.cnn.inference, &pixels, &engine.backend.device).await.map_err(|e| JsValue::from_str(&e))
}

/// The occlusion heatmap (784 values) of the CNN's answer for one 28×28 input, on the backend
/// in use (`"current"`) or on a CPU copy (`"cpu"`), to compare the two paths.
#[wasm_bindgen(js_name = fashionHeatmap)]
pub async fn heatmap(pixels: Vec<f32>, backend: String) -> Result<Vec<f32>, JsValue> {
    if pixels.len() != IMAGE_PIXELS {
        return Err(JsValue::from_str("pixels must be one 28×28 image"));
    }
    let engine = engine_on(&backend)?;
    engine.explain(&pixels).await.map_err(|e| JsValue::from_str(&e))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Times, on the backend in use: decode + preprocess of `photo`, CNN inference at batch 1 and
/// the page's whole answer for one photo (CNN and baseline), as medians over `runs` after
/// warm-up, and throughput at batch 64. Returns JSON.
#[wasm_bindgen(js_name = fashionBench)]
pub async fn bench(photo: Vec<u8>, runs: u32) -> Result<String, JsValue> {
    let engine = engine()?;
    let runs = runs.max(1);
    let mut preprocess = Vec::new();
    let mut input = None;
    for _ in 0..runs {
        let t = browser::now_ms();
        let p = preprocess_bytes(&photo, DecodeLimits::default()).map_err(|e| JsValue::from_str(&e.to_string()))?;
        preprocess.push(browser::now_ms() - t);
        input = Some(p.pixels);
    }
    let pixels = input.expect("runs ≥ 1").to_vec();
    let (network, device) = (&engine.cnn.inference, &engine.backend.device);
    let run = |pixels: Vec<f32>| async move { engine::logits(network, &pixels, device).await.map_err(|e| JsValue::from_str(&e)) };
    let batch: Vec<f32> = pixels.iter().copied().cycle().take(64 * IMAGE_PIXELS).collect();
    for _ in 0..3 {
        run(pixels.clone()).await?;
        run(batch.clone()).await?;
    }
    let mut single = Vec::new();
    for _ in 0..runs {
        let t = browser::now_ms();
        run(pixels.clone()).await?;
        single.push(browser::now_ms() - t);
    }
    // What the page does for each uploaded photo: the CNN and the baseline, one read-back.
    let mut answer = Vec::new();
    for _ in 0..runs {
        let t = browser::now_ms();
        engine.classify(&pixels).await.map_err(|e| JsValue::from_str(&e))?;
        answer.push(browser::now_ms() - t);
    }
    let batches = 5;
    let t = browser::now_ms();
    for _ in 0..batches {
        run(batch.clone()).await?;
    }
    let batch_ms = browser::now_ms() - t;
    Ok(serde_json::json!({
        "backend": engine.backend.kind.label(),
        "detail": engine.backend.detail,
        "runs": runs,
        "preprocess_ms_median": median(preprocess),
        "infer_batch1_ms_median": median(single),
        "classify_batch1_ms_median": median(answer),
        "batch64_images_per_s": (batches * 64) as f64 / (batch_ms / 1000.0),
    })
    .to_string())
}

/// Destroys the WebGPU device, as a driver reset would; the next classification must move
/// to the CPU. Returns whether a GPU device was in use.
#[wasm_bindgen(js_name = fashionLoseGpuDevice)]
pub fn lose_gpu_device() -> bool {
    engine::current().is_some_and(|e| e.backend.destroy_gpu_device())
}

/// Size of the wasm heap in bytes (it only grows, so it bounds what the page holds).
#[wasm_bindgen(js_name = fashionWasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64)
        .unwrap_or(f64::NAN)
}

/// Classifies `pixels` `times` times through the engine, as a long session would.
#[wasm_bindgen(js_name = fashionClassifyRepeatedly)]
pub async fn classify_repeatedly(pixels: Vec<f32>, times: u32) -> Result<u32, JsValue> {
    let engine = engine()?;
    for _ in 0..times {
        engine.classify(&pixels).await.map_err(|e| JsValue::from_str(&e))?;
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
/// use, `steps` steps at the default batch of 32 (user photos stood in for by replay images),
/// after 2 warm-up steps. Returns JSON.
#[wasm_bindgen(js_name = fashionBenchTraining)]
pub async fn bench_training(steps: u32) -> Result<String, JsValue> {
    use fashion_model::finetune::{FineTuneConfig, FineTuner, TrainableLayers};
    let engine = engine()?;
    let sets = crate::tuning::sets().await.map_err(|e| JsValue::from_str(&e))?;
    let mut out = serde_json::Map::new();
    for layers in [TrainableLayers::Head, TrainableLayers::All] {
        let config = FineTuneConfig { layers, ..FineTuneConfig::default() };
        let batch = config.batch_size;
        let mut tuner = FineTuner::new(&engine.cnn.network, &engine.backend.device, config, sets.heldout.clone(), sets.replay.clone());
        let mut t = 0.0;
        for step in 0..steps.max(1) + 2 {
            if step == 2 {
                t = browser::now_ms();
            }
            tuner.step().into_scalar_async::<f32>().await.map_err(|e| JsValue::from_str(&format!("{e:?}")))?;
        }
        let images_per_s = (steps.max(1) as usize * batch) as f64 / ((browser::now_ms() - t) / 1000.0);
        out.insert(format!("{layers:?}").to_lowercase(), images_per_s.into());
    }
    out.insert("backend".into(), engine.backend.kind.label().into());
    Ok(serde_json::Value::Object(out).to_string())
}
