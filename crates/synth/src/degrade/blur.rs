//! Optical softness: Gaussian, motion and defocus blur, and resolution loss.

use super::Scaled;
use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{Scratch, convolve_separable, gaussian_kernel, pad_row, sat_u8, uniform};

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

#[inline(always)]
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

/// Sparse kernel taps `(dx, dy, weight)` with weights summing to 256, so
/// that 8-bit pixels accumulate in `u16` lanes (twice the vector width of
/// `u32`); taps under half a step are dropped.
fn line_kernel(length: f32, angle_deg: f32) -> Vec<(isize, isize, u16)> {
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
    let mut taps: Vec<(isize, isize, u16)> = grid
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                (i % side) as isize - r,
                (i / side) as isize - r,
                (v / total * 256.0).round() as u16,
            )
        })
        .filter(|t| t.2 > 0)
        .collect();
    let sum: u16 = taps.iter().map(|t| t.2).sum();
    if let Some(big) = taps.iter_mut().max_by_key(|t| t.2) {
        big.2 = (big.2 + 256).saturating_sub(sum);
    }
    taps
}

#[inline(always)]
pub(super) fn motion_blur(img: &mut RgbImage, p: &MotionBlur, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let stride = w * 3;
    let taps = line_kernel(p.length as f32, p.angle_deg as f32);
    let src = Scratch::copy_of(img);
    let mut acc = vec![0u16; stride];
    for (y, out) in img.chunks_exact_mut(stride).enumerate() {
        acc.fill(128);
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
                    *a += wgt * u16::from(v);
                }
            }
            for x in (0..lo.min(w)).chain(hi.max(lo)..w) {
                let sx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                for c in 0..3 {
                    acc[x * 3 + c] += wgt * u16::from(row[sx * 3 + c]);
                }
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = (a >> 8) as u8;
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

#[inline(always)]
pub(super) fn defocus_blur(img: &mut RgbImage, p: &DefocusBlur, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let r = p.radius.max(0.5) as f32;
    let pad = r.ceil() as usize + 1;
    let stride = w * 3;
    // The disc, row by row: for |dy| = k, a box of half-width f plus two
    // end taps of fractional weight fr/16 (the anti-aliased rim). Rows k and
    // -k are the same filter, so each source row is filtered once per k.
    let filters: Vec<(usize, u16)> = (0..pad)
        .map_while(|k| {
            let hw = r * r - (k * k) as f32;
            (hw >= 0.0).then(|| {
                let hw = hw.sqrt();
                (hw.floor() as usize, ((hw - hw.floor()) * 16.0) as u16)
            })
        })
        .collect();
    let reach = filters.len() - 1;
    let total: u32 = (0..=2 * reach)
        .map(|i| {
            let (f, fr) = filters[i.abs_diff(reach)];
            16 * (2 * f as u32 + 1) + 2 * u32::from(fr)
        })
        .sum();
    // Filtered rows for the 2 * reach + 1 source rows around the current
    // output row, in a ring, each holding one u32 row per k (16 * 255 *
    // (2 f + 1) + 15 * 510 passes u16 from radius 7 on, which pages at
    // 175 dpi and more reach once the radius is scaled).
    let slots = 2 * reach + 1;
    let block = filters.len() * stride;
    let mut ring = vec![0u32; slots * block];
    let mut held = vec![usize::MAX; slots];
    let mut padded = vec![0u8; (w + 2 * pad) * 3];
    // Running sums of the padded row per channel: `prefix[i + 3] =
    // prefix[i] + padded[i]`, so any box along the row is one subtraction
    // whatever its width.
    let mut prefix = vec![0u32; padded.len() + 3];
    let data: &mut [u8] = img;
    let mut acc = vec![0u32; stride];
    let inv_total = 1.0 / total as f32;
    for y in 0..h {
        // Fill the ring before row y is overwritten: every source row is
        // first needed by output row `sy - reach`, while still intact.
        for sy in y.saturating_sub(reach)..=(y + reach).min(h - 1) {
            let slot = sy % slots;
            if held[slot] == sy {
                continue;
            }
            held[slot] = sy;
            pad_row(
                &data[sy * stride..(sy + 1) * stride],
                &mut padded,
                w,
                3,
                pad,
            );
            // Running sums held in registers: writing each sum and reading
            // it back three bytes later would chain every step through a
            // store-to-load forward.
            let mut run = [0u32; 3];
            for (sums, px) in prefix[3..].chunks_exact_mut(3).zip(padded.chunks_exact(3)) {
                for ((s, r), &v) in sums.iter_mut().zip(&mut run).zip(px) {
                    *r += u32::from(v);
                    *s = *r;
                }
            }
            let out = &mut ring[slot * block..(slot + 1) * block];
            for (&(f, fr), o) in filters.iter().zip(out.chunks_exact_mut(stride)) {
                // The box covers padded columns pad - f ..= pad + f around
                // each pixel: 2 f + 1 taps, three bytes apart.
                let start = (pad - f) * 3;
                let end = start + (2 * f + 1) * 3;
                let boxes = prefix[end..end + stride]
                    .iter()
                    .zip(&prefix[start..start + stride]);
                // f < pad, so both end taps stay inside the padded row.
                let (e0, e1) = (start - 3, end);
                let ends = padded[e0..e0 + stride].iter().zip(&padded[e1..e1 + stride]);
                for ((o, (&hi, &lo)), (&a, &b)) in o.iter_mut().zip(boxes).zip(ends) {
                    *o = 16 * (hi - lo) + u32::from(fr) * (u32::from(a) + u32::from(b));
                }
            }
        }
        acc.fill(total / 2);
        for dy in -(reach as isize)..=reach as isize {
            let sy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
            let k = dy.unsigned_abs();
            let start = (sy % slots) * block + k * stride;
            for (a, &v) in acc.iter_mut().zip(&ring[start..start + stride]) {
                *a += v;
            }
        }
        // Integer division by a run-time divisor does not vectorise; the
        // accumulators stay below 2^24, where f32 is exact.
        for (o, &a) in data[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *o = sat_u8(a as i32 as f32 * inv_total);
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

#[inline(always)]
pub(super) fn low_resolution(img: &mut RgbImage, p: &LowResolution, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let scale = p.scale.clamp(0.05, 1.0) as f32;
    let (sw, sh) = (
        ((w as f32 * scale).round() as usize).max(1),
        ((h as f32 * scale).round() as usize).max(1),
    );
    // Anti-aliased downsampling: each small pixel is a Gaussian-weighted
    // average (sigma 0.45 / scale source pixels) around its centre, computed
    // only where a small pixel lands instead of blurring the whole page.
    let sigma = 0.45 / scale;
    let rows = gaussian_taps(h, sh, sigma);
    let cols = gaussian_taps(w, sw, sigma);
    let stride = w * 3;
    let src = img.as_raw();
    let mut acc = vec![0u16; stride];
    let mut small = vec![0u8; sw * sh * 3];
    for (taps, out) in rows.iter().zip(small.chunks_exact_mut(sw * 3)) {
        acc.fill(128);
        for &(sy, wgt) in taps {
            for (a, &v) in acc.iter_mut().zip(&src[sy * stride..(sy + 1) * stride]) {
                *a += wgt * u16::from(v);
            }
        }
        for (px, taps) in out.chunks_exact_mut(3).zip(&cols) {
            let mut sum = [128u32; 3];
            for &(sx, wgt) in taps {
                for (s, &a) in sum.iter_mut().zip(&acc[sx * 3..sx * 3 + 3]) {
                    *s += u32::from(wgt) * u32::from(a >> 8);
                }
            }
            for (o, s) in px.iter_mut().zip(sum) {
                *o = (s >> 8) as u8;
            }
        }
    }
    upsample_bilinear(&small, sw, sh, img, w, h);
}

/// Per destination sample, the source taps `(index, weight)` of a
/// normalised Gaussian centred on its position (pixel centres aligned),
/// weights summing to 256, edges replicated.
fn gaussian_taps(src: usize, dst: usize, sigma: f32) -> Vec<Vec<(usize, u16)>> {
    let ratio = src as f32 / dst as f32;
    let r = (3.0 * sigma).ceil() as isize + 1;
    (0..dst)
        .map(|o| {
            let centre = (o as f32 + 0.5) * ratio - 0.5;
            let first = centre.floor() as isize - r + 1;
            let raw: Vec<(usize, f32)> = (first..first + 2 * r)
                .map(|i| {
                    let d = i as f32 - centre;
                    let idx = i.clamp(0, src as isize - 1) as usize;
                    (idx, (-d * d / (2.0 * sigma * sigma)).exp())
                })
                .collect();
            let total: f32 = raw.iter().map(|t| t.1).sum();
            let mut taps: Vec<(usize, u16)> = raw
                .iter()
                .map(|&(i, v)| (i, (v / total * 256.0).round() as u16))
                .filter(|t| t.1 > 0)
                .collect();
            let sum: u16 = taps.iter().map(|t| t.1).sum();
            if let Some(big) = taps.iter_mut().max_by_key(|t| t.1) {
                big.1 = (big.1 + 256).saturating_sub(sum);
            }
            taps
        })
        .collect()
}

/// Source index pair and weight (in 1/256) of bilinear interpolation for
/// each destination sample, pixel centres aligned.
fn bilinear_taps(src: usize, dst: usize) -> Vec<(usize, usize, u16)> {
    let f = src as f32 / dst as f32;
    (0..dst)
        .map(|x| {
            let s = ((x as f32 + 0.5) * f - 0.5).clamp(0.0, (src - 1) as f32);
            let x0 = s as usize;
            (x0, (x0 + 1).min(src - 1), ((s - x0 as f32) * 256.0) as u16)
        })
        .collect()
}

/// Bilinear upsampling of interleaved RGB: each small row is widened once,
/// then every output row blends two widened rows (a vectorisable pass).
#[inline(always)]
fn upsample_bilinear(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    let cols = bilinear_taps(sw, dw);
    // A function rather than a closure so that it inlines into the AVX2
    // build ([`super::wide`]) like everything else here.
    #[inline(always)]
    fn widen(row: &[u8], cols: &[(usize, usize, u16)], out: &mut [u8]) {
        for (px, &(x0, x1, t)) in out.chunks_exact_mut(3).zip(cols) {
            for c in 0..3 {
                let (a, b) = (u16::from(row[x0 * 3 + c]), u16::from(row[x1 * 3 + c]));
                px[c] = ((a * (256 - t) + b * t + 128) >> 8) as u8;
            }
        }
    }
    let src_row = |y: usize| &src[y * sw * 3..(y + 1) * sw * 3];
    let mut upper = vec![0u8; dw * 3];
    let mut lower = vec![0u8; dw * 3];
    let mut cached: Option<usize> = None;
    for ((y0, y1, t), out) in bilinear_taps(sh, dh)
        .into_iter()
        .zip(dst.chunks_exact_mut(dw * 3))
    {
        if cached != Some(y0) {
            if cached.is_some_and(|c| c + 1 == y0) {
                std::mem::swap(&mut upper, &mut lower);
            } else {
                widen(src_row(y0), &cols, &mut upper);
            }
            widen(src_row(y1), &cols, &mut lower);
            cached = Some(y0);
        }
        for ((o, &a), &b) in out.iter_mut().zip(&upper).zip(&lower) {
            *o = ((u16::from(a) * (256 - t) + u16::from(b) * t + 128) >> 8) as u8;
        }
    }
}

impl Scaled for GaussianBlur {
    fn scaled(self, s: f64) -> Self {
        Self {
            sigma: self.sigma * s,
        }
    }
}

impl Scaled for MotionBlur {
    fn scaled(self, s: f64) -> Self {
        Self {
            length: self.length * s,
            ..self
        }
    }
}

impl Scaled for DefocusBlur {
    fn scaled(self, s: f64) -> Self {
        Self {
            radius: self.radius * s,
        }
    }
}

impl Scaled for LowResolution {
    /// The intermediate image keeps the same absolute resolution, so a finer
    /// scan is downsampled by more.
    fn scaled(self, s: f64) -> Self {
        Self {
            scale: (self.scale / s).clamp(0.02, 1.0),
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
            assert_eq!(taps.iter().map(|t| t.2).sum::<u16>(), 256);
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

    /// The disc blur summed pixel by pixel from its definition: for each
    /// row offset `dy`, a box of half-width `f` plus two rim taps of weight
    /// `fr / 16`, edges replicated.
    fn defocus_direct(img: &RgbImage, radius: f32) -> RgbImage {
        let (w, h) = (img.width() as i64, img.height() as i64);
        let reach = radius.floor() as i64;
        let filter = |k: i64| {
            let hw = (radius * radius - (k * k) as f32).sqrt();
            (
                hw.floor() as i64,
                u32::from(((hw - hw.floor()) * 16.0) as u16),
            )
        };
        let total: u32 = (-reach..=reach)
            .map(|dy| {
                let (f, fr) = filter(dy.abs());
                16 * (2 * f as u32 + 1) + 2 * fr
            })
            .sum();
        let at = |x: i64, y: i64, c: usize| {
            u32::from(
                img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, h - 1) as u32)
                    .0[c],
            )
        };
        RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let (x, y) = (i64::from(x), i64::from(y));
            image::Rgb(std::array::from_fn(|c| {
                let mut acc = total / 2;
                for dy in -reach..=reach {
                    let (f, fr) = filter(dy.abs());
                    let boxed: u32 = (-f..=f).map(|dx| at(x + dx, y + dy, c)).sum();
                    acc += 16 * boxed + fr * (at(x - f - 1, y + dy, c) + at(x + f + 1, y + dy, c));
                }
                (acc as f32 * (1.0 / total as f32)).min(255.0) as u8
            }))
        })
    }

    #[test]
    fn defocus_matches_the_direct_disc() {
        for (seed, radius, (w, h)) in [
            (1, 1.0, (23, 17)),
            (2, 2.4, (31, 29)),
            (3, 3.5, (12, 40)),
            (4, 7.3, (30, 30)),
            (5, 2.0, (1, 6)),
        ] {
            let img = scrambled_text(w, h, &mut rng(seed), 0.2);
            let mut fast = img.clone();
            defocus_blur(
                &mut fast,
                &DefocusBlur {
                    radius: radius.into(),
                },
                &mut rng(0),
            );
            assert_eq!(
                fast,
                defocus_direct(&img, radius),
                "seed {seed} radius {radius} {w}x{h}"
            );
        }
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
