//! `gamegen world rollout`: the first frame from the real game, then the model alone on an
//! action script; the real game plays the same script beside it for comparison.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::Backend;
use gamegen_core::games::{self, GameKind, MapPreset};
use gamegen_core::world::checkpoint::{CONFIG_FILE, DYNAMICS_FILE, VAE_FILE};
use gamegen_core::world::{WorldCheckpoint, WorldSession};
use serde::Serialize;

use super::data::compact_events;

/// A loaded world-model directory.
pub struct LoadedWorld<B: Backend> {
    pub checkpoint: WorldCheckpoint,
    pub session: WorldSession<B>,
}

/// The bytes of a model file, or an error naming it.
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Load `config.json`, `vae.safetensors` and `dynamics.safetensors` from `dir`.
pub fn load<B: Backend>(
    dir: &Path,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<LoadedWorld<B>> {
    let cfg_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    let checkpoint =
        WorldCheckpoint::from_json(&text).with_context(|| format!("{}", cfg_path.display()))?;
    let vae = checkpoint
        .load_vae::<B>(read(&dir.join(VAE_FILE))?, device)
        .with_context(|| format!("{}", dir.join(VAE_FILE).display()))?;
    let model = checkpoint
        .load_dynamics::<B>(read(&dir.join(DYNAMICS_FILE))?, device)
        .with_context(|| format!("{}", dir.join(DYNAMICS_FILE).display()))?;
    let session = WorldSession::new(model, vae, checkpoint.model.clone(), seed, device.clone())?;
    Ok(LoadedWorld {
        checkpoint,
        session,
    })
}

/// A (neural, real) pair of RGB frames.
pub type FramePair = (Vec<u8>, Vec<u8>);

/// Per-frame facts of a rollout, written as the external record.
#[derive(Debug, Serialize)]
pub struct RolloutFrame {
    pub action: u8,
    /// LogicNet's event bits (compact, see `world::data::game_events`).
    pub events: u8,
    pub score: Option<u32>,
    /// The real game's events (compact) and score for the same actions.
    pub real_events: u8,
    pub real_score: u32,
    /// Mean absolute difference to the real frame, 0..255.
    pub mae: f64,
}

#[derive(Debug, Serialize)]
pub struct RolloutReport {
    pub game: GameKind,
    pub frames: usize,
    pub ddim_steps: usize,
    pub seconds: f64,
    pub frames_per_second: f64,
    pub mean_mae: f64,
    pub final_score: Option<u32>,
    pub real_final_score: u32,
    pub record: Vec<RolloutFrame>,
}

/// Roll `actions` out with the model, starting from the real game's frame after `reset(seed)`.
/// Returns the report and the frame pairs (neural, real).
pub fn rollout<B: Backend>(
    world: &mut LoadedWorld<B>,
    actions: &[u8],
    ddim_steps: usize,
    seed: u64,
    map: Option<&MapPreset>,
) -> anyhow::Result<(RolloutReport, Vec<FramePair>)> {
    let game_kind = world.checkpoint.game;
    let mut game = games::new_game(game_kind, map)?;
    let first = game.reset(seed);
    // A designer's map is shown to the model too (when it has a spatial module), drawn as this
    // episode of the real game draws it.
    let views: Vec<(Vec<u8>, (i64, i64))> = match map {
        Some(_) => game
            .preset_views()
            .into_iter()
            .map(|(frame, p)| (frame, (p.x as i64, p.y as i64)))
            .collect(),
        None => Vec::new(),
    };
    if map.is_some() && world.session.config().spatial.is_none() {
        eprintln!(
            "note: this model has no spatial module; the map preset only shapes the real game"
        );
    } else {
        world.session.set_preset(&views)?;
    }
    world.session.reset(
        &first.frame,
        first.score,
        (first.player.x as i64, first.player.y as i64),
    )?;
    let mut frames = vec![(first.frame.clone(), first.frame)];
    let mut record = Vec::with_capacity(actions.len());
    let start = Instant::now();
    let mut neural_time = 0.0;
    for &a in actions {
        let t = Instant::now();
        let (frame, info) = world.session.step(a as u32, ddim_steps)?;
        neural_time += t.elapsed().as_secs_f64();
        let real = game.step(a);
        let mae = frame
            .iter()
            .zip(&real.frame)
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum::<f64>()
            / frame.len() as f64;
        record.push(RolloutFrame {
            action: a,
            events: info.events,
            score: info.score,
            real_events: compact_events(game_kind, real.events.0),
            real_score: real.score,
            mae,
        });
        frames.push((frame, real.frame));
    }
    let _ = start;
    let n = actions.len();
    Ok((
        RolloutReport {
            game: game_kind,
            frames: n,
            ddim_steps,
            seconds: neural_time,
            frames_per_second: n as f64 / neural_time.max(1e-9),
            mean_mae: record.iter().map(|r| r.mae).sum::<f64>() / n.max(1) as f64,
            final_score: record.last().and_then(|r| r.score),
            real_final_score: game.score(),
            record,
        },
        frames,
    ))
}

/// Side by side (neural left, real right, a 2-pixel grey gutter) RGB frames.
pub fn side_by_side(pairs: &[FramePair], w: usize, h: usize) -> (Vec<Vec<u8>>, usize) {
    let gutter = 2;
    let ow = 2 * w + gutter;
    let frames = pairs
        .iter()
        .map(|(a, b)| {
            let mut out = vec![128u8; ow * h * 3];
            for y in 0..h {
                out[y * ow * 3..][..w * 3].copy_from_slice(&a[y * w * 3..][..w * 3]);
                out[(y * ow + w + gutter) * 3..][..w * 3].copy_from_slice(&b[y * w * 3..][..w * 3]);
            }
            out
        })
        .collect();
    (frames, ow)
}
