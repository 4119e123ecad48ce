//! The CNN on two CPU cores: where the page classifies on the CPU, a batch of at least
//! [`SPLIT_FROM`] images (the heatmap's copies, a re-classification of every card, the
//! fine-tuning's before/after check) is cut in two; the decoding worker ([`crate::decoder`])
//! classifies the second half with the same hand-written kernels while the page classifies
//! the first. No shared memory: it works on any static host. Small batches stay on the page
//! (a message costs more than a few images).
//!
//! The worker is sent the CNN's kernels ([`crate::network_message`]) before the first batch
//! of every new model, numbered: the messages arrive in order, so a batch is always classified
//! by the network the page meant. Where the worker is missing, busy with another network or
//! fails, the page classifies the second half itself: the answer never depends on the worker.
//!
//! Messages: `{ id, network, generation }` → `{ id }`; `{ id, logits: pixels, generation }` →
//! `{ id, cnn }` (n × classes) or `{ id, error }`.

use std::{cell::RefCell, rc::Rc};

use fashion_engine::{Engine, EngineError, Scores, engine::explain_inputs};
use fashion_model::{IMAGE_PIXELS, network::Network};
use js_sys::{Float32Array, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::{decoder, message::get, network_message::parts_to_js};

/// Images from which a batch is split.
pub const SPLIT_FROM: usize = 8;

/// What the worker was last sent.
struct Sent {
    /// The CNN weights file whose kernels the worker holds; `None` where none was sent or a
    /// batch failed there since.
    bytes: Option<Rc<Vec<u8>>>,
    /// The number of the last network sent. It only grows, even after a failure: a worker
    /// that could not build network n+1 still holds n, and a batch numbered n+1 must not be
    /// answered by it.
    generation: u32,
}

thread_local! {
    static SENT: RefCell<Sent> = const { RefCell::new(Sent { bytes: None, generation: 0 }) };
}

/// Whether the worker holds `engine`'s CNN (it was sent, and no batch since failed there).
pub fn holds(engine: &Engine) -> bool {
    SENT.with(|s| s.borrow().bytes.as_ref().is_some_and(|bytes| Rc::ptr_eq(bytes, &engine.cnn.bytes)))
}

/// The second half of a batch, in the worker.
struct Half {
    /// Index of its first image.
    from: usize,
    answer: Promise,
}

/// Sends the worker the CNN's kernels if it does not hold them yet, then the second half of
/// `pixels`; `None` where the batch stays whole (small, no worker, no kernels for this CNN).
fn send_half(engine: &Engine, pixels: &[f32]) -> Option<Half> {
    let n = pixels.len() / IMAGE_PIXELS;
    if n < SPLIT_FROM || engine.cnn.direct.is_none() || !decoder::ready() {
        return None;
    }
    let generation = if holds(engine) {
        SENT.with(|s| s.borrow().generation)
    } else {
        let Network::Compact(net) = &engine.cnn.network else { return None };
        let parts = net.direct_parts()?;
        let generation = SENT.with(|s| s.borrow().generation.wrapping_add(1));
        // Its answer is not awaited: a failure shows as the next batch's error.
        drop(decoder::request(vec![("network", parts_to_js(&parts)), ("generation", generation.into())])?);
        SENT.with(|s| *s.borrow_mut() = Sent { bytes: Some(engine.cnn.bytes.clone()), generation });
        generation
    };
    let from = n.div_ceil(2);
    let tail = Float32Array::from(&pixels[from * IMAGE_PIXELS..]);
    let answer = decoder::request(vec![("logits", tail.into()), ("generation", generation.into())])?;
    Some(Half { from, answer })
}

/// The worker's logits for `half`, or the page's own where it gave none.
async fn receive(engine: &Engine, half: Half, pixels: &[f32]) -> Result<Vec<f32>, EngineError> {
    let tail = &pixels[half.from * IMAGE_PIXELS..];
    let want = tail.len() / IMAGE_PIXELS * engine.cnn.classes.len();
    let reply = JsFuture::from(half.answer).await.unwrap_or_default();
    match get(&reply, "cnn").dyn_into::<Float32Array>() {
        Ok(logits) if logits.length() as usize == want => Ok(logits.to_vec()),
        _ => {
            let why = get(&reply, "error").as_string().unwrap_or_else(|| "it stopped".into());
            web_sys::console::warn_1(&format!("The second core gave no answer ({why}); classified on the page.").into());
            // A network the worker could not build is sent again, under a new number, with
            // the next batch.
            SENT.with(|s| s.borrow_mut().bytes = None);
            engine.cnn.logits(tail, &engine.backend.device).await
        }
    }
}

/// The CNN's logits (n × classes) for `pixels`, on both cores where the batch is large.
pub async fn cnn_logits(engine: &Engine, pixels: &[f32]) -> Result<Vec<f32>, EngineError> {
    let Some(half) = send_half(engine, pixels) else {
        return engine.cnn.logits(pixels, &engine.backend.device).await;
    };
    let mut logits = engine.cnn.logits(&pixels[..half.from * IMAGE_PIXELS], &engine.backend.device).await?;
    logits.extend(receive(engine, half, pixels).await?);
    Ok(logits)
}

/// [`Engine::classify`] on both cores where the batch is large (the baseline, a few
/// multiply-adds per image, stays on the page).
pub async fn classify(engine: &Engine, pixels: &[f32]) -> Result<Vec<Scores>, EngineError> {
    let Some(half) = send_half(engine, pixels) else {
        return engine.classify(pixels).await;
    };
    let (head, tail) = pixels.split_at(half.from * IMAGE_PIXELS);
    let (mut cnn, mut baseline) = engine.all_logits(head).await?;
    if let (Some(logits), Some(model)) = (baseline.as_mut(), &engine.baseline) {
        logits.extend(model.logits(tail, &engine.backend.device).await?);
    }
    cnn.extend(receive(engine, half, pixels).await?);
    Ok(engine.scores(&cnn, baseline.as_deref()))
}

/// [`Engine::explain`] on both cores: the heatmap's copies are a batch of 145.
pub async fn explain(engine: &Engine, pixels: &[f32]) -> Result<Vec<f32>, EngineError> {
    let logits = cnn_logits(engine, &explain_inputs(pixels)).await?;
    Ok(engine.heatmap(&logits))
}
