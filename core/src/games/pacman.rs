//! Pac-Man (MaaG): Pac-Man walks a 2-D maze (up/down/left/right/stay) eating dots (+1 each);
//! a monster roams it, and meeting the monster ends the episode.
//!
//! The maze is larger than the view: the camera keeps Pac-Man at the centre of the play area
//! (below the score bar) and shows black outside the maze, so the world model needs a 2-D map
//! (MaaG's spatial module). Movement is on the cell grid: Pac-Man moves 2 px per frame and turns
//! only at cell centres; "stay" stops him. Everything is integer maths.

use serde::{Deserialize, Serialize};

use super::canvas::Canvas;
use super::font::draw_score;
use super::maps::{MazePreset, parse_map};
use super::{Events, Game, GameKind, MazeMap, Position, StepResult, TruthMap};
use crate::rng::Rng;

pub const WIDTH: usize = 128;
pub const HEIGHT: usize = 128;
/// Action ids: 0 stay, 1 up, 2 down, 3 left, 4 right.
pub const ACTION_NAMES: [&str; 5] = ["stay", "up", "down", "left", "right"];
pub const STAY: u8 = 0;
pub const UP: u8 = 1;
pub const DOWN: u8 = 2;
pub const LEFT: u8 = 3;
pub const RIGHT: u8 = 4;
/// Maze cell size in pixels.
pub const CELL: i32 = 8;
pub const SCORE_BAR_H: i32 = 20;
/// Where Pac-Man's centre is drawn on screen.
pub const VIEW_CX: i32 = WIDTH as i32 / 2;
pub const VIEW_CY: i32 = SCORE_BAR_H + (HEIGHT as i32 - SCORE_BAR_H) / 2;
/// Centres closer than this (Manhattan, pixels) mean the monster caught Pac-Man.
pub const CATCH_DIST: i32 = 8;

/// The default maze (`maps/pacman_default.txt`).
pub const DEFAULT_MAZE: &str = include_str!("maps/pacman_default.txt");

pub const BG: [u8; 3] = [0, 0, 0];
/// Walls are pure-ish blue: MaaG links Pac-Man frames into the map on the blue pixels only.
pub const WALL: [u8; 3] = [33, 33, 222];
pub const DOT: [u8; 3] = [255, 255, 255];
pub const PAC: [u8; 3] = [255, 220, 0];
pub const PAC_DEAD: [u8; 3] = [120, 110, 60];
pub const MONSTER: [u8; 3] = [235, 40, 40];
pub const BAR: [u8; 3] = [40, 40, 40];
pub const INK: [u8; 3] = [255, 255, 255];

