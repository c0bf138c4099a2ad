//! The VAE's training step.

use std::ops::Range;

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use super::TrainConfig;
use crate::optim::{
    InOrder, OptimizerStateError, ReplicaRunner, even_ranges, load_state, run_replicas, save_state,
    sum_gradients,
};
use crate::rng::Rng;
use crate::world::model::Vae;

/// The VAE's own training (stage one): AdamW on L1 + structure + KL.
pub struct VaeTrainer<B: AutodiffBackend> {
    pub vae: Vae<B>,
    pub train: TrainConfig,
    pub step: usize,
    optim: OptimizerAdaptor<AdamW, Vae<B>, B>,
}

impl<B: AutodiffBackend> VaeTrainer<B> {
    pub fn new(vae: Vae<B>, train: TrainConfig) -> Self {
        let optim = train.optimizer().init();
        Self {
            vae,
            train,
            step: 0,
            optim,
        }
    }

    /// One step on frames `[N, 3, H, W]` in `[0, 1]`; returns `(total, l1)`.
    pub fn step(&mut self, frames: Tensor<B, 4>) -> (f32, f32) {
        let device = frames.device();
        self.step_on(frames.inner(), &[device], &InOrder)
    }

    /// [`Self::step`] data-parallel over `devices` (the VAE lives on the first): the frames are
    /// cut into one contiguous share per device, each share's loss (with the posterior noise a
    /// single-device step draws for its rows) is weighted by its share of the frames, the
    /// gradients are summed on the first device and the optimiser steps once. `runner` runs the
    /// replicas, as for the dynamics step.
    pub fn step_on(
        &mut self,
        frames: Tensor<B::InnerBackend, 4>,
        devices: &[B::Device],
        runner: &impl ReplicaRunner,
    ) -> (f32, f32) {
        let n = frames.dims()[0];
        let (seed, step) = (self.train.seed, self.step as u64);
        let work = |vae: &Vae<B>, rows: Range<usize>, device: &B::Device| {
            let part = Tensor::<B, 4>::from_inner(
                frames
                    .clone()
                    .narrow(0, rows.start, rows.len())
                    .to_device(device),
            );
            let share = rows.len() as f64 / n as f64;
            let mut rng = Rng::for_stream(seed, step);
            let loss = vae.loss_of_rows(part, &mut rng, rows.start);
            let total = loss.total.mul_scalar(share);
            let values: (f32, f32) = (
                total.clone().into_scalar().elem(),
                loss.l1.into_scalar().elem::<f32>() * share as f32,
            );
            (GradientsParams::from_grads(total.backward(), vae), values)
        };
        let shares = even_ranges(n, devices.len());
        let (grads, parts): (Vec<_>, Vec<(f32, f32)>) =
            run_replicas(runner, &self.vae, devices, shares, work)
                .into_iter()
                .unzip();
        let lr = self.train.lr_at(self.step);
        let grads = sum_gradients(&self.vae, grads);
        self.vae = self.optim.step(lr, self.vae.clone(), grads);
        self.step += 1;
        parts
            .into_iter()
            .fold((0.0, 0.0), |(t, l), (pt, pl)| (t + pt, l + pl))
    }

    /// The AdamW state (moments, step counts), for a resume that continues exactly.
    pub fn optimizer_state(&self) -> Result<Vec<u8>, OptimizerStateError> {
        save_state(&self.optim, &self.vae)
    }

    /// Restore what [`Self::optimizer_state`] saved for a VAE of this shape.
    pub fn load_optimizer_state(
        &mut self,
        bytes: &[u8],
        device: &B::Device,
    ) -> Result<(), OptimizerStateError> {
        let optim = std::mem::replace(&mut self.optim, self.train.optimizer().init());
        self.optim = load_state(optim, &self.vae, bytes, device)?;
        Ok(())
    }
}
