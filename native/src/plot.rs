//! Curves as PNG with `plotters`: stacked panels, each with a title, axis names, tick labels
//! and a legend naming its series (training, held-out, ...). Loss panels use a log-scale y
//! axis, metric panels a linear one. Enough to read a run at a glance; the exact numbers are
//! in the JSON next to the picture.
//!
//! Text is drawn with an embedded DejaVu Sans subset (`native/assets/`, Bitstream Vera licence
//! in `LICENSE-DejaVu.txt`) through plotters' `ab_glyph` renderer, so plots need no system
//! fonts or fontconfig. Pixels go to a buffer that the `png` crate encodes.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::fsutil::write_atomic;

/// One line of a panel: `(x, y)` points (non-finite values are skipped, and on a log axis
/// non-positive y too), with its legend entry (no entry when `name` is empty).
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
    pub rgb: [u8; 3],
}

/// One panel: several series sharing axes.
pub struct Panel<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
    /// Log-scale y (losses spanning decades) or linear (metrics such as PSNR or accuracy).
    pub log_y: bool,
}

/// The colours the trainers use for a training curve and its held-out counterpart.
pub const TRAIN_RGB: [u8; 3] = [70, 110, 220];
pub const HELD_OUT_RGB: [u8; 3] = [220, 60, 40];

const PANEL_W: u32 = 720;
const PANEL_H: u32 = 280;
const FONT: &str = "sans-serif";
static FONT_TTF: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_font(FONT, FontStyle::Normal, FONT_TTF)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType file"));
    });
}

/// The points of `series` an axis can show.
fn drawable(series: &Series, log_y: bool) -> Vec<(f64, f64)> {
    series
        .points
        .iter()
        .copied()
        .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0))
        .collect()
}

/// `lo..hi` widened so that a single value or an empty series still gets an axis.
fn span(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return if log { 0.1..1.0 } else { 0.0..1.0 };
    }
    if log {
        if hi / lo < 1.5 {
            return lo / 1.25..hi * 1.25;
        }
        return lo..hi;
    }
    if hi - lo < 1e-9 * lo.abs().max(1.0) {
        let pad = lo.abs().max(1.0) * 0.05;
        return lo - pad..hi + pad;
    }
    let pad = (hi - lo) * 0.05;
    lo - pad..hi + pad
}

/// Round tick values on a log axis over `r`: powers of ten when the range spans enough decades,
/// else 1-2-5 steps, else every integer multiple within each decade (at least three ticks
/// whenever the range allows).
fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    let (lo, hi) = (r.start.log10().floor() as i32, r.end.log10().ceil() as i32);
    let mut ticks = Vec::new();
    for multiples in [
        &[1.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        ticks = (lo..=hi)
            .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
            // A relative tolerance, so that a range ending on a power of ten keeps that tick.
            .filter(|v| (r.start * (1.0 - 1e-9)..=r.end * (1.0 + 1e-9)).contains(v))
            .collect();
        if ticks.len() >= 3 {
            break;
        }
    }
    ticks
}

