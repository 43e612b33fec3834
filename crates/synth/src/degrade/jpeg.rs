//! JPEG's lossy steps without its lossless ones.
//!
//! A baseline JPEG encoder loses information in exactly four places: the
//! colour conversion to YCbCr, 4:2:0 chroma subsampling, the quantisation of
//! each 8x8 block's DCT coefficients, and rounding to bytes; a decoder adds
//! its chroma upsampling. Huffman coding, zig-zag order and the file format
//! are lossless, so a round trip through a real codec equals these steps done
//! in memory, up to each codec's arithmetic (integer or float DCT, rounding),
//! in which real codecs differ from each other as well. Skipping the entropy
//! coder and the bitstream is what makes this faster than an encode and
//! decode (BENCHMARKS.md); a test holds it to a real codec.
//!
//! The steps follow ITU-T T.81 and the JFIF colour conversion: quantisation
//! tables from Annex K scaled by the IJG quality formula, blocks padded by
//! repeating the last row and column, chroma averaged over 2x2 pixels and
//! restored with the triangle ("fancy") upsampling of libjpeg.
//!
//! The block transforms are written once over [`Lanes`], eight `f32` lanes,
//! and built twice: with AVX2 registers on CPUs that have them and with plain
//! arrays elsewhere. Both do the same IEEE operations in the same order (no
//! fused multiply-adds), so they give the same bytes; a test checks that.

use image::RgbImage;

use super::util::{Scratch, clamp_f, sat_u8};

/// Annex K luminance table (natural order).
const LUMA_Q: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// Annex K chrominance table (natural order).
const CHROMA_Q: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// An 8x8 block of samples or coefficients, row by row.
type Block = [[f32; 8]; 8];

/// The IJG scaling of `table` to `quality` (1..=100): steps 1..=255.
fn steps(table: &[u16; 64], quality: u8) -> Block {
    let quality = u32::from(quality.clamp(1, 100));
    let scale = if quality < 50 {
        5000 / quality
    } else {
        200 - quality * 2
    };
    let mut step = [[0f32; 8]; 8];
    for (i, &t) in table.iter().enumerate() {
        step[i / 8][i % 8] = ((u32::from(t) * scale + 50) / 100).clamp(1, 255) as f32;
    }
    step
}

/// Eight `f32` lanes and the operations the block transforms need. Every
/// implementation rounds each operation once, as IEEE single precision
/// does, so they agree bit for bit.
trait Lanes: Copy {
    fn load(row: &[f32; 8]) -> Self;
    fn store(self, row: &mut [f32; 8]);
    fn splat(v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// The larger lane of each pair; inputs are never NaN here.
    fn max(self, o: Self) -> Self;
    /// The smaller lane of each pair; inputs are never NaN here.
    fn min(self, o: Self) -> Self;
    /// Swaps the rows and columns of eight rows.
    fn transpose(rows: &mut [Self; 8]);

    /// `self * c`.
    #[inline(always)]
    fn scale(self, c: f32) -> Self {
        self.mul(Self::splat(c))
    }

    /// `self * c + o * d`.
    #[inline(always)]
    fn mix(self, c: f32, o: Self, d: f32) -> Self {
        self.scale(c).add(o.scale(d))
    }

    /// Round to nearest, ties to even, for |v| < 2^22: adding and removing
    /// 1.5 * 2^23 leaves no fraction bits. Two additions, which vectorise
    /// on every x86-64 (a rounding instruction needs SSE4.1).
    #[inline(always)]
    fn round_even(self) -> Self {
        const MAGIC: f32 = 12_582_912.0;
        self.add(Self::splat(MAGIC)).sub(Self::splat(MAGIC))
    }

    /// A sample centred on 0 as the byte value a decoder stores (rounded,
    /// clamped to 0..=255), still as `f32`.
    #[inline(always)]
    fn to_byte_value(self) -> Self {
        self.add(Self::splat(128.0))
            .max(Self::splat(0.0))
            .min(Self::splat(255.0))
            .round_even()
    }
}

/// Binary [`Lanes`] methods on plain arrays, one lane at a time.
macro_rules! lane_by_lane {
    ($($name:ident: |$a:ident, $b:ident| $op:expr),* $(,)?) => {$(
        #[inline(always)]
        fn $name(mut self, o: Self) -> Self {
            for (lane, $b) in self.iter_mut().zip(o) {
                let $a = *lane;
                *lane = $op;
            }
            self
        }
    )*};
}

/// Plain arrays: the build for CPUs without AVX2.
impl Lanes for [f32; 8] {
    #[inline(always)]
    fn load(row: &[f32; 8]) -> Self {
        *row
    }

