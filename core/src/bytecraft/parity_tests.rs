//! Parity with Hugging Face transformers on the committed tiny checkpoints in
//! `tests/fixtures/bytecraft/` (made by `make_fixtures.py`; no Python at test time).
//!
//! Tolerance: 1e-4 absolute on every logit for all fixtures. The bf16 and f16 fixtures store
//! rounded weights, but their references were computed by transformers in f32 over those same
//! rounded weights, which is exactly what this crate does, so the f32 bound holds for them too.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;

use super::config::Qwen2Config;
use super::hf_layout::{CONFIG_FILE, INDEX_FILE, SINGLE_WEIGHTS_FILE, shard_files};
use super::model::Qwen2ForCausalLM;
use super::weights::{SafetensorsShards, WeightError};
use super::{greedy, logits};

type B = NdArray<f32>;
const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    sequences: Vec<LogitCase>,
    greedy: Vec<GreedyCase>,
}

#[derive(Deserialize)]
struct LogitCase {
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct GreedyCase {
    ids: Vec<u32>,
    max_new: usize,
    new_ids: Vec<u32>,
}

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/bytecraft")
        .join(name)
}

/// (file label, bytes) of the fixture's weights, single file or shards.
fn weight_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let files = match std::fs::read_to_string(dir.join(INDEX_FILE)) {
        Ok(index) => shard_files(&index).unwrap(),
        Err(_) => vec![SINGLE_WEIGHTS_FILE.to_string()],
    };
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

