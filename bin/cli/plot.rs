//! Small raster line plots written as PNG files, with no plotting or font crates.
//!
//! A [`Plot`] holds a title, axis labels and one or more [`Series`]; [`Plot::write_png`]
//! renders an 800×500 RGB chart (white background, grid, "nice" 1-2-5 ticks, anti-aliased
//! 2-pixel lines, markers for short series, a legend) and writes it atomically. Text uses
//! the embedded bitmap font in `font.rs`, so rendering works on machines without fonts.
//!
//! Points with a NaN or infinite coordinate, and with `log_y`, points whose y is not
//! positive, are skipped; the line is broken where they were.

#[path = "font.rs"]
mod font;

use std::fs;
use std::io;
use std::path::Path;

use font::{text_width, Canvas, Mask, Rect, Rgb, GLYPH_H, WHITE};

/// Width of the rendered image in pixels.
pub const WIDTH: usize = 800;
/// Height of the rendered image in pixels.
pub const HEIGHT: usize = 500;

/// One named line of a [`Plot`]: its points as `(x, y)` pairs, drawn in the given order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The points, joined by straight lines in order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A line chart of one or more [`Series`] sharing the same axes.
#[derive(Clone, Debug, Default)]
pub struct Plot {
    /// Drawn centred above the chart (empty: no title).
    pub title: String,
    /// Drawn below the x axis (empty: none).
    pub x_label: String,
    /// Drawn rotated beside the y axis (empty: none).
    pub y_label: String,
    /// The lines, each drawn in its own colour.
    pub series: Vec<Series>,
    /// Use a base-10 logarithmic y axis; points with y ≤ 0 are then skipped.
    pub log_y: bool,
}

const TEXT: Rgb = [30, 30, 30];
const FRAME: Rgb = [90, 90, 90];
const GRID: Rgb = [228, 228, 228];
const LEGEND_BORDER: Rgb = [170, 170, 170];

/// Series colours (the "tab10" palette as `0xRRGGBB`), used in order and then repeated.
const PALETTE: [u32; 10] = [
    0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22,
    0x17becf,
];

/// Series with at most this many points get a marker on each point.
const MARKER_MAX_POINTS: usize = 20;
/// Half the width of a series line, in pixels.
const LINE_HALF_WIDTH: f64 = 1.0;
/// Radius of a point marker, in pixels.
const MARKER_RADIUS: f64 = 3.5;

