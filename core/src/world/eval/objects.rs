//! Judging the detectors' reading of a frame against the reference, and summing the verdicts
//! up for one source of frames (the real frames, their VAE reconstructions, one-step
//! predictions, rollouts), so that the evaluation can say where an object is lost.
//!
//! The reference is the recorded truth where the episode has it (the score, the Pong ball and
//! paddles, Pac-Man's fixed screen spot) and the real frame's own detections where it has none
//! (the dots and walls in view; the detectors are exact on real frames, see [`super::detect`]).

use serde::{Deserialize, Serialize};

use super::detect::{Detector, FrameFacts, Point};
use crate::games::{GameKind, Position};

/// A detected dot matches a reference dot at most this far away (pixels).
pub const DOT_MATCH_PX: f64 = 2.0;
/// The frame whose dots are also reported on their own (MaaG-style "after 64 frames").
pub const DOTS_AT_FRAME: usize = 64;

/// What a frame should show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reference {
    pub score: u32,
    /// Pong: the ball's centre when the real frame shows it.
    pub ball: Option<Point>,
    /// Pong: the centre rows of the left and right paddles.
    pub paddles: [Option<f64>; 2],
    /// Pac-Man: where he is drawn.
    pub pacman: Option<Point>,
    pub dots: Vec<Point>,
    pub walls: Vec<bool>,
}

impl Reference {
    /// The reference of a recorded frame: its score, its player and other positions (as the
    /// engine reported them, [`crate::games::StepResult`]) and what the detectors read from the
    /// real frame itself.
    pub fn new(
        game: GameKind,
        score: u32,
        player: Position,
        aux: &[Position],
        real: &FrameFacts,
    ) -> Self {
        let mut r = Reference {
            score,
            ..Default::default()
        };
        match game {
            GameKind::Traveler => {}
            GameKind::Pong => {
                // aux: the right paddle, then the ball.
                r.ball = real
                    .ball
                    .and(aux.get(1))
                    .map(|b| Point::new(b.x as f64, b.y as f64));
                r.paddles = [Some(player.y as f64), aux.first().map(|p| p.y as f64)];
            }
            GameKind::Pacman => {
                r.pacman = Some(Detector::pacman_home());
                r.dots = real.dots.clone();
                r.walls = real.walls.clone();
            }
        }
        r
    }
}

/// Dot counts of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DotCounts {
    /// Detected dots matched one-to-one with a reference dot.
    pub matched: usize,
    pub detected: usize,
    pub reference: usize,
}

/// The verdict on one frame. `None` where the reference has nothing to judge; an inner `None`
/// where the reference shows the object and the frame does not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameCheck {
    /// The score read from the frame is the recorded one.
    pub score_right: bool,
    /// Ball position error (pixels).
    pub ball: Option<Option<f64>>,
    /// Paddle position errors (pixels, vertical).
    pub paddles: [Option<Option<f64>>; 2],
    /// Pac-Man position error (pixels).
    pub pacman: Option<Option<f64>>,
    pub dots: DotCounts,
    /// Wall pixels in both / in either (`None` when neither has walls or the game has none).
    pub walls: Option<(usize, usize)>,
}

