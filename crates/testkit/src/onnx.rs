//! Runs an ONNX file in onnxruntime, the Python package `cargo xtask test` installs (its
//! interpreter is `$FASHION_PYTHON`), so that tests compare an export with this project's
//! own logits.

use std::{path::Path, process::Command};

use serde_json::{Value, json};

const SCRIPT: &str = include_str!("onnx_check.py");

/// What onnxruntime reported for `onnx` on `inputs` (each 784 pixels in `0..=1`):
/// `max_abs_diff` from `expected` (the same rows of logits), `single_diff` for a batch of one,
/// `shape`, the `inputs`/`outputs` names and shapes, the metadata's `classes` and
/// `temperature`.
pub fn onnxruntime_report(onnx: &Path, inputs: &[Vec<f32>], expected: &[Vec<f32>]) -> Result<Value, String> {
    let python = std::env::var("FASHION_PYTHON").map_err(|_| {
        "this test runs the ONNX export in onnxruntime: run `cargo xtask test` (which installs it), or set FASHION_PYTHON to a Python with `onnxruntime` and `numpy`".to_string()
    })?;
    let dir = onnx.parent().unwrap_or(Path::new("."));
    let cases = dir.join("onnx-cases.json");
    std::fs::write(&cases, json!({ "inputs": inputs, "logits": expected }).to_string()).map_err(|e| e.to_string())?;
    let out =
        Command::new(&python).arg("-c").arg(SCRIPT).arg(onnx).arg(&cases).output().map_err(|e| format!("cannot start {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("onnxruntime failed on {}:\n{}", onnx.display(), String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the check printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}
