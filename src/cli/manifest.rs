//! Prompt files and manifests read from disk for `generate`, `similarity` and
//! `validate --prompt-check`; the records are parsed by `gamegen_core::bytecraft::manifest`.

use anyhow::Context;
use gamegen_core::bytecraft::manifest::{
    ManifestError, PromptFormat, PromptRecord, Truth, parse_prompts, parse_truths,
};
use std::path::Path;

/// The prompts of a `Ŧ`-separated or JSON Lines prompt file (see [`PromptFormat::of`]).
pub fn read_prompts(path: &Path) -> anyhow::Result<Vec<PromptRecord>> {
    let text = read(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    parse_prompts(&text, PromptFormat::of(&name, &text)).map_err(|e| in_file(path, e))
}

/// The pairings of a `similarity --truth` manifest.
pub fn read_truths(path: &Path) -> anyhow::Result<Vec<Truth>> {
    parse_truths(&read(path)?).map_err(|e| in_file(path, e))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `<file> line 2: not JSON: ...`: one line, the file first.
fn in_file(path: &Path, e: ManifestError) -> anyhow::Error {
    anyhow::anyhow!("{} {e}", path.display())
}
