//! Repair of the two header fields generators most often get wrong: the length field and the
//! frame count. Both are pure bookkeeping (the tags are untouched), so fixing them is safe; the
//! validator's `length_mismatch` and `frame_count` errors are exactly what this removes.

use super::decompress::{self, Ending};
use super::header::{self, Compression, HeaderError};
use super::structure::frame;

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("header does not parse, nothing to repair: {0}")]
    Header(#[from] HeaderError),
    #[error("body larger than the {0} byte limit")]
    TooLarge(usize),
    #[error("LZMA (ZWS) files cannot be rewritten yet")]
    Lzma,
}

/// The repaired file and what changed (empty when the file was already consistent).
#[derive(Debug)]
pub struct Repaired {
    pub bytes: Vec<u8>,
    pub changes: Vec<String>,
}

/// ShowFrame tags on the main timeline, counted by framing alone up to End or the first tag that
/// runs past the data.
fn count_frames(tags: &[u8]) -> u32 {
    let mut pos = 0;
    let mut frames = 0;
    while let Some((code, hdr, len)) = frame(&tags[pos..]) {
        if len > tags.len() - pos - hdr || code == 0 {
            break;
        }
        if code == 1 {
            frames += 1;
        }
        pos += hdr + len;
    }
    frames
}

pub fn repair(bytes: &[u8], max_body: usize) -> Result<Repaired, RepairError> {
    let parsed = header::parse(bytes, max_body)?;
    let version = parsed.version;
    // The whole body, whatever the length field says.
    let body: Vec<u8> = match parsed.compression {
        Compression::None => {
            if bytes.len() - 8 > max_body {
                return Err(RepairError::TooLarge(max_body));
            }
            bytes[8..].to_vec()
        }
        Compression::Zlib => {
            let b = decompress::zlib(&bytes[8..], max_body);
            if b.ending == Ending::Capped {
                return Err(RepairError::TooLarge(max_body));
            }
            b.data.into_owned()
        }
        Compression::Lzma => return Err(RepairError::Lzma),
    };
    let real_len = (body.len() + 8) as u32;
    let mut fws = Vec::with_capacity(body.len() + 8);
    fws.extend_from_slice(b"FWS");
    fws.push(version);
    fws.extend_from_slice(&real_len.to_le_bytes());
    fws.extend_from_slice(&body);
    let p = header::parse(&fws, max_body)?;
    let frames = count_frames(&fws[8 + p.tags_offset..]).min(u32::from(u16::MAX)) as u16;
    let mut changes = Vec::new();
    if parsed.declared_length != real_len {
        changes.push(format!(
            "length field {} -> {real_len}",
            parsed.declared_length
        ));
    }
    if p.num_frames != frames {
        changes.push(format!("frame count {} -> {frames}", p.num_frames));
        let at = 8 + p.tags_offset - 2;
        fws[at..at + 2].copy_from_slice(&frames.to_le_bytes());
    }
    if changes.is_empty() {
        return Ok(Repaired {
            bytes: bytes.to_vec(),
            changes,
        });
    }
    let bytes = match parsed.compression {
        Compression::None => fws,
        _ => {
            use std::io::Write;
            let mut enc = flate2::write::ZlibEncoder::new(
                Vec::with_capacity(bytes.len()),
                flate2::Compression::default(),
            );
            enc.write_all(&fws[8..])
                .expect("writing to a Vec cannot fail");
            let z = enc.finish().expect("writing to a Vec cannot fail");
            let mut out = fws[..8].to_vec();
            out[0] = b'C';
            out.extend_from_slice(&z);
            out
        }
    };
    Ok(Repaired { bytes, changes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swf::{Check, Verdict, synth, validate};

    fn damage(mut b: Vec<u8>) -> Vec<u8> {
        b[4..8].copy_from_slice(&12345u32.to_le_bytes());
        let p = header::parse(&b, 1 << 20).unwrap();
        let at = 8 + p.tags_offset - 2;
        b[at..at + 2].copy_from_slice(&999u16.to_le_bytes());
        b
    }

    #[test]
    fn fixes_length_and_frame_count() {
        let good = synth::synthesize(3, 0).bytes;
        let bad = damage(good.clone());
        let r = validate(&bad);
        assert!(r.has_check(Check::LengthMismatch) && r.has_check(Check::FrameCount));
        let fixed = repair(&bad, 1 << 26).unwrap();
        assert_eq!(fixed.changes.len(), 2, "{:?}", fixed.changes);
        assert_eq!(fixed.bytes, good);
        // Already consistent: unchanged.
        let again = repair(&good, 1 << 26).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.bytes, good);
    }

    #[test]
    fn fixes_zlib_files_and_refuses_broken_headers() {
        let good = synth::synthesize(3, 1).bytes;
        let bad = damage(good);
        // Compress the damaged file as CWS with a wrong length too.
        use std::io::Write;
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bad[8..]).unwrap();
        let mut cws = bad[..8].to_vec();
        cws[0] = b'C';
        cws.extend_from_slice(&enc.finish().unwrap());
        assert_eq!(validate(&cws).verdict, Verdict::Damaged);
        let fixed = repair(&cws, 1 << 26).unwrap();
        assert!(fixed.bytes.starts_with(b"CWS"));
        assert_eq!(validate(&fixed.bytes).verdict, Verdict::Valid);
        assert!(matches!(
            repair(b"not an swf", 1 << 20),
            Err(RepairError::Header(_))
        ));
    }
}
