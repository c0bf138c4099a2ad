//! `gamegen collect`: record episodes of a real game with PlayGen's diverse agents into
//! compressed shards (format: docs/formats.md).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use gamegen_core::data::collect::CollectConfig;
use gamegen_core::games::GameKind;

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Episode i depends only on (--seed, i) and the other options, so the shards are byte-identical
whatever --jobs is. Rerunning the same command after an interruption keeps the finished shards
and makes only the missing ones; other options on the same --out are refused.

Examples:
  gamegen collect --game traveler --episodes 1000 --out data/traveler --seed 1
  gamegen collect --game pacman --episodes 200 --frames 600 --out data/pacman --jobs 2
  gamegen collect --game pong --episodes 50 --out data/pong --p-min 0 --p-max 0.3 --json")]
pub struct Args {
    /// traveler, pong or pacman.
    #[arg(long)]
    game: String,
    #[arg(long)]
    episodes: u64,
    /// Frames per episode (default: traveler 48; pong and pacman at most 600, ending 30 frames
    /// after the end event).
    #[arg(long)]
    frames: Option<u32>,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// A map preset file (docs/maps.md).
    #[arg(long)]
    map: Option<PathBuf>,
    /// Per-episode random-action probability p is drawn from [p-min, p-max] (PlayGen Alg. 1).
    #[arg(long, default_value_t = 0.0)]
    p_min: f64,
    #[arg(long, default_value_t = 1.0)]
    p_max: f64,
    /// A random action is repeated 1..=max-repeat frames.
    #[arg(long, default_value_t = 8)]
    max_repeat: u32,
    /// Frames recorded after the end event (pong, pacman).
    #[arg(long, default_value_t = 30)]
    after_end: u32,
    /// Zlib level of the shards, 1 (fastest) to 9.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    level: u32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let game: GameKind = a.game.parse()?;
    if !(0.0..=1.0).contains(&a.p_min) || !(a.p_min..=1.0).contains(&a.p_max) {
        anyhow::bail!("need 0 <= --p-min <= --p-max <= 1");
    }
    let mut cfg = CollectConfig::new(game, a.episodes, a.seed);
    if let Some(f) = a.frames {
        cfg.frames = f;
    }
    cfg.after_end = a.after_end;
    cfg.level = a.level;
    cfg.agent.p_min = a.p_min;
    cfg.agent.p_max = a.p_max;
    cfg.agent.max_repeat = a.max_repeat.max(1);
    if let Some(p) = &a.map {
        cfg.map = Some(
            std::fs::read_to_string(p).with_context(|| format!("reading map {}", p.display()))?,
        );
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let r = gamegen_native::collect::collect(&cfg, &a.out, jobs, true)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} episodes in {} ({} written, {} kept): {} frames, {:.1} MB, {:.1} s, {:.0} frames/s",
            r.episodes,
            r.out,
            r.written,
            r.kept,
            r.frames,
            r.bytes as f64 / 1e6,
            r.seconds,
            r.frames_per_sec
        );
    }
    Ok(())
}
