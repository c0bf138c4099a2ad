//! Host convolutions and linear layers for play on a CPU backend, over channels-last buffers:
//! the play decoder, the map CNN and the v head run on them here, and the DiT's linear layers
//! ([`host_dit`](super::host_dit)), when a session uses [`Kernels::Host`].
//!
//! Why: the convolutional networks are a handful of same-padded 3x3 convolutions with few channels (3 to 48)
//! over many pixels. burn-flex lowers a convolution to im2col and a matrix product, which pays
//! for materialising nine shifted copies of the input, and its SiLU is one libm call per
//! element; the map CNN's first layer (3 -> 8 channels at 160 x 192) spent most of its time in
//! those. Here each output pixel keeps its output channels in registers (eight-lane groups) and
//! sweeps the 3 x 3 x `ci` inputs once, several pixels at a time so every weight load feeds
//! several multiply-adds. Images carry a one-pixel zero border so the inner loop has no edge
//! cases. The sums run in a different order than the backend's (and with fused multiply-adds
//! on AVX2 + FMA and in the browser's relaxed-SIMD build), so results agree up to float
//! rounding; the tests compare against Burn's `Conv2d` natively, and
//! [`WorldSession::kernel_parity`](super::WorldSession::kernel_parity) lets the browser tests
//! check each wasm build.
//!
//! [`Kernels::Host`]: super::Kernels::Host

use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;

use super::host_ops::{read, silu_slice};

/// Output channels are computed in groups of this many lanes (one AVX register of `f32`).
const LANES: usize = 8;

/// A channels-last image `[h + 2][w + 2][c]` whose one-pixel border is zero (the convolutions'
/// padding).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Image {
    pub fn zeros(h: usize, w: usize, c: usize) -> Self {
        Self {
            h,
            w,
            c,
            data: vec![0.0; (h + 2) * (w + 2) * c],
        }
    }

    /// An image from planar `[c][h][w]` values (a backend tensor's layout).
    pub fn from_planar(planar: &[f32], c: usize, h: usize, w: usize) -> Self {
        assert_eq!(planar.len(), c * h * w, "planar image size");
        let mut img = Self::zeros(h, w, c);
        for y in 0..h {
            for x in 0..w {
                let at = img.at(y, x);
                for ch in 0..c {
                    img.data[at + ch] = planar[(ch * h + y) * w + x];
                }
            }
        }
        img
    }

    /// An image from interleaved RGB8 pixels, mapped to `[0, 1]`.
    pub fn from_rgb8(rgb: &[u8], h: usize, w: usize) -> Self {
        assert_eq!(rgb.len(), h * w * 3, "RGB8 image size");
        let mut img = Self::zeros(h, w, 3);
        for y in 0..h {
            let at = img.at(y, 0);
            for (d, &s) in img.data[at..at + w * 3].iter_mut().zip(&rgb[y * w * 3..]) {
                *d = s as f32 / 255.0;
            }
        }
        img
    }

    /// Index of the first channel of interior pixel `(y, x)`.
    #[inline(always)]
    pub fn at(&self, y: usize, x: usize) -> usize {
        ((y + 1) * (self.w + 2) + x + 1) * self.c
    }

    /// Interior values as planar `[c][h][w]`.
    pub fn to_planar(&self) -> Vec<f32> {
        let (h, w, c) = (self.h, self.w, self.c);
        let mut out = vec![0.0; c * h * w];
        for y in 0..h {
            for x in 0..w {
                let at = self.at(y, x);
                for ch in 0..c {
                    out[(ch * h + y) * w + x] = self.data[at + ch];
                }
            }
        }
        out
    }

    /// ReLU in place (the border stays zero).
    pub fn relu(&mut self) {
        self.data.iter_mut().for_each(|v| *v = v.max(0.0));
    }

    /// SiLU in place (SiLU(0) = 0, so the border stays zero).
    pub fn silu(&mut self) {
        silu_slice(&mut self.data);
    }

    /// 2 x 2 max pooling with stride 2, rounding the size up (a last odd row or column pools
    /// over what it has), as Burn's `max_pool2d` with `ceil_mode`.
    pub fn max_pool2(&self) -> Image {
        let (oh, ow, c) = (self.h.div_ceil(2), self.w.div_ceil(2), self.c);
        let mut out = Image::zeros(oh, ow, c);
        for y in 0..oh {
            for x in 0..ow {
                let o = out.at(y, x);
                let dst = &mut out.data[o..o + c];
                dst.fill(f32::NEG_INFINITY);
                for sy in 2 * y..(2 * y + 2).min(self.h) {
                    for sx in 2 * x..(2 * x + 2).min(self.w) {
                        let s = self.at(sy, sx);
                        for (d, &v) in dst.iter_mut().zip(&self.data[s..s + c]) {
                            *d = d.max(v);
                        }
                    }
                }
            }
        }
        out
    }

    /// Adaptive average pooling to a `rows x cols` grid (bin `i` covers
    /// `[floor(i n / rows), ceil((i + 1) n / rows))`, as Burn and PyTorch define it). Returns
    /// `[rows * cols][c]`, row-major over the grid.
    pub fn adaptive_avg_pool(&self, rows: usize, cols: usize) -> Vec<f32> {
        let c = self.c;
        let mut out = vec![0.0; rows * cols * c];
        for r in 0..rows {
            let (y0, y1) = (r * self.h / rows, ((r + 1) * self.h).div_ceil(rows));
            for q in 0..cols {
                let (x0, x1) = (q * self.w / cols, ((q + 1) * self.w).div_ceil(cols));
                let dst = &mut out[(r * cols + q) * c..][..c];
                for y in y0..y1 {
                    for x in x0..x1 {
                        let s = self.at(y, x);
                        for (d, &v) in dst.iter_mut().zip(&self.data[s..s + c]) {
                            *d += v;
                        }
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as f32;
                dst.iter_mut().for_each(|d| *d /= n);
            }
        }
        out
    }
}

/// A same-padded, stride-1 3x3 convolution's weights, packed `[ky][kx][ci][co_pad]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3 {
    w: PackedWeights,
}

