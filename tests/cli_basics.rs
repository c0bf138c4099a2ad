//! End-to-end checks of the CLI's basic promises: version stamp, backend listing, the frame
//! autoencoder's train/run round trip and its error paths.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn gamegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(args)
        .output()
        .expect("the gamegen binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory (it exists) that is removed when the test ends.
fn temp_dir(name: &str) -> common::TmpPath {
    let dir = common::tmp(name);
    std::fs::create_dir_all(&*dir).unwrap();
    dir
}

#[test]
fn version_names_revision_and_backends() {
    let o = gamegen(&["--version"]);
    assert!(o.status.success());
    let v = stdout(&o);
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");
    assert!(v.contains("git "), "{v}");
    assert!(v.contains("backends: cpu"), "{v}");
}

#[test]
fn backends_lists_a_usable_cpu() {
    let o = gamegen(&["backends", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let list = v.as_array().unwrap();
    let cpu = list
        .iter()
        .find(|b| b["name"] == "cpu")
        .expect("cpu listed");
    assert_eq!(cpu["usable"], true);
    assert!(!cpu["devices"].as_array().unwrap().is_empty());
    let cuda = list
        .iter()
        .find(|b| b["name"] == "cuda")
        .expect("cuda listed");
    // No GPU on the test machines: CUDA must be reported, never crash the probe.
    assert!(cuda["detail"].as_str().is_some());
}

#[test]
fn ae_train_then_run_gives_stable_output() {
    let dir = temp_dir("ae");
    let out = dir.join("model");
    let train = |o: &PathBuf| {
        gamegen(&[
            "ae",
            "train",
            "--out",
            o.to_str().unwrap(),
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--image-size",
            "16",
        ])
    };
    let t = train(&out);
    assert!(t.status.success(), "{}", stderr(&t));
    for f in ["model.safetensors", "config.json", "train.json"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let run = || {
        let o = gamegen(&[
            "ae",
            "run",
            "--model",
            out.to_str().unwrap(),
            "--count",
            "2",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let a = run();
    assert_eq!(a["shape"], serde_json::json!([2, 3, 16, 16]));
    assert_eq!(a["output"].as_array().unwrap().len(), 2 * 3 * 16 * 16);
    assert_eq!(a["rgba"].as_array().unwrap().len(), 2 * 16 * 16 * 4);
    assert_eq!(a, run(), "same checkpoint, same input, different output");
}

#[test]
fn ae_run_rejects_bad_checkpoints_with_one_line() {
    let dir = temp_dir("ae-bad");
    let out = dir.join("model");
    let t = gamegen(&[
        "ae",
        "train",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "1",
        "--batch-size",
        "1",
        "--image-size",
        "16",
    ]);
    assert!(t.status.success(), "{}", stderr(&t));
    let run = || gamegen(&["ae", "run", "--model", out.to_str().unwrap()]);

    // Truncated weights.
    let w = std::fs::read(out.join("model.safetensors")).unwrap();
    std::fs::write(out.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    let o = run();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.starts_with("error: ") && e.trim().lines().count() == 1,
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    std::fs::write(out.join("model.safetensors"), &w).unwrap();

    // A config that does not match the weights: the error names a tensor.
    std::fs::write(
        out.join("config.json"),
        r#"{"image_size": 16, "channels": [16, 32], "latent_channels": 5}"#,
    )
    .unwrap();
    let e = stderr(&run());
    assert!(e.contains("tensor `") && e.contains("shape"), "{e}");

    // Absurd dimensions are refused before any allocation.
    std::fs::write(
        out.join("config.json"),
        r#"{"image_size": 1000000, "channels": [16, 32], "latent_channels": 8}"#,
    )
    .unwrap();
    let e = stderr(&run());
    assert!(e.contains("image_size"), "{e}");

    // Missing directory.
    let o = gamegen(&["ae", "run", "--model", dir.join("nope").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("config.json"));
}

#[test]
fn bench_train_step_times_real_steps_and_refuses_bad_input() {
    let root = env!("CARGO_MANIFEST_DIR");
    let pong = format!("{root}/models/world-pong");
    let mini = format!("{root}/models/bytecraft-mini");
    for (kind, model, extra) in [
        ("world-vae", &pong, ["--vae-batch", "2"]),
        ("world-dynamics", &pong, ["--clip-len", "2"]),
        ("bytecraft", &mini, ["--lm-len", "16"]),
    ] {
        let o = gamegen(&[
            "bench",
            "train-step",
            "--kind",
            kind,
            "--model",
            model,
            "--warmup",
            "0",
            "--steps",
            "2",
            "--batch",
            "1",
            "--lm-batch",
            "1",
            extra[0],
            extra[1],
        ]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(r["step"], kind);
        assert_eq!(r["ms_each"].as_array().unwrap().len(), 2);
        assert!(r["ms_per_step"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["loss"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["params"].as_u64().unwrap() > 1000, "{r}");
    }
    // A missing model directory and a zero step count are one-line errors.
    let o = gamegen(&[
        "bench",
        "train-step",
        "--kind",
        "world-vae",
        "--model",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent"), "{}", stderr(&o));
    let o = gamegen(&[
        "bench",
        "train-step",
        "--kind",
        "bytecraft",
        "--model",
        &mini,
        "--steps",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--steps"), "{}", stderr(&o));
}

/// An uncompressed SWF whose SetBackgroundColor tag carries one byte too many: valid, but the
/// swf crate logs a warning about the left-over byte.
fn swf_with_a_long_tag() -> Vec<u8> {
    let mut body = vec![0x00]; // empty stage rectangle (5 bits, nbits = 0)
    body.extend_from_slice(&(24u16 << 8).to_le_bytes()); // 24 fps (8.8 fixed point)
    body.extend_from_slice(&1u16.to_le_bytes()); // 1 frame
    body.extend_from_slice(&[0x44, 0x02, 1, 2, 3, 4]); // SetBackgroundColor, 4 bytes (3 expected)
    body.extend_from_slice(&[0x40, 0x00, 0x00, 0x00]); // ShowFrame, End
    let mut swf = b"FWS\x0a".to_vec();
    swf.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
    swf.extend_from_slice(&body);
    swf
}

/// Library log records (here the swf crate's warning) reach stderr when `RUST_LOG` asks for
/// them and never otherwise; a malformed `RUST_LOG` is reported and the command still runs.
#[test]
fn rust_log_shows_library_records_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let swf = dir.path().join("long-tag.swf");
    std::fs::write(&swf, swf_with_a_long_tag()).unwrap();
    let run = |log: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gamegen"));
        cmd.arg("validate").arg(&swf);
        match log {
            Some(spec) => cmd.env("RUST_LOG", spec),
            None => cmd.env_remove("RUST_LOG"),
        };
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("valid"), "{}", stdout(&o));
        stderr(&o)
    };
    let warning = "Data remaining in buffer";
    let quiet = run(None);
    assert!(!quiet.contains(warning), "logged without RUST_LOG: {quiet}");
    let loud = run(Some("warn"));
    assert!(
        loud.contains(warning) && loud.contains("swf::read"),
        "{loud}"
    );
    assert!(!run(Some("swf=error")).contains(warning));
    let bad = run(Some("swf=[nonsense"));
    assert!(bad.contains("ignoring RUST_LOG"), "{bad}");
    assert!(!bad.contains(warning), "{bad}");
}
