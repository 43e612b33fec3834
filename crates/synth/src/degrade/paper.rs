//! The paper itself: aged texture, stains, coffee rings and watermark stamps.

use super::Scaled;
use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{Field, HashNoise, clamp_f, fx, sat_i32, smoothstep, uniform};

/// Aged paper: a colour tint, low-frequency mottling and fine grain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct PaperTexture {
    /// Per-channel multiplier of the paper colour.
    pub tint: [f64; 3],
    /// Standard deviation of the fine grain in levels.
    pub grain: f64,
    /// Relative amplitude of the mottling.
    pub mottle: f64,
    /// Size of mottling blobs in pixels.
    pub mottle_size: f64,
}

impl PaperTexture {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        // Old paper yellows: blue drops most, red least.
        let age = rng.random_range(0.0..0.12);
        let tint = [
            uniform(rng, 0.97, 1.0),
            crate::degrade::util::r3(1.0 - age * 0.45),
            crate::degrade::util::r3(1.0 - age),
        ];
        Self {
            tint,
            grain: uniform(rng, 2.0, 9.0),
            mottle: uniform(rng, 0.01, 0.06),
            mottle_size: uniform(rng, 12.0, 80.0),
        }
    }
}

#[inline(always)]
pub(super) fn paper_texture(img: &mut RgbImage, p: &PaperTexture, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut field = Field::new(rng, w, h, p.mottle_size as f32);
    // Everything below is 16.16 fixed point: one gain per pixel and channel,
    // gain = tint * shade + grain / 255. Grain lives in the paper, so like
    // the tint it scales with the pixel and vanishes on black ink.
    // Tint in 1/4096 and shade in 1/65536, so their product fits an i32;
    // the per-byte gains are u16 in 1/16384 steps (up to 4x) so the final
    // pass multiplies eight lanes at a time.
    let tint = p.tint.map(|t| (t * 4096.0) as i32);
    let mottle_amp = p.mottle as f32;
    // Grain in 1/16384, one draw per pixel by position (`HashNoise`).
    let grain = HashNoise::factor((p.grain / 255.0 * 16384.0) as f32);
    let noise = HashNoise::new(rng);
    let mut mottle = vec![0f32; w];
    let mut shade = vec![0i32; w];
    let mut grains = vec![0i32; w];
    let mut gains = vec![0u16; w * 3];
    // Sampled tints, mottle and grain keep every gain within about
    // [0.8, 1.2] x 16384, so the u16 cast never wraps; a clamp here would
    // compile to unpredictable branches.
    let gain = |t: i32, s: i32, n: i32| (((t * s) >> 14) + n) as u16;
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        field.row(y, &mut mottle);
        for (s, m) in shade.iter_mut().zip(&mottle) {
            *s = sat_i32((1.0 + mottle_amp * m) * 65536.0);
        }
        // Pixel indices wrap past 2^32, far beyond any page size allowed.
        let mut i = (y * w) as u32;
        for n in grains.iter_mut() {
            *n = noise.scaled(i, grain);
            i = i.wrapping_add(1);
        }
        for ((g, &s), &n) in gains.chunks_exact_mut(3).zip(&shade).zip(&grains) {
            for (gc, t) in g.iter_mut().zip(tint) {
                *gc = gain(t, s, n);
            }
        }
        for (v, &g) in row.iter_mut().zip(&gains) {
            // (v * 64) * g / 65536 is 16 v g: a high-half multiply, then
            // round off the 4 spare bits.
            let t = (u32::from(*v) * 64 * u32::from(g)) >> 16;
            *v = ((t + 8) >> 4).min(255) as u8;
        }
    }
}

/// Translucent blotches with irregular outlines and darker dried rims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Stains {
    /// The individual blotches.
    pub blots: Vec<Blot>,
}

/// One stain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Blot {
    pub cx: f64,
    pub cy: f64,
    pub rx: f64,
    pub ry: f64,
    /// Opacity of the stain body (0..1).
    pub strength: f64,
    /// Multiplicative colour of the stain, per channel in 0..1.
    pub color: [f64; 3],
}

