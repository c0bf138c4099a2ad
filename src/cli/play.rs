//! `gamegen play`: run a real game (Traveler, Pong, Pac-Man) on a scripted action string,
//! headless, and write the frames as an animated GIF.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use gamegen_core::games::{self, Events, GameKind, maps::parse_map};
use gamegen_native::gifenc;

#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Actions: comma-separated items NAME or NAME*N (repeat N times), case-insensitive:
  traveler  S stay, L left, R right                        e.g. R*30,L*10,S*5
  pacman    S stay, U up, D down, L left, R right          e.g. R*20,D*16,L*8
  pong      two letters of S/U/D, left then right paddle   e.g. UD*10,SS*5,DU*10
  any game  the numeric action id                          e.g. 2*30

Examples:
  gamegen play traveler --actions R*60,L*30 --out run.gif
  gamegen play pacman --actions R*20,D*16,L*40 --seed 3 --scale 3 --out pac.gif
  gamegen play traveler --map core/src/games/maps/traveler_example.txt --actions R*90 --out map.gif
  gamegen play pong --actions UD*30,SS*30 --out pong.gif --json")]
pub struct Args {
    /// traveler, pong or pacman.
    game: String,
    /// The action script (see below).
    #[arg(long)]
    actions: String,
    /// Output GIF.
    #[arg(long)]
    out: PathBuf,
    /// Episode seed (initial state, random buildings, the monster's choices).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A map preset file (Traveler strip or Pac-Man maze; format in docs/maps.md).
    #[arg(long)]
    map: Option<PathBuf>,
    /// Integer upscaling of the GIF (1 = native size).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    scale: u32,
    /// Print a JSON summary (frames, score, event counts, done) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let kind: GameKind = a.game.parse()?;
    let script = games::parse_actions(kind, &a.actions)?;
    let preset = match &a.map {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading map {}", p.display()))?;
            Some(parse_map(&text).with_context(|| format!("map {}", p.display()))?)
        }
        None => None,
    };
    let mut game = games::new_game(kind, preset.as_ref())?;
    let first = game.reset(a.seed);
    let mut frames = Vec::with_capacity(script.len() + 1);
    frames.push(first.frame);
    let mut counts = [0u64; Events::NAMES.len()];
    let mut done_at = None;
    for (t, &act) in script.iter().enumerate() {
        let s = game.step(act);
        for (k, (bit, _)) in Events::NAMES.iter().enumerate() {
            counts[k] += s.events.has(*bit) as u64;
        }
        if s.done && done_at.is_none() {
            done_at = Some(t + 1);
        }
        frames.push(s.frame);
    }
    let (w, h) = kind.frame_size();
    gifenc::write_gif(&a.out, &frames, w, h, a.scale as usize, games::FPS)?;
    let events: serde_json::Map<String, serde_json::Value> = Events::NAMES
        .iter()
        .zip(counts)
        .filter(|(_, c)| *c > 0)
        .map(|((_, n), c)| (n.to_string(), c.into()))
        .collect();
    if a.json {
        let summary = serde_json::json!({
            "game": kind.name(),
            "seed": a.seed,
            "frames": frames.len(),
            "score": game.score(),
            "events": events,
            "done_at_frame": done_at,
            "player": {"x": game.player().x, "y": game.player().y},
            "out": a.out.display().to_string(),
        });
        println!("{summary}");
    } else {
        let ev: Vec<String> = events.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{}: {} frames, score {}, events [{}]{}, wrote {}",
            kind,
            frames.len(),
            game.score(),
            ev.join(" "),
            done_at.map_or(String::new(), |t| format!(", episode ended at frame {t}")),
            a.out.display()
        );
    }
    Ok(())
}
