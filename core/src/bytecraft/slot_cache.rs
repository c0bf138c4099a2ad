//! A key/value cache with one independent sequence per batch row ("slot"), for continuous
//! batching: rows hold different prompts at different lengths, and a row whose sample ended
//! is refilled with another prompt while the others keep going.
//!
//! Each layer owns one preallocated buffer `[slots, kv_heads, capacity, head_dim]`. Row `r`
//! keeps its sequence at columns `0..len[r]` (right padding, so a row's keys sit at the same
//! columns as they would alone and a padded row computes the same dot products). A decoding
//! step writes every row's new key/value at its own column `len[r]` with one indexed write per
//! buffer (`select_assign` over the buffer viewed as lines of `head_dim`; in place where the
//! backend can, a single copy of the buffer on the CPU backends, never a concatenation),
//! attention reads columns `0..max(len) + 1`, and a mask hides the columns past each row's own
//! end. The buffer doubles when a row reaches the capacity, up to the largest length asked for.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, IndexingUpdateOp, Int, Tensor, TensorData};

use super::kv_cache::{KvCache, KvStore};

struct LayerBuffers<B: Backend> {
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
}

pub struct SlotKvCache<B: Backend> {
    layers: Vec<Option<LayerBuffers<B>>>,
    /// Cached positions of each row (the position of its next token).
    lens: Vec<usize>,
    capacity: usize,
    /// Capacity never grows past this (the longest prompt plus the token limit).
    max_capacity: usize,
    kv_heads: usize,
    head_dim: usize,
    device: B::Device,
}

impl<B: Backend> SlotKvCache<B> {
    /// `slots` empty rows with room for `capacity` positions each, growing up to
    /// `max_capacity`.
    pub fn new(
        num_layers: usize,
        slots: usize,
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        max_capacity: usize,
        device: &B::Device,
    ) -> Self {
        let capacity = capacity.clamp(1, max_capacity.max(1));
        let zeros = || Tensor::<B, 4>::zeros([slots, kv_heads, capacity, head_dim], device);
        Self {
            layers: (0..num_layers)
                .map(|_| {
                    Some(LayerBuffers {
                        key: zeros(),
                        value: zeros(),
                    })
                })
                .collect(),
            lens: vec![0; slots],
            capacity,
            max_capacity: max_capacity.max(capacity),
            kv_heads,
            head_dim,
            device: device.clone(),
        }
    }

    pub fn slots(&self) -> usize {
        self.lens.len()
    }

    /// Cached positions of each row.
    pub fn lens(&self) -> &[usize] {
        &self.lens
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Make room for `extra` more positions in the longest row (doubling the buffers).
    pub fn reserve(&mut self, extra: usize) {
        let need = self.lens.iter().copied().max().unwrap_or(0) + extra;
        self.grow_to(need);
    }

    fn grow_to(&mut self, need: usize) {
        if need <= self.capacity {
            return;
        }
        let new_cap = (self.capacity * 2)
            .max(need)
            .min(self.max_capacity.max(need));
        let extra = new_cap - self.capacity;
        let [slots, kv, d] = [self.slots(), self.kv_heads, self.head_dim];
        for layer in self.layers.iter_mut().flatten() {
            let pad = Tensor::<B, 4>::zeros([slots, kv, extra, d], &self.device);
            layer.key = Tensor::cat(vec![layer.key.clone(), pad.clone()], 2);
            layer.value = Tensor::cat(vec![layer.value.clone(), pad], 2);
        }
        self.capacity = new_cap;
    }

    /// Put the sequence cached in `prefill` (one row, e.g. a prompt run alone) into `row`,
    /// replacing whatever the row held; the rest of the row is zeroed so nothing of an earlier
    /// sequence survives, even behind the mask.
    pub fn fill_row(&mut self, row: usize, prefill: &KvCache<B>) {
        let len = prefill.len();
        self.grow_to(len + 1);
        let (cap, kv, d) = (self.capacity, self.kv_heads, self.head_dim);
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let layer = layer.as_mut().expect("slot buffers exist");
            let src = prefill.layer(i).expect("the prefill ran every layer");
            let write = |buf: Tensor<B, 4>, src: &Tensor<B, 4>| {
                let buf = if len > 0 {
                    buf.slice_assign([row..row + 1, 0..kv, 0..len, 0..d], src.clone())
                } else {
                    buf
                };
                if len < cap {
                    buf.slice_fill([row..row + 1, 0..kv, len..cap, 0..d], 0.0)
                } else {
                    buf
                }
            };
            layer.key = write(layer.key.clone(), &src.key);
            layer.value = write(layer.value.clone(), &src.value);
        }
        self.lens[row] = len;
    }