fn load(name: &str) -> (Qwen2ForCausalLM<B>, Expected) {
    let dir = fixture_dir(name);
    let config =
        Qwen2Config::from_json(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    let files = weight_files(&dir);
    let source =
        SafetensorsShards::new(files.iter().map(|(l, b)| (l.clone(), b.as_slice()))).unwrap();
    let model = Qwen2ForCausalLM::<B>::load(&config, &source, &Default::default()).unwrap();
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    (model, expected)
}

fn check_fixture(name: &str) {
    let (model, expected) = load(name);
    let device = Default::default();
    for case in &expected.sequences {
        let got = logits(&model, &case.ids, &device).unwrap();
        assert_eq!(got.len(), case.logits.len());
        let mut worst = 0f32;
        for (g_row, e_row) in got.iter().zip(&case.logits) {
            assert_eq!(g_row.len(), e_row.len());
            for (g, e) in g_row.iter().zip(e_row) {
                worst = worst.max((g - e).abs());
            }
        }
        eprintln!("{name} {:?}: max abs logit diff {worst:.2e}", case.ids);
        assert!(
            worst <= TOLERANCE,
            "{name} {:?}: max |diff| {worst}",
            case.ids
        );
    }
    for case in &expected.greedy {
        let got = greedy(&model, &case.ids, case.max_new, &device).unwrap();
        assert_eq!(got, case.new_ids, "{name}: greedy from {:?}", case.ids);
    }
}

#[test]
fn gqa_untied_transformers4_config() {
    check_fixture("gqa");
}

#[test]
fn mha_tied() {
    check_fixture("mha_tied");
}

#[test]
fn mqa_single_kv_head() {
    check_fixture("mqa");
}

#[test]
fn sharded_checkpoint() {
    check_fixture("sharded");
}

#[test]
fn bf16_weights_computed_in_f32() {
    check_fixture("bf16");
}

#[test]
fn f16_weights_computed_in_f32() {
    check_fixture("f16");
}

#[test]
fn cached_steps_and_batch_rows_match_one_full_forward() {
    let (model, expected) = load("gqa");
    let device = Default::default();
    let case = &expected.sequences[1];
    let ids: Vec<i64> = case.ids.iter().map(|&i| i as i64).collect();
    let n = ids.len();
    // Two identical rows, fed as a 5-token prefix then one token at a time.
    let batch: Vec<i64> = ids.iter().chain(ids.iter()).copied().collect();
    let all = Tensor::<B, 2, Int>::from_data(TensorData::new(batch, [2, n]), &device);
    let mut cache = model.new_cache();
    let mut rows = vec![model.forward(all.clone().slice([0..2, 0..5]), &mut cache)];
    for t in 5..n {
        rows.push(model.forward(all.clone().slice([0..2, t..t + 1]), &mut cache));
    }
    assert_eq!(cache.len(), n);
    let got = Tensor::cat(rows, 1).into_data().to_vec::<f32>().unwrap();
    let vocab = model.vocab_size;
    for row in 0..2 {
        for (t, e_row) in case.logits.iter().enumerate() {
            let start = (row * n + t) * vocab;
            for (g, e) in got[start..start + vocab].iter().zip(e_row) {
                assert!((g - e).abs() <= TOLERANCE, "row {row} pos {t}: {g} vs {e}");
            }
        }
    }
}

#[test]
fn wrong_shape_and_missing_tensors_are_named_with_both_shapes() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = fixture_dir("mha_tied");
    let config =
        Qwen2Config::from_json(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join(SINGLE_WEIGHTS_FILE)).unwrap();
    let original = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let bad_name = "model.layers.1.self_attn.k_proj.weight";
    let short: Vec<u8> = vec![0; 4 * 31 * 32];
    let mut views: Vec<(String, TensorView<'_>)> = original
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != bad_name && n != "model.norm.weight")
        .collect();
    views.push((
        bad_name.to_string(),
        TensorView::new(Dtype::F32, vec![31, 32], &short).unwrap(),
    ));
    let with_bad_shape = safetensors::serialize(views.clone(), None).unwrap();
    let source =
        SafetensorsShards::new([("bad.safetensors".to_string(), with_bad_shape.as_slice())])
            .unwrap();
    let err = Qwen2ForCausalLM::<B>::load(&config, &source, &Default::default()).unwrap_err();
    assert!(matches!(err, WeightError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(bad_name) && msg.contains("[31, 32]") && msg.contains("[32, 32]"),
        "{msg}"
    );

    views.retain(|(n, _)| n != bad_name);
    let without = safetensors::serialize(views, None).unwrap();
    let source =
        SafetensorsShards::new([("m.safetensors".to_string(), without.as_slice())]).unwrap();
    let msg = Qwen2ForCausalLM::<B>::load(&config, &source, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains(bad_name) && msg.contains("missing"), "{msg}");

    let truncated = &bytes[..bytes.len() - 100];
    let msg = SafetensorsShards::new([("cut.safetensors".to_string(), truncated)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("cut.safetensors") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn out_of_vocabulary_ids_are_an_error_not_a_panic() {
    let (model, _) = load("mha_tied");
    let err = logits(&model, &[1, 320], &Default::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token id 320 is outside the vocabulary (size 320)"
    );
    assert!(greedy(&model, &[], 3, &Default::default()).is_err());
}

mod batched_generation {
    use super::*;
    use crate::bytecraft::generate::{GenerationConfig, StopReason, generate};
    use crate::bytecraft::sampler::SamplingConfig;

    fn cfg(temperature: f32, max_new: usize) -> GenerationConfig {
        GenerationConfig {
            max_new,
            sampling: SamplingConfig {
                temperature,
                ..Default::default()
            },
            stop: vec![],
            allowed: None,
        }
    }

    #[test]
    fn temperature_zero_batch_equals_transformers_greedy() {
        let (model, expected) = load("mqa");
        let case = &expected.greedy[1];
        let out = generate(
            &model,
            &case.ids,
            &[1, 2, 3],
            &cfg(0.0, case.max_new),
            &Default::default(),
            |_| {},
        )
        .unwrap();
        for s in &out {
            assert_eq!(s.tokens, case.new_ids);
            assert_eq!(s.stop, StopReason::MaxTokens);
        }
    }

    #[test]
    fn stop_tokens_end_samples_and_the_batch_shrinks() {
        let (model, expected) = load("gqa");
        let case = &expected.greedy[0];
        let stop = case.new_ids[4];
        let first = case.new_ids.iter().position(|&t| t == stop).unwrap();
        let mut config = cfg(0.0, case.max_new);
        config.stop = vec![stop];
        let mut steps = Vec::new();
        let out = generate(
            &model,
            &case.ids,
            &[5, 6],
            &config,
            &Default::default(),
            |n| steps.push(n),
        )
        .unwrap();
        for s in &out {
            assert_eq!(s.tokens, case.new_ids[..=first]);
            assert_eq!(s.stop, StopReason::StopToken);
        }
        assert_eq!(steps, vec![2; first + 1]);
    }

    #[test]
    fn seeds_make_samples_reproducible_and_the_mask_holds() {
        let (model, _) = load("gqa");
        let device = Default::default();
        let mut config = cfg(1.0, 12);
        config.allowed = Some((100..200).collect());
        let batch = generate(&model, &[3, 1, 4], &[11, 12, 11], &config, &device, |_| {}).unwrap();
        assert_eq!(batch[0].tokens, batch[2].tokens);
        assert_ne!(batch[0].tokens, batch[1].tokens);
        let alone = generate(&model, &[3, 1, 4], &[12], &config, &device, |_| {}).unwrap();
        assert_eq!(alone[0].tokens, batch[1].tokens);
        for s in &batch {
            assert_eq!(s.tokens.len(), 12);
            assert!(
                s.tokens.iter().all(|t| (100..200).contains(t)),
                "{:?}",
                s.tokens
            );
        }
    }
}