/// Unit step of a direction action (`STAY` -> (0, 0)).
pub fn delta(action: u8) -> (i32, i32) {
    match action {
        UP => (0, -1),
        DOWN => (0, 1),
        LEFT => (-1, 0),
        RIGHT => (1, 0),
        _ => (0, 0),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PacmanConfig {
    /// Pac-Man's speed in pixels per frame (must divide 4 so centres are hit exactly).
    pub pac_speed: i32,
    /// The monster's speed in pixels per frame (must divide 4).
    pub monster_speed: i32,
    /// Probability that the monster heads for Pac-Man at a crossing (else a random turn).
    pub chase_prob: f64,
}

impl Default for PacmanConfig {
    fn default() -> Self {
        Self {
            pac_speed: 2,
            monster_speed: 1,
            chase_prob: 0.6,
        }
    }
}

/// A mover on the grid: centre in maze pixels and its current direction (action id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mover {
    pub x: i32,
    pub y: i32,
    pub dir: u8,
}

impl Mover {
    fn at_center(&self) -> bool {
        self.x.rem_euclid(CELL) == CELL / 2 && self.y.rem_euclid(CELL) == CELL / 2
    }
    fn cell(&self) -> (i32, i32) {
        (self.x.div_euclid(CELL), self.y.div_euclid(CELL))
    }
}

pub struct Pacman {
    cfg: PacmanConfig,
    maze: MazePreset,
    rng: Rng,
    dots: Vec<bool>,
    pub(crate) pac: Mover,
    pub(crate) monster: Mover,
    score: u32,
    done: bool,
    frame_index: u64,
    canvas: Canvas,
}

/// Centres of views reaching `before` pixels back and `after` forward that together cover
/// `0..extent`, each step a whole view, the last one flush with the end.
fn covering_centres(extent: i32, before: i32, after: i32) -> Vec<i32> {
    let mut out = vec![before];
    while out[out.len() - 1] + after < extent {
        let next = (out[out.len() - 1] + before + after).min(extent - after);
        out.push(next);
    }
    out
}

fn cell_center(c: (usize, usize)) -> (i32, i32) {
    (c.0 as i32 * CELL + CELL / 2, c.1 as i32 * CELL + CELL / 2)
}

impl Pacman {
    /// A game on `preset`, or on [`DEFAULT_MAZE`].
    pub fn new(cfg: PacmanConfig, preset: Option<MazePreset>) -> Self {
        let maze = preset.unwrap_or_else(|| {
            parse_map(DEFAULT_MAZE)
                .ok()
                .and_then(|m| m.as_maze().cloned())
                .expect("the shipped default maze parses (tested)")
        });
        let mut g = Self {
            cfg,
            dots: maze.dots.clone(),
            maze,
            rng: Rng::new(0),
            pac: Mover {
                x: 0,
                y: 0,
                dir: STAY,
            },
            monster: Mover {
                x: 0,
                y: 0,
                dir: STAY,
            },
            score: 0,
            done: false,
            frame_index: 0,
            canvas: Canvas::new(WIDTH, HEIGHT),
        };
        g.reset(0);
        g
    }

    /// The maze as it looks at the start of an episode, from camera centres that cover all of
    /// it (views without Pac-Man or the monster, and the player positions they would be seen
    /// from). A neural session paints them into its map before play (MaaG's designer control).
    fn maze_views(&self) -> Vec<(Vec<u8>, Position)> {
        let half_w = WIDTH as i32 / 2;
        let (above, below) = (VIEW_CY - SCORE_BAR_H, HEIGHT as i32 - VIEW_CY);
        let xs = covering_centres(self.maze.width as i32 * CELL, half_w, half_w);
        let ys = covering_centres(self.maze.height as i32 * CELL, above, below);
        let mut out = Vec::with_capacity(xs.len() * ys.len());
        for &y in &ys {
            for &x in &xs {
                let mut c = Canvas::new(WIDTH, HEIGHT);
                self.draw_maze(&mut c, x, y, &self.maze.dots);
                out.push((c.rgb, Position { x, y }));
            }
        }
        out
    }

    /// Is cell (x, y) open floor? Outside the maze counts as wall.
    pub fn open(&self, x: i32, y: i32) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.maze.width
            && (y as usize) < self.maze.height
            && !self.maze.walls[y as usize * self.maze.width + x as usize]
    }

    fn floor_cells(&self) -> Vec<(usize, usize)> {
        (0..self.maze.height)
            .flat_map(|y| (0..self.maze.width).map(move |x| (x, y)))
            .filter(|&(x, y)| !self.maze.walls[y * self.maze.width + x])
            .collect()
    }

    fn can_go(&self, m: &Mover, dir: u8) -> bool {
        let (dx, dy) = delta(dir);
        let (cx, cy) = m.cell();
        self.open(cx + dx, cy + dy)
    }

    /// Move Pac-Man one frame under `action`.
    fn move_pac(&mut self, action: u8) {
        if action == STAY {
            return;
        }
        let mut p = self.pac;
        let along = |a: u8, b: u8| delta(a).0.abs() == delta(b).0.abs() && b != STAY;
        if p.at_center() {
            if !self.can_go(&p, action) {
                return; // bumping into a wall
            }
            p.dir = action;
        } else if along(action, p.dir) {
            p.dir = action; // reverse or keep going along the corridor
        } // else: a turn asked between centres; keep going to the next centre
        let (dx, dy) = delta(p.dir);
        p.x += dx * self.cfg.pac_speed;
        p.y += dy * self.cfg.pac_speed;
        self.pac = p;
    }

    fn move_monster(&mut self) {
        let mut m = self.monster;
        if m.at_center() {
            let reverse = match m.dir {
                UP => DOWN,
                DOWN => UP,
                LEFT => RIGHT,
                RIGHT => LEFT,
                _ => STAY,
            };
            let mut options: Vec<u8> = [UP, DOWN, LEFT, RIGHT]
                .into_iter()
                .filter(|&d| d != reverse && self.can_go(&m, d))
                .collect();
            if options.is_empty() && self.can_go(&m, reverse) {
                options.push(reverse);
            }
            if options.is_empty() {
                return;
            }
            m.dir = if self.rng.chance(self.cfg.chase_prob) {
                let (cx, cy) = m.cell();
                let (tx, ty) = self.pac.cell();
                *options
                    .iter()
                    .min_by_key(|&&d| {
                        let (dx, dy) = delta(d);
                        (cx + dx - tx).pow(2) + (cy + dy - ty).pow(2)
                    })
                    .unwrap_or(&options[0])
            } else {
                options[self.rng.below(options.len() as u64) as usize]
            };
        }
        let (dx, dy) = delta(m.dir);
        m.x += dx * self.cfg.monster_speed;
        m.y += dy * self.cfg.monster_speed;
        self.monster = m;
    }

    fn caught(&self) -> bool {
        (self.pac.x - self.monster.x).abs() + (self.pac.y - self.monster.y).abs() < CATCH_DIST
    }

    /// The maze (walls, and `dots`) of the view centred on world `(x, y)`, with an empty score
    /// bar.
    fn draw_maze(&self, c: &mut Canvas, x: i32, y: i32, dots: &[bool]) {
        let (ox, oy) = (VIEW_CX - x, VIEW_CY - y);
        c.clear(BG);
        let x0 = (-ox).div_euclid(CELL).max(0);
        let x1 = ((WIDTH as i32 - ox).div_euclid(CELL)).min(self.maze.width as i32 - 1);
        let y0 = ((SCORE_BAR_H - oy).div_euclid(CELL)).max(0);
        let y1 = ((HEIGHT as i32 - oy).div_euclid(CELL)).min(self.maze.height as i32 - 1);
        for cy in y0..=y1 {
            for cx in x0..=x1 {
                let i = cy as usize * self.maze.width + cx as usize;
                let (sx, sy) = (cx * CELL + ox, cy * CELL + oy);
                if self.maze.walls[i] {
                    c.rect(sx, sy, CELL, CELL, WALL);
                } else if dots[i] {
                    c.rect(sx + 3, sy + 3, 2, 2, DOT);
                }
            }
        }
        c.rect(0, 0, WIDTH as i32, SCORE_BAR_H, BAR);
    }

    fn render(&mut self) {
        let mut canvas = std::mem::replace(&mut self.canvas, Canvas::new(0, 0));
        self.draw_maze(&mut canvas, self.pac.x, self.pac.y, &self.dots);
        let c = &mut canvas;
        let (ox, oy) = (VIEW_CX - self.pac.x, VIEW_CY - self.pac.y);
        let pac_color = if self.done { PAC_DEAD } else { PAC };
        c.disc(VIEW_CX, VIEW_CY, 3, pac_color);
        // A mouth in the walking direction tells the direction apart frame by frame.
        let (dx, dy) = delta(self.pac.dir);
        if (dx, dy) != (0, 0) && !self.done {
            c.rect(
                VIEW_CX + dx * 2 - (dy != 0) as i32,
                VIEW_CY + dy * 2 - (dx != 0) as i32,
                2 + (dy != 0) as i32,
                2 + (dx != 0) as i32,
                BG,
            );
        }
        let (mx, my) = (self.monster.x + ox, self.monster.y + oy);
        c.disc(mx, my - 1, 3, MONSTER);
        c.rect(mx - 3, my, 7, 4, MONSTER);
        c.rect(0, 0, WIDTH as i32, SCORE_BAR_H, BAR);
        draw_score(c, self.score, INK);
        self.canvas = canvas;
    }

    fn result(&self, action: u8, events: Events) -> StepResult {
        StepResult {
            frame: self.canvas.rgb.clone(),
            action,
            events,
            score: self.score,
            player: self.player(),
            aux: vec![Position {
                x: self.monster.x,
                y: self.monster.y,
            }],
            done: self.done,
            frame_index: self.frame_index,
        }
    }

    /// The maze the game runs on.
    pub fn maze(&self) -> &MazePreset {
        &self.maze
    }
}

