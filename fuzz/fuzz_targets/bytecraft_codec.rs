//! ByteCraft text <-> bytes, whatever the input: the alphabet (file -> text -> file, and
//! arbitrary UTF-8 text -> bytes), both file codecs of a real tokenizer (learnt merges and
//! longest-match), decoding arbitrary token ids, and the BPE trainer on the input itself.
//! Nothing may panic, and every encoding must decode back to the exact input.

#![no_main]

use std::sync::OnceLock;

use gamegen_core::bytecraft::bpe::{BpeTrainConfig, ByteBpe, train};
use gamegen_core::bytecraft::file_codec::FileCodec;
use gamegen_core::bytecraft::{Alphabet, ByteTokens};
use libfuzzer_sys::fuzz_target;

/// The exported test tokenizer: 256 single-byte tokens, learnt merges, specials.
const TOKENIZER: &str = include_str!("../../tests/fixtures/bytecraft/exported/tokenizer.json");
const MERGES: &str = include_str!("../../tests/fixtures/bytecraft/exported/byte_merges.json");

struct Fixed {
    tokens: ByteTokens,
    merges: FileCodec,
    longest: FileCodec,
    max_id: u32,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let tokens = ByteTokens::from_tokenizer_json(TOKENIZER).expect("fixture tokenizer");
        let bpe: ByteBpe = serde_json::from_str(MERGES).expect("fixture merges");
        let merges = FileCodec::new(&tokens, Some(bpe)).expect("merges codec");
        let longest = FileCodec::new(&tokens, None).expect("longest-match codec");
        let max_id = *tokens.byte_ids().last().expect("byte tokens");
        Fixed {
            tokens,
            merges,
            longest,
            max_id,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let a = Alphabet::get();

    // A file written as the model sees it decodes to itself.
    let text = a.file_to_text(data);
    let back = a.decode_generation(&text).expect("alphabet text decodes");
    assert_eq!(back.bytes, data);
    assert!(back.complete);

    // Arbitrary text: an error or bytes, and bytes that spell the text again.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = a.decode_generation(s);
        if let Ok(bytes) = a.text_to_bytes(s) {
            assert_eq!(a.bytes_to_text(&bytes), s);
        }
    }

    // Both codecs of a real tokenizer: ids decode to the file.
    let f = fixed();
    for codec in [&f.merges, &f.longest] {
        let ids = codec.encode(data).expect("every byte has a token");
        assert_eq!(ids.first(), Some(&codec.bos()));
        assert_eq!(ids.last(), Some(&codec.eos()));
        let decoded = f.tokens.decode(&ids).expect("byte tokens decode");
        assert_eq!(decoded.bytes, data);
        assert!(decoded.complete);
    }

    // Arbitrary ids (byte tokens and others) decode or fail cleanly.
    let ids: Vec<u32> = data[..data.len().min(512)]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32 % (f.max_id + 16))
        .collect();
    let _ = f.tokens.decode(&ids);

    // The BPE trainer on (the start of) the input: merges refer backwards, respect the piece
    // limit, and encoding with them round-trips.
    if let [m, p, rest @ ..] = &data[..data.len().min(1024)] {
        let config = BpeTrainConfig {
            merges: (*m % 48) as usize,
            max_piece_bytes: 1 + (*p % 8) as usize,
            min_count: 2,
        };
        let docs: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();
        let bpe = train(docs.iter().copied(), &config);
        bpe.validate().expect("trained merges are valid");
        let pieces = bpe.pieces();
        assert!(pieces.iter().all(|p| p.len() <= config.max_piece_bytes));
        let enc = bpe.encoder();
        for doc in docs {
            let spelled: Vec<u8> = enc
                .encode(doc)
                .iter()
                .flat_map(|&id| pieces[id as usize].iter().copied())
                .collect();
            assert_eq!(spelled, doc);
        }
    }
});
