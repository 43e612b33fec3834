//! Synthetic images and statistics shared by the unit tests.
//!
//! Everything is generated in code so the tests need no fixtures and no
//! random-number crate; the generator is a fixed-seed LCG so runs repeat.

use image::{GrayImage, Luma};

/// A tiny linear congruential generator (Knuth's MMIX constants).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % u64::from(bound)) as u32
    }

    /// Roughly normal noise with standard deviation near `sigma`, as the sum
    /// of four uniforms (Irwin-Hall).
    pub fn noise(&mut self, sigma: f32) -> f32 {
        let sum: f32 = (0..4).map(|_| self.below(10_000) as f32 / 10_000.0).sum();
        // Sum of 4 uniforms has mean 2 and variance 1/3.
        (sum - 2.0) * sigma * 3f32.sqrt()
    }
}

/// A white page with lines of "text": dark bars of varied length separated
/// by word gaps, with a few taller marks per line like ascenders.
pub fn text_page(width: u32, height: u32) -> GrayImage {
    let mut img = GrayImage::from_pixel(width, height, Luma([255]));
    let mut rng = Lcg::new(7);
    let margin = width / 8;
    let line_height = 10;
    let line_pitch = 28;
    let mut y = height / 8;
    while y + line_height < height - height / 8 {
        let mut x = margin;
        let line_end = width - margin - rng.below(width / 4 + 1);
        while x < line_end {
            let word = 15 + rng.below(60);
            let x_end = (x + word).min(line_end);
            // A mark that pokes above the line every few words.
            let top = if rng.below(3) == 0 {
                y.saturating_sub(6)
            } else {
                y
            };
            for yy in top..y + line_height {
                for xx in x..x_end {
                    img.put_pixel(xx, yy, Luma([20]));
                }
            }
            x = x_end + 8 + rng.below(10);
        }
        y += line_pitch;
    }
    img
}

/// Mask of the pixels that are text in a clean page from [`text_page`].
pub fn is_ink(clean: &GrayImage, x: u32, y: u32) -> bool {
    clean.get_pixel(x, y)[0] < 128
}

/// Adds deterministic noise of standard deviation about `sigma`.
pub fn add_noise(img: &GrayImage, sigma: f32, seed: u64) -> GrayImage {
    let mut rng = Lcg::new(seed);
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p[0] = (f32::from(p[0]) + rng.noise(sigma))
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    out
}

pub fn mse(a: &GrayImage, b: &GrayImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
        .sum();
    sum / a.as_raw().len().max(1) as f64
}

/// Mean and standard deviation of the pixels selected by `keep`.
pub fn stats(img: &GrayImage, keep: impl Fn(u32, u32) -> bool) -> (f64, f64) {
    let mut n = 0.0;
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    for (x, y, p) in img.enumerate_pixels() {
        if keep(x, y) {
            let v = f64::from(p[0]);
            n += 1.0;
            sum += v;
            sum_sq += v * v;
        }
    }
    assert!(n > 0.0, "no pixels selected");
    let mean = sum / n;
    (mean, (sum_sq / n - mean * mean).max(0.0).sqrt())
}

/// Images of awkward sizes that every function must survive.
pub fn degenerate_images() -> Vec<GrayImage> {
    [
        (0, 0),
        (0, 5),
        (5, 0),
        (1, 1),
        (1, 7),
        (7, 1),
        (2, 2),
        (3, 40),
    ]
    .into_iter()
    .map(|(w, h)| GrayImage::from_fn(w, h, |x, y| Luma([((x * 37 + y * 91) % 256) as u8])))
    .collect()
}
