//! Image and playability metrics on RGB8 frames (no Burn: they judge outputs, they are not
//! trained), shared by `gamegen world eval` and the browser.
//!
//! - [`psnr`]: peak signal-to-noise ratio in dB (255 peak), capped at [`PSNR_CAP`] for identical
//!   frames so averages stay finite.
//! - [`ssim`]: structural similarity on luma with 8x8 uniform windows at stride 4 (the Wang et
//!   al. constants, K1 = 0.01, K2 = 0.03, L = 255). Uniform windows instead of the 11x11
//!   Gaussian keep it cheap; numbers are close to, not equal to, scikit-image's defaults.
//! - [`FMeasure`]: precision/recall/F1 of per-frame binary events (MaaG's NumCon is the F-measure
//!   of score changes).

/// PSNR reported for identical frames.
pub const PSNR_CAP: f64 = 100.0;

/// PSNR of two RGB8 frames of the same size.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "frames differ in size");
    if a.is_empty() {
        return PSNR_CAP;
    }
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        PSNR_CAP
    } else {
        (10.0 * (255.0 * 255.0 / mse).log10()).min(PSNR_CAP)
    }
}

fn luma(rgb: &[u8]) -> Vec<f64> {
    rgb.chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect()
}

/// SSIM of two RGB8 frames of `width x height`.
pub fn ssim(a: &[u8], b: &[u8], width: usize, height: usize) -> f64 {
    assert_eq!(a.len(), width * height * 3, "frame a has the wrong size");
    assert_eq!(b.len(), width * height * 3, "frame b has the wrong size");
    const WIN: usize = 8;
    const STRIDE: usize = 4;
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (la, lb) = (luma(a), luma(b));
    // Frames smaller than a window get one window over the whole frame.
    let (ww, wh) = (WIN.min(width), WIN.min(height));
    if ww == 0 || wh == 0 {
        return 1.0;
    }
    let n = (ww * wh) as f64;
    let (mut total, mut count) = (0.0, 0usize);
    let mut y = 0;
    while y + wh <= height {
        let mut x = 0;
        while x + ww <= width {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for yy in y..y + wh {
                for xx in x..x + ww {
                    let (p, q) = (la[yy * width + xx], lb[yy * width + xx]);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / n, sb / n);
            let va = (saa / n - ma * ma).max(0.0);
            let vb = (sbb / n - mb * mb).max(0.0);
            let cov = sab / n - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
            x += STRIDE;
        }
        y += STRIDE;
    }
    total / count as f64
}

/// Counts of a binary per-frame prediction against the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FMeasure {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl FMeasure {
    pub fn add(&mut self, predicted: bool, truth: bool) {
        match (predicted, truth) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, true) => self.false_negatives += 1,
            (false, false) => {}
        }
    }

    /// F1; `None` when there was nothing to find and nothing was predicted (undefined).
    pub fn f1(&self) -> Option<f64> {
        let tp = self.true_positives as f64;
        let denom = 2.0 * tp + self.false_positives as f64 + self.false_negatives as f64;
        (denom > 0.0).then(|| 2.0 * tp / denom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n).map(|_| r.below(256) as u8).collect()
    }

    #[test]
    fn psnr_matches_its_definition() {
        let a = vec![10u8; 300];
        let mut b = a.clone();
        assert_eq!(psnr(&a, &b), PSNR_CAP);
        b[0] = 20; // one error of 10 over 300 values: mse = 100/300
        let want = 10.0 * (255.0f64 * 255.0 / (100.0 / 300.0)).log10();
        assert!((psnr(&a, &b) - want).abs() < 1e-9);
    }

    #[test]
    fn ssim_is_one_for_identical_and_low_for_unrelated_frames() {
        let a = noise(1, 32 * 32 * 3);
        assert!((ssim(&a, &a, 32, 32) - 1.0).abs() < 1e-12);
        let b = noise(2, 32 * 32 * 3);
        assert!(ssim(&a, &b, 32, 32) < 0.1);
        // A small brightness shift keeps structure: high but below 1.
        let c: Vec<u8> = a.iter().map(|&v| v.saturating_add(8)).collect();
        let s = ssim(&a, &c, 32, 32);
        assert!(s > 0.8 && s < 1.0, "{s}");
    }

    #[test]
    fn f_measure_counts() {
        let mut f = FMeasure::default();
        assert_eq!(f.f1(), None);
        for (p, t) in [(true, true), (true, false), (false, true), (false, false)] {
            f.add(p, t);
        }
        assert_eq!(f.f1(), Some(0.5));
    }
}
