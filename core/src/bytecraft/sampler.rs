//! Token sampling on the host: allowed-token mask, temperature, top-k, top-p (nucleus), min-p,
//! in that order (the order of transformers' and vLLM's processors), then one draw from the
//! sample's own seeded stream. Temperature 0 is greedy (argmax, lowest id on ties).

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Sampling settings; every filter is off at its default except temperature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingConfig {
    /// 0 means greedy. The reference script uses 0.3; the authors recommend 0.1.
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose mass reaches `top_p` (1 = off).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0 = off).
    pub min_p: f32,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 0.3,
            top_p: 1.0,
            min_p: 0.0,
            top_k: 0,
        }
    }
}

impl SamplingConfig {
    /// What `gamegen generate`, the browser studio and exported checkpoints'
    /// `generation_config.json` sample with unless told otherwise: the reference script's
    /// temperature with a 0.9 nucleus, which cuts the long tail of unlikely bytes that breaks
    /// SWF framing.
    pub const RECOMMENDED: SamplingConfig = SamplingConfig {
        temperature: 0.3,
        top_p: 0.9,
        min_p: 0.0,
        top_k: 0,
    };
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SamplingError {
    #[error("temperature {0} must be a finite number >= 0")]
    Temperature(f32),
    #[error("top_p {0} must be in (0, 1]")]
    TopP(f32),
    #[error("min_p {0} must be in [0, 1]")]
    MinP(f32),
}

impl SamplingConfig {
    pub fn validate(&self) -> Result<(), SamplingError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(SamplingError::Temperature(self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SamplingError::TopP(self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(SamplingError::MinP(self.min_p));
        }
        Ok(())
    }
}

/// Draw one token id from `logits` (one vocabulary row). `allowed`, when given, is the only set
/// of ids that may be drawn (ids beyond the row are ignored).
pub fn sample(logits: &[f32], allowed: Option<&[u32]>, cfg: &SamplingConfig, rng: &mut Rng) -> u32 {
    let mut cand: Vec<(u32, f32)> = match allowed {
        Some(ids) => ids
            .iter()
            .filter(|&&i| (i as usize) < logits.len())
            .map(|&i| (i, logits[i as usize]))
            .collect(),
        None => logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .collect(),
    };
    cand.retain(|(_, l)| !l.is_nan());
    if cand.is_empty() {
        return 0;
    }
    let best = cand
        .iter()
        .copied()
        .fold((u32::MAX, f32::NEG_INFINITY), |acc, c| {
            if c.1 > acc.1 || (c.1 == acc.1 && c.0 < acc.0) {
                c
            } else {
                acc
            }
        });
    if cfg.temperature == 0.0 || !best.1.is_finite() {
        return best.0;
    }
    // Probabilities up to a constant, in f64 for the cumulative sums.
    let inv_t = 1.0 / cfg.temperature as f64;
    let max = best.1 as f64;
    let mut probs: Vec<(u32, f64)> = cand
        .into_iter()
        .map(|(i, l)| (i, ((l as f64 - max) * inv_t).exp()))
        .collect();
    if cfg.top_k > 0 || cfg.top_p < 1.0 {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if cfg.top_k > 0 {
            probs.truncate(cfg.top_k);
        }
        if cfg.top_p < 1.0 {
            let total: f64 = probs.iter().map(|p| p.1).sum();
            let mut mass = 0.0;
            let mut keep = probs.len();
            for (k, p) in probs.iter().enumerate() {
                mass += p.1 / total;
                if mass >= cfg.top_p as f64 {
                    keep = k + 1;
                    break;
                }
            }
            probs.truncate(keep.max(1));
        }
    }
    if cfg.min_p > 0.0 {
        // The most likely token has weight exp(0) = 1 before normalisation.
        let floor = cfg.min_p as f64;
        probs.retain(|p| p.1 >= floor);
    }
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut r = rng.next_f64() * total;
    for &(i, p) in &probs {
        if r < p {
            return i;
        }
        r -= p;
    }
    probs.last().map(|p| p.0).unwrap_or(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(logits: &[f32], allowed: Option<&[u32]>, cfg: &SamplingConfig, n: usize) -> Vec<u32> {
        let mut rng = Rng::new(7);
        (0..n)
            .map(|_| sample(logits, allowed, cfg, &mut rng))
            .collect()
    }

    #[test]
    fn greedy_and_mask() {
        let logits = [1.0, 5.0, 3.0, 5.0];
        let greedy = SamplingConfig {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(draws(&logits, None, &greedy, 1), vec![1]);
        assert_eq!(draws(&logits, Some(&[0, 2]), &greedy, 1), vec![2]);
        let hot = SamplingConfig {
            temperature: 5.0,
            ..Default::default()
        };
        assert!(
            draws(&logits, Some(&[0, 2, 99]), &hot, 200)
                .iter()
                .all(|&i| i == 0 || i == 2)
        );
    }

    #[test]
    fn filters_cut_the_tail_and_sampling_follows_probabilities() {
        // Probabilities at T=1: about 0.64, 0.24, 0.09, 0.03.
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let base = SamplingConfig {
            temperature: 1.0,
            ..Default::default()
        };
        let n = 4000;
        let all = draws(&logits, None, &base, n);
        let share = all.iter().filter(|&&i| i == 0).count() as f64 / n as f64;
        assert!((share - 0.644).abs() < 0.03, "{share}");
        assert!(all.contains(&3));
        let top_k = SamplingConfig {
            top_k: 2,
            ..base.clone()
        };
        assert!(draws(&logits, None, &top_k, n).iter().all(|&i| i < 2));
        let top_p = SamplingConfig {
            top_p: 0.8,
            ..base.clone()
        };
        assert!(draws(&logits, None, &top_p, n).iter().all(|&i| i < 2));
        let min_p = SamplingConfig {
            min_p: 0.2,
            ..base.clone()
        };
        // exp(-1) = 0.37 >= 0.2 survives, exp(-2) = 0.14 does not.
        assert!(draws(&logits, None, &min_p, n).iter().all(|&i| i < 2));
        let same_seed = draws(&logits, None, &base, 50);
        assert_eq!(same_seed, all[..50]);
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = |c: SamplingConfig| c.validate().is_err();
        assert!(bad(SamplingConfig {
            temperature: -1.0,
            ..Default::default()
        }));
        assert!(bad(SamplingConfig {
            top_p: 0.0,
            ..Default::default()
        }));
        assert!(bad(SamplingConfig {
            min_p: 1.5,
            ..Default::default()
        }));
        assert!(SamplingConfig::default().validate().is_ok());
    }
}