impl Plot {
    /// Renders the chart and writes it to `path` as an 8-bit RGB PNG.
    ///
    /// The image is first written to a temporary file in the same directory, which is then
    /// renamed over `path`, so readers never see a half-written file.
    pub fn write_png(&self, path: &Path) -> io::Result<()> {
        let canvas = self.render();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let result = canvas.write_png(&tmp).and_then(|()| fs::rename(&tmp, path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Draws the whole chart onto a fresh canvas.
    fn render(&self) -> Canvas {
        let mut c = Canvas::new(WIDTH, HEIGHT);
        let series: Vec<Vec<Option<(f64, f64)>>> =
            self.series.iter().map(|s| self.usable_points(s)).collect();
        let valid = || series.iter().flatten().flatten();

        // The y axis first: its tick labels decide the left margin.
        let (y_lo, y_hi) = data_range(valid().map(|p| p.1));
        let y_axis = if self.log_y {
            Axis::log(y_lo, y_hi)
        } else {
            Axis::linear(y_lo, y_hi, 6)
        };
        let y_label_w = y_axis.labels.iter().map(|l| text_width(l, 1)).max();
        let mut left = 12 + y_label_w.unwrap_or(0) + 10;
        if !self.y_label.is_empty() {
            left += GLYPH_H + 10;
        }
        let top = if self.title.is_empty() { 20 } else { 48 };
        let bottom = if self.x_label.is_empty() { 34 } else { 54 };
        let area = Rect::new(left, top, WIDTH - 24, HEIGHT - bottom);

        // The x axis: fewer ticks until their labels fit side by side.
        let (x_lo, x_hi) = data_range(valid().map(|p| p.0));
        let mut x_axis = Axis::linear(x_lo, x_hi, 8);
        for target in (2..8).rev() {
            let widest = x_axis.labels.iter().map(|l| text_width(l, 1)).max();
            let spacing = area.width() as f64 / x_axis.ticks.len().max(1) as f64;
            if (widest.unwrap_or(0) + 12) as f64 <= spacing {
                break;
            }
            x_axis = Axis::linear(x_lo, x_hi, target);
        }

        let to_px = |(x, y): (f64, f64)| {
            (
                x_axis.to_px(x, area.x0, area.x1),
                y_axis.to_px(y, area.y1, area.y0),
            )
        };

        self.draw_axes(&mut c, &area, &x_axis, &y_axis);
        // Every pixel a series touches, so the legend can avoid covering data.
        let mut occupied = vec![false; WIDTH * HEIGHT];
        for (i, pts) in series.iter().enumerate() {
            let px: Vec<Option<(f64, f64)>> = pts.iter().map(|p| p.map(to_px)).collect();
            let markers = valid_count(pts) <= MARKER_MAX_POINTS;
            draw_series(&mut c, &area, &px, markers, colour(i), &mut occupied);
        }
        self.draw_legend(&mut c, &area, &series, &occupied);
        c
    }

    /// The points of `s` in plot coordinates (y as log10 with `log_y`), `None` where skipped.
    fn usable_points(&self, s: &Series) -> Vec<Option<(f64, f64)>> {
        let usable = |&(x, y): &(f64, f64)| {
            // log10 of zero or a negative number is not finite, so those are skipped too.
            let y = if self.log_y { y.log10() } else { y };
            (x.is_finite() && y.is_finite()).then_some((x, y))
        };
        s.points.iter().map(usable).collect()
    }

    /// Grid, frame, ticks, tick labels, axis labels and title.
    fn draw_axes(&self, c: &mut Canvas, area: &Rect, x_axis: &Axis, y_axis: &Axis) {
        let x_ticks = x_axis.tick_pixels(area.x0, area.x1);
        let y_ticks = y_axis.tick_pixels(area.y1, area.y0);

        for &(x, _) in &x_ticks {
            c.fill_rect(x, area.y0, 1, area.height(), GRID);
        }
        for &(y, _) in &y_ticks {
            c.fill_rect(area.x0, y, area.width(), 1, GRID);
        }
        c.stroke_rect(area, FRAME);

        for &(x, label) in &x_ticks {
            c.fill_rect(x, area.y1, 1, 5, FRAME);
            c.text_centred(x as isize, area.y1 as isize + 9, label, 1, TEXT);
        }
        for &(y, label) in &y_ticks {
            c.fill_rect(area.x0 - 5, y, 5, 1, FRAME);
            let w = text_width(label, 1) as isize;
            let x = area.x0 as isize - 10 - w;
            c.text(x, y as isize - 3, label, 1, TEXT);
        }

        let centre_x = (area.x0 + area.x1) as isize / 2;
        if !self.x_label.is_empty() {
            let y = area.y1 as isize + 9 + GLYPH_H as isize + 10;
            c.text_centred(centre_x, y, &self.x_label, 1, TEXT);
        }
        if !self.y_label.is_empty() {
            let w = text_width(&self.y_label, 1) as isize;
            let centre_y = (area.y0 + area.y1) as isize / 2;
            c.text_up(12, centre_y + w / 2, &self.y_label, TEXT);
        }
        if !self.title.is_empty() {
            // Twice the size when it fits, else normal size.
            let scale = 1 + usize::from(text_width(&self.title, 2) <= WIDTH - 20);
            let y = 24 - (GLYPH_H * scale) as isize / 2;
            c.text_centred(centre_x, y, &self.title, scale, TEXT);
        }
    }

    /// A boxed legend in the corner of the plot area that covers the fewest data pixels.
    fn draw_legend(
        &self,
        c: &mut Canvas,
        area: &Rect,
        series: &[Vec<Option<(f64, f64)>>],
        occupied: &[bool],
    ) {
        if self.series.is_empty() {
            return;
        }
        const ROW: usize = 16;
        const SAMPLE: usize = 22;
        let names_w = self.series.iter().map(|s| text_width(&s.name, 1)).max();
        let w = (8 + SAMPLE + 6 + names_w.unwrap_or(0) + 8).min(area.width() - 8);
        let h = (6 + ROW * self.series.len()).min(area.height() - 8);
        let (l, r) = (area.x0 + 8, area.x1 - 8 - w);
        let (t, b) = (area.y0 + 8, area.y1 - 8 - h);
        let corners = [(r, t), (l, t), (r, b), (l, b)];
        let covered = |&(x0, y0): &(usize, usize)| {
            (y0..y0 + h)
                .map(|y| {
                    occupied[y * WIDTH + x0..y * WIDTH + x0 + w]
                        .iter()
                        .filter(|o| **o)
                })
                .map(Iterator::count)
                .sum::<usize>()
        };
        let (x0, y0) = corners
            .iter()
            .copied()
            .min_by_key(covered)
            .unwrap_or((r, t));
        let rect = Rect::new(x0, y0, x0 + w, y0 + h);
        c.fill_rect(x0, y0, w, h, WHITE);
        c.stroke_rect(&rect, LEGEND_BORDER);
        for (i, s) in self.series.iter().enumerate() {
            let cy = (y0 + 3 + ROW * i + ROW / 2) as f64;
            if cy + 4.0 > rect.y1 as f64 {
                break;
            }
            let sx = (x0 + 8) as f64;
            let mut mask = Mask::new(&rect);
            mask.segment((sx, cy), (sx + SAMPLE as f64, cy), LINE_HALF_WIDTH);
            if valid_count(&series[i]) <= MARKER_MAX_POINTS {
                mask.disc((sx + SAMPLE as f64 / 2.0, cy), MARKER_RADIUS);
            }
            mask.paint(c, colour(i), None);
            let tx = (x0 + 8 + SAMPLE + 6) as isize;
            c.text(tx, cy as isize - 3, &s.name, 1, TEXT);
        }
    }
}

/// The colour of series number `i`.
fn colour(i: usize) -> Rgb {
    let [_, r, g, b] = PALETTE[i % PALETTE.len()].to_be_bytes();
    [r, g, b]
}

fn valid_count(points: &[Option<(f64, f64)>]) -> usize {
    points.iter().flatten().count()
}

/// Draws one series (given in pixel coordinates) with a 2-pixel line and optional markers.
/// A point with no usable neighbour always gets a marker, so it stays visible.
fn draw_series(
    c: &mut Canvas,
    area: &Rect,
    px: &[Option<(f64, f64)>],
    markers: bool,
    rgb: Rgb,
    occupied: &mut [bool],
) {
    // Lines may bulge a few pixels past the frame (data on the edge of the range).
    let bounds = Rect::new(area.x0 - 5, area.y0 - 5, area.x1 + 5, area.y1 + 5);
    let mut mask = Mask::new(&bounds);
    for (i, p) in px.iter().enumerate() {
        let Some(p) = *p else { continue };
        let next = px.get(i + 1).copied().flatten();
        let prev = i.checked_sub(1).and_then(|j| px[j]);
        if let Some(q) = next {
            mask.segment(p, q, LINE_HALF_WIDTH);
        }
        if markers || (next.is_none() && prev.is_none()) {
            mask.disc(p, MARKER_RADIUS);
        }
    }
    mask.paint(c, rgb, Some(occupied));
}

/// The smallest and largest of `values` (all finite), or `(0, 1)` when there are none.
fn data_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        (0.0, 1.0)
    } else {
        (lo, hi)
    }
}

/// One axis: its (plot-coordinate) range, tick positions and tick labels.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl Axis {
    /// A linear axis over `[lo, hi]` widened to whole multiples of a 1-2-5 step, giving
    /// about `target` intervals. A zero-width range is widened around its value.
    fn linear(lo: f64, hi: f64, target: usize) -> Axis {
        let (lo, hi) = widen(lo, hi);
        let step = nice_step((hi - lo) / target as f64);
        if !step.is_finite() || step <= 0.0 {
            return Axis::plain(lo, hi);
        }
        let first = (lo / step).floor();
        let last = (hi / step).ceil();
        if !(last - first).is_finite() || last - first > 100.0 {
            return Axis::plain(lo, hi);
        }
        let ticks: Vec<f64> = (0..=(last - first) as usize)
            .map(|k| (first + k as f64) * step)
            .collect();
        let labels = tick_labels(&ticks.iter().map(|&t| (t, step)).collect::<Vec<_>>());
        Axis {
            lo: first * step,
            hi: last * step,
            ticks,
            labels,
        }
    }

