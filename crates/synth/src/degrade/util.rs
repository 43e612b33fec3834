//! Shared pixel helpers: fast approximate normal noise, separable integer
//! convolution and smooth value-noise fields.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

/// Fixed-point scale of convolution kernels: with weights summing to 256,
/// 255 * 256 + rounding still fits the `u16` accumulators, which process
/// twice as many lanes per vector instruction as `u32`.
const KERNEL_ONE: u16 = 1 << 8;

thread_local! {
    /// Page-sized byte buffers handed back by [`Scratch`] on this thread.
    static SCRATCH: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Most buffers one family holds at once; more are simply freed.
const SCRATCH_KEEP: usize = 4;

/// A temporary byte buffer recycled through a per-thread pool.
///
/// Several families need a page-sized copy or mask for a few milliseconds.
/// A fresh allocation of that size comes straight from the kernel and
/// page-faults on every first touch, which cost more than some of the
/// filters themselves; reusing the thread's buffers avoids that. Contents
/// never leak between uses: every constructor fills the whole length, so
/// results stay a function of the seed alone, whatever ran before on the
/// thread.
pub(super) struct Scratch(Vec<u8>);

impl Scratch {
    fn recycled(len: usize) -> Vec<u8> {
        let mut buf = SCRATCH
            .with(|pool| pool.borrow_mut().pop())
            .unwrap_or_default();
        buf.clear();
        buf.reserve(len);
        buf
    }

    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        let mut buf = Self::recycled(len);
        buf.resize(len, 0);
        Self(buf)
    }

    /// A copy of `src`.
    pub fn copy_of(src: &[u8]) -> Self {
        let mut buf = Self::recycled(src.len());
        buf.extend_from_slice(src);
        Self(buf)
    }
}

impl Deref for Scratch {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        // `try_with` because a buffer dropped during thread teardown has no
        // pool left to return to; it is then just freed.
        let _ = SCRATCH.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < SCRATCH_KEEP {
                pool.push(buf);
            }
        });
    }
}

/// Rounds a sampled parameter so that recorded JSON stays readable.
pub(super) fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A uniform `f64` in `[lo, hi)`, rounded with [`r3`].
pub(super) fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    r3(rng.random_range(lo..hi))
}

/// A wyrand generator seeded from a step's ChaCha8 stream. Bulk pixel
/// noise needs millions of random bits per image, so the ChaCha8 stream only
/// seeds this generator, which is several times faster and statistically
/// ample for image noise. One call yields five 12-bit draws.
pub(super) struct FastRng(u64);

impl FastRng {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self(rng.next_u64())
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) as u64) ^ (t as u64)
    }
}

/// Entries of a normal-deviate table; 12 random bits pick one.
pub(super) const NORMAL_LEN: usize = 4096;

/// Standard normal quantiles at the midpoints of `NORMAL_LEN` equal
/// probability bins, rescaled to unit variance. Indexing it with uniform
/// random bits samples a normal distribution (truncated at about 3.5 sigma)
/// with one table read instead of a transcendental per sample.
fn standard_normals() -> &'static [f32; NORMAL_LEN] {
    static TABLE: std::sync::OnceLock<Box<[f32; NORMAL_LEN]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        // Integrate the density on a fine grid and read off each quantile.
        const STEP: f64 = 1e-4;
        let density = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut table = Box::new([0f32; NORMAL_LEN]);
        let (mut z, mut cdf) = (-6.0f64, 0.0f64);
        for (i, t) in table.iter_mut().enumerate() {
            let target = (i as f64 + 0.5) / NORMAL_LEN as f64;
            while cdf < target {
                cdf += 0.5 * (density(z) + density(z + STEP)) * STEP;
                z += STEP;
            }
            *t = z as f32;
        }
        let var = table.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / NORMAL_LEN as f64;
        let norm = var.sqrt() as f32;
        for t in table.iter_mut() {
            *t /= norm;
        }
        table
    })
}

/// Normal deviates with standard deviation `std`, rounded to integers;
/// index with 12 uniform random bits.
pub(super) fn normal_table(std: f32) -> [i32; NORMAL_LEN] {
    let mut out = [0i32; NORMAL_LEN];
    for (o, &z) in out.iter_mut().zip(standard_normals()) {
        *o = (z * std).round() as i32;
    }
    out
}

