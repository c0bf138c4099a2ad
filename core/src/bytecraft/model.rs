//! `Qwen2ForCausalLM`: embedding, decoder layers, final norm and the (tied or untied) head,
//! loaded from Hugging Face tensor names.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::config::Qwen2Config;
use super::decoder_layer::DecoderLayer;
use super::embedding::TokenEmbedding;
use super::kv_cache::{KvCache, KvStore};
use super::rms_norm::Qwen2RmsNorm;
use super::rope::Rope;
use super::slot_cache::SlotKvCache;
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

    /// A cache of `slots` independent rows (continuous batching), preallocated for `capacity`
    /// positions per row and growing up to `max_capacity`.
    pub fn new_slot_cache(
        &self,
        slots: usize,
        capacity: usize,
        max_capacity: usize,
        device: &B::Device,
    ) -> SlotKvCache<B> {
        let (kv_heads, head_dim) = self
            .layers
            .first()
            .map_or((1, 1), |l| (l.self_attn.num_kv_heads, l.self_attn.head_dim));
        SlotKvCache::new(
            self.layers.len(),
            slots,
            kv_heads,
            head_dim,
            capacity,
            max_capacity,
            device,
        )
    }

    /// Final-norm hidden states `[batch, seq, hidden]` for `ids` `[batch, seq]`, which continue
    /// the sequences held by `cache` (the cache says each row's positions and what it may see).
    pub fn forward_hidden<C: KvStore<B> + ?Sized>(
        &self,
        ids: Tensor<B, 2, Int>,
        cache: &mut C,
    ) -> Tensor<B, 3> {
        let device = ids.device();
        let [_, seq] = ids.dims();
        let (positions, rows) = cache.positions(seq);
        let rope = self.rope.tables::<B>(&positions, rows, &device);
        let mask = cache.mask(seq, self.group, &device);
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
    pub fn forward<C: KvStore<B> + ?Sized>(
        &self,
        ids: Tensor<B, 2, Int>,
        cache: &mut C,
    ) -> Tensor<B, 3> {
        let hidden = self.forward_hidden(ids, cache);
        self.project(hidden)
    }

    /// Logits of the last position only: `[batch, vocab]` (what decoding needs; skips the head
    /// for the other positions).
    pub fn forward_last<C: KvStore<B> + ?Sized>(
        &self,
        ids: Tensor<B, 2, Int>,
        cache: &mut C,
    ) -> Tensor<B, 2> {
        let hidden = self.forward_hidden(ids, cache);
        let [batch, seq, width] = hidden.dims();
        let last = hidden.slice([0..batch, seq - 1..seq, 0..width]);
        let logits = self.project(last);
        logits.reshape([batch, self.vocab_size])
    }
}
