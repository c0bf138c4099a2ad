//! Per-layer key/value cache for incremental decoding.
//!
//! Keys and values are kept after RoPE, shaped `[batch, kv_heads, cached_len, head_dim]`, so a
//! decoding step only computes the projections of the new tokens.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

#[derive(Clone, Debug)]
pub struct LayerKv<B: Backend> {
    pub key: Tensor<B, 4>,
    pub value: Tensor<B, 4>,
}

#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<LayerKv<B>>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            len: 0,
        }
    }

    /// Number of positions already cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Append the new keys/values of `layer` and return the whole history for attention.
    pub fn append(
        &mut self,
        layer: usize,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let merged = match self.layers[layer].take() {
            None => LayerKv { key, value },
            Some(old) => LayerKv {
                key: Tensor::cat(vec![old.key, key], 2),
                value: Tensor::cat(vec![old.value, value], 2),
            },
        };
        let out = (merged.key.clone(), merged.value.clone());
        self.layers[layer] = Some(merged);
        out
    }

    /// Record that `count` new positions went through every layer.
    pub fn advance(&mut self, count: usize) {
        self.len += count;
    }

    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }
}
