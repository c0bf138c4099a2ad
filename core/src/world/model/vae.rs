//! KL autoencoder: frames <-> a small latent grid (latent-diffusion style, as PlayGen).
//!
//! The encoder runs at training time and once per session (the first real frame); the decoder
//! runs on every generated frame, in the browser too, so it gets its own (smaller) width: the
//! `tiny` decoder is a few tens of MFLOPs. LPIPS needs pretrained weights we cannot fetch, so
//! the perceptual term is replaced by an image-gradient L1 (edges and flat regions are what
//! these games are made of); the KL weight is tiny as in PlayGen (1e-6), only keeping the latent
//! well-scaled for diffusion.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::world::model::blocks::{
    ResBlock, conv1, conv3, group_norm, group_norm_fused, upsample2,
};
use crate::world::model::light_decoder::{LightDecoder, LightDecoderConfig};
use crate::world::model::pixel_weights::rare_colour_weight_tensor;
use crate::world::{ConfigError, check_range};

/// Shape and loss weights of the autoencoder. Saved in `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Frame height and width in pixels; divisible by the downsampling factor.
    pub height: usize,
    pub width: usize,
    /// Base channel count of the encoder.
    pub channels: usize,
    /// Channel multiplier per level; the grid shrinks by 2 between levels, so the latent is
    /// `2^(levels-1)` times smaller on a side.
    pub channel_mult: Vec<usize>,
    /// Residual blocks per encoder level.
    pub num_res_blocks: usize,
    /// Base channel count of the decoder (it runs every frame: keep it small for `tiny`).
    pub decoder_channels: usize,
    /// Residual blocks per decoder level.
    pub decoder_res_blocks: usize,
    /// A middle block (res, optional attention, res) at the latent resolution.
    pub mid_block: bool,
    /// Self-attention inside the middle block (PlayGen has it only there).
    pub mid_attention: bool,
    /// Channels of the latent grid.
    pub latent_channels: usize,
    /// The diffusion model sees `mean * latent_scale`, so its latents have roughly unit scale.
    pub latent_scale: f64,
    /// Weight of the KL term (per pixel value, as the reconstruction terms are means).
    pub kl_weight: f64,
    /// Weight of the image-gradient structure term.
    pub structure_weight: f64,
    /// Exponent of the rare-colour weighting of the L1 term (`pixel_weights`; 0: plain mean).
    /// Absent in older checkpoints, which were trained with the plain mean.
    #[serde(default)]
    pub rare_colour_power: f64,
    /// The finest level works on 2x2 pixel blocks: frames enter by space-to-depth and leave by
    /// depth-to-space, and the first level change keeps the resolution. The latent grid is the
    /// same, but no convolution runs at full resolution, which is most of the decoder's cost in
    /// a browser frame and most of the encoder's in training. Absent in older checkpoints.
    #[serde(default)]
    pub pixel_shuffle: bool,
    /// The play decoder (`light_decoder`), trained after the VAE; when present, play and
    /// rollouts decode with it instead of the VAE's own decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light_decoder: Option<LightDecoderConfig>,
}

