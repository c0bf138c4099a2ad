//! Byte-pair encoding over file bytes: the trainer for our own ByteCraft tokenizers and the
//! encoder that turns a file into byte-token pieces.
//!
//! ByteCraft's byte vocabulary is a BPE over the alphabet strings of whole files (2.29 bytes
//! per token on average, pieces up to 4-5 bytes). The alphabet maps bytes one-to-one to
//! characters, so the trainer works on bytes directly; pieces become tokens `Ŧ` + their
//! alphabet text when the tokenizer is written. There is no pre-tokenisation (a SWF has no
//! word boundaries), so a file is one long symbol sequence and the trainer updates pair
//! counts incrementally instead of recounting: each merge costs the number of places it
//! applies, not the corpus size.
//!
//! Encoding applies the learnt merges in rank order, exactly as training did. A vocabulary
//! without merges (the released checkpoint ships only its tokens) is encoded greedily,
//! longest piece first, by [`LongestMatch`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

/// Longest piece a stored BPE may define, in bytes: far above any real tokenizer (the trainer
/// defaults to 8, the released vocabulary's pieces are 4-5 bytes), low enough that the piece
/// table of a hostile file stays small.
pub const MAX_PIECE_BYTES: usize = 1024;

/// Settings of a BPE run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BpeTrainConfig {
    /// Pieces to learn beyond the 256 single bytes.
    pub merges: usize,
    /// Longest piece, in bytes.
    pub max_piece_bytes: usize,
    /// A pair seen fewer times than this is never merged.
    pub min_count: u64,
}

impl Default for BpeTrainConfig {
    fn default() -> Self {
        Self {
            merges: 1792,
            max_piece_bytes: 8,
            min_count: 2,
        }
    }
}

/// A learnt byte BPE: merges in the order they were learnt (rank = index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteBpe {
    /// `(left, right)` pieces; piece ids are 0..=255 for single bytes, then `256 + rank`.
    pub merges: Vec<(u32, u32)>,
}

impl ByteBpe {
    /// The bytes of every piece, indexed by piece id.
    pub fn pieces(&self) -> Vec<Vec<u8>> {
        let mut pieces: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for &(a, b) in &self.merges {
            let mut piece = pieces[a as usize].clone();
            piece.extend_from_slice(&pieces[b as usize]);
            pieces.push(piece);
        }
        pieces
    }

    /// Check that every merge refers to pieces that exist before it and that no piece is
    /// longer than [`MAX_PIECE_BYTES`] (lengths can double with every merge, so a hostile
    /// `byte_merges.json` of a few dozen merges would otherwise ask for terabytes in
    /// [`ByteBpe::pieces`]).
    pub fn validate(&self) -> Result<(), BpeError> {
        let mut lengths: Vec<usize> = vec![1; 256];
        lengths.reserve(self.merges.len());
        for (rank, &(a, b)) in self.merges.iter().enumerate() {
            let limit = 256 + rank as u32;
            if a >= limit || b >= limit {
                return Err(BpeError::ForwardReference { rank });
            }
            let len = lengths[a as usize] + lengths[b as usize];
            if len > MAX_PIECE_BYTES {
                return Err(BpeError::PieceTooLong { rank, len });
            }
            lengths.push(len);
        }
        Ok(())
    }

    /// An encoder holding the merges' rank table: build it once to encode many files.
    pub fn encoder(&self) -> BpeEncoder {
        BpeEncoder {
            rank: self
                .merges
                .iter()
                .enumerate()
                .map(|(r, &pair)| (pair, r as u32))
                .collect(),
        }
    }

    /// Split `bytes` into piece ids (one-off; see [`ByteBpe::encoder`]).
    pub fn encode(&self, bytes: &[u8]) -> Vec<u32> {
        self.encoder().encode(bytes)
    }
}

/// Applies a [`ByteBpe`]'s merges in rank order.
#[derive(Clone, Debug)]
pub struct BpeEncoder {
    /// Pair -> rank; the merged piece's id is `256 + rank`.
    rank: HashMap<(u32, u32), u32>,
}

impl BpeEncoder {
    /// Split `bytes` into piece ids by applying the merges in rank order.
    pub fn encode(&self, bytes: &[u8]) -> Vec<u32> {
        let rank = &self.rank;
        let mut seq = Sequence::new(std::iter::once(bytes));
        // Candidate merges, lowest rank first, leftmost first among equals.
        let mut heap: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<Reverse<(u32, u32)>>, seq: &Sequence, i: u32| {
            if let Some(pair) = seq.pair_at(i)
                && let Some(&r) = rank.get(&pair)
            {
                heap.push(Reverse((r, i)));
            }
        };
        for i in 0..seq.sym.len() as u32 {
            push(&mut heap, &seq, i);
        }
        while let Some(Reverse((r, i))) = heap.pop() {
            // Stale entries: the node died or its pair changed since it was queued.
            let Some(pair) = seq.pair_at(i) else { continue };
            if rank.get(&pair) != Some(&r) {
                continue;
            }
            seq.merge_at(i, 256 + r);
            if let Some(p) = seq.prev_of(i) {
                push(&mut heap, &seq, p);
            }
            push(&mut heap, &seq, i);
        }
        seq.live().collect()
    }
}

