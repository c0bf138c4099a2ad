//! Same-padded, stride-1 3x3 convolutions and 1x1 convolutions over channels-last images.
//!
//! Why: the world model's convolutional networks are a handful of 3x3 convolutions with few
//! channels (3 to 48) over many pixels. A backend lowers a convolution to im2col and a matrix
//! product, which pays for materialising nine shifted copies of the input. Here each output
//! pixel keeps its output channels in registers (eight-lane groups) and sweeps the 3 x 3 x `ci`
//! inputs once, several pixels at a time so every weight load feeds several multiply-adds.
//! Images carry a one-pixel zero border so the inner loop has no edge cases.

use crate::image::Image;
use crate::linear::Linear;
#[cfg(target_arch = "x86_64")]
use crate::packed::has_avx2_fma;
use crate::packed::{LANES, NARROW_P, PackedWeights, accumulate, groups_at};

/// A same-padded, stride-1 3x3 convolution's weights, packed `[ky][kx][ci][co_pad]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3 {
    w: PackedWeights,
}

impl Conv3 {
    /// From `weight` `[co][ci][3][3]` (Burn's `Conv2d` layout) and an optional bias `[co]`.
    pub fn from_parts(weight: &[f32], bias: Option<&[f32]>, co: usize, ci: usize) -> Self {
        assert_eq!(weight.len(), co * ci * 9, "3x3 convolution weight size");
        Self {
            w: PackedWeights::new(9, ci, co, |k, i, o| weight[(o * ci + i) * 9 + k], bias),
        }
    }

    pub fn out_channels(&self) -> usize {
        self.w.co
    }

    /// `src` convolved, plus `residual` when given (same size as the output).
    pub fn forward(&self, src: &Image, residual: Option<&Image>) -> Image {
        assert_eq!(src.c, self.w.ci, "host convolution input channels");
        let mut dst = Image::zeros(src.h, src.w, self.w.co);
        if let Some(r) = residual {
            assert_eq!((r.h, r.w, r.c), (dst.h, dst.w, dst.c), "residual size");
        }
        run_conv(self, src, &mut dst, residual);
        dst
    }
}

/// A 1x1 convolution: a linear layer applied to every pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv1 {
    linear: Linear,
}

impl Conv1 {
    /// From `weight` `[co][ci]` (Burn's `Conv2d` layout with the 1x1 kernel dropped) and an
    /// optional bias `[co]`.
    pub fn from_parts(weight: &[f32], bias: Option<&[f32]>, co: usize, ci: usize) -> Self {
        assert_eq!(weight.len(), co * ci, "1x1 convolution weight size");
        let transposed: Vec<f32> = (0..ci * co)
            .map(|k| weight[(k % co) * ci + k / co])
            .collect();
        Self {
            linear: Linear::from_parts(&transposed, bias, ci, co),
        }
    }

    /// Channels-last pixels `[n][ci]` -> `[n][co]`.
    pub fn forward_pixels(&self, src: &[f32]) -> Vec<f32> {
        self.linear.forward(src)
    }

    pub fn forward(&self, src: &Image) -> Image {
        let co = self.linear.out_features();
        let mut dst = Image::zeros(src.h, src.w, co);
        for y in 0..src.h {
            let (s, d) = (src.at(y, 0), dst.at(y, 0));
            self.linear.forward_into(
                &src.data[s..s + src.w * src.c],
                &mut dst.data[d..d + src.w * co],
                false,
            );
        }
        dst
    }
}

/// Runs the kernel compiled for AVX2 + FMA when the CPU has them (picked at run time), else the
/// baseline build (SSE2 natively, simd128 in the browser build).
fn run_conv(k: &Conv3, src: &Image, dst: &mut Image, residual: Option<&Image>) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU features `conv_avx2` is compiled for were just detected.
        unsafe { conv_avx2(k, src, dst, residual) };
        return;
    }
    conv_rows::<false>(k, src, dst, residual);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_avx2(k: &Conv3, src: &Image, dst: &mut Image, residual: Option<&Image>) {
    conv_rows::<true>(k, src, dst, residual);
}

/// Every output row, in blocks of up to four lane groups (32 output channels) and two pixels.
/// Two pixels per block is what the compiler reliably keeps in registers and vectorises: with
/// three or four pixels (to give narrow layers more independent sums) it fell back to scalar
/// code and ran 5-8x slower, measured on the map CNN's first layers.
#[inline(always)]
fn conv_rows<const FMA: bool>(k: &Conv3, src: &Image, dst: &mut Image, residual: Option<&Image>) {
    let ci = k.w.ci;
    let row = (src.w + 2) * ci;
    let taps: [usize; 9] = std::array::from_fn(|t| (t / 3) * row + (t % 3) * ci);
    let mut o0 = 0;
    while o0 < k.w.co {
        let groups = groups_at(k.w.co, o0);
        match groups {
            4 => conv_blocks::<4, 2, FMA>(k, &taps, src, dst, residual, o0),
            3 => conv_blocks::<3, 2, FMA>(k, &taps, src, dst, residual, o0),
            2 => conv_blocks::<2, 2, FMA>(k, &taps, src, dst, residual, o0),
            _ => conv_blocks::<1, NARROW_P, FMA>(k, &taps, src, dst, residual, o0),
        }
        o0 += groups * LANES;
    }
}

