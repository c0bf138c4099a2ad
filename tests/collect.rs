//! End-to-end tests of `gamegen collect`: byte-identical shards whatever --jobs, and a run
//! killed with SIGKILL then restarted ends with exactly the bytes of an uninterrupted run.

mod common;

use common::tmp;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gamegen"))
}

fn collect(out: &Path, episodes: u32, jobs: u32, game: &str) -> std::process::Output {
    bin()
        .args(["collect", "--game", game, "--seed", "5", "--frames", "40"])
        .args([
            "--episodes",
            &episodes.to_string(),
            "--jobs",
            &jobs.to_string(),
        ])
        .arg("--out")
        .arg(out)
        .output()
        .expect("run gamegen")
}

/// Every file of `dir`, sorted by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn same_seed_any_jobs_gives_identical_bytes() {
    for game in ["traveler", "pacman"] {
        let (a, b) = (tmp(&format!("j1-{game}")), tmp(&format!("j2-{game}")));
        assert!(collect(&a, 12, 1, game).status.success());
        assert!(collect(&b, 12, 2, game).status.success());
        let (fa, fb) = (files(&a), files(&b));
        assert_eq!(fa.len(), 12 + 2, "12 shards + collect.json + manifest.json");
        assert!(fa == fb, "{game}: --jobs changed the bytes");
    }
}

#[test]
fn killed_run_resumes_to_the_same_bytes() {
    let episodes = 1500;
    let reference = tmp("ref");
    assert!(
        collect(&reference, episodes, 2, "traveler")
            .status
            .success()
    );

    let dir = tmp("killed");
    let mut child = bin()
        .args([
            "collect", "--game", "traveler", "--seed", "5", "--frames", "40",
        ])
        .args(["--episodes", &episodes.to_string(), "--jobs", "2"])
        .arg("--out")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written some shards but (very likely) not all.
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        if n > 50 || t0.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let before = std::fs::read_dir(&dir).unwrap().count();
    assert!(!dir.join("manifest.json").exists() || before >= episodes as usize);

    let out = collect(&dir, episodes, 2, "traveler");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("kept"), "{report}");
    assert!(
        files(&dir) == files(&reference),
        "resumed run differs from an uninterrupted one"
    );

    // A third run has nothing left to do.
    let again = collect(&dir, episodes, 1, "traveler");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(&format!("(0 written, {episodes} kept)"))
    );
}

#[test]
fn other_arguments_on_the_same_dir_are_refused() {
    let dir = tmp("mismatch");
    assert!(collect(&dir, 3, 1, "traveler").status.success());
    let out = bin()
        .args([
            "collect",
            "--game",
            "traveler",
            "--seed",
            "6",
            "--frames",
            "40",
            "--episodes",
            "3",
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("different collection run") && err.contains("seed"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    let bad = bin()
        .args(["collect", "--game", "tetris", "--episodes", "3", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown game"));
}

#[test]
fn play_writes_a_gif_and_rejects_bad_actions() {
    let dir = tmp("play");
    std::fs::create_dir_all(&dir).unwrap();
    let gif = dir.join("run.gif");
    let out = bin()
        .args([
            "play",
            "traveler",
            "--actions",
            "R*30,L*10,S*5",
            "--json",
            "--out",
        ])
        .arg(&gif)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 46);
    assert!(std::fs::read(&gif).unwrap().starts_with(b"GIF89a"));
    let bad = bin()
        .args(["play", "pong", "--actions", "R*3", "--out"])
        .arg(&gif)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad action 'R'"));
}

#[test]
fn balance_writes_a_balanced_manifest() {
    let data = tmp("bal-data");
    assert!(collect(&data, 60, 2, "traveler").status.success());
    let out_dir = tmp("bal-out");
    let out = bin()
        .args(["balance", "--clusters", "4", "--json", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = v["after"]["episodes"].as_u64().unwrap();
    assert!(kept > 0 && kept <= 60);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["episodes"].as_array().unwrap().len() as u64, kept);
    // Missing data is one clear error.
    let bad = bin()
        .args(["balance", "--data", "/nonexistent/gamegen", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}
