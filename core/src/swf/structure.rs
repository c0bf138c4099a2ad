//! Level 2: the tag stream.
//!
//! Tags are framed by hand (code + length) so that a broken tag can be named by its index and
//! code even when the swf crate cannot parse it, and so that framing errors are told apart from
//! content errors. Each tag's content is then parsed by the swf crate (Ruffle's parser), and the
//! parsed tags feed the semantic checks: frame counts, character ids defined before use, and
//! script decoding.

use super::actions;
use super::report::{Check, Finding, Severity, Stats};
use std::collections::BTreeMap;
use swf::{FillStyle, PlaceObjectAction, ShapeRecord, Tag, TagCode};

/// Sprites may not nest in Flash; the parser recurses on them, so deep nesting in hostile input
/// would overflow the stack. Anything deeper than this is reported and not handed to the parser.
const MAX_SPRITE_DEPTH: u32 = 8;
const TAG_CODES: usize = 1024;
const DEFINE_SPRITE: u16 = 39;
/// The header's frame count drives preloading and `_totalframes`: a mismatch is a real defect.
const MAIN_FRAME_COUNT_SEVERITY: Severity = Severity::Error;

/// Collects findings, remembering the first error even when the list is capped.
pub struct Sink {
    pub findings: Vec<Finding>,
    pub dropped: u32,
    pub errors: u32,
    /// Findings that make a file not valid as written (errors, plus the warnings of
    /// [`breaks_as_written`]), counted even when the list is capped.
    pub not_as_written: u32,
    pub first_error: Option<Finding>,
    max: usize,
}

/// Whether a finding means the file is not valid as written: every error, and the warnings
/// that players forgive but a file written correctly never has (bytes after the End tag, an End
/// tag with a body, no End tag, unknown tags, a sprite's wrong frame count, a compressed stream
/// whose tail is off).
pub fn breaks_as_written(f: &Finding) -> bool {
    f.severity == Severity::Error
        || matches!(
            f.check,
            Check::TrailingData
                | Check::TagFraming
                | Check::UnknownTag
                | Check::MissingEnd
                | Check::FrameCount
                | Check::LengthMismatch
                | Check::DecompressionIncomplete
                | Check::NestingDepth
                | Check::TagParse
        )
}

impl Sink {
    pub fn new(max: usize) -> Self {
        Self {
            findings: Vec::new(),
            dropped: 0,
            errors: 0,
            not_as_written: 0,
            first_error: None,
            max,
        }
    }

    pub fn push(&mut self, f: Finding) {
        if breaks_as_written(&f) {
            self.not_as_written += 1;
        }
        if f.severity == Severity::Error {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(f.clone());
            }
        }
        if self.findings.len() < self.max {
            self.findings.push(f);
        } else {
            self.dropped += 1;
        }
    }
}

/// What the walk learned besides findings.
pub struct Outcome {
    pub tags: BTreeMap<String, u32>,
    pub stats: Stats,
    pub background: Option<[u8; 3]>,
    pub as3: bool,
}

/// Location of the top-level tag being checked.
#[derive(Clone, Copy)]
struct At {
    index: u32,
    code: u16,
    offset: u64,
}

/// Read a tag header: (code, header length, body length), or `None` if the bytes run out.
pub fn frame(rest: &[u8]) -> Option<(u16, usize, usize)> {
    if rest.len() < 2 {
        return None;
    }
    let word = u16::from_le_bytes([rest[0], rest[1]]);
    let code = word >> 6;
    let short = (word & 0x3f) as usize;
    if short == 0x3f {
        if rest.len() < 6 {
            return None;
        }
        let long = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]) as usize;
        Some((code, 6, long))
    } else {
        Some((code, 2, short))
    }
}

/// A character use that can only be judged at the end of the file.
struct Deferred {
    id: u16,
    what: String,
    at: At,
}

struct Walker<'s> {
    version: u8,
    /// Uses inside sprites and buttons: those run only once the sprite or button is placed,
    /// after every definition of its frame, so a later definition is fine; the id only has to
    /// exist by the end of the file.
    deferred: Vec<Deferred>,
    scripts: bool,
    sink: &'s mut Sink,
    hist: Vec<u32>,
    defined: Vec<u64>,
    stats: Stats,
    at: At,
    background: Option<[u8; 3]>,
    as3: bool,
}

/// How one tag stream (the main timeline or a sprite's) ended.
struct Stream {
    shown: u32,
    end_seen: bool,
    framing_ok: bool,
    /// Bytes consumed, End included.
    pos: usize,
    tags: u32,
}

