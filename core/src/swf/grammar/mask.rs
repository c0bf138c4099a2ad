//! The grammar over byte-BPE tokens: a token is allowed when all its bytes are accepted in turn
//! (the mechanism of [`crate::bytecraft::constrained`], whose token table this reuses) and the
//! file can still be finished in the tokens left after it, the eos token included: either the
//! quick bound on the closing path fits, or the token follows the closing path of the current
//! state (computed once per draw, only when some token needs it), which fits by induction.
//! Bytes are tried once per distinct first byte, so most of the vocabulary is settled by 256
//! trials.

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
        // Bytes that may follow this token: everything left but the token and the eos.
        let room = tokens_left.saturating_sub(2);
        let mut firsts: Vec<Option<Option<Grammar>>> = vec![None; 256];
        // Near the end of the budget, the closing path from here, computed once: a token that
        // follows it always leaves a finishable file.
        let mut closing: Option<Option<Vec<u8>>> = None;
        let mut out = Vec::new();
        for &id in candidates {
            let ok = match self.kinds.get(id as usize) {
                Some(Kind::Bos) => !self.started && tokens_left >= 2 && self.grammar.fits(room),
                Some(Kind::Eos) => self.started && self.grammar.is_done(),
                Some(Kind::Bytes(b)) if self.started && tokens_left >= 2 => {
                    let first = firsts[usize::from(b[0])].get_or_insert_with(|| {
                        let mut g = self.grammar.clone();
                        g.push(b[0]).then_some(g)
                    });
                    match first {
                        None => false,
                        Some(g) => {
                            let mut g = g.clone();
                            g.push_all(&b[1..])
                                && (g.is_done()
                                    || g.rough_rest() <= room
                                    || closing
                                        .get_or_insert_with(|| self.grammar.closing_bytes())
                                        .as_ref()
                                        .is_some_and(|c| {
                                            c.starts_with(b) && c.len() - b.len() <= room
                                        }))
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
