//! Validator tests: hand-made files for each check, plus the real corpus beside the checkout.

use super::*;
use swf::{
    Color, Compression, Header, PlaceObject, PlaceObjectAction, Rectangle, Tag, Twips, write_swf,
};

fn header(num_frames: u16, compression: Compression) -> Header {
    Header {
        compression,
        version: 10,
        stage_size: Rectangle {
            x_min: Twips::ZERO,
            x_max: Twips::from_pixels(550.0),
            y_min: Twips::ZERO,
            y_max: Twips::from_pixels(400.0),
        },
        frame_rate: swf::Fixed8::from_f32(24.0),
        num_frames,
    }
}

fn place(id: u16, depth: u16) -> Tag<'static> {
    Tag::PlaceObject(Box::new(PlaceObject {
        version: 2,
        action: PlaceObjectAction::Place(id),
        depth,
        matrix: None,
        color_transform: None,
        ratio: None,
        name: None,
        clip_depth: None,
        class_name: None,
        filters: None,
        background_color: None,
        blend_mode: None,
        clip_actions: None,
        has_image: false,
        is_bitmap_cached: None,
        is_visible: None,
        amf_data: None,
    }))
}

fn shape(id: u16) -> Tag<'static> {
    use swf::{FillStyle, Shape, ShapeFlag, ShapeRecord, ShapeStyles, StyleChangeData};
    let r = Rectangle {
        x_min: Twips::ZERO,
        x_max: Twips::from_pixels(10.0),
        y_min: Twips::ZERO,
        y_max: Twips::from_pixels(10.0),
    };
    Tag::DefineShape(Box::new(Shape {
        version: 1,
        id,
        shape_bounds: r,
        edge_bounds: r,
        flags: ShapeFlag::empty(),
        styles: ShapeStyles {
            fill_styles: vec![FillStyle::Color(Color::from_rgb(0xff0000, 255))],
            line_styles: vec![],
        },
        shape: vec![
            ShapeRecord::StyleChange(Box::new(StyleChangeData {
                move_to: None,
                fill_style_0: None,
                fill_style_1: Some(1),
                line_style: None,
                new_styles: None,
            })),
            ShapeRecord::StraightEdge {
                delta: swf::PointDelta::new(Twips::from_pixels(10.0), Twips::ZERO),
            },
            ShapeRecord::StraightEdge {
                delta: swf::PointDelta::new(Twips::ZERO, Twips::from_pixels(10.0)),
            },
            ShapeRecord::StraightEdge {
                delta: swf::PointDelta::new(Twips::from_pixels(-10.0), Twips::from_pixels(-10.0)),
            },
        ],
    }))
}

fn build(num_frames: u16, compression: Compression, tags: &[Tag<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    write_swf(&header(num_frames, compression), tags, &mut out).unwrap();
    out
}

fn good_tags() -> Vec<Tag<'static>> {
    vec![
        Tag::SetBackgroundColor(Color::from_rgb(0x336699, 255)),
        shape(1),
        place(1, 1),
        Tag::DoAction(&[0x07, 0x00]), // Stop, End
        Tag::ShowFrame,
    ]
}

fn checks(r: &Report) -> Vec<Check> {
    r.errors().map(|f| f.check).collect()
}

#[test]
fn a_clean_file_is_valid_with_facts() {
    for c in [Compression::None, Compression::Zlib, Compression::Lzma] {
        let bytes = build(1, c, &good_tags());
        let r = validate(&bytes);
        assert_eq!(r.verdict, Verdict::Valid, "{c:?}: {:?}", r.findings);
        assert_eq!(r.level_reached, 2);
        let h = r.header.as_ref().unwrap();
        assert_eq!((h.stage_width, h.stage_height), (550.0, 400.0));
        assert_eq!(h.frame_rate, 24.0);
        assert_eq!(h.frame_count, 1);
        assert_eq!(h.background.as_deref(), Some("#336699"));
        assert_eq!(h.declared_length as u64, h.actual_length);
        assert_eq!(r.tags.get("DefineShape"), Some(&1));
        assert_eq!(r.tags.get("End"), Some(&1));
        assert_eq!(r.stats.avm1_actions, 1);
    }
}