impl Stains {
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        let (w, h) = (f64::from(w), f64::from(h));
        let size = w.min(h);
        let n = rng.random_range(1..=4);
        let blots = (0..n)
            .map(|_| {
                let r = uniform(rng, size * 0.04, size * 0.18).max(1.0);
                let brown = uniform(rng, 0.35, 0.75);
                Blot {
                    cx: uniform(rng, 0.0, w),
                    cy: uniform(rng, 0.0, h),
                    rx: r,
                    ry: crate::degrade::util::r3(r * rng.random_range(0.6..1.4)),
                    strength: uniform(rng, 0.15, 0.45),
                    color: [brown + 0.15, brown, crate::degrade::util::r3(brown * 0.6)]
                        .map(|c: f64| c.min(1.0)),
                }
            })
            .collect();
        Self { blots }
    }
}

#[inline(always)]
pub(super) fn stains(img: &mut RgbImage, p: &Stains, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let buf: &mut [u8] = img;
    for blot in &p.blots {
        let (rx, ry) = (blot.rx.max(1.0) as f32, blot.ry.max(1.0) as f32);
        let field = Field::new(rng, w, h, rx.min(ry) * 0.5);
        let x0 = (blot.cx as f32 - rx * 1.4).max(0.0) as usize;
        let x1 = ((blot.cx as f32 + rx * 1.4) as usize).min(w);
        let y0 = (blot.cy as f32 - ry * 1.4).max(0.0) as usize;
        let y1 = ((blot.cy as f32 + ry * 1.4) as usize).min(h);
        let color = blot.color.map(|c| c as f32);
        for y in y0..y1 {
            let dy = (fx(y) - blot.cy as f32) / ry;
            for x in x0..x1 {
                let dx = (fx(x) - blot.cx as f32) / rx;
                // Perturbing the radius with smooth noise makes the outline ragged.
                let rho = (dx * dx + dy * dy).sqrt() + 0.25 * field.at(x, y);
                if rho >= 1.05 {
                    continue;
                }
                let body = 1.0 - smoothstep(0.8, 1.0, rho);
                let rim = (-((rho - 0.93) / 0.05).powi(2)).exp();
                let a = (blot.strength as f32 * (0.7 * body + 0.6 * rim)).min(0.95);
                let i = (y * w + x) * 3;
                for c in 0..3 {
                    let v = f32::from(buf[i + c]);
                    buf[i + c] = clamp_f(v * (1.0 - a + a * color[c]));
                }
            }
        }
    }
}

/// A ring left by the wet base of a cup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct CoffeeRing {
    pub cx: f64,
    pub cy: f64,
    pub radius: f64,
    /// Width of the ring's dark edge in pixels.
    pub ring_width: f64,
    /// Opacity of the ring edge (0..1).
    pub darkness: f64,
    /// Opacity of the faint interior wash (0..1).
    pub fill: f64,
    /// Multiplicative colour of the coffee, per channel in 0..1.
    pub color: [f64; 3],
}

impl CoffeeRing {
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        let (w, h) = (f64::from(w), f64::from(h));
        let size = w.min(h);
        Self {
            cx: uniform(rng, w * 0.1, w * 0.9),
            cy: uniform(rng, h * 0.1, h * 0.9),
            radius: uniform(rng, size * 0.08, size * 0.22).max(2.0),
            ring_width: uniform(rng, 1.5, 6.0),
            darkness: uniform(rng, 0.25, 0.6),
            fill: uniform(rng, 0.0, 0.12),
            color: [
                uniform(rng, 0.55, 0.7),
                uniform(rng, 0.38, 0.5),
                uniform(rng, 0.2, 0.32),
            ],
        }
    }
}

