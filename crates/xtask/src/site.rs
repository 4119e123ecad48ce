//! How the built site is served, shared by `cargo xtask serve` and the page tests' server:
//! which file a request names, and the type it is sent with (`.wasm` must be
//! `application/wasm` for the browser to compile it while it streams).

use std::path::Path;

/// The file under the site's folder that a request path (`/`, `/cnn.fmw?v=1`) names; `None`
/// for a path that climbs out of the folder.
pub fn file_for_url(url: &str) -> Option<&str> {
    let relative = url.split(['?', '#']).next().unwrap_or("/").trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if relative.is_empty() { "index.html" } else { relative })
}

/// The `Content-Type` of a file of the site.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "wasm" => "application/wasm",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "json" => "application/json",
        "md" => "text/markdown; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_files_of_the_site_and_nothing_above_it() {
        assert_eq!(file_for_url("/"), Some("index.html"));
        assert_eq!(file_for_url("/cnn.fmw?v=1#x"), Some("cnn.fmw"));
        assert_eq!(file_for_url("/report/report.md"), Some("report/report.md"));
        assert_eq!(file_for_url("/../etc/passwd"), None);
        assert_eq!(content_type(Path::new("a/engine_bg.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("cnn.fmw")), "application/octet-stream");
    }
}
