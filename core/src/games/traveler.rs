//! Traveler (MaaG): a black square, kept at the centre by the camera, walks left or right along
//! a horizontally infinite strip of buildings. Crossing an empty space builds a building of a
//! random colour there and adds exactly 1 to the score; coming back shows the same buildings.
//!
//! The strip is made of 16-pixel slots. A slot's initial content is a pure function of
//! (episode seed, slot index), so the strip is infinite without storing it; buildings put up by
//! the traveller are kept in a map that overrides it. The traveller "enters" a slot when its
//! centre crosses the slot's left or right edge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::canvas::Canvas;
use super::font::draw_score;
use super::maps::{Outside, StripPreset};
use super::{Building, Events, Game, GameKind, Position, StepResult, StripMap, TruthMap};
use crate::rng::{Rng, derive_seed};

pub const WIDTH: usize = 96;
pub const HEIGHT: usize = 96;
/// Width of one strip slot in pixels.
pub const SLOT_PX: i32 = 16;
/// Action ids: 0 stay, 1 left, 2 right.
pub const ACTION_NAMES: [&str; 3] = ["stay", "left", "right"];
pub const STAY: u8 = 0;
pub const LEFT: u8 = 1;
pub const RIGHT: u8 = 2;

/// An example designer strip (`maps/traveler_example.txt`), shipped to show the format.
pub const EXAMPLE_STRIP: &str = include_str!("maps/traveler_example.txt");

/// Screen layout: score bar on top, sky, buildings standing on the ground line.
pub const SCORE_BAR_H: i32 = 20;
pub const GROUND_Y: i32 = 80;
const PLAYER_SIZE: i32 = 10;
pub const SKY: [u8; 3] = [170, 215, 255];
pub const GROUND: [u8; 3] = [96, 96, 96];
pub const BAR: [u8; 3] = [250, 250, 250];
pub const INK: [u8; 3] = [20, 20, 20];
pub const PLAYER: [u8; 3] = [0, 0, 0];

