//! RMSNorm as in Qwen2: `x / sqrt(mean(x^2) + eps) * weight`, statistics in f32.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::weights::{TensorSource, WeightError, WeightLoader};

#[derive(Module, Debug)]
pub struct Qwen2RmsNorm<B: Backend> {
    pub inner: RmsNorm<B>,
}

impl<B: Backend> Qwen2RmsNorm<B> {
    pub fn load<S: TensorSource + ?Sized>(
        loader: &WeightLoader<'_, B, S>,
        name: &str,
        hidden: usize,
        epsilon: f64,
    ) -> Result<Self, WeightError> {
        Ok(Self {
            inner: RmsNorm {
                gamma: loader.vector(name, hidden)?,
                epsilon,
            },
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.inner.forward(x)
    }
}
