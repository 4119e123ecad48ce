//! `cargo xtask <task>`: set-up and orchestration, so the README's commands work on a fresh
//! Debian machine. Each task installs what it needs and is missing, or says exactly how to.
//!
//! - `cargo xtask serve`      — build the page with Trunk and serve it on http://127.0.0.1:8080
//!   as soon as it can answer (serve.rs)
//! - `cargo xtask test`       — every test: unit, integration, trainer end-to-end, and the page
//!   in headless Chromium (WebGPU and CPU fallback), beside the page's builds (testing.rs)
//! - `cargo xtask build-page` — `trunk build --release` into dist/
//! - `cargo xtask train`      — train the shipped models (`cargo run --release -p trainer`)
//! - `cargo xtask bench`      — native throughput figures (`trainer bench`)
//! - `cargo xtask bench-page` — the page's speed and size in headless Chromium
//! - `cargo xtask bench-accuracy` — every model on Fashion-MNIST, photo-style, pose and
//!   drawings test sets (`trainer suite`)
//!
//! Tools that are not Debian packages (Trunk, wasm-bindgen-cli) are built from crates.io into
//! `<cargo target dir>/tools`, so they are cached with the build and a clean target dir
//! rebuilds them. Trunk's wasm builds go to `<cargo target dir>/wasm`, apart from the native
//! ones, so that `test` can build both at once.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};

mod dist;
mod serve;
mod testing;

const DATASET_DIR: &str = "/usr/share/datasets/fashion-mnist";
const DATASET_PACKAGE: &str = "dataset-fashion-mnist";
/// Trunk 0.22 needs a newer rustc than the 1.95 this project targets.
const TRUNK_VERSION: &str = "0.21.14";
/// The crates that are the page's wasm modules; they only build for wasm32, through Trunk.
const WEB_CRATE: &str = "fashion-web";
const ENGINE_MODULE_CRATE: &str = "fashion-engine-module";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "test" => testing::test(rest),
        "serve" => serve::serve(rest),
        "build-page" => build_page(Page::Shipped),
        "train" => train(rest),
        "bench" => bench(rest),
        "bench-page" => bench_page(rest),
        "bench-accuracy" => bench_accuracy(rest),
        _ => {
            eprintln!("usage: cargo xtask <serve|test|build-page|train|bench|bench-page|bench-accuracy> [args…]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        // `cargo run` sets CARGO_MANIFEST_DIR for the process too. Prefer it to the compile-time
        // value: a binary built by another checkout sharing the target directory (a CI clone
        // since deleted) would otherwise point there.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        manifest.parent().and_then(Path::parent).expect("xtask lives in crates/xtask").to_path_buf()
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn tools_dir() -> PathBuf {
    target_dir().join("tools")
}

/// Where Trunk's wasm builds go: apart from the native builds, so that both can run at once
/// (cargo locks a whole target directory; the two share no artifacts anyway, being built for
/// other targets with other profiles).
fn wasm_target_dir() -> PathBuf {
    target_dir().join("wasm")
}

/// PATH with the project's tools first, for Trunk to find wasm-bindgen.
fn tools_path() -> std::ffi::OsString {
    let mut paths = vec![tools_dir().join("bin")];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("PATH entries without separators")
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

/// Installs Debian packages when running as root; otherwise explains what to install.
fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    if !is_root() {
        bail!("{why} is missing: run `sudo apt-get install {}` and try again", packages.join(" "));
    }
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The Fashion-MNIST files, from the Debian package unless FASHION_MNIST_DIR points elsewhere.
fn ensure_dataset() -> Result<()> {
    if std::env::var_os("FASHION_MNIST_DIR").is_some() {
        return Ok(());
    }
    if Path::new(DATASET_DIR).join("t10k-labels-idx1-ubyte.gz").exists() {
        return Ok(());
    }
    apt_install(&[DATASET_PACKAGE], "the Fashion-MNIST dataset")
}

/// Headless Chromium and its WebDriver, for the page's tests and benchmark.
fn ensure_chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() {
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver"], "Chromium and chromedriver")
}

/// onnxruntime for Python, which runs the trainer's ONNX export in its tests
/// (crates/trainer/tests/onnx.rs); pinned, so that every machine checks against the same one.
const ONNXRUNTIME_VERSION: &str = "1.32.0";
const NUMPY_VERSION: &str = "2.4.6";

/// A Python virtual environment under the tools folder with onnxruntime and numpy; returns its
/// interpreter.
fn ensure_python_tools() -> Result<PathBuf> {
    let venv = tools_dir().join("python");
    let python = venv.join("bin/python");
    let check = format!("import numpy, onnxruntime; assert onnxruntime.__version__ == '{ONNXRUNTIME_VERSION}'");
    if Command::new(&python).args(["-c", &check]).output().is_ok_and(|o| o.status.success()) {
        return Ok(python);
    }
    if !Command::new("python3").args(["-c", "import venv, ensurepip"]).output().is_ok_and(|o| o.status.success()) {
        apt_install(&["python3", "python3-venv"], "Python 3 with venv (for onnxruntime, which checks the ONNX export)")?;
    }
    eprintln!("xtask: installing onnxruntime {ONNXRUNTIME_VERSION} for Python into {}", venv.display());
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("onnxruntime=={ONNXRUNTIME_VERSION}"))
        .arg(format!("numpy=={NUMPY_VERSION}")))
    .context("installing onnxruntime from PyPI")?;
    Ok(python)
}

/// The browser build target; `rustup` fetches it from the Rust distribution server.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-unknown-unknown") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])),
        Err(_) => bail!("rustup is not installed; install the wasm32-unknown-unknown target for your toolchain"),
    }
}

