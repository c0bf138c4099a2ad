//! What a SWF shows, read back out of its tags: the facts a prompt can state about it.
//!
//! Works on any file, not only ours: shapes are recognised from their edge records, objects are
//! the instances of the main timeline's display list (a sprite stands for the shape it wraps),
//! and motion comes from how each instance's matrix and colour transform change from frame to
//! frame. Scripted motion (AVM1/AVM2 moving things at run time) is invisible here; input
//! handlers are not, so such files still report that they are interactive.
//!
//! Bounded on hostile input: at most [`MAX_FRAMES`] frames are followed and [`MAX_OBJECTS`]
//! instances kept, and nothing is allocated from a count the file claims. A sprite that wraps
//! another sprite resolves through the character table (sprites cannot define sprites), so
//! there is no recursion to bound.

use super::super::header;
use super::super::structure::frame;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use swf::{
    ClipActions, ClipEventFlag, ColorTransform, FillStyle, Matrix, PlaceObjectAction, ShapeRecord,
    Tag,
};

/// Frames of the main timeline that are followed; motion is judged on these.
pub const MAX_FRAMES: u32 = 2_000;
/// Display-list instances kept (the first ones placed).
pub const MAX_OBJECTS: usize = 256;
/// Largest decompressed body read (as the validator's default).
const MAX_BODY: usize = 64 << 20;

/// A shape as a person would name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ShapeGuess {
    Rectangle,
    Ellipse,
    Polygon {
        sides: u8,
    },
    Star {
        points: u8,
    },
    Text,
    /// Anything else: several outlines, mixed edges, bitmaps, morphs, buttons.
    Other,
}

/// How an instance changes over the frames it is on stage (several at once are possible).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MotionFacts {
    /// Median step in pixels per frame, over the steps that are not jumps (wrap-arounds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub velocity: Option<(f64, f64)>,
    /// The horizontal or vertical step reversed without a jump: reflected at an edge.
    pub bounces: bool,
    /// Steps far longer than the usual one: the object left one edge and came back at the other.
    pub wraps: bool,
    /// Median rotation per frame in degrees, positive = clockwise on screen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<f64>,
    /// Smallest and largest scale seen, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<(f64, f64)>,
    /// The colour a changing colour transform blends towards (`add / (1 - multiply)` at the
    /// strongest blend seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tint_to: Option<[u8; 3]>,
}

impl MotionFacts {
    pub fn is_still(&self) -> bool {
        self.velocity.is_none()
            && self.rotation.is_none()
            && self.scale.is_none()
            && self.tint_to.is_none()
    }
}

/// One instance on the main timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectFacts {
    pub character: u16,
    pub depth: u16,
    pub shape: ShapeGuess,
    /// Colour of the first fill (a gradient's first stop); `None` for bitmaps and unknowns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<[u8; 3]>,
    /// Size of the shape's bounds in pixels (before the instance's matrix).
    pub width: f64,
    pub height: f64,
    /// Position (pixels) on the first frame it is shown.
    pub x: f64,
    pub y: f64,
    pub first_frame: u32,
    pub frames_shown: u32,
    pub motion: MotionFacts,
    /// Its clip actions read the keyboard: a player-controlled object.
    pub keyboard: bool,
}

/// Everything [`extract`] reads out of one file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub width: f64,
    pub height: f64,
    pub frame_rate: f64,
    /// The header's frame count.
    pub frames: u32,
    /// ShowFrame tags seen on the main timeline.
    pub shown_frames: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<[u8; 3]>,
    pub objects: Vec<ObjectFacts>,
    /// Scripts or clip events read keys.
    pub keyboard: bool,
    /// Scripts, clip events or buttons react to the mouse.
    pub mouse: bool,
    /// Text fields or static text are defined.
    pub text: bool,
    /// The file carries ActionScript 3 (DoABC).
    pub as3: bool,
}

