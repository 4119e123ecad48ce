//! The few browser services the engine needs: a clock, yielding to the event loop, the WebGPU
//! probe, readable JavaScript errors. Each works on the page and in a Web Worker (the CPU
//! fine-tuning worker, `web/finetune-worker.js`): both scopes have `setTimeout`, `performance` and
//! `navigator`, so they are read from the global object rather than from `window`.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `globalThis[name]` (the window or the worker's scope), `undefined` when absent.
fn global(name: &str) -> JsValue {
    Reflect::get(&js_sys::global(), &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// A JavaScript exception as a readable message.
pub fn js_error(value: JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// Checks, from JavaScript, that the browser exposes a WebGPU adapter, before wgpu is asked
/// for one (wgpu may panic where the browser lacks a feature). `Err` says why not.
pub async fn probe_webgpu() -> Result<(), String> {
    let gpu = Reflect::get(&global("navigator"), &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU".into());
    }
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("this browser's WebGPU has no requestAdapter")?;
    let promise: Promise = request.call0(&gpu).map_err(js_error)?.dyn_into().map_err(js_error)?;
    let adapter = JsFuture::from(promise).await.map_err(|e| format!("WebGPU adapter request failed: {}", js_error(e)))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("no WebGPU adapter is available (WebGPU disabled or the GPU is blocklisted)".into());
    }
    Ok(())
}

/// Lets the browser paint and handle input before the next chunk of work.
pub async fn yield_now() {
    sleep_ms(0).await
}

pub async fn sleep_ms(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        if let Ok(set_timeout) = global("setTimeout").dyn_into::<Function>() {
            let _ = set_timeout.call2(&JsValue::NULL, &resolve, &ms.into());
        } else {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Milliseconds from a monotonic clock.
pub fn now_ms() -> f64 {
    global("performance").dyn_into::<web_sys::Performance>().map(|p| p.now()).unwrap_or_default()
}

/// Size of this module's wasm heap in bytes (it only grows, so it bounds what the module
/// holds).
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64)
        .unwrap_or(f64::NAN)
}
