//! `cargo xtask test`: every test of the workspace, in an order that keeps both cores busy on a
//! cold machine. The long builds are the page's: burn for wasm32, then one single-threaded fat
//! LTO link per module, twice (the tests' page, with hooks, and the shipped one). Tests that do
//! not need a page run beside those links instead of after them:
//!
//! 1. the native tests build beside the tests' page (and Trunk and wasm-bindgen-cli);
//! 2. as soon as they are built, the tests outside `tests/` run, while that page still builds;
//! 3. the page tests (`tests/tests/*.rs`, headless Chromium) run while the shipped page builds;
//! 4. then the check of the shipped page (`tests/tests/shipped.rs`), which needs it, and the
//!    doc tests.
//!
//! Every test binary runs even when one fails; the failures are listed at the end. With
//! arguments (`cargo xtask test -- --nocapture`, a test name), both pages are built first and
//! one `cargo test` runs with them, as plain cargo would.

use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
};

use anyhow::{Context, Result, bail};

use crate::{
    Background, Page, build_page, build_page_quietly, cargo_workspace_tests, ensure_chromium, ensure_dataset, ensure_python_tools, root,
    run, target_dir, with_page_dists,
};

/// The page tests' package folder, relative to the workspace root.
const PAGE_TESTS_DIR: &str = "tests";
/// The page test that checks the shipped page rather than drive the tests' one.
const SHIPPED_TEST: &str = "shipped";

pub fn test(extra: &[String]) -> Result<()> {
    ensure_dataset()?;
    ensure_chromium()?;
    let python = ensure_python_tools()?;
    if !extra.is_empty() {
        return test_with_cargo(extra, &python);
    }
    let log = native_build_log();
    let native = Background::start(
        cargo_workspace_tests().args(["--no-run", "--message-format=json-render-diagnostics"]),
        &log,
        "building the native tests",
    )?;
    // Steps 1 and 2: the native tests run in a thread as soon as they are built; the tests'
    // page builds meanwhile, its output in a log so that the tests' output reads cleanly.
    let native_tests = {
        let python = python.clone();
        thread::spawn(move || -> Result<(Vec<TestBinary>, Vec<String>)> {
            native.wait()?;
            let binaries = built_tests(&std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?)?;
            let (page, others): (Vec<_>, Vec<_>) = binaries.into_iter().partition(TestBinary::drives_a_page);
            let failed = run_all(&others, &python);
            Ok((page, failed))
        })
    };
    let page_built = build_page_quietly(Page::WithTestHooks, &target_dir().join("page-test-build.log"));
    let (page_binaries, mut failed) = native_tests.join().map_err(|_| anyhow::anyhow!("the native tests' thread panicked"))??;
    if let Err(e) = page_built {
        failed.push(format!("the tests' page did not build, so no page test ran: {e:#}"));
        bail!("{}", failed.join("\n  "));
    }

    // Step 3: the page tests while the shipped page builds.
    let (shipped, page): (Vec<_>, Vec<_>) = page_binaries.into_iter().partition(|b| b.target == SHIPPED_TEST);
    if shipped.is_empty() {
        bail!(
            "no test target {PAGE_TESTS_DIR}/tests/{SHIPPED_TEST}.rs: update crates/xtask/src/testing.rs to name the shipped page's check"
        );
    }
    let shipped_build = thread::spawn(|| build_page_quietly(Page::Shipped, &target_dir().join("page-shipped-build.log")));
    failed.extend(run_all(&page, &python));
    shipped_build.join().map_err(|_| anyhow::anyhow!("the shipped page's build thread panicked"))??;

    // Step 4.
    failed.extend(run_all(&shipped, &python));
    if let Err(e) = run(cargo_workspace_tests().arg("--doc")) {
        failed.push(format!("doc tests: {e:#}"));
    }
    if !failed.is_empty() {
        bail!("{} test binaries failed (their output is above):\n  {}", failed.len(), failed.join("\n  "));
    }
    eprintln!("xtask: every test passed");
    Ok(())
}

/// Both pages, then one `cargo test` with the user's arguments.
fn test_with_cargo(extra: &[String], python: &Path) -> Result<()> {
    let native = Background::start(cargo_workspace_tests().arg("--no-run"), &native_build_log(), "building the native tests")?;
    if let Err(e) = build_page(Page::WithTestHooks).and_then(|()| build_page(Page::Shipped)) {
        native.stop();
        return Err(e);
    }
    native.wait()?;
    run(cargo_workspace_tests().env("FASHION_PYTHON", python).args(extra))
}

