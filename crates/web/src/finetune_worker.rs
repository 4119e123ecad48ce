//! CPU fine-tuning in a Web Worker (`web/finetune-worker.js`), so that the page's main thread stays free
//! while the model trains: one CPU training step takes a few hundred milliseconds, far over
//! the 50 ms a page may block. The worker runs the engine module (`engine_bg.wasm`, the same
//! [`fashion_engine::finetune::run`]) on burn's CPU backend; it is started for each run and
//! ended afterwards, which also frees the run's memory. Where it cannot start, the caller
//! runs the same code on the main thread.
//!
//! On WebGPU, fine-tuning runs in the engine module on the page ([`crate::gpu`]): wgpu's
//! browser backend lives on the main thread there. Both callers share the `fineTune`
//! arguments and result below.

use fashion_engine::finetune::{Outcome, Sets};
use fashion_model::finetune::Report;
use fashion_model::{LabelledImages, finetune::FineTuneConfig};
use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, prelude::Closure};
use wasm_bindgen_futures::JsFuture;

use crate::{
    browser::js_error,
    message::{get, object},
};

/// The worker's script (copied into the site as is).
const SCRIPT: &str = "finetune-worker.js";

/// Why a run in the worker gave no model.
#[derive(Debug)]
pub enum Failure {
    /// The worker or the engine module could not start here: run it on the page instead.
    Unavailable(String),
    /// The run itself failed (diverged, bad input): running it elsewhere would fail alike.
    Failed(String),
}

/// The engine module's `fineTune` arguments, but its two callbacks.
pub fn fine_tune_args(user: &LabelledImages, classes: &[String], sets: &Sets, config: &FineTuneConfig) -> Result<Array, String> {
    let config = serde_json::to_string(config).map_err(|e| e.to_string())?;
    let classes = serde_json::to_string(classes).map_err(|e| e.to_string())?;
    let bytes = |b: &[u8]| JsValue::from(Uint8Array::from(b));
    Ok([
        bytes(&user.pixels),
        bytes(&user.labels),
        bytes(&sets.replay.encode()),
        bytes(&sets.heldout.encode()),
        config.into(),
        classes.into(),
    ]
    .iter()
    .collect())
}

/// What the engine module's `fineTune` returned: `null` when cancelled, else
/// `[weights file, report JSON]`.
pub fn outcome(result: JsValue) -> Result<Outcome, String> {
    if result.is_null() {
        return Ok(Outcome::Cancelled);
    }
    let pair: Array = result.dyn_into().map_err(js_error)?;
    let weights = pair.get(0).dyn_into::<Uint8Array>().map_err(js_error)?.to_vec();
    let report: Report = serde_json::from_str(&pair.get(1).as_string().unwrap_or_default()).map_err(|e| e.to_string())?;
    Ok(Outcome::Done { weights, report })
}

/// Fine-tunes `cnn` (a weights file) in a worker. `on_step(step, loss)` reports progress;
/// `cancelled()` is asked after every step.
pub async fn fine_tune(
    cnn: &[u8],
    user: &LabelledImages,
    classes: &[String],
    sets: &Sets,
    config: &FineTuneConfig,
    on_step: impl Fn(usize, f32) + 'static,
    cancelled: impl Fn() -> bool + 'static,
) -> Result<Outcome, Failure> {
    let args = fine_tune_args(user, classes, sets, config).map_err(Failure::Failed)?;
    let worker = web_sys::Worker::new(SCRIPT).map_err(|e| Failure::Unavailable(js_error(e)))?;
    // Settled by the message that ends the run, or by an error event (the script or the
    // module failed to load).
    let mut settle: Option<Function> = None;
    let ended = Promise::new(&mut |resolve, _| settle = Some(resolve));
    let settle = settle.expect("a promise calls its executor at once");
    let on_message = {
        let (worker, settle) = (worker.clone(), settle.clone());
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data();
            match get(&data, "step").as_f64() {
                Some(step) => {
                    on_step(step as usize, get(&data, "loss").as_f64().unwrap_or(f64::NAN) as f32);
                    if cancelled() {
                        let _ = worker.post_message(&object(&[("cancel", true.into())]));
                    }
                }
                None => drop(settle.call1(&JsValue::NULL, &data)),
            }
        })
    };
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
        let why = get(&event, "message").as_string().filter(|m| !m.is_empty()).unwrap_or_else(|| "it failed to load".into());
        let _ = settle.call1(&JsValue::NULL, &object(&[("unavailable", why.into())]));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let posted = worker.post_message(&object(&[("cnn", Uint8Array::from(cnn).into()), ("args", args.into())]));
    let result = match posted {
        Ok(()) => JsFuture::from(ended).await.unwrap_or(JsValue::UNDEFINED),
        Err(e) => object(&[("unavailable", js_error(e).into())]),
    };
    worker.terminate();
    if let Some(why) = get(&result, "unavailable").as_string() {
        return Err(Failure::Unavailable(why));
    }
    if let Some(error) = get(&result, "error").as_string() {
        return Err(Failure::Failed(error));
    }
    outcome(get(&result, "done")).map_err(Failure::Failed)
}
