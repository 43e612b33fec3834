//! Skew estimation by projection profiles, and rotation.
//!
//! Sign convention, shared by [`rotate`] and [`estimate_skew`]: a positive
//! angle is a counter-clockwise rotation of the content as it appears on
//! screen (x to the right, y down), as in most image editors. So
//! `estimate_skew(&rotate(&page, a), ..)` is about `a`, and
//! `rotate(&img, -estimate_skew(&img, ..))` straightens a page.

use image::GrayImage;
use rayon::prelude::*;

use crate::binarize::otsu_threshold;

/// Above this many ink pixels, every n-th one is used: the profile peak is
/// already sharp and the search time stays bounded on dense pages.
const MAX_POINTS: usize = 400_000;

/// Estimates the angle, in degrees, by which the text lines of `img` are
/// rotated counter-clockwise (see the module docs for the convention).
///
/// Ink pixels (darker than the Otsu threshold) are projected onto the axis
/// across the lines for each candidate angle; at the true angle the lines
/// collapse into sharp peaks and the sum of squared bin counts is largest.
/// The search runs coarse to fine: steps of about 0.5° over
/// `±max_angle_deg`, then ever finer steps around the best angle down to
/// `step_deg`. Ties go to the angle nearest zero, so blank pages give 0.
/// Non-finite or non-positive arguments also give 0.
pub fn estimate_skew(img: &GrayImage, max_angle_deg: f32, step_deg: f32) -> f32 {
    if !(max_angle_deg.is_finite() && max_angle_deg > 0.0 && step_deg.is_finite() && step_deg > 0.0)
    {
        return 0.0;
    }
    let max_angle = max_angle_deg.min(89.0);
    let points = ink_points(img);
    if points.is_empty() {
        return 0.0;
    }

    // The coarse grid is capped at 400 angles; each finer level searches
    // one step either side of the best with a fifth of the step.
    let target = step_deg.min(2.0 * max_angle);
    let mut step = target.max(0.5).max(2.0 * max_angle / 400.0);
    let (mut lo, mut hi) = (-max_angle, max_angle);
    loop {
        let best = best_angle(&points, lo, hi, step);
        if step <= target {
            return best;
        }
        lo = (best - step).max(-max_angle);
        hi = (best + step).min(max_angle);
        step = (step / 5.0).max(target);
    }
}

/// Coordinates of the ink pixels, relative to the image centre.
fn ink_points(img: &GrayImage) -> Vec<(f32, f32)> {
    let (w, h) = img.dimensions();
    if w < 2 || h < 2 {
        return Vec::new();
    }
    let threshold = otsu_threshold(img);
    let ink = img.pixels().filter(|p| p[0] <= threshold).count();
    // A page that is mostly "ink" has no line structure to measure (or is
    // blank, where Otsu splits noise); report no skew.
    if ink == 0 || ink * 2 > img.as_raw().len() {
        return Vec::new();
    }
    let stride = ink.div_ceil(MAX_POINTS);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    img.enumerate_pixels()
        .filter(|(_, _, p)| p[0] <= threshold)
        .step_by(stride)
        .map(|(x, y, _)| (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy))
        .collect()
}

/// The angle in `lo..=hi` (every `step`) with the sharpest profile.
fn best_angle(points: &[(f32, f32)], lo: f32, hi: f32, step: f32) -> f32 {
    let count = ((hi - lo) / step + 1e-3).floor() as usize + 1;
    let angles: Vec<f32> = (0..count).map(|i| lo + i as f32 * step).collect();
    let scores: Vec<f64> = angles
        .par_iter()
        .map(|&a| profile_score(points, a))
        .collect();
    let mut best = (f64::MIN, 0.0f32);
    for (&angle, &score) in angles.iter().zip(&scores) {
        if score > best.0 || (score == best.0 && angle.abs() < best.1.abs()) {
            best = (score, angle);
        }
    }
    best.1
}

