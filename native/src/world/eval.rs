//! `gamegen world eval`: replay recorded episodes' actions through a model, starting from each
//! episode's real first frame, and judge every generated frame by the papers' metrics.
//!
//! Per frame, against the recorded episode:
//! - PSNR and SSIM against the real frame;
//! - ActAcc and ProbDiff (PlayGen): the Valid Action Model (`models/eval-<game>`, see
//!   `evalnets.rs`) reads generated frames `t-1, t` and guesses the action; ActAcc is its
//!   accuracy against the action the model was given, ProbDiff the probability of its guess
//!   minus that of the true action;
//! - NumCon (MaaG): F-measure of "the score changed in this frame", judged by the valid
//!   numerical model on the generated frames against the real game's score changes; and,
//!   as a second number, from the model's own external record (models with LogicNet only);
//! - SpaCon (MaaG, `core/src/world/spacon.rs`): PSNR of newly revealed, already seen places
//!   against the map of earlier generated frames, and against the real frames;
//! - FID and FVD with gamegen's own feature network (the eval net's feature layer; per frame
//!   pair for FID, statistics over 16-frame clips for FVD), generated vs real frames of the same
//!   episodes. Not comparable with the papers' Inception/I3D numbers.
//! - FPS of the model alone;
//! - the exact object detectors (`gamegen_core::world::eval::detect`: the Pong ball and
//!   paddles, Pac-Man, dots, walls, the score read from the bar) on four sources of frames, to
//!   say where an object is lost: the real frames (the detectors' sanity check), their VAE
//!   reconstructions (the ceiling of any generated frame), teacher-forced one-step predictions
//!   (each frame predicted from the real frames before it) and the rollouts.
//!
//! `--lengths` sweeps the rollout length: for each length, only episodes at least that long
//! count (the others are reported as skipped).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::Backend;
use gamegen_core::games::{GameKind, Position};
use gamegen_core::metrics::{FMeasure, psnr, ssim};
use gamegen_core::world::checkpoint::VAE_FILE;
use gamegen_core::world::eval::detect::Detector;
use gamegen_core::world::eval::evalnet::{
    EvalNetConfig, clip_feature, downsample, judge, pair_input,
};
use gamegen_core::world::eval::frechet::frechet_distance;
use gamegen_core::world::eval::objects::{FrameCheck, ObjectSummary, Reference, check};
use gamegen_core::world::eval::spacon::{SpaConSums, SpaConTracker};
use gamegen_core::world::model::SpatialConfig;
use gamegen_core::world::play::{rgb8_to_tensor, tensor_to_rgb8};
use gamegen_core::world::{MAX_DDIM_STEPS, StatePass};
use serde::{Deserialize, Serialize};

use super::{evalnets, rollout};
use crate::plot::{HELD_OUT_RGB, Panel, Series, TRAIN_RGB, write_png};

/// Frames per FVD clip and the stride between clips.
pub const FVD_CLIP: usize = 16;
pub const FVD_STRIDE: usize = 8;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub model: PathBuf,
    pub data: PathBuf,
    pub episodes: usize,
    /// Frames generated per episode (at most the episode's length minus one).
    pub length: usize,
    /// Extra lengths for the sweep (each counts only episodes at least that long).
    pub lengths: Vec<usize>,
    /// Episodes shorter than this many frames are skipped (at least 2: a first frame and one
    /// to generate).
    pub min_frames: usize,
    pub ddim_steps: usize,
    /// What the sampler's state pass sees (the model's own setting when `None`).
    pub state_pass: Option<StatePass>,
    pub seed: u64,
    /// The evaluation network directory (default `models/eval-<game>`).
    pub eval_nets: Option<PathBuf>,
    /// Where frame strips go (PNG), if anywhere.
    pub strips: Option<PathBuf>,
}

/// The sources of frames the object detectors judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The recorded frames themselves (the detectors' sanity check).
    Real,
    /// Each real frame encoded by the model's VAE and decoded as play decodes (by the play
    /// decoder when the model has one): the ceiling of any frame the game shows.
    Vae,
    /// The same latent decoded by the VAE's own decoder (models with a play decoder only): says
    /// whether an object is lost in the latent or in the play decoder.
    VaeOwnDecoder,
    /// Each frame predicted from the real frames before it (teacher forcing).
    OneStep,
    /// The rollout: each frame predicted from the model's own earlier frames.
    Rollout,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Real => "real",
            Source::Vae => "vae",
            Source::VaeOwnDecoder => "vae-own-decoder",
            Source::OneStep => "one-step",
            Source::Rollout => "rollout",
        }
    }
}

