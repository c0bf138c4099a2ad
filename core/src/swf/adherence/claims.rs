//! What a prompt says a file should be, as checkable claims.
//!
//! Two sources: the attribute record a synthetic file was built from (exact values, the ground
//! truth of `gamegen corpus synth`), and the words of a prompt. The text reader knows the
//! ByteCraft structured format (its `- Resolution:`, `- Frame rate:` and `- Description:` fields)
//! and plain sentences: sizes written `550x400` or `550 by 400 pixels`, rates as `24 fps` or
//! `24 frames per second`, colour words before a shape noun or before "background", and motion
//! verbs after it. A claim it cannot read is left out rather than guessed, so the score is
//! over what the prompt states.

use super::extract::ShapeGuess;
use crate::swf::synth::attrs::{self, Attributes, BACKGROUNDS, Motion, PALETTE};
use serde::{Deserialize, Serialize};

/// A colour as the prompt gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColorClaim {
    pub name: String,
    pub rgb: [u8; 3],
    /// From a record: the exact value is known, not just its name.
    pub exact: bool,
}

impl ColorClaim {
    fn exact(rgb: [u8; 3]) -> Self {
        Self {
            name: attrs::color_name(rgb),
            rgb,
            exact: true,
        }
    }
}

/// How the prompt says an object moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MotionClaim {
    Still,
    /// Steady motion; `dx`, `dy` are the signs of the direction (screen y grows downwards).
    Drift {
        dx: i8,
        dy: i8,
    },
    Bounce,
    Spin {
        clockwise: Option<bool>,
    },
    Pulse,
    Fade {
        to: Option<ColorClaim>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectClaim {
    pub shape: Option<ShapeGuess>,
    pub color: Option<ColorClaim>,
    pub motion: Option<MotionClaim>,
    /// The player moves it with the keyboard.
    pub player: bool,
}

/// Everything a prompt claims that [`super::extract::Facts`] can check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    pub frames: Option<u32>,
    pub background: Option<ColorClaim>,
    /// A game (responds to input) rather than an animation.
    pub interactive: Option<bool>,
    pub objects: Vec<ObjectClaim>,
}

impl Claims {
    pub fn is_empty(&self) -> bool {
        *self == Claims::default()
    }

    /// The exact claims of a synthetic file's attribute record.
    pub fn from_record(a: &Attributes) -> Self {
        let mut objects: Vec<ObjectClaim> = a
            .objects
            .iter()
            .map(|o| ObjectClaim {
                shape: Some(shape_of(o.shape)),
                color: Some(ColorClaim::exact(o.fill.main_color())),
                motion: Some(match o.motion {
                    Motion::Still => MotionClaim::Still,
                    Motion::Linear { dx, dy } => MotionClaim::Drift {
                        dx: sign(dx),
                        dy: sign(dy),
                    },
                    Motion::Bounce { .. } => MotionClaim::Bounce,
                    Motion::Rotate { degrees } => MotionClaim::Spin {
                        clockwise: Some(degrees > 0.0),
                    },
                    Motion::Pulse { .. } => MotionClaim::Pulse,
                    Motion::ColorShift { to, .. } => MotionClaim::Fade {
                        to: Some(ColorClaim::exact(to)),
                    },
                }),
                player: false,
            })
            .collect();
        if let Some(p) = &a.player {
            objects.push(ObjectClaim {
                shape: Some(shape_of(p.object.shape)),
                color: Some(ColorClaim::exact(p.object.fill.main_color())),
                motion: None,
                player: true,
            });
        }
        Claims {
            resolution: Some((a.width, a.height)),
            frame_rate: Some(a.frame_rate),
            frames: Some(a.frames),
            background: Some(ColorClaim::exact(a.background)),
            interactive: Some(a.player.is_some()),
            objects,
        }
    }

