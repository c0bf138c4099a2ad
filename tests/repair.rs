//! `gamegen repair` end to end: a damaged synthetic file is fixed in place and then validates.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
}

#[test]
fn repair_fixes_length_and_frames_in_place() {
    let dir = common::tmp("repair");
    let st = bin()
        .args(["corpus", "synth", "--count", "1", "--seed", "9", "--out"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let f = dir.join("000000.swf");
    let good = std::fs::read(&f).unwrap();
    // Damage the length field and the frame count (the u16 after the stage rectangle and the
    // frame rate; the rectangle's size comes from its 5-bit field width).
    let mut bad = good.clone();
    bad[4..8].copy_from_slice(&7777u32.to_le_bytes());
    let nbits = usize::from(good[8] >> 3);
    let frames_at = 8 + (5 + 4 * nbits).div_ceil(8) + 2;
    bad[frames_at] = bad[frames_at].wrapping_add(3);
    std::fs::write(&f, &bad).unwrap();
    let v = bin()
        .args(["validate", "--strict"])
        .arg(&f)
        .status()
        .unwrap();
    assert_eq!(v.code(), Some(2));

    let out = bin().args(["repair", "--json"]).arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "fixed");
    assert_eq!(r["changes"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(std::fs::read(&f).unwrap(), good);
    let v = bin()
        .args(["validate", "--strict"])
        .arg(&f)
        .status()
        .unwrap();
    assert_eq!(v.code(), Some(0));

    // A file with a broken header: one error line, exit 1, file untouched.
    let junk = dir.join("junk.swf");
    std::fs::write(&junk, b"hello").unwrap();
    let out = bin().arg("repair").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("error"));
    assert_eq!(std::fs::read(&junk).unwrap(), b"hello");
}