#[test]
fn header_failures_are_broken() {
    let good = build(1, Compression::None, &good_tags());
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (b"".to_vec(), Check::Signature),
        (b"GIF89a....".to_vec(), Check::Signature),
        (b"FWS\x0a\x10".to_vec(), Check::LengthField),
        ([b"FWS\x00".as_slice(), &good[4..]].concat(), Check::Version),
        (
            [b"FWS\x0a\x04\x00\x00\x00".as_slice(), &good[8..]].concat(),
            Check::LengthField,
        ),
        (good[..9].to_vec(), Check::HeaderFields),
        (
            b"ZWS\x0d\x40\x00\x00\x00\x01".to_vec(),
            Check::Decompression,
        ),
    ];
    for (bytes, check) in cases {
        let r = validate(&bytes);
        assert_eq!(r.verdict, Verdict::Broken, "{bytes:?}");
        assert_eq!(r.level_reached, 0);
        let e = r.first_error.unwrap();
        assert_eq!((e.level, e.check), (1, check), "{}", e.message);
    }
}

#[test]
fn a_lying_length_field_costs_nothing() {
    // CWS claiming 4 GB: the body must be decoded to its real size only, and flagged.
    let mut bytes = build(1, Compression::Zlib, &good_tags());
    bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let r = validate(&bytes);
    assert_eq!(r.verdict, Verdict::Damaged);
    assert_eq!(checks(&r), vec![Check::LengthMismatch]);
    assert!(r.header.unwrap().actual_length < 1000);
    // Over the limit: reported as too large, decoded only up to the limit.
    let opts = Options {
        max_body_len: 16,
        ..Options::default()
    };
    let r = validate_with(&build(1, Compression::Zlib, &good_tags()), &opts);
    assert!(r.has_check(Check::TooLarge), "{:?}", r.findings);
}

#[test]
fn length_mismatch_and_truncation() {
    let good = build(1, Compression::None, &good_tags());
    // Length field one too large (file lost its last byte): mismatch + framing.
    let r = validate(&good[..good.len() - 1]);
    assert_eq!(r.verdict, Verdict::Damaged);
    assert_eq!(r.first_error.unwrap().check, Check::LengthMismatch);
    // Appended junk beyond the length field.
    let r = validate(&[good.as_slice(), b"junk"].concat());
    assert_eq!(checks(&r), vec![Check::LengthMismatch]);
    // Truncated zlib stream.
    let z = build(1, Compression::Zlib, &good_tags());
    let r = validate(&z[..z.len() - 10]);
    assert!(
        r.has_check(Check::DecompressionIncomplete),
        "{:?}",
        r.findings
    );
}

/// Found by `fuzz/fuzz_targets/validate.rs`: a zlib stream whose Adler-32 check is wrong
/// inflates fine here, but the swf crate loses the output of the failing read (all of a small
/// file) and so rejects the file; level 1 said `damaged` where Ruffle's load() fails.
#[test]
fn a_corrupt_zlib_check_fails_level1_like_the_swf_crate() {
    let z = build(1, Compression::Zlib, &good_tags());
    let mut bad = z.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xFF; // the Adler-32 trailer
    assert!(swf::decompress_swf(&bad[..]).is_err());
    let r = validate(&bad);
    assert_eq!(r.verdict, Verdict::Broken, "{:?}", r.findings);
    let f = r.first_error.unwrap();
    assert_eq!((f.level, f.check), (1, Check::Decompression));
    assert!(f.message.contains("zlib stream corrupt"), "{}", f.message);
    // Merely truncated streams are still tolerated by both.
    let cut = &z[..z.len() - 10];
    assert!(swf::decompress_swf(cut).is_ok());
    assert_ne!(validate(cut).verdict, Verdict::Broken);
}

