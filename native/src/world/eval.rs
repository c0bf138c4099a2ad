//! `gamegen world eval`: replay recorded episodes' actions through a model, starting from each
//! episode's real first frame, and compare every generated frame with the recorded one.
//!
//! Measured now: PSNR and SSIM per frame (also as means over growing prefixes of the rollout:
//! error accumulates with length), NumCon as the F-measure of score changes from the external
//! record against the real game's (MaaG), and the model's FPS. Not yet: ActAcc/ProbDiff (needs
//! the Valid Action Model), SpaCon, FID/FVD.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::Backend;
use gamegen_core::data::collect::{MANIFEST_NAME, shard_name};
use gamegen_core::data::shard;
use gamegen_core::games::GameKind;
use gamegen_core::metrics::{FMeasure, psnr, ssim};
use serde::Serialize;

use super::rollout;
use crate::collect::read_manifest;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub model: PathBuf,
    pub data: PathBuf,
    pub episodes: usize,
    /// Frames generated per episode (at most the episode's length minus one).
    pub length: usize,
    pub ddim_steps: usize,
    pub seed: u64,
}

/// Means over the first `length` generated frames of every episode long enough.
#[derive(Debug, Serialize)]
pub struct PrefixMetrics {
    pub length: usize,
    pub episodes: usize,
    pub psnr: f64,
    pub ssim: f64,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub game: GameKind,
    pub model: String,
    pub data: String,
    pub episodes: usize,
    pub frames: usize,
    pub ddim_steps: usize,
    pub psnr: f64,
    pub ssim: f64,
    pub by_length: Vec<PrefixMetrics>,
    /// F-measure of "the score changed in this frame", model record vs real game.
    pub numcon: Option<f64>,
    pub numcon_counts: FMeasure,
    pub frames_per_second: f64,
}

/// Per-episode, per-frame PSNR and SSIM.
struct EpisodeScores {
    psnr: Vec<f64>,
    ssim: Vec<f64>,
}

pub fn evaluate<B: Backend>(
    device: &B::Device,
    opts: &EvalOptions,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<EvalReport> {
    anyhow::ensure!(opts.episodes > 0, "--episodes must be positive");
    anyhow::ensure!(opts.length > 0, "--length must be positive");
    anyhow::ensure!(
        (1..=16).contains(&opts.ddim_steps),
        "--steps must be in 1..=16 (DDIM steps)"
    );
    let mut world = rollout::load::<B>(&opts.model, opts.seed, device)?;
    let game = world.checkpoint.game;
    if !opts.data.join(MANIFEST_NAME).is_file() {
        anyhow::bail!(
            "{} has no {MANIFEST_NAME} (collect evaluation episodes with gamegen collect)",
            opts.data.display()
        );
    }
    let manifest = read_manifest(&opts.data)?;
    anyhow::ensure!(
        manifest.config.game == game,
        "{} holds {} episodes but the model plays {}",
        opts.data.display(),
        manifest.config.game.name(),
        game.name()
    );
    let (w, h) = game.frame_size();
    let fl = w * h * 3;
    let chosen: Vec<_> = manifest
        .episodes
        .iter()
        .filter(|e| e.frames >= 2)
        .take(opts.episodes)
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "{} has no episode of 2 frames or more",
        opts.data.display()
    );
    let mut per_episode = Vec::new();
    let mut numcon = FMeasure::default();
    let (mut gen_frames, mut gen_seconds) = (0usize, 0.0f64);
    for (i, e) in chosen.iter().enumerate() {
        progress(i, chosen.len());
        let path = opts.data.join(shard_name(e.index));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let ep =
            shard::decode(&bytes).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        let n = (ep.actions.len() - 1).min(opts.length);
        world.session.reset(
            &ep.frames[..fl],
            ep.scores[0],
            (ep.player[0].x as i64, ep.player[0].y as i64),
        )?;
        let mut scores = EpisodeScores {
            psnr: Vec::with_capacity(n),
            ssim: Vec::with_capacity(n),
        };
        let mut prev_model = world.session.record.as_ref().map(|r| r.score);
        for t in 1..=n {
            let start = Instant::now();
            let (frame, info) = world.session.step(ep.actions[t] as u32, opts.ddim_steps)?;
            gen_seconds += start.elapsed().as_secs_f64();
            gen_frames += 1;
            let truth = &ep.frames[t * fl..(t + 1) * fl];
            scores.psnr.push(psnr(&frame, truth));
            scores.ssim.push(ssim(&frame, truth, w, h));
            if let (Some(now), Some(before)) = (info.score, prev_model) {
                numcon.add(now != before, ep.scores[t] != ep.scores[t - 1]);
            }
            prev_model = info.score;
        }
        per_episode.push(scores);
    }
    progress(chosen.len(), chosen.len());
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
        if c == 0 { f64::NAN } else { s / c as f64 }
    };
    let longest = per_episode.iter().map(|e| e.psnr.len()).max().unwrap_or(0);
    let mut by_length = Vec::new();
    for len in [16usize, 32, 64, 128, 256, 512, 1024] {
        if len > longest {
            break;
        }
        let eps: Vec<&EpisodeScores> = per_episode.iter().filter(|e| e.psnr.len() >= len).collect();
        by_length.push(PrefixMetrics {
            length: len,
            episodes: eps.len(),
            psnr: mean(&mut eps.iter().flat_map(|e| e.psnr[..len].iter().copied())),
            ssim: mean(&mut eps.iter().flat_map(|e| e.ssim[..len].iter().copied())),
        });
    }
    Ok(EvalReport {
        game,
        model: opts.model.display().to_string(),
        data: opts.data.display().to_string(),
        episodes: per_episode.len(),
        frames: gen_frames,
        ddim_steps: opts.ddim_steps,
        psnr: mean(&mut per_episode.iter().flat_map(|e| e.psnr.iter().copied())),
        ssim: mean(&mut per_episode.iter().flat_map(|e| e.ssim.iter().copied())),
        by_length,
        numcon: numcon.f1(),
        numcon_counts: numcon,
        frames_per_second: gen_frames as f64 / gen_seconds.max(1e-9),
    })
}

/// The report as a Markdown table (for model cards and docs).
pub fn markdown(r: &EvalReport) -> String {
    let mut s = format!(
        "| metric | value |\n|---|---|\n| episodes | {} |\n| frames generated | {} |\n| DDIM steps | {} |\n| PSNR (dB) | {:.2} |\n| SSIM | {:.3} |\n| NumCon (F1 of score changes) | {} |\n| FPS (this machine, model only) | {:.1} |\n",
        r.episodes,
        r.frames,
        r.ddim_steps,
        r.psnr,
        r.ssim,
        r.numcon
            .map_or("n/a (no score change)".to_string(), |f| format!("{f:.3}")),
        r.frames_per_second
    );
    if !r.by_length.is_empty() {
        s.push_str("\n| first N frames | episodes | PSNR | SSIM |\n|---|---|---|---|\n");
        for p in &r.by_length {
            s.push_str(&format!(
                "| {} | {} | {:.2} | {:.3} |\n",
                p.length, p.episodes, p.psnr, p.ssim
            ));
        }
    }
    s
}

/// Where the report goes: `DIR/eval.json` and `DIR/eval.md`.
pub fn write(out: &Path, r: &EvalReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::fsutil::write_atomic(
        &out.join("eval.json"),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    crate::fsutil::write_atomic(&out.join("eval.md"), markdown(r).as_bytes())?;
    Ok(())
}
