//! A checkpoint's `tokenizer.json` on native targets: the full text tokenizer (Hugging Face's
//! `tokenizers` crate, to encode prompts exactly as transformers does) plus the byte tokens
//! found by content (core's [`ByteTokens`]).
//!
//! Prompts are rendered with the checkpoint's own chat template (`tokenizer_config.json` →
//! `chat_template`, executed by [`super::chat_template`] as transformers does), then
//! `Bytes: `; a checkpoint without a template gets core's built-in Qwen2.5 ChatML
//! ([`chat_text`]). A template that does not compile is an error when the tokenizer is opened,
//! one that fails to render (e.g. `raise_exception`) an error for that prompt.
//!
//! [`chat_text`]: gamegen_core::bytecraft::prompts::chat_text

use std::path::{Path, PathBuf};

use gamegen_core::bytecraft::bpe::ByteBpe;
use gamegen_core::bytecraft::file_codec::{CodecError, FileCodec};
use gamegen_core::bytecraft::{ByteTokens, TokenizerError};

use gamegen_core::bytecraft::prompts::{BYTES_SUFFIX, chat_text};

use super::chat_template::{ChatTemplate, Message, SpecialTokens, template_from_config};
use super::tokenizer_train::{MERGES_FILE, MERGES_FORMAT, MergesFile};

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
    #[error("{path}")]
    Codec { path: PathBuf, source: CodecError },
    #[error("{path}: the chat template does not compile: {why}")]
    TemplateSyntax { path: PathBuf, why: String },
    #[error("{path}: the chat template failed to render: {why}")]
    TemplateRender { path: PathBuf, why: String },
}

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    pub bytes: ByteTokens,
    /// The checkpoint's Jinja chat template, when `tokenizer_config.json` has one.
    pub chat_template: Option<ChatTemplate>,
    /// The byte BPE's merges (`byte_merges.json`), present for tokenizers we trained.
    pub merges: Option<ByteBpe>,
    dir: PathBuf,
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
        let chat_template = match std::fs::read_to_string(&config_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(TextTokenizerError::Io {
                    path: config_path,
                    source,
                });
            }
            Ok(text) => {
                let config: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| TextTokenizerError::Parse {
                        path: config_path.clone(),
                        why: e.to_string(),
                    })?;
                let syntax = |why: String| TextTokenizerError::TemplateSyntax {
                    path: config_path.clone(),
                    why,
                };
                match template_from_config(&config).map_err(syntax)? {
                    None => None,
                    Some(source) => Some(
                        ChatTemplate::new(source, SpecialTokens::from_config(&config))
                            .map_err(syntax)?,
                    ),
                }
            }
        };
        let merges_path = dir.join(MERGES_FILE);
        let merges = if merges_path.is_file() {
            let text =
                std::fs::read_to_string(&merges_path).map_err(|source| TextTokenizerError::Io {
                    path: merges_path.clone(),
                    source,
                })?;
            let file: MergesFile =
                serde_json::from_str(&text).map_err(|e| TextTokenizerError::Parse {
                    path: merges_path.clone(),
                    why: e.to_string(),
                })?;
            if file.format != MERGES_FORMAT {
                return Err(TextTokenizerError::Parse {
                    path: merges_path,
                    why: format!("format `{}`, expected `{MERGES_FORMAT}`", file.format),
                });
            }
            Some(file.bpe)
        } else {
            None
        };
        Ok(Self {
            inner,
            bytes,
            chat_template,
            merges,
            dir: dir.to_path_buf(),
        })
    }

    /// Files <-> ids for this tokenizer: its merges when it has them, else longest-first.
    pub fn file_codec(&self) -> Result<FileCodec, TextTokenizerError> {
        FileCodec::new(&self.bytes, self.merges.clone()).map_err(|source| {
            TextTokenizerError::Codec {
                path: self.dir.join(MERGES_FILE),
                source,
            }
        })
    }

    /// The model input for one user prompt: the chat template (the checkpoint's, else the
    /// built-in ChatML) with the generation prompt, then `Bytes: `. `system` adds a system turn
    /// first (without one, Qwen's template puts its default system prompt).
    pub fn chat_text(
        &self,
        user: &str,
        system: Option<&str>,
    ) -> Result<String, TextTokenizerError> {
        let Some(template) = &self.chat_template else {
            return Ok(chat_text(user, system));
        };
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = system {
            messages.push(Message {
                role: "system".into(),
                content: system.into(),
            });
        }
        messages.push(Message {
            role: "user".into(),
            content: user.into(),
        });
        let text =
            template
                .render(&messages, true)
                .map_err(|why| TextTokenizerError::TemplateRender {
                    path: self.dir.join(TOKENIZER_CONFIG_FILE),
                    why,
                })?;
        Ok(text + BYTES_SUFFIX)
    }

    /// Total vocabulary (text tokens and added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
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

    /// `tests/fixtures/bytecraft/tokenizer_layout`: transformers rendered the fixture's chat
    /// template and encoded it; executing that template, and the built-in ChatML, must give the
    /// same text and ids.
    #[test]
    fn chat_text_and_ids_match_transformers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bytecraft/tokenizer_layout");
        let tok = TextTokenizer::open(&dir).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        for case in expected["prompts"].as_array().unwrap() {
            let prompt = case["prompt"].as_str().unwrap();
            let text = tok.chat_text(prompt, None).unwrap();
            assert_eq!(text, case["chat_text"].as_str().unwrap());
            assert_eq!(chat_text(prompt, None), text);
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
                .as_ref()
                .unwrap()
                .source()
                .contains("<|im_start|>")
        );
    }

    /// Texts that exercise every branch of the GPT-2 split and of added-token matching.
    fn awkward_texts() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            " ",
            "   ",
            "a",
            "Hello world, it's 2024! They'll've we'd I'm you're THEY'RE 'tis",
            "tabs\tand\nnewlines\r\n\n  indented\n\t\n",
            "trailing spaces   ",
            "   leading spaces",
            "multiple   spaces  between words",
            "digits 1234567890 and 3.14159, -42, 1e10, 0x1F",
            "punctuation!!! ??? ... --- ((( ))) [] {} <> @#$%^&*_+=|\\/~`",
            "Unicode: café naïve Ångström 日本語のゲーム 한국어 العربية emoji 🎮🕹️👾",
            "spaces: a\u{a0}b\u{2003}c\u{3000}d\u{85}e\u{200b}f\u{180e}g\u{feff}h",
            "combining: e\u{301} a\u{308} \u{915}\u{94d}\u{937} \u{2160}\u{2161} \u{ff11}",
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nBytes: ",
            "<|im_start|><|im_end|><|endoftext|>text<|im_end|",
            "byte tokens in text: ŦŌ Ŧō ŦA Ŧ Ŧő000 ŦŌŦō",
            "- Frame rate: 24.0\n- Resolution: 550x400\n- Size: 3KB",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for i in 0..120 {
            let s = gamegen_core::swf::synth::synthesize(777, i);
            texts.push(chat_text(&s.record.prompt, None));
            texts.extend(s.record.paraphrases.iter().map(|p| chat_text(p, None)));
        }
        texts.push(chat_text("make pong", Some("A custom system prompt.")));
        texts
    }

    /// The browser's pure-Rust encoder (`gamegen_core::bytecraft::TextBpe`) must give exactly
    /// the ids of Hugging Face's `tokenizers` on every tokenizer we ship or test with.
    #[test]
    fn pure_rust_encoder_matches_tokenizers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let texts = awkward_texts();
        for dir in [
            "models/bytecraft-mini",
            "tests/fixtures/bytecraft/tokenizer_layout",
            "tests/fixtures/bytecraft/exported",
        ] {
            let dir = root.join(dir);
            let reference = TextTokenizer::open(&dir).unwrap();
            let json = std::fs::read_to_string(dir.join(TOKENIZER_FILE)).unwrap();
            let ours = gamegen_core::bytecraft::TextBpe::from_tokenizer_json(&json).unwrap();
            let mut tokens = 0;
            for text in &texts {
                let want = reference.encode(text).unwrap();
                assert_eq!(ours.encode(text), want, "{}: {text:?}", dir.display());
                tokens += want.len();
            }
            assert!(tokens > 10_000, "{}: only {tokens} tokens", dir.display());
        }
    }
}