impl VaeConfig {
    /// CPU-trainable, with a decoder cheap enough for every browser frame.
    pub fn tiny(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            channels: 16,
            channel_mult: vec![1, 2, 2],
            num_res_blocks: 1,
            decoder_channels: 8,
            decoder_res_blocks: 1,
            mid_block: false,
            mid_attention: false,
            latent_channels: 4,
            latent_scale: 1.0,
            kl_weight: 1e-6,
            structure_weight: 1.0,
            rare_colour_power: 0.5,
            pixel_shuffle: true,
            light_decoder: None,
        }
    }

    /// PlayGen's sizes: channels 128, multipliers [1, 2, 4], 2 res blocks, attention only in the
    /// middle, 4 latent channels at x4 down, latent scaled by 0.64.
    pub fn paper(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            channels: 128,
            channel_mult: vec![1, 2, 4],
            num_res_blocks: 2,
            decoder_channels: 128,
            decoder_res_blocks: 3,
            mid_block: true,
            mid_attention: true,
            latent_channels: 4,
            latent_scale: 0.64,
            kl_weight: 1e-6,
            structure_weight: 1.0,
            rare_colour_power: 0.5,
            pixel_shuffle: false,
            light_decoder: None,
        }
    }

    /// How much smaller the latent grid is on a side.
    pub fn downsample(&self) -> usize {
        1 << (self.channel_mult.len().saturating_sub(1))
    }

    /// `[latent_channels, height / f, width / f]`.
    pub fn latent_shape(&self) -> [usize; 3] {
        let f = self.downsample();
        [self.latent_channels, self.height / f, self.width / f]
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("vae.channel_mult length", self.channel_mult.len(), 6)?;
        let f = self.downsample();
        for (name, v) in [("vae.height", self.height), ("vae.width", self.width)] {
            check_range(name, v, 2048)?;
            if v % f != 0 {
                return Err(ConfigError(format!(
                    "{name} = {v} is not divisible by the downsampling factor {f}"
                )));
            }
        }
        check_range("vae.channels", self.channels, 1024)?;
        check_range("vae.decoder_channels", self.decoder_channels, 1024)?;
        check_range("vae.latent_channels", self.latent_channels, 64)?;
        if self.pixel_shuffle && self.channel_mult.len() < 2 {
            return Err(ConfigError(
                "vae.pixel_shuffle needs at least two levels (channel_mult)".into(),
            ));
        }
        if self.num_res_blocks > 8 || self.decoder_res_blocks > 8 {
            return Err(ConfigError("vae res blocks per level must be <= 8".into()));
        }
        for &m in &self.channel_mult {
            check_range("vae.channel_mult entry", m, 16)?;
            check_range("vae channels x mult", self.channels * m, 2048)?;
            check_range(
                "vae decoder channels x mult",
                self.decoder_channels * m,
                2048,
            )?;
        }
        crate::world::check_parameters("VAE", self.parameter_estimate())?;
        if let Some(light) = &self.light_decoder {
            light.validate()?;
        }
        if !(self.latent_scale.is_finite() && self.latent_scale > 0.0) {
            return Err(ConfigError("vae.latent_scale must be positive".into()));
        }
        if !(self.kl_weight >= 0.0
            && self.structure_weight >= 0.0
            && (0.0..=2.0).contains(&self.rare_colour_power))
        {
            return Err(ConfigError(
                "vae loss weights must be >= 0 and vae.rare_colour_power in 0..=2".into(),
            ));
        }
        Ok(())
    }

    /// An upper bound on the VAE's parameter count, computed without allocating: every
    /// convolution counted as 3x3 at the widest level's width. Only meaningful once the
    /// per-field ranges hold (they bound the arithmetic).
    pub fn parameter_estimate(&self) -> u64 {
        let widest = self.channel_mult.iter().copied().max().unwrap_or(1) as u64
            * self.channels.max(self.decoder_channels) as u64;
        let levels = self.channel_mult.len() as u64;
        let res = (self.num_res_blocks + self.decoder_res_blocks) as u64;
        // Two convolutions and a 1x1 skip per res block, a resampling conv per level, the mid
        // blocks (four convolutions and attention each side) and the in/out convolutions.
        let convs = levels * (3 * res + 2) + 2 * 6 + 4;
        convs.saturating_mul(9 * widest * widest + 4 * widest)
    }

    /// Build the VAE with weights that are a pure function of `seed` (see `blocks::reseed`).
    pub fn init_seeded<B: Backend>(
        &self,
        seed: u64,
        device: &B::Device,
    ) -> Result<Vae<B>, ConfigError> {
        // The snapping in `reseed` looks at the backend's first draws: seed them too, so the
        // result does not depend on what the process drew before (e.g. a resumed run).
        B::seed(device, seed);
        Ok(crate::world::model::blocks::reseed(
            self.init(device)?,
            seed,
        ))
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Vae<B>, ConfigError> {
        self.validate()?;
        let levels = self.channel_mult.len();
        let ch = |m: usize| self.channels * m;
        let dch = |m: usize| self.decoder_channels * m;

        // Encoder.
        let mut enc_blocks = Vec::new();
        let mut downs = Vec::new();
        let mut cin = self.channels;
        for (i, &m) in self.channel_mult.iter().enumerate() {
            let mut level = Vec::new();
            for _ in 0..self.num_res_blocks {
                level.push(ResBlock::new(cin, ch(m), device));
                cin = ch(m);
            }
            enc_blocks.push(level);
            if i + 1 < levels {
                // With pixel shuffle the first level change is already done by space-to-depth.
                let stride = if self.pixel_shuffle && i == 0 { 1 } else { 2 };
                downs.push(
                    burn::nn::conv::Conv2dConfig::new([cin, cin], [3, 3])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                );
            }
        }
        let enc_mid = self
            .mid_block
            .then(|| MidBlock::new(cin, self.mid_attention, device));
        let encoder = Encoder {
            conv_in: conv3(3 * self.pixel_block(), self.channels, 1, device),
            blocks: enc_blocks,
            downs,
            mid: enc_mid,
            norm_out: group_norm(cin, device),
            conv_out: conv3(cin, 2 * self.latent_channels, 1, device),
        };

        // Decoder, coarse to fine.
        let top = dch(*self.channel_mult.last().expect("validated non-empty"));
        let mut dec_blocks = Vec::new();
        let mut ups = Vec::new();
        let mut cin = top;
        for i in (0..levels).rev() {
            let cout = dch(self.channel_mult[i]);
            let mut level = Vec::new();
            for _ in 0..self.decoder_res_blocks {
                level.push(ResBlock::new(cin, cout, device));
                cin = cout;
            }
            dec_blocks.push(level);
            if i > 0 {
                let next = dch(self.channel_mult[i - 1]);
                ups.push(conv3(cin, next, 1, device));
                cin = next;
            }
        }
        let decoder = Decoder {
            conv_in: conv3(self.latent_channels, top, 1, device),
            mid: self
                .mid_block
                .then(|| MidBlock::new(top, self.mid_attention, device)),
            blocks: dec_blocks,
            ups,
            norm_out: group_norm(cin, device),
            conv_out: conv3(cin, 3 * self.pixel_block(), 1, device),
        };
        let light = match &self.light_decoder {
            Some(l) => Some(l.init(self.latent_channels, self.downsample(), device)?),
            None => None,
        };
        Ok(Vae {
            encoder,
            decoder,
            light,
            latent_channels: self.latent_channels,
            latent_scale: self.latent_scale,
            kl_weight: self.kl_weight,
            structure_weight: self.structure_weight,
            rare_colour_power: self.rare_colour_power,
            pixel_shuffle: self.pixel_shuffle,
        })
    }

    /// Pixels per position of the finest level: 4 with pixel shuffle, else 1.
    fn pixel_block(&self) -> usize {
        if self.pixel_shuffle { 4 } else { 1 }
    }
}

