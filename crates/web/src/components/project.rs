use crate::{browser::take_chosen_files, state::AppState};
use fashion_gallery::project::EXTENSION;
use leptos::prelude::*;

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
                        if let Some(file) = take_chosen_files(&event).into_iter().next() {
                            state.open_project(file);
                        }
                    }
                />
            </label>
        </div>
    }
}
