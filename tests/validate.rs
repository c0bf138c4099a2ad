//! `gamegen validate` end to end, over the real SWF corpus beside the checkout (see `corpus`;
//! skipped when absent).
//!
//! The corpus is Ruffle's own test suite: every file in it is played by Ruffle except the few
//! deliberately unloadable ones named in `BROKEN`. The test pins the exact outcome of every file
//! that is not `valid`, so both a false "broken" and a silently weakened check show up.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
}

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/swf-corpus");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("{} missing; corpus test skipped", p.display());
        None
    }
}

/// Files Ruffle does not play either, so level 1 must fail: (path, check, why).
const BROKEN: &[(&str, &str, &str)] = &[
    (
        "ruffle-tests/from_shumway/as3-loader/bug1157243/empty/empty.swf",
        "signature",
        "a 0-byte file (the loader test's 'empty' payload)",
    ),
    (
        "ruffle-tests/swf/swf_length_zero/test.swf",
        "length_field",
        "length field 0; Ruffle's own test.toml marks it ignored: 'This test panics'",
    ),
    (
        "swf-crate-tests/lzma-malformed-length.swf",
        "length_field",
        "the swf crate's error test: length field 1",
    ),
];

/// Files Ruffle plays although their structure is wrong; most are Ruffle tests *of* exactly that
/// defect. (path suffix, first error's check).
const DAMAGED: &[(&str, &str)] = &[
    // Header frame count != ShowFrame count (Ruffle tests of looping and goto edge cases).
    ("avm1/focusrect_property_swf5/test2.swf", "frame_count"),
    ("avm1/focusrect_property_swf6/test2.swf", "frame_count"),
    ("avm1/looping_real_1_declared_2/test.swf", "frame_count"),
    ("avm1/looping_real_2_declared_1/test.swf", "frame_count"),
    ("avm1/set_target_2_swf5/test.swf", "frame_count"),
    ("avm2/issue_8630_placeremoveplace/test.swf", "frame_count"),
    ("avm2/issue_8630_scriptremove/test.swf", "frame_count"),
    ("avm2/method_without_body/test.swf", "frame_count"),
    (
        "avm2/movieclip_goto_scene_last_frame_int/test.swf",
        "frame_count",
    ),
    (
        "avm2/movieclip_goto_scene_last_frame_label/test.swf",
        "frame_count",
    ),
    ("avm2/swf_wrong_frame_count/test.swf", "frame_count"),
    ("from_shumway/invalidClipDepth/test.swf", "frame_count"),
    (
        "timeline/clip_action_no_key_code/original.swf",
        "frame_count",
    ),
    // AVM2 verifier tests: bytecode Flash rejects with a VerifyError.
    ("avm2/verification/test.swf", "avm2"),
    ("avm2/verify_illegal_opcode/test.swf", "avm2"),
    ("avm2/verify_method_info_oob/test.swf", "avm2"),
    // Length field tests.
    ("swf/swf_length_too_long/test.swf", "length_mismatch"),
    (
        "swf/swf_length_too_short_no_end/test.swf",
        "length_mismatch",
    ),
    (
        "swf/swf_length_too_short_no_second_frame/test.swf",
        "length_mismatch",
    ),
    (
        "swf-crate-tests/lzma-length-too-large.swf",
        "length_mismatch",
    ),
    // Out-of-memory tests: counts far beyond the tag's data.
    ("timeline/frame_label_count_oom/test.swf", "tag_parse"),
    ("timeline/scene_count_oom/test.swf", "tag_parse"),
];

/// Shumway's fuzzer output: Ruffle only has to survive these, any verdict but broken is fine.
const FUZZ_DIR: &str = "from_shumway/fuzz/";

