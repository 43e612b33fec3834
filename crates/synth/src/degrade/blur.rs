//! Optical softness: Gaussian, motion and defocus blur, and resolution loss.

use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{convolve_separable, gaussian_kernel, pad_row, uniform};

/// Isotropic Gaussian blur.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct GaussianBlur {
    /// Standard deviation in pixels.
    pub sigma: f64,
}

impl GaussianBlur {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            sigma: uniform(rng, 0.5, 1.8),
        }
    }
}

pub(super) fn gaussian_blur(img: &mut RgbImage, p: &GaussianBlur, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let k = gaussian_kernel(p.sigma as f32);
    convolve_separable(img, w, h, 3, &k, &k);
}

/// Linear motion blur along a direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct MotionBlur {
    /// Length of the blur path in pixels.
    pub length: f64,
    /// Direction in degrees (0 = horizontal).
    pub angle_deg: f64,
}

impl MotionBlur {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            length: uniform(rng, 2.5, 9.0),
            angle_deg: uniform(rng, 0.0, 180.0),
        }
    }
}

/// Sparse kernel taps `(dx, dy, weight)` with weights summing to `1 << 12`.
fn line_kernel(length: f32, angle_deg: f32) -> Vec<(isize, isize, u32)> {
    let (s, c) = angle_deg.to_radians().sin_cos();
    let r = (length * 0.5).ceil() as isize + 1;
    let side = (2 * r + 1) as usize;
    let mut grid = vec![0f32; side * side];
    let samples = (length * 4.0).ceil().max(2.0) as usize;
    // Splat points along the segment bilinearly so that the kernel varies
    // continuously with length and angle.
    for i in 0..samples {
        let t = (i as f32 / (samples - 1) as f32 - 0.5) * length;
        let (x, y) = (t * c + r as f32, t * s + r as f32);
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        for (dx, dy, wgt) in [
            (0, 0, (1.0 - fx) * (1.0 - fy)),
            (1, 0, fx * (1.0 - fy)),
            (0, 1, (1.0 - fx) * fy),
            (1, 1, fx * fy),
        ] {
            let (gx, gy) = (x0 as usize + dx, y0 as usize + dy);
            if gx < side && gy < side {
                grid[gy * side + gx] += wgt;
            }
        }
    }
    let total: f32 = grid.iter().sum();
    let mut taps: Vec<(isize, isize, u32)> = grid
        .iter()
        .enumerate()
        .filter(|(_, v)| **v / total > 0.004)
        .map(|(i, v)| {
            (
                (i % side) as isize - r,
                (i / side) as isize - r,
                (v / total * 4096.0).round() as u32,
            )
        })
        .collect();
    let sum: u32 = taps.iter().map(|t| t.2).sum();
    if let Some(big) = taps.iter_mut().max_by_key(|t| t.2) {
        big.2 = (big.2 + 4096).saturating_sub(sum);
    }
    taps
}

pub(super) fn motion_blur(img: &mut RgbImage, p: &MotionBlur, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let stride = w * 3;
    let taps = line_kernel(p.length as f32, p.angle_deg as f32);
    let src = img.as_raw().clone();
    let mut acc = vec![0u32; stride];
    for (y, out) in img.chunks_exact_mut(stride).enumerate() {
        acc.fill(2048);
        for &(dx, dy, wgt) in &taps {
            let sy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
            let row = &src[sy * stride..(sy + 1) * stride];
            // Columns whose source x = x + dx is inside the row, then the
            // clamped edges.
            let lo = (-dx).clamp(0, w as isize) as usize;
            let hi = (w as isize - dx).clamp(0, w as isize) as usize;
            if lo < hi {
                let s0 = (lo as isize + dx) as usize * 3;
                for (a, &v) in acc[lo * 3..hi * 3]
                    .iter_mut()
                    .zip(&row[s0..s0 + (hi - lo) * 3])
                {
                    *a += wgt * u32::from(v);
                }
            }
            for x in (0..lo.min(w)).chain(hi.max(lo)..w) {
                let sx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                for c in 0..3 {
                    acc[x * 3 + c] += wgt * u32::from(row[sx * 3 + c]);
                }
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = (a >> 12).min(255) as u8;
        }
    }
}

/// Out-of-focus blur with an anti-aliased disc kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct DefocusBlur {
    /// Disc radius in pixels.
    pub radius: f64,
}

impl DefocusBlur {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            radius: uniform(rng, 1.0, 3.5),
        }
    }
}

