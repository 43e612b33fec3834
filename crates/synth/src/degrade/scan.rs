//! Reproduction artefacts: JPEG compression, scanner streaks, halftoning
//! and photocopying.

use super::{Scaled, scale_px};
use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{FastRng, Scratch, clamp_f, fx, luma, normal_table, random_bytes, uniform};

/// JPEG compression: an encode and decode's lossy steps ([`super::jpeg`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Jpeg {
    /// Encoder quality, 1..=100.
    pub quality: u8,
}

impl Jpeg {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            quality: rng.random_range(15..=80),
        }
    }
}

#[inline(always)]
pub(super) fn jpeg(img: &mut RgbImage, p: &Jpeg, _rng: &mut ChaCha8Rng) {
    super::jpeg::round_trip_image(img, p.quality.clamp(1, 100));
}

/// Streaks from dust on the glass or a faulty sensor element.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ScannerLines {
    /// Streaks run top to bottom (the usual sheet-feeder case) when true.
    pub vertical: bool,
    /// The individual streaks.
    pub streaks: Vec<Streak>,
    /// Relative per-line gain noise of the sensor (0..1).
    pub gain_noise: f64,
}

/// One streak across the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Streak {
    /// Centre position in pixels across the streak direction.
    pub position: f64,
    /// Half-width in pixels.
    pub width: f64,
    /// Negative darkens (dust), positive lightens (dead highlight).
    pub intensity: f64,
}

impl ScannerLines {
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        let vertical = rng.random_bool(0.8);
        let across = f64::from(if vertical { w } else { h });
        let n = rng.random_range(1..=6);
        let streaks = (0..n)
            .map(|_| Streak {
                position: uniform(rng, 0.0, across),
                width: uniform(rng, 0.5, 3.0),
                intensity: if rng.random_bool(0.75) {
                    uniform(rng, -0.5, -0.12)
                } else {
                    uniform(rng, 0.1, 0.35)
                },
            })
            .collect();
        Self {
            vertical,
            streaks,
            gain_noise: uniform(rng, 0.0, 0.02),
        }
    }
}

#[inline(always)]
pub(super) fn scanner_lines(img: &mut RgbImage, p: &ScannerLines, rng: &mut ChaCha8Rng) {
    let w = img.width() as usize;
    let across = if p.vertical { w } else { img.height() as usize };
    let z = normal_table(65536.0);
    let mut fast = FastRng::new(rng);
    // Each line's change f as an affine map v -> (v * a + b) >> 8: darkening
    // (f < 0) scales towards black, lightening moves towards white.
    let affine: Vec<(u32, u32)> = (0..across)
        .map(|i| {
            let streaks: f32 = p
                .streaks
                .iter()
                .map(|s| {
                    s.intensity as f32
                        * (-((i as f32 - s.position as f32) / s.width.max(0.3) as f32).powi(2))
                            .exp()
                })
                .sum();
            let noise = z[(fast.next_u64() & 0xFFF) as usize] as f32 / 65536.0;
            let f = (streaks + p.gain_noise as f32 * noise).clamp(-1.0, 1.0);
            if f < 0.0 {
                (((1.0 + f) * 256.0).round() as u32, 128)
            } else {
                (
                    ((1.0 - f) * 256.0).round() as u32,
                    (255.0 * f * 256.0).round() as u32 + 128,
                )
            }
        })
        .collect();
    let map = |v: &mut u8, (a, b): (u32, u32)| *v = ((u32::from(*v) * a + b) >> 8).min(255) as u8;
    if p.vertical {
        // The same map for every row: expand it to bytes once.
        let per_byte: Vec<(u32, u32)> = affine.iter().flat_map(|&ab| [ab; 3]).collect();
        for row in img.chunks_exact_mut(w * 3) {
            for (v, &ab) in row.iter_mut().zip(&per_byte) {
                map(v, ab);
            }
        }
    } else {
        for (row, &ab) in img.chunks_exact_mut(w * 3).zip(&affine) {
            for v in row {
                map(v, ab);
            }
        }
    }
}

/// Binary reproduction by a halftone screen or dithering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Halftone {
    /// `"bayer"` ordered dither, `"dots"` rotated clustered-dot screen, or
    /// `"diffusion"` Floyd-Steinberg error diffusion.
    pub mode: String,
    /// Screen period in pixels (dots mode).
    pub cell: f64,
    /// Screen angle in degrees (dots mode).
    pub angle_deg: f64,
}

impl Halftone {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let mode = ["bayer", "dots", "diffusion"][rng.random_range(0..3)].to_owned();
        Self {
            mode,
            cell: uniform(rng, 3.0, 7.0),
            angle_deg: uniform(rng, 15.0, 75.0),
        }
    }
}

const BAYER4: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

