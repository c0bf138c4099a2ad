//! The cell of the two Burn play paths: the reference (exactly the operations training runs)
//! and the fused pass (the backend's fused layer norm and attention, the adaLN gates folded into
//! the output layers, the DDIM update as one multiply-add): what GPUs run.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::modulations::Modulations;
use super::profile::{Profiler, Stage, mark};
use super::sampler::Cell;
use crate::world::ddim::{ddim_step_coefficients, ddim_update};
use crate::world::model::dit::DitCond;
use crate::world::model::{DitCell, VHead};
use crate::world::schedule::Schedule;

/// One frame's passes on the backend.
pub(crate) struct BurnCell<'a, B: Backend> {
    pub dit: &'a DitCell<B>,
    pub head: &'a VHead<B>,
    pub schedule: &'a Schedule,
    pub modulations: &'a mut Modulations<B>,
    pub cond: &'a DitCond<B>,
    /// The grid tokens' position embedding (`DitCell::positions`).
    pub positions: &'a Tensor<B, 3>,
    pub z_prev: Tensor<B, 4>,
    pub action: u32,
    /// The fused pass; otherwise the reference.
    pub fused: bool,
}

impl<B: Backend> Cell for BurnCell<'_, B> {
    type Latent = Tensor<B, 4>;
    type State = Tensor<B, 4>;

    fn pass(
        &mut self,
        x: &Tensor<B, 4>,
        level: usize,
        prof: &mut Option<&mut Profiler<'_>>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (z_prev, input) = (self.z_prev.clone(), x.clone());
        let z = if self.fused {
            let m = self
                .modulations
                .fused(self.dit, self.cond, level, self.action);
            mark(prof, Stage::Condition);
            self.dit
                .forward_fused(z_prev, input, self.positions, m, self.cond)
        } else {
            let m = self
                .modulations
                .plain(self.dit, self.cond, level, self.action);
            mark(prof, Stage::Condition);
            self.dit
                .forward_modulated(z_prev, input, self.positions, m, self.cond)
        };
        mark(prof, Stage::Dit);
        let v = if self.fused {
            self.head.forward_fused(z.clone(), x.clone())
        } else {
            self.head.forward(z.clone(), x.clone())
        };
        mark(prof, Stage::Head);
        (z, v)
    }

    fn update(&mut self, x: Tensor<B, 4>, v: Tensor<B, 4>, t: i64, t_next: i64) -> Tensor<B, 4> {
        if self.fused {
            // x_next = cx x + cv v: the DDIM update folded into two scalars.
            let (cx, cv) = ddim_step_coefficients(self.schedule, t, t_next);
            x.mul_scalar(cx) + v.mul_scalar(cv)
        } else {
            ddim_update(self.schedule, x, v, t, t_next)
        }
    }

    fn noised(&mut self, x0: &Tensor<B, 4>, noise: Tensor<B, 4>, level: usize) -> Tensor<B, 4> {
        let (sa, sb) = self.schedule.coefficients(level);
        x0.clone().mul_scalar(sa) + noise.mul_scalar(sb)
    }
}
