//! Scoring a file's facts against a prompt's claims.
//!
//! Each claim scores 0 or 1 and the file's score is their mean, with all the objects together
//! counting as one claim (the mean of their own scores), so a prompt with five objects does not
//! drown out its stage size. Claimed objects are paired with the file's objects by the best
//! score first, each file object used once; a claimed object nothing matches scores 0.

use super::claims::{Claims, ColorClaim, MotionClaim, ObjectClaim};
use super::extract::{Facts, ObjectFacts, ShapeGuess};
use crate::swf::synth::attrs::{BACKGROUNDS, PALETTE};
use serde::{Deserialize, Serialize};

/// One claim checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimCheck {
    pub attribute: String,
    pub expected: String,
    pub found: String,
    pub score: f64,
}

/// One claimed object and what it was paired with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectCheck {
    pub expected: String,
    /// Depth of the paired instance, if any.
    pub depth: Option<u16>,
    pub found: String,
    /// Mean of the parts below.
    pub score: f64,
    pub shape: Option<bool>,
    pub color: Option<bool>,
    pub motion: Option<bool>,
    pub player: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adherence {
    /// Mean over the claims the prompt makes, in [0, 1]; `None` when it makes none.
    pub score: Option<f64>,
    pub checks: Vec<ClaimCheck>,
    pub objects: Vec<ObjectCheck>,
    /// File objects no claimed object was paired with.
    pub unclaimed_objects: usize,
}

/// Largest per-channel difference for an exact colour to count as the same (anti-aliasing and
/// 8.8 colour transforms round a little).
const EXACT_TOLERANCE: u8 = 8;

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The palette name nearest to a colour (by squared RGB distance).
pub fn nearest_name(c: [u8; 3]) -> &'static str {
    let d = |a: [u8; 3]| {
        (0..3)
            .map(|i| (i32::from(a[i]) - i32::from(c[i])).pow(2))
            .sum::<i32>()
    };
    PALETTE
        .iter()
        .chain(BACKGROUNDS)
        .min_by_key(|(_, v)| d(*v))
        .map_or("?", |(n, _)| n)
}

/// Whether a found colour satisfies a claimed one: within the tolerance of an exact value, or
/// nearest to the claimed name (or to the claimed colour's own nearest name, for words outside
/// the palette).
pub fn color_matches(claim: &ColorClaim, found: [u8; 3]) -> bool {
    if claim.exact {
        return (0..3).all(|i| claim.rgb[i].abs_diff(found[i]) <= EXACT_TOLERANCE);
    }
    let name = nearest_name(found);
    name == claim.name || name == nearest_name(claim.rgb)
}

fn shape_name(s: &ShapeGuess) -> String {
    match s {
        ShapeGuess::Rectangle => "rectangle".into(),
        ShapeGuess::Ellipse => "ellipse".into(),
        ShapeGuess::Polygon { sides } => format!("{sides}-gon"),
        ShapeGuess::Star { points } => format!("{points}-pointed star"),
        ShapeGuess::Text => "text".into(),
        ShapeGuess::Other => "other shape".into(),
    }
}

fn motion_name(m: &MotionClaim) -> String {
    match m {
        MotionClaim::Still => "still".into(),
        MotionClaim::Drift { dx, dy } => format!("drifts ({dx:+}, {dy:+})"),
        MotionClaim::Bounce => "bounces".into(),
        MotionClaim::Spin {
            clockwise: Some(true),
        } => "spins clockwise".into(),
        MotionClaim::Spin {
            clockwise: Some(false),
        } => "spins counter-clockwise".into(),
        MotionClaim::Spin { clockwise: None } => "spins".into(),
        MotionClaim::Pulse => "pulses".into(),
        MotionClaim::Fade { to: Some(c) } => format!("fades to {}", c.name),
        MotionClaim::Fade { to: None } => "fades".into(),
    }
}

fn describe_claim(o: &ObjectClaim) -> String {
    let mut parts = Vec::new();
    if o.player {
        parts.push("player's".to_string());
    }
    if let Some(c) = &o.color {
        parts.push(c.name.clone());
    }
    parts.push(o.shape.as_ref().map_or("object".into(), shape_name));
    if let Some(m) = &o.motion {
        parts.push(motion_name(m));
    }
    parts.join(" ")
}

fn describe_found(o: &ObjectFacts) -> String {
    let mut parts = Vec::new();
    if o.keyboard {
        parts.push("keyboard-driven".to_string());
    }
    if let Some(c) = o.color {
        parts.push(format!("{} ({})", nearest_name(c), hex(c)));
    }
    parts.push(shape_name(&o.shape));
    let m = &o.motion;
    if m.is_still() {
        parts.push("still".into());
    }
    if let Some((vx, vy)) = m.velocity {
        let how = if m.bounces { "bounces" } else { "drifts" };
        parts.push(format!("{how} ({vx:+.1}, {vy:+.1}) px/frame"));
    }
    if let Some(r) = m.rotation {
        parts.push(format!("spins {r:+.1} deg/frame"));
    }
    if let Some((lo, hi)) = m.scale {
        parts.push(format!("scales {lo:.2}-{hi:.2}"));
    }
    if let Some(c) = m.tint_to {
        parts.push(format!("fades to {}", nearest_name(c)));
    }
    parts.join(" ")
}

fn sign(v: f64) -> i8 {
    if v > 0.05 {
        1
    } else if v < -0.05 {
        -1
    } else {
        0
    }
}

