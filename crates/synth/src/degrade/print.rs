//! Printing and copying defects that change what the ink and paper look
//! like: ink printed in another colour, coloured stock, low-ink lines,
//! hollow strokes, dithered reproduction, a dirty copier drum, a bad
//! photocopy and a dim, noisy exposure.
//!
//! Several families need to know how much ink covers a pixel. They run
//! early in a pipeline, on a page that is still close to clean, and read
//! coverage from luma between the page's paper and ink levels
//! ([`InkCoverage`]).

use super::{Scaled, scale_px};
use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{
    FastRng, Field, HashNoise, Scratch, add_noise, clamp_f, for_each_pixel_index, luma, sat_u16,
    smoothstep, uniform,
};

/// Paper and ink levels of a page, read from its luma histogram.
struct InkCoverage {
    paper: f32,
    ink: f32,
    /// Mean colour of the pixels that are (nearly) solid ink.
    ink_rgb: [f32; 3],
}

impl InkCoverage {
    #[inline(always)]
    fn measure(img: &RgbImage) -> Self {
        // One pass: the luma histogram and, per luma level, the summed
        // colour of its pixels (exact integers), for the mean ink colour.
        let mut hist = [0u32; 256];
        let mut sums = [[0u64; 3]; 256];
        for px in img.as_raw().chunks_exact(3) {
            let l = usize::from(luma(px));
            hist[l] += 1;
            for (s, &v) in sums[l].iter_mut().zip(px) {
                *s += u64::from(v);
            }
        }
        let n = (img.width() * img.height()).max(1);
        // Paper: the most common level in the brighter half (the page's
        // background); ink: the 1st percentile, at least 40 levels darker.
        let paper = (128..256).max_by_key(|&v| hist[v]).unwrap_or(255) as f32;
        let mut seen = 0u32;
        let mut ink = 0.0;
        for (v, &c) in hist.iter().enumerate() {
            seen += c;
            if seen * 100 >= n {
                ink = v as f32;
                break;
            }
        }
        let ink = ink.min(paper - 40.0).max(0.0);
        // Mean colour of the levels at most 8 above the ink level.
        let solid = (ink + 8.0) as usize + 1;
        let (mut sum, mut count) = ([0u64; 3], 0u64);
        for (level, &c) in sums.iter().zip(&hist).take(solid.min(256)) {
            for (s, &v) in sum.iter_mut().zip(level) {
                *s += v;
            }
            count += u64::from(c);
        }
        let ink_rgb = if count > 0 {
            sum.map(|s| (s as f64 / count as f64) as f32)
        } else {
            [ink; 3]
        };
        Self {
            paper,
            ink,
            ink_rgb,
        }
    }

    /// Coverage per luma level (what [`Self::of`] gives a pixel of that luma).
    fn table(&self) -> [f32; 256] {
        std::array::from_fn(|l| self.of(&[l as u8; 3]))
    }

    /// Ink coverage of a pixel in `[0, 1]`.
    #[inline(always)]
    fn of(&self, px: &[u8]) -> f32 {
        ((self.paper - f32::from(luma(px))) / (self.paper - self.ink).max(1.0)).clamp(0.0, 1.0)
    }
}

/// A rectangle `[x0, y0, x1, y1)` in pixels.
type Rect = [u32; 4];

/// `count` random rectangles, each `heights` (a range of fractions of the
/// page height) high and `widths` (fractions of its width) wide.
fn sample_rects(
    rng: &mut ChaCha8Rng,
    (w, h): (u32, u32),
    count: u32,
    heights: (f64, f64),
    widths: (f64, f64),
) -> Vec<Rect> {
    (0..count)
        .map(|_| {
            let rh = ((f64::from(h) * uniform(rng, heights.0, heights.1)) as u32).max(1);
            let rw = ((f64::from(w) * uniform(rng, widths.0, widths.1)) as u32).max(1);
            let y0 = rng.random_range(0..h.saturating_sub(rh).max(1));
            let x0 = rng.random_range(0..w.saturating_sub(rw).max(1));
            [x0, y0, (x0 + rw).min(w), (y0 + rh).min(h)]
        })
        .collect()
}

/// Random horizontal bands of text: `count` rectangles each spanning a few
/// lines and part of (or all of) the width.
fn sample_bands(rng: &mut ChaCha8Rng, w: u32, h: u32, count: u32) -> Vec<Rect> {
    sample_rects(rng, (w, h), count, (0.02, 0.2), (0.15, 1.0))
}

/// Short runs of characters scattered over the page: `count` rectangles
/// about a line high and a word or a few words wide, the way a copier or a
/// printer with a failing cartridge swaps the ink of a few letters here and
/// there rather than of whole blocks.
fn sample_runs(rng: &mut ChaCha8Rng, w: u32, h: u32, count: u32) -> Vec<Rect> {
    sample_rects(rng, (w, h), count, (0.012, 0.035), (0.03, 0.2))
}

/// Parts of the text printed in another ink colour (a colour cartridge, a
/// highlighter-like pass, or an ink swap), often light enough to hide it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct InkColourSwap {
    /// The new ink colour.
    pub color: [u8; 3],
    /// Rectangles whose ink is recoloured; the whole page when empty.
    pub regions: Vec<Rect>,
}

