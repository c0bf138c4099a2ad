//! `gamegen world`: train neural game engines on collected data, roll them out.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gamegen_core::games::{self, GameKind, maps::parse_map};
use gamegen_core::world::MAX_DDIM_STEPS;
use gamegen_core::world::play::{PlayPath, Stage};
use gamegen_native::backend::BackendChoice;
use gamegen_native::world::train::{self, Preset, TrainOptions};
use gamegen_native::world::{bench, eval, evalnets, rollout};
use gamegen_native::{fsutil, gifenc, progress, with_backend};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the VAE, then the dynamics model (diffusion forcing), with resumable checkpoints.
    #[command(after_help = "\
Examples:
  gamegen collect traveler --episodes 64 --out data/traveler
  gamegen world train --game traveler --data data/traveler --out models/world-traveler
  gamegen world train --game traveler --data data/traveler --out models/world-traveler --resume --steps 6000
  gamegen world train --backend cuda --devices 4 --batch-size 32 --game traveler --data data/traveler --out models/world-traveler

Writes config.json, vae.safetensors, dynamics.safetensors, optimizer-state.bin (for --resume),
train-log.jsonl and loss.png (top: VAE loss, bottom: dynamics loss; blue = training, red =
held-out evaluation).")]
    Train(TrainArgs),
    /// Give a trained model a play decoder: a small net on the latent grid, trained against
    /// the frozen encoder, that play and rollouts then decode every frame with.
    #[command(after_help = "\
Example:
  gamegen world train-decoder --model models/world-pong --data data/pong --out /tmp/pong-light

Writes a new model directory: the same config, encoder and dynamics, with the play decoder
added to vae.safetensors and config.json (vae.light_decoder), decoder-log.jsonl and
decoder-report.json (held-out L1 and PSNR of the VAE's decoder and of the play decoder).
Takes minutes on a CPU; a killed run leaves nothing half-written (run it again).")]
    TrainDecoder(TrainDecoderArgs),
    /// Roll a trained model out on an action script from a real first frame; write a GIF.
    #[command(after_help = "\
Example:
  gamegen world rollout --model models/world-traveler --actions R*40,S*20,L*40 --out run.gif

The GIF shows the model (left) beside the real game (right) on the same actions; the
record (scores, events, per-frame error) goes to the --out path with .json.")]
    Rollout(RolloutArgs),
    /// Frames per second of a trained model on the CPU backends side by side (flex vs ndarray).
    #[command(
        after_help = "Examples:\n  gamegen world bench --model models/world-traveler --frames 120\n  gamegen world bench --model models/world-pong --frames 60 --steps 4 --breakdown --flex-only\n\n--breakdown adds, per DDIM setting, where a flex frame's time goes (ms per frame per stage)."
    )]
    Bench(BenchArgs),
    /// Replay recorded episodes through a model from their real first frames; PSNR, SSIM,
    /// ActAcc/ProbDiff, NumCon, SpaCon, FID/FVD (own features), FPS, and exact object detectors
    /// on real frames, VAE reconstructions, one-step predictions and rollouts, as eval.json +
    /// eval.md.
    #[command(after_help = "\
Examples:
  gamegen collect --game traveler --episodes 20 --frames 257 --seed 99 --out data/traveler-eval
  gamegen world vam train --game traveler --data data/traveler --out models/eval-traveler
  gamegen world eval --model models/world-traveler --data data/traveler-eval --out eval/traveler
  gamegen world eval --model models/world-traveler --data data/traveler-long --episodes 4 \\
      --lengths 64,128,256,1024 --out eval/traveler-sweep

Needs the game's evaluation network (models/eval-<game>, or --eval-nets DIR). Writes
eval.json, eval.md, strip-0.png / strip-1.png (rows: real, VAE reconstruction, the VAE's own
decoder when play uses a play decoder, one-step prediction, rollout) and, with a sweep,
by-length.png.")]
    Eval(EvalArgs),
    /// The evaluation network (Valid Action Model + valid numerical model + FID/FVD features)
    /// that `world eval` judges generated frames with.
    #[command(subcommand)]
    Vam(VamCommand),
}

