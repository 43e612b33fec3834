//! Shared pixel helpers: fast approximate normal noise, separable integer
//! convolution and smooth value-noise fields.

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

/// Standard deviation of the sum of four uniform bytes (Irwin-Hall, n = 4).
pub(super) const SUM4_STD: f32 = 147.80;
/// Fixed-point scale of convolution kernels: with weights summing to 256,
/// 255 * 256 + rounding still fits the `u16` accumulators, which process
/// twice as many lanes per vector instruction as `u32`.
const KERNEL_ONE: u16 = 1 << 8;

/// Rounds a sampled parameter so that recorded JSON stays readable.
pub(super) fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A uniform `f64` in `[lo, hi)`, rounded with [`r3`].
pub(super) fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    r3(rng.random_range(lo..hi))
}

/// A centred, roughly normal integer from four random bytes: the sum of
/// four uniforms is close enough to Gaussian for sensor noise and far
/// cheaper than exact sampling (std = [`SUM4_STD`]).
#[inline]
pub(super) fn sum4(b: &[u8]) -> i32 {
    i32::from(b[0]) + i32::from(b[1]) + i32::from(b[2]) + i32::from(b[3]) - 510
}

/// Fills `buf` (resized to `len`) with random bytes. Bulk pixel noise needs
/// megabytes per image, so the step's ChaCha8 stream only seeds a wyrand
/// generator, which is several times faster and statistically ample here.
pub(super) fn random_bytes(rng: &mut ChaCha8Rng, buf: &mut Vec<u8>, len: usize) {
    buf.resize(len, 0);
    let mut state = rng.next_u64();
    let mut next = || {
        state = state.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(state) * u128::from(state ^ 0xE703_7ED1_A0B4_28DB);
        (((t >> 64) as u64) ^ (t as u64)).to_le_bytes()
    };
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next());
    }
    let tail = chunks.into_remainder();
    let last = next();
    tail.copy_from_slice(&last[..tail.len()]);
}

#[inline]
pub(super) fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

