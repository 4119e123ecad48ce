//! The page's second module, the engine module (`engine.js`, `engine_bg.wasm`): the same
//! engine on WebGPU (burn-wgpu). The page answers first
//! on its own CPU module, which holds no WebGPU stack; once it can answer it loads this one
//! (`web/loader.js`, `fashionLoadGpu`) and, if WebGPU starts, moves classification,
//! explanations and fine-tuning here. It runs on the page's main thread (wgpu's browser
//! backend lives there) and keeps nothing of its own but a copy of the page's models: the
//! page sends every change of weights.
//!
//! Where WebGPU is not in use, the page's CPU fine-tuning worker (`web/finetune-worker.js`) runs this
//! module too, on burn's CPU backend (`startCpu`), so that training never blocks the page.
//!
//! Each export is a thin call into `fashion_engine`; errors come back as readable strings.
//! The benchmark exports (`bench`, `benchTraining`, `memoryBytes`) only measure: they exist only
//! with the `bench` feature, which only the tests' build of the page enables.

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    // Once, here, rather than at the top of every export (see the page's `main.rs`).
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the linker's static constructors, run once before any export is called (this
    // is the module's start function) and never again.
    unsafe {
        __wasm_call_ctors();
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    use std::{cell::RefCell, rc::Rc};

    #[cfg(feature = "bench")]
    use fashion_engine::bench;
    use fashion_engine::{
        Backend, Engine, EngineError,
        finetune::{self, Outcome, Sets},
    };
    use fashion_model::{IMAGE_PIXELS, LabelledImages, finetune::FineTuneConfig};
    use js_sys::{Array, Float32Array, Function, Uint8Array};
    use wasm_bindgen::prelude::*;

    thread_local! {
        // This module's models. The module is single-threaded; the engine is swapped whole
        // (never borrowed across an await), so a panic in the middle of a call cannot leave
        // it locked.
        static CURRENT: RefCell<Option<Rc<Engine>>> = const { RefCell::new(None) };
    }

    fn current() -> Option<Rc<Engine>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    fn install(engine: Engine) {
        CURRENT.with(|c| *c.borrow_mut() = Some(Rc::new(engine)));
    }

    fn engine() -> Result<Rc<Engine>, JsValue> {
        current().ok_or_else(|| JsValue::from_str("the engine module has no models yet"))
    }

    /// An engine error as a JavaScript `Error`. A device failure is named `DeviceLost`: the
    /// page then moves the models to the CPU (`crates/web/src/gpu.rs`); after any other error
    /// this module is still usable.
    fn error(e: EngineError) -> JsValue {
        let error = js_sys::Error::new(&e.to_string());
        if e.is_device_failure() {
            error.set_name("DeviceLost");
        }
        error.into()
    }

    fn sets(replay: &[u8], heldout: &[u8]) -> Result<Sets, JsValue> {
        let decode = |bytes: &[u8]| LabelledImages::decode(bytes).map_err(|e| JsValue::from_str(&e.to_string()));
        Ok(Sets { replay: decode(replay)?, heldout: decode(heldout)? })
    }

    /// Opens WebGPU, loads the models and runs the CNN once so its shaders are compiled;
    /// returns the adapter's name.
    #[wasm_bindgen]
    pub async fn start(cnn: Vec<u8>, baseline: Option<Vec<u8>>) -> Result<String, JsValue> {
        let backend = Backend::webgpu().await?;
        let engine = Engine::load(backend, cnn, baseline).map_err(|e| e.to_string())?;
        engine.warm_up().await.map_err(error)?;
        let name = engine.backend.detail.clone();
        install(engine);
        Ok(name)
    }

    /// Loads the models on burn's CPU backend instead (the fine-tuning worker).
    #[wasm_bindgen(js_name = startCpu)]
    pub fn start_cpu(cnn: Vec<u8>, baseline: Option<Vec<u8>>) -> Result<(), JsValue> {
        install(Engine::load(Backend::cpu("the fine-tuning worker"), cnn, baseline).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// Replaces both models (the page validated the files first).
    #[wasm_bindgen(js_name = setModels)]
    pub fn set_models(cnn: Vec<u8>, baseline: Option<Vec<u8>>) -> Result<(), JsValue> {
        let backend = engine()?.backend.clone();
        install(Engine::load(backend, cnn, baseline).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// `[cnn, baseline | null]`: raw logits (n × 10) of each model for `pixels` (n × 784).
    #[wasm_bindgen]
    pub async fn logits(pixels: Vec<f32>) -> Result<Array, JsValue> {
        let (cnn, baseline) = engine()?.all_logits(&pixels).await.map_err(error)?;
        let baseline: JsValue = baseline.map_or(JsValue::NULL, |b| Float32Array::from(&b[..]).into());
        Ok(Array::of2(&Float32Array::from(&cnn[..]), &baseline))
    }

    /// The occlusion heatmap of the CNN's answer for one 28×28 input.
    #[wasm_bindgen]
    pub async fn explain(pixels: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        engine()?.explain(&pixels).await.map_err(error)
    }

    /// Fine-tunes the CNN on the user's photos (n × 784 bytes and their labels) into the
    /// classes `classes` (a JSON list of names in label order) with the page's replay and
    /// held-out sets. `on_step(step, loss)` reports progress, `cancelled()`
    /// is asked between steps. Returns `null` if cancelled, else `[weights file, report JSON]`.
    #[wasm_bindgen(js_name = fineTune)]
    pub async fn fine_tune(
        user_pixels: Vec<u8>,
        user_labels: Vec<u8>,
        replay: Vec<u8>,
        heldout: Vec<u8>,
        config: String,
        classes: String,
        on_step: Function,
        cancelled: Function,
    ) -> Result<JsValue, JsValue> {
        let engine = engine()?;
        let config: FineTuneConfig = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let classes: Vec<String> = serde_json::from_str(&classes).map_err(|e| e.to_string())?;
        let mut user = LabelledImages::default();
        for (image, &label) in user_pixels.chunks_exact(IMAGE_PIXELS).zip(&user_labels) {
            user.push(image, label);
        }
        let sets = sets(&replay, &heldout)?;
        let step = |step: usize, loss: f32| {
            let _ = on_step.call2(&JsValue::NULL, &(step as f64).into(), &loss.into());
        };
        let is_cancelled = || cancelled.call0(&JsValue::NULL).is_ok_and(|v| v.is_truthy());
        match finetune::run(&engine, user, &classes, &sets, config, step, is_cancelled).await.map_err(error)? {
            Outcome::Cancelled => Ok(JsValue::NULL),
            Outcome::Done { weights, report } => {
                let report = serde_json::to_string(&report).map_err(|e| e.to_string())?;
                Ok(Array::of2(&Uint8Array::from(&weights[..]), &report.into()).into())
            }
        }
    }

    /// Size of this module's wasm heap in bytes (the page's memory hook adds it to its own).
    #[cfg(feature = "bench")]
    #[wasm_bindgen(js_name = memoryBytes)]
    pub fn memory_bytes() -> f64 {
        fashion_engine::js::wasm_memory_bytes()
    }

    /// The page benchmark's inference figures on WebGPU ([`bench::inference`]).
    #[cfg(feature = "bench")]
    #[wasm_bindgen]
    pub async fn bench(photo: Vec<u8>, runs: u32) -> Result<String, JsValue> {
        bench::inference(&*engine()?, &photo, runs).await.map_err(error)
    }

    /// The page benchmark's fine-tuning figures on WebGPU ([`bench::training`]).
    #[cfg(feature = "bench")]
    #[wasm_bindgen(js_name = benchTraining)]
    pub async fn bench_training(steps: u32, replay: Vec<u8>, heldout: Vec<u8>) -> Result<String, JsValue> {
        bench::training(&*engine()?, &sets(&replay, &heldout)?, steps).await.map_err(error)
    }
}
