//! Prompts for synthetic files: the ByteCraft structured format plus free-text paraphrases, all
//! written from the attribute record (so every statement in a prompt is true of the file).

use super::attrs::{Attributes, Fill, Kind, Motion, Object, ShapeKind, color_name};
use crate::rng::Rng;

fn shape_noun(s: ShapeKind) -> String {
    match s {
        ShapeKind::Rectangle => "rectangle".into(),
        ShapeKind::Ellipse => "ellipse".into(),
        ShapeKind::Polygon { sides: 3 } => "triangle".into(),
        ShapeKind::Polygon { sides: 4 } => "diamond".into(),
        ShapeKind::Polygon { sides: 5 } => "pentagon".into(),
        ShapeKind::Polygon { sides: 6 } => "hexagon".into(),
        ShapeKind::Polygon { sides } => format!("{sides}-sided polygon"),
        ShapeKind::Star { points } => format!("{points}-pointed star"),
    }
}

fn describe_object(o: &Object) -> String {
    let fill = match o.fill {
        Fill::Solid { color } => color_name(color),
        Fill::Linear { from, to } => {
            format!("{}-to-{} gradient", color_name(from), color_name(to))
        }
        Fill::Radial { from, to } => {
            format!("radial {}-and-{}", color_name(from), color_name(to))
        }
    };
    let what = format!("a {fill} {}", shape_noun(o.shape));
    let how = match o.motion {
        Motion::Still => "stays still".to_string(),
        Motion::Linear { dx, dy } => format!("drifts {}", direction(dx, dy)),
        Motion::Bounce { .. } => "bounces around the edges".to_string(),
        Motion::Rotate { degrees } => {
            if degrees > 0.0 {
                "spins clockwise".to_string()
            } else {
                "spins counter-clockwise".to_string()
            }
        }
        Motion::Pulse { .. } => "pulses in size".to_string(),
        Motion::ColorShift { to, .. } => format!("fades to {} and back", color_name(to)),
    };
    format!("{what} that {how}")
}

/// Compass-style direction of a velocity in screen coordinates (y grows downwards).
pub fn direction(dx: f64, dy: f64) -> &'static str {
    let h = if dx > 0.0 {
        1
    } else if dx < 0.0 {
        -1
    } else {
        0
    };
    let v = if dy > 0.0 {
        1
    } else if dy < 0.0 {
        -1
    } else {
        0
    };
    match (h, v) {
        (1, 0) => "to the right",
        (-1, 0) => "to the left",
        (0, 1) => "downwards",
        (0, -1) => "upwards",
        (1, 1) => "down and to the right",
        (1, -1) => "up and to the right",
        (-1, 1) => "down and to the left",
        (-1, -1) => "up and to the left",
        _ => "nowhere",
    }
}

/// A short title from the first object.
pub fn title(rng: &mut Rng, objects: &[Object], kind: Kind) -> String {
    let o = &objects[0];
    let adj = match o.motion {
        Motion::Still => "Quiet",
        Motion::Linear { .. } => "Drifting",
        Motion::Bounce { .. } => "Bouncing",
        Motion::Rotate { .. } => "Spinning",
        Motion::Pulse { .. } => "Pulsing",
        Motion::ColorShift { .. } => "Shimmering",
    };
    let noun = shape_noun(o.shape);
    let tail = match (kind, rng.below(3)) {
        (Kind::Game, 0) => " Chase",
        (Kind::Game, 1) => " Dodge",
        (Kind::Game, _) => " Run",
        (Kind::Animation, 0) => "s",
        (Kind::Animation, _) => "",
    };
    let mut t = format!("{adj} {noun}{tail}");
    if let Some(first) = t.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    t
}

/// One sentence describing the scene.
pub fn description(a: &Attributes) -> String {
    let parts: Vec<String> = a.objects.iter().map(describe_object).collect();
    let scene = join(&parts);
    let bg = color_name(a.background);
    match &a.player {
        None => format!("This is an animation on a {bg} background with {scene}."),
        Some(p) => format!(
            "This is a small game on a {bg} background: the player moves a {} {} with the \
             arrow keys while {scene}.",
            color_name(p.object.fill.main_color()),
            shape_noun(p.object.shape)
        ),
    }
}

fn join(parts: &[String]) -> String {
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

/// The ByteCraft structured prompt (same fields and order as the paper's prompts).
pub fn structured(a: &Attributes, size_bytes: usize) -> String {
    let what = match a.kind {
        Kind::Animation => "an animation",
        Kind::Game => "a video game",
    };
    format!(
        "Please generate {what} with the following specifications:\n\
         - Frame rate: {:.1}\n\
         - Resolution: {}x{}\n\
         - Language(s): English\n\
         - Title: {}\n\
         - Size: {}KB\n\
         - Description: {}",
        a.frame_rate,
        a.width,
        a.height,
        a.title,
        size_bytes.div_ceil(1024),
        description(a)
    )
}

/// Free-text paraphrases: the same facts in different words and orders.
pub fn paraphrases(a: &Attributes, rng: &mut Rng) -> Vec<String> {
    let what = match a.kind {
        Kind::Animation => "animation",
        Kind::Game => "game",
    };
    let bg = color_name(a.background);
    let objs: Vec<String> = a.objects.iter().map(describe_object).collect();
    let scene = join(&objs);
    let fps = a.frame_rate;
    let control = a
        .player
        .as_ref()
        .map(|p| {
            format!(
                " The player steers a {} {} with the arrow keys.",
                color_name(p.object.fill.main_color()),
                shape_noun(p.object.shape)
            )
        })
        .unwrap_or_default();
    let mut out = vec![
        format!(
            "Make a {}x{} {what} at {fps} fps: {scene}, on a {bg} background.{control}",
            a.width, a.height
        ),
        format!(
            "I want a Flash {what} called \"{}\". The stage is {} by {} pixels with a {bg} \
             background, running at {fps} frames per second. In it, {scene}.{control}",
            a.title, a.width, a.height
        ),
        format!(
            "{}: {scene}. {bg} backdrop, {}x{}, {fps} fps, {} frames.{control}",
            a.title, a.width, a.height, a.frames
        ),
    ];
    // Deterministic shuffle so position carries no signal.
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out
}
