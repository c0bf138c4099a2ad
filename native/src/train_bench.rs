//! `gamegen bench train-step`: the time of one training step (forward, backward, optimiser) of
//! the world model's VAE, its diffusion-forcing dynamics, or a ByteCraft model, on fixed-shape
//! random batches, so that it can be set beside a peer's step of the same shapes
//! (`bench/train_step_twin.py`, PyTorch) and profiled.
//!
//! The batch is made once, outside the timed region (as the training jobs make theirs in the
//! data pipeline); each timed step runs exactly the trainer's `step`. Times are wall clock and
//! CPU time of the whole process, so a step that keeps one of two cores busy shows as a CPU /
//! wall ratio of 1.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use gamegen_core::bytecraft::train::{Example, LmTrainConfig, LmTrainer, make_batch};
use gamegen_core::rng::Rng;
use gamegen_core::world::checkpoint::CONFIG_FILE;
use gamegen_core::world::{ClipBatch, TrainConfig, VaeTrainer, WorldCheckpoint, WorldTrainer};
use serde::Serialize;

use crate::replicas::Threads;

/// Which training step to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// The VAE's step on a batch of frames (`gamegen world train`, stage one).
    WorldVae,
    /// The diffusion-forcing step on a batch of latent clips (stage two).
    WorldDynamics,
    /// A ByteCraft language-model step on a full batch of tokens.
    Bytecraft,
}

#[derive(Clone, Debug)]
pub struct StepBenchOptions {
    pub kind: StepKind,
    /// A world-model directory (its `config.json`) or a ByteCraft checkpoint.
    pub model: PathBuf,
    /// Frames per VAE step.
    pub vae_batch: usize,
    /// Clips per dynamics step and frames per clip.
    pub batch: usize,
    pub clip_len: usize,
    /// Sequences per ByteCraft step and positions per sequence.
    pub lm_batch: usize,
    pub lm_len: usize,
    pub warmup: usize,
    pub steps: usize,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepBenchReport {
    pub step: StepKind,
    pub backend: String,
    /// Data-parallel replicas the batch was split over, each on its own thread.
    pub devices: usize,
    /// Median wall time of the measured steps.
    pub ms_per_step: f64,
    /// Every measured step's wall time.
    pub ms_each: Vec<f64>,
    /// Process CPU time over wall time across the measured steps (cores kept busy).
    pub cpu_per_wall: f64,
    /// Threads of the compute pool the CPU backends split their kernels over.
    pub threads: usize,
    pub params: usize,
    pub shapes: String,
    /// The last step's loss (finite: the step computed something real).
    pub loss: f64,
}

/// Times `opts.steps` steps after `opts.warmup` on backend `B` (autodiff is added here), the
/// model on `devices[0]` and the batch split over all of `devices`.
pub fn run<B: Backend>(
    opts: &StepBenchOptions,
    devices: &[B::Device],
) -> anyhow::Result<StepBenchReport> {
    anyhow::ensure!(opts.steps >= 1, "--steps must be at least 1");
    anyhow::ensure!(!devices.is_empty(), "no device to run on");
    let (params, shapes, mut step) = match opts.kind {
        StepKind::WorldVae => world_vae::<B>(opts, devices)?,
        StepKind::WorldDynamics => world_dynamics::<B>(opts, devices)?,
        StepKind::Bytecraft => bytecraft::<B>(opts, devices)?,
    };
    for _ in 0..opts.warmup {
        step()?;
    }
    let mut ms_each = Vec::with_capacity(opts.steps);
    let (cpu0, wall0) = (process_cpu_seconds(), Instant::now());
    let mut loss = f64::NAN;
    for _ in 0..opts.steps {
        let t = Instant::now();
        loss = step()?;
        ms_each.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    anyhow::ensure!(loss.is_finite(), "the step's loss became {loss}");
    let mut sorted = ms_each.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(StepBenchReport {
        step: opts.kind,
        backend: B::name(&devices[0]),
        devices: devices.len(),
        ms_per_step: sorted[sorted.len() / 2],
        ms_each,
        cpu_per_wall: cpu / wall.max(1e-9),
        threads: rayon::current_num_threads(),
        params,
        shapes,
        loss,
    })
}

/// One timed step: returns its loss.
type Step<'a> = Box<dyn FnMut() -> anyhow::Result<f64> + 'a>;

fn world_config(dir: &Path) -> anyhow::Result<WorldCheckpoint> {
    let path = dir.join(CONFIG_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    WorldCheckpoint::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// Uniform `[0, 1)` values of `shape` from the project's PRNG.
fn uniform<B: Backend, const D: usize>(
    rng: &mut Rng,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.next_f32()).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn world_vae<'a, B: Backend>(
    opts: &StepBenchOptions,
    devices: &'a [B::Device],
) -> anyhow::Result<(usize, String, Step<'a>)> {
    let device = &devices[0];
    let ck = world_config(&opts.model)?;
    let vae = ck.model.vae.init_seeded::<Autodiff<B>>(opts.seed, device)?;
    // The play decoder is trained later, by its own command, not by the VAE's step.
    let params = vae.num_params() - vae.light.as_ref().map_or(0, |l| l.num_params());
    let (w, h) = (ck.model.vae.width, ck.model.vae.height);
    let shape = [opts.vae_batch, 3, h, w];
    let frames = uniform::<B, 4>(&mut Rng::new(opts.seed), shape, device);
    let train = TrainConfig {
        seed: opts.seed,
        ..TrainConfig::tiny()
    };
    let mut trainer = VaeTrainer::new(vae, train);
    let step: Step<'a> = Box::new(move || {
        let (total, _) = trainer.step_on(frames.clone(), devices, &Threads);
        Ok(total as f64)
    });
    Ok((params, format!("frames {shape:?}"), step))
}

fn world_dynamics<'a, B: Backend>(
    opts: &StepBenchOptions,
    devices: &'a [B::Device],
) -> anyhow::Result<(usize, String, Step<'a>)> {
    let device = &devices[0];
    let ck = world_config(&opts.model)?;
    let cfg = ck.model.clone();
    let (b, t) = (opts.batch, opts.clip_len);
    let [c, h, w] = cfg.vae.latent_shape();
    let mut rng = Rng::new(opts.seed);
    let n = b * t;
    let actions: Vec<u32> = (0..n)
        .map(|_| rng.below(cfg.dit.num_actions as u64) as u32)
        .collect();
    let latents = Tensor::<B, 5>::random([b, t, c, h, w], Distribution::Normal(0.0, 1.0), device);
    let mut batch = ClipBatch::from_latents(latents, actions);
    if cfg.logic.is_some() {
        batch.events = Some((0..n).map(|_| rng.below(2) as u8).collect());
    }
    if cfg.record.is_some() {
        batch.scores = Some((0..n).map(|_| rng.below(1000) as u32).collect());
    }
    let mut shapes = format!("latents [{b}, {t}, {c}, {h}, {w}]");
    if let Some(s) = &cfg.spatial {
        let (ch, cw) = (s.encoder.crop_height, s.encoder.crop_width);
        batch.local_maps = Some(uniform::<B, 5>(&mut rng, [b, t, 3, ch, cw], device));
        shapes.push_str(&format!(", map crops [{b}, {t}, 3, {ch}, {cw}]"));
    }
    let train = TrainConfig {
        seed: opts.seed,
        ..TrainConfig::tiny()
    };
    let mut trainer = WorldTrainer::<Autodiff<B>>::new(cfg, train, None, device)?;
    let params = trainer.model.num_params();
    let step: Step<'a> = Box::new(move || {
        let stats = trainer.step_on(&batch, devices, &Threads)?;
        Ok(stats.loss as f64)
    });
    Ok((params, shapes, step))
}

