//! A checkpoint's `tokenizer.json` on native targets: the full text tokenizer (Hugging Face's
//! `tokenizers` crate, to encode prompts exactly as transformers does) plus the byte tokens
//! found by content (core's [`ByteTokens`]).
//!
//! Prompts are rendered with core's built-in Qwen2.5 ChatML ([`chat_text`]), which the fixture
//! `tests/fixtures/bytecraft/tokenizer_layout` checks against transformers'
//! `apply_chat_template`; a `chat_template` in `tokenizer_config.json` is recorded but not
//! executed (no Jinja engine here).
//!
//! [`chat_text`]: gamegen_core::bytecraft::prompts::chat_text

use std::path::{Path, PathBuf};

use gamegen_core::bytecraft::{ByteTokens, TokenizerError};

pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

#[derive(Debug, thiserror::Error)]
pub enum TextTokenizerError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("{path}")]
    Bytes {
        path: PathBuf,
        source: TokenizerError,
    },
    #[error("cannot encode the prompt: {0}")]
    Encode(String),
}

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    pub bytes: ByteTokens,
    /// The checkpoint's Jinja chat template, when `tokenizer_config.json` has one.
    pub chat_template: Option<String>,
}

impl TextTokenizer {
    pub fn open(dir: &Path) -> Result<Self, TextTokenizerError> {
        let path = dir.join(TOKENIZER_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| TextTokenizerError::Io {
            path: path.clone(),
            source,
        })?;
        let bytes =
            ByteTokens::from_tokenizer_json(&text).map_err(|source| TextTokenizerError::Bytes {
                path: path.clone(),
                source,
            })?;
        let inner = tokenizers::Tokenizer::from_bytes(text.as_bytes()).map_err(|e| {
            TextTokenizerError::Parse {
                path: path.clone(),
                why: e.to_string(),
            }
        })?;
        let config_path = dir.join(TOKENIZER_CONFIG_FILE);
        let chat_template = std::fs::read_to_string(&config_path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("chat_template")?.as_str().map(str::to_string));
        Ok(Self {
            inner,
            bytes,
            chat_template,
        })
    }

    /// Token ids of `text` as transformers' `encode(text, add_special_tokens=False)`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TextTokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TextTokenizerError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gamegen_core::bytecraft::prompts::chat_text;

    /// `tests/fixtures/bytecraft/tokenizer_layout`: transformers rendered Qwen2.5's chat template
    /// and encoded it; we must give the same text and ids.
    #[test]
    fn chat_text_and_ids_match_transformers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bytecraft/tokenizer_layout");
        let tok = TextTokenizer::open(&dir).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        for case in expected["prompts"].as_array().unwrap() {
            let text = chat_text(case["prompt"].as_str().unwrap(), None);
            assert_eq!(text, case["chat_text"].as_str().unwrap());
            let ids: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(tok.encode(&text).unwrap(), ids);
        }
        assert_eq!(
            tok.bytes.eos_id().unwrap() as u64,
            expected["eos_id"].as_u64().unwrap()
        );
        assert_eq!(
            tok.bytes.byte_ids().len() as u64,
            expected["byte_token_count"].as_u64().unwrap()
        );
        assert!(
            tok.chat_template
                .as_deref()
                .unwrap()
                .contains("<|im_start|>")
        );
    }
}
