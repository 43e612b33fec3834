//! Depthwise 3x3 convolution (groups = C, padding 1, stride 1) as Candle custom ops.
//!
//! Candle lowers a grouped convolution to one convolution per group followed by a
//! concatenation, which makes Restormer's depthwise layers dominate a training
//! step. These ops run each `[H, W]` plane with a tight 9-tap loop instead.
//!
//! Gradients: the input gradient of a 3x3 correlation with zero padding is the
//! same correlation of the output gradient with the kernel rotated by 180°, so
//! [`DwConv3x3`] with `flip = true` doubles as its own backward; the weight
//! gradient is [`DwConv3x3WeightGrad`].

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType, bail};
use rayon::prelude::*;

use super::real::dot;

/// `y = depthwise_conv3x3(x, w)`; with `flip` the 9 taps of each kernel are reversed.
pub(crate) struct DwConv3x3 {
    pub(crate) flip: bool,
}

/// Weight gradient of [`DwConv3x3`]: `(x, grad_y) -> grad_w` of shape `[C, 1, 3, 3]`.
pub(crate) struct DwConv3x3WeightGrad {
    pub(crate) flip: bool,
}

/// Shape checks shared by the CPU and CUDA paths; returns `(B, C, H, W)`.
pub(crate) fn dims_xw(x: &Layout, w: &Layout) -> Result<(usize, usize, usize, usize)> {
    let (b, c, h, wd) = x.shape().dims4()?;
    let wdims = w.shape().dims();
    if wdims != [c, 1, 3, 3] {
        bail!("depthwise_conv3x3: weight shape {wdims:?} does not match [{c}, 1, 3, 3]");
    }
    Ok((b, c, h, wd))
}

/// Returns the contiguous slice a layout addresses, or an error for strided views.
pub(crate) fn contiguous<'a, T>(data: &'a [T], layout: &Layout, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: input must be contiguous"),
    }
}

fn taps<T: WithDType>(w: &[T], flip: bool) -> [T; 9] {
    let mut k = [T::zero(); 9];
    k.copy_from_slice(w);
    if flip {
        k.reverse();
    }
    k
}

/// Multiply-add of one output row with three input rows (above, same, below).
#[inline(always)]
fn row_fwd<T: WithDType>(out: &mut [T], r0: &[T], r1: &[T], r2: &[T], k: &[T; 9]) {
    let wd = out.len();
    let tap = |r: &[T], x: usize, o: usize| k[o] * r[x];
    if wd == 1 {
        out[0] = tap(r0, 0, 1) + tap(r1, 0, 4) + tap(r2, 0, 7);
        return;
    }
    out[0] = tap(r0, 0, 1)
        + tap(r0, 1, 2)
        + tap(r1, 0, 4)
        + tap(r1, 1, 5)
        + tap(r2, 0, 7)
        + tap(r2, 1, 8);
    let l = wd - 1;
    out[l] = tap(r0, l - 1, 0)
        + tap(r0, l, 1)
        + tap(r1, l - 1, 3)
        + tap(r1, l, 4)
        + tap(r2, l - 1, 6)
        + tap(r2, l, 7);
    let n = wd - 2;
    // Equal-length windows let the compiler drop bounds checks and vectorise.
    let (a0, a1, a2) = (&r0[..n], &r0[1..n + 1], &r0[2..n + 2]);
    let (b0, b1, b2) = (&r1[..n], &r1[1..n + 1], &r1[2..n + 2]);
    let (c0, c1, c2) = (&r2[..n], &r2[1..n + 1], &r2[2..n + 2]);
    let o = &mut out[1..n + 1];
    for i in 0..n {
        o[i] = k[0] * a0[i]
            + k[1] * a1[i]
            + k[2] * a2[i]
            + k[3] * b0[i]
            + k[4] * b1[i]
            + k[5] * b2[i]
            + k[6] * c0[i]
            + k[7] * c1[i]
            + k[8] * c2[i];
    }
}

/// One `[H, W]` plane of the forward pass; `zero` is a row of zeros (padding).
#[inline(always)]
fn plane_fwd<T: WithDType>(inp: &[T], out: &mut [T], k: &[T; 9], wd: usize, zero: &[T]) {
    let h = inp.len() / wd;
    for y in 0..h {
        let r0 = if y > 0 {
            &inp[(y - 1) * wd..y * wd]
        } else {
            zero
        };
        let r1 = &inp[y * wd..(y + 1) * wd];
        let r2 = if y + 1 < h {
            &inp[(y + 1) * wd..(y + 2) * wd]
        } else {
            zero
        };
        row_fwd(&mut out[y * wd..(y + 1) * wd], r0, r1, r2, k);
    }
}