/// `[B, C, H, W]` -> `[B, 4C, H/2, W/2]`: each 2x2 block of pixels becomes four channels.
pub fn space_to_depth<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([b, c * 4, h / 2, w / 2])
}

/// The inverse of [`space_to_depth`]: `[B, 4C, H, W]` -> `[B, C, 2H, 2W]`.
pub fn depth_to_space<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    depth_to_space_by(x, 2)
}

/// `[N, C f^2, h, w]` -> `[N, C, f h, f w]`: channel `c f^2 + f dy + dx` at `(i, j)` becomes
/// pixel `(f i + dy, f j + dx)` of channel `c`.
pub fn depth_to_space_by<B: Backend>(x: Tensor<B, 4>, f: usize) -> Tensor<B, 4> {
    let [b, cf, h, w] = x.dims();
    let c = cf / (f * f);
    x.reshape([b, c, f, f, h, w])
        .permute([0, 1, 4, 2, 5, 3])
        .reshape([b, c, h * f, w * f])
}

/// Single-head spatial self-attention with a residual connection (the LDM middle block's).
#[derive(Module, Debug)]
pub struct SpatialAttention<B: Backend> {
    norm: GroupNorm<B>,
    q: Conv2d<B>,
    k: Conv2d<B>,
    v: Conv2d<B>,
    proj: Conv2d<B>,
}