impl Conv3 {
    /// From Burn's layout: `weight` is `[co][ci][3][3]`, `bias` is `[co]`.
    pub fn from_parts(weight: &[f32], bias: Option<&[f32]>, co: usize, ci: usize) -> Self {
        assert_eq!(weight.len(), co * ci * 9, "3x3 convolution weight size");
        Self {
            w: PackedWeights::new(9, ci, co, |k, i, o| weight[(o * ci + i) * 9 + k], bias),
        }
    }

    /// From a Burn `Conv2d` built by [`conv3`](super::blocks::conv3) with stride 1 (the
    /// callers know their architecture; the kernel size is checked).
    pub fn from_module<B: Backend>(conv: &Conv2d<B>) -> Self {
        let [co, ci, kh, kw] = conv.weight.dims();
        assert_eq!((kh, kw), (3, 3), "host convolution needs a 3x3 kernel");
        let weight = read(conv.weight.val());
        let bias = conv.bias.as_ref().map(|b| read(b.val()));
        Self::from_parts(&weight, bias.as_deref(), co, ci)
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
    linear: LinearHost,
}

impl Conv1 {
    pub fn from_module<B: Backend>(conv: &Conv2d<B>) -> Self {
        let [co, ci, kh, kw] = conv.weight.dims();
        assert_eq!((kh, kw), (1, 1), "host 1x1 convolution needs a 1x1 kernel");
        // Burn's [co][ci] -> the linear layer's [ci][co].
        let w = read(conv.weight.val());
        let transposed: Vec<f32> = (0..ci * co).map(|k| w[(k % co) * ci + k / co]).collect();
        let bias = conv.bias.as_ref().map(|b| read(b.val()));
        Self {
            linear: LinearHost::from_parts(&transposed, bias.as_deref(), ci, co),
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

/// Group normalisation (statistics over each group's channels and all pixels, then a
/// per-channel scale and offset), on an image's interior; the border stays zero.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNormHost {
    groups: usize,
    epsilon: f32,
    gamma: Option<Vec<f32>>,
    beta: Option<Vec<f32>>,
}

impl GroupNormHost {
    pub fn from_module<B: Backend>(gn: &burn::nn::GroupNorm<B>) -> Self {
        Self {
            groups: gn.num_groups,
            epsilon: gn.epsilon as f32,
            gamma: gn.gamma.as_ref().map(|g| read(g.val())),
            beta: gn.beta.as_ref().map(|b| read(b.val())),
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
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_avx2(k: &Conv3, src: &Image, dst: &mut Image, residual: Option<&Image>) {
    conv_rows::<true>(k, src, dst, residual);
}

/// `a * b + c`, fused where the build has a fused multiply-add instruction (`mul_add` without
/// one is a slow library call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Positions (pixels or rows) per block when a block is a single lane group (8 output channels):
/// four with the relaxed-SIMD kernel, whose explicit vectors keep 4 x 2 accumulators in
/// registers, giving the narrow layers (the map CNN's 3 -> 8 first layer) twice the
/// multiply-adds per loaded input; two elsewhere, where wider blocks compiled to scalar code
/// (see [`conv_rows`]).
const NARROW_P: usize = if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
    4
} else {
    2
};

/// Lane groups of output channels `o0..`: up to four (32 channels) at a time natively (16
/// AVX registers: 8 accumulators, 4 weights); in wasm two, since simd128 registers are half as
/// wide and the engine maps them onto the same 16 machine registers.
#[inline(always)]
fn groups_at(co: usize, o0: usize) -> usize {
    const MAX_GROUPS: usize = if cfg!(target_arch = "wasm32") { 2 } else { 4 };
    (co - o0).div_ceil(LANES).min(MAX_GROUPS)
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

/// Weights shared by the convolution and linear kernels: `[tap][ci][co_pad]` (output channels
/// innermost, padded with zeros to whole lane groups) and a padded bias.
#[derive(Clone, Debug, PartialEq)]
struct PackedWeights {
    ci: usize,
    co: usize,
    co_pad: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedWeights {
    /// Packs `taps x ci x co` weights, `weight(tap, i, o)` in whatever layout the caller has,
    /// and an optional bias `[co]`.
    fn new(
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
fn accumulate<const NV: usize, const P: usize, const FMA: bool>(
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

/// A linear layer on the host: `[rows][ci]` -> `[rows][co]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearHost {
    w: PackedWeights,
}

impl LinearHost {
    /// From `weight` `[ci][co]` (Burn's `Linear` layout) and an optional bias `[co]`.
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

    /// From a Burn `Linear`'s weight `[ci][co]` and bias tensors.
    pub fn from_tensors<B: Backend>(
        weight: burn::tensor::Tensor<B, 2>,
        bias: Option<burn::tensor::Tensor<B, 1>>,
    ) -> Self {
        let [ci, co] = weight.dims();
        let bias = bias.map(read);
        Self::from_parts(&read(weight), bias.as_deref(), ci, co)
    }

    pub fn from_module<B: Backend>(layer: &burn::nn::Linear<B>) -> Self {
        Self::from_tensors(layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
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
    use crate::world::blocks::conv3;
    use burn::backend::NdArray;
    use burn::tensor::module::{adaptive_avg_pool2d, max_pool2d};
    use burn::tensor::{Distribution, Tensor, TensorData};

    type B = NdArray;

    fn planar(t: Tensor<B, 4>) -> Vec<f32> {
        t.into_data().into_vec().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn host_conv_matches_burn_conv2d() {
        let dev = Default::default();
        // Channel counts that hit every lane-group width and a partial last group; sizes with
        // a pixel-block remainder.
        for (ci, co, h, w) in [
            (3, 8, 7, 11),
            (4, 32, 5, 5),
            (32, 48, 4, 6),
            (16, 20, 3, 9),
            (8, 3, 6, 1),
        ] {
            let conv = conv3::<B>(ci, co, 1, &dev);
            let x = Tensor::<B, 4>::random([1, ci, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let want = planar(conv.forward(x.clone()));
            let host = Conv3::from_module(&conv);
            let got = host
                .forward(&Image::from_planar(&planar(x), ci, h, w), None)
                .to_planar();
            let d = max_diff(&got, &want);
            assert!(d < 1e-5, "ci={ci} co={co} {h}x{w}: max |diff| {d}");
        }
    }

    #[test]
    fn residual_is_added_and_borders_stay_zero() {
        let dev = Default::default();
        let conv = conv3::<B>(4, 4, 1, &dev);
        let x = Tensor::<B, 4>::random([1, 4, 5, 6], Distribution::Normal(0.0, 1.0), &dev);
        let want = planar(conv.forward(x.clone()) + x.clone());
        let img = Image::from_planar(&planar(x), 4, 5, 6);
        let mut out = Conv3::from_module(&conv).forward(&img, Some(&img));
        assert!(max_diff(&out.to_planar(), &want) < 1e-5);
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
    fn host_linear_matches_burn_linear() {
        use burn::nn::LinearConfig;
        let dev = Default::default();
        for (ci, co, rows) in [(64, 192, 83), (256, 64, 7), (5, 3, 1), (320, 64, 64)] {
            let layer = LinearConfig::new(ci, co).init::<B>(&dev);
            let x = Tensor::<B, 2>::random([rows, ci], Distribution::Normal(0.0, 1.0), &dev);
            let want: Vec<f32> = layer.forward(x.clone()).into_data().into_vec().unwrap();
            let host = LinearHost::from_module(&layer);
            let input: Vec<f32> = x.into_data().into_vec().unwrap();
            let got = host.forward(&input);
            assert!(max_diff(&got, &want) < 1e-5, "{ci}->{co} x {rows}");
            // Accumulating adds to what is there.
            let mut twice = got.clone();
            host.forward_into(&input, &mut twice, true);
            let doubled: Vec<f32> = got.iter().map(|v| 2.0 * v).collect();
            assert!(max_diff(&twice, &doubled) < 1e-5);
        }
    }

    #[test]
    fn one_by_one_conv_and_group_norm_match_burn() {
        use crate::world::blocks::{conv1, group_norm};
        let dev = Default::default();
        let x = Tensor::<B, 4>::random([1, 16, 5, 7], Distribution::Normal(0.5, 2.0), &dev);
        let img = Image::from_planar(&planar(x.clone()), 16, 5, 7);
        let conv = conv1::<B>(16, 4, &dev);
        let want = planar(conv.forward(x.clone()));
        assert!(max_diff(&Conv1::from_module(&conv).forward(&img).to_planar(), &want) < 1e-5);
        for channels in [16, 4] {
            let gn = group_norm::<B>(channels, &dev);
            let xs = x.clone().narrow(1, 0, channels);
            let want = planar(gn.forward(xs.clone()));
            let mut img = Image::from_planar(&planar(xs), channels, 5, 7);
            GroupNormHost::from_module(&gn).apply(&mut img);
            assert!(
                max_diff(&img.to_planar(), &want) < 1e-5,
                "{channels} channels"
            );
        }
    }

    #[test]
    fn pools_match_burn() {
        let dev = Default::default();
        for (h, w) in [(10, 12), (7, 5)] {
            let x = Tensor::<B, 4>::random([1, 6, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let img = Image::from_planar(&planar(x.clone()), 6, h, w);
            let want = planar(max_pool2d(x.clone(), [2, 2], [2, 2], [0, 0], [1, 1], true));
            assert_eq!(img.max_pool2().to_planar(), want, "max pool {h}x{w}");
            let want = planar(adaptive_avg_pool2d(x, [4, 4]));
            let got = img.adaptive_avg_pool(4, 4);
            // `got` is [16][6]; `want` is [6][16].
            let got_planar: Vec<f32> = (0..6)
                .flat_map(|c| (0..16).map(move |t| (c, t)))
                .map(|(c, t)| got[t * 6 + c])
                .collect();
            assert!(max_diff(&got_planar, &want) < 1e-6, "adaptive pool {h}x{w}");
        }
    }

    #[test]
    fn rgb8_images_are_scaled_to_unit() {
        let img = Image::from_rgb8(&[0, 51, 255, 255, 0, 0], 1, 2);
        let t = Tensor::<B, 4>::from_data(
            TensorData::new(img.to_planar(), [1, 3, 1, 2]),
            &Default::default(),
        );
        assert_eq!(planar(t), vec![0.0, 1.0, 0.2, 0.0, 1.0, 0.0]);
    }
}
