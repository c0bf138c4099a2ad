//! The byte tokens of a ByteCraft `tokenizer.json`.
//!
//! The released tokenizer is Qwen's with the byte vocabulary appended as added tokens whose
//! content is `Ŧ` followed by alphabet characters (e.g. `Ŧō`, the end-of-file token). Ids are
//! always looked up by content, never hard-coded: our own tokenizers number them differently.
//! Only `added_tokens` is read here; the text BPE of the base vocabulary is not needed to
//! decode generations.

use std::collections::HashMap;

use serde::Deserialize;

use super::alphabet::{Alphabet, AlphabetError, DecodedFile};

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer.json is not valid JSON with `added_tokens`: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tokenizer.json has no byte tokens (added tokens starting with `Ŧ`)")]
    NoByteTokens,
    #[error("tokenizer.json has no token `{0}`")]
    MissingToken(String),
    #[error("token id {0} is not a byte token")]
    NotAByteToken(u32),
    #[error("tokenizer.json gives id {id} to two added tokens, `{first}` and `{second}`")]
    DuplicateId {
        id: u32,
        first: String,
        second: String,
    },
    #[error(transparent)]
    Alphabet(#[from] AlphabetError),
}

#[derive(Deserialize)]
struct TokenizerFile {
    added_tokens: Vec<AddedToken>,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
}

/// Every added token by content, and the byte tokens among them.
#[derive(Clone, Debug)]
pub struct ByteTokens {
    by_content: HashMap<String, u32>,
    /// Byte-token id -> its alphabet text without the prefix.
    byte_text: HashMap<u32, String>,
    /// Sorted byte-token ids: the allowed set while sampling.
    byte_ids: Vec<u32>,
}

impl ByteTokens {
    pub fn from_tokenizer_json(text: &str) -> Result<Self, TokenizerError> {
        let file: TokenizerFile = serde_json::from_str(text)?;
        let alphabet = Alphabet::get();
        let is_alphabet = |c: char| {
            alphabet.byte_of(c).is_some()
                || c == alphabet.bos
                || c == alphabet.eos
                || c == alphabet.pad
        };
        let mut by_content = HashMap::with_capacity(file.added_tokens.len());
        let mut byte_text = HashMap::new();
        // One id, one content: a second token on the same id would decode as the other one.
        let mut content_of: HashMap<u32, &str> = HashMap::with_capacity(file.added_tokens.len());
        for token in &file.added_tokens {
            if let Some(first) = content_of.insert(token.id, &token.content) {
                return Err(TokenizerError::DuplicateId {
                    id: token.id,
                    first: first.to_string(),
                    second: token.content.clone(),
                });
            }
        }
        for token in file.added_tokens {
            if let Some(rest) = token.content.strip_prefix(alphabet.token_prefix)
                && !rest.is_empty()
                && rest.chars().all(is_alphabet)
            {
                byte_text.insert(token.id, rest.to_string());
            }
            by_content.insert(token.content, token.id);
        }
        if byte_text.is_empty() {
            return Err(TokenizerError::NoByteTokens);
        }
        let mut byte_ids: Vec<u32> = byte_text.keys().copied().collect();
        byte_ids.sort_unstable();
        Ok(Self {
            by_content,
            byte_text,
            byte_ids,
        })
    }

    /// The id of the added token with exactly this content.
    pub fn id_of(&self, content: &str) -> Result<u32, TokenizerError> {
        self.by_content
            .get(content)
            .copied()
            .ok_or_else(|| TokenizerError::MissingToken(content.to_string()))
    }

    /// The end-of-file byte token (`Ŧō`), the reference's stop token.
    pub fn eos_id(&self) -> Result<u32, TokenizerError> {
        let a = Alphabet::get();
        self.id_of(&a.special_content(a.eos))
    }

