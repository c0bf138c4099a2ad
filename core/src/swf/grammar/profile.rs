//! The tag and field rules of the profile our synthetic training data uses
//! ([`crate::swf::synth::build`]): an uncompressed version-10 file of FileAttributes,
//! SetBackgroundColor, DefineShape3 (solid and gradient fills, straight and curved edges),
//! DefineSprite (PlaceObject2 and ShowFrame inside), PlaceObject2 (matrix, colour transform,
//! enterFrame clip actions with AVM1 code), ShowFrame and End.
//!
//! The rules are a stack of frames, one per structure being read (the file, a tag list, a tag,
//! a RECT, a MATRIX, ...). [`Profile::next`] names the field the next bits belong to, with the
//! values it may take; [`Profile::take`] records the value read. Fields whose value is fully
//! determined (signature, version, reserved bits, character ids, padding) get a one-value rule;
//! length fields are free, since the grammar follows the content and the lengths are patched
//! when the file is finished ([`super::patch`]).
//!
//! The profile also tracks what is on stage, so that the End tag is allowed only once a visible
//! shape (a filled outline at least a pixel each way, with some opacity) has been placed on
//! stage at the top level and a ShowFrame has shown it.

use super::bits::{Field, Partial, Rule, signed_span};
use super::stage::{Box4, Matrix, on_stage, opaque_enough};

/// The SWF version of the profile (the synthetic files').
pub const VERSION: u8 = crate::swf::synth::build::SWF_VERSION;
/// Character ids are given in order from 1; the profile stops defining at this one.
pub const MAX_ID: u16 = 63;
/// Depths used by placements: 1..=255.
const MAX_DEPTH: i64 = 255;
/// The smallest stage accepted, in twips each way: a pixel, the least a visible shape needs.
const MIN_STAGE: i64 = 20;
/// Frames nest at most this deep (file, sprite, its tag list, a tag, its parts).
const STACK: usize = 12;

pub const END: u16 = 0;
pub const SHOW_FRAME: u16 = 1;
pub const SET_BACKGROUND_COLOR: u16 = 9;
pub const PLACE_OBJECT2: u16 = 26;
pub const DEFINE_SHAPE3: u16 = 32;
pub const DEFINE_SPRITE: u16 = 39;
pub const FILE_ATTRIBUTES: u16 = 69;

/// ClipEventFlag enterFrame as written (the first byte of the 32-bit flags).
const ENTER_FRAME: u8 = 0x02;
/// AVM1 actions of the profile: End, Not, GetVariable, GetProperty, SetProperty, Add2, Less2,
/// CallMethod, Greater, Push, If.
const ACTIONS: [u8; 11] = [
    0x00, 0x12, 0x1c, 0x22, 0x23, 0x47, 0x48, 0x52, 0x67, 0x96, 0x9d,
];
const PUSH: u8 = 0x96;
const IF: u8 = 0x9d;

/// What the walker should read next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Field(Field),
    /// The file is finished.
    Done,
}

/// Where things are, for the patcher (byte offsets into the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The header's frame count field.
    FrameCount(usize),
    TagStart(usize),
    BodyStart(usize),
    TagEnd(usize),
    /// A clip action record's 32-bit size field; its actions follow it up to `ClipEnd`.
    ClipSize(usize),
    ClipEnd(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Header,
    Rect { stage: bool },
    Tags { sprite: bool },
    FileAttributes,
    Background,
    Shape,
    Fill,
    LineStyle,
    Records,
    Sprite,
    Place { sprite: bool },
    Matrix { place: bool },
    ColorTransform,
    Clip,
    Actions,
    Push,
}

/// One structure being read: its kind, the step within it, a counter and scratch registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    kind: Kind,
    step: u8,
    n: i64,
    r: [i64; 8],
}

impl Frame {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            step: 0,
            n: 0,
            r: [0; 8],
        }
    }
}

/// What is known about the shape being defined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ShapeScratch {
    id: u16,
    fills: i64,
    lines: i64,
    fill_bits: u8,
    line_bits: u8,
    /// Fill styles (1-based, first 64) with some opacity.
    visible_fills: u64,
    fill0: i64,
    fill1: i64,
    pen: (i64, i64),
    /// Box of the points drawn while a visible fill was selected.
    drawn: Option<Box4>,
    /// Edges drawn by the closing path (see [`Profile::prefer`]).
    edges: u8,
}

impl ShapeScratch {
    fn fill_visible(&self, i: i64) -> bool {
        (1..=64).contains(&i) && self.visible_fills >> (i - 1) & 1 == 1
    }

    fn selected_visible(&self) -> bool {
        self.fill_visible(self.fill0) || self.fill_visible(self.fill1)
    }

    fn draw_to(&mut self, x: i64, y: i64) {
        if self.selected_visible() {
            let (px, py) = self.pen;
            let b = self.drawn.get_or_insert([px, px, py, py]);
            b[0] = b[0].min(x);
            b[1] = b[1].max(x);
            b[2] = b[2].min(y);
            b[3] = b[3].max(y);
        }
    }

    fn is_visible(&self) -> bool {
        self.drawn
            .is_some_and(|b| b[1] - b[0] >= MIN_STAGE && b[3] - b[2] >= MIN_STAGE)
    }
}

