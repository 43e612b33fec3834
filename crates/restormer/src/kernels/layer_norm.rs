//! Fused channel LayerNorm (WithBias) for `[B, C, H, W]` on CPU, with its backward.
//!
//! Candle's fused `layer_norm` has no gradient and the composed version costs
//! eight autograd nodes with full-size temporaries; this runs one pass for the
//! per-pixel statistics and one per `(b, c)` row, forward and backward.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::composed::LN_EPS;
use super::real::{Real, arg, axpy};

/// Pixels per statistics task: a few hundred pixels times C channels stays in L2.
const CHUNK: usize = 256;

/// `(x, weight, bias) -> y`, normalising over dim 1.
pub(crate) struct LayerNorm;

/// `(x, weight, grad_y) -> [grad_x (B*C*H*W), grad_weight (C), grad_bias (C)]` packed flat.
struct LayerNormBackward;

/// Per-pixel statistics of one batch item: mean and 1/sqrt(var + eps), and for the
/// backward the channel means of `g = dy * w` and of `g * xhat`.
struct Stats<T> {
    mean: Vec<T>,
    rstd: Vec<T>,
    m1: Vec<T>,
    m2: Vec<T>,
}

/// One statistics task: batch item, first pixel, and its slices of mean, rstd, m1, m2.
type StatsTask<'a, T> = (
    usize,
    usize,
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
);

fn dims(l: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    let (b, c, h, wd) = l.shape().dims4()?;
    if w.shape().dims() != [c] {
        bail!(
            "channel_layer_norm: weight shape {:?} does not match {c} channels",
            w.shape()
        );
    }
    Ok((b, c, h * wd))
}

/// Statistics for `x` `[B, C, HW]`; with `dy` also the two backward means.
fn stats<T: Real>(x: &[T], w: &[T], dy: Option<&[T]>, b: usize, c: usize, hw: usize) -> Stats<T> {
    let n = b * hw;
    let zero = T::zero();
    let mut s = Stats {
        mean: vec![zero; n],
        rstd: vec![zero; n],
        m1: vec![],
        m2: vec![],
    };
    if dy.is_some() {
        s.m1 = vec![zero; n];
        s.m2 = vec![zero; n];
    }
    let inv_c = T::from_f64(1.0 / c as f64);
    let eps = T::from_f64(LN_EPS);
    let Stats { mean, rstd, m1, m2 } = &mut s;
    let chunks_per_item = hw.div_ceil(CHUNK);
    let mut tasks: Vec<StatsTask<T>> = Vec::new();
    let (mut mr, mut rr, mut m1r, mut m2r) =
        (&mut mean[..], &mut rstd[..], &mut m1[..], &mut m2[..]);
    for bi in 0..b {
        for k in 0..chunks_per_item {
            let len = CHUNK.min(hw - k * CHUNK);
            let (a, rest) = mr.split_at_mut(len);
            mr = rest;
            let (r, rest) = rr.split_at_mut(len);
            rr = rest;
            let (g1, g2) = if dy.is_some() {
                let (g1, rest) = m1r.split_at_mut(len);
                m1r = rest;
                let (g2, rest) = m2r.split_at_mut(len);
                m2r = rest;
                (g1, g2)
            } else {
                (&mut [][..], &mut [][..])
            };
            tasks.push((bi, k * CHUNK, a, r, g1, g2));
        }
    }
    tasks
        .into_par_iter()
        .for_each(|(bi, p0, mean, rstd, m1, m2)| {
            super::wide::run(|| {
                let len = mean.len();
                let row = |ch: usize| (bi * c + ch) * hw + p0;
                for ch in 0..c {
                    axpy(mean, T::one(), &x[row(ch)..row(ch) + len]);
                }
                mean.iter_mut().for_each(|m| *m *= inv_c);
                for ch in 0..c {
                    let xr = &x[row(ch)..row(ch) + len];
                    for p in 0..len {
                        let d = xr[p] - mean[p];
                        rstd[p] += d * d;
                    }
                }
                rstd.iter_mut()
                    .for_each(|v| *v = T::one() / (*v * inv_c + eps).sqrt());
                if let Some(dy) = dy {
                    for ch in 0..c {
                        let (xr, gr) = (&x[row(ch)..row(ch) + len], &dy[row(ch)..row(ch) + len]);
                        for p in 0..len {
                            let g = gr[p] * w[ch];
                            m1[p] += g;
                            m2[p] += g * (xr[p] - mean[p]) * rstd[p];
                        }
                    }
                    m1.iter_mut().for_each(|v| *v *= inv_c);
                    m2.iter_mut().for_each(|v| *v *= inv_c);
                }
            })
        });
    s
}

