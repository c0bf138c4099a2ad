//! Turning an attribute record into SWF bytes with the swf crate's writer.
//!
//! Layout: FileAttributes, SetBackgroundColor, one DefineShape3 per object (drawn around the
//! origin so rotation and scale are about the centre), for games a sprite wrapping the player's
//! shape with an AVM1 `enterFrame` clip action reading the arrow keys; then one PlaceObject2 per
//! object on frame 1 and a PlaceObject2 "modify" with a new matrix / colour transform per moving
//! object on every later frame. Uncompressed FWS, as ByteCraft's training data.

use super::attrs::{Attributes, Fill, Motion, Object, ShapeKind};
use swf::avm1::types::{Action, If, Push, Value};
use swf::{
    ClipAction, ClipActions, ClipEventFlag, Color, ColorTransform, FileAttributes, FillStyle,
    Fixed8, Fixed16, Gradient, GradientInterpolation, GradientRecord, GradientSpread, Header,
    Matrix, PlaceObject, PlaceObjectAction, PointDelta, Rectangle, Shape, ShapeFlag, ShapeRecord,
    ShapeStyles, Sprite, StyleChangeData, SwfStr, Tag, Twips,
};

pub const SWF_VERSION: u8 = 10;
const PLAYER_DEPTH: u16 = 100;

fn rgba(c: [u8; 3]) -> Color {
    Color {
        r: c[0],
        g: c[1],
        b: c[2],
        a: 255,
    }
}

fn px(v: f64) -> i32 {
    (v * 20.0).round() as i32
}

/// Outline points (absolute twips) of a shape of the given size, centred on the origin.
/// Ellipses also get quadratic control points: `(control, anchor)` pairs.
enum Outline {
    Lines(Vec<(i32, i32)>),
    Curves {
        start: (i32, i32),
        segs: Vec<((i32, i32), (i32, i32))>,
    },
}

fn outline(kind: ShapeKind, w: f64, h: f64) -> Outline {
    let (rx, ry) = (w / 2.0, h / 2.0);
    let at = |r: f64, deg: f64, sx: f64, sy: f64| {
        let t = deg.to_radians();
        (px(r * sx * t.cos()), px(r * sy * t.sin()))
    };
    match kind {
        ShapeKind::Rectangle => Outline::Lines(vec![
            (px(-rx), px(-ry)),
            (px(rx), px(-ry)),
            (px(rx), px(ry)),
            (px(-rx), px(ry)),
        ]),
        ShapeKind::Polygon { sides } => {
            let n = f64::from(sides);
            Outline::Lines(
                (0..sides)
                    .map(|k| at(1.0, -90.0 + f64::from(k) * 360.0 / n, rx, ry))
                    .collect(),
            )
        }
        ShapeKind::Star { points } => {
            let n = f64::from(points) * 2.0;
            Outline::Lines(
                (0..points * 2)
                    .map(|k| {
                        let r = if k % 2 == 0 { 1.0 } else { 0.45 };
                        at(r, -90.0 + f64::from(k) * 360.0 / n, rx, ry)
                    })
                    .collect(),
            )
        }
        ShapeKind::Ellipse => {
            // Eight quadratic arcs; the control point sits at r / cos(22.5 deg).
            let k = 1.0 / 22.5f64.to_radians().cos();
            let start = at(1.0, 0.0, rx, ry);
            let segs = (0..8)
                .map(|i| {
                    let a = f64::from(i) * 45.0;
                    (at(k, a + 22.5, rx, ry), at(1.0, a + 45.0, rx, ry))
                })
                .collect();
            Outline::Curves { start, segs }
        }
    }
}

