//! Crash safety of the long jobs: `gamegen collect` and `gamegen generate` are killed
//! with SIGKILL at seeded points (as soon as k output files exist), restarted with the same
//! command until one run finishes, and the final directory must equal an uninterrupted run's:
//! same files, same bytes, no temporary file left, no partial file under a final name, no
//! duplicate manifest / results rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gamegen_core::data::shard;

mod common;
use common::{Rng, bin, files, tmp};

fn count_visible(dir: &Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    !n.starts_with('.') && n.ends_with(ext)
                })
                .count()
        })
        .unwrap_or(0)
}

fn temps(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// Spawn `cmd`, poll `dir` until `k` files ending in `ext` exist, then SIGKILL the process.
/// Returns whether the kill interrupted it (false: it had already finished by itself).
fn kill_after(mut cmd: Command, dir: &Path, ext: &str, k: usize) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "run failed before the kill: {status}");
            return false;
        }
        if count_visible(dir, ext) >= k {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no progress to {k} files"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    !status.success()
}

// ---------------------------------------------------------------------------------------------
// gamegen collect

const EPISODES: usize = 600;

fn collect_cmd(out: &Path) -> Command {
    let mut c = bin();
    c.args([
        "collect", "--game", "traveler", "--seed", "11", "--frames", "40",
    ])
    .args(["--episodes", &EPISODES.to_string(), "--jobs", "2"])
    .arg("--out")
    .arg(out);
    c
}

/// Every shard visible under its final name decodes and is the reference's shard byte for byte.
fn check_visible_shards(dir: &Path, reference: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in files(dir) {
        if name.starts_with('.') || !name.ends_with(shard::EXTENSION) {
            continue;
        }
        let ep = shard::decode(&bytes).unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        assert!(!ep.is_empty(), "{name}");
        assert!(
            reference.get(&name) == Some(&bytes),
            "{name} differs from the uninterrupted run's"
        );
    }
}

