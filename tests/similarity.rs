//! `gamegen similarity` end to end: a copy of a reference is found with similarity 1, the
//! bound-ordered search reports what the exhaustive scan does, truth manifests pair files.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn gamegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(args)
        .output()
        .expect("run gamegen")
}

/// A fresh directory (it exists) that is removed when the test ends.
fn tmp(name: &str) -> common::TmpPath {
    let dir = common::tmp(name);
    std::fs::create_dir_all(&*dir).unwrap();
    dir
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn finds_copies_agrees_with_exhaustive_and_reads_truth() {
    let dir = tmp("main");
    let refs = dir.join("refs");
    let out = gamegen(&[
        "corpus",
        "synth",
        "--count",
        "30",
        "--seed",
        "4",
        "--out",
        s(&refs),
    ]);
    assert!(out.status.success());
    let generated = dir.join("gen");
    std::fs::create_dir_all(&generated).unwrap();
    std::fs::copy(refs.join("000007.swf"), generated.join("copy.swf")).unwrap();
    // A damaged variant of another file: a few bytes changed, the tail cut.
    let mut bytes = std::fs::read(refs.join("000011.swf")).unwrap();
    for i in (40..bytes.len()).step_by(97) {
        bytes[i] ^= 0x5a;
    }
    bytes.truncate(bytes.len() * 3 / 4);
    std::fs::write(generated.join("mutant.swf"), &bytes).unwrap();
    let manifest = dir.join("truth.jsonl");
    std::fs::write(
        &manifest,
        format!(
            "{{\"generated\": \"mutant.swf\", \"truth\": \"{}\"}}\n",
            s(&refs.join("000011.swf"))
        ),
    )
    .unwrap();

    let fast = lines(&gamegen(&[
        "similarity",
        "--generated",
        s(&generated),
        "--reference",
        s(&refs),
        "--truth",
        s(&manifest),
    ]));
    let slow = lines(&gamegen(&[
        "similarity",
        "--generated",
        s(&generated),
        "--reference",
        s(&refs),
        "--exhaustive",
    ]));
    assert_eq!(fast.len(), 2);
    let copy = fast
        .iter()
        .find(|l| l["file"].as_str().unwrap().ends_with("copy.swf"))
        .unwrap();
    assert_eq!(copy["max_similarity"], 1.0);
    assert!(copy["nearest"].as_str().unwrap().ends_with("000007.swf"));
    assert!(
        copy["exact_comparisons"].as_u64().unwrap() < 30,
        "the bound prunes"
    );
    let mutant = fast
        .iter()
        .find(|l| l["file"].as_str().unwrap().ends_with("mutant.swf"))
        .unwrap();
    let t = mutant["truth_similarity"].as_f64().unwrap();
    assert!(t > 0.8 && t < 1.0, "{t}");
    assert!(mutant["nearest"].as_str().unwrap().ends_with("000011.swf"));
    for (f, e) in fast.iter().zip(&slow) {
        assert_eq!(f["max_similarity"], e["max_similarity"]);
        assert_eq!(f["nearest"], e["nearest"]);
    }

    // A synth manifest as the truth: generated files name their prompt in results.jsonl.
    let from_prompts = dir.join("from-prompts");
    std::fs::create_dir_all(&from_prompts).unwrap();
    std::fs::copy(refs.join("000007.swf"), from_prompts.join("000007_000.swf")).unwrap();
    std::fs::write(
        from_prompts.join("results.jsonl"),
        "{\"prompt_id\": \"000007\", \"sample\": 0, \"file\": \"000007_000.swf\"}\n",
    )
    .unwrap();
    let via_manifest = lines(&gamegen(&[
        "similarity",
        "--generated",
        s(&from_prompts),
        "--reference",
        s(&refs),
        "--truth",
        s(&refs.join("manifest.jsonl")),
    ]));
    assert_eq!(via_manifest[0]["truth_similarity"], 1.0);

    // Bad manifest: one line, exit 1.
    std::fs::write(&manifest, "{\"truth\": 3}\n").unwrap();
    let out = gamegen(&[
        "similarity",
        "--generated",
        s(&generated),
        "--reference",
        s(&refs),
        "--truth",
        s(&manifest),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
