//! Script decoding checks: AVM1 action streams and AVM2 ABC blocks with their method bodies.
//!
//! A player only decodes a script when it runs it, so a file whose scripts are garbage can still
//! load and show its first frame; a generator whose output "works" should produce scripts that
//! decode end to end, which is what these checks require. They read linearly with the swf crate's
//! own readers, so whatever Ruffle's decoder refuses is refused here too.

use swf::extensions::ReadSwfExt;

/// Decode one AVM1 action stream. Returns the number of actions before `End` (or the end of the
/// data: a missing final `End` is tolerated, as players stop at the end of the block anyway).
pub fn avm1(data: &[u8], version: u8) -> Result<u64, String> {
    let mut reader = swf::avm1::read::Reader::new(data, version);
    let mut count = 0u64;
    loop {
        if reader.get_ref().is_empty() {
            return Ok(count);
        }
        let offset = data.len() - reader.get_ref().len();
        match reader.read_action() {
            Ok(swf::avm1::types::Action::End) => return Ok(count),
            Ok(_) => count += 1,
            Err(e) => return Err(format!("action {count} at offset {offset}: {e}")),
        }
    }
}

/// What an ABC block decoded to.
#[derive(Debug, Default, Clone, Copy)]
pub struct AbcCounts {
    pub method_bodies: u32,
    pub ops: u64,
}

/// Decode one ABC block and every method body's instruction stream.
pub fn avm2(data: &[u8]) -> Result<AbcCounts, String> {
    // The crate reserves a trait's metadata count up front; refuse counts the data cannot back.
    super::abc_guard::check(data)?;
    let abc = swf::avm2::read::Reader::new(data)
        .read()
        .map_err(|e| format!("ABC: {e}"))?;
    let mut counts = AbcCounts::default();
    for (i, body) in abc.method_bodies.iter().enumerate() {
        let code = &body.code[..];
        let mut reader = swf::avm2::read::Reader::new(code);
        while !reader.as_slice().is_empty() {
            let offset = code.len() - reader.as_slice().len();
            reader
                .read_op()
                .map_err(|e| format!("method body {i}, op at offset {offset}: {e}"))?;
            counts.ops += 1;
        }
        counts.method_bodies += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avm1_counts_until_end() {
        // Play (0x06), Stop (0x07), End.
        assert_eq!(avm1(&[0x06, 0x07, 0x00, 0x06], 8), Ok(2));
        // No End: tolerated.
        assert_eq!(avm1(&[0x06], 8), Ok(1));
    }

    #[test]
    fn avm1_truncated_action_is_an_error() {
        // Push (0x96) claiming 10 bytes, only 1 present.
        let err = avm1(&[0x96, 10, 0, 1], 8).unwrap_err();
        assert!(err.contains("action 0"), "{err}");
    }

    #[test]
    fn avm2_garbage_is_an_error() {
        assert!(avm2(&[0xff; 3]).is_err());
    }
}
