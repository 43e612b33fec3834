//! Noise removal: a median filter and a non-local means filter.
//!
//! Non-local means replaces each pixel by a weighted mean of the pixels in a
//! search window, weighting each candidate by how similar the patch around
//! it is to the patch around the pixel. Comparing patches naively costs
//! `search² × patch²` per pixel; here, for each search offset, the squared
//! differences are summed over patches with running box sums, so the cost is
//! `search²` per pixel whatever the patch size.

use image::GrayImage;
use rayon::prelude::*;

/// Square median filter of side `2 * radius + 1` (edges replicate).
///
/// A radius of 0 and empty images return the input unchanged.
pub fn median_denoise(img: &GrayImage, radius: u32) -> GrayImage {
    if radius == 0 || img.width() == 0 || img.height() == 0 {
        return img.clone();
    }
    // A radius past the image size changes nothing and imageproc rejects
    // radii near i32::MAX.
    let radius = radius.min(img.width().max(img.height()));
    imageproc::filter::median_filter(img, radius, radius)
}

/// Rows processed together by one worker; the band is padded by the patch
/// radius above and below, so taller bands waste less work on padding.
const BAND_ROWS: usize = 32;

/// Non-local means denoising.
///
/// `h` is the filter strength in grey levels: a candidate whose patch
/// differs by a mean squared difference `d²` gets weight `exp(-d² / h²)`.
/// Patches are `2 * patch_radius + 1` pixels square, candidates come from a
/// `2 * search_radius + 1` square window. Patch pixels beyond the border
/// replicate the edge; candidates beyond the border are skipped.
///
/// Radii are capped (patch 8, search 20) to bound the work; a
/// `search_radius` of 0, an `h` that is not a positive finite number, or an
/// empty image return the input unchanged.
pub fn nl_means_denoise(
    img: &GrayImage,
    h: f32,
    patch_radius: u32,
    search_radius: u32,
) -> GrayImage {
    let (w, ht) = (img.width() as usize, img.height() as usize);
    if w == 0 || ht == 0 || search_radius == 0 || !(h.is_finite() && h > 0.0) {
        return img.clone();
    }
    let filter = NlMeans::new(img, h, patch_radius.min(8), search_radius.min(20));
    let mut out = img.clone();
    out.par_chunks_mut(BAND_ROWS * w)
        .enumerate()
        .for_each(|(band, chunk)| filter.band(band * BAND_ROWS, chunk));
    out
}

/// Shared, read-only state of one non-local means run.
struct NlMeans<'a> {
    src: &'a [u8],
    width: usize,
    height: usize,
    patch: usize,
    search: isize,
    /// Weight by patch sum of squared differences, right-shifted by `shift`
    /// to keep the table small; sums past its end get weight 0.
    weights: Vec<f32>,
    shift: u32,
}

impl<'a> NlMeans<'a> {
    fn new(img: &'a GrayImage, h: f32, patch_radius: u32, search_radius: u32) -> Self {
        let patch = patch_radius as usize;
        let area = ((2 * patch + 1) * (2 * patch + 1)) as f64;
        let scale = area * f64::from(h) * f64::from(h);
        // exp(-10) < 5e-5: candidates past this distance cannot move the mean.
        let max_sum = (10.0 * scale).min(65_025.0 * area).ceil() as u64;
        let mut shift = 0;
        while (max_sum >> shift) > 1 << 16 {
            shift += 1;
        }
        let weights = (0..=(max_sum >> shift))
            .map(|i| {
                // Centre of the quantisation bucket.
                let sum = ((i << shift) as f64) + ((1u64 << shift) as f64 - 1.0) / 2.0;
                (-sum / scale).exp() as f32
            })
            .collect();
        Self {
            src: img.as_raw(),
            width: img.width() as usize,
            height: img.height() as usize,
            patch,
            search: search_radius as isize,
            weights,
            shift,
        }
    }

    fn pixel(&self, x: isize, y: isize) -> u8 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.src[y * self.width + x]
    }

    /// Filters the rows starting at `y0` into `out` (whole rows).
    fn band(&self, y0: usize, out: &mut [u8]) {
        let w = self.width;
        let rows = out.len() / w;
        let p = self.patch;
        let padded_rows = rows + 2 * p;
        let mut weight_sum = vec![0f32; rows * w];
        let mut value_sum = vec![0f32; rows * w];
        let mut diff = vec![0u32; w + 2 * p];
        let mut row_sums = vec![0u32; padded_rows * w];
        let mut patch_sums = vec![0u32; w];

        for dy in -self.search..=self.search {
            for dx in -self.search..=self.search {
                // Horizontal patch sums of squared differences, per padded row.
                for r in 0..padded_rows {
                    let y = (y0 + r) as isize - p as isize;
                    for (k, d) in diff.iter_mut().enumerate() {
                        let x = k as isize - p as isize;
                        let a = i32::from(self.pixel(x, y));
                        let b = i32::from(self.pixel(x + dx, y + dy));
                        *d = ((a - b) * (a - b)) as u32;
                    }
                    let sums = &mut row_sums[r * w..(r + 1) * w];
                    let mut running: u32 = diff[..2 * p + 1].iter().sum();
                    sums[0] = running;
                    for x in 1..w {
                        running = running + diff[x + 2 * p] - diff[x - 1];
                        sums[x] = running;
                    }
                }
                // Candidates must lie inside the image.
                let x_lo = (-dx).max(0) as usize;
                let x_hi = (w as isize - dx.max(0)).max(0) as usize;
                patch_sums.fill(0);
                for r in 0..2 * p {
                    add_row(&mut patch_sums, &row_sums[r * w..(r + 1) * w]);
                }
                for i in 0..rows {
                    // Slide the vertical window to rows i..=i + 2p.
                    add_row(
                        &mut patch_sums,
                        &row_sums[(i + 2 * p) * w..(i + 2 * p + 1) * w],
                    );
                    let yq = (y0 + i) as isize + dy;
                    if (0..self.height as isize).contains(&yq) && x_lo < x_hi {
                        let cand_row = &self.src[yq as usize * w..(yq as usize + 1) * w];
                        for x in x_lo..x_hi {
                            let idx = (patch_sums[x] >> self.shift) as usize;
                            if let Some(&wgt) = self.weights.get(idx) {
                                let q = cand_row[(x as isize + dx) as usize];
                                weight_sum[i * w + x] += wgt;
                                value_sum[i * w + x] += wgt * f32::from(q);
                            }
                        }
                    }
                    for (s, r) in patch_sums.iter_mut().zip(&row_sums[i * w..(i + 1) * w]) {
                        *s -= r;
                    }
                }
            }
        }
        for ((px, ws), vs) in out.iter_mut().zip(&weight_sum).zip(&value_sum) {
            // The zero offset always contributes weight 1, so ws >= 1.
            *px = (vs / ws).round().clamp(0.0, 255.0) as u8;
        }
    }
}

