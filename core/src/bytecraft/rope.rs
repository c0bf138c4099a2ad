//! Rotary position embedding, Hugging Face "rotate half" layout: the first and second halves
//! of each head are the two coordinates of the rotated pairs (not interleaved pairs, which is
//! what `burn::nn::RotaryEncoding` implements; hence this module).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// `base` and head width; the angle tables are built per forward for the positions in use.
#[derive(Clone, Debug)]
pub struct Rope {
    inv_freq: Vec<f32>,
    head_dim: usize,
}

/// cos/sin tables shaped `[rows, 1, seq, head_dim]` (rows = 1 broadcasts over the batch).
#[derive(Clone, Debug)]
pub struct RopeTables<B: Backend> {
    pub cos: Tensor<B, 4>,
    pub sin: Tensor<B, 4>,
}

impl Rope {
    pub fn new(theta: f64, head_dim: usize) -> Self {
        // Same arithmetic as transformers: f32 exponent i/dim, f32 power and reciprocal.
        let inv_freq = (0..head_dim / 2)
            .map(|i| 1.0f32 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
            .collect();
        Self { inv_freq, head_dim }
    }

    /// Tables for `positions`, row-major `[rows, seq]`.
    pub fn tables<B: Backend>(
        &self,
        positions: &[usize],
        rows: usize,
        device: &B::Device,
    ) -> RopeTables<B> {
        let seq = positions.len() / rows.max(1);
        let half = self.head_dim / 2;
        let mut cos = Vec::with_capacity(positions.len() * self.head_dim);
        let mut sin = Vec::with_capacity(positions.len() * self.head_dim);
        for &p in positions {
            // The angle is rounded to f32 first, as transformers computes it in f32.
            let angles: Vec<f32> = self.inv_freq.iter().map(|f| f * p as f32).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| (*a as f64).cos() as f32));
                sin.extend(angles.iter().map(|a| (*a as f64).sin() as f32));
            }
        }
        debug_assert_eq!(cos.len(), rows * seq * 2 * half);
        let shape = [rows, 1, seq, self.head_dim];
        RopeTables {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }
}

impl<B: Backend> RopeTables<B> {
    /// Rotate `x` shaped `[batch, heads, seq, head_dim]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, h, t, d] = x.dims();
        let half = d / 2;
        let first = x.clone().slice([0..b, 0..h, 0..t, 0..half]);
        let second = x.clone().slice([0..b, 0..h, 0..t, half..d]);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn position_zero_is_identity_and_rotation_keeps_pair_norms() {
        let device = Default::default();
        let rope = Rope::new(10_000.0, 4);
        let x = Tensor::<NdArray<f32>, 4>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
                [1, 1, 2, 4],
            ),
            &device,
        );
        let out = rope
            .tables::<NdArray<f32>>(&[0, 5], 1, &device)
            .apply(x)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(&out[..4], &[1.0, 2.0, 3.0, 4.0]);
        // Pairs are (x[i], x[i + d/2]): (1, 3) and (2, 4) keep their lengths.
        let n0 = out[4].hypot(out[6]);
        let n1 = out[5].hypot(out[7]);
        assert!((n0 - 10f32.sqrt()).abs() < 1e-5 && (n1 - 20f32.sqrt()).abs() < 1e-5);
        // The first pair turns by 5 radians (inv_freq 1).
        assert!((out[4] - (5f32.cos() - 3.0 * 5f32.sin())).abs() < 1e-5);
    }
}
