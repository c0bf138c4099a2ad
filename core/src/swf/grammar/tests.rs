//! Grammar tests: every synthetic file byte for byte, refusals, the closing path from any
//! point, patching, and a random-weights model decoded through the token mask.

use super::mask::SwfGrammar;
use super::patch::{PatchError, patch};
use super::*;
use crate::swf::synth::synthesize;
use crate::swf::validate;

fn synth(seed: u64, index: u64) -> Vec<u8> {
    synthesize(seed, index).bytes
}

/// A file has a visible shape placed on stage: some DefineShape3 id is placed by a top-level
/// PlaceObject2 (checked with the swf crate, independently of the grammar's own tracking).
fn places_a_shape(file: &[u8]) -> bool {
    let buf = swf::decompress_swf(file).expect("parses");
    let parsed = swf::parse_swf(&buf).expect("parses");
    let shapes: Vec<u16> = parsed
        .tags
        .iter()
        .filter_map(|t| match t {
            swf::Tag::DefineShape(s) => Some(s.id),
            _ => None,
        })
        .collect();
    parsed.tags.iter().any(|t| match t {
        swf::Tag::PlaceObject(p) => {
            matches!(p.action, swf::PlaceObjectAction::Place(id) if shapes.contains(&id))
        }
        _ => false,
    })
}

#[test]
fn every_synth_file_is_accepted_byte_for_byte() {
    let mut games = 0;
    for i in 0..80 {
        let s = synthesize(3, i);
        games += usize::from(s.record.attributes.player.is_some());
        let mut g = Grammar::default();
        for (k, &b) in s.bytes.iter().enumerate() {
            assert!(!g.is_done(), "file {i}: done before byte {k}");
            assert!(g.push(b), "file {i}: byte {k} ({b:#04x}) refused");
        }
        assert!(g.is_done(), "file {i}: not finished at its end");
        assert!(!g.push(0), "file {i}: a byte after the End tag");
        assert_eq!(
            patch(&s.bytes).unwrap(),
            s.bytes,
            "file {i}: patching changes nothing"
        );
    }
    assert!(games > 10, "games among the files: {games}");
}

#[test]
fn what_the_profile_refuses() {
    let good = synth(1, 0);
    let header_len = {
        let rect = (5 + 4 * usize::from(good[8] >> 3)).div_ceil(8);
        8 + rect + 4
    };
    let after_header = |tail: &[u8]| [&good[..header_len], tail].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("compressed signature", b"CWS".to_vec()),
        ("another version", [b"FWS".as_slice(), &[9]].concat()),
        (
            "a first tag other than FileAttributes",
            after_header(&[0x40, 0x00]),
        ),
        (
            "DoABC",
            after_header(&[0x44, 0x11, 0, 0, 0, 0, (82 << 6) as u8, (82 >> 2) as u8]),
        ),
        (
            "an unknown tag",
            after_header(&[0x44, 0x11, 0, 0, 0, 0, 0xc0, 0xff]),
        ),
        (
            "End before anything was shown",
            after_header(&[0x44, 0x11, 0, 0, 0, 0, 0x40, 0x00, 0x00, 0x00]),
        ),
        ("a byte after End", [good.as_slice(), &[0]].concat()),
    ];
    for (name, bytes) in cases {
        let mut g = Grammar::default();
        assert!(!g.push_all(&bytes), "{name} accepted");
        assert_eq!(
            patch(&bytes).map(|_| ()),
            Err(PatchError::Rejected(
                (0..bytes.len())
                    .find(|&k| !Grammar::default().push_all(&bytes[..=k]))
                    .unwrap()
            )),
            "{name}"
        );
    }
}

#[test]
fn the_closing_path_finishes_any_prefix_into_a_strictly_valid_file() {
    let mut n = 0;
    for i in 0..24 {
        let file = synth(9, i);
        for cut in (0..file.len()).step_by(file.len() / 13 + 1) {
            let mut g = Grammar::default();
            assert!(g.push_all(&file[..cut]));
            let rest = g.closing_bytes().expect("a closing path");
            assert!(
                g.rough_rest() >= rest.len(),
                "file {i} cut at {cut}: rough bound {} below the closing path's {}",
                g.rough_rest(),
                rest.len()
            );
            assert_eq!(g.closing_len(usize::MAX), Some(rest.len()));
            let whole = [&file[..cut], rest.as_slice()].concat();
            let fixed = patch(&whole).expect("patches");
            let r = validate(&fixed);
            assert!(
                r.valid_as_written,
                "file {i} cut at {cut}: {:?}",
                r.findings
            );
            assert!(places_a_shape(&fixed), "file {i} cut at {cut}");
            n += 1;
        }
    }
    assert!(n > 200, "{n} prefixes");
    // From nothing: the shortest file the profile allows.
    let shortest = Grammar::default().closing_bytes().unwrap();
    let r = validate(&patch(&shortest).unwrap());
    assert!(r.valid_as_written, "{:?}", r.findings);
    assert!(shortest.len() < 120, "{} bytes", shortest.len());
}

