//! The episode shard reader (`gamegen collect` output, read back by `gamegen world train` and
//! when resuming a collection): header check, bounded zlib inflation, columnar payload.
//! Nothing may panic or allocate without bound, and an episode that decodes must encode to a
//! shard that decodes to the same episode.

#![no_main]

use gamegen_core::data::shard::{decode, encode, read_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = read_header(data);
    if let Ok(ep) = decode(data) {
        let h = header.expect("a shard that decodes has a valid header");
        assert_eq!(h.frames, ep.len());
        assert_eq!((h.seed, h.index, h.game), (ep.seed, ep.index, ep.game));
        let again = decode(&encode(&ep, 1)).expect("re-encoded shard decodes");
        assert_eq!(again, ep);
    }
});
