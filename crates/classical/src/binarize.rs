//! Binarisation: Otsu's global threshold and Sauvola's local threshold.
//!
//! Outputs use 0 for ink and 255 for paper.

use image::GrayImage;
use rayon::prelude::*;

/// Otsu's threshold: the level `t` that maximises the between-class variance
/// of the split into `<= t` and `> t` (`imageproc::contrast::otsu_level`);
/// 0 for an empty image.
pub fn otsu_threshold(img: &GrayImage) -> u8 {
    if img.width() == 0 || img.height() == 0 {
        return 0;
    }
    imageproc::contrast::otsu_level(img)
}

/// Binarises with [`otsu_threshold`]: pixels above it become 255, the rest 0.
pub fn binarize_otsu(img: &GrayImage) -> GrayImage {
    let t = otsu_threshold(img);
    let mut out = img.clone();
    for v in out.iter_mut() {
        *v = if *v > t { 255 } else { 0 };
    }
    out
}

/// Sauvola binarisation: a pixel is paper (255) when it is above
/// `mean * (1 + k * (std / r - 1))`, with mean and standard deviation taken
/// over a `window` x `window` neighbourhood (cut off at the borders).
///
/// Means and variances come from integral images of values and squares, so
/// the cost per pixel does not depend on the window. Typical values:
/// `window` 15 to 51, `k` 0.2 to 0.5, `r` 128. A `window` below 1 is
/// treated as 1; empty images are returned unchanged.
pub fn sauvola(img: &GrayImage, window: u32, k: f32, r: f32) -> GrayImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return img.clone();
    }
    let half = (window.max(1) / 2) as usize;
    let (sum, sum_sq) = integral_images(img);
    let stride = w + 1;
    let (k, r) = (f64::from(k), f64::from(r));
    let mut out = img.clone();
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (y0, y1) = (y.saturating_sub(half), (y + half + 1).min(h));
        for (x, px) in row.iter_mut().enumerate() {
            let (x0, x1) = (x.saturating_sub(half), (x + half + 1).min(w));
            let rect = |t: &[u64]| {
                t[y1 * stride + x1] + t[y0 * stride + x0]
                    - t[y0 * stride + x1]
                    - t[y1 * stride + x0]
            };
            let n = ((x1 - x0) * (y1 - y0)) as f64;
            let mean = rect(&sum) as f64 / n;
            let var = (rect(&sum_sq) as f64 / n - mean * mean).max(0.0);
            let threshold = mean * (1.0 + k * (var.sqrt() / r - 1.0));
            *px = if f64::from(*px) > threshold { 255 } else { 0 };
        }
    });
    out
}

