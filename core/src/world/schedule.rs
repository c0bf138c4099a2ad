//! The noise schedule and the v-prediction algebra.
//!
//! PlayGen trains on a 1000-step sigmoid beta schedule with the v objective and a min-SNR style
//! weight clipped at 5. Everything here is plain `f64` on the CPU: per-sample coefficients are a
//! handful of numbers, computed once and turned into small tensors by the callers, so the maths
//! is identical on every backend and easy to test.

/// Number of diffusion timesteps (noise levels `0..NUM_TIMESTEPS`).
pub const NUM_TIMESTEPS: usize = 1000;

/// Noise is clipped to this many standard deviations, in training and sampling alike.
pub const CLIP_NOISE: f32 = 6.0;

/// `alphas_cumprod` of the sigmoid schedule and what derives from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// `alpha_bar[k]` = prod_{i<=k} (1 - beta_i); strictly decreasing in `k`.
    pub alphas_cumprod: Vec<f64>,
    /// The SNR clip of the min-SNR loss weight.
    pub snr_clip: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self::sigmoid(NUM_TIMESTEPS, -3.0, 3.0, 1.0, 5.0)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Schedule {
    /// The sigmoid beta schedule: `alpha_bar(t)` follows a (shifted, rescaled) sigmoid between
    /// `start` and `end` over `t in [0, 1]`; betas are recovered from consecutive ratios and
    /// clipped to 0.999 so the last steps stay finite.
    pub fn sigmoid(timesteps: usize, start: f64, end: f64, tau: f64, snr_clip: f64) -> Self {
        assert!(timesteps >= 2, "a schedule needs at least 2 steps");
        let v_start = sigmoid(start / tau);
        let v_end = sigmoid(end / tau);
        let abar_t = |i: usize| {
            let t = i as f64 / timesteps as f64;
            (-sigmoid((t * (end - start) + start) / tau) + v_end) / (v_end - v_start)
        };
        let a0 = abar_t(0);
        let mut alphas_cumprod = Vec::with_capacity(timesteps);
        let mut acc = 1.0;
        for i in 0..timesteps {
            let beta = (1.0 - (abar_t(i + 1) / a0) / (abar_t(i) / a0)).clamp(0.0, 0.999);
            acc *= 1.0 - beta;
            alphas_cumprod.push(acc);
        }
        Self {
            alphas_cumprod,
            snr_clip,
        }
    }

    pub fn len(&self) -> usize {
        self.alphas_cumprod.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alphas_cumprod.is_empty()
    }

    /// `alpha_bar` at noise level `k` (clamped into range).
    pub fn alpha_bar(&self, k: usize) -> f64 {
        self.alphas_cumprod[k.min(self.len() - 1)]
    }

    /// `(sqrt(alpha_bar), sqrt(1 - alpha_bar))`: the weights of signal and noise at level `k`.
    pub fn coefficients(&self, k: usize) -> (f64, f64) {
        let a = self.alpha_bar(k);
        (a.sqrt(), (1.0 - a).sqrt())
    }

    /// Signal-to-noise ratio `alpha_bar / (1 - alpha_bar)`.
    pub fn snr(&self, k: usize) -> f64 {
        let a = self.alpha_bar(k);
        a / (1.0 - a)
    }

    /// Min-SNR weight for the v objective: `min(snr, clip) / (snr + 1)`. With v-prediction the
    /// plain MSE already weights each level by `snr + 1` relative to x0-prediction; this caps the
    /// effective weight at `clip` so the nearly clean levels do not dominate.
    pub fn v_loss_weight(&self, k: usize) -> f64 {
        let snr = self.snr(k);
        snr.min(self.snr_clip) / (snr + 1.0)
    }

    /// The same weight fused with the cumulative SNR of the earlier frames of a clip (PlayGen,
    /// after diffusion forcing): a frame whose predecessors were seen nearly clean is weighted
    /// as if it were cleaner. `cum` is the running value returned by the previous frame (`None`
    /// for the first frame); returns `(weight, next_cum)`.
    pub fn fused_v_loss_weight(&self, k: usize, cum: Option<f64>, decay: f64) -> (f64, f64) {
        let clip = self.snr_clip;
        let snr = self.snr(k);
        let norm_clipped = snr.min(clip) / clip;
        let norm = snr / clip;
        match cum {
            None => (norm_clipped * clip / (norm * clip + 1.0), norm_clipped),
            Some(c) => {
                let next = c * decay + norm_clipped * (1.0 - decay);
                let fused_clipped = 1.0 - (1.0 - c * decay) * (1.0 - norm_clipped);
                let fused = 1.0 - (1.0 - c * decay) * (1.0 - norm);
                (fused_clipped * clip / (fused * clip + 1.0), next)
            }
        }
    }

    /// `x_k = sqrt(a) x0 + sqrt(1-a) eps` (scalar form, for tests and the CPU paths).
    pub fn q_sample(&self, k: usize, x0: f64, eps: f64) -> f64 {
        let (sa, sb) = self.coefficients(k);
        sa * x0 + sb * eps
    }

    /// The v target: `v = sqrt(a) eps - sqrt(1-a) x0`.
    pub fn v_target(&self, k: usize, x0: f64, eps: f64) -> f64 {
        let (sa, sb) = self.coefficients(k);
        sa * eps - sb * x0
    }

    /// Clean latent from a noisy one and its v: `x0 = sqrt(a) x_k - sqrt(1-a) v`.
    pub fn x0_from_v(&self, k: usize, x_k: f64, v: f64) -> f64 {
        let (sa, sb) = self.coefficients(k);
        sa * x_k - sb * v
    }

    /// Noise from a noisy latent and its v: `eps = sqrt(1-a) x_k + sqrt(a) v`.
    pub fn eps_from_v(&self, k: usize, x_k: f64, v: f64) -> f64 {
        let (sa, sb) = self.coefficients(k);
        sb * x_k + sa * v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphas_cumprod_is_strictly_decreasing_from_nearly_one() {
        let s = Schedule::default();
        assert_eq!(s.len(), NUM_TIMESTEPS);
        assert!(s.alpha_bar(0) > 0.999 && s.alpha_bar(0) < 1.0);
        assert!(s.alpha_bar(NUM_TIMESTEPS - 1) < 1e-3);
        for k in 1..s.len() {
            assert!(s.alphas_cumprod[k] < s.alphas_cumprod[k - 1], "k={k}");
            assert!(s.alphas_cumprod[k] > 0.0);
        }
        // The sigmoid schedule is symmetric-ish: about half the signal power at the middle.
        let mid = s.alpha_bar(NUM_TIMESTEPS / 2);
        assert!((0.3..0.7).contains(&mid), "{mid}");
    }

    #[test]
    fn v_prediction_round_trips() {
        let s = Schedule::default();
        for &k in &[0usize, 1, 10, 250, 500, 999] {
            for &(x0, eps) in &[(0.3, -1.2), (-0.9, 0.4), (1.0, 0.0)] {
                let xk = s.q_sample(k, x0, eps);
                let v = s.v_target(k, x0, eps);
                let back = s.x0_from_v(k, xk, v);
                let (sa, sb) = s.coefficients(k);
                assert!((back - (sa * xk - sb * v)).abs() < 1e-12);
                assert!((back - x0).abs() < 1e-9, "k={k}: {back} vs {x0}");
                assert!((s.eps_from_v(k, xk, v) - eps).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn min_snr_weight_is_capped_and_positive() {
        let s = Schedule::default();
        for k in 0..s.len() {
            let w = s.v_loss_weight(k);
            assert!(w > 0.0 && w <= 1.0, "k={k} w={w}");
        }
        // Clean levels: snr >> 5, weight ~ 5/(snr+1) small; noisy levels: weight ~ snr/(snr+1).
        assert!(s.v_loss_weight(0) < 0.01);
        assert!((s.v_loss_weight(999) - s.snr(999) / (s.snr(999) + 1.0)).abs() < 1e-12);
        // Without history the fused weight is the plain one.
        let (w, _) = s.fused_v_loss_weight(300, None, 0.96);
        assert!((w - s.v_loss_weight(300)).abs() < 1e-12);
    }
}