/// The placement being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PlaceScratch {
    flags: u8,
    depth: i64,
    id: i64,
    matrix: Option<Matrix>,
    alpha: Option<bool>,
}

const HAS_CLIP_ACTIONS: u8 = 0x80;
const HAS_COLOR_TRANSFORM: u8 = 0x08;
const HAS_MATRIX: u8 = 0x04;
const HAS_CHARACTER: u8 = 0x02;

type Depths = [u64; 4];

fn depth_has(d: &Depths, i: i64) -> bool {
    (0..256).contains(&i) && d[(i / 64) as usize] >> (i % 64) & 1 == 1
}

fn depth_set(d: &mut Depths, i: i64, on: bool) {
    if (0..256).contains(&i) {
        let bit = 1u64 << (i % 64);
        if on {
            d[(i / 64) as usize] |= bit;
        } else {
            d[(i / 64) as usize] &= !bit;
        }
    }
}

/// The rules' state. Plain data (no heap), so trying a candidate is a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    stack: [Frame; STACK],
    len: usize,
    stage: Box4,
    next_id: u16,
    shapes: u64,
    sprites: u64,
    visible_shapes: u64,
    drawn: [[i32; 4]; 64],
    /// Top-level depths in use, the character at each, and which of them show on stage.
    depths: Depths,
    depth_char: [u8; 256],
    on_stage: Depths,
    opaque: Depths,
    /// Depths in use inside the sprite being defined.
    sprite_depths: Depths,
    background_set: bool,
    /// A ShowFrame has shown a visible shape on stage: End may come.
    shown_visible: bool,
    shape: ShapeScratch,
    place: PlaceScratch,
    /// Set on copies that compute the closing path: [`Profile::prefer`] then steers choices.
    pub closing: bool,
}

impl Default for Profile {
    fn default() -> Self {
        let mut stack = [Frame::new(Kind::Header); STACK];
        stack[0] = Frame::new(Kind::Header);
        Self {
            stack,
            len: 1,
            stage: [0; 4],
            next_id: 1,
            shapes: 0,
            sprites: 0,
            visible_shapes: 0,
            drawn: [[0; 4]; 64],
            depths: [0; 4],
            depth_char: [0; 256],
            on_stage: [0; 4],
            opaque: [0; 4],
            sprite_depths: [0; 4],
            background_set: false,
            shown_visible: false,
            shape: ShapeScratch::default(),
            place: PlaceScratch {
                flags: 0,
                depth: 0,
                id: 0,
                matrix: None,
                alpha: None,
            },
            closing: false,
        }
    }
}

fn exact(v: i64) -> Rule {
    Rule::Range(v, v)
}

fn byte(v: u8) -> Field {
    Field::le(1, i64::from(v), i64::from(v))
}

fn flag(allowed: bool) -> Field {
    Field::ubits(1, 0, i64::from(allowed))
}

fn id_bit(id: i64) -> u64 {
    if (1..=64).contains(&id) {
        1u64 << (id - 1)
    } else {
        0
    }
}

impl Profile {
    fn top(&mut self) -> &mut Frame {
        &mut self.stack[self.len - 1]
    }

    fn push_frame(&mut self, kind: Kind) {
        // The profile never nests deeper than STACK; a deeper push is a bug in these rules.
        assert!(self.len < STACK, "grammar stack overflow");
        self.stack[self.len] = Frame::new(kind);
        self.len += 1;
    }

    fn pop(&mut self) -> Frame {
        self.len -= 1;
        self.stack[self.len]
    }

    pub fn is_done(&self) -> bool {
        self.len == 0
    }

    fn in_sprite(&self) -> bool {
        self.stack[..self.len]
            .iter()
            .any(|f| matches!(f.kind, Kind::Sprite))
    }

    /// Any top-level depth whose object shows on stage right now.
    fn visible_now(&self) -> bool {
        (0..4).any(|i| self.depths[i] & self.on_stage[i] & self.opaque[i] != 0)
    }

    fn placeable(&self, sprite: bool) -> u64 {
        if sprite {
            self.shapes
        } else {
            self.shapes | self.sprites
        }
    }

    fn used_depths(&self, sprite: bool) -> &Depths {
        if sprite {
            &self.sprite_depths
        } else {
            &self.depths
        }
    }

    fn free_depth_exists(&self, sprite: bool) -> bool {
        let d = self.used_depths(sprite);
        (1..=MAX_DEPTH).any(|i| !depth_has(d, i))
    }

    /// Tag codes allowed at the start of a tag in the current list.
    fn allowed_codes(&self, sprite: bool, first: bool) -> Vec<u16> {
        if first && !sprite {
            return vec![FILE_ATTRIBUTES];
        }
        let mut out = vec![SHOW_FRAME];
        let can_place = self.placeable(sprite) != 0 && self.free_depth_exists(sprite);
        let can_modify = self.used_depths(sprite).iter().any(|&w| w != 0);
        if can_place || can_modify {
            out.push(PLACE_OBJECT2);
        }
        if sprite {
            out.push(END);
            return out;
        }
        if self.next_id <= MAX_ID {
            out.push(DEFINE_SHAPE3);
            out.push(DEFINE_SPRITE);
        }
        if !self.background_set {
            out.push(SET_BACKGROUND_COLOR);
        }
        if self.shown_visible {
            out.push(END);
        }
        out
    }