/// A tick value in few characters: 12.5, 0.25, 5318, 1e-3.
fn tick_text(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-2..1e5).contains(&a) {
        let e = a.log10().floor();
        let m = v / 10f64.powf(e);
        let m = if (m.round() - m).abs() < 1e-6 {
            format!("{}", m.round())
        } else {
            format!("{m:.1}")
        };
        return format!("{m}e{e}");
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn colour([r, g, b]: [u8; 3]) -> RGBColor {
    RGBColor(r, g, b)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One panel into `area`, with the y axis `Y` (linear or log).
fn draw_panel<Y>(area: &Area<'_>, panel: &Panel, x: Range<f64>, y: Y) -> Result<(), String>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 17))
        .margin(8)
        .margin_right(18)
        .x_label_area_size(38)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(|e| err(&e))?;
    let label_style = (FONT, 12).into_font().color(&RGBColor(70, 70, 70));
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .axis_desc_style((FONT, 13))
        .label_style(label_style)
        .x_label_formatter(&|v| tick_text(*v))
        .y_label_formatter(&|v| tick_text(*v))
        .x_labels(8)
        .y_labels(6)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(|e| err(&e))?;
    let mut legend = false;
    for s in &panel.series {
        let c = colour(s.rgb);
        let drawn = chart
            .draw_series(LineSeries::new(drawable(s, panel.log_y), c.stroke_width(2)))
            .map_err(|e| err(&e))?;
        if !s.name.is_empty() {
            legend = true;
            drawn
                .label(s.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

/// Render `panels` stacked vertically into PNG bytes.
pub fn render_png(panels: &[Panel]) -> std::io::Result<Vec<u8>> {
    register_fonts();
    let (w, h) = (PANEL_W, PANEL_H * panels.len().max(1) as u32);
    let mut px = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut px, (w, h)).into_drawing_area();
        let areas = root.split_evenly((panels.len().max(1), 1));
        let points: Vec<Vec<(f64, f64)>> = panels
            .iter()
            .map(|p| p.series.iter().flat_map(|s| drawable(s, p.log_y)).collect())
            .collect();
        // A panel without data keeps the x axis of the others, so stacked panels line up.
        let all_x = span(points.iter().flatten().map(|p| p.0), false);
        for ((area, panel), points) in areas.iter().zip(panels).zip(&points) {
            let x = if points.is_empty() {
                all_x.clone()
            } else {
                span(points.iter().map(|p| p.0), false)
            };
            let y = span(points.iter().map(|p| p.1), panel.log_y);
            if panel.log_y {
                let ticks = log_ticks(&y);
                draw_panel(area, panel, x, y.log_scale().with_key_points(ticks))
            } else {
                draw_panel(area, panel, x, y)
            }
            .map_err(|e| std::io::Error::other(format!("cannot draw `{}`: {e}", panel.title)))?;
        }
        root.present()
            .map_err(|e| std::io::Error::other(format!("cannot draw the plot: {e}")))?;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(&px)
            .map_err(std::io::Error::other)?;
    }
    Ok(out)
}

/// [`render_png`] written atomically to `path`.
pub fn write_png(path: &Path, panels: &[Panel]) -> std::io::Result<()> {
    write_atomic(path, &render_png(panels)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info.width as usize, info.height as usize, buf)
    }

    fn panel<'a>(series: Vec<Series<'a>>, log_y: bool) -> Panel<'a> {
        Panel {
            title: "loss",
            x_label: "step",
            y_label: "loss",
            series,
            log_y,
        }
    }

    const RED: [u8; 3] = [255, 0, 0];

    #[test]
    fn falling_curve_is_drawn_from_top_left_to_bottom_right() {
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
            .collect();
        let bytes = render_png(&[panel(
            vec![Series {
                name: "",
                points: &pts,
                rgb: RED,
            }],
            true,
        )])
        .unwrap();
        let (w, h, buf) = decode(&bytes);
        let red = |x: usize, y: usize| buf[(y * w + x) * 3..][..3] == RED;
        let columns: Vec<(usize, usize)> = (0..w)
            .filter_map(|x| (0..h).find(|&y| red(x, y)).map(|y| (x, y)))
            .collect();
        assert!(columns.len() > w / 2, "the curve spans the plot");
        let (first, last) = (columns[0], columns[columns.len() - 1]);
        assert!(first.0 < w / 4 && last.0 > w * 3 / 4, "{first:?} {last:?}");
        assert!(
            first.1 + h / 2 < last.1,
            "{first:?} should be well above {last:?}"
        );
    }

    #[test]
    fn empty_and_degenerate_series_do_not_panic() {
        let none: Vec<(f64, f64)> = vec![];
        let one = vec![(3.0, 0.5), (3.0, f64::NAN), (4.0, -1.0)];
        let flat = vec![(0.0, 2.0), (5.0, 2.0)];
        for log_y in [true, false] {
            let bytes = render_png(&[
                panel(
                    vec![Series {
                        name: "a",
                        points: &none,
                        rgb: [0; 3],
                    }],
                    log_y,
                ),
                panel(
                    vec![Series {
                        name: "b",
                        points: &one,
                        rgb: [0; 3],
                    }],
                    log_y,
                ),
                panel(
                    vec![Series {
                        name: "c",
                        points: &flat,
                        rgb: [0; 3],
                    }],
                    log_y,
                ),
            ])
            .unwrap();
            let (w, h, _) = decode(&bytes);
            assert_eq!((w, h), (PANEL_W as usize, 3 * PANEL_H as usize));
        }
    }

    #[test]
    fn tick_labels_are_short_and_round() {
        assert_eq!(tick_text(12.5), "12.5");
        assert_eq!(tick_text(0.25), "0.25");
        assert_eq!(tick_text(5318.0), "5318");
        assert_eq!(tick_text(0.001), "1e-3");
        assert_eq!(tick_text(0.0), "0");
        assert_eq!(tick_text(200000.0), "2e5");
    }

    #[test]
    fn spans_cover_the_data_and_never_collapse() {
        let r = span([10.47, 14.51].into_iter(), false);
        assert!(r.start < 10.47 && r.end > 14.51, "{r:?}");
        let r = span([0.5, 0.5].into_iter(), false);
        assert!(r.start < 0.5 && r.end > 0.5, "{r:?}");
        let r = span([0.5].into_iter(), true);
        assert!(r.start > 0.0 && r.start < 0.5 && r.end > 0.5, "{r:?}");
        assert_eq!(span(std::iter::empty(), true), 0.1..1.0);
    }

    #[test]
    fn log_ticks_are_round_and_never_too_few() {
        let labels = |lo: f64, hi: f64| -> Vec<String> {
            log_ticks(&(lo..hi)).into_iter().map(tick_text).collect()
        };
        assert_eq!(
            labels(1e-4, 20.0),
            ["1e-4", "1e-3", "0.01", "0.1", "1", "10"]
        );
        assert_eq!(labels(0.15, 6.0), ["0.2", "0.5", "1", "2", "5"]);
        assert_eq!(labels(1.2, 8.0), ["2", "3", "4", "5", "6", "7", "8"]);
    }

    /// Title and tick labels are text: dark anti-aliased pixels in the title band and left of
    /// the plot. Named series add a legend box at the upper right with both colours in it.
    #[test]
    fn text_and_legend_are_drawn() {
        let train: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 3.0 - 0.04 * i as f64)).collect();
        let held: Vec<(f64, f64)> = (0..5)
            .map(|i| (i as f64 * 10.0, 2.8 - 0.3 * i as f64))
            .collect();
        let render = |names: [&str; 2]| {
            let bytes = render_png(&[panel(
                vec![
                    Series {
                        name: names[0],
                        points: &train,
                        rgb: TRAIN_RGB,
                    },
                    Series {
                        name: names[1],
                        points: &held,
                        rgb: HELD_OUT_RGB,
                    },
                ],
                false,
            )])
            .unwrap();
            decode(&bytes)
        };
        let (w, h, named) = render(["train", "held-out"]);
        let (_, _, unnamed) = render(["", ""]);
        let px = |buf: &[u8], x: usize, y: usize| -> [u8; 3] {
            buf[(y * w + x) * 3..][..3].try_into().unwrap()
        };
        let count =
            |buf: &[u8], xs: Range<usize>, ys: Range<usize>, f: &dyn Fn([u8; 3]) -> bool| {
                ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
                    .filter(|&(x, y)| f(px(buf, x, y)))
                    .count()
            };
        let dark = |p: [u8; 3]| p.iter().all(|&c| c < 140);
        assert!(count(&named, 0..w, 0..24, &dark) > 30, "no title");
        assert!(
            count(&named, 0..50, 30..h - 40, &dark) > 50,
            "no y tick labels"
        );
        let legend = (w * 2 / 3..w, 20..h / 2);
        for rgb in [TRAIN_RGB, HELD_OUT_RGB] {
            let swatch = |buf: &[u8]| count(buf, legend.0.clone(), legend.1.clone(), &|p| p == rgb);
            assert!(
                swatch(&named) > swatch(&unnamed) + 20,
                "legend swatch {rgb:?}: {} vs {} pixels without names",
                swatch(&named),
                swatch(&unnamed)
            );
        }
        let text = |buf: &[u8]| count(buf, legend.0.clone(), legend.1.clone(), &dark);
        assert!(text(&named) > text(&unnamed) + 50, "no legend text");
    }
}
