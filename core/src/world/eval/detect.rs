//! Exact detectors of the games' objects in RGB frames: the Pong ball and paddles, Pac-Man, the
//! dots and the walls, and the score (by [`super::ocr`]).
//!
//! The renderers draw flat, known colours and known shapes, so the objects can be found without
//! a learned judge: a pixel takes the nearest colour of the game's palette when it is within
//! [`COLOUR_TOLERANCE`] of it (else it is "unknown"), and an object is a connected region of its
//! colour of plausible size. On real frames this is exact (the unit tests render frames from
//! the engines and compare with their state); on decoded or generated frames the tolerance and
//! the size limits decide what still counts as "drawn": a ball smeared into grey is not a ball.
//!
//! Positions follow the engines' own convention ([`crate::games::StepResult`]): the Pong ball's
//! centre is its top-left pixel + 2, a paddle's centre its top row + 10, Pac-Man's centre the
//! centre pixel of his disc. A sprite cut short (by the frame's edge, by something drawn over
//! it, by Pac-Man's mouth) is measured from its whole end, so occlusion does not move it.

use crate::games::{GameKind, pacman, pong, traveler};

use super::ocr::ScoreBar;

/// Largest Euclidean RGB distance at which a pixel still counts as a palette colour.
pub const COLOUR_TOLERANCE: f64 = 80.0;

/// Ball blobs: at least this many pixels (a decoded ball keeps at least its bright core)...
const BALL_MIN_PIXELS: usize = 2;
/// ...and at most this many, no wider or taller than `BALL_MAX_EXTENT`.
const BALL_MAX_PIXELS: usize = 40;
const BALL_MAX_EXTENT: usize = 8;
/// A paddle blob has at least this many pixels and is at most this wide.
const PADDLE_MIN_PIXELS: usize = 6;
const PADDLE_MAX_WIDTH: usize = 10;
/// The bands of columns where the left and right paddles are searched.
const PADDLE_BAND: usize = 20;
/// Pac-Man's blob: pixel count and extent limits (his disc has 31-37 pixels, 7 x 7).
const PAC_MIN_PIXELS: usize = 8;
const PAC_MAX_PIXELS: usize = 90;
const PAC_MAX_EXTENT: usize = 11;
/// Pac-Man's disc diameter (radius 3).
const PAC_SIZE: usize = 7;
/// A dot blob (2 x 2 drawn) has at most this many pixels and this extent.
const DOT_MAX_PIXELS: usize = 6;
const DOT_MAX_EXTENT: usize = 3;

/// A position in frame pixels (sub-pixel: a centre can fall between pixels).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// Euclidean distance in pixels.
    pub fn dist(&self, o: &Point) -> f64 {
        ((self.x - o.x).powi(2) + (self.y - o.y).powi(2)).sqrt()
    }
}

/// What the detectors read from one frame; what a game does not have stays empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameFacts {
    /// The score drawn in the bar, when legible.
    pub score: Option<u32>,
    /// Pong: the ball's centre.
    pub ball: Option<Point>,
    /// Pong: the centre row of the left and the right paddle.
    pub paddles: [Option<f64>; 2],
    /// Pac-Man: the centre of Pac-Man (alive or dead).
    pub pacman: Option<Point>,
    /// Pac-Man: the centres of the dots in view.
    pub dots: Vec<Point>,
    /// Pac-Man: the wall mask of the play area (below the score bar), row-major.
    pub walls: Vec<bool>,
}

/// Colour classes the detectors use; a game's palette maps its colours to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Background,
    Bar,
    White,
    Net,
    LeftPaddle,
    RightPaddle,
    Wall,
    Pac,
    PacDead,
    Monster,
}

const PONG_PALETTE: [(Class, [u8; 3]); 6] = [
    (Class::Background, pong::BG),
    (Class::Bar, pong::BAR),
    (Class::White, pong::WHITE),
    (Class::Net, pong::NET),
    (Class::LeftPaddle, pong::LEFT_COLOR),
    (Class::RightPaddle, pong::RIGHT_COLOR),
];

const PACMAN_PALETTE: [(Class, [u8; 3]); 7] = [
    (Class::Background, pacman::BG),
    (Class::Bar, pacman::BAR),
    (Class::White, pacman::DOT),
    (Class::Wall, pacman::WALL),
    (Class::Pac, pacman::PAC),
    (Class::PacDead, pacman::PAC_DEAD),
    (Class::Monster, pacman::MONSTER),
];

