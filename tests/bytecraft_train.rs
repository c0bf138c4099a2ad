//! Our own ByteCraft models end to end: `bytecraft tokenizer train`, `tokenize`/`detokenize`,
//! `bytecraft train` (fresh, resumed, refused), `generate` from the result, and the committed
//! export fixture checked against what transformers computed for it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn gamegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(args)
        .output()
        .expect("run gamegen")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "gamegen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn one_error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected exit 1");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A synthesised corpus and a small tokenizer trained on it.
fn corpus_and_tokenizer(dir: &Path) -> (PathBuf, PathBuf) {
    let corpus = dir.join("corpus");
    let tok = dir.join("tok");
    ok(&gamegen(&[
        "corpus",
        "synth",
        "--count",
        "24",
        "--seed",
        "5",
        "--out",
        s(&corpus),
    ]));
    let report: Value = serde_json::from_str(&ok(&gamegen(&[
        "bytecraft",
        "tokenizer",
        "train",
        "--corpus",
        s(&corpus),
        "--vocab",
        "330",
        "--text-vocab",
        "400",
        "--out",
        s(&tok),
    ])))
    .unwrap();
    assert_eq!(report["byte_tokens"], 330);
    assert!(
        report["bytes_per_token"].as_f64().unwrap() > 1.2,
        "{report}"
    );
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "byte_merges.json",
    ] {
        assert!(tok.join(f).is_file(), "{f}");
    }
    (corpus, tok)
}

#[test]
fn tokenize_then_detokenize_gives_the_file_back() {
    let dir = common::temp_dir("tok");
    let (corpus, tok) = corpus_and_tokenizer(dir.path());
    let swf = corpus.join("000003.swf");
    let line: Value = serde_json::from_str(&ok(&gamegen(&[
        "bytecraft",
        "tokenize",
        "--tokenizer",
        s(&tok),
        s(&swf),
    ])))
    .unwrap();
    let bytes = std::fs::read(&swf).unwrap();
    assert_eq!(&bytes[..3], b"FWS");
    assert_eq!(line["bytes"].as_u64().unwrap() as usize, bytes.len());
    let ids = line["ids"].as_array().unwrap();
    assert!(ids.len() < bytes.len(), "BPE compresses");
    let ids_file = dir.path().join("ids.json");
    std::fs::write(&ids_file, line.to_string()).unwrap();
    let back = dir.path().join("back.swf");
    ok(&gamegen(&[
        "bytecraft",
        "detokenize",
        "--tokenizer",
        s(&tok),
        "--ids-file",
        s(&ids_file),
        "--out",
        s(&back),
    ]));
    assert_eq!(std::fs::read(&back).unwrap(), bytes);

    // Bad input: one line each.
    std::fs::write(&ids_file, "[1, 2, oops]").unwrap();
    let err = one_error_line(&gamegen(&[
        "bytecraft",
        "detokenize",
        "--tokenizer",
        s(&tok),
        "--ids-file",
        s(&ids_file),
        "--out",
        s(&back),
    ]));
    assert!(err.contains("not valid JSON"), "{err}");
    let junk = dir.path().join("junk.swf");
    std::fs::write(&junk, b"not a swf at all").unwrap();
    let err = one_error_line(&gamegen(&[
        "bytecraft",
        "tokenize",
        "--tokenizer",
        s(&tok),
        s(&junk),
    ]));
    assert!(err.contains("not a readable SWF"), "{err}");
}

fn train_args<'a>(corpus: &'a Path, tok: &'a Path, out: &'a Path, steps: &'a str) -> Vec<&'a str> {
    vec![
        "bytecraft",
        "train",
        "--corpus",
        s(corpus),
        "--tokenizer",
        s(tok),
        "--out",
        s(out),
        "--steps",
        steps,
        "--batch",
        "2",
        "--context",
        "700,900",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--kv-heads",
        "1",
        "--intermediate",
        "48",
        "--val-files",
        "3",
        "--eval-every",
        "2",
        "--checkpoint-every",
        "2",
        "--seed",
        "9",
        "--warmup",
        "1",
    ]
}

