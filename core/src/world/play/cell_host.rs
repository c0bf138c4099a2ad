//! The CPU play path: the frame's networks as `gamegen-kernels` structs built from the Burn
//! modules' weights, and the cell that runs the DDIM passes on host buffers.
//!
//! This is the one file that knows both the Burn modules and the kernels: a change to a module
//! of [`model`](crate::world::model) that play runs needs its conversion here and its kernel
//! there, and the parity table of [`super::parity`] checks the two give the same values.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use gamegen_kernels::nets::{
    BlockModulation, Dit, DitBlock, DitModulation, LightDecoder, MapEncoder, ResBlock, StateGate,
    VHead,
};
use gamegen_kernels::{Conv1, Conv3, GroupNorm, Linear};

use super::frame::read_f32;
use super::modulations::Modulations;
use super::profile::{Profiler, Stage, mark};
use super::sampler::Cell;
use crate::world::ddim::ddim_step_coefficients;
use crate::world::model::blocks;
use crate::world::model::dit::{self, DitCond, FusedModulation, pos_embed_2d};
use crate::world::model::light_decoder;
use crate::world::model::spatial;
use crate::world::model::{Vae, WorldModel};
use crate::world::schedule::Schedule;

/// A tensor's values as `f32` on the host (row-major).
fn read<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    read_f32(x.into_data())
}