/// The detectors' verdicts on one source of frames.
#[derive(Debug, Serialize)]
pub struct SourceObjects {
    pub source: &'static str,
    /// Mean PSNR against the real frames (`None` for the real frames themselves).
    pub psnr: Option<f64>,
    #[serde(flatten)]
    pub objects: ObjectSummary,
}

/// All metrics over the first `length` generated frames of a set of episodes.
#[derive(Debug, Serialize)]
pub struct PrefixMetrics {
    pub length: usize,
    pub episodes: usize,
    /// Episodes too short for this length (sweep only).
    pub skipped: usize,
    pub frames: usize,
    pub psnr: f64,
    pub ssim: f64,
    pub act_acc: f64,
    pub prob_diff: f64,
    /// The same VAM on the real frames of the same episodes (its ceiling).
    pub act_acc_real: f64,
    /// F1 of score changes judged by the valid numerical model on generated frames.
    pub numcon: Option<f64>,
    pub numcon_counts: FMeasure,
    /// The numerical model on the real frames (its ceiling).
    pub numcon_real: Option<f64>,
    /// F1 of score changes from the model's external record (models with LogicNet).
    pub numcon_record: Option<f64>,
    /// PSNR of revisited places vs the map of earlier generated frames, and vs the real frames.
    pub spacon: Option<f64>,
    pub spacon_truth: Option<f64>,
    pub spacon_episodes: usize,
    /// Fréchet distances with gamegen's own feature network (not the papers' FID/FVD).
    pub fid_own: Option<f64>,
    pub fvd_own: Option<f64>,
    pub fvd_clips: usize,
    /// The object detectors on each source of frames.
    pub objects: Vec<SourceObjects>,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub game: GameKind,
    pub model: String,
    pub data: String,
    pub eval_nets: String,
    /// Episodes shorter than this were skipped before counting `--episodes`.
    pub min_frames: usize,
    pub episodes: usize,
    pub frames: usize,
    pub ddim_steps: usize,
    /// What the sampler's state pass saw (`relabel` or `renoise:LEVEL`).
    pub state_pass: String,
    pub length: usize,
    /// Over each episode's first min(length, its length - 1) frames.
    pub main: PrefixMetrics,
    pub psnr: f64,
    pub ssim: f64,
    pub numcon: Option<f64>,
    pub numcon_record: Option<f64>,
    pub frames_per_second: f64,
    pub by_length: Vec<PrefixMetrics>,
    pub note: String,
}

/// Everything measured about one rolled-out episode, frame by frame (index k = frame k + 1).
struct EpisodeRecord {
    psnr: Vec<f64>,
    ssim: Vec<f64>,
    act_right: Vec<bool>,
    prob_diff: Vec<f64>,
    act_right_real: Vec<bool>,
    vnm: Vec<bool>,
    vnm_real: Vec<bool>,
    truth_changed: Vec<bool>,
    record: Vec<Option<bool>>,
    gen_features: Vec<Vec<f32>>,
    real_features: Vec<Vec<f32>>,
    spacon: Vec<SpaConSums>,
    /// Per source (the evaluation's `sources`), the detectors' verdict on every frame.
    objects: Vec<Vec<FrameCheck>>,
    /// Per source, PSNR against the real frame (empty for the real frames).
    source_psnr: Vec<Vec<f64>>,
}

impl EpisodeRecord {
    fn len(&self) -> usize {
        self.psnr.len()
    }
}

pub const NOTE: &str = "FID/FVD here use gamegen's own feature network (the eval net's feature layer, trained on this game's frames), not Inception/I3D: not comparable with the papers' numbers.";

/// Where the evaluation network of `game` is when `--eval-nets` is not given.
pub fn default_eval_nets(game: GameKind) -> PathBuf {
    PathBuf::from(format!("models/eval-{}", game.name()))
}

