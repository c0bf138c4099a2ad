//! The residual block of the world model's convolutional parts, and the v head built on it.

use crate::conv::{Conv1, Conv3};
use crate::image::Image;
use crate::norm::GroupNorm;

/// `conv2(silu(norm2(conv1(silu(norm1(x)))))) + skip(x)`, `skip` a 1x1 convolution when the
/// channel count changes, else the identity.
#[derive(Clone, Debug, PartialEq)]
pub struct ResBlock {
    pub norm1: GroupNorm,
    pub conv1: Conv3,
    pub norm2: GroupNorm,
    pub conv2: Conv3,
    pub skip: Option<Conv1>,
}

impl ResBlock {
    pub fn forward(&self, x: &Image) -> Image {
        let mut h = x.clone();
        self.norm1.apply(&mut h);
        h.silu();
        let mut h = self.conv1.forward(&h, None);
        self.norm2.apply(&mut h);
        h.silu();
        match &self.skip {
            Some(skip) => self.conv2.forward(&h, Some(&skip.forward(x))),
            None => self.conv2.forward(&h, Some(x)),
        }
    }
}

/// The head that reads the v-prediction of the latent out of the state (and the noisy latent
/// beside it, when `reads_latent`): a residual block to latent channels, then a 1x1 convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct VHead {
    pub res: ResBlock,
    pub out: Conv1,
    pub reads_latent: bool,
}

impl VHead {
    /// One sample's state `z` and noisy latent `x` (planar `[c][h][w]` each) -> its
    /// v-prediction `[latent_channels][h][w]`.
    pub fn forward(&self, z: &[f32], x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let input = if self.reads_latent {
            // Planar buffers concatenate along channels by appending.
            Image::from_planar(&[z, x].concat(), (z.len() + x.len()) / (h * w), h, w)
        } else {
            Image::from_planar(z, z.len() / (h * w), h, w)
        };
        self.out.forward(&self.res.forward(&input)).to_planar()
    }
}
