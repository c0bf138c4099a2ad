//! Prompt-text encoding without Hugging Face's `tokenizers` crate: a byte-level BPE encoder for
//! the `tokenizer.json` layout our tokenizer trainer writes (GPT-2 style: no normalizer, a
//! `ByteLevel` pre-tokenizer with its regex, a `BPE` model, added tokens matched first).
//!
//! Natively the project encodes prompts with `tokenizers` (it wraps the C library Oniguruma,
//! which does not build for wasm32); the browser studio needs the same ids, so this module
//! re-implements exactly the parts of that pipeline our files use and refuses any other layout
//! with an error naming the unsupported part. `gamegen-native` tests it id for id against
//! `tokenizers` on the shipped model, the fixtures and awkward text (Unicode spaces, digits,
//! contractions, tokens embedded in text).
//!
//! The pipeline, as `tokenizers` runs it for `encode(text, add_special_tokens = false)`:
//! 1. added tokens are cut out of the raw text, leftmost-longest (those with `normalized: false`
//!    first, then the rest in what remains; there is no normalizer, so both passes see raw text);
//! 2. each remaining piece is split by the GPT-2 pattern
//!    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
//! 3. each split's UTF-8 bytes become GPT-2's printable byte characters;
//! 4. BPE merges apply lowest rank first (leftmost on ties) and the symbols map to ids.

use std::collections::HashMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

/// The GPT-2 split pattern without its one look-ahead (`\s+(?!\S)`), which the `regex` crate
/// does not support; [`pre_tokenize`] applies that rule by hand.
const SPLIT_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

#[derive(Debug, thiserror::Error)]
pub enum TextBpeError {
    #[error("tokenizer.json is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "tokenizer.json uses {0}, which this encoder does not implement (it reads the byte-level \
         BPE layout `gamegen bytecraft tokenizer train` writes)"
    )]
    Unsupported(String),
    #[error("tokenizer.json merge `{0}` is not two symbols of the vocabulary")]
    BadMerge(String),
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    added_tokens: Vec<Added>,
    #[serde(default)]
    normalizer: Value,
    #[serde(default)]
    pre_tokenizer: Value,
    model: Model,
}

#[derive(Deserialize)]
struct Added {
    id: u32,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default = "yes")]
    normalized: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Model {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    vocab: HashMap<String, u32>,
    merges: Vec<Value>,
    #[serde(default)]
    dropout: Option<f64>,
    #[serde(default)]
    unk_token: Option<String>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    ignore_merges: bool,
}

/// A loaded prompt-text encoder.
pub struct TextBpe {
    vocab: HashMap<String, u32>,
    /// (left id, right id) -> (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Added tokens matched on the raw text first, then the ones marked `normalized`.
    raw_added: Vec<(String, u32)>,
    normalized_added: Vec<(String, u32)>,
    ignore_merges: bool,
    split: Regex,
    byte_chars: [char; 256],
}

/// GPT-2's map from bytes to printable characters: printable Latin-1 stays itself, the other
/// bytes take the code points from 256 up, in byte order.
fn byte_chars() -> [char; 256] {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let b = b as u32;
        let code = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).expect("byte characters are valid code points");
    }
    out
}

fn unsupported(what: impl Into<String>) -> TextBpeError {
    TextBpeError::Unsupported(what.into())
}