fn records(kind: ShapeKind, w: f64, h: f64) -> Vec<ShapeRecord> {
    let style = |to: (i32, i32)| {
        ShapeRecord::StyleChange(Box::new(StyleChangeData {
            move_to: Some(swf::Point::new(Twips::new(to.0), Twips::new(to.1))),
            fill_style_0: None,
            fill_style_1: Some(1),
            line_style: None,
            new_styles: None,
        }))
    };
    let d = |a: (i32, i32), b: (i32, i32)| {
        PointDelta::new(Twips::new(b.0 - a.0), Twips::new(b.1 - a.1))
    };
    match outline(kind, w, h) {
        Outline::Lines(pts) => {
            let mut out = vec![style(pts[0])];
            for i in 0..pts.len() {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                out.push(ShapeRecord::StraightEdge { delta: d(a, b) });
            }
            out
        }
        Outline::Curves { start, segs } => {
            let mut out = vec![style(start)];
            let mut cur = start;
            for (i, (c, a)) in segs.iter().enumerate() {
                // Close exactly on the start point whatever the rounding did.
                let anchor = if i + 1 == segs.len() { start } else { *a };
                out.push(ShapeRecord::CurvedEdge {
                    control_delta: d(cur, *c),
                    anchor_delta: d(*c, anchor),
                });
                cur = anchor;
            }
            out
        }
    }
}

fn fill_style(fill: &Fill, w: f64, h: f64) -> FillStyle {
    // Gradients live in a 32768-twip square; scale it onto the shape's box.
    let gm = Matrix {
        a: Fixed16::from_f64(f64::from(px(w)) / 32768.0),
        b: Fixed16::ZERO,
        c: Fixed16::ZERO,
        d: Fixed16::from_f64(f64::from(px(h)) / 32768.0),
        tx: Twips::ZERO,
        ty: Twips::ZERO,
    };
    let grad = |from: [u8; 3], to: [u8; 3]| Gradient {
        matrix: gm,
        spread: GradientSpread::Pad,
        interpolation: GradientInterpolation::Rgb,
        records: vec![
            GradientRecord {
                ratio: 0,
                color: rgba(from),
            },
            GradientRecord {
                ratio: 255,
                color: rgba(to),
            },
        ],
    };
    match *fill {
        Fill::Solid { color } => FillStyle::Color(rgba(color)),
        Fill::Linear { from, to } => FillStyle::LinearGradient(grad(from, to)),
        Fill::Radial { from, to } => FillStyle::RadialGradient(grad(from, to)),
    }
}

fn define_shape(id: u16, o: &Object) -> Tag<'static> {
    // Curves of the ellipse bulge at most to the box; a pixel of margin covers rounding.
    let bounds = Rectangle {
        x_min: Twips::new(px(-o.width / 2.0 - 1.0)),
        x_max: Twips::new(px(o.width / 2.0 + 1.0)),
        y_min: Twips::new(px(-o.height / 2.0 - 1.0)),
        y_max: Twips::new(px(o.height / 2.0 + 1.0)),
    };
    Tag::DefineShape(Box::new(Shape {
        version: 3,
        id,
        shape_bounds: bounds,
        edge_bounds: bounds,
        flags: ShapeFlag::empty(),
        styles: ShapeStyles {
            fill_styles: vec![fill_style(&o.fill, o.width, o.height)],
            line_styles: vec![],
        },
        shape: records(o.shape, o.width, o.height),
    }))
}

/// Where an object is and how it looks at frame `t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub x: f64,
    pub y: f64,
    pub angle: f64,
    pub scale: f64,
    /// Blend factor towards the colour-shift target (0 = own colour).
    pub tint: f64,
}

fn bounce(start: f64, v: f64, t: f64, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return start;
    }
    let span = hi - lo;
    let p = (start - lo + v * t).rem_euclid(2.0 * span);
    lo + if p <= span { p } else { 2.0 * span - p }
}

