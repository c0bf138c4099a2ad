//! The SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`, no biases.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;

use super::weights::{TensorSource, WeightError, WeightLoader};

#[derive(Module, Debug)]
pub struct SwiGluMlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

impl<B: Backend> SwiGluMlp<B> {
    /// `prefix` is e.g. `model.layers.3.mlp`.
    pub fn load<S: TensorSource + ?Sized>(
        loader: &WeightLoader<'_, B, S>,
        prefix: &str,
        hidden: usize,
        intermediate: usize,
    ) -> Result<Self, WeightError> {
        let linear = |name: &str, d_in, d_out| -> Result<Linear<B>, WeightError> {
            Ok(Linear {
                weight: loader.linear_weight(&format!("{prefix}.{name}.weight"), d_in, d_out)?,
                bias: None,
            })
        };
        Ok(Self {
            gate_proj: linear("gate_proj", hidden, intermediate)?,
            up_proj: linear("up_proj", hidden, intermediate)?,
            down_proj: linear("down_proj", intermediate, hidden)?,
        })
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}
