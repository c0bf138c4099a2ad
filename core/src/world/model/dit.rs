//! The recurrent DiT transition cell and the head that reads v out of its state.
//!
//! One pass maps `(z_{t-1}, noisy latent x_t^k, k, a_t)` to the new hidden state `z_t`; the
//! hidden state is the model's only memory (no attention over past frames), so the cost of a
//! frame never grows. Following PlayGen: patchify `concat(z_{t-1}, x)`, fixed 2-D sin-cos
//! positions, DiT blocks with adaLN-Zero driven by `[MLP(sinusoidal(k)); Embedding(a)]` (no
//! cross-attention), then `1x1 conv, tanh, 1x1 conv` to the new z. MaaG's extra tokens ride
//! along in the sequence: three score-digit tokens and the map tokens; they are attended to
//! but not decoded.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::{gelu, silu, softmax, tanh};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, linear};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};
use serde::{Deserialize, Serialize};

use crate::world::model::blocks::{ResBlock, conv1};
use crate::world::model::state_gate::{self, StateGate, StateUpdate};
use crate::world::{ConfigError, check_range};

/// Shape of the transition cell. Saved in `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DitConfig {
    /// Channels and grid of the VAE latent the cell denoises.
    pub latent_channels: usize,
    pub latent_height: usize,
    pub latent_width: usize,
    /// Channels of the hidden state z (on the latent grid).
    pub z_channels: usize,
    pub patch: usize,
    pub hidden: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_ratio: usize,
    /// Width of each half of the conditioning vector (noise level | action).
    pub cond_dim: usize,
    /// Width of the sinusoidal noise-level features.
    pub freq_dim: usize,
    /// Actions of the game; id `num_actions` is reserved for "no previous action".
    pub num_actions: usize,
    /// Score-digit tokens (MaaG: 3; 0 disables the numerical module's input).
    pub digit_tokens: usize,
    /// Map tokens (MaaG: 40 Traveler, 48 Pac-Man; 0 disables the spatial module's input).
    pub map_tokens: usize,
    /// Channels of each map token as the map CNN produces it.
    pub map_token_dim: usize,
    /// How a pass makes the new state (absent in older `config.json` files: `replace`).
    #[serde(default)]
    pub state_update: StateUpdate,
}

impl DitConfig {
    /// A CPU-sized cell: 64 or 36 tokens at patch 4, hidden 64, depth 4. Sized for real-time
    /// play on a CPU: S + 1 passes per frame must fit a browser frame budget on the wasm CPU
    /// fallback, and at this size a pass is mostly per-operation overhead, so a wider cell costs
    /// more than its FLOPs suggest. (The first shipped Traveler model used hidden 128; its
    /// `config.json` keeps that.)
    pub fn tiny(latent: [usize; 3], num_actions: usize) -> Self {
        Self {
            latent_channels: latent[0],
            latent_height: latent[1],
            latent_width: latent[2],
            z_channels: 16,
            patch: 4,
            hidden: 64,
            depth: 4,
            heads: 4,
            mlp_ratio: 4,
            cond_dim: 64,
            freq_dim: 128,
            num_actions,
            digit_tokens: 3,
            map_tokens: 0,
            map_token_dim: 32,
            state_update: StateUpdate::Replace,
        }
    }

    /// PlayGen's DiT-S/2: depth 12, hidden 384, 6 heads, patch 2, z of 32 channels, 192 + 192
    /// conditioning.
    pub fn paper(latent: [usize; 3], num_actions: usize) -> Self {
        Self {
            latent_channels: latent[0],
            latent_height: latent[1],
            latent_width: latent[2],
            z_channels: 32,
            patch: 2,
            hidden: 384,
            depth: 12,
            heads: 6,
            mlp_ratio: 4,
            cond_dim: 192,
            freq_dim: 256,
            num_actions,
            digit_tokens: 3,
            map_tokens: 0,
            map_token_dim: 64,
            state_update: StateUpdate::Replace,
        }
    }

    /// Id of the reserved "no previous action" (the first frame of a session).
    pub fn no_action(&self) -> u32 {
        self.num_actions as u32
    }