pub fn pose(o: &Object, t: u32, stage_w: f64, stage_h: f64) -> Pose {
    let tf = f64::from(t);
    let mut p = Pose {
        x: o.x,
        y: o.y,
        angle: 0.0,
        scale: 1.0,
        tint: 0.0,
    };
    let wave = |period: u32| 0.5 - 0.5 * (std::f64::consts::TAU * tf / f64::from(period)).cos();
    match o.motion {
        Motion::Still => {}
        Motion::Linear { dx, dy } => {
            let (mw, mh) = (stage_w + o.width, stage_h + o.height);
            p.x = (o.x + o.width / 2.0 + dx * tf).rem_euclid(mw) - o.width / 2.0;
            p.y = (o.y + o.height / 2.0 + dy * tf).rem_euclid(mh) - o.height / 2.0;
        }
        Motion::Bounce { dx, dy } => {
            p.x = bounce(o.x, dx, tf, o.width / 2.0, stage_w - o.width / 2.0);
            p.y = bounce(o.y, dy, tf, o.height / 2.0, stage_h - o.height / 2.0);
        }
        Motion::Rotate { degrees } => p.angle = (degrees * tf).rem_euclid(360.0),
        Motion::Pulse { min, max, period } => p.scale = min + (max - min) * wave(period),
        Motion::ColorShift { period, .. } => p.tint = wave(period),
    }
    p
}

fn matrix(p: &Pose) -> Matrix {
    let (s, c) = p.angle.to_radians().sin_cos();
    Matrix {
        a: Fixed16::from_f64(p.scale * c),
        b: Fixed16::from_f64(p.scale * s),
        c: Fixed16::from_f64(-p.scale * s),
        d: Fixed16::from_f64(p.scale * c),
        tx: Twips::new(px(p.x)),
        ty: Twips::new(px(p.y)),
    }
}

fn tint(o: &Object, f: f64) -> Option<ColorTransform> {
    let Motion::ColorShift { to, .. } = o.motion else {
        return None;
    };
    let m = Fixed8::from_f64(1.0 - f);
    let add = |c: u8| (f64::from(c) * f).round() as i16;
    Some(ColorTransform {
        r_multiply: m,
        g_multiply: m,
        b_multiply: m,
        a_multiply: Fixed8::ONE,
        r_add: add(to[0]),
        g_add: add(to[1]),
        b_add: add(to[2]),
        a_add: 0,
    })
}

fn place<'a>(
    action: PlaceObjectAction,
    depth: u16,
    m: Matrix,
    ct: Option<ColorTransform>,
    clip_actions: Option<ClipActions<'a>>,
) -> Tag<'a> {
    Tag::PlaceObject(Box::new(PlaceObject {
        version: 2,
        action,
        depth,
        matrix: Some(m),
        color_transform: ct,
        ratio: None,
        name: None,
        clip_depth: None,
        class_name: None,
        filters: None,
        background_color: None,
        blend_mode: None,
        clip_actions,
        has_image: false,
        is_bitmap_cached: None,
        is_visible: None,
        amf_data: None,
    }))
}

/// AVM1 for `onClipEvent(enterFrame)`: for each arrow key held, add the speed to `_x`/`_y`,
/// clamped to the stage so the player cannot leave it.
pub fn arrow_keys_code(speed: f64, stage_w: f64, stage_h: f64) -> Vec<u8> {
    let s = |t: &'static str| Value::Str(SwfStr::from_bytes(t.as_bytes()));
    let write = |actions: &[Action<'_>]| {
        let mut out = Vec::new();
        let mut w = swf::avm1::write::Writer::new(&mut out, SWF_VERSION);
        for a in actions {
            w.write_action(a).expect("writing to a Vec cannot fail");
        }
        out
    };
    // (key code, property index: 0 = _x, 1 = _y, delta, limit the move must not cross)
    let keys = [
        (37, 0, -speed, 0.0),
        (39, 0, speed, stage_w),
        (38, 1, -speed, 0.0),
        (40, 1, speed, stage_h),
    ];
    let mut code = Vec::new();
    for (key, prop, delta, limit) in keys {
        // this[prop] = this[prop] + delta, only while inside the stage.
        let body = write(&[
            Action::Push(Push {
                values: vec![s(""), Value::Int(prop), s(""), Value::Int(prop)],
            }),
            Action::GetProperty,
            Action::Push(Push {
                values: vec![Value::Double(delta)],
            }),
            Action::Add2,
            Action::SetProperty,
        ]);
        // Guard on the limit: skip when (delta < 0 ? _x <= limit : _x >= limit).
        let inside = write(&[
            Action::Push(Push {
                values: vec![s(""), Value::Int(prop)],
            }),
            Action::GetProperty,
            Action::Push(Push {
                values: vec![Value::Double(limit)],
            }),
            if delta < 0.0 {
                Action::Greater
            } else {
                Action::Less2
            },
            Action::Not,
            Action::If(If {
                offset: body.len() as i16,
            }),
        ]);
        let test = write(&[
            Action::Push(Push {
                values: vec![Value::Int(key), Value::Int(1), s("Key")],
            }),
            Action::GetVariable,
            Action::Push(Push {
                values: vec![s("isDown")],
            }),
            Action::CallMethod,
            Action::Not,
            Action::If(If {
                offset: (inside.len() + body.len()) as i16,
            }),
        ]);
        code.extend_from_slice(&test);
        code.extend_from_slice(&inside);
        code.extend_from_slice(&body);
    }
    code.push(0); // End: the writer does not append it.
    code
}

