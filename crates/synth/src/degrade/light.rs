//! Lighting and tone: uneven illumination, shadows, contrast/gamma and fold creases.

use super::Scaled;
use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{Field, clamp_f, expand3, fx, sat_u16, scale_bytes, smoothstep, uniform};

/// Low-frequency illumination: a linear fall-off plus soft blotches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct UnevenIllumination {
    /// Darkening at the dark end of the gradient (0..1).
    pub strength: f64,
    /// Direction in which the page gets darker, degrees.
    pub angle_deg: f64,
    /// Amplitude of smooth random blotches (0..1).
    pub blotch: f64,
    /// Blotch size in pixels.
    pub blotch_size: f64,
}

impl UnevenIllumination {
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        let size = f64::from(w.min(h));
        Self {
            strength: uniform(rng, 0.1, 0.45),
            angle_deg: uniform(rng, 0.0, 360.0),
            blotch: uniform(rng, 0.0, 0.15),
            blotch_size: uniform(rng, size * 0.25, size * 0.6).max(1.0),
        }
    }
}

#[inline(always)]
pub(super) fn uneven_illumination(
    img: &mut RgbImage,
    p: &UnevenIllumination,
    rng: &mut ChaCha8Rng,
) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (s, c) = (p.angle_deg as f32).to_radians().sin_cos();
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    // Projection onto the direction, normalised to [0, 1] over the page.
    let extent = (cx * c.abs() + cy * s.abs()).max(1.0);
    let mut field = Field::new(rng, w, h, p.blotch_size as f32);
    let (strength, blotch_amp) = (p.strength as f32, p.blotch as f32 * 0.5);
    let mut blotch = vec![0f32; w];
    let mut gain = vec![0u16; w];
    let mut gain3 = vec![0u16; w * 3];
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        field.row(y, &mut blotch);
        // The ramp is linear in x: its value at x = 0 plus a constant step.
        let ramp0 = 0.5 + 0.5 * (-cx * c + (y as f32 - cy) * s) / extent;
        let step = 0.5 * c / extent;
        for (x, (g, b)) in gain.iter_mut().zip(&blotch).enumerate() {
            let ramp = ramp0 + step * fx(x);
            let f = 1.0 - strength * ramp - blotch_amp * (b + 1.0);
            *g = sat_u16(f.clamp(0.0, 1.0) * 256.0);
        }
        expand3(&gain, &mut gain3);
        scale_bytes(row, &gain3);
    }
}

/// A soft shadow falling over one edge of the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Shadow {
    /// Edge the shadow comes from: 0 left, 1 top, 2 right, 3 bottom.
    pub edge: u8,
    /// How far into the page the shadow reaches, as a fraction of the page.
    pub depth: f64,
    /// Darkening inside the shadow (0..1).
    pub darkness: f64,
    /// Width of the penumbra as a fraction of the page.
    pub softness: f64,
    /// Tilt of the shadow boundary (fraction of depth change across the page).
    pub slant: f64,
}

impl Shadow {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            edge: rng.random_range(0..4),
            depth: uniform(rng, 0.08, 0.35),
            darkness: uniform(rng, 0.25, 0.6),
            softness: uniform(rng, 0.02, 0.12),
            slant: uniform(rng, -0.3, 0.3),
        }
    }
}

#[inline(always)]
pub(super) fn shadow(img: &mut RgbImage, p: &Shadow, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let horizontal = matches!(p.edge % 4, 0 | 2); // left/right edges: distance runs along x
    let (across, along) = if horizontal {
        (w as f32, h as f32)
    } else {
        (h as f32, w as f32)
    };
    let soft = (p.softness as f32 * across).max(1.0);
    // No pixel farther from the edge than this is touched.
    let reach =
        (across * p.depth as f32 * (1.0 + 0.5 * p.slant.abs() as f32) + soft).ceil() as usize;
    let mut gain = vec![0u16; w];
    let mut gain3 = vec![0u16; w * 3];
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        let xs = match p.edge % 4 {
            0 => 0..reach.min(w),
            2 => w.saturating_sub(reach)..w,
            1 if y < reach => 0..w,
            3 if h - 1 - y < reach => 0..w,
            _ => continue,
        };
        let span = xs.clone();
        for (g, x) in gain.iter_mut().zip(xs) {
            let (d, t) = match p.edge % 4 {
                0 => (fx(x), fx(y)),
                1 => (fx(y), fx(x)),
                2 => (fx(w - 1 - x), fx(y)),
                _ => (fx(h - 1 - y), fx(x)),
            };
            let boundary =
                across * (p.depth as f32 + p.slant as f32 * (t / along - 0.5) * p.depth as f32);
            let inside = 1.0 - smoothstep(boundary - soft, boundary + soft, d);
            *g = sat_u16((1.0 - p.darkness as f32 * inside) * 256.0 + 0.5);
        }
        let n = span.len();
        expand3(&gain[..n], &mut gain3[..n * 3]);
        scale_bytes(&mut row[span.start * 3..span.end * 3], &gain3[..n * 3]);
    }
}

