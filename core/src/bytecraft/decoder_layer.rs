//! One pre-norm Qwen2 block: `h = x + attn(norm1(x)); out = h + mlp(norm2(h))`.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::attention::GroupedQueryAttention;
use super::config::Qwen2Config;
use super::kv_cache::KvStore;
use super::mlp::SwiGluMlp;
use super::rms_norm::Qwen2RmsNorm;
use super::rope::RopeTables;
use super::weights::{TensorSource, WeightError, WeightLoader};

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub input_layernorm: Qwen2RmsNorm<B>,
    pub self_attn: GroupedQueryAttention<B>,
    pub post_attention_layernorm: Qwen2RmsNorm<B>,
    pub mlp: SwiGluMlp<B>,
}

impl<B: Backend> DecoderLayer<B> {
    pub fn load<S: TensorSource + ?Sized>(
        loader: &WeightLoader<'_, B, S>,
        config: &Qwen2Config,
        index: usize,
    ) -> Result<Self, WeightError> {
        let prefix = format!("model.layers.{index}");
        let hidden = config.hidden_size;
        let eps = config.rms_norm_eps;
        Ok(Self {
            input_layernorm: Qwen2RmsNorm::load(
                loader,
                &format!("{prefix}.input_layernorm.weight"),
                hidden,
                eps,
            )?,
            self_attn: GroupedQueryAttention::load(
                loader,
                &format!("{prefix}.self_attn"),
                hidden,
                config.num_attention_heads,
                config.kv_heads(),
                config.head_dim(),
            )?,
            post_attention_layernorm: Qwen2RmsNorm::load(
                loader,
                &format!("{prefix}.post_attention_layernorm.weight"),
                hidden,
                eps,
            )?,
            mlp: SwiGluMlp::load(
                loader,
                &format!("{prefix}.mlp"),
                hidden,
                config.intermediate_size,
            )?,
        })
    }

    pub fn forward<C: KvStore<B> + ?Sized>(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: Option<&Tensor<B, 4, Bool>>,
        cache: &mut C,
        layer: usize,
    ) -> Tensor<B, 3> {
        let attn = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            rope,
            mask,
            cache,
            layer,
        );
        let h = x + attn;
        let mlp = self
            .mlp
            .forward(self.post_attention_layernorm.forward(h.clone()));
        h + mlp
    }
}