#[derive(Subcommand, Debug)]
pub enum VamCommand {
    /// Train the evaluation network of one game on real collected frames.
    #[command(after_help = "\
Example:
  gamegen world vam train --game pong --data data/pong --out models/eval-pong --steps 1500

Writes config.json (with the accuracy on the held-out tenth of the episodes) and
evalnet.safetensors; with --eval-data also a model card README.md with the accuracy on that
separate real set.")]
    Train(VamTrainArgs),
    /// Accuracy of a trained evaluation network on real episodes (ActAcc, ProbDiff, score F1).
    #[command(after_help = "\
Example:
  gamegen world vam eval --model models/eval-pong --data data/pong-eval")]
    Eval(VamEvalArgs),
}

#[derive(Args, Debug)]
pub struct VamTrainArgs {
    #[arg(long)]
    game: String,
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 400)]
    max_episodes: usize,
    /// A separate real evaluation set (e.g. data/pong-eval) measured for the model card.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct VamEvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    /// A `gamegen collect` directory (use a seed the model was not trained on).
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    /// Generated frames per episode (at most the episode's length - 1).
    #[arg(long, default_value_t = 256)]
    length: usize,
    /// DDIM steps per frame.
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// What the sampler's state pass sees: `relabel` (the clean latent labelled with the last
    /// step's level) or `renoise:LEVEL` (the frame re-noised to LEVEL). Default: the model's.
    #[arg(long)]
    state_pass: Option<gamegen_core::world::StatePass>,
    /// Length sweep, comma-separated (e.g. 64,128,256,1024): per length, only episodes at
    /// least that long count. Rollouts run to the longest of these and --length.
    #[arg(long)]
    lengths: Option<String>,
    /// Skip episodes shorter than this many frames (e.g. 1025 for a sweep to 1024 generated
    /// frames on a set where only some episodes run that long); --episodes counts the rest.
    #[arg(long, default_value_t = 2)]
    min_frames: usize,
    /// The evaluation network (default models/eval-<game>, from `gamegen world vam train`).
    #[arg(long)]
    eval_nets: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long)]
    model: PathBuf,
    /// Frames generated per backend and DDIM setting (after 5 warm-up frames).
    #[arg(long, default_value_t = 120)]
    frames: usize,
    /// DDIM steps to measure, comma-separated.
    #[arg(long, default_value = "1,4,8")]
    steps: String,
    /// Also time each stage of a frame (DiT passes, v head, conditioning, map CNN, DDIM
    /// arithmetic, decode, read-back, linking) on flex, as ms per frame.
    #[arg(long)]
    breakdown: bool,
    /// Measure flex only (skip the ndarray column).
    #[arg(long)]
    flex_only: bool,
    /// Time the breakdown in CPU time of the measuring thread (64-bit Linux) instead of wall
    /// time, so other processes on the machine do not inflate it. Work stolen by other pool
    /// threads is not counted: use with RAYON_NUM_THREADS=1 (one thread, as in wasm).
    #[arg(long)]
    cpu_time: bool,
    /// The play path the sessions compute with (default: the backend's, `host` on the CPU
    /// backends): `reference` (exactly the operations training runs), `fused` (the backend's
    /// fused operations) or `host` (the CPU kernels). An A/B within one binary.
    #[arg(long)]
    path: Option<PlayPath>,
}

