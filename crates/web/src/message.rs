//! Building and reading the plain JavaScript objects the page and the decoding worker send each
//! other (`decoder.rs`, `bin/decoder.rs`, which includes this file).

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

/// `value[key]`, `undefined` when absent.
pub fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `{ key: value, … }`.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let out = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&out, &JsValue::from_str(key), value);
    }
    out.into()
}
