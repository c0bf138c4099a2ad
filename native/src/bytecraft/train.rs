//! `gamegen bytecraft train`: a ByteCraft model from scratch or from a checkpoint, on SWF
//! files and their prompts.
//!
//! The output directory is always a Hugging Face checkpoint (`config.json`,
//! `model.safetensors`, the tokenizer files), so `gamegen generate` and transformers load it
//! at any point of a run. `train-state.json` is written last at each checkpoint: a run killed
//! while writing resumes from the step it names (weights are never older than it, nor torn:
//! every file is written to a temporary sibling and renamed). The optimiser state (AdamW
//! moments, Muon momentum, step counts) goes to `optimizer-state.bin` just before
//! `train-state.json`, and the data order is a pure function of (seed, step), so a resumed run
//! continues exactly as an uninterrupted one (tested bit for bit).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use gamegen_core::bytecraft::Qwen2ForCausalLM;
use gamegen_core::bytecraft::config::Qwen2Config;
use gamegen_core::bytecraft::export::{
    GenerationTokens, export_tensors, generation_config_json, hf_config_json,
};
use gamegen_core::bytecraft::hf_layout::{
    CONFIG_FILE, GENERATION_CONFIG_FILE, SINGLE_WEIGHTS_FILE,
};
use gamegen_core::bytecraft::init::random_weights;
use gamegen_core::bytecraft::prompts::chat_text;
use gamegen_core::bytecraft::sampler::SamplingConfig;
use gamegen_core::bytecraft::train::{
    Example, LmBatch, LmTrainConfig, LmTrainer, OptimizerKind, length_buckets, make_batch,
};
use gamegen_core::rng::Rng;
use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::corpus::{self, CorpusStats};
use super::tokenizer::{TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, TextTokenizer};
use super::tokenizer_train::MERGES_FILE;
use crate::fsutil::write_atomic;
use crate::plot::{HELD_OUT_RGB, Panel, Series, TRAIN_RGB, write_png};
use crate::replicas::Threads;

pub const STATE_FILE: &str = "train-state.json";
pub const LOG_FILE: &str = "train-log.jsonl";
pub const LOSS_PNG: &str = "loss.png";
pub const OPTIMIZER_FILE: &str = "optimizer-state.bin";

/// Length-sorted micro-batches each replica runs per drawn micro-batch (`--batch`): two halves
/// of similar lengths pad far less than one random batch (`length_buckets`).
const BUCKETS_PER_MICRO_BATCH: usize = 2;

/// The number of devices the run in `out` was trained with, when it holds one (so `--resume`
/// without `--devices` splits each step as before and continues bit-exactly).
pub fn recorded_devices(out: &Path) -> Option<usize> {
    read_state(out).ok().flatten().map(|s| s.options.devices)
}

/// The shape of a model trained from scratch (the vocabulary comes from the tokenizer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    pub tied: bool,
    pub rope_theta: f64,
    pub max_positions: usize,
}

