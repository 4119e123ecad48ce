//! The bridge to the engine module on WebGPU (`crates/engine-module`). The page's own module
//! runs the models on the CPU and holds no WebGPU stack, so that the first answer needs
//! 1.8 MB, not 4.2; once the page can answer it loads the WebGPU module (`web/loader.js`,
//! `fashionLoadGpu`) and, when that starts, sends it the models and classifies there.
//!
//! Both modules run on the main thread: wgpu's browser backend and the page's WebGPU hooks
//! (the GPU buffer counter of the tests) live there. Every call returns a readable error that
//! says whether WebGPU can still be used ([`GpuError`]).

use std::rc::Rc;

use fashion_engine::finetune::{Outcome, Sets};
use fashion_model::{LabelledImages, finetune::FineTuneConfig};
use js_sys::{Array, Float32Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, prelude::Closure};
use wasm_bindgen_futures::JsFuture;

use crate::{browser::js_error, finetune_worker};

/// Why a call into the WebGPU module failed.
#[derive(Debug)]
pub enum GpuError {
    /// Its device is gone (the module names such errors `DeviceLost`), or the module itself
    /// stopped (a WebAssembly trap: a panic leaves it unusable). Nothing more can run there.
    Lost(String),
    /// This call failed; the module and its device still work.
    Failed(String),
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuError::Lost(why) | GpuError::Failed(why) => f.write_str(why),
        }
    }
}

impl From<String> for GpuError {
    fn from(why: String) -> Self {
        GpuError::Failed(why)
    }
}

/// Sorts an exception thrown by the module.
fn gpu_error(value: JsValue) -> GpuError {
    let lost = value.dyn_ref::<js_sys::WebAssembly::RuntimeError>().is_some()
        || value.dyn_ref::<js_sys::Error>().is_some_and(|e| e.name() == "DeviceLost");
    let why = js_error(value);
    if lost { GpuError::Lost(why) } else { GpuError::Failed(why) }
}

/// The WebGPU module, started, with the page's models loaded.
pub struct Gpu {
    exports: JsValue,
    /// The adapter's name, for the badge.
    pub adapter: String,
}

fn bytes(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

fn optional_bytes(b: Option<&[u8]>) -> JsValue {
    b.map_or(JsValue::NULL, bytes)
}

/// Calls `f(args…)` on `target`.
fn call_sync(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, GpuError> {
    let f: Function = Reflect::get(target, &name.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("the WebGPU module has no {name}()"))?;
    f.apply(target, &args.iter().collect::<Array>()).map_err(gpu_error)
}

/// Calls `f(args…)` on `target` and awaits it if it returned a promise.
async fn call(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, GpuError> {
    match call_sync(target, name, args)?.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await.map_err(gpu_error),
        Err(value) => Ok(value),
    }
}

/// Loads the WebGPU module, starts WebGPU with these models and compiles their shaders; `Err`
/// says why WebGPU cannot be used.
pub async fn start(cnn: &[u8], baseline: Option<&[u8]>) -> Result<Rc<Gpu>, String> {
    let window: JsValue = web_sys::window().ok_or("no window")?.into();
    let exports = call(&window, "fashionLoadGpu", &[]).await.map_err(|e| format!("the WebGPU module did not load ({e})"))?;
    let adapter =
        call(&exports, "start", &[bytes(cnn), optional_bytes(baseline)]).await.map_err(|e| e.to_string())?.as_string().unwrap_or_default();
    Ok(Rc::new(Gpu { exports, adapter }))
}

impl Gpu {
    async fn call(&self, name: &str, args: &[JsValue]) -> Result<JsValue, GpuError> {
        call(&self.exports, name, args).await
    }

    /// Gives it the page's models (after every change of weights).
    pub async fn set_models(&self, cnn: &[u8], baseline: Option<&[u8]>) -> Result<(), GpuError> {
        self.call("setModels", &[bytes(cnn), optional_bytes(baseline)]).await.map(drop)
    }

    /// Raw logits (n × 10) of the CNN and of the baseline (when loaded) for `pixels`.
    pub async fn logits(&self, pixels: &[f32]) -> Result<(Vec<f32>, Option<Vec<f32>>), GpuError> {
        let pair: Array = self.call("logits", &[Float32Array::from(pixels).into()]).await?.dyn_into().map_err(js_error)?;
        let read = |v: JsValue| v.dyn_into::<Float32Array>().ok().map(|a| a.to_vec());
        let cnn = read(pair.get(0)).ok_or_else(|| "the WebGPU module gave no logits".to_string())?;
        Ok((cnn, read(pair.get(1))))
    }

    /// The occlusion heatmap of the CNN's answer for one 28×28 input.
    pub async fn explain(&self, pixels: &[f32]) -> Result<Vec<f32>, GpuError> {
        let heat = self.call("explain", &[Float32Array::from(pixels).into()]).await?;
        heat.dyn_into::<Float32Array>().map(|a| a.to_vec()).map_err(|_| GpuError::Failed("the WebGPU module gave no heatmap".into()))
    }

    /// A fine-tuning run on WebGPU ([`fashion_engine::finetune::run`]).
    pub async fn fine_tune(
        &self,
        user: &LabelledImages,
        classes: &[String],
        sets: &Sets,
        config: &FineTuneConfig,
        on_step: impl Fn(usize, f32) + 'static,
        cancelled: impl Fn() -> bool + 'static,
    ) -> Result<Outcome, GpuError> {
        let on_step = Closure::<dyn Fn(f64, f32)>::new(move |step: f64, loss: f32| on_step(step as usize, loss));
        let cancelled = Closure::<dyn Fn() -> bool>::new(cancelled);
        let mut args: Vec<JsValue> = finetune_worker::fine_tune_args(user, classes, sets, config)?.to_vec();
        args.extend([on_step.as_ref().clone(), cancelled.as_ref().clone()]);
        Ok(finetune_worker::outcome(self.call("fineTune", &args).await?)?)
    }

    #[cfg(feature = "test-hooks")]
    /// Size of its wasm heap in bytes.
    pub fn memory_bytes(&self) -> f64 {
        call_sync(&self.exports, "memoryBytes", &[]).ok().and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
    }

    #[cfg(feature = "test-hooks")]
    /// The page benchmark's inference figures, measured on WebGPU.
    pub async fn bench(&self, photo: &[u8], runs: u32) -> Result<String, GpuError> {
        Ok(self.call("bench", &[bytes(photo), runs.into()]).await?.as_string().unwrap_or_default())
    }

    #[cfg(feature = "test-hooks")]
    /// The page benchmark's fine-tuning figures, measured on WebGPU.
    pub async fn bench_training(&self, steps: u32, sets: &Sets) -> Result<String, GpuError> {
        let args = [steps.into(), bytes(&sets.replay.encode()), bytes(&sets.heldout.encode())];
        Ok(self.call("benchTraining", &args).await?.as_string().unwrap_or_default())
    }
}
