//! Procedurally generated frames: coloured rectangles and discs on a plain background.
//!
//! They exist so that the first model of the project (the frame autoencoder) can be trained and
//! checked end to end before the real games land, and so that native and browser builds can
//! produce the exact same input from a seed (the parity test relies on it).

use crate::rng::Rng;

/// An RGB frame, channel-major (`[3][height][width]`), values in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Frame {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; 3 * width * height],
        }
    }

    fn fill(&mut self, rgb: [f32; 3], mut inside: impl FnMut(usize, usize) -> bool) {
        let plane = self.width * self.height;
        for y in 0..self.height {
            for x in 0..self.width {
                if inside(x, y) {
                    for (c, v) in rgb.iter().enumerate() {
                        self.data[c * plane + y * self.width + x] = *v;
                    }
                }
            }
        }
    }

    /// Interleaved RGBA bytes, as a canvas `ImageData` or a GIF encoder wants them.
    pub fn to_rgba8(&self) -> Vec<u8> {
        planar_to_rgba(&self.data, 1, self.width * self.height)
    }
}

/// Map a `[0, 1]` intensity to a byte the same way everywhere (native and browser).
pub fn quantize(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// `count` channel-major RGB images of `plane` pixels each (`[count, 3, plane]` floats) to
/// interleaved RGBA bytes, images one after another (stacked vertically when drawn). Missing
/// values read as black rather than panicking, since the data may come from JavaScript.
pub fn planar_to_rgba(data: &[f32], count: usize, plane: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * plane * 4);
    for f in 0..count {
        let base = f * 3 * plane;
        for i in 0..plane {
            for c in 0..3 {
                out.push(quantize(
                    data.get(base + c * plane + i).copied().unwrap_or(0.0),
                ));
            }
            out.push(255);
        }
    }
    out
}

fn colour(rng: &mut Rng) -> [f32; 3] {
    // A small palette-free colour: quantised to 1/8 steps so that shapes contrast clearly.
    [
        rng.below(9) as f32 / 8.0,
        rng.below(9) as f32 / 8.0,
        rng.below(9) as f32 / 8.0,
    ]
}

/// Frame `index` of the synthetic stream `seed`: a background and 1-4 shapes.
pub fn synthetic_frame(size: usize, seed: u64, index: u64) -> Frame {
    let mut rng = Rng::for_stream(seed, index);
    let mut frame = Frame::new(size, size);
    let bg = colour(&mut rng);
    frame.fill(bg, |_, _| true);
    let shapes = 1 + rng.below(4);
    let s = size as i64;
    for _ in 0..shapes {
        let rgb = colour(&mut rng);
        let cx = rng.range_i64(0, s - 1);
        let cy = rng.range_i64(0, s - 1);
        let r = rng.range_i64(s / 10 + 1, s / 4 + 1);
        if rng.chance(0.5) {
            frame.fill(rgb, |x, y| {
                (x as i64 - cx).abs() <= r && (y as i64 - cy).abs() <= r * 2 / 3
            });
        } else {
            frame.fill(rgb, |x, y| {
                let (dx, dy) = (x as i64 - cx, y as i64 - cy);
                dx * dx + dy * dy <= r * r
            });
        }
    }
    frame
}

/// `count` consecutive frames starting at `start`, stacked as `[count, 3, size, size]`.
pub fn synthetic_batch(size: usize, seed: u64, start: u64, count: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(count * 3 * size * size);
    for i in 0..count as u64 {
        out.extend_from_slice(&synthetic_frame(size, seed, start + i).data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed_and_index() {
        assert_eq!(synthetic_frame(32, 1, 5), synthetic_frame(32, 1, 5));
        assert_ne!(synthetic_frame(32, 1, 5), synthetic_frame(32, 1, 6));
        assert_ne!(synthetic_frame(32, 1, 5), synthetic_frame(32, 2, 5));
    }

    #[test]
    fn frames_are_not_flat() {
        // Every frame has a background and at least one shape, so over a few frames there
        // must be more than one colour.
        let f = synthetic_frame(32, 0, 0);
        let first = f.data[0];
        let distinct = (0..10)
            .map(|i| synthetic_frame(32, 0, i))
            .any(|f| f.data.iter().any(|&v| v != f.data[0]));
        assert!(distinct, "shapes were never drawn (first value {first})");
    }

    #[test]
    fn rgba_has_opaque_alpha_and_right_size() {
        let f = synthetic_frame(16, 3, 0);
        let rgba = f.to_rgba8();
        assert_eq!(rgba.len(), 16 * 16 * 4);
        assert!(rgba.chunks(4).all(|p| p[3] == 255));
    }
}
