//! After Trunk: shrink the wasm with Debian's wasm-opt (binaryen) where it is installed, and
//! write precompressed `.gz` and `.br` copies of every file next to it, for hosts that serve
//! them as they are (README, "Deploying").

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

/// Features rustc's wasm32 output uses; Debian's binaryen 108 rejects the module without them.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-simd",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// Files a browser fetches as they are, worth compressing (the rest are small or images).
const COMPRESSIBLE: &[&str] = &["wasm", "js", "css", "html", "fmw", "fms", "svg", "md", "json", "webmanifest"];

fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(out)
}

/// Runs wasm-opt on each `.wasm` in `dist`: drops the name and producers sections (3.6 MB of
/// the module, used only by debuggers) and optimises for size. Skipped, with a note, where
/// wasm-opt is missing: the page works the same, only larger.
pub fn optimise_wasm(dist: &Path, wasm_opt: Option<&Path>) -> Result<()> {
    let Some(wasm_opt) = wasm_opt else {
        eprintln!("xtask: wasm-opt (Debian package `binaryen`) is not installed; the wasm is left unoptimised");
        return Ok(());
    };
    for wasm in files_with_extension(dist, "wasm")? {
        let before = std::fs::metadata(&wasm)?.len();
        let out = wasm.with_extension("opt.wasm");
        let status = Command::new(wasm_opt)
            .args(WASM_FEATURES)
            .args(["-Os", "--strip-debug", "--strip-producers", "-o"])
            .arg(&out)
            .arg(&wasm)
            .status()
            .with_context(|| format!("starting {}", wasm_opt.display()))?;
        anyhow::ensure!(status.success(), "wasm-opt failed on {} ({status})", wasm.display());
        std::fs::rename(&out, &wasm)?;
        eprintln!("xtask: wasm-opt {}: {before} → {} bytes", wasm.display(), std::fs::metadata(&wasm)?.len());
    }
    Ok(())
}

/// Writes `name.gz` (gzip -9) and `name.br` (brotli, quality 11) beside each compressible file.
pub fn precompress(dist: &Path) -> Result<()> {
    let mut files = Vec::new();
    for ext in COMPRESSIBLE {
        files.extend(files_with_extension(dist, ext)?);
        if dist.join("report").is_dir() {
            files.extend(files_with_extension(&dist.join("report"), ext)?);
        }
    }
    for path in files {
        let bytes = std::fs::read(&path)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        std::fs::write(append_extension(&path, "gz"), gz.finish()?)?;
        let mut br = Vec::new();
        let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
        brotli::BrotliCompress(&mut bytes.as_slice(), &mut br, &params)?;
        std::fs::write(append_extension(&path, "br"), br)?;
    }
    Ok(())
}

fn append_extension(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}