#[derive(Args, Debug)]
pub struct TrainDecoderArgs {
    /// A trained world-model directory.
    #[arg(long)]
    model: PathBuf,
    /// A `gamegen collect` directory of the model's game.
    #[arg(long)]
    data: PathBuf,
    /// A new (or empty) directory for the model with its play decoder.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Training frames encoded once (by the frozen encoder) and drawn from.
    #[arg(long, default_value_t = 2048)]
    pool: usize,
    /// Channels of every layer of the play decoder.
    #[arg(long, default_value_t = 32)]
    channels: usize,
    /// Residual blocks of the play decoder.
    #[arg(long, default_value_t = 2)]
    res_blocks: usize,
    /// Peak learning rate (AdamW; 5% warm-up, cosine to a tenth).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Use only the first N episodes of --data.
    #[arg(long)]
    max_episodes: Option<usize>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PresetArg {
    Tiny,
    Paper,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[arg(long)]
    game: String,
    /// A `gamegen collect` output directory.
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = PresetArg::Tiny)]
    config: PresetArg,
    /// Continue the model in --out (step counts are totals over all runs).
    #[arg(long)]
    resume: bool,
    /// Dynamics steps (stage two), total.
    #[arg(long, default_value_t = 4000)]
    steps: usize,
    /// VAE steps (stage one), total.
    #[arg(long, default_value_t = 1500)]
    vae_steps: usize,
    /// Clips per dynamics step.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Frames per VAE step.
    #[arg(long, default_value_t = 16)]
    vae_batch_size: usize,
    /// Frames per clip (backpropagation through z spans the clip).
    #[arg(long, default_value_t = 8)]
    clip_len: usize,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps between checkpoints (and held-out evaluations).
    #[arg(long, default_value_t = 250)]
    checkpoint_every: usize,
    /// LogicNet steps on play-time states (stage three), total. 0 skips the stage.
    #[arg(long, default_value_t = 1500)]
    logic_steps: usize,
    /// Train PlayGen's model alone, without LogicNet, the score record and the spatial module
    /// (the MaaG ablation).
    #[arg(long)]
    without_modules: bool,
    /// Start from another model directory's trained VAE and skip stage one (compare dynamics
    /// models on the same autoencoder).
    #[arg(long, conflicts_with = "resume")]
    vae_from: Option<PathBuf>,
    /// Weight the VAE's L1 term by how rare each pixel's colour is in its frame, as
    /// share^-POWER normalised per frame (small objects such as a ball or a score digit then
    /// count); 0 is the plain mean. Default: the preset's (0.5). Only for a new run.
    #[arg(long, conflicts_with = "resume")]
    rare_colour_power: Option<f64>,
    /// How the recurrent cell makes its new state: `replace` (PlayGen's: rewritten from the
    /// DiT's tokens) or `gated` (a full-resolution gated update, the v head also reading the
    /// noisy latent). Default: the preset's. Only for a new run.
    #[arg(long, conflicts_with = "resume")]
    state_update: Option<gamegen_core::world::model::StateUpdate>,
    /// What the play sampler's state pass sees, saved with the model: `relabel` or
    /// `renoise:LEVEL` (see `world eval --state-pass`). Default: the preset's. Only for a new
    /// run.
    #[arg(long, conflicts_with = "resume")]
    state_pass: Option<gamegen_core::world::StatePass>,
    /// Weight the dynamics loss by frame-to-frame change: each latent cell's error counts
    /// (1 + W d / mean d) / (1 + W), d its change from the previous frame, so the few cells
    /// where something moves count. 0 (default): the plain mean. Only for a new run.
    #[arg(long, conflicts_with = "resume")]
    change_weight: Option<f64>,
    /// Use only the first N episodes of --data.
    #[arg(long)]
    max_episodes: Option<usize>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
    /// Data-parallel training of the VAE and dynamics stages: each batch is cut into N shares,
    /// one per model replica; with cuda/wgpu the first N GPUs, with cpu N replicas on threads
    /// of their own (to keep every core busy). Gradients are summed on the first device, one
    /// optimiser step. Stage three (LogicNet) runs on the first device. Default: what the run
    /// being resumed used, else one replica per core on the CPU (at most 2) and one GPU.
    #[arg(long)]
    devices: Option<usize>,
}