#[inline]
pub(super) fn clamp_f(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Perceptual luma of an RGB pixel.
#[inline]
pub(super) fn luma(p: &[u8]) -> u8 {
    ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8
}

pub(super) fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A normalised Gaussian kernel in fixed point, radius `ceil(3 sigma)`.
pub(super) fn gaussian_kernel(sigma: f32) -> Vec<u16> {
    let sigma = sigma.max(0.05);
    let r = (sigma * 3.0).ceil() as i32;
    let raw: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = raw.iter().sum();
    let mut k: Vec<u16> = raw
        .iter()
        .map(|v| (v / total * f32::from(KERNEL_ONE)).round() as u16)
        .collect();
    // Put the rounding error in the centre tap so the kernel sums exactly to one.
    let sum: u16 = k.iter().sum();
    let mid = r as usize;
    k[mid] = (k[mid] + KERNEL_ONE).saturating_sub(sum);
    k
}

/// Convolves interleaved 8-bit data (`ch` channels) with a horizontal then a
/// vertical odd-length kernel, replicating edge pixels.
pub(super) fn convolve_separable(
    data: &mut [u8],
    w: usize,
    h: usize,
    ch: usize,
    kx: &[u16],
    ky: &[u16],
) {
    let stride = w * ch;
    let mut tmp = vec![0u8; data.len()];
    let rx = kx.len() / 2;
    let mut padded = vec![0u8; (w + 2 * rx) * ch];
    let mut acc = vec![0u16; stride];
    for y in 0..h {
        let row = &data[y * stride..(y + 1) * stride];
        pad_row(row, &mut padded, w, ch, rx);
        acc.fill(KERNEL_ONE / 2);
        for (j, &kj) in kx.iter().enumerate() {
            let src = &padded[j * ch..j * ch + stride];
            for (a, &s) in acc.iter_mut().zip(src) {
                *a += kj * u16::from(s);
            }
        }
        for (t, &a) in tmp[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *t = (a >> 8) as u8;
        }
    }
    let ry = ky.len() as isize / 2;
    for y in 0..h {
        acc.fill(KERNEL_ONE / 2);
        for (j, &kj) in ky.iter().enumerate() {
            let sy = (y as isize + j as isize - ry).clamp(0, h as isize - 1) as usize;
            for (a, &s) in acc.iter_mut().zip(&tmp[sy * stride..(sy + 1) * stride]) {
                *a += kj * u16::from(s);
            }
        }
        for (d, &a) in data[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *d = (a >> 8) as u8;
        }
    }
}

/// Copies `row` (`w` pixels of `ch` bytes) into `padded` with `r` replicated
/// edge pixels on each side; one bulk copy plus byte loops for the edges.
pub(super) fn pad_row(row: &[u8], padded: &mut [u8], w: usize, ch: usize, r: usize) {
    padded[r * ch..(r + w) * ch].copy_from_slice(&row[..w * ch]);
    for xp in 0..r {
        for c in 0..ch {
            padded[xp * ch + c] = row[c];
            padded[(r + w + xp) * ch + c] = row[(w - 1) * ch + c];
        }
    }
}

/// Smooth value noise in `[-1, 1]`: random values on a grid of `cell`
/// pixels, interpolated with smoothstep weights.
pub(super) struct Field {
    grid_w: usize,
    values: Vec<f32>,
    cell: f32,
    /// Per image column: grid column index and interpolation weight.
    columns: Vec<(usize, f32)>,
}

impl Field {
    pub fn new(rng: &mut ChaCha8Rng, w: usize, h: usize, cell: f32) -> Self {
        let cell = cell.max(0.5);
        let grid_w = (w as f32 / cell).ceil() as usize + 2;
        let grid_h = (h as f32 / cell).ceil() as usize + 2;
        // Fine fields (broken strokes) need hundreds of thousands of values,
        // so they come from the fast byte generator, 16 bits each.
        let mut bytes = Vec::new();
        random_bytes(rng, &mut bytes, grid_w * grid_h * 2);
        let values = bytes
            .chunks_exact(2)
            .map(|b| f32::from(u16::from_le_bytes([b[0], b[1]])) / 32767.5 - 1.0)
            .collect();
        let columns = (0..w)
            .map(|x| {
                let g = x as f32 / cell;
                (g as usize, smoothstep(0.0, 1.0, g.fract()))
            })
            .collect();
        Self {
            grid_w,
            values,
            cell,
            columns,
        }
    }

    /// Writes the field values of image row `y` into `out` (one per column).
    pub fn row(&self, y: usize, out: &mut [f32]) {
        let g = y as f32 / self.cell;
        let (j, ty) = (g as usize, smoothstep(0.0, 1.0, g.fract()));
        let top = &self.values[j * self.grid_w..(j + 1) * self.grid_w];
        let bottom = &self.values[(j + 1) * self.grid_w..(j + 2) * self.grid_w];
        for (o, &(i, tx)) in out.iter_mut().zip(&self.columns) {
            let a = top[i] + (bottom[i] - top[i]) * ty;
            let b = top[i + 1] + (bottom[i + 1] - top[i + 1]) * ty;
            *o = a + (b - a) * tx;
        }
    }

    /// The field value at one pixel.
    pub fn at(&self, x: usize, y: usize) -> f32 {
        let g = y as f32 / self.cell;
        let (j, ty) = (g as usize, smoothstep(0.0, 1.0, g.fract()));
        let (i, tx) = self.columns[x.min(self.columns.len() - 1)];
        let v = |jj: usize, ii: usize| self.values[jj * self.grid_w + ii];
        let a = v(j, i) + (v(j + 1, i) - v(j, i)) * ty;
        let b = v(j, i + 1) + (v(j + 1, i + 1) - v(j, i + 1)) * ty;
        a + (b - a) * tx
    }
}

/// Test fixtures shared by the family modules.
#[cfg(test)]
pub(super) mod fixtures {
    use image::{Rgb, RgbImage};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    pub fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    pub fn flat(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    /// White page with black horizontal "text" bars two pixels high and
    /// word-like gaps, like a coarse text page.
    pub fn text_like(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let ink = y % 8 < 3 && x % 12 < 9 && x > 4 && x + 4 < w && y > 4 && y + 4 < h;
            if ink {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        })
    }

    pub fn mean(img: &RgbImage) -> f64 {
        img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / img.as_raw().len() as f64
    }

    pub fn std(img: &RgbImage) -> f64 {
        let m = mean(img);
        let var = img
            .as_raw()
            .iter()
            .map(|&v| (f64::from(v) - m).powi(2))
            .sum::<f64>();
        (var / img.as_raw().len() as f64).sqrt()
    }

    /// Sum of absolute horizontal neighbour differences (edge energy).
    pub fn edge_energy(img: &RgbImage) -> u64 {
        img.as_raw()
            .chunks_exact(img.width() as usize * 3)
            .flat_map(|row| row.windows(4).map(|p| u64::from(p[0].abs_diff(p[3]))))
            .sum()
    }

    pub fn count(img: &RgbImage, pred: impl Fn(&[u8]) -> bool) -> usize {
        img.as_raw().chunks_exact(3).filter(|p| pred(p)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn kernel_sums_to_one() {
        for s in [0.3, 1.0, 2.7] {
            let k = gaussian_kernel(s);
            assert_eq!(k.iter().sum::<u16>(), KERNEL_ONE);
            assert_eq!(k.len() % 2, 1);
        }
    }

    #[test]
    fn convolution_preserves_flat_images() {
        let mut img = flat(13, 7, 200);
        let k = gaussian_kernel(1.5);
        convolve_separable(&mut img, 13, 7, 3, &k, &k);
        assert!(img.as_raw().iter().all(|&v| v == 200));
    }

    #[test]
    fn sum4_is_centred_with_known_spread() {
        let mut r = rng(1);
        let mut buf = Vec::new();
        random_bytes(&mut r, &mut buf, 400_000);
        let vals: Vec<f64> = buf.chunks_exact(4).map(|c| f64::from(sum4(c))).collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let s = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
        assert!(m.abs() < 2.0, "mean {m}");
        assert!((s - f64::from(SUM4_STD)).abs() < 3.0, "std {s}");
    }

    #[test]
    fn field_is_smooth_and_bounded() {
        let f = Field::new(&mut rng(2), 50, 40, 10.0);
        let mut row = vec![0.0; 50];
        f.row(17, &mut row);
        assert!(row.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(row.windows(2).all(|p| (p[0] - p[1]).abs() < 0.4));
        assert!((f.at(23, 17) - row[23]).abs() < 1e-6);
    }
}
