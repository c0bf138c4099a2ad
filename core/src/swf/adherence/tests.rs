use super::claims::{ColorClaim, MotionClaim};
use super::extract::ShapeGuess;
use super::*;
use crate::swf::synth::{self, attrs};

/// Files long enough for every motion to show (short games can end before a pulse or a colour
/// shift has visibly begun, so their prompts claim more than the bytes can show).
fn long_enough(a: &attrs::Attributes) -> bool {
    a.frames >= 24
}

#[test]
fn synthetic_files_satisfy_their_own_records() {
    let (mut total, mut n, mut long) = (0.0, 0, 0);
    for i in 0..300 {
        let s = synth::synthesize(5, i);
        let claims = Claims::from_record(&s.record.attributes);
        let (_, a) = check(&s.bytes, &claims).unwrap();
        let score = a.score.unwrap();
        total += score;
        n += 1;
        if long_enough(&s.record.attributes) {
            long += 1;
            assert_eq!(score, 1.0, "file {i}: {a:#?}");
            assert_eq!(a.unclaimed_objects, 0, "file {i}");
        }
    }
    assert!(long > 200, "{long} long files");
    assert!(total / f64::from(n) > 0.98, "mean {}", total / f64::from(n));
}

#[test]
fn synthetic_files_satisfy_the_words_of_their_prompts() {
    let mut structured = Vec::new();
    let mut free = Vec::new();
    for i in 0..200 {
        let s = synth::synthesize(6, i);
        if !long_enough(&s.record.attributes) {
            continue;
        }
        let facts = extract(&s.bytes).unwrap();
        let claims = Claims::from_text(&s.record.prompt);
        assert_eq!(
            claims.objects.len(),
            s.record.attributes.objects.len() + usize::from(s.record.attributes.player.is_some()),
            "file {i}: {}",
            s.record.prompt
        );
        let a = score(&facts, &claims);
        assert!(a.checks.len() >= 4, "file {i}: {a:?}");
        structured.push(a.score.unwrap());
        for p in &s.record.paraphrases {
            free.push(score(&facts, &Claims::from_text(p)).score.unwrap());
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Named colours are nearest-name matches, which the palette makes unambiguous.
    assert!(mean(&structured) > 0.99, "structured {}", mean(&structured));
    assert!(mean(&free) > 0.97, "paraphrases {}", mean(&free));
}

#[test]
fn a_file_does_not_satisfy_another_files_prompt() {
    let mut scores = Vec::new();
    for i in 0..100 {
        let file = synth::synthesize(7, i);
        let other = synth::synthesize(7, i + 1000);
        let claims = Claims::from_record(&other.record.attributes);
        scores.push(check(&file.bytes, &claims).unwrap().1.score.unwrap());
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    assert!(mean < 0.5, "mean {mean}");
}

#[test]
fn reads_a_structured_prompt() {
    let p = "Please generate a video game with the following specifications:\n\
             - Frame rate: 30.0\n- Resolution: 640x480\n- Language(s): English\n\
             - Title: Spinning star Dodge\n- Size: 3KB\n\
             - Description: This is a small game on a dark blue background: the player moves a \
             red rectangle with the arrow keys while a yellow 5-pointed star that spins \
             counter-clockwise and a radial green-and-white ellipse that drifts up and to the left.";
    let c = Claims::from_text(p);
    assert_eq!(c.resolution, Some((640, 480)));
    assert_eq!(c.frame_rate, Some(30.0));
    assert_eq!(c.interactive, Some(true));
    assert_eq!(c.background.as_ref().unwrap().name, "dark blue");
    assert_eq!(c.objects.len(), 3, "{:?}", c.objects);
    assert!(c.objects[0].player);
    assert_eq!(c.objects[0].shape, Some(ShapeGuess::Rectangle));
    assert_eq!(c.objects[0].motion, None);
    assert_eq!(c.objects[1].shape, Some(ShapeGuess::Star { points: 5 }));
    assert_eq!(c.objects[1].color.as_ref().unwrap().name, "yellow");
    assert_eq!(
        c.objects[1].motion,
        Some(MotionClaim::Spin {
            clockwise: Some(false)
        })
    );
    assert_eq!(c.objects[2].color.as_ref().unwrap().name, "green");
    assert_eq!(
        c.objects[2].motion,
        Some(MotionClaim::Drift { dx: -1, dy: -1 })
    );
}

#[test]
fn reads_plain_sentences_and_skips_titles() {
    let c = Claims::from_text(
        "Bouncing hexagons: a teal circle that fades to pink and back. Beige backdrop, \
         320 by 240 pixels, 12 frames per second, 40 frames.",
    );
    assert_eq!(c.resolution, Some((320, 240)));
    assert_eq!(c.frame_rate, Some(12.0));
    assert_eq!(c.frames, Some(40));
    assert_eq!(c.background.as_ref().unwrap().name, "beige");
    assert_eq!(c.interactive, None);
    assert_eq!(c.objects.len(), 1, "the title's hexagons are not an object");
    assert_eq!(c.objects[0].shape, Some(ShapeGuess::Ellipse));
    match &c.objects[0].motion {
        Some(MotionClaim::Fade {
            to: Some(ColorClaim { name, .. }),
        }) => assert_eq!(name, "pink"),
        m => panic!("{m:?}"),
    }
    assert!(Claims::from_text("something nice").is_empty());
}

#[test]
fn broken_headers_are_an_error_and_damage_keeps_what_was_read() {
    assert!(extract(b"GIF89a").is_err());
    assert!(extract(b"").is_err());
    let s = synth::synthesize(3, 1);
    let cut = &s.bytes[..s.bytes.len() * 2 / 3];
    let f = extract(cut).unwrap();
    assert_eq!(f.background.map(|_| ()), Some(()));
    assert!(f.shown_frames < s.record.attributes.frames);
    // Every prefix and a sweep of byte flips: an answer each, no panic.
    for n in (0..s.bytes.len()).step_by(7) {
        let _ = extract(&s.bytes[..n]);
    }
    let mut b = s.bytes.clone();
    for i in (8..b.len()).step_by(5) {
        b[i] ^= 0x5a;
        let _ = extract(&b);
        b[i] ^= 0x5a;
    }
}

#[test]
fn shapes_are_named_from_their_edges() {
    let shapes = [
        (attrs::ShapeKind::Rectangle, ShapeGuess::Rectangle),
        (attrs::ShapeKind::Ellipse, ShapeGuess::Ellipse),
        (
            attrs::ShapeKind::Polygon { sides: 3 },
            ShapeGuess::Polygon { sides: 3 },
        ),
        (
            attrs::ShapeKind::Polygon { sides: 4 },
            ShapeGuess::Polygon { sides: 4 },
        ),
        (
            attrs::ShapeKind::Polygon { sides: 8 },
            ShapeGuess::Polygon { sides: 8 },
        ),
        (
            attrs::ShapeKind::Star { points: 4 },
            ShapeGuess::Star { points: 4 },
        ),
        (
            attrs::ShapeKind::Star { points: 8 },
            ShapeGuess::Star { points: 8 },
        ),
    ];
    for (kind, want) in shapes {
        let mut a = synth::synthesize(1, 0).record.attributes;
        a.player = None;
        a.objects.truncate(1);
        a.objects[0].shape = kind;
        a.objects[0].width = 60.0;
        a.objects[0].height = 60.0;
        let f = extract(&synth::build::build(&a)).unwrap();
        assert_eq!(f.objects[0].shape, want, "{kind:?}");
    }
}