#[inline(always)]
pub(super) fn coffee_ring(img: &mut RgbImage, p: &CoffeeRing, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let buf: &mut [u8] = img;
    let r = p.radius.max(1.0) as f32;
    let rw = p.ring_width.max(0.5) as f32;
    let wobble = Field::new(rng, w, h, r * 0.6);
    let fade = Field::new(rng, w, h, r * 0.4);
    let reach = r + rw * 4.0 + r * 0.05;
    let x0 = (p.cx as f32 - reach).max(0.0) as usize;
    let x1 = ((p.cx as f32 + reach) as usize).min(w);
    let y0 = (p.cy as f32 - reach).max(0.0) as usize;
    let y1 = ((p.cy as f32 + reach) as usize).min(h);
    let color = p.color.map(|c| c as f32);
    for y in y0..y1 {
        let dy = fx(y) - p.cy as f32;
        for x in x0..x1 {
            let dx = fx(x) - p.cx as f32;
            let d = (dx * dx + dy * dy).sqrt() + r * 0.05 * wobble.at(x, y);
            // Coffee dries darkest at the outer edge of the ring.
            let edge = (-((d - r) / rw).powi(2)).exp();
            let inner = if d < r { p.fill as f32 } else { 0.0 };
            let strength = 0.55 + 0.45 * fade.at(x, y);
            let a = ((p.darkness as f32 * edge + inner) * strength).clamp(0.0, 0.95);
            if a <= 0.002 {
                continue;
            }
            let i = (y * w + x) * 3;
            for c in 0..3 {
                let v = f32::from(buf[i + c]);
                buf[i + c] = clamp_f(v * (1.0 - a + a * color[c]));
            }
        }
    }
}

/// Words used for watermark stamps.
const STAMPS: &[&str] = &["DRAFT", "COPY", "CONFIDENTIAL", "SAMPLE", "VOID", "ARCHIVE"];

/// A large, semi-transparent diagonal stamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Watermark {
    pub text: String,
    /// Rotation in degrees (positive is counter-clockwise).
    pub angle_deg: f64,
    /// Opacity (0..1).
    pub opacity: f64,
    /// Stamp colour.
    pub color: [u8; 3],
    /// Text length as a fraction of the page diagonal (letters are capped
    /// at about a third of the page's short side in height).
    pub span: f64,
}

impl Watermark {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let colors = [
            [120, 120, 120],
            [200, 40, 40],
            [40, 70, 180],
            [150, 150, 150],
            [40, 220, 70],
            [130, 30, 150],
        ];
        let sign = if rng.random_bool(0.8) { 1.0 } else { -1.0 };
        Self {
            text: STAMPS[rng.random_range(0..STAMPS.len())].to_owned(),
            angle_deg: sign * uniform(rng, 20.0, 60.0),
            opacity: uniform(rng, 0.1, 0.6),
            color: colors[rng.random_range(0..colors.len())],
            span: uniform(rng, 0.5, 0.85),
        }
    }
}

