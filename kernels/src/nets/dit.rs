//! The recurrent DiT cell's pass on host buffers: `(z_prev, x_noisy, extra tokens)` -> the new
//! state, for one sample with one prepared modulation.
//!
//! Why: at play sizes (hidden 64, 67-83 tokens) one pass is ~40 small tensor operations, and on
//! the CPU backends their fixed costs (allocation, layout bookkeeping, dispatch) outweigh the
//! arithmetic. Here the pass is a straight sequence of loops over host buffers: linear layers
//! through the packed multiply-add kernel, layer norms, attention and GELU. The network is the
//! one the model crate defines (patch embedding, adaLN transformer blocks, a modulated final
//! layer, unpatchify, two 1x1 convolutions with `tanh` between, and the optional gated state
//! update), computed up to float rounding.

use crate::attention::attention;
use crate::conv::{Conv1, Conv3};
use crate::elementwise::{exp, gelu_slice, tanh_slice};
use crate::image::Image;
use crate::linear::Linear;
use crate::norm::modulated_layer_norm;

/// Layer norm epsilon of the DiT's adaLN layers.
pub const EPS: f32 = 1e-6;

/// One transformer block's weights that do not depend on the modulation.
#[derive(Clone, Debug, PartialEq)]
pub struct DitBlock {
    pub qkv: Linear,
    pub fc1: Linear,
    pub heads: usize,
}

/// The DiT cell's weights that do not depend on the modulation.
#[derive(Clone, Debug, PartialEq)]
pub struct Dit {
    pub patch_embed: Linear,
    pub blocks: Vec<DitBlock>,
    pub final_linear: Linear,
    pub out1: Conv1,
    pub out2: Conv1,
    /// The gated full-resolution state update, when the model has one.
    pub state_gate: Option<StateGate>,
    /// The grid tokens' position embedding `[n][hidden]`.
    pub positions: Vec<f32>,
    pub patch: usize,
    pub grid_h: usize,
    pub grid_w: usize,
    pub hidden: usize,
    pub z_channels: usize,
    pub latent_channels: usize,
}

/// The gated state update: `h = out2(tanh(out1(grid) + skip([z_prev, x_noisy])))`,
/// `u = sigmoid(gate([z_prev, h]))`, `z = z_prev + u (h - z_prev)`.
#[derive(Clone, Debug, PartialEq)]
pub struct StateGate {
    pub skip: Conv3,
    pub gate: Conv1,
}

/// One block's modulation: layer-norm gains (`1 + scale`) and shifts, and the attention
/// projection and second MLP layer with their gates folded in.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockModulation {
    pub shift1: Vec<f32>,
    pub gamma1: Vec<f32>,
    pub shift2: Vec<f32>,
    pub gamma2: Vec<f32>,
    pub proj: Linear,
    pub fc2: Linear,
}

/// The adaLN modulation of one (noise level, action) pair, with the gates folded into the
/// attention projection and the second MLP layer (`gate * (x W + b) = x (W gate) + b gate`).
#[derive(Clone, Debug, PartialEq)]
pub struct DitModulation {
    pub blocks: Vec<BlockModulation>,
    pub last_shift: Vec<f32>,
    pub last_gamma: Vec<f32>,
}

