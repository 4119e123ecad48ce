use crate::{browser::take_chosen_files, state::AppState};
use leptos::prelude::*;

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
                    if let Some(file) = take_chosen_files(&event).into_iter().next() {
                        state.load_weights(file);
                    }
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
