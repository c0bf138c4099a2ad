//! Loss curves as PNG, drawn by hand (no plotting library): one panel per series, log-scale
//! y axis, light grid lines at every power of ten. Enough to see at a glance whether a run
//! is learning; the numbers themselves are in the JSON log next to the picture.

use std::path::Path;

use crate::fsutil::write_atomic;

/// One line of a panel: `(x, y)` points (non-positive or non-finite y are skipped: log scale).
pub struct Series<'a> {
    pub points: &'a [(f64, f64)],
    pub rgb: [u8; 3],
}

/// One panel: several series sharing axes.
pub struct Panel<'a> {
    pub series: Vec<Series<'a>>,
}

const PANEL_W: usize = 640;
const PANEL_H: usize = 240;
const MARGIN: usize = 12;

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

fn draw_panel(c: &mut Canvas, top: usize, panel: &Panel) {
    let pts = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(_, y)| y.is_finite() && *y > 0.0)
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y.log10());
        y1 = y1.max(y.log10());
    }
    let (left, right) = (MARGIN as f64, (PANEL_W - MARGIN) as f64);
    let (upper, lower) = ((top + MARGIN) as f64, (top + PANEL_H - MARGIN) as f64);
    // Frame.
    for x in MARGIN..=PANEL_W - MARGIN {
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
    let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let map = |x: f64, y: f64| -> (i64, i64) {
        let px = left + (x - x0) / (x1 - x0) * (right - left);
        let py = lower - (y.log10() - y0) / (y1 - y0) * (lower - upper);
        (px.round() as i64, py.round() as i64)
    };
    // Grid at powers of ten.
    let mut decade = y0;
    while decade <= y1 {
        let (_, py) = map(x0, 10f64.powf(decade));
        for x in (MARGIN..PANEL_W - MARGIN).step_by(4) {
            c.set(x as i64, py, [215; 3]);
        }
        decade += 1.0;
    }
    for s in &panel.series {
        let mut prev: Option<(i64, i64)> = None;
        for &(x, y) in s.points {
            if !(y.is_finite() && y > 0.0) {
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
        }]);
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let red = |x: usize, y: usize| buf[(y * PANEL_W + x) * 3..][..3] == [255, 0, 0];
        let column = |x: usize| (0..PANEL_H).find(|&y| red(x, y));
        let (a, b) = (
            column(MARGIN + 1).unwrap(),
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
            },
            Panel {
                series: vec![Series {
                    points: &one,
                    rgb: [0; 3],
                }],
            },
        ]);
        assert!(bytes.starts_with(b"\x89PNG"));
    }
}