/// Build the file. Frame count, stage and rate come straight from the record.
pub fn build(a: &Attributes) -> Vec<u8> {
    let (sw, sh) = (f64::from(a.width), f64::from(a.height));
    let player_code = a.player.as_ref().map(|p| arrow_keys_code(p.speed, sw, sh));
    let mut tags: Vec<Tag<'_>> = vec![
        Tag::FileAttributes(FileAttributes::empty()),
        Tag::SetBackgroundColor(rgba(a.background)),
    ];
    for (i, o) in a.objects.iter().enumerate() {
        tags.push(define_shape(i as u16 + 1, o));
    }
    let n = a.objects.len() as u16;
    if let (Some(p), Some(code)) = (&a.player, &player_code) {
        let shape_id = n + 1;
        let sprite_id = n + 2;
        tags.push(define_shape(shape_id, &p.object));
        let still = Pose {
            x: 0.0,
            y: 0.0,
            angle: 0.0,
            scale: 1.0,
            tint: 0.0,
        };
        tags.push(Tag::DefineSprite(Sprite {
            id: sprite_id,
            num_frames: 1,
            tags: vec![
                place(
                    PlaceObjectAction::Place(shape_id),
                    1,
                    matrix(&still),
                    None,
                    None,
                ),
                Tag::ShowFrame,
            ],
        }));
        let at = Pose {
            x: p.object.x,
            y: p.object.y,
            ..still
        };
        tags.push(place(
            PlaceObjectAction::Place(sprite_id),
            PLAYER_DEPTH,
            matrix(&at),
            None,
            Some(ClipActions {
                all_event_flags: ClipEventFlag::ENTER_FRAME,
                records: vec![ClipAction {
                    events: ClipEventFlag::ENTER_FRAME,
                    key_code: None,
                    action_data: code,
                }],
            }),
        ));
    }
    for t in 0..a.frames {
        for (i, o) in a.objects.iter().enumerate() {
            let p = pose(o, t, sw, sh);
            let depth = i as u16 + 1;
            if t == 0 {
                tags.push(place(
                    PlaceObjectAction::Place(depth),
                    depth,
                    matrix(&p),
                    tint(o, p.tint),
                    None,
                ));
            } else if o.motion != Motion::Still {
                tags.push(place(
                    PlaceObjectAction::Modify,
                    depth,
                    matrix(&p),
                    tint(o, p.tint),
                    None,
                ));
            }
        }
        tags.push(Tag::ShowFrame);
    }
    let header = Header {
        compression: swf::Compression::None,
        version: SWF_VERSION,
        stage_size: Rectangle {
            x_min: Twips::ZERO,
            x_max: Twips::from_pixels(sw),
            y_min: Twips::ZERO,
            y_max: Twips::from_pixels(sh),
        },
        frame_rate: Fixed8::from_f64(a.frame_rate),
        num_frames: a.frames as u16,
    };
    let mut out = Vec::new();
    swf::write_swf(&header, &tags, &mut out).expect("writing to a Vec cannot fail");
    out
}