/// The native test build's output (cargo's, shown when it fails).
fn native_build_log() -> PathBuf {
    target_dir().join("native-test-build.log")
}

/// One test executable that cargo built.
struct TestBinary {
    executable: PathBuf,
    /// The package's folder: cargo runs tests from there, and so does this.
    package_dir: PathBuf,
    /// The target's name: `cli` for `tests/cli.rs`, the crate's for its unit tests.
    target: String,
    source: PathBuf,
    integration: bool,
}

impl TestBinary {
    fn drives_a_page(&self) -> bool {
        self.integration && self.package_dir == root().join(PAGE_TESTS_DIR)
    }
}

/// The test executables in the JSON messages of `cargo test --no-run --message-format=json`,
/// in the order of their source paths.
fn built_tests(messages: &str) -> Result<Vec<TestBinary>> {
    let mut binaries = Vec::new();
    for line in messages.lines().filter(|l| l.starts_with('{')) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let (Some(executable), Some(manifest)) = (message["executable"].as_str(), message["manifest_path"].as_str()) else { continue };
        let target = &message["target"];
        binaries.push(TestBinary {
            executable: executable.into(),
            package_dir: Path::new(manifest).parent().context("a manifest path without a folder")?.to_path_buf(),
            target: target["name"].as_str().unwrap_or_default().to_string(),
            source: target["src_path"].as_str().unwrap_or_default().into(),
            integration: target["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "test")),
        });
    }
    if binaries.is_empty() {
        bail!("cargo reported no test executables: is --message-format=json missing from the build?");
    }
    binaries.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(binaries)
}

/// Runs each binary as `cargo test` would; returns the ones that failed.
fn run_all(binaries: &[TestBinary], python: &Path) -> Vec<String> {
    let mut failed = Vec::new();
    for binary in binaries {
        let source = binary.source.strip_prefix(root()).unwrap_or(&binary.source).display().to_string();
        eprintln!("\nxtask: running {source} ({})", binary.executable.display());
        let mut cmd = Command::new(&binary.executable);
        cmd.current_dir(&binary.package_dir).env("CARGO_MANIFEST_DIR", &binary.package_dir).env("FASHION_PYTHON", python);
        let status = with_page_dists(&mut cmd).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => failed.push(format!("{source} ({s})")),
            Err(e) => failed.push(format!("{source} (cannot start {}: {e})", binary.executable.display())),
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_executables_are_read_from_cargos_messages_and_page_tests_told_apart() {
        let root = root().display().to_string();
        let artifact = |name: &str, kind: &str, src: &str, manifest: &str, test: bool, exe: Option<&str>| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "manifest_path": format!("{root}/{manifest}"),
                "target": { "name": name, "kind": [kind], "src_path": format!("{root}/{src}") },
                "profile": { "test": test },
                "executable": exe,
            })
            .to_string()
        };
        let messages = [
            "   Compiling trainer v0.1.0".to_string(),
            artifact("page", "test", "tests/tests/page.rs", "tests/Cargo.toml", true, Some("/t/page-1")),
            artifact("cli", "test", "crates/trainer/tests/cli.rs", "crates/trainer/Cargo.toml", true, Some("/t/cli-2")),
            // The trainer binary itself: built for the tests, not a test.
            artifact("trainer", "bin", "crates/trainer/src/main.rs", "crates/trainer/Cargo.toml", false, Some("/t/trainer")),
            // A library without an executable (an rlib).
            artifact("fashion_model", "lib", "crates/model/src/lib.rs", "crates/model/Cargo.toml", false, None),
            artifact("page_tests", "lib", "tests/src/lib.rs", "tests/Cargo.toml", true, Some("/t/page_tests-3")),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
        ]
        .join("\n");
        let binaries = built_tests(&messages).unwrap();
        let names: Vec<(&str, bool)> = binaries.iter().map(|b| (b.target.as_str(), b.drives_a_page())).collect();
        // Sorted by source path; only integration tests under tests/ drive a page.
        assert_eq!(names, [("cli", false), ("page_tests", false), ("page", true)]);
        assert_eq!(binaries[0].package_dir, Path::new(&root).join("crates/trainer"));
        assert!(built_tests("   Compiling nothing").is_err());
    }
}
