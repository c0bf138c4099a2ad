//! Channels-last images with a zero border: what the convolutions read and write.

use crate::elementwise::silu_slice;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb8_images_are_scaled_to_unit_and_round_trip_planar() {
        let img = Image::from_rgb8(&[0, 51, 255, 255, 0, 0], 1, 2);
        assert_eq!(img.to_planar(), vec![0.0, 1.0, 0.2, 0.0, 1.0, 0.0]);
        let planar: Vec<f32> = (0..2 * 3 * 5).map(|i| i as f32).collect();
        assert_eq!(Image::from_planar(&planar, 2, 3, 5).to_planar(), planar);
    }

    #[test]
    fn pools_match_their_definitions() {
        for (h, w) in [(10, 12), (7, 5)] {
            let c = 3;
            let planar: Vec<f32> = (0..c * h * w).map(|i| ((i * 37) % 101) as f32).collect();
            let img = Image::from_planar(&planar, c, h, w);
            let pooled = img.max_pool2().to_planar();
            let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
            for ch in 0..c {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut m = f32::NEG_INFINITY;
                        for sy in 2 * y..(2 * y + 2).min(h) {
                            for sx in 2 * x..(2 * x + 2).min(w) {
                                m = m.max(planar[(ch * h + sy) * w + sx]);
                            }
                        }
                        assert_eq!(pooled[(ch * oh + y) * ow + x], m);
                    }
                }
            }
            // A 1 x 1 adaptive pool is the mean of each channel.
            let mean = img.adaptive_avg_pool(1, 1);
            for ch in 0..c {
                let want: f32 =
                    planar[ch * h * w..(ch + 1) * h * w].iter().sum::<f32>() / (h * w) as f32;
                assert!((mean[ch] - want).abs() < 1e-3, "{h}x{w} channel {ch}");
            }
        }
    }
}
