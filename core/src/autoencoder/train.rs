use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::{FrameAutoencoder, FrameAutoencoderConfig};
use crate::data::synthetic::synthetic_batch;

/// Training hyper-parameters, saved in the model card and `train.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AeTrainConfig {
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Seed of the synthetic training stream; the validation stream uses `seed + 1`.
    pub seed: u64,
}

impl Default for AeTrainConfig {
    fn default() -> Self {
        Self {
            steps: 300,
            batch_size: 16,
            learning_rate: 3e-3,
            seed: 0,
        }
    }
}

/// Owns the model and optimiser state; `step` advances one batch. The caller (the CLI) drives
/// the loop so that it can show progress and write checkpoints.
pub struct AeTrainer<B: AutodiffBackend> {
    pub model: FrameAutoencoder<B>,
    optim: OptimizerAdaptor<Adam, FrameAutoencoder<B>, B>,
    pub config: AeTrainConfig,
    pub model_config: FrameAutoencoderConfig,
    pub step: usize,
    device: B::Device,
}

impl<B: AutodiffBackend> AeTrainer<B> {
    pub fn new(
        model_config: FrameAutoencoderConfig,
        config: AeTrainConfig,
        device: B::Device,
    ) -> Self {
        B::seed(&device, config.seed);
        // Burn's initialisers draw from a process-wide generator that `B::seed` does not pin
        // down on every backend; redraw the weights from our own seeded stream so that the same
        // seed gives byte-identical checkpoints.
        let model =
            crate::world::model::blocks::reseed(model_config.init::<B>(&device), config.seed);
        Self {
            model,
            optim: AdamConfig::new().init(),
            config,
            model_config,
            step: 0,
            device,
        }
    }

    /// One optimisation step on the next synthetic batch; returns the training MSE.
    pub fn step(&mut self) -> f32 {
        let size = self.model_config.image_size;
        let bs = self.config.batch_size;
        let data = synthetic_batch(size, self.config.seed, (self.step * bs) as u64, bs);
        let x = self.model.input_from_slice(data, bs, &self.device);
        let y = self.model.forward(x.clone());
        let loss = (y - x).powi_scalar(2).mean();
        let value: f32 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optim
            .step(self.config.learning_rate, self.model.clone(), grads);
        self.step += 1;
        value
    }

    /// Mean squared error on `count` held-out frames (a different seed than training).
    pub fn validation_mse(&self, count: usize) -> f32 {
        let model = self.model.valid();
        let size = self.model_config.image_size;
        let data = synthetic_batch(size, self.config.seed.wrapping_add(1), 0, count);
        let x = model.input_from_slice(data, count, &self.device);
        let y = model.forward(x.clone());
        (y - x).powi_scalar(2).mean().into_scalar().elem()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    /// Flex, the shipped default: on this tiny net Autodiff<NdArray> plateaus at the mean frame
    /// (MSE 0.093 -> 0.070 in 100 steps where Flex reaches 0.04), so NdArray would test a
    /// backend quirk, not the trainer.
    type B = Autodiff<Flex>;

    #[test]
    fn training_lowers_the_loss() {
        let cfg = FrameAutoencoderConfig {
            image_size: 32,
            ..Default::default()
        };
        let train = AeTrainConfig {
            steps: 100,
            batch_size: 16,
            learning_rate: 3e-3,
            seed: 1,
        };
        let mut t = AeTrainer::<B>::new(cfg, train, Default::default());
        let before = t.validation_mse(16);
        for _ in 0..100 {
            t.step();
        }
        let after = t.validation_mse(16);
        assert!(after < before * 0.7, "mse {before} -> {after}");
    }
}