pub fn evaluate<B: Backend>(
    device: &B::Device,
    opts: &EvalOptions,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<EvalReport> {
    anyhow::ensure!(opts.episodes > 0, "--episodes must be positive");
    anyhow::ensure!(opts.length > 0, "--length must be positive");
    anyhow::ensure!(
        opts.lengths.iter().all(|&l| l > 0 && l <= 100_000),
        "--lengths must be positive numbers up to 100000"
    );
    anyhow::ensure!(
        (1..=MAX_DDIM_STEPS).contains(&opts.ddim_steps),
        "--steps must be in 1..={MAX_DDIM_STEPS} (DDIM steps)"
    );
    let mut world = rollout::load::<B>(&opts.model, opts.seed, device)?;
    // Teacher forcing runs on a session of its own, so the rollouts draw exactly the noise
    // they drew without it.
    let mut teacher = rollout::load::<B>(&opts.model, opts.seed, device)?;
    if let Some(pass) = opts.state_pass {
        world.session.set_state_pass(pass)?;
        teacher.session.set_state_pass(pass)?;
    }
    let state_pass = world.session.config().state_pass;
    let game = world.checkpoint.game;
    let detector = Detector::new(game);
    // The VAE once more, to decode with its own decoder when play uses a play decoder.
    let own_decoder = match world.checkpoint.model.vae.light_decoder {
        Some(_) => Some(
            world
                .checkpoint
                .load_vae::<B>(rollout::read(&opts.model.join(VAE_FILE))?, device)?,
        ),
        None => None,
    };
    let sources: Vec<Source> = [
        Source::Real,
        Source::Vae,
        Source::VaeOwnDecoder,
        Source::OneStep,
        Source::Rollout,
    ]
    .into_iter()
    .filter(|s| *s != Source::VaeOwnDecoder || own_decoder.is_some())
    .collect();
    let nets_dir = opts
        .eval_nets
        .clone()
        .unwrap_or_else(|| default_eval_nets(game));
    let (ck, net) = evalnets::load::<B>(&nets_dir, Some(game), device)?;
    let cfg: EvalNetConfig = ck.net.clone();
    let min_frames = opts.min_frames.max(2);
    let (_, episodes) = evalnets::read_episodes(&opts.data, Some(game), opts.episodes, min_frames)?;
    anyhow::ensure!(
        !episodes.is_empty(),
        "{} has no episode of {min_frames} frames or more",
        opts.data.display()
    );
    let max_len = opts
        .lengths
        .iter()
        .copied()
        .chain([opts.length])
        .max()
        .unwrap_or(1);
    let (w, h) = game.frame_size();
    let own_reconstruct = |rgb: &[u8]| -> Vec<u8> {
        own_decoder.as_ref().map_or_else(Vec::new, |v| {
            tensor_to_rgb8(v.decode_latent_full(v.encode_latent(rgb8_to_tensor(rgb, h, w, device))))
        })
    };
    let world_rows = SpatialConfig::for_game(game, false).map(|s| s.world_rows);
    let mut records = Vec::new();
    let (mut gen_frames, mut gen_seconds) = (0usize, 0.0f64);
    let mut strips = Vec::new();
    for (i, ep) in episodes.iter().enumerate() {
        progress(i, episodes.len());
        let n = (ep.actions.len() - 1).min(max_len);
        world
            .session
            .reset(&ep.frames[0], ep.scores[0], ep.positions[0])?;
        teacher
            .session
            .reset(&ep.frames[0], ep.scores[0], ep.positions[0])?;
        let mut tracker = world_rows.map(|r| {
            let mut t = SpaConTracker::new(w, h, r);
            t.start(&ep.frames[0], ep.positions[0]);
            t
        });
        let mut rec = EpisodeRecord {
            psnr: Vec::with_capacity(n),
            ssim: Vec::with_capacity(n),
            act_right: Vec::new(),
            prob_diff: Vec::new(),
            act_right_real: Vec::new(),
            vnm: Vec::new(),
            vnm_real: Vec::new(),
            truth_changed: Vec::new(),
            record: Vec::with_capacity(n),
            gen_features: Vec::new(),
            real_features: Vec::new(),
            spacon: Vec::new(),
            objects: vec![Vec::with_capacity(n); sources.len()],
            source_psnr: vec![Vec::with_capacity(n); sources.len()],
        };
        let mut gen_small = vec![downsample(&ep.frames[0], w, h, cfg.downsample)];
        let mut real_small = vec![gen_small[0].clone()];
        // The frames of the first episodes for the strips, one row per source (frame 0: the
        // real first frame, through the VAE for its rows).
        let mut kept: Vec<Vec<Vec<u8>>> = Vec::new();
        if i < 2 {
            for source in &sources {
                kept.push(vec![match source {
                    Source::Vae => world.session.reconstruct(&ep.frames[0])?,
                    Source::VaeOwnDecoder => own_reconstruct(&ep.frames[0]),
                    _ => ep.frames[0].clone(),
                }]);
            }
        }
        let mut prev_model = world.session.record.as_ref().map(|r| r.score);
        for t in 1..=n {
            let start = Instant::now();
            let (frame, info) = world.session.step(ep.actions[t] as u32, opts.ddim_steps)?;
            gen_seconds += start.elapsed().as_secs_f64();
            gen_frames += 1;
            let truth = &ep.frames[t];
            rec.psnr.push(psnr(&frame, truth));
            rec.ssim.push(ssim(&frame, truth, w, h));
            rec.record.push(match (info.score, prev_model) {
                (Some(now), Some(before)) => Some(now != before),
                _ => None,
            });
            prev_model = info.score;
            if let Some(tr) = &mut tracker {
                tr.step(&frame, truth, ep.positions[t]);
            }
            gen_small.push(downsample(&frame, w, h, cfg.downsample));
            real_small.push(downsample(truth, w, h, cfg.downsample));
            let vae = world.session.reconstruct(truth)?;
            let (one_step, _) = teacher.session.step_teacher_forced(
                ep.actions[t] as u32,
                opts.ddim_steps,
                truth,
                ep.scores[t],
            )?;
            let real_facts = detector.detect(truth);
            let (px, py) = ep.positions[t];
            let reference = Reference::new(
                game,
                ep.scores[t],
                Position {
                    x: px as i32,
                    y: py as i32,
                },
                &ep.aux[t],
                &real_facts,
            );
            for (k, source) in sources.iter().enumerate() {
                let own;
                let f: &[u8] = match source {
                    Source::Real => truth,
                    Source::Vae => &vae,
                    Source::VaeOwnDecoder => {
                        own = own_reconstruct(truth);
                        &own
                    }
                    Source::OneStep => &one_step,
                    Source::Rollout => &frame,
                };
                let facts = if *source == Source::Real {
                    real_facts.clone()
                } else {
                    rec.source_psnr[k].push(psnr(f, truth));
                    detector.detect(f)
                };
                rec.objects[k].push(check(&facts, &reference));
                if let Some(row) = kept.get_mut(k) {
                    row.push(f.to_vec());
                }
            }
        }
        // Judge generated and real pairs in batches.
        for chunk in (1..=n).collect::<Vec<_>>().chunks(64) {
            let gp: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&t| pair_input(&gen_small[t - 1], &gen_small[t]))
                .collect();
            let rp: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&t| pair_input(&real_small[t - 1], &real_small[t]))
                .collect();
            let gj = judge(&net, &cfg, &gp, device);
            let rj = judge(&net, &cfg, &rp, device);
            for ((g, r), &t) in gj.into_iter().zip(rj).zip(chunk) {
                let a = (ep.actions[t] as usize).min(cfg.num_actions - 1);
                rec.act_right.push(g.predicted_action() == a);
                rec.prob_diff.push(g.prob_diff(a) as f64);
                rec.act_right_real.push(r.predicted_action() == a);
                rec.vnm.push(g.score_changed >= 0.5);
                rec.vnm_real.push(r.score_changed >= 0.5);
                rec.truth_changed.push(ep.scores[t] != ep.scores[t - 1]);
                rec.gen_features.push(g.features);
                rec.real_features.push(r.features);
            }
        }
        if let Some(tr) = tracker {
            rec.spacon = tr.per_frame;
        }
        if i < 2 {
            strips.push(kept);
        }
        records.push(rec);
    }
    progress(episodes.len(), episodes.len());

    let main = aggregate(game, &sources, &records, opts.length, false);
    let lengths: BTreeSet<usize> = opts.lengths.iter().copied().collect();
    let by_length: Vec<PrefixMetrics> = lengths
        .iter()
        .map(|&l| aggregate(game, &sources, &records, l, true))
        .collect();
    if let Some(dir) = &opts.strips {
        std::fs::create_dir_all(dir)?;
        for (k, rows) in strips.iter().enumerate() {
            let png = frame_strip(rows, w, h);
            crate::fsutil::write_atomic(&dir.join(format!("strip-{k}.png")), &png)?;
        }
    }
    Ok(EvalReport {
        game,
        model: opts.model.display().to_string(),
        data: opts.data.display().to_string(),
        eval_nets: nets_dir.display().to_string(),
        min_frames,
        episodes: records.len(),
        frames: gen_frames,
        ddim_steps: opts.ddim_steps,
        state_pass: state_pass.to_string(),
        length: opts.length,
        psnr: main.psnr,
        ssim: main.ssim,
        numcon: main.numcon,
        numcon_record: main.numcon_record,
        main,
        frames_per_second: gen_frames as f64 / gen_seconds.max(1e-9),
        by_length,
        note: NOTE.to_string(),
    })
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
    if c == 0 { f64::NAN } else { s / c as f64 }
}

