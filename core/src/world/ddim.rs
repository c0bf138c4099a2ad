//! DDIM (eta = 0) for one frame of the recurrent model, as PlayGen's inference does it: the
//! plan, the update and the frame's noise; the loop that runs a frame is the play sampler
//! (`play::sampler`).
//!
//! For `S` steps the noise levels are `linspace(-1, T-1, S+1)` truncated to integers and walked
//! from high to low; the step whose next level is `-1` jumps straight to the predicted clean
//! latent. Every step is one DiT pass from the *previous* hidden state `z_{t-1}`. After the `S`
//! steps one more pass re-runs the last step (same noise level) on the clean latent: its `z`
//! becomes the new state and its clean prediction is the frame, so a frame costs `S + 1` passes.
//! (The reference skips a separate "posterior" pass at level 0: the z of a pass over an almost
//! clean latent already holds the new frame, and never feeding level 0 keeps rollouts stable.)

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::rng::Rng;
use crate::world::schedule::{CLIP_NOISE, Schedule};

/// Largest number of DDIM steps a session accepts (real time wants 4; 8 is the paper's option).
pub const MAX_DDIM_STEPS: usize = 16;

/// The (level, next level) pairs of an `S`-step DDIM walk; the last pair's next level is `-1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdimPlan {
    pub pairs: Vec<(i64, i64)>,
}

/// The DDIM walk for `steps` steps over `timesteps` levels.
pub fn ddim_plan(steps: usize, timesteps: usize) -> DdimPlan {
    assert!(
        steps >= 1 && steps <= timesteps,
        "DDIM steps must be in 1..=timesteps"
    );
    // torch.linspace(-1, T-1, S+1).int(): truncation toward zero.
    let times: Vec<i64> = (0..=steps)
        .map(|i| (-1.0 + i as f64 * timesteps as f64 / steps as f64) as i64)
        .rev()
        .collect();
    DdimPlan {
        pairs: times.windows(2).map(|w| (w[0], w[1])).collect(),
    }
}

impl DdimPlan {
    pub fn steps(&self) -> usize {
        self.pairs.len()
    }

    /// Noise levels of the `S + 1` passes, in order (the last repeats the final step's level).
    pub fn pass_levels(&self) -> Vec<usize> {
        let s = self.steps();
        (0..=s)
            .map(|m| self.pairs[m.min(s - 1)].0 as usize)
            .collect()
    }
}

/// One DDIM (eta 0) update of `x` at level `t` given the model's v: returns the next `x`
/// (the clean prediction when `t_next < 0`).
pub fn ddim_update<B: Backend>(
    schedule: &Schedule,
    x: Tensor<B, 4>,
    v: Tensor<B, 4>,
    t: i64,
    t_next: i64,
) -> Tensor<B, 4> {
    let (sa, sb) = schedule.coefficients(t as usize);
    let x0 = x.clone().mul_scalar(sa) - v.clone().mul_scalar(sb);
    if t_next < 0 {
        return x0;
    }
    let eps = x.mul_scalar(sb) + v.mul_scalar(sa);
    let (na, nb) = schedule.coefficients(t_next as usize);
    x0.mul_scalar(na) + eps.mul_scalar(nb)
}

/// [`ddim_update`] folded into two numbers: the next `x` is `cx * x + cv * v` (the same maths
/// in one multiply-add per element instead of eight operations; rounding may differ).
pub fn ddim_step_coefficients(schedule: &Schedule, t: i64, t_next: i64) -> (f64, f64) {
    let (sa, sb) = schedule.coefficients(t as usize);
    if t_next < 0 {
        // x0 = sa x - sb v
        return (sa, -sb);
    }
    // x0 = sa x - sb v, eps = sb x + sa v, next = na x0 + nb eps.
    let (na, nb) = schedule.coefficients(t_next as usize);
    (na * sa + nb * sb, nb * sa - na * sb)
}

/// Standard normal noise of `shape`, clipped to `CLIP_NOISE`, from our own PRNG so that the
/// same seed gives the same noise on every backend.
pub fn gaussian<B: Backend, const D: usize>(
    rng: &mut Rng,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    Tensor::from_data(TensorData::new(gaussian_values(rng, n), shape), device)
}

/// The `n` values [`gaussian`] draws for a tensor of `n` elements (row-major), on the CPU.
pub fn gaussian_values(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.normal() as f32).clamp(-CLIP_NOISE, CLIP_NOISE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    #[test]
    fn plan_matches_the_reference_levels() {
        let p = ddim_plan(4, 1000);
        assert_eq!(p.pairs, vec![(999, 749), (749, 499), (499, 249), (249, -1)]);
        assert_eq!(p.pass_levels(), vec![999, 749, 499, 249, 249]);
        let p = ddim_plan(3, 1000);
        assert_eq!(p.pairs, vec![(999, 665), (665, 332), (332, -1)]);
        let p = ddim_plan(1, 1000);
        assert_eq!(p.pairs, vec![(999, -1)]);
        for s in 1..=MAX_DDIM_STEPS {
            let p = ddim_plan(s, 1000);
            assert_eq!(p.steps(), s);
            assert_eq!(p.pass_levels().len(), s + 1);
            assert!(p.pairs.windows(2).all(|w| w[0].0 > w[1].0));
        }
    }

    #[test]
    fn folded_coefficients_match_the_update() {
        let dev = Default::default();
        let sched = Schedule::default();
        let mut rng = Rng::new(3);
        let x: Tensor<B, 4> = gaussian(&mut rng, [1, 4, 5, 5], &dev);
        let v: Tensor<B, 4> = gaussian(&mut rng, [1, 4, 5, 5], &dev);
        for steps in [1usize, 4, 16] {
            for &(t, t_next) in &ddim_plan(steps, 1000).pairs {
                let want = ddim_update(&sched, x.clone(), v.clone(), t, t_next);
                let (cx, cv) = ddim_step_coefficients(&sched, t, t_next);
                let got = x.clone().mul_scalar(cx) + v.clone().mul_scalar(cv);
                let err: f32 = (want - got).abs().max().into_scalar();
                assert!(err < 1e-5, "t={t} -> {t_next}: {err}");
            }
        }
    }
}
