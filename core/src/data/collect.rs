//! Episode generation for a collection run (PlayGen Alg. 1), the pure part: no files, no
//! threads. Episode `i` of a run depends only on (run seed, i) and the config, so any number of
//! workers, in any order, produce the same bytes; the native `gamegen collect` adds threads,
//! atomic files, the manifest and resuming.

use serde::{Deserialize, Serialize};

use super::agents::{Agent, AgentConfig, diverse_agent};
use super::episode::{Episode, NO_ACTION};
use super::stats::EpisodeStats;
use crate::games::{self, GameError, GameKind, MapPreset, maps::parse_map};
use crate::rng::{Rng, derive_seed};

/// What a collection run makes. Saved in the manifest; resuming requires the same config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectConfig {
    pub game: GameKind,
    pub episodes: u64,
    /// Frames per episode (Traveler: exactly; Pong / Pac-Man: at most, an episode stops
    /// `after_end` frames after its end event).
    pub frames: u32,
    pub seed: u64,
    /// Frames recorded after the end event (MaaG records 30).
    #[serde(default = "default_after_end")]
    pub after_end: u32,
    #[serde(default)]
    pub agent: AgentConfig,
    /// Zlib level of the shards (1 = fastest).
    #[serde(default = "default_level")]
    pub level: u32,
    /// Text of a map preset (docs/maps.md), if the run uses one.
    #[serde(default)]
    pub map: Option<String>,
}

fn default_after_end() -> u32 {
    30
}
fn default_level() -> u32 {
    1
}

impl CollectConfig {
    /// Defaults as in MaaG: Traveler 48 frames of play; Pong and Pac-Man up to 600.
    pub fn new(game: GameKind, episodes: u64, seed: u64) -> Self {
        Self {
            game,
            episodes,
            frames: Self::default_frames(game),
            seed,
            after_end: 30,
            agent: AgentConfig::default(),
            level: 1,
            map: None,
        }
    }

    pub fn default_frames(game: GameKind) -> u32 {
        match game {
            GameKind::Traveler => 48,
            _ => 600,
        }
    }

    /// The parsed map preset, checked against the game.
    pub fn preset(&self) -> Result<Option<MapPreset>, GameError> {
        let Some(text) = &self.map else {
            return Ok(None);
        };
        let p = parse_map(text)?;
        if p.game() != self.game {
            return Err(GameError::WrongMapGame {
                expected: self.game.name(),
                found: p.game().name(),
            });
        }
        Ok(Some(p))
    }
}

/// Shard file name of episode `index`.
pub fn shard_name(index: u64) -> String {
    format!("ep-{index:08}.{}", super::shard::EXTENSION)
}

/// Play episode `index` of the run described by `cfg`.
pub fn play_episode(
    cfg: &CollectConfig,
    preset: Option<&MapPreset>,
    index: u64,
) -> Result<Episode, GameError> {
    let ep_seed = derive_seed(cfg.seed, index);
    let mut game = games::new_game(cfg.game, preset)?;
    let mut rng = Rng::for_stream(ep_seed, 2);
    let mut obs = game.reset(ep_seed);
    let mut agent = diverse_agent(cfg.game, &cfg.agent, &game.truth_map(), &mut rng);
    let mut ep = Episode::new(cfg.game, cfg.seed, index);
    ep.meta.agent = agent.describe();
    ep.meta.random_p = agent.p;
    let frames = cfg.frames.max(1) as usize;
    ep.frames.reserve(frames * ep.frame_bytes());
    ep.push(&obs, NO_ACTION);
    while ep.len() < frames {
        if let Some(end) = ep.meta.done_at
            && ep.len() as u32 > end + cfg.after_end
        {
            break;
        }
        let a = agent.act(&obs, &mut rng);
        obs = game.step(a);
        ep.push(&obs, a);
        if obs.done && ep.meta.done_at.is_none() {
            ep.meta.done_at = Some(ep.len() as u32 - 1);
        }
    }
    ep.map = game.truth_map();
    Ok(ep)
}

/// The collection manifest (`manifest.json`), written when a run completes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// "gamegen-episodes"
    pub format: String,
    pub version: u32,
    pub config: CollectConfig,
    pub total_frames: u64,
    pub total_bytes: u64,
    /// One entry per episode, by index.
    pub episodes: Vec<EpisodeStats>,
}

pub const MANIFEST_FORMAT: &str = "gamegen-episodes";
pub const MANIFEST_VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";

impl Manifest {
    pub fn new(config: CollectConfig, mut episodes: Vec<EpisodeStats>) -> Self {
        episodes.sort_by_key(|e| e.index);
        Self {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            total_frames: episodes.iter().map(|e| e.frames as u64).sum(),
            total_bytes: episodes.iter().map(|e| e.bytes).sum(),
            config,
            episodes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::Events;

    #[test]
    fn episodes_depend_only_on_seed_and_index() {
        let cfg = CollectConfig::new(GameKind::Traveler, 4, 9);
        let a = play_episode(&cfg, None, 2).unwrap();
        let b = play_episode(&cfg, None, 2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 48);
        assert_eq!(a.actions[0], NO_ACTION);
        assert_ne!(a.frames, play_episode(&cfg, None, 3).unwrap().frames);
    }

    #[test]
    fn pacman_episodes_stop_thirty_frames_after_death() {
        let mut cfg = CollectConfig::new(GameKind::Pacman, 1, 1);
        cfg.frames = 5000;
        cfg.agent.p_min = 1.0; // random play dies sooner
        let mut ended = 0;
        for i in 0..6 {
            let ep = play_episode(&cfg, None, i).unwrap();
            if let Some(end) = ep.meta.done_at {
                ended += 1;
                assert!(Events(ep.events[end as usize]).has(Events::DEATH));
                assert_eq!(ep.len() as u32, end + 1 + cfg.after_end);
                assert!(ep.done[end as usize..].iter().all(|d| *d));
            } else {
                assert_eq!(ep.len(), 5000);
            }
        }
        assert!(ended > 0);
    }
}
