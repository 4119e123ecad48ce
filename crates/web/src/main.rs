//! The page: upload a clothing photo and classify it in the tab, on burn's CPU backend and,
//! once its WebGPU module has loaded (`gpu.rs`), on WebGPU through burn-wgpu. Built by Trunk
//! from the root `index.html`.

mod app;
mod browser;
mod browser_image;
mod components;
mod decoder;
mod gpu;
mod hooks;
mod message;
mod panic;
mod samples;
mod state;
mod storage;
mod tuner;

// Static constructors, synthesised by the linker. See `main`.
#[cfg(target_family = "wasm")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    // Run the constructors once, here. A module that never calls them itself is linked as a
    // "command", and the linker then calls them at the top of *every* export: each click,
    // upload and promise callback paid about 180 ms for it (profiled in headless Chromium).
    #[cfg(target_family = "wasm")]
    unsafe {
        __wasm_call_ctors();
    }
    panic::install();
    // index.html shows "Loading…" until the app takes over (and an error if it cannot).
    if let Some(boot) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("boot")) {
        boot.remove();
    }
    leptos::mount::mount_to_body(app::App);
}
