//! `cargo xtask <task>`: set-up and orchestration, so the README's commands work on a fresh
//! Debian machine. Each task installs what it needs and is missing, or says exactly how to.
//!
//! - `cargo xtask test`  — every test of the workspace (unit, integration, trainer end-to-end).
//! - `cargo xtask train` — train the shipped models (`cargo run --release -p trainer`).
//! - `cargo xtask bench` — throughput figures (`trainer bench`).

use std::{
    path::Path,
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};

const DATASET_DIR: &str = "/usr/share/datasets/fashion-mnist";
const DATASET_PACKAGE: &str = "dataset-fashion-mnist";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "test" => test(rest),
        "train" => train(rest),
        "bench" => bench(rest),
        _ => {
            eprintln!("usage: cargo xtask <test|train|bench> [args…]");
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
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("xtask lives in crates/xtask")
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

/// The browser build target; `rustup` fetches it from the Rust distribution server.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-unknown-unknown") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])),
        Err(_) => bail!("rustup is not installed; install the wasm32-unknown-unknown target for your toolchain"),
    }
}

fn test(extra: &[String]) -> Result<()> {
    ensure_dataset()?;
    ensure_wasm_target()?;
    // The model crate is shared with the page: it must keep compiling for the browser.
    run(Command::new(env!("CARGO")).args(["check", "--locked", "-p", "fashion-model", "--target", "wasm32-unknown-unknown"]))?;
    // --workspace (not -p) keeps burn's features identical to the trainer's build, so the
    // tests reuse it instead of compiling burn a second time.
    run(Command::new(env!("CARGO")).args(["test", "--workspace", "--release", "--locked"]).args(extra))
}

fn train(extra: &[String]) -> Result<()> {
    ensure_dataset()?;
    run(Command::new(env!("CARGO")).args(["run", "--release", "--locked", "-p", "trainer", "--"]).args(extra))
}

fn bench(extra: &[String]) -> Result<()> {
    run(Command::new(env!("CARGO")).args(["run", "--release", "--locked", "-p", "trainer", "--", "bench"]).args(extra))
}