fn bytecraft<'a, B: Backend>(
    opts: &StepBenchOptions,
    devices: &'a [B::Device],
) -> anyhow::Result<(usize, String, Step<'a>)> {
    let device = &devices[0];
    let (config, model) = crate::bytecraft::checkpoint::load::<Autodiff<B>>(&opts.model, device)
        .with_context(|| format!("loading {}", opts.model.display()))?;
    let params = model.num_params();
    let vocab = config.vocab_size as u64;
    let mut rng = Rng::new(opts.seed);
    // A one-token prompt and a file filling the rest: every position but the first predicts a
    // file token, and no row is padded.
    let rows: Vec<Vec<u32>> = (0..opts.lm_batch)
        .map(|_| (0..opts.lm_len).map(|_| rng.below(vocab) as u32).collect())
        .collect();
    let prompt = [0u32];
    let examples: Vec<Example<'_>> = rows
        .iter()
        .map(|file| Example {
            prompt: &prompt,
            file,
        })
        .collect();
    // One micro-batch per device (the trainer spreads micro-batches over devices): the rows
    // split evenly, so every device predicts the same number of tokens.
    let per = opts.lm_batch.div_ceil(devices.len());
    let micro: Vec<_> = examples
        .chunks(per)
        .map(|rows| make_batch(rows, opts.lm_len, 0))
        .collect();
    let shapes = format!("tokens [{}, {}]", opts.lm_batch, opts.lm_len);
    let mut trainer = LmTrainer::new(model, LmTrainConfig::default(), 0);
    let step: Step<'a> = Box::new(move || {
        let stats = trainer.step_on(&micro, devices, &Threads);
        Ok(stats.loss)
    });
    Ok((params, shapes, step))
}

/// CPU seconds this process has used, all threads (`/proc/self/stat`, Linux; 0 elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
