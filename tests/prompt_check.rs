//! `gamegen validate --prompt-check` end to end: synthetic files against their own and other
//! prompts, generated-file layouts (results.jsonl), bad input, and the real corpus.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
}

/// A fresh directory (it exists) that is removed when the test ends.
fn tmp(name: &str) -> common::TmpPath {
    let dir = common::tmp(name);
    std::fs::create_dir_all(&*dir).unwrap();
    dir
}

fn synth(dir: &Path, count: u32, seed: u32) {
    let out = bin()
        .args(["corpus", "synth", "--count", &count.to_string()])
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn manifest(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn synthetic_files_meet_their_records_found_beside_them() {
    let dir = tmp("own");
    synth(&dir, 40, 21);
    let out = bin()
        .args(["validate", "--prompt-check", "--json", "-j", "2"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&out);
    assert_eq!(rows.len(), 40);
    let records = manifest(&dir);
    for (row, rec) in rows.iter().zip(&records) {
        assert_eq!(row["claims_from"], "record");
        assert_eq!(row["prompt_id"], rec["name"]);
        if rec["attributes"]["frames"].as_u64().unwrap() >= 24 {
            assert_eq!(row["score"], 1.0, "{row}");
        }
        let f = &row["attributes"];
        assert_eq!(f["width"], rec["attributes"]["width"].as_f64().unwrap());
        assert_eq!(
            f["keyboard"].as_bool().unwrap(),
            !rec["attributes"]["player"].is_null()
        );
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("40 scored, mean adherence"), "{err}");
}

#[test]
fn generated_files_match_their_prompt_through_results_jsonl() {
    let truth = tmp("truth");
    synth(&truth, 12, 22);
    let gen_dir = tmp("gen");
    // Two "generated" files: one is exactly its prompt's file, the other answers another
    // prompt with a file made for a different one.
    let recs = manifest(&truth);
    let long: Vec<&Value> = recs
        .iter()
        .filter(|r| r["attributes"]["frames"].as_u64().unwrap() >= 24)
        .collect();
    let (a, b) = (
        long[0]["name"].as_str().unwrap(),
        long[1]["name"].as_str().unwrap(),
    );
    std::fs::copy(truth.join(format!("{a}.swf")), gen_dir.join("s0.swf")).unwrap();
    std::fs::copy(truth.join(format!("{a}.swf")), gen_dir.join("s1.swf")).unwrap();
    std::fs::write(
        gen_dir.join("results.jsonl"),
        format!(
            "{{\"file\":\"s0.swf\",\"prompt_id\":\"{a}\"}}\n{{\"file\":\"s1.swf\",\"prompt_id\":\"{b}\"}}\n"
        ),
    )
    .unwrap();
    let run = |prompts: &Path| {
        bin()
            .args(["validate", "--prompt-check", "--json", "--prompts"])
            .arg(prompts)
            .arg(&gen_dir)
            .output()
            .unwrap()
    };
    let out = run(&truth.join("manifest.jsonl"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&out);
    assert_eq!(rows[0]["prompt_id"], a);
    assert_eq!(rows[0]["score"], 1.0);
    assert_eq!(rows[1]["prompt_id"], b);
    assert!(rows[1]["score"].as_f64().unwrap() < 0.9, "{}", rows[1]);

    // The same prompts as text only (no attributes): read from the words.
    let text_only = gen_dir.join("prompts.jsonl");
    let body: String = recs
        .iter()
        .map(|r| {
            format!(
                "{}\n",
                serde_json::json!({"id": r["name"], "prompt": r["prompt"]})
            )
        })
        .collect();
    std::fs::write(&text_only, body).unwrap();
    let rows = lines(&run(&text_only));
    assert_eq!(rows[0]["claims_from"], "text");
    assert!(rows[0]["score"].as_f64().unwrap() >= 0.95, "{}", rows[0]);
}

#[test]
fn one_prompt_for_a_file_and_bad_input() {
    let dir = tmp("bad");
    synth(&dir, 1, 23);
    let file = dir.join("000000.swf");
    let rec = &manifest(&dir)[0];
    let para = rec["paraphrases"][0].as_str().unwrap();
    let out = bin()
        .args(["validate", "--prompt-check", "--json", "--prompt", para])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let row = &lines(&out)[0];
    assert_eq!(row["prompt_id"], "--prompt");
    assert!(row["score"].as_f64().unwrap() > 0.5, "{row}");

    // A file whose header does not parse scores 0 against a prompt, with the reason.
    let junk = dir.join("junk.swf");
    std::fs::write(&junk, b"not a swf at all").unwrap();
    let out = bin()
        .args(["validate", "--prompt-check", "--json", "--prompt", para])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(out.status.success());
    let row = &lines(&out)[0];
    assert_eq!(row["score"], 0.0);
    assert!(row["error"].as_str().unwrap().contains("header"), "{row}");

    // A malformed prompts file: one clear line, non-zero exit, no panic.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"a\", \"prompt\": \"x\"}\n{oops\n").unwrap();
    let out = bin()
        .args(["validate", "--prompt-check", "--prompts"])
        .arg(&bad)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl line 2: not JSON"), "{err}");
    assert!(!err.contains("panicked"));

    // Prompts that name no file: an error, not a silent empty report.
    let other = dir.join("other.jsonl");
    std::fs::write(&other, "{\"id\": \"zzz\", \"prompt\": \"a red square\"}\n").unwrap();
    let out = bin()
        .args(["validate", "--prompt-check", "--prompts"])
        .arg(&other)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file matched a prompt"));

    // --prompts needs --prompt-check.
    let out = bin()
        .args(["validate", "--prompts"])
        .arg(&other)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn real_corpus_yields_facts_for_every_readable_file() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/swf-corpus");
    if !corpus.is_dir() {
        eprintln!("{} missing; skipped", corpus.display());
        return;
    }
    let out = bin()
        .args(["validate", "--prompt-check", "--json", "-j", "2"])
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&out);
    assert!(rows.len() > 2000);
    let errors: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_some()).collect();
    // Only the corpus's three files whose header does not parse (see tests/validate.rs).
    assert_eq!(errors.len(), 3, "{errors:?}");
    let with_objects = rows
        .iter()
        .filter(|r| {
            r["attributes"]["objects"]
                .as_array()
                .is_some_and(|o| !o.is_empty())
        })
        .count();
    assert!(with_objects > 500, "{with_objects}");
    assert!(rows.iter().any(|r| r["attributes"]["keyboard"] == true));
    assert!(rows.iter().any(|r| r["attributes"]["mouse"] == true));
}