/// Found by `core/tests/swf_corpus_mutations.rs` (the LZMA bomb): lzma-rs hands output over only
/// when its dictionary buffer fills, and the dictionary size comes from the file (8 MiB here).
/// A `ZWS` body longer than the length field (or than the limit) hit the memory limit before any
/// output, so the header fields were lost: "broken", where the swf crate loads the file and a
/// `CWS` body over the limit is "too large".
#[test]
fn a_zws_body_longer_than_its_claim_or_the_limit_keeps_its_header_fields() {
    let z = build(1, Compression::Lzma, &good_tags());
    // Length field covering only the 8-byte preamble and the 13 bytes of header fields.
    let mut short = z.clone();
    short[4..8].copy_from_slice(&21u32.to_le_bytes());
    assert!(swf::decompress_swf(&short[..]).is_ok());
    let r = validate(&short);
    assert_eq!(r.verdict, Verdict::Damaged, "{:?}", r.findings);
    assert_eq!(r.level_reached, 1);
    assert!(r.has_check(Check::LengthMismatch), "{:?}", r.findings);
    assert_eq!(r.header.unwrap().frame_count, 1);
    // Over the limit: too large, decoded up to the limit, header facts kept.
    let opts = Options {
        max_body_len: 16,
        ..Options::default()
    };
    let r = validate_with(&z, &opts);
    assert_eq!(r.verdict, Verdict::Damaged, "{:?}", r.findings);
    assert!(r.has_check(Check::TooLarge), "{:?}", r.findings);
    assert_eq!(r.header.unwrap().stage_width, 550.0);
    // A body of 100 KB against a 16 KiB limit (the dictionary is cut to the limit, so output
    // reaches the sink every 16 KiB).
    let big = vec![0x5au8; 100_000];
    let tags = vec![
        Tag::DefineBinaryData(swf::DefineBinaryData { id: 1, data: &big }),
        Tag::ShowFrame,
    ];
    let z = build(1, Compression::Lzma, &tags);
    assert_eq!(validate(&z).verdict, Verdict::Valid);
    let opts = Options {
        max_body_len: 16 << 10,
        ..Options::default()
    };
    let r = validate_with(&z, &opts);
    assert_eq!(r.verdict, Verdict::Damaged, "{:?}", r.findings);
    assert!(r.has_check(Check::TooLarge), "{:?}", r.findings);
}

#[test]
fn structure_errors_name_the_tag() {
    // Missing End: rewrite the length to match a stream cut before End.
    let mut good = build(1, Compression::None, &good_tags());
    good.truncate(good.len() - 2);
    let n = good.len() as u32;
    good[4..8].copy_from_slice(&n.to_le_bytes());
    let r = validate(&good);
    // Clean tag boundary and a correct length: played by Flash and Ruffle, so only a warning.
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(r.has_check(Check::MissingEnd));
    // Without fixing the length field it is a cut-off file: an error.
    let mut cut = build(1, Compression::None, &good_tags());
    cut.truncate(cut.len() - 2);
    let r = validate(&cut);
    assert_eq!(checks(&r), vec![Check::LengthMismatch, Check::MissingEnd]);

    // Frame count mismatch.
    let r = validate(&build(3, Compression::None, &good_tags()));
    assert_eq!(checks(&r), vec![Check::FrameCount]);

    // Undefined character: PlaceObject before DefineShape.
    let tags = vec![place(1, 1), shape(1), Tag::ShowFrame];
    let r = validate(&build(1, Compression::None, &tags));
    let e = r.first_error.unwrap();
    assert_eq!(e.check, Check::UndefinedCharacter);
    assert_eq!(e.tag_index, Some(0));
    assert_eq!(e.tag_name.as_deref(), Some("PlaceObject2"));

    // Undecodable AVM1: Push claiming 10 bytes with 1 present.
    let tags = vec![Tag::DoAction(&[0x96, 10, 0, 1]), Tag::ShowFrame];
    let r = validate(&build(1, Compression::None, &tags));
    let e = r.first_error.unwrap();
    assert_eq!((e.check, e.tag_index), (Check::Avm1, Some(0)));

    // Undecodable ABC.
    let tags = vec![Tag::DoAbc(&[1, 2, 3]), Tag::ShowFrame];
    let r = validate(&build(1, Compression::None, &tags));
    assert_eq!(checks(&r), vec![Check::Avm2]);
}

#[test]
fn a_tag_that_does_not_parse_is_reported_with_index_and_name() {
    // SetBackgroundColor with 1 byte of body instead of 3; framing stays intact.
    let mut bytes = build(1, Compression::None, &[Tag::ShowFrame]);
    let tags_at = bytes.len() - 4; // ShowFrame, End
    let bad = [0x41u8, 0x02, 0xff]; // code 9, length 1
    bytes.splice(tags_at..tags_at, bad);
    let n = bytes.len() as u32;
    bytes[4..8].copy_from_slice(&n.to_le_bytes());
    let r = validate(&bytes);
    let e = r.first_error.unwrap();
    assert_eq!(e.check, Check::TagParse);
    assert_eq!(e.tag_index, Some(0));
    assert_eq!(e.tag_name.as_deref(), Some("SetBackgroundColor"));
    // A tag whose length runs past the end is a framing error.
    let mut bytes = build(1, Compression::None, &[Tag::ShowFrame]);
    let at = bytes.len() - 4;
    bytes[at] = 0x7f; // ShowFrame with long length follows... make it claim 0x3f (long form)
    let r = validate(&bytes);
    assert!(r.has_check(Check::TagFraming), "{:?}", r.findings);
}

