//! Crash safety of `gamegen world train`: the run is SIGKILLed at seeded points (as
//! soon as its k-th checkpoint is committed, or as soon as the files of the checkpoint after it
//! are being staged), restarted with `--resume` until one run finishes, and must end with the
//! uninterrupted run's weights and optimiser state byte for byte, no temporary or staged file
//! left, no partial file ever under a final name, and a training log without torn or duplicate
//! rows. Also: a checkpoint without optimiser state resumes with a notice, a damaged state
//! file is a one-line error.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Rng, bin, files, tmp};

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn collect(dir: &Path) {
    ok(bin()
        .args(["collect", "--game", "traveler", "--episodes", "4"])
        .args(["--frames", "10", "--seed", "2"])
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap());
}

/// Stage sizes of the crash test: 4 VAE, 6 dynamics and 4 LogicNet steps, a checkpoint after
/// every step (14 checkpoints).
const STEPS: [(&str, u32); 3] = [("--vae-steps", 4), ("--steps", 6), ("--logic-steps", 4)];

fn train_cmd(data: &Path, out: &Path, steps: &[(&str, u32)], extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["world", "train", "--game", "traveler", "--seed", "3"])
        .args([
            "--batch-size",
            "2",
            "--vae-batch-size",
            "2",
            "--clip-len",
            "3",
        ])
        .args(["--checkpoint-every", "1"]);
    for (flag, n) in steps {
        c.arg(flag).arg(n.to_string());
    }
    c.arg("--data").arg(data).arg("--out").arg(out).args(extra);
    c
}

/// Checkpoints committed so far: the step counts `config.json` names (in a fresh run they only
/// grow: VAE, then dynamics, then LogicNet).
fn committed(out: &Path) -> u64 {
    let Ok(text) = std::fs::read(out.join("config.json")) else {
        return 0;
    };
    let c: serde_json::Value = serde_json::from_slice(&text).expect("config.json is whole");
    let t = &c["training"];
    ["vae_steps", "dynamics_steps", "logic_steps"]
        .iter()
        .map(|k| t[k].as_u64().unwrap())
        .sum()
}

/// Whether files of a checkpoint are being staged (hidden, not yet committed).
fn staging(out: &Path) -> bool {
    std::fs::read_dir(out).is_ok_and(|d| {
        d.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".staged"))
    })
}

/// Every file of `dir` with its bytes.
/// A safetensors file is whole: its header parses and the data ends where the header says.
fn check_safetensors(name: &str, bytes: &[u8]) {
    assert!(bytes.len() >= 8, "{name}: {} bytes", bytes.len());
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])
        .unwrap_or_else(|e| panic!("{name}: header does not parse: {e}"));
    let end = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(_, v)| v["data_offsets"][1].as_u64().unwrap() as usize)
        .max()
        .unwrap_or(0);
    assert_eq!(bytes.len(), 8 + n + end, "{name} is torn");
}

/// `optimizer-state.bin` is whole: the magic, then length-prefixed chunks to the last byte.
fn check_state_file(bytes: &[u8]) {
    let magic = b"gamegen-optimizer-state-1\n";
    assert!(bytes.starts_with(magic), "optimizer-state.bin: no header");
    let mut rest = &bytes[magic.len()..];
    let mut chunks = 0;
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "optimizer-state.bin is torn");
        let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
        assert!(rest.len() >= 8 + len, "optimizer-state.bin is torn");
        rest = &rest[8 + len..];
        chunks += 1;
    }
    assert!(chunks >= 2, "optimizer-state.bin: {chunks} chunks");
}

/// What must hold whenever the process is dead: every file under its final name is whole.
fn check_visible(out: &Path) {
    for (name, bytes) in files(out) {
        if name.starts_with('.') {
            continue;
        }
        match name.as_str() {
            "vae.safetensors" | "dynamics.safetensors" => check_safetensors(&name, &bytes),
            "optimizer-state.bin" => check_state_file(&bytes),
            "config.json" => {
                let c: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(c["format"], "gamegen-world");
            }
            "loss.png" => assert!(bytes.starts_with(b"\x89PNG"), "loss.png is torn"),
            "train-log.jsonl" => {
                // Only the last row may be torn (a kill during its append).
                let text = String::from_utf8_lossy(&bytes);
                let rows: Vec<&str> = text.split_terminator('\n').collect();
                for row in rows.iter().take(rows.len().saturating_sub(1)) {
                    serde_json::from_str::<serde_json::Value>(row)
                        .unwrap_or_else(|e| panic!("torn log row {row:?}: {e}"));
                }
            }
            other => panic!("unexpected file {other}"),
        }
    }
}

