//! The ByteCraft byte alphabet: every byte 0..=255 written as one printable character, plus
//! pad/bos/eos specials and the `Ŧ` prefix of byte tokens in the released tokenizer.
//!
//! The table is the reference's (`alphabet.json`, embedded at compile time). A file is written
//! as `bos + chars + eos`; decoding a generation drops every prefix character, keeps the text
//! between bos and eos and maps each character back to its byte.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const TABLE_JSON: &str = include_str!("alphabet.json");

#[derive(Deserialize)]
struct Table {
    bytes: String,
    pad: String,
    bos: String,
    eos: String,
    token_prefix: String,
}

/// The parsed alphabet.
#[derive(Debug)]
pub struct Alphabet {
    chars: [char; 256],
    byte_of: HashMap<char, u8>,
    pub pad: char,
    pub bos: char,
    pub eos: char,
    pub token_prefix: char,
}

/// Why alphabet text cannot be turned back into bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlphabetError {
    #[error("character {ch:?} (U+{:04X}) at character {index} is not a byte character", *ch as u32)]
    NotAByte { ch: char, index: usize },
}

fn single_char(s: &str) -> char {
    let mut it = s.chars();
    let c = it.next().expect("alphabet special is one character");
    assert!(it.next().is_none(), "alphabet special is one character");
    c
}

impl Alphabet {
    /// The reference alphabet (parsed once).
    pub fn get() -> &'static Alphabet {
        static ALPHABET: OnceLock<Alphabet> = OnceLock::new();
        ALPHABET.get_or_init(|| {
            let table: Table = serde_json::from_str(TABLE_JSON).expect("embedded alphabet.json");
            let list: Vec<char> = table.bytes.chars().collect();
            let chars: [char; 256] = list.try_into().expect("256 byte characters");
            let byte_of: HashMap<char, u8> = chars
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, i as u8))
                .collect();
            assert_eq!(byte_of.len(), 256, "byte characters are distinct");
            Alphabet {
                chars,
                byte_of,
                pad: single_char(&table.pad),
                bos: single_char(&table.bos),
                eos: single_char(&table.eos),
                token_prefix: single_char(&table.token_prefix),
            }
        })
    }

    pub fn char_of(&self, byte: u8) -> char {
        self.chars[byte as usize]
    }

    pub fn byte_of(&self, ch: char) -> Option<u8> {
        self.byte_of.get(&ch).copied()
    }

    /// Bytes as alphabet characters, without bos/eos.
    pub fn bytes_to_text(&self, bytes: &[u8]) -> String {
        bytes.iter().map(|&b| self.char_of(b)).collect()
    }

    /// The content of the byte token for `bytes`: the token prefix, then their characters.
    pub fn token_content(&self, bytes: &[u8]) -> String {
        let mut s = String::with_capacity(bytes.len() * 2 + 2);
        s.push(self.token_prefix);
        s.extend(bytes.iter().map(|&b| self.char_of(b)));
        s
    }

    /// The content of the byte token holding one special character (pad, bos or eos).
    pub fn special_content(&self, special: char) -> String {
        format!("{}{special}", self.token_prefix)
    }

    /// A whole file as the model sees it: `bos + chars + eos`.
    pub fn file_to_text(&self, bytes: &[u8]) -> String {
        let mut s = String::with_capacity(bytes.len() * 2 + 4);
        s.push(self.bos);
        s.extend(bytes.iter().map(|&b| self.char_of(b)));
        s.push(self.eos);
        s
    }

    /// Alphabet characters back to bytes; every character must be a byte character.
    pub fn text_to_bytes(&self, text: &str) -> Result<Vec<u8>, AlphabetError> {
        text.chars()
            .enumerate()
            .map(|(index, ch)| {
                self.byte_of(ch)
                    .ok_or(AlphabetError::NotAByte { ch, index })
            })
            .collect()
    }

    /// Decode generated text: drop every token prefix, keep what lies after the first bos (or
    /// from the start when there is none) up to the next eos (or the end: the file was cut
    /// off), then map characters to bytes.
    pub fn decode_generation(&self, text: &str) -> Result<DecodedFile, AlphabetError> {
        let clean: String = text.chars().filter(|&c| c != self.token_prefix).collect();
        let body = match clean.split_once(self.bos) {
            Some((_, after)) => after,
            None => clean.as_str(),
        };
        let (body, complete) = match body.split_once(self.eos) {
            Some((inside, _)) => (inside, true),
            None => (body, false),
        };
        Ok(DecodedFile {
            bytes: self.text_to_bytes(body)?,
            complete,
        })
    }
}

/// The bytes of a generation and whether the eos character closed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFile {
    pub bytes: Vec<u8>,
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_reference() {
        let a = Alphabet::get();
        assert_eq!(a.char_of(0), '0');
        assert_eq!(a.char_of(10), 'A');
        assert_eq!(a.char_of(36), 'a');
        assert_eq!(a.char_of(62), 'Ŏ');
        assert_eq!(a.char_of(255), 'ň');
        assert_eq!((a.pad, a.bos, a.eos, a.token_prefix), ('ŉ', 'Ō', 'ō', 'Ŧ'));
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(a.text_to_bytes(&a.bytes_to_text(&all)).unwrap(), all);
        for special in [a.pad, a.bos, a.eos, a.token_prefix] {
            assert_eq!(a.byte_of(special), None);
        }
    }

    #[test]
    fn decodes_generations_like_the_reference() {
        let a = Alphabet::get();
        let file = b"FWS\x0a\x40\x00\x00\x00";
        let chars: Vec<char> = a.file_to_text(file).chars().collect();
        assert_eq!(chars.len(), file.len() + 2);
        // As the model emits it: chat text, then prefixed byte tokens, then junk after eos.
        let mut generated = String::from("Bytes: ");
        for piece in [&chars[..2], &chars[2..5], &chars[5..]] {
            generated.push('Ŧ');
            generated.extend(piece);
        }
        generated.push_str("Ŧ0Ŧ1");
        let decoded = a.decode_generation(&generated).unwrap();
        assert_eq!(decoded.bytes, file);
        assert!(decoded.complete);
        // Cut off before eos: the bytes so far, flagged incomplete.
        let cut: String = chars[..chars.len() - 2].iter().collect();
        let cut = a.decode_generation(&cut).unwrap();
        assert_eq!(cut.bytes, &file[..file.len() - 1]);
        assert!(!cut.complete);
        // No bos: decoding starts at the beginning.
        assert_eq!(a.decode_generation("AB").unwrap().bytes, vec![10, 11]);
        assert_eq!(
            a.decode_generation("ŌA?ō").unwrap_err(),
            AlphabetError::NotAByte { ch: '?', index: 1 }
        );
    }
}