/// Why a stored BPE cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BpeError {
    #[error("merge {rank} refers to a piece learnt after it")]
    ForwardReference { rank: usize },
    #[error("merge {rank} makes a piece of {len} bytes (at most {MAX_PIECE_BYTES} accepted)")]
    PieceTooLong { rank: usize, len: usize },
}

/// Learn merges over `docs` (each document one file's bytes; pieces never cross documents).
pub fn train<'a, I>(docs: I, config: &BpeTrainConfig) -> ByteBpe
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut seq = Sequence::new(docs);
    let mut lengths: Vec<usize> = vec![1; 256];
    let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
    let mut places: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
    for i in 0..seq.sym.len() as u32 {
        if let Some(pair) = seq.pair_at(i) {
            *counts.entry(pair).or_default() += 1;
            places.entry(pair).or_default().push(i);
        }
    }
    // Most frequent first; ties broken towards the smaller pair so runs are deterministic.
    let mut heap: BinaryHeap<(u64, Reverse<(u32, u32)>)> =
        counts.iter().map(|(&p, &c)| (c, Reverse(p))).collect();
    let mut merges = Vec::with_capacity(config.merges);
    while merges.len() < config.merges {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        let current = counts.get(&pair).copied().unwrap_or(0);
        if current != count {
            // Counts only fall for pairs of old pieces, so a stale entry is re-queued lower.
            if current > 0 {
                heap.push((current, Reverse(pair)));
            }
            continue;
        }
        if count < config.min_count.max(1) {
            break;
        }
        let (a, b) = pair;
        if lengths[a as usize] + lengths[b as usize] > config.max_piece_bytes {
            counts.remove(&pair);
            places.remove(&pair);
            continue;
        }
        let new = 256 + merges.len() as u32;
        merges.push(pair);
        lengths.push(lengths[a as usize] + lengths[b as usize]);

        let mut at = places.remove(&pair).unwrap_or_default();
        at.sort_unstable();
        at.dedup();
        let mut touched: Vec<(u32, u32)> = Vec::new();
        for i in at {
            if seq.pair_at(i) != Some(pair) {
                continue;
            }
            let j = seq.next[i as usize];
            let before = seq.prev_of(i);
            let after = seq.next_of(j);
            let dec = |p: (u32, u32), counts: &mut HashMap<(u32, u32), u64>| {
                if let Some(c) = counts.get_mut(&p) {
                    *c = c.saturating_sub(1);
                }
            };
            dec(pair, &mut counts);
            if let Some(p) = before {
                dec((seq.sym[p as usize], a), &mut counts);
            }
            if let Some(q) = after {
                dec((b, seq.sym[q as usize]), &mut counts);
            }
            seq.merge_at(i, new);
            if let Some(p) = before {
                let np = (seq.sym[p as usize], new);
                *counts.entry(np).or_default() += 1;
                places.entry(np).or_default().push(p);
                touched.push(np);
            }
            if let Some(q) = after {
                let nq = (new, seq.sym[q as usize]);
                *counts.entry(nq).or_default() += 1;
                places.entry(nq).or_default().push(i);
                touched.push(nq);
            }
        }
        counts.remove(&pair);
        touched.sort_unstable();
        touched.dedup();
        for p in touched {
            if let Some(&c) = counts.get(&p) {
                heap.push((c, Reverse(p)));
            }
        }
    }
    ByteBpe { merges }
}

/// Greedy longest-piece-first encoding over a fixed set of pieces (for vocabularies that come
/// without their merges). Every single byte must be a piece.
pub struct LongestMatch {
    by_bytes: HashMap<Vec<u8>, u32>,
    longest: usize,
}

impl LongestMatch {
    /// `pieces[id]` = the bytes of piece `id`.
    pub fn new(pieces: impl IntoIterator<Item = (Vec<u8>, u32)>) -> Self {
        let by_bytes: HashMap<Vec<u8>, u32> = pieces.into_iter().collect();
        let longest = by_bytes.keys().map(Vec::len).max().unwrap_or(1);
        Self { by_bytes, longest }
    }

