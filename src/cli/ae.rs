//! `gamegen ae`: train, run and benchmark the frame autoencoder.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use gamegen_core::autoencoder::{AeTrainConfig, FrameAutoencoderConfig};
use gamegen_core::data::synthetic::planar_to_rgba;
use gamegen_native::backend::BackendChoice;
use gamegen_native::{frame_ae, progress, with_backend};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train on synthetic frames and write safetensors + config.json + train.json.
    #[command(after_help = "Example:\n  gamegen ae train --out models/frame-ae --steps 400")]
    Train(TrainArgs),
    /// Reconstruct synthetic frames with a checkpoint and print the output.
    #[command(
        after_help = "Example:\n  gamegen ae run --model models/frame-ae --seed 7 --count 2 --json"
    )]
    Run(RunArgs),
    /// Compare training and inference speed of the CPU backends side by side.
    #[command(after_help = "Example:\n  gamegen ae bench --iters 20")]
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 400)]
    steps: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Square frame size (multiple of 4).
    #[arg(long, default_value_t = 32)]
    image_size: usize,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Checkpoint directory (config.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Seed of the synthetic frame stream.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Index of the first frame in the stream.
    #[arg(long, default_value_t = 0)]
    index: u64,
    #[arg(long, default_value_t = 1)]
    count: usize,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
    /// Print JSON: {"shape": [...], "output": [...], "rgba": [...]}.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 32)]
    image_size: usize,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Train(a) => train(a),
        Command::Run(a) => run_model(a),
        Command::Bench(a) => bench(a),
    }
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    anyhow::ensure!(a.steps > 0, "--steps must be positive");
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    let model_config = FrameAutoencoderConfig {
        image_size: a.image_size,
        ..Default::default()
    };
    let train_config = AeTrainConfig {
        steps: a.steps,
        batch_size: a.batch_size,
        learning_rate: a.lr,
        seed: a.seed,
    };
    let pb = progress::bar(a.steps as u64, "train");
    let report = with_backend!(a.backend, |B, device| {
        frame_ae::train::<B>(
            device,
            a.backend.name(),
            model_config,
            train_config,
            &a.out,
            &|step, loss| {
                pb.set_position(step as u64);
                pb.set_message(format!("loss {loss:.5}"));
            },
        )?
    });
    pb.finish_and_clear();
    println!(
        "trained {} steps in {:.1} s: validation MSE {:.5} -> {:.5}; wrote {}",
        report.train.steps,
        report.wall_seconds,
        report.initial_val_mse,
        report.final_val_mse,
        a.out.display()
    );
    Ok(())
}

fn run_model(a: RunArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    anyhow::ensure!((1..=256).contains(&a.count), "--count must be in 1..=256");
    let (size, output) = with_backend!(a.backend, |B, device| {
        let model = frame_ae::load::<B>(&a.model, &device)
            .with_context(|| format!("cannot load model from {}", a.model.display()))?;
        let out = frame_ae::reconstruct(&model, &device, a.seed, a.index, a.count)?;
        (model.image_size(), out)
    });
    if a.json {
        let rgba = planar_to_rgba(&output, a.count, size * size);
        let v = serde_json::json!({
            "shape": [a.count, 3, size, size],
            "output": output,
            "rgba": rgba,
        });
        println!("{v}");
    } else {
        let mean = output.iter().sum::<f32>() / output.len() as f32;
        println!(
            "{} frame(s) of {size}x{size} reconstructed; mean intensity {mean:.4}",
            a.count
        );
    }
    Ok(())
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let cfg = FrameAutoencoderConfig {
        image_size: a.image_size,
        ..Default::default()
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    let results = [
        frame_ae::bench::<gamegen_native::backend::NdArray>(
            Default::default(),
            "ndarray",
            &cfg,
            a.batch_size,
            a.iters,
        ),
        frame_ae::bench::<gamegen_native::backend::Cpu>(
            Default::default(),
            "flex",
            &cfg,
            a.batch_size,
            a.iters,
        ),
    ];
    println!("| backend | train ms/step | inference ms/batch |");
    println!("|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.2} | {:.2} |",
            r.backend, r.train_ms_per_step, r.infer_ms_per_batch
        );
    }
    println!(
        "flex speed-up over ndarray: train {:.2}x, inference {:.2}x",
        results[0].train_ms_per_step / results[1].train_ms_per_step,
        results[0].infer_ms_per_batch / results[1].infer_ms_per_batch
    );
    Ok(())
}