fn forward<T: Real>(x: &[T], w: &[T], bias: &[T], b: usize, c: usize, hw: usize) -> Vec<T> {
    let s = stats(x, w, None, b, c, hw);
    let mut y = vec![T::zero(); x.len()];
    y.par_chunks_mut(hw.max(1)).enumerate().for_each(|(r, yr)| {
        let (bi, ch) = (r / c, r % c);
        let xr = &x[r * hw..(r + 1) * hw];
        let (mean, rstd) = (
            &s.mean[bi * hw..(bi + 1) * hw],
            &s.rstd[bi * hw..(bi + 1) * hw],
        );
        let (wc, bc) = (w[ch], bias[ch]);
        super::wide::run(|| {
            for p in 0..hw {
                yr[p] = (xr[p] - mean[p]) * rstd[p] * wc + bc;
            }
        })
    });
    y
}

fn backward<T: Real>(x: &[T], w: &[T], dy: &[T], b: usize, c: usize, hw: usize) -> Vec<T> {
    let s = stats(x, w, Some(dy), b, c, hw);
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * c);
    out.resize(n, T::zero());
    let partial: Vec<(T, T)> = out
        .par_chunks_mut(hw.max(1))
        .enumerate()
        .map(|(r, dxr)| {
            let (bi, ch) = (r / c, r % c);
            let (xr, gr) = (&x[r * hw..(r + 1) * hw], &dy[r * hw..(r + 1) * hw]);
            let item = bi * hw..(bi + 1) * hw;
            let (mean, rstd, m1, m2) = (
                &s.mean[item.clone()],
                &s.rstd[item.clone()],
                &s.m1[item.clone()],
                &s.m2[item],
            );
            let wc = w[ch];
            super::wide::run(|| {
                let (mut dw, mut db) = (T::zero(), T::zero());
                for p in 0..hw {
                    let xhat = (xr[p] - mean[p]) * rstd[p];
                    dxr[p] = rstd[p] * (gr[p] * wc - m1[p] - xhat * m2[p]);
                    dw += gr[p] * xhat;
                    db += gr[p];
                }
                (dw, db)
            })
        })
        .collect();
    let mut dw = vec![T::zero(); c];
    let mut db = vec![T::zero(); c];
    for (r, (pw, pb)) in partial.into_iter().enumerate() {
        dw[r % c] += pw;
        db[r % c] += pb;
    }
    out.extend_from_slice(&dw);
    out.extend_from_slice(&db);
    out
}

fn run<T: Real>(op: &str, s: [(&CpuStorage, &Layout); 3], bwd: bool) -> Result<CpuStorage> {
    let (b, c, hw) = dims(s[0].1, s[1].1)?;
    let x = arg::<T>(s[0].0, s[0].1, op)?;
    let w = arg::<T>(s[1].0, s[1].1, op)?;
    let third = arg::<T>(s[2].0, s[2].1, op)?;
    Ok(T::storage(if bwd {
        backward(x, w, third, b, c, hw)
    } else {
        forward(x, w, third, b, c, hw)
    }))
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "channel-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let args = [(s1, l1), (s2, l2), (s3, l3)];
        let out = match s1 {
            CpuStorage::F64(_) => run::<f64>(self.name(), args, false)?,
            _ => run::<f32>(self.name(), args, false)?,
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c) = (x.elem_count(), w.elem_count());
        let packed = x.apply_op3_no_bwd(w, &grad.contiguous()?, &LayerNormBackward)?;
        let gx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let gw = packed.narrow(0, n, c)?;
        let gb = packed.narrow(0, n + c, c)?;
        Ok((Some(gx), Some(gw), Some(gb)))
    }
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "channel-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let args = [(s1, l1), (s2, l2), (s3, l3)];
        let out = match s1 {
            CpuStorage::F64(_) => run::<f64>(self.name(), args, true)?,
            _ => run::<f32>(self.name(), args, true)?,
        };
        let len = l1.shape().elem_count() + 2 * l2.shape().elem_count();
        Ok((out, Shape::from(len)))
    }
}