    /// Piece ids of `bytes`, or the offset of the first byte no piece covers.
    pub fn encode(&self, bytes: &[u8]) -> Result<Vec<u32>, usize> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
        let mut at = 0;
        while at < bytes.len() {
            let max = self.longest.min(bytes.len() - at);
            let found = (1..=max)
                .rev()
                .find_map(|len| self.by_bytes.get(&bytes[at..at + len]).map(|&id| (id, len)));
            let (id, len) = found.ok_or(at)?;
            out.push(id);
            at += len;
        }
        Ok(out)
    }
}

const NONE: u32 = u32::MAX;

/// Documents as one doubly linked list of piece ids; links never cross a document boundary.
struct Sequence {
    sym: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Sequence {
    fn new<'a>(docs: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let (mut sym, mut next, mut prev) = (Vec::new(), Vec::new(), Vec::new());
        for doc in docs {
            let start = sym.len() as u32;
            for (k, &b) in doc.iter().enumerate() {
                let i = start + k as u32;
                sym.push(b as u32);
                prev.push(if k == 0 { NONE } else { i - 1 });
                next.push(if k + 1 == doc.len() { NONE } else { i + 1 });
            }
        }
        Self { sym, next, prev }
    }

    /// The pair starting at live node `i`, if `i` is live and has a successor.
    fn pair_at(&self, i: u32) -> Option<(u32, u32)> {
        let a = *self.sym.get(i as usize)?;
        let j = self.next[i as usize];
        (a != NONE && j != NONE).then(|| (a, self.sym[j as usize]))
    }

    fn prev_of(&self, i: u32) -> Option<u32> {
        let p = self.prev[i as usize];
        (p != NONE).then_some(p)
    }

    fn next_of(&self, i: u32) -> Option<u32> {
        let q = self.next[i as usize];
        (q != NONE).then_some(q)
    }

    /// Replace the pair at `i` by piece `new`: `i` keeps it, its successor dies.
    fn merge_at(&mut self, i: u32, new: u32) {
        let j = self.next[i as usize];
        let after = self.next[j as usize];
        self.sym[i as usize] = new;
        self.next[i as usize] = after;
        if after != NONE {
            self.prev[after as usize] = i;
        }
        self.sym[j as usize] = NONE;
        self.next[j as usize] = NONE;
        self.prev[j as usize] = NONE;
    }

    /// Live piece ids in order (a single document).
    fn live(&self) -> impl Iterator<Item = u32> + '_ {
        self.sym.iter().copied().filter(|&s| s != NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bpe: &ByteBpe, ids: &[u32]) -> Vec<u8> {
        let pieces = bpe.pieces();
        ids.iter()
            .flat_map(|&i| pieces[i as usize].clone())
            .collect()
    }

    /// Brute force: recount every pair after every merge (the textbook algorithm).
    fn train_naive(docs: &[&[u8]], config: &BpeTrainConfig) -> ByteBpe {
        let mut seqs: Vec<Vec<u32>> = docs
            .iter()
            .map(|d| d.iter().map(|&b| b as u32).collect())
            .collect();
        let mut lengths = vec![1usize; 256];
        let mut merges = Vec::new();
        let mut banned = std::collections::HashSet::new();
        while merges.len() < config.merges {
            let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
            for s in &seqs {
                let mut k = 0;
                while k + 1 < s.len() {
                    *counts.entry((s[k], s[k + 1])).or_default() += 1;
                    k += 1;
                }
            }
            // Overlapping runs (`aaa`) count every adjacent pair; the merge takes them left
            // to right, which is what the incremental trainer does too.
            let best = counts
                .iter()
                .filter(|(p, _)| !banned.contains(*p))
                .max_by_key(|&(&p, &c)| (c, Reverse(p)));
            let Some((&pair, &count)) = best else { break };
            if count < config.min_count {
                break;
            }
            if lengths[pair.0 as usize] + lengths[pair.1 as usize] > config.max_piece_bytes {
                banned.insert(pair);
                continue;
            }
            let new = 256 + merges.len() as u32;
            merges.push(pair);
            lengths.push(lengths[pair.0 as usize] + lengths[pair.1 as usize]);
            for s in &mut seqs {
                let mut out = Vec::with_capacity(s.len());
                let mut k = 0;
                while k < s.len() {
                    if k + 1 < s.len() && (s[k], s[k + 1]) == pair {
                        out.push(new);
                        k += 2;
                    } else {
                        out.push(s[k]);
                        k += 1;
                    }
                }
                *s = out;
            }
        }
        ByteBpe { merges }
    }

    #[test]
    fn learns_the_most_frequent_pair_first() {
        let docs: [&[u8]; 2] = [b"abababcd", b"abxab"];
        let bpe = train(
            docs,
            &BpeTrainConfig {
                merges: 1,
                ..Default::default()
            },
        );
        assert_eq!(bpe.merges, vec![(b'a' as u32, b'b' as u32)]);
    }