/// Adds one plane's contribution to the 9 weight-gradient taps.
#[inline(always)]
fn plane_wgrad<T: WithDType>(inp: &[T], g: &[T], acc: &mut [T; 9], wd: usize) {
    let h = inp.len() / wd;
    for y in 0..h {
        let gr = &g[y * wd..(y + 1) * wd];
        for ky in 0..3 {
            let iy = y as isize + ky as isize - 1;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            let iy = iy as usize;
            let ir = &inp[iy * wd..(iy + 1) * wd];
            // tap (ky, kx) pairs g[x] with in[x + kx - 1]
            acc[ky * 3] += dot(&gr[1..], &ir[..wd - 1]);
            acc[ky * 3 + 1] += dot(gr, ir);
            acc[ky * 3 + 2] += dot(&gr[..wd - 1], &ir[1..]);
        }
    }
}

fn fwd_typed<T: WithDType>(
    x: &[T],
    w: &[T],
    dims: (usize, usize, usize, usize),
    flip: bool,
) -> Vec<T> {
    let (b, c, h, wd) = dims;
    let plane = h * wd;
    let mut out = vec![T::zero(); b * c * plane];
    if plane == 0 {
        return out;
    }
    let zero = vec![T::zero(); wd];
    out.par_chunks_mut(plane).enumerate().for_each(|(p, o)| {
        let ch = p % c;
        let k = taps(&w[ch * 9..ch * 9 + 9], flip);
        super::wide::run(|| plane_fwd(&x[p * plane..(p + 1) * plane], o, &k, wd, &zero));
    });
    out
}

fn wgrad_typed<T: WithDType>(
    x: &[T],
    g: &[T],
    dims: (usize, usize, usize, usize),
    flip: bool,
) -> Vec<T> {
    let (b, c, h, wd) = dims;
    let plane = h * wd;
    let mut gw = vec![T::zero(); c * 9];
    if plane == 0 {
        return gw;
    }
    gw.par_chunks_mut(9).enumerate().for_each(|(ch, out)| {
        let mut acc = [T::zero(); 9];
        for bi in 0..b {
            let p = bi * c + ch;
            super::wide::run(|| {
                plane_wgrad(
                    &x[p * plane..(p + 1) * plane],
                    &g[p * plane..(p + 1) * plane],
                    &mut acc,
                    wd,
                )
            });
        }
        if flip {
            acc.reverse();
        }
        out.copy_from_slice(&acc);
    });
    gw
}

impl CustomOp2 for DwConv3x3 {
    fn name(&self) -> &'static str {
        "depthwise-conv3x3"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = dims_xw(l1, l2)?;
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => {
                let (x, w) = (
                    contiguous(x, l1, self.name())?,
                    contiguous(w, l2, self.name())?,
                );
                CpuStorage::F32(fwd_typed(x, w, dims, self.flip))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w)) => {
                let (x, w) = (
                    contiguous(x, l1, self.name())?,
                    contiguous(w, l2, self.name())?,
                );
                CpuStorage::F64(fwd_typed(x, w, dims, self.flip))
            }
            _ => bail!("depthwise_conv3x3: only f32/f64 inputs of one dtype are supported"),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::depthwise_cuda::conv_fwd(s1, l1, s2, l2, self.flip)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gx = grad.apply_op2_no_bwd(w, &DwConv3x3 { flip: !self.flip })?;
        let gw = x.apply_op2_no_bwd(&grad, &DwConv3x3WeightGrad { flip: self.flip })?;
        Ok((Some(gx), Some(gw)))
    }
}

impl CustomOp2 for DwConv3x3WeightGrad {
    fn name(&self) -> &'static str {
        "depthwise-conv3x3-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.shape().dims4()?;
        if l2.shape() != l1.shape() {
            bail!(
                "{}: gradient shape {:?} differs from input {:?}",
                self.name(),
                l2.shape(),
                l1.shape()
            );
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => {
                let (x, g) = (
                    contiguous(x, l1, self.name())?,
                    contiguous(g, l2, self.name())?,
                );
                CpuStorage::F32(wgrad_typed(x, g, dims, self.flip))
            }
            (CpuStorage::F64(x), CpuStorage::F64(g)) => {
                let (x, g) = (
                    contiguous(x, l1, self.name())?,
                    contiguous(g, l2, self.name())?,
                );
                CpuStorage::F64(wgrad_typed(x, g, dims, self.flip))
            }
            _ => bail!(
                "{}: only f32/f64 inputs of one dtype are supported",
                self.name()
            ),
        };
        Ok((out, Shape::from((dims.1, 1, 3, 3))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::depthwise_cuda::weight_grad(s1, l1, s2, l2, self.flip)
    }
}