/// Random numbers by position instead of by sequence: word `i` is a
/// counter through the lowbias32 integer hash (Wellons), keyed per call. No
/// state carries from one byte to the next, so a loop that draws one per
/// byte vectorises, unlike [`FastRng`] and its table reads.
#[derive(Clone, Copy)]
pub(super) struct HashNoise(u32);

/// The standard deviation of [`HashNoise::deviate`]: four uniform bytes,
/// `sqrt(4 * (256^2 - 1) / 12)`.
pub(super) const DEVIATE_STD: f32 = 147.800_5;

impl HashNoise {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self(rng.next_u32())
    }

    /// 32 uniform random bits for position `i`.
    #[inline(always)]
    pub fn word(self, i: u32) -> u32 {
        let mut x = self.0.wrapping_add(i.wrapping_mul(0x9E37_79B9));
        x ^= x >> 16;
        x = x.wrapping_mul(0x7FEB_352D);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846C_A68B);
        x ^ (x >> 16)
    }

    /// A centred, nearly normal deviate for position `i`: the sum of the
    /// word's four bytes less its mean (Irwin-Hall with four terms), in
    /// -510..=510 with standard deviation [`DEVIATE_STD`]; it is bounded
    /// at 3.45 sigma, as the sensor noise it models effectively is.
    #[inline(always)]
    pub fn deviate(self, i: u32) -> i32 {
        let h = self.word(i);
        let pairs = (h & 0x00FF_00FF) + ((h >> 8) & 0x00FF_00FF);
        ((pairs & 0xFFFF) + (pairs >> 16)) as i32 - 510
    }

    /// The 16.16 factor that scales a deviate to standard deviation `sigma`.
    #[inline(always)]
    pub fn factor(sigma: f32) -> i32 {
        sat_i32((sigma / DEVIATE_STD * 65536.0).round().min(4_000_000.0))
    }

    /// The deviate for position `i` times a [`HashNoise::factor`] `k`,
    /// rounded to a whole number; |deviate * k| < 510 * 4e6 < 2^31.
    #[inline(always)]
    pub fn scaled(self, i: u32, k: i32) -> i32 {
        (self.deviate(i) * k + 32768) >> 16
    }
}

/// Adds zero-mean noise of standard deviation `sigma` levels to every
/// byte, independently, saturating at 0 and 255.
#[inline(always)]
pub(super) fn add_noise(data: &mut [u8], sigma: f32, noise: HashNoise) {
    let k = HashNoise::factor(sigma);
    let mut i = 0u32;
    for v in data.iter_mut() {
        *v = (i32::from(*v) + noise.scaled(i, k)).clamp(0, 255) as u8;
        i = i.wrapping_add(1);
    }
}

/// Adds the same zero-mean noise of standard deviation `sigma` levels to
/// the three channels of each RGB pixel (a change of brightness only).
#[inline(always)]
pub(super) fn add_pixel_noise(data: &mut [u8], sigma: f32, noise: HashNoise) {
    let k = HashNoise::factor(sigma);
    let mut i = 0u32;
    for px in data.chunks_exact_mut(3) {
        let n = noise.scaled(i, k);
        for v in px {
            *v = (i32::from(*v) + n).clamp(0, 255) as u8;
        }
        i = i.wrapping_add(1);
    }
}

/// Calls `f(x, pixel, index)` for every pixel of interleaved RGB `data`,
/// where `x` counts pixels from the start of `data` and `index` is a
/// uniform 12-bit random number (five per generator call).
#[inline(always)]
pub(super) fn for_each_pixel_index(
    data: &mut [u8],
    rng: &mut FastRng,
    mut f: impl FnMut(usize, &mut [u8], usize),
) {
    let mut chunks = data.chunks_exact_mut(15);
    let mut x = 0;
    for chunk in &mut chunks {
        let mut r = rng.next_u64();
        for px in chunk.chunks_exact_mut(3) {
            f(x, px, (r & 0xFFF) as usize);
            r >>= 12;
            x += 1;
        }
    }
    let mut r = rng.next_u64();
    for px in chunks.into_remainder().chunks_exact_mut(3) {
        f(x, px, (r & 0xFFF) as usize);
        r >>= 12;
        x += 1;
    }
}

