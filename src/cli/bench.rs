//! `gamegen bench`: measurements of the engine's own steps, to set beside peers' (bench/).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gamegen_native::backend::BackendChoice;
use gamegen_native::train_bench::{self, StepBenchOptions, StepKind};
use gamegen_native::with_backend;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time one training step (forward, backward, optimiser) on fixed-shape random batches.
    #[command(after_help = "Examples:
  gamegen bench train-step --kind world-dynamics --model models/world-pong
  gamegen bench train-step --kind world-vae --model models/world-pacman --steps 10
  gamegen bench train-step --kind bytecraft --model models/bytecraft-mini --lm-batch 8 --lm-len 1024

Prints one JSON line: the median ms per step, every step's time, the CPU time over wall time
(cores kept busy), the compute pool's threads (RAYON_NUM_THREADS), the parameters and the
shapes. --devices N splits the batch over N replicas on threads, as the training jobs do. bench/train_step_twin.py runs the same steps in PyTorch at the same shapes.")]
    TrainStep(TrainStepArgs),
}

#[derive(Args, Debug)]
pub struct TrainStepArgs {
    #[arg(long, value_enum)]
    kind: StepKind,
    /// A world-model directory (its config.json) or a ByteCraft checkpoint directory.
    #[arg(long)]
    model: PathBuf,
    /// Frames per VAE step (`world train --vae-batch-size`).
    #[arg(long, default_value_t = 16)]
    vae_batch: usize,
    /// Clips per dynamics step (`world train --batch-size`).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Frames per clip (`world train --clip-len`).
    #[arg(long, default_value_t = 8)]
    clip_len: usize,
    /// Sequences per ByteCraft step.
    #[arg(long, default_value_t = 8)]
    lm_batch: usize,
    /// Positions per ByteCraft sequence.
    #[arg(long, default_value_t = 1024)]
    lm_len: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
    /// Data-parallel replicas, each on its own thread (`world train --devices`): with cuda/wgpu
    /// the first N GPUs, with cpu N copies on the one CPU.
    #[arg(long, default_value_t = 1)]
    devices: usize,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::TrainStep(a) => {
            a.backend.ensure_usable()?;
            for (name, v) in [
                ("--vae-batch", a.vae_batch),
                ("--batch", a.batch),
                ("--clip-len", a.clip_len),
                ("--lm-batch", a.lm_batch),
                ("--lm-len", a.lm_len),
                ("--steps", a.steps),
            ] {
                anyhow::ensure!((1..=65_536).contains(&v), "{name} must be in 1..=65536");
            }
            let opts = StepBenchOptions {
                kind: a.kind,
                model: a.model,
                vae_batch: a.vae_batch,
                batch: a.batch,
                clip_len: a.clip_len,
                lm_batch: a.lm_batch,
                lm_len: a.lm_len,
                warmup: a.warmup,
                steps: a.steps,
                seed: a.seed,
            };
            let report = with_backend!(a.backend, |B, device| {
                let devices = gamegen_native::backend::devices::<B>(&device, a.backend, a.devices)?;
                train_bench::run::<B>(&opts, &devices)?
            });
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
