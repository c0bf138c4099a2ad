//! The episode shard: one episode per file, versioned and compressed (docs/formats.md).
//!
//! ```text
//! offset size  field
//! 0      4     magic "GGEP"
//! 4      2     format version (u16 LE) = 1
//! 6      1     codec: 1 = zlib (deflate + Adler-32 check)
//! 7      1     game id: 0 traveler, 1 pong, 2 pacman
//! 8      2     width (u16 LE)
//! 10     2     height (u16 LE)
//! 12     4     frame count n (u32 LE)
//! 16     8     collection seed (u64 LE)
//! 24     8     episode index (u64 LE)
//! 32     4     meta length m (u32 LE)
//! 36     m     meta: JSON (EpisodeMeta)
//! 36+m   8     uncompressed payload length (u64 LE)
//! 44+m   8     compressed payload length c (u64 LE)
//! 52+m   c     compressed payload
//! ```
//! The payload is columnar (each column compresses on its own statistics):
//! actions `[n]u8`, events `[n]u8`, done `[n]u8`, scores `[n]u32`, player `[n](i32,i32)`,
//! aux `[n*k](i32,i32)` (k from the game), map length `u32` + map JSON, frames `[n][h][w][3]u8`.
//! All integers little-endian. Zlib is pure Rust here, so shards are read the same in wasm.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use super::episode::{Episode, EpisodeMeta};
use crate::games::{GameKind, Position, TruthMap};

pub const MAGIC: &[u8; 4] = b"GGEP";
pub const VERSION: u16 = 1;
pub const CODEC_ZLIB: u8 = 1;
/// File name extension of shards.
pub const EXTENSION: &str = "ggep";
/// Upper bound on a decoded payload (hostile or corrupt headers must not allocate without end).
pub const MAX_PAYLOAD: u64 = 1 << 32;
const HEADER_LEN: usize = 36;
/// Largest up-front reservation for the payload (real shards are a few MB); beyond it the
/// buffer grows with what the inflater actually produces.
const RESERVE_LIMIT: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("not an episode shard (bad magic)")]
    BadMagic,
    #[error("unsupported shard version {0} (this build reads version {VERSION})")]
    Version(u16),
    #[error("unsupported shard codec {0}")]
    Codec(u8),
    #[error("truncated shard: {0}")]
    Truncated(&'static str),
    #[error("corrupt shard: {0}")]
    Corrupt(String),
}

/// Encode an episode. `level` is the zlib level (1 = fastest; collection uses 1).
pub fn encode(ep: &Episode, level: u32) -> Vec<u8> {
    let n = ep.len();
    let meta = serde_json::to_vec(&ep.meta).unwrap_or_default();
    let map = serde_json::to_vec(&ep.map).unwrap_or_default();
    let mut payload = Vec::with_capacity(n * 20 + map.len() + ep.frames.len() + 4);
    payload.extend_from_slice(&ep.actions);
    payload.extend_from_slice(&ep.events);
    payload.extend(ep.done.iter().map(|d| *d as u8));
    for s in &ep.scores {
        payload.extend_from_slice(&s.to_le_bytes());
    }
    for p in ep.player.iter().chain(ep.aux.iter()) {
        payload.extend_from_slice(&p.x.to_le_bytes());
        payload.extend_from_slice(&p.y.to_le_bytes());
    }
    payload.extend_from_slice(&(map.len() as u32).to_le_bytes());
    payload.extend_from_slice(&map);
    payload.extend_from_slice(&ep.frames);

    let mut z = ZlibEncoder::new(
        Vec::with_capacity(payload.len() / 8),
        Compression::new(level.clamp(1, 9)),
    );
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&payload);
    let compressed = z.finish().unwrap_or_default();

    let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + 16 + compressed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(CODEC_ZLIB);
    out.push(ep.game.id());
    out.extend_from_slice(&(ep.width as u16).to_le_bytes());
    out.extend_from_slice(&(ep.height as u16).to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&ep.seed.to_le_bytes());
    out.extend_from_slice(&ep.index.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// The fixed header of a shard, readable without decompressing anything.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardHeader {
    pub game: GameKind,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub seed: u64,
    pub index: u64,
    pub meta: EpisodeMeta,
    raw_len: u64,
    body: usize,
    compressed_len: u64,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ShardError> {
        let end = self.pos.checked_add(n).ok_or(ShardError::Truncated(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(ShardError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ShardError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ShardError> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().unwrap_or([0; 2]),
        ))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ShardError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().unwrap_or([0; 4]),
        ))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ShardError> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().unwrap_or([0; 8]),
        ))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, ShardError> {
        Ok(self.u32(what)? as i32)
    }
}