fn log_lines(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("train-log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn train_resume_and_generate_from_the_result() {
    let dir = common::temp_dir("train");
    let (corpus, tok) = corpus_and_tokenizer(dir.path());

    // Straight through: 4 steps.
    let straight = dir.path().join("straight");
    let report: Value =
        serde_json::from_str(&ok(&gamegen(&train_args(&corpus, &tok, &straight, "4")))).unwrap();
    assert_eq!(report["steps"], 4);
    assert!(report["val_loss"].as_f64().unwrap() > 0.0);
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "byte_merges.json",
        "loss.png",
    ] {
        assert!(straight.join(f).is_file(), "{f}");
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("train-state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"], 4);
    assert_eq!(state["held_out"].as_array().unwrap().len(), 3);

    // Stopped after two steps, then resumed to four: the same examples at every step (same token counts),
    // the progressive context switching at the half.
    let resumed = dir.path().join("resumed");
    let mut first = train_args(&corpus, &tok, &resumed, "4");
    first.extend(["--stop-after", "2"]);
    ok(&gamegen(&first));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.join("train-state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"], 2);
    let mut more = train_args(&corpus, &tok, &resumed, "4");
    more.push("--resume");
    ok(&gamegen(&more));
    let train_lines = |out: &Path| -> Vec<(u64, u64, u64)> {
        log_lines(out)
            .iter()
            .filter(|l| l["stage"] == "train")
            .map(|l| {
                (
                    l["step"].as_u64().unwrap(),
                    l["tokens"].as_u64().unwrap(),
                    l["context"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let a = train_lines(&straight);
    assert_eq!(a, train_lines(&resumed));
    // With the optimiser state saved beside the checkpoint, the resumed run is the
    // uninterrupted one, bit for bit.
    assert!(resumed.join("optimizer-state.bin").is_file());
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(resumed.join("model.safetensors")).unwrap()
    );
    assert_eq!(
        a.iter().map(|l| l.2).collect::<Vec<_>>(),
        vec![700, 700, 900, 900]
    );

    // A finished or existing run is not overwritten by accident.
    let err = one_error_line(&gamegen(&train_args(&corpus, &tok, &straight, "4")));
    assert!(err.contains("--resume"), "{err}");
    let mut again = train_args(&corpus, &tok, &straight, "4");
    again.push("--resume");
    let err = one_error_line(&gamegen(&again));
    assert!(err.contains("already at step 4"), "{err}");

    // A context the prompts do not fit in is refused up front.
    let tight = dir.path().join("tight");
    let mut args = train_args(&corpus, &tok, &tight, "2");
    let i = args.iter().position(|a| *a == "700,900").unwrap();
    args[i] = "64";
    let err = one_error_line(&gamegen(&args));
    assert!(err.contains("leaves no room"), "{err}");

    // The trained directory is a checkpoint `generate` reads, and a sample gets a verdict.
    let samples = dir.path().join("gen");
    ok(&gamegen(&[
        "generate",
        "--model",
        s(&straight),
        "--prompt",
        "A red square.",
        "--samples",
        "2",
        "--max-new",
        "24",
        "--out",
        s(&samples),
        "--seed",
        "1",
    ]));
    let results = std::fs::read_to_string(samples.join("results.jsonl")).unwrap();
    let lines: Vec<Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(l["tokens"].as_u64().unwrap() <= 24, "{l}");
    }

    // Constrained: the grammar keeps room to finish, so every sample ends with eos as a file
    // that is valid as written (lengths patched), and the masked mass is recorded.
    let constrained = dir.path().join("constrained");
    ok(&gamegen(&[
        "generate",
        "--model",
        s(&straight),
        "--prompt",
        "A red square.",
        "--samples",
        "3",
        "--max-new",
        "200",
        "--out",
        s(&constrained),
        "--seed",
        "2",
        "--constrained",
        "--temperature",
        "1.0",
    ]));
    let results = std::fs::read_to_string(constrained.join("results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 3);
    for line in results.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let bytes = std::fs::read(constrained.join(l["file"].as_str().unwrap())).unwrap();
        assert!(bytes.starts_with(b"FWS"), "{l}");
        assert_eq!(l["stop"], "stop_token", "{l}");
        assert_eq!(l["valid_as_written"], true, "{l}");
        assert_eq!(l["patched"], true, "{l}");
        let masked = l["masked_mass"].as_f64().unwrap();
        assert!(masked > 0.0 && masked < 1.0, "{l}");
    }
    // Too small a budget for any finished file: one clear line.
    let out = gamegen(&[
        "generate",
        "--model",
        s(&straight),
        "--prompt",
        "A red square.",
        "--max-new",
        "20",
        "--out",
        s(&constrained),
        "--constrained",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--constrained needs --max-new >="), "{err}");
}

const TOLERANCE: f64 = 1e-4;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bytecraft/exported")
}

/// `tests/fixtures/bytecraft/exported` was trained and exported by `gamegen bytecraft train`;
/// transformers loaded it as Qwen2ForCausalLM and tokenizers re-encoded its byte tokens
/// (make_export_expected.py). Both must agree with us.
#[test]
fn our_export_matches_transformers_and_tokenizers() {
    let dir = fixture();
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let line: Value = serde_json::from_str(&ok(&gamegen(&[
        "bytecraft",
        "tokenize",
        "--tokenizer",
        s(&dir),
        s(&dir.join("sample.swf")),
    ])))
    .unwrap();
    assert_eq!(line["ids"], exp["file_ids"]);

    let tok = gamegen_native::bytecraft::tokenizer::TextTokenizer::open(&dir).unwrap();
    let prompt = exp["chat"]["prompt"].as_str().unwrap();
    // The export's own template executed, and the built-in ChatML, both equal transformers.
    let text = tok.chat_text(prompt, None).unwrap();
    assert_eq!(text, exp["chat"]["text"].as_str().unwrap());
    assert_eq!(
        gamegen_core::bytecraft::prompts::chat_text(prompt, None),
        text
    );
    let ids: Vec<u64> = tok
        .encode(&text)
        .unwrap()
        .into_iter()
        .map(u64::from)
        .collect();
    let want: Vec<u64> = exp["chat"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids, want);

    let seq = exp["logits_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let got: Value = serde_json::from_str(&ok(&gamegen(&[
        "bytecraft",
        "logits",
        "--model",
        s(&dir),
        "--ids",
        &seq,
    ])))
    .unwrap();
    let (got, want) = (
        got["logits"].as_array().unwrap(),
        exp["logits"].as_array().unwrap(),
    );
    assert_eq!(got.len(), want.len());
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        for (a, b) in g.as_array().unwrap().iter().zip(w.as_array().unwrap()) {
            worst = worst.max((a.as_f64().unwrap() - b.as_f64().unwrap()).abs());
        }
    }
    assert!(worst < TOLERANCE, "max |diff| {worst}");
}

