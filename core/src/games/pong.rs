//! Pong (MaaG): two paddles, each up/down/stay, a ball; the score counts paddle hits and a ball
//! that goes past a paddle ends the episode (the game then serves again, so frames after the end
//! can be recorded).
//!
//! Physics is integer fixed point (1/256 pixel), so it is bit-identical everywhere.

use serde::{Deserialize, Serialize};

use super::canvas::Canvas;
use super::font::draw_score;
use super::{Events, Game, GameKind, Position, StepResult, TruthMap};
use crate::rng::Rng;

pub const WIDTH: usize = 128;
pub const HEIGHT: usize = 128;
/// Action id = left * 3 + right, each 0 stay, 1 up, 2 down. Names: left then right.
pub const ACTION_NAMES: [&str; 9] = ["SS", "SU", "SD", "US", "UU", "UD", "DS", "DU", "DD"];

/// Fixed-point unit: 1 pixel.
pub const FX: i32 = 256;
pub const SCORE_BAR_H: i32 = 20;
pub const PADDLE_W: i32 = 4;
pub const PADDLE_H: i32 = 20;
pub const BALL: i32 = 4;
/// Inner faces of the paddles: the ball bounces when its edge crosses them.
pub const LEFT_FACE: i32 = 10;
pub const RIGHT_FACE: i32 = 118;
pub const BG: [u8; 3] = [0, 0, 0];
pub const BAR: [u8; 3] = [40, 40, 40];
pub const WHITE: [u8; 3] = [255, 255, 255];
pub const NET: [u8; 3] = [90, 90, 90];
pub const LEFT_COLOR: [u8; 3] = [80, 200, 255];
pub const RIGHT_COLOR: [u8; 3] = [255, 150, 60];

/// Split a Pong action id into (left, right) paddle moves (0 stay, 1 up, 2 down).
pub fn split_action(a: u8) -> (u8, u8) {
    (a / 3, a % 3)
}

