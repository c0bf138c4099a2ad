//! A Burn `Qwen2ForCausalLM` back to the Hugging Face layout: tensors under transformers'
//! names (linear weights as `[out, in]`), and a `config.json` that `transformers` reads as a
//! `Qwen2ForCausalLM`, plus a `generation_config.json` that makes transformers' `generate` stop
//! and sample as `gamegen generate` does. Our own training runs save checkpoints this way, so
//! every model we train is also a model the rest of the ecosystem can load.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::byte_tokens::{ByteTokens, TokenizerError};
use super::config::Qwen2Config;
use super::model::Qwen2ForCausalLM;
use super::sampler::SamplingConfig;
use super::weights::{OwnedTensors, transpose};

fn values<B: Backend, const D: usize>(t: &Param<Tensor<B, D>>) -> Vec<f32> {
    t.val()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 data")
}

fn put_linear<B: Backend>(out: &mut OwnedTensors, name: &str, linear: &Linear<B>) {
    let [d_in, d_out] = linear.weight.dims();
    let w = transpose(&values(&linear.weight), d_in, d_out);
    out.insert(format!("{name}.weight"), vec![d_out, d_in], &w);
    if let Some(bias) = &linear.bias {
        out.insert(format!("{name}.bias"), vec![d_out], &values(bias));
    }
}

/// Every parameter of `model` under its transformers name.
pub fn export_tensors<B: Backend>(model: &Qwen2ForCausalLM<B>) -> OwnedTensors {
    let mut out = OwnedTensors::default();
    let embed = &model.embed_tokens.inner.weight;
    out.insert(
        "model.embed_tokens.weight",
        embed.dims().to_vec(),
        &values(embed),
    );
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let attn = &layer.self_attn;
        put_linear(&mut out, &format!("{p}.self_attn.q_proj"), &attn.q_proj);
        put_linear(&mut out, &format!("{p}.self_attn.k_proj"), &attn.k_proj);
        put_linear(&mut out, &format!("{p}.self_attn.v_proj"), &attn.v_proj);
        put_linear(&mut out, &format!("{p}.self_attn.o_proj"), &attn.o_proj);
        put_linear(
            &mut out,
            &format!("{p}.mlp.gate_proj"),
            &layer.mlp.gate_proj,
        );
        put_linear(&mut out, &format!("{p}.mlp.up_proj"), &layer.mlp.up_proj);
        put_linear(
            &mut out,
            &format!("{p}.mlp.down_proj"),
            &layer.mlp.down_proj,
        );
        for (name, norm) in [
            ("input_layernorm", &layer.input_layernorm),
            ("post_attention_layernorm", &layer.post_attention_layernorm),
        ] {
            let g = &norm.inner.gamma;
            out.insert(format!("{p}.{name}.weight"), g.dims().to_vec(), &values(g));
        }
    }
    let g = &model.norm.inner.gamma;
    out.insert("model.norm.weight", g.dims().to_vec(), &values(g));
    if let Some(head) = &model.lm_head {
        let [d_in, d_out] = head.weight.dims();
        let w = transpose(&values(&head.weight), d_in, d_out);
        out.insert("lm_head.weight", vec![d_out, d_in], &w);
    }
    out
}

/// `config.json` for transformers: our config plus the fields it needs to pick the class.
pub fn hf_config_json(config: &Qwen2Config) -> String {
    let mut value = serde_json::to_value(config).expect("config serialises");
    let obj = value.as_object_mut().expect("config is an object");
    obj.retain(|_, v| !v.is_null());
    obj.insert(
        "architectures".into(),
        serde_json::json!(["Qwen2ForCausalLM"]),
    );
    obj.insert("model_type".into(), "qwen2".into());
    obj.insert("torch_dtype".into(), "float32".into());
    obj.insert("attention_dropout".into(), 0.0.into());
    obj.insert(
        "initializer_range".into(),
        super::init::INITIALIZER_RANGE.into(),
    );
    obj.insert("use_cache".into(), true.into());
    if !obj.contains_key("rope_theta") && !obj.contains_key("rope_parameters") {
        obj.insert("rope_theta".into(), config.rope_theta().into());
    }
    if let Some(kv) = config.num_key_value_heads {
        obj.insert("num_key_value_heads".into(), kv.into());
    } else {
        obj.insert(
            "num_key_value_heads".into(),
            config.num_attention_heads.into(),
        );
    }
    obj.insert("max_window_layers".into(), config.num_hidden_layers.into());
    obj.insert("sliding_window".into(), serde_json::Value::Null);
    serde_json::to_string_pretty(&value).expect("json")
}

