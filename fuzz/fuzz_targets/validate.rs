//! The validator must never panic, whatever the bytes, and its report must be self-consistent.
//! Level 1 is also held to the swf crate's own answer (`swf::decompress_swf`) when the length
//! field is small enough for the crate's up-front reservation to be cheap.

#![no_main]

use gamegen_core::swf::{Options, Verdict, header, validate_with};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        max_body_len: LIMIT,
        ..Options::default()
    };
    let r = validate_with(data, &opts);
    assert_eq!(r.verdict == Verdict::Broken, r.level_reached == 0);
    assert_eq!(r.verdict == Verdict::Valid, r.first_error.is_none());
    if data.len() >= 8 {
        let declared = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
        if declared <= LIMIT {
            let ours = header::parse(data, LIMIT).is_ok();
            let theirs = swf::decompress_swf(data).is_ok();
            assert_eq!(ours, theirs, "level 1 disagrees with swf::decompress_swf");
        }
    }
});