pub fn join_action(left: u8, right: u8) -> u8 {
    left * 3 + right
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PongConfig {
    /// Paddle speed in pixels per frame.
    pub paddle_speed: i32,
    /// Horizontal ball speed at serve, in 1/256 pixels per frame.
    pub serve_speed: i32,
    /// Cap on the horizontal speed (the ball speeds up by 1/16 on each hit).
    pub max_speed: i32,
}

impl Default for PongConfig {
    fn default() -> Self {
        Self {
            paddle_speed: 3,
            serve_speed: 2 * FX,
            max_speed: 5 * FX,
        }
    }
}

pub struct Pong {
    cfg: PongConfig,
    rng: Rng,
    /// Top y of each paddle, pixels.
    pub(crate) paddles: [i32; 2],
    /// Ball top-left and velocity, fixed point.
    pub(crate) ball: [i32; 2],
    pub(crate) vel: [i32; 2],
    score: u32,
    done: bool,
    frame_index: u64,
    canvas: Canvas,
}

impl Pong {
    pub fn new(cfg: PongConfig) -> Self {
        let mut p = Self {
            cfg,
            rng: Rng::new(0),
            paddles: [0; 2],
            ball: [0; 2],
            vel: [0; 2],
            score: 0,
            done: false,
            frame_index: 0,
            canvas: Canvas::new(WIDTH, HEIGHT),
        };
        p.reset(0);
        p
    }

    fn serve(&mut self) {
        self.ball = [
            (WIDTH as i32 / 2 - BALL / 2) * FX,
            (SCORE_BAR_H + 54 - BALL / 2) * FX,
        ];
        let dir = if self.rng.chance(0.5) { 1 } else { -1 };
        self.vel = [
            dir * self.cfg.serve_speed,
            self.rng.range_i64(-384, 384) as i32,
        ];
    }

    /// Ball centre in pixels.
    pub fn ball_center(&self) -> Position {
        Position {
            x: (self.ball[0] + BALL * FX / 2).div_euclid(FX),
            y: (self.ball[1] + BALL * FX / 2).div_euclid(FX),
        }
    }

    fn paddle_center(&self, i: usize) -> Position {
        let x = if i == 0 {
            LEFT_FACE - PADDLE_W / 2
        } else {
            RIGHT_FACE + PADDLE_W / 2
        };
        Position {
            x,
            y: self.paddles[i] + PADDLE_H / 2,
        }
    }

    /// Bounce on paddle `i` if the ball's edge crossed its face this frame and they overlap.
    fn paddle_bounce(&mut self, i: usize, prev_x: i32) -> bool {
        let (face, edge_prev, edge_now) = if i == 0 {
            (LEFT_FACE * FX, prev_x, self.ball[0])
        } else {
            (
                RIGHT_FACE * FX,
                prev_x + BALL * FX,
                self.ball[0] + BALL * FX,
            )
        };
        let crossed = if i == 0 {
            self.vel[0] < 0 && edge_prev >= face && edge_now < face
        } else {
            self.vel[0] > 0 && edge_prev <= face && edge_now > face
        };
        let top = self.paddles[i] * FX;
        let overlap = self.ball[1] + BALL * FX > top && self.ball[1] < top + PADDLE_H * FX;
        if !(crossed && overlap) {
            return false;
        }
        // Reflect about the face, speed up a little, angle from where the paddle was hit.
        self.ball[0] -= 2 * (edge_now - face);
        let speed = (self.vel[0].abs() * 17 / 16).min(self.cfg.max_speed);
        self.vel[0] = if i == 0 { speed } else { -speed };
        let offset = (self.ball[1] + BALL * FX / 2) - (top + PADDLE_H * FX / 2);
        // At most 2.4 px/frame vertically: slower than a paddle, so a good player can keep up.
        self.vel[1] = offset / 5;
        true
    }

    fn render(&mut self) {
        let c = &mut self.canvas;
        c.clear(BG);
        for y in (SCORE_BAR_H + 2..HEIGHT as i32).step_by(8) {
            c.rect(WIDTH as i32 / 2 - 1, y, 2, 4, NET);
        }
        c.rect(
            LEFT_FACE - PADDLE_W,
            self.paddles[0],
            PADDLE_W,
            PADDLE_H,
            LEFT_COLOR,
        );
        c.rect(RIGHT_FACE, self.paddles[1], PADDLE_W, PADDLE_H, RIGHT_COLOR);
        c.rect(
            self.ball[0].div_euclid(FX),
            self.ball[1].div_euclid(FX),
            BALL,
            BALL,
            WHITE,
        );
        c.rect(0, 0, WIDTH as i32, SCORE_BAR_H, BAR);
        draw_score(c, self.score, WHITE);
    }

    fn result(&self, action: u8, events: Events) -> StepResult {
        StepResult {
            frame: self.canvas.rgb.clone(),
            action,
            events,
            score: self.score,
            player: self.player(),
            aux: vec![self.paddle_center(1), self.ball_center()],
            done: self.done,
            frame_index: self.frame_index,
        }
    }
}

impl Game for Pong {
    fn kind(&self) -> GameKind {
        GameKind::Pong
    }

    fn reset(&mut self, seed: u64) -> StepResult {
        self.rng = Rng::for_stream(seed, 1);
        let lo = SCORE_BAR_H as i64;
        let hi = (HEIGHT as i32 - PADDLE_H) as i64;
        self.paddles = [
            self.rng.range_i64(lo, hi) as i32,
            self.rng.range_i64(lo, hi) as i32,
        ];
        self.serve();
        self.score = 0;
        self.done = false;
        self.frame_index = 0;
        self.render();
        self.result(0, Events::default())
    }

    fn step(&mut self, action: u8) -> StepResult {
        let action = if (action as usize) < ACTION_NAMES.len() {
            action
        } else {
            0
        };
        let (l, r) = split_action(action);
        for (i, m) in [l, r].into_iter().enumerate() {
            let dy = match m {
                1 => -self.cfg.paddle_speed,
                2 => self.cfg.paddle_speed,
                _ => 0,
            };
            self.paddles[i] = (self.paddles[i] + dy).clamp(SCORE_BAR_H, HEIGHT as i32 - PADDLE_H);
        }
        let prev_x = self.ball[0];
        self.ball[0] += self.vel[0];
        self.ball[1] += self.vel[1];
        let (top, bottom) = (SCORE_BAR_H * FX, (HEIGHT as i32 - BALL) * FX);
        if self.ball[1] < top {
            self.ball[1] = 2 * top - self.ball[1];
            self.vel[1] = -self.vel[1];
        } else if self.ball[1] > bottom {
            self.ball[1] = 2 * bottom - self.ball[1];
            self.vel[1] = -self.vel[1];
        }
        let mut events = Events::default();
        if self.paddle_bounce(0, prev_x) || self.paddle_bounce(1, prev_x) {
            self.score += 1;
            events.0 |= Events::PADDLE_HIT;
        }
        if self.ball[0] + BALL * FX < 0 || self.ball[0] > WIDTH as i32 * FX {
            events.0 |= Events::POINT_LOST;
            self.done = true;
            self.serve();
        }
        self.frame_index += 1;
        self.render();
        self.result(action, events)
    }

    fn frame(&self) -> &[u8] {
        &self.canvas.rgb
    }

    fn score(&self) -> u32 {
        self.score
    }

    fn done(&self) -> bool {
        self.done
    }

    fn player(&self) -> Position {
        self.paddle_center(0)
    }

    fn truth_map(&self) -> TruthMap {
        TruthMap::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Put the ball just right of the left paddle's face, flying left at the paddle's middle.
    fn ball_at_left_paddle(g: &mut Pong, paddle_top: i32) {
        g.paddles[0] = paddle_top;
        g.ball = [
            (LEFT_FACE + 3) * FX,
            (paddle_top + PADDLE_H / 2 - BALL / 2) * FX,
        ];
        g.vel = [-2 * FX, 0];
    }

    #[test]
    fn paddle_hit_scores_one_and_bounces() {
        let mut g = Pong::new(PongConfig::default());
        g.reset(4);
        ball_at_left_paddle(&mut g, 60);
        let mut hits = 0;
        for _ in 0..4 {
            let s = g.step(0);
            if s.events.has(Events::PADDLE_HIT) {
                hits += 1;
                assert_eq!(s.score, 1);
            }
        }
        assert_eq!(hits, 1);
        assert_eq!(g.score(), 1);
        assert!(g.vel[0] > 0, "the ball flies back to the right");
        assert!(!g.done());
    }

    #[test]
    fn a_miss_loses_the_point_and_ends_the_episode() {
        let mut g = Pong::new(PongConfig::default());
        g.reset(4);
        ball_at_left_paddle(&mut g, 60);
        g.paddles[0] = HEIGHT as i32 - PADDLE_H; // far below the ball
        let mut lost = false;
        for _ in 0..20 {
            let s = g.step(0);
            assert!(!s.events.has(Events::PADDLE_HIT));
            lost |= s.events.has(Events::POINT_LOST);
        }
        assert!(lost);
        assert!(g.done());
        assert_eq!(g.score(), 0);
    }

    #[test]
    fn paddles_follow_actions_and_stay_on_the_field() {
        let mut g = Pong::new(PongConfig::default());
        g.reset(1);
        let y0 = g.paddles;
        g.step(join_action(1, 2));
        assert_eq!(g.paddles[0], (y0[0] - 3).max(SCORE_BAR_H));
        assert_eq!(g.paddles[1], (y0[1] + 3).min(HEIGHT as i32 - PADDLE_H));
        for _ in 0..100 {
            g.step(join_action(1, 2));
        }
        assert_eq!(g.paddles, [SCORE_BAR_H, HEIGHT as i32 - PADDLE_H]);
    }

    #[test]
    fn tracking_both_paddles_keeps_scoring() {
        let mut g = Pong::new(PongConfig::default());
        g.reset(8);
        let mut hits = 0;
        for _ in 0..600 {
            let b = g.ball_center();
            let mv = |p: i32| {
                let c = p + PADDLE_H / 2;
                if b.y < c - 2 {
                    1
                } else if b.y > c + 2 {
                    2
                } else {
                    0
                }
            };
            let s = g.step(join_action(mv(g.paddles[0]), mv(g.paddles[1])));
            hits += s.events.has(Events::PADDLE_HIT) as u32;
            assert!(!s.done, "perfect trackers never miss");
        }
        assert!(hits >= 5);
        assert_eq!(g.score(), hits);
    }
}
