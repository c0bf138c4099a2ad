//! The spatial module's map CNN: a local map crop in, tokens out.

use crate::conv::Conv3;
use crate::image::Image;

/// 3x3 convolutions with SiLU, 2x2 max pooling between them, then adaptive average pooling to
/// a `rows x cols` token grid.
#[derive(Clone, Debug, PartialEq)]
pub struct MapEncoder {
    pub convs: Vec<Conv3>,
    /// `[rows, cols]` of the token grid.
    pub token_grid: [usize; 2],
}

impl MapEncoder {
    /// One crop (interleaved RGB8, `h x w`) -> tokens `[rows * cols][channels]`, row-major over
    /// the grid.
    pub fn encode_rgb8(&self, crop: &[u8], h: usize, w: usize) -> Vec<f32> {
        let mut x = Image::from_rgb8(crop, h, w);
        let last = self.convs.len().saturating_sub(1);
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.forward(&x, None);
            x.silu();
            if i < last {
                x = x.max_pool2();
            }
        }
        x.adaptive_avg_pool(self.token_grid[0], self.token_grid[1])
    }

    pub fn tokens(&self) -> usize {
        self.token_grid[0] * self.token_grid[1]
    }

    pub fn token_dim(&self) -> usize {
        self.convs.last().map_or(0, Conv3::out_channels)
    }
}