#[test]
fn whole_corpus_no_panic_no_false_broken() {
    let Some(root) = corpus() else { return };
    let out = bin()
        .args(["validate", "--json", "--jobs", "2"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{}/", root.display());
    let mut verdicts: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let path = v["path"].as_str().unwrap().trim_start_matches(&prefix);
        assert!(v.get("error").is_none(), "{path}: {}", v["error"]);
        let verdict = v["verdict"].as_str().unwrap().to_string();
        let check = v["first_error"]["check"].as_str().unwrap_or("").to_string();
        // Every report carries the facts a caller needs.
        assert!(v["tags"].is_object() && v["stats"].is_object(), "{path}");
        if verdict != "broken" {
            assert!(v["header"]["frame_rate"].is_number(), "{path}");
        }
        verdicts.insert(path.to_string(), (verdict, check));
    }
    assert_eq!(verdicts.len(), 2090, "every .swf gets exactly one line");

    let broken: Vec<&String> = verdicts
        .iter()
        .filter(|(_, (v, _))| v == "broken")
        .map(|(p, _)| p)
        .collect();
    let want: Vec<&str> = BROKEN.iter().map(|b| b.0).collect();
    assert_eq!(broken, want, "only the unplayable files are broken");
    for (path, check, why) in BROKEN {
        assert_eq!(verdicts[*path].1, *check, "{path}: {why}");
    }

    let mut unexpected = Vec::new();
    for (path, (verdict, check)) in &verdicts {
        if verdict != "damaged" || path.contains(FUZZ_DIR) {
            continue;
        }
        match DAMAGED.iter().find(|d| path.ends_with(d.0)) {
            Some(d) if d.1 == check => {}
            _ => unexpected.push(format!("{path}: {check}")),
        }
    }
    assert!(unexpected.is_empty(), "unexpected damaged: {unexpected:#?}");
    for (suffix, check) in DAMAGED {
        let hit = verdicts.iter().find(|(p, _)| p.ends_with(suffix));
        let (_, (verdict, got)) = hit.unwrap_or_else(|| panic!("{suffix} missing"));
        assert_eq!(
            (verdict.as_str(), got.as_str()),
            ("damaged", *check),
            "{suffix}"
        );
    }
    let valid = verdicts.values().filter(|(v, _)| v == "valid").count();
    assert!(valid >= 2030, "valid files: {valid}");
}

#[test]
fn text_output_strict_and_bad_input() {
    let dir = common::tmp("validate");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.swf");
    std::fs::write(&text, "this is a text file, not a movie\n").unwrap();

    // A broken file is a result: exit 0, one line naming the verdict and the reason.
    let out = bin().arg("validate").arg(&text).output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("broken"), "{line}");
    assert!(line.contains("signature"), "{line}");

    // --strict turns a non-valid file into exit status 2.
    let out = bin()
        .args(["validate", "--strict", "--json"])
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "broken");
    assert_eq!(v["level_reached"], 0);

    // A missing path: one clear line, non-zero, no panic.
    let out = bin()
        .args(["validate", "/nonexistent/x.swf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error:"), "{err}");
}

/// A file with bytes after its End tag: `valid` (players skip them) but not valid as written,
/// in the text line, the JSON and the summary.
#[test]
fn valid_as_written_is_reported_beside_the_verdict() {
    let dir = std::env::temp_dir().join(format!("gamegen-as-written-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Header (stage 1-bit RECT, 24 fps, 1 frame), ShowFrame, End.
    let clean: Vec<u8> = [
        b"FWS\x0a".as_slice(),
        &18u32.to_le_bytes(),
        &[0x08, 0x00, 0x00, 0x18, 0x01, 0x00, 0x40, 0x00, 0x00, 0x00],
    ]
    .concat();
    let mut junk = [clean.as_slice(), &[0x00, 0x00, 0xde, 0xad]].concat();
    junk[4..8].copy_from_slice(&22u32.to_le_bytes());
    std::fs::write(dir.join("a_clean.swf"), &clean).unwrap();
    std::fs::write(dir.join("b_junk.swf"), &junk).unwrap();

    let out = bin().arg("validate").arg(&dir).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("valid    L2 as written"), "{text}");
    assert!(lines[1].starts_with("valid    L2 forgiven"), "{text}");
    assert!(lines[1].contains("after the End tag"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("2 valid (1 valid as written)"), "{err}");

    let out = bin()
        .arg("validate")
        .arg("--json")
        .arg(&dir)
        .output()
        .unwrap();
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["valid_as_written"], true);
    assert_eq!(
        (&rows[1]["verdict"], &rows[1]["valid_as_written"]),
        (&Value::from("valid"), &Value::from(false))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
