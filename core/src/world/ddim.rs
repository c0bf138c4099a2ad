//! DDIM (eta = 0) for one frame of the recurrent model, as PlayGen's inference does it: the
//! plan, the update and the frame's noise; the loop that runs a frame is the play sampler
//! (`play::sampler`).
//!
//! For `S` steps the noise levels are `linspace(-1, T-1, S+1)` truncated to integers and walked
//! from high to low; the step whose next level is `-1` jumps straight to the predicted clean
//! latent. Every step is one DiT pass from the *previous* hidden state `z_{t-1}`. After the `S`
//! steps one more pass makes the new state, so a frame costs `S + 1` passes; [`StatePass`] says
//! what that pass sees. (Neither form feeds a separate "posterior" pass at level 0: the z of a
//! pass over an almost clean latent already holds the new frame, and never feeding level 0 keeps
//! rollouts stable.)

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::world::schedule::{CLIP_NOISE, Schedule};

/// Largest number of DDIM steps a session accepts (real time wants 4; 8 is the paper's option).
pub const MAX_DDIM_STEPS: usize = 16;

/// What the sampler's last pass, the one whose state the session keeps, is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum StatePass {
    /// PlayGen's reference: the last step's level again, over the clean latent; the frame is
    /// that pass's clean prediction. Training never shows a clean latent labelled as noisy.
    #[default]
    Relabel,
    /// The frame is the `S`-step DDIM result; the state pass sees it re-noised to `level` with
    /// fresh noise, which is how training shows every frame (diffusion forcing draws each
    /// frame's level), so the state is made from inputs the cell was trained on.
    Renoise { level: usize },
}

impl StatePass {
    pub fn validate(&self) -> Result<(), crate::world::ConfigError> {
        match *self {
            Self::Renoise { level } if level >= crate::world::schedule::NUM_TIMESTEPS => {
                Err(crate::world::ConfigError(format!(
                    "state_pass.level = {level} must be below {}",
                    crate::world::schedule::NUM_TIMESTEPS
                )))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for StatePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Relabel => write!(f, "relabel"),
            Self::Renoise { level } => write!(f, "renoise:{level}"),
        }
    }
}

impl std::str::FromStr for StatePass {
    type Err = crate::world::ConfigError;

    /// `relabel` or `renoise:LEVEL` (the form [`Display`](std::fmt::Display) writes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            crate::world::ConfigError(format!(
                "state pass {s:?}: expected `relabel` or `renoise:LEVEL` (e.g. renoise:249)"
            ))
        };
        let pass = match s.split_once(':') {
            None if s == "relabel" => Self::Relabel,
            Some(("renoise", level)) => Self::Renoise {
                level: level.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        pass.validate()?;
        Ok(pass)
    }
}

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
    fn state_passes_parse_and_print() {
        for (text, want) in [
            ("relabel", Some(StatePass::Relabel)),
            ("renoise:249", Some(StatePass::Renoise { level: 249 })),
            ("renoise:0", Some(StatePass::Renoise { level: 0 })),
            ("renoise:1000", None),
            ("renoise:", None),
            ("renoise", None),
            ("relabel:3", None),
            ("", None),
        ] {
            let got = text.parse::<StatePass>().ok();
            assert_eq!(got, want, "{text:?}");
            if let Some(p) = got {
                assert_eq!(p.to_string(), text);
            }
        }
        let json = serde_json::to_string(&StatePass::Renoise { level: 99 }).unwrap();
        assert_eq!(json, r#"{"kind":"renoise","level":99}"#);
        assert_eq!(
            serde_json::from_str::<StatePass>(&json)
                .unwrap()
                .to_string(),
            "renoise:99"
        );
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