    /// The field the next bits belong to. `bit` is the position within the current byte (0 when
    /// aligned).
    pub fn next(&mut self, bit: u8) -> Next {
        loop {
            if self.len == 0 {
                return Next::Done;
            }
            let f = *self.top();
            let field = match f.kind {
                Kind::Header => match f.step {
                    0 => byte(b'F'),
                    1 => byte(b'W'),
                    2 => byte(b'S'),
                    3 => byte(VERSION),
                    4 => Field::le(4, 0, i64::from(u32::MAX)),
                    5 => {
                        self.top().step = 6;
                        self.push_frame(Kind::Rect { stage: true });
                        continue;
                    }
                    6 => Field::le(2, 0x0100, 0x7800),
                    7 => Field::le(2, 0, 0xffff),
                    _ => {
                        self.pop();
                        self.push_frame(Kind::Tags { sprite: false });
                        continue;
                    }
                },
                Kind::Rect { stage } => {
                    let gap = if stage { MIN_STAGE } else { 0 };
                    let (lo, hi) = signed_span(f.n as u8);
                    match f.step {
                        0 => {
                            let least = if stage { 6 } else { 0 };
                            Field::ubits(5, least, 31)
                        }
                        1 | 3 => Field {
                            rule: Rule::Range(lo, hi - gap),
                            ..Field::sbits(f.n as u8)
                        },
                        2 | 4 => Field {
                            rule: Rule::Range(f.r[f.step as usize - 2] + gap, hi),
                            ..Field::sbits(f.n as u8)
                        },
                        _ => Field::padding(bit),
                    }
                }
                Kind::Tags { sprite } => match f.step {
                    0 => {
                        let codes = self.allowed_codes(sprite, f.n == 0);
                        let mut set = Vec::new();
                        for c in codes {
                            for len in 0..64u8 {
                                set.push((((c & 3) as u8) << 6) | len);
                            }
                        }
                        Field::byte_in(&set)
                    }
                    1 => {
                        let low = (f.r[0] >> 6) as u16;
                        let set: Vec<u8> = self
                            .allowed_codes(sprite, f.n == 0)
                            .into_iter()
                            .filter(|c| c & 3 == low)
                            .map(|c| (c >> 2) as u8)
                            .collect();
                        Field::byte_in(&set)
                    }
                    2 => Field::le(4, 0, i64::from(u32::MAX)),
                    3 => {
                        let code = f.r[1] as u16;
                        self.top().step = 4;
                        match code {
                            FILE_ATTRIBUTES => self.push_frame(Kind::FileAttributes),
                            SET_BACKGROUND_COLOR => self.push_frame(Kind::Background),
                            DEFINE_SHAPE3 => {
                                self.shape = ShapeScratch::default();
                                self.push_frame(Kind::Shape);
                            }
                            DEFINE_SPRITE => self.push_frame(Kind::Sprite),
                            PLACE_OBJECT2 => {
                                self.place = PlaceScratch {
                                    flags: 0,
                                    depth: 0,
                                    id: 0,
                                    matrix: None,
                                    alpha: None,
                                };
                                self.push_frame(Kind::Place { sprite });
                            }
                            SHOW_FRAME if !sprite && self.visible_now() => {
                                self.shown_visible = true;
                            }
                            _ => {}
                        }
                        continue;
                    }
                    // A zero-width field marks the tag's end, so that `take` records where.
                    _ => Field::ubits(0, 0, 0),
                },
                Kind::FileAttributes => match f.step {
                    0 => Field::le_rule(4, exact(0)),
                    _ => {
                        self.pop();
                        continue;
                    }
                },
                Kind::Background => match f.step {
                    0..=2 => Field::le(1, 0, 255),
                    _ => {
                        self.background_set = true;
                        self.pop();
                        continue;
                    }
                },
                Kind::Shape => match f.step {
                    0 => Field::le_rule(2, exact(i64::from(self.next_id))),
                    1 => {
                        self.top().step = 2;
                        self.push_frame(Kind::Rect { stage: false });
                        continue;
                    }
                    2 => Field::le(1, 0, 254),
                    3 => {
                        if f.n > 0 {
                            self.top().n -= 1;
                            self.push_frame(Kind::Fill);
                        } else {
                            self.top().step = 4;
                        }
                        continue;
                    }
                    4 => Field::le(1, 0, 254),
                    5 => {
                        if f.n > 0 {
                            self.top().n -= 1;
                            self.push_frame(Kind::LineStyle);
                        } else {
                            self.top().step = 6;
                        }
                        continue;
                    }
                    6 | 7 => Field::ubits(4, 0, 15),
                    8 => {
                        self.top().step = 9;
                        self.push_frame(Kind::Records);
                        continue;
                    }
                    9 => Field::padding(bit),
                    _ => {
                        let s = self.shape;
                        let bit = id_bit(i64::from(s.id));
                        self.shapes |= bit;
                        if s.is_visible()
                            && let Some(b) = s.drawn
                        {
                            self.visible_shapes |= bit;
                            let c = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
                            self.drawn[usize::from(s.id - 1)] = [
                                c(b[0]) as i32,
                                c(b[1]) as i32,
                                c(b[2]) as i32,
                                c(b[3]) as i32,
                            ];
                        }
                        self.pop();
                        continue;
                    }
                },
                Kind::Fill => match (f.r[0], f.step) {
                    (_, 0) => Field::byte_in(&[0x00, 0x10, 0x12]),
                    (0, 1..=4) => Field::le(1, 0, 255),
                    (0, _) => {
                        self.end_fill(f.r[1] != 0);
                        continue;
                    }
                    (_, 1) => {
                        self.top().step = 2;
                        self.push_frame(Kind::Matrix { place: false });
                        continue;
                    }
                    (_, 2) => {
                        // Spread 0..=2, interpolation 0..=1, 1..=15 records.
                        let mut set = Vec::new();
                        for spread in 0..3u8 {
                            for interp in 0..2u8 {
                                for n in 1..16u8 {
                                    set.push(spread << 6 | interp << 4 | n);
                                }
                            }
                        }
                        Field::byte_in(&set)
                    }
                    (_, 3..=7) if f.n > 0 => Field::le(1, 0, 255),
                    _ => {
                        self.end_fill(f.r[1] != 0);
                        continue;
                    }
                },
                Kind::LineStyle => match f.step {
                    0 => Field::le(2, 0, 0xffff),
                    1..=4 => Field::le(1, 0, 255),
                    _ => {
                        self.pop();
                        continue;
                    }
                },
                Kind::Records => match self.record_field(f) {
                    Some(field) => field,
                    None => continue,
                },
                Kind::Sprite => match f.step {
                    0 => Field::le_rule(2, exact(i64::from(self.next_id))),
                    1 => Field::le(2, 0, 0xffff),
                    2 => {
                        self.top().step = 3;
                        self.sprite_depths = [0; 4];
                        self.push_frame(Kind::Tags { sprite: true });
                        continue;
                    }
                    _ => {
                        self.sprites |= id_bit(f.r[0]);
                        self.pop();
                        continue;
                    }
                },
                Kind::Place { sprite } => match self.place_field(f, sprite) {
                    Some(field) => field,
                    None => continue,
                },
                Kind::Matrix { .. } => {
                    let n = f.n as u8;
                    let has = |flag: i64| f.r[6] >> flag & 1 == 1;
                    match f.step {
                        0 | 4 => flag(true),
                        1 | 5 | 8 => Field::ubits(5, 0, 31),
                        2 | 3 if has(0) => Field::sbits(n),
                        6 | 7 if has(1) => Field::sbits(n),
                        9 | 10 => Field::sbits(n),
                        11 => Field::padding(bit),
                        12.. => {
                            self.end_matrix(f);
                            continue;
                        }
                        _ => {
                            self.top().step += 1;
                            continue;
                        }
                    }
                }
                Kind::ColorTransform => {
                    let (add, mult) = (f.r[4] & 2 != 0, f.r[4] & 1 != 0);
                    match f.step {
                        0 | 1 => flag(true),
                        2 => Field::ubits(4, 0, 15),
                        3..=6 if mult => Field::sbits(f.n as u8),
                        7..=10 if add => Field::sbits(f.n as u8),
                        11 => Field::padding(bit),
                        12.. => {
                            let a_mult = if mult { f.r[0] } else { 256 };
                            let a_add = if add { f.r[1] } else { 0 };
                            self.pop();
                            self.place.alpha = Some(opaque_enough(a_mult, a_add));
                            continue;
                        }
                        _ => {
                            self.top().step += 1;
                            continue;
                        }
                    }
                }
                Kind::Clip => match f.step {
                    0 => Field::le_rule(2, exact(0)),
                    1 => byte(ENTER_FRAME),
                    2..=4 => byte(0),
                    5 => {
                        if f.n == 0 {
                            byte(ENTER_FRAME)
                        } else {
                            Field::byte_in(&[0, ENTER_FRAME])
                        }
                    }
                    6..=8 => byte(0),
                    9 => Field::le(4, 0, i64::from(u32::MAX)),
                    10 => {
                        self.top().step = 11;
                        self.push_frame(Kind::Actions);
                        continue;
                    }
                    11 => {
                        let top = self.top();
                        top.step = 5;
                        top.n += 1;
                        continue;
                    }
                    12..=14 => byte(0),
                    _ => {
                        self.pop();
                        continue;
                    }
                },
                Kind::Actions => match f.step {
                    0 => Field::byte_in(&ACTIONS),
                    1 => Field::le(2, 2, 0xffff),
                    2 => Field::le_rule(2, exact(2)),
                    3 => Field::le(2, 0, 0xffff),
                    _ => {
                        self.top().step = 0;
                        continue;
                    }
                },
                Kind::Push => match self.push_field(f) {
                    Some(field) => field,
                    None => continue,
                },
            };
            return Next::Field(field);
        }
    }