    #[inline(always)]
    fn store(self, row: &mut [f32; 8]) {
        *row = self;
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        [v; 8]
    }

    lane_by_lane! {
        add: |a, b| a + b,
        sub: |a, b| a - b,
        mul: |a, b| a * b,
        max: |a, b| a.max(b),
        min: |a, b| a.min(b),
    }

    #[inline(always)]
    fn transpose(rows: &mut [Self; 8]) {
        let t = *rows;
        for (r, row) in rows.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = t[c][r];
            }
        }
    }
}

/// AVX2 registers. Only used inside [`round_trip_avx2`], which runs on
/// CPUs with AVX2 alone; the intrinsics are inlined there.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx {
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(super) struct Avx(__m256);

    /// The AVX2 operations, compiled with the feature so that the
    /// intrinsics inline into them and they into [`super::round_trip_avx2`].
    mod op {
        use std::arch::x86_64::*;

        macro_rules! binary {
            ($($name:ident => $intrinsic:ident),*) => {$(
                #[target_feature(enable = "avx2")]
                #[inline]
                pub(super) fn $name(a: __m256, b: __m256) -> __m256 {
                    $intrinsic(a, b)
                }
            )*};
        }
        binary!(add => _mm256_add_ps, sub => _mm256_sub_ps, mul => _mm256_mul_ps,
                max => _mm256_max_ps, min => _mm256_min_ps);

        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn splat(v: f32) -> __m256 {
            _mm256_set1_ps(v)
        }

        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn load(row: &[f32; 8]) -> __m256 {
            // SAFETY: eight f32, read unaligned.
            unsafe { _mm256_loadu_ps(row.as_ptr()) }
        }

        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn store(v: __m256, row: &mut [f32; 8]) {
            // SAFETY: eight f32, written unaligned.
            unsafe { _mm256_storeu_ps(row.as_mut_ptr(), v) }
        }

        /// 24 shuffles: pairs of rows interleaved, then pairs of pairs,
        /// then the 128-bit halves exchanged.
        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn transpose(r: [__m256; 8]) -> [__m256; 8] {
            let t = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            [
                _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
                _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
            ]
        }
    }

    /// Binary [`super::Lanes`] methods as calls of the `op` functions.
    macro_rules! wrap_ops {
        ($($name:ident),*) => {$(
            #[inline(always)]
            fn $name(self, o: Self) -> Self {
                // SAFETY: as for every method here (below).
                Self(unsafe { op::$name(self.0, o.0) })
            }
        )*};
    }

    // SAFETY (every block below): `Avx` values exist only inside
    // `round_trip_avx2`, which is entered only when the CPU has AVX2.
    impl super::Lanes for Avx {
        #[inline(always)]
        fn load(row: &[f32; 8]) -> Self {
            Self(unsafe { op::load(row) })
        }

        #[inline(always)]
        fn store(self, row: &mut [f32; 8]) {
            unsafe { op::store(self.0, row) }
        }

        #[inline(always)]
        fn splat(v: f32) -> Self {
            Self(unsafe { op::splat(v) })
        }

        wrap_ops!(add, sub, mul, max, min);

        #[inline(always)]
        fn transpose(rows: &mut [Self; 8]) {
            let r = [
                rows[0].0, rows[1].0, rows[2].0, rows[3].0, rows[4].0, rows[5].0, rows[6].0,
                rows[7].0,
            ];
            let t = unsafe { op::transpose(r) };
            for (row, t) in rows.iter_mut().zip(t) {
                *row = Self(t);
            }
        }
    }
}

/// The 8-point DCT-II with orthonormal scaling, whose 2-D form is exactly
/// the DCT that T.81 defines for 8x8 blocks: `BASIS[k][n]` is
/// `a(k) cos((2n + 1) k pi / 16)`, `a(0) = sqrt(1/8)`, else `1/2`.
#[cfg(test)]
fn basis() -> Block {
    let mut m = [[0f32; 8]; 8];
    for (k, row) in m.iter_mut().enumerate() {
        let c = if k == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
        for (n, v) in row.iter_mut().enumerate() {
            *v = (c * ((2 * n + 1) as f64 * k as f64 * std::f64::consts::PI / 16.0).cos()) as f32;
        }
    }
    m
}

