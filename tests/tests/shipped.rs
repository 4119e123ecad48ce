//! The shipped page carries no test hook: every function the test build exports only for the
//! tests and the benchmark (the page's `window.wasmBindings.fashion*`, the engine module's
//! `bench`, `benchTraining` and `memoryBytes`, which only its `bench` feature builds) is absent
//! from the JavaScript and the WebAssembly of `dist/`.

use std::path::Path;

/// Names a file of the page exports: the page's module (`export function NAME`) and the
/// engine module, a classic script (`exports.NAME = NAME;`).
fn exported(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        let name = line
            .strip_prefix("export function ")
            .or_else(|| line.strip_prefix("export async function "))
            .or_else(|| line.strip_prefix("exports."))
            .map(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or_default());
        if let Some(name) = name.filter(|n| !n.is_empty() && !n.starts_with("__")) {
            names.push(name.to_string());
        }
    }
    names
}

/// The page's module and the engine module of a build: `(js, wasm)` pairs.
fn modules(dist: &Path) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut pairs = Vec::new();
    for entry in std::fs::read_dir(dist).expect("reading the built page") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if (name.starts_with("fashion-web-") || name == "engine.js") && name.ends_with(".js") {
            let wasm = name.trim_end_matches(".js").to_string() + "_bg.wasm";
            pairs.push((dist.join(&name), dist.join(wasm)));
        }
    }
    pairs.sort();
    assert_eq!(pairs.len(), 2, "expected the page's module and engine.js in {}: {pairs:?}", dist.display());
    pairs
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A function export's entry in a WebAssembly export section: the name's length, the name,
/// and the kind "function" (0).
fn export_entry(name: &str) -> Vec<u8> {
    let mut entry = vec![name.len() as u8];
    entry.extend_from_slice(name.as_bytes());
    entry.push(0);
    entry
}

#[test]
fn the_shipped_page_exports_none_of_the_test_hooks() {
    let (tested, shipped) = (modules(&page_tests::dist()), modules(&page_tests::shipped_dist()));
    let mut hooks = Vec::new();
    for ((tested_js, _), (shipped_js, shipped_wasm)) in tested.iter().zip(&shipped) {
        let public = exported(shipped_js);
        let only_for_tests: Vec<String> = exported(tested_js).into_iter().filter(|name| !public.contains(name)).collect();
        let (js, wasm) = (std::fs::read(shipped_js).unwrap(), std::fs::read(shipped_wasm).unwrap());
        for name in &only_for_tests {
            // The page's hooks have names no other code uses: not even a mention is allowed.
            let mentioned = name.starts_with("fashion") && contains(&js, name.as_bytes());
            assert!(!mentioned, "{} mentions the test hook {name}", shipped_js.display());
            assert!(!contains(&wasm, &export_entry(name)), "{} exports the test hook {name}", shipped_wasm.display());
        }
        hooks.extend(only_for_tests);
    }
    // The hooks the tests rely on exist in the test build, so the check above has teeth.
    // The page's own hooks, and the engine module's benchmark exports (its `bench` feature).
    for hook in ["fashionPanicForTest", "fashionBench", "fashionLogits", "fashionWasmMemoryBytes", "bench", "benchTraining", "memoryBytes"]
    {
        assert!(hooks.iter().any(|h| h == hook), "the test build lacks {hook}: {hooks:?}");
    }
}