/// 5x7 capital letters for the stamp words, one string per row.
fn glyph(c: char) -> [&'static str; 7] {
    match c {
        'A' => [
            ".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
        'C' => [
            ".###.", "#...#", "#....", "#....", "#....", "#...#", ".###.",
        ],
        'D' => [
            "####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####.",
        ],
        'E' => [
            "#####", "#....", "#....", "####.", "#....", "#....", "#####",
        ],
        'F' => [
            "#####", "#....", "#....", "####.", "#....", "#....", "#....",
        ],
        'H' => [
            "#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
        'I' => [
            ".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        'L' => [
            "#....", "#....", "#....", "#....", "#....", "#....", "#####",
        ],
        'M' => [
            "#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#",
        ],
        'N' => [
            "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#",
        ],
        'O' => [
            ".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
        'P' => [
            "####.", "#...#", "#...#", "####.", "#....", "#....", "#....",
        ],
        'R' => [
            "####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#",
        ],
        'S' => [
            ".####", "#....", "#....", ".###.", "....#", "....#", "####.",
        ],
        'T' => [
            "#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..",
        ],
        'V' => [
            "#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
        'Y' => [
            "#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#..",
        ],
        _ => ["....."; 7],
    }
}

#[inline(always)]
pub(super) fn watermark(img: &mut RgbImage, p: &Watermark, _rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let buf: &mut [u8] = img;
    // Rasterise the word into a cell bitmap with one empty cell of border.
    let chars: Vec<char> = p.text.chars().collect();
    let (bw, bh) = (chars.len() * 6 + 1, 9);
    let mut bitmap = vec![0f32; bw * bh];
    for (k, &c) in chars.iter().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for (col, b) in bits.bytes().enumerate() {
                if b == b'#' {
                    bitmap[(row + 1) * bw + 1 + k * 6 + col] = 1.0;
                }
            }
        }
    }
    let diag = ((w * w + h * h) as f32).sqrt();
    // Short words would otherwise grow letters taller than the page is wide.
    let cell = (p.span as f32 * diag / bw as f32)
        .min(w.min(h) as f32 * 0.05)
        .max(0.5);
    let (s, c) = (p.angle_deg as f32).to_radians().sin_cos();
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    let opacity = p.opacity.clamp(0.0, 1.0) as f32;
    let color = p.color.map(f32::from);
    // Columns of a row where a linear coordinate `a + k x` lies in
    // `[0, limit)`, widened by a pixel so rounding never drops one; the
    // exact test stays in the loop below.
    let span = |a: f32, k: f32, limit: f32| -> (f32, f32) {
        if k.abs() < 1e-9 {
            return if (0.0..limit).contains(&a) {
                (0.0, w as f32)
            } else {
                (0.0, -1.0)
            };
        }
        let (e0, e1) = (-a / k, (limit - a) / k);
        (e0.min(e1) - 1.0, e0.max(e1) + 1.0)
    };
    for y in 0..h {
        let dy = fx(y) - cy;
        // u and v are linear in x along a row: only the stamp's own
        // columns need the per-pixel work.
        let u0 = (-cx * c - dy * s) / cell + bw as f32 * 0.5 - 0.5;
        let v0 = (-cx * s + dy * c) / cell + bh as f32 * 0.5 - 0.5;
        let (ua, ub) = span(u0, c / cell, (bw - 1) as f32);
        let (va, vb) = span(v0, s / cell, (bh - 1) as f32);
        let (lo, hi) = (ua.max(va).max(0.0), ub.min(vb).min(w as f32));
        if lo >= hi {
            continue;
        }
        for x in lo as usize..(hi.ceil() as usize).min(w) {
            let dx = fx(x) - cx;
            // Rotate the pixel back into the stamp's frame (image y points down).
            let u = (dx * c - dy * s) / cell + bw as f32 * 0.5 - 0.5;
            let v = (dx * s + dy * c) / cell + bh as f32 * 0.5 - 0.5;
            if u < 0.0 || v < 0.0 || u >= (bw - 1) as f32 || v >= (bh - 1) as f32 {
                continue;
            }
            let (iu, iv) = (u as usize, v as usize);
            let (fu, fv) = (u - iu as f32, v - iv as f32);
            let at = |a: usize, b: usize| bitmap[b * bw + a];
            let top = at(iu, iv) + (at(iu + 1, iv) - at(iu, iv)) * fu;
            let bot = at(iu, iv + 1) + (at(iu + 1, iv + 1) - at(iu, iv + 1)) * fu;
            // Sharpen the bilinear ramp so edges are soft but not blurry.
            let cover = smoothstep(0.3, 0.7, top + (bot - top) * fv);
            if cover <= 0.0 {
                continue;
            }
            let a = opacity * cover;
            let i = (y * w + x) * 3;
            for ch in 0..3 {
                let px = f32::from(buf[i + ch]);
                // Multiply blend: ink printed over the page, never lighter.
                buf[i + ch] = clamp_f(px * (1.0 - a + a * color[ch] / 255.0));
            }
        }
    }
}

impl Scaled for PaperTexture {
    fn scaled(self, s: f64) -> Self {
        Self {
            mottle_size: self.mottle_size * s,
            ..self
        }
    }
}

// Stain blots and watermarks are sampled from the page's own size.
impl Scaled for Stains {}
impl Scaled for Watermark {}

impl Scaled for CoffeeRing {
    fn scaled(self, s: f64) -> Self {
        Self {
            ring_width: self.ring_width * s,
            ..self
        }
    }
}

/// Stains with texture: liquid soaked into the fibres, so the body is
/// mottled and grainy rather than a flat wash, with one or more tide lines
/// where the liquid dried in steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct TexturedStains {
    /// The individual stains.
    pub blots: Vec<TexturedBlot>,
}

/// One textured stain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct TexturedBlot {
    pub cx: f64,
    pub cy: f64,
    pub rx: f64,
    pub ry: f64,
    /// Opacity of the stain body (0..1).
    pub strength: f64,
    /// Multiplicative colour, per channel in 0..1.
    pub color: [f64; 3],
    /// Size of the fibre mottle in pixels.
    pub grain: f64,
    /// How much the mottle modulates the body (0: flat, 1: patchy).
    pub texture: f64,
    /// Tide lines inside the outline (1..=3).
    pub tide_lines: u32,
}

