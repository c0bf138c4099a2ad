//! SWF validation (Ruffle's `swf` crate), synthesis, repair and facts.
//!
//! Validation runs in levels (see `docs/swf.md`):
//! 1. header: exactly the ByteCraft paper's "fully broken" check ([`header`]);
//! 2. structure: length field vs real size, complete decompression, every tag parsed by the swf
//!    crate, a clean End tag, frame counts, character ids defined before use, AVM1 and AVM2
//!    scripts decoding ([`structure`], [`actions`]).
//!
//! Everything works on `&[u8]` with bounded memory, no file system and no threads, so the same
//! code runs natively, in the CLI's worker threads and in wasm.

mod abc_guard;
pub mod actions;
pub mod adherence;
pub mod decompress;
pub mod framing;
pub mod fws;
pub mod grammar;
pub mod header;
pub mod repair;
pub mod report;
pub mod similarity;
pub mod structure;
pub mod synth;

pub use report::{Check, Finding, HeaderFacts, Report, Severity, Stats, Verdict};

use decompress::Ending;
use std::collections::BTreeMap;

/// Validation limits and switches.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest decompressed body accepted, whatever the length field claims. Generated files are
    /// tens of KB and real ones rarely exceed a few MB; 64 MiB keeps a lying header harmless.
    pub max_body_len: usize,
    /// Findings kept in the report (the first error is always kept).
    pub max_findings: usize,
    /// Decode AVM1/AVM2 scripts (the most expensive part of level 2).
    pub scripts: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_body_len: 64 << 20,
            max_findings: 32,
            scripts: true,
        }
    }
}

/// Validate one file with default options.
pub fn validate(bytes: &[u8]) -> Report {
    validate_with(bytes, &Options::default())
}

/// Validate one file. Never panics on any input (the fuzz target holds it to that).
pub fn validate_with(bytes: &[u8], opts: &Options) -> Report {
    let mut sink = structure::Sink::new(opts.max_findings);
    let parsed = match header::parse(bytes, opts.max_body_len) {
        Ok(p) => p,
        Err(e) => {
            sink.push(Finding {
                severity: Severity::Error,
                level: 1,
                check: e.check(),
                message: e.to_string(),
                tag_index: None,
                tag_name: None,
                offset: None,
            });
            return finish(sink, 0, None, BTreeMap::new(), Stats::default());
        }
    };
    let data: &[u8] = &parsed.body.data;
    let declared_body = u64::from(parsed.declared_length) - 8;
    let real_len = data.len() as u64 + 8;
    let level2 = |check, message: String| Finding {
        severity: Severity::Error,
        level: 2,
        check,
        message,
        tag_index: None,
        tag_name: None,
        offset: None,
    };
    match &parsed.body.ending {
        Ending::Capped if declared_body > opts.max_body_len as u64 => sink.push(level2(
            Check::TooLarge,
            format!(
                "the body exceeds the {} byte limit (length field claims {})",
                opts.max_body_len, parsed.declared_length
            ),
        )),
        Ending::Capped => sink.push(level2(
            Check::LengthMismatch,
            format!(
                "data continues past the length field's {} bytes",
                parsed.declared_length
            ),
        )),
        Ending::Incomplete(msg) => {
            let mut f = level2(Check::DecompressionIncomplete, msg.clone());
            if data.len() as u64 >= declared_body {
                // Everything the header promised arrived; only the stream's tail is off.
                f.severity = Severity::Warning;
            }
            sink.push(f);
        }
        Ending::Complete => {}
    }
    if !matches!(parsed.body.ending, Ending::Capped)
        && real_len != u64::from(parsed.declared_length)
    {
        sink.push(level2(
            Check::LengthMismatch,
            format!(
                "length field says {} bytes, the real uncompressed size is {real_len}",
                parsed.declared_length
            ),
        ));
    }
    let out = structure::walk(
        &data[parsed.tags_offset..],
        8 + parsed.tags_offset as u64,
        parsed.version,
        parsed.num_frames,
        real_len == u64::from(parsed.declared_length),
        opts.scripts,
        &mut sink,
    );
    let facts = HeaderFacts {
        signature: String::from_utf8_lossy(&parsed.signature).into_owned(),
        compression: parsed.compression.as_str().to_string(),
        version: parsed.version,
        declared_length: parsed.declared_length,
        actual_length: real_len,
        file_length: bytes.len() as u64,
        stage_width: f64::from(parsed.stage[1]) / 20.0 - f64::from(parsed.stage[0]) / 20.0,
        stage_height: f64::from(parsed.stage[3]) / 20.0 - f64::from(parsed.stage[2]) / 20.0,
        stage_twips: parsed.stage,
        frame_rate: parsed.frame_rate(),
        frame_count: parsed.num_frames,
        background: out
            .background
            .map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}")),
        as3: out.as3,
    };
    finish(sink, 1, Some(facts), out.tags, out.stats)
}

fn finish(
    sink: structure::Sink,
    header_level: u8,
    header: Option<HeaderFacts>,
    tags: BTreeMap<String, u32>,
    stats: Stats,
) -> Report {
    let level1_failed = header_level == 0;
    let (verdict, level_reached) = if level1_failed {
        (Verdict::Broken, 0)
    } else if sink.errors > 0 {
        (Verdict::Damaged, 1)
    } else {
        (Verdict::Valid, 2)
    };
    let valid_as_written = verdict == Verdict::Valid && sink.not_as_written == 0;
    Report {
        verdict,
        valid_as_written,
        level_reached,
        first_error: sink.first_error,
        findings: sink.findings,
        findings_dropped: sink.dropped,
        header,
        tags,
        stats,
    }
}

#[cfg(test)]
mod tests;
