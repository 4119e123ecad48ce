//! Atomic file writes: a reader (or a crash) never sees a half-written model or report.

use std::{
    io::{ErrorKind, Write},
    path::Path,
};

use anyhow::{Context, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`.
/// On any failure (full disk, read-only folder) the previous file at `path` is left untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {} (is it writable?)", dir.display()))?;
    if let Err(e) = tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()) {
        // Dropping `tmp` deletes the partial file, which also gives back the space it took.
        let why = match e.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
                format!("the disk holding {} is full: free some space", dir.display())
            }
            _ => "write error".to_string(),
        };
        return Err(anyhow::Error::new(e).context(format!("cannot write {} ({why}); the previous file is unchanged", path.display())));
    }
    // Temporary files are created 0600; outputs are shared files (served by a web server,
    // copied around), so give them the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot replace {}; the previous file is unchanged", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    // A real full disk is tested end to end in tests/cli.rs (a filled-up tmpfs).
    #[test]
    fn failure_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.fmw");
        write_atomic(&p, b"good").unwrap();
        // A path whose parent is a file cannot be created.
        let blocked = p.join("child.fmw");
        let err = write_atomic(&blocked, b"bad").unwrap_err().to_string();
        assert!(err.contains("cannot"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"good");
    }
}
