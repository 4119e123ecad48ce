//! The user's fine-tuned model and the names of their classes not learnt yet, kept in this
//! browser's IndexedDB so they survive a reload. Photos are never stored.
//!
//! Written against the raw IndexedDB API (a few requests wrapped as futures) rather than a
//! crate: the crates that wrap it pull an async runtime into the wasm for one key.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

use crate::browser::js_error;

const DB: &str = "fashion-mnist";
const STORE: &str = "models";
/// The key of the fine-tuned CNN's weights file.
pub const FINE_TUNED: &str = "fine-tuned-cnn";
/// The key of the user's classes that the model has not learnt yet (a JSON list of names;
/// the learnt ones travel in the weights file).
pub const OWN_CLASSES: &str = "own-classes";

/// Resolves when `request` succeeds (with its result) or fails.
async fn done(request: &IdbRequest) -> Result<JsValue, String> {
    let promise = Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move |event: web_sys::Event| {
            let request: IdbRequest = event.target().unwrap().unchecked_into();
            let _ = resolve.call1(&JsValue::NULL, &request.result().unwrap_or(JsValue::UNDEFINED));
        });
        let failed = Closure::once_into_js(move |event: web_sys::Event| {
            let request: IdbRequest = event.target().unwrap().unchecked_into();
            let message = request.error().ok().flatten().map(|e| e.message()).unwrap_or_else(|| "IndexedDB request failed".into());
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&message));
        });
        request.set_onsuccess(Some(ok.unchecked_ref()));
        request.set_onerror(Some(failed.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(js_error)
}

async fn open() -> Result<IdbDatabase, String> {
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .ok_or("this browser offers no IndexedDB (private mode?), so the model cannot be saved")?;
    let request: IdbOpenDbRequest = factory.open_with_u32(DB, 1).map_err(js_error)?;
    let upgrade = Closure::once_into_js(move |event: web_sys::Event| {
        let request: IdbOpenDbRequest = event.target().unwrap().unchecked_into();
        if let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
            let _ = db.create_object_store(STORE);
        }
    });
    request.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    done(&request).await?.dyn_into::<IdbDatabase>().map_err(js_error)
}

/// Stores `bytes` under `key`, replacing what was there.
pub async fn put(key: &str, bytes: &[u8]) -> Result<(), String> {
    let db = open().await?;
    let tx = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite).map_err(js_error)?;
    let store = tx.object_store(STORE).map_err(js_error)?;
    let request = store.put_with_key(&Uint8Array::from(bytes), &JsValue::from_str(key)).map_err(js_error)?;
    done(&request).await.map(|_| ())
}

/// The bytes under `key`, if any.
pub async fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
    let db = open().await?;
    let tx = db.transaction_with_str(STORE).map_err(js_error)?;
    let store = tx.object_store(STORE).map_err(js_error)?;
    let value = done(&store.get(&JsValue::from_str(key)).map_err(js_error)?).await?;
    Ok(value.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec()))
}

pub async fn delete(key: &str) -> Result<(), String> {
    let db = open().await?;
    let tx = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite).map_err(js_error)?;
    let store = tx.object_store(STORE).map_err(js_error)?;
    done(&store.delete(&JsValue::from_str(key)).map_err(js_error)?).await.map(|_| ())
}
