//! Host kernels for a play session on a CPU backend: GELU, SiLU and attention in vectorisable
//! Rust.
//!
//! Why: on the CPU backends a world-model frame is hundreds of small operations, and the
//! transcendental ones were the slowest. burn-flex's GELU calls libm's `erff` per element and its
//! SiLU and softmax call `expf` per element, scalar: one GELU over the MLP's 67 x 256 values took
//! 150-380 us, as long as the three matrix products around it together. A CPU backend's tensors
//! already live in host memory, so reading one out and writing the result back is two copies of
//! a few tens of kilobytes (~6 us); in between, the loops below run several elements per
//! instruction (SSE2/AVX2 natively, simd128 in the browser build).
//!
//! The maths is the same up to float rounding: `exp` is a Cody-Waite range reduction with a
//! degree-6 polynomial (relative error under 3e-7), `erf` is Abramowitz & Stegun 7.1.26 on top
//! of it (absolute error under 6e-7), so GELU stays the exact (erf) GELU the checkpoints were
//! trained with. On a GPU backend every call would be a device round trip: [`Kernels::Backend`]
//! is the default and the only sensible choice there.

use burn::tensor::activation::{gelu, silu};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as fused_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Tensor, TensorData};

use super::host_conv::LinearHost;

/// Where the inference path computes GELU, SiLU and attention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    /// The backend's own operations.
    #[default]
    Backend,
    /// Read back to the host and computed here (CPU backends only: see the module docs); a
    /// play session with these also runs its networks through `host_conv` and `host_dit`.
    Host,
}

impl Kernels {
    /// Exact (erf) GELU.
    pub fn gelu<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Backend => gelu(x),
            Self::Host => on_host(x, gelu_slice),
        }
    }

    /// SiLU, `x * sigmoid(x)`.
    pub fn silu<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Backend => silu(x),
            Self::Host => on_host(x, silu_slice),
        }
    }

    /// Multi-head self-attention straight from a fused QKV projection: `qkv` is `[b, l, 3d]`
    /// laid out as `[3, heads, head_dim]` per token (queries, keys, values); returns the heads'
    /// outputs merged back to `[b, l, d]`, before the output projection. The scale is
    /// `1 / sqrt(head_dim)`.
    pub fn self_attention<B: Backend>(self, qkv: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
        let [b, l, d3] = qkv.dims();
        let d = d3 / 3;
        let hd = d / heads;
        match self {
            Self::Backend => {
                let qkv = qkv.reshape([b, l, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
                let q: Tensor<B, 4> = qkv.clone().narrow(0, 0, 1).reshape([b, heads, l, hd]);
                let k: Tensor<B, 4> = qkv.clone().narrow(0, 1, 1).reshape([b, heads, l, hd]);
                let v: Tensor<B, 4> = qkv.narrow(0, 2, 1).reshape([b, heads, l, hd]);
                // The scale is given explicitly: flex's fused kernel computes the same value
                // either way, and the GPU backends then take their generic
                // (matmul-softmax-matmul) path instead of autotuning flash kernels in the
                // browser.
                let options = AttentionModuleOptions {
                    scale: Some(1.0 / (hd as f64).sqrt()),
                    ..Default::default()
                };
                fused_attention(q, k, v, None, None, options)
                    .swap_dims(1, 2)
                    .reshape([b, l, d])
            }
            Self::Host => {
                let device = qkv.device();
                let input = read(qkv);
                let mut out = vec![0.0f32; b * l * d];
                for (src, dst) in input.chunks_exact(l * d3).zip(out.chunks_exact_mut(l * d)) {
                    attention_slice(src, dst, l, heads, hd);
                }
                Tensor::from_data(TensorData::new(out, [b, l, d]), &device)
            }
        }
    }
}

/// Reads a tensor's values (row-major), applies `f` to them and uploads the result.
fn on_host<B: Backend, const D: usize>(x: Tensor<B, D>, f: fn(&mut [f32])) -> Tensor<B, D> {
    let device = x.device();
    let shape = x.shape();
    let mut values = read(x);
    f(&mut values);
    Tensor::from_data(TensorData::new(values, shape), &device)
}

/// A tensor's values as `f32` on the host (row-major).
pub(crate) fn read<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    let data = x.into_data();
    match data.as_slice::<f32>() {
        Ok(s) => s.to_vec(),
        Err(_) => data.convert::<f32>().into_vec().unwrap_or_default(),
    }
}