    /// Keep only the rows listed in `rows`, in that order (the batch shrinks once the queue is
    /// empty).
    pub fn retain_rows(&mut self, rows: &[usize]) {
        let index = Tensor::<B, 1, Int>::from_data(
            TensorData::new(
                rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [rows.len()],
            ),
            &self.device,
        );
        for layer in self.layers.iter_mut().flatten() {
            layer.key = layer.key.clone().select(0, index.clone());
            layer.value = layer.value.clone().select(0, index.clone());
        }
        self.lens = rows.iter().map(|&r| self.lens[r]).collect();
    }

    /// Columns attention reads: every row's history plus the token being added.
    fn width(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0) + 1
    }
}

impl<B: Backend> KvStore<B> for SlotKvCache<B> {
    fn positions(&self, seq: usize) -> (Vec<usize>, usize) {
        let positions = self
            .lens
            .iter()
            .flat_map(|&l| l..l + seq)
            .collect::<Vec<_>>();
        (positions, self.slots())
    }

    fn mask(&self, seq: usize, group: usize, device: &B::Device) -> Option<Tensor<B, 4, Bool>> {
        let width = self.width() + seq - 1;
        let uniform = self.lens.iter().all(|&l| l == self.lens[0]);
        if seq == 1 && uniform {
            return None;
        }
        let mut mask = Vec::with_capacity(self.slots() * group * seq * width);
        for &len in &self.lens {
            for _ in 0..group {
                for t in 0..seq {
                    mask.extend((0..width).map(|s| s > len + t));
                }
            }
        }
        Some(Tensor::from_data(
            TensorData::new(mask, [self.slots(), 1, group * seq, width]),
            device,
        ))
    }

    fn append(
        &mut self,
        layer: usize,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [slots, kv, seq, d] = key.dims();
        debug_assert_eq!(slots, self.slots());
        let width = self.width() + seq - 1;
        self.grow_to(width);
        // One indexed write per buffer for all rows, whatever their lengths: viewed as
        // `[slots * kv * capacity, d]`, row r's head h at column c is line (r*kv + h)*cap + c.
        // The columns past each row's length are zero (see `fill_row` and `grow_to`), so
        // adding there writes the value.
        let cap = self.capacity;
        let lines: Vec<i64> = (0..slots)
            .flat_map(|r| (0..kv).flat_map(move |h| (0..seq).map(move |t| (r, h, t))))
            .map(|(r, h, t)| ((r * kv + h) * cap + self.lens[r] + t) as i64)
            .collect();
        let index = Tensor::<B, 1, Int>::from_data(
            TensorData::new(lines, [slots * kv * seq]),
            &self.device,
        );
        let mut buf = self.layers[layer].take().expect("slot buffers exist");
        let write = |buf: Tensor<B, 4>, new: Tensor<B, 4>| {
            buf.reshape([slots * kv * cap, d])
                .select_assign(
                    0,
                    index.clone(),
                    new.reshape([slots * kv * seq, d]),
                    IndexingUpdateOp::Add,
                )
                .reshape([slots, kv, cap, d])
        };
        buf.key = write(buf.key, key);
        buf.value = write(buf.value, value);
        let read = [0..slots, 0..kv, 0..width, 0..d];
        let out = (
            buf.key.clone().slice(read.clone()),
            buf.value.clone().slice(read),
        );
        self.layers[layer] = Some(buf);
        out
    }

    fn advance(&mut self, seq: usize) {
        self.lens.iter_mut().for_each(|l| *l += seq);
    }
}