/// Swapped ink colours: saturated and pale ones both occur on real copies.
const SWAP_COLOURS: &[[u8; 3]] = &[
    [150, 220, 235],
    [170, 235, 225],
    [235, 160, 190],
    [220, 120, 160],
    [200, 40, 40],
    [30, 60, 190],
    [120, 170, 230],
    [40, 140, 60],
    [150, 210, 150],
    [160, 90, 170],
    [200, 200, 200],
    [150, 150, 150],
    [225, 200, 120],
];

impl InkColourSwap {
    /// The whole page (a fifth of the time), a few bands of lines (three
    /// tenths), or many short runs of characters (half).
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        let color = SWAP_COLOURS[rng.random_range(0..SWAP_COLOURS.len())];
        let regions = match rng.random_range(0..10) {
            0..2 => Vec::new(),
            2..5 => {
                let count = rng.random_range(1..=8);
                sample_bands(rng, w, h, count)
            }
            _ => {
                let count = rng.random_range(8..=40);
                sample_runs(rng, w, h, count)
            }
        };
        Self { color, regions }
    }
}

/// The columns of row `y` inside any of `regions` (all of them when there
/// are none), as sorted, disjoint `[x0, x1)` spans clipped to `w`.
#[inline(always)]
fn row_spans(regions: &[Rect], y: u32, w: u32, out: &mut Vec<(usize, usize)>) {
    out.clear();
    if regions.is_empty() {
        out.push((0, w as usize));
        return;
    }
    // The row's intervals, sorted, then merged in place (no allocation per
    // row once `out` has grown).
    out.extend(
        regions
            .iter()
            .filter(|r| y >= r[1] && y < r[3] && r[0] < r[2].min(w))
            .map(|r| (r[0] as usize, r[2].min(w) as usize)),
    );
    out.sort_unstable();
    let mut kept = 0;
    for i in 0..out.len() {
        let (x0, x1) = out[i];
        if kept > 0 && x0 <= out[kept - 1].1 {
            out[kept - 1].1 = out[kept - 1].1.max(x1);
        } else {
            out[kept] = (x0, x1);
            kept += 1;
        }
    }
    out.truncate(kept);
}

#[inline(always)]
pub(super) fn ink_colour_swap(img: &mut RgbImage, p: &InkColourSwap, _rng: &mut ChaCha8Rng) {
    let cov = InkCoverage::measure(img);
    // px = paper (1 - a) + ink a  becomes  paper (1 - a) + colour a: each
    // channel moves by a (colour - ink), where a depends only on the luma.
    let coverage = cov.table();
    let shift: [[f32; 3]; 256] = std::array::from_fn(|l| {
        std::array::from_fn(|c| coverage[l] * (f32::from(p.color[c]) - cov.ink_rgb[c]))
    });
    let w = img.width();
    let mut spans = Vec::new();
    for (y, line) in img.chunks_exact_mut(w as usize * 3).enumerate() {
        row_spans(&p.regions, y as u32, w, &mut spans);
        for &(x0, x1) in &spans {
            for px in line[x0 * 3..x1 * 3].chunks_exact_mut(3) {
                let l = usize::from(luma(px));
                if coverage[l] <= 0.0 {
                    continue;
                }
                for (v, d) in px.iter_mut().zip(shift[l]) {
                    *v = clamp_f(f32::from(*v) + d);
                }
            }
        }
    }
}

/// Coloured or tinted paper stock, with a faint mottle; ink printed on it
/// darkens with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ColouredPaper {
    /// Paper colour at full strength.
    pub color: [u8; 3],
    /// How far the page moves to that colour (0..1).
    pub strength: f64,
    /// Relative brightness variation of the mottle.
    pub mottle: f64,
}

const PAPER_COLOURS: &[[u8; 3]] = &[
    [250, 240, 185],
    [255, 250, 215],
    [215, 245, 205],
    [230, 250, 225],
    [245, 205, 225],
    [250, 225, 235],
    [205, 225, 250],
    [225, 240, 250],
    [225, 200, 160],
    [200, 170, 200],
    [210, 210, 210],
    [175, 175, 175],
];

impl ColouredPaper {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            color: PAPER_COLOURS[rng.random_range(0..PAPER_COLOURS.len())],
            strength: uniform(rng, 0.5, 1.0),
            mottle: uniform(rng, 0.0, 0.08),
        }
    }
}

#[inline(always)]
pub(super) fn coloured_paper(img: &mut RgbImage, p: &ColouredPaper, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let s = p.strength.clamp(0.0, 1.0) as f32;
    // Multiplying by the paper colour tints the paper fully and dark ink
    // barely, as ink on coloured stock looks.
    let gain = p.color.map(|c| 1.0 - s * (1.0 - f32::from(c) / 255.0));
    let mut field = Field::new(rng, w, h, (w.min(h) as f32 / 6.0).max(2.0));
    let mut row = vec![0f32; w];
    let m = p.mottle as f32;
    // Per byte: the channel's gain (fixed) and the pixel's mottle (per
    // row), so the multiply is a plain zip that vectorises.
    let gains: Vec<f32> = gain.iter().copied().cycle().take(w * 3).collect();
    let mut mottle = vec![0f32; w * 3];
    for (y, line) in img.chunks_exact_mut(w * 3).enumerate() {
        field.row(y, &mut row);
        for (k, &f) in mottle.chunks_exact_mut(3).zip(&row) {
            k.fill(1.0 + m * f);
        }
        for ((v, &g), &k) in line.iter_mut().zip(&gains).zip(&mottle) {
            *v = clamp_f(f32::from(*v) * g * k);
        }
    }
}

