//! `gamegen generate`: prompts in, one `.swf` per sample plus `results.jsonl` out.
//!
//! Every sample has a seed derived from (run seed, prompt id, sample index), so re-running, or
//! splitting prompts across machines with a shard, gives the same files. Each `.swf` is written
//! atomically, then its line is appended to `results.jsonl`; on start the finished
//! (prompt id, sample) pairs of an existing `results.jsonl` are skipped, so a killed run resumes
//! where it stopped. A torn last line (kill during the append) is ignored and redone.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::Backend;
pub use gamegen_core::bytecraft::generate::sample_seed;
use gamegen_core::bytecraft::generate::{
    Batcher, Constraint, GenerationConfig, Job, QueueError, Sample, StopReason,
};
use gamegen_core::bytecraft::prompts::Prompt;
use gamegen_core::bytecraft::{InputError, Qwen2ForCausalLM};
use gamegen_core::swf::grammar::mask::SwfGrammar;
use gamegen_core::swf::grammar::patch::patch;
use serde::{Deserialize, Serialize};

use super::tokenizer::{TextTokenizer, TextTokenizerError};
use crate::fsutil::write_atomic;

pub const RESULTS_FILE: &str = "results.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tokenizer(#[from] TextTokenizerError),
    #[error("prompt `{id}`")]
    Input { id: String, source: InputError },
}

/// Which part of the prompt list this process handles: prompts whose index `% count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `"i/N"` with `i < N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}` is not of the form i/N"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{i}` is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= i < N"));
        }
        Ok(Self { index, count })
    }

    /// From a Slurm job array (`SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`) or a
    /// Kubernetes indexed job (`JOB_COMPLETION_INDEX`, with the count in `GAMEGEN_SHARDS`).
    pub fn from_env() -> Option<Result<Self, String>> {
        let get = |k: &str| std::env::var(k).ok();
        let (i, n) = match (get("SLURM_ARRAY_TASK_ID"), get("SLURM_ARRAY_TASK_COUNT")) {
            (Some(i), Some(n)) => (i, n),
            _ => (get("JOB_COMPLETION_INDEX")?, get("GAMEGEN_SHARDS")?),
        };
        Some(Self::parse(&format!("{i}/{n}")))
    }

    pub fn owns(&self, prompt_index: usize) -> bool {
        prompt_index % self.count == self.index
    }
}

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct JobConfig {
    pub out: PathBuf,
    pub samples_per_prompt: usize,
    pub seed: u64,
    /// Sequences in flight (the KV cache holds this many rows); a finished sample's row is
    /// refilled from the queue, across prompts.
    pub batch: usize,
    pub system_prompt: Option<String>,
    /// Sampling settings; `stop` and `allowed` are filled from the tokenizer (eos byte token,
    /// byte tokens only) unless `allow_text` is set.
    pub generation: GenerationConfig,
    pub allow_text: bool,
    pub shard: Shard,
    /// Decode under the SWF grammar of the synthetic profile (`gamegen_core::swf::grammar`):
    /// every byte token keeps the file parseable and finishable within the token budget, End
    /// only once a visible shape was shown; finished files get their lengths and frame counts
    /// patched from their content.
    pub constrained: bool,
}

/// One line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    pub prompt_id: String,
    pub sample: usize,
    pub seed: u64,
    pub file: String,
    pub tokens: usize,
    pub bytes: usize,
    pub stop: StopReason,
    /// The eos byte closed the file (the reference keeps only such files).
    pub complete: bool,
    /// `valid` / `damaged` / `broken` from `gamegen validate`'s checks, or `undecodable`.
    pub verdict: String,
    /// Valid as written (`gamegen validate`'s strict reading: nothing forgiven). Absent in
    /// lines written before it existed, read as false.
    #[serde(default)]
    pub valid_as_written: bool,
    /// Constrained decoding: the probability mass the grammar masked, mean per drawn token.
    #[serde(default)]
    pub masked_mass: f64,
    /// Constrained decoding: the finished file's lengths and frame counts were patched.
    #[serde(default)]
    pub patched: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub generated: usize,
    /// Generated samples whose verdict is `valid`.
    pub valid: usize,
    /// Generated samples that are valid as written.
    pub valid_as_written: usize,
    pub skipped: usize,
    pub tokens: usize,
    pub seconds: f64,
}

