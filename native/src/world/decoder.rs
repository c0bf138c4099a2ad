//! `gamegen world train-decoder`: give a trained world model a play decoder
//! (`gamegen_core::world::model::light_decoder`), trained against its frozen encoder.
//!
//! The encoder, the latent space and the dynamics model are untouched; the output directory
//! holds the same model with the play decoder added to `vae.safetensors` and declared in
//! `config.json`, plus `decoder-log.jsonl` and `decoder-report.json` (held-out L1 and PSNR of
//! both decoders). The run takes minutes on a CPU and is not resumable: it builds everything in
//! a temporary sibling of `--out` and renames it into place at the end, so a killed run leaves
//! no half-written model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use gamegen_core::checkpoint::to_safetensors;
use gamegen_core::rng::Rng;
use gamegen_core::world::checkpoint::{CONFIG_FILE, DYNAMICS_FILE, VAE_FILE};
use gamegen_core::world::model::blocks::reseed;
use gamegen_core::world::model::light_decoder::{LightDecoderConfig, LightDecoderTrainer};
use gamegen_core::world::model::vae::sample_posterior;
use gamegen_core::world::{Vae, WorldCheckpoint};
use serde::Serialize;

use super::data::Dataset;
use super::rollout::read;
use super::train::{Progress, l1_and_psnr};

pub const LOG_FILE: &str = "decoder-log.jsonl";
pub const REPORT_FILE: &str = "decoder-report.json";

#[derive(Clone, Debug)]
pub struct DecoderOptions {
    /// A trained world-model directory.
    pub model: PathBuf,
    /// A `gamegen collect` directory of the same game.
    pub data: PathBuf,
    /// A new directory for the model with its play decoder.
    pub out: PathBuf,
    pub decoder: LightDecoderConfig,
    pub steps: usize,
    pub batch: usize,
    /// Training frames encoded once and drawn from.
    pub pool: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub max_episodes: Option<usize>,
}

/// Held-out reconstruction of one decoder (encoder mean in, frames out).
#[derive(Clone, Debug, Serialize)]
pub struct Reconstruction {
    pub l1: f64,
    pub psnr: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecoderReport {
    pub game: String,
    pub decoder: LightDecoderConfig,
    pub parameters: usize,
    pub steps: usize,
    pub batch: usize,
    pub pool: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub wall_seconds: f64,
    pub eval_frames: usize,
    /// The VAE's own decoder.
    pub full: Reconstruction,
    /// The play decoder.
    pub light: Reconstruction,
    /// Mean training loss (L1 + gradient L1) over the last 50 steps.
    pub final_train_loss: f64,
}

#[derive(Serialize)]
struct LogLine {
    step: usize,
    loss: f64,
    l1: f64,
    lr: f64,
}

fn check(o: &DecoderOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&o.steps),
        "--steps must be in 1..=1000000"
    );
    anyhow::ensure!(
        (1..=4096).contains(&o.batch),
        "--batch-size must be in 1..=4096"
    );
    anyhow::ensure!((1..=65536).contains(&o.pool), "--pool must be in 1..=65536");
    anyhow::ensure!(
        o.learning_rate.is_finite() && o.learning_rate > 0.0,
        "--lr must be positive"
    );
    o.decoder.validate()?;
    anyhow::ensure!(
        !o.out.exists()
            || std::fs::read_dir(&o.out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false),
        "--out {} exists and is not empty: give a new directory (the model is written whole)",
        o.out.display()
    );
    Ok(())
}

/// Held-out L1 and PSNR of `decode(encoder mean)` against the frames.
fn reconstruction<B: Backend>(vae: &Vae<B>, frames: Tensor<B, 4>, full: bool) -> Reconstruction {
    let latent = vae.encode_latent(frames.clone());
    let y = if full {
        vae.decode_latent_full(latent)
    } else {
        vae.decode_latent(latent)
    };
    let (l1, psnr) = l1_and_psnr(y, frames);
    Reconstruction { l1, psnr }
}

