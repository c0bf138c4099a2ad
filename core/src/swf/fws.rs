//! Any SWF as an uncompressed `FWS` file: the form ByteCraft's training data (almost certainly)
//! had, and the form our models learn and write.

use super::decompress::Ending;
use super::header::{self, HeaderError};

#[derive(Debug, thiserror::Error)]
pub enum FwsError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the compressed body does not decompress completely")]
    Incomplete,
}

/// `bytes` with the body decompressed, signature `FWS` and the length field set to the real
/// size. `max_body` bounds decompression like validation does.
pub fn to_fws(bytes: &[u8], max_body: usize) -> Result<Vec<u8>, FwsError> {
    let parsed = header::parse(bytes, max_body)?;
    if !matches!(parsed.body.ending, Ending::Complete) {
        return Err(FwsError::Incomplete);
    }
    let body = &parsed.body.data;
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(b"FWS");
    out.push(parsed.version);
    out.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn zlib_files_become_the_same_bytes_uncompressed() {
        let body: Vec<u8> =
            b"\x78\x00\x05\x5f\x00\x00\x0f\xa0\x00\x00\x18\x01\x00\x40\x00\x00\x00".to_vec();
        let mut fws = b"FWS\x0a".to_vec();
        fws.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
        fws.extend_from_slice(&body);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&body).unwrap();
        let mut cws = b"CWS\x0a".to_vec();
        cws.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
        cws.extend_from_slice(&z.finish().unwrap());
        assert_eq!(to_fws(&cws, 1 << 20).unwrap(), fws);
        assert_eq!(to_fws(&fws, 1 << 20).unwrap(), fws);
        assert!(to_fws(&cws[..cws.len() - 3], 1 << 20).is_err());
        assert!(to_fws(b"GIF89a", 1 << 20).is_err());
    }
}
