//! PNG charts drawn with plotters into an RGB buffer, encoded with `image`.
//!
//! Plotters' `ab_glyph` text needs a registered font; the first chart finds a
//! sans-serif system font through `fontdb` and registers it once.

use std::io::Cursor;
use std::sync::OnceLock;

use image::{ImageFormat, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::RenderError;
use crate::data::{EpochRow, ReportData, Sample};
use crate::samples::render_samples;

/// Width of every curve chart, in pixels.
pub(crate) const CHART_WIDTH: u32 = 900;
/// Height of the loss and learning-rate charts, in pixels.
pub(crate) const CHART_HEIGHT: u32 = 500;
/// Height of the two-panel PSNR/SSIM chart, in pixels.
pub(crate) const PSNR_SSIM_HEIGHT: u32 = 800;

/// Family name the font is registered under (plotters' default family).
const FONT_FAMILY: &str = "sans-serif";

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOR: RGBColor = RGBColor(214, 39, 40);
const BASELINE_COLOR: RGBColor = RGBColor(127, 127, 127);

/// One rendered chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// File name to store it under, e.g. "loss.png".
    pub file_name: String,
    /// Human title, used as caption and alt text.
    pub title: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

/// Renders the report's charts: `loss.png`, `psnr_ssim.png` and
/// `learning_rate.png` when there is at least one epoch, and `samples.png`
/// when `samples` is not empty. Zero epochs and no samples give no charts.
pub fn render_charts(data: &ReportData, samples: &[Sample]) -> Result<Vec<Chart>, RenderError> {
    let mut charts = Vec::new();
    if !data.epochs.is_empty() {
        ensure_font()?;
        charts.push(chart("loss.png", "Loss", CHART_HEIGHT, |area| {
            draw_loss(area, &data.epochs)
        })?);
        charts.push(chart(
            "psnr_ssim.png",
            "PSNR and SSIM vs identity baseline",
            PSNR_SSIM_HEIGHT,
            |area| draw_psnr_ssim(area, &data.epochs),
        )?);
        charts.push(chart(
            "learning_rate.png",
            "Learning rate",
            CHART_HEIGHT,
            |area| draw_learning_rate(area, &data.epochs),
        )?);
    }
    if !samples.is_empty() {
        ensure_font()?;
        charts.push(Chart {
            file_name: "samples.png".into(),
            title: "Validation samples: degraded | restored | clean".into(),
            png: encode_png("samples.png", render_samples(samples)?)?,
        });
    }
    Ok(charts)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws one chart into a white RGB buffer and encodes it as PNG.
fn chart(
    file_name: &str,
    title: &str,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<Chart, RenderError> {
    let plot_err = |e: Box<dyn std::error::Error>| RenderError::Plot {
        chart: file_name.to_string(),
        message: e.to_string(),
    };
    let mut buf = vec![0u8; CHART_WIDTH as usize * height as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut buf, (CHART_WIDTH, height)).into_drawing_area();
        area.fill(&WHITE).map_err(|e| plot_err(e.into()))?;
        draw(&area).map_err(plot_err)?;
        area.present().map_err(|e| plot_err(e.into()))?;
    }
    let img = RgbImage::from_raw(CHART_WIDTH, height, buf).ok_or_else(|| RenderError::Plot {
        chart: file_name.to_string(),
        message: "buffer size does not match the chart size".into(),
    })?;
    Ok(Chart {
        file_name: file_name.to_string(),
        title: title.to_string(),
        png: encode_png(file_name, img)?,
    })
}

pub(crate) fn encode_png(file_name: &str, img: RgbImage) -> Result<Vec<u8>, RenderError> {
    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, ImageFormat::Png)
        .map_err(|source| RenderError::Encode {
            chart: file_name.to_string(),
            source,
        })?;
    Ok(png.into_inner())
}

/// `(min, max)` of the finite values, widened so that `min < max` always
/// holds (a single epoch or a flat curve still gets a drawable axis).
fn padded_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    // 5% headroom; a flat series gets 10% of its magnitude (or 1 when 0).
    let pad = if span > 0.0 {
        span * 0.05
    } else if lo != 0.0 {
        lo.abs() * 0.1
    } else {
        1.0
    };
    (lo - pad, hi + pad)
}

fn epoch_range(epochs: &[EpochRow]) -> std::ops::Range<f64> {
    let (first, last) = match (epochs.first(), epochs.last()) {
        (Some(f), Some(l)) => (f64::from(f.epoch), f64::from(l.epoch)),
        _ => (0.0, 1.0),
    };
    // Half an epoch either side keeps the end points off the frame.
    (first - 0.5)..(last + 0.5)
}