/// Sum of squared bin counts of the projection across lines skewed by
/// `angle_deg`, the distance from the centre along the un-rotated y axis.
fn profile_score(points: &[(f32, f32)], angle_deg: f32) -> f64 {
    let (sin, cos) = angle_deg.to_radians().sin_cos();
    let extent = points
        .iter()
        .fold(0.0f32, |m, &(x, y)| m.max(x.abs()).max(y.abs()));
    let offset = 2.0 * extent + 1.0;
    let mut bins = vec![0u32; (2.0 * offset) as usize + 2];
    for &(x, y) in points {
        // Inverse of the rotation in `rotate`: the original row of the point.
        // |x * sin + y * cos| <= 2 * extent, so the bin lies in 1..len - 2.
        let row = x * sin + y * cos + offset;
        bins[row as usize] += 1;
    }
    bins.iter().map(|&c| f64::from(c) * f64::from(c)).sum()
}

/// Rotates `img` counter-clockwise by `angle_deg` about its centre, keeping
/// the size; corners that come from outside are white. Sampling is bilinear,
/// with pixels outside the source counting as white.
pub fn rotate(img: &GrayImage, angle_deg: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || angle_deg == 0.0 || !angle_deg.is_finite() {
        return img.clone();
    }
    let (sin, cos) = angle_deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let src = img.as_raw();
    let sample = |x: i64, y: i64| -> f32 {
        if x < 0 || y < 0 || x >= i64::from(w) || y >= i64::from(h) {
            255.0
        } else {
            f32::from(src[y as usize * w as usize + x as usize])
        }
    };
    let mut out = img.clone();
    out.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            let dy = y as f32 + 0.5 - cy;
            for (x, px) in row.iter_mut().enumerate() {
                let dx = x as f32 + 0.5 - cx;
                // Source position: the destination offset rotated back.
                let sx = cx + dx * cos - dy * sin - 0.5;
                let sy = cy + dx * sin + dy * cos - 0.5;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                let top = sample(x0, y0) * (1.0 - fx) + sample(x0 + 1, y0) * fx;
                let bottom = sample(x0, y0 + 1) * (1.0 - fx) + sample(x0 + 1, y0 + 1) * fx;
                *px = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{degenerate_images, text_page};
    use image::Luma;

    #[test]
    fn recovers_known_angles() {
        let page = text_page(600, 800);
        assert!(estimate_skew(&page, 10.0, 0.1).abs() < 0.15);
        for angle in [3.0f32, -1.7, 7.2, 0.4, -9.5] {
            let skewed = rotate(&page, angle);
            let found = estimate_skew(&skewed, 10.0, 0.1);
            assert!(
                (found - angle).abs() < 0.5,
                "rotated {angle}, estimated {found}"
            );
        }
    }

    #[test]
    fn positive_angle_is_counter_clockwise_on_screen() {
        // A dot right of centre moves up (smaller y) under a CCW rotation.
        let mut img = GrayImage::from_pixel(101, 101, Luma([255]));
        img.put_pixel(90, 50, Luma([0]));
        let out = rotate(&img, 90.0);
        let (x, y, _) = out
            .enumerate_pixels()
            .min_by_key(|(_, _, p)| p[0])
            .expect("image is not empty");
        assert_eq!((x, y), (50, 10));
    }

    #[test]
    fn deskewing_straightens_the_page() {
        let page = text_page(400, 500);
        let skewed = rotate(&page, 4.0);
        let straight = rotate(&skewed, -estimate_skew(&skewed, 10.0, 0.1));
        assert!(estimate_skew(&straight, 10.0, 0.1).abs() < 0.3);
        assert!(rotate(&page, 0.0) == page);
    }

    #[test]
    fn rotation_fills_corners_white() {
        let black = GrayImage::from_pixel(80, 60, Luma([0]));
        let out = rotate(&black, 30.0);
        assert_eq!(out.get_pixel(0, 0)[0], 255);
        assert_eq!(out.get_pixel(40, 30)[0], 0);
    }

    #[test]
    fn blank_and_degenerate_images_are_safe() {
        let blank = GrayImage::from_pixel(200, 100, Luma([255]));
        assert_eq!(estimate_skew(&blank, 10.0, 0.1), 0.0);
        for img in degenerate_images() {
            assert!(estimate_skew(&img, 10.0, 0.1).is_finite());
            assert_eq!(rotate(&img, 5.0).dimensions(), img.dimensions());
        }
        let page = text_page(100, 120);
        assert_eq!(estimate_skew(&page, f32::NAN, 0.1), 0.0);
        assert!(rotate(&page, f32::NAN) == page);
    }
}