/// The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_string());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen entry")
}

fn tool_version_is(binary: &str, version: &str) -> bool {
    let path = tools_dir().join("bin").join(binary);
    Command::new(path)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().any(|w| w == version))
        .unwrap_or(false)
}

/// Trunk and wasm-bindgen-cli from crates.io (Trunk must never download them itself: the
/// machines here reach only package registries).
fn ensure_web_tools() -> Result<()> {
    ensure_wasm_target()?;
    let tools = tools_dir();
    if !tool_version_is("trunk", TRUNK_VERSION) {
        eprintln!("xtask: building Trunk {TRUNK_VERSION} into {} (once; about 3 minutes on 2 cores)", tools.display());
        // No TLS stack and no update check: the page is built offline and served on localhost.
        run(quick_install(Optimise::Not)
            .args(["trunk", "--version", TRUNK_VERSION, "--locked", "--no-default-features", "--root"])
            .arg(&tools))?;
    }
    let bindgen = locked_wasm_bindgen_version()?;
    if !tool_version_is("wasm-bindgen", &bindgen) {
        eprintln!("xtask: building wasm-bindgen-cli {bindgen} into {} (once; about 2 minutes)", tools.display());
        // Not --locked: its lock file names a webpki-roots version the registry no longer serves.
        // No TLS: only its test runner downloads anything.
        run(quick_install(Optimise::Some)
            .args(["wasm-bindgen-cli", "--version", &bindgen, "--no-default-features", "--force", "--root"])
            .arg(&tools))?;
    }
    Ok(())
}

/// How much a tool built by [`quick_install`] is optimised.
enum Optimise {
    /// Trunk: it copies, hashes and rewrites a few files and starts wasm-bindgen; unoptimised
    /// it builds in about 30% less time (docs/testing.md).
    Not,
    /// wasm-bindgen-cli: it parses and rewrites the 20 MB WebGPU module, which wants some.
    Some,
}

/// `cargo install` with a release profile that builds in a third of the time: both tools spend
/// their run time in file I/O and in passes over a few MB of wasm, where fat LTO and one
/// codegen unit (Trunk's own profile) buy nothing measurable and cost 8 minutes on 2 cores.
fn quick_install(optimise: Optimise) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("install")
        // Not the native target directory, which a concurrent test build may hold (`test`).
        .env("CARGO_TARGET_DIR", tools_dir().join("build"))
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env(
            "CARGO_PROFILE_RELEASE_OPT_LEVEL",
            match optimise {
                Optimise::Not => "0",
                Optimise::Some => "1",
            },
        );
    cmd
}