impl ModelShape {
    pub fn config(&self, vocab_size: usize) -> Result<Qwen2Config, anyhow::Error> {
        let json = serde_json::json!({
            "vocab_size": vocab_size,
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tied,
            "max_position_embeddings": self.max_positions,
            "rms_norm_eps": 1e-6,
        });
        Qwen2Config::from_json(&json.to_string()).context("invalid model shape")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub corpus: Vec<PathBuf>,
    /// Tokenizer directory (from `bytecraft tokenizer train`); ignored with `from`, whose own
    /// tokenizer is used.
    pub tokenizer: Option<PathBuf>,
    /// Start from this Hugging Face checkpoint instead of random weights.
    pub from: Option<PathBuf>,
    pub shape: ModelShape,
    pub out: PathBuf,
    /// Target optimiser steps, counted over all runs.
    pub steps: usize,
    /// Sequences per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimiser step.
    pub accum: usize,
    /// Context lengths in order; the run spends an equal share of its steps at each
    /// (progressive context, as the paper's 4K -> 8K -> 32K).
    pub contexts: Vec<usize>,
    pub learning_rate: f64,
    pub warmup: usize,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub eval_every: usize,
    /// Files held out for the validation loss.
    pub val_files: usize,
    pub max_file_bytes: usize,
    /// End this run (checkpointed) after this many steps, to be resumed later: for jobs
    /// with a wall-time limit. The schedule still spans `steps`.
    #[serde(default)]
    pub stop_after: Option<usize>,
    /// AdamW everywhere, or Muon for the decoder layers' matrices.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Devices a step's micro-batches are spread over (data parallel).
    #[serde(default = "one")]
    pub devices: usize,
}

fn one() -> usize {
    1
}

impl TrainOptions {
    /// The context length in force at `step`.
    pub fn context_at(&self, step: usize) -> usize {
        let n = self.contexts.len().max(1);
        let phase = (step * n / self.steps.max(1)).min(n - 1);
        self.contexts[phase]
    }
}

/// `train-state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub wall_seconds: f64,
    pub options: TrainOptions,
    pub corpus: CorpusStats,
    pub train_files: usize,
    pub held_out: Vec<String>,
    pub last_val_loss: Option<f64>,
    pub parameters: u128,
    /// The optimiser state saved with this checkpoint; a checkpoint without one resumes with
    /// fresh moments.
    #[serde(default)]
    pub optimizer_state: Option<String>,
}

/// One line of `train-log.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    /// "train" or "val".
    pub stage: String,
    pub step: usize,
    /// Mean cross-entropy per predicted file token (nats).
    pub loss: f64,
    #[serde(default)]
    pub tokens: usize,
    #[serde(default)]
    pub lr: f64,
    #[serde(default)]
    pub context: usize,
    pub wall: f64,
}

#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub out: String,
    pub steps: usize,
    pub parameters: u128,
    pub train_files: usize,
    pub val_files: usize,
    pub val_loss: Option<f64>,
    /// Validation bytes per token of the tokenizer on the held-out files.
    pub val_bytes_per_token: f64,
    pub wall_seconds: f64,
    pub tokens_per_second: f64,
}

/// Tokenised training data.
struct Data {
    /// Per file: byte-token ids (bos .. eos) and its prompts' ids.
    files: Vec<(Vec<u32>, Vec<Vec<u32>>)>,
    train: Vec<usize>,
    held_out: Vec<usize>,
    paths: Vec<PathBuf>,
    bytes: Vec<usize>,
    stats: CorpusStats,
}

fn load_data(opts: &TrainOptions, tok: &TextTokenizer) -> anyhow::Result<Data> {
    let (files, stats) =
        corpus::load(&opts.corpus, opts.max_file_bytes).context("cannot load the corpus")?;
    let codec = tok.file_codec()?;
    let mut out = Vec::with_capacity(files.len());
    for f in &files {
        let ids = codec
            .encode(&f.fws)
            .with_context(|| format!("cannot encode {}", f.path.display()))?;
        let prompts = f
            .prompts
            .iter()
            .map(|p| tok.encode(&chat_text(p, None)))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((ids, prompts));
    }
    if files.len() < 2 {
        bail!("need at least 2 usable files (one to train on, one held out)");
    }
    let val = opts.val_files.min(files.len() / 5).max(1);
    let mut order: Vec<usize> = (0..files.len()).collect();
    let mut rng = Rng::for_stream(opts.seed, u64::MAX);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut held_out = order[..val].to_vec();
    let mut train = order[val..].to_vec();
    held_out.sort_unstable();
    train.sort_unstable();
    Ok(Data {
        paths: files.iter().map(|f| f.path.clone()).collect(),
        bytes: files.iter().map(|f| f.fws.len()).collect(),
        files: out,
        train,
        held_out,
        stats,
    })
}