    /// Number of latent-grid tokens.
    pub fn grid_tokens(&self) -> usize {
        (self.latent_height / self.patch) * (self.latent_width / self.patch)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("dit.latent_channels", self.latent_channels, 64)?;
        check_range("dit.z_channels", self.z_channels, 512)?;
        check_range("dit.patch", self.patch, 16)?;
        check_range("dit.hidden", self.hidden, 4096)?;
        check_range("dit.depth", self.depth, 64)?;
        check_range("dit.heads", self.heads, 64)?;
        check_range("dit.mlp_ratio", self.mlp_ratio, 8)?;
        check_range("dit.cond_dim", self.cond_dim, 4096)?;
        check_range("dit.freq_dim", self.freq_dim, 4096)?;
        check_range("dit.num_actions", self.num_actions, 1024)?;
        check_range("dit.map_token_dim", self.map_token_dim, 4096)?;
        if self.digit_tokens > 8 || self.map_tokens > 1024 {
            return Err(ConfigError("too many extra tokens".into()));
        }
        for (name, v) in [
            ("dit.latent_height", self.latent_height),
            ("dit.latent_width", self.latent_width),
        ] {
            check_range(name, v, 512)?;
            if v % self.patch != 0 {
                return Err(ConfigError(format!(
                    "{name} = {v} is not divisible by the patch size {}",
                    self.patch
                )));
            }
        }
        if !self.hidden.is_multiple_of(self.heads) || !self.hidden.is_multiple_of(4) {
            return Err(ConfigError(format!(
                "dit.hidden = {} must be divisible by 4 and by heads = {}",
                self.hidden, self.heads
            )));
        }
        if !self.freq_dim.is_multiple_of(2) {
            return Err(ConfigError("dit.freq_dim must be even".into()));
        }
        crate::world::check_parameters("DiT", self.parameter_estimate())
    }

    /// The DiT's parameter count (weights and biases of every layer `init` builds), computed
    /// without allocating. Only meaningful once the per-field ranges hold.
    pub fn parameter_estimate(&self) -> u64 {
        let [d, c, r, p, z] = [
            self.hidden,
            self.cond_dim,
            self.mlp_ratio,
            self.patch,
            self.z_channels,
        ]
        .map(|v| v as u64);
        let linear = |i: u64, o: u64| i * o + o;
        let block = linear(2 * c, 6 * d)
            + linear(d, 3 * d)
            + linear(d, d)
            + linear(d, d * r)
            + linear(d * r, d);
        let cin = (self.z_channels + self.latent_channels) as u64;
        (self.depth as u64) * block
            + linear(cin * p * p, d)
            + linear(self.freq_dim as u64, c)
            + linear(c, c)
            + (self.num_actions as u64 + 1) * c
            + (10 + self.digit_tokens as u64) * d
            + linear(self.map_token_dim as u64, d)
            + self.map_tokens as u64 * d
            + linear(2 * c, 2 * d)
            + linear(d, p * p * z)
            + 2 * linear(z, z)
            + match self.state_update {
                StateUpdate::Replace => 0,
                StateUpdate::Gated => {
                    state_gate::parameter_estimate(self.z_channels, self.latent_channels)
                }
            }
    }

