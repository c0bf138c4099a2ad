//! The Qwen2 architecture hyper-parameters, read from a Hugging Face `config.json`.
//!
//! Two generations of transformers write this file differently: transformers 4 puts
//! `rope_theta` (and an optional `rope_scaling`) at the top level, transformers 5 nests them as
//! `rope_parameters: {rope_theta, rope_type}`. Both are accepted; [`Qwen2Config::rope_theta`]
//! resolves them to one number. Unknown keys are ignored so that newer configs still load.

use serde::{Deserialize, Serialize};

/// Largest sizes accepted from a config. They are far above any released Qwen2 model (the 72B
/// has hidden 8192, 80 layers, vocabulary 152K, intermediate 29568) and exist only so a corrupt
/// or hostile `config.json` is rejected before it asks for terabytes.
const MAX_HIDDEN: usize = 1 << 16;
const MAX_INTERMEDIATE: usize = 1 << 18;
const MAX_LAYERS: usize = 1 << 10;
const MAX_HEADS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 24;
/// The total parameter count a config may describe (about 1e12).
const MAX_PARAMETERS: u128 = 1 << 40;

/// Why a `config.json` cannot describe a model we can build.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config.json is not valid JSON for a Qwen2 model: {0}")]
    Json(#[from] serde_json::Error),
    #[error("config.json: {0}")]
    Invalid(String),
}

/// The `rope_parameters` object of transformers 5.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Only `"default"` (plain RoPE) is implemented; Qwen2.5 ships it.
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// The subset of a Hugging Face `Qwen2Config` that defines the computation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Qwen2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: number of key/value heads (equal to the query heads when absent,
    /// as in transformers).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; transformers derives it as `hidden_size / num_attention_heads` when absent.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// transformers-4 style RoPE base.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers-5 style RoPE settings.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// transformers-4 style RoPE scaling; only `null` is supported.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// The output head reuses the input embedding matrix when true (small Qwen2 models); the 7B
    /// ByteCraft checkpoint has its own `lm_head.weight`.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Sliding-window attention is off in every Qwen2.5 release; refused when on.
    #[serde(default)]
    pub use_sliding_window: bool,
    #[serde(default)]
    pub bos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_hidden_act() -> String {
    "silu".to_string()
}
fn default_max_position_embeddings() -> usize {
    32768
}

impl Qwen2Config {
    /// Parse and validate a `config.json` text.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The RoPE base: transformers-5 `rope_parameters.rope_theta`, else the top-level
    /// `rope_theta`, else transformers' Qwen2 default of 10000.
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// Number of parameters the checkpoint must hold (embedding, layers, final norm, head).
    pub fn parameter_count(&self) -> u128 {
        let h = self.hidden_size as u128;
        let q = (self.num_attention_heads * self.head_dim()) as u128;
        let kv = (self.kv_heads() * self.head_dim()) as u128;
        let i = self.intermediate_size as u128;
        let v = self.vocab_size as u128;
        let attention = h * q + q + 2 * (h * kv + kv) + q * h;
        let mlp = 3 * h * i;
        let layer = attention + mlp + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers as u128 * layer + h + head
    }

    /// Reject configs we cannot or should not build, before any tensor is allocated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        let check = |name: &str, value: usize, max: usize| {
            if value == 0 || value > max {
                Err(ConfigError::Invalid(format!(
                    "{name} = {value} is outside 1..={max}"
                )))
            } else {
                Ok(())
            }
        };
        check("vocab_size", self.vocab_size, MAX_VOCAB)?;
        check("hidden_size", self.hidden_size, MAX_HIDDEN)?;
        check(
            "intermediate_size",
            self.intermediate_size,
            MAX_INTERMEDIATE,
        )?;
        check("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS)?;
        check("num_attention_heads", self.num_attention_heads, MAX_HEADS)?;
        check("num_key_value_heads", self.kv_heads(), MAX_HEADS)?;
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        check("head_dim", self.head_dim(), MAX_HIDDEN)?;
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return bad(format!(
                "rms_norm_eps {} is not a small positive number",
                self.rms_norm_eps
            ));
        }
        let theta = self.rope_theta();
        if !(theta.is_finite() && theta > 1.0) {
            return bad(format!(
                "rope_theta {theta} must be a finite number above 1"
            ));
        }
        if let Some(kind) = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_type.as_deref())
            && kind != "default"
        {
            return bad(format!(
                "rope_type `{kind}` is not supported (only `default`)"
            ));
        }
        if let Some(scaling) = &self.rope_scaling
            && !scaling.is_null()
        {
            return bad(format!(
                "rope_scaling {scaling} is not supported (only null)"
            ));
        }
        if self.hidden_act != "silu" {
            return bad(format!(
                "hidden_act `{}` is not supported (only `silu`)",
                self.hidden_act
            ));
        }
        if self.use_sliding_window {
            return bad("use_sliding_window = true is not supported".to_string());
        }
        let params = self.parameter_count();
        if params > MAX_PARAMETERS {
            return bad(format!(
                "the config describes {params} parameters, more than the {MAX_PARAMETERS} accepted"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = r#"{
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": 260080, "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "rope_scaling": null,
        "tie_word_embeddings": false, "hidden_act": "silu", "max_position_embeddings": 32768,
        "use_sliding_window": false, "sliding_window": 131072, "torch_dtype": "bfloat16"
    }"#;

    #[test]
    fn reads_transformers4_config_of_the_7b() {
        let c = Qwen2Config::from_json(V4).unwrap();
        assert_eq!(c.rope_theta(), 1e6);
        assert_eq!(c.kv_heads(), 4);
        assert_eq!(c.head_dim(), 128);
        assert!(!c.tie_word_embeddings);
        // Qwen2.5-7B-Instruct is 7.6B; the ByteCraft vocabulary adds 108K rows to both
        // embedding and head: the card's 8.39B.
        let p = c.parameter_count() as f64 / 1e9;
        assert!((p - 8.39).abs() < 0.01, "{p}");
    }

    #[test]
    fn reads_transformers5_rope_parameters() {
        let text = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2,
            "rope_parameters": {"rope_theta": 12345.0, "rope_type": "default"},
            "tie_word_embeddings": true}"#;
        let c = Qwen2Config::from_json(text).unwrap();
        assert_eq!(c.rope_theta(), 12345.0);
        assert_eq!(c.kv_heads(), 2);
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn rejects_absurd_or_unsupported_configs() {
        let base: serde_json::Value = serde_json::from_str(V4).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut v = base.clone();
            v[key] = value;
            Qwen2Config::from_json(&v.to_string())
                .unwrap_err()
                .to_string()
        };
        assert!(with("hidden_size", 0.into()).contains("hidden_size"));
        assert!(with("vocab_size", (1u64 << 40).into()).contains("vocab_size"));
        assert!(with("num_key_value_heads", 5.into()).contains("multiple"));
        assert!(with("num_attention_heads", 27.into()).contains("divisible"));
        assert!(with("rope_scaling", serde_json::json!({"type": "yarn"})).contains("rope_scaling"));
        assert!(with("hidden_act", "gelu".into()).contains("hidden_act"));
        assert!(with("hidden_size", "big".into()).contains("not valid JSON"));
        let mut v = base.clone();
        v["intermediate_size"] = (1u64 << 18).into();
        v["num_hidden_layers"] = 1024.into();
        let huge = Qwen2Config::from_json(&v.to_string())
            .unwrap_err()
            .to_string();
        assert!(huge.contains("parameters"), "{huge}");
    }
}
