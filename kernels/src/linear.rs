//! A linear layer `[rows][ci] -> [rows][co]` on the packed multiply-add kernel: blocks of up to
//! 32 output channels of two rows at a time.

#[cfg(target_arch = "x86_64")]
use crate::packed::has_avx2_fma;
use crate::packed::{LANES, NARROW_P, PackedWeights, accumulate, groups_at};

/// A linear layer: `[rows][ci]` -> `[rows][co]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    w: PackedWeights,
}

impl Linear {
    /// From `weight` `[ci][co]` (input-major, the layout of Burn's `Linear`) and an optional bias `[co]`.
    pub fn from_parts(weight: &[f32], bias: Option<&[f32]>, ci: usize, co: usize) -> Self {
        assert_eq!(weight.len(), ci * co, "linear weight size");
        Self {
            w: PackedWeights::new(1, ci, co, |_, i, o| weight[i * co + o], bias),
        }
    }

    /// Without bias, `weight(i, o)` from whatever layout the caller has (the attention's keys
    /// and values are strided views of the fused QKV projection).
    pub(crate) fn from_fn(ci: usize, co: usize, weight: impl Fn(usize, usize) -> f32) -> Self {
        Self {
            w: PackedWeights::new(1, ci, co, |_, i, o| weight(i, o), None),
        }
    }

    pub fn in_features(&self) -> usize {
        self.w.ci
    }

    pub fn out_features(&self) -> usize {
        self.w.co
    }

    /// `src` `[rows][ci]` -> `[rows][co]`, added to `out` when `add` (a residual connection),
    /// else written over it.
    pub fn forward_into(&self, src: &[f32], out: &mut [f32], add: bool) {
        let (ci, co) = (self.w.ci, self.w.co);
        assert_eq!(src.len() % ci, 0, "linear input size");
        let rows = src.len() / ci;
        assert_eq!(out.len(), rows * co, "linear output size");
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU features `linear_avx2` is compiled for were just detected.
            unsafe { linear_avx2(&self.w, src, out, add) };
            return;
        }
        linear_rows::<false>(&self.w, src, out, add);
    }

    pub fn forward(&self, src: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; src.len() / self.w.ci * self.w.co];
        self.forward_into(src, &mut out, false);
        out
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn linear_avx2(k: &PackedWeights, src: &[f32], out: &mut [f32], add: bool) {
    linear_rows::<true>(k, src, out, add);
}

#[inline(always)]
fn linear_rows<const FMA: bool>(k: &PackedWeights, src: &[f32], out: &mut [f32], add: bool) {
    let mut o0 = 0;
    while o0 < k.co {
        let groups = groups_at(k.co, o0);
        match groups {
            4 => linear_blocks::<4, 2, FMA>(k, src, out, add, o0),
            3 => linear_blocks::<3, 2, FMA>(k, src, out, add, o0),
            2 => linear_blocks::<2, 2, FMA>(k, src, out, add, o0),
            _ => linear_blocks::<1, NARROW_P, FMA>(k, src, out, add, o0),
        }
        o0 += groups * LANES;
    }
}

#[inline(always)]
fn linear_blocks<const NV: usize, const P: usize, const FMA: bool>(
    k: &PackedWeights,
    src: &[f32],
    out: &mut [f32],
    add: bool,
    o0: usize,
) {
    let (ci, co) = (k.ci, k.co);
    let rows = src.len() / ci;
    let n = (co - o0).min(NV * LANES);
    let mut store = |r: usize, group: &[[f32; LANES]; NV]| {
        let dst = &mut out[r * co + o0..r * co + o0 + n];
        let values = &group.as_flattened()[..n];
        if add {
            dst.iter_mut().zip(values).for_each(|(o, &v)| *o += v);
        } else {
            dst.copy_from_slice(values);
        }
    };
    let mut r = 0;
    while r + P <= rows {
        let acc = accumulate::<NV, P, FMA>(k, o0, src, r * ci, &[0]);
        for (p, group) in acc.iter().enumerate() {
            store(r + p, group);
        }
        r += P;
    }
    while r < rows {
        let acc = accumulate::<NV, 1, FMA>(k, o0, src, r * ci, &[0]);
        store(r, &acc[0]);
        r += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104729) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn linear_matches_its_definition() {
        // Widths that hit every lane-group count and a partial last group; row counts with a
        // block remainder.
        for (ci, co, rows) in [
            (64, 192, 83),
            (256, 64, 7),
            (5, 3, 1),
            (320, 64, 64),
            (7, 9, 5),
        ] {
            let (w, b, x) = (values(ci * co, 1), values(co, 2), values(rows * ci, 3));
            let layer = Linear::from_parts(&w, Some(&b), ci, co);
            assert_eq!((layer.in_features(), layer.out_features()), (ci, co));
            let got = layer.forward(&x);
            for r in 0..rows {
                for o in 0..co {
                    let want: f64 = b[o] as f64
                        + (0..ci)
                            .map(|i| x[r * ci + i] as f64 * w[i * co + o] as f64)
                            .sum::<f64>();
                    let g = got[r * co + o] as f64;
                    assert!(
                        (g - want).abs() < 1e-4,
                        "{ci}->{co} row {r} out {o}: {g} vs {want}"
                    );
                }
            }
            // Accumulating adds to what is there.
            let mut twice = got.clone();
            layer.forward_into(&x, &mut twice, true);
            for (t, g) in twice.iter().zip(&got) {
                assert!((t - 2.0 * g).abs() < 1e-5);
            }
        }
    }
}
