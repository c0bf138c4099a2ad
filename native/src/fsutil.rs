//! File-system helpers shared by every long job: atomic writes so that no partial file is ever
//! visible under its final name, even if the process is killed mid-write.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically: write a sibling temporary file, fsync it, rename it over
/// the destination, then fsync the directory so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary name used by [`write_atomic`]: hidden, unique per process, ends in `.tmp` so
/// that readers and `.gitignore` skip it.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Delete the temporary files ([`temp_sibling`]'s `.NAME.PID.tmp`) a killed run left in `dir`.
/// Only for directories a single job owns.
pub fn remove_stale_temps(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Cut a torn last line (a run killed while appending it) off a JSON-lines file, so that the
/// next append starts on a line of its own instead of gluing onto the torn bytes.
pub fn drop_torn_last_line(path: &Path) -> std::io::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    truncate(path, keep as u64)
}

/// Cut `path` to its first `len` bytes (a no-op when it is not longer).
pub fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    if f.metadata()?.len() > len {
        f.set_len(len)?;
        f.sync_all()?;
    }
    Ok(())
}

/// Checkpoints of several files that must change together, with one file as the commit point
/// (a run killed between two of the files must not resume from a mix of two checkpoints):
///
/// 1. [`write_staged`] each new file under a hidden name tied to the checkpoint's `tag`;
/// 2. write the commit file (with [`write_atomic`]), which names the checkpoint;
/// 3. [`settle_staged`] with that tag moves the staged files to their final names.
///
/// On restart, [`settle_staged`] with the tag the commit file names finishes step 3 of a run
/// killed during it and deletes the staged files of a checkpoint that was never committed, so
/// the files under their final names always belong to the committed checkpoint. A tag must be
/// unique per checkpoint content and must not contain a dot.
pub fn write_staged(dir: &Path, name: &str, tag: &str, bytes: &[u8]) -> std::io::Result<()> {
    debug_assert!(!tag.contains('.'), "{tag}");
    write_atomic(&dir.join(format!(".{name}.{tag}.staged")), bytes)
}

/// See [`write_staged`]: rename the files staged under `committed` to their final names and
/// delete every other staged file.
pub fn settle_staged(dir: &Path, committed: Option<&str>) -> std::io::Result<()> {
    let mut changed = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((file, tag)) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".staged"))
            .and_then(|n| n.rsplit_once('.'))
        else {
            continue;
        };
        if Some(tag) == committed && !file.is_empty() {
            std::fs::rename(entry.path(), dir.join(file))?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
        changed = true;
    }
    if changed && let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temporary files left behind: {names:?}");
    }

    #[test]
    fn staged_files_land_only_with_their_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("a.bin"), b"a1").unwrap();
        // A checkpoint killed before its commit: its staged files go, the old files stay.
        write_staged(&dir, "a.bin", "s2", b"a2").unwrap();
        write_staged(&dir, "b.bin", "s2", b"b2").unwrap();
        settle_staged(&dir, Some("s1")).unwrap();
        assert_eq!(std::fs::read(dir.join("a.bin")).unwrap(), b"a1");
        assert!(!dir.join("b.bin").exists());
        // Killed after its commit, before the renames: they are finished.
        write_staged(&dir, "a.bin", "s2", b"a2").unwrap();
        write_staged(&dir, "b.bin", "s2", b"b2").unwrap();
        settle_staged(&dir, Some("s2")).unwrap();
        assert_eq!(std::fs::read(dir.join("a.bin")).unwrap(), b"a2");
        assert_eq!(std::fs::read(dir.join("b.bin")).unwrap(), b"b2");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