/// A connected region (8-neighbourhood) of one class.
#[derive(Clone, Debug)]
struct Blob {
    pixels: Vec<(usize, usize)>,
    min: (usize, usize),
    max: (usize, usize),
}

impl Blob {
    fn width(&self) -> usize {
        self.max.0 - self.min.0 + 1
    }

    fn height(&self) -> usize {
        self.max.1 - self.min.1 + 1
    }

    fn len(&self) -> usize {
        self.pixels.len()
    }

    fn geometric_centre(&self) -> Point {
        Point::new(
            (self.min.0 + self.max.0) as f64 / 2.0,
            (self.min.1 + self.max.1) as f64 / 2.0,
        )
    }
}

/// The frame classified pixel by pixel (`None`: no palette colour is near enough).
struct Labels {
    width: usize,
    height: usize,
    class: Vec<Option<Class>>,
}

impl Labels {
    fn new(rgb: &[u8], width: usize, height: usize, palette: &[(Class, [u8; 3])]) -> Self {
        let tol2 = COLOUR_TOLERANCE * COLOUR_TOLERANCE;
        let class = rgb
            .chunks_exact(3)
            .map(|px| {
                palette
                    .iter()
                    .map(|(c, rgb)| {
                        let d2: f64 = (0..3).map(|i| (px[i] as f64 - rgb[i] as f64).powi(2)).sum();
                        (d2, *c)
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(d2, _)| *d2 <= tol2)
                    .map(|(_, c)| c)
            })
            .collect();
        Self {
            width,
            height,
            class,
        }
    }

    fn at(&self, x: i64, y: i64) -> Option<Class> {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return None;
        }
        self.class[y as usize * self.width + x as usize]
    }

    /// Connected regions of any of `classes` inside columns `xs` and rows `ys`.
    fn blobs(
        &self,
        classes: &[Class],
        xs: std::ops::Range<usize>,
        ys: std::ops::Range<usize>,
    ) -> Vec<Blob> {
        let inside = |x: usize, y: usize| xs.contains(&x) && ys.contains(&y);
        let wanted = |x: usize, y: usize| {
            self.class[y * self.width + x].is_some_and(|c| classes.contains(&c))
        };
        let mut seen = vec![false; self.width * self.height];
        let mut out = Vec::new();
        for y in ys.clone() {
            for x in xs.clone() {
                if seen[y * self.width + x] || !wanted(x, y) {
                    continue;
                }
                seen[y * self.width + x] = true;
                let mut stack = vec![(x, y)];
                let mut blob = Blob {
                    pixels: Vec::new(),
                    min: (x, y),
                    max: (x, y),
                };
                while let Some((px, py)) = stack.pop() {
                    blob.pixels.push((px, py));
                    blob.min = (blob.min.0.min(px), blob.min.1.min(py));
                    blob.max = (blob.max.0.max(px), blob.max.1.max(py));
                    for dy in -1i64..=1 {
                        for dx in -1i64..=1 {
                            let (nx, ny) = (px as i64 + dx, py as i64 + dy);
                            if nx < 0 || ny < 0 {
                                continue;
                            }
                            let (nx, ny) = (nx as usize, ny as usize);
                            if inside(nx, ny) && !seen[ny * self.width + nx] && wanted(nx, ny) {
                                seen[ny * self.width + nx] = true;
                                stack.push((nx, ny));
                            }
                        }
                    }
                }
                out.push(blob);
            }
        }
        out
    }

    /// Is the end of `blob` at `lo` (or `hi`) along an axis cut short? It is when it lies at
    /// the frame's edge, when something other than the background lies just beyond it, or
    /// when its last line has fewer pixels than the opposite one.
    fn ends_cut(&self, blob: &Blob, vertical: bool) -> (bool, bool) {
        let (lo, hi) = if vertical {
            (blob.min.1, blob.max.1)
        } else {
            (blob.min.0, blob.max.0)
        };
        let along = |p: &(usize, usize)| if vertical { p.1 } else { p.0 };
        let line = |v: usize| blob.pixels.iter().filter(|p| along(p) == v).count();
        let (n_lo, n_hi) = (line(lo), line(hi));
        let limit = if vertical { self.height } else { self.width };
        let beyond_is_object = |v: usize, step: i64| {
            blob.pixels.iter().filter(|p| along(p) == v).any(|p| {
                let (x, y) = if vertical {
                    (p.0 as i64, p.1 as i64 + step)
                } else {
                    (p.0 as i64 + step, p.1 as i64)
                };
                !matches!(self.at(x, y), Some(Class::Background))
            })
        };
        let lo_cut = lo == 0 || beyond_is_object(lo, -1) || n_lo < n_hi;
        let hi_cut = hi + 1 == limit || beyond_is_object(hi, 1) || n_hi < n_lo;
        (lo_cut, hi_cut)
    }