fn trunk() -> Command {
    let mut cmd = Command::new(tools_dir().join("bin/trunk"));
    cmd.env("PATH", tools_path())
        .env("TRUNK_TOOLS_WASM_BINDGEN", locked_wasm_bindgen_version().unwrap_or_default())
        .env("CARGO_TARGET_DIR", wasm_target_dir());
    cmd
}

/// Which build of the page: the one users get, or the one the page tests and the page
/// benchmark drive, with the `test-hooks` feature (`window.wasmBindings.fashion*`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Shipped,
    WithTestHooks,
}

impl Page {
    fn what(self) -> &'static str {
        match self {
            Page::Shipped => "building the shipped page",
            Page::WithTestHooks => "building the tests' page",
        }
    }

    fn dist(self) -> PathBuf {
        match self {
            Page::Shipped => root().join("dist"),
            // Apart from dist/, so that a test build never ends up deployed.
            Page::WithTestHooks => target_dir().join("page-test-dist"),
        }
    }
}

/// `trunk build --release` into the page's folder, then without debug names, with the
/// offline copy's file list and with precompressed copies (dist.rs).
fn build_page(page: Page) -> Result<()> {
    ensure_web_tools()?;
    run(&mut page_build(page)?)?;
    finish_page(&page.dist())
}

/// The same, with Trunk's output in a log file (shown if it fails), for a build that runs
/// beside tests whose output is the one to read.
fn build_page_quietly(page: Page, log: &Path) -> Result<()> {
    ensure_web_tools()?;
    Background::start(&mut page_build(page)?, log, page.what())?.wait()?;
    finish_page(&page.dist())
}

/// The Trunk command that builds `page`.
fn page_build(page: Page) -> Result<Command> {
    let mut trunk = trunk();
    trunk.args(["build", "--release", "--locked", "--dist"]).arg(page.dist());
    if page == Page::WithTestHooks {
        trunk.args(["--features", "test-hooks"]).arg(test_index()?);
    }
    Ok(trunk)
}

/// The engine module's link in `index.html` and the features it names there.
const ENGINE_FEATURES: &str = "data-bin=\"engine\" data-type=\"worker\" data-cargo-features=\"webgpu\"";
/// The tests' page (see `.gitignore`).
const TEST_INDEX: &str = ".index-test.html";

/// `index.html` with the engine module's benchmark exports (its `bench` feature), written beside
/// it (Trunk resolves a page's asset paths from the page's folder) under a name git ignores:
/// Trunk's `--features` reaches only the page's own module, and the shipped page must not
/// export what only measures.
fn test_index() -> Result<PathBuf> {
    let index = std::fs::read_to_string(root().join("index.html")).context("reading index.html")?;
    if !index.contains(ENGINE_FEATURES) {
        bail!("index.html has no engine module link with {ENGINE_FEATURES}: update crates/xtask/src/main.rs to match it");
    }
    let path = root().join(TEST_INDEX);
    let with_bench = ENGINE_FEATURES.replace("\"webgpu\"", "\"webgpu,bench\"");
    std::fs::write(&path, index.replace(ENGINE_FEATURES, &with_bench)).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// After Trunk: the wasm without debug names, the offline copy's file list, precompressed
/// copies (dist.rs).
fn finish_page(dist: &Path) -> Result<()> {
    dist::strip_debug_sections(dist)?;
    dist::write_service_worker(dist)?;
    dist::precompress(dist)
}

/// The native build every test, benchmark and trainer command runs: one selection of
/// packages, so that burn is compiled natively once, with one set of features. (`cargo run -p
/// trainer` or `-p page-tests` would unify features differently and compile burn again.) The
/// page crates only build for wasm32 (done by Trunk); their tests run in the browser, from
/// tests/.
fn cargo_workspace_tests() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["test", "--workspace", "--exclude", WEB_CRATE, "--exclude", ENGINE_MODULE_CRATE, "--release", "--locked"]);
    with_page_dists(&mut cmd);
    cmd
}

