//! `gamegen bytecraft logits|greedy` end to end: the binary against the committed transformers
//! fixtures (default `cpu` backend and `ndarray`), and bad checkpoints giving one error line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bytecraft")
        .join(name)
}

fn gamegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(args)
        .output()
        .expect("run gamegen")
}

fn expected(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("expected.json")).unwrap())
        .unwrap()
}

fn ids_arg(ids: &Value) -> String {
    ids.as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "gamegen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn logits_match_transformers_on_cpu_and_ndarray() {
    let exp = expected("gqa");
    let case = &exp["sequences"][1];
    let dir = fixture("gqa");
    for backend in ["cpu", "ndarray"] {
        let out = gamegen(&[
            "bytecraft",
            "logits",
            "--model",
            dir.to_str().unwrap(),
            "--ids",
            &ids_arg(&case["ids"]),
            "--backend",
            backend,
        ]);
        let got = stdout_json(&out);
        let got = got["logits"].as_array().unwrap();
        let want = case["logits"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (g_row, w_row) in got.iter().zip(want) {
            let (g_row, w_row) = (g_row.as_array().unwrap(), w_row.as_array().unwrap());
            assert_eq!(g_row.len(), 384);
            for (g, w) in g_row.iter().zip(w_row) {
                let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
                assert!((g - w).abs() <= TOLERANCE, "{backend}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn greedy_matches_transformers_on_a_sharded_checkpoint() {
    let exp = expected("sharded");
    let case = &exp["greedy"][0];
    let out = gamegen(&[
        "bytecraft",
        "greedy",
        "--model",
        fixture("sharded").to_str().unwrap(),
        "--ids",
        &ids_arg(&case["ids"]),
        "--max-new",
        &case["max_new"].to_string(),
    ]);
    assert_eq!(stdout_json(&out)["ids"], case["new_ids"]);
}

/// A scratch copy of a fixture that a test may damage.
fn scratch_copy(name: &str, tag: &str) -> common::TmpPath {
    let dir = common::tmp(&format!("bytecraft-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

/// Run `logits` on `dir` and return the single error line, checking the failure is clean.
fn error_line(dir: &Path) -> String {
    let out = gamegen(&[
        "bytecraft",
        "logits",
        "--model",
        dir.to_str().unwrap(),
        "--ids",
        "3,1,4",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn truncated_safetensors_is_one_clean_error() {
    let dir = scratch_copy("mha_tied", "truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = error_line(&dir);
    assert!(
        err.contains("model.safetensors") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn wrong_shape_names_the_tensor_and_both_shapes() {
    let dir = scratch_copy("mha_tied", "shape");
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["intermediate_size"] = 48.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let err = error_line(&dir);
    assert!(
        err.contains("model.layers.0.mlp.gate_proj.weight")
            && err.contains("[64, 32]")
            && err.contains("[48, 32]"),
        "{err}"
    );
}

#[test]
fn bad_config_missing_shard_and_bad_ids_are_clean_errors() {
    let dir = scratch_copy("sharded", "config");
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": ").unwrap();
    assert!(error_line(&dir).contains("config.json"));
    std::fs::copy(
        fixture("sharded").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    std::fs::remove_file(dir.join("model-00003-of-00004.safetensors")).unwrap();
    assert!(error_line(&dir).contains("model-00003-of-00004.safetensors"));

    let out = gamegen(&[
        "bytecraft",
        "greedy",
        "--model",
        fixture("gqa").to_str().unwrap(),
        "--ids",
        "3,9999",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("9999") && stderr.contains("vocabulary"),
        "{stderr}"
    );
}

fn generate_into(out: &Path, extra: &[&str]) -> Output {
    let model = fixture("tokenizer_layout");
    let mut args = vec![
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-new",
        "48",
        "--temperature",
        "1.0",
        "--seed",
        "5",
    ];
    args.extend_from_slice(extra);
    gamegen(&args)
}

fn results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn generate_writes_samples_resumes_and_is_reproducible() {
    let base = common::tmp("generate");
    let prompts = base.join("prompts.txt");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(&prompts, "a pong game\nŦ\nune animation\n").unwrap();
    let prompts = prompts.to_str().unwrap();

    // Two samples first, then four: the first two are skipped, not redone.
    let a = base.join("a");
    assert!(
        generate_into(&a, &["--prompts", prompts, "-n", "2"])
            .status
            .success()
    );
    let first = results(&a);
    assert_eq!(first.len(), 4);
    let out = generate_into(&a, &["--prompts", prompts, "-n", "4", "--batch", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 sample(s) generated (") && stdout.contains("), 4 already done"),
        "{stdout}"
    );
    let all = results(&a);
    assert_eq!(all.len(), 8);
    assert_eq!(all[..4], first[..]);

    // The same run in one go, another batch size, split in two shards: the same files.
    let b = base.join("b");
    for shard in ["0/2", "1/2"] {
        let out = generate_into(&b, &["--prompts", prompts, "-n", "4", "--shard", shard]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = |v: &Value| (v["prompt_id"].to_string(), v["sample"].as_u64().unwrap());
    let mut in_a = all.clone();
    let mut in_b = results(&b);
    in_a.sort_by_key(key);
    in_b.sort_by_key(key);
    assert_eq!(in_a, in_b);
    for line in &in_a {
        let file = line["file"].as_str().unwrap();
        let bytes = std::fs::read(a.join(file)).unwrap();
        assert_eq!(bytes, std::fs::read(b.join(file)).unwrap(), "{file}");
        assert_eq!(bytes.len() as u64, line["bytes"].as_u64().unwrap());
        let tokens = line["tokens"].as_u64().unwrap();
        assert!((1..=48).contains(&tokens));
        let stop = line["stop"].as_str().unwrap();
        assert!(
            stop == "stop_token" || (stop == "max_tokens" && tokens == 48),
            "{line}"
        );
        assert!(["valid", "damaged", "broken"].contains(&line["verdict"].as_str().unwrap()));
    }
    // No temporary files left behind.
    assert!(
        std::fs::read_dir(&a).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp"))
    );

    let bad = generate_into(&base.join("c"), &["--prompt", "x", "--top-p", "0"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("top_p"));
}

/// Continuous batching: prompts of different lengths share the batch and finished samples'
/// slots are refilled from the queue across prompts; the files do not depend on the batch
/// size (1, 3, 8) nor on sharding.
#[test]
fn any_batch_size_gives_byte_identical_files() {
    let base = common::tmp("cbatch");
    std::fs::create_dir_all(&base).unwrap();
    let prompts = base.join("prompts.txt");
    std::fs::write(
        &prompts,
        "pong\nŦ\na much longer prompt: a red square that bounces around a black stage, \
         with a score counter in the corner and two paddles\nŦ\nune animation\nŦ\nx\n",
    )
    .unwrap();
    let prompts = prompts.to_str().unwrap();
    let run = |name: &str, extra: &[&str]| -> (PathBuf, Vec<Value>) {
        let out = base.join(name);
        let mut args = vec!["--prompts", prompts, "-n", "3"];
        args.extend_from_slice(extra);
        let o = generate_into(&out, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let key = |v: &Value| (v["prompt_id"].to_string(), v["sample"].as_u64().unwrap());
        let mut lines = results(&out);
        lines.sort_by_key(key);
        (out, lines)
    };
    let (one, lines_one) = run("b1", &["--batch", "1"]);
    assert_eq!(lines_one.len(), 12);
    let tokens: Vec<u64> = lines_one
        .iter()
        .map(|l| l["tokens"].as_u64().unwrap())
        .collect();
    assert!(
        tokens.iter().any(|&t| t < 48) && tokens.contains(&48),
        "want samples that stop early and samples cut at the limit: {tokens:?}"
    );
    for (name, extra) in [
        ("b3", vec!["--batch", "3"]),
        ("b8", vec!["--batch", "8"]),
        ("b8s", vec!["--batch", "8", "--shard", "1/2"]),
    ] {
        let (dir, lines) = run(name, &extra);
        if name == "b8s" {
            let (_, rest) = run(name, &["--batch", "8", "--shard", "0/2"]);
            assert_eq!(rest, lines_one, "{name}");
        } else {
            assert_eq!(lines, lines_one, "{name}");
        }
        for line in &lines_one {
            let file = line["file"].as_str().unwrap();
            assert_eq!(
                std::fs::read(one.join(file)).unwrap(),
                std::fs::read(dir.join(file)).unwrap(),
                "{name}: {file}"
            );
        }
    }
}

/// A checkpoint whose chat template cannot be compiled is one clear error, and one whose
/// template raises for our messages stops generation with the template's message.
#[test]
fn a_broken_chat_template_is_a_clear_error() {
    for (tag, template, want) in [
        ("syntax", "{% for m in messages %}", "does not compile"),
        (
            "raise",
            "{{ raise_exception('this template takes no user turn') }}",
            "this template takes no user turn",
        ),
    ] {
        let dir = scratch_copy("tokenizer_layout", tag);
        let config_path = dir.join("tokenizer_config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        config["chat_template"] = Value::String(template.into());
        std::fs::write(&config_path, config.to_string()).unwrap();
        let out = gamegen(&[
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--prompt",
            "pong",
            "-n",
            "1",
            "--max-new",
            "4",
            "--out",
            dir.join("out").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{tag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{tag}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `--prompts` takes the manifest of `gamegen corpus synth` (ids from `name`), and a malformed
/// JSON Lines file is one error line naming the file and the line.
#[test]
fn generate_reads_a_synth_manifest_and_names_a_bad_line() {
    let base = common::tmp("gen-manifest");
    let synth = base.join("synth");
    let out = gamegen(&[
        "corpus",
        "synth",
        "--count",
        "2",
        "--seed",
        "3",
        "--out",
        synth.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let manifest = synth.join("manifest.jsonl");
    let out = generate_into(
        &base.join("out"),
        &["--prompts", manifest.to_str().unwrap(), "-n", "1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids: Vec<String> = results(&base.join("out"))
        .iter()
        .map(|r| r["prompt_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["000000", "000001"]);

    let bad = base.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"a\", \"prompt\": \"x\"}\n\n{\"id\": \"b\"}\n",
    )
    .unwrap();
    let out = generate_into(
        &base.join("bad-out"),
        &["--prompts", bad.to_str().unwrap(), "-n", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.jsonl line 3: needs a \"prompt\" string"),
        "{err}"
    );
}
