//! Curves as PNG, drawn by hand (no plotting library): stacked panels, a log-scale y axis with
//! grid lines at every power of ten (loss curves) or a linear one with 1-2-5 steps (metrics),
//! tick values printed in a 3x5 pixel font. Enough to read a run at a glance; the exact
//! numbers are in the JSON next to the picture.

use std::path::Path;

use crate::fsutil::write_atomic;

/// One line of a panel: `(x, y)` points (non-finite y are skipped, and on a log axis
/// non-positive ones too).
pub struct Series<'a> {
    pub points: &'a [(f64, f64)],
    pub rgb: [u8; 3],
}

/// One panel: several series sharing axes.
pub struct Panel<'a> {
    pub series: Vec<Series<'a>>,
    /// Log-scale y (losses spanning decades) or linear (metrics such as PSNR or accuracy).
    pub log_y: bool,
}

const PANEL_W: usize = 640;
const PANEL_H: usize = 240;
const MARGIN: usize = 12;
/// Room left of the plot for y tick labels and below it for x tick labels.
const LEFT: usize = 56;
const BOTTOM: usize = 22;
/// Tick labels are drawn with a 3x5 pixel font, each font pixel `GLYPH_SCALE` pixels wide.
const GLYPH_SCALE: i64 = 2;
const INK: [u8; 3] = [90; 3];

/// 3x5 bitmaps (rows top to bottom, 3 bits each, high bit left) of what tick labels use.
fn glyph(ch: char) -> Option<[u8; 5]> {
    Some(match ch {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b011, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        'e' => [0b000, 0b111, 0b111, 0b100, 0b111],
        _ => return None,
    })
}

/// A tick value in at most ~6 characters: 4 significant digits for ordinary numbers, `1e-3`
/// style for very small or large ones.
fn tick_text(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e5).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        if (m.round() - m).abs() < 0.05 {
            return format!("{}e{e}", m.round());
        }
        return format!("{m:.1}e{e}");
    }
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    let t = format!("{v:.decimals$}");
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

