use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Shape of the autoencoder. Saved as `config.json` beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameAutoencoderConfig {
    /// Square frame side in pixels; must be divisible by 4 (two stride-2 stages).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// Feature channels after the first and second down-sampling stage.
    #[serde(default = "default_channels")]
    pub channels: [usize; 2],
    /// Channels of the latent grid (`image_size / 4` on a side).
    #[serde(default = "default_latent_channels")]
    pub latent_channels: usize,
}

fn default_image_size() -> usize {
    32
}
fn default_channels() -> [usize; 2] {
    [16, 32]
}
fn default_latent_channels() -> usize {
    8
}

impl Default for FrameAutoencoderConfig {
    fn default() -> Self {
        Self {
            image_size: default_image_size(),
            channels: default_channels(),
            latent_channels: default_latent_channels(),
        }
    }
}

impl FrameAutoencoderConfig {
    /// Reject configs that would build a nonsensical or absurdly large model, before allocating.
    pub fn validate(&self) -> Result<(), String> {
        if self.image_size == 0 || !self.image_size.is_multiple_of(4) || self.image_size > 1024 {
            return Err(format!(
                "image_size must be a positive multiple of 4 up to 1024, got {}",
                self.image_size
            ));
        }
        for (i, &c) in self
            .channels
            .iter()
            .chain(std::iter::once(&self.latent_channels))
            .enumerate()
        {
            if c == 0 || c > 1024 {
                return Err(format!("channel count #{i} must be in 1..=1024, got {c}"));
            }
        }
        Ok(())
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> FrameAutoencoder<B> {
        let [c0, c1] = self.channels;
        let z = self.latent_channels;
        let conv3 = |i, o, stride| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        FrameAutoencoder {
            enc1: conv3(3, c0, 2),
            enc2: conv3(c0, c1, 2),
            to_latent: Conv2dConfig::new([c1, z], [1, 1]).init(device),
            from_latent: conv3(z, c1, 1),
            dec1: conv3(c1, c0, 1),
            dec2: conv3(c0, c0, 1),
            to_rgb: conv3(c0, 3, 1),
            image_size: self.image_size,
        }
    }
}

/// Encoder: 3 -> c0 (stride 2) -> c1 (stride 2) -> latent (1x1).
/// Decoder: latent -> c1, upsample x2, -> c0, upsample x2, -> c0 -> RGB, sigmoid.
#[derive(Module, Debug)]
pub struct FrameAutoencoder<B: Backend> {
    enc1: Conv2d<B>,
    enc2: Conv2d<B>,
    to_latent: Conv2d<B>,
    from_latent: Conv2d<B>,
    dec1: Conv2d<B>,
    dec2: Conv2d<B>,
    to_rgb: Conv2d<B>,
    image_size: usize,
}

fn upsample2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        [h * 2, w * 2],
        InterpolateOptions::new(InterpolateMode::Nearest),
    )
}

impl<B: Backend> FrameAutoencoder<B> {
    /// `[batch, 3, H, W]` in `[0, 1]` -> `[batch, latent, H/4, W/4]`.
    pub fn encode(&self, frames: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(self.enc1.forward(frames));
        let x = relu(self.enc2.forward(x));
        self.to_latent.forward(x)
    }

    /// Latent grid back to frames in `[0, 1]`.
    pub fn decode(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(self.from_latent.forward(latent));
        let x = relu(self.dec1.forward(upsample2(x)));
        let x = relu(self.dec2.forward(upsample2(x)));
        sigmoid(self.to_rgb.forward(x))
    }

    pub fn forward(&self, frames: Tensor<B, 4>) -> Tensor<B, 4> {
        self.decode(self.encode(frames))
    }

    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// Build an input tensor from channel-major frames (`count * 3 * size * size` floats).
    pub fn input_from_slice(
        &self,
        data: Vec<f32>,
        count: usize,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let s = self.image_size;
        Tensor::from_data(TensorData::new(data, [count, 3, s, s]), device)
    }
}