    fn end_fill(&mut self, visible: bool) {
        self.pop();
        self.shape.fills += 1;
        if visible && (1..=64).contains(&self.shape.fills) {
            self.shape.visible_fills |= 1 << (self.shape.fills - 1);
        }
    }

    fn end_matrix(&mut self, f: Frame) {
        self.pop();
        if let Kind::Matrix { place: true } = f.kind {
            let has = |flag: i64| f.r[6] >> flag & 1 == 1;
            let [a, d, b, c, tx, ty] = [f.r[0], f.r[1], f.r[2], f.r[3], f.r[4], f.r[5]];
            self.place.matrix = Some(Matrix {
                a: if has(0) { a } else { 1 << 16 },
                d: if has(0) { d } else { 1 << 16 },
                b: if has(1) { b } else { 0 },
                c: if has(1) { c } else { 0 },
                tx,
                ty,
            });
        }
    }

    /// Shape records. Registers: r0 the five style-change flags, r1 the edge kind (1 straight,
    /// 2 curved), r2 general-line flag, r3 vertical flag.
    fn record_field(&mut self, f: Frame) -> Option<Field> {
        let n = f.n as u8;
        let flags = f.r[0];
        let fill_max = |bits: u8, count: i64| count.min((1i64 << bits) - 1);
        let field = match f.step {
            0 => flag(true),
            1 => Field::ubits(1, 0, 0),
            2..=5 => flag(true),
            6 if flags & 1 != 0 => Field::ubits(5, 0, 31),
            7 | 8 if flags & 1 != 0 => Field::sbits(n),
            9 if flags & 2 != 0 => Field::ubits(
                self.shape.fill_bits,
                0,
                fill_max(self.shape.fill_bits, self.shape.fills),
            ),
            10 if flags & 4 != 0 => Field::ubits(
                self.shape.fill_bits,
                0,
                fill_max(self.shape.fill_bits, self.shape.fills),
            ),
            11 if flags & 8 != 0 => Field::ubits(
                self.shape.line_bits,
                0,
                fill_max(self.shape.line_bits, self.shape.lines),
            ),
            6..=11 => {
                let top = self.top();
                top.step = if top.step == 11 { 0 } else { top.step + 1 };
                return None;
            }
            // Edges: straight flag, bit count - 2, then the deltas.
            20 => flag(true),
            21 => Field::ubits(4, 0, 15),
            22 if f.r[1] == 1 => flag(true),
            23 if f.r[1] == 1 && f.r[2] == 0 => flag(true),
            24 if f.r[1] == 1 => Field::sbits(n),
            25 if f.r[1] == 1 && (f.r[2] == 1 || f.r[3] == 1) => Field::sbits(n),
            22..=25 if f.r[1] == 2 => Field::sbits(n),
            22..=25 => {
                self.top().step += 1;
                return None;
            }
            _ => {
                self.top().step = 0;
                return None;
            }
        };
        Some(field)
    }