/// Thin horizontal lines where the print head or toner ran low, so the ink
/// crossing them is faint or missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct LowInkLines {
    /// Period of the lines in pixels (0: lines at random rows).
    pub period: u32,
    /// Line thickness in pixels.
    pub thickness: u32,
    /// How much of the ink is lost on a line (0..1).
    pub loss: f64,
    /// Rows of the random lines (when `period` is 0).
    pub rows: Vec<u32>,
}

impl LowInkLines {
    pub fn sample(rng: &mut ChaCha8Rng, h: u32) -> Self {
        let thickness = rng.random_range(1..=3);
        let loss = uniform(rng, 0.5, 1.0);
        if rng.random_bool(0.5) {
            Self {
                period: rng.random_range(thickness + 3..=thickness + 24),
                thickness,
                loss,
                rows: Vec::new(),
            }
        } else {
            let count = rng.random_range(3..=30);
            let rows = (0..count).map(|_| rng.random_range(0..h.max(1))).collect();
            Self {
                period: 0,
                thickness,
                loss,
                rows,
            }
        }
    }
}

#[inline(always)]
pub(super) fn low_ink_lines(img: &mut RgbImage, p: &LowInkLines, _rng: &mut ChaCha8Rng) {
    let cov = InkCoverage::measure(img);
    let (w, h) = (img.width() as usize, img.height());
    let hit = |y: u32| {
        if p.period > 0 {
            y % p.period < p.thickness
        } else {
            p.rows.iter().any(|&r| y >= r && y < r + p.thickness)
        }
    };
    let loss = p.loss.clamp(0.0, 1.0) as f32;
    for y in (0..h).filter(|&y| hit(y)) {
        let line = &mut img.as_mut()[y as usize * w * 3..(y as usize + 1) * w * 3];
        for px in line.chunks_exact_mut(3) {
            let a = cov.of(px);
            // Remove `loss` of the ink: move towards the paper level.
            let lift = loss * a * (cov.paper - cov.ink);
            for v in px.iter_mut() {
                *v = clamp_f(f32::from(*v) + lift);
            }
        }
    }
}

/// Hollow strokes: the inside of thick strokes prints light, leaving the
/// outline (worn letterpress, a starved inkjet, outlined fonts on a fax).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct HollowStrokes {
    /// Erosion radius in pixels: strokes thinner than about twice this stay solid.
    pub radius: u32,
    /// How much of the interior ink is lost (0..1).
    pub strength: f64,
}

impl HollowStrokes {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            radius: 1,
            strength: uniform(rng, 0.5, 0.95),
        }
    }
}

#[inline(always)]
pub(super) fn hollow_strokes(img: &mut RgbImage, p: &HollowStrokes, _rng: &mut ChaCha8Rng) {
    let cov = InkCoverage::measure(img);
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return;
    }
    // Coverage per pixel (a table over luma), then its erosion (minimum
    // over the (2r+1)² window, clipped at the borders): high only where
    // every neighbour is ink, i.e. inside a stroke. The window is a product
    // of two intervals, so the minimum is taken along rows, then along
    // columns: 2(2r+1) comparisons a pixel instead of (2r+1)².
    let coverage: Vec<u8> = (0..=255u8)
        .map(|l| (cov.of(&[l, l, l]) * 255.0) as u8)
        .collect();
    let mut a = Scratch::zeroed(w * h);
    for (o, px) in a.iter_mut().zip(img.as_raw().chunks_exact(3)) {
        *o = coverage[usize::from(luma(px))];
    }
    let r = p.radius as usize;
    let mut across = Scratch::zeroed(w * h);
    for (src, dst) in a.chunks_exact(w).zip(across.chunks_exact_mut(w)) {
        // One shifted slice per window offset: plain element-wise minima.
        dst.copy_from_slice(src);
        for d in 1..=r.min(w - 1) {
            for (o, &v) in dst[d..].iter_mut().zip(&src[..w - d]) {
                *o = (*o).min(v);
            }
            for (o, &v) in dst[..w - d].iter_mut().zip(&src[d..]) {
                *o = (*o).min(v);
            }
        }
    }
    let mut eroded = Scratch::zeroed(w * h);
    for (y, dst) in eroded.chunks_exact_mut(w).enumerate() {
        dst.fill(255);
        for src in across[y.saturating_sub(r) * w..((y + r).min(h - 1) + 1) * w].chunks_exact(w) {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = (*d).min(v);
            }
        }
    }
    // The lift depends only on the eroded coverage: a table of output
    // levels indexed by (coverage, input level).
    let s = p.strength.clamp(0.0, 1.0) as f32;
    let span = cov.paper - cov.ink;
    let mut table = vec![0u8; 256 * 256];
    for (e, row) in table.chunks_exact_mut(256).enumerate() {
        let lift = s * e as f32 / 255.0 * span;
        for (v, o) in row.iter_mut().enumerate() {
            *o = clamp_f(v as f32 + lift);
        }
    }
    for (px, &e) in img.as_mut().chunks_exact_mut(3).zip(eroded.iter()) {
        let row = &table[usize::from(e) * 256..][..256];
        for v in px.iter_mut() {
            *v = row[usize::from(*v)];
        }
    }
}