/// Metrics over the first `length` frames of each episode: with `strict`, only episodes that
/// rolled out at least `length` frames; otherwise each episode's first `min(length, len)`.
fn aggregate(
    game: GameKind,
    sources: &[Source],
    records: &[EpisodeRecord],
    length: usize,
    strict: bool,
) -> PrefixMetrics {
    let eps: Vec<(&EpisodeRecord, usize)> = records
        .iter()
        .filter(|r| !strict || r.len() >= length)
        .map(|r| (r, r.len().min(length)))
        .collect();
    let frames: usize = eps.iter().map(|(_, k)| k).sum();
    let flat = |f: &dyn Fn(&EpisodeRecord, usize) -> f64| {
        mean(eps.iter().flat_map(|(r, k)| (0..*k).map(move |i| f(r, i))))
    };
    let mut numcon = FMeasure::default();
    let mut numcon_real = FMeasure::default();
    let mut numcon_record = FMeasure::default();
    let mut has_record = false;
    let mut gen_f = Vec::new();
    let mut real_f = Vec::new();
    let mut gen_clips = Vec::new();
    let mut real_clips = Vec::new();
    let mut spacon = Vec::new();
    for (r, k) in &eps {
        for i in 0..*k {
            numcon.add(r.vnm[i], r.truth_changed[i]);
            numcon_real.add(r.vnm_real[i], r.truth_changed[i]);
            if let Some(p) = r.record[i] {
                has_record = true;
                numcon_record.add(p, r.truth_changed[i]);
            }
        }
        gen_f.extend(r.gen_features[..*k].iter().cloned());
        real_f.extend(r.real_features[..*k].iter().cloned());
        let mut s = 0;
        while s + FVD_CLIP <= *k {
            gen_clips.push(clip_feature(&r.gen_features[s..s + FVD_CLIP]));
            real_clips.push(clip_feature(&r.real_features[s..s + FVD_CLIP]));
            s += FVD_STRIDE;
        }
        if *k > 0
            && let Some(p) = r.spacon.get(k - 1).and_then(|s| s.psnr())
        {
            spacon.push(p);
        }
    }
    PrefixMetrics {
        length,
        episodes: eps.len(),
        skipped: records.len() - eps.len(),
        frames,
        psnr: flat(&|r, i| r.psnr[i]),
        ssim: flat(&|r, i| r.ssim[i]),
        act_acc: flat(&|r, i| r.act_right[i] as u8 as f64),
        prob_diff: flat(&|r, i| r.prob_diff[i]),
        act_acc_real: flat(&|r, i| r.act_right_real[i] as u8 as f64),
        numcon: numcon.f1(),
        numcon_counts: numcon,
        numcon_real: numcon_real.f1(),
        numcon_record: if has_record { numcon_record.f1() } else { None },
        spacon: (!spacon.is_empty()).then(|| mean(spacon.iter().map(|p| p.0))),
        spacon_truth: (!spacon.is_empty()).then(|| mean(spacon.iter().map(|p| p.1))),
        spacon_episodes: spacon.len(),
        fid_own: frechet_distance(&gen_f, &real_f),
        fvd_own: frechet_distance(&gen_clips, &real_clips),
        fvd_clips: gen_clips.len(),
        objects: sources
            .iter()
            .enumerate()
            .map(|(k, source)| SourceObjects {
                source: source.name(),
                psnr: (*source != Source::Real).then(|| {
                    mean(
                        eps.iter()
                            .flat_map(|(r, n)| r.source_psnr[k][..*n].iter().copied()),
                    )
                }),
                objects: ObjectSummary::of(
                    game,
                    eps.iter().flat_map(|(r, n)| {
                        r.objects[k][..*n]
                            .iter()
                            .enumerate()
                            .map(|(i, c)| (i + 1, c))
                    }),
                ),
            })
            .collect(),
    }
}

