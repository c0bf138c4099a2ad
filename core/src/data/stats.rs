//! Per-episode statistics, stored in the manifest so that balancing (PlayGen Alg. 2) never has
//! to decompress frames: position histogram, event counts and action mix.

use serde::{Deserialize, Serialize};

use super::episode::{Episode, NO_ACTION};
use crate::games::{Events, GameKind, pacman, pong, traveler};

/// Bins of the position histogram.
pub fn position_bins(game: GameKind) -> usize {
    match game {
        GameKind::Traveler | GameKind::Pong => 8,
        GameKind::Pacman => 16,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeStats {
    pub index: u64,
    /// Shard file name, relative to the data directory.
    pub file: String,
    pub frames: u32,
    pub bytes: u64,
    pub final_score: u32,
    /// Count of each event kind, in [`Events::NAMES`] order.
    pub events: Vec<u32>,
    /// Count of each action id (the reset frame's "no action" not counted).
    pub actions: Vec<u32>,
    /// Frames spent in each position bin: Traveler displacement from the start (slots,
    /// -4..4), Pong the left paddle height, Pac-Man a 4x4 grid over the maze.
    pub positions: Vec<u32>,
}

impl EpisodeStats {
    pub fn from_episode(ep: &Episode, file: String, bytes: u64) -> Self {
        let bins = position_bins(ep.game);
        let mut positions = vec![0u32; bins];
        let x0 = ep.player.first().map_or(0, |p| p.x);
        let (mw, mh) = match &ep.map {
            crate::games::TruthMap::Maze(m) => (
                m.width as i32 * pacman::CELL,
                m.height as i32 * pacman::CELL,
            ),
            _ => (1, 1),
        };
        for p in &ep.player {
            let b = match ep.game {
                GameKind::Traveler => ((p.x - x0).div_euclid(traveler::SLOT_PX) + 4).clamp(0, 7),
                GameKind::Pong => {
                    let field = pong::HEIGHT as i32 - pong::SCORE_BAR_H;
                    ((p.y - pong::SCORE_BAR_H) * 8 / field).clamp(0, 7)
                }
                GameKind::Pacman => {
                    let gx = (p.x * 4 / mw.max(1)).clamp(0, 3);
                    let gy = (p.y * 4 / mh.max(1)).clamp(0, 3);
                    gy * 4 + gx
                }
            };
            positions[b as usize] += 1;
        }
        let mut events = vec![0u32; Events::NAMES.len()];
        for e in &ep.events {
            for (k, (bit, _)) in Events::NAMES.iter().enumerate() {
                events[k] += Events(*e).has(*bit) as u32;
            }
        }
        let mut actions = vec![0u32; ep.game.num_actions()];
        for &a in &ep.actions {
            if a != NO_ACTION && (a as usize) < actions.len() {
                actions[a as usize] += 1;
            }
        }
        Self {
            index: ep.index,
            file,
            frames: ep.len() as u32,
            bytes,
            final_score: ep.scores.last().copied().unwrap_or(0),
            events,
            actions,
            positions,
        }
    }

    /// The feature vector balancing clusters on: position histogram and action mix as
    /// fractions, event rates (per frame, scaled so one event every 10 frames weighs 1).
    pub fn features(&self) -> Vec<f64> {
        let n = self.frames.max(1) as f64;
        let acts = self.actions.iter().sum::<u32>().max(1) as f64;
        self.positions
            .iter()
            .map(|&c| c as f64 / n)
            .chain(self.actions.iter().map(|&c| c as f64 / acts))
            .chain(self.events.iter().map(|&c| (c as f64 / n * 10.0).min(1.0)))
            .collect()
    }
}
