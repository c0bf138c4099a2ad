//! Normalisations: group norm over an image and layer norm over token rows.

use crate::elementwise::lane_sum;
use crate::image::Image;

/// Group normalisation (statistics over each group's channels and all pixels, then a
/// per-channel scale and offset), on an image's interior; the border stays zero.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNorm {
    groups: usize,
    epsilon: f32,
    gamma: Option<Vec<f32>>,
    beta: Option<Vec<f32>>,
}

impl GroupNorm {
    /// `groups` groups over the channels, with the per-channel scale `gamma` and offset
    /// `beta` (both absent: 1 and 0).
    pub fn new(
        groups: usize,
        epsilon: f32,
        gamma: Option<Vec<f32>>,
        beta: Option<Vec<f32>>,
    ) -> Self {
        Self {
            groups,
            epsilon,
            gamma,
            beta,
        }
    }

    pub fn apply(&self, img: &mut Image) {
        let (c, g) = (img.c, self.groups);
        assert_eq!(c % g, 0, "group norm channels");
        let per = c / g;
        let n = (per * img.h * img.w) as f32;
        // Two passes over the pixels (mean, then squared deviations), each summing whole
        // channel vectors so the loops run across channels without a division per element.
        let mut sums = vec![0.0f32; c];
        self.for_pixels(img, |px| {
            for (s, &v) in sums.iter_mut().zip(px) {
                *s += v;
            }
        });
        let group_mean: Vec<f32> = sums
            .chunks_exact(per)
            .map(|ch| ch.iter().sum::<f32>() / n)
            .collect();
        let mean: Vec<f32> = (0..c).map(|ch| group_mean[ch / per]).collect();
        let mut squares = vec![0.0f32; c];
        self.for_pixels(img, |px| {
            for ((s, &v), &m) in squares.iter_mut().zip(px).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        });
        // Per channel: y = x * scale + offset, folding the statistics and the affine.
        let mut scale = vec![0.0f32; c];
        let mut offset = vec![0.0f32; c];
        for (k, group) in squares.chunks_exact(per).enumerate() {
            let inv = 1.0 / (group.iter().sum::<f32>() / n + self.epsilon).sqrt();
            for ch in k * per..(k + 1) * per {
                let gamma = self.gamma.as_ref().map_or(1.0, |v| v[ch]);
                let beta = self.beta.as_ref().map_or(0.0, |v| v[ch]);
                scale[ch] = inv * gamma;
                offset[ch] = beta - mean[ch] * inv * gamma;
            }
        }
        for y in 0..img.h {
            let at = img.at(y, 0);
            for px in img.data[at..at + img.w * c].chunks_exact_mut(c) {
                for ((v, &a), &b) in px.iter_mut().zip(&scale).zip(&offset) {
                    *v = *v * a + b;
                }
            }
        }
    }

    /// Calls `f` with each interior pixel's channels.
    fn for_pixels(&self, img: &Image, mut f: impl FnMut(&[f32])) {
        for y in 0..img.h {
            let at = img.at(y, 0);
            img.data[at..at + img.w * img.c]
                .chunks_exact(img.c)
                .for_each(&mut f);
        }
    }
}

/// Layer norm of every `d`-wide row of `x`, then `* gamma + beta`, into `out`. The sums run in
/// independent lanes ([`lane_sum`]): one running sum per row is a chain of dependent adds.
pub fn modulated_layer_norm(
    x: &[f32],
    d: usize,
    epsilon: f32,
    gamma: &[f32],
    beta: &[f32],
    out: &mut [f32],
) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = lane_sum(row) / d as f32;
        for (o, &v) in o.iter_mut().zip(row) {
            *o = (v - mean) * (v - mean);
        }
        let inv = 1.0 / (lane_sum(o) / d as f32 + epsilon).sqrt();
        for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104729) % 2000) as f32 / 400.0 - 1.5)
            .collect()
    }

    #[test]
    fn group_norm_matches_its_definition() {
        let (h, w) = (5, 7);
        for (c, groups) in [(16, 8), (4, 4), (6, 1)] {
            let x = values(c * h * w, c);
            let (gamma, beta) = (values(c, 1), values(c, 2));
            let mut img = Image::from_planar(&x, c, h, w);
            GroupNorm::new(groups, 1e-5, Some(gamma.clone()), Some(beta.clone())).apply(&mut img);
            let got = img.to_planar();
            let per = c / groups;
            for g in 0..groups {
                let vals = &x[g * per * h * w..(g + 1) * per * h * w];
                let n = vals.len() as f64;
                let mean = vals.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = vals.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
                for ch in g * per..(g + 1) * per {
                    for p in 0..h * w {
                        let at = ch * h * w + p;
                        let want = (x[at] as f64 - mean) / (var + 1e-5).sqrt() * gamma[ch] as f64
                            + beta[ch] as f64;
                        assert!((got[at] as f64 - want).abs() < 1e-5, "{c}/{groups} at {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn layer_norm_matches_its_definition() {
        let (rows, d) = (3, 67);
        let x = values(rows * d, 3);
        let (gamma, beta) = (values(d, 4), values(d, 5));
        let mut out = vec![0.0; rows * d];
        modulated_layer_norm(&x, d, 1e-6, &gamma, &beta, &mut out);
        for r in 0..rows {
            let row = &x[r * d..(r + 1) * d];
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            for k in 0..d {
                let want =
                    (row[k] as f64 - mean) / (var + 1e-6).sqrt() * gamma[k] as f64 + beta[k] as f64;
                assert!((out[r * d + k] as f64 - want).abs() < 1e-5);
            }
        }
    }
}