/// Fills `buf` (resized to `len`) with random bytes from [`FastRng`].
#[inline(always)]
pub(super) fn random_bytes(rng: &mut ChaCha8Rng, buf: &mut Vec<u8>, len: usize) {
    buf.resize(len, 0);
    let mut fast = FastRng::new(rng);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&fast.next_u64().to_le_bytes());
    }
    let tail = chunks.into_remainder();
    let last = fast.next_u64().to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
}

/// `v` clamped to `lo..=hi` and truncated towards zero; NaN gives `lo`.
///
/// A saturating float-to-int cast has to handle NaN and out-of-range lanes,
/// which the compiler does one lane at a time. `max` and `min` leave a
/// finite value in range (`max` returns its other argument for NaN), and
/// that converts exactly with the plain truncating instruction, eight lanes
/// at a time. The `sat_*` helpers below are built on it.
#[inline(always)]
#[allow(unsafe_code)]
// `clamp` would keep NaN, which is what this avoids.
#[allow(clippy::manual_clamp)]
fn trunc_within<const LO: i32, const HI: i32>(v: f32) -> i32 {
    const { assert!(LO <= HI && HI <= 2_147_483_520) };
    let t = v.max(LO as f32).min(HI as f32);
    // SAFETY: `t` is finite and within LO..=HI, integers an i32 holds
    // (checked above at compile time), so it truncates without overflow.
    unsafe { t.to_int_unchecked::<i32>() }
}

/// `v as u8`, the same for every input (saturating, NaN gives 0), written
/// so that loops of it vectorise ([`trunc_within`]).
#[inline(always)]
pub(super) fn sat_u8(v: f32) -> u8 {
    trunc_within::<0, 255>(v) as u8
}

/// `v as u16`, the same for every input; see [`sat_u8`].
#[inline(always)]
pub(super) fn sat_u16(v: f32) -> u16 {
    trunc_within::<0, 65_535>(v) as u16
}

/// `v as i32` for every `v` below 2^31 (NaN gives 0, as the cast does);
/// from 2^31 on it gives 2^31 - 128 instead of `i32::MAX`. See [`sat_u8`].
#[inline(always)]
pub(super) fn sat_i32(v: f32) -> i32 {
    let v = if v.is_nan() { 0.0 } else { v };
    trunc_within::<{ i32::MIN }, 2_147_483_520>(v)
}

/// A pixel index as `f32`: `x as f32` for every `x` below 2^31, through
/// `i32`, which converts eight lanes at a time where `usize` does not.
#[inline(always)]
pub(super) fn fx(x: usize) -> f32 {
    x as i32 as f32
}

/// Rounds to the nearest byte, saturating (NaN gives 0): the byte
/// `(v + 0.5).clamp(0.0, 255.0) as u8` gives, for every input.
#[inline(always)]
pub(super) fn clamp_f(v: f32) -> u8 {
    sat_u8(v + 0.5)
}

/// Repeats each per-pixel value three times, one per RGB byte, so the
/// per-byte passes below are plain zips that the compiler vectorises.
#[inline(always)]
pub(super) fn expand3(per_pixel: &[u16], per_byte: &mut [u16]) {
    for (b, &p) in per_byte.chunks_exact_mut(3).zip(per_pixel) {
        b.fill(p);
    }
}

/// Multiplies each byte by its gain in 1/256 steps (`gain[i] <= 256`).
#[inline(always)]
pub(super) fn scale_bytes(data: &mut [u8], gain: &[u16]) {
    for (v, &g) in data.iter_mut().zip(gain) {
        *v = ((u16::from(*v) * g + 128) >> 8) as u8;
    }
}

/// Moves each byte towards white by its fraction in 1/256 steps
/// (`frac[i] <= 256`).
#[inline(always)]
pub(super) fn lighten_bytes(data: &mut [u8], frac: &[u16]) {
    for (v, &f) in data.iter_mut().zip(frac) {
        let x = u16::from(*v);
        *v = (x + (((255 - x) * f + 128) >> 8)) as u8;
    }
}

/// Perceptual luma of an RGB pixel.
#[inline]
pub(super) fn luma(p: &[u8]) -> u8 {
    ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8
}

