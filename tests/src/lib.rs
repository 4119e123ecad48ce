//! Harness for the page's end-to-end tests: serve the built `dist/` on loopback, drive
//! headless Chromium through chromedriver, and make photo-style fixtures.
//!
//! Nothing here talks to anything but 127.0.0.1.

pub mod browser;
pub mod fixtures;
pub mod server;

use std::path::PathBuf;

/// The longest main-thread task allowed while a 6000×4000 JPEG is classified or the model is
/// fine-tuned on the CPU (issue "small and fast": 100 ms required, 50 ms the goal).
pub const LONGEST_TASK_MS: f64 = 100.0;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace root").to_path_buf()
}

/// The page the tests drive, built with its test hooks: `$FASHION_DIST`, set by `cargo xtask
/// test` (`trunk build --release --features test-hooks --dist …`).
pub fn dist() -> PathBuf {
    built("FASHION_DIST", "trunk build --release --features test-hooks --dist DIR")
}

/// The page as shipped, without test hooks: `$FASHION_SHIPPED_DIST`, else `dist/` (what
/// `cargo xtask build-page` writes).
pub fn shipped_dist() -> PathBuf {
    built("FASHION_SHIPPED_DIST", "cargo xtask build-page")
}

fn built(variable: &str, how: &str) -> PathBuf {
    let dir = std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| root().join("dist"));
    assert!(
        dir.join("index.html").exists(),
        "the page is not built at {} (${variable}): run `cargo xtask test`, which builds both pages, or `{how}`",
        dir.display()
    );
    dir
}

/// Bytes of the `dist/` files behind `requests` (each path once), raw and gzip -9 compressed:
/// what a visitor downloads for those requests from a host that compresses.
pub fn download_size(dist: &std::path::Path, requests: &[String]) -> (usize, usize) {
    use std::io::Write;
    let mut seen = std::collections::HashSet::new();
    let (mut raw, mut gzipped) = (0, 0);
    for url in requests {
        let Some(path) = server::site_file(dist, url) else { continue };
        if !seen.insert(path.clone()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&bytes).unwrap();
        raw += bytes.len();
        gzipped += encoder.finish().unwrap().len();
    }
    (raw, gzipped)
}
