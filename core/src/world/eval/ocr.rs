//! Reading the score bar: every game draws its score with the same bitmap font at the same
//! place ([`font::SCORE_Y`], [`font::SCORE_SCALE`], centred), so a reader that knows the font
//! and the bar's two colours can read it exactly from real frames and judge whether a
//! generated frame drew a legible, correct number.
//!
//! A pixel of the text rows is ink when it is nearer the ink colour than the bar colour. For
//! every digit count the glyph cells (one `SCORE_SCALE` square per font pixel) are read by their
//! share of ink and matched to the nearest digit; the candidate number is then drawn again and
//! compared with the whole text area, so a blot or a number of the wrong width is a mismatch
//! too. The best candidate is the reading, unless even it disagrees with too many pixels.

use crate::games::font::{self, GLYPH_H, GLYPH_W, SCORE_SCALE, SCORE_Y};

/// Most digits a score is read with (five digits still fit the narrowest frame, 96 px).
pub const MAX_DIGITS: usize = 5;

/// A reading is refused when the redrawn number disagrees with more than this share of its
/// own ink pixels (blurred strokes cost a few pixels; a wrong or missing digit costs many).
pub const MAX_MISMATCH: f64 = 0.15;

/// Where and in which colours a game draws its score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreBar {
    /// Frame width in pixels (the score is centred on it).
    pub width: usize,
    pub bar: [u8; 3],
    pub ink: [u8; 3],
}

fn dist2(a: [u8; 3], b: [u8; 3]) -> i32 {
    (0..3)
        .map(|i| (a[i] as i32 - b[i] as i32).pow(2))
        .sum::<i32>()
}

/// Width in pixels of an `n`-digit number at the score's scale.
fn text_width(digits: usize) -> i32 {
    digits as i32 * (GLYPH_W + 1) * SCORE_SCALE - SCORE_SCALE
}

impl ScoreBar {
    /// Text rows: the glyphs' rows at the score's scale.
    const ROWS: i32 = GLYPH_H * SCORE_SCALE;

    /// Left edge of an `n`-digit number (as `draw_number_centered` places it).
    fn left(&self, digits: usize) -> i32 {
        self.width as i32 / 2 - text_width(digits) / 2
    }

    /// The columns any readable number can cover.
    fn span(&self) -> (i32, i32) {
        let l = self.left(MAX_DIGITS).max(0);
        (l, (l + text_width(MAX_DIGITS)).min(self.width as i32))
    }

    /// The ink mask of the text area (`ROWS` x span), row-major.
    fn ink_mask(&self, rgb: &[u8]) -> Vec<bool> {
        let (x0, x1) = self.span();
        let mut out = Vec::with_capacity(((x1 - x0) * Self::ROWS) as usize);
        for y in SCORE_Y..SCORE_Y + Self::ROWS {
            for x in x0..x1 {
                let i = (y as usize * self.width + x as usize) * 3;
                let px = [rgb[i], rgb[i + 1], rgb[i + 2]];
                out.push(dist2(px, self.ink) < dist2(px, self.bar));
            }
        }
        out
    }