    /// Channels the v head reads: the state, and with the gated update the noisy latent too.
    pub fn head_in_channels(&self) -> usize {
        match self.state_update {
            StateUpdate::Replace => self.z_channels,
            StateUpdate::Gated => self.z_channels + self.latent_channels,
        }
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<DitCell<B>, ConfigError> {
        self.validate()?;
        let d = self.hidden;
        let p = self.patch;
        let cin = self.z_channels + self.latent_channels;
        let zeros = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let xavier = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let blocks = (0..self.depth)
            .map(|_| DitBlock {
                ada: zeros(2 * self.cond_dim, 6 * d),
                qkv: xavier(d, 3 * d),
                proj: xavier(d, d),
                fc1: xavier(d, d * self.mlp_ratio),
                fc2: xavier(d * self.mlp_ratio, d),
                heads: self.heads,
            })
            .collect();
        Ok(DitCell {
            patch_embed: xavier(cin * p * p, d),
            t_mlp1: LinearConfig::new(self.freq_dim, self.cond_dim)
                .with_initializer(small.clone())
                .init(device),
            t_mlp2: LinearConfig::new(self.cond_dim, self.cond_dim)
                .with_initializer(small.clone())
                .init(device),
            action_emb: EmbeddingConfig::new(self.num_actions + 1, self.cond_dim)
                .with_initializer(small.clone())
                .init(device),
            digit_emb: (self.digit_tokens > 0).then(|| {
                EmbeddingConfig::new(10, d)
                    .with_initializer(small.clone())
                    .init(device)
            }),
            digit_pos: (self.digit_tokens > 0).then(|| small.init([self.digit_tokens, d], device)),
            map_proj: (self.map_tokens > 0).then(|| xavier(self.map_token_dim, d)),
            map_pos: (self.map_tokens > 0).then(|| small.init([self.map_tokens, d], device)),
            blocks,
            final_ada: zeros(2 * self.cond_dim, 2 * d),
            final_linear: zeros(d, p * p * self.z_channels),
            out1: conv1(self.z_channels, self.z_channels, device),
            out2: conv1(self.z_channels, self.z_channels, device),
            state_gate: (self.state_update == StateUpdate::Gated)
                .then(|| StateGate::new(self.z_channels, self.latent_channels, device)),
            patch: p,
            grid_h: self.latent_height / p,
            grid_w: self.latent_width / p,
            hidden: d,
            freq_dim: self.freq_dim,
            z_channels: self.z_channels,
            num_actions: self.num_actions,
            digit_tokens: self.digit_tokens,
            map_tokens: self.map_tokens,
        })
    }
}

/// One DiT block: adaLN-Zero modulated self-attention and MLP.
#[derive(Module, Debug)]
pub struct DitBlock<B: Backend> {
    ada: Linear<B>,
    pub(crate) qkv: Linear<B>,
    proj: Linear<B>,
    pub(crate) fc1: Linear<B>,
    fc2: Linear<B>,
    pub(crate) heads: usize,
}

/// LayerNorm without affine parameters (adaLN supplies scale and shift).
fn layer_norm<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let mean = x.clone().mean_dim(2);
    let centered = x - mean;
    let var = centered.clone().powi_scalar(2).mean_dim(2);
    centered / var.add_scalar(1e-6).sqrt()
}

fn modulate<B: Backend>(x: Tensor<B, 3>, shift: Tensor<B, 3>, scale: Tensor<B, 3>) -> Tensor<B, 3> {
    x * scale.add_scalar(1.0) + shift
}

