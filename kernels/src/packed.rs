//! The multiply-add core shared by the convolution and linear kernels: weights packed with
//! output channels innermost, and a block of outputs kept in registers while the inputs are
//! swept once.
//!
//! Three builds of one loop: portable (SSE2 natively, simd128 in the browser), AVX2 + FMA
//! (compiled separately on x86-64 and picked at run time by the callers) and WebAssembly
//! relaxed SIMD (explicit `f32x4.relaxed_madd`, in the browser build made with
//! `+relaxed-simd`). The sums run in a different order than a backend's matrix products (and
//! fused where FMA is available), so results agree with them up to float rounding.

/// Output channels are computed in groups of this many lanes (one AVX register of `f32`).
pub(crate) const LANES: usize = 8;

/// Whether this CPU has AVX2 and FMA (checked once per call; the check is a cached load).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// `a * b + c`, fused where the build has a fused multiply-add instruction (`mul_add` without
/// one is a slow library call).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Positions (pixels or rows) per block when a block is a single lane group (8 output channels):
/// four with the relaxed-SIMD kernel, whose explicit vectors keep 4 x 2 accumulators in
/// registers, giving the narrow layers (the map CNN's 3 -> 8 first layer) twice the
/// multiply-adds per loaded input; two elsewhere, where wider blocks compiled to scalar code
/// (see the convolution's row loop).
pub(crate) const NARROW_P: usize =
    if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
        4
    } else {
        2
    };

/// Lane groups of output channels `o0..`: up to four (32 channels) at a time natively (16
/// AVX registers: 8 accumulators, 4 weights); in wasm two, since simd128 registers are half as
/// wide and the engine maps them onto the same 16 machine registers.
#[inline(always)]
pub(crate) fn groups_at(co: usize, o0: usize) -> usize {
    const MAX_GROUPS: usize = if cfg!(target_arch = "wasm32") { 2 } else { 4 };
    (co - o0).div_ceil(LANES).min(MAX_GROUPS)
}

/// Weights shared by the convolution and linear kernels: `[tap][ci][co_pad]` (output channels
/// innermost, padded with zeros to whole lane groups) and a padded bias.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PackedWeights {
    pub(crate) ci: usize,
    pub(crate) co: usize,
    pub(crate) co_pad: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedWeights {
    /// Packs `taps x ci x co` weights, `weight(tap, i, o)` in whatever layout the caller has,
    /// and an optional bias `[co]`.
    pub(crate) fn new(
        taps: usize,
        ci: usize,
        co: usize,
        weight: impl Fn(usize, usize, usize) -> f32,
        bias: Option<&[f32]>,
    ) -> Self {
        let co_pad = co.div_ceil(LANES) * LANES;
        let mut packed = vec![0.0; taps * ci * co_pad];
        for t in 0..taps {
            for i in 0..ci {
                let row = &mut packed[(t * ci + i) * co_pad..][..co];
                for (o, w) in row.iter_mut().enumerate() {
                    *w = weight(t, i, o);
                }
            }
        }
        let mut padded_bias = vec![0.0; co_pad];
        if let Some(bias) = bias {
            assert_eq!(bias.len(), co, "bias size");
            padded_bias[..co].copy_from_slice(bias);
        }
        Self {
            ci,
            co,
            co_pad,
            weight: packed,
            bias: padded_bias,
        }
    }
}

/// The multiply-add core of every kernel here: output channels `o0 .. o0 + NV * LANES` of `P`
/// positions whose inputs start at `base + p * ci`, summed over the taps (element offsets of
/// the input each tap reads, relative to `base`) and the `ci` inputs of each.
#[inline(always)]
pub(crate) fn accumulate<const NV: usize, const P: usize, const FMA: bool>(
    k: &PackedWeights,
    o0: usize,
    src: &[f32],
    base: usize,
    taps: &[usize],
) -> [[[f32; LANES]; NV]; P] {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    return relaxed::accumulate::<NV, P>(k, o0, src, base, taps);
    #[allow(unreachable_code)]
    let (ci, cp) = (k.ci, k.co_pad);
    let mut acc = [[[0.0f32; LANES]; NV]; P];
    let bias = &k.bias[o0..o0 + NV * LANES];
    for a in acc.iter_mut() {
        for (v, group) in a.iter_mut().enumerate() {
            group.copy_from_slice(&bias[v * LANES..(v + 1) * LANES]);
        }
    }
    assert!(o0 + NV * LANES <= cp, "output block inside the padded row");
    for (t, &offset) in taps.iter().enumerate() {
        // The slices check the bounds once per tap; the loop reads through pointers (checks
        // per load cost about as many instructions as the multiply-adds).
        let s = src[base + offset..][..P * ci].as_ptr();
        let w = k.weight[t * ci * cp..][..ci * cp].as_ptr();
        for i in 0..ci {
            // SAFETY: `i < ci` and `o0 + NV * LANES <= cp`: the block lies within `w`'s
            // `ci * cp` values; `p < P`, so `p * ci + i` is within `s`'s `P * ci`.
            let wr = unsafe { std::slice::from_raw_parts(w.add(i * cp + o0), NV * LANES) };
            let inputs: [f32; P] = std::array::from_fn(|p| unsafe { *s.add(p * ci + i) });
            for (a, &input) in acc.iter_mut().zip(&inputs) {
                for (v, group) in a.iter_mut().enumerate() {
                    for (l, value) in group.iter_mut().enumerate() {
                        *value = madd::<FMA>(input, wr[v * LANES + l], *value);
                    }
                }
            }
        }
    }
    acc
}