fn read_state(out: &Path) -> anyhow::Result<Option<TrainState>> {
    let path = out.join(STATE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let state = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a training state", path.display()))?;
    Ok(Some(state))
}

fn copy_tokenizer(from: &Path, out: &Path) -> anyhow::Result<()> {
    for name in [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, MERGES_FILE] {
        let src = from.join(name);
        if src.is_file() {
            let bytes =
                std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
            write_atomic(&out.join(name), &bytes)?;
        }
    }
    Ok(())
}

/// Progress callback: `(step, target, last loss)`.
pub type Progress<'a> = &'a dyn Fn(usize, usize, f64);

/// Train (or resume) into `opts.out` on backend `B` (with Burn's autodiff on top), on
/// `devices` (one or more; the model lives on the first).
pub fn train<B: Backend>(
    devices: &[B::Device],
    opts: &TrainOptions,
    resume: bool,
    progress: Progress<'_>,
) -> anyhow::Result<TrainReport> {
    train_with::<Autodiff<B>>(devices, opts, resume, progress)
}

fn train_with<B: AutodiffBackend>(
    devices: &[B::Device],
    opts: &TrainOptions,
    resume: bool,
    progress: Progress<'_>,
) -> anyhow::Result<TrainReport> {
    if opts.batch == 0 || opts.accum == 0 || opts.steps == 0 {
        bail!("--batch, --accum and --steps must be at least 1");
    }
    let Some(device) = devices.first() else {
        bail!("--devices must be at least 1");
    };
    if opts.contexts.is_empty() || opts.contexts.contains(&0) {
        bail!("--context needs one or more lengths >= 1");
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let previous = if resume { read_state(out)? } else { None };
    if !resume && out.join(STATE_FILE).exists() {
        bail!(
            "{} already holds a training run; pass --resume to continue it or pick another --out",
            out.display()
        );
    }

    // Model and tokenizer: resumed, from a checkpoint, or fresh.
    let (tok_dir, start_step, wall0) = match &previous {
        Some(state) => (out.clone(), state.step, state.wall_seconds),
        None => {
            let dir = opts
                .from
                .clone()
                .or_else(|| opts.tokenizer.clone())
                .context("give --tokenizer (or --from a checkpoint with its tokenizer)")?;
            copy_tokenizer(&dir, out)?;
            (dir, 0, 0.0)
        }
    };
    let tok = TextTokenizer::open(&tok_dir).context("cannot open the tokenizer")?;
    let (mut config, model): (Qwen2Config, Qwen2ForCausalLM<B>) = if previous.is_some() {
        Checkpoint::open(out)
            .and_then(|c| c.into_model(device))
            .context("cannot load the checkpoint to resume")?
    } else if let Some(from) = &opts.from {
        Checkpoint::open(from)
            .and_then(|c| c.into_model(device))
            .with_context(|| format!("cannot load {}", from.display()))?
    } else {
        let config = opts.shape.config(tok.vocab_size())?;
        let weights = random_weights(&config, opts.seed);
        let model =
            Qwen2ForCausalLM::load(&config, &weights, device).context("cannot build the model")?;
        (config, model)
    };
    if config.vocab_size < tok.vocab_size() {
        bail!(
            "the model's vocabulary ({}) is smaller than the tokenizer's ({})",
            config.vocab_size,
            tok.vocab_size()
        );
    }
    // transformers reads the stop token from config.json and generation_config.json; a
    // checkpoint we start from keeps the ids it names.
    let generation_tokens =
        GenerationTokens::from_tokens(&tok.bytes).context("the tokenizer has no byte eos/pad")?;
    if config.eos_token_id.is_none() {
        config.eos_token_id = Some(generation_tokens.eos.into());
    }
    let generation_config =
        generation_config_json(&config, &generation_tokens, &SamplingConfig::RECOMMENDED);
    if start_step >= opts.steps {
        bail!(
            "the run in {} is already at step {start_step} (target --steps {})",
            out.display(),
            opts.steps
        );
    }

    let data = load_data(opts, &tok)?;
    let pad = tok.bytes.pad_id()?;
    let max_context = *opts.contexts.iter().max().expect("checked");
    let min_context = *opts.contexts.iter().min().expect("checked");
    let longest_prompt = data
        .files
        .iter()
        .flat_map(|(_, prompts)| prompts.iter().map(Vec::len))
        .max()
        .unwrap_or(0);
    if longest_prompt + 16 > min_context {
        bail!(
            "context {min_context} leaves no room for the file after the longest prompt \
             ({longest_prompt} tokens); use a longer --context or a tokenizer with more text tokens"
        );
    }
    let val_batches: Vec<LmBatch> = data
        .held_out
        .chunks(opts.batch)
        .map(|chunk| {
            let ex: Vec<Example<'_>> = chunk
                .iter()
                .map(|&i| Example {
                    prompt: &data.files[i].1[0],
                    file: &data.files[i].0,
                })
                .collect();
            make_batch(&ex, max_context, pad)
        })
        .collect();
    let val_bytes: usize = data.held_out.iter().map(|&i| data.bytes[i]).sum();
    let val_tokens: usize = data
        .held_out
        .iter()
        .map(|&i| data.files[i].0.len() - 2)
        .sum();

    let train_config = LmTrainConfig {
        learning_rate: opts.learning_rate,
        warmup_steps: opts.warmup,
        total_steps: opts.steps,
        optimizer: opts.optimizer,
        ..LmTrainConfig::default()
    };
    let mut trainer = LmTrainer::new(model, train_config, start_step);
    if let Some(name) = previous.as_ref().and_then(|s| s.optimizer_state.as_ref()) {
        let path = out.join(name);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        trainer
            .load_optimizer_state(&bytes, device)
            .with_context(|| format!("cannot resume the optimiser from {}", path.display()))?;
    }
    let parameters = config.parameter_count();
    if start_step > 0 {
        drop_log_after(out, start_step)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(LOG_FILE))
        .context("cannot open the training log")?;
    let started = Instant::now();
    let wall = |started: &Instant| wall0 + started.elapsed().as_secs_f64();
    let mut last_val = previous.as_ref().and_then(|s| s.last_val_loss);
    let mut tokens_seen = 0usize;

    let save = |trainer: &LmTrainer<B>, last_val: Option<f64>, wall: f64| -> anyhow::Result<()> {
        let weights = export_tensors(&trainer.model.valid())
            .to_safetensors()
            .context("cannot serialise the model")?;
        write_atomic(&out.join(SINGLE_WEIGHTS_FILE), &weights)?;
        write_atomic(&out.join(CONFIG_FILE), hf_config_json(&config).as_bytes())?;
        write_atomic(
            &out.join(GENERATION_CONFIG_FILE),
            generation_config.as_bytes(),
        )?;
        // Like the weights, before train-state.json: that file is renamed last, so once it
        // names a step, the moments of that step are beside it.
        let moments = trainer
            .optimizer_state()
            .context("cannot save the optimiser state")?;
        write_atomic(&out.join(OPTIMIZER_FILE), &moments)?;
        let state = TrainState {
            step: trainer.step,
            wall_seconds: wall,
            options: opts.clone(),
            corpus: data.stats.clone(),
            train_files: data.train.len(),
            held_out: data
                .held_out
                .iter()
                .map(|&i| data.paths[i].display().to_string())
                .collect(),
            last_val_loss: last_val,
            parameters,
            optimizer_state: Some(OPTIMIZER_FILE.to_string()),
        };
        write_atomic(
            &out.join(STATE_FILE),
            serde_json::to_string_pretty(&state)?.as_bytes(),
        )?;
        plot(out)
    };

    let stop_at = opts
        .stop_after
        .map_or(opts.steps, |n| (start_step + n).min(opts.steps));
    while trainer.step < stop_at {
        let step = trainer.step;
        let context = opts.context_at(step);
        let drawn: Vec<Example<'_>> = (0..opts.accum)
            .flat_map(|m| {
                let mut rng = Rng::for_stream(opts.seed, (step * opts.accum + m) as u64);
                (0..opts.batch)
                    .map(|_| {
                        let f = data.train[rng.below(data.train.len() as u64) as usize];
                        let (ids, prompts) = &data.files[f];
                        let p = rng.below(prompts.len() as u64) as usize;
                        Example {
                            prompt: &prompts[p],
                            file: ids,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let micro: Vec<LmBatch> = length_buckets(
            drawn,
            context,
            devices.len(),
            BUCKETS_PER_MICRO_BATCH * opts.accum,
        )
        .iter()
        .map(|group| make_batch(group, context, pad))
        .collect();
        let stats = trainer.step_on(&micro, devices, &Threads);
        tokens_seen += stats.tokens;
        let line = LogLine {
            stage: "train".into(),
            step: stats.step,
            loss: stats.loss,
            tokens: stats.tokens,
            lr: stats.lr,
            context,
            wall: wall(&started),
        };
        writeln!(log, "{}", serde_json::to_string(&line)?)?;
        progress(stats.step, opts.steps, stats.loss);
        let done = trainer.step == stop_at;
        if trainer.step % opts.eval_every.max(1) == 0 || done {
            let v = trainer.evaluate(&val_batches, device);
            last_val = Some(v);
            let line = LogLine {
                stage: "val".into(),
                step: trainer.step,
                loss: v,
                tokens: val_tokens,
                lr: stats.lr,
                context: max_context,
                wall: wall(&started),
            };
            writeln!(log, "{}", serde_json::to_string(&line)?)?;
        }
        if trainer.step % opts.checkpoint_every.max(1) == 0 || done {
            log.flush()?;
            save(&trainer, last_val, wall(&started))?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainReport {
        out: out.display().to_string(),
        steps: trainer.step,
        parameters,
        train_files: data.train.len(),
        val_files: data.held_out.len(),
        val_loss: last_val,
        val_bytes_per_token: val_bytes as f64 / val_tokens.max(1) as f64,
        wall_seconds: wall(&started),
        tokens_per_second: tokens_seen as f64 / seconds.max(1e-9),
    })
}

/// A killed run may have logged steps after its last checkpoint; the resumed run redoes
/// them, so their old lines go.
fn drop_log_after(out: &Path, step: usize) -> anyhow::Result<()> {
    let path = out.join(LOG_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<LogLine>(l).is_ok_and(|l| l.step <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    if kept.len() != text.len() {
        write_atomic(&path, kept.as_bytes())?;
    }
    Ok(())
}

/// `loss.png` from the log: training loss (blue, smoothed over 20 steps) and validation loss
/// (red).
pub fn plot(out: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(out.join(LOG_FILE)).unwrap_or_default();
    let lines: Vec<LogLine> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let raw: Vec<(f64, f64)> = lines
        .iter()
        .filter(|l| l.stage == "train")
        .map(|l| (l.step as f64, l.loss))
        .collect();
    let smooth: Vec<(f64, f64)> = raw
        .iter()
        .enumerate()
        .map(|(i, &(x, _))| {
            let lo = i.saturating_sub(19);
            let w = &raw[lo..=i];
            (x, w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64)
        })
        .collect();
    let val: Vec<(f64, f64)> = lines
        .iter()
        .filter(|l| l.stage == "val")
        .map(|l| (l.step as f64, l.loss))
        .collect();
    write_png(
        &out.join(LOSS_PNG),
        &[Panel {
            title: "ByteCraft loss on the file's byte tokens",
            x_label: "step",
            y_label: "cross-entropy (nats/token)",
            log_y: true,
            series: vec![
                Series {
                    name: "train (mean of 20 steps)",
                    points: &smooth,
                    rgb: TRAIN_RGB,
                },
                Series {
                    name: "held-out",
                    points: &val,
                    rgb: HELD_OUT_RGB,
                },
            ],
        }],
    )?;
    Ok(())
}