/// Multi-head self-attention straight from a fused QKV projection through the backend's
/// attention kernel: `qkv` is `[b, l, 3d]` laid out as `[3, heads, head_dim]` per token; returns
/// the heads' outputs merged back to `[b, l, d]`, before the output projection.
pub(crate) fn self_attention<B: Backend>(qkv: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    let [b, l, d3] = qkv.dims();
    let d = d3 / 3;
    let hd = d / heads;
    let qkv = qkv.reshape([b, l, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
    let q: Tensor<B, 4> = qkv.clone().narrow(0, 0, 1).reshape([b, heads, l, hd]);
    let k: Tensor<B, 4> = qkv.clone().narrow(0, 1, 1).reshape([b, heads, l, hd]);
    let v: Tensor<B, 4> = qkv.narrow(0, 2, 1).reshape([b, heads, l, hd]);
    // The scale is given explicitly: flex's fused kernel computes the same value either way,
    // and the GPU backends then take their generic (matmul-softmax-matmul) path instead of
    // autotuning flash kernels in the browser.
    let options = AttentionModuleOptions {
        scale: Some(1.0 / (hd as f64).sqrt()),
        ..Default::default()
    };
    attention(q, k, v, None, None, options)
        .swap_dims(1, 2)
        .reshape([b, l, d])
}

/// `modulate(layer_norm(x), shift, scale)` for one sample as the backend's fused layer norm
/// with `gamma = 1 + scale`, `beta = shift` (both `[d]`): one operation instead of ten. The
/// same maths; the sums may round differently.
fn modulated_layer_norm<B: Backend>(
    x: Tensor<B, 3>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
) -> Tensor<B, 3> {
    Tensor::from_primitive(TensorPrimitive::Float(B::layer_norm(
        x.into_primitive().tensor(),
        gamma.clone().into_primitive().tensor(),
        Some(beta.clone().into_primitive().tensor()),
        1e-6,
    )))
}

impl<B: Backend> DitBlock<B> {
    fn attention(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, l, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, l, 3, h, hd])
            .permute([2, 0, 3, 1, 4]);
        let q: Tensor<B, 4> = qkv.clone().narrow(0, 0, 1).reshape([b, h, l, hd]);
        let k: Tensor<B, 4> = qkv.clone().narrow(0, 1, 1).reshape([b, h, l, hd]);
        let v: Tensor<B, 4> = qkv.narrow(0, 2, 1).reshape([b, h, l, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt());
        let out = softmax(scores, 3).matmul(v);
        self.proj.forward(out.swap_dims(1, 2).reshape([b, l, d]))
    }

    /// The block's six adaLN chunks `[B, 1, d]` (shift, scale, gate of attention, then of the
    /// MLP) from the conditioning vector.
    fn modulation(&self, c: Tensor<B, 2>) -> Vec<Tensor<B, 3>> {
        self.ada.forward(c).unsqueeze_dim::<3>(1).chunk(6, 2)
    }

    /// [`Self::forward`] for one sample with fused layer norms, the backend's fused attention
    /// and the adaLN gates folded into the output layers.
    fn forward_fused(&self, x: Tensor<B, 3>, m: &FusedBlockModulation<B>) -> Tensor<B, 3> {
        let h = modulated_layer_norm(x.clone(), &m.gamma1, &m.shift1);
        let heads = self_attention(self.qkv.forward(h), self.heads);
        let attn = linear(heads, m.proj_weight.clone(), m.proj_bias.clone());
        let x = x + attn;
        let h = modulated_layer_norm(x.clone(), &m.gamma2, &m.shift2);
        let mlp = linear(
            gelu(self.fc1.forward(h)),
            m.fc2_weight.clone(),
            m.fc2_bias.clone(),
        );
        x + mlp
    }

    fn forward(&self, x: Tensor<B, 3>, m: &[Tensor<B, 3>]) -> Tensor<B, 3> {
        let h = modulate(layer_norm(x.clone()), m[0].clone(), m[1].clone());
        let x = x + m[2].clone() * self.attention(h);
        let h = modulate(layer_norm(x.clone()), m[3].clone(), m[4].clone());
        let mlp = self.fc2.forward(gelu(self.fc1.forward(h)));
        x + m[5].clone() * mlp
    }
}

/// What stays fixed across the DDIM passes of one frame: the action embedding and the extra
/// tokens (digits, map).
#[derive(Clone, Debug)]
pub struct DitCond<B: Backend> {
    action: Tensor<B, 2>,
    extra: Option<Tensor<B, 3>>,
}

impl<B: Backend> DitCond<B> {
    /// The extra tokens (digits, map) `[B, e, hidden]` a pass appends to the grid's.
    pub fn extra(&self) -> Option<&Tensor<B, 3>> {
        self.extra.as_ref()
    }
}

#[derive(Module, Debug)]
pub struct DitCell<B: Backend> {
    pub(crate) patch_embed: Linear<B>,
    t_mlp1: Linear<B>,
    t_mlp2: Linear<B>,
    action_emb: Embedding<B>,
    digit_emb: Option<Embedding<B>>,
    digit_pos: Option<Param<Tensor<B, 2>>>,
    map_proj: Option<Linear<B>>,
    map_pos: Option<Param<Tensor<B, 2>>>,
    pub(crate) blocks: Vec<DitBlock<B>>,
    final_ada: Linear<B>,
    pub(crate) final_linear: Linear<B>,
    pub(crate) out1: Conv2d<B>,
    pub(crate) out2: Conv2d<B>,
    pub(crate) state_gate: Option<StateGate<B>>,
    pub(crate) patch: usize,
    pub(crate) grid_h: usize,
    pub(crate) grid_w: usize,
    pub(crate) hidden: usize,
    freq_dim: usize,
    pub(crate) z_channels: usize,
    num_actions: usize,
    digit_tokens: usize,
    map_tokens: usize,
}

/// Inputs of one pass that change between passes.
pub struct DitInput<'a, B: Backend> {
    /// Previous hidden state `[B, z, h, w]`.
    pub z_prev: Tensor<B, 4>,
    /// Noisy latent `[B, c, h, w]`.
    pub x_noisy: Tensor<B, 4>,
    /// Noise level of each sample (`0..1000`; 0 = clean).
    pub noise_levels: &'a [f32],
}

/// Sinusoidal features of scalar positions: `[cos(p f_i), sin(p f_i)]` with geometric `f_i`.
pub fn sinusoidal(values: &[f32], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut out = Vec::with_capacity(values.len() * dim);
    for &v in values {
        let freqs = (0..half).map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp());
        let args: Vec<f64> = freqs.map(|f| v as f64 * f).collect();
        out.extend(args.iter().map(|a| a.cos() as f32));
        out.extend(args.iter().map(|a| a.sin() as f32));
    }
    out
}