/// Values the element-wise functions below work on: one `f32` or a [`Block`] of them, so one
/// formulation serves both the vectorised body of a slice and its tail.
trait Lanes:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn splat(v: f32) -> Self;
    /// `f` on every lane (for the steps that are not plain arithmetic).
    fn map(self, f: impl Fn(f32) -> f32) -> Self;
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self;
}

impl Lanes for f32 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> Self {
        f(self)
    }
    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        f(self, other)
    }
}

/// Lanes per [`Block`]: four SIMD registers' worth (AVX natively, simd128 in the browser).
const BLOCK: usize = if cfg!(target_arch = "wasm32") { 16 } else { 32 };

/// A block of values evaluated step by step: every operation runs over all lanes before the
/// next starts, so the compiler emits several independent vector chains side by side. A plain
/// loop over the elements vectorises to one chain per iteration, and the ~40 dependent steps of
/// `erf` then left the CPU waiting on latency (GELU took 2.3 ms of a 36 ms frame in the browser).
#[derive(Clone, Copy)]
struct Block([f32; BLOCK]);

impl Lanes for Block {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Block([v; BLOCK])
    }
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> Self {
        Block(std::array::from_fn(|i| f(self.0[i])))
    }
    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Block(std::array::from_fn(|i| f(self.0[i], other.0[i])))
    }
}

macro_rules! block_op {
    ($trait:ident, $method:ident, $op:tt) => {
        impl std::ops::$trait for Block {
            type Output = Block;
            #[inline(always)]
            fn $method(self, other: Block) -> Block {
                self.zip(other, |a, b| a $op b)
            }
        }
    };
}
block_op!(Add, add, +);
block_op!(Sub, sub, -);
block_op!(Mul, mul, *);
block_op!(Div, div, /);

/// `c[0] + x (c[1] + x (c[2] + ...))`, Horner's rule from the last coefficient.
#[inline(always)]
fn horner<V: Lanes>(x: V, coefficients: &[f32]) -> V {
    let (&last, rest) = coefficients
        .split_last()
        .expect("a polynomial has a coefficient");
    rest.iter()
        .rev()
        .fold(V::splat(last), |p, &c| V::splat(c) + x * p)
}

/// `e^x` for `f32`, branch-free so loops over it vectorise: `x = n ln2 + r` with `|r| <= ln2/2`
/// (Cody-Waite: `ln2` split in a short high part and a correction, so `n ln2` is exact), `e^r`
/// by its degree-6 Taylor polynomial (truncation under 1.3e-7 relative), `2^n` built in the
/// exponent bits. Inputs are clamped to `[-87, 88]` (the normal range of `f32`).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_lanes(x)
}

#[inline(always)]
fn exp_lanes<V: Lanes>(x: V) -> V {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.map(|v| v.clamp(-87.0, 88.0));
    let shifted = x * V::splat(std::f32::consts::LOG2_E) + V::splat(ROUND);
    let n = shifted - V::splat(ROUND);
    let r = x - n * V::splat(LN2_HI) - n * V::splat(LN2_LO);
    let p = horner(
        r,
        &[
            1.0,
            1.0,
            0.5,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 720.0,
        ],
    );
    // The rounded integer sits in the low mantissa bits of `shifted`: `2^n` from it.
    let two_n = shifted.map(|s| {
        let n = (s.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        f32::from_bits(((n + 127) as u32) << 23)
    });
    p * two_n
}

/// The error function, Abramowitz & Stegun 7.1.26: `1 - t P(t) e^{-x^2}` with
/// `t = 1 / (1 + p |x|)`, odd-extended; absolute error under 1.5e-7 in exact arithmetic and
/// under 6e-7 as evaluated here in `f32` (a few units in the last place near 1).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    erf_lanes(x)
}

