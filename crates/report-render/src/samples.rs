//! The `samples.png` strip: one row per sample, degraded | restored | clean,
//! each scaled to [`SAMPLE_HEIGHT`] and labelled above.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use plotters::prelude::*;

use crate::RenderError;
use crate::data::Sample;

/// Height every sample image is scaled to, in pixels.
pub(crate) const SAMPLE_HEIGHT: u32 = 256;
/// Height of the label band above each row, in pixels.
pub(crate) const LABEL_HEIGHT: u32 = 24;
/// Space between images and around the strip, in pixels.
pub(crate) const GAP: u32 = 8;

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);

/// Composes the strip (the font must already be registered).
pub(crate) fn render_samples(samples: &[Sample]) -> Result<RgbImage, RenderError> {
    let mut rows = Vec::with_capacity(samples.len());
    for sample in samples {
        let cells = [
            ("degraded", &sample.degraded_png),
            ("restored", &sample.restored_png),
            ("clean", &sample.clean_png),
        ];
        let mut row = Vec::with_capacity(cells.len());
        for (which, png) in cells {
            let img = image::load_from_memory(png).map_err(|source| RenderError::SampleDecode {
                name: sample.name.clone(),
                which,
                source,
            })?;
            row.push((which, scale_to_height(&img.to_rgb8())));
        }
        rows.push((sample.name.as_str(), row));
    }

    let width = rows
        .iter()
        .map(|(_, row)| row.iter().map(|(_, img)| img.width() + GAP).sum::<u32>() + GAP)
        .max()
        .unwrap_or(GAP);
    let row_height = LABEL_HEIGHT + SAMPLE_HEIGHT + GAP;
    let height = GAP + row_height * rows.len() as u32;
    let mut strip = RgbImage::from_pixel(width, height, BACKGROUND);

    let mut labels = Vec::new();
    for (r, (name, row)) in rows.iter().enumerate() {
        let top = GAP + r as u32 * row_height;
        let mut x = GAP;
        for (which, img) in row {
            imageops::replace(&mut strip, img, i64::from(x), i64::from(top + LABEL_HEIGHT));
            let label = if *which == "degraded" {
                format!("{name}: {which}")
            } else {
                which.to_string()
            };
            labels.push((label, x, top));
            x += img.width() + GAP;
        }
    }
    draw_labels(&mut strip, &labels)?;
    Ok(strip)
}

/// Scales to [`SAMPLE_HEIGHT`], keeping the aspect ratio (width at least 1 px).
fn scale_to_height(img: &RgbImage) -> RgbImage {
    if img.height() == SAMPLE_HEIGHT {
        return img.clone();
    }
    let width = (f64::from(img.width()) * f64::from(SAMPLE_HEIGHT) / f64::from(img.height().max(1)))
        .round()
        .max(1.0) as u32;
    imageops::resize(img, width, SAMPLE_HEIGHT, FilterType::Triangle)
}

fn draw_labels(strip: &mut RgbImage, labels: &[(String, u32, u32)]) -> Result<(), RenderError> {
    let plot_err = |e: String| RenderError::Plot {
        chart: "samples.png".into(),
        message: e,
    };
    let (w, h) = strip.dimensions();
    let area = BitMapBackend::with_buffer(strip, (w, h)).into_drawing_area();
    let style = ("sans-serif", 16).into_font().color(&BLACK);
    for (text, x, y) in labels {
        // Pixel coordinates are far below i32::MAX for any strip we can hold in memory.
        let pos = (*x as i32, *y as i32 + 4);
        area.draw(&Text::new(text.as_str(), pos, style.clone()))
            .map_err(|e| plot_err(e.to_string()))?;
    }
    area.present().map_err(|e| plot_err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::{encode_png, ensure_font};

    fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
        encode_png(
            "test",
            RgbImage::from_pixel(w, h, Rgb([shade, shade, shade])),
        )
        .unwrap()
    }

    fn sample(name: &str, w: u32, h: u32) -> Sample {
        Sample {
            name: name.into(),
            degraded_png: png(w, h, 90),
            restored_png: png(w, h, 160),
            clean_png: png(w, h, 230),
        }
    }

    #[test]
    fn strip_has_one_row_per_sample_at_fixed_height() {
        ensure_font().unwrap();
        let strip = render_samples(&[sample("a", 64, 32), sample("b", 128, 128)]).unwrap();
        // Row "a" scales 64x32 to 512x256; three cells and four gaps.
        assert_eq!(strip.width(), 3 * 512 + 4 * GAP);
        assert_eq!(
            strip.height(),
            GAP + 2 * (LABEL_HEIGHT + SAMPLE_HEIGHT + GAP)
        );
        let cell = strip.get_pixel(GAP + 10, GAP + LABEL_HEIGHT + 10);
        assert_eq!(cell.0, [90, 90, 90]);
    }

    #[test]
    fn samples_png_is_added_to_the_charts() {
        let charts =
            crate::render_charts(&crate::fixtures::sample_data(), &[sample("a", 64, 64)]).unwrap();
        let last = charts.last().unwrap();
        assert_eq!(last.file_name, "samples.png");
        let img = image::load_from_memory(&last.png).unwrap();
        assert_eq!(img.height(), GAP + LABEL_HEIGHT + SAMPLE_HEIGHT + GAP);
    }

    #[test]
    fn undecodable_sample_is_an_error() {
        let mut bad = sample("bad", 8, 8);
        bad.restored_png = b"not a png".to_vec();
        let err = render_samples(&[bad]).unwrap_err();
        assert!(err.to_string().contains("sample bad (restored)"), "{err}");
    }
}