/// Fixed 2-D sin-cos position embedding of a `gh x gw` grid, `[gh*gw, dim]` row-major: half of
/// the channels encode the row, half the column.
pub fn pos_embed_2d(gh: usize, gw: usize, dim: usize) -> Vec<f32> {
    let quarter = dim / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|i| 1.0 / 10000f64.powf(i as f64 / quarter as f64))
        .collect();
    let mut out = Vec::with_capacity(gh * gw * dim);
    for r in 0..gh {
        for c in 0..gw {
            for pos in [r as f64, c as f64] {
                out.extend(omega.iter().map(|o| (pos * o).sin() as f32));
                out.extend(omega.iter().map(|o| (pos * o).cos() as f32));
            }
        }
    }
    out
}

impl<B: Backend> DitCell<B> {
    /// Build the per-frame condition. `actions` holds one id per sample (`num_actions` = no
    /// previous action; larger ids are clamped to it); `digits` the score digits per sample
    /// (absent = score 0); `map_features` `[B, map_tokens, map_token_dim]` from the map CNN
    /// (absent = zero tokens).
    pub fn condition(
        &self,
        actions: &[u32],
        digits: Option<&[[u8; 3]]>,
        map_features: Option<Tensor<B, 3>>,
    ) -> DitCond<B> {
        let device = self.patch_embed.weight.device();
        let b = actions.len();
        let ids: Vec<i64> = actions
            .iter()
            .map(|&a| a.min(self.num_actions as u32) as i64)
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, 1]), &device);
        let action = self.action_emb.forward(ids);
        let cond_dim = action.dims()[2];
        let action: Tensor<B, 2> = action.reshape([b, cond_dim]);
        let mut extra = Vec::new();
        if let (Some(emb), Some(pos)) = (&self.digit_emb, &self.digit_pos) {
            let n = self.digit_tokens;
            let mut ids = Vec::with_capacity(b * n);
            for i in 0..b {
                let d = digits.and_then(|d| d.get(i)).copied().unwrap_or([0; 3]);
                // With more than 3 digit tokens the leading ones are zero padding.
                for j in 0..n {
                    let k = (j + 3).checked_sub(n).filter(|&k| k < 3);
                    ids.push(k.map(|k| d[k].min(9) as i64).unwrap_or(0));
                }
            }
            let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, n]), &device);
            extra.push(emb.forward(ids) + pos.val().unsqueeze_dim::<3>(0));
        }
        if let (Some(proj), Some(pos)) = (&self.map_proj, &self.map_pos) {
            let tokens = match map_features {
                Some(f) => proj.forward(f),
                None => Tensor::zeros([b, self.map_tokens, self.hidden], &device),
            };
            extra.push(tokens + pos.val().unsqueeze_dim::<3>(0));
        }
        DitCond {
            action,
            extra: (!extra.is_empty()).then(|| Tensor::cat(extra, 1)),
        }
    }

    fn patchify(&self, x: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, c, _, _] = x.dims();
        let (p, gh, gw) = (self.patch, self.grid_h, self.grid_w);
        x.reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p])
    }

    fn unpatchify(&self, t: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, _, _] = t.dims();
        let (p, gh, gw, c) = (self.patch, self.grid_h, self.grid_w, self.z_channels);
        t.reshape([b, gh, gw, c, p, p])
            .permute([0, 3, 1, 4, 2, 5])
            .reshape([b, c, gh * p, gw * p])
    }

    /// The fixed 2-D position embedding of the grid tokens, `[1, n, d]`.
    pub fn positions(&self, device: &B::Device) -> Tensor<B, 3> {
        let n = self.grid_h * self.grid_w;
        let d = self.hidden;
        Tensor::<B, 2>::from_data(
            TensorData::new(pos_embed_2d(self.grid_h, self.grid_w, d), [n, d]),
            device,
        )
        .unsqueeze_dim::<3>(0)
    }

    /// Everything of a pass that depends only on the noise levels and the action: the adaLN
    /// chunks of every block and of the final layer. Within a session the same (level, action)
    /// pairs come back every frame, so the session computes each once and keeps it.
    pub fn modulation(&self, noise_levels: &[f32], cond: &DitCond<B>) -> Modulation<B> {
        let device = cond.action.device();
        let b = noise_levels.len();
        let freq = Tensor::<B, 2>::from_data(
            TensorData::new(sinusoidal(noise_levels, self.freq_dim), [b, self.freq_dim]),
            &device,
        );
        let t_emb = self.t_mlp2.forward(silu(self.t_mlp1.forward(freq)));
        let c = silu(Tensor::cat(vec![t_emb, cond.action.clone()], 1));
        Modulation {
            blocks: self
                .blocks
                .iter()
                .map(|block| block.modulation(c.clone()))
                .collect(),
            last: self.final_ada.forward(c).unsqueeze_dim::<3>(1).chunk(2, 2),
        }
    }

    /// One pass: the new hidden state `[B, z, h, w]`.
    pub fn forward(&self, input: DitInput<'_, B>, cond: &DitCond<B>) -> Tensor<B, 4> {
        let device = input.z_prev.device();
        let m = self.modulation(input.noise_levels, cond);
        self.forward_modulated(
            input.z_prev,
            input.x_noisy,
            &self.positions(&device),
            &m,
            cond,
        )
    }

    /// [`Self::forward`] with the position embedding ([`Self::positions`]) and the
    /// modulation ([`Self::modulation`]) given: the same operations on the same values, so the
    /// same result to the bit.
    pub fn forward_modulated(
        &self,
        z_prev: Tensor<B, 4>,
        x_noisy: Tensor<B, 4>,
        positions: &Tensor<B, 3>,
        m: &Modulation<B>,
        cond: &DitCond<B>,
    ) -> Tensor<B, 4> {
        self.pass(z_prev, x_noisy, positions, m, cond)
    }

    /// [`Self::forward_modulated`] for one sample with fused layer norms and fused attention
    /// (the backend's kernels): what the fused play path runs. The same maths as [`Self::forward`]
    /// up to float rounding (sums taken in another order).
    pub fn forward_fused(
        &self,
        z_prev: Tensor<B, 4>,
        x_noisy: Tensor<B, 4>,
        positions: &Tensor<B, 3>,
        m: &FusedModulation<B>,
        cond: &DitCond<B>,
    ) -> Tensor<B, 4> {
        self.pass(z_prev, x_noisy, positions, m, cond)
    }

    /// The cell's pass, written once: patch embedding, the blocks, the modulated final layer
    /// norm, unpatchify and the state's output convolutions; the modulation's form decides how
    /// each block and the final norm compute.
    fn pass<M: ModulationForm<B>>(
        &self,
        z_prev: Tensor<B, 4>,
        x_noisy: Tensor<B, 4>,
        positions: &Tensor<B, 3>,
        m: &M,
        cond: &DitCond<B>,
    ) -> Tensor<B, 4> {
        let n = self.grid_h * self.grid_w;
        let input = Tensor::cat(vec![z_prev.clone(), x_noisy], 1);
        let tokens = self.patch_embed.forward(self.patchify(input.clone()));
        let mut x = tokens + positions.clone();
        if let Some(extra) = &cond.extra {
            x = Tensor::cat(vec![x, extra.clone()], 1);
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = m.block(block, i, x);
        }
        let x = m.final_norm(x.narrow(1, 0, n));
        let grid = self.unpatchify(self.final_linear.forward(x));
        let pre = self.out1.forward(grid);
        match &self.state_gate {
            Some(gate) => gate.forward(z_prev, input, pre, &self.out2),
            None => self.out2.forward(tanh(pre)),
        }
    }
}