    /// PlaceObject2. Registers: r0 the flag bits read so far.
    fn place_field(&mut self, f: Frame, sprite: bool) -> Option<Field> {
        let flags = self.place.flags;
        let field = match f.step {
            // HasClipActions: only at the top level, to place a sprite.
            0 => flag(!sprite && self.sprites != 0 && self.free_depth_exists(false)),
            // HasClipDepth, HasName, HasRatio: not in the profile.
            1..=3 => Field::ubits(1, 0, 0),
            4 | 5 => flag(true),
            6 => {
                let can_place = self.placeable(sprite) != 0 && self.free_depth_exists(sprite);
                let can_modify = self.used_depths(sprite).iter().any(|&w| w != 0);
                if flags & HAS_CLIP_ACTIONS != 0 {
                    Field::ubits(1, 1, 1)
                } else {
                    Field::ubits(1, i64::from(!can_modify), i64::from(can_place))
                }
            }
            // Move: exactly when not placing a new character.
            7 => {
                let v = i64::from(flags & HAS_CHARACTER == 0);
                Field::ubits(1, v, v)
            }
            8 if flags & HAS_CHARACTER != 0 => Field::le_rule(2, Rule::FreeDepth),
            8 => Field::le_rule(2, Rule::UsedDepth),
            9 if flags & HAS_CHARACTER != 0 => Field::le_rule(
                2,
                Rule::Defined {
                    sprites_only: flags & HAS_CLIP_ACTIONS != 0,
                },
            ),
            10 if flags & HAS_MATRIX != 0 => {
                self.top().step = 11;
                self.push_frame(Kind::Matrix { place: true });
                return None;
            }
            11 if flags & HAS_COLOR_TRANSFORM != 0 => {
                self.top().step = 12;
                self.push_frame(Kind::ColorTransform);
                return None;
            }
            12 if flags & HAS_CLIP_ACTIONS != 0 => {
                self.top().step = 13;
                self.push_frame(Kind::Clip);
                return None;
            }
            9..=12 => {
                self.top().step += 1;
                return None;
            }
            _ => {
                self.pop();
                self.end_place(sprite);
                return None;
            }
        };
        Some(field)
    }

