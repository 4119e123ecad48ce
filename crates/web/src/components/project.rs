use fashion_gallery::project::EXTENSION;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::state::AppState;

/// "Save project" / "Open project…": the taught photos and the model in use as one file, to
/// carry to another browser or machine.
#[component]
pub fn ProjectFile() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="tools project">
            <button
                class="button"
                data-testid="save-project"
                title="Your taught photos (as the network sees them, with a thumbnail) and the model in use, in one file"
                disabled=move || !state.ready.get()
                on:click=move |_| state.save_project()
            >
                "Save project"
            </button>
            <label class="button">
                "Open project…"
                <input
                    class="visually-hidden"
                    type="file"
                    accept=format!(".{EXTENSION}")
                    data-testid="open-project"
                    on:change=move |event| {
                        let input: web_sys::HtmlInputElement = event.target().unwrap().unchecked_into();
                        if let Some(file) = input.files().and_then(|f| f.get(0)) {
                            state.open_project(file);
                        }
                        input.set_value("");
                    }
                />
            </label>
        </div>
    }
}