/// Frames of each source in `rows` (top to bottom, the sources in the report's order) at a
/// few times, as PNG.
fn frame_strip(rows: &[Vec<Vec<u8>>], w: usize, h: usize) -> Vec<u8> {
    let n = rows.iter().map(|r| r.len()).min().unwrap_or(0);
    let mut times: Vec<usize> = [0usize, 1, 4, 16, 32, 64, 128, 256, 512, 1024]
        .into_iter()
        .filter(|&t| t < n)
        .collect();
    if n > 1 && !times.contains(&(n - 1)) {
        times.push(n - 1);
    }
    let gap = 2;
    let ow = times.len() * (w + gap);
    let oh = rows.len() * (h + gap) - gap;
    let mut px = vec![255u8; ow * oh * 3];
    for (c, &t) in times.iter().enumerate() {
        for (r, row) in rows.iter().enumerate() {
            let src = &row[t];
            for y in 0..h {
                let dst = ((r * (h + gap) + y) * ow + c * (w + gap)) * 3;
                px[dst..dst + w * 3].copy_from_slice(&src[y * w * 3..(y + 1) * w * 3]);
            }
        }
    }
    encode_png(&px, ow, oh)
}

fn encode_png(px: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .expect("writing a PNG header to memory cannot fail");
        writer
            .write_image_data(px)
            .expect("the buffer has exactly w*h*3 bytes");
    }
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".to_string(), |f| format!("{f:.digits$}"))
}