/// Walk the tag stream `data` (which starts at byte `base` of the uncompressed file).
pub fn walk(
    data: &[u8],
    base: u64,
    version: u8,
    header_frames: u16,
    declared_length_ok: bool,
    scripts: bool,
    sink: &mut Sink,
) -> Outcome {
    let mut w = Walker {
        version,
        deferred: Vec::new(),
        scripts,
        sink,
        hist: vec![0; TAG_CODES],
        defined: vec![0; 65536 / 64],
        stats: Stats::default(),
        at: At {
            index: 0,
            code: 0,
            offset: base,
        },
        background: None,
        as3: false,
    };
    let st = w.stream(data, base, None, 0);
    for d in std::mem::take(&mut w.deferred) {
        if !w.is_defined(d.id) {
            w.at = d.at;
            w.error(
                Check::UndefinedCharacter,
                format!("{} uses character {}, which is never defined", d.what, d.id),
            );
        }
    }
    w.stats.tags = st.tags;
    w.stats.frames_shown = st.shown;
    if !st.end_seen && st.framing_ok {
        w.at = At {
            index: st.tags,
            code: 0,
            offset: base + st.pos as u64,
        };
        // Flash and Ruffle play a stream that stops cleanly at a tag boundary (Shumway's test
        // files all do); with a wrong length field as well it is a truncated file.
        let severity = if declared_length_ok {
            Severity::Warning
        } else {
            Severity::Error
        };
        w.push(
            severity,
            Check::MissingEnd,
            format!(
                "the tag stream ends after {} tags without an End tag",
                st.tags
            ),
            false,
        );
    }
    if st.end_seen && st.pos < data.len() {
        let extra = &data[st.pos..];
        let zeros = extra.iter().all(|&b| b == 0);
        w.at.offset = base + st.pos as u64;
        w.push(
            Severity::Warning,
            Check::TrailingData,
            format!(
                "{} bytes after the End tag{}",
                extra.len(),
                if zeros { " (all zero)" } else { "" }
            ),
            false,
        );
    }
    if st.framing_ok && st.shown != u32::from(header_frames) {
        w.at.offset = base;
        w.push(
            MAIN_FRAME_COUNT_SEVERITY,
            Check::FrameCount,
            format!(
                "header says {header_frames} frames, the main timeline shows {}",
                st.shown
            ),
            false,
        );
    }
    let mut tags = BTreeMap::new();
    for (code, &n) in w.hist.iter().enumerate() {
        if n > 0 {
            tags.insert(TagCode::format(code as u16), n);
        }
    }
    Outcome {
        tags,
        stats: w.stats,
        background: w.background,
        as3: w.as3,
    }
}