/// Read and check the header (cheap: used to validate shards when resuming).
pub fn read_header(bytes: &[u8]) -> Result<ShardHeader, ShardError> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    if c.take(4, "magic")? != MAGIC {
        return Err(ShardError::BadMagic);
    }
    let version = c.u16("version")?;
    if version != VERSION {
        return Err(ShardError::Version(version));
    }
    let codec = c.u8("codec")?;
    if codec != CODEC_ZLIB {
        return Err(ShardError::Codec(codec));
    }
    let gid = c.u8("game")?;
    let game = GameKind::from_id(gid)
        .ok_or_else(|| ShardError::Corrupt(format!("unknown game id {gid}")))?;
    let width = c.u16("width")? as usize;
    let height = c.u16("height")? as usize;
    if (width, height) != game.frame_size() {
        return Err(ShardError::Corrupt(format!(
            "{width}x{height} frames for {game}"
        )));
    }
    let frames = c.u32("frame count")? as usize;
    let seed = c.u64("seed")?;
    let index = c.u64("index")?;
    let meta_len = c.u32("meta length")? as usize;
    let meta: EpisodeMeta = serde_json::from_slice(c.take(meta_len, "meta")?)
        .map_err(|e| ShardError::Corrupt(format!("meta: {e}")))?;
    let raw_len = c.u64("payload length")?;
    let compressed_len = c.u64("compressed length")?;
    let min_raw = (frames as u64) * (width * height * 3) as u64;
    // Deflate cannot expand more than ~1032:1, so a larger claim is corrupt (and must not
    // make us allocate it).
    if raw_len > MAX_PAYLOAD
        || raw_len < min_raw
        || raw_len > compressed_len.saturating_mul(1100).saturating_add(4096)
    {
        return Err(ShardError::Corrupt(format!(
            "payload length {raw_len} for {frames} frames"
        )));
    }
    if (bytes.len() - c.pos) as u64 != compressed_len {
        return Err(if ((bytes.len() - c.pos) as u64) < compressed_len {
            ShardError::Truncated("payload")
        } else {
            ShardError::Corrupt("trailing bytes after the payload".into())
        });
    }
    Ok(ShardHeader {
        game,
        width,
        height,
        frames,
        seed,
        index,
        meta,
        raw_len,
        body: c.pos,
        compressed_len,
    })
}

