//! Element-wise functions over `f32` slices: `exp`, `erf`, GELU, SiLU and `tanh`, and a lane
//! sum.
//!
//! Why: the CPU backends call libm's `erff`/`expf` once per element, scalar; a world-model frame
//! runs hundreds of thousands of them. Here each function is written once over [`Lanes`] and
//! evaluated for blocks of 16 values (32 natively) step by step, so independent vector chains
//! overlap, and compiled twice on x86-64 (baseline and AVX2 + FMA, picked at run time).
//!
//! The maths is the same up to float rounding: `exp` is a Cody-Waite range reduction with a
//! degree-6 polynomial (relative error under 3e-7), `erf` is Abramowitz & Stegun 7.1.26 on top
//! of it (absolute error under 6e-7), so GELU stays the exact (erf) GELU the checkpoints were
//! trained with.

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

/// Sum in eight independent lanes (a single running sum is one long dependency chain and
/// cannot be vectorised without reordering, which the compiler may not do for floats).
#[inline(always)]
pub fn lane_sum(values: &[f32]) -> f32 {
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
}
