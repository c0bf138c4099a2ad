//! The cheap play decoder: latent in, RGB8 frame out.

use crate::conv::Conv3;
use crate::image::Image;

/// `conv_in`, residual blocks of two ReLU'd 3x3 convolutions, `conv_out` to `3 f^2` channels,
/// then depth-to-space by `f`, the map from `[-1, 1]` to `[0, 1]` and the conversion to bytes,
/// folded into the last layer's write-out.
#[derive(Clone, Debug, PartialEq)]
pub struct LightDecoder {
    pub conv_in: Conv3,
    pub blocks: Vec<(Conv3, Conv3)>,
    pub conv_out: Conv3,
    /// The upsampling factor `f` of the depth-to-space.
    pub factor: usize,
}

impl LightDecoder {
    /// A latent `[c][h][w]` (planar, already divided by the VAE's latent scale) ->
    /// interleaved RGB8 `[f h][f w][3]`.
    pub fn decode_rgb8(&self, latent: &[f32], c: usize, h: usize, w: usize) -> Vec<u8> {
        let mut x = self
            .conv_in
            .forward(&Image::from_planar(latent, c, h, w), None);
        for (conv1, conv2) in &self.blocks {
            let mut a = x.clone();
            a.relu();
            let mut a = conv1.forward(&a, None);
            a.relu();
            x = conv2.forward(&a, Some(&x));
        }
        x.relu();
        let raw = self.conv_out.forward(&x, None);
        let f = self.factor;
        let ow = w * f;
        let mut rgb = vec![0u8; h * f * ow * 3];
        for y in 0..h {
            for col in 0..w {
                let px = &raw.data[raw.at(y, col)..][..3 * f * f];
                for (k, &v) in px.iter().enumerate() {
                    // Channel k = colour * f^2 + fy * f + fx (depth-to-space's order).
                    let (colour, fy, fx) = (k / (f * f), (k / f) % f, k % f);
                    let unit = ((v + 1.0) / 2.0).clamp(0.0, 1.0);
                    rgb[((y * f + fy) * ow + col * f + fx) * 3 + colour] =
                        (unit * 255.0).round() as u8;
                }
            }
        }
        rgb
    }
}