/// Colour reproduction with few levels per channel, dithered (ordered
/// Bayer matrix or Floyd-Steinberg error diffusion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Dithering {
    /// Output levels per channel.
    pub levels: u32,
    /// `true`: Floyd-Steinberg; `false`: ordered 4x4 Bayer.
    pub diffusion: bool,
    /// Shift of every input level before quantising, as a share of one
    /// level step (a device's darker or lighter rendering).
    pub bias: f64,
}

impl Dithering {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            levels: rng.random_range(2..=6),
            diffusion: rng.random_bool(0.5),
            bias: uniform(rng, -0.2, 0.2),
        }
    }
}

const BAYER4: [[f32; 4]; 4] = [
    [0.0, 8.0, 2.0, 10.0],
    [12.0, 4.0, 14.0, 6.0],
    [3.0, 11.0, 1.0, 9.0],
    [15.0, 7.0, 13.0, 5.0],
];

#[inline(always)]
pub(super) fn dithering(img: &mut RgbImage, p: &Dithering, _rng: &mut ChaCha8Rng) {
    let w = img.width() as usize;
    let steps = (p.levels.max(2) - 1) as f32;
    let q = 255.0 / steps;
    let bias = p.bias as f32;
    // Rounding after the clamp is the same as before it; `+ 0.5` and a
    // truncating cast round the non-negative value without a libm call.
    let quantise = |v: f32| f32::from(sat_u16((v / q + bias).clamp(0.0, steps) + 0.5)) * q;
    if p.diffusion {
        // Two rows of carried error, padded by one pixel each side: pixel
        // `x` lives at padded column `x + 1`.
        let mut cur = vec![0f32; (w + 2) * 3];
        let mut next = vec![0f32; (w + 2) * 3];
        for line in img.chunks_exact_mut(w * 3) {
            next.fill(0.0);
            // Error carried to the right neighbour, kept out of memory.
            let mut right = [0f32; 3];
            for (x, px) in line.chunks_exact_mut(3).enumerate() {
                let xp = (x + 1) * 3;
                for c in 0..3 {
                    let v = f32::from(px[c]) + (cur[xp + c] + right[c]);
                    let o = quantise(v);
                    px[c] = clamp_f(o);
                    let e = v - o;
                    right[c] = e * 7.0 / 16.0;
                    next[xp - 3 + c] += e * 3.0 / 16.0;
                    next[xp + c] += e * 5.0 / 16.0;
                    next[xp + 3 + c] += e / 16.0;
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
    } else {
        // The four rows of thresholds, one per byte, so each image row is
        // a plain zip that vectorises.
        let offsets: Vec<Vec<f32>> = BAYER4
            .iter()
            .map(|m| {
                (0..w * 3)
                    .map(|i| ((m[(i / 3) % 4] + 0.5) / 16.0 - 0.5) * q)
                    .collect()
            })
            .collect();
        for (y, line) in img.chunks_exact_mut(w * 3).enumerate() {
            for (v, &t) in line.iter_mut().zip(&offsets[y % 4]) {
                *v = clamp_f(quantise(f32::from(*v) + t));
            }
        }
    }
}

/// A dirty copier drum or roller: bands of dark specks and smears along
/// the paper's travel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct DirtyDrum {
    /// `true`: bands run top to bottom; `false`: left to right.
    pub vertical: bool,
    /// Band centres as a fraction of the page's width (or height).
    pub positions: Vec<f64>,
    /// Band widths in pixels.
    pub widths: Vec<u32>,
    /// Share of band pixels that get toner (0..1).
    pub density: f64,
    /// Darkness of a speck (0..1).
    pub darkness: f64,
}

impl DirtyDrum {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let n = rng.random_range(1..=8);
        Self {
            vertical: rng.random_bool(0.6),
            positions: (0..n).map(|_| uniform(rng, 0.0, 1.0)).collect(),
            widths: (0..n).map(|_| rng.random_range(2..=12)).collect(),
            density: uniform(rng, 0.1, 0.5),
            darkness: uniform(rng, 0.3, 0.9),
        }
    }
}

#[inline(always)]
pub(super) fn dirty_drum(img: &mut RgbImage, p: &DirtyDrum, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let across = if p.vertical { w } else { h };
    let along = if p.vertical { h } else { w };
    // The toner density varies along a band, so streaks come and go.
    let mut field = Field::new(rng, along, 1, (along as f32 / 8.0).max(2.0));
    let mut profile = vec![0f32; along];
    field.row(0, &mut profile);
    let mut fast = FastRng::new(rng);
    let keep = 1.0 - p.darkness.clamp(0.0, 1.0) as f32;
    for (&pos, &bw) in p.positions.iter().zip(&p.widths) {
        let centre = (pos * across as f64) as usize;
        let lo = centre.saturating_sub(bw as usize / 2);
        let hi = (lo + bw as usize).min(across);
        for (t, prof) in profile.iter().take(along).enumerate() {
            let local = (p.density as f32 * (1.0 + prof)).clamp(0.0, 1.0);
            for s in lo..hi {
                let r = (fast.next_u64() & 0xFFFF) as f32 / 65535.0;
                if r < local {
                    let (x, y) = if p.vertical { (s, t) } else { (t, s) };
                    let i = (y * w + x) * 3;
                    for v in &mut img.as_mut()[i..i + 3] {
                        *v = clamp_f(f32::from(*v) * keep);
                    }
                }
            }
        }
    }
}

/// A bad photocopy: large blotchy regions of dark grainy toner noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct BadPhotocopy {
    /// Size of the blotches in pixels.
    pub scale: f64,
    /// Field level above which toner appears (-1..1; lower covers more).
    pub threshold: f64,
    /// Darkness of the grain at full strength (0..1).
    pub darkness: f64,
    /// Share of pixels inside a blotch that get toner.
    pub density: f64,
}