/// SIGKILL in the middle of a run: the directory still loads, and `--resume` finishes it.
#[test]
fn a_killed_run_resumes_from_its_last_checkpoint() {
    let dir = common::temp_dir("killed");
    let (corpus, tok) = corpus_and_tokenizer(dir.path());
    let out = dir.path().join("run");
    let mut args = train_args(&corpus, &tok, &out, "400");
    let i = args
        .iter()
        .position(|a| *a == "--checkpoint-every")
        .unwrap();
    args[i + 1] = "1";
    let mut child = Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join("train-state.json");
    let started = std::time::Instant::now();
    while !state.is_file() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL on Unix
    let _ = child.wait();
    let read_step = || -> u64 {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        v["step"].as_u64().unwrap()
    };
    let at_kill = read_step();
    assert!(at_kill < 400, "killed before the end (step {at_kill})");
    // Whatever the kill interrupted, what is on disk is a complete checkpoint.
    ok(&gamegen(&[
        "bytecraft",
        "logits",
        "--model",
        s(&out),
        "--ids",
        "1,2,3",
    ]));
    let mut resume = args.clone();
    resume.extend(["--resume", "--stop-after", "3"]);
    ok(&gamegen(&resume));
    assert_eq!(read_step(), at_kill + 3);
    // The log holds each step once, in order, up to the resumed run's end.
    let steps: Vec<u64> = log_lines(&out)
        .iter()
        .filter(|l| l["stage"] == "train")
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=at_kill + 3).collect::<Vec<_>>());
}

/// Muon for the layer matrices, micro-batches spread over two "devices" (the CPU twice), and
/// a stop + resume in the middle: the same weights, bit for bit, as one uninterrupted run;
/// and two devices give the update of one device with accumulation (within 1e-5).
#[test]
fn muon_on_two_devices_resumes_exactly() {
    let dir = common::temp_dir("muon");
    let (corpus, tok) = corpus_and_tokenizer(dir.path());
    let with = |out: &Path, extra: &[&str]| -> String {
        let mut args = train_args(&corpus, &tok, out, "4");
        args.extend(["--optimizer", "muon", "--accum", "2"]);
        args.extend_from_slice(extra);
        ok(&gamegen(&args))
    };
    let straight = dir.path().join("straight");
    with(&straight, &["--devices", "2"]);
    let resumed = dir.path().join("resumed");
    with(&resumed, &["--devices", "2", "--stop-after", "2"]);
    with(&resumed, &["--devices", "2", "--resume"]);
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(weights(&straight), weights(&resumed));

    // One device with the same accumulation: the same update up to float summation order.
    // Resumed without `--devices`, the run keeps the one device it was started with.
    let single = dir.path().join("single");
    with(&single, &["--devices", "1", "--stop-after", "2"]);
    with(&single, &["--resume"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(single.join("train-state.json")).unwrap()).unwrap();
    assert_eq!(state["options"]["devices"], 1, "{state}");
    let floats = |d: &Path| -> Vec<f32> {
        let bytes = weights(d);
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        bytes[8 + header..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let (a, b) = (floats(&straight), floats(&single));
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "max weight difference {diff}");

    // Resuming with the other optimiser is refused, not silently restarted.
    let mut args = train_args(&corpus, &tok, &resumed, "6");
    args.extend(["--resume", "--optimizer", "adamw"]);
    let err = one_error_line(&gamegen(&args));
    assert!(err.contains("muon") && err.contains("adamw"), "{err}");
}