impl Game for Pacman {
    fn kind(&self) -> GameKind {
        GameKind::Pacman
    }

    fn reset(&mut self, seed: u64) -> StepResult {
        self.rng = Rng::for_stream(seed, 1);
        self.dots = self.maze.dots.clone();
        let floor = self.floor_cells();
        let pac_cell = self
            .maze
            .pacman
            .unwrap_or_else(|| floor[self.rng.below(floor.len() as u64) as usize]);
        let monster_cell = self.maze.monster.unwrap_or_else(|| {
            // The farthest of a few random floor cells, so the episode does not end at once.
            let d = |c: &(usize, usize)| c.0.abs_diff(pac_cell.0) + c.1.abs_diff(pac_cell.1);
            (0..8)
                .map(|_| floor[self.rng.below(floor.len() as u64) as usize])
                .max_by_key(d)
                .unwrap_or(floor[0])
        });
        let (px, py) = cell_center(pac_cell);
        let (mx, my) = cell_center(monster_cell);
        self.pac = Mover {
            x: px,
            y: py,
            dir: STAY,
        };
        self.monster = Mover {
            x: mx,
            y: my,
            dir: STAY,
        };
        self.dots[pac_cell.1 * self.maze.width + pac_cell.0] = false;
        self.score = 0;
        self.done = false;
        self.frame_index = 0;
        self.render();
        self.result(STAY, Events::default())
    }

