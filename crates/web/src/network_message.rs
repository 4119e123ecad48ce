//! The CNN's hand-written kernels ([`DirectParts`]) as a plain JavaScript object, for the
//! decoding worker that runs half of a large CPU batch (`second_core.rs`, `bin/decoder.rs`,
//! which includes this file). Plain arrays, not the weights file: the worker then needs no
//! burn to build the network.

// The page uses one direction and the worker the other; the format lives here once.
#![allow(dead_code)]

use fashion_model::direct::{Conv3x3, Dense, DirectParts};
use js_sys::{Array, Float32Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::message::{get, object};

fn floats(values: &[f32]) -> JsValue {
    Float32Array::from(values).into()
}

fn dense_to_js(d: &Dense) -> JsValue {
    object(&[("inputs", d.inputs.into()), ("outputs", d.outputs.into()), ("weights", floats(&d.weights)), ("bias", floats(&d.bias))])
}

/// `{ convs: [{ cin, cout, weights, bias, pool, shortcut }], pooled, hidden, output }`.
pub fn parts_to_js(parts: &DirectParts) -> JsValue {
    let convs: Array = parts
        .convs
        .iter()
        .map(|c| {
            object(&[
                ("cin", c.cin.into()),
                ("cout", c.cout.into()),
                ("weights", floats(&c.weights)),
                ("bias", floats(&c.bias)),
                ("pool", c.pool_before.into()),
                ("shortcut", c.shortcut.into()),
            ])
        })
        .collect();
    object(&[
        ("convs", convs.into()),
        ("pooled", parts.pooled_side.into()),
        ("hidden", dense_to_js(&parts.hidden)),
        ("output", dense_to_js(&parts.output)),
    ])
}

fn count(value: &JsValue, key: &str) -> Result<usize, String> {
    get(value, key).as_f64().filter(|v| *v >= 0.0).map(|v| v as usize).ok_or_else(|| format!("the network has no {key}"))
}

fn floats_of(value: &JsValue, key: &str) -> Result<Vec<f32>, String> {
    get(value, key).dyn_into::<Float32Array>().map(|a| a.to_vec()).map_err(|_| format!("the network has no {key}"))
}

fn dense_from_js(value: &JsValue) -> Result<Dense, String> {
    Ok(Dense {
        inputs: count(value, "inputs")?,
        outputs: count(value, "outputs")?,
        weights: floats_of(value, "weights")?,
        bias: floats_of(value, "bias")?,
    })
}

/// The reverse of [`parts_to_js`]; the shapes are checked when the network is built.
pub fn parts_from_js(value: &JsValue) -> Result<DirectParts, String> {
    let convs = get(value, "convs")
        .dyn_into::<Array>()
        .map_err(|_| "the network has no convolutions".to_string())?
        .iter()
        .map(|c| {
            Ok(Conv3x3 {
                cin: count(&c, "cin")?,
                cout: count(&c, "cout")?,
                weights: floats_of(&c, "weights")?,
                bias: floats_of(&c, "bias")?,
                pool_before: get(&c, "pool").is_truthy(),
                shortcut: get(&c, "shortcut").is_truthy(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(DirectParts {
        convs,
        pooled_side: count(value, "pooled")?,
        hidden: dense_from_js(&get(value, "hidden"))?,
        output: dense_from_js(&get(value, "output"))?,
    })
}
