use leptos::{ev, prelude::*};

use crate::{
    browser::{files_of, take_chosen_files},
    state::AppState,
};

/// File picker, drop zone and clipboard paste: every way to hand the page a photo.
#[component]
pub fn Upload() -> impl IntoView {
    let state = expect_context::<AppState>();
    let dragging = RwSignal::new(false);

    // Paste anywhere on the page (Ctrl+V with an image on the clipboard).
    let paste = window_event_listener(ev::paste, move |event: web_sys::ClipboardEvent| {
        let files = files_of(event.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            event.prevent_default();
            state.add_files(files);
        }
    });
    on_cleanup(move || paste.remove());

    view! {
        <section
            class="drop"
            class:dragging=move || dragging.get()
            on:dragover=move |event: web_sys::DragEvent| {
                event.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |event: web_sys::DragEvent| {
                event.prevent_default();
                dragging.set(false);
                state.add_files(files_of(event.data_transfer().and_then(|d| d.files())));
            }
        >
            <label class="button primary">
                "Choose photos…"
                <input
                    class="visually-hidden"
                    type="file"
                    accept="image/*"
                    multiple
                    data-testid="upload"
                    on:change=move |event| state.add_files(take_chosen_files(&event))
                />
            </label>
            // Phones and tablets: straight to the rear camera (`capture`). Shown only where the
            // main pointer is coarse (a touch screen), by the style sheet; a desktop's file
            // dialog would ignore `capture` anyway.
            <label class="button camera">
                "Take a photo"
                <input
                    class="visually-hidden"
                    type="file"
                    accept="image/*"
                    capture="environment"
                    data-testid="camera"
                    on:change=move |event| state.add_files(take_chosen_files(&event))
                />
            </label>
            <p class="hint">"or drop them here, or paste one (Ctrl+V). PNG, JPEG, WebP, GIF or BMP (AVIF and HEIC where this browser reads them); nothing leaves your device."</p>
        </section>
    }
}
