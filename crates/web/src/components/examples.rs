//! Example pictures a newcomer classifies with one click (`web/examples/`, written by
//! `cargo run --release -p trainer --example page_examples`): they are part of the site, so
//! they work offline too, and go through the same path as an uploaded file.

use js_sys::{Array, Uint8Array};
use leptos::{prelude::*, task::spawn_local};

use crate::{browser, state::AppState};

/// File, button label, MIME type, test id.
const EXAMPLES: [(&str, &str, &str, &str); 3] = [
    ("catalog-ankle-boot.jpg", "a catalog shot", "image/jpeg", "example-catalog"),
    ("surface-t-shirt-on-wood.jpg", "a T-shirt on a floor", "image/jpeg", "example-surface"),
    ("drawing-jeans.png", "a drawing", "image/png", "example-drawing"),
];

/// Downloads an example (from the offline copy once there is one) as a `File`, as if chosen.
async fn example_file(name: &str, mime: &str) -> Result<web_sys::File, String> {
    let bytes = browser::fetch_bytes(&format!("examples/{name}")).await?;
    let parts = Array::of1(&Uint8Array::from(&bytes[..]));
    let options = web_sys::FilePropertyBag::new();
    options.set_type(mime);
    web_sys::File::new_with_u8_array_sequence_and_options(&parts, name, &options)
        .map_err(|_| format!("the example {name} could not be made into a file"))
}

#[component]
pub fn Examples() -> impl IntoView {
    let state = expect_context::<AppState>();
    let error = RwSignal::new(None::<String>);
    let buttons = EXAMPLES.map(|(name, label, mime, testid)| {
        let add = move |_| {
            error.set(None);
            spawn_local(async move {
                match example_file(name, mime).await {
                    Ok(file) => state.add_files(vec![file]),
                    Err(e) => error.set(Some(format!("Could not load the example: {e}"))),
                }
            });
        };
        view! { <button type="button" class="button" data-testid=testid on:click=add>{label}</button> }
    });
    view! {
        <p class="examples">
            "No photo at hand? Try " {buttons}
            {move || error.get().map(|e| view! { <span class="error" role="alert">{e}</span> })}
        </p>
    }
}
