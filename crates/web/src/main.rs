//! The page: upload a clothing photo and classify it in the tab, on burn's CPU backend and,
//! once its WebGPU module has loaded (`gpu.rs`), on WebGPU through burn-wgpu. Built by Trunk
//! from the root `index.html`.

mod app;
mod browser;
mod browser_image;
mod camera;
mod components;
mod decoder;
mod finetune_sets;
mod finetune_worker;
mod gpu;
#[cfg(feature = "test-hooks")]
mod hooks;
mod message;
mod network_message;
mod panic;
mod second_core;
mod state;
mod storage;

// Static constructors, synthesised by the linker. See `main`.
#[cfg(target_family = "wasm")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    // Run the constructors once, here. A module that never calls them itself is linked as a
    // "command", and the linker then calls them at the top of *every* export, so that each
    // click, upload and promise callback would run them all again.
    #[cfg(target_family = "wasm")]
    // SAFETY: the linker's static constructors, run once before anything else in the module
    // (this is its start function) and never again.
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