/// One table row per prefix.
fn rows(ps: &[&PrefixMetrics]) -> String {
    let mut s = String::from(
        "| frames | episodes (skipped) | PSNR | SSIM | ActAcc (real) | ProbDiff | NumCon VNM (real) | NumCon record | SpaCon map / truth | FID* | FVD* |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in ps {
        s.push_str(&format!(
            "| {} | {} ({}) | {:.2} | {:.3} | {:.3} ({:.3}) | {:.3} | {} ({}) | {} | {} / {} | {} | {} |\n",
            p.length,
            p.episodes,
            p.skipped,
            p.psnr,
            p.ssim,
            p.act_acc,
            p.act_acc_real,
            p.prob_diff,
            opt(p.numcon, 3),
            opt(p.numcon_real, 3),
            opt(p.numcon_record, 3),
            opt(p.spacon, 2),
            opt(p.spacon_truth, 2),
            opt(p.fid_own, 2),
            opt(p.fvd_own, 2),
        ));
    }
    s
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |f| format!("{:.1}", 100.0 * f))
}

/// The game's own detector columns (after source, frames, PSNR and score OCR).
fn object_columns(game: GameKind) -> &'static str {
    match game {
        GameKind::Pong => {
            "ball found % | ball within 1 px % | within 4 px % | ball median error px | paddles found % | paddle median error px"
        }
        GameKind::Pacman => {
            "Pac-Man found % | within 1 px % | median error px | dot precision / recall | at frame 64 (episodes) | wall IoU"
        }
        GameKind::Traveler => "",
    }
}

/// The cells of [`object_columns`] for one source.
fn object_cells(game: GameKind, o: &ObjectSummary) -> String {
    match game {
        GameKind::Pong => format!(
            "{} | {} | {} | {} | {} | {}",
            pct(o.ball_found),
            pct(o.ball_within_1px),
            pct(o.ball_within_4px),
            opt(o.ball_median_px, 1),
            pct(o.paddle_found),
            opt(o.paddle_median_px, 1),
        ),
        GameKind::Pacman => format!(
            "{} | {} | {} | {} / {} | {} / {} ({}) | {}",
            pct(o.pacman_found),
            pct(o.pacman_within_1px),
            opt(o.pacman_median_px, 1),
            opt(o.dot_precision, 3),
            opt(o.dot_recall, 3),
            opt(o.dot_precision_at_64, 3),
            opt(o.dot_recall_at_64, 3),
            o.dot_frames_at_64,
            opt(o.wall_iou, 3),
        ),
        GameKind::Traveler => String::new(),
    }
}

