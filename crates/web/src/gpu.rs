//! The bridge to the WebGPU module (`crates/engine/src/bin/gpu.rs`). The page's own module
//! runs the models on the CPU and holds no WebGPU stack, so that the first answer needs
//! 1.8 MB, not 4.2; once the page can answer it loads the WebGPU module (`web/loader.js`,
//! `fashionLoadGpu`) and, when that starts, sends it the models and classifies there.
//!
//! Both modules run on the main thread: wgpu's browser backend and the page's WebGPU hooks
//! (the GPU buffer counter of the tests) live there. Every call returns a readable error;
//! the page then goes back to the CPU.

use std::{cell::RefCell, rc::Rc};

use fashion_engine::tuning::{Outcome, Report, Sets};
use fashion_model::{LabelledImages, finetune::FineTuneConfig};
use js_sys::{Array, Float32Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, prelude::Closure};
use wasm_bindgen_futures::JsFuture;

use crate::browser::js_error;

/// The WebGPU module, started, with the page's models loaded.
pub struct Gpu {
    exports: JsValue,
    /// The adapter's name, for the badge.
    pub adapter: String,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Gpu>>> = const { RefCell::new(None) };
}

/// The WebGPU module, while classification runs there.
pub fn current() -> Option<Rc<Gpu>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Stops using WebGPU (it failed); the CPU takes over.
pub fn stop() {
    CURRENT.with(|c| *c.borrow_mut() = None);
}

fn bytes(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

fn optional_bytes(b: Option<&[u8]>) -> JsValue {
    b.map_or(JsValue::NULL, bytes)
}

/// Calls `f(args…)` on `target`.
fn call_sync(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let f: Function = Reflect::get(target, &name.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("the WebGPU module has no {name}()"))?;
    f.apply(target, &args.iter().collect::<Array>()).map_err(js_error)
}

/// Calls `f(args…)` on `target` and awaits it if it returned a promise.
async fn call(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, String> {
    match call_sync(target, name, args)?.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await.map_err(js_error),
        Err(value) => Ok(value),
    }
}

/// Loads the WebGPU module, starts WebGPU with these models and compiles their shaders. On
/// success it is [`current`]; `Err` says why WebGPU cannot be used.
pub async fn start(cnn: &[u8], baseline: Option<&[u8]>) -> Result<Rc<Gpu>, String> {
    let window: JsValue = web_sys::window().ok_or("no window")?.into();
    let exports = call(&window, "fashionLoadGpu", &[]).await.map_err(|e| format!("the WebGPU module did not load ({e})"))?;
    let adapter = call(&exports, "start", &[bytes(cnn), optional_bytes(baseline)]).await?.as_string().unwrap_or_default();
    let gpu = Rc::new(Gpu { exports, adapter });
    CURRENT.with(|c| *c.borrow_mut() = Some(gpu.clone()));
    Ok(gpu)
}

impl Gpu {
    async fn call(&self, name: &str, args: &[JsValue]) -> Result<JsValue, String> {
        call(&self.exports, name, args).await
    }

    /// Gives it the page's models (after every change of weights).
    pub async fn set_models(&self, cnn: &[u8], baseline: Option<&[u8]>) -> Result<(), String> {
        self.call("setModels", &[bytes(cnn), optional_bytes(baseline)]).await.map(drop)
    }

    /// Raw logits (n × 10) of the CNN and of the baseline (when loaded) for `pixels`.
    pub async fn logits(&self, pixels: &[f32]) -> Result<(Vec<f32>, Option<Vec<f32>>), String> {
        let pair: Array = self.call("logits", &[Float32Array::from(pixels).into()]).await?.dyn_into().map_err(js_error)?;
        let read = |v: JsValue| v.dyn_into::<Float32Array>().ok().map(|a| a.to_vec());
        let cnn = read(pair.get(0)).ok_or("the WebGPU module gave no logits")?;
        Ok((cnn, read(pair.get(1))))
    }

    /// The occlusion heatmap of the CNN's answer for one 28×28 input.
    pub async fn explain(&self, pixels: &[f32]) -> Result<Vec<f32>, String> {
        let heat = self.call("explain", &[Float32Array::from(pixels).into()]).await?;
        heat.dyn_into::<Float32Array>().map(|a| a.to_vec()).map_err(|_| "the WebGPU module gave no heatmap".into())
    }

    /// A fine-tuning run on WebGPU ([`fashion_engine::tuning::run`]).
    pub async fn fine_tune(
        &self,
        user: &LabelledImages,
        sets: &Sets,
        config: &FineTuneConfig,
        on_step: impl Fn(usize, f32) + 'static,
        cancelled: impl Fn() -> bool + 'static,
    ) -> Result<Outcome, String> {
        let on_step = Closure::<dyn Fn(f64, f32)>::new(move |step: f64, loss: f32| on_step(step as usize, loss));
        let cancelled = Closure::<dyn Fn() -> bool>::new(cancelled);
        let config = serde_json::to_string(config).map_err(|e| e.to_string())?;
        let result = self
            .call(
                "fineTune",
                &[
                    bytes(&user.pixels),
                    bytes(&user.labels),
                    bytes(&sets.replay.encode()),
                    bytes(&sets.heldout.encode()),
                    config.into(),
                    on_step.as_ref().clone(),
                    cancelled.as_ref().clone(),
                ],
            )
            .await?;
        if result.is_null() {
            return Ok(Outcome::Cancelled);
        }
        let pair: Array = result.dyn_into().map_err(js_error)?;
        let weights = pair.get(0).dyn_into::<Uint8Array>().map_err(js_error)?.to_vec();
        let report: Report = serde_json::from_str(&pair.get(1).as_string().unwrap_or_default()).map_err(|e| e.to_string())?;
        Ok(Outcome::Done { weights, report })
    }

    /// Size of its wasm heap in bytes.
    pub fn memory_bytes(&self) -> f64 {
        call_sync(&self.exports, "memoryBytes", &[]).ok().and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
    }

    /// Destroys its GPU device (a test hook standing in for a driver reset).
    pub async fn lose_device(&self) -> bool {
        self.call("loseDevice", &[]).await.is_ok_and(|v| v.is_truthy())
    }

    /// The page benchmark's inference figures, measured on WebGPU.
    pub async fn bench(&self, photo: &[u8], runs: u32) -> Result<String, String> {
        Ok(self.call("bench", &[bytes(photo), runs.into()]).await?.as_string().unwrap_or_default())
    }

    /// The page benchmark's fine-tuning figures, measured on WebGPU.
    pub async fn bench_training(&self, steps: u32, sets: &Sets) -> Result<String, String> {
        let args = [steps.into(), bytes(&sets.replay.encode()), bytes(&sets.heldout.encode())];
        Ok(self.call("benchTraining", &args).await?.as_string().unwrap_or_default())
    }
}