#[inline(always)]
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
///
/// Horizontally filtered rows live in a ring of `ky.len()` rows rather than
/// a full-size copy, so the working set stays in cache and no page-sized
/// temporary is allocated per call.
#[inline(always)]
pub(super) fn convolve_separable(
    data: &mut [u8],
    w: usize,
    h: usize,
    ch: usize,
    kx: &[u16],
    ky: &[u16],
) {
    let stride = w * ch;
    let rx = kx.len() / 2;
    let ry = ky.len() / 2;
    let slots = ky.len();
    let mut ring = vec![0u8; slots * stride];
    let mut held = vec![usize::MAX; slots];
    let mut padded = vec![0u8; (w + 2 * rx) * ch];
    let mut acc = vec![0u16; stride];
    for y in 0..h {
        // Every source row is first needed by output row `sy - ry`, before
        // any row at or below it has been overwritten.
        for sy in y.saturating_sub(ry)..=(y + ry).min(h - 1) {
            let slot = sy % slots;
            if held[slot] == sy {
                continue;
            }
            held[slot] = sy;
            pad_row(
                &data[sy * stride..(sy + 1) * stride],
                &mut padded,
                w,
                ch,
                rx,
            );
            acc.fill(KERNEL_ONE / 2);
            accumulate(&mut acc, kx, |j| &padded[j * ch..j * ch + stride]);
            for (t, &a) in ring[slot * stride..(slot + 1) * stride]
                .iter_mut()
                .zip(&acc)
            {
                *t = (a >> 8) as u8;
            }
        }
        acc.fill(KERNEL_ONE / 2);
        accumulate(&mut acc, ky, |j| {
            let sy = (y as isize + j as isize - ry as isize).clamp(0, h as isize - 1) as usize;
            let slot = sy % slots;
            &ring[slot * stride..(slot + 1) * stride]
        });
        for (d, &a) in data[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *d = (a >> 8) as u8;
        }
    }
}

/// `acc += sum_j k[j] * tap(j)` over equally long byte rows.
///
/// Symmetric kernels (every Gaussian) add mirrored taps first and multiply
/// once per pair, halving the multiplies. The result is the same integer:
/// `k (a + b) = k a + k b`, and no partial sum exceeds the full one, which
/// the kernel's weights (summing to 256) keep within `u16`.
#[inline(always)]
fn accumulate<'a>(acc: &mut [u16], k: &[u16], tap: impl Fn(usize) -> &'a [u8]) {
    let n = k.len();
    let symmetric = k.iter().eq(k.iter().rev());
    let paired = if symmetric { n / 2 } else { 0 };
    let len = acc.len();
    for (j, &kj) in k.iter().enumerate().take(paired) {
        // Equal-length slices let the compiler drop bounds checks and
        // vectorise; a three-way zip did not.
        let (lo, hi) = (&tap(j)[..len], &tap(n - 1 - j)[..len]);
        for i in 0..len {
            acc[i] += kj * (u16::from(lo[i]) + u16::from(hi[i]));
        }
    }
    for (j, &kj) in k.iter().enumerate().skip(paired).take(n - 2 * paired) {
        for (a, &s) in acc.iter_mut().zip(tap(j)) {
            *a += kj * u16::from(s);
        }
    }
}

