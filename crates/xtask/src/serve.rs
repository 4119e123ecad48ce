//! `cargo xtask serve`: the page, as soon as it can answer. The page answers on its own module
//! (burn on the CPU) and loads the WebGPU module only afterwards, so the site is served once
//! the first module and the decoding worker are built; the WebGPU module, the longest build,
//! follows in the background and is picked up at the next reload. On a fresh machine the
//! page's module also builds while Trunk and wasm-bindgen-cli are being installed: it needs
//! neither.

use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
};

use anyhow::{Context, Result, bail};
use xtask::site;

use crate::{Background, Page, ensure_wasm_target, ensure_web_tools, finish_page, root, run, target_dir, trunk, wasm_target_dir};

/// The link in `index.html` that builds the engine module (WebGPU), left out of the first build.
const ENGINE_MODULE_LINK: &str = "data-bin=\"engine\"";
/// The first build's page (see `.gitignore`).
const FIRST_INDEX: &str = ".index-without-webgpu.html";

pub fn serve(extra: &[String]) -> Result<()> {
    let address = listen_address(extra)?;
    // Bind first: a port in use is reported before minutes of building.
    let server = tiny_http::Server::http(&address)
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} ({e}): stop the other server or pass --port N"))?;
    let dist = Page::Shipped.dist();

    ensure_wasm_target()?;
    let log = target_dir().join("page-module-build.log");
    let prebuild = Background::start(&mut page_modules_build(), &log, "building the page's own module and decoding worker")?;
    if let Err(e) = ensure_web_tools() {
        prebuild.stop();
        return Err(e);
    }
    prebuild.wait()?;
    let first = first_index()?;
    run(trunk().args(["build", "--release", "--locked", "--dist"]).arg(&dist).arg(&first))?;
    finish_page(&dist)?;
    eprintln!("xtask: the page answers at http://{address}/ (on the CPU until the WebGPU module is built; Ctrl+C stops the server)");
    let serving = {
        let dist = dist.clone();
        thread::spawn(move || serve_files(server, &dist))
    };

    let staging = target_dir().join("serve-next");
    eprintln!("xtask: building the WebGPU module in the background");
    match run(trunk().args(["build", "--release", "--locked", "--dist"]).arg(&staging)).and_then(|()| finish_page(&staging)) {
        Ok(()) => {
            copy_over(&staging, &dist)?;
            eprintln!("xtask: the WebGPU module is ready: reload the page to use it (http://{address}/)");
        }
        // The page still answers on the CPU; say why WebGPU did not come.
        Err(e) => eprintln!("xtask: the WebGPU module could not be built ({e:#}); the page goes on answering on the CPU"),
    }
    serving.join().map_err(|_| anyhow::anyhow!("the server stopped"))
}

/// `--port N` (default 8080) on the loopback address.
fn listen_address(extra: &[String]) -> Result<String> {
    match extra {
        [] => Ok("127.0.0.1:8080".into()),
        [flag, port] if flag == "--port" => {
            let port: u16 = port.parse().with_context(|| format!("--port {port}: not a port number"))?;
            Ok(format!("127.0.0.1:{port}"))
        }
        other => bail!("unexpected arguments {other:?}: `cargo xtask serve [--port N]`"),
    }
}

/// The cargo build Trunk will ask for, for both of the first build's modules, with the same
/// arguments and target directory, so that Trunk then finds them built.
fn page_modules_build() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--target=wasm32-unknown-unknown", "--manifest-path", "crates/web/Cargo.toml", "--profile", "web-release"])
        .args(["--locked", "--bin", "fashion-web", "--bin", "decoder"])
        .env("CARGO_TARGET_DIR", wasm_target_dir());
    cmd
}

/// `index.html` without the engine module's link, written beside it (Trunk resolves a page's
/// asset paths from the page's folder, and reads only relative ones) under a name git
/// ignores.
fn first_index() -> Result<PathBuf> {
    let index = std::fs::read_to_string(root().join("index.html")).context("reading index.html")?;
    let lines: Vec<&str> = index.lines().filter(|line| !line.contains(ENGINE_MODULE_LINK)).collect();
    if lines.len() == index.lines().count() {
        bail!("index.html has no link with {ENGINE_MODULE_LINK}: update crates/xtask/src/serve.rs to match it");
    }
    let path = root().join(FIRST_INDEX);
    std::fs::write(&path, lines.join("\n")).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Copies every file of `from` into `to`, replacing those of the same name.
fn copy_over(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_over(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}

/// Serves the files under `dist` (read at each request, so a rebuilt file is served at once).
fn serve_files(server: tiny_http::Server, dist: &Path) {
    for request in server.incoming_requests() {
        let file = site::file_for_url(request.url()).map(|relative| dist.join(relative));
        let response = match file.as_ref().map(|file| (file, std::fs::read(file))) {
            Some((file, Ok(bytes))) => tiny_http::Response::from_data(bytes)
                .with_header(tiny_http::Header::from_bytes("Content-Type", site::content_type(file)).expect("a valid header")),
            _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
        };
        let _ = request.respond(response);
    }
}