    /// Read the claims out of a prompt's words.
    pub fn from_text(prompt: &str) -> Self {
        let mut c = Claims::default();
        let lower = prompt.to_lowercase();
        // Structured prompt fields first; the scene is read from the description only, so the
        // title's words ("Bouncing stars") are not taken for objects.
        let mut scene = String::new();
        let mut structured = false;
        for line in lower.lines() {
            let line = line.trim().trim_start_matches('-').trim();
            if let Some(v) = line.strip_prefix("frame rate:") {
                structured = true;
                c.frame_rate = leading_number(v.trim());
            } else if let Some(v) = line.strip_prefix("resolution:") {
                structured = true;
                c.resolution = size_in(v);
            } else if let Some(v) = line.strip_prefix("description:") {
                structured = true;
                scene.push_str(v);
                scene.push(' ');
            } else if line.starts_with("title:")
                || line.starts_with("size:")
                || line.starts_with("language")
                || line.starts_with("release date:")
            {
                structured = true;
            } else if !structured {
                scene.push_str(line);
                scene.push(' ');
            }
        }
        if !structured {
            scene = drop_title(&scene);
        }
        let words = tokens(&scene);
        c.resolution = c.resolution.or_else(|| size_in(&lower));
        c.frame_rate = c.frame_rate.or_else(|| rate_in(&words));
        c.frames = frames_in(&words);
        c.background = background_in(&words);
        c.objects = objects_in(&words);
        let game = lower.contains("video game") || has_word(&words, "game");
        let animation = lower.contains("an animation") || has_word(&words, "animation");
        let controls = [
            "arrow", "keyboard", "player", "click", "mouse", "steer", "steers",
        ]
        .iter()
        .any(|w| has_word(&words, w));
        c.interactive = if game || controls {
            Some(true)
        } else if animation {
            Some(false)
        } else {
            None
        };
        c
    }
}

fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

fn shape_of(s: attrs::ShapeKind) -> ShapeGuess {
    match s {
        attrs::ShapeKind::Rectangle => ShapeGuess::Rectangle,
        attrs::ShapeKind::Ellipse => ShapeGuess::Ellipse,
        attrs::ShapeKind::Polygon { sides } => ShapeGuess::Polygon { sides },
        attrs::ShapeKind::Star { points } => ShapeGuess::Star { points },
    }
}