/// Integral images of values and squared values (imageproc's), `(w + 1) x
/// (h + 1)` with a zero first row and column so rectangle sums need no edge
/// cases, as flat row-major buffers.
fn integral_images(img: &GrayImage) -> (Vec<u64>, Vec<u64>) {
    use imageproc::integral_image::{integral_image, integral_squared_image};
    let sum: image::ImageBuffer<image::Luma<u64>, Vec<u64>> = integral_image(img);
    let sum_sq: image::ImageBuffer<image::Luma<u64>, Vec<u64>> = integral_squared_image(img);
    (sum.into_raw(), sum_sq.into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, add_noise, degenerate_images, is_ink, text_page};
    use image::Luma;

    #[test]
    fn otsu_splits_a_bimodal_image_between_the_modes() {
        let mut rng = Lcg::new(5);
        let img = GrayImage::from_fn(64, 64, |x, _| {
            let base = if x < 20 { 60 } else { 190 };
            Luma([base + rng.below(21) as u8 - 10])
        });
        let t = otsu_threshold(&img);
        assert!((70..180).contains(&t), "threshold {t}");
        let bw = binarize_otsu(&img);
        assert!(
            bw.enumerate_pixels()
                .all(|(x, _, p)| p[0] == if x < 20 { 0 } else { 255 })
        );
    }

    #[test]
    fn otsu_maximises_the_between_class_variance() {
        // The definition, by brute force over every level: the first level
        // with the largest between-class variance of the split <= t / > t.
        let reference = |img: &GrayImage| -> u8 {
            let px: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v)).collect();
            let mut best = (0.0f64, 0u8);
            for t in 0..=255u8 {
                let (lo, hi): (Vec<f64>, Vec<f64>) = px.iter().partition(|&&v| v <= f64::from(t));
                if lo.is_empty() || hi.is_empty() {
                    continue;
                }
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                let d = mean(&lo) - mean(&hi);
                let between = lo.len() as f64 * hi.len() as f64 * d * d;
                if between > best.0 * (1.0 + 1e-12) {
                    best = (between, t);
                }
            }
            best.1
        };
        let page = add_noise(&text_page(200, 150), 25.0, 9);
        let mut rng = Lcg::new(6);
        let random = GrayImage::from_fn(50, 40, |_, _| Luma([rng.below(256) as u8]));
        for img in [page, random] {
            assert_eq!(otsu_threshold(&img), reference(&img));
        }
        assert_eq!(otsu_threshold(&GrayImage::new(0, 0)), 0);
        // Hand-checked: any level in 10..200 separates the two values
        // perfectly, and the first such level is chosen.
        let two = GrayImage::from_fn(10, 10, |x, _| Luma([if x < 3 { 10 } else { 200 }]));
        assert_eq!(otsu_threshold(&two), 10);
        assert_eq!(otsu_threshold(&GrayImage::from_pixel(5, 5, Luma([42]))), 0);
    }

    #[test]
    fn sauvola_handles_a_gradient_background() {
        let clean = text_page(300, 240);
        // Paper fades from 250 to 90 left to right and ink is 40% of the
        // paper, so ink on the left is lighter than paper on the right.
        let shaded = GrayImage::from_fn(300, 240, |x, y| {
            let paper = 250.0 - 160.0 * x as f32 / 300.0;
            let v = if is_ink(&clean, x, y) {
                paper * 0.4
            } else {
                paper
            };
            Luma([v as u8])
        });
        let shaded = add_noise(&shaded, 4.0, 8);
        let bw = sauvola(&shaded, 25, 0.2, 128.0);
        let errors = bw
            .enumerate_pixels()
            .filter(|(x, y, p)| (p[0] == 0) != is_ink(&clean, *x, *y))
            .count();
        let rate = errors as f64 / (300.0 * 240.0);
        assert!(rate < 0.02, "error rate {rate}");
        // A single global threshold cannot cope with the same input.
        let otsu_errors = binarize_otsu(&shaded)
            .enumerate_pixels()
            .filter(|(x, y, p)| (p[0] == 0) != is_ink(&clean, *x, *y))
            .count();
        assert!(
            otsu_errors > errors * 3,
            "otsu {otsu_errors} vs sauvola {errors}"
        );
    }

    #[test]
    fn sauvola_matches_direct_window_statistics() {
        let img = add_noise(&text_page(60, 50), 10.0, 4);
        let fast = sauvola(&img, 7, 0.3, 128.0);
        for (x, y, p) in fast.enumerate_pixels() {
            let (x0, x1) = (x.saturating_sub(3), (x + 4).min(60));
            let (y0, y1) = (y.saturating_sub(3), (y + 4).min(50));
            let vals: Vec<f64> = (y0..y1)
                .flat_map(|yy| (x0..x1).map(move |xx| (xx, yy)))
                .map(|(xx, yy)| f64::from(img.get_pixel(xx, yy)[0]))
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            let t = mean * (1.0 + 0.3 * (var.sqrt() / 128.0 - 1.0));
            let v = f64::from(img.get_pixel(x, y)[0]);
            // Skip values within rounding distance of the threshold.
            if (v - t).abs() > 1e-6 {
                assert_eq!(p[0] == 255, v > t, "({x},{y})");
            }
        }
    }

    #[test]
    fn size_safe() {
        for img in degenerate_images() {
            let _ = otsu_threshold(&img);
            assert_eq!(binarize_otsu(&img).dimensions(), img.dimensions());
            for window in [0, 1, 25] {
                assert_eq!(
                    sauvola(&img, window, 0.2, 128.0).dimensions(),
                    img.dimensions()
                );
            }
        }
    }
}
