//! Native side of the frame autoencoder: training with progress and atomic checkpoints,
//! loading with clear errors, and the CPU backend benchmark.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use gamegen_core::autoencoder::{
    AeTrainConfig, AeTrainer, FrameAutoencoder, FrameAutoencoderConfig,
};
use gamegen_core::checkpoint;
use gamegen_core::data::synthetic::synthetic_batch;
use serde::Serialize;

use crate::fsutil::write_atomic;

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const TRAIN_FILE: &str = "train.json";

/// What training measured; written as `train.json` beside the checkpoint and quoted by the
/// model card.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub backend: String,
    pub train: AeTrainConfig,
    pub model: FrameAutoencoderConfig,
    pub parameters: usize,
    pub wall_seconds: f64,
    pub initial_val_mse: f32,
    pub final_val_mse: f32,
    /// Training loss every 10 steps.
    pub loss_curve: Vec<(usize, f32)>,
}

/// Train from scratch and write `model.safetensors`, `config.json` and `train.json` to `out`.
pub fn train<B: Backend>(
    device: B::Device,
    backend_name: &str,
    model_config: FrameAutoencoderConfig,
    train_config: AeTrainConfig,
    out: &Path,
    progress: &dyn Fn(usize, f32),
) -> anyhow::Result<TrainReport> {
    model_config.validate().map_err(anyhow::Error::msg)?;
    let start = Instant::now();
    let mut trainer =
        AeTrainer::<Autodiff<B>>::new(model_config.clone(), train_config.clone(), device);
    let initial_val_mse = trainer.validation_mse(64);
    let mut loss_curve = Vec::new();
    for step in 0..train_config.steps {
        let loss = trainer.step();
        if step % 10 == 0 || step + 1 == train_config.steps {
            loss_curve.push((step, loss));
        }
        progress(step + 1, loss);
    }
    let final_val_mse = trainer.validation_mse(64);
    let model = trainer.model.valid();
    let report = TrainReport {
        backend: backend_name.to_string(),
        parameters: burn::module::Module::num_params(&model),
        train: train_config,
        model: model_config.clone(),
        wall_seconds: start.elapsed().as_secs_f64(),
        initial_val_mse,
        final_val_mse,
        loss_curve,
    };
    save(&model, &model_config, out)?;
    write_atomic(
        &out.join(TRAIN_FILE),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

/// Write weights and config atomically (weights first: a directory whose config exists always
/// has matching weights beside it).
pub fn save<B: Backend>(
    model: &FrameAutoencoder<B>,
    config: &FrameAutoencoderConfig,
    out: &Path,
) -> anyhow::Result<()> {
    let bytes = checkpoint::to_safetensors(model)?;
    write_atomic(&out.join(WEIGHTS_FILE), &bytes)
        .with_context(|| format!("cannot write {}", out.join(WEIGHTS_FILE).display()))?;
    write_atomic(
        &out.join(CONFIG_FILE),
        checkpoint::config_to_json(config).as_bytes(),
    )
    .with_context(|| format!("cannot write {}", out.join(CONFIG_FILE).display()))?;
    Ok(())
}

/// Load a checkpoint directory, checking the config before allocating and every tensor's name
/// and shape.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> anyhow::Result<FrameAutoencoder<B>> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let config: FrameAutoencoderConfig = checkpoint::config_from_json(&text)
        .with_context(|| format!("in {}", config_path.display()))?;
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("in {}", config_path.display()))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights_path)
        .with_context(|| format!("cannot read {}", weights_path.display()))?;
    let model = checkpoint::from_safetensors(config.init::<B>(device), bytes)
        .with_context(|| format!("in {}", weights_path.display()))?;
    Ok(model)
}

/// Reconstruct `count` synthetic frames (`seed`, starting at `index`): returns the flat
/// `[count, 3, size, size]` output.
pub fn reconstruct<B: Backend>(
    model: &FrameAutoencoder<B>,
    device: &B::Device,
    seed: u64,
    index: u64,
    count: usize,
) -> anyhow::Result<Vec<f32>> {
    let data = synthetic_batch(model.image_size(), seed, index, count);
    let x = model.input_from_slice(data, count, device);
    let y = model.forward(x);
    y.into_data()
        .into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read model output: {e:?}"))
}

/// Milliseconds per training step and per inference batch on backend `B`.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub train_ms_per_step: f64,
    pub infer_ms_per_batch: f64,
}

pub fn bench<B: Backend>(
    device: B::Device,
    name: &str,
    model_config: &FrameAutoencoderConfig,
    batch: usize,
    iters: usize,
) -> BenchResult {
    let train = AeTrainConfig {
        steps: iters,
        batch_size: batch,
        learning_rate: 1e-3,
        seed: 0,
    };
    let mut trainer = AeTrainer::<Autodiff<B>>::new(model_config.clone(), train, device.clone());
    trainer.step(); // warm-up
    let t = Instant::now();
    for _ in 0..iters {
        trainer.step();
    }
    let train_ms = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let model = trainer.model.valid();
    let run = || {
        reconstruct(&model, &device, 1, 0, batch).expect("backend readback");
    };
    run();
    let t = Instant::now();
    for _ in 0..iters {
        run();
    }
    BenchResult {
        backend: name.to_string(),
        train_ms_per_step: train_ms,
        infer_ms_per_batch: t.elapsed().as_secs_f64() * 1e3 / iters as f64,
    }
}