#[test]
fn deep_sprite_nesting_is_refused_without_recursion() {
    // DefineSprite(DefineSprite(...)) 10_000 deep: would overflow the parser's stack.
    let mut inner: Vec<u8> = vec![0, 0]; // End
    for _ in 0..10_000 {
        let mut body = vec![1, 0, 1, 0]; // id 1, 1 frame
        body.extend_from_slice(&inner);
        body.extend_from_slice(&[0, 0]);
        let mut t = Vec::new();
        t.extend_from_slice(&((39u16 << 6) | 0x3f).to_le_bytes());
        t.extend_from_slice(&(body.len() as u32).to_le_bytes());
        t.extend_from_slice(&body);
        inner = t;
    }
    let mut bytes = build(0, Compression::None, &[]);
    let at = bytes.len() - 2;
    bytes.splice(at..at, inner);
    let n = bytes.len() as u32;
    bytes[4..8].copy_from_slice(&n.to_le_bytes());
    let r = validate(&bytes);
    assert!(r.has_check(Check::NestingDepth), "{:?}", r.findings);
}

#[test]
fn random_mutations_never_panic() {
    let base = build(1, Compression::Zlib, &good_tags());
    let fws = build(1, Compression::None, &good_tags());
    let mut rng = crate::rng::Rng::new(7);
    for i in 0..3000 {
        let mut b = if i % 2 == 0 {
            base.clone()
        } else {
            fws.clone()
        };
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len() as u64) as usize;
            b[at] = rng.next_u32() as u8;
        }
        if rng.chance(0.3) {
            let keep = rng.below(b.len() as u64 + 1) as usize;
            b.truncate(keep);
        }
        let r = validate(&b);
        assert_eq!(r.verdict == Verdict::Broken, r.level_reached == 0);
    }
}

/// The real SWF corpus, beside the repository in development and CI; `None` when absent.
fn corpus() -> Option<Vec<std::path::PathBuf>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/swf-corpus");
    if !root.is_dir() {
        eprintln!("corpus not found at {}; skipping", root.display());
        return None;
    }
    fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "swf") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&root, &mut v);
    v.sort();
    Some(v)
}

#[test]
fn level1_agrees_with_the_swf_crate_on_the_corpus() {
    let Some(files) = corpus() else { return };
    assert!(files.len() > 2000);
    let mut disagree = Vec::new();
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        let ours = header::parse(&bytes, 64 << 20).is_ok();
        let theirs = swf::decompress_swf(&bytes[..]).is_ok();
        if ours != theirs {
            disagree.push(format!("{}: ours {ours}, swf {theirs}", p.display()));
        }
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
}

/// The ABC pre-pass (`abc_guard`) never refuses a block the swf crate parses: every DoABC
/// block of the corpus (top level and in sprites are the same tags) gets the same answer.
#[test]
fn abc_guard_agrees_with_the_swf_crate_on_the_corpus() {
    let Some(files) = corpus() else { return };
    let mut blocks = 0;
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        let Ok(buf) = swf::decompress_swf(&bytes[..]) else {
            continue;
        };
        let Ok(parsed) = swf::parse_swf(&buf) else {
            continue;
        };
        for tag in &parsed.tags {
            let data = match tag {
                Tag::DoAbc(d) => *d,
                Tag::DoAbc2(d) => d.data,
                _ => continue,
            };
            blocks += 1;
            if swf::avm2::read::Reader::new(data).read().is_ok() {
                assert_eq!(super::abc_guard::check(data), Ok(()), "{}", p.display());
            }
        }
    }
    assert!(blocks > 100, "{blocks} ABC blocks");
}

/// Throughput of `validate` over the corpus held in memory (no file I/O), one thread, best of 5
/// passes. Run: `cargo test --release -p gamegen-core swf::tests::bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_validate_corpus_in_memory() {
    let Some(files) = corpus() else { return };
    let data: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let bytes: usize = data.iter().map(|d| d.len()).sum();
    let mut best = f64::MAX;
    let mut uncompressed = 0u64;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        uncompressed = 0;
        for d in &data {
            let r = validate(d);
            uncompressed += r.header.map_or(0, |h| h.actual_length);
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    eprintln!(
        "{} files, {:.1} MB on disk ({:.1} MB uncompressed): best pass {:.3} s = {:.1} MB/s on disk, {:.1} MB/s uncompressed",
        data.len(),
        bytes as f64 / 1e6,
        uncompressed as f64 / 1e6,
        best,
        bytes as f64 / 1e6 / best,
        uncompressed as f64 / 1e6 / best
    );
}

