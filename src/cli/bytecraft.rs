//! `gamegen bytecraft`: debug commands over a Hugging Face Qwen2 checkpoint (the ByteCraft
//! model or a tiny test model), used by the parity tests and by researchers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use gamegen_core::bytecraft::decode::check_ids;
use gamegen_core::bytecraft::{greedy, logits};
use gamegen_native::backend::BackendChoice;
use gamegen_native::bytecraft::Checkpoint;
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
    }
    Ok(())
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
