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

    /// Repeat every cached row `times` times along the batch (a prompt prefilled once, then
    /// sampled `times` ways). Row `r` of the result is a copy of old row `r / times`.
    pub fn repeat_rows(&mut self, times: usize) {
        for layer in self.layers.iter_mut().flatten() {
            let expand = |t: Tensor<B, 4>| {
                let [b, h, s, d] = t.dims();
                t.unsqueeze_dim::<5>(1)
                    .expand([b, times, h, s, d])
                    .reshape([b * times, h, s, d])
            };
            layer.key = expand(layer.key.clone());
            layer.value = expand(layer.value.clone());
        }
    }

    /// Keep only the batch rows listed in `rows` (finished sequences leave the batch).
    pub fn retain_rows(&mut self, rows: &[usize]) {
        let Some(Some(first)) = self.layers.first() else {
            return;
        };
        let device = first.key.device();
        let index = Tensor::<B, 1, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(
                rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [rows.len()],
            ),
            &device,
        );
        for layer in self.layers.iter_mut().flatten() {
            layer.key = layer.key.clone().select(0, index.clone());
            layer.value = layer.value.clone().select(0, index.clone());
        }
    }

    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }
}
