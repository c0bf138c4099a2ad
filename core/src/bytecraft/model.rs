//! `Qwen2ForCausalLM`: embedding, decoder layers, final norm and the (tied or untied) head,
//! loaded from Hugging Face tensor names.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::config::Qwen2Config;
use super::decoder_layer::DecoderLayer;
use super::embedding::TokenEmbedding;
use super::kv_cache::KvCache;
use super::rms_norm::Qwen2RmsNorm;
use super::rope::Rope;
use super::weights::{TensorSource, WeightError, WeightLoader};

#[derive(Module, Debug)]
pub struct Qwen2ForCausalLM<B: Backend> {
    pub embed_tokens: TokenEmbedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: Qwen2RmsNorm<B>,
    /// `None` when the config ties the head to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
    pub vocab_size: usize,
    /// Query heads per key/value head, needed to shape the causal mask.
    pub group: usize,
    #[module(skip)]
    pub rope: Rope,
}

impl<B: Backend> Qwen2ForCausalLM<B> {
    /// Build the model from a validated config and a checkpoint, converting one tensor at a
    /// time. Every tensor is checked against the shape the config implies.
    pub fn load<S: TensorSource + ?Sized>(
        config: &Qwen2Config,
        source: &S,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let loader = WeightLoader::<B, S>::new(source, device);
        let (vocab, hidden) = (config.vocab_size, config.hidden_size);
        let embed_tokens =
            TokenEmbedding::load(&loader, "model.embed_tokens.weight", vocab, hidden)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::load(&loader, config, i))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = Qwen2RmsNorm::load(&loader, "model.norm.weight", hidden, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(Linear {
                weight: loader.linear_weight("lm_head.weight", hidden, vocab)?,
                bias: None,
            })
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            vocab_size: vocab,
            group: config.num_attention_heads / config.kv_heads(),
            rope: Rope::new(config.rope_theta(), config.head_dim()),
        })
    }

    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.layers.len())
    }

    /// Final-norm hidden states `[batch, seq, hidden]` for `ids` `[batch, seq]`, which continue
    /// the sequences held by `cache` (all rows share the same positions).
    pub fn forward_hidden(&self, ids: Tensor<B, 2, Int>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let device = ids.device();
        let [_, seq] = ids.dims();
        let offset = cache.len();
        let positions: Vec<usize> = (offset..offset + seq).collect();
        let rope = self.rope.tables::<B>(&positions, 1, &device);
        let mask = (seq > 1).then(|| causal_mask::<B>(offset, seq, self.group, &device));
        let mut x = self.embed_tokens.forward(ids);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, &rope, mask.as_ref(), cache, i);
        }
        cache.advance(seq);
        self.norm.forward(x)
    }

    /// `[batch, seq, hidden]` -> `[batch, seq, vocab]`.
    pub fn project(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => self.embed_tokens.project(hidden),
        }
    }

    /// Logits for every position: `[batch, seq, vocab]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let hidden = self.forward_hidden(ids, cache);
        self.project(hidden)
    }

    /// Logits of the last position only: `[batch, vocab]` (what decoding needs; skips the head
    /// for the other positions).
    pub fn forward_last(&self, ids: Tensor<B, 2, Int>, cache: &mut KvCache<B>) -> Tensor<B, 2> {
        let hidden = self.forward_hidden(ids, cache);
        let [batch, seq, width] = hidden.dims();
        let last = hidden.slice([0..batch, seq - 1..seq, 0..width]);
        let logits = self.project(last);
        logits.reshape([batch, self.vocab_size])
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