    fn step(&mut self, action: u8) -> StepResult {
        let action = if (action as usize) < ACTION_NAMES.len() {
            action
        } else {
            STAY
        };
        let mut events = Events::default();
        if !self.done {
            self.move_pac(action);
            let (cx, cy) = self.pac.cell();
            let i = cy as usize * self.maze.width + cx as usize;
            if self.dots[i] {
                self.dots[i] = false;
                self.score += 1;
                events.0 |= Events::DOT_EATEN;
                if !self.dots.iter().any(|d| *d) {
                    // All eaten: the dots come back, so long episodes keep scoring.
                    self.dots = self.maze.dots.clone();
                    self.dots[i] = false;
                }
            }
            if !self.caught() {
                self.move_monster();
            }
            if self.caught() {
                self.done = true;
                events.0 |= Events::DEATH;
            }
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
        Position {
            x: self.pac.x,
            y: self.pac.y,
        }
    }

    fn preset_views(&self) -> Vec<(Vec<u8>, Position)> {
        self.maze_views()
    }

    fn truth_map(&self) -> TruthMap {
        TruthMap::Maze(MazeMap {
            width: self.maze.width,
            height: self.maze.height,
            cell_px: CELL as u32,
            walls: self.maze.walls.clone(),
            dots: self.dots.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(text: &str) -> Pacman {
        let m = parse_map(text).unwrap().as_maze().unwrap().clone();
        Pacman::new(PacmanConfig::default(), Some(m))
    }

    #[test]
    fn eating_a_dot_scores_one() {
        // Monster boxed in far away on the right; the last dot is walled off (no refill).
        let mut g = game("gamegen-map 1\ngame pacman\nmaze\n##########\n#P..#.##M#\n##########\n");
        g.reset(0);
        let mut eaten = 0;
        for _ in 0..16 {
            let s = g.step(RIGHT);
            eaten += s.events.has(Events::DOT_EATEN) as u32;
            assert!(!s.done);
        }
        assert_eq!(eaten, 2);
        assert_eq!(g.score(), 2);
        // Pac-Man stopped at the wall, in cell 3.
        assert_eq!(g.pac.cell(), (3, 1));
        let TruthMap::Maze(m) = g.truth_map() else {
            panic!()
        };
        assert!(!m.dots[10 + 2] && !m.dots[10 + 3]);
        // Walking back over eaten cells scores nothing.
        for _ in 0..16 {
            assert!(!g.step(LEFT).events.has(Events::DOT_EATEN));
        }
    }

    #[test]
    fn the_monster_ends_the_episode() {
        let mut g = game("gamegen-map 1\ngame pacman\nmaze\n##########\n#P      M#\n##########\n");
        g.reset(0);
        let mut died_at = None;
        for t in 0..60 {
            let s = g.step(STAY);
            if s.events.has(Events::DEATH) {
                assert!(died_at.is_none(), "death fires once");
                died_at = Some(t);
            }
            assert_eq!(s.done, died_at.is_some());
        }
        assert!(died_at.is_some());
        // After the end nothing moves any more (the frames after the end are still produced).
        let pos = g.player();
        let frame = g.frame().to_vec();
        g.step(RIGHT);
        assert_eq!(g.player(), pos);
        assert_eq!(g.frame(), &frame[..]);
    }

    #[test]
    fn walls_block_and_stay_stops() {
        let mut g = game("gamegen-map 1\ngame pacman\nmaze\n#####\n#P  #\n#####\n#  M#\n#####\n");
        g.reset(0);
        let p0 = g.player();
        g.step(UP);
        assert_eq!(g.player(), p0, "wall above");
        g.step(RIGHT);
        assert_eq!(g.player().x, p0.x + 2);
        g.step(STAY);
        assert_eq!(g.player().x, p0.x + 2);
        // A turn asked between centres keeps going to the next centre.
        g.step(DOWN);
        assert_eq!(g.player().x, p0.x + 4);
    }

    #[test]
    fn preset_maze_is_honoured_on_screen() {
        let mut g = game("gamegen-map 1\ngame pacman\nmaze\n#####\n#P. #\n#####\n#  M#\n#####\n");
        let s = g.reset(3);
        let px = |x: i32, y: i32| {
            let i = ((y as usize) * WIDTH + x as usize) * 3;
            [s.frame[i], s.frame[i + 1], s.frame[i + 2]]
        };
        // Pac-Man at cell (1,1): the wall cell above him and the dot to his right.
        assert_eq!(px(VIEW_CX, VIEW_CY - CELL), WALL);
        assert_eq!(px(VIEW_CX + CELL, VIEW_CY), DOT);
        assert_eq!(px(VIEW_CX + 2 * CELL, VIEW_CY), BG);
        assert_eq!(px(VIEW_CX - CELL, VIEW_CY), WALL);
        // Outside the maze is black.
        assert_eq!(px(VIEW_CX - 3 * CELL, VIEW_CY), BG);
        assert_eq!(s.player, Position { x: 12, y: 12 });
    }

    #[test]
    fn maze_views_cover_the_maze_as_the_first_frame_shows_it() {
        use crate::world::model::spatial::SpatialMap;
        let mut g = Pacman::new(PacmanConfig::default(), None);
        let first = g.reset(3);
        let views = g.preset_views();
        let mut map = SpatialMap::new(WIDTH, HEIGHT, (SCORE_BAR_H as usize, HEIGHT));
        for (f, pos) in &views {
            map.write_frame(f, (pos.x as i64, pos.y as i64));
        }
        // Every maze pixel is painted...
        let (mw, mh) = (g.maze.width as i64 * 8, g.maze.height as i64 * 8);
        // (map coordinates of world pixel (wx, wy): the view centred on the player at p puts
        // world pixel p - (VIEW_CX, VIEW_CY - bar) at the map position p.)
        let shift = |wx: i64, wy: i64| (wx + VIEW_CX as i64, wy + (VIEW_CY - SCORE_BAR_H) as i64);
        for (wx, wy) in [(0, 0), (mw - 1, 0), (0, mh - 1), (mw - 1, mh - 1)] {
            let (x, y) = shift(wx, wy);
            assert!(
                map.pixel(x, y).is_some(),
                "maze pixel ({wx}, {wy}) unpainted"
            );
        }
        // ...and the first real frame differs from it only where Pac-Man and the monster are.
        let rows = HEIGHT - SCORE_BAR_H as usize;
        let want = map.crop(first.player.x as i64, first.player.y as i64, WIDTH, rows);
        let got = &first.frame[SCORE_BAR_H as usize * WIDTH * 3..];
        let wrong: Vec<usize> = (0..want.len() / 3)
            .filter(|&i| want[3 * i..3 * i + 3] != got[3 * i..3 * i + 3])
            .collect();
        let near = |i: usize, cx: i32, cy: i32| {
            let (x, y) = ((i % WIDTH) as i32, (i / WIDTH) as i32 + SCORE_BAR_H);
            (x - cx).abs() <= 4 && (y - cy).abs() <= 4
        };
        let (mx, my) = (
            g.monster.x - first.player.x + VIEW_CX,
            g.monster.y - first.player.y + VIEW_CY,
        );
        for &i in &wrong {
            assert!(
                near(i, VIEW_CX, VIEW_CY) || near(i, mx, my),
                "pixel {i} differs away from the actors"
            );
        }
    }

    #[test]
    fn default_maze_is_connected() {
        let g = Pacman::new(PacmanConfig::default(), None);
        let floor = g.floor_cells();
        let mut seen = vec![false; g.maze.width * g.maze.height];
        let mut stack = vec![floor[0]];
        seen[floor[0].1 * g.maze.width + floor[0].0] = true;
        while let Some((x, y)) = stack.pop() {
            for d in [UP, DOWN, LEFT, RIGHT] {
                let (dx, dy) = delta(d);
                let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                if g.open(nx, ny) && !seen[ny as usize * g.maze.width + nx as usize] {
                    seen[ny as usize * g.maze.width + nx as usize] = true;
                    stack.push((nx as usize, ny as usize));
                }
            }
        }
        for (x, y) in floor {
            assert!(seen[y * g.maze.width + x], "cell ({x},{y}) unreachable");
        }
    }
}
