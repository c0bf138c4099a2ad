//! Writing a procedural SWF corpus to disk: `{index:06}.swf` + `{index:06}.json` (the record:
//! attributes, structured prompt, paraphrases) per file and a `manifest.jsonl` of all records.
//! Every write is atomic, and files already present are kept, so an interrupted run resumes.

use crate::fsutil::write_atomic;
use gamegen_core::swf::synth::{self, Record};
use std::path::Path;

#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub written: u64,
    pub skipped: u64,
    pub bytes: u64,
}

/// Synthesize files `0..count` of corpus `seed` into `out`, calling `progress` after each.
pub fn write_corpus(
    out: &Path,
    seed: u64,
    count: u64,
    mut progress: impl FnMut(u64),
) -> std::io::Result<Summary> {
    std::fs::create_dir_all(out)?;
    let mut summary = Summary::default();
    let mut manifest = String::new();
    for index in 0..count {
        // Regenerating is cheap and deterministic, so the manifest is always complete even
        // when most files were already on disk.
        let s = synth::synthesize(seed, index);
        let swf_path = out.join(format!("{}.swf", s.record.name));
        let json_path = out.join(format!("{}.json", s.record.name));
        let line = serde_json::to_string(&s.record).map_err(std::io::Error::other)?;
        if swf_path.is_file() && json_path.is_file() {
            summary.skipped += 1;
        } else {
            write_atomic(&swf_path, &s.bytes)?;
            let pretty = serde_json::to_string_pretty(&s.record).map_err(std::io::Error::other)?;
            write_atomic(&json_path, pretty.as_bytes())?;
            summary.written += 1;
        }
        summary.bytes += s.bytes.len() as u64;
        manifest.push_str(&line);
        manifest.push('\n');
        progress(index + 1);
    }
    write_atomic(&out.join("manifest.jsonl"), manifest.as_bytes())?;
    Ok(summary)
}

/// Read a record written by [`write_corpus`].
pub fn read_record(path: &Path) -> std::io::Result<Record> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}
