//! `gamegen bytecraft`: debug commands over a Hugging Face Qwen2 checkpoint (the ByteCraft
//! model or a tiny test model), used by the parity tests and by researchers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use gamegen_core::bytecraft::decode::check_ids;
use gamegen_core::bytecraft::{greedy, logits};
use gamegen_core::swf::fws::to_fws;
use gamegen_native::backend::BackendChoice;
use gamegen_native::bytecraft::Checkpoint;
use gamegen_native::bytecraft::corpus;
use gamegen_native::bytecraft::tokenizer::TextTokenizer;
use gamegen_native::bytecraft::tokenizer_train::{self, TokenizerOptions};
use gamegen_native::bytecraft::train::{self, ModelShape, TrainOptions};
use gamegen_native::fsutil::write_atomic;
use gamegen_native::progress;
use gamegen_native::with_backend;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the logits of every input position as JSON: {"logits": [[vocab floats], ...]}.
    #[command(
        after_help = "Example:\n  gamegen bytecraft logits --model tests/fixtures/bytecraft/gqa --ids 3,1,4"
    )]
    Logits(LogitsArgs),
    /// Greedy continuation (argmax at every step, no stop token) as JSON: {"ids": [new ids]}.
    #[command(
        after_help = "Example:\n  gamegen bytecraft greedy --model tests/fixtures/bytecraft/gqa --ids 3,1,4 --max-new 40"
    )]
    Greedy(GreedyArgs),
    /// Train a ByteCraft model (from scratch or from a checkpoint) on SWF files and prompts.
    #[command(after_help = "\
The output directory is a Hugging Face checkpoint at every save (config.json, model.safetensors,
tokenizer files) plus optimizer-state.bin, train-state.json, train-log.jsonl and loss.png. Loss
is on the file's byte tokens only. --resume continues a killed run from its last checkpoint:
the data order is a function of (--seed, step) and the optimiser state is restored, so a run
stopped with --stop-after and resumed ends exactly as an uninterrupted one.

Examples:
  gamegen bytecraft tokenizer train --corpus data/synth --vocab 2048 --out tok
  gamegen bytecraft train --corpus data/synth --tokenizer tok --out models/my-bytecraft \\
      --steps 2000 --context 512,1024 --optimizer muon
  gamegen bytecraft train --corpus data/synth --from models/bytecraft-mini --out ft --steps 100
  gamegen bytecraft train --backend cuda --devices 4 --accum 8 --corpus data/synth \\
      --tokenizer tok --out runs/bc      # data-parallel on the first 4 GPUs")]
    Train(Box<TrainArgs>),
    /// Tokenizers for our own models (byte BPE over SWF files + text BPE over prompts).
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Encode SWF files to byte-token ids (bos, pieces, eos) as JSON lines.
    #[command(after_help = "\
Prints one JSON object per file: {\"file\", \"bytes\", \"tokens\", \"ids\"}. Compressed files
(CWS/ZWS) are encoded as their uncompressed FWS form, as the models see them.

Example:
  gamegen bytecraft tokenize --tokenizer models/bytecraft-mini corpus/000001.swf")]
    Tokenize(TokenizeArgs),
    /// Decode byte-token ids back to a file.
    #[command(after_help = "\
The ids come from --ids or from --ids-file (a JSON array, a `tokenize` line, or comma/space
separated numbers). The text between bos and eos is kept, as the reference decoder does.

Example:
  gamegen bytecraft detokenize --tokenizer models/bytecraft-mini --ids-file ids.json --out x.swf")]
    Detokenize(DetokenizeArgs),
}

#[derive(Subcommand, Debug)]
pub enum TokenizerCommand {
    /// Learn a tokenizer on SWF files (and their prompts) and write it to --out.
    #[command(after_help = "\
Writes tokenizer.json (loads in Hugging Face tokenizers/transformers), tokenizer_config.json
(ChatML chat template) and byte_merges.json, and prints a JSON report with bytes per token.
ByteCraft's released tokenizer has 108K byte tokens at 2.29 bytes/token.

Example:
  gamegen bytecraft tokenizer train --corpus data/synth --corpus ../shared/swf-corpus \\
      --vocab 2048 --out models/my-tokenizer")]
    Train(TokenizerTrainArgs),
}

