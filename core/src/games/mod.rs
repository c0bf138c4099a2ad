//! The three ground-truth games (Traveler, Pong, Pac-Man): deterministic, seedable engines.
//!
//! They are the "real games" the world models learn from (seed 003, MaaG) and the truth their
//! consistency metrics are checked against, so every step exposes not only the frame but also the
//! events, the score, the player position and the ground-truth map. Everything is integer maths
//! on our own PRNG ([`crate::rng::Rng`]): the same seed and actions give the same bytes natively,
//! in wasm and whatever the thread count of a collection run.
//!
//! Game time runs at [`FPS`] frames per second: one [`Game::step`] is one frame.

pub mod actions;
pub mod canvas;
pub mod font;
pub mod keys;
pub mod maps;
pub mod pacman;
pub mod pong;
pub mod traveler;

use serde::{Deserialize, Serialize};

pub use actions::{ActionScript, parse_actions};
pub use keys::{Keys, action_for_keys};
pub use maps::{MapPreset, MazePreset, StripPreset};

/// Game time: one step is one frame at 30 FPS, as in MaaG.
pub const FPS: u32 = 30;

/// Errors of the games module: bad user input, reported as one clear line.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GameError {
    #[error("unknown game '{0}' (expected traveler, pong or pacman)")]
    UnknownGame(String),
    #[error("bad action '{token}' for {game}: {why}")]
    BadAction {
        game: &'static str,
        token: String,
        why: String,
    },
    #[error("map line {line}: {why}")]
    BadMap { line: usize, why: String },
    #[error("map is for {found}, not {expected}")]
    WrongMapGame {
        expected: &'static str,
        found: &'static str,
    },
}

/// Which game.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum GameKind {
    Traveler,
    Pong,
    Pacman,
}

impl GameKind {
    pub const ALL: [GameKind; 3] = [GameKind::Traveler, GameKind::Pong, GameKind::Pacman];

    pub fn name(self) -> &'static str {
        match self {
            GameKind::Traveler => "traveler",
            GameKind::Pong => "pong",
            GameKind::Pacman => "pacman",
        }
    }

    /// Frame size (width, height) in pixels.
    pub fn frame_size(self) -> (usize, usize) {
        match self {
            GameKind::Traveler => (traveler::WIDTH, traveler::HEIGHT),
            GameKind::Pong => (pong::WIDTH, pong::HEIGHT),
            GameKind::Pacman => (pacman::WIDTH, pacman::HEIGHT),
        }
    }

    /// Short names of the action ids, index = id. Id 0 is always "stay" (for Pong: both
    /// paddles stay), so an out-of-range id can safely fall back to it.
    pub fn action_names(self) -> &'static [&'static str] {
        match self {
            GameKind::Traveler => &traveler::ACTION_NAMES,
            GameKind::Pong => &pong::ACTION_NAMES,
            GameKind::Pacman => &pacman::ACTION_NAMES,
        }
    }

    pub fn num_actions(self) -> usize {
        self.action_names().len()
    }

    /// How many extra positions (besides the player) a step reports: Pong the right paddle and
    /// the ball, Pac-Man the monster.
    pub fn num_aux_positions(self) -> usize {
        match self {
            GameKind::Traveler => 0,
            GameKind::Pong => 2,
            GameKind::Pacman => 1,
        }
    }

    pub fn from_id(id: u8) -> Option<GameKind> {
        GameKind::ALL.get(id as usize).copied()
    }

    pub fn id(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for GameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GameKind {
    type Err = GameError;
    fn from_str(s: &str) -> Result<Self, GameError> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "traveler" | "traveller" => Ok(GameKind::Traveler),
            "pong" => Ok(GameKind::Pong),
            "pacman" => Ok(GameKind::Pacman),
            _ => Err(GameError::UnknownGame(s.to_string())),
        }
    }
}

/// Event bits of one step. A bit set, because one frame can fire several (a dot eaten and the
/// monster met in the same frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Events(pub u8);

impl Events {
    /// Traveler: an empty space was crossed, a building was built, score +1.
    pub const BUILT: u8 = 1;
    /// Pong: the ball hit a paddle, score +1.
    pub const PADDLE_HIT: u8 = 2;
    /// Pong: the ball went past a paddle; ends the episode.
    pub const POINT_LOST: u8 = 4;
    /// Pac-Man: a dot was eaten, score +1.
    pub const DOT_EATEN: u8 = 8;
    /// Pac-Man: the monster caught Pac-Man; ends the episode.
    pub const DEATH: u8 = 16;
    pub const NAMES: [(u8, &'static str); 5] = [
        (Self::BUILT, "built"),
        (Self::PADDLE_HIT, "paddle_hit"),
        (Self::POINT_LOST, "point_lost"),
        (Self::DOT_EATEN, "dot_eaten"),
        (Self::DEATH, "death"),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(b, _)| self.has(*b))
            .map(|(_, n)| *n)
            .collect()
    }
}

/// A position in world pixels (the centre of an object). Traveler's x grows without bound;
/// Pac-Man's is in maze pixels (cell * 8 + 4); Pong's in screen pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub x: i32,
    pub y: i32,
}

/// What one step (one frame) produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// The frame after the step, RGB8 interleaved, `width * height * 3` bytes.
    pub frame: Vec<u8>,
    /// The action id actually applied (an out-of-range id is applied as 0, "stay").
    pub action: u8,
    pub events: Events,
    /// The score after the step.
    pub score: u32,
    /// Traveler: the square; Pong: the left paddle; Pac-Man: Pac-Man.
    pub player: Position,
    /// Other moving objects, [`GameKind::num_aux_positions`] of them.
    pub aux: Vec<Position>,
    /// Set once the episode's end event has fired (sticky: the game keeps producing frames so
    /// that the frames after the end can be recorded, as MaaG does).
    pub done: bool,
    /// Frames stepped since the reset.
    pub frame_index: u64,
}