    fn end_place(&mut self, sprite: bool) {
        let p = self.place;
        let d = p.depth;
        if sprite {
            depth_set(&mut self.sprite_depths, d, true);
            return;
        }
        let placing = p.flags & HAS_CHARACTER != 0;
        if placing {
            depth_set(&mut self.depths, d, true);
            self.depth_char[d as usize] = p.id as u8;
        }
        let id = i64::from(self.depth_char[d as usize]);
        let shape_visible = self.visible_shapes & id_bit(id) != 0;
        if placing || p.matrix.is_some() {
            let m = p.matrix.unwrap_or(Matrix::IDENTITY);
            let shows = shape_visible && {
                let b = self.drawn[(id - 1).max(0) as usize].map(i64::from);
                on_stage(b, &m, self.stage)
            };
            depth_set(&mut self.on_stage, d, shows);
        }
        if placing || p.alpha.is_some() {
            depth_set(&mut self.opaque, d, p.alpha.unwrap_or(true));
        }
    }

    /// Push values. `n` is the bytes left in the action; r0 the value type being read (-1 at a
    /// value's start), r1 the bytes of it still to come (numbers).
    fn push_field(&mut self, f: Frame) -> Option<Field> {
        let left = f.n;
        if left == 0 {
            self.pop();
            return None;
        }
        let field = match f.r[0] {
            -1 => {
                // After a value, 0 or at least 2 bytes (the smallest value) must be left.
                let fits = |size: i64| left == size || left >= size + 2;
                let mut types = vec![0u8];
                if fits(5) {
                    types.push(7);
                }
                if fits(9) {
                    types.push(6);
                }
                Field::byte_in(&types)
            }
            0 => {
                // A string: printable characters while the terminator still fits, the
                // terminator when what is left after it is 0 or holds a value.
                let mut set: Vec<u8> = Vec::new();
                if left == 1 || left > 2 {
                    set.push(0);
                }
                if left > 1 {
                    set.extend(0x20..=0x7e);
                }
                Field::byte_in(&set)
            }
            _ => Field::le(1, 0, 255),
        };
        Some(field)
    }

    /// Record the value of the field [`Profile::next`] named. `at` is the byte offset where the
    /// field started; events for the patcher go to `log`.
    pub fn take(&mut self, v: i64, at: usize, field: &Field, log: &mut Option<Vec<Event>>) {
        let mut ev = |e: Event| {
            if let Some(l) = log.as_mut() {
                l.push(e);
            }
        };
        if self.len == 0 {
            return;
        }
        let bytes = i64::from(field.width / 8);
        let f = *self.top();
        let step = f.step;
        let i = self.len - 1;
        let top = &mut self.stack[i];
        top.step += 1;
        match f.kind {
            Kind::Header => {
                if step == 7 {
                    ev(Event::FrameCount(at));
                }
            }
            Kind::Rect { stage } => match step {
                0 => top.n = v,
                1..=4 => top.r[usize::from(step - 1)] = v,
                _ => {
                    let r = [f.r[0], f.r[1], f.r[2], f.r[3]];
                    self.pop();
                    if stage {
                        self.stage = r;
                    }
                }
            },
            Kind::Tags { .. } => match step {
                0 => {
                    ev(Event::TagStart(at));
                    top.r[0] = v;
                }
                1 => {
                    let code = (v << 2) | (f.r[0] >> 6);
                    top.r[1] = code;
                    if f.r[0] & 0x3f == 0x3f {
                        top.step = 2;
                    } else {
                        top.step = 3;
                        ev(Event::BodyStart(at + 1));
                    }
                }
                2 => ev(Event::BodyStart(at + 4)),
                _ => {
                    ev(Event::TagEnd(at));
                    top.step = 0;
                    top.n += 1;
                    if f.r[1] as u16 == END {
                        self.pop();
                    }
                }
            },
            Kind::Shape => match step {
                0 => {
                    self.shape.id = v as u16;
                    self.next_id += 1;
                }
                2 | 4 => top.n = v,
                6 => self.shape.fill_bits = v as u8,
                7 => self.shape.line_bits = v as u8,
                _ => {}
            },
            Kind::Fill => match (f.r[0], step) {
                (_, 0) => {
                    top.r[0] = v;
                    top.r[1] = 0;
                }
                (0, 4) => top.r[1] = i64::from(v > 0),
                (0, _) => {}
                (_, 2) => {
                    top.n = v & 0x0f;
                    top.step = 3;
                }
                (_, 7) => {
                    top.r[1] |= i64::from(v > 0);
                    top.n -= 1;
                    top.step = 3;
                }
                _ => {}
            },
            Kind::Records => self.take_record(f, v),
            Kind::Sprite => {
                if step == 0 {
                    top.r[0] = v;
                    self.next_id += 1;
                }
            }
            Kind::Place { .. } => match step {
                0..=7 => self.place.flags |= (v as u8) << (7 - step),
                8 => self.place.depth = v,
                9 => self.place.id = v,
                _ => {}
            },
            Kind::Matrix { .. } => match step {
                0 | 4 => {
                    top.r[6] |= v << (step / 4);
                    if v == 0 {
                        top.step += 3;
                    }
                }
                1 | 5 | 8 => top.n = v,
                2 | 3 => top.r[usize::from(step - 2)] = v,
                6 | 7 => top.r[usize::from(step - 4)] = v,
                9 => top.r[4] = v,
                10 => top.r[5] = v,
                _ => {}
            },
            Kind::ColorTransform => match step {
                0 => top.r[4] |= v << 1,
                1 => top.r[4] |= v,
                2 => top.n = v,
                6 => top.r[0] = v,
                10 => top.r[1] = v,
                _ => {}
            },
            Kind::Clip => match step {
                5 if v == 0 => {
                    // Flags 0: the end of the records (three more zero bytes).
                    top.step = 12;
                }
                9 => ev(Event::ClipSize(at)),
                _ => {}
            },
            Kind::Actions => match step {
                0 => match v as u8 {
                    0 => {
                        self.pop();
                        ev(Event::ClipEnd(at + 1));
                    }
                    PUSH => top.step = 1,
                    IF => top.step = 2,
                    _ => top.step = 0,
                },
                1 => {
                    top.step = 4;
                    self.push_frame(Kind::Push);
                    let p = self.top();
                    p.n = v;
                    p.r[0] = -1;
                }
                2 => top.step = 3,
                _ => top.step = 0,
            },
            Kind::Push => {
                top.n -= bytes;
                match f.r[0] {
                    -1 => {
                        top.r[0] = v;
                        top.r[1] = match v {
                            7 => 4,
                            6 => 8,
                            _ => 0,
                        };
                    }
                    0 => {
                        if v == 0 {
                            top.r[0] = -1;
                        }
                    }
                    _ => {
                        top.r[1] -= 1;
                        if top.r[1] == 0 {
                            top.r[0] = -1;
                        }
                    }
                }
                top.step = 0;
            }
            Kind::FileAttributes | Kind::Background | Kind::LineStyle => {}
        }
        let _ = bytes;
    }