/// `cos(k pi / 16) / 2` for k = 0..8 (the basis' entries, folded).
const HALF_COS: [f32; 8] = [
    0.5,
    0.490_392_64,
    0.461_939_77,
    0.415_734_8,
    0.353_553_38,
    0.277_785_12,
    0.191_341_72,
    0.097_545_16,
];

/// The odd rows of the basis on the first four samples:
/// `ODD[j][n] = BASIS[2j + 1][n]`.
const ODD: [[f32; 4]; 4] = {
    let c = HALF_COS;
    [
        [c[1], c[3], c[5], c[7]],
        [c[3], -c[7], -c[1], -c[5]],
        [c[5], -c[1], c[7], c[3]],
        [c[7], -c[5], c[3], -c[1]],
    ]
};

/// The 1-D DCT down every column at once (`b = BASIS * b`), through the
/// basis' even/odd symmetry: 50 lane operations instead of 120.
#[inline(always)]
fn forward_columns<L: Lanes>(b: &mut [L; 8]) {
    let c = HALF_COS;
    // No closures here or below: a closure would not inherit the AVX2
    // build's features, and the operations in it would not inline.
    let s = [
        b[0].add(b[7]),
        b[1].add(b[6]),
        b[2].add(b[5]),
        b[3].add(b[4]),
    ];
    let d = [
        b[0].sub(b[7]),
        b[1].sub(b[6]),
        b[2].sub(b[5]),
        b[3].sub(b[4]),
    ];
    let (ss0, ss1) = (s[0].add(s[3]), s[1].add(s[2]));
    let (sd0, sd1) = (s[0].sub(s[3]), s[1].sub(s[2]));
    b[0] = ss0.add(ss1).scale(c[4]);
    b[4] = ss0.sub(ss1).scale(c[4]);
    b[2] = sd0.mix(c[2], sd1, c[6]);
    b[6] = sd0.mix(c[6], sd1, -c[2]);
    for (j, row) in ODD.iter().enumerate() {
        b[2 * j + 1] = d[0]
            .mix(row[0], d[1], row[1])
            .add(d[2].mix(row[2], d[3], row[3]));
    }
}

/// The inverse of [`forward_columns`] (`b = BASISᵀ * b`).
#[inline(always)]
fn inverse_columns<L: Lanes>(b: &mut [L; 8]) {
    let c = HALF_COS;
    let p0 = b[0].add(b[4]).scale(c[4]);
    let p1 = b[0].sub(b[4]).scale(c[4]);
    let q0 = b[2].mix(c[2], b[6], c[6]);
    let q1 = b[2].mix(c[6], b[6], -c[2]);
    let e = [p0.add(q0), p1.add(q1), p1.sub(q1), p0.sub(q0)];
    let mut o = e;
    for (n, o) in o.iter_mut().enumerate() {
        *o = b[1]
            .mix(ODD[0][n], b[3], ODD[1][n])
            .add(b[5].mix(ODD[2][n], b[7], ODD[3][n]));
    }
    for n in 0..4 {
        b[n] = e[n].add(o[n]);
        b[7 - n] = e[n].sub(o[n]);
    }
}

/// Quantiser steps and their reciprocals, transposed: coefficients are
/// quantised between the two transposes of [`Quantiser::round_trip`],
/// which saves two more.
struct Quantiser<L> {
    step: [L; 8],
    inv: [L; 8],
}

impl<L: Lanes> Quantiser<L> {
    #[inline(always)]
    fn new(table: &[u16; 64], quality: u8) -> Self {
        let mut step = steps(table, quality);
        <[f32; 8]>::transpose(&mut step);
        let mut q = Self {
            step: [L::splat(0.0); 8],
            inv: [L::splat(0.0); 8],
        };
        for ((s, i), row) in q.step.iter_mut().zip(&mut q.inv).zip(&step) {
            *s = L::load(row);
            let mut inv = *row;
            for v in &mut inv {
                *v = 1.0 / *v;
            }
            *i = L::load(&inv);
        }
        q
    }