/// The chat turn's end token of ChatML templates (Qwen's among them).
pub const IM_END: &str = "<|im_end|>";

/// The token ids an export names for transformers' `generate`.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationTokens {
    /// The end-of-file byte token: a generated SWF is complete when it is drawn.
    pub eos: u32,
    /// `<|im_end|>`, when the tokenizer has it: a model that leaves the byte stream and closes
    /// the chat turn instead has nothing more to say either.
    pub im_end: Option<u32>,
    /// The padding byte token, which the trainer fills batches with.
    pub pad: u32,
}

impl GenerationTokens {
    /// The ids from the tokenizer's added tokens; fails when a byte special token is missing.
    pub fn from_tokens(tokens: &ByteTokens) -> Result<Self, TokenizerError> {
        Ok(Self {
            eos: tokens.eos_id()?,
            im_end: tokens.id_of(IM_END).ok(),
            pad: tokens.pad_id()?,
        })
    }

    /// Every stop token, the byte eos first.
    pub fn stop_ids(&self) -> Vec<u32> {
        std::iter::once(self.eos).chain(self.im_end).collect()
    }
}

/// `generation_config.json` for transformers: the stop tokens, padding, and the sampling
/// settings `gamegen generate` uses by default (`sampling`). `max_length` is the model's
/// context, since transformers would otherwise stop after 20 tokens. Filters that are off in
/// `sampling` are written as off (`top_k` 0, `top_p` 1), not left to transformers' defaults
/// (`top_k` 50).
pub fn generation_config_json(
    config: &Qwen2Config,
    tokens: &GenerationTokens,
    sampling: &SamplingConfig,
) -> String {
    let greedy = sampling.temperature == 0.0;
    let mut value = serde_json::json!({
        "_from_model_config": false,
        "eos_token_id": tokens.stop_ids(),
        "pad_token_id": tokens.pad,
        "max_length": config.max_position_embeddings,
        "do_sample": !greedy,
    });
    let obj = value.as_object_mut().expect("an object");
    if !greedy {
        obj.insert("temperature".into(), round(sampling.temperature).into());
        obj.insert("top_p".into(), round(sampling.top_p).into());
        obj.insert("top_k".into(), sampling.top_k.into());
        if sampling.min_p > 0.0 {
            obj.insert("min_p".into(), round(sampling.min_p).into());
        }
    }
    serde_json::to_string_pretty(&value).expect("json")
}

