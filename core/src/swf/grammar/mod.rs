//! A grammar of the SWF files of our synthetic profile, for constrained decoding.
//!
//! It follows a file down to its bit fields ([`bits`]: RECT, MATRIX, CXFORM, shape records,
//! PlaceObject2 flags, AVM1 clip actions) under the tag and field rules of the profile
//! ([`profile`]), so every byte it accepts keeps the file parseable by the swf crate and
//! completable. Fully determined fields are forced; length fields are written freely and
//! patched when the file is finished ([`patch`]). A closing path (the cheapest way to a
//! finished file that shows a visible shape) bounds what must stay in reserve, so a sampler
//! that checks [`Grammar::fits`] before every token always has room to finish ([`mask`]
//! applies all this to byte-BPE tokens).

pub mod bits;
pub mod mask;
pub mod patch;
pub mod profile;
pub mod stage;

use bits::{Partial, Rule};
use profile::{Event, Next, Profile};

/// Longest closing path searched; anything longer does not fit a realistic budget.
const MAX_CLOSING: usize = 1 << 16;

/// Where a file stands in the grammar.
#[derive(Clone, Debug)]
pub struct Grammar {
    rules: Profile,
    cur: Option<Partial>,
    /// Byte offset of the next byte, and where the current field started.
    pos: usize,
    field_at: usize,
    log: Option<Vec<Event>>,
}

impl Default for Grammar {
    fn default() -> Self {
        let mut g = Self {
            rules: Profile::default(),
            cur: None,
            pos: 0,
            field_at: 0,
            log: None,
        };
        g.settle(0);
        g
    }
}

