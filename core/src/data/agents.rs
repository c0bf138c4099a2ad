//! The agents of PlayGen's diverse collection (Alg. 1): each episode draws a probability `p`;
//! at every step a random agent acts with probability `p` (its action then repeated one or
//! more times, which looks more like a human), and a rule-based agent acts otherwise.
//!
//! Rule-based agents: Traveler a walker that keeps a direction for a while; Pong two paddles that
//! track the ball with per-episode noise; Pac-Man an explorer that heads for cells it has not
//! visited and runs from the monster.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::games::{GameKind, MazeMap, StepResult, TruthMap, pacman, pong};
use crate::rng::Rng;

/// Knobs of Alg. 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// Per-episode `p` is drawn uniformly from `[p_min, p_max]`.
    pub p_min: f64,
    pub p_max: f64,
    /// A random action is held for 1..=max_repeat frames.
    pub max_repeat: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            p_min: 0.0,
            p_max: 1.0,
            max_repeat: 8,
        }
    }
}

/// Something that picks an action id from what the game just showed.
pub trait Agent: Send {
    fn act(&mut self, obs: &StepResult, rng: &mut Rng) -> u8;
    fn name(&self) -> &'static str;
}

/// Alg. 1's mix: random (with repeats) with probability `p`, else the expert.
pub struct DiverseAgent {
    pub p: f64,
    max_repeat: u32,
    num_actions: u64,
    expert: Box<dyn Agent>,
    held: Option<(u8, u32)>,
}

impl DiverseAgent {
    /// The mix for `game`, drawing `p` from `rng`.
    pub fn new(game: GameKind, cfg: &AgentConfig, rng: &mut Rng) -> Self {
        let lo = cfg.p_min.clamp(0.0, 1.0);
        let hi = cfg.p_max.clamp(lo, 1.0);
        let p = lo + (hi - lo) * rng.next_f64();
        Self {
            p,
            max_repeat: cfg.max_repeat.max(1),
            num_actions: game.num_actions() as u64,
            expert: expert_for(game, rng),
            held: None,
        }
    }

    pub fn describe(&self) -> String {
        format!("diverse(random+{})", self.expert.name())
    }
}

impl Agent for DiverseAgent {
    fn act(&mut self, obs: &StepResult, rng: &mut Rng) -> u8 {
        // The expert sees every frame so its own state (e.g. visited cells) stays current.
        let expert = self.expert.act(obs, rng);
        if let Some((a, left)) = self.held {
            self.held = (left > 1).then_some((a, left - 1));
            return a;
        }
        if rng.chance(self.p) {
            let a = rng.below(self.num_actions) as u8;
            let repeats = 1 + rng.below(self.max_repeat as u64) as u32;
            self.held = (repeats > 1).then_some((a, repeats - 1));
            a
        } else {
            expert
        }
    }

    fn name(&self) -> &'static str {
        "diverse"
    }
}

/// The rule-based agent of each game.
pub fn expert_for(game: GameKind, rng: &mut Rng) -> Box<dyn Agent> {
    match game {
        GameKind::Traveler => Box::new(Walker {
            dir: 1 + rng.below(2) as u8,
            switch_prob: 0.02 + 0.08 * rng.next_f64(),
        }),
        GameKind::Pong => Box::new(PongTrackers {
            noise_px: 2.0 + 10.0 * rng.next_f64(),
            offsets: [0.0; 2],
        }),
        GameKind::Pacman => Box::new(Explorer::default()),
    }
}

/// Traveler: walk one way, turning round now and then (visits new and old places alike).
pub struct Walker {
    dir: u8,
    switch_prob: f64,
}

impl Agent for Walker {
    fn act(&mut self, _obs: &StepResult, rng: &mut Rng) -> u8 {
        if rng.chance(self.switch_prob) {
            self.dir = 3 - self.dir; // left <-> right
        }
        if rng.chance(0.1) { 0 } else { self.dir }
    }
    fn name(&self) -> &'static str {
        "walker"
    }
}

/// Pong: each paddle moves toward the ball's height plus a noisy aim offset, re-drawn now and
/// then, so the paddles sometimes miss.
pub struct PongTrackers {
    noise_px: f64,
    offsets: [f64; 2],
}

impl Agent for PongTrackers {
    fn act(&mut self, obs: &StepResult, rng: &mut Rng) -> u8 {
        let ball = obs.aux.get(1).copied().unwrap_or_default();
        let paddles = [obs.player, obs.aux.first().copied().unwrap_or_default()];
        let mut moves = [0u8; 2];
        for i in 0..2 {
            if rng.chance(0.05) {
                self.offsets[i] = self.noise_px * rng.normal();
            }
            let target = ball.y as f64 + self.offsets[i];
            let c = paddles[i].y as f64;
            moves[i] = if target < c - 2.0 {
                1
            } else if target > c + 2.0 {
                2
            } else {
                0
            };
        }
        pong::join_action(moves[0], moves[1])
    }
    fn name(&self) -> &'static str {
        "tracker"
    }
}

/// Pac-Man: breadth-first search to the nearest cell not visited yet, avoiding the monster's
/// surroundings; when the monster is close, step to the neighbour farthest from it.
#[derive(Default)]
pub struct Explorer {
    maze: Option<MazeMap>,
    visited: Vec<bool>,
}

impl Explorer {
    fn open(m: &MazeMap, x: i32, y: i32) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < m.width
            && (y as usize) < m.height
            && !m.walls[y as usize * m.width + x as usize]
    }
}