/// Greedy one-to-one matching of `found` dots to `want` dots within [`DOT_MATCH_PX`], nearest
/// pairs first.
fn match_dots(found: &[Point], want: &[Point]) -> usize {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, f) in found.iter().enumerate() {
        for (j, w) in want.iter().enumerate() {
            let d = f.dist(w);
            if d <= DOT_MATCH_PX {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut used_f, mut used_w) = (vec![false; found.len()], vec![false; want.len()]);
    let mut matched = 0;
    for (_, i, j) in pairs {
        if !used_f[i] && !used_w[j] {
            used_f[i] = true;
            used_w[j] = true;
            matched += 1;
        }
    }
    matched
}

/// Judge what was read from a frame against what it should show.
pub fn check(facts: &FrameFacts, reference: &Reference) -> FrameCheck {
    let walls = (!reference.walls.is_empty()).then(|| {
        let mut inter = 0;
        let mut union = 0;
        for (i, &want) in reference.walls.iter().enumerate() {
            let got = facts.walls.get(i).copied().unwrap_or(false);
            inter += (got && want) as usize;
            union += (got || want) as usize;
        }
        (inter, union)
    });
    FrameCheck {
        score_right: facts.score == Some(reference.score),
        ball: reference.ball.map(|b| facts.ball.map(|f| f.dist(&b))),
        paddles: std::array::from_fn(|i| {
            reference.paddles[i].map(|p| facts.paddles[i].map(|f| (f - p).abs()))
        }),
        pacman: reference.pacman.map(|p| facts.pacman.map(|f| f.dist(&p))),
        dots: DotCounts {
            matched: match_dots(&facts.dots, &reference.dots),
            detected: facts.dots.len(),
            reference: reference.dots.len(),
        },
        walls: walls.filter(|&(_, union)| union > 0),
    }
}

/// A source's verdicts summed up. Shares are in `[0, 1]`; `None` where the game has no such
/// object (or no frame showed it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectSummary {
    pub frames: usize,
    /// Frames whose score reads as the recorded one.
    pub score_ocr: Option<f64>,
    /// Pong: frames whose real frame shows the ball.
    pub ball_frames: usize,
    /// Of those: the ball found at all, within 1 px, within 4 px; the median error where found.
    pub ball_found: Option<f64>,
    pub ball_within_1px: Option<f64>,
    pub ball_within_4px: Option<f64>,
    pub ball_median_px: Option<f64>,
    /// Pong: both paddles pooled: found, and the median vertical error where found.
    pub paddle_found: Option<f64>,
    pub paddle_median_px: Option<f64>,
    /// Pac-Man: found, within 1 px, median error where found.
    pub pacman_found: Option<f64>,
    pub pacman_within_1px: Option<f64>,
    pub pacman_median_px: Option<f64>,
    /// Pac-Man: dots over all frames (micro-averaged).
    pub dot_precision: Option<f64>,
    pub dot_recall: Option<f64>,
    /// The same at frame [`DOTS_AT_FRAME`] only (episodes that reach it).
    pub dot_precision_at_64: Option<f64>,
    pub dot_recall_at_64: Option<f64>,
    pub dot_frames_at_64: usize,
    /// Pac-Man: mean over frames of the wall IoU.
    pub wall_iou: Option<f64>,
}

fn share(hits: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| hits as f64 / of as f64)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Presence share, share within `px`, median error where present.
fn positions(errors: &[Option<f64>], px: f64) -> (Option<f64>, Option<f64>, Option<f64>) {
    let found: Vec<f64> = errors.iter().flatten().copied().collect();
    (
        share(found.len(), errors.len()),
        share(found.iter().filter(|&&e| e <= px).count(), errors.len()),
        median(found),
    )
}

fn precision_recall(d: &[DotCounts]) -> (Option<f64>, Option<f64>) {
    let m: usize = d.iter().map(|c| c.matched).sum();
    let det: usize = d.iter().map(|c| c.detected).sum();
    let refs: usize = d.iter().map(|c| c.reference).sum();
    (share(m, det), share(m, refs))
}