#[inline(always)]
fn erf_lanes<V: Lanes>(x: V) -> V {
    let a = x.map(f32::abs);
    let t = V::splat(1.0) / (V::splat(1.0) + V::splat(0.327_591_1) * a);
    let poly = t * horner(
        t,
        &[
            0.254_829_6,
            -0.284_496_74,
            1.421_413_8,
            -1.453_152,
            1.061_405_4,
        ],
    );
    let y = V::splat(1.0) - poly * exp_lanes(a.map(|a| -a * a));
    x.zip(y, |x, y| if x < 0.0 { -y } else { y })
}

#[inline(always)]
fn gelu_lanes<V: Lanes>(x: V) -> V {
    V::splat(0.5) * x * (V::splat(1.0) + erf_lanes(x * V::splat(std::f32::consts::FRAC_1_SQRT_2)))
}

#[inline(always)]
fn silu_lanes<V: Lanes>(x: V) -> V {
    x / (V::splat(1.0) + exp_lanes(x.map(|v| -v)))
}

/// `tanh x = 1 - 2 / (e^{2x} + 1)`: exact at both saturations (the clamped `exp` gives 1 and
/// 0), absolute error a few `f32` ulps near 0.
#[inline(always)]
fn tanh_lanes<V: Lanes>(x: V) -> V {
    V::splat(1.0) - V::splat(2.0) / (exp_lanes(V::splat(2.0) * x) + V::splat(1.0))
}

/// Applies `f` to whole [`Block`]s of `values`, then to the tail one value at a time.
#[inline(always)]
fn apply(values: &mut [f32], f: fn(Block) -> Block, one: fn(f32) -> f32) {
    let mut blocks = values.chunks_exact_mut(BLOCK);
    for chunk in &mut blocks {
        let block = Block(chunk.try_into().expect("chunks_exact gives whole blocks"));
        chunk.copy_from_slice(&f(block).0);
    }
    blocks
        .into_remainder()
        .iter_mut()
        .for_each(|v| *v = one(*v));
}

/// Defines `$name(&mut [f32])` applying `$f` to every element, compiled twice on x86-64 (the
/// baseline and AVX2 + FMA, picked at run time) so the blocks run eight lanes per register
/// where they can.
macro_rules! elementwise {
    ($name:ident, $wide:ident, $f:ident) => {
        pub fn $name(values: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU features `$wide` is compiled for were just detected.
                unsafe { $wide(values) };
                return;
            }
            apply(values, $f::<Block>, $f::<f32>);
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $wide(values: &mut [f32]) {
            apply(values, $f::<Block>, $f::<f32>);
        }
    };
}

elementwise!(gelu_slice, gelu_avx2, gelu_lanes);
elementwise!(silu_slice, silu_avx2, silu_lanes);
elementwise!(tanh_slice, tanh_avx2, tanh_lanes);
elementwise!(exp_slice, exp_avx2, exp_lanes);

/// Self-attention of one sample: `qkv` is `[l, 3, heads, hd]`, `out` is `[l, heads, hd]`.
pub fn attention_slice(qkv: &[f32], out: &mut [f32], l: usize, heads: usize, hd: usize) {
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
/// [`host_conv`](super::host_conv): the scaled queries `[l][hd]` times the keys packed as a
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
        LinearHost::from_fn(hd, l, |c, j| at(j, 1, c)).forward_into(&queries, &mut scores, false);
        for row in scores.chunks_exact_mut(l) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // The exponentials in their own loop (no running sum), so it vectorises; the sum
            // in eight lanes.
            row.iter_mut().for_each(|s| *s -= max);
            exp_slice(row);
            let inv = 1.0 / lane_sum(row);
            row.iter_mut().for_each(|s| *s *= inv);
        }
        LinearHost::from_fn(l, hd, |j, c| at(j, 2, c)).forward_into(&scores, &mut head_out, false);
        for (i, o) in head_out.chunks_exact(hd).enumerate() {
            out[i * d + h * hd..][..hd].copy_from_slice(o);
        }
    }
}