    fn take_record(&mut self, f: Frame, v: i64) {
        let step = f.step;
        let i = self.len - 1;
        let top = &mut self.stack[i];
        match step {
            0 => {
                top.r = [0; 8];
                top.step = if v == 1 { 20 } else { 1 };
            }
            1..=5 => {
                // Bits in order: new styles, line style, fill style 1, fill style 0, move to;
                // r0 keeps them as move=1, fill0=2, fill1=4, line=8.
                let weight = [0, 8, 4, 2, 1][usize::from(step - 1)];
                top.r[0] |= v * weight;
                if step == 5 && top.r[0] == 0 {
                    self.pop();
                }
            }
            6 => top.n = v,
            7 => top.r[4] = v,
            8 => {
                let x = f.r[4];
                self.shape.pen = (x, v);
            }
            9 => self.shape.fill0 = v,
            10 => self.shape.fill1 = v,
            11 => top.step = 0,
            20 => top.r[1] = if v == 1 { 1 } else { 2 },
            21 => top.n = v + 2,
            22 if f.r[1] == 1 => {
                top.r[2] = v;
                if v == 1 {
                    top.step = 24;
                }
            }
            23 if f.r[1] == 1 => {
                top.r[3] = v;
                top.step = if v == 1 { 25 } else { 24 };
            }
            24 if f.r[1] == 1 => {
                let (x, y) = self.shape.pen;
                if f.r[2] == 1 {
                    top.r[4] = v;
                } else {
                    self.shape.draw_to(x + v, y);
                    self.shape.pen = (x + v, y);
                    self.shape.edges += 1;
                    self.stack[i].step = 0;
                }
            }
            25 if f.r[1] == 1 => {
                let (x, y) = self.shape.pen;
                let dx = if f.r[2] == 1 { f.r[4] } else { 0 };
                self.shape.draw_to(x + dx, y + v);
                self.shape.pen = (x + dx, y + v);
                self.shape.edges += 1;
                top.step = 0;
            }
            22..=25 => {
                // Curved: control x, control y, anchor x, anchor y.
                top.r[usize::from(step - 22) + 2] = v;
                if step == 25 {
                    let (x, y) = self.shape.pen;
                    let (cx, cy) = (x + f.r[2], y + f.r[3]);
                    let (ax, ay) = (cx + f.r[4], cy + v);
                    self.shape.draw_to(cx, cy);
                    self.shape.draw_to(ax, ay);
                    self.shape.pen = (ax, ay);
                    self.shape.edges += 1;
                    self.stack[i].step = 0;
                }
            }
            _ => {}
        }
    }

    /// Whether a partly read field can still satisfy its rule.
    pub fn feasible(&self, p: &Partial) -> bool {
        match p.field.rule {
            Rule::Range(lo, hi) => p.can_reach(lo, hi),
            Rule::Bytes(set) => {
                !p.is_complete() || set[(p.acc / 64) as usize] >> (p.acc % 64) & 1 == 1
            }
            Rule::Defined { sprites_only } => {
                let sprite = self.in_sprite();
                let mask = if sprites_only {
                    self.sprites
                } else {
                    self.placeable(sprite)
                };
                (1..=64i64).any(|id| mask & id_bit(id) != 0 && p.can_reach(id, id))
            }
            Rule::FreeDepth => {
                let d = *self.used_depths(self.in_sprite());
                (1..=MAX_DEPTH).any(|i| !depth_has(&d, i) && p.can_reach(i, i))
            }
            Rule::UsedDepth => {
                let d = *self.used_depths(self.in_sprite());
                (1..=MAX_DEPTH).any(|i| depth_has(&d, i) && p.can_reach(i, i))
            }
        }
    }

