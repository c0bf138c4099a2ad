//! Per-pixel weights of the reconstruction loss that favour rare colours.
//!
//! What makes a game playable is small: Pong's ball is 0.1 % of a frame, a score digit's stroke
//! or a Pac-Man dot less. With a plain mean over pixels, an autoencoder that paints the
//! background and the walls and drops everything else has almost reached its optimum, and that
//! is what the tiny VAEs learnt (docs/evaluation.md, "Detector metrics"). Weighting each pixel by
//! how rare its colour is within its own frame moves the loss onto the objects without knowing
//! any game: the weight of a pixel whose colour covers a share `s` of the frame is `s^-power`
//! (capped at [`MAX_WEIGHT`] before normalising), normalised so that each frame's weights
//! average 1 (the loss keeps its scale and learning rates keep their meaning). `power` 0 gives
//! the plain mean; 0.5 gives a 0.1 %-of-the-frame ball about 30x a background pixel's weight.
//!
//! Colours are compared after quantising each channel to [`LEVELS`] levels, so the slight
//! shading of a sprite's edge counts with the sprite rather than as a colour of its own.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Quantisation levels per colour channel.
pub const LEVELS: usize = 16;
/// The largest weight, before normalising (limits what one stray pixel can pull).
pub const MAX_WEIGHT: f32 = 100.0;

/// Weights `[n, h, w]` (row-major, per frame) for frames `[n, 3, h, w]` in `[0, 1]`.
pub fn rare_colour_weights(frames: &[f32], n: usize, h: usize, w: usize, power: f32) -> Vec<f32> {
    let hw = h * w;
    assert_eq!(frames.len(), n * 3 * hw, "frames must be [n, 3, h, w]");
    let quantise = |v: f32| ((v.clamp(0.0, 1.0) * (LEVELS - 1) as f32).round()) as usize;
    let mut out = Vec::with_capacity(n * hw);
    let mut counts = vec![0u32; LEVELS * LEVELS * LEVELS];
    let mut bins = vec![0usize; hw];
    for frame in frames.chunks_exact(3 * hw) {
        counts.iter_mut().for_each(|c| *c = 0);
        for (p, bin) in bins.iter_mut().enumerate() {
            let (r, g, b) = (
                quantise(frame[p]),
                quantise(frame[hw + p]),
                quantise(frame[2 * hw + p]),
            );
            *bin = (r * LEVELS + g) * LEVELS + b;
            counts[*bin] += 1;
        }
        let start = out.len();
        out.extend(bins.iter().map(|&bin| {
            let share = counts[bin] as f32 / hw as f32;
            share.powf(-power).min(MAX_WEIGHT)
        }));
        let mean = out[start..].iter().sum::<f32>() / hw as f32;
        out[start..].iter_mut().for_each(|x| *x /= mean);
    }
    out
}

/// [`rare_colour_weights`] of a batch of frames, as a tensor `[n, 1, h, w]` on the frames'
/// device (broadcast over the colour channels by the loss), or `None` when `power` is 0.
pub fn rare_colour_weight_tensor<B: Backend>(
    frames: &Tensor<B, 4>,
    power: f64,
) -> Option<Tensor<B, 4>> {
    if power == 0.0 {
        return None;
    }
    let [n, c, h, w] = frames.dims();
    debug_assert_eq!(c, 3);
    let data = frames
        .clone()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .ok()?;
    let weights = rare_colour_weights(&data, n, h, w, power as f32);
    Some(Tensor::from_data(
        TensorData::new(weights, [n, 1, h, w]),
        &frames.device(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 8x8 frame: a black field, a 2x2 white "ball" and one grey pixel.
    fn frame() -> Vec<f32> {
        let mut f = vec![0.0f32; 3 * 64];
        for c in 0..3 {
            for p in [9, 10, 17, 18] {
                f[c * 64 + p] = 1.0;
            }
            f[c * 64 + 40] = 0.5;
        }
        f
    }

    #[test]
    fn rare_colours_weigh_more_and_each_frame_averages_one() {
        let f = frame();
        let wts = rare_colour_weights(&f, 1, 8, 8, 0.5);
        let (field, ball, grey) = (wts[0], wts[9], wts[40]);
        assert!(grey > ball && ball > field, "{grey} {ball} {field}");
        // Shares 59/64, 4/64, 1/64: weights in the ratio of share^-0.5.
        assert!((ball / field - (59.0f32 / 4.0).sqrt()).abs() < 1e-4);
        assert!((grey / field - 59.0f32.sqrt()).abs() < 1e-3);
        let mean = wts.iter().sum::<f32>() / 64.0;
        assert!((mean - 1.0).abs() < 1e-5, "{mean}");
    }

    #[test]
    fn power_zero_is_the_plain_mean_and_frames_are_weighted_apart() {
        let f = frame();
        assert!(
            rare_colour_weights(&f, 1, 8, 8, 0.0)
                .iter()
                .all(|&x| (x - 1.0).abs() < 1e-6)
        );
        // A second frame that is all one colour gets weight 1 everywhere, whatever the first.
        let mut two = f.clone();
        two.extend(vec![0.3f32; 3 * 64]);
        let wts = rare_colour_weights(&two, 2, 8, 8, 0.5);
        assert_eq!(&wts[..64], &rare_colour_weights(&f, 1, 8, 8, 0.5)[..]);
        assert!(wts[64..].iter().all(|&x| (x - 1.0).abs() < 1e-6));
    }

    #[test]
    fn near_colours_share_a_bin() {
        let mut f = frame();
        // Shade one ball pixel slightly: still the ball's colour.
        for c in 0..3 {
            f[c * 64 + 9] = 0.98;
        }
        let wts = rare_colour_weights(&f, 1, 8, 8, 0.5);
        assert_eq!(wts[9], wts[10]);
    }
}