/// The detectors' verdicts, one row per source, with the columns `game` has.
pub fn objects_table(game: GameKind, p: &PrefixMetrics) -> String {
    let head = object_columns(game);
    let extra = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!(" {s} |")
        }
    };
    let ncols = 4 + if head.is_empty() {
        0
    } else {
        head.matches('|').count() + 1
    };
    let mut s = format!("| source | frames | PSNR | score OCR % |{}\n", extra(head));
    s.push_str(&format!("|{}\n", "---|".repeat(ncols)));
    for o in &p.objects {
        s.push_str(&format!(
            "| {} | {} | {} | {} |{}\n",
            o.source,
            o.objects.frames,
            opt(o.psnr, 2),
            pct(o.objects.score_ocr),
            extra(&object_cells(game, &o.objects)),
        ));
    }
    s.push_str(
        "\nreal: the recorded frames (the detectors' sanity check against the recorded truth); vae: each real frame encoded and decoded by the model as play decodes it (the ceiling); vae-own-decoder: the same latent through the VAE's own decoder instead of the play decoder; one-step: each frame predicted from the real frames before it (teacher forcing); rollout: the model on its own frames. Found: the object detected at all, in frames whose real frame shows it; errors in pixels where found.\n",
    );
    s
}

/// The report as Markdown (for docs and model cards).
pub fn markdown(r: &EvalReport) -> String {
    let mut s = format!(
        "# world eval: {} ({})\n\nmodel `{}`, data `{}`, eval nets `{}`; {} episodes (of at least {} frames), {} frames generated, DDIM {} steps (state pass {}), {:.1} FPS (model only, this machine).\n\n## First {} frames of every episode\n\n",
        r.game,
        r.model,
        r.model,
        r.data,
        r.eval_nets,
        r.episodes,
        r.min_frames,
        r.frames,
        r.ddim_steps,
        r.state_pass,
        r.frames_per_second,
        r.length,
    );
    s.push_str(&rows(&[&r.main]));
    s.push_str("\n## Object detectors, by source of frames\n\n");
    s.push_str(&objects_table(r.game, &r.main));
    if !r.by_length.is_empty() {
        s.push_str("\n## Length sweep (only episodes at least that long)\n\n");
        s.push_str(&rows(&r.by_length.iter().collect::<Vec<_>>()));
    }
    s.push_str(&format!(
        "\n(real): the same judge on the real frames of the same episodes (its ceiling). \
NumCon VNM: judged by the valid numerical model on the frames; NumCon record: from the model's \
own external record (LogicNet). SpaCon: PSNR (dB) of revisited places vs the map of earlier \
generated frames / vs the real frames. \\*{}\n",
        NOTE
    ));
    s
}

/// What `by-length.png` shows of one rollout length: a subset of [`PrefixMetrics`] that
/// `eval.json` also holds, so the picture can be redrawn from the report ([`replot`]).
#[derive(Debug, Deserialize)]
struct LengthPoint {
    length: usize,
    episodes: usize,
    psnr: f64,
    ssim: f64,
    act_acc: f64,
    act_acc_real: f64,
    numcon: Option<f64>,
    numcon_record: Option<f64>,
    spacon: Option<f64>,
    spacon_truth: Option<f64>,
    fid_own: Option<f64>,
    fvd_own: Option<f64>,
}

impl From<&PrefixMetrics> for LengthPoint {
    fn from(p: &PrefixMetrics) -> Self {
        Self {
            length: p.length,
            episodes: p.episodes,
            psnr: p.psnr,
            ssim: p.ssim,
            act_acc: p.act_acc,
            act_acc_real: p.act_acc_real,
            numcon: p.numcon,
            numcon_record: p.numcon_record,
            spacon: p.spacon,
            spacon_truth: p.spacon_truth,
            fid_own: p.fid_own,
            fvd_own: p.fvd_own,
        }
    }
}

/// The line of `eval.md` under the picture.
const BY_LENGTH_MD: &str = "![metrics against rollout length](by-length.png)\n\nPanels top to \
bottom (x: rollout length in frames): PSNR; SSIM; ActAcc of the generated and of the real \
frames; NumCon by the valid numerical model and by the model's record; SpaCon against earlier \
generated frames and against the real ones; gamegen's own FID and FVD.";

