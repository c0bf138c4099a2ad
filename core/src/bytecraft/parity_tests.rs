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
    use crate::bytecraft::generate::{
        Batcher, GenerationConfig, Job, Sample, StopReason, generate,
    };
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

    /// Run `jobs` through `slots` rows of continuous batching; samples in job order.
    fn run_queue(
        model: &Qwen2ForCausalLM<B>,
        prompts: &[Vec<u32>],
        jobs: &[Job],
        slots: usize,
        config: &GenerationConfig,
    ) -> (Vec<Sample>, Vec<usize>) {
        let device = Default::default();
        let batcher = Batcher {
            model,
            cfg: config,
            constraint: None,
            slots,
            device: &device,
        };
        let mut out: Vec<Option<Sample>> = vec![None; jobs.len()];
        let mut steps = Vec::new();
        batcher
            .run(
                prompts,
                jobs,
                |n| steps.push(n),
                |j, s| {
                    assert!(out[j].replace(s).is_none(), "job {j} ended twice");
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
        (out.into_iter().map(Option::unwrap).collect(), steps)
    }

    /// Prompts of different lengths share the batch: each row has its own positions and a
    /// mask over the other rows' longer histories. Greedy continuations of padded rows must be
    /// exactly transformers' (and our unpadded decoding's), whatever the number of slots.
    #[test]
    fn padded_rows_decode_exactly_as_alone() {
        for fixture in ["gqa", "mqa", "mha_tied"] {
            let (model, expected) = load(fixture);
            let device = Default::default();
            // The two transformers cases plus prefixes of them: lengths 1..6, in mixed order.
            let mut prompts: Vec<Vec<u32>> =
                expected.greedy.iter().map(|c| c.ids.clone()).collect();
            let long = expected.greedy[1].ids.clone();
            prompts.extend([long[..1].to_vec(), long[..4].to_vec(), long[..2].to_vec()]);
            let max_new = 24;
            let config = cfg(0.0, max_new);
            let alone: Vec<Vec<u32>> = prompts
                .iter()
                .map(|p| greedy(&model, p, max_new, &device).unwrap())
                .collect();
            for (case, want) in expected.greedy.iter().zip(&alone) {
                assert_eq!(case.new_ids[..max_new], want[..], "{fixture}");
            }
            // Two samples per prompt: 10 jobs through 1, 3 and 8 slots.
            let jobs: Vec<Job> = (0..prompts.len() * 2)
                .map(|j| Job {
                    prompt: j / 2,
                    seed: j as u64,
                })
                .collect();
            for slots in [1, 3, 8] {
                let (samples, steps) = run_queue(&model, &prompts, &jobs, slots, &config);
                for (job, sample) in jobs.iter().zip(&samples) {
                    assert_eq!(sample.tokens, alone[job.prompt], "{fixture} slots {slots}");
                    assert_eq!(sample.stop, StopReason::MaxTokens);
                }
                // The batch stays full while the queue lasts: jobs run in waves of `slots`,
                // and a slot that ends a sample draws the next job's first token in the same
                // step, so a wave costs max_new - 1 steps after the first.
                let waves = jobs.len().div_ceil(slots);
                assert_eq!(steps.len(), waves * (max_new - 1) + 1, "slots {slots}");
                assert!(
                    steps[..max_new - 1].iter().all(|&n| n == slots),
                    "{steps:?}"
                );
                assert_eq!(steps.iter().sum::<usize>(), jobs.len() * max_new);
            }
        }
    }

    /// Sampled samples do not depend on the batch: the same seeds give the same tokens through
    /// 1, 3 and 8 slots, with stop tokens ending samples at different times (so slots are
    /// refilled mid-flight across prompts).
    #[test]
    fn samples_do_not_depend_on_the_slots() {
        let (model, expected) = load("gqa");
        let prompts: Vec<Vec<u32>> = vec![
            expected.greedy[0].ids.clone(),
            expected.greedy[1].ids.clone(),
            vec![7, 300, 12, 5, 9, 100, 2, 3, 4],
        ];
        let mut config = cfg(1.0, 30);
        config.stop = (0..384).filter(|t| t % 23 == 0).collect();
        let jobs: Vec<Job> = (0..12)
            .map(|j| Job {
                prompt: j % 3,
                seed: 1000 + j as u64,
            })
            .collect();
        let (one, _) = run_queue(&model, &prompts, &jobs, 1, &config);
        let lengths: Vec<usize> = one.iter().map(|s| s.tokens.len()).collect();
        assert!(
            lengths.iter().any(|&l| l < 30) && lengths.iter().any(|&l| l > 3),
            "want samples of several lengths: {lengths:?}"
        );
        for slots in [3, 8] {
            let (many, _) = run_queue(&model, &prompts, &jobs, slots, &config);
            assert_eq!(many, one, "slots {slots}");
        }
    }
}