impl TexturedStains {
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        let (w, h) = (f64::from(w), f64::from(h));
        let size = w.min(h);
        let n = rng.random_range(1..=3);
        let blots = (0..n)
            .map(|_| {
                let r = uniform(rng, size * 0.05, size * 0.22).max(2.0);
                // Tea and coffee browns, a grey water mark, or diluted blue ink.
                let color = match rng.random_range(0..4) {
                    0 | 1 => {
                        let b = uniform(rng, 0.35, 0.7);
                        [(b + 0.2).min(1.0), b, crate::degrade::util::r3(b * 0.55)]
                    }
                    2 => {
                        let g = uniform(rng, 0.55, 0.8);
                        [g, g, crate::degrade::util::r3(g * 0.95)]
                    }
                    _ => [
                        uniform(rng, 0.45, 0.7),
                        uniform(rng, 0.55, 0.8),
                        uniform(rng, 0.85, 1.0),
                    ],
                };
                TexturedBlot {
                    cx: uniform(rng, 0.0, w),
                    cy: uniform(rng, 0.0, h),
                    rx: r,
                    ry: crate::degrade::util::r3(r * rng.random_range(0.6..1.5)),
                    strength: uniform(rng, 0.2, 0.6),
                    color,
                    grain: uniform(rng, 1.5, 5.0),
                    texture: uniform(rng, 0.35, 0.9),
                    tide_lines: rng.random_range(1..=3),
                }
            })
            .collect();
        Self { blots }
    }
}

impl Scaled for TexturedStains {
    /// Outlines are sampled from the page size; the fibre grain is in pixels.
    fn scaled(self, s: f64) -> Self {
        Self {
            blots: self
                .blots
                .into_iter()
                .map(|b| TexturedBlot {
                    grain: b.grain * s,
                    ..b
                })
                .collect(),
        }
    }
}

