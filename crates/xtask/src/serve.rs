//! `cargo xtask serve`: the page, as soon as it can answer. The page answers on its own module
//! (burn on the CPU) and loads the WebGPU module only afterwards, so the site is served once
//! the first module and the decoding worker are built; the WebGPU module, the longest build,
//! follows in the background and is picked up at the next reload. On a fresh machine the
//! page's module also builds while Trunk and wasm-bindgen-cli are being installed: it needs
//! neither. And where burn has never been compiled for the shipped page (`web-release`: fat
//! LTO, optimised throughout), the first page is a quick build (`web-first`, Cargo.toml), and
//! the shipped build replaces it in the background, WebGPU module included.

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
/// The shipped page's cargo profile, as `index.html` names it.
const SHIPPED_PROFILE: &str = "web-release";
/// The quick profile of a cold first build (Cargo.toml).
const QUICK_PROFILE: &str = "web-first";

pub fn serve(extra: &[String]) -> Result<()> {
    let address = listen_address(extra)?;
    // Bind first: a port in use is reported before minutes of building.
    let server = tiny_http::Server::http(&address)
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} ({e}): stop the other server or pass --port N"))?;
    let dist = Page::Shipped.dist();

    ensure_wasm_target()?;
    let profile = first_profile();
    let log = target_dir().join("page-module-build.log");
    let prebuild = Background::start(&mut page_modules_build(profile), &log, "building the page's own module and decoding worker")?;
    if let Err(e) = ensure_web_tools() {
        prebuild.stop();
        return Err(e);
    }
    prebuild.wait()?;
    let first = first_index(profile)?;
    run(trunk().args(["build", "--release", "--locked", "--dist"]).arg(&dist).arg(&first))?;
    finish_page(&dist)?;
    if profile == QUICK_PROFILE {
        eprintln!(
            "xtask: the page answers at http://{address}/ (a quick build, on the CPU; the shipped build, WebGPU included, \
             follows in the background, about 20 minutes on 2 cores; Ctrl+C stops the server)"
        );
    } else {
        eprintln!("xtask: the page answers at http://{address}/ (on the CPU until the WebGPU module is built; Ctrl+C stops the server)");
    }
    let serving = {
        let dist = dist.clone();
        thread::spawn(move || serve_files(server, &dist))
    };

    let staging = target_dir().join("serve-next");
    eprintln!("xtask: building the shipped page with its WebGPU module in the background");
    match run(trunk().args(["build", "--release", "--locked", "--dist"]).arg(&staging)).and_then(|()| finish_page(&staging)) {
        Ok(()) => {
            replace_dir(&staging, &dist)?;
            eprintln!("xtask: the shipped page with its WebGPU module is ready: reload the page to use it (http://{address}/)");
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

/// The first build's profile: the shipped one where burn is already compiled for it (a later
/// rebuild only recompiles what changed), else the quick one, several minutes sooner.
fn first_profile() -> &'static str {
    let shipped_deps = wasm_target_dir().join("wasm32-unknown-unknown").join(SHIPPED_PROFILE).join("deps");
    let burn_built = std::fs::read_dir(shipped_deps)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libburn_flex-")))
        .unwrap_or(false);
    if burn_built { SHIPPED_PROFILE } else { QUICK_PROFILE }
}

/// The cargo build Trunk will ask for, for both of the first build's modules, with the same
/// arguments and target directory, so that Trunk then finds them built.
fn page_modules_build(profile: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--target=wasm32-unknown-unknown", "--manifest-path", "crates/web/Cargo.toml", "--profile", profile])
        .args(["--locked", "--bin", "fashion-web", "--bin", "decoder"])
        .env("CARGO_TARGET_DIR", wasm_target_dir());
    cmd
}

/// `index.html` without the engine module's link and with the first build's profile, written
/// beside it (Trunk resolves a page's asset paths from the page's folder, and reads only
/// relative ones) under a name git ignores.
fn first_index(profile: &str) -> Result<PathBuf> {
    let index = std::fs::read_to_string(root().join("index.html")).context("reading index.html")?;
    let path = root().join(FIRST_INDEX);
    std::fs::write(&path, first_page_of(&index, profile)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn first_page_of(index: &str, profile: &str) -> Result<String> {
    let lines: Vec<&str> = index.lines().filter(|line| !line.contains(ENGINE_MODULE_LINK)).collect();
    if lines.len() == index.lines().count() {
        bail!("index.html has no link with {ENGINE_MODULE_LINK}: update crates/xtask/src/serve.rs to match it");
    }
    let shipped = format!("data-cargo-profile-release=\"{SHIPPED_PROFILE}\"");
    if !index.contains(&shipped) {
        bail!("index.html's modules are not built with {shipped}: update crates/xtask/src/serve.rs to match it");
    }
    Ok(lines.join("\n").replace(&shipped, &format!("data-cargo-profile-release=\"{profile}\"")))
}

/// Makes `to` a copy of `from`: the new files first (the server reads a file at each request,
/// so a reload finds either page whole), then the first build's files that the shipped one
/// lacks (its modules, under other hashed names), so that `dist/` holds only the shipped page.
fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    copy_over(from, to)?;
    for entry in std::fs::read_dir(to).with_context(|| format!("reading {}", to.display()))? {
        let entry = entry?;
        if !from.join(entry.file_name()).exists() {
            let path = entry.path();
            let removed = if entry.file_type()?.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_drops_the_webgpu_module_and_takes_the_first_profile() {
        let index = std::fs::read_to_string(root().join("index.html")).unwrap();
        let first = first_page_of(&index, QUICK_PROFILE).unwrap();
        assert!(!first.contains(ENGINE_MODULE_LINK));
        assert!(!first.contains(SHIPPED_PROFILE), "every module of the first page in the quick profile");
        assert_eq!(first.matches("data-cargo-profile-release=\"web-first\"").count(), 2, "the page's module and the decoding worker");
        let cargo_toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(cargo_toml.contains(&format!("[profile.{QUICK_PROFILE}]")), "the quick profile is defined");
        assert!(first_page_of("<html></html>", QUICK_PROFILE).is_err(), "a page without the engine module is reported");
    }

    #[test]
    fn replacing_a_folder_leaves_only_the_new_files() {
        let base = std::env::temp_dir().join(format!("xtask-replace-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::create_dir_all(to.join("old-sub")).unwrap();
        std::fs::write(from.join("index.html"), "new").unwrap();
        std::fs::write(from.join("sub/a.wasm"), "a").unwrap();
        std::fs::write(to.join("index.html"), "old").unwrap();
        std::fs::write(to.join("quick-123.wasm"), "quick").unwrap();
        std::fs::write(to.join("old-sub/b"), "b").unwrap();
        replace_dir(&from, &to).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&to).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["index.html", "sub"]);
        assert_eq!(std::fs::read_to_string(to.join("index.html")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(to.join("sub/a.wasm")).unwrap(), "a");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
