//! The play decoder: a small convolutional net that works entirely on the latent grid and
//! ends in one depth-to-space, trained after the VAE against the frozen encoder.
//!
//! Why a second decoder: the VAE's own decoder (upsampling, 3x3 convolutions at twice the
//! latent resolution, group norms and SiLU) was a third of a play frame on the CPU backends,
//! and it runs every frame. This one keeps all its convolutions at the latent resolution
//! (16x fewer positions than the frame), uses ReLU (free on every backend) and no norms, and
//! lets a final 3x3 convolution emit every pixel of each `f x f` block (`f` the VAE's
//! downsampling factor) as channels. The encoder, the latent space and so the dynamics model
//! are unchanged: only the picture is drawn by a cheaper net (`gamegen world train-decoder`).

use burn::module::{AutodiffModule, Module};
use burn::nn::conv::Conv2d;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::relu;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::world::ConfigError;
use crate::world::model::blocks::conv3;
use crate::world::model::pixel_weights::rare_colour_weight_tensor;
use crate::world::model::vae::{Vae, depth_to_space_by, reconstruction_loss, sample_posterior};

/// Shape of the play decoder. Saved in `config.json` under `vae.light_decoder`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightDecoderConfig {
    /// Channels of every layer (on the latent grid).
    pub channels: usize,
    /// Residual blocks (two 3x3 convolutions each) between the input and output convolutions.
    pub res_blocks: usize,
}

impl LightDecoderConfig {
    /// The default for `tiny` models: 32 channels, two residual blocks (52 k weights, 53 M
    /// multiply-adds for a 128 x 128 frame, all on the 32 x 32 grid). 24 channels and one
    /// block (22 k weights) lost Pong's paddles.
    pub fn tiny() -> Self {
        Self {
            channels: 32,
            res_blocks: 2,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::world::check_range("vae.light_decoder.channels", self.channels, 512)?;
        if self.res_blocks > 8 {
            return Err(ConfigError(
                "vae.light_decoder.res_blocks must be <= 8".into(),
            ));
        }
        Ok(())
    }

    /// A decoder from `latent_channels` on the latent grid to RGB frames `factor` times
    /// larger.
    pub fn init<B: Backend>(
        &self,
        latent_channels: usize,
        factor: usize,
        device: &B::Device,
    ) -> Result<LightDecoder<B>, ConfigError> {
        self.validate()?;
        let c = self.channels;
        Ok(LightDecoder {
            conv_in: conv3(latent_channels, c, 1, device),
            blocks: (0..self.res_blocks)
                .map(|_| LightBlock {
                    conv1: conv3(c, c, 1, device),
                    conv2: conv3(c, c, 1, device),
                })
                .collect(),
            conv_out: conv3(c, 3 * factor * factor, 1, device),
            factor,
        })
    }
}

#[derive(Module, Debug)]
pub struct LightBlock<B: Backend> {
    pub(crate) conv1: Conv2d<B>,
    pub(crate) conv2: Conv2d<B>,
}

#[derive(Module, Debug)]
pub struct LightDecoder<B: Backend> {
    pub(crate) conv_in: Conv2d<B>,
    pub(crate) blocks: Vec<LightBlock<B>>,
    pub(crate) conv_out: Conv2d<B>,
    pub(crate) factor: usize,
}

impl<B: Backend> LightDecoder<B> {
    /// Unscaled latent `[N, C, h, w]` -> image `[N, 3, f h, f w]` in `[-1, 1]`-ish (no clamp,
    /// for the loss).
    pub fn forward(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.conv_in.forward(latent);
        for b in &self.blocks {
            x = x.clone() + b.conv2.forward(relu(b.conv1.forward(relu(x))));
        }
        depth_to_space_by(self.conv_out.forward(relu(x)), self.factor)
    }
}

/// A sample of the frozen encoder's posterior for frames `[N, 3, H, W]` in `[0, 1]`: the
/// unscaled latent the VAE's own decoder was trained on (`mean + sigma * eps`), so the play
/// decoder learns the same tolerance to latent noise.
pub fn posterior_sample<B: Backend>(
    vae: &Vae<B>,
    frames: Tensor<B, 4>,
    rng: &mut Rng,
) -> Tensor<B, 4> {
    let (mean, logvar) = vae.encode(frames);
    sample_posterior(mean, logvar, rng)
}

/// Trains a [`LightDecoder`] on (posterior sample, frame) pairs with the VAE's reconstruction
/// loss (L1 with rare colours weighted as the VAE's, + image-gradient L1). AdamW; the learning
/// rate warms up over the first 5% of the steps and then follows a cosine down to a tenth.
pub struct LightDecoderTrainer<B: AutodiffBackend> {
    pub decoder: LightDecoder<B>,
    pub step: usize,
    total_steps: usize,
    learning_rate: f64,
    structure_weight: f64,
    rare_colour_power: f64,
    optim: OptimizerAdaptor<AdamW, LightDecoder<B>, B>,
}

impl<B: AutodiffBackend> LightDecoderTrainer<B> {
    pub fn new(
        decoder: LightDecoder<B>,
        total_steps: usize,
        learning_rate: f64,
        structure_weight: f64,
    ) -> Self {
        Self {
            decoder,
            step: 0,
            total_steps: total_steps.max(1),
            learning_rate,
            structure_weight,
            rare_colour_power: 0.0,
            optim: AdamWConfig::new().with_weight_decay(1e-4).init(),
        }
    }