#[inline(always)]
pub(super) fn halftone(img: &mut RgbImage, p: &Halftone, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut grey = Scratch::zeroed(w * h);
    for (g, px) in grey.iter_mut().zip(img.chunks_exact(3)) {
        *g = luma(px);
    }
    let mut out = Scratch::zeroed(w * h);
    match p.mode.as_str() {
        "diffusion" => {
            let mut err = vec![0f32; (w + 2) * 2];
            for y in 0..h {
                let (cur, next) = err.split_at_mut(w + 2);
                for x in 0..w {
                    let v = f32::from(grey[y * w + x]) + cur[x + 1];
                    let o = if v >= 128.0 { 255.0 } else { 0.0 };
                    out[y * w + x] = o as u8;
                    let e = v - o;
                    cur[x + 2] += e * 7.0 / 16.0;
                    next[x] += e * 3.0 / 16.0;
                    next[x + 1] += e * 5.0 / 16.0;
                    next[x + 2] += e / 16.0;
                }
                cur.copy_from_slice(next);
                next.fill(0.0);
            }
        }
        "dots" => {
            let (s, c) = (p.angle_deg as f32).to_radians().sin_cos();
            let period = p.cell.max(2.0) as f32;
            for y in 0..h {
                for x in 0..w {
                    let u = (fx(x) * c + fx(y) * s) / period * std::f32::consts::TAU;
                    let v = (-fx(x) * s + fx(y) * c) / period * std::f32::consts::TAU;
                    // Classic AM screen: threshold grows away from dot centres.
                    let t = (2.0 + u.cos() + v.cos()) * 0.25 * 255.0;
                    out[y * w + x] = if f32::from(grey[y * w + x]) > t {
                        255
                    } else {
                        0
                    };
                }
            }
        }
        _ => {
            for y in 0..h {
                for x in 0..w {
                    let t = (u32::from(BAYER4[y % 4][x % 4]) * 16 + 8) as u8;
                    out[y * w + x] = if grey[y * w + x] > t { 255 } else { 0 };
                }
            }
        }
    }
    for (px, &o) in img.chunks_exact_mut(3).zip(out.iter()) {
        px.fill(o);
    }
}

/// Photocopier look: crushed tones, toner specks, rough edges, dark borders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Photocopy {
    /// Tone exponent; larger darkens mid-tones more.
    pub darken: f64,
    /// Grey level above which everything prints as white.
    pub white_point: u8,
    /// Toner specks per pixel.
    pub toner: f64,
    /// Chance that an ink pixel spills onto a neighbour.
    pub edge_noise: f64,
    /// Width of the dark band left by the copier lid, pixels (0 for none).
    pub border: u32,
    /// Convert to grey as most copiers do.
    pub grey: bool,
}

impl Photocopy {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            darken: uniform(rng, 1.3, 2.2),
            white_point: rng.random_range(215..=240),
            toner: uniform(rng, 0.0003, 0.003),
            edge_noise: uniform(rng, 0.05, 0.35),
            border: if rng.random_bool(0.5) {
                rng.random_range(3..=15)
            } else {
                0
            },
            grey: rng.random_bool(0.7),
        }
    }
}

#[inline(always)]
pub(super) fn photocopy(img: &mut RgbImage, p: &Photocopy, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let white = f32::from(p.white_point.max(1));
    let lut: Vec<u8> = (0..256)
        .map(|v| clamp_f(((v as f32 / white).min(1.0)).powf(p.darken as f32) * 255.0))
        .collect();
    let buf: &mut [u8] = img;
    for px in buf.chunks_exact_mut(3) {
        if p.grey {
            px.fill(luma(px));
        }
        for v in px {
            *v = lut[usize::from(*v)];
        }
    }
    // Rough edges: ink pixels spill onto a random neighbour.
    let spill = (p.edge_noise.clamp(0.0, 1.0) * 255.0) as u8;
    let src = Scratch::copy_of(buf);
    let mut bytes = Vec::new();
    for y in 0..h {
        random_bytes(rng, &mut bytes, w * 2);
        for x in 0..w {
            let i = (y * w + x) * 3;
            if src[i] >= 96 || bytes[x * 2] >= spill {
                continue;
            }
            let dir = bytes[x * 2 + 1] % 8;
            let (dx, dy) = [
                (-1, -1),
                (0, -1),
                (1, -1),
                (-1, 0),
                (1, 0),
                (-1, 1),
                (0, 1),
                (1, 1),
            ][usize::from(dir)];
            let (nx, ny) = (x as isize + dx, y as isize + dy);
            if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                let j = (ny as usize * w + nx as usize) * 3;
                for c in 0..3 {
                    buf[j + c] = buf[j + c].min(src[i + c].saturating_add(30));
                }
            }
        }
    }
    // Toner specks: small dark dots anywhere on the page.
    let specks = (p.toner * (w * h) as f64).round() as usize;
    for _ in 0..specks {
        let (x, y) = (rng.random_range(0..w), rng.random_range(0..h));
        let v: u8 = rng.random_range(0..90);
        let big = rng.random_bool(0.3);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)]
            .iter()
            .take(if big { 4 } else { 1 })
        {
            let (xx, yy) = (x + dx, y + dy);
            if xx < w && yy < h {
                let j = (yy * w + xx) * 3;
                for c in 0..3 {
                    buf[j + c] = buf[j + c].min(v);
                }
            }
        }
    }
    // The lid's shadow along the left and top edges.
    let border = p.border as f32;
    if border > 0.0 {
        for y in 0..h {
            for x in 0..w {
                let d = (x.min(y)) as f32;
                if d >= border {
                    continue;
                }
                let f = 0.15 + 0.85 * d / border;
                let j = (y * w + x) * 3;
                for c in 0..3 {
                    buf[j + c] = clamp_f(f32::from(buf[j + c]) * f);
                }
            }
        }
    }
}

