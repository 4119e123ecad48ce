//! After Trunk: drop the wasm's debug names, and write precompressed `.gz` and `.br` copies of
//! every file next to it, for hosts that serve them as they are (README, "Deploying").

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

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

/// Drops the `name` and `producers` custom sections from each `.wasm` in `dist`: 3.5 MiB of
/// function names (0.7 MiB gzipped) that only debuggers and panic stack traces read; the
/// page's panic message does not need them. Written by hand, a walk over the module's
/// sections, because Debian's wasm-opt (binaryen 108) cannot parse rustc's current output
/// (`table.fill`, from reference types) and a parser crate would be more code than this.
pub fn strip_debug_sections(dist: &Path) -> Result<()> {
    for path in files_with_extension(dist, "wasm")? {
        let module = std::fs::read(&path)?;
        let stripped = without_custom_sections(&module, &["name", "producers"])
            .with_context(|| format!("{} is not a WebAssembly module", path.display()))?;
        if stripped.len() < module.len() {
            std::fs::write(&path, &stripped)?;
            eprintln!("xtask: {}: {} → {} bytes (debug names removed)", path.display(), module.len(), stripped.len());
        }
    }
    Ok(())
}

/// LEB128 unsigned integer at `bytes[*at..]`, advancing `at`.
fn leb128(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= ((byte & 0x7f) as usize) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
        if shift > 35 {
            return None;
        }
    }
}

/// The module with the named custom sections left out; `None` if it is malformed.
fn without_custom_sections(module: &[u8], names: &[&str]) -> Option<Vec<u8>> {
    if module.len() < 8 || &module[..4] != b"\0asm" {
        return None;
    }
    let mut out = module[..8].to_vec();
    let mut at = 8;
    while at < module.len() {
        let start = at;
        let id = module[at];
        at += 1;
        let size = leb128(module, &mut at)?;
        let end = at.checked_add(size).filter(|&e| e <= module.len())?;
        let drop = id == 0 && {
            let mut name_at = at;
            let len = leb128(module, &mut name_at)?;
            module.get(name_at..name_at + len).is_some_and(|name| names.iter().any(|n| n.as_bytes() == name))
        };
        if !drop {
            out.extend_from_slice(&module[start..end]);
        }
        at = end;
    }
    Some(out)
}

/// Fills in `dist/sw.js` (from `web/sw.js`): the list of the site's files to keep offline and
/// a version made from their contents, so that each deployment gets its own cache and the
/// service worker removes the previous one.
pub fn write_service_worker(dist: &Path) -> Result<()> {
    let sw = dist.join("sw.js");
    let template = std::fs::read_to_string(&sw).with_context(|| format!("reading {}", sw.display()))?;
    let mut files = Vec::new();
    for dir in [dist.to_path_buf(), dist.join("report"), dist.join("examples")] {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.strip_prefix(dist)?.to_string_lossy().replace('\\', "/");
            let skip = name == "sw.js" || name == "_headers" || name == "index.html" || name.ends_with(".gz") || name.ends_with(".br");
            if path.is_file() && !skip {
                files.push(name);
            }
        }
    }
    files.sort();
    // FNV-1a over names and contents: a change of any byte gives a new cache name.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in std::iter::once("index.html".to_string()).chain(files.iter().cloned()) {
        for byte in name.bytes().chain(std::fs::read(dist.join(&name))?) {
            hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // "./" is the page itself (index.html), under the address visitors use.
    let list = std::iter::once("./".to_string()).chain(files).map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ");
    let filled = template.replace("\"__VERSION__\"", &format!("\"{hash:016x}\"")).replace("__FILES__", &format!("[{list}]"));
    anyhow::ensure!(filled != template, "{} has no __VERSION__ / __FILES__ placeholders", sw.display());
    std::fs::write(&sw, filled)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![id, body.len() as u8];
        s.extend_from_slice(body);
        s
    }

    #[test]
    fn strips_only_the_named_custom_sections() {
        let header = b"\0asm\x01\0\0\0".to_vec();
        let types = section(1, &[1, 0x60, 0, 0]);
        let names = section(0, b"\x04name\x01\x02\x03");
        let other = section(0, b"\x05other\x09");
        let module = [header.clone(), types.clone(), names, other.clone()].concat();
        assert_eq!(without_custom_sections(&module, &["name"]).unwrap(), [header, types, other].concat());
        assert!(without_custom_sections(b"not wasm", &["name"]).is_none());
        assert!(without_custom_sections(&module[..module.len() - 2], &["name"]).is_none(), "a cut-short section");
    }
}