pub(super) fn defocus_blur(img: &mut RgbImage, p: &DefocusBlur, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let r = p.radius.max(0.5) as f32;
    let pad = r.ceil() as usize + 1;
    let pw = w + 2 * pad;
    // Per row: edge-replicated padded pixels and their prefix sums, so each
    // disc row is a box sum plus two fractional end taps.
    let mut padded = vec![0u8; pw * 3 * h];
    let mut prefix = vec![0u32; (pw + 1) * 3 * h];
    for y in 0..h {
        let row = &img.as_raw()[y * w * 3..(y + 1) * w * 3];
        let prow = &mut padded[y * pw * 3..(y + 1) * pw * 3];
        pad_row(row, prow, w, 3, pad);
        let pre = &mut prefix[y * (pw + 1) * 3..(y + 1) * (pw + 1) * 3];
        for i in 0..pw * 3 {
            pre[i + 3] = pre[i] + u32::from(prow[i]);
        }
    }
    // (dy, whole half-width, fractional end weight /256) per disc row.
    let rows: Vec<(isize, usize, u32)> = (-(pad as isize)..=pad as isize)
        .filter_map(|dy| {
            let hw = (r * r - (dy * dy) as f32).max(-1.0);
            (hw >= 0.0).then(|| {
                let hw = hw.sqrt();
                (dy, hw.floor() as usize, ((hw - hw.floor()) * 256.0) as u32)
            })
        })
        .collect();
    let total: u32 = rows
        .iter()
        .map(|&(_, f, fr)| 256 * (2 * f as u32 + 1) + 2 * fr)
        .sum();
    let out: &mut [u8] = img;
    let mut acc = vec![0u32; w * 3];
    for y in 0..h {
        acc.fill(total / 2);
        for &(dy, f, fr) in &rows {
            let sy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
            let pre = &prefix[sy * (pw + 1) * 3..(sy + 1) * (pw + 1) * 3];
            let prow = &padded[sy * pw * 3..(sy + 1) * pw * 3];
            // Window [x - f, x + f] in padded coordinates starts at x + pad - f;
            // f < pad, so the end taps at x + pad - f - 1 and x + pad + f + 1
            // stay inside the padded row.
            let (lo, hi, n) = ((pad - f) * 3, (pad + f + 1) * 3, w * 3);
            let sums = pre[hi..hi + n].iter().zip(&pre[lo..lo + n]);
            let ends = prow[lo - 3..lo - 3 + n].iter().zip(&prow[hi..hi + n]);
            for ((a, (s1, s0)), (e0, e1)) in acc.iter_mut().zip(sums).zip(ends) {
                *a += 256 * (s1 - s0) + fr * (u32::from(*e0) + u32::from(*e1));
            }
        }
        for (o, &a) in out[y * w * 3..(y + 1) * w * 3].iter_mut().zip(&acc) {
            *o = (a / total).min(255) as u8;
        }
    }
}

/// Resolution loss: anti-aliased downsampling then bilinear upsampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct LowResolution {
    /// Linear scale of the intermediate image (0.5 = half resolution).
    pub scale: f64,
}

impl LowResolution {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            scale: uniform(rng, 0.25, 0.6),
        }
    }
}

pub(super) fn low_resolution(img: &mut RgbImage, p: &LowResolution, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let scale = p.scale.clamp(0.05, 1.0) as f32;
    let k = gaussian_kernel(0.45 / scale);
    let mut soft = img.as_raw().clone();
    convolve_separable(&mut soft, w, h, 3, &k, &k);
    let (sw, sh) = (
        ((w as f32 * scale).round() as usize).max(1),
        ((h as f32 * scale).round() as usize).max(1),
    );
    let mut small = vec![0u8; sw * sh * 3];
    resample(&soft, w, h, &mut small, sw, sh);
    resample(&small, sw, sh, img, w, h);
}