impl TextBpe {
    /// Parse `tokenizer.json`; any part of the file outside the supported layout is an error.
    pub fn from_tokenizer_json(text: &str) -> Result<Self, TextBpeError> {
        let file: File = serde_json::from_str(text)?;
        if !file.normalizer.is_null() {
            return Err(unsupported("a normalizer"));
        }
        let pre = &file.pre_tokenizer;
        let is_byte_level = pre.get("type").and_then(Value::as_str) == Some("ByteLevel");
        if !is_byte_level {
            return Err(unsupported(format!("pre-tokenizer {pre}")));
        }
        if pre.get("add_prefix_space").and_then(Value::as_bool) == Some(true) {
            return Err(unsupported("ByteLevel add_prefix_space"));
        }
        if pre.get("use_regex").and_then(Value::as_bool) == Some(false) {
            return Err(unsupported("ByteLevel without its regex"));
        }
        let m = file.model;
        if m.kind.as_deref().is_some_and(|k| k != "BPE") {
            return Err(unsupported(format!("model type {:?}", m.kind)));
        }
        if m.dropout.is_some_and(|d| d > 0.0) {
            return Err(unsupported("BPE dropout"));
        }
        if m.continuing_subword_prefix.is_some() || m.end_of_word_suffix.is_some() {
            return Err(unsupported("subword prefixes or suffixes"));
        }
        if m.byte_fallback || m.unk_token.is_some() {
            return Err(unsupported("an unknown token or byte fallback"));
        }
        let mut merges = HashMap::with_capacity(m.merges.len());
        for (rank, merge) in m.merges.iter().enumerate() {
            let (left, right) = match merge {
                Value::String(s) => s
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string())),
                Value::Array(pair) => match pair.as_slice() {
                    [Value::String(a), Value::String(b)] => Some((a.clone(), b.clone())),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| TextBpeError::BadMerge(merge.to_string()))?;
            let id = |s: &str| m.vocab.get(s).copied();
            let merged = format!("{left}{right}");
            match (id(&left), id(&right), id(&merged)) {
                (Some(a), Some(b), Some(c)) => {
                    // A repeated pair keeps its first (best) rank, as `tokenizers` does.
                    merges.entry((a, b)).or_insert((rank as u32, c));
                }
                _ => return Err(TextBpeError::BadMerge(format!("{left} {right}"))),
            }
        }
        let mut raw_added = Vec::new();
        let mut normalized_added = Vec::new();
        for t in file.added_tokens {
            if t.single_word || t.lstrip || t.rstrip {
                return Err(unsupported(format!(
                    "added token `{}` with single_word/lstrip/rstrip",
                    t.content
                )));
            }
            if t.content.is_empty() {
                continue;
            }
            if t.normalized {
                normalized_added.push((t.content, t.id));
            } else {
                raw_added.push((t.content, t.id));
            }
        }
        Ok(Self {
            vocab: m.vocab,
            merges,
            raw_added,
            normalized_added,
            ignore_merges: m.ignore_merges,
            split: Regex::new(SPLIT_PATTERN).expect("the split pattern compiles"),
            byte_chars: byte_chars(),
        })
    }

    /// Token ids of `text`, as transformers' `encode(text, add_special_tokens=False)`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for (piece, added) in split_added(text, &self.raw_added) {
            if let Some(id) = added {
                ids.push(id);
                continue;
            }
            for (inner, added) in split_added(piece, &self.normalized_added) {
                match added {
                    Some(id) => ids.push(id),
                    None => {
                        for word in pre_tokenize(&self.split, inner) {
                            self.encode_word(word, &mut ids);
                        }
                    }
                }
            }
        }
        ids
    }

    /// BPE over one pre-tokenized word.
    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        let mapped: String = word.bytes().map(|b| self.byte_chars[b as usize]).collect();
        if self.ignore_merges
            && let Some(&id) = self.vocab.get(&mapped)
        {
            out.push(id);
            return;
        }
        // Characters missing from the vocabulary are dropped, as `tokenizers` does without an
        // unknown token.
        let mut buf = [0u8; 4];
        let mut symbols: Vec<u32> = mapped
            .chars()
            .filter_map(|c| self.vocab.get(c.encode_utf8(&mut buf) as &str).copied())
            .collect();
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| self.merges.get(&(w[0], w[1])).map(|&(r, id)| (r, i, id)))
                .min_by_key(|&(rank, pos, _)| (rank, pos));
            let Some((_, pos, id)) = best else { break };
            symbols[pos] = id;
            symbols.remove(pos + 1);
        }
        out.extend(symbols);
    }
}