impl<B: Backend> SpatialAttention<B> {
    fn new(c: usize, device: &B::Device) -> Self {
        Self {
            norm: group_norm(c, device),
            q: conv1(c, c, device),
            k: conv1(c, c, device),
            v: conv1(c, c, device),
            proj: conv1(c, c, device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let n = self.norm.forward(x.clone());
        let q = self
            .q
            .forward(n.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let k = self.k.forward(n.clone()).reshape([b, c, h * w]);
        let v = self.v.forward(n).reshape([b, c, h * w]).swap_dims(1, 2);
        let attn = softmax(q.matmul(k).div_scalar((c as f64).sqrt()), 2);
        let out = attn.matmul(v).swap_dims(1, 2).reshape([b, c, h, w]);
        x + self.proj.forward(out)
    }
}

#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    res1: ResBlock<B>,
    attn: Option<SpatialAttention<B>>,
    res2: ResBlock<B>,
}

impl<B: Backend> MidBlock<B> {
    fn new(c: usize, attention: bool, device: &B::Device) -> Self {
        Self {
            res1: ResBlock::new(c, c, device),
            attn: attention.then(|| SpatialAttention::new(c, device)),
            res2: ResBlock::new(c, c, device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.res1.forward(x);
        let x = match &self.attn {
            Some(a) => a.forward(x),
            None => x,
        };
        self.res2.forward(x)
    }
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    conv_in: Conv2d<B>,
    blocks: Vec<Vec<ResBlock<B>>>,
    downs: Vec<Conv2d<B>>,
    mid: Option<MidBlock<B>>,
    norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
}

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    conv_in: Conv2d<B>,
    mid: Option<MidBlock<B>>,
    blocks: Vec<Vec<ResBlock<B>>>,
    ups: Vec<Conv2d<B>>,
    norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
}

/// The loss terms of one VAE batch (all means, so comparable across frame sizes).
#[derive(Debug, Clone)]
pub struct VaeLoss<B: Backend> {
    pub total: Tensor<B, 1>,
    pub l1: Tensor<B, 1>,
    pub structure: Tensor<B, 1>,
    pub kl: Tensor<B, 1>,
}

#[derive(Module, Debug)]
pub struct Vae<B: Backend> {
    pub encoder: Encoder<B>,
    pub decoder: Decoder<B>,
    /// The play decoder, when the model has one (see [`LightDecoder`]).
    pub light: Option<LightDecoder<B>>,
    latent_channels: usize,
    latent_scale: f64,
    kl_weight: f64,
    structure_weight: f64,
    rare_colour_power: f64,
    pixel_shuffle: bool,
}

/// Mean absolute difference of horizontal and vertical finite differences: penalises blurred
/// edges, which plain L1 tolerates.
fn gradient_l1<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 1> {
    let [_, _, h, w] = a.dims();
    let dx = |t: Tensor<B, 4>| t.clone().narrow(3, 1, w - 1) - t.narrow(3, 0, w - 1);
    let dy = |t: Tensor<B, 4>| t.clone().narrow(2, 1, h - 1) - t.narrow(2, 0, h - 1);
    let gx = (dx(a.clone()) - dx(b.clone())).abs().mean();
    let gy = (dy(a) - dy(b)).abs().mean();
    (gx + gy).div_scalar(2.0)
}

/// A sample of the posterior `N(mean, exp(logvar))` (the reparameterisation the VAE trains
/// with): `mean + exp(logvar / 2) * eps`, `eps` drawn from `rng`.
pub fn sample_posterior<B: Backend>(
    mean: Tensor<B, 4>,
    logvar: Tensor<B, 4>,
    rng: &mut Rng,
) -> Tensor<B, 4> {
    let eps: Tensor<B, 4> = crate::world::ddim::gaussian(rng, mean.dims(), &mean.device());
    mean + logvar.mul_scalar(0.5).exp() * eps
}

/// Decoder output (`[-1, 1]`-ish) -> pixels in `[0, 1]`.
fn to_unit<B: Backend>(raw: Tensor<B, 4>) -> Tensor<B, 4> {
    raw.add_scalar(1.0).div_scalar(2.0).clamp(0.0, 1.0)
}

/// The reconstruction loss of the VAE and of the play decoder: mean L1 plus
/// `structure_weight` times the L1 of the horizontal and vertical image gradients, both on
/// images in `[-1, 1]`. Returns `(total, l1, structure)`.
pub fn reconstruction_loss<B: Backend>(
    recon: Tensor<B, 4>,
    target: Tensor<B, 4>,
    structure_weight: f64,
    weights: Option<Tensor<B, 4>>,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let error = (recon.clone() - target.clone()).abs();
    let l1 = match weights {
        Some(w) => (error * w).mean(),
        None => error.mean(),
    };
    let structure = gradient_l1(recon, target);
    let total = l1.clone() + structure.clone().mul_scalar(structure_weight);
    (total, l1, structure)
}

impl<B: Backend> Vae<B> {
    /// Frames `[B, 3, H, W]` in `[0, 1]` -> `(mean, logvar)` of the latent posterior.
    pub fn encode(&self, frames: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let e = &self.encoder;
        let mut x = frames.mul_scalar(2.0).sub_scalar(1.0);
        if self.pixel_shuffle {
            x = space_to_depth(x);
        }
        let mut x = e.conv_in.forward(x);
        for (i, level) in e.blocks.iter().enumerate() {
            for block in level {
                x = block.forward(x);
            }
            if let Some(down) = e.downs.get(i) {
                x = down.forward(x);
            }
        }
        if let Some(mid) = &e.mid {
            x = mid.forward(x);
        }
        let x = e.conv_out.forward(silu(e.norm_out.forward(x)));
        let c = self.latent_channels;
        let mean = x.clone().narrow(1, 0, c);
        let logvar = x.narrow(1, c, c).clamp(-30.0, 20.0);
        (mean, logvar)
    }

    /// Latent grid (unscaled) -> image in `[-1, 1]`-ish (no clamp, for the loss).
    pub fn decode_raw(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        self.decode_with(latent, false)
    }

    /// The decoder; `fused` (inference: the same up to float rounding) runs its group norms
    /// through the backend's fused layer norm.
    fn decode_with(&self, latent: Tensor<B, 4>, fused: bool) -> Tensor<B, 4> {
        let d = &self.decoder;
        let mut x = d.conv_in.forward(latent);
        if let Some(mid) = &d.mid {
            x = mid.forward(x);
        }
        for (i, level) in d.blocks.iter().enumerate() {
            for block in level {
                x = if fused {
                    block.forward_fused(x)
                } else {
                    block.forward(x)
                };
            }
            if let Some(up) = d.ups.get(i) {
                // With pixel shuffle the last level change is left to depth-to-space.
                let last = i + 1 == d.ups.len();
                x = if self.pixel_shuffle && last {
                    up.forward(x)
                } else {
                    up.forward(upsample2(x))
                };
            }
        }
        let activated = if fused {
            silu(group_norm_fused(&d.norm_out, x))
        } else {
            silu(d.norm_out.forward(x))
        };
        let out = d.conv_out.forward(activated);
        if self.pixel_shuffle {
            depth_to_space(out)
        } else {
            out
        }
    }

    /// Frames -> the diffusion latent (`mean * latent_scale`): deterministic, as at inference.
    pub fn encode_latent(&self, frames: Tensor<B, 4>) -> Tensor<B, 4> {
        self.encode(frames).0.mul_scalar(self.latent_scale)
    }

    /// Diffusion latent -> frames in `[0, 1]`, by the play decoder when the model has one.
    pub fn decode_latent(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        let latent = latent.div_scalar(self.latent_scale);
        let raw = match &self.light {
            Some(light) => light.forward(latent),
            None => self.decode_raw(latent),
        };
        to_unit(raw)
    }

    /// [`Self::decode_latent`] with the VAE's own decoder even when a play decoder exists (to
    /// compare the two).
    pub fn decode_latent_full(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        to_unit(self.decode_raw(latent.div_scalar(self.latent_scale)))
    }

    /// [`Self::decode_latent`] as a play session runs it: the play decoder when there is one
    /// (it has no norms or SiLU), else the VAE's decoder with fused group norms (the same up to
    /// float rounding).
    pub fn decode_latent_fused(&self, latent: Tensor<B, 4>) -> Tensor<B, 4> {
        let latent = latent.div_scalar(self.latent_scale);
        let raw = match &self.light {
            Some(light) => light.forward(latent),
            None => self.decode_with(latent, true),
        };
        to_unit(raw)
    }

    /// The VAE with `light` as its play decoder (`None` removes it).
    pub fn with_light_decoder(mut self, light: Option<LightDecoder<B>>) -> Self {
        self.light = light;
        self
    }

    pub fn latent_scale(&self) -> f64 {
        self.latent_scale
    }

    /// The loss of a batch of frames in `[0, 1]`: L1 + structure + KL, with the latent sampled
    /// from the posterior using `rng` (so a seed fixes the whole step).
    pub fn loss(&self, frames: Tensor<B, 4>, rng: &mut Rng) -> VaeLoss<B> {
        self.loss_of_rows(frames, rng, 0)
    }

    /// [`Self::loss`] of the frames that are rows `first..` of a larger batch (a share of a
    /// data-parallel step): the posterior noise is the one `loss` on the whole batch draws for
    /// these rows, i.e. the draws of the `first` rows before them are made and dropped.
    pub fn loss_of_rows(&self, frames: Tensor<B, 4>, rng: &mut Rng, first: usize) -> VaeLoss<B> {
        let [b, _, h, w] = frames.dims();
        let (mean, logvar) = self.encode(frames.clone());
        let [_, c, lh, lw] = mean.dims();
        for _ in 0..first * c * lh * lw {
            rng.normal();
        }
        let z = sample_posterior(mean.clone(), logvar.clone(), rng);
        let recon = self.decode_raw(z);
        let weights = rare_colour_weight_tensor(&frames, self.rare_colour_power);
        let target = frames.mul_scalar(2.0).sub_scalar(1.0);
        let (reconstruction, l1, structure) =
            reconstruction_loss(recon, target, self.structure_weight, weights);
        // KL(q || N(0, I)) summed over latent values, per pixel value of the batch.
        let kl = (mean.powi_scalar(2) + logvar.clone().exp() - logvar.add_scalar(1.0))
            .sum()
            .mul_scalar(0.5 / (b * 3 * h * w) as f64);
        let total = reconstruction + kl.clone().mul_scalar(self.kl_weight);
        VaeLoss {
            total,
            l1,
            structure,
            kl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray;

    #[test]
    fn tiny_and_paper_shapes() {
        let dev = Default::default();
        for (cfg, side) in [
            (VaeConfig::tiny(96, 96), 96),
            (VaeConfig::tiny(128, 128), 128),
        ] {
            let vae = cfg.init::<B>(&dev).unwrap();
            let x = Tensor::<B, 4>::ones([2, 3, side, side], &dev).mul_scalar(0.5);
            let z = vae.encode_latent(x);
            assert_eq!(z.dims(), [2, 4, side / 4, side / 4]);
            let y = vae.decode_latent(z);
            assert_eq!(y.dims(), [2, 3, side, side]);
        }
        // The paper sizes on a small frame (the layer shapes are the same at 128x128).
        let cfg = VaeConfig::paper(16, 16);
        let vae = cfg.init::<B>(&dev).unwrap();
        let x = Tensor::<B, 4>::zeros([1, 3, 16, 16], &dev);
        let (mean, logvar) = vae.encode(x);
        assert_eq!(mean.dims(), [1, 4, 4, 4]);
        assert_eq!(logvar.dims(), [1, 4, 4, 4]);
        assert_eq!(vae.decode_latent(mean).dims(), [1, 3, 16, 16]);
        assert_eq!(VaeConfig::paper(128, 128).latent_shape(), [4, 32, 32]);
    }

    #[test]
    fn pixel_shuffle_moves_each_2x2_block_into_channels_and_back() {
        let dev = Default::default();
        let data: Vec<f32> = (0..2 * 3 * 4 * 6).map(|i| i as f32).collect();
        let x = Tensor::<B, 4>::from_data(TensorData::new(data.clone(), [2, 3, 4, 6]), &dev);
        let packed = space_to_depth(x.clone());
        assert_eq!(packed.dims(), [2, 12, 2, 3]);
        let p: Vec<f32> = packed.clone().into_data().to_vec().unwrap();
        // Channel 4c + 2dy + dx at (i, j) holds pixel (2i + dy, 2j + dx) of channel c.
        for b in 0..2 {
            for c in 0..3 {
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    for i in 0..2 {
                        for j in 0..3 {
                            let got = p[((b * 12 + 4 * c + 2 * dy + dx) * 2 + i) * 3 + j];
                            let want = data[((b * 3 + c) * 4 + 2 * i + dy) * 6 + 2 * j + dx];
                            assert_eq!(got, want);
                        }
                    }
                }
            }
        }
        let back: Vec<f32> = depth_to_space(packed).into_data().to_vec().unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn pixel_shuffle_keeps_the_latent_grid_and_old_configs_load_without_it() {
        let dev = Default::default();
        for shuffle in [false, true] {
            let mut cfg = VaeConfig::tiny(32, 48);
            cfg.pixel_shuffle = shuffle;
            let vae = cfg.init::<B>(&dev).unwrap();
            let z = vae.encode_latent(Tensor::<B, 4>::zeros([1, 3, 32, 48], &dev));
            assert_eq!(z.dims(), [1, 4, 8, 12]);
            assert_eq!(vae.decode_latent(z).dims(), [1, 3, 32, 48]);
        }
        // A config.json written before the option existed means "no shuffle".
        let mut json = serde_json::to_value(VaeConfig::tiny(96, 96)).unwrap();
        json.as_object_mut().unwrap().remove("pixel_shuffle");
        let old: VaeConfig = serde_json::from_value(json).unwrap();
        assert!(!old.pixel_shuffle);
        let mut one_level = VaeConfig::tiny(96, 96);
        one_level.channel_mult = vec![1];
        assert!(one_level.validate().is_err());
    }

    #[test]
    fn absurd_configs_are_rejected_before_allocating() {
        let mut c = VaeConfig::tiny(96, 96);
        c.height = 97;
        assert!(c.validate().is_err());
        let mut c = VaeConfig::tiny(96, 96);
        c.channels = 1 << 20;
        assert!(c.init::<B>(&Default::default()).is_err());
        let mut c = VaeConfig::tiny(96, 96);
        c.channel_mult.clear();
        assert!(c.validate().is_err());
    }

    /// A reconstruction that drops a 2x2 object from a 16x16 frame loses 1/64 of the plain L1
    /// mean; with rare-colour weights the same miss costs several times more.
    #[test]
    fn rare_colour_weights_make_a_dropped_small_object_cost_more() {
        let dev = Default::default();
        let mut v = vec![0.0f32; 3 * 256];
        for c in 0..3 {
            for p in [17, 18, 33, 34] {
                v[c * 256 + p] = 1.0;
            }
        }
        let frame = Tensor::<B, 4>::from_data(TensorData::new(v, [1, 3, 16, 16]), &dev);
        let target = frame.clone().mul_scalar(2.0).sub_scalar(1.0);
        let blank = Tensor::<B, 4>::zeros([1, 3, 16, 16], &dev).sub_scalar(1.0);
        let l1 = |power: f64| -> f32 {
            let weights = rare_colour_weight_tensor(&frame, power);
            reconstruction_loss(blank.clone(), target.clone(), 0.0, weights)
                .1
                .into_scalar()
        };
        let (plain, weighted) = (l1(0.0), l1(0.5));
        assert!((plain - 2.0 / 64.0).abs() < 1e-6, "{plain}");
        assert!(weighted > 5.0 * plain, "{weighted} vs {plain}");
    }

    #[test]
    fn loss_terms_are_finite_and_positive() {
        let dev = Default::default();
        let vae = VaeConfig::tiny(16, 16).init::<B>(&dev).unwrap();
        let x = Tensor::<B, 4>::ones([2, 3, 16, 16], &dev).mul_scalar(0.3);
        let loss = vae.loss(x, &mut Rng::new(1));
        for t in [loss.total, loss.l1, loss.structure, loss.kl] {
            let v: f32 = t.into_scalar();
            assert!(v.is_finite() && v >= 0.0);
        }
    }
}