    /// Forward DCT, quantisation and inverse DCT of one block in place.
    #[inline(always)]
    fn round_trip(&self, b: &mut [L; 8]) {
        forward_columns(b);
        L::transpose(b);
        forward_columns(b);
        for ((v, s), i) in b.iter_mut().zip(&self.step).zip(&self.inv) {
            *v = v.mul(*i).round_even().mul(*s);
        }
        inverse_columns(b);
        L::transpose(b);
        inverse_columns(b);
    }

    /// Compresses block `bx` of an 8-row strip `stride` samples wide and
    /// writes its rows, as the byte values a decoder would hold, to `out`.
    #[inline(always)]
    fn block(&self, strip: &[f32], stride: usize, bx: usize, out: &mut Block) {
        let mut b = [L::splat(0.0); 8];
        for (r, v) in b.iter_mut().enumerate() {
            let row: &[f32; 8] = strip[r * stride + bx * 8..][..8]
                .try_into()
                .expect("eight samples");
            *v = L::load(row);
        }
        self.round_trip(&mut b);
        for (v, o) in b.iter().zip(out.iter_mut()) {
            v.to_byte_value().store(o);
        }
    }
}

/// The JFIF colour conversion, centred: Y - 128, Cb - 128, Cr - 128.
#[inline(always)]
fn to_ycc(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    (
        0.299 * r + 0.587 * g + 0.114 * b - 128.0,
        -0.168_736 * r - 0.331_264 * g + 0.5 * b,
        0.5 * r - 0.418_688 * g - 0.081_312 * b,
    )
}

/// Applies JPEG compression at `quality` (1..=100) to `img` in place, as an
/// encode with 4:2:0 chroma and a decode with triangle upsampling would.
pub(super) fn round_trip_image(img: &mut RgbImage, quality: u8) {
    #[cfg(target_arch = "x86_64")]
    if super::wide::available() {
        // SAFETY: the CPU has AVX2, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            round_trip_avx2(img, quality)
        };
        return;
    }
    round_trip_with::<[f32; 8]>(img, quality);
}

/// [`round_trip_with`] on AVX2 registers, compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn round_trip_avx2(img: &mut RgbImage, quality: u8) {
    round_trip_with::<avx::Avx>(img, quality);
}

#[inline(always)]
fn round_trip_with<L: Lanes>(img: &mut RgbImage, quality: u8) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return;
    }
    // Whole MCUs: 16x16 pixels, 8x8 chroma samples.
    let (cw, ch) = (w.div_ceil(16) * 8, h.div_ceil(16) * 8);
    let mut cb = Scratch::zeroed(cw * ch);
    let mut cr = Scratch::zeroed(cw * ch);
    let chroma_q = Quantiser::<L>::new(&CHROMA_Q, quality);
    chroma_planes(img, &chroma_q, (&mut cb, &mut cr), (cw, ch));
    let luma_q = Quantiser::<L>::new(&LUMA_Q, quality);
    luma_and_output(img, &luma_q, (&cb, &cr), (cw, ch));
}

/// Subsamples, compresses and stores both chroma planes (bytes, as a
/// decoder holds them before upsampling).
#[inline(always)]
fn chroma_planes<L: Lanes>(
    img: &RgbImage,
    q: &Quantiser<L>,
    (cb_plane, cr_plane): (&mut [u8], &mut [u8]),
    (cw, ch): (usize, usize),
) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    // One MCU row of chroma: 8 sample rows, each `cw` wide.
    let mut strip_cb = vec![0f32; 8 * cw];
    let mut strip_cr = vec![0f32; 8 * cw];
    let mut out: Block = [[0.0; 8]; 8];
    for mcu_y in (0..ch).step_by(8) {
        strip_cb.fill(0.0);
        strip_cr.fill(0.0);
        for r in 0..8 {
            let row_cb = &mut strip_cb[r * cw..(r + 1) * cw];
            let row_cr = &mut strip_cr[r * cw..(r + 1) * cw];
            // Two image rows per chroma row, repeating the last row.
            for dy in 0..2 {
                let y = (2 * (mcu_y + r) + dy).min(h - 1);
                let line = &raw[y * w * 3..(y + 1) * w * 3];
                accumulate_chroma(line, w, row_cb, row_cr);
            }
        }
        for (strip, plane) in [(&strip_cb, &mut *cb_plane), (&strip_cr, &mut *cr_plane)] {
            for bx in 0..cw / 8 {
                q.block(strip, cw, bx, &mut out);
                for (r, row) in out.iter().enumerate() {
                    let dst = &mut plane[(mcu_y + r) * cw + bx * 8..][..8];
                    for (d, v) in dst.iter_mut().zip(row) {
                        // Whole numbers in 0..=255 already.
                        *d = sat_u8(*v);
                    }
                }
            }
        }
    }
}

