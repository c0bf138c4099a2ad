//! `gamegen similarity`: the ByteCraft paper's memorisation measures over generated files:
//! Jaro-Winkler "max similarity" to a reference set (e.g. the training files) and "truth
//! similarity" to the file each prompt was written for. Exact values (see
//! `core/src/swf/similarity.rs` for why the search is both exact and fast).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use gamegen_core::bytecraft::manifest::Truth;
use gamegen_core::swf::fws::to_fws;
use gamegen_core::swf::similarity::{Profile, jaro_winkler, most_similar};
use gamegen_native::bytecraft::generate::prompt_ids_beside;
use gamegen_native::swf_batch::expand_paths;
use serde::Serialize;

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Files are compared uncompressed (FWS); a file whose body does not decompress is compared as its
raw bytes. --truth is a JSON Lines manifest: {\"prompt_id\": ID, \"truth\": PATH} pairs a prompt
with its true file (generated files are matched through results.jsonl in --generated),
{\"generated\": NAME, \"truth\": PATH} pairs one file directly, and a `gamegen corpus synth`
manifest.jsonl works as it is (its files were generated from --prompts manifest.jsonl).

Prints one JSON object per generated file and a summary line (means) on stderr.

Examples:
  gamegen similarity --generated out/ --reference data/synth
  gamegen similarity --generated out/ --reference data/synth --truth truth.jsonl --jobs 2")]
pub struct Args {
    /// Generated SWF files or directories.
    #[arg(long, required = true)]
    generated: Vec<PathBuf>,
    /// Reference SWF files or directories (e.g. the training set).
    #[arg(long, required = true)]
    reference: Vec<PathBuf>,
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Score every reference exactly (no bound-ordered search): the slow peer the search is
    /// benchmarked against; same results.
    #[arg(long)]
    exhaustive: bool,
}

#[derive(Serialize)]
struct Line {
    file: String,
    bytes: usize,
    max_similarity: Option<f64>,
    nearest: Option<String>,
    exact_comparisons: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    truth_similarity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truth: Option<String>,
}

fn profile(path: &Path) -> anyhow::Result<Profile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Profile::new(to_fws(&bytes, 256 << 20).unwrap_or(bytes)))
}

/// Generated file -> its true file, from the manifest (and results.jsonl for prompt ids).
fn truth_map(manifest: &Path, generated: &[PathBuf]) -> anyhow::Result<HashMap<PathBuf, PathBuf>> {
    let mut by_prompt: HashMap<String, PathBuf> = HashMap::new();
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    let dir = manifest.parent().unwrap_or(Path::new("."));
    for t in super::manifest::read_truths(manifest)? {
        match t {
            Truth::Beside { prompt_id } => {
                let file = dir.join(format!("{prompt_id}.swf"));
                by_prompt.insert(prompt_id, file);
            }
            Truth::Prompt { prompt_id, truth } => {
                by_prompt.insert(prompt_id, truth.into());
            }
            Truth::File { generated, truth } => {
                by_name.insert(generated, truth.into());
            }
        }
    }
    // results.jsonl beside generated files: file -> prompt id.
    let prompt_of = prompt_ids_beside(generated);
    let mut out = HashMap::new();
    for g in generated {
        let name = g.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let truth = by_name
            .get(name)
            .or_else(|| by_name.get(&g.display().to_string()))
            .or_else(|| prompt_of.get(g).and_then(|id| by_prompt.get(id)));
        if let Some(t) = truth {
            out.insert(g.clone(), t.clone());
        }
    }
    Ok(out)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let jobs = super::worker_count(a.jobs)?;
    let generated = expand_paths(&a.generated).context("cannot list --generated")?;
    let reference_paths = expand_paths(&a.reference).context("cannot list --reference")?;
    if generated.is_empty() {
        bail!("no SWF files under --generated");
    }
    if reference_paths.is_empty() {
        bail!("no SWF files under --reference");
    }
    let truth = match &a.truth {
        Some(m) => truth_map(m, &generated)?,
        None => HashMap::new(),
    };
    let start = Instant::now();
    let references = reference_paths
        .iter()
        .map(|p| profile(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<anyhow::Result<Line>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs.min(generated.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = generated.get(i) else { break };
                        mine.push((
                            i,
                            score(path, &references, &reference_paths, &truth, a.exhaustive),
                        ));
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<(usize, anyhow::Result<Line>)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let (mut max_sum, mut truth_sum, mut truth_n, mut exact) = (0.0, 0.0, 0usize, 0usize);
    for r in results {
        let line = r?;
        max_sum += line.max_similarity.unwrap_or(0.0);
        if let Some(t) = line.truth_similarity {
            truth_sum += t;
            truth_n += 1;
        }
        exact += line.exact_comparisons;
        println!("{}", serde_json::to_string(&line)?);
    }
    let n = generated.len();
    let summary = serde_json::json!({
        "files": n,
        "references": references.len(),
        "mean_max_similarity": max_sum / n as f64,
        "mean_truth_similarity": (truth_n > 0).then(|| truth_sum / truth_n as f64),
        "with_truth": truth_n,
        "exact_comparisons": exact,
        "seconds": start.elapsed().as_secs_f64(),
    });
    eprintln!("{summary}");
    Ok(())
}

fn score(
    path: &Path,
    references: &[Profile],
    names: &[PathBuf],
    truth: &HashMap<PathBuf, PathBuf>,
    exhaustive: bool,
) -> anyhow::Result<Line> {
    let query = profile(path)?;
    let best = if exhaustive {
        references
            .iter()
            .enumerate()
            .map(|(i, r)| (i, jaro_winkler(&query.bytes, &r.bytes)))
            .fold(None, |best: Option<(usize, f64)>, (i, s)| match best {
                Some((_, bs)) if bs >= s => best,
                _ => Some((i, s)),
            })
            .map(|(i, s)| (i, s, references.len()))
    } else {
        most_similar(&query, references)
    };
    let (truth_similarity, truth_path) = match truth.get(path) {
        Some(t) => {
            let tp = profile(t)?;
            (
                Some(jaro_winkler(&query.bytes, &tp.bytes)),
                Some(t.display().to_string()),
            )
        }
        None => (None, None),
    };
    Ok(Line {
        file: path.display().to_string(),
        bytes: query.bytes.len(),
        max_similarity: best.map(|b| b.1),
        nearest: best.map(|b| names[b.0].display().to_string()),
        exact_comparisons: best.map_or(0, |b| b.2),
        truth_similarity,
        truth: truth_path,
    })
}
