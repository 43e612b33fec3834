//! Fused GDFN gate `gelu(x1) * x2` (exact erf GELU) on CPU, with its backward.
//!
//! Replaces narrow + gelu + mul (three autograd nodes, two copies of the halves)
//! by one pass forward and one pass backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::real::{Real, arg};

/// `x` `[B, 2h, H, W]` -> `gelu(x[:, :h]) * x[:, h:]` `[B, h, H, W]`.
pub(crate) struct GeluGate;

/// `(x, grad_y) -> grad_x` for [`GeluGate`].
struct GeluGateBackward;

fn dims(l: &Layout) -> Result<(usize, usize, usize, usize, usize)> {
    let (b, c2, h, w) = l.shape().dims4()?;
    if c2 % 2 != 0 {
        bail!("gelu_gate: channel count {c2} is odd");
    }
    Ok((b, c2 / 2, h, w, h * w))
}

fn forward<T: Real>(x: &[T], b: usize, hid: usize, hw: usize) -> Vec<T> {
    let mut y = vec![T::zero(); b * hid * hw];
    y.par_chunks_mut(hw.max(1)).enumerate().for_each(|(r, yr)| {
        let (bi, ch) = (r / hid, r % hid);
        let x1 = &x[(bi * 2 * hid + ch) * hw..][..hw];
        let x2 = &x[(bi * 2 * hid + hid + ch) * hw..][..hw];
        super::wide::run(|| {
            for p in 0..hw {
                yr[p] = x1[p].gelu_and_grad().0 * x2[p];
            }
        })
    });
    y
}

fn backward<T: Real>(x: &[T], g: &[T], hid: usize, hw: usize) -> Vec<T> {
    let mut dx = vec![T::zero(); x.len()];
    let item = hid * hw;
    if item == 0 {
        return dx;
    }
    dx.par_chunks_mut(2 * item)
        .enumerate()
        .for_each(|(bi, dxb)| {
            let (d1, d2) = dxb.split_at_mut(item);
            d1.par_chunks_mut(hw)
                .zip(d2.par_chunks_mut(hw))
                .enumerate()
                .for_each(|(ch, (o1, o2))| {
                    let x1 = &x[(bi * 2 * hid + ch) * hw..][..hw];
                    let x2 = &x[(bi * 2 * hid + hid + ch) * hw..][..hw];
                    let gr = &g[(bi * hid + ch) * hw..][..hw];
                    super::wide::run(|| {
                        for p in 0..hw {
                            let (v, dv) = x1[p].gelu_and_grad();
                            o1[p] = gr[p] * x2[p] * dv;
                            o2[p] = gr[p] * v;
                        }
                    })
                });
        });
    dx
}

impl CustomOp1 for GeluGate {
    fn name(&self) -> &'static str {
        "gelu-gate"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, hid, h, w, hw) = dims(l)?;
        let out = match s {
            CpuStorage::F64(_) => f64::storage(forward(arg::<f64>(s, l, self.name())?, b, hid, hw)),
            _ => f32::storage(forward(arg::<f32>(s, l, self.name())?, b, hid, hw)),
        };
        Ok((out, Shape::from((b, hid, h, w))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        x.apply_op2_no_bwd(&grad.contiguous()?, &GeluGateBackward)
            .map(Some)
    }
}

impl CustomOp2 for GeluGateBackward {
    fn name(&self) -> &'static str {
        "gelu-gate-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, hid, _, _, hw) = dims(l1)?;
        if l2.shape().elem_count() != b * hid * hw {
            bail!(
                "gelu_gate backward: gradient shape {:?} does not match",
                l2.shape()
            );
        }
        let out = match s1 {
            CpuStorage::F64(_) => f64::storage(backward(
                arg::<f64>(s1, l1, self.name())?,
                arg::<f64>(s2, l2, self.name())?,
                hid,
                hw,
            )),
            _ => f32::storage(backward(
                arg::<f32>(s1, l1, self.name())?,
                arg::<f32>(s2, l2, self.name())?,
                hid,
                hw,
            )),
        };
        Ok((out, l1.shape().clone()))
    }
}
