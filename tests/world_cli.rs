//! End-to-end tests of `gamegen world train` and `gamegen world rollout` on a tiny dataset:
//! the files a run leaves, resume continuing the step count, refusing to overwrite, rollout
//! output, and clear errors on damaged checkpoints.

mod common;

use common::tmp;

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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

fn collect(dir: &Path) {
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
        .arg(dir)
        .output()
        .unwrap());
}

fn train(data: &Path, out: &Path, steps: u32, extra: &[&str]) -> Output {
    bin()
        .args(["world", "train", "--game", "traveler", "--vae-steps", "2"])
        .args(["--steps", &steps.to_string()])
        .args([
            "--batch-size",
            "2",
            "--vae-batch-size",
            "2",
            "--clip-len",
            "3",
        ])
        .args(["--checkpoint-every", "2", "--logic-steps", "2"])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn config(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap()
}

#[test]
fn train_resume_rollout_and_damaged_files() {
    let data = tmp("data");
    let out = tmp("model");
    collect(&data);

    ok(train(&data, &out, 2, &[]));
    for f in [
        "config.json",
        "vae.safetensors",
        "dynamics.safetensors",
        "train-log.jsonl",
        "loss.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let c = config(&out);
    assert_eq!(c["training"]["vae_steps"], 2);
    assert_eq!(c["training"]["dynamics_steps"], 2);
    assert_eq!(c["training"]["logic_steps"], 2);

    // A second run on the same --out without --resume must not overwrite the model.
    let before = std::fs::read(out.join("dynamics.safetensors")).unwrap();
    let err = fails(train(&data, &out, 4, &[]));
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(
        std::fs::read(out.join("dynamics.safetensors")).unwrap(),
        before
    );

    // Resume continues the count (and the VAE, already done, is not retrained).
    ok(train(&data, &out, 4, &["--resume"]));
    let c = config(&out);
    assert_eq!(c["training"]["vae_steps"], 2);
    assert_eq!(c["training"]["dynamics_steps"], 4);
    let log = std::fs::read_to_string(out.join("train-log.jsonl")).unwrap();
    let dyn_steps: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stage"] == "dynamics-eval")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(dyn_steps, vec![2, 4]);
    // Stage three ran after each run's dynamics: more dynamics steps owe a LogicNet refit.
    assert_eq!(c["training"]["logic_steps"], 2);
    let logic_evals: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stage"] == "logic-eval")
        .collect();
    assert_eq!(logic_evals.len(), 2, "{log}");
    for e in &logic_evals {
        assert_eq!(e["step"], 2);
        let (ce, f1) = (e["loss"].as_f64().unwrap(), e["extra"].as_f64().unwrap());
        assert!(ce.is_finite() && ce >= 0.0, "{e}");
        assert!((0.0..=1.0).contains(&f1), "{e}");
    }

    // Resume with another game is refused.
    let err = fails(
        bin()
            .args(["world", "train", "--game", "pong", "--resume"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert!(err.contains("not tiny pong"), "{err}");

    // Rollout: GIF + record with one entry per action.
    let gif = out.join("run.gif");
    let text = ok(bin()
        .args(["world", "rollout", "--actions", "R*3,S,L*2", "--steps", "2"])
        .arg("--model")
        .arg(&out)
        .arg("--out")
        .arg(&gif)
        .output()
        .unwrap());
    assert!(text.contains("6 frames"), "{text}");
    assert!(std::fs::read(&gif).unwrap().starts_with(b"GIF89a"));
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["record"].as_array().unwrap().len(), 6);
    assert_eq!(rec["record"][0]["action"], 2);

    // Eval needs the evaluation network: without one it is a one-line error.
    let eval_dir = out.join("eval");
    let eval_args = [
        "world",
        "eval",
        "--episodes",
        "2",
        "--length",
        "5",
        "--steps",
        "1",
        "--lengths",
        "4,9,50",
    ];
    let nets = out.join("eval-nets");
    let err = fails(
        bin()
            .args(eval_args)
            .arg("--eval-nets")
            .arg(&nets)
            .arg("--model")
            .arg(&out)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&eval_dir)
            .output()
            .unwrap(),
    );
    assert!(err.contains("no evaluation network"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A few steps of `world vam train` (the network's quality is not the point here).
    let card = ok(bin()
        .args([
            "world", "vam", "train", "--game", "traveler", "--steps", "3",
        ])
        .args(["--batch", "4"])
        .arg("--data")
        .arg(&data)
        .arg("--eval-data")
        .arg(&data)
        .arg("--out")
        .arg(&nets)
        .output()
        .unwrap());
    assert!(card.contains("ActAcc"), "{card}");
    assert!(nets.join("README.md").is_file() && nets.join("evalnet.safetensors").is_file());
    // A missing network directory is a one-line error in `vam eval` too.
    let err = fails(
        bin()
            .args(["world", "vam", "eval", "--data"])
            .arg(&data)
            .arg("--model")
            .arg(out.join("no-such-dir"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("no evaluation network"), "{err}");
    // Eval: recorded episodes replayed, metrics in range.
    ok(bin()
        .args(eval_args)
        .arg("--eval-nets")
        .arg(&nets)
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&eval_dir)
        .output()
        .unwrap());
    let ev: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eval_dir.join("eval.json")).unwrap()).unwrap();
    assert_eq!(ev["episodes"], 2);
    // Rollouts run to the longest of --length and --lengths (9 = 10-frame episodes - 1).
    assert_eq!(ev["frames"], 18);
    assert_eq!(ev["main"]["frames"], 10);
    let p = ev["psnr"].as_f64().unwrap();
    assert!(p > 0.0 && p < 100.0, "{p}");
    let s = ev["ssim"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&s), "{s}");
    let a = ev["main"]["act_acc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&a), "{a}");
    let sweep = ev["by_length"].as_array().unwrap();
    assert_eq!(sweep.len(), 3);
    assert_eq!(sweep[2]["length"], 50);
    assert_eq!(sweep[2]["episodes"], 0);
    assert_eq!(sweep[2]["skipped"], 2);
    assert!(sweep[0]["fid_own"].as_f64().unwrap() >= 0.0);
    // The object detectors per source: the real frames' scores are all read, the others are
    // judged on the same frames.
    let objects = ev["main"]["objects"].as_array().unwrap();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["real", "vae", "one-step", "rollout"]);
    assert_eq!(objects[0]["score_ocr"], 1.0);
    assert!(objects[0]["psnr"].is_null());
    for o in objects {
        assert_eq!(o["frames"], 10, "{o}");
        let ocr = o["score_ocr"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ocr), "{o}");
    }
    assert!(objects[1]["psnr"].as_f64().unwrap() > 0.0);
    let md = std::fs::read_to_string(eval_dir.join("eval.md")).unwrap();
    assert!(md.contains("PSNR") && md.contains("not comparable"), "{md}");
    assert!(
        md.contains("Object detectors") && md.contains("| one-step | 10 |"),
        "{md}"
    );
    for f in ["strip-0.png", "by-length.png"] {
        assert!(
            std::fs::read(eval_dir.join(f))
                .unwrap()
                .starts_with(b"\x89PNG"),
            "{f}"
        );
    }

    // Bad DDIM steps and a truncated checkpoint are one-line errors.
    let err = fails(
        bin()
            .args(["world", "rollout", "--actions", "R", "--steps", "0"])
            .arg("--model")
            .arg(&out)
            .arg("--out")
            .arg(&gif)
            .output()
            .unwrap(),
    );
    assert!(err.contains("--steps must be in 1..=16"), "{err}");
    let weights = std::fs::read(out.join("dynamics.safetensors")).unwrap();
    std::fs::write(
        out.join("dynamics.safetensors"),
        &weights[..weights.len() / 3],
    )
    .unwrap();
    let err = fails(
        bin()
            .args(["world", "rollout", "--actions", "R"])
            .arg("--model")
            .arg(&out)
            .arg("--out")
            .arg(&gif)
            .output()
            .unwrap(),
    );
    assert!(err.contains("dynamics.safetensors"), "{err}");

    // Missing data directory.
    let err = fails(train(&tmp("nothing"), &tmp("model2"), 2, &[]));
    assert!(err.contains("no manifest.json"), "{err}");
}

#[test]
fn train_decoder_adds_a_play_decoder_that_rollouts_use() {
    let data = tmp("dec-data");
    let model = tmp("dec-model");
    let out = tmp("dec-out");
    collect(&data);
    ok(train(&data, &model, 2, &[]));
    let decoder = |out: &Path| {
        bin()
            .args([
                "world",
                "train-decoder",
                "--steps",
                "6",
                "--batch-size",
                "2",
            ])
            .args(["--pool", "8", "--channels", "8"])
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let said = ok(decoder(&out));
    assert!(said.contains("play decoder"), "{said}");
    let c = config(&out);
    assert_eq!(c["model"]["vae"]["light_decoder"]["channels"], 8);
    assert_eq!(c["model"]["dit"], config(&model)["model"]["dit"]);
    assert_eq!(
        std::fs::read(out.join("dynamics.safetensors")).unwrap(),
        std::fs::read(model.join("dynamics.safetensors")).unwrap()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("decoder-report.json")).unwrap()).unwrap();
    assert_eq!(report["steps"], 6);
    for d in ["full", "light"] {
        let psnr = report[d]["psnr"].as_f64().unwrap();
        assert!(psnr.is_finite() && psnr > 0.0, "{report}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("decoder-log.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1,
        "one row every 10 steps and the last"
    );
    assert!(
        !out.with_file_name(format!(
            ".{}.partial",
            out.file_name().unwrap().to_string_lossy()
        ))
        .exists()
    );

    // The model with its play decoder rolls out.
    let gif = out.join("run.gif");
    ok(bin()
        .args(["world", "rollout", "--actions", "R*2,S", "--steps", "1"])
        .arg("--model")
        .arg(&out)
        .arg("--out")
        .arg(&gif)
        .output()
        .unwrap());
    assert!(gif.is_file());

    // Training its VAE further would leave the play decoder stale (and the dynamics): refused.
    let err = fails(
        bin()
            .args(["world", "train", "--game", "traveler", "--vae-steps", "4"])
            .args(["--steps", "2", "--batch-size", "2", "--vae-batch-size", "2"])
            .args(["--clip-len", "3", "--resume"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert!(err.contains("--vae-steps"), "{err}");

    // A second run into the same directory is refused and changes nothing.
    let before = std::fs::read(out.join("vae.safetensors")).unwrap();
    let err = fails(decoder(&out));
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(std::fs::read(out.join("vae.safetensors")).unwrap(), before);

    // A config that declares a play decoder over weights without one is a clear error.
    std::fs::copy(model.join("vae.safetensors"), out.join("vae.safetensors")).unwrap();
    let err = fails(
        bin()
            .args(["world", "rollout", "--actions", "R", "--steps", "1"])
            .arg("--model")
            .arg(&out)
            .arg("--out")
            .arg(out.join("bad.gif"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("light"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