impl Facts {
    pub fn interactive(&self) -> bool {
        self.keyboard || self.mouse
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExtractError(String);

/// Read the facts of one file. Fails only when the header does not parse (the file is "fully
/// broken"); a damaged tag stream yields what was read before the damage.
pub fn extract(bytes: &[u8]) -> Result<Facts, ExtractError> {
    let parsed = header::parse(bytes, MAX_BODY).map_err(|e| ExtractError(e.to_string()))?;
    let data: &[u8] = &parsed.body.data;
    let [x0, x1, y0, y1] = parsed.stage;
    let mut facts = Facts {
        width: f64::from(x1.saturating_sub(x0)) / 20.0,
        height: f64::from(y1.saturating_sub(y0)) / 20.0,
        frame_rate: parsed.frame_rate(),
        frames: u32::from(parsed.num_frames),
        ..Facts::default()
    };
    let mut walk = Walk {
        version: parsed.version,
        characters: HashMap::new(),
        live: BTreeMap::new(),
        done: Vec::new(),
        frame: 0,
        facts: &mut facts,
    };
    walk.stream(data.get(parsed.tags_offset..).unwrap_or_default());
    let Walk { live, mut done, .. } = walk;
    done.extend(live.into_values());
    done.sort_by_key(|t| (t.first_frame, t.depth));
    facts.objects = done
        .into_iter()
        .take(MAX_OBJECTS)
        .map(Track::into_facts)
        .collect();
    Ok(facts)
}

/// What a character id stands for.
#[derive(Clone, Debug)]
struct Character {
    shape: ShapeGuess,
    color: Option<[u8; 3]>,
    width: f64,
    height: f64,
}

/// One instance being followed: its samples, one per frame shown.
struct Track {
    character: u16,
    depth: u16,
    kind: Character,
    first_frame: u32,
    matrix: Matrix,
    color: Option<ColorTransform>,
    samples: Vec<(Matrix, Option<ColorTransform>)>,
    keyboard: bool,
}

struct Walk<'f> {
    version: u8,
    characters: HashMap<u16, Character>,
    live: BTreeMap<u16, Track>,
    done: Vec<Track>,
    frame: u32,
    facts: &'f mut Facts,
}

impl Walk<'_> {
    fn stream(&mut self, mut rest: &[u8]) {
        while let Some((code, hdr, len)) = frame(rest) {
            if len > rest.len() - hdr {
                return;
            }
            let whole = &rest[..hdr + len];
            rest = &rest[hdr + len..];
            match code {
                0 => return,
                1 => {
                    self.show_frame();
                    if self.frame >= MAX_FRAMES {
                        return;
                    }
                    continue;
                }
                _ => {}
            }
            if let Ok(tag) = swf::read::Reader::new(whole, self.version).read_tag() {
                self.visit(tag);
            }
        }
    }

    fn show_frame(&mut self) {
        self.facts.shown_frames += 1;
        self.frame += 1;
        for t in self.live.values_mut() {
            t.samples.push((t.matrix, t.color));
        }
    }