/// How a pass computes with a modulation of one form: as training does ([`Modulation`]) or
/// fused ([`FusedModulation`]).
trait ModulationForm<B: Backend> {
    /// Block `i` on tokens `x`.
    fn block(&self, block: &DitBlock<B>, i: usize, x: Tensor<B, 3>) -> Tensor<B, 3>;
    /// The final layer's modulated layer norm of the grid tokens.
    fn final_norm(&self, x: Tensor<B, 3>) -> Tensor<B, 3>;
}

impl<B: Backend> ModulationForm<B> for Modulation<B> {
    fn block(&self, block: &DitBlock<B>, i: usize, x: Tensor<B, 3>) -> Tensor<B, 3> {
        block.forward(x, &self.blocks[i])
    }

    fn final_norm(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        modulate(layer_norm(x), self.last[0].clone(), self.last[1].clone())
    }
}

impl<B: Backend> ModulationForm<B> for FusedModulation<B> {
    fn block(&self, block: &DitBlock<B>, i: usize, x: Tensor<B, 3>) -> Tensor<B, 3> {
        block.forward_fused(x, &self.blocks[i])
    }

    fn final_norm(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        modulated_layer_norm(x, &self.last_gamma, &self.last_shift)
    }
}

/// The adaLN chunks of one pass (see [`DitCell::modulation`]).
#[derive(Clone, Debug)]
pub struct Modulation<B: Backend> {
    blocks: Vec<Vec<Tensor<B, 3>>>,
    last: Vec<Tensor<B, 3>>,
}