#[derive(Args, Debug)]
pub struct TokenizerTrainArgs {
    /// Directories (or files) of SWF files; repeatable.
    #[arg(long, required = true)]
    corpus: Vec<PathBuf>,
    /// Byte tokens in total (pad, bos, eos, 256 single bytes, then merges).
    #[arg(long, default_value_t = 2048)]
    vocab: usize,
    /// Text tokens for prompts (byte-level BPE, ChatML specials included).
    #[arg(long, default_value_t = 768)]
    text_vocab: usize,
    /// Longest byte piece.
    #[arg(long, default_value_t = 8)]
    max_piece_bytes: usize,
    /// Skip files larger than this once uncompressed (bytes).
    #[arg(long, default_value_t = 1 << 20)]
    max_file_bytes: usize,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Directories (or files) of SWF files; repeatable. Synthesised files bring their
    /// prompts in <name>.json; others get prompts from their header.
    #[arg(long, required = true)]
    corpus: Vec<PathBuf>,
    /// Tokenizer directory (from `bytecraft tokenizer train`), for a model from scratch.
    #[arg(long, required_unless_present_any = ["from", "resume"])]
    tokenizer: Option<PathBuf>,
    /// Start from this Hugging Face checkpoint (its tokenizer is used).
    #[arg(long)]
    from: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Target optimiser steps, counted over all runs.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Micro-batches per optimiser step (gradient accumulation).
    #[arg(long, default_value_t = 1)]
    accum: usize,
    /// Context lengths, spent in equal shares of the steps, e.g. 512,1024.
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    context: Vec<usize>,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Files held out for the validation loss (at most a fifth of the corpus).
    #[arg(long, default_value_t = 64)]
    val_files: usize,
    /// Skip files larger than this once uncompressed (bytes).
    #[arg(long, default_value_t = 16384)]
    max_file_bytes: usize,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// End this run after N steps (checkpointed), e.g. under a job time limit; continue with
    /// --resume and the same arguments. The schedule still spans --steps.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Model width (from scratch).
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 2)]
    kv_heads: usize,
    #[arg(long, default_value_t = 704)]
    intermediate: usize,
    /// Untie the output head from the embedding.
    #[arg(long)]
    untied: bool,
    /// adamw, or muon: Muon (Newton-Schulz orthogonalised momentum) for the decoder layers'
    /// attention and MLP matrices, AdamW for embeddings, head, norms and biases; one
    /// learning rate for both (Muon's update is scaled to AdamW's RMS).
    #[arg(long, default_value = "adamw", value_parser = ["adamw", "muon"])]
    optimizer: String,
    /// Data-parallel training: each step's sequences are sorted by length into micro-batches
    /// spread over N model replicas; with cuda/wgpu the first N GPUs, with cpu N replicas on
    /// threads of their own (to keep every core busy). Gradients are summed on the first
    /// device, one optimiser step, weights broadcast. Default: what the run being resumed
    /// used, else one replica per core on the CPU (at most 2) and one GPU.
    #[arg(long)]
    devices: Option<usize>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// A directory holding tokenizer.json (and byte_merges.json for our own tokenizers).
    #[arg(long)]
    tokenizer: PathBuf,
    /// SWF files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DetokenizeArgs {
    #[arg(long)]
    tokenizer: PathBuf,
    /// Ids, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "ids_file")]
    ids: Option<Vec<u32>>,
    #[arg(long)]
    ids_file: Option<PathBuf>,
    /// Output file (written atomically).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Checkpoint directory: config.json plus model.safetensors or
    /// model.safetensors.index.json and its shards (f32, bf16 or f16; computed in f32).
    #[arg(long)]
    model: PathBuf,
    /// Input token ids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    ids: Vec<u32>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args, Debug)]