/// Copies `row` (`w` pixels of `ch` bytes) into `padded` with `r` replicated
/// edge pixels on each side; one bulk copy plus byte loops for the edges.
#[inline(always)]
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
    /// Grid row whose horizontal interpolation `upper` holds (`lower` holds
    /// the next one), so `row` does per-pixel work only once per grid row.
    cached: Option<usize>,
    upper: Vec<f32>,
    lower: Vec<f32>,
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
            cached: None,
            upper: vec![0.0; w],
            lower: vec![0.0; w],
        }
    }

    /// Grid row `j` interpolated across the image width into `out`.
    #[inline(always)]
    fn expand(values: &[f32], grid_w: usize, columns: &[(usize, f32)], j: usize, out: &mut [f32]) {
        let grid = &values[j * grid_w..(j + 1) * grid_w];
        for (o, &(i, tx)) in out.iter_mut().zip(columns) {
            *o = grid[i] + (grid[i + 1] - grid[i]) * tx;
        }
    }

    /// Writes the field values of image row `y` into `out` (one per column).
    /// Cheapest when rows are visited in increasing order.
    #[inline(always)]
    pub fn row(&mut self, y: usize, out: &mut [f32]) {
        let g = y as f32 / self.cell;
        let (j, ty) = (g as usize, smoothstep(0.0, 1.0, g.fract()));
        if self.cached != Some(j) {
            if self.cached.is_some_and(|c| c + 1 == j) {
                std::mem::swap(&mut self.upper, &mut self.lower);
            } else {
                Self::expand(&self.values, self.grid_w, &self.columns, j, &mut self.upper);
            }
            Self::expand(
                &self.values,
                self.grid_w,
                &self.columns,
                j + 1,
                &mut self.lower,
            );
            self.cached = Some(j);
        }
        for ((o, &a), &b) in out.iter_mut().zip(&self.upper).zip(&self.lower) {
            *o = a + (b - a) * ty;
        }
    }

    /// The field value at one pixel (same interpolation order as `row`).
    #[inline(always)]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        let g = y as f32 / self.cell;
        let (j, ty) = (g as usize, smoothstep(0.0, 1.0, g.fract()));
        let (i, tx) = self.columns[x.min(self.columns.len() - 1)];
        let v = |jj: usize, ii: usize| self.values[jj * self.grid_w + ii];
        let a = v(j, i) + (v(j, i + 1) - v(j, i)) * tx;
        let b = v(j + 1, i) + (v(j + 1, i + 1) - v(j + 1, i)) * tx;
        a + (b - a) * ty
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

    /// [`text_like`] with a `share` of its bytes replaced by random ones:
    /// grey ink, odd colours and isolated specks for comparing a fast
    /// kernel with its direct definition.
    pub fn scrambled_text(w: u32, h: u32, r: &mut ChaCha8Rng, share: f64) -> RgbImage {
        use rand::Rng;
        let mut img = text_like(w, h);
        for v in img.as_mut().iter_mut() {
            if r.random_bool(share) {
                *v = r.random();
            }
        }
        img
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
    fn vectorisable_casts_match_the_saturating_casts() {
        let mut values = vec![
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            -0.0,
            0.0,
            f32::MIN_POSITIVE,
            2_147_483_520.0,
            -2_147_483_648.0,
            -2_147_483_904.0,
        ];
        // Every integer and half-integer around the byte and u16 ranges,
        // and a spread of fractions and large magnitudes.
        values.extend((-600..140_000).map(|i| i as f32 * 0.5));
        values.extend((0..20_000).map(|i| (i as f32 * 0.7133).sin() * 3.0e5));
        values.extend((0..2_000).map(|i| (i as f32 * 1.37).sin() * 2.0e9));
        for v in values {
            assert_eq!(sat_u8(v), v as u8, "{v}");
            assert_eq!(clamp_f(v), (v + 0.5).clamp(0.0, 255.0) as u8, "{v}");
            assert_eq!(sat_u16(v), v as u16, "{v}");
            if v.is_nan() || v < 2_147_483_648.0 {
                assert_eq!(sat_i32(v), v as i32, "{v}");
            }
        }
        for x in (0..1 << 26).step_by(997).chain([(1 << 31) - 1]) {
            assert_eq!(fx(x).to_bits(), (x as f32).to_bits(), "{x}");
        }
    }

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
    fn hashed_deviates_are_centred_bounded_and_keyed() {
        let mut r = fixtures::rng(3);
        let (a, b) = (HashNoise::new(&mut r), HashNoise::new(&mut r));
        let n = 1u32 << 20;
        let d: Vec<f64> = (0..n).map(|i| f64::from(a.deviate(i))).collect();
        let mean = d.iter().sum::<f64>() / f64::from(n);
        let std = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / f64::from(n)).sqrt();
        assert!(mean.abs() < 0.5, "mean {mean}");
        assert!(
            (std / f64::from(DEVIATE_STD) - 1.0).abs() < 0.005,
            "std {std}"
        );
        assert!(d.iter().all(|v| v.abs() <= 510.0));
        // Nearly normal: 68% within one sigma, 95.4% within two (the
        // four-term sum gives 66.8% and 95.7%).
        let within = |k: f64| d.iter().filter(|v| v.abs() <= k * std).count() as f64 / f64::from(n);
        assert!((within(1.0) - 0.67).abs() < 0.02, "{}", within(1.0));
        assert!((within(2.0) - 0.956).abs() < 0.01, "{}", within(2.0));
        // Every bit of the words is a fair coin, neighbours are unrelated,
        // and another key gives other numbers.
        for bit in 0..32 {
            let ones = (0..n).filter(|&i| a.word(i) >> bit & 1 == 1).count() as f64;
            assert!((ones / f64::from(n) - 0.5).abs() < 0.003, "bit {bit}");
        }
        let lag: f64 = (0..n - 1)
            .map(|i| f64::from(a.deviate(i)) * f64::from(a.deviate(i + 1)))
            .sum::<f64>()
            / f64::from(n - 1)
            / (std * std);
        assert!(lag.abs() < 0.01, "lag-1 correlation {lag}");
        let same = (0..n).filter(|&i| a.word(i) == b.word(i)).count();
        assert!(same < 4, "{same}");
    }

    #[test]
    fn added_noise_has_the_requested_spread_and_saturates() {
        let mut r = fixtures::rng(4);
        for sigma in [2.0f32, 9.5, 40.0] {
            let mut data = vec![128u8; 300_000];
            add_noise(&mut data, sigma, HashNoise::new(&mut r));
            let n = data.len() as f64;
            let mean = data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = data
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            assert!((mean - 128.0).abs() < 0.2, "mean {mean}");
            // Rounding to whole levels adds 1/12 to the variance.
            let want = (f64::from(sigma).powi(2) + 1.0 / 12.0).sqrt();
            assert!(
                (var.sqrt() / want - 1.0).abs() < 0.02,
                "{sigma}: {}",
                var.sqrt()
            );
        }
        let mut white = vec![255u8; 30_000];
        add_noise(&mut white, 20.0, HashNoise::new(&mut r));
        assert!(white.iter().any(|&v| v < 230));
        let mut px = vec![90u8; 30_000];
        add_pixel_noise(&mut px, 20.0, HashNoise::new(&mut r));
        assert!(px.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        assert!(px.chunks_exact(3).any(|p| p[0] != 90));
    }

    #[test]
    fn normal_table_is_centred_with_the_requested_spread() {
        let t = normal_table(10.0);
        let vals: Vec<f64> = t.iter().map(|&v| f64::from(v)).collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let s = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
        assert!(m.abs() < 0.01, "mean {m}");
        // Rounding to whole levels adds about 1/12 of variance.
        assert!((s - 10.0).abs() < 0.05, "std {s}");
        assert!(t.windows(2).all(|p| p[0] <= p[1]), "quantiles are sorted");
        assert!(t[0] < -30 && t[NORMAL_LEN - 1] > 30, "tails reach 3 sigma");
    }

    #[test]
    fn field_is_smooth_and_bounded() {
        let mut f = Field::new(&mut rng(2), 50, 40, 10.0);
        let mut row = vec![0.0; 50];
        f.row(17, &mut row);
        assert!(row.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(row.windows(2).all(|p| (p[0] - p[1]).abs() < 0.4));
        assert!((f.at(23, 17) - row[23]).abs() < 1e-6);
    }

    #[test]
    fn paired_taps_match_plain_accumulation() {
        let rows: Vec<Vec<u8>> = (0..16u32)
            .map(|r| {
                (0..40u32)
                    .map(|i| ((i * 37 + r * 91) % 256) as u8)
                    .collect()
            })
            .collect();
        for k in [
            gaussian_kernel(1.0),
            gaussian_kernel(2.3),
            vec![100, 60, 96],
        ] {
            let mut fast = vec![128u16; 40];
            accumulate(&mut fast, &k, |j| &rows[j]);
            let mut plain = vec![128u16; 40];
            for (j, &kj) in k.iter().enumerate() {
                for (a, &s) in plain.iter_mut().zip(&rows[j]) {
                    *a += kj * u16::from(s);
                }
            }
            assert_eq!(fast, plain, "kernel {k:?}");
        }
    }

    #[test]
    fn scratch_buffers_come_back_clean() {
        {
            let mut dirty = Scratch::zeroed(64);
            dirty.fill(0xAB);
        }
        assert!(Scratch::zeroed(100).iter().all(|&b| b == 0));
        assert_eq!(&*Scratch::copy_of(&[1, 2, 3]), &[1, 2, 3]);
    }
}
