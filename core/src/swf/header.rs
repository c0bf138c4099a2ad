//! Level 1: the header and metadata, i.e. exactly the ByteCraft paper's "fully broken" check.
//!
//! The paper calls a file fully broken when its header/metadata does not parse: signature `?WS`,
//! version, length, decompression for `CWS`/`ZWS`, stage rectangle, 8.8 frame rate, frame count.
//! That is also precisely what `swf::decompress_swf` (and so Ruffle's `load()`) requires, and the
//! tests hold this module to the swf crate's answer on the whole corpus. Nothing else is checked
//! here: the length field is *not* compared with the real size and no tag is read.

use super::decompress::{self, Body, LzmaError};
use super::report::Check;

/// The compression named by the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Lzma,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Lzma => "lzma",
        }
    }
}

/// Why level 1 failed.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("file is {0} bytes, too short for a signature")]
    NoSignature(usize),
    #[error("signature {0:?} is not FWS, CWS or ZWS")]
    Signature(String),
    #[error("file is {0} bytes, too short for the 8-byte SWF preamble")]
    ShortPreamble(usize),
    #[error("SWF version 0 is invalid")]
    Version,
    #[error("length field {0} is below the 8-byte minimum")]
    Length(u32),
    #[error("ZWS file ends before its compressed-length field")]
    LzmaPreamble,
    #[error(transparent)]
    Lzma(#[from] LzmaError),
    #[error("header fields truncated: no complete {0}")]
    Fields(&'static str),
    #[error("{0}, before the swf crate (Ruffle) could read the header fields")]
    ZlibCorrupt(String),
}

impl HeaderError {
    pub fn check(&self) -> Check {
        match self {
            HeaderError::NoSignature(_) | HeaderError::Signature(_) => Check::Signature,
            HeaderError::Version => Check::Version,
            HeaderError::ShortPreamble(_) | HeaderError::Length(_) => Check::LengthField,
            HeaderError::LzmaPreamble | HeaderError::Lzma(_) | HeaderError::ZlibCorrupt(_) => {
                Check::Decompression
            }
            HeaderError::Fields(_) => Check::HeaderFields,
        }
    }
}

/// A file that passed level 1.
pub struct Parsed<'a> {
    pub signature: [u8; 3],
    pub compression: Compression,
    pub version: u8,
    /// The length field: claimed uncompressed size including the 8-byte preamble.
    pub declared_length: u32,
    /// The (decompressed) bytes after the 8-byte preamble, cut at `min(declared, limit)`.
    pub body: Body<'a>,
    /// Stage rectangle in twips: x_min, x_max, y_min, y_max.
    pub stage: [i32; 4],
    /// Raw 8.8 fixed-point frame rate.
    pub frame_rate_raw: i16,
    pub num_frames: u16,
    /// Offset in `body` where the tag stream starts.
    pub tags_offset: usize,
}

impl Parsed<'_> {
    pub fn frame_rate(&self) -> f64 {
        f64::from(self.frame_rate_raw) / 256.0
    }
}

/// Run level 1 on `bytes`. `max_body` bounds the decompressed body whatever the header claims.
pub fn parse(bytes: &[u8], max_body: usize) -> Result<Parsed<'_>, HeaderError> {
    if bytes.len() < 3 {
        return Err(HeaderError::NoSignature(bytes.len()));
    }
    let signature = [bytes[0], bytes[1], bytes[2]];
    let compression = match &signature {
        b"FWS" => Compression::None,
        b"CWS" => Compression::Zlib,
        b"ZWS" => Compression::Lzma,
        _ => {
            return Err(HeaderError::Signature(
                String::from_utf8_lossy(&signature).into_owned(),
            ));
        }
    };
    if bytes.len() < 8 {
        return Err(HeaderError::ShortPreamble(bytes.len()));
    }
    let version = bytes[3];
    if version == 0 {
        return Err(HeaderError::Version);
    }
    let declared_length = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let declared_body = declared_length
        .checked_sub(8)
        .ok_or(HeaderError::Length(declared_length))? as usize;
    let cap = declared_body.min(max_body);
    let rest = &bytes[8..];
    let body = match compression {
        Compression::None => decompress::stored(rest, cap),
        Compression::Zlib => decompress::zlib(rest, cap),
        Compression::Lzma => {
            if rest.len() < 4 {
                return Err(HeaderError::LzmaPreamble);
            }
            decompress::lzma(&rest[4..], cap)?
        }
    };
    let data: &[u8] = &body.data;
    let mut reader = swf::read::Reader::new(data, version);
    let rect = reader
        .read_rectangle()
        .map_err(|_| HeaderError::Fields("stage rectangle"))?;
    let after_rect = reader.get_ref();
    if after_rect.len() < 2 {
        return Err(HeaderError::Fields("frame rate"));
    }
    if after_rect.len() < 4 {
        return Err(HeaderError::Fields("frame count"));
    }
    // A corrupt zlib stream: the swf crate keeps only what its reads returned before the failing
    // one (flate2 drops that read's output), which depends on how std sizes the reads. Rather
    // than imitate that, ask the crate itself; this costs a second inflate, only for corrupt
    // files whose body fits the limit (beyond it the body is capped and the crate's up-front
    // reservation is what the limit exists to avoid).
    if let decompress::Ending::Incomplete(msg) = &body.ending
        && compression == Compression::Zlib
        && msg.starts_with(decompress::ZLIB_CORRUPT)
        && declared_body <= max_body
        && swf::decompress_swf(bytes).is_err()
    {
        return Err(HeaderError::ZlibCorrupt(msg.clone()));
    }
    let frame_rate_raw = i16::from_le_bytes([after_rect[0], after_rect[1]]);
    let num_frames = u16::from_le_bytes([after_rect[2], after_rect[3]]);
    let tags_offset = data.len() - after_rect.len() + 4;
    Ok(Parsed {
        signature,
        compression,
        version,
        declared_length,
        stage: [
            rect.x_min.get(),
            rect.x_max.get(),
            rect.y_min.get(),
            rect.y_max.get(),
        ],
        frame_rate_raw,
        num_frames,
        tags_offset,
        body,
    })
}