pub struct GreedyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Number of new tokens to generate.
    #[arg(long, default_value_t = 40)]
    max_new: usize,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Logits(a) => {
            let m = &a.model;
            let checkpoint = open_checked(m)?;
            let rows: Vec<Vec<f32>> = with_backend!(m.backend, |B, device| {
                let (_, model) = checkpoint
                    .into_model::<B>(&device)
                    .context("cannot load model")?;
                logits(&model, &m.ids, &device)?
            });
            print_line(&serde_json::to_string(&BTreeMap::from([("logits", rows)]))?)?;
        }
        Command::Greedy(a) => {
            let m = &a.model;
            let checkpoint = open_checked(m)?;
            let ids = with_backend!(m.backend, |B, device| {
                let (_, model) = checkpoint
                    .into_model::<B>(&device)
                    .context("cannot load model")?;
                greedy(&model, &m.ids, a.max_new, &device)?
            });
            print_line(&serde_json::to_string(&BTreeMap::from([("ids", ids)]))?)?;
        }
        Command::Train(a) => {
            let a = *a;
            a.backend.ensure_usable()?;
            let recorded = if a.resume {
                train::recorded_devices(&a.out)
            } else {
                None
            };
            let devices = gamegen_native::backend::training_devices(a.backend, a.devices, recorded);
            let opts = TrainOptions {
                corpus: a.corpus,
                tokenizer: a.tokenizer,
                from: a.from,
                shape: ModelShape {
                    hidden: a.hidden,
                    layers: a.layers,
                    heads: a.heads,
                    kv_heads: a.kv_heads,
                    intermediate: a.intermediate,
                    tied: !a.untied,
                    rope_theta: 10000.0,
                    max_positions: a.context.iter().copied().max().unwrap_or(1024),
                },
                out: a.out,
                steps: a.steps,
                batch: a.batch,
                accum: a.accum,
                contexts: a.context,
                learning_rate: a.lr,
                warmup: a.warmup,
                seed: a.seed,
                checkpoint_every: a.checkpoint_every,
                eval_every: a.eval_every,
                val_files: a.val_files,
                max_file_bytes: a.max_file_bytes,
                stop_after: a.stop_after,
                optimizer: a.optimizer.parse().map_err(anyhow::Error::msg)?,
                devices,
            };
            let pb = progress::bar(opts.steps as u64, "train");
            let report = with_backend!(a.backend, |B, device| {
                let devices =
                    gamegen_native::backend::devices::<B>(&device, a.backend, opts.devices)?;
                train::train::<B>(&devices, &opts, a.resume, &|step, target, loss| {
                    pb.set_length(target as u64);
                    pb.set_position(step as u64);
                    pb.set_message(format!("loss {loss:.3}"));
                })?
            });
            pb.finish_and_clear();
            print_line(&serde_json::to_string(&report)?)?;
        }
        Command::Tokenizer(TokenizerCommand::Train(a)) => {
            let (files, stats) =
                corpus::load(&a.corpus, a.max_file_bytes).context("cannot load the corpus")?;
            eprintln!(
                "{} files ({} KB) kept of {}; {} unreadable, {} over --max-file-bytes",
                stats.kept,
                stats.bytes / 1024,
                stats.found,
                stats.unreadable,
                stats.too_large
            );
            let opts = TokenizerOptions {
                byte_vocab: a.vocab,
                text_vocab: a.text_vocab,
                max_piece_bytes: a.max_piece_bytes,
            };
            let report = tokenizer_train::train(&files, &opts, &a.out)
                .context("cannot train the tokenizer")?;
            print_line(&serde_json::to_string(&report)?)?;
        }
        Command::Tokenize(a) => {
            let tok = TextTokenizer::open(&a.tokenizer).context("cannot open tokenizer")?;
            let codec = tok.file_codec()?;
            for path in &a.files {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let fws = to_fws(&bytes, 256 << 20)
                    .with_context(|| format!("{}: not a readable SWF", path.display()))?;
                let ids = codec
                    .encode(&fws)
                    .with_context(|| format!("cannot encode {}", path.display()))?;
                let line = serde_json::json!({
                    "file": path.display().to_string(),
                    "bytes": fws.len(),
                    "tokens": ids.len(),
                    "ids": ids,
                });
                print_line(&line.to_string())?;
            }
        }
        Command::Detokenize(a) => {
            let tok = TextTokenizer::open(&a.tokenizer).context("cannot open tokenizer")?;
            let ids = match (&a.ids, &a.ids_file) {
                (Some(ids), _) => ids.clone(),
                (None, Some(path)) => parse_ids_file(path)?,
                (None, None) => anyhow::bail!("give --ids or --ids-file"),
            };
            let file = tok.bytes.decode(&ids).context("cannot decode the ids")?;
            write_atomic(&a.out, &file.bytes)
                .with_context(|| format!("cannot write {}", a.out.display()))?;
            eprintln!(
                "{}: {} bytes{}",
                a.out.display(),
                file.bytes.len(),
                if file.complete {
                    ""
                } else {
                    " (no eos: incomplete)"
                }
            );
        }
    }
    Ok(())
}

/// Ids from a JSON array, a JSON object with `ids` (a `tokenize` line), or plain numbers.
fn parse_ids_file(path: &std::path::Path) -> anyhow::Result<Vec<u32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let trimmed = text.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        let array = value.get("ids").unwrap_or(&value);
        let ids = array
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect::<Option<Vec<u32>>>()
            })
            .with_context(|| format!("{}: expected an array of token ids", path.display()))?;
        return Ok(ids);
    }
    trimmed
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .with_context(|| format!("{}: `{s}` is not a token id", path.display()))
        })
        .collect()
}

/// Open the checkpoint and check the ids against its vocabulary before the (possibly long)
/// weight load.
fn open_checked(args: &ModelArgs) -> anyhow::Result<Checkpoint> {
    args.backend.ensure_usable()?;
    let checkpoint = Checkpoint::open(&args.model).context("cannot open checkpoint")?;
    check_ids(&args.ids, checkpoint.config.vocab_size)?;
    Ok(checkpoint)
}

/// Print one line on stdout; a closed pipe (`| head`) ends the command quietly instead of
/// panicking. (JSON is built from the f32 values directly so they keep their shortest f32
/// spelling.)
fn print_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