    /// The start-of-file byte token (`ŦŌ`), the first token the model is expected to emit.
    pub fn bos_id(&self) -> Result<u32, TokenizerError> {
        let a = Alphabet::get();
        self.id_of(&a.special_content(a.bos))
    }

    /// The padding byte token (`Ŧŉ`), which fills batches past a sequence's end.
    pub fn pad_id(&self) -> Result<u32, TokenizerError> {
        let a = Alphabet::get();
        self.id_of(&a.special_content(a.pad))
    }

    /// All byte-token ids, sorted.
    pub fn byte_ids(&self) -> &[u32] {
        &self.byte_ids
    }

    /// The alphabet text of a byte token, without its prefix.
    pub fn text_of(&self, id: u32) -> Option<&str> {
        self.byte_text.get(&id).map(String::as_str)
    }

    /// Decode generated ids to a file. Every id must be a byte token (sampling is restricted
    /// to them); the reference's decoding then applies (between bos and eos).
    pub fn decode(&self, ids: &[u32]) -> Result<DecodedFile, TokenizerError> {
        let mut text = String::new();
        for &id in ids {
            text.push_str(self.text_of(id).ok_or(TokenizerError::NotAByteToken(id))?);
        }
        Ok(Alphabet::get().decode_generation(&text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The released layout in miniature: Qwen specials first, byte tokens after them.
    const TOKENIZER: &str = r#"{
        "version": "1.0",
        "added_tokens": [
            {"id": 151643, "content": "<|endoftext|>", "special": true},
            {"id": 151644, "content": "<|im_start|>", "special": true},
            {"id": 151645, "content": "<|im_end|>", "special": true},
            {"id": 151665, "content": "ŦŌ", "special": false},
            {"id": 151666, "content": "ŦǻȌȈ", "special": false},
            {"id": 151667, "content": "ŦA", "special": false},
            {"id": 151668, "content": "Ŧő000", "special": false},
            {"id": 151669, "content": "Ŧō", "special": false}
        ],
        "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}
    }"#;

    #[test]
    fn finds_byte_tokens_by_content_and_decodes_a_file() {
        let t = ByteTokens::from_tokenizer_json(TOKENIZER).unwrap();
        assert_eq!(t.byte_ids(), &[151665, 151666, 151667, 151668, 151669]);
        assert_eq!(t.eos_id().unwrap(), 151669);
        assert_eq!(t.bos_id().unwrap(), 151665);
        assert_eq!(t.id_of("<|im_end|>").unwrap(), 151645);
        let file = t
            .decode(&[151665, 151666, 151667, 151668, 151669, 151667])
            .unwrap();
        assert_eq!(file.bytes, b"FWS\x0a\x40\x00\x00\x00");
        assert!(file.complete);
        assert!(matches!(
            t.decode(&[151644]),
            Err(TokenizerError::NotAByteToken(151644))
        ));
        let no_bytes = r#"{"added_tokens": [{"id": 1, "content": "<|im_end|>"}]}"#;
        assert!(matches!(
            ByteTokens::from_tokenizer_json(no_bytes),
            Err(TokenizerError::NoByteTokens)
        ));
    }

    /// Found by `fuzz/fuzz_targets/tokenizer_load.rs`: two added tokens on one id made the
    /// end-of-file token decode as another byte token's text (an extra byte, no eos).
    #[test]
    fn two_tokens_on_one_id_are_refused() {
        let text = r#"{"added_tokens": [
            {"id": 10, "content": "ŦŌ"}, {"id": 50, "content": "Ŧō"},
            {"id": 11, "content": "ŦA"}, {"id": 50, "content": "ŦȈ"}]}"#;
        let err = ByteTokens::from_tokenizer_json(text).unwrap_err();
        assert!(
            matches!(&err, TokenizerError::DuplicateId { id: 50, first, second }
                if first == "Ŧō" && second == "ŦȈ"),
            "{err}"
        );
        assert!(err.to_string().contains("id 50"), "{err}");
    }
}