    /// A log10 axis for data whose log10 lies in `[lo, hi]`, spanning whole decades, ticked
    /// at 1, 2 and 5 times each power of ten when it spans few decades.
    fn log(lo: f64, hi: f64) -> Axis {
        let mut d0 = lo.floor();
        let mut d1 = hi.ceil();
        if d1 - d0 < 1.0 {
            d0 -= 1.0;
            d1 += 1.0;
        }
        let decades = d1 - d0;
        if !decades.is_finite() || decades > 600.0 {
            return Axis::plain(lo, hi);
        }
        let every = (decades / 8.0).ceil().max(1.0) as usize;
        let mut values = Vec::new();
        for k in (0..=decades as usize).step_by(every) {
            let e = d0 + k as f64;
            let multiples = if decades <= 2.0 { 3 } else { 1 };
            for m in [1.0, 2.0, 5.0].into_iter().take(multiples) {
                let v = m * 10f64.powf(e);
                if v.log10() <= d1 + 1e-9 {
                    values.push((v, 10f64.powf(e)));
                }
            }
        }
        Axis {
            lo: d0,
            hi: d1,
            ticks: values.iter().map(|(v, _)| v.log10()).collect(),
            labels: tick_labels(&values),
        }
    }

    /// An axis with ticks only at its two ends, for ranges too odd to tick nicely.
    fn plain(lo: f64, hi: f64) -> Axis {
        let labels = vec![format!("{lo:.3e}"), format!("{hi:.3e}")];
        Axis {
            lo,
            hi,
            ticks: vec![lo, hi],
            labels,
        }
    }

