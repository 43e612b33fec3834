//! Ink defects: bleeding, show-through from the reverse side, fading and
//! broken strokes.

use super::{Scaled, scale_px};
use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{
    Field, Scratch, convolve_separable, expand3, gaussian_kernel, lighten_bytes, luma, sat_u16,
    scale_bytes, smoothstep, uniform,
};

/// Ink spreading into the paper fibres around strokes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct InkBleed {
    /// Dilation radius of the ink in pixels.
    pub radius: u32,
    /// Softness of the spread edge (Gaussian sigma in pixels).
    pub softness: f64,
    /// How much of the spread ink reaches the paper (0..1).
    pub strength: f64,
}

impl InkBleed {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        use rand::Rng;
        // A two-pixel spread fills the counters of body-size text, so it
        // comes rarely and weaker.
        let radius = if rng.random_bool(0.2) { 2 } else { 1 };
        let strength = if radius == 2 {
            uniform(rng, 0.3, 0.6)
        } else {
            uniform(rng, 0.4, 0.9)
        };
        Self {
            radius,
            softness: uniform(rng, 0.5, 1.2),
            strength,
        }
    }
}

/// Per-channel minimum over a `(2r+1)` square window (grey-level erosion,
/// i.e. dilation of dark ink), separable.
#[inline(always)]
fn min_filter(data: &mut [u8], w: usize, h: usize, r: usize) {
    let stride = w * 3;
    let mut tmp = Scratch::copy_of(data);
    // Horizontal: shifted whole-row minima (vectorises); windows that run
    // off the edge simply see fewer pixels, which equals edge replication.
    for (src, dst) in data.chunks_exact(stride).zip(tmp.chunks_exact_mut(stride)) {
        for off in (1..=r).map(|d| d * 3).filter(|&off| off < stride) {
            for (o, &s) in dst[off..].iter_mut().zip(&src[..stride - off]) {
                *o = (*o).min(s);
            }
            for (o, &s) in dst[..stride - off].iter_mut().zip(&src[off..]) {
                *o = (*o).min(s);
            }
        }
    }
    for y in 0..h {
        let out = &mut data[y * stride..(y + 1) * stride];
        out.copy_from_slice(&tmp[y * stride..(y + 1) * stride]);
        for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
            for (o, &s) in out.iter_mut().zip(&tmp[yy * stride..(yy + 1) * stride]) {
                *o = (*o).min(s);
            }
        }
    }
}

#[inline(always)]
pub(super) fn ink_bleed(img: &mut RgbImage, p: &InkBleed, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut spread = Scratch::copy_of(img);
    min_filter(&mut spread, w, h, p.radius as usize);
    let k = gaussian_kernel(p.softness as f32);
    convolve_separable(&mut spread, w, h, 3, &k, &k);
    // Spread ink darkens the paper by `strength` of its own darkness; the
    // fixed-point form vectorises where a lookup table would not.
    let s = (p.strength.clamp(0.0, 1.0) * 256.0).round() as u16;
    for (v, &sp) in img.iter_mut().zip(spread.iter()) {
        let ink = 255 - ((u16::from(255 - sp) * s + 128) >> 8) as u8;
        *v = (*v).min(ink);
    }
}

/// A faint mirrored ghost of the text printed on the reverse side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct BleedThrough {
    /// Vertical offset of the reverse side in pixels.
    pub offset_y: i32,
    /// Blur of the ghost (Gaussian sigma in pixels).
    pub blur: f64,
    /// Opacity of the ghost (0..1).
    pub opacity: f64,
}

impl BleedThrough {
    pub fn sample(rng: &mut ChaCha8Rng, h: u32) -> Self {
        let shift = (f64::from(h) * 0.15).max(1.0);
        Self {
            offset_y: uniform(rng, -shift, shift) as i32,
            blur: uniform(rng, 0.8, 2.5),
            opacity: uniform(rng, 0.1, 0.3),
        }
    }
}

