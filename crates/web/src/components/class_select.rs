use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::state::AppState;

/// A choice among the classes (the ten and the user's own), or none (`none_label`): what a
/// card is taught, what the camera records as.
#[component]
pub fn ClassSelect(value: RwSignal<Option<u8>>, none_label: &'static str, testid: &'static str) -> impl IntoView {
    let state = expect_context::<AppState>();
    let options = move || {
        state.classes.with(|classes| {
            classes
                .names()
                .iter()
                .enumerate()
                .map(
                    |(i, name)| view! { <option value=i.to_string() selected=move || value.get() == Some(i as u8)>{name.clone()}</option> },
                )
                .collect_view()
        })
    };
    view! {
        <select
            data-testid=testid
            on:change=move |event| {
                let select: web_sys::HtmlSelectElement = event.target().unwrap().unchecked_into();
                value.set(select.value().parse().ok());
            }
        >
            <option value="" selected=move || value.get().is_none()>{none_label}</option>
            {options}
        </select>
    }
}
