//! Bounded decompression of SWF bodies.
//!
//! `swf::decompress_swf` reserves up to 128 MiB from the header's length field before reading a
//! byte; in a browser tab (or a batch of generated files, where the length field is whatever the
//! model wrote) that is not acceptable. Here the output grows only as real data arrives and stops
//! at `min(declared, limit)`, while keeping the swf crate's semantics: zlib errors are tolerated
//! (what was decoded so far is kept, as Flash and Ruffle do), LZMA errors are fatal. One
//! exception lives in level 1 (`header.rs`): the swf crate drops the output of the read that
//! hits a corrupt zlib stream, so a stream corrupt early can leave it without header fields.

use std::borrow::Cow;
use std::io;

/// Start of the [`Ending::Incomplete`] message of a zlib stream that failed to inflate (as
/// opposed to one that merely ran out of input).
pub const ZLIB_CORRUPT: &str = "zlib stream corrupt";

/// How a body decompression ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The stream ended cleanly (or, uncompressed, the file simply ended).
    Complete,
    /// Output reached `min(declared, limit)` and more data was still coming.
    Capped,
    /// The compressed stream stopped early (input ran out) or was corrupt; data so far is kept.
    Incomplete(String),
}

pub struct Body<'a> {
    pub data: Cow<'a, [u8]>,
    pub ending: Ending,
}

/// Uncompressed body: the bytes after the 8-byte preamble, cut at `cap` like Flash does.
pub fn stored(rest: &[u8], cap: usize) -> Body<'_> {
    if rest.len() > cap {
        Body {
            data: Cow::Borrowed(&rest[..cap]),
            ending: Ending::Capped,
        }
    } else {
        Body {
            data: Cow::Borrowed(rest),
            ending: Ending::Complete,
        }
    }
}

/// zlib body (`CWS`). Never fails: a corrupt or truncated stream yields what was decoded.
pub fn zlib(input: &[u8], cap: usize) -> Body<'static> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(true);
    // Start from a guess bounded by the input and grow by doubling: a lying length field costs
    // nothing, an honest one costs a few reallocations at most.
    let mut buf = vec![0u8; cap.min(input.len().saturating_mul(4).saturating_add(4096))];
    let mut len = 0usize;
    let ending = loop {
        let in_pos = (d.total_in() as usize).min(input.len());
        let out_before = d.total_out();
        let status = d.decompress(&input[in_pos..], &mut buf[len..], FlushDecompress::None);
        let produced = (d.total_out() - out_before) as usize;
        let consumed = d.total_in() as usize - in_pos;
        len += produced;
        match status {
            Err(e) => break Ending::Incomplete(format!("{ZLIB_CORRUPT}: {e}")),
            Ok(Status::StreamEnd) => break Ending::Complete,
            Ok(_) if len == buf.len() => {
                if len >= cap {
                    break probe_more(&mut d, input);
                }
                let new_len = buf.len().saturating_mul(2).max(4096).min(cap);
                buf.resize(new_len, 0);
            }
            Ok(_) => {
                if d.total_in() as usize >= input.len() {
                    break Ending::Incomplete("zlib stream truncated".into());
                }
                if produced == 0 && consumed == 0 {
                    break Ending::Incomplete("zlib stream stalled".into());
                }
            }
        }
    };
    buf.truncate(len);
    Body {
        data: Cow::Owned(buf),
        ending,
    }
}

/// Output is full at the cap: find out whether the stream has more to give.
fn probe_more(d: &mut flate2::Decompress, input: &[u8]) -> Ending {
    use flate2::{FlushDecompress, Status};
    let mut probe = [0u8; 1];
    // A few rounds: inflate may consume a block header before producing the next byte.
    for _ in 0..8 {
        let in_pos = (d.total_in() as usize).min(input.len());
        let before = d.total_out();
        match d.decompress(&input[in_pos..], &mut probe, FlushDecompress::None) {
            Ok(_) if d.total_out() > before => return Ending::Capped,
            Ok(Status::StreamEnd) => return Ending::Complete,
            Ok(_) if d.total_in() as usize >= input.len() => {
                return Ending::Incomplete("zlib stream truncated".into());
            }
            Ok(_) => {}
            Err(e) => return Ending::Incomplete(format!("{ZLIB_CORRUPT}: {e}")),
        }
    }
    Ending::Incomplete("zlib stream stalled".into())
}

