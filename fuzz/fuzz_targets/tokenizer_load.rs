//! Loading a ByteCraft tokenizer: `tokenizer.json` (its byte tokens, found by content) and
//! optionally `byte_merges.json`, then building the file codec from them, as
//! `gamegen generate` and `gamegen bytecraft tokenize` do. The input is the tokenizer text,
//! optionally followed by a NUL byte and the merges text. Nothing may panic or allocate
//! without bound; a codec that loads must encode and decode a file exactly.

#![no_main]

use gamegen_core::bytecraft::ByteTokens;
use gamegen_core::bytecraft::bpe::ByteBpe;
use gamegen_core::bytecraft::file_codec::FileCodec;
use libfuzzer_sys::fuzz_target;

const SAMPLE: &[u8] =
    b"FWS\x0a\x40\x00\x00\x00\x78\x00\x05\x5f\x00\x00\x0f\xa0\x00\x00\x18\x01\x00";

fuzz_target!(|data: &[u8]| {
    let (tok, merges) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(tok) = std::str::from_utf8(tok) else {
        return;
    };
    let Ok(tokens) = ByteTokens::from_tokenizer_json(tok) else {
        return;
    };
    let _ = tokens.bos_id();
    let _ = tokens.eos_id();
    let _ = tokens.pad_id();
    // Every byte token's text decodes or fails cleanly.
    let _ = tokens.decode(tokens.byte_ids());
    let bpe = merges.and_then(|m| serde_json::from_slice::<ByteBpe>(m).ok());
    let Ok(codec) = FileCodec::new(&tokens, bpe) else {
        return;
    };
    // Longest-match may lack a byte's token (an error); what encodes must decode exactly.
    if let Ok(ids) = codec.encode(SAMPLE) {
        let file = tokens.decode(&ids).expect("encoded ids are byte tokens");
        assert_eq!(file.bytes, SAMPLE);
    }
});