/// Adds a quarter of the Cb and Cr of one image row's pixel pairs into
/// `cb` and `cr` (the last pixel repeats past the right edge): two rows
/// give each chroma sample its 2x2 mean.
#[inline(always)]
fn accumulate_chroma(line: &[u8], w: usize, cb: &mut [f32], cr: &mut [f32]) {
    let whole = w / 2;
    for ((b_out, r_out), p) in cb.iter_mut().zip(cr.iter_mut()).zip(line.chunks_exact(6)) {
        let (_, u0, v0) = to_ycc(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
        let (_, u1, v1) = to_ycc(f32::from(p[3]), f32::from(p[4]), f32::from(p[5]));
        *b_out += 0.25 * (u0 + u1);
        *r_out += 0.25 * (v0 + v1);
    }
    for x in whole..cb.len() {
        for dx in 0..2 {
            let px = (2 * x + dx).min(w - 1) * 3;
            let p = &line[px..px + 3];
            let (_, u, v) = to_ycc(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            cb[x] += 0.25 * u;
            cr[x] += 0.25 * v;
        }
    }
}

/// Compresses luma one block row at a time and writes the decoded RGB rows,
/// with the chroma planes upsampled by the triangle filter.
#[inline(always)]
fn luma_and_output<L: Lanes>(
    img: &mut RgbImage,
    q: &Quantiser<L>,
    (cb_plane, cr_plane): (&[u8], &[u8]),
    (cw, ch): (usize, usize),
) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let lw = w.div_ceil(8) * 8;
    let mut strip = vec![0f32; 8 * lw];
    let mut luma_rows = vec![0f32; 8 * lw];
    let mut up_cb = vec![0f32; cw];
    let mut up_cr = vec![0f32; cw];
    let mut full_cb = vec![0f32; 2 * cw];
    let mut full_cr = vec![0f32; 2 * cw];
    let mut out: Block = [[0.0; 8]; 8];
    let raw: &mut [u8] = img;
    for by in (0..h).step_by(8) {
        for r in 0..8 {
            let y = (by + r).min(h - 1);
            let line = &raw[y * w * 3..(y + 1) * w * 3];
            let row = &mut strip[r * lw..(r + 1) * lw];
            for (l, p) in row.iter_mut().zip(line.chunks_exact(3)) {
                *l = to_ycc(f32::from(p[0]), f32::from(p[1]), f32::from(p[2])).0;
            }
            // Repeat the last column into the padding.
            let last = row[w - 1];
            row[w..].fill(last);
        }
        for bx in 0..lw / 8 {
            q.block(&strip, lw, bx, &mut out);
            for (r, row) in out.iter().enumerate() {
                luma_rows[r * lw + bx * 8..][..8].copy_from_slice(row);
            }
        }
        for r in 0..8.min(h - by) {
            let y = by + r;
            // Vertical triangle: 3/4 of the nearer chroma row, 1/4 of the
            // next one away, repeating the edge rows.
            let near = (y / 2).min(ch - 1);
            let far = if y % 2 == 0 {
                near.saturating_sub(1)
            } else {
                (near + 1).min(ch - 1)
            };
            upsample_rows(cb_plane, cw, near, far, &mut up_cb);
            upsample_rows(cr_plane, cw, near, far, &mut up_cr);
            upsample_columns(&up_cb, &mut full_cb);
            upsample_columns(&up_cr, &mut full_cr);
            let line = &mut raw[y * w * 3..(y + 1) * w * 3];
            let luma = &luma_rows[r * lw..r * lw + w];
            for (((p, &l), &u), &v) in line
                .chunks_exact_mut(3)
                .zip(luma)
                .zip(&full_cb[..w])
                .zip(&full_cr[..w])
            {
                let (u, v) = (u - 128.0, v - 128.0);
                p[0] = clamp_f(l + 1.402 * v);
                p[1] = clamp_f(l - 0.344_136 * u - 0.714_136 * v);
                p[2] = clamp_f(l + 1.772 * u);
            }
        }
    }
}

/// `out[x] = (3 * near[x] + far[x]) / 4` for two rows of a chroma plane.
#[inline(always)]
fn upsample_rows(plane: &[u8], cw: usize, near: usize, far: usize, out: &mut [f32]) {
    let (a, b) = (&plane[near * cw..][..cw], &plane[far * cw..][..cw]);
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = 0.75 * f32::from(a) + 0.25 * f32::from(b);
    }
}