impl Walker<'_> {
    fn push(&mut self, severity: Severity, check: Check, message: String, with_tag: bool) {
        let (tag_index, tag_name) = if with_tag {
            (Some(self.at.index), Some(TagCode::format(self.at.code)))
        } else {
            (None, None)
        };
        self.sink.push(Finding {
            severity,
            level: 2,
            check,
            message,
            tag_index,
            tag_name,
            offset: Some(self.at.offset),
        });
    }

    fn error(&mut self, check: Check, message: String) {
        self.push(Severity::Error, check, message, true);
    }

    fn warning(&mut self, check: Check, message: String) {
        self.push(Severity::Warning, check, message, true);
    }

    /// Walk one tag stream. At top level (`sprite == None`) each tag becomes the current
    /// location; inside a sprite findings point at the enclosing DefineSprite and say where in
    /// it. Sprites are walked here rather than by the swf crate's all-or-nothing sprite reader so
    /// that a sprite without its own End tag (common, and played) is a note, not a parse error.
    fn stream(&mut self, data: &[u8], base: u64, sprite: Option<u16>, depth: u32) -> Stream {
        let mut st = Stream {
            shown: 0,
            end_seen: false,
            framing_ok: true,
            pos: 0,
            tags: 0,
        };
        let where_ = |j: u32, code: u16| match sprite {
            Some(id) => format!("in sprite {id}, tag {j} {}: ", TagCode::format(code)),
            None => String::new(),
        };
        while st.pos < data.len() {
            let rest = &data[st.pos..];
            let offset = base + st.pos as u64;
            let Some((code, hdr, len)) = frame(rest) else {
                if sprite.is_none() {
                    self.at = At {
                        index: st.tags,
                        code: 0,
                        offset,
                    };
                }
                let msg = format!(
                    "{}tag header truncated ({} bytes left)",
                    where_(st.tags, 0).replace("Unknown(0)", "?"),
                    rest.len()
                );
                self.push(Severity::Error, Check::TagFraming, msg, sprite.is_some());
                st.framing_ok = false;
                break;
            };
            if sprite.is_none() {
                self.at = At {
                    index: st.tags,
                    code,
                    offset,
                };
            }
            self.hist[code as usize] += 1;
            if len > rest.len() - hdr {
                let msg = format!(
                    "{}tag length {len} runs past the end of the stream ({} bytes remain)",
                    where_(st.tags, code),
                    rest.len() - hdr
                );
                self.error(Check::TagFraming, msg);
                st.framing_ok = false;
                break;
            }
            st.tags += 1;
            let whole = &rest[..hdr + len];
            st.pos += hdr + len;
            match code {
                0 => {
                    if len != 0 {
                        // Players stop at code 0 whatever its length; a writer never sets one.
                        let msg = format!(
                            "{}End tag with a {len} byte body",
                            where_(st.tags - 1, code)
                        );
                        self.warning(Check::TagFraming, msg);
                    }
                    st.end_seen = true;
                    break;
                }
                1 => st.shown += 1,
                DEFINE_SPRITE => {
                    let body = &whole[hdr..];
                    if depth + 1 > MAX_SPRITE_DEPTH {
                        self.error(
                            Check::NestingDepth,
                            format!("sprites nested deeper than {MAX_SPRITE_DEPTH} levels"),
                        );
                    } else if body.len() < 4 {
                        let msg = format!("{}sprite header truncated", where_(st.tags - 1, code));
                        self.error(Check::TagParse, msg);
                    } else {
                        self.sprite(body, offset + hdr as u64, depth + 1);
                    }
                }
                _ if TagCode::from_u16(code).is_none() => {
                    // Players skip tags they do not know; so does this check, with a note.
                    let msg = format!("{}unknown tag code {code}", where_(st.tags - 1, code));
                    self.warning(Check::UnknownTag, msg);
                }
                _ => match swf::read::Reader::new(whole, self.version).read_tag() {
                    Ok(tag) => self.visit(&tag, sprite),
                    Err(e) => {
                        let msg = format!("{}{e}", where_(st.tags - 1, code));
                        self.error(Check::TagParse, msg);
                    }
                },
            }
        }
        st
    }

    /// A DefineSprite body: id, frame count, then its own tag stream.
    fn sprite(&mut self, body: &[u8], base: u64, depth: u32) {
        let id = u16::from_le_bytes([body[0], body[1]]);
        let frames = u16::from_le_bytes([body[2], body[3]]);
        self.stats.sprites += 1;
        let st = self.stream(&body[4..], base + 4, Some(id), depth);
        if st.framing_ok && !st.end_seen {
            self.warning(Check::MissingEnd, format!("sprite {id} has no End tag"));
        }
        if st.end_seen && st.pos < body.len() - 4 {
            self.warning(
                Check::TrailingData,
                format!(
                    "sprite {id} has {} bytes after its End tag",
                    body.len() - 4 - st.pos
                ),
            );
        }
        if st.framing_ok && st.shown != u32::from(frames) {
            // Authoring tools write 1 for empty sprites; players use the shown frames.
            self.warning(
                Check::FrameCount,
                format!("sprite {id} says {frames} frames, shows {}", st.shown),
            );
        }
        self.define(id);
    }

    fn is_defined(&self, id: u16) -> bool {
        self.defined[(id / 64) as usize] & (1u64 << (id % 64)) != 0
    }

    fn define(&mut self, id: u16) {
        if self.is_defined(id) {
            self.warning(
                Check::DuplicateCharacter,
                format!("character {id} is defined again"),
            );
        } else {
            self.defined[(id / 64) as usize] |= 1u64 << (id % 64);
            self.stats.characters += 1;
        }
    }

    fn use_id(&mut self, id: u16, what: &str, severity: Severity) {
        if !self.is_defined(id) {
            self.push(
                severity,
                Check::UndefinedCharacter,
                format!("{what} uses character {id}, which is not defined before it"),
                true,
            );
        }
    }

    fn use_later(&mut self, id: u16, what: String) {
        if !self.is_defined(id) {
            self.deferred.push(Deferred {
                id,
                what,
                at: self.at,
            });
        }
    }

    fn fills(&mut self, fills: &[FillStyle]) {
        for f in fills {
            if let FillStyle::Bitmap { id, .. } = f
                && *id != u16::MAX
            {
                // Flash draws nothing for a missing bitmap; authoring tools do emit these.
                self.use_id(*id, "a bitmap fill", Severity::Warning);
            }
        }
    }

    fn shape_records(&mut self, records: &[ShapeRecord]) {
        for r in records {
            if let ShapeRecord::StyleChange(sc) = r
                && let Some(ns) = &sc.new_styles
            {
                self.fills(&ns.fill_styles);
            }
        }
    }

    fn avm1(&mut self, data: &[u8], what: &str) {
        if !self.scripts {
            return;
        }
        self.stats.avm1_blocks += 1;
        match actions::avm1(data, self.version) {
            Ok(n) => self.stats.avm1_actions += n,
            Err(e) => self.error(Check::Avm1, format!("{what}: {e}")),
        }
    }

    fn avm2(&mut self, data: &[u8]) {
        if !self.scripts {
            return;
        }
        self.stats.abc_blocks += 1;
        match actions::avm2(data) {
            Ok(c) => {
                self.stats.abc_method_bodies += c.method_bodies;
                self.stats.abc_ops += c.ops;
            }
            Err(e) => self.error(Check::Avm2, e),
        }
    }

    fn visit(&mut self, tag: &Tag<'_>, sprite: Option<u16>) {
        match tag {
            Tag::FileAttributes(a) if self.at.index == 0 && sprite.is_none() => {
                self.as3 = a.contains(swf::FileAttributes::IS_ACTION_SCRIPT_3);
            }
            Tag::SetBackgroundColor(c) if self.background.is_none() => {
                self.background = Some([c.r, c.g, c.b]);
            }
            Tag::DefineShape(s) => {
                self.define(s.id);
                self.fills(&s.styles.fill_styles);
                self.shape_records(&s.shape);
            }
            Tag::DefineMorphShape(m) => {
                self.define(m.id);
                self.fills(&m.start.fill_styles);
            }
            Tag::DefineBits { id, .. } | Tag::DefineBitsJpeg2 { id, .. } => self.define(*id),
            Tag::DefineBitsJpeg3(j) => self.define(j.id),
            Tag::DefineBitsLossless(b) => self.define(b.id),
            Tag::DefineButton(b) | Tag::DefineButton2(b) => {
                for r in &b.records {
                    self.use_later(r.id, format!("button {}", b.id));
                }
                self.define(b.id);
                for a in &b.actions {
                    self.avm1(a.action_data, "button action");
                }
            }
            Tag::DefineEditText(t) => {
                if let Some(f) = t.font_id() {
                    self.use_id(f, "DefineEditText", Severity::Warning);
                }
                self.define(t.id());
            }
            Tag::DefineFont(f) => self.define(f.id),
            Tag::DefineFont2(f) => self.define(f.id),
            Tag::DefineFont4(f) => self.define(f.id),
            Tag::DefineSound(s) => self.define(s.id),
            Tag::DefineVideoStream(v) => self.define(v.id),
            Tag::DefineBinaryData(b) => self.define(b.id),
            Tag::DefineText(t) | Tag::DefineText2(t) => {
                for r in &t.records {
                    if let Some(f) = r.font_id {
                        self.use_id(f, "a text record", Severity::Warning);
                    }
                }
                self.define(t.id);
            }
            Tag::ImportAssets { imports, .. } => {
                for i in imports {
                    self.define(i.id);
                }
            }
            Tag::PlaceObject(p) => {
                if let PlaceObjectAction::Place(id) | PlaceObjectAction::Replace(id) = p.action {
                    match sprite {
                        Some(sid) => self.use_later(id, format!("PlaceObject in sprite {sid}")),
                        None => self.use_id(id, "PlaceObject", Severity::Error),
                    }
                }
                if let Some(ca) = &p.clip_actions {
                    for r in &ca.records {
                        self.avm1(r.action_data, "clip action");
                    }
                }
            }
            Tag::DoAction(d) => self.avm1(d, "DoAction"),
            Tag::DoInitAction { id, action_data } => {
                self.use_id(*id, "DoInitAction", Severity::Error);
                self.avm1(action_data, "DoInitAction");
            }
            Tag::DoAbc(d) => self.avm2(d),
            Tag::DoAbc2(d) => self.avm2(d.data),
            Tag::StartSound(s) => self.use_id(s.id, "StartSound", Severity::Error),
            Tag::ExportAssets(e) => {
                for a in e {
                    self.use_id(a.id, "ExportAssets", Severity::Warning);
                }
            }
            _ => {}
        }
    }
}
