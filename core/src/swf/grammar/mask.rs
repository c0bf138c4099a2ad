//! The grammar over byte-BPE tokens: a token is allowed when all its bytes are accepted in turn
//! (the mechanism of [`crate::bytecraft::constrained`], whose token table this reuses) and the
//! file can still be finished in the tokens left after it, the eos token included. Bytes are
//! tried once per distinct first byte, so most of the vocabulary is settled by 256 trials.

use std::sync::Arc;

use super::Grammar;
use crate::bytecraft::byte_tokens::ByteTokens;
use crate::bytecraft::constrained::{Kind, token_kinds};
use crate::bytecraft::generate::{Constraint, ConstraintState};

/// The SWF grammar as a token constraint for one tokenizer.
pub struct SwfGrammar {
    kinds: Arc<Vec<Kind>>,
}

impl SwfGrammar {
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
            grammar: Grammar::default(),
        })
    }

    /// The fewest new tokens a sample needs: bos, the shortest finished file in single-byte
    /// tokens, eos.
    pub fn min_tokens() -> usize {
        Grammar::default().closing_len(usize::MAX).unwrap_or(0) + 2
    }
}

impl Constraint for SwfGrammar {
    fn start(&self) -> Box<dyn ConstraintState + '_> {
        self.start_owned()
    }
}

struct State {
    kinds: Arc<Vec<Kind>>,
    started: bool,
    grammar: Grammar,
}

impl ConstraintState for State {
    fn filter(&self, candidates: &[u32]) -> Vec<u32> {
        self.filter_within(candidates, usize::MAX)
    }

    fn filter_within(&self, candidates: &[u32], tokens_left: usize) -> Vec<u32> {
        // After this token: at least the eos must still fit.
        let room = |extra: usize| tokens_left.saturating_sub(1 + extra);
        let mut firsts: Vec<Option<Option<Grammar>>> = vec![None; 256];
        let mut out = Vec::new();
        for &id in candidates {
            let ok = match self.kinds.get(id as usize) {
                Some(Kind::Bos) => !self.started && tokens_left >= 2 && self.grammar.fits(room(1)),
                Some(Kind::Eos) => self.started && self.grammar.is_done(),
                Some(Kind::Bytes(b)) if self.started => {
                    let first = firsts[usize::from(b[0])].get_or_insert_with(|| {
                        let mut g = self.grammar.clone();
                        g.push(b[0]).then_some(g)
                    });
                    match first {
                        None => false,
                        Some(g) => {
                            let mut g = g.clone();
                            g.push_all(&b[1..]) && tokens_left >= 2 && g.fits(room(1))
                        }
                    }
                }
                _ => false,
            };
            if ok {
                out.push(id);
            }
        }
        out
    }

    fn advance(&mut self, id: u32) {
        match self.kinds.get(id as usize) {
            Some(Kind::Bos) => self.started = true,
            Some(Kind::Bytes(b)) => {
                self.grammar.push_all(b);
            }
            _ => {}
        }
    }
}
