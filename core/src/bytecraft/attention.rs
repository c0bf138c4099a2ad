//! Causal self-attention with grouped-query heads, q/k/v biases (Qwen2) and RoPE.
//!
//! With `H` query heads and `K` key/value heads each kv head serves `G = H / K` consecutive
//! query heads (transformers' `repeat_kv`). Instead of repeating keys and values `G` times, the
//! queries are regrouped to `[batch, K, G * seq, head_dim]` so one batched matmul per kv head
//! does the work; MHA (`G = 1`) and MQA (`K = 1`) are the two ends of the same code.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::kv_cache::KvStore;
use super::rope::RopeTables;
use super::weights::{TensorSource, WeightError, WeightLoader};

#[derive(Module, Debug)]
pub struct GroupedQueryAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

impl<B: Backend> GroupedQueryAttention<B> {
    /// `prefix` is e.g. `model.layers.3.self_attn`.
    pub fn load<S: TensorSource + ?Sized>(
        loader: &WeightLoader<'_, B, S>,
        prefix: &str,
        hidden: usize,
        num_heads: usize,
        num_kv_heads: usize,
        head_dim: usize,
    ) -> Result<Self, WeightError> {
        let linear = |name: &str, d_in, d_out, bias: bool| -> Result<Linear<B>, WeightError> {
            let weight = loader.linear_weight(&format!("{prefix}.{name}.weight"), d_in, d_out)?;
            let bias = if bias {
                Some(loader.vector(&format!("{prefix}.{name}.bias"), d_out)?)
            } else {
                None
            };
            Ok(Linear { weight, bias })
        };
        let q = num_heads * head_dim;
        let kv = num_kv_heads * head_dim;
        Ok(Self {
            q_proj: linear("q_proj", hidden, q, true)?,
            k_proj: linear("k_proj", hidden, kv, true)?,
            v_proj: linear("v_proj", hidden, kv, true)?,
            o_proj: linear("o_proj", q, hidden, false)?,
            num_heads,
            num_kv_heads,
            head_dim,
        })
    }

    /// Query heads per kv head.
    pub fn group(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }

    /// `x`: `[batch, seq, hidden]`; `mask`: `[1 or batch, 1, group * seq, cached + seq]`, true
    /// where a query must not see a key (None when nothing is hidden, e.g. one new token).
    pub fn forward<C: KvStore<B> + ?Sized>(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: Option<&Tensor<B, 4, Bool>>,
        cache: &mut C,
        layer: usize,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let (h, k, d, g) = (
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
            self.group(),
        );
        let split =
            |t: Tensor<B, 3>, heads: usize| t.reshape([batch, seq, heads, d]).swap_dims(1, 2);
        let q = rope.apply(split(self.q_proj.forward(x.clone()), h));
        let key = rope.apply(split(self.k_proj.forward(x.clone()), k));
        let value = split(self.v_proj.forward(x), k);
        let (key, value) = cache.append(layer, key, value);

        // [b, h, t, d] -> [b, k, g * t, d]: query heads kv*g .. kv*g + g - 1 share kv head kv.
        let q = q.reshape([batch, k, g * seq, d]);
        let scale = (d as f64).powf(-0.5);
        let mut scores = q.matmul(key.swap_dims(2, 3)) * scale;
        if let Some(mask) = mask {
            let dims = scores.dims();
            scores = scores.mask_fill(mask.clone().expand(dims), f32::NEG_INFINITY);
        }
        let probs = softmax(scores, 3);
        let out = probs
            .matmul(value)
            .reshape([batch, h, seq, d])
            .swap_dims(1, 2)
            .reshape([batch, seq, h * d]);
        self.o_proj.forward(out)
    }
}