/// Words and the punctuation that ends clauses, lower case; hyphens split words
/// ("red-to-blue", "5-pointed") and decimal points stay inside numbers.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        let decimal = ch == '.'
            && cur.chars().last().is_some_and(|c| c.is_ascii_digit())
            && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
        if ch.is_alphanumeric() || decimal {
            cur.push(ch);
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if matches!(ch, ',' | '.' | ';' | ':' | '!' | '?') {
            out.push(ch.to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn has_word(words: &[String], w: &str) -> bool {
    words.iter().any(|x| x == w)
}

fn is_break(w: &str) -> bool {
    matches!(w, "," | "." | ";" | ":" | "!" | "?")
}

/// A short heading before the first colon ("Spinning stars: ...") is a title, not the scene.
fn drop_title(scene: &str) -> String {
    let mut s = scene.to_string();
    if let Some(i) = s.find(':') {
        let head = &s[..i];
        if head.split_whitespace().count() <= 5 && !head.chars().any(|c| c.is_ascii_digit()) {
            s = s[i + 1..].to_string();
        }
    }
    // Quoted names ("called \"Drifting hexagons\"") are titles too.
    let mut out = String::new();
    for (i, part) in s.split('"').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

fn leading_number(s: &str) -> Option<f64> {
    let n: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    n.parse().ok()
}

/// `550x400`, `550 x 400`, `550×400` or `550 by 400`.
fn size_in(text: &str) -> Option<(u32, u32)> {
    let t = text.replace('×', "x");
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        if let Some((a, b)) = w.split_once('x')
            && let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.trim_end_matches('.').parse::<u32>())
        {
            return Some((a, b));
        }
        if let (Ok(a), Some(&mid), Some(b)) = (
            w.parse::<u32>(),
            words.get(i + 1),
            words.get(i + 2).and_then(|b| b.parse::<u32>().ok()),
        ) && (mid == "x" || mid == "by")
        {
            return Some((a, b));
        }
    }
    None
}

/// `24 fps`, `24 frames per second`, `frame rate of 24`.
fn rate_in(words: &[String]) -> Option<f64> {
    for (i, w) in words.iter().enumerate() {
        let next = |k: usize| words.get(i + k).map(String::as_str);
        if let Ok(v) = w.parse::<f64>()
            && (next(1) == Some("fps") || (next(1) == Some("frames") && next(2) == Some("per")))
        {
            return Some(v);
        }
        if w == "rate"
            && next(1) == Some("of")
            && let Some(v) = next(2).and_then(|v| v.parse().ok())
        {
            return Some(v);
        }
    }
    None
}

/// `48 frames` (not `frames per second`).
fn frames_in(words: &[String]) -> Option<u32> {
    words.windows(3).find_map(|w| {
        (w[1] == "frames" && w[2] != "per")
            .then(|| w[0].parse().ok())
            .flatten()
    })
}

/// Every colour word the reader knows: the synthetic palettes plus common names.
fn lexicon() -> Vec<(&'static str, [u8; 3])> {
    let mut v: Vec<(&'static str, [u8; 3])> = PALETTE.iter().chain(BACKGROUNDS).copied().collect();
    v.extend([
        ("grey", [0x80, 0x80, 0x80]),
        ("cyan", [0x00, 0xff, 0xff]),
        ("magenta", [0xff, 0x00, 0xff]),
        ("violet", [0x8c, 0x3c, 0xd9]),
        ("navy", [0x10, 0x1c, 0x40]),
        ("gold", [0xf2, 0xd9, 0x1a]),
        ("lime", [0x7f, 0xff, 0x00]),
    ]);
    v
}

/// The colour named by the words starting at `i` (two-word names first): (claim, words used).
fn color_at(words: &[String], i: usize) -> Option<(ColorClaim, usize)> {
    let lex = lexicon();
    let one = words.get(i)?;
    if let Some(two) = words.get(i + 1) {
        let name = format!("{one} {two}");
        if let Some((n, rgb)) = lex.iter().find(|(n, _)| *n == name) {
            return Some((
                ColorClaim {
                    name: n.to_string(),
                    rgb: *rgb,
                    exact: false,
                },
                2,
            ));
        }
    }
    // A "light"/"dark" prefix on a one-word colour the lexicon has only plain.
    lex.iter().find(|(n, _)| n == one).map(|(n, rgb)| {
        (
            ColorClaim {
                name: n.to_string(),
                rgb: *rgb,
                exact: false,
            },
            1,
        )
    })
}

/// "on a dark blue background", "beige backdrop".
fn background_in(words: &[String]) -> Option<ColorClaim> {
    let at = words
        .iter()
        .position(|w| w == "background" || w == "backdrop")?;
    let from = at.saturating_sub(2);
    (from..at).find_map(|i| match color_at(words, i) {
        Some((c, n)) if i + n == at => Some(c),
        _ => None,
    })
}

/// A shape noun at `i`: the shape and how many words before it belong to it ("5 pointed").
fn shape_at(words: &[String], i: usize) -> Option<ShapeGuess> {
    let w = words[i].as_str();
    let w = w.strip_suffix('s').filter(|s| s.len() > 3).unwrap_or(w);
    let count_before = || {
        i.checked_sub(2)
            .and_then(|j| words[j].parse::<u8>().ok())
            .filter(|n| (3..=64).contains(n))
    };
    Some(match w {
        "rectangle" | "square" | "box" | "block" | "paddle" => ShapeGuess::Rectangle,
        "ellipse" | "circle" | "oval" | "ball" | "disc" | "dot" => ShapeGuess::Ellipse,
        "triangle" => ShapeGuess::Polygon { sides: 3 },
        "diamond" => ShapeGuess::Polygon { sides: 4 },
        "pentagon" => ShapeGuess::Polygon { sides: 5 },
        "hexagon" => ShapeGuess::Polygon { sides: 6 },
        "heptagon" => ShapeGuess::Polygon { sides: 7 },
        "octagon" => ShapeGuess::Polygon { sides: 8 },
        "polygon" => match count_before() {
            Some(sides) if words[i - 1] == "sided" => ShapeGuess::Polygon { sides },
            _ => return None,
        },
        "star" => match count_before() {
            Some(points) if words[i - 1] == "pointed" => ShapeGuess::Star { points },
            _ => ShapeGuess::Star { points: 5 },
        },
        _ => return None,
    })
}

fn is_article(w: &str) -> bool {
    matches!(w, "a" | "an" | "the" | "one" | "some")
}

/// Objects: each shape noun, with the colour words since its article and the motion words up
/// to the next clause break or next object.
fn objects_in(words: &[String]) -> Vec<ObjectClaim> {
    let nouns: Vec<(usize, ShapeGuess)> = (0..words.len())
        .filter_map(|i| shape_at(words, i).map(|s| (i, s)))
        .collect();
    let mut out = Vec::new();
    for (k, &(i, shape)) in nouns.iter().enumerate() {
        // Back to the article (or a break): the words that describe this object.
        let mut start = i;
        while start > 0 && !is_article(&words[start - 1]) && !is_break(&words[start - 1]) {
            start -= 1;
        }
        let color = (start..i).find_map(|j| color_at(words, j).map(|c| c.0));
        let player = words[start.saturating_sub(4)..start]
            .iter()
            .any(|w| matches!(w.as_str(), "player" | "steers" | "controls" | "control"));
        let end = nouns.get(k + 1).map_or(words.len(), |n| n.0);
        let tail: Vec<&str> = words[i + 1..end]
            .iter()
            .map(String::as_str)
            .take_while(|w| !is_break(w))
            .collect();
        let motion = if player {
            None
        } else {
            motion_in(&tail, words, i + 1)
        };
        out.push(ObjectClaim {
            shape: Some(shape),
            color,
            motion,
            player,
        });
    }
    out
}

fn motion_in(tail: &[&str], words: &[String], tail_start: usize) -> Option<MotionClaim> {
    let has = |w: &str| tail.contains(&w);
    let any = |ws: &[&str]| ws.iter().any(|w| has(w));
    if any(&["bounces", "bounce", "bouncing", "ricochets"]) {
        return Some(MotionClaim::Bounce);
    }
    if any(&["spins", "spin", "spinning", "rotates", "rotating", "turns"]) {
        let counter = tail
            .windows(2)
            .any(|w| matches!(w[0], "counter" | "anti") && w[1] == "clockwise")
            || has("anticlockwise")
            || has("counterclockwise");
        let clockwise = if counter {
            Some(false)
        } else if has("clockwise") {
            Some(true)
        } else {
            None
        };
        return Some(MotionClaim::Spin { clockwise });
    }
    if any(&["pulses", "pulse", "pulsing", "grows", "shrinks", "throbs"]) {
        return Some(MotionClaim::Pulse);
    }
    if any(&["fades", "fade", "fading", "shimmers", "changes"]) {
        let to = tail
            .iter()
            .position(|w| *w == "to")
            .and_then(|p| color_at(words, tail_start + p + 1).map(|c| c.0));
        return Some(MotionClaim::Fade { to });
    }
    if any(&[
        "drifts", "drift", "drifting", "moves", "slides", "flies", "glides", "scrolls",
    ]) {
        let dx = if has("right") {
            1
        } else if has("left") {
            -1
        } else {
            0
        };
        let dy = if any(&["down", "downwards", "downward"]) {
            1
        } else if any(&["up", "upwards", "upward"]) {
            -1
        } else {
            0
        };
        return (dx != 0 || dy != 0).then_some(MotionClaim::Drift { dx, dy });
    }
    if any(&["still", "static", "stationary", "motionless"]) {
        return Some(MotionClaim::Still);
    }
    None
}