/// Colours of random buildings: saturated and far apart, so that map matching and the VAE
/// can tell them apart.
pub const PALETTE: [[u8; 3]; 10] = [
    [214, 48, 49],
    [230, 126, 34],
    [241, 196, 15],
    [39, 174, 96],
    [26, 188, 196],
    [41, 98, 220],
    [142, 68, 173],
    [232, 67, 147],
    [121, 85, 61],
    [236, 240, 241],
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TravelerConfig {
    /// Probability that a slot of the random strip is an empty space.
    pub empty_prob: f64,
    /// Pixels moved per frame by left/right.
    pub speed_px: i32,
}

impl Default for TravelerConfig {
    fn default() -> Self {
        Self {
            empty_prob: 0.35,
            speed_px: 2,
        }
    }
}

pub struct Traveler {
    cfg: TravelerConfig,
    preset: Option<StripPreset>,
    world_seed: u64,
    rng: Rng,
    /// World x of the square's centre.
    x: i32,
    built: BTreeMap<i64, Building>,
    score: u32,
    frame_index: u64,
    seen: (i64, i64),
    canvas: Canvas,
}

fn slot_of(x: i32) -> i64 {
    x.div_euclid(SLOT_PX) as i64
}

fn random_building(r: &mut Rng) -> Building {
    Building {
        color: PALETTE[r.below(PALETTE.len() as u64) as usize],
        height: 20 + 4 * r.below(9) as u8,
        built: false,
    }
}

impl Traveler {
    pub fn new(cfg: TravelerConfig, preset: Option<StripPreset>) -> Self {
        let mut t = Self {
            cfg,
            preset,
            world_seed: 0,
            rng: Rng::new(0),
            x: 0,
            built: BTreeMap::new(),
            score: 0,
            frame_index: 0,
            seen: (0, 0),
            canvas: Canvas::new(WIDTH, HEIGHT),
        };
        t.reset(0);
        t
    }

    /// What stands in slot `i` now (`None` = empty space).
    pub fn slot(&self, i: i64) -> Option<Building> {
        if let Some(b) = self.built.get(&i) {
            return Some(*b);
        }
        if let Some(p) = &self.preset {
            if i >= 0 && (i as usize) < p.slots.len() {
                return p.slots[i as usize];
            }
            if p.outside == Outside::Empty {
                return None;
            }
        }
        let mut r = Rng::for_stream(self.world_seed, i as u64);
        if r.chance(self.cfg.empty_prob) {
            None
        } else {
            Some(random_building(&mut r))
        }
    }

    /// World x of the square's centre.
    pub fn x(&self) -> i32 {
        self.x
    }

    fn mark_seen(&mut self) {
        let lo = slot_of(self.x - WIDTH as i32 / 2);
        let hi = slot_of(self.x + WIDTH as i32 / 2 - 1);
        self.seen = (self.seen.0.min(lo), self.seen.1.max(hi));
    }

    fn result(&self, action: u8, events: Events) -> StepResult {
        StepResult {
            frame: self.canvas.rgb.clone(),
            action,
            events,
            score: self.score,
            player: self.player(),
            aux: Vec::new(),
            done: false,
            frame_index: self.frame_index,
        }
    }

    /// Sky, ground and buildings of the view whose centre is world x `centre`, with an empty
    /// score bar.
    fn draw_scenery(&self, c: &mut Canvas, centre: i32) {
        c.rect(0, 0, WIDTH as i32, SCORE_BAR_H, BAR);
        c.rect(0, SCORE_BAR_H, WIDTH as i32, GROUND_Y - SCORE_BAR_H, SKY);
        c.rect(0, GROUND_Y, WIDTH as i32, HEIGHT as i32 - GROUND_Y, GROUND);
        let left = centre - WIDTH as i32 / 2;
        for i in slot_of(left)..=slot_of(left + WIDTH as i32 - 1) {
            let Some(b) = self.slot(i) else { continue };
            let sx = i as i32 * SLOT_PX - left;
            let h = b.height as i32;
            c.rect(sx + 2, GROUND_Y - h, SLOT_PX - 4, h, b.color);
            // A darker roof line makes neighbouring buildings of one colour distinguishable.
            let roof = b.color.map(|v| v / 2);
            c.rect(sx + 2, GROUND_Y - h, SLOT_PX - 4, 2, roof);
        }
    }

    fn render(&mut self) {
        let mut c = std::mem::replace(&mut self.canvas, Canvas::new(0, 0));
        self.draw_scenery(&mut c, self.x);
        let px = WIDTH as i32 / 2 - PLAYER_SIZE / 2;
        c.rect(px, GROUND_Y - PLAYER_SIZE, PLAYER_SIZE, PLAYER_SIZE, PLAYER);
        draw_score(&mut c, self.score, INK);
        self.canvas = c;
    }

    /// What a designer's strip looks like from every place the traveller could stand, without
    /// the traveller: views (RGB8 frames) and the player positions they would be seen from,
    /// covering the preset's slots. A neural session paints them into its map before play
    /// (MaaG's designer control); without a preset there is nothing to show.
    fn strip_views(&self) -> Vec<(Vec<u8>, Position)> {
        let Some(p) = &self.preset else {
            return Vec::new();
        };
        let end = p.slots.len() as i32 * SLOT_PX;
        let mut out = Vec::new();
        let mut centre = WIDTH as i32 / 2;
        loop {
            let mut c = Canvas::new(WIDTH, HEIGHT);
            self.draw_scenery(&mut c, centre);
            let y = GROUND_Y - PLAYER_SIZE / 2;
            out.push((c.rgb, Position { x: centre, y }));
            if centre + WIDTH as i32 / 2 >= end {
                return out;
            }
            // The last view ends exactly at the strip's end, so nothing beyond it is painted.
            centre = (centre + WIDTH as i32).min(end - WIDTH as i32 / 2);
        }
    }
}

impl Game for Traveler {
    fn kind(&self) -> GameKind {
        GameKind::Traveler
    }

    fn reset(&mut self, seed: u64) -> StepResult {
        self.world_seed = derive_seed(seed, 0);
        self.rng = Rng::for_stream(seed, 1);
        let start = self.preset.as_ref().map_or(0, |p| p.start as i32);
        self.x = start * SLOT_PX + SLOT_PX / 2;
        self.built.clear();
        self.score = 0;
        self.frame_index = 0;
        self.seen = (i64::MAX, i64::MIN);
        self.mark_seen();
        self.render();
        self.result(STAY, Events::default())
    }

    fn step(&mut self, action: u8) -> StepResult {
        let action = if (action as usize) < ACTION_NAMES.len() {
            action
        } else {
            STAY
        };
        let before = slot_of(self.x);
        self.x += match action {
            LEFT => -self.cfg.speed_px,
            RIGHT => self.cfg.speed_px,
            _ => 0,
        };
        let now = slot_of(self.x);
        let mut events = Events::default();
        if now != before && self.slot(now).is_none() {
            let mut b = random_building(&mut self.rng);
            b.built = true;
            self.built.insert(now, b);
            self.score += 1;
            events.0 |= Events::BUILT;
        }
        self.frame_index += 1;
        self.mark_seen();
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
        false
    }

    fn player(&self) -> Position {
        Position {
            x: self.x,
            y: GROUND_Y - PLAYER_SIZE / 2,
        }
    }

    fn preset_views(&self) -> Vec<(Vec<u8>, Position)> {
        self.strip_views()
    }

    fn truth_map(&self) -> TruthMap {
        TruthMap::Strip(StripMap {
            first_slot: self.seen.0,
            slot_px: SLOT_PX as u32,
            slots: (self.seen.0..=self.seen.1).map(|i| self.slot(i)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::maps::parse_map;

    fn preset(text: &str) -> StripPreset {
        parse_map(text).unwrap().as_strip().unwrap().clone()
    }

    /// Column `x` of the sky just above the ground, i.e. whether a building stands there.
    fn base_color(frame: &[u8], x: usize) -> [u8; 3] {
        let i = ((GROUND_Y as usize - 1) * WIDTH + x) * 3;
        [frame[i], frame[i + 1], frame[i + 2]]
    }

    #[test]
    fn crossing_an_empty_space_builds_one_building_and_scores_one() {
        // Start in slot 0 (a building); slot 1 is empty; slot 2 is a building.
        let mut g = Traveler::new(
            TravelerConfig::default(),
            Some(preset("gamegen-map 1\ngame traveler\nstrip\nR.G\n")),
        );
        g.reset(3);
        assert!(g.slot(1).is_none());
        let mut built = 0;
        let mut scores = vec![];
        for _ in 0..16 {
            let s = g.step(RIGHT);
            if s.events.has(Events::BUILT) {
                built += 1;
            }
            scores.push(s.score);
        }
        // Moved from x=8 to x=40: crossed into slot 1 (empty -> built) and into slot 2 (building).
        assert_eq!(g.x(), 40);
        assert_eq!(built, 1);
        assert_eq!(g.score(), 1);
        assert!(scores.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
        let b = g.slot(1).expect("a building now stands in the empty space");
        assert!(b.built);
    }

    #[test]
    fn revisiting_shows_the_same_buildings() {
        let mut g = Traveler::new(TravelerConfig::default(), None);
        g.reset(11);
        let first = g.frame().to_vec();
        // Walk right 12 slots and remember that view.
        for _ in 0..100 {
            g.step(RIGHT);
        }
        let there = g.frame().to_vec();
        let score_there = g.score();
        assert!(
            score_there > 0,
            "a random strip of 12 slots has empty spaces"
        );
        // Walk back 60 frames and forward again: only slots already entered are crossed.
        for _ in 0..60 {
            assert!(g.step(LEFT).events.is_empty());
        }
        for _ in 0..60 {
            assert!(g.step(RIGHT).events.is_empty());
        }
        assert_eq!(g.score(), score_there);
        assert_eq!(g.frame(), &there[..], "the same place must look the same");
        // Back home: buildings that stood there still stand, unchanged.
        for _ in 0..100 {
            g.step(LEFT);
        }
        let home = g.frame().to_vec();
        for x in 0..WIDTH {
            let (a, b) = (base_color(&first, x), base_color(&home, x));
            if a != SKY {
                assert_eq!(a, b, "a building changed at column {x}");
            }
        }
    }

    #[test]
    fn standing_still_or_walking_inside_a_slot_never_scores() {
        let mut g = Traveler::new(
            TravelerConfig::default(),
            Some(preset(
                "gamegen-map 1\ngame traveler\noutside empty\nstrip\n.\n",
            )),
        );
        g.reset(0);
        for _ in 0..30 {
            assert!(g.step(STAY).events.is_empty());
        }
        // Inside slot 0 (x 8 -> 14 -> 2): never leaves the slot.
        for a in [RIGHT, RIGHT, RIGHT, LEFT, LEFT, LEFT, LEFT, LEFT, LEFT] {
            assert!(g.step(a).events.is_empty());
        }
        assert_eq!(g.score(), 0);
        // Crossing into slot -1 (outside the preset, empty) builds.
        g.step(LEFT);
        assert_eq!(g.x(), 0);
        let s = g.step(LEFT);
        assert_eq!(s.score, 1);
        assert!(s.events.has(Events::BUILT));
    }

    #[test]
    fn preset_strip_is_what_the_player_sees() {
        let p = preset(EXAMPLE_STRIP);
        let mut g = Traveler::new(TravelerConfig::default(), Some(p.clone()));
        let s = g.reset(5);
        assert_eq!(s.player.x, p.start as i32 * SLOT_PX + SLOT_PX / 2);
        // The slot under each screen column matches the preset.
        let left = g.x() - WIDTH as i32 / 2;
        for x in (0..WIDTH).step_by(4) {
            let slot = slot_of(left + x as i32);
            let within = (left + x as i32).rem_euclid(SLOT_PX);
            if !(3..13).contains(&within) || !(0..p.slots.len() as i64).contains(&slot) {
                continue;
            }
            let col = base_color(&s.frame, x);
            match p.slots[slot as usize] {
                Some(b) => assert_eq!(col, b.color, "column {x} slot {slot}"),
                None if (44..53).contains(&x) => {} // the traveller stands there
                None => assert_eq!(col, SKY, "column {x} slot {slot} should be empty"),
            }
        }
        // Same map whatever the seed (outside the strip is random, inside it is fixed).
        let mut g2 = Traveler::new(TravelerConfig::default(), Some(p));
        assert_eq!(g2.reset(99).frame, s.frame);
    }

    #[test]
    fn preset_views_are_what_the_walk_shows_without_the_traveller() {
        use crate::world::model::spatial::SpatialMap;
        // Buildings in every slot, so walking builds nothing new.
        let p = preset("gamegen-map 1\ngame traveler\nstrip\nRGBOYCPMNWrgboycpmnwRGBOYC\n");
        let n = p.slots.len() as i32;
        let mut t = Traveler::new(TravelerConfig::default(), Some(p));
        let first = t.reset(9);
        let views = t.preset_views();
        assert!(views.len() >= 2);
        let mut map = SpatialMap::new(WIDTH, HEIGHT, (SCORE_BAR_H as usize, HEIGHT));
        for (f, pos) in &views {
            map.write_frame(f, (pos.x as i64, pos.y as i64));
        }
        let mut step = first;
        let mut compared = 0;
        while step.player.x + WIDTH as i32 / 2 <= n * SLOT_PX {
            if step.player.x < WIDTH as i32 / 2 {
                // Part of the view is left of the strip, where the episode seed decides.
                step = t.step(RIGHT);
                continue;
            }
            compared += 1;
            let (x, y) = (step.player.x as i64, step.player.y as i64);
            let rows = HEIGHT - SCORE_BAR_H as usize;
            let want = map.crop(x, y, WIDTH, rows);
            let got = &step.frame[SCORE_BAR_H as usize * WIDTH * 3..];
            let player = |i: usize| {
                let (px, py) = ((i / 3) % WIDTH, (i / 3) / WIDTH + SCORE_BAR_H as usize);
                (px as i32 - WIDTH as i32 / 2).abs() <= PLAYER_SIZE / 2
                    && py as i32 >= GROUND_Y - PLAYER_SIZE
                    && (py as i32) < GROUND_Y
            };
            let wrong = (0..want.len())
                .filter(|&i| want[i] != got[i] && !player(i))
                .count();
            assert_eq!(wrong, 0, "at x {x}");
            step = t.step(RIGHT);
        }
        assert!(compared > 100, "{compared}");
        // No preset, nothing to show.
        assert!(
            Traveler::new(TravelerConfig::default(), None)
                .preset_views()
                .is_empty()
        );
    }

    #[test]
    fn truth_map_covers_what_was_seen() {
        let mut g = Traveler::new(TravelerConfig::default(), None);
        g.reset(2);
        for _ in 0..50 {
            g.step(RIGHT);
        }
        let TruthMap::Strip(m) = g.truth_map() else {
            panic!("traveler has a strip")
        };
        assert_eq!(m.first_slot, -3);
        assert!(m.slots.len() >= 12);
        for (k, s) in m.slots.iter().enumerate() {
            assert_eq!(*s, g.slot(m.first_slot + k as i64));
        }
    }
}