/// An `f32` setting as the decimal it was written as (0.3, not 0.30000001192092896).
fn round(x: f32) -> f64 {
    format!("{x}").parse().expect("a float prints as a float")
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Int, Tensor, TensorData};

    use super::super::init::random_weights;
    use super::*;

    fn tiny(tied: bool) -> Qwen2Config {
        Qwen2Config::from_json(&format!(
            r#"{{"vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rope_theta": 10000.0, "tie_word_embeddings": {tied}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn init_export_load_round_trip_is_exact() {
        for tied in [false, true] {
            let config = tiny(tied);
            let device = Default::default();
            let weights = random_weights(&config, 3);
            let model = Qwen2ForCausalLM::<NdArray>::load(&config, &weights, &device).unwrap();
            let exported = export_tensors(&model);
            assert_eq!(exported.len(), weights.len());
            for name in weights.names() {
                assert_eq!(exported.values(name), weights.values(name), "{name}");
            }
            // Through safetensors bytes and back, then the same logits.
            let bytes = exported.to_safetensors().unwrap();
            let shards =
                crate::bytecraft::SafetensorsShards::new([("m".to_string(), bytes.as_slice())])
                    .unwrap();
            let again = Qwen2ForCausalLM::<NdArray>::load(&config, &shards, &device).unwrap();
            let ids = || {
                Tensor::<NdArray, 2, Int>::from_data(
                    TensorData::new(vec![1i64, 5, 9, 2], [1, 4]),
                    &device,
                )
            };
            let a = model.forward(ids(), &mut model.new_cache()).into_data();
            let b = again.forward(ids(), &mut again.new_cache()).into_data();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn config_json_reads_back_and_names_the_class() {
        let config = tiny(false);
        let text = hf_config_json(&config);
        let back = Qwen2Config::from_json(&text).unwrap();
        assert_eq!(back.rope_theta(), config.rope_theta());
        assert_eq!(back.kv_heads(), 2);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["architectures"][0], "Qwen2ForCausalLM");
        assert_eq!(v["model_type"], "qwen2");
    }

    /// The shipped mini model's tokenizer: every byte special token (eos, pad) and the chat
    /// markers, as the trainer writes them.
    fn layout_tokens() -> ByteTokens {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/bytecraft-mini/tokenizer.json"
        ))
        .unwrap();
        ByteTokens::from_tokenizer_json(&text).unwrap()
    }

    #[test]
    fn generation_config_stops_on_both_ends_and_samples_like_the_cli() {
        let tokens = layout_tokens();
        let ids = GenerationTokens::from_tokens(&tokens).unwrap();
        assert_eq!(ids.eos, tokens.eos_id().unwrap());
        assert_eq!(ids.im_end, Some(tokens.id_of(IM_END).unwrap()));
        let mut config = tiny(false);
        config.max_position_embeddings = 512;
        let sampling = SamplingConfig {
            temperature: 0.3,
            top_p: 0.9,
            min_p: 0.0,
            top_k: 0,
        };
        let v: serde_json::Value =
            serde_json::from_str(&generation_config_json(&config, &ids, &sampling)).unwrap();
        assert_eq!(
            v["eos_token_id"],
            serde_json::json!([ids.eos, ids.im_end.unwrap()])
        );
        assert_eq!(v["pad_token_id"], ids.pad);
        assert_eq!(v["max_length"], 512);
        assert_eq!(v["do_sample"], true);
        assert_eq!(v["temperature"], 0.3);
        assert_eq!(v["top_p"], 0.9);
        assert_eq!(v["top_k"], 0);
        assert!(v.get("min_p").is_none());

        let greedy = SamplingConfig {
            temperature: 0.0,
            ..sampling
        };
        let v: serde_json::Value =
            serde_json::from_str(&generation_config_json(&config, &ids, &greedy)).unwrap();
        assert_eq!(v["do_sample"], false);
        assert!(v.get("temperature").is_none());
    }

    #[test]
    fn generation_tokens_without_im_end_stop_on_the_byte_eos_only() {
        let ids = GenerationTokens {
            eos: 7,
            im_end: None,
            pad: 5,
        };
        assert_eq!(ids.stop_ids(), vec![7]);
    }

    #[test]
    fn random_weights_depend_on_the_seed_only() {
        let config = tiny(false);
        let (a, b, c) = (
            random_weights(&config, 1),
            random_weights(&config, 1),
            random_weights(&config, 2),
        );
        let name = "model.layers.1.mlp.up_proj.weight";
        assert_eq!(a.values(name), b.values(name));
        assert_ne!(a.values(name), c.values(name));
        let v = a.values(name).unwrap();
        let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
        assert!((std - 0.02).abs() < 0.004, "std {std}");
    }
}