/// Decode a whole shard.
pub fn decode(bytes: &[u8]) -> Result<Episode, ShardError> {
    let h = read_header(bytes)?;
    // Reserve what the header claims only up to a bound: the claim is checked against the
    // inflated size below, and a hostile one must not reserve gigabytes before that.
    let mut payload = Vec::with_capacity(h.raw_len.min(RESERVE_LIMIT) as usize);
    let body = &bytes[h.body..h.body + h.compressed_len as usize];
    ZlibDecoder::new(body)
        .take(h.raw_len + 1)
        .read_to_end(&mut payload)
        .map_err(|e| ShardError::Corrupt(format!("payload: {e}")))?;
    if payload.len() as u64 != h.raw_len {
        return Err(ShardError::Corrupt(format!(
            "payload is {} bytes, header says {}",
            payload.len(),
            h.raw_len
        )));
    }
    let n = h.frames;
    let k = h.game.num_aux_positions();
    let mut c = Cursor {
        buf: &payload,
        pos: 0,
    };
    let mut ep = Episode::new(h.game, h.seed, h.index);
    ep.meta = h.meta;
    ep.actions = c.take(n, "actions")?.to_vec();
    ep.events = c.take(n, "events")?.to_vec();
    ep.done = c.take(n, "done")?.iter().map(|d| *d != 0).collect();
    ep.scores = (0..n).map(|_| c.u32("scores")).collect::<Result<_, _>>()?;
    let mut pos = |count: usize| -> Result<Vec<Position>, ShardError> {
        (0..count)
            .map(|_| {
                Ok(Position {
                    x: c.i32("positions")?,
                    y: c.i32("positions")?,
                })
            })
            .collect()
    };
    ep.player = pos(n)?;
    ep.aux = pos(n * k)?;
    let map_len = c.u32("map length")? as usize;
    ep.map = serde_json::from_slice::<TruthMap>(c.take(map_len, "map")?)
        .map_err(|e| ShardError::Corrupt(format!("map: {e}")))?;
    ep.frames = c.take(n * ep.frame_bytes(), "frames")?.to_vec();
    if c.pos != payload.len() {
        return Err(ShardError::Corrupt("trailing bytes in the payload".into()));
    }
    Ok(ep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games;

    fn sample() -> Episode {
        let mut g = games::new_game(GameKind::Pacman, None).unwrap();
        let mut ep = Episode::new(GameKind::Pacman, 7, 3);
        let s = g.reset(1);
        ep.push(&s, super::super::episode::NO_ACTION);
        for t in 0..20u8 {
            let a = t % 5;
            let s = g.step(a);
            ep.push(&s, a);
        }
        ep.map = g.truth_map();
        ep.meta.agent = "test".into();
        ep.meta.random_p = 0.25;
        ep
    }

    #[test]
    fn round_trip_is_exact() {
        let ep = sample();
        let bytes = encode(&ep, 1);
        assert!(bytes.len() < ep.frames.len() / 4, "frames compress well");
        let back = decode(&bytes).unwrap();
        assert_eq!(back, ep);
        assert_eq!(encode(&back, 1), bytes, "encoding is deterministic");
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.frames, h.seed, h.index), (21, 7, 3));
    }

    #[test]
    fn corrupt_shards_are_errors_not_panics() {
        let bytes = encode(&sample(), 1);
        assert!(matches!(decode(b"nope"), Err(ShardError::BadMagic)));
        assert!(matches!(decode(&bytes[..3]), Err(ShardError::Truncated(_))));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 5]),
            Err(ShardError::Truncated(_))
        ));
        let mut v = bytes.clone();
        v[4] = 9;
        assert!(matches!(decode(&v), Err(ShardError::Version(9))));
        // Flip bytes all over the file: every decode must return (Ok only if untouched data).
        for i in (0..bytes.len()).step_by(bytes.len() / 60 + 1) {
            let mut v = bytes.clone();
            v[i] ^= 0x5A;
            let _ = decode(&v);
        }
        let mut v = bytes.clone();
        let last = v.len() - 10;
        v[last] ^= 0xFF;
        assert!(decode(&v).is_err(), "the zlib check catches payload damage");
    }

    /// Offset of the compressed-length field of an encoded shard.
    fn compressed_len_at(bytes: &[u8]) -> usize {
        let meta = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
        HEADER_LEN + meta + 8
    }

    /// Found by `fuzz/fuzz_targets/episode_shard.rs`: a huge compressed length overflowed the
    /// expansion bound (`compressed * 1100 + 4096`).
    #[test]
    fn huge_compressed_length_is_an_error_not_an_overflow() {
        let mut v = encode(&sample(), 1);
        let at = compressed_len_at(&v);
        v[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&v), Err(ShardError::Truncated("payload"))));
        assert!(matches!(read_header(&v), Err(ShardError::Truncated(_))));
    }

    /// A payload length within the expansion bound but larger than the real payload is refused
    /// after inflating what the file holds (the claim is reserved only up to RESERVE_LIMIT).
    #[test]
    fn an_inflated_payload_claim_is_refused() {
        let mut v = encode(&sample(), 1);
        let at = compressed_len_at(&v);
        let compressed = u64::from_le_bytes(v[at..at + 8].try_into().unwrap());
        let claim = compressed * 1100;
        v[at - 8..at].copy_from_slice(&claim.to_le_bytes());
        let err = decode(&v).unwrap_err().to_string();
        assert!(err.contains("header says"), "{err}");
    }
}
