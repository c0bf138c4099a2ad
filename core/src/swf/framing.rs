//! A byte-level automaton for the framing of an uncompressed SWF: the header, then tags whose
//! headers carry known codes and whose bodies are exactly as long as their length fields say,
//! until an `End` tag. Constrained decoding (`gamegen generate --constrained`) feeds it every
//! candidate token's bytes and masks those it rejects, so every finished file has sound
//! framing; `gamegen repair` then fixes the two header fields that only the end of the file
//! decides (length and frame count).
//!
//! What it does not check: tag contents (a DefineShape body may still be nonsense), character
//! ids, scripts. Those are level 2's other checks.

/// Longest tag body the automaton lets a generator declare (a guard against a random long
/// length that would never end within the token budget).
pub const MAX_TAG_BODY: u32 = 1 << 20;
/// SWF versions accepted in the header.
pub const VERSIONS: std::ops::RangeInclusive<u8> = 1..=50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Header byte `pos` (0..8: signature, version, length field).
    Preamble {
        pos: u8,
    },
    /// The stage rectangle: `left` bytes still to come once its size is known.
    RectFirst,
    Rect {
        left: u8,
    },
    /// Frame rate and frame count (4 bytes).
    Counts {
        left: u8,
    },
    /// A tag header: `got` bytes of it so far, stored in `word`/`long`.
    TagHeader {
        got: u8,
        word: u16,
        long: u32,
    },
    /// A tag body with `left` bytes to come.
    Body {
        left: u32,
    },
    /// After `End`: nothing more may come.
    Done,
}

/// The start of the next tag header.
const NEXT_TAG: Phase = Phase::TagHeader {
    got: 0,
    word: 0,
    long: 0,
};

/// Where a file stands in its framing. Copy, so candidates are tried on copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    phase: Phase,
    /// ShowFrame tags seen: `End` is accepted only after at least one (a file that shows
    /// nothing is not worth finishing).
    frames: u32,
}

impl Default for Framing {
    fn default() -> Self {
        Self {
            phase: Phase::Preamble { pos: 0 },
            frames: 0,
        }
    }
}

fn known_tag(code: u16) -> bool {
    swf::TagCode::from_u16(code).is_some()
}

impl Framing {
    /// True once the `End` tag is complete (the file may stop here and only here).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Feed one byte; `false` (state unchanged) when it would break the framing.
    pub fn push(&mut self, b: u8) -> bool {
        let next = match self.phase {
            Phase::Preamble { pos } => {
                let ok = match pos {
                    0 => b == b'F',
                    1 => b == b'W',
                    2 => b == b'S',
                    3 => VERSIONS.contains(&b),
                    _ => true,
                };
                if !ok {
                    return false;
                }
                if pos == 7 {
                    Phase::RectFirst
                } else {
                    Phase::Preamble { pos: pos + 1 }
                }
            }
            Phase::RectFirst => {
                // 5 bits of field width, then four signed fields of that width. Width 0 is
                // a 0x0 stage: framed, but nothing could ever be seen.
                let nbits = u32::from(b >> 3);
                if nbits == 0 {
                    return false;
                }
                let total_bits = 5 + 4 * nbits;
                let bytes = total_bits.div_ceil(8) as u8;
                if bytes == 1 {
                    Phase::Counts { left: 4 }
                } else {
                    Phase::Rect { left: bytes - 1 }
                }
            }
            Phase::Rect { left } => {
                if left == 1 {
                    Phase::Counts { left: 4 }
                } else {
                    Phase::Rect { left: left - 1 }
                }
            }
            Phase::Counts { left } => {
                if left == 1 {
                    NEXT_TAG
                } else {
                    Phase::Counts { left: left - 1 }
                }
            }
            Phase::TagHeader { got, word, long } => match got {
                0 => Phase::TagHeader {
                    got: 1,
                    word: u16::from(b),
                    long,
                },
                1 => {
                    let word = word | (u16::from(b) << 8);
                    let (code, short) = (word >> 6, u32::from(word & 0x3f));
                    if !known_tag(code) || (code == 0 && (short != 0 || self.frames == 0)) {
                        return false;
                    }
                    if code == 1 {
                        self.frames += 1;
                    }
                    if short == 0x3f {
                        Phase::TagHeader {
                            got: 2,
                            word,
                            long: 0,
                        }
                    } else if code == 0 {
                        Phase::Done
                    } else if short == 0 {
                        NEXT_TAG
                    } else {
                        Phase::Body { left: short }
                    }
                }
                _ => {
                    let long = long | (u32::from(b) << (8 * u32::from(got - 2)));
                    if got < 5 {
                        Phase::TagHeader {
                            got: got + 1,
                            word,
                            long,
                        }
                    } else if long > MAX_TAG_BODY {
                        return false;
                    } else if long == 0 {
                        NEXT_TAG
                    } else {
                        Phase::Body { left: long }
                    }
                }
            },
            Phase::Body { left } => {
                if left == 1 {
                    NEXT_TAG
                } else {
                    Phase::Body { left: left - 1 }
                }
            }
            Phase::Done => return false,
        };
        self.phase = next;
        true
    }