    fn visit(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::SetBackgroundColor(c) => {
                self.facts.background.get_or_insert([c.r, c.g, c.b]);
            }
            Tag::DefineShape(s) => {
                let (shape, color) = (guess_shape(&s.shape), first_color(&s.styles.fill_styles));
                let b = s.shape_bounds;
                self.define(
                    s.id,
                    Character {
                        shape,
                        color,
                        width: f64::from(b.x_max.get().saturating_sub(b.x_min.get())) / 20.0,
                        height: f64::from(b.y_max.get().saturating_sub(b.y_min.get())) / 20.0,
                    },
                );
            }
            Tag::DefineSprite(sprite) => {
                let inner = self.sprite_character(&sprite.tags);
                self.scan_sprite_scripts(&sprite.tags);
                let c = inner.unwrap_or(Character {
                    shape: ShapeGuess::Other,
                    color: None,
                    width: 0.0,
                    height: 0.0,
                });
                self.define(sprite.id, c);
            }
            Tag::DefineText(t) | Tag::DefineText2(t) => {
                self.facts.text = true;
                let color = t
                    .records
                    .iter()
                    .find_map(|r| r.color)
                    .map(|c| [c.r, c.g, c.b]);
                self.define(t.id, text_character(color));
            }
            Tag::DefineEditText(t) => {
                self.facts.text = true;
                let color = t.color().map(|c| [c.r, c.g, c.b]);
                self.define(t.id(), text_character(color));
            }
            Tag::DefineButton(b) | Tag::DefineButton2(b) => {
                self.facts.mouse = true;
                for a in &b.actions {
                    self.scan_script(a.action_data);
                }
                self.define(b.id, other_character());
            }
            Tag::DefineMorphShape(m) => self.define(m.id, other_character()),
            Tag::DoAction(data) => {
                self.scan_script(data);
            }
            Tag::DoInitAction { action_data, .. } => {
                self.scan_script(action_data);
            }
            Tag::DoAbc(data) => self.scan_abc(data),
            Tag::DoAbc2(abc) => self.scan_abc(abc.data),
            Tag::PlaceObject(p) => {
                let keyboard = p
                    .clip_actions
                    .as_ref()
                    .is_some_and(|c| self.scan_clip_actions(c));
                self.place(p.depth, p.action, p.matrix, p.color_transform, keyboard);
            }
            Tag::RemoveObject(r) => {
                if let Some(t) = self.live.remove(&r.depth) {
                    self.retire(t);
                }
            }
            _ => {}
        }
    }

    fn define(&mut self, id: u16, c: Character) {
        self.characters.entry(id).or_insert(c);
    }

    fn place(
        &mut self,
        depth: u16,
        action: PlaceObjectAction,
        matrix: Option<Matrix>,
        color: Option<ColorTransform>,
        keyboard: bool,
    ) {
        let new_character = match action {
            PlaceObjectAction::Place(id) => Some(id),
            PlaceObjectAction::Replace(id) => Some(id),
            PlaceObjectAction::Modify | PlaceObjectAction::None => None,
        };
        if let Some(id) = new_character {
            let carried = self.live.remove(&depth);
            // Replace keeps the instance's matrix and colour unless new ones are given.
            let (m0, c0) = match (&action, &carried) {
                (PlaceObjectAction::Replace(_), Some(t)) => (t.matrix, t.color),
                _ => (Matrix::IDENTITY, None),
            };
            if let Some(t) = carried {
                self.retire(t);
            }
            if self.done.len() + self.live.len() >= MAX_OBJECTS {
                return;
            }
            let kind = self
                .characters
                .get(&id)
                .cloned()
                .unwrap_or_else(other_character);
            self.live.insert(
                depth,
                Track {
                    character: id,
                    depth,
                    kind,
                    first_frame: self.frame,
                    matrix: matrix.unwrap_or(m0),
                    color: color.or(c0),
                    samples: Vec::new(),
                    keyboard,
                },
            );
        } else if let Some(t) = self.live.get_mut(&depth) {
            if let Some(m) = matrix {
                t.matrix = m;
            }
            if color.is_some() {
                t.color = color;
            }
            t.keyboard |= keyboard;
        }
    }

    fn retire(&mut self, t: Track) {
        if self.done.len() < MAX_OBJECTS {
            self.done.push(t);
        }
    }

    /// The character a sprite shows: the first thing its first frame places.
    fn sprite_character(&self, tags: &[Tag<'_>]) -> Option<Character> {
        for tag in tags {
            match tag {
                Tag::PlaceObject(p) => {
                    if let PlaceObjectAction::Place(id) | PlaceObjectAction::Replace(id) = p.action
                    {
                        return self.characters.get(&id).cloned();
                    }
                }
                Tag::ShowFrame => return None,
                _ => {}
            }
        }
        None
    }

    fn scan_sprite_scripts(&mut self, tags: &[Tag<'_>]) {
        for tag in tags {
            match tag {
                Tag::DoAction(data) => {
                    self.scan_script(data);
                }
                Tag::PlaceObject(p) => {
                    if let Some(c) = &p.clip_actions {
                        self.scan_clip_actions(c);
                    }
                }
                _ => {}
            }
        }
    }

    /// Record what clip events listen to; true when they read the keyboard.
    fn scan_clip_actions(&mut self, c: &ClipActions<'_>) -> bool {
        let mut keyboard = c
            .all_event_flags
            .intersects(ClipEventFlag::KEY_DOWN | ClipEventFlag::KEY_UP | ClipEventFlag::KEY_PRESS);
        let mouse = ClipEventFlag::MOUSE_DOWN
            | ClipEventFlag::MOUSE_UP
            | ClipEventFlag::MOUSE_MOVE
            | ClipEventFlag::PRESS
            | ClipEventFlag::RELEASE
            | ClipEventFlag::RELEASE_OUTSIDE
            | ClipEventFlag::ROLL_OVER
            | ClipEventFlag::ROLL_OUT
            | ClipEventFlag::DRAG_OVER
            | ClipEventFlag::DRAG_OUT;
        if c.all_event_flags.intersects(mouse) {
            self.facts.mouse = true;
        }
        for r in &c.records {
            keyboard |= self.scan_script(r.action_data);
        }
        self.facts.keyboard |= keyboard;
        keyboard
    }

    /// AVM1 bytecode: names of the key and mouse APIs appear as pushed strings or in the
    /// constant pool, so a byte search finds them without decoding. True when it reads keys.
    fn scan_script(&mut self, data: &[u8]) -> bool {
        const KEYS: &[&[u8]] = &[b"isDown", b"onKeyDown", b"onKeyUp", b"getCode", b"getAscii"];
        const MOUSE: &[&[u8]] = &[
            b"onPress",
            b"onRelease",
            b"onMouseDown",
            b"onMouseUp",
            b"onMouseMove",
            b"startDrag",
        ];
        let keyboard = KEYS.iter().any(|k| contains(data, k));
        if MOUSE.iter().any(|k| contains(data, k)) {
            self.facts.mouse = true;
        }
        self.facts.keyboard |= keyboard;
        keyboard
    }

    fn scan_abc(&mut self, data: &[u8]) {
        self.facts.as3 = true;
        if contains(data, b"KeyboardEvent") {
            self.facts.keyboard = true;
        }
        if contains(data, b"MouseEvent") {
            self.facts.mouse = true;
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn text_character(color: Option<[u8; 3]>) -> Character {
    Character {
        shape: ShapeGuess::Text,
        color,
        width: 0.0,
        height: 0.0,
    }
}

fn other_character() -> Character {
    Character {
        shape: ShapeGuess::Other,
        color: None,
        width: 0.0,
        height: 0.0,
    }
}

fn first_color(fills: &[FillStyle]) -> Option<[u8; 3]> {
    let c = match fills.first()? {
        FillStyle::Color(c) => *c,
        FillStyle::LinearGradient(g) | FillStyle::RadialGradient(g) => g.records.first()?.color,
        FillStyle::FocalGradient { gradient, .. } => gradient.records.first()?.color,
        FillStyle::Bitmap { .. } => return None,
    };
    Some([c.r, c.g, c.b])
}

/// Name a shape from its first outline: only straight edges make a rectangle (four, axis
/// aligned), a star (an even number whose corners alternate between two radii) or a polygon;
/// only curves (at least four) make an ellipse.
pub fn guess_shape(records: &[ShapeRecord]) -> ShapeGuess {
    let mut pen = (0i64, 0i64);
    let mut corners: Vec<(i64, i64)> = Vec::new();
    let (mut straight, mut curved, mut axis_aligned) = (0usize, 0usize, 0usize);
    let mut started = false;
    for r in records {
        match r {
            ShapeRecord::StyleChange(s) => {
                if let Some(p) = s.move_to {
                    if started {
                        break; // a second outline: judge the first one only
                    }
                    pen = (i64::from(p.x.get()), i64::from(p.y.get()));
                }
            }
            ShapeRecord::StraightEdge { delta } => {
                started = true;
                straight += 1;
                if delta.dx.get() == 0 || delta.dy.get() == 0 {
                    axis_aligned += 1;
                }
                corners.push(pen);
                pen.0 += i64::from(delta.dx.get());
                pen.1 += i64::from(delta.dy.get());
            }
            ShapeRecord::CurvedEdge {
                control_delta,
                anchor_delta,
            } => {
                started = true;
                curved += 1;
                pen.0 += i64::from(control_delta.dx.get()) + i64::from(anchor_delta.dx.get());
                pen.1 += i64::from(control_delta.dy.get()) + i64::from(anchor_delta.dy.get());
            }
        }
    }
    match (straight, curved) {
        (0, c) if c >= 4 => ShapeGuess::Ellipse,
        (4, 0) if axis_aligned == 4 => ShapeGuess::Rectangle,
        (n, 0) if (3..=64).contains(&n) => {
            if n >= 8 && n % 2 == 0 && alternating_radii(&corners) {
                ShapeGuess::Star {
                    points: (n / 2) as u8,
                }
            } else {
                ShapeGuess::Polygon { sides: n as u8 }
            }
        }
        _ => ShapeGuess::Other,
    }
}

/// Corners alternate between an outer and an inner circle around their centroid.
fn alternating_radii(corners: &[(i64, i64)]) -> bool {
    let n = corners.len() as f64;
    let cx = corners.iter().map(|c| c.0 as f64).sum::<f64>() / n;
    let cy = corners.iter().map(|c| c.1 as f64).sum::<f64>() / n;
    let r: Vec<f64> = corners
        .iter()
        .map(|c| (c.0 as f64 - cx).hypot(c.1 as f64 - cy))
        .collect();
    let even: Vec<f64> = r.iter().step_by(2).copied().collect();
    let odd: Vec<f64> = r.iter().skip(1).step_by(2).copied().collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    min(&even) > 1.2 * max(&odd) || min(&odd) > 1.2 * max(&even)
}

impl Track {
    fn into_facts(self) -> ObjectFacts {
        let first = self.samples.first().map_or(self.matrix, |s| s.0);
        ObjectFacts {
            character: self.character,
            depth: self.depth,
            shape: self.kind.shape,
            color: self.kind.color,
            width: self.kind.width,
            height: self.kind.height,
            x: f64::from(first.tx.get()) / 20.0,
            y: f64::from(first.ty.get()) / 20.0,
            first_frame: self.first_frame,
            frames_shown: self.samples.len() as u32,
            motion: motion(&self.samples),
            keyboard: self.keyboard,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Judge motion from one sample per frame.
pub fn motion(samples: &[(Matrix, Option<ColorTransform>)]) -> MotionFacts {
    let mut m = MotionFacts::default();
    if samples.len() < 2 {
        return m;
    }
    let pos: Vec<(f64, f64)> = samples
        .iter()
        .map(|(x, _)| (f64::from(x.tx.get()) / 20.0, f64::from(x.ty.get()) / 20.0))
        .collect();
    let steps: Vec<(f64, f64)> = pos
        .windows(2)
        .map(|w| (w[1].0 - w[0].0, w[1].1 - w[0].1))
        .collect();
    let lengths: Vec<f64> = steps.iter().map(|s| s.0.hypot(s.1)).collect();
    let typical = median(lengths.iter().copied().filter(|l| *l > 0.05).collect());
    if typical > 0.0 {
        // A jump: far longer than the usual step (and more than a few pixels).
        let jump = (4.0 * typical).max(8.0);
        let walking: Vec<(f64, f64)> = steps
            .iter()
            .zip(&lengths)
            .filter(|(_, l)| **l <= jump)
            .map(|(s, _)| *s)
            .collect();
        m.wraps = lengths.iter().any(|l| *l > jump);
        let moved: f64 = walking.iter().map(|s| s.0.hypot(s.1)).sum();
        if moved >= 1.0 {
            let vx = median(walking.iter().map(|s| s.0).collect());
            let vy = median(walking.iter().map(|s| s.1).collect());
            m.velocity = Some((vx, vy));
            let flips = |axis: fn(&(f64, f64)) -> f64| {
                let signs: Vec<f64> = walking
                    .iter()
                    .map(axis)
                    .filter(|d| d.abs() > 0.05)
                    .map(f64::signum)
                    .collect();
                signs.windows(2).any(|w| w[0] != w[1])
            };
            m.bounces = flips(|s| s.0) || flips(|s| s.1);
        } else {
            m.wraps = false;
        }
    }
    let angle = |x: &Matrix| x.b.to_f64().atan2(x.a.to_f64()).to_degrees();
    let turns: Vec<f64> = samples
        .windows(2)
        .map(|w| {
            let d = angle(&w[1].0) - angle(&w[0].0);
            (d + 180.0).rem_euclid(360.0) - 180.0
        })
        .collect();
    let turned: f64 = turns.iter().map(|d| d.abs()).sum();
    if turned >= 5.0 {
        m.rotation = Some(median(turns));
    }
    let scales: Vec<f64> = samples
        .iter()
        .map(|(x, _)| x.a.to_f64().hypot(x.b.to_f64()))
        .collect();
    let lo = scales.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = scales.iter().copied().fold(0.0, f64::max);
    if hi - lo > 0.05 {
        m.scale = Some((lo, hi));
    }
    // Colour: the sample that blends furthest from the object's own colour.
    let blend = |c: &Option<ColorTransform>| c.map_or(0.0, |c| 1.0 - c.r_multiply.to_f64());
    let blends: Vec<f64> = samples.iter().map(|(_, c)| blend(c)).collect();
    let (bmin, bmax) = blends
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if bmax - bmin > 0.05 && bmax > 0.05 {
        let strongest = samples
            .iter()
            .max_by(|a, b| blend(&a.1).total_cmp(&blend(&b.1)))
            .and_then(|s| s.1);
        if let Some(c) = strongest {
            let f = 1.0 - c.r_multiply.to_f64();
            let to = |add: i16| (f64::from(add) / f).round().clamp(0.0, 255.0) as u8;
            m.tint_to = Some([to(c.r_add), to(c.g_add), to(c.b_add)]);
        }
    }
    m
}
