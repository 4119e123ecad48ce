//! A panic that slips through becomes a visible message instead of a silently dead page.
//!
//! The hook writes straight to the DOM (not through Leptos signals, which may be mid-update
//! when the panic happens). Each user action runs as its own task, so the page keeps working
//! for the next one.

use wasm_bindgen::JsCast;

pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = info.payload_as_str().unwrap_or("unknown error").to_string();
        show(&format!(
            "Something went wrong inside the app ({message}). Your photos and models are unaffected; try again, or reload the page."
        ));
    }));
}

fn show(message: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let element = match document.get_element_by_id("panic") {
        Some(e) => e,
        None => {
            let Ok(e) = document.create_element("p") else {
                return;
            };
            e.set_id("panic");
            e.set_class_name("banner error");
            let _ = e.set_attribute("data-testid", "error");
            let _ = e.set_attribute("role", "alert");
            if let Some(body) = document.body() {
                let _ = body.prepend_with_node_1(&e);
            }
            e
        }
    };
    if let Ok(e) = element.dyn_into::<web_sys::HtmlElement>() {
        e.set_inner_text(message);
    }
}