    /// The number as the renderer would draw it, as a mask over the text area.
    fn drawn_mask(&self, n: u32) -> Vec<bool> {
        let (x0, x1) = self.span();
        let w = (x1 - x0) as usize;
        let mut out = vec![false; w * Self::ROWS as usize];
        let text = n.to_string();
        let left = self.left(text.len());
        for (k, ch) in text.bytes().enumerate() {
            let g = font::glyph(ch - b'0');
            for (row, bits) in g.iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - col)) == 0 {
                        continue;
                    }
                    let gx = left + k as i32 * (GLYPH_W + 1) * SCORE_SCALE + col * SCORE_SCALE;
                    for dy in 0..SCORE_SCALE {
                        for dx in 0..SCORE_SCALE {
                            let (x, y) = (gx + dx - x0, row as i32 * SCORE_SCALE + dy);
                            if (0..w as i32).contains(&x) {
                                out[y as usize * w + x as usize] = true;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The digit whose glyph is nearest (Hamming) to the cells of the `k`-th of `digits`
    /// glyphs, each cell inked when at least half its pixels are.
    fn read_glyph(&self, mask: &[bool], digits: usize, k: usize, leading: bool) -> u8 {
        let (x0, x1) = self.span();
        let w = (x1 - x0) as usize;
        let gx = self.left(digits) + k as i32 * (GLYPH_W + 1) * SCORE_SCALE - x0;
        let mut rows = [0u8; GLYPH_H as usize];
        for (row, bits) in rows.iter_mut().enumerate() {
            for col in 0..GLYPH_W {
                let mut inked = 0;
                for dy in 0..SCORE_SCALE {
                    for dx in 0..SCORE_SCALE {
                        let (x, y) = (gx + col * SCORE_SCALE + dx, row as i32 * SCORE_SCALE + dy);
                        if (0..w as i32).contains(&x) && mask[y as usize * w + x as usize] {
                            inked += 1;
                        }
                    }
                }
                if 2 * inked >= SCORE_SCALE * SCORE_SCALE {
                    *bits |= 1 << (GLYPH_W - 1 - col);
                }
            }
        }
        // A number never starts with 0 unless it is 0.
        let first = if leading && digits > 1 { 1 } else { 0 };
        (first..10u8)
            .min_by_key(|&d| {
                font::glyph(d)
                    .iter()
                    .zip(&rows)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum::<u32>()
            })
            .unwrap_or(0)
    }

    /// The score drawn in `rgb` (RGB8, `width` wide), or `None` when no number of up to
    /// [`MAX_DIGITS`] digits is drawn there legibly.
    pub fn read(&self, rgb: &[u8]) -> Option<u32> {
        let rows = (SCORE_Y + Self::ROWS) as usize;
        if rgb.len() < rows * self.width * 3 {
            return None;
        }
        let mask = self.ink_mask(rgb);
        if !mask.iter().any(|&m| m) {
            return None;
        }
        let mut best: Option<(usize, u32)> = None;
        for digits in 1..=MAX_DIGITS {
            let mut n = 0u32;
            for k in 0..digits {
                n = n * 10 + self.read_glyph(&mask, digits, k, k == 0) as u32;
            }
            let drawn = self.drawn_mask(n);
            let wrong = drawn.iter().zip(&mask).filter(|(a, b)| a != b).count();
            let ink = drawn.iter().filter(|&&d| d).count();
            if wrong as f64 <= MAX_MISMATCH * ink as f64 && best.is_none_or(|(w, _)| wrong < w) {
                best = Some((wrong, n));
            }
        }
        best.map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::canvas::Canvas;
    use crate::games::font::draw_score;
    use crate::rng::Rng;

    const BAR: ScoreBar = ScoreBar {
        width: 96,
        bar: [250, 250, 250],
        ink: [20, 20, 20],
    };

    fn frame(n: u32) -> Vec<u8> {
        let mut c = Canvas::new(96, 30);
        c.clear(BAR.bar);
        draw_score(&mut c, n, BAR.ink);
        c.rgb
    }

    #[test]
    fn reads_every_number_it_can_draw() {
        for n in (0..1200).chain([9999, 10000, 12345, 99999]) {
            assert_eq!(BAR.read(&frame(n)), Some(n), "{n}");
        }
    }

    #[test]
    fn reads_through_colour_noise() {
        let mut rng = Rng::new(3);
        for n in [0, 7, 18, 305, 4096] {
            let mut f = frame(n);
            for v in f.iter_mut() {
                *v = (*v as i32 + rng.range_i64(-60, 60) as i32).clamp(0, 255) as u8;
            }
            assert_eq!(BAR.read(&f), Some(n), "{n}");
        }
    }

    #[test]
    fn an_empty_bar_or_a_blot_reads_as_nothing() {
        let mut c = Canvas::new(96, 30);
        c.clear(BAR.bar);
        assert_eq!(BAR.read(&c.rgb), None);
        c.rect(40, 5, 16, 10, BAR.ink);
        assert_eq!(BAR.read(&c.rgb), None, "a filled block is no digit");
        // Half a number erased is no number.
        let mut f = frame(88);
        let mut c = Canvas::new(96, 30);
        c.rgb = std::mem::take(&mut f);
        c.rect(48, 0, 48, 20, BAR.bar);
        assert_eq!(BAR.read(&c.rgb), None);
    }

    #[test]
    fn a_stray_pixel_is_tolerated_but_a_missing_stroke_is_not() {
        let left = 96 / 2 - text_width(1) / 2;
        let mut c = Canvas::new(96, 30);
        c.clear(BAR.bar);
        draw_score(&mut c, 8, BAR.ink);
        c.put(left, SCORE_Y, BAR.ink);
        c.put(left + 4, SCORE_Y + 6, BAR.bar);
        assert_eq!(BAR.read(&c.rgb), Some(8));
        // The 8 without its middle bar is no longer an 8.
        c.rect(
            left + 2,
            SCORE_Y + 3 * SCORE_SCALE,
            3 * SCORE_SCALE,
            SCORE_SCALE,
            BAR.bar,
        );
        assert_ne!(BAR.read(&c.rgb), Some(8));
    }
}