fn text_width(t: &str) -> i64 {
    t.chars().count() as i64 * 4 * GLYPH_SCALE - GLYPH_SCALE
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// `t` with its top-left corner at `(x, y)`; characters without a glyph are left blank.
    fn text(&mut self, x: i64, y: i64, t: &str) {
        for (i, ch) in t.chars().enumerate() {
            let Some(rows) = glyph(ch) else { continue };
            let x0 = x + i as i64 * 4 * GLYPH_SCALE;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for dy in 0..GLYPH_SCALE {
                            for dx in 0..GLYPH_SCALE {
                                self.set(
                                    x0 + col * GLYPH_SCALE + dx,
                                    y + r as i64 * GLYPH_SCALE + dy,
                                    INK,
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Bresenham line, two pixels thick vertically so thin curves stay visible.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), rgb: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, rgb);
            self.set(x, y + 1, rgb);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Where the y ticks go, in axis units (log10 of the value on a log axis), and the axis range.
fn y_ticks(lo: f64, hi: f64, log_y: bool) -> (f64, f64, Vec<f64>) {
    if log_y {
        let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
        let ticks = (0..=(hi - lo) as usize).map(|k| lo + k as f64).collect();
        return (lo, hi, ticks);
    }
    // Linear: a 1-2-5 step giving 3 to 6 ticks; the range snapped outwards to whole steps.
    let span = if hi - lo > 1e-12 {
        hi - lo
    } else {
        hi.abs().max(1.0) * 0.1
    };
    let raw = span / 4.0;
    let unit = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * unit)
        .find(|s| span / s <= 5.0)
        .unwrap_or(10.0 * unit);
    let (a, b) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let b = if b - a < step { a + step } else { b };
    let n = ((b - a) / step).round() as usize;
    (a, b, (0..=n).map(|k| a + k as f64 * step).collect())
}

fn draw_panel(c: &mut Canvas, top: usize, panel: &Panel) {
    let log_y = panel.log_y;
    let shown = |y: f64| y.is_finite() && (!log_y || y > 0.0);
    let axis = |y: f64| if log_y { y.log10() } else { y };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in panel.series.iter().flat_map(|s| s.points.iter()) {
        if shown(y) && x.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(axis(y));
            y1 = y1.max(axis(y));
        }
    }
    let (left, right) = (LEFT as f64, (PANEL_W - MARGIN) as f64);
    let (upper, lower) = ((top + MARGIN) as f64, (top + PANEL_H - BOTTOM) as f64);
    // Frame.
    for x in LEFT..=PANEL_W - MARGIN {
        c.set(x as i64, upper as i64, [160; 3]);
        c.set(x as i64, lower as i64, [160; 3]);
    }
    for y in upper as i64..=lower as i64 {
        c.set(left as i64, y, [160; 3]);
        c.set(right as i64, y, [160; 3]);
    }
    if x0 > x1 {
        return; // nothing to draw
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let (y0, y1, ticks) = y_ticks(y0, y1, log_y);
    let map = |x: f64, y: f64| -> (i64, i64) {
        let px = left + (x - x0) / (x1 - x0) * (right - left);
        let py = lower - (axis(y) - y0) / (y1 - y0) * (lower - upper);
        (px.round() as i64, py.round() as i64)
    };
    // Grid and labels at the y ticks.
    let glyph_h = 5 * GLYPH_SCALE;
    for t in ticks {
        let value = if log_y { 10f64.powf(t) } else { t };
        let (_, py) = map(x0, value);
        for x in (LEFT..PANEL_W - MARGIN).step_by(4) {
            c.set(x as i64, py, [215; 3]);
        }
        let label = tick_text(value);
        c.text(
            LEFT as i64 - 4 - text_width(&label),
            py - glyph_h / 2,
            &label,
        );
    }
    // x labels: every distinct x when there are few (a sweep), else the two ends.
    let mut xs: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() > 8 {
        xs = vec![x0, x1];
    }
    for x in xs {
        let (px, _) = map(x, if log_y { 10f64.powf(y0) } else { y0 });
        for dy in 0..4 {
            c.set(px, lower as i64 + dy, [160; 3]);
        }
        let label = tick_text(x);
        let w = text_width(&label);
        let lx = (px - w / 2).clamp(LEFT as i64 - w / 2, (PANEL_W as i64) - w - 2);
        c.text(lx, lower as i64 + 6, &label);
    }
    for s in &panel.series {
        let mut prev: Option<(i64, i64)> = None;
        for &(x, y) in s.points {
            if !(shown(y) && x.is_finite()) {
                continue;
            }
            let p = map(x, y);
            match prev {
                Some(q) => c.line(q, p, s.rgb),
                None => c.set(p.0, p.1, s.rgb),
            }
            prev = Some(p);
        }
    }
}

/// Render `panels` stacked vertically into PNG bytes.
pub fn render_png(panels: &[Panel]) -> Vec<u8> {
    let mut c = Canvas {
        w: PANEL_W,
        h: PANEL_H * panels.len().max(1),
        px: vec![255; PANEL_W * PANEL_H * panels.len().max(1) * 3],
    };
    for (i, p) in panels.iter().enumerate() {
        draw_panel(&mut c, i * PANEL_H, p);
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, c.w as u32, c.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .expect("writing a PNG header to memory cannot fail");
        writer
            .write_image_data(&c.px)
            .expect("the buffer has exactly w*h*3 bytes");
    }
    out
}

/// [`render_png`] written atomically to `path`.
pub fn write_png(path: &Path, panels: &[Panel]) -> std::io::Result<()> {
    write_atomic(path, &render_png(panels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_curve_is_drawn_from_top_left_to_bottom_right() {
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
            .collect();
        let bytes = render_png(&[Panel {
            series: vec![Series {
                points: &pts,
                rgb: [255, 0, 0],
            }],
            log_y: true,
        }]);
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let red = |x: usize, y: usize| buf[(y * PANEL_W + x) * 3..][..3] == [255, 0, 0];
        let column = |x: usize| (0..PANEL_H).find(|&y| red(x, y));
        let (a, b) = (
            column(LEFT + 1).unwrap(),
            column(PANEL_W - MARGIN - 1).unwrap(),
        );
        assert!(a < b, "start row {a} should be above end row {b}");
    }

    #[test]
    fn empty_and_degenerate_series_do_not_panic() {
        let none: Vec<(f64, f64)> = vec![];
        let one = vec![(3.0, 0.5), (3.0, f64::NAN), (4.0, -1.0)];
        let bytes = render_png(&[
            Panel {
                series: vec![Series {
                    points: &none,
                    rgb: [0; 3],
                }],
                log_y: true,
            },
            Panel {
                series: vec![Series {
                    points: &one,
                    rgb: [0; 3],
                }],
                log_y: true,
            },
        ]);
        assert!(bytes.starts_with(b"\x89PNG"));
    }

    #[test]
    fn tick_labels_are_short_and_round() {
        assert_eq!(tick_text(12.5), "12.5");
        assert_eq!(tick_text(0.25), "0.25");
        assert_eq!(tick_text(5318.0), "5318");
        assert_eq!(tick_text(0.001), "1e-3");
        assert_eq!(tick_text(0.0), "0");
        assert!("0123456789.-e".chars().all(|c| glyph(c).is_some()));
    }

    #[test]
    fn linear_ticks_cover_the_data_in_round_steps() {
        let (lo, hi, ticks) = y_ticks(10.47, 14.51, false);
        assert!(lo <= 10.47 && hi >= 14.51, "{lo}..{hi}");
        assert!((3..=6).contains(&ticks.len()), "{ticks:?}");
        let step = ticks[1] - ticks[0];
        assert!(
            [0.5, 1.0, 2.0].iter().any(|s| (s - step).abs() < 1e-9),
            "{step}"
        );
        // A flat series still gets an axis.
        let (lo, hi, ticks) = y_ticks(0.5, 0.5, false);
        assert!(lo < hi && ticks.len() >= 2);
        // Log axes tick every decade.
        let (_, _, ticks) = y_ticks(-2.3, 0.4, true);
        assert_eq!(ticks, vec![-3.0, -2.0, -1.0, 0.0, 1.0]);
    }

    #[test]
    fn tick_labels_are_drawn_left_of_the_axis() {
        let pts = vec![(64.0, 10.0), (1024.0, 14.0)];
        let bytes = render_png(&[Panel {
            series: vec![Series {
                points: &pts,
                rgb: [255, 0, 0],
            }],
            log_y: false,
        }]);
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let ink = (0..PANEL_H)
            .flat_map(|y| (0..LEFT - 2).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(y * PANEL_W + x) * 3..][..3] == INK)
            .count();
        assert!(ink > 50, "only {ink} label pixels");
    }
}