    /// The centre of a sprite `size` x `size` pixels that `blob` shows (all of it or a cut
    /// part), in the engines' convention (an even size's centre is the pixel right of / below
    /// the middle).
    fn sprite_centre(&self, blob: &Blob, size_x: usize, size_y: usize) -> Point {
        let g = blob.geometric_centre();
        let axis = |lo: usize, hi: usize, size: usize, cut: (bool, bool), mid: f64| {
            let half = (size as f64 - 1.0) / 2.0;
            let centre = if hi - lo + 1 >= size || cut.0 == cut.1 {
                mid
            } else if cut.0 {
                hi as f64 - half
            } else {
                lo as f64 + half
            };
            centre + if size.is_multiple_of(2) { 0.5 } else { 0.0 }
        };
        Point::new(
            axis(
                blob.min.0,
                blob.max.0,
                size_x,
                self.ends_cut(blob, false),
                g.x,
            ),
            axis(
                blob.min.1,
                blob.max.1,
                size_y,
                self.ends_cut(blob, true),
                g.y,
            ),
        )
    }
}

/// The detectors of one game.
#[derive(Clone, Debug)]
pub struct Detector {
    game: GameKind,
    width: usize,
    height: usize,
    bar: ScoreBar,
}

impl Detector {
    pub fn new(game: GameKind) -> Self {
        let (width, height) = game.frame_size();
        let (bar, ink) = match game {
            GameKind::Pong => (pong::BAR, pong::WHITE),
            GameKind::Pacman => (pacman::BAR, pacman::INK),
            GameKind::Traveler => (traveler::BAR, traveler::INK),
        };
        Self {
            game,
            width,
            height,
            bar: ScoreBar { width, bar, ink },
        }
    }

    pub fn game(&self) -> GameKind {
        self.game
    }

    /// First row of the play area (below the score bar).
    pub fn play_top(&self) -> usize {
        match self.game {
            GameKind::Pong => pong::SCORE_BAR_H as usize,
            GameKind::Pacman => pacman::SCORE_BAR_H as usize,
            GameKind::Traveler => traveler::SCORE_BAR_H as usize,
        }
    }

    /// Where Pac-Man is drawn: the camera keeps him at this screen point.
    pub fn pacman_home() -> Point {
        Point::new(pacman::VIEW_CX as f64, pacman::VIEW_CY as f64)
    }