    /// Feed `bytes`; `false` (state unchanged) if any of them breaks the framing.
    pub fn push_all(&mut self, bytes: &[u8]) -> bool {
        let mut trial = *self;
        for &b in bytes {
            if !trial.push(b) {
                return false;
            }
        }
        *self = trial;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synth_file(seed: u64) -> Vec<u8> {
        crate::swf::synth::synthesize(seed, 0).bytes
    }

    #[test]
    fn synthesised_files_frame_and_end_exactly_at_their_end() {
        for seed in 0..40 {
            let file = synth_file(seed);
            let mut f = Framing::default();
            for (i, &b) in file.iter().enumerate() {
                assert!(!f.is_done(), "seed {seed}: done before byte {i}");
                assert!(f.push(b), "seed {seed}: byte {i} rejected");
            }
            assert!(f.is_done(), "seed {seed}: not done at the end");
            assert!(!f.push(0), "nothing after End");
        }
    }

    #[test]
    fn rejects_what_breaks_the_framing() {
        let mut f = Framing::default();
        assert!(
            !f.push(b'C'),
            "compressed files cannot be checked: FWS only"
        );
        assert!(f.push_all(b"FWS"));
        assert!(!f.push(0), "version 0");
        assert!(f.push_all(&[10, 0, 0, 0, 0]));
        // RECT with nbits = 0 (a 0x0 stage) is refused; nbits = 1 takes 2 bytes. Then frame
        // rate and count.
        let mut zero_width = f;
        assert!(!zero_width.push(0x00));
        assert!(f.push_all(&[0x08, 0x00, 0, 24, 1, 0]));
        // Tag code 1023 is unknown.
        assert!(!f.push_all(&[0xff, 0xff]));
        // End with a nonzero length, or before any ShowFrame.
        assert!(!f.push_all(&[0x01, 0x00]));
        assert!(!f.push_all(&[0x00, 0x00]));
        // A ShowFrame (code 1, length 0), then End.
        assert!(f.push_all(&[0x40, 0x00]));
        assert!(!f.is_done());
        assert!(f.push_all(&[0x00, 0x00]));
        assert!(f.is_done());
    }

    #[test]
    fn long_lengths_are_bounded() {
        let mut f = Framing::default();
        assert!(f.push_all(b"FWS\x0a\0\0\0\0\x08\x00\x00\x18\x01\x00\x40\x00"));
        // DefineBits (6) with the long form: 0x3f marker, then 4 length bytes.
        let word = (6u16 << 6) | 0x3f;
        assert!(f.push_all(&word.to_le_bytes()));
        let mut too_long = f;
        assert!(!too_long.push_all(&(MAX_TAG_BODY + 1).to_le_bytes()));
        assert!(f.push_all(&3u32.to_le_bytes()));
        assert!(f.push_all(&[1, 2, 3, 0, 0]));
        assert!(f.is_done());
    }
}