/// Cut `text` at leftmost-longest occurrences of `tokens`: (piece, Some(id)) for a token,
/// (piece, None) for the text between tokens. Empty pieces are left out.
fn split_added<'t>(text: &'t str, tokens: &[(String, u32)]) -> Vec<(&'t str, Option<u32>)> {
    let mut out = Vec::new();
    if tokens.is_empty() {
        if !text.is_empty() {
            out.push((text, None));
        }
        return out;
    }
    let mut plain_start = 0;
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let hit = tokens
            .iter()
            .filter(|(content, _)| rest.starts_with(content.as_str()))
            .max_by_key(|(content, _)| content.len());
        match hit {
            Some((content, id)) => {
                if plain_start < pos {
                    out.push((&text[plain_start..pos], None));
                }
                out.push((&text[pos..pos + content.len()], Some(*id)));
                pos += content.len();
                plain_start = pos;
            }
            None => pos += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if plain_start < text.len() {
        out.push((&text[plain_start..], None));
    }
    out
}

/// Split `text` by the GPT-2 pattern. The regex's last alternative `\s+` stands for both
/// `\s+(?!\S)` and `\s+`: a whitespace run followed by a non-space character gives up its last
/// character (which then starts the next split, e.g. ` word`), unless it is only one character.
fn pre_tokenize<'t>(split: &Regex, text: &'t str) -> Vec<&'t str> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let Some(m) = split.find_at(text, pos) else {
            break;
        };
        let mut end = m.end();
        let s = m.as_str();
        if s.chars().all(char::is_whitespace)
            && text[end..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
            && s.chars().count() > 1
        {
            end -= s.chars().next_back().map_or(0, char::len_utf8);
        }
        if m.start() > pos {
            // Unreachable with this pattern (every character starts some alternative), kept
            // so no text is ever lost.
            out.push(&text[pos..m.start()]);
        }
        out.push(&text[m.start()..end]);
        pos = end;
    }
    if pos < text.len() {
        out.push(&text[pos..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splits(text: &str) -> Vec<&str> {
        pre_tokenize(&Regex::new(SPLIT_PATTERN).unwrap(), text)
    }

    #[test]
    fn gpt2_pre_tokenizer_splits() {
        assert_eq!(
            splits("Hello world, it's 2024!"),
            ["Hello", " world", ",", " it", "'s", " 2024", "!"]
        );
        // A whitespace run before a word leaves its last space to the word.
        assert_eq!(splits("a   b"), ["a", "  ", " b"]);
        assert_eq!(splits("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(splits("end  "), ["end", "  "]);
        assert_eq!(splits("x\ny"), ["x", "\n", "y"]);
        assert_eq!(splits("- Size: 12KB"), ["-", " Size", ":", " 12", "KB"]);
    }

    #[test]
    fn byte_characters_are_gpt2s() {
        let c = byte_chars();
        assert_eq!(c[b'A' as usize], 'A');
        assert_eq!(c[b' ' as usize], 'Ġ');
        assert_eq!(c[b'\n' as usize], 'Ċ');
        assert_eq!(c[0], 'Ā');
        let distinct: std::collections::HashSet<char> = c.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn merges_apply_by_rank_and_added_tokens_win() {
        let json = r#"{
            "added_tokens": [{"id": 9, "content": "<|x|>", "normalized": false},
                             {"id": 10, "content": "<|x|>y", "normalized": false}],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4,
                      "c": 5, "bc": 6},
                      "merges": [["b", "c"], "a b", ["Ġ", "ab"]]}
        }"#;
        let t = TextBpe::from_tokenizer_json(json).unwrap();
        // "abc": (b, c) has the better rank, so "a" + "bc", not "ab" + "c".
        assert_eq!(t.encode("abc"), [0, 6]);
        assert_eq!(t.encode("ab ab"), [2, 4]);
        // Leftmost-longest: `<|x|>y` beats `<|x|>`; unknown characters are dropped.
        assert_eq!(t.encode("a<|x|>yb<|x|>"), [0, 10, 1, 9]);
        assert_eq!(t.encode("z"), Vec::<u32>::new());
    }

    #[test]
    fn other_layouts_are_refused_by_name() {
        let qwen_like = r#"{"normalizer": {"type": "NFC"}, "pre_tokenizer": null,
            "model": {"type": "BPE", "vocab": {}, "merges": []}}"#;
        let e = TextBpe::from_tokenizer_json(qwen_like).err().unwrap();
        assert!(e.to_string().contains("normalizer"), "{e}");
        let bad_merge = r#"{"pre_tokenizer": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}}"#;
        assert!(matches!(
            TextBpe::from_tokenizer_json(bad_merge),
            Err(TextBpeError::BadMerge(_))
        ));
    }
}