/// `DIR/by-length.png`: every metric against the rollout length, one panel each.
fn plot_by_length(out: &Path, points: &[LengthPoint]) -> anyhow::Result<()> {
    let series = |f: &dyn Fn(&LengthPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter(|p| p.episodes > 0)
            .filter_map(|p| f(p).map(|v| (p.length as f64, v)))
            .collect()
    };
    // (title, y axis, (legend, series) in blue, (legend, series) in red)
    type Named<'a> = (&'a str, Vec<(f64, f64)>);
    let none = || ("", Vec::new());
    let data: Vec<(&str, &str, Named, Named)> = vec![
        (
            "PSNR",
            "dB",
            ("generated", series(&|p| Some(p.psnr))),
            none(),
        ),
        (
            "SSIM",
            "SSIM",
            ("generated", series(&|p| Some(p.ssim))),
            none(),
        ),
        (
            "ActAcc (valid action model)",
            "accuracy",
            ("generated", series(&|p| Some(p.act_acc))),
            ("real frames", series(&|p| Some(p.act_acc_real))),
        ),
        (
            "NumCon (score changes)",
            "F1",
            ("valid numerical model", series(&|p| p.numcon)),
            ("model's record", series(&|p| p.numcon_record)),
        ),
        (
            "SpaCon (revisited places)",
            "dB",
            ("vs earlier frames", series(&|p| p.spacon)),
            ("vs real frames", series(&|p| p.spacon_truth)),
        ),
        (
            "gamegen's own Frechet distances",
            "distance",
            ("FID*", series(&|p| p.fid_own)),
            ("FVD*", series(&|p| p.fvd_own)),
        ),
    ];
    let panels: Vec<Panel> = data
        .iter()
        .map(|(title, y_label, (a_name, a), (b_name, b))| Panel {
            title,
            x_label: "rollout length (frames)",
            y_label,
            log_y: false,
            series: vec![
                Series {
                    name: a_name,
                    points: a,
                    rgb: TRAIN_RGB,
                },
                Series {
                    name: b_name,
                    points: b,
                    rgb: HELD_OUT_RGB,
                },
            ],
        })
        .collect();
    write_png(&out.join("by-length.png"), &panels)?;
    Ok(())
}

/// Redraws `DIR/by-length.png` from `DIR/eval.json` and updates the caption in `eval.md`
/// (after a change to the plots). False when the report has no sweep to draw.
pub fn replot(out: &Path) -> anyhow::Result<bool> {
    let path = out.join("eval.json");
    #[derive(Deserialize)]
    struct Report {
        #[serde(default)]
        by_length: Vec<LengthPoint>,
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not an evaluation report: {e}", path.display()))?;
    if report.by_length.len() < 2 {
        return Ok(false);
    }
    plot_by_length(out, &report.by_length)?;
    let md_path = out.join("eval.md");
    if let Ok(md) = std::fs::read_to_string(&md_path) {
        // The caption is the image line, a blank line and the panel list.
        if let Some(start) = md.find("![metrics against rollout length]") {
            let rest = &md[start..];
            let end = rest
                .match_indices('\n')
                .nth(2)
                .map_or(md.len(), |(i, _)| start + i);
            let updated = format!("{}{BY_LENGTH_MD}{}", &md[..start], &md[end..]);
            if updated != md {
                crate::fsutil::write_atomic(&md_path, updated.as_bytes())?;
            }
        }
    }
    Ok(true)
}

/// Where the report goes: `DIR/eval.json`, `DIR/eval.md`, `DIR/by-length.png` (with a sweep).
pub fn write(out: &Path, r: &EvalReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("creating {}: {e}", out.display()))?;
    crate::fsutil::write_atomic(
        &out.join("eval.json"),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let mut md = markdown(r);
    if r.by_length.len() >= 2 {
        let points: Vec<LengthPoint> = r.by_length.iter().map(LengthPoint::from).collect();
        plot_by_length(out, &points)?;
        md.push('\n');
        md.push_str(BY_LENGTH_MD);
        md.push('\n');
    }
    let rows = r
        .main
        .objects
        .iter()
        .map(|o| o.source)
        .collect::<Vec<_>>()
        .join(", ");
    for k in 0..2 {
        if out.join(format!("strip-{k}.png")).is_file() {
            md.push_str(&format!(
                "\n![episode {k}, top to bottom: {rows}, at frames 0, 1, 4, 16, 32, ...](strip-{k}.png)\n"
            ));
        }
    }
    crate::fsutil::write_atomic(&out.join("eval.md"), md.as_bytes())?;
    Ok(())
}