const DIRS: [u8; 4] = [pacman::UP, pacman::DOWN, pacman::LEFT, pacman::RIGHT];

impl Agent for Explorer {
    fn act(&mut self, obs: &StepResult, _rng: &mut Rng) -> u8 {
        let Some(m) = &self.maze else {
            return pacman::STAY;
        };
        let cell = |p: crate::games::Position| {
            (p.x.div_euclid(pacman::CELL), p.y.div_euclid(pacman::CELL))
        };
        let (px, py) = cell(obs.player);
        let (mx, my) = cell(obs.aux.first().copied().unwrap_or_default());
        if Self::open(m, px, py) {
            self.visited[py as usize * m.width + px as usize] = true;
        }
        let dist_m = |x: i32, y: i32| (x - mx).abs() + (y - my).abs();
        if dist_m(px, py) <= 3 {
            // Flee: the open neighbour farthest from the monster.
            return DIRS
                .into_iter()
                .filter(|&d| {
                    let (dx, dy) = pacman::delta(d);
                    Self::open(m, px + dx, py + dy)
                })
                .max_by_key(|&d| {
                    let (dx, dy) = pacman::delta(d);
                    dist_m(px + dx, py + dy)
                })
                .unwrap_or(pacman::STAY);
        }
        // BFS, remembering the first step of each path.
        let mut first = vec![u8::MAX; m.width * m.height];
        let mut queue = VecDeque::new();
        for d in DIRS {
            let (dx, dy) = pacman::delta(d);
            let (nx, ny) = (px + dx, py + dy);
            if Self::open(m, nx, ny) && dist_m(nx, ny) > 2 {
                first[ny as usize * m.width + nx as usize] = d;
                queue.push_back((nx, ny));
            }
        }
        while let Some((x, y)) = queue.pop_front() {
            let i = y as usize * m.width + x as usize;
            if !self.visited[i] {
                return first[i];
            }
            for d in DIRS {
                let (dx, dy) = pacman::delta(d);
                let (nx, ny) = (x + dx, y + dy);
                if Self::open(m, nx, ny) && dist_m(nx, ny) > 2 {
                    let j = ny as usize * m.width + nx as usize;
                    if first[j] == u8::MAX && (nx, ny) != (px, py) {
                        first[j] = first[i];
                        queue.push_back((nx, ny));
                    }
                }
            }
        }
        // Everything visited: start a new round of exploration.
        self.visited.iter_mut().for_each(|v| *v = false);
        pacman::STAY
    }
    fn name(&self) -> &'static str {
        "explorer"
    }
}

impl Explorer {
    /// Give the explorer the maze (agents get it from the game's truth map at reset).
    pub fn set_map(&mut self, map: &TruthMap) {
        if let TruthMap::Maze(m) = map {
            self.visited = vec![false; m.width * m.height];
            self.maze = Some(m.clone());
        }
    }
}

/// Build the Alg. 1 mix for `game`, giving map-aware experts the map.
pub fn diverse_agent(
    game: GameKind,
    cfg: &AgentConfig,
    map: &TruthMap,
    rng: &mut Rng,
) -> DiverseAgent {
    let mut a = DiverseAgent::new(game, cfg, rng);
    if game == GameKind::Pacman {
        let mut e = Explorer::default();
        e.set_map(map);
        a.expert = Box::new(e);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::{Events, new_game};

    #[test]
    fn random_actions_come_in_repeated_runs() {
        let cfg = AgentConfig {
            p_min: 1.0,
            p_max: 1.0,
            max_repeat: 6,
        };
        let mut rng = Rng::new(1);
        let mut g = new_game(GameKind::Traveler, None).unwrap();
        let mut a = diverse_agent(GameKind::Traveler, &cfg, &g.truth_map(), &mut rng);
        let mut obs = g.reset(0);
        let mut acts = vec![];
        for _ in 0..600 {
            let x = a.act(&obs, &mut rng);
            acts.push(x);
            obs = g.step(x);
        }
        let runs = 1 + acts.windows(2).filter(|w| w[0] != w[1]).count();
        let mean_run = acts.len() as f64 / runs as f64;
        assert!(
            mean_run > 1.8,
            "repeats make runs longer than one frame: {mean_run}"
        );
        for k in 0..3 {
            assert!(
                acts.iter().filter(|&&x| x == k).count() > 100,
                "action {k} too rare"
            );
        }
    }

    #[test]
    fn explorer_eats_more_than_random_and_trackers_hit() {
        let run = |game: GameKind, p: f64, frames: usize| {
            let cfg = AgentConfig {
                p_min: p,
                p_max: p,
                max_repeat: 4,
            };
            let mut total = 0u32;
            for seed in 0..4 {
                let mut rng = Rng::new(seed);
                let mut g = new_game(game, None).unwrap();
                let mut obs = g.reset(seed);
                let mut a = diverse_agent(game, &cfg, &g.truth_map(), &mut rng);
                for _ in 0..frames {
                    if obs.done {
                        break;
                    }
                    let x = a.act(&obs, &mut rng);
                    obs = g.step(x);
                    total += (obs.events.0 & (Events::DOT_EATEN | Events::PADDLE_HIT) != 0) as u32;
                }
            }
            total
        };
        let explorer = run(GameKind::Pacman, 0.0, 400);
        let random = run(GameKind::Pacman, 1.0, 400);
        assert!(explorer > random, "explorer {explorer} vs random {random}");
        assert!(run(GameKind::Pong, 0.0, 400) > 4, "trackers hit the ball");
    }
}
