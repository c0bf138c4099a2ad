//! Constrained decoding for SWF: a sample may only draw byte tokens whose bytes keep the file's
//! framing sound ([`crate::swf::framing`]), must start with bos, and may (and must) end with eos
//! exactly when its `End` tag is complete.

use std::sync::Arc;

use super::alphabet::Alphabet;
use super::byte_tokens::ByteTokens;
use super::generate::{Constraint, ConstraintState};
use crate::swf::framing::Framing;

/// What a token id means to a byte-level constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A byte token: the file bytes it stands for (one or more).
    Bytes(Vec<u8>),
    Bos,
    Eos,
    /// Text tokens, pad, and byte tokens holding special characters mid-piece.
    Other,
}

/// Token kinds for ids `0..vocab` from the tokenizer's byte tokens: how every byte-level
/// constraint (the framing here, the SWF grammar in `crate::swf::grammar::mask`) sees tokens.
pub fn token_kinds(tokens: &ByteTokens, vocab: usize) -> Arc<Vec<Kind>> {
    let a = Alphabet::get();
    let kinds = (0..vocab as u32)
        .map(|id| match tokens.text_of(id) {
            None => Kind::Other,
            Some(t) if t.chars().eq([a.bos]) => Kind::Bos,
            Some(t) if t.chars().eq([a.eos]) => Kind::Eos,
            Some(t) => match a.text_to_bytes(t) {
                Ok(b) if !b.is_empty() => Kind::Bytes(b),
                _ => Kind::Other,
            },
        })
        .collect();
    Arc::new(kinds)
}

/// The framing constraint over one tokenizer's byte tokens.
pub struct SwfFraming {
    /// Shared with every sample's state, so a state can outlive a borrow of this (the browser
    /// studio keeps one in a long-lived object).
    kinds: Arc<Vec<Kind>>,
}

impl SwfFraming {
    /// Token kinds for ids `0..vocab` from the tokenizer's byte tokens.
    pub fn new(tokens: &ByteTokens, vocab: usize) -> Self {
        Self {
            kinds: token_kinds(tokens, vocab),
        }
    }

    /// A fresh sample's state that owns what it needs (no borrow of `self`).
    pub fn start_owned(&self) -> Box<dyn ConstraintState> {
        Box::new(State {
            kinds: Arc::clone(&self.kinds),
            started: false,
            framing: Framing::default(),
        })
    }
}

struct State {
    kinds: Arc<Vec<Kind>>,
    started: bool,
    framing: Framing,
}

impl Constraint for SwfFraming {
    fn start(&self) -> Box<dyn ConstraintState + '_> {
        self.start_owned()
    }
}

impl ConstraintState for State {
    fn filter(&self, candidates: &[u32]) -> Vec<u32> {
        let kinds = &self.kinds;
        candidates
            .iter()
            .copied()
            .filter(|&id| match kinds.get(id as usize) {
                Some(Kind::Bos) => !self.started,
                Some(Kind::Eos) => self.started && self.framing.is_done(),
                Some(Kind::Bytes(b)) => {
                    let mut trial = self.framing;
                    self.started && trial.push_all(b)
                }
                _ => false,
            })
            .collect()
    }

    fn advance(&mut self, id: u32) {
        match self.kinds.get(id as usize) {
            Some(Kind::Bos) => self.started = true,
            Some(Kind::Bytes(b)) => {
                self.framing.push_all(b);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::backend::NdArray;

    use super::super::config::Qwen2Config;
    use super::super::generate::{GenerationConfig, StopReason, generate_constrained};
    use super::super::init::random_weights;
    use super::super::model::Qwen2ForCausalLM;
    use super::super::sampler::SamplingConfig;
    use super::*;

    /// Byte tokens for every single byte, a few two-byte pieces, and the specials, ids from 4.
    pub(crate) fn tokens() -> (ByteTokens, usize) {
        let a = Alphabet::get();
        let mut contents: Vec<String> =
            [a.pad, a.bos, a.eos].map(|c| a.special_content(c)).to_vec();
        contents.extend((0..=255u8).map(|b| a.token_content(&[b])));
        for piece in [[0x40u8, 0x00], [0x00, 0x00], [b'F', b'W']] {
            contents.push(a.token_content(&piece));
        }
        let added: Vec<serde_json::Value> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| serde_json::json!({"id": 4 + i, "content": c}))
            .collect();
        let json = serde_json::json!({ "added_tokens": added }).to_string();
        (
            ByteTokens::from_tokenizer_json(&json).unwrap(),
            4 + contents.len(),
        )
    }

    #[test]
    fn every_finished_sample_of_a_random_model_frames_correctly() {
        let (tokens, vocab) = tokens();
        let config = Qwen2Config::from_json(&format!(
            r#"{{"vocab_size": {vocab}, "hidden_size": 16, "intermediate_size": 24,
                "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                "rope_theta": 10000.0, "tie_word_embeddings": true}}"#
        ))
        .unwrap();
        let device = Default::default();
        let model =
            Qwen2ForCausalLM::<NdArray>::load(&config, &random_weights(&config, 4), &device)
                .unwrap();
        let eos = tokens.eos_id().unwrap();
        let cfg = GenerationConfig {
            max_new: 300,
            sampling: SamplingConfig {
                temperature: 1.0,
                top_p: 1.0,
                min_p: 0.0,
                top_k: 0,
            },
            stop: vec![eos],
            allowed: Some(tokens.byte_ids().to_vec()),
        };
        let framing = SwfFraming::new(&tokens, vocab);
        let seeds: Vec<u64> = (0..12).collect();
        let samples = generate_constrained(
            &model,
            &[1, 2],
            &seeds,
            &cfg,
            Some(&framing),
            &device,
            |_| {},
        )
        .unwrap();
        for s in &samples {
            assert_eq!(s.tokens[0], tokens.bos_id().unwrap(), "bos first");
            let file = tokens.decode(&s.tokens).unwrap();
            let mut f = Framing::default();
            assert!(f.push_all(&file.bytes), "every prefix frames");
            assert_eq!(
                s.stop == StopReason::StopToken,
                f.is_done(),
                "eos exactly after End"
            );
        }
    }

    /// A scripted "model" that always takes its favourite allowed token reaches eos: the
    /// constraint never corners a generator that wants to finish.
    #[test]
    fn a_generator_that_wants_to_finish_can() {
        let (tokens, vocab) = tokens();
        let framing = SwfFraming::new(&tokens, vocab);
        let a = Alphabet::get();
        let id = |bytes: &[u8]| tokens.id_of(&a.token_content(bytes)).unwrap();
        let eos = tokens.eos_id().unwrap();
        let mut favourites = vec![eos, tokens.bos_id().unwrap(), id(&[0, 0]), id(&[0x40, 0])];
        favourites.extend((0..=255u8).rev().map(|b| id(&[b])));
        let mut state = framing.start();
        let all: Vec<u32> = (0..vocab as u32).collect();
        let mut drawn = Vec::new();
        while drawn.last() != Some(&eos) {
            let ok = state.filter(&all);
            let pick = *favourites
                .iter()
                .find(|f| ok.contains(f))
                .expect("something allowed");
            state.advance(pick);
            drawn.push(pick);
            assert!(drawn.len() < 200);
        }
        let file = tokens.decode(&drawn).unwrap();
        assert!(file.complete);
        let mut f = Framing::default();
        assert!(f.push_all(&file.bytes) && f.is_done());
        assert!(file.bytes.ends_with(&[0x40, 0, 0, 0]), "ShowFrame, End");
    }
}
