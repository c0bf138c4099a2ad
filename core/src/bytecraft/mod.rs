//! ByteCraft: byte alphabet, tokenizer, Qwen2 model, sampler, prompts.
//!
//! The model half is a Qwen2 decoder in Burn, generic over the backend, that loads Hugging Face
//! checkpoints through a [`weights::TensorSource`] (core never opens files): [`config`] reads
//! `config.json`, one module per part builds the network, [`decode`] runs it.

pub mod alphabet;
pub mod attention;
pub mod bpe;
pub mod byte_tokens;
pub mod config;
pub mod constrained;
pub mod decode;
pub mod decoder_layer;
pub mod embedding;
pub mod export;
pub mod file_codec;
pub mod generate;
pub mod hf_layout;
pub mod init;
pub mod kv_cache;
pub mod manifest;
pub mod mlp;
pub mod model;
pub mod muon;
pub mod prompts;
pub mod rms_norm;
pub mod rope;
pub mod sampler;
pub mod slot_cache;
pub mod stream;
pub mod text_bpe;
pub mod train;
pub mod weights;

#[cfg(test)]
mod parity_tests;

pub use alphabet::{Alphabet, AlphabetError, DecodedFile};
pub use byte_tokens::{ByteTokens, TokenizerError};
pub use config::{ConfigError, Qwen2Config};
pub use decode::{InputError, greedy, logits};
pub use kv_cache::KvCache;
pub use model::Qwen2ForCausalLM;
pub use stream::SampleStream;
pub use text_bpe::{TextBpe, TextBpeError};
pub use weights::{
    OwnedTensors, RawTensor, SafetensorsShards, TensorSource, WeightDType, WeightError,
};
