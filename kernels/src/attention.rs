//! Multi-head self-attention of one sample straight from a fused QKV projection, as two packed
//! matrix products per head.

use crate::elementwise::{exp_slice, lane_sum};
use crate::linear::Linear;

/// Self-attention of one sample: `qkv` is `[l, 3, heads, hd]`, `out` is `[l, heads, hd]`.
pub fn attention(qkv: &[f32], out: &mut [f32], l: usize, heads: usize, hd: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU features `attention_avx2` is compiled for were just detected.
        unsafe { attention_avx2(qkv, out, l, heads, hd) };
        return;
    }
    attention_portable(qkv, out, l, heads, hd);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attention_avx2(qkv: &[f32], out: &mut [f32], l: usize, heads: usize, hd: usize) {
    attention_portable(qkv, out, l, heads, hd);
}

/// Per head, two matrix products through the packed multiply-add kernel of
/// [`Linear`]: the scaled queries `[l][hd]` times the keys packed as a
/// `hd -> l` layer give the scores `[l][l]`; after each row's softmax, the probabilities times
/// the values packed as an `l -> hd` layer give the head's output. Packing a head's keys and
/// values (2 `l hd` values) is small next to the `2 l^2 hd` multiply-adds, and the kernel keeps
/// blocks of outputs in registers where a loop over one query at a time re-read and re-wrote its
/// scores for every channel.
#[inline(always)]
fn attention_portable(qkv: &[f32], out: &mut [f32], l: usize, heads: usize, hd: usize) {
    let d = heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut queries = vec![0.0f32; l * hd];
    let mut scores = vec![0.0f32; l * l];
    let mut head_out = vec![0.0f32; l * hd];
    for h in 0..heads {
        // Token `j`'s part (0 queries, 1 keys, 2 values), channel `c` of this head.
        let at = |j: usize, part: usize, c: usize| qkv[j * 3 * d + part * d + h * hd + c];
        for (j, q) in queries.chunks_exact_mut(hd).enumerate() {
            for (c, v) in q.iter_mut().enumerate() {
                *v = at(j, 0, c) * scale;
            }
        }
        Linear::from_fn(hd, l, |c, j| at(j, 1, c)).forward_into(&queries, &mut scores, false);
        for row in scores.chunks_exact_mut(l) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // The exponentials in their own loop (no running sum), so it vectorises; the sum
            // in eight lanes.
            row.iter_mut().for_each(|s| *s -= max);
            exp_slice(row);
            let inv = 1.0 / lane_sum(row);
            row.iter_mut().for_each(|s| *s *= inv);
        }
        Linear::from_fn(l, hd, |j, c| at(j, 2, c)).forward_into(&scores, &mut head_out, false);
        for (i, o) in head_out.chunks_exact(hd).enumerate() {
            out[i * d + h * hd..][..hd].copy_from_slice(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Softmax attention in f64, one query at a time: the definition.
    fn naive(qkv: &[f32], l: usize, heads: usize, hd: usize) -> Vec<f32> {
        let d = heads * hd;
        let at = |j: usize, part: usize, h: usize, c: usize| {
            qkv[j * 3 * d + part * d + h * hd + c] as f64
        };
        let mut out = vec![0.0f32; l * d];
        for h in 0..heads {
            for i in 0..l {
                let scores: Vec<f64> = (0..l)
                    .map(|j| {
                        (0..hd)
                            .map(|c| at(i, 0, h, c) * at(j, 1, h, c))
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for c in 0..hd {
                    let v: f64 = (0..l).map(|j| e[j] / sum * at(j, 2, h, c)).sum();
                    out[i * d + h * hd + c] = v as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_its_definition() {
        // Uneven heads, sequences that are no multiple of a vector width, and large logits
        // (the max subtraction).
        for (l, heads, hd, spread) in [(67, 4, 16, 1.0f32), (5, 3, 8, 8.0), (1, 1, 4, 1.0)] {
            let d = heads * hd;
            let qkv: Vec<f32> = (0..l * 3 * d)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * spread)
                .collect();
            let mut out = vec![0.0f32; l * d];
            attention(&qkv, &mut out, l, heads, hd);
            let want = naive(&qkv, l, heads, hd);
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = out
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 5e-6 * scale,
                "l={l} heads={heads}: max |diff| {worst}"
            );
        }
    }
}
