//! Photo file → model input, in the decoding Web Worker (`src/bin/decoder.rs`) so that a large
//! photo never blocks the page's main thread; on the main thread, with the same code and the
//! same result, where the worker cannot run (it failed to start or stopped).
//!
//! Messages: the page posts `{ id, file, turns, mirrored, crop: [l, t, w, h] | null }`; the
//! worker answers `{ id, pixels, frame, item, onSurface, view?, whole? }` or `{ id, error }`, and once, when it
//! starts listening, `{ ready: true }`. The same worker takes half of the CNN's large CPU
//! batches ([`crate::second_core`], which holds those messages) through [`request`].

use std::{cell::RefCell, collections::HashMap};

use fashion_model::{Framing, framing::Thumbnail};
use js_sys::{Array, Float32Array, Function, Promise, Uint8Array};
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue, prelude::Closure};
use wasm_bindgen_futures::JsFuture;

use crate::{
    browser, browser_image,
    message::{get, object},
};

/// Trunk's loader for the `decoder` binary (workers keep their names: no content hash).
const SCRIPT: &str = "decoder_loader.js";
/// A worker that has not said "ready" by then is given up (its wasm failed to load).
const START_TIMEOUT_MS: i32 = 20_000;

/// A file made into a model input.
pub struct Decoded {
    /// 28×28, 0..=1.
    pub pixels: Vec<f32>,
    /// Where the 28×28 view lies on the (framed) photo, as fractions.
    pub frame: [f32; 4],
    /// The region taken as the item (see `Preprocessed::item`).
    pub item: ItemRegion,
    /// When re-framed: thumbnails of the view, and of the view without its crop.
    pub thumbnails: Option<(Thumbnail, Thumbnail)>,
}

/// The region the preprocessing took as the item, outlined on the card's photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemRegion {
    /// Left, top, width, height as fractions of the (framed) view.
    pub bounds: [f32; 4],
    /// Found on a textured or unevenly lit surface, not on a plain backdrop.
    pub on_surface: bool,
}

struct Worker {
    worker: web_sys::Worker,
    ready: bool,
    /// Requests made before the worker listens.
    queued: Vec<JsValue>,
    /// How to hand each request in flight its answer, by id.
    waiting: HashMap<u32, Function>,
    next_id: u32,
    _on_message: Closure<dyn Fn(web_sys::MessageEvent)>,
    _on_error: Closure<dyn Fn(web_sys::Event)>,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    /// Milliseconds the worker spent decoding and preprocessing the last file it answered.
    static LAST_MS: std::cell::Cell<Option<f64>> = const { std::cell::Cell::new(None) };
}

/// Milliseconds the decoding worker spent on the last file it decoded (for benchmarks).
#[cfg(feature = "test-hooks")]
pub fn last_worker_ms() -> Option<f64> {
    LAST_MS.with(|ms| ms.get())
}

/// Starts the worker. Called once the page can answer, so that its download never delays the
/// first answer; files given before then are decoded on the main thread.
pub fn start() {
    let Ok(worker) = web_sys::Worker::new(SCRIPT) else {
        web_sys::console::warn_1(&"The decoding worker could not start; photos are decoded on the page.".into());
        return;
    };
    let on_message = Closure::<dyn Fn(web_sys::MessageEvent)>::new(|event: web_sys::MessageEvent| on_message(event.data()));
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(|_| give_up("it stopped with an error"));
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    WORKER.with(|w| {
        *w.borrow_mut() = Some(Worker {
            worker,
            ready: false,
            queued: Vec::new(),
            waiting: HashMap::new(),
            next_id: 0,
            _on_message: on_message,
            _on_error: on_error,
        })
    });
    spawn_local(async {
        browser::sleep_ms(START_TIMEOUT_MS).await;
        if WORKER.with(|w| w.borrow().as_ref().is_some_and(|w| !w.ready)) {
            give_up("it did not start");
        }
    });
}

