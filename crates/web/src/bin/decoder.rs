//! The decoding worker: turns a photo file into the model input away from the page's main
//! thread. Decoding a 6000×4000 JPEG takes a few hundred milliseconds, which on the main thread
//! freezes the page (no scrolling, no clicks) for that long. Trunk builds this binary as a Web
//! Worker (`index.html`, `data-type="worker"`); the page talks to it through
//! `crates/web/src/decoder.rs`, which also holds the message format. It runs the model crate's
//! preprocessing, the same code as `trainer predict`.
//!
//! It is also the page's second core for the CNN on the CPU (`crates/web/src/second_core.rs`):
//! given the network's kernels once, it classifies the second half of a large batch while
//! the page classifies the first.

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

#[cfg(target_arch = "wasm32")]
fn main() {
    // Once, here, rather than at the top of every export (see the page's `main.rs`).
    // SAFETY: the linker's static constructors, run once before any message is handled (this
    // is the worker's start function) and never again.
    unsafe {
        __wasm_call_ctors();
    }
    worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the decoder is the page's Web Worker: Trunk builds it for wasm32 (see index.html)");
}

#[cfg(target_arch = "wasm32")]
#[path = "../message.rs"]
mod message;

#[cfg(target_arch = "wasm32")]
#[path = "../browser_image.rs"]
mod browser_image;

#[cfg(target_arch = "wasm32")]
#[path = "../network_message.rs"]
mod network_message;

#[cfg(target_arch = "wasm32")]
mod worker {
    use std::cell::RefCell;

    use fashion_model::{CropBox, Framing, direct::DirectCnn, framing::Thumbnail};
    use js_sys::{Array, Float32Array, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue, prelude::Closure};
    use web_sys::{DedicatedWorkerGlobalScope, File, FileReaderSync, MessageEvent};

    use crate::{
        browser_image,
        message::{get, object},
        network_message::parts_from_js,
    };

    thread_local! {
        /// The CNN's kernels the page sent last, with the number it gave them.
        static NETWORK: RefCell<Option<(f64, DirectCnn)>> = const { RefCell::new(None) };
    }

    /// Answers every request; says "ready" once it listens (messages sent before that would be
    /// lost, so the page holds them until then).
    pub fn start() {
        let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        let reply_to = scope.clone();
        let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            let request = event.data();
            let reply_to = reply_to.clone();
            // Async only for pictures the browser decodes (AVIF, HEIC); the rest answers at once.
            wasm_bindgen_futures::spawn_local(async move {
                let id = get(&request, "id");
                let reply = match answer(&request).await {
                    Ok(reply) => reply,
                    Err(message) => object(&[("error", JsValue::from_str(&message))]),
                };
                let _ = Reflect::set(&reply, &"id".into(), &id);
                let _ = reply_to.post_message(&reply);
            });
        });
        scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let _ = scope.post_message(&object(&[("ready", JsValue::TRUE)]));
        // Right after "ready", while the user is still choosing a photo: the first photo of a
        // visit then runs on optimised code (`fashion_model::preprocess::warm_up`). A request
        // that arrives meanwhile waits for it, about a tenth of a second.
        wasm_bindgen_futures::spawn_local(async {
            let started = js_sys::Date::now();
            let warmed = fashion_model::preprocess::warm_up();
            web_sys::console::debug_1(&format!("decoding worker warmed up in {:.0} ms: {warmed:?}", js_sys::Date::now() - started).into());
        });
    }

    /// A photo to decode, the CNN to keep, or a batch to classify with it.
    async fn answer(request: &JsValue) -> Result<JsValue, String> {
        let network = get(request, "network");
        if network.is_object() {
            return keep_network(get(request, "generation").as_f64().unwrap_or(f64::NAN), &network);
        }
        let pixels = get(request, "logits");
        if pixels.is_object() {
            return logits(get(request, "generation").as_f64().unwrap_or(f64::NAN), &pixels);
        }
        decode(request).await
    }

    /// `{ network, generation }` → `{}`: builds the kernels and keeps them.
    fn keep_network(generation: f64, network: &JsValue) -> Result<JsValue, String> {
        let built = DirectCnn::new(parts_from_js(network)?).ok_or("the network does not fit the kernels")?;
        NETWORK.with(|n| *n.borrow_mut() = Some((generation, built)));
        Ok(object(&[]))
    }

    /// `{ logits: pixels, generation }` → `{ cnn }`: the kept CNN's logits for `pixels`
    /// (n × 784); an error if the page's network is not the one kept.
    fn logits(generation: f64, pixels: &JsValue) -> Result<JsValue, String> {
        let pixels = pixels.dyn_ref::<Float32Array>().ok_or("no pixels to classify")?.to_vec();
        NETWORK.with(|n| match &*n.borrow() {
            Some((kept, cnn)) if *kept == generation => Ok(object(&[("cnn", Float32Array::from(&cnn.forward(&pixels)[..]).into())])),
            _ => Err("the worker holds another network".to_string()),
        })
    }

    /// `{ file, turns, mirrored, crop: [left, top, width, height] | null }` → `{ pixels, frame,
    /// item, onSurface, view?, whole? }`, or an error message for the card.
    async fn decode(request: &JsValue) -> Result<JsValue, String> {
        let file: File = get(request, "file").dyn_into().map_err(|_| "no file to decode".to_string())?;
        let crop = get(request, "crop").dyn_into::<Array>().ok().map(|c| {
            let at = |i| c.get(i).as_f64().unwrap_or(0.0) as f32;
            CropBox { left: at(0), top: at(1), width: at(2), height: at(3) }
        });
        let framing = Framing {
            quarter_turns: get(request, "turns").as_f64().unwrap_or(0.0) as u8 % 4,
            mirrored: get(request, "mirrored").as_bool().unwrap_or(false),
            crop,
        };
        let buffer = FileReaderSync::new()
            .and_then(|reader| reader.read_as_array_buffer(&file))
            .map_err(|e| format!("cannot read the file: {}", e.as_string().unwrap_or_else(|| format!("{e:?}"))))?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        let started = js_sys::Date::now();
        let framed = browser_image::preprocess(&file, &bytes, &framing).await?;
        let ms = js_sys::Date::now() - started;
        let mut fields = vec![
            ("pixels", Float32Array::from(&framed.input.pixels[..]).into()),
            ("frame", Float32Array::from(&framed.input.frame[..]).into()),
            ("item", Float32Array::from(&framed.input.item[..]).into()),
            ("onSurface", JsValue::from_bool(framed.input.on_surface)),
            // How long decoding and preprocessing took here (`cargo xtask bench-page` prints it).
            ("ms", JsValue::from_f64(ms)),
        ];
        if let Some((view, whole)) = &framed.thumbnails {
            fields.push(("view", thumbnail(view)));
            fields.push(("whole", thumbnail(whole)));
        }
        Ok(object(&fields))
    }

    fn thumbnail(t: &Thumbnail) -> JsValue {
        object(&[("rgba", Uint8Array::from(&t.rgba[..]).into()), ("width", JsValue::from(t.width)), ("height", JsValue::from(t.height))])
    }
}
