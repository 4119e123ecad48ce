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

use xtask::site;

pub struct StaticServer {
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// While set, requests are logged and the connection is closed without an answer, as a
    /// browser sees a network that is gone.
    offline: Arc<AtomicBool>,
    server: Arc<tiny_http::Server>,
    thread: Option<thread::JoinHandle<()>>,
}

/// The file of the site in `dir` that a request path (`/`, `/cnn.fmw?v=1`) names; `None` when
/// it names no file there (a 404) or climbs out of the folder.
pub fn site_file(dir: &Path, url: &str) -> Option<PathBuf> {
    site::file_for_url(url).map(|relative| dir.join(relative)).filter(|path| path.is_file())
}

impl StaticServer {
    /// Serves `dir` on a free loopback port.
    pub fn start(dir: PathBuf) -> Self {
        Self::serve(dir, false)
    }

    /// Like [`start`](Self::start), with the headers that make the pages cross-origin isolated
    /// (COOP `same-origin`, COEP `require-corp`), which wasm threads (SharedArrayBuffer) need.
    pub fn start_isolated(dir: PathBuf) -> Self {
        Self::serve(dir, true)
    }

    fn serve(dir: PathBuf, isolated: bool) -> Self {
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
                    let file = site::file_for_url(&url).map(|relative| dir.join(relative));
                    let mut response = match file.as_ref().map(|file| (file, std::fs::read(file))) {
                        Some((path, Ok(bytes))) => tiny_http::Response::from_data(bytes)
                            .with_header(tiny_http::Header::from_bytes("Content-Type", site::content_type(path)).unwrap()),
                        _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
                    };
                    if isolated {
                        for (name, value) in
                            [("Cross-Origin-Opener-Policy", "same-origin"), ("Cross-Origin-Embedder-Policy", "require-corp")]
                        {
                            response.add_header(tiny_http::Header::from_bytes(name, value).unwrap());
                        }
                    }
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