pub fn train_decoder<B: Backend>(
    device: &B::Device,
    opts: &DecoderOptions,
    progress: Progress,
) -> anyhow::Result<DecoderReport> {
    check(opts)?;
    let start = Instant::now();
    let cfg_path = opts.model.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("cannot read {}", cfg_path.display()))?;
    let mut ckpt =
        WorldCheckpoint::from_json(&text).with_context(|| format!("{}", cfg_path.display()))?;
    anyhow::ensure!(
        ckpt.training.vae_steps > 0,
        "{}: the VAE is not trained",
        opts.model.display()
    );
    let vae = ckpt
        .load_vae::<B>(read(&opts.model.join(VAE_FILE))?, device)
        .with_context(|| format!("{}", opts.model.join(VAE_FILE).display()))?;
    let dynamics = read(&opts.model.join(DYNAMICS_FILE))?;
    let data = Dataset::load(&opts.data, ckpt.game, opts.max_episodes)?;

    let factor = ckpt.model.vae.downsample();
    let decoder = reseed(
        opts.decoder
            .init::<Autodiff<B>>(ckpt.model.vae.latent_channels, factor, device)?,
        opts.seed,
    );
    let parameters = burn::module::Module::num_params(&decoder);
    let mut trainer = LightDecoderTrainer::new(
        decoder,
        opts.steps,
        opts.learning_rate,
        ckpt.model.vae.structure_weight,
    )
    .with_rare_colour_power(ckpt.model.vae.rare_colour_power);
    let tmp = tmp_dir(&opts.out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("clearing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(tmp.join(LOG_FILE))
            .with_context(|| format!("creating {}", tmp.join(LOG_FILE).display()))?,
    );
    let mut rng = Rng::new(opts.seed);
    // The encoder is frozen and costs more than the play decoder's training step: encode a
    // pool of training frames once, then draw batches (and posterior noise) from it.
    let pool = data.sample_frames(opts.pool, &mut rng);
    let mut moments = Vec::new();
    for (i, chunk) in pool.chunks(64).enumerate() {
        moments.push(vae.encode(data.frames_tensor::<B>(chunk, device)));
        progress("encode", ((i + 1) * 64).min(pool.len()), pool.len(), 0.0);
    }
    let means = Tensor::cat(moments.iter().map(|m| m.0.clone()).collect(), 0);
    let logvars = Tensor::cat(moments.into_iter().map(|m| m.1).collect(), 0);
    let mut recent = std::collections::VecDeque::new();
    while trainer.step < opts.steps {
        let rows: Vec<usize> = (0..opts.batch)
            .map(|_| rng.below(pool.len() as u64) as usize)
            .collect();
        let picks: Vec<(usize, usize)> = rows.iter().map(|&r| pool[r]).collect();
        let frames = data.frames_tensor::<B>(&picks, device);
        let index = Tensor::<B, 1, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(
                rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [rows.len()],
            ),
            device,
        );
        let latents = sample_posterior(
            means.clone().select(0, index.clone()),
            logvars.clone().select(0, index),
            &mut rng,
        );
        let lr = trainer.lr_at(trainer.step);
        let (loss, l1) = trainer.step(latents, frames);
        anyhow::ensure!(
            loss.is_finite(),
            "the loss diverged at step {}",
            trainer.step
        );
        recent.push_back(loss as f64);
        if recent.len() > 50 {
            recent.pop_front();
        }
        if trainer.step.is_multiple_of(10) || trainer.step == opts.steps {
            let line = LogLine {
                step: trainer.step,
                loss: loss as f64,
                l1: l1 as f64,
                lr,
            };
            writeln!(log, "{}", serde_json::to_string(&line)?)?;
        }
        progress("decoder", trainer.step, opts.steps, loss as f64);
    }
    log.flush()?;
    drop(log);

    let eval = data.eval_frames(64);
    let frames = data.frames_tensor::<B>(&eval, device);
    let full = reconstruction(&vae, frames.clone(), true);
    let vae = vae.with_light_decoder(Some(trainer.valid()));
    let light = reconstruction(&vae, frames, false);

    ckpt.model.vae.light_decoder = Some(opts.decoder.clone());
    let report = DecoderReport {
        game: ckpt.game.name().to_string(),
        decoder: opts.decoder.clone(),
        parameters,
        steps: opts.steps,
        batch: opts.batch,
        pool: opts.pool,
        learning_rate: opts.learning_rate,
        seed: opts.seed,
        wall_seconds: start.elapsed().as_secs_f64(),
        eval_frames: eval.len(),
        full,
        light,
        final_train_loss: recent.iter().sum::<f64>() / recent.len().max(1) as f64,
    };
    std::fs::write(tmp.join(VAE_FILE), to_safetensors(&vae)?)?;
    std::fs::write(tmp.join(DYNAMICS_FILE), dynamics)?;
    std::fs::write(
        tmp.join(REPORT_FILE),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(tmp.join(CONFIG_FILE), ckpt.to_json())?;
    if opts.out.exists() {
        std::fs::remove_dir(&opts.out)
            .with_context(|| format!("replacing the empty {}", opts.out.display()))?;
    }
    std::fs::rename(&tmp, &opts.out).with_context(|| {
        format!(
            "moving {} into place as {}",
            tmp.display(),
            opts.out.display()
        )
    })?;
    Ok(report)
}

/// The temporary sibling the run writes into.
fn tmp_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!(".{name}.partial"))
}
