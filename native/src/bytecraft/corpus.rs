//! Training files for ByteCraft models: every SWF under the given directories, uncompressed to
//! `FWS`, each with several prompts.
//!
//! Files from `gamegen corpus synth` carry their prompts in a `<name>.json` beside them (the
//! structured prompt and its paraphrases). Other files (e.g. Ruffle's test suite) get prompts
//! made from what the header says: kind, frame rate, stage size, size in KB, and a title from
//! the file's name. The paper generated several prompts per file to fight overfitting; so do
//! we.

use std::path::{Path, PathBuf};

use gamegen_core::bytecraft::prompts::{Kind, StructuredPrompt};
use gamegen_core::swf::fws::to_fws;
use gamegen_core::swf::header;

use crate::swf_batch::expand_paths;

/// One training file.
#[derive(Clone, Debug)]
pub struct TrainingFile {
    pub path: PathBuf,
    /// The file as uncompressed `FWS`.
    pub fws: Vec<u8>,
    /// User messages; at least one.
    pub prompts: Vec<String>,
}

/// What loading skipped, so a run can say so.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CorpusStats {
    pub found: usize,
    pub kept: usize,
    /// Files whose header fails or whose body does not decompress.
    pub unreadable: usize,
    /// Files larger than the size limit once uncompressed.
    pub too_large: usize,
    pub bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot list {0}")]
    List(String, #[source] std::io::Error),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a prompt record ({why})")]
    Prompt { path: PathBuf, why: String },
    #[error("no usable SWF files under {0}")]
    Empty(String),
}

#[derive(serde::Deserialize)]
struct SynthRecord {
    prompt: String,
    #[serde(default)]
    paraphrases: Vec<String>,
}

/// Load every SWF under `dirs` whose `FWS` form has at most `max_bytes` bytes.
pub fn load(
    dirs: &[PathBuf],
    max_bytes: usize,
) -> Result<(Vec<TrainingFile>, CorpusStats), CorpusError> {
    let label = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let paths = expand_paths(dirs).map_err(|e| CorpusError::List(label.clone(), e))?;
    let mut stats = CorpusStats {
        found: paths.len(),
        ..Default::default()
    };
    let mut files = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path).map_err(|source| CorpusError::Read {
            path: path.clone(),
            source,
        })?;
        let Ok(fws) = to_fws(&bytes, 64 << 20) else {
            stats.unreadable += 1;
            continue;
        };
        if fws.len() > max_bytes {
            stats.too_large += 1;
            continue;
        }
        let prompts = match read_synth_prompts(&path)? {
            Some(p) => p,
            None => header_prompts(&path, &fws),
        };
        stats.kept += 1;
        stats.bytes += fws.len();
        files.push(TrainingFile { path, fws, prompts });
    }
    if files.is_empty() {
        return Err(CorpusError::Empty(label));
    }
    Ok((files, stats))
}

fn read_synth_prompts(swf: &Path) -> Result<Option<Vec<String>>, CorpusError> {
    let json = swf.with_extension("json");
    if !json.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&json).map_err(|source| CorpusError::Read {
        path: json.clone(),
        source,
    })?;
    let record: SynthRecord = serde_json::from_str(&text).map_err(|e| CorpusError::Prompt {
        path: json.clone(),
        why: e.to_string(),
    })?;
    let mut prompts = vec![record.prompt];
    prompts.extend(record.paraphrases);
    Ok(Some(prompts))
}

/// A title from the file's name: Ruffle's tests are `.../<test name>/test.swf`.
fn title_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("untitled");
    let name = if stem == "test" || stem == "output" {
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .unwrap_or(stem)
    } else {
        stem
    };
    name.replace(['_', '-'], " ")
}

/// A structured prompt and a free-text one from the header of an `FWS` file.
pub fn header_prompts(path: &Path, fws: &[u8]) -> Vec<String> {
    let title = title_of(path);
    let Ok(h) = header::parse(fws, fws.len()) else {
        return vec![format!("Please generate a Flash file titled \"{title}\".")];
    };
    let (w, hgt) = (
        ((h.stage[1] - h.stage[0]) / 20).max(0) as u32,
        ((h.stage[3] - h.stage[2]) / 20).max(0) as u32,
    );
    let fps = h.frame_rate();
    let kb = fws.len().div_ceil(1024) as u32;
    let structured = StructuredPrompt {
        kind: Kind::Animation,
        frame_rate: Some(fps),
        resolution: Some((w, hgt)),
        languages: vec!["English".into()],
        title: Some(title.clone()),
        release_date: None,
        size_kb: Some(kb),
        description: None,
    }
    .render();
    let free = format!(
        "A {w}x{hgt} Flash file called \"{title}\", {fps} frames per second, {} frames.",
        h.num_frames
    );
    vec![structured, free]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_test_directory() {
        assert_eq!(
            title_of(Path::new("swfs/avm1/goto_frame_2/test.swf")),
            "goto frame 2"
        );
        assert_eq!(title_of(Path::new("x/blue-box.swf")), "blue box");
    }
}