/// Why an LZMA body could not be decoded at all (this fails level 1, as in the swf crate).
#[derive(Debug, thiserror::Error)]
#[error("LZMA decompression failed: {0}")]
pub struct LzmaError(pub String);

/// A `Write` that keeps at most `cap` bytes and then refuses more.
struct Capped {
    out: Vec<u8>,
    cap: usize,
    overflow: bool,
}

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.cap - self.out.len();
        if buf.len() > room {
            self.out.extend_from_slice(&buf[..room]);
            self.overflow = true;
            return Err(io::Error::other("output cap reached"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// lzma-rs's smallest dictionary.
const LZMA_MIN_DICT: usize = 0x1000;

/// LZMA body (`ZWS`): `input` starts at the 5 LZMA property bytes (after the compressed-length
/// field). Flash's LZMA has no size field and needs an end marker.
///
/// lzma-rs hands output to the sink only when its dictionary buffer fills (or at the end), and
/// the dictionary size comes from the file (8 MiB from common encoders, up to 4 GiB). So the
/// dictionary is cut to `max(cap, 4 KiB)`: the buffer is then flushed at least every `cap`
/// bytes, the first `cap` bytes reach the sink, and no match in them can reach further back
/// than the cut dictionary. (With the file's dictionary a body longer than `cap` produced
/// nothing before the memory limit stopped it: the header fields were lost and the file was
/// called broken, though the swf crate loads it.)
pub fn lzma(input: &[u8], cap: usize) -> Result<Body<'static>, LzmaError> {
    use lzma_rs::decompress::{Options, UnpackedSize};
    use std::io::Read;
    let mut sink = Capped {
        out: Vec::with_capacity(cap.min(input.len().saturating_mul(4) + 4096)),
        cap,
        overflow: false,
    };
    let limit = cap.max(LZMA_MIN_DICT).min(u32::MAX as usize);
    let mut props = [0u8; 5];
    let n = input.len().min(5);
    props[..n].copy_from_slice(&input[..n]);
    let declared_dict = u32::from_le_bytes([props[1], props[2], props[3], props[4]]) as usize;
    let shrunk = n == 5 && declared_dict > limit;
    if shrunk {
        props[1..5].copy_from_slice(&(limit as u32).to_le_bytes());
    }
    let opts = Options {
        unpacked_size: UnpackedSize::UseProvided(None),
        allow_incomplete: true,
        // The dictionary buffer is at most `limit` bytes now; this only backs that up.
        memlimit: Some(limit.saturating_add(1)),
    };
    let mut reader = (&props[..n]).chain(&input[n..]);
    let r = lzma_rs::lzma_decompress_with_options(&mut reader, &mut sink, &opts);
    match r {
        Ok(()) => Ok(Body {
            data: Cow::Owned(sink.out),
            ending: Ending::Complete,
        }),
        Err(_) if sink.overflow => Ok(Body {
            data: Cow::Owned(sink.out),
            ending: Ending::Capped,
        }),
        // A match further back than the cut dictionary once all `cap` bytes were handed over
        // (the buffer is flushed at exactly `cap` bytes when cut): the body is longer than the
        // cap. Before that point it is a corrupt stream, as with the file's dictionary.
        Err(lzma_rs::error::Error::LzmaError(m))
            if shrunk && m.contains("beyond dictionary size") && sink.out.len() >= cap =>
        {
            Ok(Body {
                data: Cow::Owned(sink.out),
                ending: Ending::Capped,
            })
        }
        Err(lzma_rs::error::Error::LzmaError(m)) if m.starts_with("exceeded memory limit") => {
            Ok(Body {
                data: Cow::Owned(sink.out),
                ending: Ending::Capped,
            })
        }
        Err(e) => Err(LzmaError(e.to_string())),
    }
}
