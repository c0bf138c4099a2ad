//! Our own 5x7 bitmap digits, drawn scaled up: the world models must learn to render the score,
//! so it has to be large, crisp and identical on every platform (no font files, no antialiasing).

use super::canvas::Canvas;

/// Rows of each digit, top to bottom, 5 bits per row (bit 4 = leftmost column).
const DIGITS: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
];

pub const GLYPH_W: i32 = 5;
pub const GLYPH_H: i32 = 7;

/// Every game draws its score centred on the frame, its top row at `SCORE_Y`, each font pixel a
/// `SCORE_SCALE` square: one place and one size, so a score reader needs no per-game layout.
pub const SCORE_Y: i32 = 3;
pub const SCORE_SCALE: i32 = 2;

/// The rows of `digit` (0..=9), top to bottom, 5 bits per row (bit 4 = leftmost column).
pub fn glyph(digit: u8) -> [u8; 7] {
    DIGITS[digit as usize % 10]
}

/// Draw `score` where every game draws it ([`SCORE_Y`], [`SCORE_SCALE`], centred).
pub fn draw_score(canvas: &mut Canvas, score: u32, c: [u8; 3]) {
    let centre = canvas.width as i32 / 2;
    draw_number_centered(canvas, score, centre, SCORE_Y, SCORE_SCALE, c);
}

/// Width in pixels of `n` drawn at `scale` (one blank column between digits).
pub fn number_width(n: u32, scale: i32) -> i32 {
    let digits = n.to_string().len() as i32;
    digits * (GLYPH_W + 1) * scale - scale
}

/// Draw `n` with its top-left corner at (`x`, `y`), each font pixel a `scale` x `scale` block.
pub fn draw_number(canvas: &mut Canvas, n: u32, x: i32, y: i32, scale: i32, c: [u8; 3]) {
    let mut cx = x;
    for ch in n.to_string().bytes() {
        let glyph = &DIGITS[(ch - b'0') as usize];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                    canvas.rect(cx + col * scale, y + row as i32 * scale, scale, scale, c);
                }
            }
        }
        cx += (GLYPH_W + 1) * scale;
    }
}

/// Draw `n` horizontally centred on `center_x`.
pub fn draw_number_centered(
    canvas: &mut Canvas,
    n: u32,
    center_x: i32,
    y: i32,
    scale: i32,
    c: [u8; 3],
) {
    let w = number_width(n, scale);
    draw_number(canvas, n, center_x - w / 2, y, scale, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_distinct_and_drawn() {
        for (a, ga) in DIGITS.iter().enumerate() {
            for (b, gb) in DIGITS.iter().enumerate().skip(a + 1) {
                assert_ne!(ga, gb, "digits {a} and {b} look the same");
            }
        }
        let mut c = Canvas::new(40, 20);
        draw_number(&mut c, 7, 0, 0, 2, [255, 255, 255]);
        let lit = c.rgb.chunks_exact(3).filter(|p| p[0] == 255).count();
        assert!(lit > 20);
        assert_eq!(number_width(123, 2), 3 * 12 - 2);
    }
}
