use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::state::AppState;

/// "Load weights…": a `.fmw` file from the trainer replaces the model of its kind.
#[component]
pub fn LoadWeights() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <label class="button">
            "Load weights…"
            <input
                class="visually-hidden"
                type="file"
                accept=".fmw"
                data-testid="load-weights"
                on:change=move |event| {
                    let input: web_sys::HtmlInputElement = event.target().unwrap().unchecked_into();
                    if let Some(file) = input.files().and_then(|f| f.get(0)) {
                        state.load_weights(file);
                    }
                    input.set_value("");
                }
            />
        </label>
    }
}

/// "Download ONNX": the CNN in use, fine-tuned or not, for other runtimes (README, "Taking
/// the model elsewhere").
#[component]
pub fn DownloadOnnx() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <button
            class="button"
            data-testid="download-onnx"
            title="The model in use as an ONNX file: input 1×1×28×28 (pixels / 255), output the 10 logits"
            disabled=move || !state.ready.get()
            on:click=move |_| state.download_onnx()
        >
            "Download ONNX"
        </button>
    }
}
