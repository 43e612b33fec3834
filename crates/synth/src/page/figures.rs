//! Figures set into a column: line, bar and scatter charts drawn with
//! plotters, and procedural photographs (see `photos.rs`), each with a
//! caption line.
//!
//! Plotters draws the chart body (grid, series, axes, ticks) into a white RGB
//! buffer that is multiplied into the page; tick labels and legends are set
//! with the page's own fonts, since plotters' text would need a globally
//! registered font. Chart labels are not part of the ground truth; captions
//! are.

use std::error::Error;

use image::RgbImage;
use plotters::prelude::{
    BitMapBackend, ChartBuilder, Circle, Color, Cross, DashedLineSeries, IntoDrawingArea,
    LineSeries, PathElement, RGBColor, Rectangle, ShapeStyle, TriangleMarker,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::blocks::{Column, Writer};
use super::content::{hex, pick};
use super::corpus;
use super::paint::multiply_image;

/// Series colours as printed.
const PALETTE: &[[u8; 3]] = &[
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];
const SERIES_NAMES: &[&str] = &[
    "North", "South", "East", "West", "Exports", "Imports", "Revenue", "Costs", "Actual",
    "Forecast", "Urban", "Rural", "Total",
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Which kind of figure to set.
#[derive(Clone, Copy)]
pub(super) enum Figure {
    Chart,
    Photo,
}

/// A tick: its pixel position along the axis (page coordinates) and label.
struct Tick {
    at: i32,
    label: String,
}

/// Where plotters put things, for the labels drawn afterwards.
struct ChartGeometry {
    left: i32,
    bottom: i32,
    x_ticks: Vec<Tick>,
    y_ticks: Vec<Tick>,
    legend: Vec<(i32, String)>,
}

/// "1,250" for large round numbers, "0.5" for small steps.
fn tick_label(v: f32, step: f32) -> String {
    if step >= 1.0 {
        let n = v.round() as i64;
        if n >= 10_000 {
            format!("{},{:03}", n / 1000, n % 1000)
        } else {
            n.to_string()
        }
    } else {
        format!("{v:.1}")
    }
}

/// A 1-2-5 step that splits `range` into about `ticks` intervals.
fn nice_step(range: f32, ticks: f32) -> f32 {
    let raw = (range / ticks).max(1e-6);
    let mag = 10f32.powf(raw.log10().floor());
    let norm = raw / mag;
    let unit = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    unit * mag
}

impl Writer<'_, '_> {
    /// Sets a chart or photo with its caption into the column when at least
    /// a useful size fits below `col.y` and within `max_h`; returns whether
    /// it did.
    pub fn figure(
        &mut self,
        rng: &mut ChaCha8Rng,
        col: &mut Column,
        figure: Figure,
        max_h: f32,
    ) -> bool {
        let theme = self.theme;
        let px = theme.body.px;
        let cap_style = *pick(rng, &[theme.body, theme.italic, theme.small]);
        let share = if col.width > px * 30.0 {
            rng.random_range(0.55..0.95)
        } else {
            rng.random_range(0.85..1.0)
        };
        let width = (col.width * share).floor();
        let aspect = match figure {
            Figure::Photo => *pick(rng, &[0.56, 0.66, 0.75, 1.0]),
            Figure::Chart => rng.random_range(0.5..0.72),
        };
        let centre = rng.random_bool(0.7);
        let prefix = match (figure, rng.random_range(0..3)) {
            (_, 0) => "Fig.",
            (Figure::Photo, 1) => "Plate",
            (Figure::Chart, 1) => "Chart",
            _ => "Figure",
        };
        if self.figure_no == 0 {
            self.figure_no = rng.random_range(1..9);
        }
        let mut words = vec![format!("{prefix} {}.", self.figure_no)];
        words.extend(corpus::heading(rng, 7));

        let lh = self.line_height(&theme.body);
        let gap = lh * 0.6;
        let cap_lh = self.line_height(&cap_style);
        let room = (col.bottom - col.y).min(max_h) - 2.0 * gap - cap_lh;
        let height = (width * aspect).min(room).floor();
        let min_h = px
            * if matches!(figure, Figure::Photo) {
                5.0
            } else {
                7.0
            };
        if width < px * 9.0 || height < min_h {
            return false;
        }
        let x = if centre {
            col.x + (col.width - width) * 0.5
        } else {
            col.x
        };
        let x = x.round();
        let y = (col.y + gap).round();
        let (w, h) = (width as u32, height as u32);
        let (kind, params) = match figure {
            Figure::Chart => ("chart", self.chart(rng, x as i32, y as i32, w, h)),
            Figure::Photo => ("photo", Some(self.photo(rng, x as i32, y as i32, w, h))),
        };
        let Some(params) = params else {
            return false;
        };
        self.add_element(kind, x, y, x + width, y + height, params);
        self.figure_no += 1;

        // The caption: one line, shortened until it fits the column.
        let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
        while words.len() > 2 && Self::natural_width(&cap_style, &words) > col.width {
            words.pop();
        }
        // A shortened caption must not end on "of" or "the".
        corpus::trim_tail(&mut words);
        let cap_w = Self::natural_width(&cap_style, &words);
        let cap_x = if centre {
            col.x + (col.width - cap_w) * 0.5
        } else {
            col.x
        };
        let cap_top = y + height + gap * 0.5;
        if cap_w <= col.width {
            self.emit_line(&cap_style, cap_x, cap_top, &words, None);
            let params = json!({ "text": words.join(" "), "of": kind });
            self.add_element(
                "caption",
                cap_x - 1.0,
                cap_top,
                cap_x + cap_w + 1.0,
                cap_top + cap_lh,
                params,
            );
        }
        col.y = cap_top + cap_lh + gap;
        true
    }

    /// Draws a chart into `w` x `h` pixels at `(x, y)`; `None` (and nothing
    /// drawn) when the plot area would be too small.
    fn chart(
        &mut self,
        rng: &mut ChaCha8Rng,
        x: i32,
        y: i32,
        w: u32,
        h: u32,
    ) -> Option<serde_json::Value> {
        let theme = self.theme;
        let px = theme.body.px;
        let label = theme.small;
        let kind = match rng.random_range(0..10) {
            0..6 => "line",
            6..9 => "bar",
            _ => "scatter",
        };
        let n_series: usize = match kind {
            "line" => rng.random_range(1..=4),
            "bar" => rng.random_range(1..=3),
            _ => rng.random_range(1..=2),
        };
        let n: usize = if kind == "bar" {
            rng.random_range(3..=7)
        } else {
            rng.random_range(6..=14)
        };
        let mono = rng.random_bool(0.3);
        let grid = rng.random_bool(0.5);
        let boxed = rng.random_bool(0.3);
        let magnitude = 10f32.powi(rng.random_range(0..4));
        let mut names: Vec<&str> = Vec::new();
        while names.len() < n_series {
            let name = *pick(rng, SERIES_NAMES);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let series: Vec<Vec<f32>> = (0..n_series)
            .map(|_| {
                let mut v = rng.random_range(0.2..1.0) * magnitude * 10.0;
                (0..n)
                    .map(|_| {
                        v = (v * (1.0 + rng.random_range(-0.2..0.25))).max(magnitude * 0.2);
                        v
                    })
                    .collect()
            })
            .collect();
        let x_kind = rng.random_range(0..3);
        let first_year = rng.random_range(1880..2010);
        let first_month = rng.random_range(0..12);
        let x_label = |i: usize| match (kind, x_kind) {
            ("scatter", _) => (i * 10).to_string(),
            (_, 0) => (first_year + i).to_string(),
            (_, 1) => MONTHS[(first_month + i) % 12].to_owned(),
            _ => format!("Q{}", i % 4 + 1),
        };
        let colours: Vec<[u8; 3]> = (0..n_series)
            .map(|i| {
                if mono {
                    let v = (i * 60).min(150) as u8;
                    [v, v, v]
                } else {
                    PALETTE[i % PALETTE.len()]
                }
            })
            .collect();
        let legend = n_series > 1 && rng.random_bool(0.8);

        let y_max = series.iter().flatten().fold(0.0f32, |a, &b| a.max(b));
        let step = nice_step(y_max, 4.0);
        let y_top = (y_max / step).ceil() * step;
        let y_values: Vec<f32> = (0..=(y_top / step).round() as usize)
            .map(|k| k as f32 * step)
            .collect();
        let y_labels: Vec<String> = y_values.iter().map(|&v| tick_label(v, step)).collect();
        let ylw = y_labels.iter().map(|l| label.width(l)).fold(0.0, f32::max);
        let x_labels: Vec<String> = (0..n).map(x_label).collect();
        let xlw = x_labels.iter().map(|l| label.width(l)).fold(0.0, f32::max);

        let lab_lh = label.px * 1.3;
        let tick = (px * 0.35).max(2.0).round() as i32;
        let sw = (px / 9.0).round().max(1.0) as u32;
        let left = (ylw + tick as f32 + px * 0.4).ceil() as i32 + 1;
        let bottom = (lab_lh + tick as f32 + px * 0.2).ceil() as i32;
        let legend_w: f32 = names
            .iter()
            .map(|n| px * 1.6 + label.width(n) + px * 0.8)
            .sum();
        let legend = legend && legend_w < w as f32 - left as f32;
        let top = (px * 0.6 + if legend { lab_lh } else { 0.0 }).ceil() as i32;
        let right = (px * 0.8).max(xlw * 0.5 + 2.0).ceil() as i32;
        let (plot_w, plot_h) = (w as i32 - left - right, h as i32 - top - bottom);
        if plot_w < (px * 5.0) as i32 || plot_h < (px * 3.0) as i32 {
            return None;
        }
        // Thin out the x labels so they do not collide.
        let slots = (n as f32 * (xlw + px * 0.8) / plot_w as f32)
            .ceil()
            .max(1.0) as usize;

        let shown: Vec<[u8; 3]> = colours.iter().map(|&c| theme.colour(c)).collect();
        let ink = theme.ink;
        let grid_colour = theme.colour([214, 214, 214]);
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        let geometry = draw_chart(
            &mut buf,
            (w, h),
            ChartSpec {
                kind,
                series: &series,
                colours: &shown,
                names: &names,
                n,
                y_top,
                y_values: &y_values,
                y_labels: &y_labels,
                x_labels: &x_labels,
                slots,
                margins: (left, right, top, bottom),
                tick,
                sw,
                ink,
                grid: grid.then_some(grid_colour),
                boxed,
                legend,
                px,
                label_width: &|s: &str| label.width(s),
            },
        )
        .ok()?;
        let picture = RgbImage::from_raw(w, h, buf)?;
        multiply_image(&mut self.canvas.image, &picture, x, y);

        // Labels in the page's small face, not part of the ground truth.
        let ascent = label.ascent();
        for t in &geometry.y_ticks {
            let lw = label.width(&t.label);
            let lx = x as f32 + (geometry.left - tick) as f32 - px * 0.25 - lw;
            let baseline = y as f32 + t.at as f32 + label.px * 0.35;
            self.canvas.draw_text(&label, lx, baseline, &t.label);
        }
        for t in &geometry.x_ticks {
            let lw = label.width(&t.label);
            let lx = (x as f32 + t.at as f32 - lw * 0.5).max(x as f32);
            let baseline = y as f32 + (geometry.bottom + tick) as f32 + px * 0.15 + ascent;
            self.canvas.draw_text(&label, lx, baseline, &t.label);
        }
        for (at, name) in &geometry.legend {
            let baseline = y as f32 + px * 0.3 + ascent;
            self.canvas
                .draw_text(&label, x as f32 + *at as f32, baseline, name);
        }
        Some(json!({
            "type": kind,
            "series": n_series,
            "points": n,
            "names": names,
            "colours": colours.iter().map(|&c| hex(c)).collect::<Vec<_>>(),
            "monochrome": mono,
            "grid": grid,
            "boxed": boxed,
            "legend": legend,
            "y_max": y_top,
            "x_labels": [x_labels.first(), x_labels.last()],
        }))
    }
}

/// Everything `draw_chart` needs; colours are already the target's.
struct ChartSpec<'a> {
    kind: &'a str,
    series: &'a [Vec<f32>],
    colours: &'a [[u8; 3]],
    names: &'a [&'a str],
    n: usize,
    y_top: f32,
    y_values: &'a [f32],
    y_labels: &'a [String],
    x_labels: &'a [String],
    slots: usize,
    margins: (i32, i32, i32, i32),
    tick: i32,
    sw: u32,
    ink: [u8; 3],
    grid: Option<[u8; 3]>,
    boxed: bool,
    legend: bool,
    px: f32,
    label_width: &'a dyn Fn(&str) -> f32,
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Draws the chart body with plotters into an RGB buffer (white background).
fn draw_chart(
    buf: &mut [u8],
    size: (u32, u32),
    spec: ChartSpec,
) -> Result<ChartGeometry, Box<dyn Error>> {
    let (left, right, top, bottom) = spec.margins;
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    let bars = spec.kind == "bar";
    let x_range = if bars {
        0f32..spec.n as f32
    } else {
        0f32..(spec.n - 1) as f32
    };
    let mut chart = ChartBuilder::on(&root)
        .margin_left(left)
        .margin_right(right)
        .margin_top(top)
        .margin_bottom(bottom)
        .build_cartesian_2d(x_range.clone(), 0f32..spec.y_top)?;
    let axis: ShapeStyle = rgb(spec.ink).stroke_width(spec.sw);
    if let Some(g) = spec.grid {
        for &v in &spec.y_values[1..] {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x_range.start, v), (x_range.end, v)],
                rgb(g).stroke_width(spec.sw.div_ceil(2)),
            )))?;
        }
    }
    let marker = (spec.px * 0.28).round().max(2.0) as i32;
    for (i, values) in spec.series.iter().enumerate() {
        let colour = rgb(spec.colours[i]);
        let style = colour.stroke_width(spec.sw.max(1) + u32::from(spec.kind == "line"));
        match spec.kind {
            "bar" => {
                let group = 0.8 / spec.series.len() as f32;
                chart.draw_series(values.iter().enumerate().map(|(k, &v)| {
                    let x0 = k as f32 + 0.1 + group * i as f32;
                    Rectangle::new([(x0, 0.0), (x0 + group * 0.9, v)], colour.filled())
                }))?;
            }
            "scatter" => {
                let pts: Vec<(f32, f32)> = values
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (k as f32, v))
                    .collect();
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, marker, colour.filled())))?;
            }
            _ => {
                let pts: Vec<(f32, f32)> = values
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (k as f32, v))
                    .collect();
                if i % 2 == 1 {
                    let dash = (spec.px * 0.5).max(3.0) as i32;
                    chart.draw_series(DashedLineSeries::new(
                        pts.clone(),
                        dash,
                        dash / 2 + 1,
                        style,
                    ))?;
                } else {
                    chart.draw_series(LineSeries::new(pts.clone(), style))?;
                }
                match i % 3 {
                    0 => {
                        chart.draw_series(
                            pts.iter().map(|&p| Circle::new(p, marker, colour.filled())),
                        )?;
                    }
                    1 => {
                        chart.draw_series(
                            pts.iter()
                                .map(|&p| TriangleMarker::new(p, marker + 1, colour.filled())),
                        )?;
                    }
                    _ => {
                        chart.draw_series(pts.iter().map(|&p| Cross::new(p, marker, style)))?;
                    }
                }
            }
        }
    }

    // Axes and ticks in pixel coordinates on the whole buffer.
    let (x0, y0) = chart.backend_coord(&(x_range.start, 0.0));
    let (x1, y1) = chart.backend_coord(&(x_range.end, spec.y_top));
    root.draw(&PathElement::new(vec![(x0, y1), (x0, y0), (x1, y0)], axis))?;
    if spec.boxed {
        root.draw(&PathElement::new(vec![(x0, y1), (x1, y1), (x1, y0)], axis))?;
    }
    let mut y_ticks = Vec::new();
    for (&v, label) in spec.y_values.iter().zip(spec.y_labels) {
        let (_, ty) = chart.backend_coord(&(x_range.start, v));
        root.draw(&PathElement::new(
            vec![(x0 - spec.tick, ty), (x0, ty)],
            axis,
        ))?;
        y_ticks.push(Tick {
            at: ty,
            label: label.clone(),
        });
    }
    let mut x_ticks = Vec::new();
    for (k, label) in spec.x_labels.iter().enumerate() {
        let centre = if bars { k as f32 + 0.5 } else { k as f32 };
        let (tx, _) = chart.backend_coord(&(centre, 0.0));
        root.draw(&PathElement::new(
            vec![(tx, y0), (tx, y0 + spec.tick)],
            axis,
        ))?;
        if k % spec.slots == 0 {
            x_ticks.push(Tick {
                at: tx,
                label: label.clone(),
            });
        }
    }
    // Legend swatches in the top margin; names are set by the caller.
    let mut legend = Vec::new();
    if spec.legend {
        let mut at = left as f32;
        let mid = (spec.px * 0.3 + spec.px * 0.45) as i32;
        for (i, name) in spec.names.iter().enumerate() {
            let colour = rgb(spec.colours[i]);
            let sx = at as i32;
            let len = (spec.px * 1.2) as i32;
            if bars {
                root.draw(&Rectangle::new(
                    [(sx, mid - len / 3), (sx + len, mid + len / 3)],
                    colour.filled(),
                ))?;
            } else {
                root.draw(&PathElement::new(
                    vec![(sx, mid), (sx + len, mid)],
                    colour.stroke_width(spec.sw + 1),
                ))?;
            }
            legend.push(((at + spec.px * 1.6) as i32, (*name).to_owned()));
            at += spec.px * 1.6 + (spec.label_width)(name) + spec.px * 0.8;
        }
    }
    root.present()?;
    Ok(ChartGeometry {
        left: x0,
        bottom: y0,
        x_ticks,
        y_ticks,
        legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(100.0, 4.0), 20.0);
        assert_eq!(nice_step(1000.0, 4.0), 200.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(nice_step(0.8, 4.0), 0.2);
        assert_eq!(tick_label(12000.0, 2000.0), "12,000");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
    }
}
