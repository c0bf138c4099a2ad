//! The one DDIM loop: every play path runs its frames through [`sample`], over the [`Cell`] it
//! computes with.
//!
//! DDIM (eta 0) as PlayGen's inference runs it: `S` steps from clipped Gaussian noise, each one
//! pass of the recurrent cell from the frame's fixed previous state, then one more pass whose
//! state becomes the session's ([`StatePass`] says over what). A frame costs `S + 1` passes.

use super::profile::{Profiler, Stage, mark};
use crate::world::ddim::{DdimPlan, StatePass};

/// One play path's computation of a frame's passes. A cell is made per frame: it holds the
/// previous state, the frame's condition and whatever per-path constants it needs.
pub(crate) trait Cell {
    /// The latent the sampler walks (a tensor or a host buffer).
    type Latent;
    /// The recurrent state a pass produces.
    type State;

    /// One pass of the cell on `x` at noise `level`: the new state and the v-prediction. Marks
    /// [`Stage::Dit`] after the cell and [`Stage::Head`] after the v head.
    fn pass(
        &mut self,
        x: &Self::Latent,
        level: usize,
        prof: &mut Option<&mut Profiler<'_>>,
    ) -> (Self::State, Self::Latent);

    /// DDIM (eta 0) from level `t` to `t_next` (`-1`: the clean prediction) given the pass's v.
    fn update(&mut self, x: Self::Latent, v: Self::Latent, t: i64, t_next: i64) -> Self::Latent;

    /// The clean latent `x0` noised to `level` with `noise` (the forward process).
    fn noised(&mut self, x0: &Self::Latent, noise: Self::Latent, level: usize) -> Self::Latent;
}

/// The frame's last pass as the sampler runs it: [`StatePass`] with the noise it needs.
pub(crate) enum FinalPass<L> {
    Relabel,
    Renoise { level: usize, noise: L },
}

impl<L> FinalPass<L> {
    /// The final pass of `pass` for a frame; `noise` draws the re-noising noise (only called
    /// when the state pass re-noises, so the session's random stream is unchanged otherwise).
    pub(crate) fn of(pass: StatePass, noise: impl FnOnce() -> L) -> Self {
        match pass {
            StatePass::Relabel => Self::Relabel,
            StatePass::Renoise { level } => Self::Renoise {
                level,
                noise: noise(),
            },
        }
    }
}

/// Runs the `S + 1` passes of one frame from `x` (already clipped noise): the clean latent and
/// the new state.
pub(crate) fn sample<C: Cell>(
    cell: &mut C,
    plan: &DdimPlan,
    mut x: C::Latent,
    last: FinalPass<C::Latent>,
    prof: &mut Option<&mut Profiler<'_>>,
) -> (C::Latent, C::State) {
    let s = plan.steps();
    assert!(s >= 1, "a DDIM plan has at least one step");
    for &(t, t_next) in &plan.pairs {
        let (_, v) = cell.pass(&x, t as usize, prof);
        x = cell.update(x, v, t, t_next);
        mark(prof, Stage::Ddim);
    }
    match last {
        FinalPass::Relabel => {
            let (t, t_next) = plan.pairs[s - 1];
            let (z, v) = cell.pass(&x, t as usize, prof);
            x = cell.update(x, v, t, t_next);
            mark(prof, Stage::Ddim);
            (x, z)
        }
        FinalPass::Renoise { level, noise } => {
            let input = cell.noised(&x, noise, level);
            let (z, _) = cell.pass(&input, level, prof);
            mark(prof, Stage::Ddim);
            (x, z)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::world::ddim::{ddim_plan, ddim_update, gaussian};
    use crate::world::schedule::Schedule;
    use burn::backend::NdArray;
    use burn::tensor::Tensor;

    type B = NdArray;

    /// A cell that knows the clean latent: its v is exact for whatever `x` it is given, and its
    /// "state" is the `x` it saw.
    struct Oracle {
        x0: Tensor<B, 4>,
        schedule: Schedule,
        passes: usize,
    }

    impl Cell for Oracle {
        type Latent = Tensor<B, 4>;
        type State = Tensor<B, 4>;

        fn pass(
            &mut self,
            x: &Tensor<B, 4>,
            level: usize,
            _: &mut Option<&mut Profiler<'_>>,
        ) -> (Tensor<B, 4>, Tensor<B, 4>) {
            self.passes += 1;
            // eps_hat = (x - sa x0) / sb, v = sa eps_hat - sb x0.
            let (sa, sb) = self.schedule.coefficients(level);
            let eps = (x.clone() - self.x0.clone().mul_scalar(sa)).div_scalar(sb);
            (
                x.clone(),
                eps.mul_scalar(sa) - self.x0.clone().mul_scalar(sb),
            )
        }

        fn update(
            &mut self,
            x: Tensor<B, 4>,
            v: Tensor<B, 4>,
            t: i64,
            t_next: i64,
        ) -> Tensor<B, 4> {
            ddim_update(&self.schedule, x, v, t, t_next)
        }

        fn noised(&mut self, x0: &Tensor<B, 4>, noise: Tensor<B, 4>, level: usize) -> Tensor<B, 4> {
            let (sa, sb) = self.schedule.coefficients(level);
            x0.clone().mul_scalar(sa) + noise.mul_scalar(sb)
        }
    }

    #[test]
    fn an_exact_v_oracle_gives_back_the_clean_latent() {
        let dev = Default::default();
        let mut rng = Rng::new(5);
        let x0: Tensor<B, 4> = gaussian(&mut rng, [2, 4, 6, 6], &dev).mul_scalar(0.5);
        for steps in [1usize, 2, 4, 8, 16] {
            let mut cell = Oracle {
                x0: x0.clone(),
                schedule: Schedule::default(),
                passes: 0,
            };
            let noise: Tensor<B, 4> = gaussian(&mut rng, [2, 4, 6, 6], &dev);
            let plan = ddim_plan(steps, 1000);
            let (x, z) = sample(
                &mut cell,
                &plan,
                noise.clone(),
                FinalPass::Relabel,
                &mut None,
            );
            assert_eq!(cell.passes, steps + 1, "S + 1 passes");
            let err: f32 = (x - x0.clone()).abs().max().into_scalar();
            assert!(err < 1e-3, "steps={steps}: max error {err}");
            // The final pass sees the clean latent: the state it gives is that of x0.
            let zerr: f32 = (z - x0.clone()).abs().max().into_scalar();
            assert!(zerr < 1e-3);

            // Re-noised: the same frame, and the state pass sees x0 noised to the level.
            cell.passes = 0;
            let fresh: Tensor<B, 4> = gaussian(&mut rng, [2, 4, 6, 6], &dev);
            let last = FinalPass::Renoise {
                level: 100,
                noise: fresh.clone(),
            };
            let (x, z) = sample(&mut cell, &plan, noise, last, &mut None);
            assert_eq!(cell.passes, steps + 1, "S + 1 passes");
            let err: f32 = (x.clone() - x0.clone()).abs().max().into_scalar();
            assert!(err < 1e-3, "steps={steps}: max error {err}");
            let (sa, sb) = Schedule::default().coefficients(100);
            let want = x.mul_scalar(sa) + fresh.mul_scalar(sb);
            let zerr: f32 = (z - want).abs().max().into_scalar();
            assert!(zerr < 1e-5, "the state pass saw another input: {zerr}");
        }
    }
}
