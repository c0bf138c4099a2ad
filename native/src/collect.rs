//! `gamegen collect`: PlayGen's diverse collection (Alg. 1) over worker threads, into episode
//! shards on disk.
//!
//! - Deterministic: episode `i` is a pure function of (config, i) ([`play_episode`]), so the
//!   bytes do not depend on `--jobs` or on the order the workers finish in.
//! - Atomic: each shard is written to a hidden temporary name and renamed into place, so a shard
//!   under its final name is always complete (a killed run leaves at most temporary files, which
//!   the next run deletes).
//! - Resumable: a rerun with the same arguments keeps every valid shard and makes only the
//!   missing ones; `collect.json` records the config so a rerun with other arguments is refused
//!   instead of mixing two datasets. The manifest is written last.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use gamegen_core::data::collect::{
    CollectConfig, MANIFEST_NAME, Manifest, play_episode, shard_name,
};
use gamegen_core::data::shard;
use gamegen_core::data::stats::EpisodeStats;
use serde::Serialize;

/// The run's config file in the output directory.
pub const RUN_CONFIG_NAME: &str = "collect.json";

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{dir} holds a different collection run ({what} differs); use another --out or delete it"
    )]
    DifferentRun { dir: String, what: String },
    #[error("{path}: unreadable run config: {why}")]
    BadRunConfig { path: String, why: String },
    #[error(transparent)]
    Game(#[from] gamegen_core::games::GameError),
    #[error("--episodes must be at least 1 and --frames at least 1")]
    Empty,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CollectError + '_ {
    move |source| CollectError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CollectReport {
    pub out: String,
    pub episodes: u64,
    pub written: u64,
    pub kept: u64,
    pub frames: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Frames generated, compressed and written per second (kept shards not counted).
    pub frames_per_sec: f64,
}

/// Write `bytes` under `path` via a temporary sibling and a rename. No fsync: the rename is
/// atomic against a killed process (what resuming must survive); syncing every shard would cost
/// most of the throughput.
fn write_atomic_nosync(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = crate::fsutil::temp_sibling(path);
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Check (or record) that `out` belongs to this run.
fn claim_dir(out: &Path, cfg: &CollectConfig) -> Result<(), CollectError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let p = out.join(RUN_CONFIG_NAME);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let old: CollectConfig =
                serde_json::from_slice(&bytes).map_err(|e| CollectError::BadRunConfig {
                    path: p.display().to_string(),
                    why: e.to_string(),
                })?;
            if &old != cfg {
                let a = serde_json::to_value(&old).unwrap_or_default();
                let b = serde_json::to_value(cfg).unwrap_or_default();
                let what = match (a.as_object(), b.as_object()) {
                    (Some(a), Some(b)) => a
                        .keys()
                        .filter(|k| a.get(*k) != b.get(*k))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => "config".into(),
                };
                return Err(CollectError::DifferentRun {
                    dir: out.display().to_string(),
                    what,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = serde_json::to_vec_pretty(cfg).unwrap_or_default();
            crate::fsutil::write_atomic(&p, &json).map_err(io(&p))
        }
        Err(e) => Err(io(&p)(e)),
    }
}

/// Delete temporary files a killed run left behind.
fn remove_stale_temps(out: &Path) -> Result<(), CollectError> {
    crate::fsutil::remove_stale_temps(out).map_err(io(out))
}

/// An existing shard's stats if it is a complete, valid shard of this run's episode `index`.
fn existing(path: &Path, cfg: &CollectConfig, index: u64) -> Option<EpisodeStats> {
    let bytes = std::fs::read(path).ok()?;
    let ep = shard::decode(&bytes).ok()?;
    (ep.game == cfg.game && ep.seed == cfg.seed && ep.index == index)
        .then(|| EpisodeStats::from_episode(&ep, shard_name(index), bytes.len() as u64))
}

/// Run (or finish) a collection into `out` with `jobs` worker threads.
pub fn collect(
    cfg: &CollectConfig,
    out: &Path,
    jobs: usize,
    progress: bool,
) -> Result<CollectReport, CollectError> {
    if cfg.episodes == 0 || cfg.frames == 0 {
        return Err(CollectError::Empty);
    }
    let preset = cfg.preset()?;
    claim_dir(out, cfg)?;
    remove_stale_temps(out)?;
    let bar = crate::progress::bar(cfg.episodes, &format!("collect {}", cfg.game));
    if !progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    let new_frames = AtomicU64::new(0);
    let results: Mutex<Vec<EpisodeStats>> = Mutex::new(Vec::with_capacity(cfg.episodes as usize));
    let first_error: Mutex<Option<CollectError>> = Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cfg.episodes {
                        break;
                    }
                    let path = out.join(shard_name(i));
                    let stats = match existing(&path, cfg, i) {
                        Some(st) => Ok(st),
                        None => play_episode(cfg, preset.as_ref(), i)
                            .map_err(CollectError::from)
                            .and_then(|ep| {
                                let bytes = shard::encode(&ep, cfg.level);
                                write_atomic_nosync(&path, &bytes).map_err(io(&path))?;
                                written.fetch_add(1, Ordering::Relaxed);
                                new_frames.fetch_add(ep.len() as u64, Ordering::Relaxed);
                                Ok(EpisodeStats::from_episode(
                                    &ep,
                                    shard_name(i),
                                    bytes.len() as u64,
                                ))
                            }),
                    };
                    match stats {
                        Ok(st) => results.lock().unwrap_or_else(|e| e.into_inner()).push(st),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                        }
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    let episodes = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let manifest = Manifest::new(cfg.clone(), episodes);
    let mpath = out.join(MANIFEST_NAME);
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    crate::fsutil::write_atomic(&mpath, &json).map_err(io(&mpath))?;
    let written = written.into_inner();
    let new_frames = new_frames.into_inner();
    Ok(CollectReport {
        out: out.display().to_string(),
        episodes: cfg.episodes,
        written,
        kept: cfg.episodes - written,
        frames: manifest.total_frames,
        bytes: manifest.total_bytes,
        seconds,
        frames_per_sec: new_frames as f64 / seconds.max(1e-9),
    })
}

/// Read a collection's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CollectError> {
    let p: PathBuf = dir.join(MANIFEST_NAME);
    let bytes = std::fs::read(&p).map_err(io(&p))?;
    serde_json::from_slice(&bytes).map_err(|e| CollectError::BadRunConfig {
        path: p.display().to_string(),
        why: e.to_string(),
    })
}
