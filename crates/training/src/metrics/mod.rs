//! Image-quality metrics on plain images (no Candle).
//!
//! Definitions (all inputs are [`RgbF32`] in `[0, 1]`, data range 1):
//! - **PSNR**: `10 * log10(1 / MSE)` with the MSE taken over every pixel and
//!   every RGB channel, in `f64`, as `skimage.metrics.peak_signal_noise_ratio`
//!   with `data_range=1`. Identical images give `f64::INFINITY` (as skimage);
//!   aggregates such as [`MetricSet::mean`] cap each value at [`PSNR_CAP_DB`]
//!   first so one perfect image cannot make a mean infinite.
//! - **SSIM**: see [`ssim`]; luma only, Gaussian window, skimage conventions.
//! - **Pixel accuracy**: the share of pixels whose largest absolute error
//!   over R, G and B is at most `8/255` (plus `1e-6` so errors of exactly
//!   eight 8-bit steps count despite float rounding).

mod ssim;

pub use ssim::{GAUSS_RADIUS, GAUSS_SIGMA, gaussian_kernel_1d, luma, ssim, ssim_luma};

use serde::{Deserialize, Serialize};

use crate::RgbF32;

/// The value an infinite PSNR is replaced with before averaging.
pub const PSNR_CAP_DB: f64 = 100.0;

/// Largest per-pixel error (max over RGB) that still counts as accurate.
pub const ACCURACY_TOLERANCE: f64 = 8.0 / 255.0;

fn check_same_size(a: &RgbF32, b: &RgbF32) {
    assert!(
        a.width() == b.width() && a.height() == b.height(),
        "metric inputs differ in size: {}x{} vs {}x{}",
        a.width(),
        a.height(),
        b.width(),
        b.height()
    );
}

/// Mean squared error over all samples, in `f64`.
///
/// # Panics
/// When the images differ in size (a programming error, not a data error).
pub fn mse(a: &RgbF32, b: &RgbF32) -> f64 {
    check_same_size(a, b);
    let n = a.data().len().max(1) as f64;
    let sum: f64 = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    sum / n
}

/// PSNR in dB over RGB with data range 1; `f64::INFINITY` for identical images.
///
/// # Panics
/// When the images differ in size.
pub fn psnr(a: &RgbF32, b: &RgbF32) -> f64 {
    let m = mse(a, b);
    if m == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / m).log10()
    }
}

/// Share of pixels whose max-over-RGB absolute error is `<= 8/255`.
///
/// # Panics
/// When the images differ in size.
pub fn pixel_accuracy(a: &RgbF32, b: &RgbF32) -> f64 {
    check_same_size(a, b);
    let tol = ACCURACY_TOLERANCE + 1e-6;
    let pixels = a.width() * a.height();
    if pixels == 0 {
        return 1.0;
    }
    let good = a
        .data()
        .chunks_exact(3)
        .zip(b.data().chunks_exact(3))
        .filter(|(p, q)| {
            (0..3)
                .map(|c| (f64::from(p[c]) - f64::from(q[c])).abs())
                .fold(0.0, f64::max)
                <= tol
        })
        .count();
    good as f64 / pixels as f64
}

/// PSNR, SSIM and pixel accuracy of one image against its reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricSet {
    /// PSNR in dB (may be infinite for a single identical pair).
    pub psnr: f64,
    /// Mean SSIM on luma.
    pub ssim: f64,
    /// Pixel accuracy in `[0, 1]`.
    pub accuracy: f64,
}

impl MetricSet {
    /// All three metrics of `other` against `reference`.
    ///
    /// # Panics
    /// When the images differ in size.
    pub fn compute(reference: &RgbF32, other: &RgbF32) -> Self {
        Self {
            psnr: psnr(reference, other),
            ssim: ssim(reference, other),
            accuracy: pixel_accuracy(reference, other),
        }
    }

    /// Per-field mean, with each PSNR capped at [`PSNR_CAP_DB`]; zeros when empty.
    pub fn mean(sets: &[MetricSet]) -> MetricSet {
        if sets.is_empty() {
            return MetricSet::default();
        }
        let n = sets.len() as f64;
        MetricSet {
            psnr: sets.iter().map(|s| s.psnr.min(PSNR_CAP_DB)).sum::<f64>() / n,
            ssim: sets.iter().map(|s| s.ssim).sum::<f64>() / n,
            accuracy: sets.iter().map(|s| s.accuracy).sum::<f64>() / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, f: impl Fn(usize) -> f32) -> RgbF32 {
        RgbF32::new(w, h, (0..w * h * 3).map(f).collect()).unwrap()
    }

    #[test]
    fn psnr_matches_hand_value() {
        let a = img(4, 4, |_| 0.5);
        let b = img(4, 4, |_| 0.6);
        // MSE = 0.01 -> 20 dB (0.6 - 0.5 is not exact in f32, hence the tolerance).
        assert!((psnr(&a, &b) - 20.0).abs() < 1e-5);
        assert_eq!(psnr(&a, &a), f64::INFINITY);
    }

    #[test]
    fn accuracy_uses_max_over_channels() {
        let a = img(2, 1, |_| 0.5);
        // Pixel 0: one channel off by 9/255 -> inaccurate; pixel 1: all off by 8/255 -> accurate.
        let b = img(2, 1, |i| {
            if i == 0 {
                0.5 + 9.0 / 255.0
            } else {
                0.5 - 8.0 / 255.0
            }
        });
        assert_eq!(pixel_accuracy(&a, &b), 0.5);
    }

    #[test]
    fn mean_caps_infinite_psnr() {
        let m = MetricSet::mean(&[
            MetricSet {
                psnr: f64::INFINITY,
                ssim: 1.0,
                accuracy: 1.0,
            },
            MetricSet {
                psnr: 20.0,
                ssim: 0.5,
                accuracy: 0.0,
            },
        ]);
        assert_eq!(m.psnr, 60.0);
        assert_eq!(m.ssim, 0.75);
        assert_eq!(m.accuracy, 0.5);
    }
}
