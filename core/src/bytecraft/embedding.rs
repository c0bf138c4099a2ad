//! Token embedding (`model.embed_tokens`), which tied checkpoints also use as the output head.

use burn::module::Module;
use burn::nn::Embedding;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::weights::{TensorSource, WeightError, WeightLoader};

#[derive(Module, Debug)]
pub struct TokenEmbedding<B: Backend> {
    /// `[vocab, hidden]`, the same layout as the checkpoint.
    pub inner: Embedding<B>,
}

impl<B: Backend> TokenEmbedding<B> {
    pub fn load<S: TensorSource + ?Sized>(
        loader: &WeightLoader<'_, B, S>,
        name: &str,
        vocab: usize,
        hidden: usize,
    ) -> Result<Self, WeightError> {
        Ok(Self {
            inner: Embedding {
                weight: loader.matrix(name, vocab, hidden)?,
            },
        })
    }

    /// `[batch, seq]` ids -> `[batch, seq, hidden]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.inner.forward(ids)
    }

    /// Tied output head: `[batch, seq, hidden]` -> `[batch, seq, vocab]` logits.
    pub fn project(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let weight = self.inner.weight.val().transpose().unsqueeze::<3>();
        hidden.matmul(weight)
    }
}
