//! Fresh weights for training a Qwen2 model from scratch, initialised as transformers'
//! `Qwen2PreTrainedModel._init_weights` does: every linear and embedding matrix drawn from
//! `N(0, initializer_range^2)`, biases zero, RMSNorm weights one.
//!
//! The weights are produced under their Hugging Face names and then loaded through the same
//! path as a downloaded checkpoint, so a from-scratch model and a loaded one cannot differ in
//! layout.

use super::config::Qwen2Config;
use super::weights::OwnedTensors;
use crate::rng::Rng;

/// transformers' default `initializer_range` for Qwen2.
pub const INITIALIZER_RANGE: f64 = 0.02;

/// Every tensor a `Qwen2ForCausalLM` with `config` needs, HF names and layouts, seeded.
pub fn random_weights(config: &Qwen2Config, seed: u64) -> OwnedTensors {
    let mut out = OwnedTensors::default();
    let mut rng = Rng::new(seed);
    let (vocab, hidden) = (config.vocab_size, config.hidden_size);
    let (q, kv) = (
        config.num_attention_heads * config.head_dim(),
        config.kv_heads() * config.head_dim(),
    );
    let inter = config.intermediate_size;
    let mut normal = |out: &mut OwnedTensors, name: String, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| (rng.normal() * INITIALIZER_RANGE) as f32)
            .collect();
        out.insert(name, shape, &values);
    };
    normal(
        &mut out,
        "model.embed_tokens.weight".into(),
        vec![vocab, hidden],
    );
    for i in 0..config.num_hidden_layers {
        let p = format!("model.layers.{i}");
        for (name, d_out, d_in) in [
            ("self_attn.q_proj", q, hidden),
            ("self_attn.k_proj", kv, hidden),
            ("self_attn.v_proj", kv, hidden),
            ("self_attn.o_proj", hidden, q),
            ("mlp.gate_proj", inter, hidden),
            ("mlp.up_proj", inter, hidden),
            ("mlp.down_proj", hidden, inter),
        ] {
            normal(&mut out, format!("{p}.{name}.weight"), vec![d_out, d_in]);
        }
        for (name, len) in [
            ("self_attn.q_proj", q),
            ("self_attn.k_proj", kv),
            ("self_attn.v_proj", kv),
        ] {
            out.insert(format!("{p}.{name}.bias"), vec![len], &vec![0.0; len]);
        }
        for name in ["input_layernorm", "post_attention_layernorm"] {
            out.insert(
                format!("{p}.{name}.weight"),
                vec![hidden],
                &vec![1.0; hidden],
            );
        }
    }
    out.insert("model.norm.weight", vec![hidden], &vec![1.0; hidden]);
    if !config.tie_word_embeddings {
        normal(&mut out, "lm_head.weight".into(), vec![vocab, hidden]);
    }
    out
}