#[inline(always)]
pub(super) fn bleed_through(img: &mut RgbImage, p: &BleedThrough, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    // The reverse side is this page mirrored and shifted, so its lines fall
    // between and across ours rather than exactly on top of them.
    let mut ghost = Scratch::zeroed(w * h);
    for y in 0..h {
        let sy = (y as i64 + i64::from(p.offset_y)).rem_euclid(h as i64) as usize;
        let src = &img.as_raw()[sy * w * 3..(sy + 1) * w * 3];
        for x in 0..w {
            let m = w - 1 - x;
            ghost[y * w + x] = 255 - luma(&src[m * 3..m * 3 + 3]);
        }
    }
    let k = gaussian_kernel(p.blur as f32);
    convolve_separable(&mut ghost, w, h, 1, &k, &k);
    // Multiplier per ghost darkness, in 1/256 steps, spread to every byte
    // so the final pass is a plain vectorisable zip.
    let alpha = p.opacity.clamp(0.0, 1.0) as f32 / 255.0;
    let lut: Vec<u16> = (0..256)
        .map(|g| ((1.0 - alpha * g as f32) * 256.0).round() as u16)
        .collect();
    let mut gain = vec![0u16; w];
    let mut gain3 = vec![0u16; w * 3];
    for (row, ghost_row) in img.chunks_exact_mut(w * 3).zip(ghost.chunks_exact(w)) {
        for (g, &v) in gain.iter_mut().zip(ghost_row) {
            *g = lut[usize::from(v)];
        }
        expand3(&gain, &mut gain3);
        scale_bytes(row, &gain3);
    }
}

/// Low or faded ink: strokes lighten towards the paper, unevenly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FadedInk {
    /// Mean fraction of ink lost (0..1).
    pub fade: f64,
    /// Relative spatial variation of the fade.
    pub variation: f64,
    /// Size of the variation blobs in pixels.
    pub patch: f64,
}

impl FadedInk {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            fade: uniform(rng, 0.25, 0.65),
            variation: uniform(rng, 0.0, 0.4),
            patch: uniform(rng, 15.0, 90.0),
        }
    }
}

#[inline(always)]
pub(super) fn faded_ink(img: &mut RgbImage, p: &FadedInk, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut field = Field::new(rng, w, h, p.patch as f32);
    let (fade, variation) = (p.fade as f32, p.variation as f32);
    let mut var = vec![0f32; w];
    let mut frac = vec![0u16; w];
    let mut frac3 = vec![0u16; w * 3];
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        field.row(y, &mut var);
        for (f, m) in frac.iter_mut().zip(&var) {
            *f = sat_u16((fade * (1.0 + variation * m)).clamp(0.0, 0.95) * 256.0 + 0.5);
        }
        expand3(&frac, &mut frac3);
        lighten_bytes(row, &frac3);
    }
}

/// Small random gaps that break strokes (worn type, dry pen, poor toner).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct BrokenStrokes {
    /// Approximate fraction of the ink area removed.
    pub density: f64,
    /// Size of a gap in pixels.
    pub gap_size: f64,
}

impl BrokenStrokes {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            density: uniform(rng, 0.08, 0.3),
            gap_size: uniform(rng, 1.2, 3.5),
        }
    }
}

#[inline(always)]
pub(super) fn broken_strokes(img: &mut RgbImage, p: &BrokenStrokes, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut field = Field::new(rng, w, h, p.gap_size as f32);
    // Interpolated value noise is not uniformly distributed, so the
    // threshold for the requested area fraction is taken from a sample.
    let mut sample: Vec<f32> = (0..4096)
        .map(|i| field.at((i * 7919) % w, (i * 104_729) % h))
        .collect();
    sample.sort_by(f32::total_cmp);
    let q = ((1.0 - p.density.clamp(0.0, 1.0)) * (sample.len() - 1) as f64) as usize;
    let threshold = sample[q];
    let mut noise = vec![0f32; w];
    let mut frac = vec![0u16; w];
    let mut frac3 = vec![0u16; w * 3];
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        field.row(y, &mut noise);
        for (f, n) in frac.iter_mut().zip(&noise) {
            *f = sat_u16(smoothstep(threshold - 0.04, threshold + 0.04, *n) * 256.0 + 0.5);
        }
        expand3(&frac, &mut frac3);
        lighten_bytes(row, &frac3);
    }
}

impl Scaled for InkBleed {
    fn scaled(self, s: f64) -> Self {
        Self {
            radius: scale_px(self.radius, s),
            softness: self.softness * s,
            ..self
        }
    }
}

