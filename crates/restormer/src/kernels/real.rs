//! The float operations the CPU kernels need beyond Candle's `WithDType`, plus
//! small slice helpers shared by the kernels.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, WithDType, bail};

/// f32 or f64 with the transcendental functions the kernels use.
pub(crate) trait Real: WithDType {
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn erf(self) -> Self;
    /// `(gelu(x), gelu'(x))` for the exact (erf) GELU.
    #[inline(always)]
    fn gelu_and_grad(self) -> (Self, Self) {
        let half = Self::from_f64(0.5);
        let cdf =
            half * (Self::one() + (self * Self::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf());
        // standard normal density 1/sqrt(2π) · exp(-x²/2)
        let pdf = Self::from_f64(FRAC_1_SQRT_2PI) * (Self::zero() - half * self * self).exp();
        (self * cdf, cdf + self * pdf)
    }
    /// Borrows the matching vector out of a CPU storage.
    fn slice(storage: &CpuStorage) -> Option<&[Self]>;
    /// Wraps a vector back into a CPU storage.
    fn storage(v: Vec<Self>) -> CpuStorage;
}

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `exp` for f32 from plain arithmetic so loops calling it vectorise: `2^n · e^r`
/// with `|r| <= ln2/2` and a degree-6 Taylor polynomial (relative error ~2e-7).
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // adding and subtracting 1.5 · 2^23 rounds to the nearest integer
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// GELU and its derivative in f32 with the Abramowitz-Stegun 7.1.26 erf (absolute
/// error ≤ 1.5e-7), sharing one `exp(-x²/2)` between erf and the normal density.
#[inline(always)]
fn gelu_and_grad_f32(x: f32) -> (f32, f32) {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let az = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * az);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let e = fast_exp(-z * z);
    let erf_abs = 1.0 - poly * e;
    let erf = if z < 0.0 { -erf_abs } else { erf_abs };
    let cdf = 0.5 * (1.0 + erf);
    (x * cdf, cdf + x * (FRAC_1_SQRT_2PI as f32) * e)
}

impl Real for f32 {
    #[inline(always)]
    fn gelu_and_grad(self) -> (Self, Self) {
        gelu_and_grad_f32(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f32(self)
    }
    fn slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    fn slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
}

/// The contiguous values of a CPU tensor argument of dtype `T`.
pub(crate) fn arg<'a, T: Real>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [T]> {
    let Some(data) = T::slice(s) else {
        bail!(
            "{what}: arguments must all be f32 or all f64, got {:?}",
            s.dtype()
        );
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: arguments must be contiguous"),
    }
}

/// Dot product with eight independent accumulators so it vectorises.
#[inline(always)]
pub(crate) fn dot<T: WithDType>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (ac, bc) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += ac[l] * bc[l];
        }
    }
    let mut s = T::zero();
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    acc.iter().fold(s, |s, &v| s + v)
}

/// `y += a * x`.
#[inline(always)]
pub(crate) fn axpy<T: WithDType>(y: &mut [T], a: T, x: &[T]) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    for i in 0..n {
        y[i] += a * x[i];
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_gelu_is_close_to_exact() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.005;
            let (v, d) = super::gelu_and_grad_f32(x);
            let (ev, ed) = super::Real::gelu_and_grad(x as f64);
            assert!((v as f64 - ev).abs() < 1e-6, "gelu({x}) = {v}, exact {ev}");
            assert!((d as f64 - ed).abs() < 1e-6, "gelu'({x}) = {d}, exact {ed}");
        }
        let e = super::fast_exp(-80.0) as f64;
        assert!((e / (-80f64).exp() - 1.0).abs() < 1e-5);
    }
}
