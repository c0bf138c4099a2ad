//! Key/value caches for incremental decoding, and the interface the model reads them through.
//!
//! Keys and values are kept after RoPE, so a decoding step only computes the projections of
//! the new tokens. [`KvCache`] is the simple one: every row at the same position, history grown
//! by concatenation (prefill, training, greedy). [`super::slot_cache::SlotKvCache`] gives each
//! row its own length in a preallocated buffer, for continuous batching.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};

/// What the model needs from a cache: where the new tokens sit, what they may see, and where
/// their keys and values go.
pub trait KvStore<B: Backend> {
    /// Positions of the `seq` new tokens of every row, row-major `[rows, seq]`, and `rows`
    /// (1 when all rows share them).
    fn positions(&self, seq: usize) -> (Vec<usize>, usize);
    /// True where a new token's query must not see a key, shaped
    /// `[1 or batch, 1, group * seq, keys]` (the grouped-attention layout); `None` when every
    /// key is visible.
    fn mask(&self, seq: usize, group: usize, device: &B::Device) -> Option<Tensor<B, 4, Bool>>;
    /// Store the new keys/values `[batch, kv_heads, seq, head_dim]` of `layer` and return the
    /// keys/values attention reads (`[batch, kv_heads, keys, head_dim]`).
    fn append(
        &mut self,
        layer: usize,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>);
    /// Record that `seq` new positions went through every layer.
    fn advance(&mut self, seq: usize);
}

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

    /// Keys and values of `layer`, `[batch, kv_heads, len, head_dim]` (None before the first
    /// forward).
    pub fn layer(&self, layer: usize) -> Option<&LayerKv<B>> {
        self.layers.get(layer)?.as_ref()
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

impl<B: Backend> KvStore<B> for KvCache<B> {
    fn positions(&self, seq: usize) -> (Vec<usize>, usize) {
        ((self.len..self.len + seq).collect(), 1)
    }

    fn mask(&self, seq: usize, group: usize, device: &B::Device) -> Option<Tensor<B, 4, Bool>> {
        (seq > 1).then(|| causal_mask::<B>(self.len, seq, group, device))
    }

    fn append(
        &mut self,
        layer: usize,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        KvCache::append(self, layer, key, value)
    }

    fn advance(&mut self, seq: usize) {
        KvCache::advance(self, seq)
    }
}

/// True where query row `g * seq + t` (position `offset + t`) must not see key `s`, i.e.
/// `s > offset + t`; shaped `[1, 1, group * seq, offset + seq]` for the grouped attention.
fn causal_mask<B: Backend>(
    offset: usize,
    seq: usize,
    group: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let keys = offset + seq;
    let mut mask = Vec::with_capacity(group * seq * keys);
    for _ in 0..group {
        for t in 0..seq {
            mask.extend((0..keys).map(|s| s > offset + t));
        }
    }
    Tensor::from_data(TensorData::new(mask, [1, 1, group * seq, keys]), device)
}