/// One block's modulation in the form the fused path takes: layer-norm gains `1 + scale` and
/// offsets `shift` as `[d]` vectors, gates as `[1, 1, d]`.
#[derive(Clone, Debug)]
pub(crate) struct FusedBlockModulation<B: Backend> {
    pub(crate) shift1: Tensor<B, 1>,
    pub(crate) gamma1: Tensor<B, 1>,
    pub(crate) shift2: Tensor<B, 1>,
    pub(crate) gamma2: Tensor<B, 1>,
    /// The attention output projection and the MLP's second layer with the adaLN gates
    /// folded into their output columns (`gate * (x W + b) = x (W gate) + b gate`).
    pub(crate) proj_weight: Tensor<B, 2>,
    pub(crate) proj_bias: Option<Tensor<B, 1>>,
    pub(crate) fc2_weight: Tensor<B, 2>,
    pub(crate) fc2_bias: Option<Tensor<B, 1>>,
}

/// [`Modulation`] of a single sample, prepared for [`DitCell::forward_fused`].
#[derive(Clone, Debug)]
pub struct FusedModulation<B: Backend> {
    pub(crate) blocks: Vec<FusedBlockModulation<B>>,
    pub(crate) last_shift: Tensor<B, 1>,
    pub(crate) last_gamma: Tensor<B, 1>,
}

impl<B: Backend> DitCell<B> {
    /// The fused form of a modulation ([`Self::forward_fused`]); `None` unless it is of one
    /// sample.
    pub fn fuse(&self, m: &Modulation<B>) -> Option<FusedModulation<B>> {
        let one = |t: &Tensor<B, 3>| -> Option<Tensor<B, 1>> {
            let [b, l, d] = t.dims();
            (b == 1 && l == 1).then(|| t.clone().reshape([d]))
        };
        let gain = |t: &Tensor<B, 3>| one(t).map(|t| t.add_scalar(1.0));
        let gated = |layer: &Linear<B>, gate: &Tensor<B, 3>| {
            let g = one(gate)?;
            let d = g.dims()[0];
            let w = layer.weight.val() * g.clone().reshape([1, d]);
            let b = layer.bias.as_ref().map(|b| b.val() * g);
            Some((w, b))
        };
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (block, mb) in self.blocks.iter().zip(&m.blocks) {
            let (proj_weight, proj_bias) = gated(&block.proj, &mb[2])?;
            let (fc2_weight, fc2_bias) = gated(&block.fc2, &mb[5])?;
            blocks.push(FusedBlockModulation {
                shift1: one(&mb[0])?,
                gamma1: gain(&mb[1])?,
                shift2: one(&mb[3])?,
                gamma2: gain(&mb[4])?,
                proj_weight,
                proj_bias,
                fc2_weight,
                fc2_bias,
            });
        }
        Some(FusedModulation {
            blocks,
            last_shift: one(&m.last[0])?,
            last_gamma: gain(&m.last[1])?,
        })
    }
}

/// The small head that reads the v-prediction of the latent out of z (and, with the gated state
/// update, the noisy latent beside it: v is a function of the noisy input, which the state may
/// no longer hold where the gate kept the old state): a residual block to latent channels, then
/// a 1x1 conv.
#[derive(Module, Debug)]
pub struct VHead<B: Backend> {
    pub(crate) res: ResBlock<B>,
    pub(crate) out: Conv2d<B>,
    /// Whether the head reads `[z, x_noisy]` rather than `z` alone.
    pub(crate) reads_latent: bool,
}