#[derive(Args, Debug)]
pub struct RolloutArgs {
    /// A world-model directory (config.json, vae.safetensors, dynamics.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Action script, as for `gamegen play` (e.g. R*40,S*20,L*40).
    #[arg(long)]
    actions: String,
    /// DDIM steps per frame (1 to 16).
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// Seed of the real game's first frame (and of the sampling noise).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A map preset for the real game (docs/maps.md).
    #[arg(long)]
    map: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    scale: u32,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Train(a) => train_cmd(a),
        Command::TrainDecoder(a) => train_decoder_cmd(a),
        Command::Rollout(a) => rollout_cmd(a),
        Command::Bench(a) => bench_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Vam(VamCommand::Train(a)) => vam_train_cmd(a),
        Command::Vam(VamCommand::Eval(a)) => vam_eval_cmd(a),
    }
}

fn train_decoder_cmd(a: TrainDecoderArgs) -> anyhow::Result<()> {
    use gamegen_core::world::model::light_decoder::LightDecoderConfig;
    use gamegen_native::world::decoder::{DecoderOptions, train_decoder};
    a.backend.ensure_usable()?;
    let opts = DecoderOptions {
        model: a.model,
        data: a.data,
        out: a.out,
        decoder: LightDecoderConfig {
            channels: a.channels,
            res_blocks: a.res_blocks,
        },
        steps: a.steps,
        batch: a.batch_size,
        pool: a.pool,
        learning_rate: a.lr,
        seed: a.seed,
        max_episodes: a.max_episodes,
    };
    let pb = progress::bar(opts.steps as u64, "decoder");
    let report = with_backend!(a.backend, |B, device| {
        let progress = |stage: &str, step: usize, target: usize, loss: f64| {
            pb.set_length(target as u64);
            pb.set_position(step as u64);
            pb.set_message(if stage == "encode" {
                "encoding the frame pool".to_string()
            } else {
                format!("loss {loss:.4}")
            });
        };
        gamegen_native::backend::on_compute_pool(|| train_decoder::<B>(&device, &opts, &progress))?
    });
    pb.finish_and_clear();
    println!(
        "play decoder ({} weights, {} steps, {:.0} s): held-out PSNR {:.2} dB (L1 {:.4}); \
         the VAE's decoder: {:.2} dB (L1 {:.4}); written to {}",
        report.parameters,
        report.steps,
        report.wall_seconds,
        report.light.psnr,
        report.light.l1,
        report.full.psnr,
        report.full.l1,
        opts.out.display()
    );
    Ok(())
}

