//! Structural similarity on luma, matching scikit-image.

use crate::RgbF32;

/// Standard deviation of the Gaussian window.
pub const GAUSS_SIGMA: f64 = 1.5;
/// Window radius: `int(truncate * sigma + 0.5)` with skimage's `truncate = 3.5`,
/// so the window is 11 x 11.
pub const GAUSS_RADIUS: usize = 5;

const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// The normalised 1-D Gaussian taps (`2 * GAUSS_RADIUS + 1` of them), as
/// `scipy.ndimage.gaussian_filter` builds them.
pub fn gaussian_kernel_1d() -> Vec<f64> {
    let r = GAUSS_RADIUS as i64;
    let taps: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x * x) as f64 / (GAUSS_SIGMA * GAUSS_SIGMA)).exp())
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.into_iter().map(|t| t / sum).collect()
}

/// ITU-R BT.601 luma `Y = 0.299 R + 0.587 G + 0.114 B`, row-major, in `f64`.
pub fn luma(img: &RgbF32) -> Vec<f64> {
    img.data()
        .chunks_exact(3)
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Separable Gaussian filter keeping only the "valid" region (outputs whose
/// whole window lies inside the image): `(w - 2r) x (h - 2r)` values.
fn filter_valid(src: &[f64], w: usize, h: usize, k: &[f64]) -> Vec<f64> {
    let r = GAUSS_RADIUS;
    let (vw, vh) = (w - 2 * r, h - 2 * r);
    // Horizontal pass over every row, valid columns only.
    let mut tmp = vec![0.0; vw * h];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..vw {
            tmp[y * vw + x] = k.iter().zip(&row[x..x + k.len()]).map(|(a, b)| a * b).sum();
        }
    }
    // Vertical pass, valid rows only.
    let mut out = vec![0.0; vw * vh];
    for y in 0..vh {
        for x in 0..vw {
            out[y * vw + x] = k
                .iter()
                .enumerate()
                .map(|(i, kv)| kv * tmp[(y + i) * vw + x])
                .sum();
        }
    }
    out
}

/// Mean SSIM of two single-channel images (row-major, data range 1).
///
/// Follows `skimage.metrics.structural_similarity(gaussian_weights=True,
/// sigma=1.5, use_sample_covariance=False, data_range=1)`: K1 = 0.01,
/// K2 = 0.03, an 11 x 11 Gaussian window, and the mean of the SSIM map over
/// `[pad:-pad, pad:-pad]` with `pad = 5`. skimage filters with
/// `mode="reflect"` and then crops exactly the border the reflection touches,
/// so computing only the valid region gives the same number without padding.
///
/// Images smaller than 11 pixels in either direction have no valid region;
/// they fall back to comparing global statistics (one window over the whole
/// image, uniform weights), which skimage would refuse.
///
/// # Panics
/// When the two buffers differ in length or do not hold `w * h` values.
pub fn ssim_luma(a: &[f64], b: &[f64], w: usize, h: usize) -> f64 {
    assert!(
        a.len() == w * h && b.len() == w * h,
        "ssim inputs must be w*h"
    );
    let c1 = K1 * K1;
    let c2 = K2 * K2;
    if w < 2 * GAUSS_RADIUS + 1 || h < 2 * GAUSS_RADIUS + 1 {
        let n = (w * h).max(1) as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let va = a.iter().map(|x| (x - ma).powi(2)).sum::<f64>() / n;
        let vb = b.iter().map(|x| (x - mb).powi(2)).sum::<f64>() / n;
        let cov = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / n;
        return ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
            / ((ma * ma + mb * mb + c1) * (va + vb + c2));
    }
    let k = gaussian_kernel_1d();
    let prod = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    };
    let ux = filter_valid(a, w, h, &k);
    let uy = filter_valid(b, w, h, &k);
    let uxx = filter_valid(&prod(&|x, _| x * x), w, h, &k);
    let uyy = filter_valid(&prod(&|_, y| y * y), w, h, &k);
    let uxy = filter_valid(&prod(&|x, y| x * y), w, h, &k);
    let n = ux.len() as f64;
    let mut total = 0.0;
    for i in 0..ux.len() {
        let vx = uxx[i] - ux[i] * ux[i];
        let vy = uyy[i] - uy[i] * uy[i];
        let vxy = uxy[i] - ux[i] * uy[i];
        let num = (2.0 * ux[i] * uy[i] + c1) * (2.0 * vxy + c2);
        let den = (ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2);
        total += num / den;
    }
    total / n
}

/// Mean SSIM of the BT.601 luma of two RGB images (see [`ssim_luma`]).
///
/// # Panics
/// When the images differ in size.
pub fn ssim(a: &RgbF32, b: &RgbF32) -> f64 {
    assert!(
        a.width() == b.width() && a.height() == b.height(),
        "ssim inputs differ in size"
    );
    ssim_luma(&luma(a), &luma(b), a.width(), a.height())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel_1d();
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(k[0], k[10]);
        assert!(k[5] > k[4]);
    }

    #[test]
    fn identical_images_score_one() {
        let a: Vec<f64> = (0..20 * 16)
            .map(|i| ((i * 37) % 17) as f64 / 17.0)
            .collect();
        assert!((ssim_luma(&a, &a, 20, 16) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn constant_shift_lowers_only_luminance_term() {
        let a = vec![0.5; 12 * 12];
        let b = vec![0.6; 12 * 12];
        // Zero variance everywhere: SSIM = (2*0.5*0.6 + c1) / (0.25 + 0.36 + c1).
        let c1 = 1e-4;
        let want = (0.6 + c1) / (0.61 + c1);
        assert!((ssim_luma(&a, &b, 12, 12) - want).abs() < 1e-12);
    }
}
