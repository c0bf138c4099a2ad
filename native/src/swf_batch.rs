//! Validating many SWF files at once: path expansion, a pool of worker threads, results handed
//! back in input order (so output is deterministic whatever `--jobs` is), and a last line of
//! defence against panics in the parser.

use gamegen_core::swf::{Options, Report, Verdict};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// One file's outcome. `report` is absent only when the file could not be read or the validator
/// panicked (then `error` says which); a broken SWF is a report, not an error.
#[derive(Debug, Serialize)]
pub struct FileResult {
    pub path: String,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

impl FileResult {
    pub fn verdict(&self) -> Option<Verdict> {
        self.report.as_ref().map(|r| r.verdict)
    }
}

/// Expand the command-line paths: files are taken as given (whatever their name), directories
/// are walked recursively for `*.swf` (any case), sorted so runs are reproducible.
pub fn expand_paths(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk_dir(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk_dir(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("swf"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Validate bytes, turning a panic inside the parser into an error string instead of a crash.
pub fn validate_guarded(bytes: &[u8], opts: &Options) -> Result<Report, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gamegen_core::swf::validate_with(bytes, opts)
    }))
    .map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("validator panicked: {msg}")
    })
}

/// Read and validate one file.
pub fn validate_file(path: &Path, opts: &Options) -> FileResult {
    let shown = path.display().to_string();
    match std::fs::read(path) {
        Err(e) => FileResult {
            path: shown,
            bytes: 0,
            error: Some(format!("cannot read: {e}")),
            report: None,
        },
        Ok(bytes) => {
            let (report, error) = match validate_guarded(&bytes, opts) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e)),
            };
            FileResult {
                path: shown,
                bytes: bytes.len() as u64,
                error,
                report,
            }
        }
    }
}

/// Validate `paths` on `jobs` threads, calling `emit` on the main thread for each result in
/// input order.
pub fn validate_all(paths: &[PathBuf], jobs: usize, opts: &Options, emit: impl FnMut(FileResult)) {
    map_ordered(paths, jobs, |p| validate_file(p, opts), emit);
}

/// Run `work` over `items` on `jobs` threads, calling `emit` on the calling thread for each
/// result in input order (results that finish early wait for their turn).
pub fn map_ordered<I: Sync, T: Send>(
    items: &[I],
    jobs: usize,
    work: impl Fn(&I) -> T + Sync,
    mut emit: impl FnMut(T),
) {
    let jobs = jobs.max(1).min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    if tx.send((i, work(&items[i]))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
        let mut turn = 0;
        for (i, r) in rx {
            pending[i] = Some(r);
            while turn < pending.len() {
                match pending[turn].take() {
                    Some(r) => {
                        emit(r);
                        turn += 1;
                    }
                    None => break,
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_input_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut paths = Vec::new();
        for i in 0..20 {
            let p = dir.join(format!("f{i:02}.swf"));
            std::fs::write(&p, vec![b'X'; i]).unwrap();
            paths.push(p);
        }
        let mut seen = Vec::new();
        validate_all(&paths, 4, &Options::default(), |r| seen.push(r.path));
        let want: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(seen, want);
        let expanded = expand_paths(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(expanded, paths);
    }
}
