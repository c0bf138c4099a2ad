//! The field walker's arithmetic: one field at a time, filled bit by bit (SWF bit fields are
//! most significant bit first) or byte by byte (byte-aligned integers are little-endian), with a
//! check after every bit or byte that some completion of what is known can still satisfy the
//! field's rule. Rejecting early keeps the grammar from accepting a prefix that cannot be
//! finished.

/// What a field's value must satisfy. The generic rules are checked here; the others depend on
/// what the file defined so far and are checked by the profile rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `lo..=hi`, in the field's own interpretation (signed fields sign-extended).
    Range(i64, i64),
    /// One byte from a set (only on byte-aligned one-byte fields).
    Bytes([u64; 4]),
    /// A character id already defined: any of them, or only sprites (`true`).
    Defined { sprites_only: bool },
    /// A depth (1..=255) that holds nothing.
    FreeDepth,
    /// A depth that holds an object.
    UsedDepth,
}

/// One field to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Width in bits: 0..=32 for bit fields, 8/16/32 for byte-aligned ones.
    pub width: u8,
    pub signed: bool,
    /// Byte-aligned little-endian integer (else a bit field).
    pub aligned: bool,
    pub rule: Rule,
}

impl Field {
    /// An unsigned bit field of `width` bits within `lo..=hi`.
    pub fn ubits(width: u8, lo: i64, hi: i64) -> Self {
        Self {
            width,
            signed: false,
            aligned: false,
            rule: Rule::Range(lo, hi),
        }
    }

    /// A signed bit field of `width` bits, any value.
    pub fn sbits(width: u8) -> Self {
        let (lo, hi) = signed_span(width);
        Self {
            width,
            signed: true,
            aligned: false,
            rule: Rule::Range(lo, hi),
        }
    }

    /// A byte-aligned little-endian unsigned integer of `bytes` bytes within `lo..=hi`.
    pub fn le(bytes: u8, lo: i64, hi: i64) -> Self {
        Self {
            width: bytes * 8,
            signed: false,
            aligned: true,
            rule: Rule::Range(lo, hi),
        }
    }

    /// A byte-aligned little-endian integer with a rule of its own.
    pub fn le_rule(bytes: u8, rule: Rule) -> Self {
        Self {
            width: bytes * 8,
            signed: false,
            aligned: true,
            rule,
        }
    }

    /// One byte from `set`.
    pub fn byte_in(set: &[u8]) -> Self {
        let mut bits = [0u64; 4];
        for &b in set {
            bits[usize::from(b / 64)] |= 1 << (b % 64);
        }
        Self::le_rule(1, Rule::Bytes(bits))
    }

    /// Zero bits up to the next byte boundary (the padding before aligned data), given the bit
    /// position within the current byte.
    pub fn padding(bit: u8) -> Self {
        Self::ubits((8 - bit) % 8, 0, 0)
    }
}

/// The values a signed field of `width` bits can hold.
pub fn signed_span(width: u8) -> (i64, i64) {
    if width == 0 {
        (0, 0)
    } else {
        (-(1i64 << (width - 1)), (1i64 << (width - 1)) - 1)
    }
}

/// A field being filled: `got` bits of it so far, in `acc` (bit fields: the high bits, most
/// significant first; aligned fields: the low bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial {
    pub field: Field,
    pub acc: u64,
    pub got: u8,
}

impl Partial {
    pub fn new(field: Field) -> Self {
        Self {
            field,
            acc: 0,
            got: 0,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.got >= self.field.width
    }

    /// Bits still to come.
    pub fn left(&self) -> u32 {
        u32::from(self.field.width - self.got)
    }

    pub fn push_bit(&mut self, bit: u8) {
        self.acc = (self.acc << 1) | u64::from(bit);
        self.got += 1;
    }

    pub fn push_byte(&mut self, b: u8) {
        self.acc |= u64::from(b) << self.got;
        self.got += 8;
    }

    /// The finished value in the field's interpretation.
    pub fn value(&self) -> i64 {
        interpret(self.acc, self.field.width, self.field.signed)
    }

    /// The smallest and largest values any completion can have (bit fields only: their known
    /// bits are the high ones, so the completions form one interval).
    pub fn bit_span(&self) -> (i64, i64) {
        let w = self.field.width;
        if self.got == 0 {
            return if self.field.signed {
                signed_span(w)
            } else {
                (0, mask(w) as i64)
            };
        }
        let free = w - self.got;
        let lo = self.acc << free;
        let hi = lo | mask(free);
        (
            interpret(lo, w, self.field.signed),
            interpret(hi, w, self.field.signed),
        )
    }

    /// Whether some completion lies in `lo..=hi`.
    pub fn can_reach(&self, lo: i64, hi: i64) -> bool {
        if lo > hi {
            return false;
        }
        if !self.field.aligned {
            let (a, b) = self.bit_span();
            return a <= hi && lo <= b;
        }
        // Aligned: the low `got` bits are known; look for the first value >= lo with them.
        if self.got == 0 {
            return hi >= 0 && lo <= mask(self.field.width) as i64;
        }
        let m = 1i64 << self.got;
        let known = self.acc as i64;
        let from = lo.max(0);
        let first = from + (known - from).rem_euclid(m);
        first <= hi && first <= mask(self.field.width) as i64
    }
}

fn mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn interpret(raw: u64, width: u8, signed: bool) -> i64 {
    if signed && width > 0 && raw >> (width - 1) & 1 == 1 {
        raw as i64 - (1i64 << width)
    } else {
        raw as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_prefixes_span_their_completions() {
        // 4-bit signed field, first bit 1: -8..=-1.
        let mut p = Partial::new(Field::sbits(4));
        p.push_bit(1);
        assert_eq!(p.bit_span(), (-8, -1));
        assert!(p.can_reach(-3, 5) && !p.can_reach(0, 5));
        p.push_bit(1);
        p.push_bit(1);
        p.push_bit(0);
        assert_eq!(p.value(), -2);
    }

    #[test]
    fn little_endian_prefixes_need_a_value_with_their_low_bytes() {
        let mut p = Partial::new(Field::le(2, 0x0105, 0x0106));
        assert!(p.can_reach(0x0105, 0x0106));
        p.push_byte(0x05);
        assert!(p.can_reach(0x0105, 0x0106));
        let mut q = Partial::new(Field::le(2, 0x0105, 0x0106));
        q.push_byte(0x07);
        assert!(!q.can_reach(0x0105, 0x0106));
        p.push_byte(0x01);
        assert_eq!(p.value(), 0x0105);
        assert!(p.is_complete());
    }
}