    #[test]
    fn incremental_counts_equal_recounting() {
        let mut rng = crate::rng::Rng::new(5);
        // Skewed random bytes with runs, so merges overlap and chain.
        let docs: Vec<Vec<u8>> = (0..6)
            .map(|_| {
                let len = 200 + rng.below(300) as usize;
                (0..len)
                    .map(|_| match rng.below(10) {
                        0..=4 => b'a',
                        5..=6 => b'b',
                        7 => b'c',
                        _ => rng.below(256) as u8,
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = docs.iter().map(Vec::as_slice).collect();
        let config = BpeTrainConfig {
            merges: 60,
            max_piece_bytes: 5,
            min_count: 2,
        };
        let fast = train(refs.iter().copied(), &config);
        let slow = train_naive(&refs, &config);
        assert_eq!(fast, slow);
        assert!(fast.merges.len() > 20);
        assert!(fast.pieces().iter().all(|p| p.len() <= 5));
    }

    #[test]
    fn encoding_round_trips_and_compresses() {
        let doc =
            b"FWS\x0a\x00\x00\x00FWS\x0a\x00\x00\x00\x40\x00\x00\x00\x40\x00\x00\x00".repeat(20);
        let bpe = train(
            [doc.as_slice()],
            &BpeTrainConfig {
                merges: 30,
                ..Default::default()
            },
        );
        let other = b"FWS\x0a\x40\x00\x00\x00zz\x00\x00";
        for bytes in [
            doc.as_slice(),
            other.as_slice(),
            b"".as_slice(),
            b"q".as_slice(),
        ] {
            let ids = bpe.encode(bytes);
            assert_eq!(decode(&bpe, &ids), bytes);
        }
        assert!(bpe.encode(&doc).len() * 4 <= doc.len());
    }

    #[test]
    fn encoding_applies_merges_in_rank_order() {
        // Merges: (b,c) first, then (a,b). "abc" must become [a, bc], not [ab, c].
        let bpe = ByteBpe {
            merges: vec![(b'b' as u32, b'c' as u32), (b'a' as u32, b'b' as u32)],
        };
        assert_eq!(bpe.encode(b"abc"), vec![b'a' as u32, 256]);
        assert_eq!(bpe.encode(b"abd"), vec![257, b'd' as u32]);
    }

    #[test]
    fn encoding_the_training_data_reproduces_its_segmentation() {
        let docs: [&[u8]; 2] = [b"aaaaaaabaabaaab", b"baaabaaa"];
        let bpe = train(
            docs,
            &BpeTrainConfig {
                merges: 6,
                ..Default::default()
            },
        );
        for doc in docs {
            let ids = bpe.encode(doc);
            assert_eq!(decode(&bpe, &ids), doc);
        }
        assert_eq!(bpe.encode(b"aaaa").len(), 1, "{:?}", bpe.merges);
    }

    #[test]
    fn forward_references_are_rejected() {
        let bad = ByteBpe {
            merges: vec![(256, 1)],
        };
        assert_eq!(bad.validate(), Err(BpeError::ForwardReference { rank: 0 }));
    }

    /// Each merge of a piece with itself doubles its length: 40 such merges describe a
    /// terabyte piece, so `validate` must refuse them before `pieces()` builds anything
    /// (`fuzz/fuzz_targets/tokenizer_load.rs` feeds such vocabularies too).
    #[test]
    fn doubling_merges_are_rejected_before_building_pieces() {
        let mut merges = vec![(0, 0)];
        merges.extend((0..40).map(|i| (256 + i, 256 + i)));
        let bad = ByteBpe { merges };
        // 2^10 = 1024 bytes is accepted, 2^11 is not: merge 10 is the first refused.
        assert_eq!(
            bad.validate(),
            Err(BpeError::PieceTooLong {
                rank: 10,
                len: 2048
            })
        );
        let ok = ByteBpe {
            merges: bad.merges[..10].to_vec(),
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.pieces().last().unwrap().len(), 1024);
    }

    #[test]
    fn longest_match_prefers_long_pieces_and_reports_gaps() {
        let lm = LongestMatch::new([
            (b"a".to_vec(), 0),
            (b"ab".to_vec(), 1),
            (b"abc".to_vec(), 2),
            (b"c".to_vec(), 3),
        ]);
        assert_eq!(lm.encode(b"abcab"), Ok(vec![2, 1]));
        assert_eq!(lm.encode(b"ca"), Ok(vec![3, 0]));
        assert_eq!(lm.encode(b"abz"), Err(2));
    }
}
