//! The attribute record a synthetic file is built from, and how it is drawn from a seed.
//!
//! The record is the ground truth for prompt adherence: a file's prompt is written from it, and
//! `--prompt-check` can later score any SWF against it. Every field is something a prompt can
//! state and something that can be read back out of the bytes.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Animation,
    Game,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ShapeKind {
    Rectangle,
    Ellipse,
    Polygon { sides: u8 },
    Star { points: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Fill {
    Solid { color: [u8; 3] },
    Linear { from: [u8; 3], to: [u8; 3] },
    Radial { from: [u8; 3], to: [u8; 3] },
}

impl Fill {
    /// The colour a person would name for the shape (the gradient's first stop).
    pub fn main_color(&self) -> [u8; 3] {
        match *self {
            Fill::Solid { color } => color,
            Fill::Linear { from, .. } | Fill::Radial { from, .. } => from,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Motion {
    Still,
    /// Constant velocity in pixels per frame, wrapping around the stage.
    Linear {
        dx: f64,
        dy: f64,
    },
    /// Constant velocity, reflected at the stage edges.
    Bounce {
        dx: f64,
        dy: f64,
    },
    /// Degrees per frame.
    Rotate {
        degrees: f64,
    },
    /// Scale oscillating between `min` and `max` with the given period in frames.
    Pulse {
        min: f64,
        max: f64,
        period: u32,
    },
    /// Colour cycling towards `to` and back over `period` frames.
    ColorShift {
        to: [u8; 3],
        period: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub shape: ShapeKind,
    pub fill: Fill,
    /// Bounding size in pixels.
    pub width: f64,
    pub height: f64,
    /// Start position of the centre, in pixels.
    pub x: f64,
    pub y: f64,
    pub motion: Motion,
}

/// The player-controlled object of a game: arrow keys move it by `speed` pixels per frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Player {
    pub object: Object,
    pub speed: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    pub kind: Kind,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    pub frames: u32,
    pub background: [u8; 3],
    pub objects: Vec<Object>,
    pub player: Option<Player>,
    pub title: String,
}

/// Named colours, so prompts can say "red" and the record stays exact.
pub const PALETTE: &[(&str, [u8; 3])] = &[
    ("red", [0xe6, 0x26, 0x26]),
    ("orange", [0xf2, 0x8c, 0x1a]),
    ("yellow", [0xf2, 0xd9, 0x1a]),
    ("green", [0x2e, 0xb8, 0x4a]),
    ("teal", [0x1a, 0xa6, 0xa6]),
    ("blue", [0x26, 0x5c, 0xe6]),
    ("purple", [0x8c, 0x3c, 0xd9]),
    ("pink", [0xf2, 0x73, 0xb3]),
    ("white", [0xff, 0xff, 0xff]),
    ("black", [0x10, 0x10, 0x10]),
    ("gray", [0x80, 0x80, 0x80]),
    ("brown", [0x8c, 0x59, 0x26]),
];

pub const BACKGROUNDS: &[(&str, [u8; 3])] = &[
    ("white", [0xff, 0xff, 0xff]),
    ("black", [0x00, 0x00, 0x00]),
    ("dark blue", [0x10, 0x1c, 0x40]),
    ("light blue", [0xcc, 0xe6, 0xff]),
    ("dark green", [0x12, 0x33, 0x1a]),
    ("beige", [0xf5, 0xeb, 0xd6]),
    ("gray", [0x59, 0x59, 0x59]),
    ("purple", [0x2b, 0x14, 0x3d]),
];

/// The palette name of an exact colour, or its hex form.
pub fn color_name(c: [u8; 3]) -> String {
    PALETTE
        .iter()
        .chain(BACKGROUNDS)
        .find(|(_, v)| *v == c)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]))
}

const STAGES: &[(u32, u32)] = &[
    (550, 400),
    (640, 480),
    (800, 600),
    (500, 500),
    (320, 240),
    (480, 360),
    (400, 300),
    (720, 405),
];
const RATES: &[f64] = &[12.0, 15.0, 24.0, 25.0, 30.0, 60.0];

fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

fn color(rng: &mut Rng, avoid: [u8; 3]) -> [u8; 3] {
    loop {
        let c = pick(rng, PALETTE).1;
        if c != avoid {
            return c;
        }
    }
}

fn shape(rng: &mut Rng) -> ShapeKind {
    match rng.below(4) {
        0 => ShapeKind::Rectangle,
        1 => ShapeKind::Ellipse,
        2 => ShapeKind::Polygon {
            sides: 3 + rng.below(6) as u8,
        },
        _ => ShapeKind::Star {
            points: 4 + rng.below(5) as u8,
        },
    }
}

fn fill(rng: &mut Rng, bg: [u8; 3]) -> Fill {
    let a = color(rng, bg);
    match rng.below(4) {
        0 | 1 => Fill::Solid { color: a },
        2 => Fill::Linear {
            from: a,
            to: color(rng, a),
        },
        _ => Fill::Radial {
            from: a,
            to: color(rng, a),
        },
    }
}

fn speed(rng: &mut Rng) -> f64 {
    let v = 1.0 + rng.below(8) as f64;
    if rng.chance(0.5) { v } else { -v }
}

fn motion(rng: &mut Rng, bg: [u8; 3]) -> Motion {
    match rng.below(6) {
        0 => Motion::Still,
        1 => Motion::Linear {
            dx: speed(rng),
            dy: if rng.chance(0.5) { 0.0 } else { speed(rng) },
        },
        2 => Motion::Bounce {
            dx: speed(rng),
            dy: speed(rng),
        },
        3 => Motion::Rotate {
            degrees: speed(rng) * 2.0,
        },
        4 => Motion::Pulse {
            min: 0.5,
            max: 1.0 + rng.below(3) as f64 * 0.25,
            period: 12 + rng.below(36) as u32,
        },
        _ => Motion::ColorShift {
            to: color(rng, bg),
            period: 12 + rng.below(36) as u32,
        },
    }
}

fn object(rng: &mut Rng, w: u32, h: u32, bg: [u8; 3]) -> Object {
    let size = 20.0 + rng.below(80) as f64;
    let aspect = 0.6 + rng.next_f64() * 0.8;
    let shape = shape(rng);
    let (width, height) = match shape {
        ShapeKind::Rectangle | ShapeKind::Ellipse => (size, (size * aspect).round()),
        _ => (size, size),
    };
    Object {
        shape,
        fill: fill(rng, bg),
        width,
        height,
        x: (width / 2.0 + rng.next_f64() * (f64::from(w) - width)).round(),
        y: (height / 2.0 + rng.next_f64() * (f64::from(h) - height)).round(),
        motion: motion(rng, bg),
    }
}

/// Draw a full attribute record.
pub fn sample(rng: &mut Rng) -> Attributes {
    let kind = if rng.chance(0.35) {
        Kind::Game
    } else {
        Kind::Animation
    };
    let (width, height) = pick(rng, STAGES);
    let frame_rate = pick(rng, RATES);
    let background = pick(rng, BACKGROUNDS).1;
    let n = 1 + rng.below(5) as usize;
    let objects: Vec<Object> = (0..n)
        .map(|_| object(rng, width, height, background))
        .collect();
    let player = (kind == Kind::Game).then(|| {
        let mut o = object(rng, width, height, background);
        o.motion = Motion::Still;
        o.x = f64::from(width / 2);
        o.y = f64::from(height / 2);
        Player {
            object: o,
            speed: 2.0 + rng.below(7) as f64,
        }
    });
    let frames = match kind {
        Kind::Animation => 24 + rng.below(73) as u32,
        Kind::Game => 1 + rng.below(48) as u32,
    };
    let title = super::prompt::title(rng, &objects, kind);
    Attributes {
        kind,
        width,
        height,
        frame_rate,
        frames,
        background,
        objects,
        player,
        title,
    }
}
