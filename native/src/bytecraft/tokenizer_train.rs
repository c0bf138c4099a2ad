//! `gamegen bytecraft tokenizer train`: a tokenizer for our own ByteCraft models, in the
//! released checkpoint's layout so every other command treats both alike.
//!
//! - Prompt text: a byte-level BPE (Hugging Face `tokenizers`' own trainer, the same model
//!   family as Qwen's) learnt on the chat-rendered prompts of the corpus, plus the ChatML
//!   specials `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`.
//! - File bytes: our byte BPE ([`gamegen_core::bytecraft::bpe`]) over the `FWS` files, written
//!   as added tokens `Ŧ` + alphabet text after the text vocabulary (pad, bos, eos, the 256
//!   bytes, then the merges in rank order), with the merges themselves in `byte_merges.json` so
//!   files are encoded exactly as the trainer segmented them.
//!
//! The result is a normal `tokenizer.json` (transformers / `tokenizers` load it) plus a
//! `tokenizer_config.json` with a ChatML chat template.

use std::path::Path;

use gamegen_core::bytecraft::bpe::{self, BpeTrainConfig, ByteBpe};
use gamegen_core::bytecraft::prompts::chat_text;
use gamegen_core::bytecraft::{Alphabet, ByteTokens};
use serde::{Deserialize, Serialize};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::corpus::TrainingFile;
use super::tokenizer::{TOKENIZER_CONFIG_FILE, TOKENIZER_FILE};
use crate::fsutil::write_atomic;

pub const MERGES_FILE: &str = "byte_merges.json";
pub const CHAT_SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Qwen2.5's ChatML for one conversation, default system prompt when none is given.
const CHAT_TEMPLATE: &str = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

#[derive(Clone, Debug)]
pub struct TokenizerOptions {
    /// Byte tokens in total: pad, bos, eos, the 256 bytes and the merges.
    pub byte_vocab: usize,
    /// Text tokens (byte-level BPE over prompts, specials included).
    pub text_vocab: usize,
    pub max_piece_bytes: usize,
}

/// `byte_merges.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergesFile {
    pub format: String,
    pub max_piece_bytes: usize,
    #[serde(flatten)]
    pub bpe: ByteBpe,
}

pub const MERGES_FORMAT: &str = "gamegen-byte-bpe/1";

#[derive(Clone, Debug, Serialize)]
pub struct TokenizerReport {
    pub files: usize,
    pub bytes: usize,
    /// Byte tokens over all files, bos and eos excluded.
    pub tokens: usize,
    pub bytes_per_token: f64,
    pub longest_piece: usize,
    pub vocab_size: usize,
    pub text_vocab: usize,
    pub byte_tokens: usize,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainTokenizerError {
    #[error("--vocab must be at least 259 (pad, bos, eos and the 256 bytes), got {0}")]
    VocabTooSmall(usize),
    #[error("the text tokenizer: {0}")]
    Text(String),
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Learn both vocabularies on `files` and write the tokenizer into `out`.
pub fn train(
    files: &[TrainingFile],
    opts: &TokenizerOptions,
    out: &Path,
) -> Result<TokenizerReport, TrainTokenizerError> {
    if opts.byte_vocab < 259 {
        return Err(TrainTokenizerError::VocabTooSmall(opts.byte_vocab));
    }
    let start = std::time::Instant::now();
    let config = BpeTrainConfig {
        merges: opts.byte_vocab - 259,
        max_piece_bytes: opts.max_piece_bytes,
        min_count: 2,
    };
    let byte_bpe = bpe::train(files.iter().map(|f| f.fws.as_slice()), &config);

    let mut tokenizer = text_tokenizer(files, opts.text_vocab)?;
    let text_vocab = tokenizer.get_vocab_size(true);
    let a = Alphabet::get();
    let pieces = byte_bpe.pieces();
    let mut byte_contents: Vec<String> =
        [a.pad, a.bos, a.eos].map(|c| a.special_content(c)).to_vec();
    byte_contents.extend(pieces.iter().map(|p| a.token_content(p)));
    let added: Vec<AddedToken> = byte_contents
        .iter()
        .map(|c| AddedToken::from(c.clone(), false).normalized(false))
        .collect();
    tokenizer.add_tokens(&added);
    let json = tokenizer
        .to_string(false)
        .map_err(|e| TrainTokenizerError::Text(e.to_string()))?;

    // Measure on the corpus with the encoder the models will use.
    let encoder = byte_bpe.encoder();
    let tokens: usize = files.iter().map(|f| encoder.encode(&f.fws).len()).sum();
    let bytes: usize = files.iter().map(|f| f.fws.len()).sum();
    let longest_piece = pieces.iter().map(Vec::len).max().unwrap_or(1);
    let merges = MergesFile {
        format: MERGES_FORMAT.into(),
        max_piece_bytes: opts.max_piece_bytes,
        bpe: byte_bpe,
    };
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        write_atomic(&path, bytes).map_err(|source| TrainTokenizerError::Write { path, source })
    };
    std::fs::create_dir_all(out).map_err(|source| TrainTokenizerError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    write(
        MERGES_FILE,
        serde_json::to_string(&merges).expect("json").as_bytes(),
    )?;
    write(TOKENIZER_FILE, json.as_bytes())?;
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": false,
    });
    write(
        TOKENIZER_CONFIG_FILE,
        serde_json::to_string_pretty(&config)
            .expect("json")
            .as_bytes(),
    )?;
    // The written file must read back as a ByteCraft tokenizer.
    ByteTokens::from_tokenizer_json(&json).map_err(|e| TrainTokenizerError::Text(e.to_string()))?;
    Ok(TokenizerReport {
        files: files.len(),
        bytes,
        tokens,
        bytes_per_token: bytes as f64 / tokens.max(1) as f64,
        longest_piece,
        vocab_size: text_vocab + byte_contents.len(),
        text_vocab,
        byte_tokens: byte_contents.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Byte-level BPE over the chat-rendered prompts (so the ChatML frame and the system prompt
/// become a handful of tokens).
fn text_tokenizer(files: &[TrainingFile], vocab: usize) -> Result<Tokenizer, TrainTokenizerError> {
    let specials: Vec<AddedToken> = CHAT_SPECIALS
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let texts: Vec<String> = files
        .iter()
        .flat_map(|f| f.prompts.iter().map(|p| chat_text(p, None)))
        .collect();
    tokenizer
        .train(&mut trainer, texts.iter())
        .map_err(|e| TrainTokenizerError::Text(e.to_string()))?;
    Ok(tokenizer)
}