impl<B: Backend> VHead<B> {
    pub fn new(config: &DitConfig, device: &B::Device) -> Self {
        let c = config.latent_channels;
        Self {
            res: ResBlock::new(config.head_in_channels(), c, device),
            out: conv1(c, c, device),
            reads_latent: config.state_update == StateUpdate::Gated,
        }
    }

    fn input(&self, z: Tensor<B, 4>, x_noisy: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.reads_latent {
            Tensor::cat(vec![z, x_noisy], 1)
        } else {
            z
        }
    }

    /// v from the pass's state `z` and its noisy input `x_noisy`.
    pub fn forward(&self, z: Tensor<B, 4>, x_noisy: Tensor<B, 4>) -> Tensor<B, 4> {
        self.out.forward(self.res.forward(self.input(z, x_noisy)))
    }

    /// [`Self::forward`] with fused group norms (inference; the same
    /// up to float rounding).
    pub fn forward_fused(&self, z: Tensor<B, 4>, x_noisy: Tensor<B, 4>) -> Tensor<B, 4> {
        self.out
            .forward(self.res.forward_fused(self.input(z, x_noisy)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    fn run(cfg: &DitConfig, batch: usize) -> Tensor<B, 4> {
        let dev = Default::default();
        let cell = cfg.init::<B>(&dev).unwrap();
        let z = Tensor::<B, 4>::zeros(
            [batch, cfg.z_channels, cfg.latent_height, cfg.latent_width],
            &dev,
        );
        let x = Tensor::<B, 4>::ones(
            [
                batch,
                cfg.latent_channels,
                cfg.latent_height,
                cfg.latent_width,
            ],
            &dev,
        );
        let actions: Vec<u32> = (0..batch as u32).collect();
        let digits = vec![[1, 2, 3]; batch];
        let map = (cfg.map_tokens > 0)
            .then(|| Tensor::<B, 3>::ones([batch, cfg.map_tokens, cfg.map_token_dim], &dev));
        let cond = cell.condition(&actions, Some(&digits), map);
        let levels = vec![500.0; batch];
        cell.forward(
            DitInput {
                z_prev: z,
                x_noisy: x,
                noise_levels: &levels,
            },
            &cond,
        )
    }

    #[test]
    fn tiny_and_paper_cells_keep_the_grid() {
        let mut tiny = DitConfig::tiny([4, 24, 24], 3);
        tiny.map_tokens = 40;
        assert_eq!(run(&tiny, 2).dims(), [2, 16, 24, 24]);
        let paper = DitConfig::paper([4, 32, 32], 5);
        assert_eq!(paper.grid_tokens(), 256);
        assert_eq!(run(&paper, 1).dims(), [1, 32, 32, 32]);
        let dev = Default::default();
        let head = VHead::<B>::new(&paper, &dev);
        let v = head.forward(
            Tensor::zeros([1, 32, 32, 32], &dev),
            Tensor::zeros([1, 4, 32, 32], &dev),
        );
        assert_eq!(v.dims(), [1, 4, 32, 32]);
        let mut gated = DitConfig::tiny([4, 24, 24], 3);
        gated.state_update = StateUpdate::Gated;
        assert_eq!(run(&gated, 2).dims(), [2, 16, 24, 24]);
        let head = VHead::<B>::new(&gated, &dev);
        let v = head.forward(
            Tensor::zeros([1, 16, 24, 24], &dev),
            Tensor::zeros([1, 4, 24, 24], &dev),
        );
        assert_eq!(v.dims(), [1, 4, 24, 24]);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let mut c = DitConfig::tiny([4, 24, 24], 3);
        c.patch = 5;
        assert!(c.validate().is_err());
        let mut c = DitConfig::tiny([4, 24, 24], 3);
        c.heads = 3;
        assert!(c.validate().is_err());
        let mut c = DitConfig::tiny([4, 24, 24], 3);
        c.depth = 100_000;
        assert!(c.init::<B>(&Default::default()).is_err());
    }

    #[test]
    fn position_embedding_is_distinct_per_token() {
        let pe = pos_embed_2d(3, 4, 16);
        assert_eq!(pe.len(), 12 * 16);
        for i in 0..12 {
            for j in 0..i {
                let diff: f32 = (0..16)
                    .map(|k| (pe[i * 16 + k] - pe[j * 16 + k]).abs())
                    .sum();
                assert!(diff > 1e-3, "tokens {i} and {j} share a position");
            }
        }
    }
}