#[inline(always)]
pub(super) fn textured_stains(img: &mut RgbImage, p: &TexturedStains, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let buf: &mut [u8] = img;
    for blot in &p.blots {
        let (rx, ry) = (blot.rx.max(1.0) as f32, blot.ry.max(1.0) as f32);
        let (cx, cy) = (blot.cx as f32, blot.cy as f32);
        let x0 = (cx - rx * 1.4).max(0.0) as usize;
        let x1 = ((cx + rx * 1.4).max(0.0) as usize).min(w);
        let y0 = (cy - ry * 1.4).max(0.0) as usize;
        let y1 = ((cy + ry * 1.4).max(0.0) as usize).min(h);
        if x0 >= x1 || y0 >= y1 {
            continue;
        }
        // Fields cover only the stain's box: a ragged outline, a coarse
        // mottle and a fine fibre grain.
        let (bw, bh) = (x1 - x0, y1 - y0);
        let outline = Field::new(rng, bw, bh, rx.min(ry) * 0.45);
        let mottle = Field::new(rng, bw, bh, blot.grain as f32 * 3.0);
        let fibre = Field::new(rng, bw, bh, blot.grain as f32);
        let color = blot.color.map(|c| c as f32);
        let tides: Vec<f32> = (0..blot.tide_lines.max(1))
            .map(|k| 0.95 - 0.14 * k as f32)
            .collect();
        let texture = blot.texture as f32;
        for y in y0..y1 {
            let dy = (fx(y) - cy) / ry;
            for x in x0..x1 {
                let dx = (fx(x) - cx) / rx;
                let (lx, ly) = (x - x0, y - y0);
                let rho = (dx * dx + dy * dy).sqrt() + 0.3 * outline.at(lx, ly);
                if rho >= 1.05 {
                    continue;
                }
                let body = 1.0 - smoothstep(0.75, 1.0, rho);
                // Mottle in [0, 1]: soaked patches and dry patches.
                let m = 0.5 + 0.35 * mottle.at(lx, ly) + 0.25 * fibre.at(lx, ly);
                let patchy = (1.0 - texture) + texture * m.clamp(0.0, 1.0) * 1.6;
                let tide: f32 = tides
                    .iter()
                    .enumerate()
                    .map(|(k, &t)| {
                        let width = 0.035 + 0.01 * k as f32;
                        (-((rho - t) / width).powi(2)).exp() / (1.0 + k as f32)
                    })
                    .sum();
                let a =
                    (blot.strength as f32 * (0.6 * body * patchy + 0.7 * tide)).clamp(0.0, 0.95);
                let i = (y * w + x) * 3;
                for c in 0..3 {
                    let v = f32::from(buf[i + c]);
                    buf[i + c] = clamp_f(v * (1.0 - a + a * color[c]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    #[test]
    fn textured_stains_darken_a_patchy_area_with_tide_lines() {
        let (w, h) = (200u32, 200u32);
        let p = TexturedStains {
            blots: vec![TexturedBlot {
                cx: 100.0,
                cy: 100.0,
                rx: 60.0,
                ry: 60.0,
                strength: 0.5,
                color: [0.6, 0.45, 0.25],
                grain: 3.0,
                texture: 0.9,
                tide_lines: 2,
            }],
        };
        let mut img = flat(w, h, 240);
        textured_stains(&mut img, &p, &mut rng(3));
        // Far corners are untouched, the centre is stained and tinted brown.
        assert_eq!(img.get_pixel(2, 2).0, [240, 240, 240]);
        assert_eq!(img.get_pixel(197, 197).0, [240, 240, 240]);
        let inside: Vec<[u8; 3]> = (80..120)
            .flat_map(|y| (80..120).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y).0)
            .collect();
        let mean =
            |c: usize| inside.iter().map(|p| f64::from(p[c])).sum::<f64>() / inside.len() as f64;
        assert!(
            mean(0) < 236.0 && mean(2) < mean(0) - 5.0,
            "{} {}",
            mean(0),
            mean(2)
        );
        // Texture: the stained body varies far more than a flat wash would.
        let g: Vec<f64> = inside.iter().map(|p| f64::from(p[1])).collect();
        let m = g.iter().sum::<f64>() / g.len() as f64;
        let sd = (g.iter().map(|v| (v - m).powi(2)).sum::<f64>() / g.len() as f64).sqrt();
        assert!(sd > 3.0, "stain body std {sd:.2}");
        // A flat (texture 0) stain of the same shape is much smoother inside.
        let mut flat_img = flat(w, h, 240);
        let mut q = p.clone();
        q.blots[0].texture = 0.0;
        textured_stains(&mut flat_img, &q, &mut rng(3));
        let g2: Vec<f64> = (80..120)
            .flat_map(|y| (80..120).map(move |x| (x, y)))
            .map(|(x, y)| f64::from(flat_img.get_pixel(x, y).0[1]))
            .collect();
        let m2 = g2.iter().sum::<f64>() / g2.len() as f64;
        let sd2 = (g2.iter().map(|v| (v - m2).powi(2)).sum::<f64>() / g2.len() as f64).sqrt();
        assert!(sd > 2.0 * sd2, "textured {sd:.2} vs flat {sd2:.2}");
    }

    #[test]
    fn paper_texture_tints_and_grains_the_paper() {
        let mut img = flat(120, 120, 255);
        let p = PaperTexture {
            tint: [1.0, 0.96, 0.88],
            grain: 6.0,
            mottle: 0.03,
            mottle_size: 30.0,
        };
        paper_texture(&mut img, &p, &mut rng(1));
        let mean_c = |c: usize| img.pixels().map(|p| f64::from(p.0[c])).sum::<f64>() / 14_400.0;
        assert!(
            mean_c(0) > mean_c(1) + 5.0 && mean_c(1) > mean_c(2) + 10.0,
            "yellowed"
        );
        assert!(std(&img) > 3.0);
        // Ink stays dark: grain and tint scale with the paper, not the ink.
        let mut black = flat(30, 30, 0);
        paper_texture(&mut black, &p, &mut rng(1));
        assert!(black.as_raw().iter().all(|&v| v == 0));
        let mut other = flat(120, 120, 255);
        paper_texture(&mut other, &p, &mut rng(2));
        assert_ne!(img, other);
    }

    #[test]
    fn stains_darken_and_tint_locally() {
        let mut img = flat(200, 200, 250);
        let blot = Blot {
            cx: 60.0,
            cy: 60.0,
            rx: 30.0,
            ry: 25.0,
            strength: 0.4,
            color: [0.8, 0.6, 0.35],
        };
        stains(&mut img, &Stains { blots: vec![blot] }, &mut rng(3));
        let centre = img.get_pixel(60, 60).0;
        assert!(
            centre[2] < 220 && centre[0] > centre[2] + 20,
            "brown centre {centre:?}"
        );
        assert_eq!(
            img.get_pixel(180, 180).0,
            [250, 250, 250],
            "far pixels untouched"
        );
        let touched = count(&img, |p| p[2] < 245);
        assert!(touched > 1000 && touched < 6000, "{touched}");
    }

    #[test]
    fn coffee_ring_is_darkest_on_the_ring() {
        let mut img = flat(200, 200, 250);
        let p = CoffeeRing {
            cx: 100.0,
            cy: 100.0,
            radius: 50.0,
            ring_width: 3.0,
            darkness: 0.5,
            fill: 0.05,
            color: [0.6, 0.45, 0.3],
        };
        coffee_ring(&mut img, &p, &mut rng(4));
        let ring_mean = (0..360)
            .step_by(10)
            .map(|deg| {
                let t = (deg as f32).to_radians();
                let (x, y) = (100.0 + 50.0 * t.cos(), 100.0 + 50.0 * t.sin());
                f64::from(img.get_pixel(x as u32, y as u32).0[2])
            })
            .sum::<f64>()
            / 36.0;
        let inside = f64::from(img.get_pixel(100, 100).0[2]);
        assert!(
            ring_mean < inside - 15.0,
            "ring {ring_mean} inside {inside}"
        );
        assert!(inside < 250.0, "interior wash");
        assert_eq!(img.get_pixel(5, 5).0, [250, 250, 250]);
    }

    #[test]
    fn watermark_is_translucent_and_coloured() {
        let mut img = flat(300, 200, 255);
        let p = Watermark {
            text: "DRAFT".into(),
            angle_deg: 30.0,
            opacity: 0.25,
            color: [200, 40, 40],
            span: 0.7,
        };
        watermark(&mut img, &p, &mut rng(0));
        let marked = count(&img, |p| p[1] < 250);
        assert!(marked > 3000, "{marked} pixels stamped");
        assert!(
            img.pixels().all(|p| p.0[1] >= 190 && p.0[0] >= p.0[1]),
            "red, translucent"
        );
        assert!(
            count(&img, |p| u16::from(p[0]) > u16::from(p[1]) + 20) > 1000,
            "reddish stamp"
        );
        assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]);
        let mut other = flat(300, 200, 255);
        watermark(
            &mut other,
            &Watermark {
                text: "VOID".into(),
                ..p
            },
            &mut rng(0),
        );
        assert_ne!(img, other);
    }
}