impl Summary {
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// A prompt id made safe for a file name.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The file name of sample `k` of prompt `id`.
fn sample_file(id: &str, k: usize) -> String {
    format!("{}_{k:03}.swf", file_stem(id))
}

/// (prompt id, sample) pairs already in `results.jsonl`.
pub fn finished(out: &Path) -> HashSet<(String, usize)> {
    std::fs::read_to_string(out.join(RESULTS_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<ResultLine>(l).ok())
        .map(|r| (r.prompt_id, r.sample))
        .collect()
}

/// Delete the temporary files (`write_atomic`'s `.NAME.PID.tmp`) that a killed run left for the
/// samples of this shard's prompts. Temporaries of other names are left alone: another shard may
/// be writing into the same directory.
fn remove_stale_temps(out: &Path, prompts: &[Prompt], cfg: &JobConfig) -> std::io::Result<()> {
    let ours: HashSet<String> = prompts
        .iter()
        .enumerate()
        .filter(|(i, _)| cfg.shard.owns(*i))
        .flat_map(|(_, p)| (0..cfg.samples_per_prompt).map(move |k| sample_file(&p.id, k)))
        .collect();
    for entry in std::fs::read_dir(out)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .map(|(file, _pid)| file);
        if target.is_some_and(|f| ours.contains(f)) {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The prompt id of each generated file, from the `results.jsonl` of the directories the files
/// are in. Lines are read loosely (only `file` and `prompt_id`), and a directory without the file
/// or an unreadable line adds nothing: callers fall back to matching by file name.
pub fn prompt_ids_beside(files: &[PathBuf]) -> HashMap<PathBuf, String> {
    let mut dirs: Vec<&Path> = files.iter().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    let mut out = HashMap::new();
    for dir in dirs {
        let Ok(text) = std::fs::read_to_string(dir.join(RESULTS_FILE)) else {
            continue;
        };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(f), Some(id)) = (v["file"].as_str(), v["prompt_id"].as_str()) {
                out.insert(dir.join(f), id.to_string());
            }
        }
    }
    out
}

/// Generate every missing sample of this shard's prompts.
pub fn run<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    tokenizer: &TextTokenizer,
    prompts: &[Prompt],
    cfg: &JobConfig,
    device: &B::Device,
    mut on_tokens: impl FnMut(usize),
) -> Result<Summary, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Io { path, source }
    };
    std::fs::create_dir_all(&cfg.out).map_err(io(&cfg.out))?;
    let mut generation = cfg.generation.clone();
    if !cfg.allow_text {
        generation.allowed = Some(tokenizer.bytes.byte_ids().to_vec());
        let eos = tokenizer
            .bytes
            .eos_id()
            .map_err(|e| TextTokenizerError::Encode(e.to_string()))?;
        if !generation.stop.contains(&eos) {
            generation.stop.push(eos);
        }
    }
    let grammar = cfg
        .constrained
        .then(|| SwfGrammar::new(&tokenizer.bytes, model.vocab_size));
    let constraint = grammar.as_ref().map(|g| g as &dyn Constraint);
    let results_path = cfg.out.join(RESULTS_FILE);
    crate::fsutil::drop_torn_last_line(&results_path).map_err(io(&results_path))?;
    remove_stale_temps(&cfg.out, prompts, cfg).map_err(io(&cfg.out))?;
    let done = finished(&cfg.out);
    let mut results = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results_path)
        .map_err(io(&results_path))?;
    let start = Instant::now();
    let mut summary = Summary::default();
    // The queue: every missing (prompt, sample) of this shard, prompt by prompt.
    let mut owned: Vec<&Prompt> = Vec::new();
    let mut encoded: Vec<Vec<u32>> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut samples: Vec<usize> = Vec::new();
    for (index, prompt) in prompts.iter().enumerate() {
        if !cfg.shard.owns(index) {
            continue;
        }
        let todo: Vec<usize> = (0..cfg.samples_per_prompt)
            .filter(|&k| !done.contains(&(prompt.id.clone(), k)))
            .collect();
        summary.skipped += cfg.samples_per_prompt - todo.len();
        if todo.is_empty() {
            continue;
        }
        let ids =
            tokenizer.encode(&tokenizer.chat_text(&prompt.text, cfg.system_prompt.as_deref())?)?;
        for &k in &todo {
            jobs.push(Job {
                prompt: owned.len(),
                seed: sample_seed(cfg.seed, &prompt.id, k),
            });
            samples.push(k);
        }
        owned.push(prompt);
        encoded.push(ids);
    }
    let batcher = Batcher {
        model,
        cfg: &generation,
        constraint,
        slots: cfg.batch.max(1),
        device,
    };
    let mut save = |j: usize, sample: Sample| -> Result<(), GenerateError> {
        let prompt = owned[jobs[j].prompt];
        let k = samples[j];
        let file = sample_file(&prompt.id, k);
        let mut patched = false;
        let (bytes, complete, verdict, valid_as_written) =
            match tokenizer.bytes.decode(&sample.tokens) {
                Ok(mut f) => {
                    if cfg.constrained
                        && f.complete
                        && let Ok(p) = patch(&f.bytes)
                    {
                        f.bytes = p;
                        patched = true;
                    }
                    let report = gamegen_core::swf::validate(&f.bytes);
                    let verdict = report.verdict.as_str().to_string();
                    (f.bytes, f.complete, verdict, report.valid_as_written)
                }
                Err(_) => (Vec::new(), false, "undecodable".to_string(), false),
            };
        let path = cfg.out.join(&file);
        write_atomic(&path, &bytes).map_err(io(&path))?;
        let line = ResultLine {
            prompt_id: prompt.id.clone(),
            sample: k,
            seed: sample.seed,
            file,
            tokens: sample.tokens.len(),
            bytes: bytes.len(),
            stop: sample.stop,
            complete,
            valid_as_written,
            verdict,
            masked_mass: sample.masked_mass / sample.tokens.len().max(1) as f64,
            patched,
        };
        summary.valid += usize::from(line.verdict == "valid");
        summary.valid_as_written += usize::from(valid_as_written);
        let text = serde_json::to_string(&line).expect("result line serializes");
        writeln!(results, "{text}")
            .and_then(|()| results.sync_data())
            .map_err(io(&results_path))?;
        summary.generated += 1;
        summary.tokens += sample.tokens.len();
        Ok(())
    };
    batcher
        .run(&encoded, &jobs, &mut on_tokens, &mut save)
        .map_err(|e| match e {
            QueueError::Input { index, source } => GenerateError::Input {
                id: owned[index].id.clone(),
                source,
            },
            QueueError::Sink(e) => e,
        })?;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_seeds_are_stable() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert!(Shard::parse("3/3").is_err() && Shard::parse("x").is_err());
        let s = Shard::parse("1/3").unwrap();
        assert_eq!(
            (0..7).filter(|&i| s.owns(i)).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert_eq!(sample_seed(0, "p0", 1), sample_seed(0, "p0", 1));
        assert_ne!(sample_seed(0, "p0", 1), sample_seed(0, "p0", 2));
        assert_ne!(sample_seed(0, "p0", 1), sample_seed(0, "p1", 1));
        assert_eq!(file_stem("a/b c"), "a_b_c");
    }
}
