//! The MaaG ablation path of `gamegen world train`: `--without-modules` trains PlayGen's model
//! alone (no LogicNet, score record or spatial module), `--vae-from` starts a run from another
//! run's trained VAE so that two dynamics models share one autoencoder, and the mismatches
//! between the two are one-line errors.

use std::path::Path;
use std::process::Output;

mod common;
use common::{bin, tmp};

fn run(args: &[&str], data: &Path, out: &Path) -> Output {
    bin()
        .args(["world", "train", "--game", "traveler"])
        .args([
            "--batch-size",
            "2",
            "--vae-batch-size",
            "2",
            "--clip-len",
            "3",
        ])
        .args(["--checkpoint-every", "2", "--logic-steps", "2"])
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn ok(out: Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fails(out: Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    err
}

fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

#[test]
fn ablation_shares_the_vae_and_drops_the_modules() {
    let data = tmp("ablation-data");
    ok(bin()
        .args([
            "collect",
            "--game",
            "traveler",
            "--episodes",
            "4",
            "--frames",
            "10",
        ])
        .arg("--out")
        .arg(&data)
        .output()
        .unwrap());

    let full = tmp("ablation-full");
    ok(run(&["--vae-steps", "2", "--steps", "2"], &data, &full));
    let c = config(&full);
    assert!(c["model"]["logic"].is_object() && c["model"]["spatial"].is_object());

    let plain = tmp("ablation-plain");
    let vae_from = full.to_str().unwrap();
    ok(run(
        &[
            "--without-modules",
            "--vae-from",
            vae_from,
            "--vae-steps",
            "2",
            "--steps",
            "2",
        ],
        &data,
        &plain,
    ));
    let c = config(&plain);
    for part in ["logic", "record", "spatial"] {
        assert!(c["model"][part].is_null(), "{part} kept: {c}");
    }
    assert_eq!(c["model"]["dit"]["digit_tokens"], 0);
    assert_eq!(c["model"]["dit"]["map_tokens"], 0);
    // Stage one was not run again: the VAE is the other run's, byte for byte.
    assert_eq!(c["training"]["vae_steps"], 2);
    assert_eq!(c["training"]["dynamics_steps"], 2);
    assert_eq!(c["training"]["logic_steps"], 0);
    assert_eq!(
        std::fs::read(plain.join("vae.safetensors")).unwrap(),
        std::fs::read(full.join("vae.safetensors")).unwrap()
    );
    let log = std::fs::read_to_string(plain.join("train-log.jsonl")).unwrap();
    assert!(!log.contains("\"stage\":\"vae\""), "VAE retrained: {log}");

    // The plain model plays: a rollout runs without the record or the map.
    let gif = plain.join("run.gif");
    ok(bin()
        .args(["world", "rollout", "--actions", "R*3", "--steps", "1"])
        .arg("--model")
        .arg(&plain)
        .arg("--out")
        .arg(&gif)
        .output()
        .unwrap());

    // Resuming must keep the choice it was started with.
    let err = fails(run(
        &["--resume", "--vae-steps", "2", "--steps", "4"],
        &data,
        &plain,
    ));
    assert!(err.contains("--without-modules"), "{err}");
    let err = fails(run(
        &[
            "--resume",
            "--without-modules",
            "--vae-steps",
            "2",
            "--steps",
            "4",
        ],
        &data,
        &full,
    ));
    assert!(err.contains("--without-modules"), "{err}");
    ok(run(
        &[
            "--resume",
            "--without-modules",
            "--vae-steps",
            "2",
            "--steps",
            "4",
        ],
        &data,
        &plain,
    ));
    assert_eq!(config(&plain)["training"]["dynamics_steps"], 4);

    // --vae-from: asking for more VAE steps than it brings, another game's model, no model.
    let err = fails(run(
        &["--vae-from", vae_from, "--vae-steps", "5", "--steps", "2"],
        &data,
        &tmp("ablation-more"),
    ));
    assert!(err.contains("--vae-steps"), "{err}");
    let pong_data = tmp("ablation-pong");
    ok(bin()
        .args([
            "collect",
            "--game",
            "pong",
            "--episodes",
            "2",
            "--frames",
            "6",
        ])
        .arg("--out")
        .arg(&pong_data)
        .output()
        .unwrap());
    let err = fails(
        bin()
            .args([
                "world",
                "train",
                "--game",
                "pong",
                "--vae-steps",
                "2",
                "--steps",
                "1",
            ])
            .args(["--clip-len", "3", "--vae-from", vae_from])
            .arg("--data")
            .arg(&pong_data)
            .arg("--out")
            .arg(tmp("ablation-pong-model"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("differs"), "{err}");
    let err = fails(run(
        &["--vae-from", "/nonexistent/model", "--steps", "1"],
        &data,
        &tmp("ablation-none"),
    ));
    assert!(err.contains("--vae-from"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
