//! Hostile world-model checkpoints end to end: copies of the shipped `models/world-traveler`,
//! each damaged one way, handed to `gamegen world rollout`. Every one must fail with a non-zero
//! exit code and exactly one `error:` line, never a panic; the undamaged copy must roll out.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

const FILES: [&str; 3] = ["config.json", "vae.safetensors", "dynamics.safetensors"];

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-traveler")
}

/// A fresh copy of the shipped model's three files in `<tmp>/<name>`.
fn copy(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in FILES {
        std::fs::copy(shipped().join(f), dir.join(f)).unwrap();
    }
    dir
}

fn rollout(model: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(["world", "rollout", "--actions", "R*2,L", "--steps", "1"])
        .arg("--model")
        .arg(model)
        .arg("--out")
        .arg(model.join("run.gif"))
        .output()
        .unwrap()
}

fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

fn set_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut c = config(dir);
    edit(&mut c);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&c).unwrap(),
    )
    .unwrap();
}

/// Byte offset in a safetensors file where the data of the first f32 tensor whose name
/// contains `part` starts.
fn f32_tensor_offset(bytes: &[u8], part: &str) -> usize {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut names: Vec<&String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains(part) && header[k.as_str()]["dtype"] == "F32")
        .collect();
    names.sort();
    let t = &header[names[0].as_str()];
    8 + n + t["data_offsets"][0].as_u64().unwrap() as usize
}

fn write_nan(path: &Path, part: &str, element: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = f32_tensor_offset(&bytes, part) + 4 * element;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..len.min(bytes.len())]).unwrap();
}

/// The one error line, after checking the failure is clean.
fn one_error(out: &Output, case: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{case}: rolled out a damaged model\nstderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{case}: panicked\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors.len(),
        1,
        "{case}: expected exactly one error line\n{stderr}"
    );
    assert!(
        out.status.code().is_none_or(|c| c != 101),
        "{case}: exit code 101 (a panic's)"
    );
    errors[0].to_string()
}

type Damage = fn(&Path);

#[test]
fn damaged_copies_of_the_shipped_model_fail_cleanly_and_the_clean_copy_rolls_out() {
    let base = common::tmp("hostile-world");
    let t0 = std::time::Instant::now();

    let clean = copy(&base, "clean");
    let out = rollout(&clean);
    assert!(
        out.status.success(),
        "the undamaged copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(clean.join("run.gif"))
            .unwrap()
            .starts_with(b"GIF89a")
    );

    // (name, damage, what the error line must mention)
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "nan-in-vae",
            |d| write_nan(&d.join("vae.safetensors"), "decoder", 0),
            "non-finite value (NaN)",
        ),
        (
            "nan-in-dynamics",
            |d| write_nan(&d.join("dynamics.safetensors"), "", 7),
            "non-finite value (NaN)",
        ),
        (
            "dynamics-cut-to-1mb",
            |d| truncate(&d.join("dynamics.safetensors"), 1 << 20),
            "dynamics.safetensors",
        ),
        (
            "dynamics-cut-in-header",
            |d| truncate(&d.join("dynamics.safetensors"), 20),
            "dynamics.safetensors",
        ),
        (
            "vae-empty",
            |d| truncate(&d.join("vae.safetensors"), 0),
            "vae.safetensors",
        ),
        (
            "vae-channels-doubled",
            |d| set_config(d, |c| c["model"]["vae"]["channels"] = 32.into()),
            "shape",
        ),
        (
            "dit-hidden-changed",
            |d| set_config(d, |c| c["model"]["dit"]["hidden"] = 64.into()),
            "shape",
        ),
        (
            "dit-depth-1e6",
            |d| set_config(d, |c| c["model"]["dit"]["depth"] = 1_000_000.into()),
            "dit.depth",
        ),
        (
            "dit-at-the-top-of-every-range",
            |d| {
                set_config(d, |c| {
                    let dit = &mut c["model"]["dit"];
                    dit["hidden"] = 4096.into();
                    dit["depth"] = 64.into();
                    dit["mlp_ratio"] = 8.into();
                    dit["cond_dim"] = 4096.into();
                })
            },
            "parameters",
        ),
        (
            "vae-channels-negative",
            |d| set_config(d, |c| c["model"]["vae"]["channels"] = (-1).into()),
            "config.json",
        ),
        (
            "missing-vae",
            |d| std::fs::remove_file(d.join("vae.safetensors")).unwrap(),
            "vae.safetensors",
        ),
        (
            "missing-dynamics",
            |d| std::fs::remove_file(d.join("dynamics.safetensors")).unwrap(),
            "dynamics.safetensors",
        ),
        (
            "missing-config",
            |d| std::fs::remove_file(d.join("config.json")).unwrap(),
            "config.json",
        ),
        (
            "config-not-json",
            |d| std::fs::write(d.join("config.json"), "this is not JSON {").unwrap(),
            "config.json",
        ),
        (
            "config-empty",
            |d| std::fs::write(d.join("config.json"), "").unwrap(),
            "config.json",
        ),
        (
            "config-binary",
            |d| {
                std::fs::copy(d.join("vae.safetensors"), d.join("config.json"))
                    .map(drop)
                    .unwrap()
            },
            "config.json",
        ),
        (
            "config-wrong-game",
            |d| set_config(d, |c| c["game"] = "tetris".into()),
            "config.json",
        ),
        (
            "weights-swapped",
            |d| {
                std::fs::rename(d.join("vae.safetensors"), d.join("tmp")).unwrap();
                std::fs::rename(d.join("dynamics.safetensors"), d.join("vae.safetensors")).unwrap();
                std::fs::rename(d.join("tmp"), d.join("dynamics.safetensors")).unwrap();
            },
            "safetensors",
        ),
        (
            "vae-is-a-directory",
            |d| {
                std::fs::remove_file(d.join("vae.safetensors")).unwrap();
                std::fs::create_dir(d.join("vae.safetensors")).unwrap();
            },
            "vae.safetensors",
        ),
    ];
    let mut lines = Vec::new();
    for (name, damage, expect) in &cases {
        let dir = copy(&base, name);
        damage(&dir);
        let out = rollout(&dir);
        let line = one_error(&out, name);
        assert!(line.contains(expect), "{name}: `{line}` lacks `{expect}`");
        assert!(
            !dir.join("run.gif").exists(),
            "{name}: wrote a GIF from a damaged model"
        );
        lines.push(format!("{name}: {line}"));
    }
    // A model directory that does not exist at all.
    let out = rollout(&base.join("nowhere"));
    lines.push(format!("nowhere: {}", one_error(&out, "nowhere")));
    eprintln!(
        "{} damaged copies refused and the clean copy rolled out in {:.1} s:\n{}",
        cases.len() + 1,
        t0.elapsed().as_secs_f64(),
        lines.join("\n")
    );
}