impl Grammar {
    /// A grammar that records where tags and clip actions start and end (for [`patch`]).
    pub fn recording() -> Self {
        Self {
            log: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// True once the End tag of the file is complete: the file may stop here and only here.
    pub fn is_done(&self) -> bool {
        self.rules.is_done()
    }

    /// Bytes accepted so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    pub(crate) fn take_log(&mut self) -> Vec<Event> {
        self.log.take().unwrap_or_default()
    }

    /// Fetch the next field into `cur`, taking zero-width fields (padding at a boundary,
    /// markers) on the way. False when the file is finished.
    fn settle(&mut self, bit: u8) -> bool {
        loop {
            if self.cur.is_some() {
                return true;
            }
            match self.rules.next(bit) {
                Next::Done => return false,
                Next::Field(f) if f.width == 0 => self.rules.take(0, self.pos, &f, &mut self.log),
                Next::Field(f) => {
                    self.cur = Some(Partial::new(f));
                    self.field_at = self.pos;
                }
            }
        }
    }

    /// Feed one byte (`Some`), or with `None` the closing path's next byte. Returns the byte,
    /// or `None` (state then undefined: callers work on copies) when it is rejected.
    fn step(&mut self, given: Option<u8>) -> Option<u8> {
        let mut out = 0u8;
        let mut i = 8u8;
        while i > 0 {
            if !self.settle(8 - i) {
                return None;
            }
            let mut p = self.cur.take()?;
            if p.field.aligned {
                if i != 8 {
                    return None;
                }
                let b =
                    given.unwrap_or_else(|| (raw(self.target(&p), p.field.width) >> p.got) as u8);
                p.push_byte(b);
                out = b;
                i = 0;
            } else {
                let bit = match given {
                    Some(b) => (b >> (i - 1)) & 1,
                    None => {
                        let v = raw(self.target(&p), p.field.width);
                        (v >> (p.left() - 1) & 1) as u8
                    }
                };
                p.push_bit(bit);
                out |= bit << (i - 1);
                i -= 1;
            }
            if !self.rules.feasible(&p) {
                return None;
            }
            if p.is_complete() {
                self.rules
                    .take(p.value(), self.field_at, &p.field, &mut self.log);
            } else {
                self.cur = Some(p);
            }
        }
        self.pos += 1;
        self.settle(0);
        Some(out)
    }

    /// Feed one byte; `false` (state unchanged) when the grammar rejects it.
    pub fn push(&mut self, b: u8) -> bool {
        self.push_all(&[b])
    }

    /// Feed `bytes`; `false` (state unchanged) if any of them is rejected.
    pub fn push_all(&mut self, bytes: &[u8]) -> bool {
        let mut trial = self.clone();
        for &b in bytes {
            if trial.is_done() || trial.step(Some(b)).is_none() {
                return false;
            }
        }
        *self = trial;
        true
    }

    /// The value the closing path writes into field `p`: the profile's preference, moved to the
    /// nearest value that the field's rule and its bits so far allow.
    fn target(&self, p: &Partial) -> i64 {
        let want = self.rules.prefer();
        let ok = |v: i64| {
            let mut q = *p;
            q.acc = 0;
            q.got = 0;
            feed_value(&mut q, v);
            self.rules.feasible(&q) && p.can_reach(v, v)
        };
        match p.field.rule {
            Rule::Range(lo, hi) => {
                if p.field.aligned {
                    let m = 1i64 << p.got;
                    let from = want.max(lo).min(hi).max(0);
                    let first = from + (p.acc as i64 - from).rem_euclid(m);
                    if first <= hi {
                        first
                    } else {
                        let from = lo.max(0);
                        from + (p.acc as i64 - from).rem_euclid(m)
                    }
                } else {
                    let (a, b) = p.bit_span();
                    want.max(lo.max(a)).min(hi.min(b))
                }
            }
            Rule::Bytes(set) => (0..256i64)
                .filter(|&v| set[(v / 64) as usize] >> (v % 64) & 1 == 1)
                .min_by_key(|&v| (v - want).abs())
                .unwrap_or(0),
            _ => {
                if ok(want) {
                    want
                } else {
                    (1..=255).find(|&v| ok(v)).unwrap_or(1)
                }
            }
        }
    }

    /// Bytes the closing path writes from here to the end of the file, if at most `limit`.
    pub fn closing_len(&self, limit: usize) -> Option<usize> {
        let mut g = self.clone();
        g.rules.closing = true;
        g.log = None;
        let start = g.pos;
        while !g.is_done() {
            if g.pos - start >= limit.min(MAX_CLOSING) {
                return None;
            }
            g.step(None)?;
        }
        Some(g.pos - start)
    }

    /// The closing path's bytes (what a generator out of budget writes).
    pub fn closing_bytes(&self) -> Option<Vec<u8>> {
        let mut g = self.clone();
        g.rules.closing = true;
        g.log = None;
        let mut out = Vec::new();
        while !g.is_done() {
            if out.len() >= MAX_CLOSING {
                return None;
            }
            out.push(g.step(None)?);
        }
        Some(out)
    }

    /// A quick upper bound on [`Grammar::closing_len`].
    pub fn rough_rest(&self) -> usize {
        self.rules.rough_rest() + self.cur.map_or(0, |p| (p.left() as usize).div_ceil(8) + 1)
    }

    /// Whether the file can still be finished within `room` more bytes.
    pub fn fits(&self, room: usize) -> bool {
        self.is_done()
            || self.rough_rest() <= room
            || self.closing_len(room + 1).is_some_and(|n| n <= room)
    }
}

/// `v` as the field's raw bits (two's complement for signed fields).
fn raw(v: i64, width: u8) -> u64 {
    if width >= 64 {
        v as u64
    } else {
        (v as u64) & ((1u64 << width) - 1)
    }
}

/// Fill an empty partial with the whole value `v`.
fn feed_value(q: &mut Partial, v: i64) {
    let r = raw(v, q.field.width);
    if q.field.aligned {
        for k in 0..q.field.width / 8 {
            q.push_byte((r >> (8 * k)) as u8);
        }
    } else {
        for k in (0..q.field.width).rev() {
            q.push_bit((r >> k & 1) as u8);
        }
    }
}

#[cfg(test)]
mod tests;