/// Global tone curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ContrastGamma {
    /// Gamma exponent (>1 darkens mid-tones).
    pub gamma: f64,
    /// Contrast multiplier around mid-grey.
    pub contrast: f64,
    /// Brightness offset in 8-bit levels.
    pub brightness: f64,
}

impl ContrastGamma {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        // Keep away from the identity so the step always does something visible.
        let gamma = if rng.random_bool(0.5) {
            uniform(rng, 0.55, 0.9)
        } else {
            uniform(rng, 1.1, 1.8)
        };
        let contrast = if rng.random_bool(0.5) {
            uniform(rng, 0.65, 0.92)
        } else {
            uniform(rng, 1.08, 1.4)
        };
        Self {
            gamma,
            contrast,
            brightness: uniform(rng, -20.0, 20.0),
        }
    }
}

#[inline(always)]
pub(super) fn contrast_gamma(img: &mut RgbImage, p: &ContrastGamma, _rng: &mut ChaCha8Rng) {
    let lut: Vec<u8> = (0..256)
        .map(|v| {
            let g = (v as f32 / 255.0).powf(p.gamma as f32);
            clamp_f(((g - 0.5) * p.contrast as f32 + 0.5) * 255.0 + p.brightness as f32)
        })
        .collect();
    for v in img.iter_mut() {
        *v = lut[usize::from(*v)];
    }
}

/// A fold line: a dark crease with a highlight on one side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FoldCrease {
    /// Whether the crease runs top to bottom.
    pub vertical: bool,
    /// Position across the page (fraction).
    pub position: f64,
    /// Slope of the crease (pixels across per pixel along).
    pub tilt: f64,
    /// Half-width of the dark core in pixels.
    pub width: f64,
    /// Darkening at the centre of the crease (0..1).
    pub darkness: f64,
    /// Brightening of the ridge beside the crease (0..1).
    pub highlight: f64,
}

impl FoldCrease {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            vertical: rng.random_bool(0.5),
            position: uniform(rng, 0.2, 0.8),
            tilt: uniform(rng, -0.03, 0.03),
            width: uniform(rng, 1.5, 5.0),
            darkness: uniform(rng, 0.15, 0.4),
            highlight: uniform(rng, 0.0, 0.08),
        }
    }
}

#[inline(always)]
pub(super) fn fold_crease(img: &mut RgbImage, p: &FoldCrease, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let width = p.width.max(0.5) as f32;
    let reach = width * 8.0;
    let (size_across, size_along) = if p.vertical { (w, h) } else { (h, w) };
    let line = |along: usize| {
        p.position as f32 * size_across as f32
            + p.tilt as f32 * (along as f32 - size_along as f32 * 0.5)
    };
    // Only pixels within `reach` of the crease change; find them per row
    // instead of testing every pixel of the page.
    let (first, last) = (line(0), line(size_along.saturating_sub(1)));
    let (lo, hi) = (first.min(last) - reach, first.max(last) + reach);
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        let xs = if p.vertical {
            let l = line(y);
            ((l - reach).max(0.0) as usize).min(w)
                ..((l + reach).ceil().max(0.0) as usize + 1).min(w)
        } else if (y as f32) < lo || (y as f32) > hi {
            continue;
        } else {
            0..w
        };
        for x in xs {
            let px = &mut row[x * 3..x * 3 + 3];
            let (across, along) = if p.vertical { (x, y) } else { (y, x) };
            let d = across as f32 - line(along);
            if d.abs() > reach {
                continue;
            }
            let core = (-(d / width).powi(2)).exp();
            let ridge = (-((d - 2.5 * width) / (1.5 * width)).powi(2)).exp();
            let dark = 1.0 - p.darkness as f32 * core;
            let light = p.highlight as f32 * ridge;
            for v in px {
                let x = f32::from(*v) * dark;
                *v = clamp_f(x + (255.0 - x) * light);
            }
        }
    }
}