impl Dit {
    /// One pass: `z_prev` `[z][h][w]` and the noisy latent `[c][h][w]` (planar), the extra
    /// tokens `[e][hidden]` -> the new state `[z][h][w]`.
    pub fn forward(
        &self,
        z_prev: &[f32],
        x_noisy: &[f32],
        extra: &[f32],
        m: &DitModulation,
    ) -> Vec<f32> {
        let (p, gh, gw, d) = (self.patch, self.grid_h, self.grid_w, self.hidden);
        let (hh, ww) = (gh * p, gw * p);
        let (zc, lc) = (self.z_channels, self.latent_channels);
        let n = gh * gw;
        let c_in = zc + lc;
        assert_eq!(z_prev.len(), zc * hh * ww, "host DiT state size");
        assert_eq!(x_noisy.len(), lc * hh * ww, "host DiT latent size");
        assert_eq!(extra.len() % d, 0, "host DiT extra tokens");
        // Patchify the channel concatenation: token (i, j), feature ch * p^2 + py * p + px.
        let mut patches = vec![0.0f32; n * c_in * p * p];
        let planes = z_prev
            .chunks_exact(hh * ww)
            .chain(x_noisy.chunks_exact(hh * ww));
        for (ch, plane) in planes.enumerate() {
            for (y, row) in plane.chunks_exact(ww).enumerate() {
                let (i, py) = (y / p, y % p);
                for (j, pixels) in row.chunks_exact(p).enumerate() {
                    let at = (i * gw + j) * c_in * p * p + ch * p * p + py * p;
                    patches[at..at + p].copy_from_slice(pixels);
                }
            }
        }
        let l = n + extra.len() / d;
        let mut tokens = vec![0.0f32; l * d];
        self.patch_embed
            .forward_into(&patches, &mut tokens[..n * d], false);
        for (t, &pos) in tokens[..n * d].iter_mut().zip(&self.positions) {
            *t += pos;
        }
        tokens[n * d..].copy_from_slice(extra);

        let mut normed = vec![0.0f32; l * d];
        let mut heads_out = vec![0.0f32; l * d];
        for (block, mb) in self.blocks.iter().zip(&m.blocks) {
            modulated_layer_norm(&tokens, d, EPS, &mb.gamma1, &mb.shift1, &mut normed);
            let qkv = block.qkv.forward(&normed);
            attention(&qkv, &mut heads_out, l, block.heads, d / block.heads);
            mb.proj.forward_into(&heads_out, &mut tokens, true);
            modulated_layer_norm(&tokens, d, EPS, &mb.gamma2, &mb.shift2, &mut normed);
            let mut hidden = block.fc1.forward(&normed);
            gelu_slice(&mut hidden);
            mb.fc2.forward_into(&hidden, &mut tokens, true);
        }
        let grid = &tokens[..n * d];
        let mut last = vec![0.0f32; n * d];
        modulated_layer_norm(grid, d, EPS, &m.last_gamma, &m.last_shift, &mut last);
        let out = self.final_linear.forward(&last);
        // Unpatchify to channels-last pixels [h][w][z].
        let mut pixels = vec![0.0f32; hh * ww * zc];
        for (token, features) in out.chunks_exact(zc * p * p).enumerate() {
            let (i, j) = (token / gw, token % gw);
            for (ch, patch) in features.chunks_exact(p * p).enumerate() {
                for (py, values) in patch.chunks_exact(p).enumerate() {
                    let first = ((i * p + py) * ww + j * p) * zc + ch;
                    for (px, &v) in values.iter().enumerate() {
                        pixels[first + px * zc] = v;
                    }
                }
            }
        }
        let mut h = self.out1.forward_pixels(&pixels);
        if let Some(g) = &self.state_gate {
            let input = Image::from_planar(&[z_prev, x_noisy].concat(), c_in, hh, ww);
            let skip = g.skip.forward(&input, None);
            for y in 0..hh {
                let at = skip.at(y, 0);
                let row = &skip.data[at..at + ww * zc];
                for (v, s) in h[y * ww * zc..(y + 1) * ww * zc].iter_mut().zip(row) {
                    *v += s;
                }
            }
        }
        tanh_slice(&mut h);
        let mut z = self.out2.forward_pixels(&h);
        if let Some(g) = &self.state_gate {
            // Channels-last [z_prev, h] per pixel for the gate's 1x1 convolution.
            let mut both = vec![0.0f32; hh * ww * 2 * zc];
            for (px, (pair, hz)) in both
                .chunks_exact_mut(2 * zc)
                .zip(z.chunks_exact(zc))
                .enumerate()
            {
                for ch in 0..zc {
                    pair[ch] = z_prev[ch * hh * ww + px];
                }
                pair[zc..].copy_from_slice(hz);
            }
            let u = g.gate.forward_pixels(&both);
            let pixels = z.chunks_exact_mut(zc).zip(u.chunks_exact(zc));
            for ((hz, uz), pair) in pixels.zip(both.chunks_exact(2 * zc)) {
                for ((v, &u), &prev) in hz.iter_mut().zip(uz).zip(&pair[..zc]) {
                    let gate = 1.0 / (1.0 + exp(-u));
                    *v = prev + gate * (*v - prev);
                }
            }
        }
        // Back to planar [z][h][w].
        let mut planar = vec![0.0f32; zc * hh * ww];
        for (px, values) in z.chunks_exact(zc).enumerate() {
            for (ch, &v) in values.iter().enumerate() {
                planar[ch * hh * ww + px] = v;
            }
        }
        planar
    }
}