    /// The pixel coordinate of `v` when `lo` is drawn at pixel `start` and `hi` at `end`.
    fn to_px(&self, v: f64, start: usize, end: usize) -> f64 {
        let f = (v - self.lo) / (self.hi - self.lo);
        let f = if f.is_finite() { f } else { 0.5 };
        start as f64 + f * (end as f64 - start as f64)
    }

    /// Each tick's whole-pixel coordinate (as for [`Axis::to_px`]) with its label.
    fn tick_pixels(&self, start: usize, end: usize) -> Vec<(usize, &str)> {
        let px = |&t: &f64| self.to_px(t, start, end).round() as usize;
        self.ticks
            .iter()
            .map(px)
            .zip(self.labels.iter().map(String::as_str))
            .collect()
    }
}

/// `[lo, hi]`, widened around the value when it (nearly) has zero width.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    let scale = lo.abs().max(hi.abs());
    if hi - lo > scale * 1e-9 {
        (lo, hi)
    } else if scale == 0.0 {
        (-1.0, 1.0)
    } else {
        (lo - scale * 0.1, hi + scale * 0.1)
    }
}

/// The smallest of 1, 2, 5 or 10 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = [1.0, 2.0, 5.0]
        .into_iter()
        .find(|&m| norm <= m * (1.0 + 1e-9));
    m.unwrap_or(10.0) * mag
}

