//! The DiT cell's fused pass on the host, for play on a CPU backend.
//!
//! Why: at play sizes (hidden 64, 67-83 tokens) one pass of the cell is ~40 small tensor
//! operations, and on the CPU backends their fixed costs (allocation, layout bookkeeping,
//! dispatch) outweighed the arithmetic: a pass took 1.4-2 ms for about 19 M multiply-adds. Here
//! the same pass is a straight sequence of loops over host buffers: linear layers through the
//! packed multiply-add kernel of [`host_conv`](super::host_conv), layer norms, attention and
//! GELU from [`host_ops`](super::host_ops). It computes exactly what
//! [`DitCell::forward_fused`](super::DitCell::forward_fused) computes, with the adaLN
//! modulation of one (noise level, action) pair prepared once (gates folded into the output
//! layers), up to float rounding; the session tests compare the two on the shipped models.

use super::host_conv::{Conv1, LinearHost};
use super::host_ops::{attention_slice, gelu_slice, lane_sum, tanh_slice};

/// Layer norm epsilon of the DiT's adaLN layers.
const EPS: f32 = 1e-6;

/// One transformer block's weights that do not depend on the modulation.
#[derive(Clone, Debug, PartialEq)]
pub struct HostDitBlock {
    pub(super) qkv: LinearHost,
    pub(super) fc1: LinearHost,
    pub(super) heads: usize,
}

/// The cell on the host (made by [`DitCell::host`](super::DitCell::host)).
#[derive(Clone, Debug, PartialEq)]
pub struct HostDit {
    pub(super) patch_embed: LinearHost,
    pub(super) blocks: Vec<HostDitBlock>,
    pub(super) final_linear: LinearHost,
    pub(super) out1: Conv1,
    pub(super) out2: Conv1,
    /// The grid tokens' position embedding `[n][hidden]`.
    pub(super) positions: Vec<f32>,
    pub(super) patch: usize,
    pub(super) grid_h: usize,
    pub(super) grid_w: usize,
    pub(super) hidden: usize,
    pub(super) z_channels: usize,
    pub(super) latent_channels: usize,
}

/// One block's modulation: layer-norm gains (`1 + scale`) and shifts, and the attention
/// projection and second MLP layer with their gates folded in.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBlockModulation {
    pub(super) shift1: Vec<f32>,
    pub(super) gamma1: Vec<f32>,
    pub(super) shift2: Vec<f32>,
    pub(super) gamma2: Vec<f32>,
    pub(super) proj: LinearHost,
    pub(super) fc2: LinearHost,
}

/// A fused modulation on the host (made by
/// [`FusedModulation::host`](super::dit::FusedModulation::host)).
#[derive(Clone, Debug, PartialEq)]
pub struct HostModulation {
    pub(super) blocks: Vec<HostBlockModulation>,
    pub(super) last_shift: Vec<f32>,
    pub(super) last_gamma: Vec<f32>,
}

/// Layer norm of every `d`-wide row of `x`, then `* gamma + beta`, into `out`. The sums run in
/// independent lanes ([`lane_sum`]): one running sum per row is a chain of dependent adds.
fn modulated_layer_norm(x: &[f32], d: usize, gamma: &[f32], beta: &[f32], out: &mut [f32]) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = lane_sum(row) / d as f32;
        for (o, &v) in o.iter_mut().zip(row) {
            *o = (v - mean) * (v - mean);
        }
        let inv = 1.0 / (lane_sum(o) / d as f32 + EPS).sqrt();
        for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
    }
}

impl HostDit {
    /// One pass: `z_prev` `[z][h][w]` and the noisy latent `[c][h][w]` (planar), the extra
    /// tokens `[e][hidden]` -> the new state `[z][h][w]`.
    pub fn forward(
        &self,
        z_prev: &[f32],
        x_noisy: &[f32],
        extra: &[f32],
        m: &HostModulation,
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
            modulated_layer_norm(&tokens, d, &mb.gamma1, &mb.shift1, &mut normed);
            let qkv = block.qkv.forward(&normed);
            attention_slice(&qkv, &mut heads_out, l, block.heads, d / block.heads);
            mb.proj.forward_into(&heads_out, &mut tokens, true);
            modulated_layer_norm(&tokens, d, &mb.gamma2, &mb.shift2, &mut normed);
            let mut hidden = block.fc1.forward(&normed);
            gelu_slice(&mut hidden);
            mb.fc2.forward_into(&hidden, &mut tokens, true);
        }
        let grid = &tokens[..n * d];
        let mut last = vec![0.0f32; n * d];
        modulated_layer_norm(grid, d, &m.last_gamma, &m.last_shift, &mut last);
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
        tanh_slice(&mut h);
        let z = self.out2.forward_pixels(&h);
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