fn motion_matches(claim: &MotionClaim, o: &ObjectFacts) -> bool {
    let m = &o.motion;
    match claim {
        MotionClaim::Still => m.is_still(),
        MotionClaim::Drift { dx, dy } => m
            .velocity
            .is_some_and(|(vx, vy)| !m.bounces && sign(vx) == *dx && sign(vy) == *dy),
        // A bouncing object that has not reached an edge yet moves like a drifting one; only
        // wrapping around (leaving one edge, entering at the other) rules a bounce out.
        MotionClaim::Bounce => m.bounces || (m.velocity.is_some() && !m.wraps),
        MotionClaim::Spin { clockwise } => m.rotation.is_some_and(|r| match clockwise {
            Some(cw) => (r > 0.0) == *cw,
            None => true,
        }),
        MotionClaim::Pulse => m.scale.is_some(),
        MotionClaim::Fade { to } => m.tint_to.is_some_and(|found| match to {
            Some(c) => color_matches(c, found),
            None => true,
        }),
    }
}

fn check_object(claim: &ObjectClaim, o: &ObjectFacts) -> ObjectCheck {
    let shape = claim.shape.map(|s| s == o.shape);
    let color = claim
        .color
        .as_ref()
        .map(|c| o.color.is_some_and(|f| color_matches(c, f)));
    let motion = claim.motion.as_ref().map(|m| motion_matches(m, o));
    let player = claim.player.then_some(o.keyboard);
    let parts: Vec<bool> = [shape, color, motion, player]
        .into_iter()
        .flatten()
        .collect();
    let score = if parts.is_empty() {
        1.0
    } else {
        parts.iter().filter(|p| **p).count() as f64 / parts.len() as f64
    };
    ObjectCheck {
        expected: describe_claim(claim),
        depth: Some(o.depth),
        found: describe_found(o),
        score,
        shape,
        color,
        motion,
        player,
    }
}

fn check(attribute: &str, expected: String, found: String, ok: bool) -> ClaimCheck {
    ClaimCheck {
        attribute: attribute.into(),
        expected,
        found,
        score: if ok { 1.0 } else { 0.0 },
    }
}

/// Score `facts` against `claims`.
pub fn score(facts: &Facts, claims: &Claims) -> Adherence {
    let mut checks = Vec::new();
    if let Some((w, h)) = claims.resolution {
        let ok =
            (facts.width - f64::from(w)).abs() < 1.0 && (facts.height - f64::from(h)).abs() < 1.0;
        checks.push(check(
            "resolution",
            format!("{w}x{h}"),
            format!("{}x{}", facts.width, facts.height),
            ok,
        ));
    }
    if let Some(r) = claims.frame_rate {
        let ok = (facts.frame_rate - r).abs() <= 0.5;
        checks.push(check(
            "frame_rate",
            format!("{r}"),
            format!("{}", facts.frame_rate),
            ok,
        ));
    }
    if let Some(n) = claims.frames {
        checks.push(check(
            "frames",
            n.to_string(),
            format!("{} (shown {})", facts.frames, facts.shown_frames),
            facts.frames == n,
        ));
    }
    if let Some(bg) = &claims.background {
        let found = facts.background;
        checks.push(check(
            "background",
            bg.name.clone(),
            found.map_or("none".into(), |c| {
                format!("{} ({})", nearest_name(c), hex(c))
            }),
            found.is_some_and(|c| color_matches(bg, c)),
        ));
    }
    if let Some(i) = claims.interactive {
        let what = |b: bool| if b { "interactive" } else { "not interactive" }.to_string();
        checks.push(check(
            "interactive",
            what(i),
            what(facts.interactive()),
            facts.interactive() == i,
        ));
    }
    let objects = pair_objects(&claims.objects, &facts.objects);
    let paired = objects.iter().filter(|o| o.depth.is_some()).count();
    let mut parts: Vec<f64> = checks.iter().map(|c| c.score).collect();
    if !objects.is_empty() {
        parts.push(objects.iter().map(|o| o.score).sum::<f64>() / objects.len() as f64);
    }
    Adherence {
        score: (!parts.is_empty()).then(|| parts.iter().sum::<f64>() / parts.len() as f64),
        checks,
        unclaimed_objects: facts.objects.len().saturating_sub(paired),
        objects,
    }
}

/// Best-first pairing of claimed objects with file objects (text and shapes the file only
/// uses inside others are candidates too: a prompt may name them).
fn pair_objects(claims: &[ObjectClaim], found: &[ObjectFacts]) -> Vec<ObjectCheck> {
    let mut table: Vec<(usize, usize, ObjectCheck)> = Vec::new();
    for (i, c) in claims.iter().enumerate() {
        for (j, o) in found.iter().enumerate() {
            table.push((i, j, check_object(c, o)));
        }
    }
    // Highest score first; ties go to the earlier claim and the earlier object.
    table.sort_by(|a, b| {
        b.2.score
            .total_cmp(&a.2.score)
            .then((a.0, a.1).cmp(&(b.0, b.1)))
    });
    let mut out: Vec<Option<ObjectCheck>> = vec![None; claims.len()];
    let mut used = vec![false; found.len()];
    for (i, j, c) in table {
        if out[i].is_none() && !used[j] && c.score > 0.0 {
            used[j] = true;
            out[i] = Some(c);
        }
    }
    out.into_iter()
        .zip(claims)
        .map(|(c, claim)| {
            c.unwrap_or_else(|| ObjectCheck {
                expected: describe_claim(claim),
                depth: None,
                found: "nothing".into(),
                score: 0.0,
                shape: None,
                color: None,
                motion: None,
                player: None,
            })
        })
        .collect()
}