impl Scaled for BleedThrough {
    /// The offset is sampled as a share of the page height already.
    fn scaled(self, s: f64) -> Self {
        Self {
            blur: self.blur * s,
            ..self
        }
    }
}

impl Scaled for FadedInk {
    fn scaled(self, s: f64) -> Self {
        Self {
            patch: self.patch * s,
            ..self
        }
    }
}

impl Scaled for BrokenStrokes {
    fn scaled(self, s: f64) -> Self {
        Self {
            gap_size: self.gap_size * s,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    fn dark(img: &RgbImage) -> usize {
        count(img, |p| p[0] < 128)
    }

    #[test]
    fn ink_bleed_grows_ink_softly() {
        let orig = text_like(120, 80);
        let mut img = orig.clone();
        ink_bleed(
            &mut img,
            &InkBleed {
                radius: 1,
                softness: 0.8,
                strength: 0.9,
            },
            &mut rng(0),
        );
        assert!(
            dark(&img) > dark(&orig) * 5 / 4,
            "{} vs {}",
            dark(&img),
            dark(&orig)
        );
        // Never lightens, and grey edge pixels appear (soft, not binary).
        assert!(img.as_raw().iter().zip(orig.as_raw()).all(|(a, b)| a <= b));
        assert!(count(&img, |p| p[0] > 40 && p[0] < 215) > 200);
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255], "far from ink");
    }

    #[test]
    fn bleed_through_adds_a_faint_mirrored_ghost() {
        // Ink only in the left quarter; its mirror lands in the right quarter.
        let img0 = RgbImage::from_fn(120, 60, |x, y| {
            if x < 30 && y % 6 < 3 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let mut img = img0.clone();
        bleed_through(
            &mut img,
            &BleedThrough {
                offset_y: 0,
                blur: 1.0,
                opacity: 0.25,
            },
            &mut rng(0),
        );
        let right: Vec<u8> = (90..120)
            .flat_map(|x| (0..60).map(move |y| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y).0[0])
            .collect();
        let min = *right.iter().min().unwrap_or(&255);
        assert!(min < 240, "ghost visible: {min}");
        assert!(min > 150, "ghost faint: {min}");
        assert_eq!(img.get_pixel(60, 30).0[0], 255, "nothing in the middle");
        assert_eq!(img.get_pixel(5, 1).0[0], 0, "front ink stays black");
    }

    #[test]
    fn faded_ink_lightens_dark_pixels() {
        let orig = text_like(100, 60);
        let mut img = orig.clone();
        faded_ink(
            &mut img,
            &FadedInk {
                fade: 0.5,
                variation: 0.2,
                patch: 20.0,
            },
            &mut rng(1),
        );
        let ink: Vec<u8> = img
            .pixels()
            .zip(orig.pixels())
            .filter(|(_, o)| o.0[0] == 0)
            .map(|(p, _)| p.0[0])
            .collect();
        let mean = ink.iter().map(|&v| f64::from(v)).sum::<f64>() / ink.len() as f64;
        assert!((mean - 127.0).abs() < 25.0, "ink mean {mean}");
        assert!(ink.iter().any(|&v| v != ink[0]), "fade varies in space");
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
    }

    #[test]
    fn broken_strokes_remove_some_ink() {
        let orig = flat(200, 200, 0);
        let mut img = orig.clone();
        broken_strokes(
            &mut img,
            &BrokenStrokes {
                density: 0.2,
                gap_size: 2.0,
            },
            &mut rng(2),
        );
        let removed = 1.0 - dark(&img) as f64 / 40_000.0;
        assert!(removed > 0.08 && removed < 0.35, "removed {removed}");
        let mut white = flat(50, 50, 255);
        broken_strokes(
            &mut white,
            &BrokenStrokes {
                density: 0.2,
                gap_size: 2.0,
            },
            &mut rng(2),
        );
        assert!(white.as_raw().iter().all(|&v| v == 255), "paper untouched");
        let mut other = orig.clone();
        broken_strokes(
            &mut other,
            &BrokenStrokes {
                density: 0.2,
                gap_size: 2.0,
            },
            &mut rng(3),
        );
        assert_ne!(img, other);
    }
}