fn train_cmd(a: TrainArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    let game: GameKind = a.game.parse()?;
    let opts = TrainOptions {
        game,
        data: a.data,
        out: a.out,
        preset: match a.config {
            PresetArg::Tiny => Preset::Tiny,
            PresetArg::Paper => Preset::Paper,
        },
        vae_steps: a.vae_steps,
        steps: a.steps,
        batch: a.batch_size,
        vae_batch: a.vae_batch_size,
        clip_len: a.clip_len,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
        resume: a.resume,
        learning_rate: a.lr,
        max_episodes: a.max_episodes,
        logic_steps: a.logic_steps,
        without_modules: a.without_modules,
        vae_from: a.vae_from,
        rare_colour_power: a.rare_colour_power,
        state_update: a.state_update,
        state_pass: a.state_pass,
        change_weight: a.change_weight,
    };
    let pb = progress::bar(1, "world");
    let report = with_backend!(a.backend, |B, device| {
        let recorded = if a.resume {
            gamegen_native::world::train::recorded_replicas(&opts.out)
        } else {
            None
        };
        let n = gamegen_native::backend::training_devices(a.backend, a.devices, recorded);
        let devices = gamegen_native::backend::devices::<B>(&device, a.backend, n)?;
        let progress = |stage: &str, step: usize, target: usize, loss: f64| {
            pb.set_length(target as u64);
            pb.set_position(step as u64);
            if stage == "encode" {
                pb.set_message("encoding frames into the latent cache".to_string());
            } else if stage == "states" {
                pb.set_message("replaying episodes into play-time states".to_string());
            } else {
                pb.set_message(format!("{stage} loss {loss:.4}"));
            }
        };
        if devices.len() == 1 {
            gamegen_native::backend::on_compute_pool(|| {
                train::train::<B>(&devices, &opts, &progress)
            })?
        } else {
            // Several devices train in threads of their own, which must not wait on a pool
            // thread that is itself waiting for them.
            train::train::<B>(&devices, &opts, &progress)?
        }
    });
    pb.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn rollout_cmd(a: RolloutArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    anyhow::ensure!(
        (1..=MAX_DDIM_STEPS).contains(&a.steps),
        "--steps must be in 1..={MAX_DDIM_STEPS} (DDIM steps)"
    );
    let preset = match &a.map {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading map {}", p.display()))?;
            Some(parse_map(&text).with_context(|| format!("map {}", p.display()))?)
        }
        None => None,
    };
    let (report, pairs) = with_backend!(a.backend, |B, device| {
        let mut world = rollout::load::<B>(&a.model, a.seed, &device)?;
        let script = games::parse_actions(world.checkpoint.game, &a.actions)?;
        gamegen_native::backend::on_compute_pool(|| {
            rollout::rollout(&mut world, &script, a.steps, a.seed, preset.as_ref())
        })?
    });
    let (w, h) = report.game.frame_size();
    let (frames, ow) = rollout::side_by_side(&pairs, w, h);
    gifenc::write_gif(&a.out, &frames, ow, h, a.scale as usize, games::FPS)?;
    let record_path = a.out.with_extension("json");
    fsutil::write_atomic(
        &record_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    println!(
        "{}: {} frames at {:.1} FPS (DDIM {}), mean abs error to the real game {:.1}/255, score {} (real {}); wrote {} and {}",
        report.game,
        report.frames,
        report.frames_per_second,
        report.ddim_steps,
        report.mean_mae,
        report
            .final_score
            .map_or("-".to_string(), |s| s.to_string()),
        report.real_final_score,
        a.out.display(),
        record_path.display()
    );
    Ok(())
}

fn bench_cmd(a: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=100_000).contains(&a.frames),
        "--frames must be in 1..=100000"
    );
    let steps: Vec<usize> = a
        .steps
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--steps: comma-separated numbers, e.g. 1,4,8"))?;
    anyhow::ensure!(
        steps.iter().all(|s| (1..=MAX_DDIM_STEPS).contains(s)),
        "--steps values must be in 1..={MAX_DDIM_STEPS}"
    );
    if a.flex_only {
        println!("| DDIM steps | flex FPS |");
        println!("|---|---|");
    } else {
        println!("| DDIM steps | flex FPS | ndarray FPS | flex / ndarray |");
        println!("|---|---|---|---|");
    }
    for &s in &steps {
        let flex = bench::fps::<gamegen_native::backend::Cpu>(&a.model, a.frames, s, a.path)?;
        if a.flex_only {
            println!("| {s} | {flex:.1} |");
            continue;
        }
        let nd = bench::fps::<gamegen_native::backend::NdArray>(&a.model, a.frames, s, a.path)?;
        println!("| {s} | {flex:.1} | {nd:.1} | {:.2}x |", flex / nd);
    }
    if a.breakdown {
        for &s in &steps {
            let b = bench::breakdown::<gamegen_native::backend::Cpu>(
                &a.model, a.frames, s, a.cpu_time, a.path,
            )?;
            let n = b.frames.max(1) as f64;
            let total = b.total();
            println!();
            println!(
                "flex, S = {s}, {} frames, {}: {:.2} ms per frame ({:.1} FPS)",
                b.frames,
                if a.cpu_time {
                    "thread CPU time"
                } else {
                    "wall time"
                },
                total * 1000.0 / n,
                n / total.max(1e-9)
            );
            println!("| stage | ms per frame | share |");
            println!("|---|---|---|");
            for stage in Stage::ALL {
                let t = b.get(stage);
                println!(
                    "| {} | {:.3} | {:.1}% |",
                    stage.name(),
                    t * 1000.0 / n,
                    100.0 * t / total.max(1e-12)
                );
            }
        }
    }
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    let opts = eval::EvalOptions {
        model: a.model,
        data: a.data,
        episodes: a.episodes,
        length: a.length,
        min_frames: a.min_frames,
        ddim_steps: a.steps,
        state_pass: a.state_pass,
        seed: a.seed,
        lengths: match &a.lengths {
            Some(t) => t
                .split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    anyhow::anyhow!("--lengths: comma-separated numbers, e.g. 64,128,256,1024")
                })?,
            None => Vec::new(),
        },
        eval_nets: a.eval_nets,
        strips: Some(a.out.clone()),
    };
    let pb = progress::bar(1, "eval");
    let report = with_backend!(a.backend, |B, device| {
        gamegen_native::backend::on_compute_pool(|| {
            eval::evaluate::<B>(&device, &opts, &|done, total| {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
                if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    eprintln!("eval: {done}/{total} episodes");
                }
            })
        })?
    });
    pb.finish_and_clear();
    eval::write(&a.out, &report)?;
    print!("{}", eval::markdown(&report));
    println!("wrote {}/eval.json and eval.md", a.out.display());
    Ok(())
}