/// Sets the header's length field to the real size (for cases that change the size on purpose).
fn fix_length(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len() as u32;
    bytes[4..8].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// One table: (name, file, old verdict, valid as written). The old verdict forgives what a
/// player skips; the new one does not.
#[test]
fn valid_as_written_table() {
    let good = build(1, Compression::None, &good_tags());
    let end = good.len() - 2;
    let sprite = |inner: &[u8]| {
        // DefineSprite id 9, 1 frame, then `inner` as its tag stream (long form header).
        let mut body = vec![9, 0, 1, 0];
        body.extend_from_slice(inner);
        let mut tag = ((39u16 << 6) | 0x3f).to_le_bytes().to_vec();
        tag.extend_from_slice(&(body.len() as u32).to_le_bytes());
        tag.extend_from_slice(&body);
        tag
    };
    let with_tag_before_end = |tag: &[u8]| {
        let mut b = good[..end].to_vec();
        b.extend_from_slice(tag);
        b.extend_from_slice(&good[end..]);
        fix_length(b)
    };
    let mut wrong_frames = good.clone();
    // The frame count is the last two bytes of the header, just before the first tag.
    let rect_bytes = (5 + 4 * usize::from(good[8] >> 3)).div_ceil(8);
    wrong_frames[8 + rect_bytes + 2] = 2;
    let cases: Vec<(&str, Vec<u8>, Verdict, bool)> = vec![
        (
            "written by the swf crate",
            good.clone(),
            Verdict::Valid,
            true,
        ),
        (
            "zlib-compressed",
            build(1, Compression::Zlib, &good_tags()),
            Verdict::Valid,
            true,
        ),
        (
            "00 00 in the middle, then junk",
            fix_length([&good[..end], &[0, 0, 0x40, 0, 0xde, 0xad, 0, 0]].concat()),
            Verdict::Valid,
            false,
        ),
        (
            "zeros after the End tag",
            fix_length([good.as_slice(), &[0, 0, 0, 0]].concat()),
            Verdict::Valid,
            false,
        ),
        (
            "End tag with a body",
            fix_length([&good[..end], &[0x02, 0x00, 0, 0]].concat()),
            Verdict::Valid,
            false,
        ),
        (
            "wrong file length",
            {
                let mut b = good.clone();
                b[4] += 1;
                b
            },
            Verdict::Damaged,
            false,
        ),
        ("wrong frame count", wrong_frames, Verdict::Damaged, false),
        (
            "unknown tag",
            with_tag_before_end(&[(1000u16 << 6) as u8, (1000u16 << 6 >> 8) as u8]),
            Verdict::Valid,
            false,
        ),
        (
            "truncated tag",
            fix_length(good[..end - 3].to_vec()),
            Verdict::Damaged,
            false,
        ),
        (
            "no End tag",
            fix_length(good[..end].to_vec()),
            Verdict::Valid,
            false,
        ),
        (
            "sprite framed right",
            with_tag_before_end(&sprite(&[0x40, 0, 0, 0])),
            Verdict::Valid,
            true,
        ),
        (
            "sprite with junk after its End",
            with_tag_before_end(&sprite(&[0x40, 0, 0, 0, 7, 7])),
            Verdict::Valid,
            false,
        ),
        (
            "sprite with a wrong frame count",
            with_tag_before_end(&sprite(&[0x40, 0, 0x40, 0, 0, 0])),
            Verdict::Valid,
            false,
        ),
    ];
    for (name, bytes, verdict, as_written) in cases {
        let r = validate(&bytes);
        assert_eq!(r.verdict, verdict, "{name}: {:?}", r.findings);
        assert_eq!(r.valid_as_written, as_written, "{name}: {:?}", r.findings);
    }
}

#[test]
fn synthesised_files_are_valid_as_written() {
    for i in 0..100 {
        let s = super::synth::synthesize(5, i);
        let r = validate(&s.bytes);
        assert!(r.valid_as_written, "file {i}: {:?}", r.findings);
    }
}

#[test]
fn reports_without_the_new_field_still_parse() {
    let r = validate(&build(1, Compression::None, &good_tags()));
    let mut v = serde_json::to_value(&r).unwrap();
    v.as_object_mut().unwrap().remove("valid_as_written");
    let old: Report = serde_json::from_value(v).unwrap();
    assert!(!old.valid_as_written);
    assert_eq!(old.verdict, Verdict::Valid);
}