/// A linear layer from its weight `[ci][co]` and bias tensors.
fn linear_of<B: Backend>(weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Linear {
    let [ci, co] = weight.dims();
    let bias = bias.map(read);
    Linear::from_parts(&read(weight), bias.as_deref(), ci, co)
}

pub(crate) fn linear<B: Backend>(layer: &burn::nn::Linear<B>) -> Linear {
    linear_of(layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}

/// A 3x3 same-padded, stride-1 convolution (the callers know their architecture; the kernel
/// size is checked).
pub(crate) fn conv3<B: Backend>(conv: &Conv2d<B>) -> Conv3 {
    let [co, ci, kh, kw] = conv.weight.dims();
    assert_eq!((kh, kw), (3, 3), "host convolution needs a 3x3 kernel");
    let bias = conv.bias.as_ref().map(|b| read(b.val()));
    Conv3::from_parts(&read(conv.weight.val()), bias.as_deref(), co, ci)
}

pub(crate) fn conv1<B: Backend>(conv: &Conv2d<B>) -> Conv1 {
    let [co, ci, kh, kw] = conv.weight.dims();
    assert_eq!((kh, kw), (1, 1), "host 1x1 convolution needs a 1x1 kernel");
    let bias = conv.bias.as_ref().map(|b| read(b.val()));
    Conv1::from_parts(&read(conv.weight.val()), bias.as_deref(), co, ci)
}

pub(crate) fn group_norm<B: Backend>(gn: &burn::nn::GroupNorm<B>) -> GroupNorm {
    GroupNorm::new(
        gn.num_groups,
        gn.epsilon as f32,
        gn.gamma.as_ref().map(|g| read(g.val())),
        gn.beta.as_ref().map(|b| read(b.val())),
    )
}

pub(crate) fn res_block<B: Backend>(b: &blocks::ResBlock<B>) -> ResBlock {
    ResBlock {
        norm1: group_norm(&b.norm1),
        conv1: conv3(&b.conv1),
        norm2: group_norm(&b.norm2),
        conv2: conv3(&b.conv2),
        skip: b.skip.as_ref().map(conv1),
    }
}

pub(crate) fn v_head<B: Backend>(head: &dit::VHead<B>) -> VHead {
    VHead {
        res: res_block(&head.res),
        out: conv1(&head.out),
        reads_latent: head.reads_latent,
    }
}

/// The cell's modulation-independent weights.
pub(crate) fn dit<B: Backend>(cell: &dit::DitCell<B>) -> Dit {
    let [c_in, _] = cell.patch_embed.weight.dims();
    let p2 = cell.patch * cell.patch;
    Dit {
        patch_embed: linear(&cell.patch_embed),
        blocks: cell
            .blocks
            .iter()
            .map(|b| DitBlock {
                qkv: linear(&b.qkv),
                fc1: linear(&b.fc1),
                heads: b.heads,
            })
            .collect(),
        final_linear: linear(&cell.final_linear),
        out1: conv1(&cell.out1),
        out2: conv1(&cell.out2),
        state_gate: cell.state_gate.as_ref().map(|g| StateGate {
            skip: conv3(&g.skip),
            gate: conv1(&g.gate),
        }),
        positions: pos_embed_2d(cell.grid_h, cell.grid_w, cell.hidden),
        patch: cell.patch,
        grid_h: cell.grid_h,
        grid_w: cell.grid_w,
        hidden: cell.hidden,
        z_channels: cell.z_channels,
        latent_channels: c_in / p2 - cell.z_channels,
    }
}

/// A fused modulation on host buffers.
pub(crate) fn modulation<B: Backend>(m: &FusedModulation<B>) -> DitModulation {
    let vec = |t: &Tensor<B, 1>| read(t.clone());
    DitModulation {
        blocks: m
            .blocks
            .iter()
            .map(|b| BlockModulation {
                shift1: vec(&b.shift1),
                gamma1: vec(&b.gamma1),
                shift2: vec(&b.shift2),
                gamma2: vec(&b.gamma2),
                proj: linear_of(b.proj_weight.clone(), b.proj_bias.clone()),
                fc2: linear_of(b.fc2_weight.clone(), b.fc2_bias.clone()),
            })
            .collect(),
        last_shift: vec(&m.last_shift),
        last_gamma: vec(&m.last_gamma),
    }
}

pub(crate) fn light_decoder<B: Backend>(d: &light_decoder::LightDecoder<B>) -> LightDecoder {
    LightDecoder {
        conv_in: conv3(&d.conv_in),
        blocks: d
            .blocks
            .iter()
            .map(|b| (conv3(&b.conv1), conv3(&b.conv2)))
            .collect(),
        conv_out: conv3(&d.conv_out),
        factor: d.factor,
    }
}

pub(crate) fn map_encoder<B: Backend>(m: &spatial::MapEncoder<B>) -> MapEncoder {
    MapEncoder {
        convs: m.convs.iter().map(conv3).collect(),
        token_grid: m.token_grid,
    }
}

/// The networks a frame runs on the CPU path; the decoder and the map CNN are `None` when the
/// model lacks them (the VAE's own decoder then runs on the backend's fused operations).
pub(crate) struct HostNets {
    pub dit: Dit,
    pub head: VHead,
    pub decoder: Option<LightDecoder>,
    pub map: Option<MapEncoder>,
}

impl HostNets {
    pub(crate) fn of<B: Backend>(model: &WorldModel<B>, vae: &Vae<B>) -> Self {
        Self {
            dit: dit(&model.dit),
            head: v_head(&model.head),
            decoder: vae.light.as_ref().map(light_decoder),
            map: model.map_encoder.as_ref().map(map_encoder),
        }
    }
}

/// One frame's passes on host buffers (planar `[c][h][w]`, one sample).
pub(crate) struct HostCell<'a, B: Backend> {
    pub nets: &'a HostNets,
    /// The Burn cell, for the modulations (made once per level and converted).
    pub burn_dit: &'a dit::DitCell<B>,
    pub schedule: &'a Schedule,
    pub modulations: &'a mut Modulations<B>,
    pub cond: &'a DitCond<B>,
    pub z_prev: Vec<f32>,
    /// The extra tokens (digits, map) `[e][hidden]`.
    pub extra: Vec<f32>,
    pub action: u32,
    /// The latent grid's height and width.
    pub grid: (usize, usize),
}

impl<B: Backend> Cell for HostCell<'_, B> {
    type Latent = Vec<f32>;
    type State = Vec<f32>;

    fn pass(
        &mut self,
        x: &Vec<f32>,
        level: usize,
        prof: &mut Option<&mut Profiler<'_>>,
    ) -> (Vec<f32>, Vec<f32>) {
        let m = self
            .modulations
            .host(self.burn_dit, self.cond, level, self.action);
        mark(prof, Stage::Condition);
        let z = self.nets.dit.forward(&self.z_prev, x, &self.extra, m);
        mark(prof, Stage::Dit);
        let (h, w) = self.grid;
        let v = self.nets.head.forward(&z, x, h, w);
        mark(prof, Stage::Head);
        (z, v)
    }

    fn update(&mut self, mut x: Vec<f32>, v: Vec<f32>, t: i64, t_next: i64) -> Vec<f32> {
        let (cx, cv) = ddim_step_coefficients(self.schedule, t, t_next);
        let (cx, cv) = (cx as f32, cv as f32);
        for (xi, vi) in x.iter_mut().zip(&v) {
            *xi = cx * *xi + cv * vi;
        }
        x
    }

    fn noised(&mut self, x0: &Vec<f32>, mut noise: Vec<f32>, level: usize) -> Vec<f32> {
        let (sa, sb) = self.schedule.coefficients(level);
        let (sa, sb) = (sa as f32, sb as f32);
        for (n, x) in noise.iter_mut().zip(x0) {
            *n = sa * x + sb * *n;
        }
        noise
    }
}
