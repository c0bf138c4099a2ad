//! Prompt adherence must never panic: any prompt text read into claims, any bytes read into
//! facts, and a score in [0, 1]. The first byte splits the input into prompt text and SWF bytes.

#![no_main]

use gamegen_core::swf::adherence::{Claims, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (text, swf) = rest.split_at(usize::from(n).min(rest.len()));
    let claims = Claims::from_text(&String::from_utf8_lossy(text));
    if let Ok((facts, a)) = check(swf, &claims) {
        assert!(facts.objects.len() <= gamegen_core::swf::adherence::extract::MAX_OBJECTS);
        if let Some(s) = a.score {
            assert!((0.0..=1.0).contains(&s), "score {s}");
        }
    }
});
