//! Helpers shared by the CLI tests: temporary directories, and for the kill-and-restart tests
//! (`crash_safety.rs`, `world_crash_safety.rs`) a kill-point generator and directory snapshots.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
}

/// A path inside a fresh temporary directory, not created yet (the command under test creates
/// it); the directory and everything in it are removed when this drops.
pub struct TmpPath {
    _dir: TempDir,
    path: PathBuf,
}

impl TmpPath {
    /// The same temporary directory (kept alive), pointing at `path` inside it.
    pub fn with_path(self, path: PathBuf) -> TmpPath {
        TmpPath {
            _dir: self._dir,
            path,
        }
    }
}

impl Deref for TmpPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TmpPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<OsStr> for TmpPath {
    fn as_ref(&self) -> &OsStr {
        self.path.as_os_str()
    }
}

/// A not-yet-existing directory `name` in a fresh temporary directory.
pub fn tmp(name: &str) -> TmpPath {
    let dir = temp_dir(name);
    let path = dir.path().join(name);
    TmpPath { _dir: dir, path }
}

/// A fresh, empty temporary directory (removed when dropped), named after the test's `name`.
pub fn temp_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gamegen-{name}-"))
        .tempdir()
        .expect("a temporary directory")
}

/// A small deterministic generator for the kill points (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Every file of `dir`, sorted by name, with its bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}