/// Bilinear resampling between interleaved RGB buffers (pixel centres aligned).
fn resample(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    let (fx, fy) = (sw as f32 / dw as f32, sh as f32 / dh as f32);
    let cols: Vec<(usize, usize, u32)> = (0..dw)
        .map(|x| {
            let s = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, (sw - 1) as f32);
            let x0 = s as usize;
            (x0, (x0 + 1).min(sw - 1), ((s - x0 as f32) * 256.0) as u32)
        })
        .collect();
    for y in 0..dh {
        let s = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, (sh - 1) as f32);
        let y0 = s as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let ty = ((s - y0 as f32) * 256.0) as u32;
        let (r0, r1) = (
            &src[y0 * sw * 3..(y0 + 1) * sw * 3],
            &src[y1 * sw * 3..(y1 + 1) * sw * 3],
        );
        let out = &mut dst[y * dw * 3..(y + 1) * dw * 3];
        for (x, &(x0, x1, tx)) in cols.iter().enumerate() {
            for c in 0..3 {
                let top = u32::from(r0[x0 * 3 + c]) * (256 - tx) + u32::from(r0[x1 * 3 + c]) * tx;
                let bot = u32::from(r1[x0 * 3 + c]) * (256 - tx) + u32::from(r1[x1 * 3 + c]) * tx;
                out[x * 3 + c] = ((top * (256 - ty) + bot * ty + (1 << 15)) >> 16) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    #[test]
    fn gaussian_blur_lowers_edge_energy_and_keeps_mean() {
        let orig = text_like(120, 80);
        let mut img = orig.clone();
        gaussian_blur(&mut img, &GaussianBlur { sigma: 1.5 }, &mut rng(0));
        assert_eq!(img.dimensions(), orig.dimensions());
        assert!(
            edge_energy(&img) < edge_energy(&orig) * 3 / 4,
            "{} vs {}",
            edge_energy(&img),
            edge_energy(&orig)
        );
        assert!(std(&img) < std(&orig));
        assert!((mean(&img) - mean(&orig)).abs() < 1.5);
        let mut more = orig.clone();
        gaussian_blur(&mut more, &GaussianBlur { sigma: 3.0 }, &mut rng(0));
        assert!(edge_energy(&more) < edge_energy(&img));
    }

    #[test]
    fn motion_blur_smears_along_its_direction() {
        // A single vertical line blurred horizontally spreads sideways only.
        let mut img = flat(41, 41, 255);
        for y in 0..41 {
            img.put_pixel(20, y, image::Rgb([0, 0, 0]));
        }
        let orig = img.clone();
        motion_blur(
            &mut img,
            &MotionBlur {
                length: 7.0,
                angle_deg: 0.0,
            },
            &mut rng(0),
        );
        let row: Vec<u8> = (0..41).map(|x| img.get_pixel(x, 20).0[0]).collect();
        assert!(row[20] > 150, "centre lightened: {}", row[20]);
        assert!(row[17] < 250 && row[23] < 250, "spread sideways: {row:?}");
        assert_eq!(row[10], 255);
        // Blurring along the line's own direction changes nothing inside.
        let mut along = orig.clone();
        motion_blur(
            &mut along,
            &MotionBlur {
                length: 7.0,
                angle_deg: 90.0,
            },
            &mut rng(0),
        );
        assert_eq!(along.get_pixel(20, 20).0[0], 0);
        assert!(edge_energy(&img) < edge_energy(&orig));
    }

    #[test]
    fn line_kernel_is_normalised() {
        for (len, ang) in [(2.5, 0.0), (5.3, 33.0), (9.0, 135.0)] {
            let taps = line_kernel(len, ang);
            assert_eq!(taps.iter().map(|t| t.2).sum::<u32>(), 4096);
        }
    }

    #[test]
    fn defocus_spreads_a_point_into_a_disc() {
        let mut img = flat(31, 31, 0);
        img.put_pixel(15, 15, image::Rgb([255, 255, 255]));
        defocus_blur(&mut img, &DefocusBlur { radius: 3.0 }, &mut rng(0));
        let at = |x, y| img.get_pixel(x, y).0[0];
        assert!(at(15, 15) < 20);
        assert!(at(17, 15) > 0 && at(15, 17) > 0 && at(14, 14) > 0);
        assert_eq!(at(20, 15), 0, "nothing beyond the radius");
        assert!(
            (i32::from(at(18, 15)) - i32::from(at(15, 18))).abs() <= 1,
            "isotropic"
        );
        let mut flat_img = flat(20, 20, 77);
        defocus_blur(&mut flat_img, &DefocusBlur { radius: 2.4 }, &mut rng(0));
        assert!(flat_img.as_raw().iter().all(|&v| v == 77));
    }

    #[test]
    fn low_resolution_loses_detail() {
        let orig = text_like(120, 96);
        let mut img = orig.clone();
        low_resolution(&mut img, &LowResolution { scale: 0.33 }, &mut rng(0));
        assert_eq!(img.dimensions(), orig.dimensions());
        // Fine text loses contrast and sharpness once resolution drops.
        assert!(
            std(&img) < std(&orig) * 0.6,
            "std {} vs {}",
            std(&img),
            std(&orig)
        );
        assert!(edge_energy(&img) < edge_energy(&orig) * 4 / 5);
        assert!((mean(&img) - mean(&orig)).abs() < 4.0);
        let mut other = orig.clone();
        low_resolution(&mut other, &LowResolution { scale: 0.5 }, &mut rng(0));
        assert_ne!(img, other);
    }
}
