//! Files <-> byte-token ids: `bos`, the file's pieces, `eos`, as a ByteCraft model reads and
//! writes them.
//!
//! Our own tokenizers come with their merges (`byte_merges.json`) and encode exactly as their
//! trainer segmented the corpus. The released checkpoint ships only its byte tokens, so files
//! are encoded for it greedily, longest token first.

use super::alphabet::Alphabet;
use super::bpe::{BpeEncoder, ByteBpe, LongestMatch};
use super::byte_tokens::{ByteTokens, TokenizerError};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Tokens(#[from] TokenizerError),
    #[error("byte_merges.json: {0}")]
    Merges(#[from] super::bpe::BpeError),
    #[error("no byte token covers byte 0x{byte:02x} at offset {offset}")]
    Uncovered { offset: usize, byte: u8 },
}

enum Encoder {
    Merges {
        bpe: BpeEncoder,
        token_of_piece: Vec<u32>,
    },
    Longest(LongestMatch),
}

pub struct FileCodec {
    bos: u32,
    eos: u32,
    encoder: Encoder,
}

impl FileCodec {
    /// Encode with `merges` when given (every piece must be a token), else longest-first.
    pub fn new(tokens: &ByteTokens, merges: Option<ByteBpe>) -> Result<Self, CodecError> {
        let alphabet = Alphabet::get();
        let bos = tokens.bos_id()?;
        let eos = tokens.eos_id()?;
        let encoder = match merges {
            Some(bpe) => {
                bpe.validate()?;
                let token_of_piece = bpe
                    .pieces()
                    .iter()
                    .map(|p| tokens.id_of(&alphabet.token_content(p)))
                    .collect::<Result<Vec<_>, _>>()?;
                Encoder::Merges {
                    bpe: bpe.encoder(),
                    token_of_piece,
                }
            }
            None => Encoder::Longest(LongestMatch::new(tokens.byte_ids().iter().filter_map(
                |&id| {
                    let text = tokens.text_of(id)?;
                    let bytes = alphabet.text_to_bytes(text).ok()?;
                    (!bytes.is_empty()).then_some((bytes, id))
                },
            ))),
        };
        Ok(Self { bos, eos, encoder })
    }

    /// Ids of `bos`, `file`'s pieces, `eos`.
    pub fn encode(&self, file: &[u8]) -> Result<Vec<u32>, CodecError> {
        let mut ids = vec![self.bos];
        match &self.encoder {
            Encoder::Merges {
                bpe,
                token_of_piece,
            } => ids.extend(
                bpe.encode(file)
                    .into_iter()
                    .map(|p| token_of_piece[p as usize]),
            ),
            Encoder::Longest(lm) => {
                ids.extend(lm.encode(file).map_err(|offset| CodecError::Uncovered {
                    offset,
                    byte: file[offset],
                })?)
            }
        }
        ids.push(self.eos);
        Ok(ids)
    }

    pub fn bos(&self) -> u32 {
        self.bos
    }

    pub fn eos(&self) -> u32 {
        self.eos
    }
}

#[cfg(test)]
mod tests {
    use super::super::bpe::{BpeTrainConfig, train};
    use super::*;

    /// A tokenizer.json holding the byte tokens of `bpe` (plus specials), ids from 10 on.
    fn tokenizer_json(bpe: &ByteBpe) -> String {
        let a = Alphabet::get();
        let mut contents: Vec<String> =
            [a.pad, a.bos, a.eos].map(|c| a.special_content(c)).to_vec();
        contents.extend(bpe.pieces().iter().map(|p| a.token_content(p)));
        let added: Vec<serde_json::Value> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| serde_json::json!({"id": 10 + i, "content": c, "special": false}))
            .collect();
        serde_json::json!({ "added_tokens": added }).to_string()
    }

    #[test]
    fn encode_then_decode_gives_the_file_back_both_ways() {
        let file = b"FWS\x0a\x20\x00\x00\x00\x78\x00\x05\x5f\x00\x00\x0f\xa0\x00\x40\x00\x00\x00"
            .repeat(3);
        let bpe = train(
            [file.as_slice()],
            &BpeTrainConfig {
                merges: 12,
                ..Default::default()
            },
        );
        let tokens = ByteTokens::from_tokenizer_json(&tokenizer_json(&bpe)).unwrap();
        for merges in [Some(bpe.clone()), None] {
            let codec = FileCodec::new(&tokens, merges).unwrap();
            let ids = codec.encode(&file).unwrap();
            assert_eq!(ids[0], codec.bos());
            assert_eq!(*ids.last().unwrap(), codec.eos());
            assert!(ids.len() < file.len() / 2);
            let decoded = tokens.decode(&ids).unwrap();
            assert_eq!(decoded.bytes, file);
        }
    }

    #[test]
    fn a_piece_missing_from_the_vocabulary_is_named() {
        let file = b"abababab";
        let bpe = train(
            [file.as_slice()],
            &BpeTrainConfig {
                merges: 2,
                ..Default::default()
            },
        );
        let fewer = ByteBpe { merges: vec![] };
        let tokens = ByteTokens::from_tokenizer_json(&tokenizer_json(&fewer)).unwrap();
        let err = FileCodec::new(&tokens, Some(bpe)).err().unwrap();
        assert!(err.to_string().contains("has no token"), "{err}");
    }
}