/// Log rows keyed by (stage, step) with their numbers (not the wall time); panics on an
/// unreadable row or a duplicate key.
fn log_rows(out: &Path) -> BTreeMap<(String, u64), [f64; 3]> {
    let text = std::fs::read_to_string(out.join("train-log.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "the log ends in a torn row");
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad row {line:?}: {e}"));
        let key = (
            v["stage"].as_str().unwrap().to_string(),
            v["step"].as_u64().unwrap(),
        );
        let values = ["loss", "part", "extra"].map(|k| v[k].as_f64().unwrap());
        assert!(
            rows.insert(key.clone(), values).is_none(),
            "duplicate row {key:?}"
        );
    }
    rows
}

/// Spawn `cmd` and SIGKILL it when `ready` holds. Returns whether the kill interrupted it
/// (false: it finished first).
fn kill_when(mut cmd: Command, ready: impl Fn() -> bool) -> bool {
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
        if ready() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    !child.wait().unwrap().success()
}

#[test]
fn world_train_killed_repeatedly_ends_with_the_uninterrupted_bytes() {
    let t0 = Instant::now();
    let data = tmp("data");
    collect(&data);
    let reference_dir = tmp("ref");
    ok(train_cmd(&data, &reference_dir, &STEPS, &[])
        .output()
        .unwrap());
    let reference = files(&reference_dir);
    let reference_rows = log_rows(&reference_dir);
    let t_ref = t0.elapsed().as_secs_f64();

    let out = tmp("killed");
    let mut rng = Rng(0x5eed_0fc0_ffee);
    let mut interrupted = 0;
    for round in 0.. {
        // Each run is killed after 1-3 checkpoints of its own.
        let k = committed(&out) + 1 + rng.below(3);
        let cmd = train_cmd(&data, &out, &STEPS, &["--resume"]);
        // Odd rounds kill right after the k-th commit, even ones while a checkpoint after the
        // k-th is being staged (between its first staged file and its commit).
        let killed = if round % 2 == 1 {
            kill_when(cmd, || committed(&out) >= k)
        } else {
            kill_when(cmd, || committed(&out) >= k && staging(&out))
        };
        if !killed {
            break;
        }
        interrupted += 1;
        check_visible(&out);
        if round == 1 {
            // A kill during a log append: a torn last row, which must not survive.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(out.join("train-log.jsonl"))
                .unwrap();
            std::io::Write::write_all(&mut f, br#"{"stage":"dynamics","st"#).unwrap();
        }
        if round == 2 {
            // A kill during an atomic write, and the staged file of a checkpoint that never
            // committed (a later one): neither may end up anywhere.
            std::fs::write(out.join(".dynamics.safetensors.4000000.tmp"), b"partial").unwrap();
            std::fs::write(out.join(".vae.safetensors.v99-d0-l0.staged"), b"junk").unwrap();
        }
    }
    assert!(
        interrupted >= 4,
        "only {interrupted} kill(s) interrupted a run"
    );
    // The last round's run finished by itself; one more resume has nothing left to do.
    let again = ok(train_cmd(&data, &out, &STEPS, &["--resume"])
        .output()
        .unwrap());
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("note:"),
        "the optimiser state was not found"
    );

    let got = files(&out);
    let hidden: Vec<&String> = got.keys().filter(|n| n.starts_with('.')).collect();
    assert!(
        hidden.is_empty(),
        "temporary or staged files left: {hidden:?}"
    );
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for name in [
        "vae.safetensors",
        "dynamics.safetensors",
        "optimizer-state.bin",
    ] {
        assert!(
            got[name] == reference[name],
            "{name} differs from the uninterrupted run's"
        );
    }
    let rows = log_rows(&out);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        reference_rows.keys().collect::<Vec<_>>(),
        "log rows"
    );
    assert!(rows == reference_rows, "logged losses differ");
    let steps = |m: &BTreeMap<String, Vec<u8>>| {
        let c: serde_json::Value = serde_json::from_slice(&m["config.json"]).unwrap();
        c["training"]["vae_steps"].to_string()
            + &c["training"]["dynamics_steps"].to_string()
            + &c["training"]["logic_steps"].to_string()
    };
    assert_eq!(steps(&got), steps(&reference));

    eprintln!(
        "world train crash test: {interrupted} kills, {:.1} s (reference run {t_ref:.1} s)",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn old_and_damaged_optimizer_states_and_devices() {
    let data = tmp("data2");
    collect(&data);
    let out = tmp("old");
    let short = [("--vae-steps", 2), ("--steps", 2), ("--logic-steps", 0)];
    let longer = [("--vae-steps", 2), ("--steps", 4), ("--logic-steps", 0)];
    ok(train_cmd(&data, &out, &short, &[]).output().unwrap());
    let state = std::fs::read(out.join("optimizer-state.bin")).unwrap();
    let weights = std::fs::read(out.join("dynamics.safetensors")).unwrap();

    // A truncated state: one line, non-zero exit, no panic, nothing changed.
    std::fs::write(out.join("optimizer-state.bin"), &state[..state.len() / 2]).unwrap();
    let run = train_cmd(&data, &out, &longer, &["--resume"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("optimizer-state.bin"), "{err}");
    assert_eq!(
        std::fs::read(out.join("dynamics.safetensors")).unwrap(),
        weights
    );

    // A checkpoint without optimiser state: it resumes, says once that the moments restart,
    // and saves a state from then on.
    std::fs::remove_file(out.join("optimizer-state.bin")).unwrap();
    let cfg = out.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    let t = c["training"].as_object_mut().unwrap();
    t.remove("optimizer_state");
    t.remove("log_bytes");
    std::fs::write(&cfg, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    let run = ok(train_cmd(&data, &out, &longer, &["--resume"])
        .output()
        .unwrap());
    let err = String::from_utf8_lossy(&run.stderr);
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(notes[0].contains("restart"), "{err}");
    check_state_file(&std::fs::read(out.join("optimizer-state.bin")).unwrap());

    // Data parallel on the CPU: two replicas train to the end; zero devices is refused.
    let two = tmp("two");
    ok(train_cmd(&data, &two, &short, &["--devices", "2"])
        .output()
        .unwrap());
    check_visible(&two);
    let run = train_cmd(&data, &tmp("none"), &short, &["--devices", "0"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("--devices must be at least 1"), "{err}");
}
