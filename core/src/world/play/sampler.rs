//! The one DDIM loop: every play path runs its frames through [`sample`], over the [`Cell`] it
//! computes with.
//!
//! DDIM (eta 0) as PlayGen's inference runs it: `S` steps from clipped Gaussian noise, each one
//! pass of the recurrent cell from the frame's fixed previous state, then the last step's level
//! again on the clean latent, whose state becomes the session's (see [`ddim`]). A frame costs
//! `S + 1` passes.
//!
//! [`ddim`]: crate::world::ddim

use super::profile::{Profiler, Stage, mark};
use crate::world::ddim::DdimPlan;

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
}

/// Runs the `S + 1` passes of one frame from `x` (already clipped noise): the clean latent and
/// the new state.
pub(crate) fn sample<C: Cell>(
    cell: &mut C,
    plan: &DdimPlan,
    mut x: C::Latent,
    prof: &mut Option<&mut Profiler<'_>>,
) -> (C::Latent, C::State) {
    let s = plan.steps();
    assert!(s >= 1, "a DDIM plan has at least one step");
    let mut state = None;
    for m in 0..=s {
        let (t, t_next) = plan.pairs[m.min(s - 1)];
        let (z, v) = cell.pass(&x, t as usize, prof);
        x = cell.update(x, v, t, t_next);
        mark(prof, Stage::Ddim);
        state = Some(z);
    }
    (x, state.expect("at least one pass"))
}