impl ObjectSummary {
    /// Sum up the checks of `game`'s frames, each with its frame index in its episode (the
    /// first generated frame is 1).
    pub fn of<'a>(
        game: GameKind,
        checks: impl IntoIterator<Item = (usize, &'a FrameCheck)>,
    ) -> Self {
        let checks: Vec<(usize, &FrameCheck)> = checks.into_iter().collect();
        let mut s = ObjectSummary {
            frames: checks.len(),
            score_ocr: share(
                checks.iter().filter(|(_, c)| c.score_right).count(),
                checks.len(),
            ),
            ..Default::default()
        };
        match game {
            GameKind::Traveler => {}
            GameKind::Pong => {
                let ball: Vec<Option<f64>> = checks.iter().filter_map(|(_, c)| c.ball).collect();
                s.ball_frames = ball.len();
                (s.ball_found, s.ball_within_1px, s.ball_median_px) = positions(&ball, 1.0);
                s.ball_within_4px = positions(&ball, 4.0).1;
                let paddles: Vec<Option<f64>> = checks
                    .iter()
                    .flat_map(|(_, c)| c.paddles.iter().flatten().copied())
                    .collect();
                let (found, _, med) = positions(&paddles, 0.0);
                (s.paddle_found, s.paddle_median_px) = (found, med);
            }
            GameKind::Pacman => {
                let pac: Vec<Option<f64>> = checks.iter().filter_map(|(_, c)| c.pacman).collect();
                (s.pacman_found, s.pacman_within_1px, s.pacman_median_px) = positions(&pac, 1.0);
                let dots: Vec<DotCounts> = checks.iter().map(|(_, c)| c.dots).collect();
                (s.dot_precision, s.dot_recall) = precision_recall(&dots);
                let at: Vec<DotCounts> = checks
                    .iter()
                    .filter(|(t, _)| *t == DOTS_AT_FRAME)
                    .map(|(_, c)| c.dots)
                    .collect();
                s.dot_frames_at_64 = at.len();
                (s.dot_precision_at_64, s.dot_recall_at_64) = precision_recall(&at);
                let ious: Vec<f64> = checks
                    .iter()
                    .filter_map(|(_, c)| c.walls)
                    .map(|(i, u)| i as f64 / u as f64)
                    .collect();
                s.wall_iou =
                    (!ious.is_empty()).then(|| ious.iter().sum::<f64>() / ious.len() as f64);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::new_game;

    fn pos(x: i32, y: i32) -> Position {
        Position { x, y }
    }

    #[test]
    fn pong_verdicts_and_summary() {
        let real = FrameFacts {
            ball: Some(Point::new(30.0, 40.0)),
            ..Default::default()
        };
        let r = Reference::new(
            GameKind::Pong,
            3,
            pos(8, 50),
            &[pos(120, 70), pos(30, 40)],
            &real,
        );
        assert_eq!(r.ball, Some(Point::new(30.0, 40.0)));
        assert_eq!(r.paddles, [Some(50.0), Some(70.0)]);
        let good = FrameFacts {
            score: Some(3),
            ball: Some(Point::new(30.0, 41.0)),
            paddles: [Some(50.0), Some(72.0)],
            ..Default::default()
        };
        let far = FrameFacts {
            score: Some(8),
            ball: Some(Point::new(33.0, 44.0)),
            paddles: [None, Some(70.0)],
            ..Default::default()
        };
        let lost = FrameFacts::default();
        let (a, b, c) = (check(&good, &r), check(&far, &r), check(&lost, &r));
        assert!(a.score_right && !b.score_right && !c.score_right);
        assert_eq!(a.ball, Some(Some(1.0)));
        assert_eq!(b.ball, Some(Some(5.0)));
        assert_eq!(c.ball, Some(None));
        // A frame whose real frame shows no ball is not judged on the ball.
        let r_hidden = Reference::new(
            GameKind::Pong,
            3,
            pos(8, 50),
            &[pos(120, 70), pos(-3, 40)],
            &FrameFacts::default(),
        );
        assert_eq!(check(&good, &r_hidden).ball, None);
        let s = ObjectSummary::of(GameKind::Pong, [(1, &a), (2, &b), (3, &c)]);
        assert_eq!(s.frames, 3);
        assert_eq!(s.score_ocr, Some(1.0 / 3.0));
        assert_eq!(s.ball_frames, 3);
        assert_eq!(s.ball_found, Some(2.0 / 3.0));
        assert_eq!(s.ball_within_1px, Some(1.0 / 3.0));
        assert_eq!(s.ball_within_4px, Some(1.0 / 3.0));
        assert_eq!(s.ball_median_px, Some(3.0));
        // Paddles: errors 0, 2 | none, 0 | none, none.
        assert_eq!(s.paddle_found, Some(3.0 / 6.0));
        assert_eq!(s.paddle_median_px, Some(0.0));
        assert_eq!(s.pacman_found, None);
        assert_eq!(s.dot_recall, None);
    }

    #[test]
    fn dots_match_one_to_one_and_walls_give_iou() {
        let real = FrameFacts {
            dots: vec![
                Point::new(10.0, 30.0),
                Point::new(18.0, 30.0),
                Point::new(26.0, 30.0),
            ],
            walls: vec![true, true, false, false],
            ..Default::default()
        };
        let r = Reference::new(GameKind::Pacman, 0, pos(0, 0), &[pos(0, 0)], &real);
        assert_eq!(r.pacman, Some(Detector::pacman_home()));
        // Two detections near the first dot match it once; one far away matches nothing.
        let generated = FrameFacts {
            pacman: Some(Point::new(64.0, 76.0)),
            dots: vec![
                Point::new(10.5, 30.0),
                Point::new(11.0, 31.0),
                Point::new(18.0, 31.5),
                Point::new(50.0, 50.0),
            ],
            walls: vec![true, false, true, false],
            score: Some(0),
            ..Default::default()
        };
        let c = check(&generated, &r);
        assert_eq!(
            c.dots,
            DotCounts {
                matched: 2,
                detected: 4,
                reference: 3
            }
        );
        assert_eq!(c.walls, Some((1, 3)));
        assert_eq!(c.pacman, Some(Some(2.0)));
        let perfect = check(&real, &r);
        let s = ObjectSummary::of(GameKind::Pacman, [(64, &c), (65, &perfect)]);
        assert_eq!(s.dot_precision, Some(5.0 / 7.0));
        assert_eq!(s.dot_recall, Some(5.0 / 6.0));
        assert_eq!(s.dot_frames_at_64, 1);
        assert_eq!(s.dot_precision_at_64, Some(0.5));
        assert_eq!(s.dot_recall_at_64, Some(2.0 / 3.0));
        assert!((s.wall_iou.unwrap() - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        assert_eq!(s.pacman_found, Some(0.5), "the real facts have no Pac-Man");
        assert_eq!(s.ball_found, None);
    }

    /// Real frames judged against the engine's own record: every object found, every error 0
    /// or within the detectors' 1 px, every score read.
    #[test]
    fn real_frames_are_perfect_against_the_record() {
        for game in [GameKind::Pong, GameKind::Pacman, GameKind::Traveler] {
            let det = Detector::new(game);
            let mut g = new_game(game, None).unwrap();
            let mut rng = crate::rng::Rng::new(9);
            let mut checks = Vec::new();
            for seed in 0..3 {
                g.reset(seed);
                for t in 1..=100 {
                    let s = g.step(rng.below(game.num_actions() as u64) as u8);
                    let facts = det.detect(&s.frame);
                    let r = Reference::new(game, s.score, s.player, &s.aux, &facts);
                    checks.push((t, check(&facts, &r)));
                }
            }
            let s = ObjectSummary::of(game, checks.iter().map(|(t, c)| (*t, c)));
            assert_eq!(s.score_ocr, Some(1.0), "{game}");
            match game {
                GameKind::Pong => {
                    assert!(s.ball_frames > 250);
                    assert_eq!(s.ball_within_1px, Some(1.0));
                    assert_eq!(s.paddle_found, Some(1.0));
                    assert_eq!(s.paddle_median_px, Some(0.0));
                }
                GameKind::Pacman => {
                    assert_eq!(s.pacman_within_1px, Some(1.0));
                    assert_eq!((s.dot_precision, s.dot_recall), (Some(1.0), Some(1.0)));
                    assert_eq!(s.dot_frames_at_64, 3);
                    assert_eq!(s.wall_iou, Some(1.0));
                }
                GameKind::Traveler => assert_eq!(s.ball_found, None),
            }
        }
    }
}