/// Doubles a row's width with the same triangle weights, repeating the
/// edge samples.
#[inline(always)]
fn upsample_columns(half: &[f32], full: &mut [f32]) {
    let n = half.len();
    full[0] = half[0];
    full[2 * n - 1] = half[n - 1];
    // Interior samples: the left output of sample x + 1 and the right one of
    // sample x, from plain windows the compiler vectorises.
    for ((pair, a), b) in full[1..2 * n - 1]
        .chunks_exact_mut(2)
        .zip(&half[..n - 1])
        .zip(&half[1..])
    {
        pair[0] = 0.75 * a + 0.25 * b;
        pair[1] = 0.75 * b + 0.25 * a;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FontLibrary, PageSpec, Target, render_page_as};
    use image::{ImageDecoder, Rgb};

    /// The same page through a real encoder (jpeg-encoder, 4:2:0 below
    /// quality 90) and decoder (the image crate's).
    fn real_codec(img: &RgbImage, quality: u8) -> RgbImage {
        let mut bytes = Vec::new();
        jpeg_encoder::Encoder::new(&mut bytes, quality)
            .encode(
                img.as_raw(),
                img.width() as u16,
                img.height() as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .expect("encoding in memory");
        let decoder = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&bytes))
            .expect("our own stream");
        let mut out = RgbImage::new(img.width(), img.height());
        decoder
            .read_image(&mut out)
            .expect("decoding our own stream");
        out
    }

    fn mse(a: &RgbImage, b: &RgbImage) -> f64 {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            / a.as_raw().len() as f64
    }

    fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
        10.0 * (255.0f64.powi(2) / mse(a, b)).log10()
    }

    /// A rendered page (text, rules, colour elements), cropped to a size
    /// that is not a whole number of blocks, plus a colour ramp.
    fn page() -> RgbImage {
        let fonts = FontLibrary::system().expect("the build machines have DejaVu installed");
        let page = render_page_as(&fonts, &PageSpec::pixels(403, 517), 11, Target::AsPrinted)
            .expect("a valid size")
            .image;
        let mut img = page;
        for y in 0..60 {
            for x in 0..403 {
                img.put_pixel(
                    x,
                    y,
                    Rgb([
                        (x * 255 / 402) as u8,
                        (y * 4) as u8,
                        255 - (x * 255 / 402) as u8,
                    ]),
                );
            }
        }
        img
    }

    #[test]
    fn matches_a_real_codec_round_trip() {
        let orig = page();
        for quality in [15u8, 30, 50, 80] {
            let real = real_codec(&orig, quality);
            let mut ours = orig.clone();
            round_trip_image(&mut ours, quality);
            // The two lose the same information: each is far closer to the
            // other than to the original.
            let (ours_err, real_err) = (mse(&ours, &orig), mse(&real, &orig));
            let between = psnr(&ours, &real);
            assert!(
                between > 10.0 * (255.0f64.powi(2) / real_err).log10() + 6.0,
                "q{quality}: ours vs real {between:.2} dB, real vs original {:.2} dB",
                psnr(&real, &orig)
            );
            assert!(
                (ours_err / real_err - 1.0).abs() < 0.15,
                "q{quality}: error {ours_err:.2} against the codec's {real_err:.2}"
            );
        }
    }

    #[test]
    fn lower_quality_loses_more() {
        let orig = page();
        let errs: Vec<f64> = [10u8, 25, 50, 75, 95]
            .iter()
            .map(|&q| {
                let mut img = orig.clone();
                round_trip_image(&mut img, q);
                mse(&img, &orig)
            })
            .collect();
        assert!(errs.windows(2).all(|p| p[0] > p[1]), "{errs:?}");
        assert!(errs[0] > 0.0);
    }

    #[test]
    fn flat_grey_survives_and_blocks_show() {
        // Mid grey has Y = 128 and neutral chroma: every coefficient is 0.
        let mut flat = RgbImage::from_pixel(37, 21, Rgb([128, 128, 128]));
        round_trip_image(&mut flat, 10);
        assert!(flat.pixels().all(|p| *p == Rgb([128, 128, 128])));
        // A step inside a block rings at low quality; blocks it does not
        // touch stay flat (their level moves only by the DC step).
        let step = RgbImage::from_fn(64, 64, |x, _| {
            if x < 20 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let mut img = step.clone();
        round_trip_image(&mut img, 20);
        let levels = |x0: u32| {
            let mut v: Vec<_> = (x0..x0 + 8)
                .flat_map(|x| (0..8).map(move |y| (x, y)))
                .map(|(x, y)| img.get_pixel(x, y)[0])
                .collect();
            v.sort_unstable();
            v.dedup();
            v.len()
        };
        assert!(levels(16) > 4, "the edge's block rings");
        for x0 in [0, 8, 24, 32, 40, 48, 56] {
            assert_eq!(levels(x0), 1, "block at {x0}");
        }
    }

    #[test]
    fn tiny_and_odd_sizes() {
        for (w, h) in [(1, 1), (1, 17), (17, 1), (9, 9), (33, 15)] {
            let orig = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 200]));
            let mut img = orig.clone();
            round_trip_image(&mut img, 40);
            assert_eq!(img.dimensions(), (w, h));
            assert!(mse(&img, &orig) < 100.0, "{w}x{h}: {}", mse(&img, &orig));
        }
        let mut empty = RgbImage::new(0, 0);
        round_trip_image(&mut empty, 40);
    }

    #[test]
    fn transposes_swap_rows_and_columns() {
        let b: Block = std::array::from_fn(|r| std::array::from_fn(|c| (r * 8 + c) as f32));
        let mut t = b;
        <[f32; 8]>::transpose(&mut t);
        for r in 0..8 {
            for c in 0..8 {
                assert_eq!(t[r][c], b[c][r]);
            }
        }
    }

    /// The AVX2 build against the plain one, where the CPU allows.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_builds_give_the_same_bytes() {
        if !crate::degrade::wide::available() {
            return;
        }
        let orig = page();
        for quality in [5u8, 20, 47, 80, 100] {
            let mut plain = orig.clone();
            round_trip_with::<[f32; 8]>(&mut plain, quality);
            let mut wide = orig.clone();
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 (checked above).
            unsafe {
                round_trip_avx2(&mut wide, quality)
            };
            assert!(plain == wide, "quality {quality}");
            assert_ne!(plain, orig);
        }
    }

    #[test]
    fn folded_transforms_are_the_basis_products() {
        let m = basis();
        let mut b: Block = [[0.0; 8]; 8];
        for (r, row) in b.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = ((r * 53 + c * 29 + r * c * 7) % 255) as f32 - 128.0;
            }
        }
        let product = |t: bool, x: &Block| -> Block {
            std::array::from_fn(|k| {
                std::array::from_fn(|i| {
                    (0..8)
                        .map(|n| if t { m[n][k] } else { m[k][n] } * x[n][i])
                        .sum::<f32>()
                })
            })
        };
        let (mut fwd, mut inv) = (b, b);
        forward_columns(&mut fwd);
        inverse_columns(&mut inv);
        for (got, want) in [(fwd, product(false, &b)), (inv, product(true, &b))] {
            for (x, y) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((x - y).abs() < 1e-3, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn dct_round_trip_is_exact_without_quantisation() {
        // Steps of 1/1024 leave the coefficients as they are, nearly.
        let q = Quantiser::<[f32; 8]> {
            step: [[1.0 / 1024.0; 8]; 8],
            inv: [[1024.0; 8]; 8],
        };
        let mut b: Block = [[0.0; 8]; 8];
        for (r, row) in b.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = ((r * 37 + c * 11) % 255) as f32 - 128.0;
            }
        }
        let orig = b;
        q.round_trip(&mut b);
        for (x, y) in b.iter().flatten().zip(orig.iter().flatten()) {
            assert!((x - y).abs() < 1e-2, "{x} vs {y}");
        }
        // The DC coefficient is 8 times the block mean, as in T.81.
        let mut dc: Block = [[10.0; 8]; 8];
        forward_columns(&mut dc);
        <[f32; 8]>::transpose(&mut dc);
        forward_columns(&mut dc);
        assert!((dc[0][0] - 80.0).abs() < 1e-3, "{}", dc[0][0]);
        assert!(dc.iter().flatten().skip(1).all(|v| v.abs() < 1e-3));
    }
}
