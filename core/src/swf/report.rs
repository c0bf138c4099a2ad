//! The validation report: everything a caller (CLI, wasm page, test, training-data filter) needs
//! to decide what to do with one file, as a plain serde struct so it crosses into JSON and JS
//! unchanged.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The overall outcome for one file.
///
/// The split follows what a player does with the file: `Broken` files are refused outright (the
/// ByteCraft paper's "fully broken", and Ruffle's `load()` rejects them), `Damaged` files load but
/// their tag stream is not well-formed, so what they show depends on how forgiving the player is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Passed level 1 (header) and level 2 (structure).
    Valid,
    /// Passed level 1 but not level 2.
    Damaged,
    /// Failed level 1: the header/metadata does not parse.
    Broken,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Damaged => "damaged",
            Verdict::Broken => "broken",
        }
    }
}

/// How much a finding matters: errors decide the verdict, warnings are reported only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// Stable machine-readable names for every check, so reports can be aggregated without parsing
/// messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    // Level 1: the paper's "fully broken" check.
    Signature,
    Version,
    LengthField,
    Decompression,
    HeaderFields,
    // Level 2: structure.
    LengthMismatch,
    TooLarge,
    DecompressionIncomplete,
    TagFraming,
    TagParse,
    UnknownTag,
    NestingDepth,
    MissingEnd,
    TrailingData,
    FrameCount,
    UndefinedCharacter,
    DuplicateCharacter,
    Avm1,
    Avm2,
}

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// The validation level the check belongs to (1 header, 2 structure).
    pub level: u8,
    pub check: Check,
    pub message: String,
    /// Index of the top-level tag (0 = first tag after the header) the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_index: Option<u32>,
    /// Name of that tag as the `swf` crate calls it (`DefineShape`, `Unknown(255)`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_name: Option<String>,
    /// Byte offset in the uncompressed file (header included), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// What the header says, and what the file really is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderFacts {
    /// `FWS`, `CWS` or `ZWS`.
    pub signature: String,
    /// `none`, `zlib` or `lzma`.
    pub compression: String,
    pub version: u8,
    /// The header's length field: the claimed uncompressed size including the 8-byte preamble.
    pub declared_length: u32,
    /// The real uncompressed size (preamble + decompressed body), capped at the size limit.
    pub actual_length: u64,
    /// Size of the input bytes as given.
    pub file_length: u64,
    pub stage_width: f64,
    pub stage_height: f64,
    /// Stage rectangle in twips: x_min, x_max, y_min, y_max.
    pub stage_twips: [i32; 4],
    pub frame_rate: f64,
    pub frame_count: u16,
    /// Background colour `#rrggbb` from the first SetBackgroundColor tag, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// ActionScript 3 flag from FileAttributes.
    pub as3: bool,
}

/// Counts gathered while walking the tag stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Top-level tags read, End included.
    pub tags: u32,
    /// ShowFrame tags on the main timeline.
    pub frames_shown: u32,
    pub sprites: u32,
    pub characters: u32,
    pub avm1_blocks: u32,
    pub avm1_actions: u64,
    pub abc_blocks: u32,
    pub abc_method_bodies: u32,
    pub abc_ops: u64,
}

/// The result of validating one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    /// Valid as written: `verdict` is `valid` and nothing was forgiven on the way. The file
    /// ends with its End tag (code 0, length 0) exactly at the end of the data, the length
    /// field and the frame count are right, every tag is one the swf crate knows and parses,
    /// and every sprite is framed the same way. `valid` alone also lets through what players
    /// skip: bytes after the End tag, unknown tags, a missing End.
    #[serde(default)]
    pub valid_as_written: bool,
    /// Highest level fully passed: 0 none, 1 header, 2 structure.
    pub level_reached: u8,
    /// The first error found (in file order), if any.
    pub first_error: Option<Finding>,
    /// All findings, errors and warnings, capped at `Options::max_findings`.
    pub findings: Vec<Finding>,
    /// Findings dropped because of the cap.
    pub findings_dropped: u32,
    pub header: Option<HeaderFacts>,
    /// Tag name -> count, sprites' inner tags included.
    pub tags: BTreeMap<String, u32>,
    pub stats: Stats,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    pub fn has_check(&self, check: Check) -> bool {
        self.findings.iter().any(|f| f.check == check)
    }
}