impl BadPhotocopy {
    pub fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Self {
        Self {
            scale: uniform(rng, 0.05, 0.3) * f64::from(w.min(h)),
            threshold: uniform(rng, -0.1, 0.6),
            darkness: uniform(rng, 0.3, 0.8),
            density: uniform(rng, 0.2, 0.7),
        }
    }
}

#[inline(always)]
pub(super) fn bad_photocopy(img: &mut RgbImage, p: &BadPhotocopy, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut field = Field::new(rng, w, h, (p.scale as f32).max(2.0));
    let mut row = vec![0f32; w];
    let mut fast = FastRng::new(rng);
    let t = p.threshold as f32;
    let (dark, density) = (p.darkness as f32, p.density as f32);
    for (y, line) in img.chunks_exact_mut(w * 3).enumerate() {
        field.row(y, &mut row);
        for_each_pixel_index(line, &mut fast, |x, px, r| {
            let m = smoothstep(t, t + 0.3, row[x]);
            if m > 0.0 && (r as f32) < density * m * 4096.0 {
                let keep = 1.0 - dark * m;
                for v in px.iter_mut() {
                    *v = clamp_f(f32::from(*v) * keep);
                }
            }
        });
    }
}

/// A dim exposure: the page darkened and pushed up again by the camera,
/// with strong colour sensor noise. Stray light in the lens (veiling glare)
/// lifts the blacks too, so on a dim shot ink and paper can end up a few
/// tens of levels apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct LowLightNoise {
    /// Exposure gain (< 1 darkens).
    pub gain: f64,
    /// Noise standard deviation in levels.
    pub sigma: f64,
    /// Veiling glare: the share of the exposed paper level that black ink is
    /// lifted to (0: blacks stay black). Paper stays at `gain` x 255.
    #[serde(default)]
    pub flare: f64,
}

impl LowLightNoise {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let gain = uniform(rng, 0.45, 0.85);
        let sigma = uniform(rng, 6.0, 22.0);
        // Half the dim shots have glare, from mild to ink a few tens of
        // levels below the paper.
        let flare = if rng.random_bool(0.5) {
            uniform(rng, 0.2, 0.85)
        } else {
            0.0
        };
        Self { gain, sigma, flare }
    }
}

#[inline(always)]
pub(super) fn low_light_noise(img: &mut RgbImage, p: &LowLightNoise, rng: &mut ChaCha8Rng) {
    let g = p.gain as f32;
    let f = p.flare.clamp(0.0, 1.0) as f32;
    // v -> lift + v * slope: paper (255) maps to gain x 255 whatever the
    // glare, black to flare x gain x 255.
    let lift = f * g * 255.0;
    let slope = g * (1.0 - f);
    let lut: Vec<u8> = (0..=255u16)
        .map(|v| clamp_f(lift + f32::from(v) * slope))
        .collect();
    for v in img.as_mut().iter_mut() {
        *v = lut[usize::from(*v)];
    }
    add_noise(img.as_mut(), p.sigma as f32, HashNoise::new(rng));
}

// Regions, colours and levels do not depend on the resolution.
impl Scaled for InkColourSwap {}
impl Scaled for ColouredPaper {}
impl Scaled for Dithering {}
impl Scaled for LowLightNoise {}

impl Scaled for LowInkLines {
    fn scaled(self, s: f64) -> Self {
        Self {
            period: if self.period == 0 {
                0
            } else {
                scale_px(self.period, s)
            },
            thickness: scale_px(self.thickness, s),
            ..self
        }
    }
}

impl Scaled for HollowStrokes {
    fn scaled(self, s: f64) -> Self {
        Self {
            radius: scale_px(self.radius, s),
            ..self
        }
    }
}

impl Scaled for DirtyDrum {
    fn scaled(self, s: f64) -> Self {
        Self {
            widths: self.widths.iter().map(|&w| scale_px(w, s)).collect(),
            ..self
        }
    }
}