impl Scaled for Jpeg {}

impl Scaled for ScannerLines {
    fn scaled(self, s: f64) -> Self {
        Self {
            streaks: self
                .streaks
                .into_iter()
                .map(|k| Streak {
                    width: k.width * s,
                    ..k
                })
                .collect(),
            ..self
        }
    }
}

impl Scaled for Halftone {
    fn scaled(self, s: f64) -> Self {
        Self {
            cell: self.cell * s,
            ..self
        }
    }
}

impl Scaled for Photocopy {
    fn scaled(self, s: f64) -> Self {
        Self {
            border: if self.border == 0 {
                0
            } else {
                scale_px(self.border, s)
            },
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    #[test]
    fn jpeg_changes_pixels_but_stays_close() {
        let orig = text_like(96, 64);
        let mut low = orig.clone();
        jpeg(&mut low, &Jpeg { quality: 20 }, &mut rng(0));
        let mut high = orig.clone();
        jpeg(&mut high, &Jpeg { quality: 90 }, &mut rng(0));
        let mad = |img: &RgbImage| {
            img.as_raw()
                .iter()
                .zip(orig.as_raw())
                .map(|(a, b)| f64::from(a.abs_diff(*b)))
                .sum::<f64>()
                / orig.as_raw().len() as f64
        };
        assert_eq!(low.dimensions(), orig.dimensions());
        assert_ne!(low, orig);
        assert!(mad(&low) < 25.0, "close: {}", mad(&low));
        assert!(mad(&high) < mad(&low), "quality matters");
    }

    #[test]
    fn scanner_lines_streak_whole_columns() {
        let mut img = flat(100, 80, 220);
        let p = ScannerLines {
            vertical: true,
            streaks: vec![Streak {
                position: 30.0,
                width: 1.5,
                intensity: -0.4,
            }],
            gain_noise: 0.0,
        };
        scanner_lines(&mut img, &p, &mut rng(0));
        for y in [0, 40, 79] {
            assert!(img.get_pixel(30, y).0[0] < 140);
            assert_eq!(img.get_pixel(60, y).0[0], 220);
        }
        let mut noisy = flat(100, 80, 220);
        scanner_lines(
            &mut noisy,
            &ScannerLines {
                gain_noise: 0.02,
                ..p.clone()
            },
            &mut rng(1),
        );
        let cols: std::collections::HashSet<u8> =
            (50..100).map(|x| noisy.get_pixel(x, 10).0[0]).collect();
        assert!(cols.len() > 3, "per-column gain varies");
    }

    #[test]
    fn halftone_is_binary_and_keeps_tone() {
        for mode in ["bayer", "dots", "diffusion"] {
            let mut img = RgbImage::from_fn(128, 64, |x, _| image::Rgb([(x * 2) as u8; 3]));
            let before = mean(&img);
            let p = Halftone {
                mode: mode.into(),
                cell: 4.0,
                angle_deg: 45.0,
            };
            halftone(&mut img, &p, &mut rng(0));
            assert!(img.as_raw().iter().all(|&v| v == 0 || v == 255), "{mode}");
            assert!(
                (mean(&img) - before).abs() < 15.0,
                "{mode}: {} vs {before}",
                mean(&img)
            );
        }
    }

    #[test]
    fn photocopy_darkens_and_adds_specks() {
        let orig = text_like(120, 120);
        let mut img = RgbImage::from_fn(120, 120, |x, y| {
            let p = orig.get_pixel(x, y).0;
            if p[0] == 0 {
                image::Rgb([90, 90, 90])
            } else {
                image::Rgb([235, 235, 235])
            }
        });
        let before = img.clone();
        let p = Photocopy {
            darken: 1.8,
            white_point: 225,
            toner: 0.003,
            edge_noise: 0.3,
            border: 6,
            grey: true,
        };
        photocopy(&mut img, &p, &mut rng(1));
        let ink_after = img
            .pixels()
            .zip(before.pixels())
            .filter(|(_, b)| b.0[0] == 90)
            .map(|(a, _)| f64::from(a.0[0]));
        let ink_after: Vec<f64> = ink_after.collect();
        assert!(
            ink_after.iter().sum::<f64>() / (ink_after.len() as f64) < 60.0,
            "ink darker"
        );
        assert_eq!(
            img.get_pixel(60, 7).0,
            [255, 255, 255],
            "background bleached white"
        );
        assert!(img.get_pixel(0, 60).0[0] < 80, "lid border");
        let dark_before = count(&before, |p| p[0] < 128);
        assert!(
            count(&img, |p| p[0] < 128) > dark_before + 50,
            "specks and spills"
        );
    }
}