/// Sum in eight independent lanes (a single running sum is one long dependency chain and
/// cannot be vectorised without reordering, which the compiler may not do for floats).
#[inline(always)]
pub(crate) fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    type B = NdArray;

    #[test]
    fn exp_is_within_a_few_ulp_over_the_float_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        // Clamped, not NaN or zero, far outside.
        assert!(exp(-1e4) > 0.0 && exp(-1e4) < 1e-37);
        assert!(exp(1e4).is_finite());
    }

    #[test]
    fn block_path_equals_the_one_value_path() {
        // Whole blocks go through `Block`, the tail through `f32`: the same operations in the
        // same order, so equal bit for bit.
        let values: Vec<f32> = (0..3 * BLOCK + 5)
            .map(|i| (i as f32 - 40.0) * 0.173)
            .collect();
        let check = |slice: fn(&mut [f32]), one: fn(f32) -> f32| {
            let mut v = values.clone();
            slice(&mut v);
            for (&got, &x) in v.iter().zip(&values) {
                assert_eq!(got.to_bits(), one(x).to_bits(), "at {x}");
            }
        };
        check(gelu_slice, gelu_lanes::<f32>);
        check(silu_slice, silu_lanes::<f32>);
        check(tanh_slice, tanh_lanes::<f32>);
        check(exp_slice, exp);
    }

    #[test]
    fn tanh_matches_libm_to_float_precision() {
        let mut xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 1e-4).collect();
        xs.extend([-1e4, 1e4, 0.0]);
        let mut ys = xs.clone();
        tanh_slice(&mut ys);
        let worst = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| (y as f64 - (x as f64).tanh()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 3e-7, "absolute error {worst}");
    }

    #[test]
    fn erf_matches_libm_to_float_precision() {
        let mut worst = 0.0f64;
        let mut x = -6.0f64;
        while x <= 6.0 {
            worst = worst.max((erf(x as f32) as f64 - libm::erf(x)).abs());
            x += 0.000_37;
        }
        assert!(worst < 6e-7, "absolute error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-0.5), -erf(0.5));
    }

    #[test]
    fn host_kernels_match_the_backend_ones() {
        let dev = Default::default();
        let x = Tensor::<B, 3>::random([2, 67, 256], Distribution::Normal(0.0, 3.0), &dev);
        for (name, host, backend) in [
            (
                "gelu",
                Kernels::Host.gelu(x.clone()),
                Kernels::Backend.gelu(x.clone()),
            ),
            (
                "silu",
                Kernels::Host.silu(x.clone()),
                Kernels::Backend.silu(x.clone()),
            ),
        ] {
            assert_eq!(host.dims(), backend.dims());
            let diff: f32 = (host - backend).abs().max().into_scalar();
            assert!(diff < 1e-5, "{name}: max |diff| {diff}");
        }
        // Attention with uneven heads and a sequence that is no multiple of a vector width;
        // large logits exercise the max subtraction.
        for (l, heads, hd, spread) in [(67, 4, 16, 1.0), (5, 3, 8, 8.0), (1, 1, 4, 1.0)] {
            let d = heads * hd;
            let qkv =
                Tensor::<B, 3>::random([2, l, 3 * d], Distribution::Normal(0.0, spread), &dev);
            let host = Kernels::Host.self_attention(qkv.clone(), heads);
            let backend = Kernels::Backend.self_attention(qkv, heads);
            assert_eq!(host.dims(), [2, l, d]);
            let scale: f32 = backend.clone().abs().max().into_scalar();
            let diff: f32 = (host - backend).abs().max().into_scalar();
            assert!(
                diff <= 5e-6 * scale.max(1.0),
                "attention l={l} heads={heads}: max |diff| {diff} at scale {scale}"
            );
        }
    }
}