/// [`accumulate`] for the browser build with WebAssembly relaxed SIMD: `f32x4.relaxed_madd`,
/// which engines compile to one fused multiply-add where the CPU has it (half the instructions
/// of the separate multiply and add the portable loop vectorises to). The compiler does not
/// fuse on its own (a fused result differs in rounding), hence the explicit vectors.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use super::{LANES, PackedWeights};
    use core::arch::wasm32::{
        f32x4_relaxed_madd, f32x4_splat, v128, v128_load, v128_load32_splat, v128_store,
    };

    /// Four-lane vectors per eight-lane group.
    const PER_GROUP: usize = LANES / 4;

    #[inline(always)]
    pub(super) fn accumulate<const NV: usize, const P: usize>(
        k: &PackedWeights,
        o0: usize,
        src: &[f32],
        base: usize,
        taps: &[usize],
    ) -> [[[f32; LANES]; NV]; P] {
        let (ci, cp) = (k.ci, k.co_pad);
        // Sized for the most groups any build uses; only the first `NV * PER_GROUP` are live.
        let mut acc = [[f32x4_splat(0.0); 4 * PER_GROUP]; P];
        let bias = &k.bias[o0..o0 + NV * LANES];
        for a in acc.iter_mut() {
            for (j, v) in a.iter_mut().take(NV * PER_GROUP).enumerate() {
                // SAFETY: `bias` holds `NV * LANES` values, so 4 from `4 j` are in bounds.
                *v = unsafe { v128_load(bias.as_ptr().add(4 * j) as *const v128) };
            }
        }
        assert!(o0 + NV * LANES <= cp, "output block inside the padded row");
        for (t, &offset) in taps.iter().enumerate() {
            // The slices check the bounds once per tap; the loop below reads through pointers
            // (a bounds check per load cost as many instructions as the multiply-adds).
            let s = src[base + offset..][..P * ci].as_ptr();
            let w = k.weight[t * ci * cp..][..ci * cp].as_ptr();
            for i in 0..ci {
                // SAFETY: `i < ci` and `o0 + NV * LANES <= cp`, so the row's block lies within
                // `w`'s `ci * cp` values; lanes past `NV * PER_GROUP` are never read.
                let weights: [v128; 4 * PER_GROUP] = std::array::from_fn(|j| {
                    if j < NV * PER_GROUP {
                        unsafe { v128_load(w.add(i * cp + o0 + 4 * j) as *const v128) }
                    } else {
                        f32x4_splat(0.0)
                    }
                });
                for (p, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `p < P` and `i < ci`, within `s`'s `P * ci` values.
                    let x = unsafe { v128_load32_splat(s.add(p * ci + i) as *const u32) };
                    for (v, &wv) in a.iter_mut().zip(&weights).take(NV * PER_GROUP) {
                        *v = f32x4_relaxed_madd(x, wv, *v);
                    }
                }
            }
        }
        let mut out = [[[0.0f32; LANES]; NV]; P];
        for (o, a) in out.iter_mut().zip(&acc) {
            for (g, group) in o.iter_mut().enumerate() {
                for h in 0..PER_GROUP {
                    // SAFETY: `group` has `LANES` values; `4 h + 4 <= LANES`.
                    unsafe {
                        v128_store(
                            group.as_mut_ptr().add(4 * h) as *mut v128,
                            a[g * PER_GROUP + h],
                        )
                    };
                }
            }
        }
        out
    }
}
