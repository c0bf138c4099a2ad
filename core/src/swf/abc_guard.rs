//! A pre-pass over an ABC block before the swf crate parses it.
//!
//! swf 0.4's `avm2::read::Reader` reserves one vector from a count in the file before reading its
//! elements: a trait's metadata count (`Vec::reserve(count)` of 4-byte indices). A hostile u30
//! there asks for up to 16 GiB before the reads run out of data, which aborts a native run and
//! always fails in wasm32 (found by `fuzz/fuzz_targets/validate.rs`, a 7.1 GB `malloc`).
//!
//! [`check`] walks the block in exactly the crate's reading order, building nothing, and refuses a
//! metadata count larger than the bytes left (every index takes at least one byte, so such a file
//! cannot parse anyway). Where the walk cannot go on (data ends, unknown kind byte), the crate's
//! own parse fails at the same place, before any later trait, so the walk stops and leaves the
//! error to it. Every other count in the crate's reader is collected element by element and
//! cannot reserve ahead of the data.

/// Why the walk stopped early.
enum Stop {
    /// The block is malformed here; the swf crate reports it.
    Lost,
    /// A count that would make the swf crate reserve memory the data cannot back.
    Hostile(String),
}

type Step = Result<(), Stop>;

struct Walk<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Walk<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn skip(&mut self, n: usize) -> Step {
        if n > self.left() {
            return Err(Stop::Lost);
        }
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        let b = *self.data.get(self.pos).ok_or(Stop::Lost)?;
        self.pos += 1;
        Ok(b)
    }

    /// The crate's `read_encoded_u32`: up to five bytes, 7 bits each.
    fn u30(&mut self) -> Result<u32, Stop> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.u8()? as u32;
            value |= (b & 0x7f).wrapping_shl(shift);
            if b & 0x80 == 0 {
                break;
            }
        }
        Ok(value)
    }

    fn u30s(&mut self, n: u64) -> Step {
        for _ in 0..n {
            self.u30()?;
        }
        Ok(())
    }

    /// A `u30` count followed by that many elements.
    fn counted(&mut self, mut elem: impl FnMut(&mut Self) -> Step) -> Step {
        let n = self.u30()?;
        for _ in 0..n {
            elem(self)?;
        }
        Ok(())
    }

    /// The constant pool's `count - 1` arrays.
    fn pool(&mut self, mut elem: impl FnMut(&mut Self) -> Step) -> Step {
        let n = self.u30()?.saturating_sub(1);
        for _ in 0..n {
            elem(self)?;
        }
        Ok(())
    }

    fn default_kind(&mut self) -> Step {
        match self.u8()? {
            0x00 | 0x01 | 0x03 | 0x04 | 0x05 | 0x06 | 0x08 | 0x0a | 0x0b | 0x0c | 0x16..=0x1a => {
                Ok(())
            }
            _ => Err(Stop::Lost),
        }
    }

    fn namespace(&mut self) -> Step {
        match self.u8()? {
            0x05 | 0x08 | 0x16..=0x1a => self.u30().map(drop),
            _ => Err(Stop::Lost),
        }
    }

    fn multiname(&mut self) -> Step {
        match self.u8()? {
            0x07 | 0x0d | 0x09 | 0x0e => self.u30s(2),
            0x0f | 0x10 | 0x1b | 0x1c => self.u30s(1),
            0x11 | 0x12 => Ok(()),
            0x1d => {
                self.u30()?;
                self.counted(|w| w.u30().map(drop))
            }
            _ => Err(Stop::Lost),
        }
    }

    fn method(&mut self) -> Step {
        let params = self.u30()?;
        self.u30()?; // return type
        self.u30s(params.into())?;
        self.u30()?; // name
        let flags = self.u8()?;
        if flags & 0x08 != 0 {
            let optional = self.u30()?;
            if optional > params {
                return Err(Stop::Lost);
            }
            for _ in 0..optional {
                self.u30()?;
                self.default_kind()?;
            }
        }
        if flags & 0x80 != 0 {
            self.u30s(params.into())?;
        }
        Ok(())
    }

    fn metadata_entry(&mut self) -> Step {
        self.u30()?;
        let items = self.u30()?;
        self.u30s(u64::from(items) * 2)
    }

    fn traits(&mut self) -> Step {
        self.counted(Self::one_trait)
    }

    fn one_trait(&mut self) -> Step {
        self.u30()?; // name
        let flags = self.u8()?;
        match flags & 0x0f {
            0 | 6 => {
                self.u30s(2)?;
                if self.u30()? != 0 {
                    self.default_kind()?;
                }
            }
            1..=5 => self.u30s(2)?,
            _ => return Err(Stop::Lost),
        }
        if flags & 0x40 != 0 {
            let count = self.u30()?;
            if count as usize > self.left() {
                return Err(Stop::Hostile(format!(
                    "ABC: a trait declares {count} metadata entries with {} bytes left",
                    self.left()
                )));
            }
            self.u30s(count.into())?;
        }
        Ok(())
    }

    fn instance(&mut self) -> Step {
        self.u30s(2)?; // name, super name
        let flags = self.u8()?;
        if flags & 0x08 != 0 {
            self.u30()?; // protected namespace
        }
        self.counted(|w| w.u30().map(drop))?; // interfaces
        self.u30()?; // init method
        self.traits()
    }

    fn method_body(&mut self) -> Step {
        self.u30s(5)?; // method, max stack, locals, init and max scope depth
        let code = self.u30()?;
        self.skip(code as usize)?;
        self.counted(|w| w.u30s(5))?; // exceptions
        self.traits()
    }

    fn file(&mut self) -> Step {
        self.skip(4)?; // minor and major version
        self.pool(|w| w.u30().map(drop))?; // ints
        self.pool(|w| w.u30().map(drop))?; // uints
        self.pool(|w| w.skip(8))?; // doubles
        self.pool(|w| {
            let len = w.u30()?;
            w.skip(len as usize)
        })?; // strings
        self.pool(Self::namespace)?;
        self.pool(|w| w.counted(|w| w.u30().map(drop)))?; // namespace sets
        self.pool(Self::multiname)?;
        self.counted(Self::method)?;
        self.counted(Self::metadata_entry)?;
        let classes = self.u30()?;
        for _ in 0..classes {
            self.instance()?;
        }
        for _ in 0..classes {
            self.u30()?; // class init
            self.traits()?;
        }
        self.counted(|w| {
            w.u30()?; // script init
            w.traits()
        })?;
        self.counted(Self::method_body)
    }
}

