//! The external numerical record (MaaG's numerical module, outside the network).
//!
//! LogicNet only says *whether* an event fires this frame; the arithmetic is done here, exactly,
//! and the resulting score is handed back to the DiT as three digit tokens (hundreds, tens,
//! units) so the network only has to draw digits, never to count.

use serde::{Deserialize, Serialize};

/// Digits shown to the DiT: hundreds, tens, units of `score mod 1000` (the games' scores stay
/// well below 1000 in an episode; wrapping keeps the token ids valid whatever happens).
pub fn score_digits(score: u32) -> [u8; 3] {
    let s = score % 1000;
    [(s / 100) as u8, (s / 10 % 10) as u8, (s % 10) as u8]
}

/// The running score of a session and which event bits add to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreRecord {
    pub score: u32,
    /// Event bits (see `games::Events`) that add one point each when they fire.
    pub scoring_events: u8,
    /// Event bits that end the episode (kept so callers can show "game over").
    pub ending_events: u8,
    /// Set once an ending event has fired.
    pub ended: bool,
}

impl ScoreRecord {
    pub fn new(score: u32, scoring_events: u8, ending_events: u8) -> Self {
        Self {
            score,
            scoring_events,
            ending_events,
            ended: false,
        }
    }

    /// Apply the events of one frame (a bit set); returns the new score.
    pub fn apply(&mut self, events: u8) -> u32 {
        self.score = self
            .score
            .saturating_add((events & self.scoring_events).count_ones());
        if events & self.ending_events != 0 {
            self.ended = true;
        }
        self.score
    }

    pub fn digits(&self) -> [u8; 3] {
        score_digits(self.score)
    }
}

/// Turn LogicNet's per-event probabilities into an event bit set (bit `i` for output `i`).
pub fn events_from_probs(probs: &[f32], threshold: f32) -> u8 {
    probs
        .iter()
        .take(8)
        .enumerate()
        .filter(|(_, p)| **p > threshold)
        .fold(0u8, |acc, (i, _)| acc | (1 << i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_split_hundreds_tens_units() {
        assert_eq!(score_digits(0), [0, 0, 0]);
        assert_eq!(score_digits(7), [0, 0, 7]);
        assert_eq!(score_digits(94), [0, 9, 4]);
        assert_eq!(score_digits(305), [3, 0, 5]);
        assert_eq!(score_digits(1234), [2, 3, 4]);
    }

    #[test]
    fn record_counts_only_scoring_events() {
        // bit 0 scores, bit 1 is ignored, bit 2 ends the episode.
        let mut r = ScoreRecord::new(93, 0b001, 0b100);
        assert_eq!(r.apply(0b001), 94);
        assert_eq!(r.digits(), [0, 9, 4]);
        assert_eq!(r.apply(0b010), 94);
        assert!(!r.ended);
        assert_eq!(r.apply(0b101), 95);
        assert!(r.ended);
        assert_eq!(events_from_probs(&[0.9, 0.2, 0.51], 0.5), 0b101);
    }
}
