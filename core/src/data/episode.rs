//! One recorded episode of a real game, in memory: frames plus everything the world models and
//! the metrics need next to them (actions, events, scores, positions, the ground-truth map).

use serde::{Deserialize, Serialize};

use crate::games::{GameKind, Position, TruthMap};

/// Marks "no previous action" (the frame right after a reset). PlayGen reserves such an id.
pub const NO_ACTION: u8 = 255;

/// How an episode was produced (kept in the shard so a dataset can be audited and balanced).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeMeta {
    /// The agent mix, e.g. "diverse(random+tracker)".
    pub agent: String,
    /// Per-episode probability of a random action (PlayGen Alg. 1).
    pub random_p: f64,
    /// Frame index at which the end event fired, if it did.
    pub done_at: Option<u32>,
}

/// A recorded episode. Frame `t` is what the player saw after `actions[t]` was applied to frame
/// `t - 1`; `actions[0]` is [`NO_ACTION`].
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub game: GameKind,
    pub width: usize,
    pub height: usize,
    /// The collection seed and the episode index; the episode's own seed is derived from both.
    pub seed: u64,
    pub index: u64,
    pub meta: EpisodeMeta,
    /// `len * height * width * 3` bytes, RGB8 interleaved, frame after frame.
    pub frames: Vec<u8>,
    pub actions: Vec<u8>,
    /// Event bits per frame ([`crate::games::Events`]).
    pub events: Vec<u8>,
    pub scores: Vec<u32>,
    pub done: Vec<bool>,
    pub player: Vec<Position>,
    /// `len * game.num_aux_positions()` positions, frame-major.
    pub aux: Vec<Position>,
    /// The ground-truth map at the end of the episode.
    pub map: TruthMap,
}

impl Episode {
    pub fn new(game: GameKind, seed: u64, index: u64) -> Self {
        let (width, height) = game.frame_size();
        Self {
            game,
            width,
            height,
            seed,
            index,
            meta: EpisodeMeta::default(),
            frames: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            scores: Vec::new(),
            done: Vec::new(),
            player: Vec::new(),
            aux: Vec::new(),
            map: TruthMap::None,
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn frame_bytes(&self) -> usize {
        self.width * self.height * 3
    }

    /// Frame `t`, RGB8.
    pub fn frame(&self, t: usize) -> &[u8] {
        let n = self.frame_bytes();
        &self.frames[t * n..(t + 1) * n]
    }

    /// Append one step's record.
    pub fn push(&mut self, s: &crate::games::StepResult, action: u8) {
        self.frames.extend_from_slice(&s.frame);
        self.actions.push(action);
        self.events.push(s.events.0);
        self.scores.push(s.score);
        self.done.push(s.done);
        self.player.push(s.player);
        self.aux.extend_from_slice(&s.aux);
    }
}