/// A Traveler building.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Building {
    pub color: [u8; 3],
    /// Height in pixels above the ground.
    pub height: u8,
    /// Built by the traveller during this episode (rather than there from the start).
    pub built: bool,
}

/// The ground truth of Traveler's horizontally infinite strip, over the slots seen so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripMap {
    /// Slot index of `slots[0]`.
    pub first_slot: i64,
    /// Width of a slot in world pixels (slot `i` covers `[i*w, (i+1)*w)`).
    pub slot_px: u32,
    /// `None` is an empty space.
    pub slots: Vec<Option<Building>>,
}

/// The ground truth of a Pac-Man maze: walls and the dots still there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MazeMap {
    pub width: usize,
    pub height: usize,
    /// Size of a cell in maze pixels.
    pub cell_px: u32,
    /// Row-major, `true` = wall.
    pub walls: Vec<bool>,
    /// Row-major, `true` = a dot is there.
    pub dots: Vec<bool>,
}

/// The ground-truth map of a game, for spatial metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TruthMap {
    Strip(StripMap),
    Maze(MazeMap),
    /// Pong has no map.
    None,
}

/// A deterministic game engine. `reset(seed)` then `step(action)` once per frame.
pub trait Game: Send {
    fn kind(&self) -> GameKind;

    /// Start a new episode; the same seed (and the same actions after it) gives the same frames.
    fn reset(&mut self, seed: u64) -> StepResult;

    /// Advance one frame with action id `action` (see [`GameKind::action_names`]).
    fn step(&mut self, action: u8) -> StepResult;

    /// The current frame, RGB8 interleaved.
    fn frame(&self) -> &[u8];

    fn score(&self) -> u32;

    fn done(&self) -> bool;

    fn player(&self) -> Position;

    /// The ground-truth map as it stands now.
    fn truth_map(&self) -> TruthMap;

    /// The designer's map as frames without the actors, each with the player position it would
    /// be seen from (for a world model's spatial map, MaaG Fig. 7): Traveler's preset strip
    /// (none without a preset), Pac-Man's whole maze; Pong has no map. Call after `reset`:
    /// whatever the preset leaves to the episode seed is drawn as this episode draws it.
    fn preset_views(&self) -> Vec<(Vec<u8>, Position)> {
        Vec::new()
    }

    fn width(&self) -> usize {
        self.kind().frame_size().0
    }

    fn height(&self) -> usize {
        self.kind().frame_size().1
    }

    /// The current frame as RGBA8 (alpha 255), ready for a browser canvas `ImageData`.
    fn frame_rgba(&self) -> Vec<u8> {
        canvas::rgb_to_rgba(self.frame())
    }
}

/// A new game of `kind`, on `preset` when given (a preset for another game is an error).
pub fn new_game(kind: GameKind, preset: Option<&MapPreset>) -> Result<Box<dyn Game>, GameError> {
    if let Some(p) = preset
        && p.game() != kind
    {
        return Err(GameError::WrongMapGame {
            expected: kind.name(),
            found: p.game().name(),
        });
    }
    Ok(match kind {
        GameKind::Traveler => Box::new(traveler::Traveler::new(
            traveler::TravelerConfig::default(),
            preset.and_then(|p| p.as_strip().cloned()),
        )),
        GameKind::Pong => Box::new(pong::Pong::new(pong::PongConfig::default())),
        GameKind::Pacman => Box::new(pacman::Pacman::new(
            pacman::PacmanConfig::default(),
            preset.and_then(|p| p.as_maze().cloned()),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_actions_same_bytes_for_every_game() {
        for kind in GameKind::ALL {
            let run = |seed: u64| {
                let mut g = new_game(kind, None).unwrap();
                let mut out = g.reset(seed).frame;
                let mut r = crate::rng::Rng::new(99);
                for _ in 0..120 {
                    let a = r.below(kind.num_actions() as u64) as u8;
                    let s = g.step(a);
                    out.extend_from_slice(&s.frame);
                    out.extend_from_slice(&s.score.to_le_bytes());
                    out.push(s.events.0);
                }
                out
            };
            assert_eq!(run(5), run(5), "{kind} is not deterministic");
            assert_ne!(run(5), run(6), "{kind} ignores its seed");
        }
    }

    #[test]
    fn frame_sizes_and_rgba() {
        for kind in GameKind::ALL {
            let mut g = new_game(kind, None).unwrap();
            let s = g.reset(1);
            let (w, h) = kind.frame_size();
            assert_eq!(s.frame.len(), w * h * 3);
            assert_eq!(g.frame_rgba().len(), w * h * 4);
            assert_eq!(s.aux.len(), kind.num_aux_positions());
        }
    }

    #[test]
    fn game_names_parse() {
        assert_eq!("Pac-Man".parse::<GameKind>().unwrap(), GameKind::Pacman);
        assert_eq!("traveler".parse::<GameKind>().unwrap(), GameKind::Traveler);
        assert!("tetris".parse::<GameKind>().is_err());
    }

    #[test]
    fn wrong_preset_is_an_error() {
        let p = maps::parse_map(traveler::EXAMPLE_STRIP).unwrap();
        assert!(new_game(GameKind::Pacman, Some(&p)).is_err());
    }
}