#[test]
fn collect_killed_repeatedly_ends_with_the_uninterrupted_bytes() {
    let t0 = Instant::now();
    let reference_dir = tmp("collect-ref");
    let out = collect_cmd(&reference_dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = files(&reference_dir);
    assert_eq!(
        reference.len(),
        EPISODES + 2,
        "shards + collect.json + manifest"
    );

    let dir = tmp("collect-killed");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut k = 0;
    let mut interrupted = 0;
    for _ in 0..4 {
        k += 30 + rng.below(90) as usize;
        if kill_after(collect_cmd(&dir), &dir, shard::EXTENSION, k) {
            interrupted += 1;
            // Dead mid-run: no manifest yet, and what is visible is complete and right.
            assert!(
                !dir.join("manifest.json").exists(),
                "manifest before the end"
            );
            check_visible_shards(&dir, &reference);
        }
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} kill(s) interrupted a run"
    );

    let mut runs = 0;
    loop {
        runs += 1;
        let out = collect_cmd(&dir).output().unwrap();
        if out.status.success() {
            break;
        }
        assert!(runs < 3, "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(temps(&dir), Vec::<String>::new(), "temporary files left");
    check_visible_shards(&dir, &reference);
    let got = files(&dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    assert!(
        got == reference,
        "resumed run differs from an uninterrupted one"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&got["manifest.json"]).expect("manifest is JSON");
    let indices: Vec<u64> = manifest["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, (0..EPISODES as u64).collect::<Vec<_>>(), "rows");

    eprintln!("collect crash test: {:.1} s", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// gamegen generate

const PROMPTS: usize = 6;
const SAMPLES: usize = 4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bytecraft")
        .join(name)
}

fn generate_cmd(out: &Path, prompts: &Path) -> Command {
    let mut c = bin();
    c.arg("generate")
        .arg("--model")
        .arg(fixture("tokenizer_layout"))
        .arg("--prompts")
        .arg(prompts)
        .arg("--out")
        .arg(out)
        .args([
            "-n",
            &SAMPLES.to_string(),
            "--batch",
            "1",
            "--max-new",
            "48",
        ])
        .args(["--temperature", "1.0", "--seed", "5"]);
    c
}

/// `results.jsonl` rows keyed by (prompt id, sample); panics on an unreadable line or a
/// duplicate key.
fn rows(dir: &Path) -> BTreeMap<(String, u64), serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad row {line:?}: {e}"));
        let key = (
            v["prompt_id"].as_str().unwrap().to_string(),
            v["sample"].as_u64().unwrap(),
        );
        assert!(
            out.insert(key.clone(), v).is_none(),
            "duplicate row {key:?}"
        );
    }
    out
}

/// Every `.swf` in `dir` equals the reference's file of the same name.
fn check_visible_swfs(dir: &Path, reference: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in files(dir) {
        if !name.starts_with('.') && name.ends_with(".swf") {
            assert!(reference.get(&name) == Some(&bytes), "{name} differs");
        }
    }
}

#[test]
fn generate_killed_repeatedly_ends_with_the_uninterrupted_results() {
    let t0 = Instant::now();
    let base = tmp("generate");
    std::fs::create_dir_all(&base).unwrap();
    let prompts = base.join("prompts.txt");
    let text: Vec<String> = (0..PROMPTS).map(|i| format!("a game number {i}")).collect();
    std::fs::write(&prompts, text.join("\nŦ\n")).unwrap();

    let reference_dir = base.join("ref");
    let out = generate_cmd(&reference_dir, &prompts).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = files(&reference_dir);
    let reference_rows = rows(&reference_dir);
    assert_eq!(reference_rows.len(), PROMPTS * SAMPLES);
    assert_eq!(
        reference.len(),
        PROMPTS * SAMPLES + 1,
        "samples + results.jsonl"
    );

    let dir = base.join("killed");
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut k = 0;
    let mut interrupted = 0;
    for round in 0..4 {
        k += 2 + rng.below(5) as usize;
        if !kill_after(generate_cmd(&dir, &prompts), &dir, ".swf", k) {
            continue;
        }
        interrupted += 1;
        check_visible_swfs(&dir, &reference);
        let results = dir.join("results.jsonl");
        let mut text = std::fs::read(&results).unwrap();
        if round == 1 && text.ends_with(b"\n") && text.len() > 20 {
            // What a kill in the middle of the append leaves: a torn last row. The sample it
            // described must be redone and the torn bytes must not end up in a row.
            text.truncate(text.len() - 15);
            std::fs::write(&results, &text).unwrap();
        }
        if round == 2 {
            // What a kill in the middle of a sample's atomic write leaves: its temporary file.
            std::fs::write(dir.join(".p0_003.swf.4000000.tmp"), b"FWS partial").unwrap();
        }
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} kill(s) interrupted a run"
    );

    let mut runs = 0;
    loop {
        runs += 1;
        let out = generate_cmd(&dir, &prompts).output().unwrap();
        if out.status.success() {
            break;
        }
        assert!(runs < 3, "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(temps(&dir), Vec::<String>::new(), "temporary files left");
    let got_rows = rows(&dir);
    // Rows compare as a set keyed by (prompt id, sample); their order may differ.
    assert_eq!(
        got_rows.keys().collect::<BTreeSet<_>>(),
        reference_rows.keys().collect::<BTreeSet<_>>()
    );
    assert!(got_rows == reference_rows, "results rows differ");
    let got = files(&dir);
    let swfs = |m: &BTreeMap<String, Vec<u8>>| {
        m.iter()
            .filter(|(n, _)| n.ends_with(".swf"))
            .map(|(n, b)| (n.clone(), b.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    assert!(swfs(&got) == swfs(&reference), "samples differ");

    eprintln!("generate crash test: {:.1} s", t0.elapsed().as_secs_f64());
}