    /// Read everything this game has from one RGB8 frame (`width * height * 3` bytes; a frame
    /// of another size reads as empty).
    pub fn detect(&self, rgb: &[u8]) -> FrameFacts {
        let mut facts = FrameFacts::default();
        if rgb.len() != self.width * self.height * 3 {
            return facts;
        }
        facts.score = self.bar.read(rgb);
        let (w, h, top) = (self.width, self.height, self.play_top());
        match self.game {
            GameKind::Traveler => {}
            GameKind::Pong => {
                let labels = Labels::new(rgb, w, h, &PONG_PALETTE);
                facts.ball = labels
                    .blobs(&[Class::White], 0..w, top..h)
                    .into_iter()
                    .filter(|b| {
                        (BALL_MIN_PIXELS..=BALL_MAX_PIXELS).contains(&b.len())
                            && b.width() <= BALL_MAX_EXTENT
                            && b.height() <= BALL_MAX_EXTENT
                    })
                    .min_by_key(|b| b.len().abs_diff((pong::BALL * pong::BALL) as usize))
                    .map(|b| labels.sprite_centre(&b, pong::BALL as usize, pong::BALL as usize));
                let bands = [
                    (Class::LeftPaddle, 0..PADDLE_BAND),
                    (Class::RightPaddle, w - PADDLE_BAND..w),
                ];
                for (i, (class, xs)) in bands.into_iter().enumerate() {
                    facts.paddles[i] = labels
                        .blobs(&[class], xs, top..h)
                        .into_iter()
                        .filter(|b| b.len() >= PADDLE_MIN_PIXELS && b.width() <= PADDLE_MAX_WIDTH)
                        .max_by_key(|b| b.len())
                        .map(|b| {
                            labels
                                .sprite_centre(&b, pong::PADDLE_W as usize, pong::PADDLE_H as usize)
                                .y
                        });
                }
            }
            GameKind::Pacman => {
                let labels = Labels::new(rgb, w, h, &PACMAN_PALETTE);
                facts.pacman = labels
                    .blobs(&[Class::Pac, Class::PacDead], 0..w, top..h)
                    .into_iter()
                    .filter(|b| {
                        (PAC_MIN_PIXELS..=PAC_MAX_PIXELS).contains(&b.len())
                            && b.width() <= PAC_MAX_EXTENT
                            && b.height() <= PAC_MAX_EXTENT
                    })
                    .max_by_key(|b| b.len())
                    .map(|b| labels.sprite_centre(&b, PAC_SIZE, PAC_SIZE));
                facts.dots = labels
                    .blobs(&[Class::White], 0..w, top..h)
                    .into_iter()
                    .filter(|b| {
                        b.len() <= DOT_MAX_PIXELS
                            && b.width() <= DOT_MAX_EXTENT
                            && b.height() <= DOT_MAX_EXTENT
                    })
                    .map(|b| b.geometric_centre())
                    .collect();
                facts.walls = labels.class[top * w..]
                    .iter()
                    .map(|c| *c == Some(Class::Wall))
                    .collect();
            }
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::canvas::Canvas;
    use crate::games::pacman::{CELL, Pacman, PacmanConfig, SCORE_BAR_H};
    use crate::games::pong::{Pong, PongConfig};
    use crate::games::{Game, new_game};
    use crate::rng::Rng;

    fn add_noise(rgb: &mut [u8], amplitude: i64, seed: u64) {
        let mut rng = Rng::new(seed);
        for v in rgb.iter_mut() {
            *v = (*v as i64 + rng.range_i64(-amplitude, amplitude)).clamp(0, 255) as u8;
        }
    }

    fn canvas_of(rgb: &[u8], w: usize, h: usize) -> Canvas {
        let mut c = Canvas::new(w, h);
        c.rgb.copy_from_slice(rgb);
        c
    }

    /// Frames of `game` under random actions over several episodes, with what a check needs.
    fn play<G: Game>(game: &mut G, episodes: u64, frames: usize, mut check: impl FnMut(&G, &[u8])) {
        let mut rng = Rng::new(17);
        let n = game.kind().num_actions() as u64;
        for seed in 0..episodes {
            game.reset(seed);
            check(game, game.frame());
            for _ in 0..frames {
                let a = rng.below(n) as u8;
                game.step(a);
                check(game, game.frame());
            }
        }
    }

    /// Is any pixel of the Pong ball inside the frame? (Just before a point is lost it can be
    /// wholly past the edge for a frame.)
    fn ball_visible(g: &Pong) -> bool {
        let x = g.ball[0].div_euclid(pong::FX);
        x > -pong::BALL && x < pong::WIDTH as i32
    }

    #[test]
    fn pong_ball_paddles_and_score_are_exact_on_real_frames() {
        let det = Detector::new(GameKind::Pong);
        let mut g = Pong::new(PongConfig::default());
        let (mut frames, mut clipped, mut hidden) = (0, 0, 0);
        play(&mut g, 12, 200, |g, frame| {
            frames += 1;
            let f = det.detect(frame);
            let ball = g.ball_center();
            if ball_visible(g) {
                assert_eq!(
                    f.ball,
                    Some(Point::new(ball.x as f64, ball.y as f64)),
                    "ball at {ball:?}"
                );
                let bx = g.ball[0].div_euclid(pong::FX);
                clipped += (bx < 0 || bx + pong::BALL > 128) as usize;
            } else {
                assert_eq!(f.ball, None);
                hidden += 1;
            }
            for i in 0..2 {
                let want = (g.paddles[i] + pong::PADDLE_H / 2) as f64;
                assert_eq!(f.paddles[i], Some(want), "paddle {i}");
            }
            assert_eq!(f.score, Some(g.score()));
            assert!(f.pacman.is_none() && f.dots.is_empty() && f.walls.is_empty());
        });
        assert_eq!(frames, 12 * 201);
        assert!(
            clipped > 0,
            "some frames show the ball cut by the frame's edge"
        );
        assert!(
            hidden < frames / 50,
            "the ball is rarely out of view: {hidden}"
        );
    }

    #[test]
    fn pong_ball_over_a_paddle_and_at_the_edge_is_exact() {
        let det = Detector::new(GameKind::Pong);
        let mut g = Pong::new(PongConfig::default());
        g.reset(1);
        // Every position of the ball around the left paddle's top end, and cut by the edge.
        for bx in -3..14 {
            for by in 40..66 {
                g.paddles[0] = 50;
                g.ball = [bx * pong::FX, by * pong::FX];
                g.vel = [0, 0];
                g.step(0);
                let f = det.detect(g.frame());
                let ball = g.ball_center();
                assert_eq!(
                    f.ball,
                    Some(Point::new(ball.x as f64, ball.y as f64)),
                    "ball at {bx},{by}"
                );
                assert_eq!(f.paddles[0], Some(60.0), "ball at {bx},{by}");
            }
        }
    }

    #[test]
    fn pong_detection_survives_noise_and_sees_an_erased_ball() {
        let det = Detector::new(GameKind::Pong);
        let mut g = Pong::new(PongConfig::default());
        let mut checked = 0;
        play(&mut g, 3, 60, |g, frame| {
            let mut noisy = frame.to_vec();
            add_noise(&mut noisy, 25, checked as u64);
            let f = det.detect(&noisy);
            let ball = g.ball_center();
            if ball_visible(g) {
                let b = f.ball.expect("ball found through noise");
                assert!(b.dist(&Point::new(ball.x as f64, ball.y as f64)) <= 1.0);
            }
            assert_eq!(f.score, Some(g.score()));
            // Erase the ball (paint the background over it): absent.
            let mut c = canvas_of(frame, 128, 128);
            let (x, y) = (
                g.ball[0].div_euclid(pong::FX),
                g.ball[1].div_euclid(pong::FX),
            );
            c.rect(x, y, pong::BALL, pong::BALL, pong::BG);
            assert_eq!(det.detect(&c.rgb).ball, None);
            // A paddle erased is absent, the other one still found.
            c.rect(0, 0, 20, 128, pong::BG);
            let f = det.detect(&c.rgb);
            assert_eq!(f.paddles[0], None);
            assert!(f.paddles[1].is_some());
            // The ball smeared into grey (what a blurry decoder draws) is not a ball.
            let mut c = canvas_of(frame, 128, 128);
            c.rect(
                x - 1,
                y - 1,
                pong::BALL + 2,
                pong::BALL + 2,
                [110, 110, 110],
            );
            assert_eq!(det.detect(&c.rgb).ball, None);
            checked += 1;
        });
        assert_eq!(checked, 3 * 61);
    }

    /// The dots of the real game's state that are visible in its frame (some may be under
    /// the monster or cut by the score bar): their centres.
    fn visible_dots(g: &Pacman, frame: &[u8]) -> Vec<Point> {
        let crate::games::TruthMap::Maze(m) = g.truth_map() else {
            panic!("a maze")
        };
        let (ox, oy) = (pacman::VIEW_CX - g.pac.x, pacman::VIEW_CY - g.pac.y);
        let mut out = Vec::new();
        for cy in 0..m.height as i32 {
            for cx in 0..m.width as i32 {
                if !m.dots[cy as usize * m.width + cx as usize] {
                    continue;
                }
                let (sx, sy) = (cx * CELL + ox + 3, cy * CELL + oy + 3);
                let px: Vec<(i32, i32)> = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .into_iter()
                    .map(|(dx, dy)| (sx + dx, sy + dy))
                    .filter(|&(x, y)| {
                        (0..128).contains(&x)
                            && (SCORE_BAR_H..128).contains(&y)
                            && frame[(y as usize * 128 + x as usize) * 3..][..3] == pacman::DOT
                    })
                    .collect();
                if px.is_empty() {
                    continue;
                }
                let (x0, x1) = (
                    px.iter().map(|p| p.0).min().unwrap(),
                    px.iter().map(|p| p.0).max().unwrap(),
                );
                let (y0, y1) = (
                    px.iter().map(|p| p.1).min().unwrap(),
                    px.iter().map(|p| p.1).max().unwrap(),
                );
                out.push(Point::new((x0 + x1) as f64 / 2.0, (y0 + y1) as f64 / 2.0));
            }
        }
        out
    }

    fn sorted(mut v: Vec<Point>) -> Vec<Point> {
        v.sort_by(|a, b| (a.y, a.x).partial_cmp(&(b.y, b.x)).unwrap());
        v
    }

    #[test]
    fn pacman_dots_walls_and_score_are_exact_on_real_frames() {
        let det = Detector::new(GameKind::Pacman);
        let mut g = Pacman::new(PacmanConfig::default(), None);
        let (mut frames, mut dead, mut dots) = (0, 0, 0);
        play(&mut g, 10, 300, |g, frame| {
            frames += 1;
            dead += g.done() as usize;
            let f = det.detect(frame);
            let p = f.pacman.expect("Pac-Man found");
            assert!(
                p.dist(&Detector::pacman_home()) <= 1.0,
                "Pac-Man at {p:?} (done {})",
                g.done()
            );
            let want = sorted(visible_dots(g, frame));
            dots += want.len();
            assert_eq!(sorted(f.dots.clone()), want);
            let walls: Vec<bool> = frame[SCORE_BAR_H as usize * 128 * 3..]
                .chunks_exact(3)
                .map(|px| px == pacman::WALL)
                .collect();
            assert_eq!(f.walls, walls);
            assert!(f.walls.iter().any(|&w| w));
            assert_eq!(f.score, Some(g.score()));
            assert!(f.ball.is_none());
        });
        assert_eq!(frames, 10 * 301);
        assert!(
            dead > 0,
            "some episodes reach a death (a dead, occluded Pac-Man)"
        );
        assert!(dots > 10 * frames, "dots are seen");
    }

    #[test]
    fn pacman_centre_is_exact_for_every_mouth() {
        let det = Detector::new(GameKind::Pacman);
        let mut g = Pacman::new(PacmanConfig::default(), None);
        g.reset(2);
        for dir in [
            pacman::STAY,
            pacman::UP,
            pacman::DOWN,
            pacman::LEFT,
            pacman::RIGHT,
        ] {
            g.pac.dir = dir;
            g.step(pacman::STAY);
            let f = det.detect(g.frame());
            assert_eq!(f.pacman, Some(Detector::pacman_home()), "mouth {dir}");
        }
    }

    #[test]
    fn pacman_detection_survives_noise_and_sees_erasures() {
        let det = Detector::new(GameKind::Pacman);
        let mut g = Pacman::new(PacmanConfig::default(), None);
        let mut checked = 0;
        play(&mut g, 2, 80, |g, frame| {
            let mut noisy = frame.to_vec();
            add_noise(&mut noisy, 25, checked as u64);
            let f = det.detect(&noisy);
            let clean = det.detect(frame);
            assert!(f.pacman.unwrap().dist(&Detector::pacman_home()) <= 1.0);
            assert_eq!(sorted(f.dots.clone()), sorted(clean.dots.clone()));
            assert_eq!(f.walls, clean.walls);
            assert_eq!(f.score, Some(g.score()));
            // Pac-Man erased: absent; the dots erased: none found; no bar: no score.
            let mut c = canvas_of(frame, 128, 128);
            c.rect(pacman::VIEW_CX - 4, pacman::VIEW_CY - 4, 9, 9, pacman::BG);
            let mut erased = det.detect(&c.rgb);
            assert_eq!(erased.pacman, None);
            for d in &clean.dots {
                c.rect(d.x as i32 - 1, d.y as i32 - 1, 3, 3, pacman::BG);
            }
            c.rect(0, 0, 128, SCORE_BAR_H, pacman::BAR);
            erased = det.detect(&c.rgb);
            assert!(erased.dots.is_empty());
            assert_eq!(erased.score, None);
            checked += 1;
        });
        assert_eq!(checked, 2 * 81);
    }

    #[test]
    fn traveler_score_is_read_on_real_frames() {
        let det = Detector::new(GameKind::Traveler);
        let mut g = new_game(GameKind::Traveler, None).unwrap();
        let mut rng = Rng::new(4);
        let mut scores = std::collections::BTreeSet::new();
        for seed in 0..4 {
            g.reset(seed);
            for _ in 0..400 {
                // Mostly right, so the score climbs past one digit.
                let a = if rng.chance(0.8) {
                    traveler::RIGHT
                } else {
                    rng.below(3) as u8
                };
                g.step(a);
                let f = det.detect(g.frame());
                assert_eq!(f.score, Some(g.score()));
                scores.insert(g.score());
                let mut noisy = g.frame().to_vec();
                add_noise(&mut noisy, 25, seed);
                assert_eq!(det.detect(&noisy).score, Some(g.score()));
            }
        }
        assert!(
            scores.iter().any(|&s| s >= 10),
            "two-digit scores seen: {scores:?}"
        );
        assert!(
            det.detect(&[0u8; 10]).score.is_none(),
            "a frame of the wrong size"
        );
    }
}