/// Decodes and preprocesses `file` as `framing` says.
pub async fn decode(file: &web_sys::File, framing: Framing) -> Result<Decoded, String> {
    if let Some(promise) = post(file, framing) {
        // `undefined` means the worker went away before answering: do it here instead.
        if let Ok(reply) = JsFuture::from(promise).await
            && reply.is_object()
        {
            return parse(&reply);
        }
    }
    let bytes = browser::read_file(file).await?;
    let framed = browser_image::preprocess(file, &bytes, &framing).await?;
    let item = ItemRegion { bounds: framed.input.item, on_surface: framed.input.on_surface };
    Ok(Decoded { pixels: framed.input.pixels.to_vec(), frame: framed.input.frame, item, thumbnails: framed.thumbnails })
}

/// Sends a photo to the worker; `None` when there is no worker.
fn post(file: &web_sys::File, framing: Framing) -> Option<Promise> {
    let crop = framing.crop.map_or(JsValue::NULL, |c| Array::of4(&c.left.into(), &c.top.into(), &c.width.into(), &c.height.into()).into());
    request(vec![("file", file.into()), ("turns", framing.quarter_turns.into()), ("mirrored", framing.mirrored.into()), ("crop", crop)])
}

/// Whether the worker has started and listens.
pub fn ready() -> bool {
    WORKER.with(|w| w.borrow().as_ref().is_some_and(|w| w.ready))
}

/// Sends `fields` to the worker with an id; the promise resolves to its answer (`undefined`
/// if the worker went away first). Requests are handled in the order they are sent. `None`
/// when there is no worker.
pub fn request(mut fields: Vec<(&str, JsValue)>) -> Option<Promise> {
    WORKER.with(|w| {
        let mut guard = w.borrow_mut();
        let w = guard.as_mut()?;
        let id = w.next_id;
        w.next_id += 1;
        fields.push(("id", id.into()));
        let request = object(&fields);
        let mut answer = None;
        let promise = Promise::new(&mut |resolve, _| answer = Some(resolve));
        w.waiting.insert(id, answer?);
        if !w.ready {
            w.queued.push(request);
        } else if w.worker.post_message(&request).is_err() {
            w.waiting.remove(&id);
            return None;
        }
        Some(promise)
    })
}

fn on_message(data: JsValue) {
    WORKER.with(|w| {
        let mut guard = w.borrow_mut();
        let Some(w) = guard.as_mut() else { return };
        if get(&data, "ready").is_truthy() {
            w.ready = true;
            for request in w.queued.drain(..) {
                let _ = w.worker.post_message(&request);
            }
        } else if let Some(answer) = get(&data, "id").as_f64().and_then(|id| w.waiting.remove(&(id as u32))) {
            let _ = answer.call1(&JsValue::NULL, &data);
        }
    });
}

/// Stops using the worker: requests in flight are redone on the main thread.
fn give_up(why: &str) {
    let Some(w) = WORKER.with(|w| w.borrow_mut().take()) else { return };
    web_sys::console::warn_1(&format!("The decoding worker is not used ({why}); photos are decoded on the page.").into());
    w.worker.terminate();
    for answer in w.waiting.into_values() {
        let _ = answer.call1(&JsValue::NULL, &JsValue::UNDEFINED);
    }
}

fn parse(reply: &JsValue) -> Result<Decoded, String> {
    if let Some(error) = get(reply, "error").as_string() {
        return Err(error);
    }
    if let Some(ms) = get(reply, "ms").as_f64() {
        LAST_MS.with(|last| last.set(Some(ms)));
    }
    let floats = |key| get(reply, key).dyn_into::<Float32Array>().map(|a| a.to_vec()).map_err(|_| format!("the decoder sent no {key}"));
    let frame: [f32; 4] = floats("frame")?.try_into().map_err(|_| "the decoder sent a bad frame".to_string())?;
    let thumbnail = |key| -> Option<Thumbnail> {
        let t = get(reply, key);
        Some(Thumbnail {
            rgba: t.is_object().then(|| get(&t, "rgba").dyn_into::<Uint8Array>().ok())??.to_vec(),
            width: get(&t, "width").as_f64()? as u32,
            height: get(&t, "height").as_f64()? as u32,
        })
    };
    let bounds: [f32; 4] = floats("item")?.try_into().map_err(|_| "the decoder sent a bad item box".to_string())?;
    let item = ItemRegion { bounds, on_surface: get(reply, "onSurface").is_truthy() };
    Ok(Decoded { pixels: floats("pixels")?, frame, item, thumbnails: thumbnail("view").zip(thumbnail("whole")) })
}
