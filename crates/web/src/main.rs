//! The page: upload a clothing photo and classify it in the tab, on WebGPU through
//! burn-wgpu or on burn's CPU backend. Built by Trunk from the root `index.html`.

mod app;
mod browser;
mod components;
mod engine;
mod hooks;
mod panic;
mod state;
mod storage;
mod tuning;

fn main() {
    panic::install();
    // index.html shows "Loading…" until the app takes over (and an error if it cannot).
    if let Some(boot) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("boot")) {
        boot.remove();
    }
    leptos::mount::mount_to_body(app::App);
}