#[inline(always)]
fn conv_blocks<const NV: usize, const P: usize, const FMA: bool>(
    k: &Conv3,
    taps: &[usize; 9],
    src: &Image,
    dst: &mut Image,
    residual: Option<&Image>,
    o0: usize,
) {
    let (ci, n) = (k.w.ci, (k.w.co - o0).min(NV * LANES));
    let mut store = |y: usize, x: usize, group: &[[f32; LANES]; NV]| {
        let at = dst.at(y, x) + o0;
        let out = &mut dst.data[at..at + n];
        out.copy_from_slice(&group.as_flattened()[..n]);
        if let Some(r) = residual {
            for (o, &rv) in out.iter_mut().zip(&r.data[at..at + n]) {
                *o += rv;
            }
        }
    };
    for y in 0..src.h {
        let mut x = 0;
        // Interior pixel (y, x) sits at padded (y + 1, x + 1): its 3x3 window starts at (y, x).
        while x + P <= src.w {
            let base = (y * (src.w + 2) + x) * ci;
            let acc = accumulate::<NV, P, FMA>(&k.w, o0, &src.data, base, taps);
            for (p, group) in acc.iter().enumerate() {
                store(y, x + p, group);
            }
            x += P;
        }
        while x < src.w {
            let base = (y * (src.w + 2) + x) * ci;
            let acc = accumulate::<NV, 1, FMA>(&k.w, o0, &src.data, base, taps);
            store(y, x, &acc[0]);
            x += 1;
        }
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

    /// Same-padded 3x3 convolution of planar `[ci][h][w]` with `[co][ci][3][3]` weights, in f64.
    fn naive(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        ci: usize,
        co: usize,
        h: usize,
        wd: usize,
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; co * h * wd];
        for o in 0..co {
            for y in 0..h {
                for xx in 0..wd {
                    let mut s = b[o] as f64;
                    for i in 0..ci {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (sy, sx) =
                                    (y as i64 + ky as i64 - 1, xx as i64 + kx as i64 - 1);
                                if sy < 0 || sx < 0 || sy >= h as i64 || sx >= wd as i64 {
                                    continue;
                                }
                                s += x[(i * h + sy as usize) * wd + sx as usize] as f64
                                    * w[((o * ci + i) * 3 + ky) * 3 + kx] as f64;
                            }
                        }
                    }
                    out[(o * h + y) * wd + xx] = s as f32;
                }
            }
        }
        out
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn conv3_matches_its_definition() {
        // Channel counts that hit every lane-group width and a partial last group; sizes with
        // a pixel-block remainder.
        for (ci, co, h, w) in [
            (3, 8, 7, 11),
            (4, 32, 5, 5),
            (32, 48, 4, 6),
            (16, 20, 3, 9),
            (8, 3, 6, 1),
        ] {
            let (wt, b, x) = (values(co * ci * 9, 1), values(co, 2), values(ci * h * w, 3));
            let conv = Conv3::from_parts(&wt, Some(&b), co, ci);
            assert_eq!(conv.out_channels(), co);
            let got = conv
                .forward(&Image::from_planar(&x, ci, h, w), None)
                .to_planar();
            let d = max_diff(&got, &naive(&x, &wt, &b, ci, co, h, w));
            assert!(d < 1e-4, "ci={ci} co={co} {h}x{w}: max |diff| {d}");
        }
    }

    #[test]
    fn residual_is_added_and_borders_stay_zero() {
        let (ci, h, w) = (4, 5, 6);
        let (wt, b, x) = (values(ci * ci * 9, 4), values(ci, 5), values(ci * h * w, 6));
        let img = Image::from_planar(&x, ci, h, w);
        let conv = Conv3::from_parts(&wt, Some(&b), ci, ci);
        let plain = conv.forward(&img, None).to_planar();
        let mut out = conv.forward(&img, Some(&img));
        let want: Vec<f32> = plain.iter().zip(&x).map(|(a, b)| a + b).collect();
        assert!(max_diff(&out.to_planar(), &want) < 1e-6);
        out.silu();
        let (w2, c) = (out.w + 2, out.c);
        for y in [0, out.h + 1] {
            assert!(
                out.data[y * w2 * c..(y + 1) * w2 * c]
                    .iter()
                    .all(|&v| v == 0.0)
            );
        }
    }

    #[test]
    fn conv1_is_a_linear_layer_per_pixel() {
        let (ci, co, h, w) = (16, 4, 5, 7);
        let (wt, b, x) = (values(co * ci, 7), values(co, 8), values(ci * h * w, 9));
        let got = Conv1::from_parts(&wt, Some(&b), co, ci)
            .forward(&Image::from_planar(&x, ci, h, w))
            .to_planar();
        for o in 0..co {
            for p in 0..h * w {
                let want: f64 = b[o] as f64
                    + (0..ci)
                        .map(|i| wt[o * ci + i] as f64 * x[i * h * w + p] as f64)
                        .sum::<f64>();
                assert!((got[o * h * w + p] as f64 - want).abs() < 1e-5);
            }
        }
    }
}
