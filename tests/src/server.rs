//! A static file server for `dist/` that records every request, so tests can assert that the
//! page fetched nothing once it was running.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

pub struct StaticServer {
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// While set, requests are logged and the connection is closed without an answer, as a
    /// browser sees a network that is gone.
    offline: Arc<AtomicBool>,
    server: Arc<tiny_http::Server>,
    thread: Option<thread::JoinHandle<()>>,
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        "wasm" => "application/wasm",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// The file under the site's folder that a request path (`/`, `/cnn.fmw?v=1`) names.
pub fn file_for_url(url: &str) -> &str {
    let relative = url.split(['?', '#']).next().unwrap_or("/").trim_start_matches('/');
    if relative.is_empty() { "index.html" } else { relative }
}

impl StaticServer {
    /// Serves `dir` on a free loopback port.
    pub fn start(dir: PathBuf) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binding a loopback port"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let offline = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, log, offline) = (server.clone(), log.clone(), offline.clone());
            thread::spawn(move || {
                for request in server.incoming_requests() {
                    let url = request.url().to_string();
                    log.lock().unwrap().push(url.clone());
                    if offline.load(Ordering::SeqCst) {
                        drop(request);
                        continue;
                    }
                    let relative = file_for_url(&url);
                    let path = dir.join(relative);
                    let inside = !relative.split('/').any(|part| part == "..");
                    let response = match std::fs::read(&path) {
                        Ok(bytes) if inside => tiny_http::Response::from_data(bytes)
                            .with_header(tiny_http::Header::from_bytes("Content-Type", content_type(&path)).unwrap()),
                        _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
                    };
                    let _ = request.respond(response);
                }
            })
        };
        Self { url: format!("http://127.0.0.1:{port}/"), log, offline, server, thread: Some(thread) }
    }

    /// Takes the site off the network (`true`) or back.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