fn vam_train_cmd(a: VamTrainArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    let game: GameKind = a.game.parse()?;
    let opts = evalnets::VamTrainOptions {
        game,
        data: a.data,
        out: a.out.clone(),
        steps: a.steps,
        batch: a.batch,
        learning_rate: a.lr,
        seed: a.seed,
        max_episodes: a.max_episodes,
    };
    let pb = progress::bar(a.steps as u64, "vam");
    let (ck, extra) = with_backend!(a.backend, |B, device| {
        let ck = evalnets::train::<B>(&device, &opts, &|step, _total, loss| {
            pb.set_position(step as u64);
            pb.set_message(format!("loss {loss:.4}"));
        })?;
        let extra = match &a.eval_data {
            Some(dir) => {
                let (_, net) = evalnets::load::<B>(&a.out, Some(game), &device)?;
                let (_, eps) = evalnets::read_episodes(dir, Some(game), usize::MAX, 2)?;
                Some((
                    dir.display().to_string(),
                    evalnets::real_accuracy(&net, &ck.net, &eps, &device),
                ))
            }
            None => None,
        };
        (ck, extra)
    });
    pb.finish_and_clear();
    if let Some((name, acc)) = &extra {
        let card = evalnets::model_card(&ck, Some((name, acc)));
        fsutil::write_atomic(&a.out.join("README.md"), card.as_bytes())?;
        println!("{card}");
    } else {
        println!("{}", serde_json::to_string_pretty(&ck)?);
    }
    Ok(())
}

fn vam_eval_cmd(a: VamEvalArgs) -> anyhow::Result<()> {
    a.backend.ensure_usable()?;
    anyhow::ensure!(a.episodes > 0, "--episodes must be positive");
    let acc = with_backend!(a.backend, |B, device| {
        let (ck, net) = evalnets::load::<B>(&a.model, None, &device)?;
        let (_, eps) = evalnets::read_episodes(&a.data, Some(ck.game), a.episodes, 2)?;
        anyhow::ensure!(
            !eps.is_empty(),
            "{} has no episode of 2 frames or more",
            a.data.display()
        );
        evalnets::real_accuracy(&net, &ck.net, &eps, &device)
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&acc)?);
    } else {
        println!(
            "{} real pairs: ActAcc {:.3} (majority-action chance {:.3}), ProbDiff {:.3}, score-change F1 {}",
            acc.pairs,
            acc.act_acc,
            acc.majority_baseline,
            acc.prob_diff,
            acc.score_f1.map_or("n/a".into(), |f| format!("{f:.3}"))
        );
    }
    Ok(())
}