/// Where the tests find both builds of the page (`tests/src/lib.rs` reads these).
fn with_page_dists(cmd: &mut Command) -> &mut Command {
    cmd.env("FASHION_DIST", Page::WithTestHooks.dist()).env("FASHION_SHIPPED_DIST", Page::Shipped.dist())
}

/// Builds the workspace's binaries as the tests do, then runs `binary` from it.
fn run_built(binary: &str, args: &[&str], extra: &[String]) -> Result<()> {
    run(cargo_workspace_tests().arg("--no-run"))?;
    let mut cmd = Command::new(target_dir().join("release").join(binary));
    cmd.args(args).args(extra).env("FASHION_DIST", Page::WithTestHooks.dist());
    run(&mut cmd)
}

/// A command running beside others, its output in a log file rather than mixed with theirs.
pub(crate) struct Background {
    child: std::process::Child,
    log: PathBuf,
    what: &'static str,
}

impl Background {
    fn start(cmd: &mut Command, log: &Path, what: &'static str) -> Result<Self> {
        std::fs::create_dir_all(log.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("creating the folder of {}", log.display()))?;
        let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        eprintln!("xtask: {what} in the background (output in {})", log.display());
        let child =
            cmd.current_dir(root()).stdout(file.try_clone()?).stderr(file).spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        Ok(Self { child, log: log.to_path_buf(), what })
    }

    /// Waits for it; on failure shows the end of its log.
    fn wait(mut self) -> Result<()> {
        let status = self.child.wait().with_context(|| format!("waiting for {}", self.what))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("{}", lines[lines.len().saturating_sub(60)..].join("\n"));
        bail!("{} failed ({status}); the whole output is in {}", self.what, self.log.display())
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn train(extra: &[String]) -> Result<()> {
    ensure_dataset()?;
    run_built("trainer", &[], extra)
}

fn bench(extra: &[String]) -> Result<()> {
    run_built("trainer", &["bench"], extra)
}

fn bench_accuracy(extra: &[String]) -> Result<()> {
    ensure_dataset()?;
    run_built("trainer", &["suite"], extra)
}

/// The page benchmark drives the page built for the tests (it needs the hooks); it builds
/// only what changed since `cargo xtask test`. It also runs the page's network, exported to
/// ONNX, in ONNX Runtime Web, installed here from npm.
fn bench_page(extra: &[String]) -> Result<()> {
    ensure_dataset()?;
    ensure_chromium()?;
    let ort = ensure_ort_web()?;
    build_page(Page::WithTestHooks)?;
    run(cargo_workspace_tests().arg("--no-run"))?;
    let mut cmd = Command::new(target_dir().join("release").join("page-bench"));
    cmd.args(extra).env("FASHION_DIST", Page::WithTestHooks.dist()).env("FASHION_ORT_WEB", ort);
    run(&mut cmd)
}

/// ONNX Runtime Web, pinned, for the benchmark's comparison on the same network.
const ORT_WEB_VERSION: &str = "1.30.0";

/// `onnxruntime-web` from npm under the tools folder; returns its `dist/` folder.
fn ensure_ort_web() -> Result<PathBuf> {
    let prefix = tools_dir().join("ort-web");
    let package = prefix.join("node_modules/onnxruntime-web");
    let installed = std::fs::read_to_string(package.join("package.json"))
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{ORT_WEB_VERSION}\"")));
    if !installed {
        if Command::new("npm").arg("--version").output().is_err() {
            apt_install(&["nodejs", "npm"], "npm (for ONNX Runtime Web, the benchmark's comparison)")?;
        }
        std::fs::create_dir_all(&prefix)?;
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
            .arg(&prefix)
            .arg(format!("onnxruntime-web@{ORT_WEB_VERSION}")))
        .context("installing onnxruntime-web from npm")?;
    }
    Ok(package.join("dist"))
}