/// `Err` with a message when parsing `data` with the swf crate would reserve memory the data
/// cannot back; `Ok` otherwise (including when the block is malformed in other ways).
pub fn check(data: &[u8]) -> Result<(), String> {
    match (Walk { data, pos: 0 }).file() {
        Err(Stop::Hostile(why)) => Err(why),
        Ok(()) | Err(Stop::Lost) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ABC block with empty pools and one script whose single trait has metadata.
    fn abc_with_trait_metadata(count: &[u8], indices: &[u8]) -> Vec<u8> {
        let mut b = vec![16, 0, 46, 0]; // version 46.16
        b.extend([0; 7]); // seven empty constant-pool arrays
        b.extend([0, 0, 0]); // no methods, metadata, classes
        b.extend([1, 0, 1]); // one script: init method 0, one trait
        b.extend([1, 0x41, 0, 0]); // name 1, method trait with the metadata flag, disp id, method
        b.extend(count);
        b.extend(indices);
        b.push(0); // no method bodies
        b
    }

    #[test]
    fn a_plausible_metadata_count_passes() {
        let abc = abc_with_trait_metadata(&[2], &[0, 0]);
        assert_eq!(check(&abc), Ok(()));
        // The walk mirrors the crate: the same block parses there (the indices are not
        // resolved at read time).
        assert!(swf::avm2::read::Reader::new(&abc).read().is_ok());
    }

    #[test]
    fn a_metadata_count_beyond_the_data_is_refused() {
        // 0xFFFF_FFFF entries: the swf crate would reserve 16 GiB first.
        let abc = abc_with_trait_metadata(&[0xff, 0xff, 0xff, 0xff, 0x0f], &[0, 0]);
        let err = check(&abc).unwrap_err();
        assert!(err.contains("4294967295 metadata entries"), "{err}");
    }

    #[test]
    fn malformed_blocks_are_left_to_the_swf_crate() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[0xff; 3]), Ok(()));
        let mut abc = abc_with_trait_metadata(&[2], &[0, 0]);
        abc[18] = 0x4f; // unknown trait kind 15
        assert_eq!(check(&abc), Ok(()));
    }

    /// The fuzz finding end to end: a file whose DoABC block holds such a count is `damaged`
    /// with an AVM2 error, instead of a multi-gigabyte allocation.
    #[test]
    fn the_validator_reports_it_as_an_avm2_error() {
        use crate::swf::{Check, Verdict, validate};
        let abc = abc_with_trait_metadata(&[0xff, 0xff, 0xff, 0xff, 0x0f], &[0, 0]);
        let header = swf::Header {
            compression: swf::Compression::None,
            version: 10,
            stage_size: swf::Rectangle {
                x_min: swf::Twips::ZERO,
                x_max: swf::Twips::from_pixels(10.0),
                y_min: swf::Twips::ZERO,
                y_max: swf::Twips::from_pixels(10.0),
            },
            frame_rate: swf::Fixed8::from_f32(24.0),
            num_frames: 1,
        };
        let mut file = Vec::new();
        let tags = [swf::Tag::DoAbc(&abc), swf::Tag::ShowFrame];
        swf::write_swf(&header, &tags, &mut file).unwrap();
        let r = validate(&file);
        assert_eq!(r.verdict, Verdict::Damaged, "{:?}", r.findings);
        let f = r.first_error.unwrap();
        assert_eq!(f.check, Check::Avm2);
        assert!(f.message.contains("metadata entries"), "{}", f.message);
    }
}