// Blotch sizes are sampled as a share of the page's short side.
impl Scaled for BadPhotocopy {}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    #[test]
    fn coverage_reads_paper_and_ink() {
        let img = text_like(60, 40);
        let cov = InkCoverage::measure(&img);
        assert!(
            cov.paper > 200.0 && cov.ink < 60.0,
            "{} {}",
            cov.paper,
            cov.ink
        );
        assert_eq!(cov.of(&[cov.paper as u8; 3]), 0.0);
        assert!(cov.of(&[0, 0, 0]) > 0.95);
    }

    #[test]
    fn ink_swap_recolours_ink_and_leaves_paper() {
        let img = text_like(80, 60);
        let mut out = img.clone();
        let p = InkColourSwap {
            color: [200, 40, 40],
            regions: Vec::new(),
        };
        ink_colour_swap(&mut out, &p, &mut rng(1));
        let mut recoloured = 0;
        for (a, b) in img.pixels().zip(out.pixels()) {
            if luma(&a.0) > 240 {
                assert_eq!(a, b, "paper stays");
            } else if luma(&a.0) < 30 {
                assert!(
                    b.0[0] > 150 && b.0[1] < 90,
                    "solid ink turns red: {:?}",
                    b.0
                );
                recoloured += 1;
            }
        }
        assert!(recoloured > 0);
        // A region limits the swap.
        let mut part = img.clone();
        let p = InkColourSwap {
            color: [200, 40, 40],
            regions: vec![[0, 0, 40, 60]],
        };
        ink_colour_swap(&mut part, &p, &mut rng(1));
        for (x, y, px) in part.enumerate_pixels() {
            if x >= 40 {
                assert_eq!(px, img.get_pixel(x, y));
            }
        }
    }

    #[test]
    fn ink_swaps_cover_the_page_bands_or_short_runs_of_characters() {
        let (w, h) = (640, 832);
        let (mut whole, mut bands, mut runs) = (0, 0, 0);
        for seed in 0..200 {
            let p = InkColourSwap::sample(&mut rng(seed), w, h);
            if p.regions.is_empty() {
                whole += 1;
                continue;
            }
            let short = |r: &Rect| {
                f64::from(r[3] - r[1]) <= 0.035 * f64::from(h)
                    && f64::from(r[2] - r[0]) <= 0.2 * f64::from(w)
            };
            for r in &p.regions {
                assert!(
                    r[0] < r[2] && r[2] <= w && r[1] < r[3] && r[3] <= h,
                    "{r:?}"
                );
            }
            if p.regions.len() >= 8 && p.regions.iter().all(short) {
                runs += 1;
            } else {
                assert!(p.regions.len() <= 8, "{:?}", p.regions);
                bands += 1;
            }
        }
        // A fifth, three tenths and half of 200 draws, with room for chance.
        assert!((20..=60).contains(&whole), "{whole}");
        assert!((35..=85).contains(&bands), "{bands}");
        assert!((75..=125).contains(&runs), "{runs}");
    }

    #[test]
    fn ink_swap_matches_the_direct_definition() {
        // Overlapping, nested, touching and partly off-page regions.
        let regions = vec![
            [5, 3, 30, 9],
            [20, 5, 50, 12],
            [8, 4, 12, 6],
            [50, 0, 70, 2],
            [55, 30, 90, 60],
        ];
        for (seed, regions) in [(1, regions), (2, Vec::new())] {
            let img = scrambled_text(64, 40, &mut rng(seed), 0.1);
            let p = InkColourSwap {
                color: [200, 40, 40],
                regions,
            };
            let mut fast = img.clone();
            ink_colour_swap(&mut fast, &p, &mut rng(0));
            // Pixel by pixel: inside any region, each channel moves by the
            // pixel's coverage times (new colour - mean ink colour).
            let cov = InkCoverage::measure(&img);
            let inside = |x: u32, y: u32| {
                p.regions.is_empty()
                    || p.regions
                        .iter()
                        .any(|r| x >= r[0] && x < r[2] && y >= r[1] && y < r[3])
            };
            let mut direct = img.clone();
            for (x, y, px) in direct.enumerate_pixels_mut() {
                let a = cov.of(&px.0);
                if inside(x, y) && a > 0.0 {
                    for c in 0..3 {
                        let shift = a * (f32::from(p.color[c]) - cov.ink_rgb[c]);
                        px.0[c] = clamp_f(f32::from(px.0[c]) + shift);
                    }
                }
            }
            assert_eq!(fast, direct, "seed {seed}");
            assert_ne!(fast, img, "seed {seed}");
        }
    }

    #[test]
    fn row_spans_merge_and_clip() {
        let mut spans = Vec::new();
        let regions = [[5, 0, 10, 4], [8, 2, 14, 6], [14, 3, 16, 5], [40, 0, 60, 9]];
        row_spans(&regions, 0, 50, &mut spans);
        assert_eq!(spans, vec![(5, 10), (40, 50)]);
        row_spans(&regions, 3, 50, &mut spans);
        assert_eq!(spans, vec![(5, 16), (40, 50)]);
        row_spans(&regions, 7, 50, &mut spans);
        assert_eq!(spans, vec![(40, 50)]);
        row_spans(&regions, 9, 50, &mut spans);
        assert!(spans.is_empty());
        row_spans(&[], 9, 50, &mut spans);
        assert_eq!(spans, vec![(0, 50)]);
    }

    #[test]
    fn coloured_paper_tints_paper_more_than_ink() {
        let img = text_like(60, 40);
        let mut out = img.clone();
        let p = ColouredPaper {
            color: [250, 240, 185],
            strength: 1.0,
            mottle: 0.0,
        };
        coloured_paper(&mut out, &p, &mut rng(2));
        let paper = out
            .pixels()
            .zip(img.pixels())
            .find(|(_, a)| luma(&a.0) > 250)
            .expect("paper")
            .0;
        assert!(paper.0[2] < 200 && paper.0[0] > 240, "{:?}", paper.0);
        for (a, b) in img.pixels().zip(out.pixels()) {
            if luma(&a.0) < 30 {
                assert!(b.0.iter().all(|&v| v < 30), "ink stays dark: {:?}", b.0);
            }
        }
    }

    #[test]
    fn low_ink_lines_lighten_ink_only_on_their_rows() {
        let img = text_like(60, 40);
        let mut out = img.clone();
        let p = LowInkLines {
            period: 4,
            thickness: 1,
            loss: 1.0,
            rows: Vec::new(),
        };
        low_ink_lines(&mut out, &p, &mut rng(3));
        let mut lifted = 0;
        for (x, y, px) in out.enumerate_pixels() {
            let before = img.get_pixel(x, y);
            if y % 4 != 0 {
                assert_eq!(px, before);
            } else if luma(&before.0) < 30 {
                assert!(luma(&px.0) > 200, "ink on a low-ink line disappears");
                lifted += 1;
            }
        }
        assert!(lifted > 0);
    }

    #[test]
    fn hollow_strokes_keep_edges_and_empty_thick_interiors() {
        // A 9-pixel-wide black bar: its centre lightens, its edge stays.
        let mut img = flat(30, 30, 255);
        for y in 5..25 {
            for x in 10..19 {
                img.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        let mut out = img.clone();
        hollow_strokes(
            &mut out,
            &HollowStrokes {
                radius: 1,
                strength: 0.9,
            },
            &mut rng(4),
        );
        assert!(out.get_pixel(14, 15).0[0] > 180, "interior is hollow");
        assert_eq!(out.get_pixel(10, 15).0, [0, 0, 0], "outline stays");
        assert_eq!(out.get_pixel(2, 2).0, [255, 255, 255], "paper stays");
    }

    /// The direct definition the separable version must reproduce byte
    /// for byte: coverage per pixel, minimum over the clipped window, lift.
    fn hollow_strokes_direct(img: &mut RgbImage, p: &HollowStrokes) {
        let cov = InkCoverage::measure(img);
        let (w, h) = (img.width() as usize, img.height() as usize);
        let a: Vec<u8> = img
            .as_raw()
            .chunks_exact(3)
            .map(|px| (cov.of(px) * 255.0) as u8)
            .collect();
        let r = p.radius as usize;
        let mut eroded = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut m = 255u8;
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        m = m.min(a[yy * w + xx]);
                    }
                }
                eroded[y * w + x] = m;
            }
        }
        let s = p.strength.clamp(0.0, 1.0) as f32;
        let span = cov.paper - cov.ink;
        for (px, &e) in img.as_mut().chunks_exact_mut(3).zip(eroded.iter()) {
            let lift = s * f32::from(e) / 255.0 * span;
            for v in px.iter_mut() {
                *v = clamp_f(f32::from(*v) + lift);
            }
        }
    }

    #[test]
    fn hollow_strokes_match_the_direct_definition() {
        for (seed, radius, (w, h)) in [
            (1, 1, (61, 47)),
            (2, 2, (40, 33)),
            (3, 3, (7, 5)),
            (4, 1, (1, 9)),
        ] {
            // A page with grey ink, anti-aliased edges and coloured pixels.
            let img = scrambled_text(w, h, &mut rng(seed), 0.1);
            let p = HollowStrokes {
                radius,
                strength: 0.8,
            };
            let mut fast = img.clone();
            hollow_strokes(&mut fast, &p, &mut rng(0));
            let mut direct = img.clone();
            hollow_strokes_direct(&mut direct, &p);
            assert_eq!(
                fast.as_raw(),
                direct.as_raw(),
                "seed {seed} radius {radius} {w}x{h}"
            );
        }
    }

    /// Dithering as first written: Floyd-Steinberg over a two-row error
    /// buffer, Bayer thresholds looked up per pixel, libm rounding.
    fn dithering_direct(img: &mut RgbImage, p: &Dithering) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let steps = (p.levels.max(2) - 1) as f32;
        let q = 255.0 / steps;
        let bias = p.bias as f32;
        let quantise = |v: f32| ((v / q + bias).round().clamp(0.0, steps)) * q;
        if !p.diffusion {
            for (x, y, px) in img.enumerate_pixels_mut() {
                let t = (BAYER4[y as usize % 4][x as usize % 4] + 0.5) / 16.0 - 0.5;
                for v in px.0.iter_mut() {
                    *v = clamp_f(quantise(f32::from(*v) + t * q));
                }
            }
            return;
        }
        let mut err = vec![0f32; (w + 2) * 2 * 3];
        let at = |r: usize, xp: usize, c: usize| (r * (w + 2) + xp) * 3 + c;
        for y in 0..h {
            let (cur, next) = (y % 2, (y + 1) % 2);
            for xp in 0..w + 2 {
                for c in 0..3 {
                    err[at(next, xp, c)] = 0.0;
                }
            }
            for x in 0..w {
                let (i, xp) = ((y * w + x) * 3, x + 1);
                for c in 0..3 {
                    let v = f32::from(img.as_raw()[i + c]) + err[at(cur, xp, c)];
                    let o = quantise(v);
                    img.as_mut()[i + c] = clamp_f(o);
                    let e = v - o;
                    err[at(cur, xp + 1, c)] += e * 7.0 / 16.0;
                    err[at(next, xp - 1, c)] += e * 3.0 / 16.0;
                    err[at(next, xp, c)] += e * 5.0 / 16.0;
                    err[at(next, xp + 1, c)] += e / 16.0;
                }
            }
        }
    }

    #[test]
    fn dithering_matches_the_direct_definition() {
        for seed in 0..8 {
            let mut r = rng(seed);
            let img = scrambled_text(45, 31, &mut r, 0.3);
            // Both modes, whatever the draw: even seeds diffuse, odd ones
            // use the Bayer matrix.
            let p = Dithering {
                diffusion: seed % 2 == 0,
                ..Dithering::sample(&mut r)
            };
            let mut fast = img.clone();
            dithering(&mut fast, &p, &mut rng(0));
            let mut direct = img.clone();
            dithering_direct(&mut direct, &p);
            assert_eq!(fast, direct, "seed {seed}: {p:?}");
        }
    }

    #[test]
    fn dithering_uses_only_its_levels() {
        let img = text_like(40, 30);
        for diffusion in [false, true] {
            let mut out = img.clone();
            dithering(
                &mut out,
                &Dithering {
                    levels: 3,
                    diffusion,
                    bias: 0.1,
                },
                &mut rng(5),
            );
            assert!(
                out.as_raw().iter().all(|&v| [0, 128, 255].contains(&v)),
                "levels 0, 127.5 and 255 only"
            );
        }
    }

    #[test]
    fn drum_bands_stay_in_their_columns() {
        let img = flat(50, 40, 255);
        let mut out = img.clone();
        let p = DirtyDrum {
            vertical: true,
            positions: vec![0.5],
            widths: vec![4],
            density: 0.5,
            darkness: 0.8,
        };
        dirty_drum(&mut out, &p, &mut rng(6));
        let mut dark = 0;
        for (x, _, px) in out.enumerate_pixels() {
            if !(23..27).contains(&x) {
                assert_eq!(px.0, [255; 3]);
            } else if px.0[0] < 255 {
                dark += 1;
            }
        }
        assert!(dark > 10, "{dark} specks");
    }

    #[test]
    fn low_light_darkens_and_adds_noise() {
        let img = flat(40, 40, 240);
        let mut out = img.clone();
        low_light_noise(
            &mut out,
            &LowLightNoise {
                gain: 0.5,
                sigma: 10.0,
                flare: 0.0,
            },
            &mut rng(7),
        );
        let m = mean(&out);
        assert!((m - 120.0).abs() < 3.0, "mean {m}");
        assert!(std(&out) > 7.0);
    }

    #[test]
    fn low_light_glare_lifts_black_ink_towards_the_paper() {
        // Left half black ink, right half white paper.
        let img = RgbImage::from_fn(40, 40, |x, _| image::Rgb([if x < 20 { 0 } else { 255 }; 3]));
        let mut out = img.clone();
        low_light_noise(
            &mut out,
            &LowLightNoise {
                gain: 0.6,
                sigma: 0.0,
                flare: 0.8,
            },
            &mut rng(7),
        );
        let ink = out.get_pixel(5, 5).0[0];
        let paper = out.get_pixel(35, 5).0[0];
        // Paper at 0.6 x 255 = 153, ink lifted to 0.8 x 153 = 122.
        assert!((i32::from(paper) - 153).abs() <= 1, "paper {paper}");
        assert!((i32::from(ink) - 122).abs() <= 1, "ink {ink}");
        // Without glare the ink stays black at the same exposure.
        let mut dark = img.clone();
        low_light_noise(
            &mut dark,
            &LowLightNoise {
                gain: 0.6,
                sigma: 0.0,
                flare: 0.0,
            },
            &mut rng(7),
        );
        assert_eq!(dark.get_pixel(5, 5).0[0], 0);
        // Manifests written before the field existed still read.
        let old: LowLightNoise =
            serde_json::from_str(r#"{"gain":0.5,"sigma":9.0}"#).expect("old manifest");
        assert_eq!(old.flare, 0.0);
    }

    #[test]
    fn bad_photocopy_darkens_some_paper() {
        let img = flat(120, 120, 255);
        let mut out = img.clone();
        let p = BadPhotocopy {
            scale: 20.0,
            threshold: -0.5,
            darkness: 0.8,
            density: 0.7,
        };
        bad_photocopy(&mut out, &p, &mut rng(8));
        let dark = count(&out, |p| p[0] < 200);
        assert!(dark > 100, "{dark}");
        assert!(dark < 120 * 120);
    }
}