fn add_row(acc: &mut [u32], row: &[u32]) {
    for (a, r) in acc.iter_mut().zip(row) {
        *a += r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{add_noise, degenerate_images, mse, text_page};
    use image::Luma;

    /// A text page squeezed into 40..230 so added noise is not clipped.
    fn clean_page() -> GrayImage {
        let page = text_page(160, 140);
        GrayImage::from_fn(160, 140, |x, y| {
            Luma([40 + (u32::from(page.get_pixel(x, y)[0]) * 190 / 255) as u8])
        })
    }

    #[test]
    fn median_reduces_error() {
        let clean = clean_page();
        let noisy = add_noise(&clean, 20.0, 11);
        let before = mse(&noisy, &clean);
        let after = mse(&median_denoise(&noisy, 1), &clean);
        assert!(after < before * 0.6, "mse {before} -> {after}");
    }

    #[test]
    fn nl_means_reduces_error() {
        let clean = clean_page();
        let noisy = add_noise(&clean, 20.0, 12);
        let before = mse(&noisy, &clean);
        let after = mse(&nl_means_denoise(&noisy, 20.0, 1, 5), &clean);
        assert!(after < before * 0.5, "mse {before} -> {after}");
    }

    #[test]
    fn nl_means_keeps_flat_images_and_weak_filter_is_near_identity() {
        let flat = GrayImage::from_pixel(40, 37, Luma([77]));
        assert_eq!(nl_means_denoise(&flat, 10.0, 2, 3), flat);

        let noisy = add_noise(&clean_page(), 20.0, 13);
        let out = nl_means_denoise(&noisy, 0.5, 1, 3);
        assert!(mse(&out, &noisy) < 1.0);
    }

    #[test]
    fn nl_means_matches_a_direct_implementation() {
        let img = add_noise(&clean_page(), 15.0, 14);
        let (h, p, s) = (12.0f32, 1isize, 2isize);
        let fast = nl_means_denoise(&img, h, p as u32, s as u32);
        let (w, ht) = (img.width() as isize, img.height() as isize);
        let px = |x: isize, y: isize| {
            f64::from(img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, ht - 1) as u32)[0])
        };
        for &(x, y) in &[(0, 0), (5, 7), (80, 70), (159, 139), (100, 3)] {
            let (mut ws, mut vs) = (0.0, 0.0);
            for dy in -s..=s {
                for dx in -s..=s {
                    let (qx, qy) = (x + dx, y + dy);
                    if qx < 0 || qy < 0 || qx >= w || qy >= ht {
                        continue;
                    }
                    let mut d = 0.0;
                    for j in -p..=p {
                        for i in -p..=p {
                            d += (px(x + i, y + j) - px(qx + i, qy + j)).powi(2);
                        }
                    }
                    let wgt = (-d / 9.0 / f64::from(h * h)).exp();
                    ws += wgt;
                    vs += wgt * px(qx, qy);
                }
            }
            let expected = (vs / ws).round();
            let got = f64::from(fast.get_pixel(x as u32, y as u32)[0]);
            assert!(
                (got - expected).abs() <= 1.0,
                "({x},{y}): {got} vs {expected}"
            );
        }
    }

    #[test]
    fn deterministic_and_size_safe() {
        let noisy = add_noise(&clean_page(), 20.0, 15);
        assert_eq!(
            nl_means_denoise(&noisy, 15.0, 1, 4),
            nl_means_denoise(&noisy, 15.0, 1, 4)
        );
        for img in degenerate_images() {
            assert_eq!(median_denoise(&img, 2).dimensions(), img.dimensions());
            for (p, s) in [(0, 1), (1, 5), (3, 2)] {
                assert_eq!(
                    nl_means_denoise(&img, 10.0, p, s).dimensions(),
                    img.dimensions()
                );
            }
            assert_eq!(nl_means_denoise(&img, f32::NAN, 1, 1), img);
        }
    }

    /// Checks the full-page speed target (a few seconds on two cores). Run
    /// with `cargo test --release -- --ignored --nocapture --test-threads 1`.
    #[test]
    #[ignore = "timing check, meaningful only in release builds"]
    fn nl_means_full_page_timing() {
        let page = add_noise(&text_page(1240, 1754), 15.0, 16);
        let start = std::time::Instant::now();
        let out = nl_means_denoise(&page, 10.0, 1, 5);
        eprintln!("nl-means 1240x1754 patch 1 search 5: {:?}", start.elapsed());
        assert_eq!(out.dimensions(), page.dimensions());
    }
}