// Blotch sizes, shadows and crease positions are sampled from the page's
// own size; only the crease's pixel width scales.
impl Scaled for UnevenIllumination {}
impl Scaled for Shadow {}
impl Scaled for ContrastGamma {}

impl Scaled for FoldCrease {
    fn scaled(self, s: f64) -> Self {
        Self {
            width: self.width * s,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    fn column_mean(img: &RgbImage, x: u32) -> f64 {
        (0..img.height())
            .map(|y| f64::from(img.get_pixel(x, y).0[0]))
            .sum::<f64>()
            / f64::from(img.height())
    }

    #[test]
    fn uneven_illumination_is_a_smooth_gradient() {
        let mut img = flat(200, 100, 240);
        let p = UnevenIllumination {
            strength: 0.4,
            angle_deg: 0.0,
            blotch: 0.0,
            blotch_size: 50.0,
        };
        uneven_illumination(&mut img, &p, &mut rng(1));
        let (left, mid, right) = (
            column_mean(&img, 2),
            column_mean(&img, 100),
            column_mean(&img, 197),
        );
        assert!(
            left > mid + 20.0 && mid > right + 20.0,
            "{left} {mid} {right}"
        );
        // Low frequency: neighbouring pixels differ by at most a level or two.
        let max_step = img
            .as_raw()
            .chunks_exact(600)
            .flat_map(|r| r.windows(4).map(|p| p[0].abs_diff(p[3])))
            .max();
        assert!(max_step <= Some(2));
        let mut blotchy = flat(200, 100, 240);
        let q = UnevenIllumination {
            blotch: 0.15,
            ..p.clone()
        };
        uneven_illumination(&mut blotchy, &q, &mut rng(1));
        let mut other = flat(200, 100, 240);
        uneven_illumination(&mut other, &q, &mut rng(2));
        assert_ne!(blotchy, other);
    }

    #[test]
    fn shadow_darkens_only_its_edge() {
        let mut img = flat(200, 100, 250);
        let p = Shadow {
            edge: 2,
            depth: 0.2,
            darkness: 0.5,
            softness: 0.03,
            slant: 0.0,
        };
        shadow(&mut img, &p, &mut rng(0));
        assert!(column_mean(&img, 195) < 140.0);
        assert_eq!(column_mean(&img, 20), 250.0);
        assert!(column_mean(&img, 160) > column_mean(&img, 180));
    }

    #[test]
    fn contrast_gamma_reshapes_tones_monotonically() {
        let mut img = RgbImage::from_fn(256, 1, |x, _| image::Rgb([x as u8; 3]));
        let p = ContrastGamma {
            gamma: 1.6,
            contrast: 1.2,
            brightness: 0.0,
        };
        contrast_gamma(&mut img, &p, &mut rng(0));
        let vals: Vec<u8> = img.pixels().map(|p| p.0[0]).collect();
        assert!(vals.windows(2).all(|w| w[0] <= w[1]), "monotone");
        assert!(vals[128] < 100, "gamma 1.6 darkens mid-grey: {}", vals[128]);
        assert_eq!(vals[0], 0);
    }

    #[test]
    fn fold_crease_draws_a_dark_line() {
        let mut img = flat(100, 80, 240);
        let p = FoldCrease {
            vertical: true,
            position: 0.5,
            tilt: 0.0,
            width: 2.0,
            darkness: 0.35,
            highlight: 0.05,
        };
        fold_crease(&mut img, &p, &mut rng(0));
        assert!(column_mean(&img, 50) < 165.0, "{}", column_mean(&img, 50));
        assert!(column_mean(&img, 55) > 240.0, "highlight side is brighter");
        assert_eq!(column_mean(&img, 10), 240.0);
    }
}