    /// An upper bound, in bytes, on what the closing path ([`Profile::prefer`]) still writes
    /// from here: every open structure finished in its cheapest way, the End tags of every open
    /// tag list, and, while no visible shape has been shown, a shape, its placement and a
    /// ShowFrame.
    pub fn rough_rest(&self) -> usize {
        let mut total: i64 = if self.shown_visible { 0 } else { 64 };
        for f in &self.stack[..self.len] {
            total += match f.kind {
                Kind::Header => 40,
                Kind::Rect { .. } => 17,
                Kind::Tags { .. } => match f.step {
                    1 | 2 => 2 + 50,
                    _ => 2,
                },
                Kind::FileAttributes => 4,
                Kind::Background => 3,
                Kind::Shape => 52 + 5 * f.n.max(1) + 6 * f.n,
                Kind::Fill => 32 + 5 * (f.n + 1),
                Kind::LineStyle => 6,
                Kind::Records => 34,
                Kind::Sprite => 6,
                Kind::Place { .. } => 72,
                Kind::Matrix { .. } => 27,
                Kind::ColorTransform => 19,
                Kind::Clip => 20,
                Kind::Actions => 6,
                Kind::Push => f.n + 1,
            };
        }
        total as usize
    }

    /// The value the closing path gives the field now being read: the cheapest way to a
    /// finished file that shows something. Values outside the field's rule are moved into it by
    /// the walker.
    pub fn prefer(&self) -> i64 {
        let Some(f) = self.stack[..self.len].last() else {
            return 0;
        };
        let stage_mid = |i: usize| (self.stage[i] + self.stage[i + 1]) / 2;
        match f.kind {
            Kind::Header => match f.step {
                6 => 24 << 8,
                7 => 1,
                _ => 0,
            },
            Kind::Rect { stage: true } => [16, 0, 11000, 0, 8000, 0][usize::from(f.step.min(5))],
            Kind::Rect { stage: false } => {
                [11, -420, 420, -420, 420, 0][usize::from(f.step.min(5))]
            }
            Kind::Tags { sprite } => {
                let code = self.closing_code(sprite, f.n == 0);
                match f.step {
                    0 => i64::from((code & 3) << 6),
                    1 => i64::from(code >> 2),
                    _ => 0,
                }
            }
            Kind::Shape => match f.step {
                2 => 1,
                6 => 1,
                _ => 0,
            },
            Kind::Fill => match f.step {
                0 => 0,
                1 => 255,
                4 => 255,
                _ => 1,
            },
            Kind::Records => self.prefer_record(f),
            Kind::Place { .. } => match f.step {
                5 | 6 => 1,
                8 => (1..=MAX_DEPTH)
                    .find(|&i| !depth_has(self.used_depths(self.in_sprite()), i))
                    .unwrap_or(1),
                9 => (1..=64)
                    .find(|&id| self.visible_shapes & id_bit(id) != 0)
                    .or_else(|| (1..=64).find(|&id| self.placeable(false) & id_bit(id) != 0))
                    .unwrap_or(1),
                _ => 0,
            },
            Kind::Matrix { place: true } => match f.step {
                8 => 31,
                9 | 10 => {
                    let id = self.place.id;
                    let b = if (1..=64).contains(&id) {
                        self.drawn[(id - 1) as usize].map(i64::from)
                    } else {
                        [0; 4]
                    };
                    if f.step == 9 {
                        stage_mid(0) - (b[0] + b[1]) / 2
                    } else {
                        stage_mid(2) - (b[2] + b[3]) / 2
                    }
                }
                _ => 0,
            },
            Kind::Push => match f.r[0] {
                0 => 0x61,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// The tag the closing path writes next in a tag list.
    fn closing_code(&self, sprite: bool, first: bool) -> u16 {
        if first && !sprite {
            FILE_ATTRIBUTES
        } else if sprite || self.shown_visible {
            END
        } else if self.visible_now() {
            SHOW_FRAME
        } else if self.visible_shapes != 0 && self.free_depth_exists(false) {
            PLACE_OBJECT2
        } else {
            DEFINE_SHAPE3
        }
    }

    /// The closing path's shape: a square of 840 twips around the origin drawn with fill 1, or
    /// the end of the records once the shape is visible or cannot become so.
    fn prefer_record(&self, f: &Frame) -> i64 {
        let s = &self.shape;
        let can_fill = s.fill_bits >= 1 && s.fill_visible(1);
        let drawing = can_fill && !s.is_visible() && s.edges < 4;
        let moved = s.fill1 == 1;
        match f.step {
            0 => i64::from(drawing && moved),
            // Flags: line, fill 1, fill 0, move.
            3 | 5 => i64::from(drawing && !moved),
            6 => 11,
            7 | 8 => -420,
            10 => 1,
            20 => 1,
            21 => 9,
            23 => i64::from(s.edges % 2 == 1),
            24 | 25 => {
                if s.edges < 2 {
                    840
                } else {
                    -840
                }
            }
            _ => 0,
        }
    }
}