    /// Weight the L1 term by colour rarity (`pixel_weights`), as the VAE it decodes for was.
    pub fn with_rare_colour_power(mut self, power: f64) -> Self {
        self.rare_colour_power = power;
        self
    }

    /// The learning rate of step `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        let warm = (self.total_steps / 20).max(1);
        if step < warm {
            return self.learning_rate * (step + 1) as f64 / warm as f64;
        }
        let t = (step - warm) as f64 / (self.total_steps - warm).max(1) as f64;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
        self.learning_rate * (0.1 + 0.9 * cosine)
    }

    /// One step on posterior samples `latents` of `frames` (in `[0, 1]`); returns
    /// `(total loss, L1)`.
    pub fn step(
        &mut self,
        latents: Tensor<B::InnerBackend, 4>,
        frames: Tensor<B::InnerBackend, 4>,
    ) -> (f32, f32) {
        let recon = self.decoder.forward(Tensor::from_inner(latents));
        let weights = rare_colour_weight_tensor(&frames, self.rare_colour_power)
            .map(Tensor::<B, 4>::from_inner);
        let target = Tensor::<B, 4>::from_inner(frames.mul_scalar(2.0).sub_scalar(1.0));
        let (total, l1, _) = reconstruction_loss(recon, target, self.structure_weight, weights);
        let values = (
            total.clone().into_scalar().elem::<f32>(),
            l1.into_scalar().elem::<f32>(),
        );
        let grads = GradientsParams::from_grads(total.backward(), &self.decoder);
        let lr = self.lr_at(self.step);
        self.decoder = self.optim.step(lr, self.decoder.clone(), grads);
        self.step += 1;
        values
    }

    /// The decoder without its autodiff graph.
    pub fn valid(&self) -> LightDecoder<B::InnerBackend> {
        self.decoder.valid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    type B = NdArray;

    /// Frames of a bright square on a dark field at random places, `[n, 3, 16, 16]`.
    fn squares(n: usize, rng: &mut Rng) -> Tensor<B, 4> {
        let mut v = vec![0.1f32; n * 3 * 16 * 16];
        for i in 0..n {
            let (x, y) = (rng.below(12) as usize, rng.below(12) as usize);
            for c in 0..3 {
                for dy in 0..4 {
                    for dx in 0..4 {
                        v[((i * 3 + c) * 16 + y + dy) * 16 + x + dx] = 0.9;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(v, [n, 3, 16, 16]), &Default::default())
    }

    #[test]
    fn training_lowers_the_reconstruction_loss_and_is_deterministic() {
        let run = || {
            let dev = Default::default();
            let vae = crate::world::model::vae::VaeConfig::tiny(16, 16)
                .init_seeded::<B>(3, &dev)
                .unwrap();
            let decoder = crate::world::model::blocks::reseed(
                LightDecoderConfig::tiny()
                    .init::<Autodiff<B>>(4, 4, &dev)
                    .unwrap(),
                5,
            );
            let mut t = LightDecoderTrainer::new(decoder, 60, 3e-3, 1.0);
            let mut rng = Rng::new(7);
            let mut losses = Vec::new();
            for _ in 0..60 {
                let frames = squares(8, &mut rng);
                let z = posterior_sample(&vae, frames.clone(), &mut rng);
                losses.push(t.step(z, frames).1);
            }
            losses
        };
        let a = run();
        let first: f32 = a[..5].iter().sum::<f32>() / 5.0;
        let last: f32 = a[55..].iter().sum::<f32>() / 5.0;
        assert!(last < 0.6 * first, "L1 {first} -> {last}");
        assert_eq!(a, run(), "same seeds, same losses");
    }

    #[test]
    fn the_learning_rate_warms_up_then_decays_to_a_tenth() {
        let dev = Default::default();
        let d = LightDecoderConfig::tiny()
            .init::<Autodiff<B>>(4, 4, &dev)
            .unwrap();
        let t = LightDecoderTrainer::new(d, 1000, 1e-3, 1.0);
        assert!(t.lr_at(0) < t.lr_at(49));
        assert!((t.lr_at(50) - 1e-3).abs() < 1e-9);
        assert!((t.lr_at(999) - 1e-4).abs() < 2e-6);
    }

    #[test]
    fn decodes_the_latent_grid_to_full_frames() {
        let dev = Default::default();
        let d = LightDecoderConfig::tiny().init::<B>(4, 4, &dev).unwrap();
        let y = d.forward(Tensor::zeros([2, 4, 8, 12], &dev));
        assert_eq!(y.dims(), [2, 3, 32, 48]);
        let mut bad = LightDecoderConfig::tiny();
        bad.channels = 0;
        assert!(bad.init::<B>(4, 4, &dev).is_err());
    }

    #[test]
    fn depth_to_space_places_each_channel_at_its_pixel() {
        let dev = Default::default();
        let (f, c, h, w) = (4, 3, 2, 3);
        let data: Vec<f32> = (0..c * f * f * h * w).map(|i| i as f32).collect();
        let x =
            Tensor::<B, 4>::from_data(TensorData::new(data.clone(), [1, c * f * f, h, w]), &dev);
        let y: Vec<f32> = depth_to_space_by(x, f).into_data().to_vec().unwrap();
        for ch in 0..c {
            for dy in 0..f {
                for dx in 0..f {
                    for i in 0..h {
                        for j in 0..w {
                            let src = data[((ch * f * f + f * dy + dx) * h + i) * w + j];
                            let dst = y[(ch * f * h + f * i + dy) * f * w + f * j + dx];
                            assert_eq!(src, dst);
                        }
                    }
                }
            }
        }
    }
}