#[test]
fn patching_sets_lengths_sizes_and_frame_counts() {
    for i in 0..30 {
        let good = synth(4, i);
        let mut bad = good.clone();
        // Header length and frame count wrong; then every short tag length off by one.
        bad[4..8].copy_from_slice(&7u32.to_le_bytes());
        let rect = (5 + 4 * usize::from(good[8] >> 3)).div_ceil(8);
        bad[8 + rect + 2] ^= 0x05;
        let mut at = 8 + rect + 4;
        while at + 2 <= bad.len() {
            let word = u16::from_le_bytes([bad[at], bad[at + 1]]);
            let (code, short) = (word >> 6, word & 0x3f);
            let (hdr, len) = if short == 0x3f {
                let l = u32::from_le_bytes([bad[at + 2], bad[at + 3], bad[at + 4], bad[at + 5]]);
                (6, l as usize)
            } else {
                (2, short as usize)
            };
            if short < 0x3e && code != 39 {
                bad[at..at + 2].copy_from_slice(&((code << 6) | (short + 1)).to_le_bytes());
            }
            at += hdr + len;
        }
        assert!(!validate(&bad).valid_as_written);
        assert_eq!(patch(&bad).unwrap(), good, "file {i}");
    }
}

fn tiny_model(vocab: usize) -> crate::bytecraft::model::Qwen2ForCausalLM<burn::backend::NdArray> {
    use crate::bytecraft::config::Qwen2Config;
    use crate::bytecraft::init::random_weights;
    let config = Qwen2Config::from_json(&format!(
        r#"{{"vocab_size": {vocab}, "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "rope_theta": 10000.0, "tie_word_embeddings": true}}"#
    ))
    .unwrap();
    crate::bytecraft::model::Qwen2ForCausalLM::load(
        &config,
        &random_weights(&config, 7),
        &Default::default(),
    )
    .unwrap()
}

/// Decode `seeds` samples of a random model through the grammar; return the patched files.
fn decode_random(max_new: usize, seeds: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    use crate::bytecraft::generate::{GenerationConfig, StopReason, generate_constrained};
    use crate::bytecraft::sampler::SamplingConfig;
    let (tokens, vocab) = crate::bytecraft::constrained::tests::tokens();
    let model = tiny_model(vocab);
    let eos = tokens.eos_id().unwrap();
    let cfg = GenerationConfig {
        max_new,
        sampling: SamplingConfig {
            temperature: 1.0,
            top_p: 1.0,
            min_p: 0.0,
            top_k: 0,
        },
        stop: vec![eos],
        allowed: Some(tokens.byte_ids().to_vec()),
    };
    let grammar = SwfGrammar::new(&tokens, vocab);
    let seeds: Vec<u64> = seeds.collect();
    let samples = generate_constrained(
        &model,
        &[1, 2],
        &seeds,
        &cfg,
        Some(&grammar),
        &Default::default(),
        |_| {},
    )
    .unwrap();
    samples
        .iter()
        .map(|s| {
            assert_eq!(
                s.stop,
                StopReason::StopToken,
                "seed {}: ended by eos",
                s.seed
            );
            assert!(s.tokens.len() <= max_new);
            assert!(s.masked_mass > 0.0, "the grammar masked something");
            let file = tokens.decode(&s.tokens).unwrap();
            assert!(file.complete);
            patch(&file.bytes).expect("a finished file patches")
        })
        .collect()
}

#[test]
fn a_random_model_through_the_grammar_writes_strictly_valid_files_that_show_a_shape() {
    let files = decode_random(600, 0..8);
    for (k, file) in files.iter().enumerate() {
        let r = validate(file);
        assert!(r.valid_as_written, "sample {k}: {:?}", r.findings);
        assert!(places_a_shape(file), "sample {k}");
    }
    // The model chose: the files differ, and they are not all the shortest file.
    let shortest = patch(&Grammar::default().closing_bytes().unwrap()).unwrap();
    let distinct: std::collections::BTreeSet<&Vec<u8>> = files.iter().collect();
    let sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    assert!(distinct.len() >= 6, "sizes {sizes:?}");
    assert!(
        files
            .iter()
            .filter(|f| f.len() > shortest.len() + 40)
            .count()
            >= 2,
        "sizes {sizes:?}, shortest {}",
        shortest.len()
    );
}

#[test]
fn an_exhausted_budget_still_closes_the_file() {
    let least = SwfGrammar::min_tokens();
    for (k, file) in decode_random(least + 6, 10..16).iter().enumerate() {
        let r = validate(file);
        assert!(r.valid_as_written, "sample {k}: {:?}", r.findings);
        assert!(places_a_shape(file), "sample {k}");
    }
}