fn points(epochs: &[EpochRow], field: impl Fn(&EpochRow) -> Option<f64>) -> Vec<(f64, f64)> {
    epochs
        .iter()
        .filter_map(|r| {
            field(r)
                .filter(|v| v.is_finite())
                .map(|v| (f64::from(r.epoch), v))
        })
        .collect()
}

/// A line with dots at each point, labelled in the legend.
fn draw_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    pts: &[(f64, f64)],
    color: RGBColor,
    label: &str,
    dashed: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    if pts.is_empty() {
        return Ok(());
    }
    let style = color.stroke_width(2);
    let legend = move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 20, y)], style);
    if dashed {
        chart
            .draw_series(DashedLineSeries::new(pts.to_vec(), 8, 6, style))?
            .label(label)
            .legend(legend);
    } else {
        chart
            .draw_series(LineSeries::new(pts.to_vec(), style))?
            .label(label)
            .legend(legend);
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}

/// One curve of a panel.
struct Series<'a> {
    label: &'a str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
}

impl<'a> Series<'a> {
    fn solid(label: &'a str, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Self {
            label,
            points,
            color,
            dashed: false,
        }
    }

    fn dashed(label: &'a str, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Self {
            label,
            points,
            color,
            dashed: true,
        }
    }
}

/// Where a panel's legend goes and how its y labels read.
struct Layout {
    legend: SeriesLabelPosition,
    /// `None` keeps plotters' own number labels.
    y_format: Option<fn(&f64) -> String>,
}

/// Falling curves (loss, learning rate) leave the upper right free.
const FALLING: Layout = Layout {
    legend: SeriesLabelPosition::UpperRight,
    y_format: None,
};
/// Rising curves above a flat baseline (PSNR, SSIM) leave the middle right free.
const RISING: Layout = Layout {
    legend: SeriesLabelPosition::MiddleRight,
    y_format: None,
};

fn scientific(v: &f64) -> String {
    format!("{v:.1e}")
}