/// Labels for ticks given as `(value, step)` pairs, `step` being the 1-2-5 multiple of a
/// power of ten the value is a multiple of. Plain decimals with just enough digits, or,
/// when any value has an extreme magnitude, `2.5e-6` style for all of them.
fn tick_labels(ticks: &[(f64, f64)]) -> Vec<String> {
    let exp = |v: f64| (v.abs().log10() + 1e-9).floor() as i32;
    let is_zero = |v: f64, step: f64| v.abs() < step * 1e-6;
    let sci = ticks
        .iter()
        .any(|&(v, step)| !is_zero(v, step) && !(-4..6).contains(&exp(v)));
    let label = |&(v, step): &(f64, f64)| {
        if is_zero(v, step) {
            return "0".to_string();
        }
        if !sci {
            let decimals = (-exp(step)).clamp(0, 10) as usize;
            return format!("{v:.decimals$}");
        }
        let (mut e, digits) = (exp(v), (exp(v) - exp(step)).clamp(0, 6) as usize);
        let mut mantissa = format!("{:.digits$}", v / 10f64.powi(e));
        // Rounding can give "10.0"; renormalise so the mantissa stays below 10.
        if mantissa.trim_start_matches('-').starts_with("10") {
            e += 1;
            mantissa = format!("{:.digits$}", v / 10f64.powi(e));
        }
        if mantissa.contains('.') {
            mantissa = mantissa.trim_end_matches('0').trim_end_matches('.').into();
        }
        format!("{mantissa}e{e}")
    };
    ticks.iter().map(label).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh, empty directory for one test.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pgm_plot_{}_{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Decodes an RGB PNG into (width, height, pixels).
    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let file = io::BufReader::new(fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn count(pixels: &[u8], rgb: Rgb) -> usize {
        pixels.chunks_exact(3).filter(|p| **p == rgb).count()
    }

    fn render_to(dir: &Path, plot: &Plot) -> Vec<u8> {
        let path = dir.join("plot.png");
        plot.write_png(&path).unwrap();
        let (w, h, pixels) = decode(&path);
        assert_eq!((w as usize, h as usize), (WIDTH, HEIGHT));
        // Nothing but the final file is left behind.
        assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
        pixels
    }

    fn series(name: &str, points: Vec<(f64, f64)>) -> Series {
        let name = name.to_string();
        Series { name, points }
    }

    /// Points at x = 0, 1, 2, … with the given y values.
    fn ys(ys: &[f64]) -> Vec<(f64, f64)> {
        ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect()
    }

    fn losses(scale: f64, n: usize) -> Vec<(f64, f64)> {
        let f = |i: usize| (i as f64 * 10.0, scale * (2.0 + (-(i as f64) / 30.0).exp()));
        (0..n).map(f).collect()
    }

    #[test]
    fn two_series_round_trip() {
        let dir = temp_dir("two");
        let plot = Plot {
            title: "Loss".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            series: vec![
                series("train", losses(1.0, 200)),
                series("val", losses(1.1, 10)),
            ],
            log_y: false,
        };
        let pixels = render_to(&dir, &plot);
        assert_eq!(&pixels[..3], &WHITE);
        assert_eq!(&pixels[pixels.len() - 3..], &WHITE);
        assert!(count(&pixels, WHITE) > WIDTH * HEIGHT / 2);
        assert!(count(&pixels, colour(0)) > 200, "first series missing");
        assert!(count(&pixels, colour(1)) > 100, "second series missing");
        assert!(count(&pixels, TEXT) > 200, "text missing");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn empty_and_degenerate_plots_still_write_pngs() {
        let dir = temp_dir("degenerate");
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let cases = [
            vec![],
            vec![series("empty", vec![])],
            vec![series("one point", vec![(3.0, 7.0)])],
            vec![series("flat", vec![(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)])],
            vec![series("zeros", vec![(0.0, 0.0), (0.0, 0.0)])],
            vec![series("nan", ys(&[1.0, nan, 3.0, -inf, 1.5, inf, 2.0]))],
            vec![series(
                "nan x",
                vec![(0.0, 1.0), (nan, 2.0), (inf, 2.0), (3.0, 1.0)],
            )],
            vec![series("all nan", vec![(nan, nan); 3])],
            vec![series("non-positive", ys(&[-1.0, 0.0, 0.5, 0.05, 0.02]))],
            vec![series("huge", vec![(-1e308, -1e308), (1e308, 1e308)])],
            vec![series("tiny", vec![(0.0, 1e-300), (1e-300, 2e-300)])],
        ];
        for (i, s) in cases.into_iter().enumerate() {
            for log_y in [false, true] {
                let usable =
                    |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
                let has_points = s.iter().any(|s| s.points.iter().any(usable));
                let series = s.clone();
                let plot = Plot {
                    series,
                    log_y,
                    ..Plot::default()
                };
                let pixels = render_to(&dir, &plot);
                assert_eq!(&pixels[..3], &WHITE);
                // Compared with the same plot without points (the legend shows the colour too).
                let mut blank = plot.clone();
                blank.series.iter_mut().for_each(|s| s.points.clear());
                let legend_only = count(&render_to(&dir, &blank), colour(0));
                let drawn = count(&pixels, colour(0)) > legend_only;
                assert_eq!(drawn, has_points, "case {i}, log_y {log_y}");
            }
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_step(0.23), 0.5);
        assert_eq!(nice_step(0.1), 0.1);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(6.0), 10.0);
        let axis = Axis::linear(0.03, 0.97, 5);
        assert_eq!(axis.labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!((axis.lo, axis.hi), (0.0, 1.0));
        let axis = Axis::linear(0.0, 1000.0, 8);
        assert_eq!(axis.labels[..3], ["0", "200", "400"]);
        let axis = Axis::log(0.3f64.log10(), 5f64.log10());
        assert_eq!(axis.labels, ["0.1", "0.2", "0.5", "1", "2", "5", "10"]);
        let labels = |ticks: &[f64], step| {
            tick_labels(&ticks.iter().map(|&t| (t, step)).collect::<Vec<_>>())
        };
        assert_eq!(labels(&[1e-12, 0.1 + 0.2, -1.0], 0.1), ["0", "0.3", "-1.0"]);
        assert_eq!(
            labels(&[-2.5e-6, 5e-6, 1e-5], 5e-7),
            ["-2.5e-6", "5e-6", "1e-5"]
        );
        assert_eq!(labels(&[0.0, 8e6, 1e7], 2e6), ["0", "8e6", "1e7"]);
        let axis = Axis::log(-6.0, 3.0);
        assert_eq!(axis.labels, ["1e-6", "1e-4", "1e-2", "1e0", "1e2"]);
    }
}