fn draw_panel(
    area: &Area<'_>,
    caption: &str,
    y_desc: &str,
    epochs: &[EpochRow],
    series: &[Series<'_>],
    layout: Layout,
) -> DrawResult {
    let (lo, hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT_FAMILY, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(epoch_range(epochs), lo..hi)?;
    let mut mesh = chart.configure_mesh();
    if let Some(y_format) = &layout.y_format {
        mesh.y_label_formatter(y_format);
    }
    mesh.x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(epochs.len().clamp(2, 12))
        .x_label_formatter(&|x| {
            // Only whole epochs get a label; the axis is padded by half an epoch.
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .draw()?;
    for s in series {
        draw_series(&mut chart, &s.points, s.color, s.label, s.dashed)?;
    }
    chart
        .configure_series_labels()
        .position(layout.legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 15))
        .draw()?;
    Ok(())
}

fn draw_loss(area: &Area<'_>, epochs: &[EpochRow]) -> DrawResult {
    draw_panel(
        area,
        "Loss",
        "loss",
        epochs,
        &[
            Series::solid(
                "train loss",
                points(epochs, |r| Some(r.train_loss)),
                TRAIN_COLOR,
            ),
            Series::solid("validation loss", points(epochs, |r| r.val_loss), VAL_COLOR),
        ],
        FALLING,
    )
}

fn draw_psnr_ssim(area: &Area<'_>, epochs: &[EpochRow]) -> DrawResult {
    let (top, bottom) = area.split_vertically(area.dim_in_pixel().1 / 2);
    draw_panel(
        &top,
        "Validation PSNR",
        "PSNR (dB)",
        epochs,
        &[
            Series::solid("restored PSNR", points(epochs, |r| r.psnr), VAL_COLOR),
            Series::dashed(
                "identity baseline",
                points(epochs, |r| r.baseline_psnr),
                BASELINE_COLOR,
            ),
        ],
        RISING,
    )?;
    draw_panel(
        &bottom,
        "Validation SSIM",
        "SSIM",
        epochs,
        &[
            Series::solid("restored SSIM", points(epochs, |r| r.ssim), TRAIN_COLOR),
            Series::dashed(
                "identity baseline",
                points(epochs, |r| r.baseline_ssim),
                BASELINE_COLOR,
            ),
        ],
        RISING,
    )
}

fn draw_learning_rate(area: &Area<'_>, epochs: &[EpochRow]) -> DrawResult {
    draw_panel(
        area,
        "Learning rate",
        "learning rate",
        epochs,
        &[Series::solid(
            "learning rate",
            points(epochs, |r| Some(r.learning_rate)),
            TRAIN_COLOR,
        )],
        Layout {
            legend: SeriesLabelPosition::UpperRight,
            y_format: Some(scientific),
        },
    )
}

/// Why the font could not be registered (kept so later calls fail the same way).
#[derive(Debug, Clone)]
enum FontProblem {
    NotFound,
    Invalid(String),
}

/// Registers a sans-serif system font with plotters, once per process.
pub(crate) fn ensure_font() -> Result<(), RenderError> {
    static FONT: OnceLock<Result<(), FontProblem>> = OnceLock::new();
    match FONT.get_or_init(register_system_font) {
        Ok(()) => Ok(()),
        Err(FontProblem::NotFound) => Err(RenderError::NoFont),
        Err(FontProblem::Invalid(name)) => Err(RenderError::BadFont(name.clone())),
    }
}

fn register_system_font() -> Result<(), FontProblem> {
    use fontdb::{Database, Family, Query, Stretch, Style, Weight};
    let mut db = Database::new();
    db.load_system_fonts();
    let families = [
        Family::Name("DejaVu Sans"),
        Family::Name("Liberation Sans"),
        Family::Name("Noto Sans"),
        Family::Name("Arial"),
        Family::SansSerif,
    ];
    let query = Query {
        families: &families,
        weight: Weight::NORMAL,
        stretch: Stretch::Normal,
        style: Style::Normal,
    };
    let id = db.query(&query).ok_or(FontProblem::NotFound)?;
    let name = db
        .face(id)
        .map_or_else(|| "?".to_string(), |f| f.post_script_name.clone());
    // ab_glyph reads the first face of the file; the families asked for ship
    // as single-face .ttf files, so index 0 is the face fontdb chose.
    let bytes = db
        .with_face_data(id, |data, _index| data.to_vec())
        .ok_or(FontProblem::NotFound)?;
    // plotters keeps fonts for the whole process and needs 'static bytes; this
    // runs once (OnceLock), so exactly one font file is leaked.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FONT_FAMILY, FontStyle::Normal, bytes).map_err(|_| FontProblem::Invalid(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;

    fn decode(chart: &Chart) -> (u32, u32) {
        let img = image::load_from_memory_with_format(&chart.png, ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{} is not a png: {e}", chart.file_name));
        (img.width(), img.height())
    }

    #[test]
    fn curve_charts_decode_with_expected_sizes() {
        let charts = render_charts(&sample_data(), &[]).unwrap();
        let names: Vec<_> = charts.iter().map(|c| c.file_name.as_str()).collect();
        assert_eq!(names, ["loss.png", "psnr_ssim.png", "learning_rate.png"]);
        assert_eq!(decode(&charts[0]), (CHART_WIDTH, CHART_HEIGHT));
        assert_eq!(decode(&charts[1]), (CHART_WIDTH, PSNR_SSIM_HEIGHT));
        assert_eq!(decode(&charts[2]), (CHART_WIDTH, CHART_HEIGHT));
        // Something was drawn: not every pixel is white.
        let img = image::load_from_memory(&charts[0].png).unwrap().to_rgb8();
        assert!(img.pixels().any(|p| p.0 != [255, 255, 255]));
    }

    #[test]
    fn single_epoch_renders() {
        let mut data = sample_data();
        data.epochs.truncate(1);
        let charts = render_charts(&data, &[]).unwrap();
        assert_eq!(charts.len(), 3);
        charts.iter().for_each(|c| {
            decode(c);
        });
    }

    #[test]
    fn zero_epochs_give_no_curve_charts() {
        let mut data = sample_data();
        data.epochs.clear();
        assert!(render_charts(&data, &[]).unwrap().is_empty());
    }

    #[test]
    fn missing_and_infinite_values_are_skipped() {
        let mut data = sample_data();
        data.epochs[0].psnr = Some(f64::INFINITY);
        for row in &mut data.epochs {
            row.val_loss = None;
            row.ssim = None;
        }
        assert_eq!(render_charts(&data, &[]).unwrap().len(), 3);
    }

    #[test]
    fn padded_range_never_collapses() {
        let (lo, hi) = padded_range([2.0]);
        assert!((lo - 1.8).abs() < 1e-12 && (hi - 2.2).abs() < 1e-12);
        assert_eq!(padded_range([0.0, 0.0]), (-1.0, 1.0));
        assert_eq!(padded_range([]), (0.0, 1.0));
        let (lo, hi) = padded_range([1.0, 3.0]);
        assert!(lo < 1.0 && hi > 3.0);
    }
}
