//! Fused MDTA core on CPU: L2-normalise q and k along the pixels, channel
//! attention `softmax(q̂ k̂ᵀ · t)`, apply to v; and the matching backward.
//!
//! The attention matrices are only `c x c` per head (`c = C / heads`), so the work
//! is in long dot products and row updates over the pixels. Both passes are split
//! into independent rows for rayon, so even batch 1 with one head runs in parallel.
//! Nothing is saved between forward and backward: the backward recomputes the
//! norms and the softmax, which costs less than keeping `q̂`, `k̂` alive.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::composed::NORM_EPS;
use super::real::{Real, arg, axpy, dot};

/// `(qkv [B, 3C, H, W], temperature [heads, 1, 1]) -> [B, C, H, W]`.
pub(crate) struct TransposedAttention {
    pub(crate) heads: usize,
}

/// `(qkv, temperature, grad_out) -> [grad_qkv (B*3C*H*W), grad_temperature (heads)]` packed.
struct TransposedAttentionBackward {
    heads: usize,
}

/// Problem sizes; rows are addressed as `(b, part, channel)` with part 0/1/2 = q/k/v.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    ch: usize,
    heads: usize,
    c: usize,
    n: usize,
}

impl Dims {
    fn new(qkv: &Layout, temp: &Layout, heads: usize) -> Result<Self> {
        let (b, c3, h, w) = qkv.shape().dims4()?;
        if c3 % 3 != 0 || heads == 0 || (c3 / 3) % heads != 0 {
            bail!("transposed_attention: {c3} channels do not split into q, k, v of {heads} heads");
        }
        if temp.shape().elem_count() != heads {
            bail!(
                "transposed_attention: temperature shape {:?} is not [{heads}, 1, 1]",
                temp.shape()
            );
        }
        let ch = c3 / 3;
        Ok(Self {
            b,
            ch,
            heads,
            c: ch / heads,
            n: h * w,
        })
    }

    /// Offset of row `(b, part, channel)` in the qkv buffer.
    fn row(&self, b: usize, part: usize, channel: usize) -> usize {
        ((b * 3 + part) * self.ch + channel) * self.n
    }
}

/// L2 norms of every q and k row: index `(b * 2 + part) * C + channel`.
fn norms<T: Real>(qkv: &[T], d: Dims) -> Vec<f64> {
    (0..d.b * 2 * d.ch)
        .into_par_iter()
        .map(|r| {
            let (b, part, channel) = (r / (2 * d.ch), (r / d.ch) % 2, r % d.ch);
            let row = &qkv[d.row(b, part, channel)..][..d.n];
            super::wide::run(|| dot(row, row)).to_f64().sqrt()
        })
        .collect()
}

/// One attention row `(b, head, i)`: returns `(S_i·, P_i·)` with `S` the cosine
/// similarities and `P = softmax(t S)`.
#[inline(always)]
fn attention_row<T: Real>(
    qkv: &[T],
    nrm: &[f64],
    t: f64,
    d: Dims,
    b: usize,
    hd: usize,
    i: usize,
) -> (Vec<f64>, Vec<f64>) {
    let qi = hd * d.c + i;
    let q = &qkv[d.row(b, 0, qi)..][..d.n];
    let nq = nrm[b * 2 * d.ch + qi].max(NORM_EPS);
    let s: Vec<f64> = (0..d.c)
        .map(|j| {
            let kj = hd * d.c + j;
            let k = &qkv[d.row(b, 1, kj)..][..d.n];
            dot(q, k).to_f64() / (nq * nrm[(b * 2 + 1) * d.ch + kj].max(NORM_EPS))
        })
        .collect();
    let max = s.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(t * v));
    let mut p: Vec<f64> = s.iter().map(|&v| (t * v - max).exp()).collect();
    let z: f64 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= z);
    (s, p)
}

fn forward<T: Real>(qkv: &[T], temp: &[T], d: Dims) -> Vec<T> {
    let nrm = norms(qkv, d);
    // P rows indexed (b * C + channel) * c + j
    let p: Vec<f64> = (0..d.b * d.ch)
        .into_par_iter()
        .flat_map_iter(|r| {
            let (b, hd, i) = (r / d.ch, (r % d.ch) / d.c, r % d.c);
            super::wide::run(|| attention_row(qkv, &nrm, temp[hd].to_f64(), d, b, hd, i)).1
        })
        .collect();
    let mut out = vec![T::zero(); d.b * d.ch * d.n];
    out.par_chunks_mut(d.n.max(1))
        .enumerate()
        .for_each(|(r, o)| {
            let (b, hd) = (r / d.ch, (r % d.ch) / d.c);
            super::wide::run(|| {
                for j in 0..d.c {
                    let v = &qkv[d.row(b, 2, hd * d.c + j)..][..d.n];
                    axpy(o, T::from_f64(p[r * d.c + j]), v);
                }
            })
        });
    out
}

/// `row = (row - <row, x̂> x̂) / ‖x‖`: gradient through `x̂ = x / max(‖x‖, eps)`.
#[inline(always)]
fn through_normalize<T: Real>(row: &mut [T], x: &[T], norm: f64) {
    if norm <= NORM_EPS {
        let s = T::from_f64(1.0 / NORM_EPS);
        row.iter_mut().for_each(|v| *v *= s);
        return;
    }
    let a = dot(row, x).to_f64() / (norm * norm);
    let (inv, coef) = (T::from_f64(1.0 / norm), T::from_f64(a));
    for (r, &xv) in row.iter_mut().zip(x) {
        *r = (*r - coef * xv) * inv;
    }
}

fn backward<T: Real>(qkv: &[T], temp: &[T], dout: &[T], d: Dims) -> Vec<T> {
    let nrm = norms(qkv, d);
    // per row (b, head, i): dS (gradient w.r.t. cosine similarities), P, and the
    // row's contribution to the temperature gradient
    let rows: Vec<(Vec<f64>, Vec<f64>, f64)> = (0..d.b * d.ch)
        .into_par_iter()
        .map(|r| {
            let (b, hd, i) = (r / d.ch, (r % d.ch) / d.c, r % d.c);
            let t = temp[hd].to_f64();
            let (s, p) = super::wide::run(|| attention_row(qkv, &nrm, t, d, b, hd, i));
            let go = &dout[r * d.n..][..d.n];
            let dp: Vec<f64> = super::wide::run(|| {
                (0..d.c)
                    .map(|j| dot(go, &qkv[d.row(b, 2, hd * d.c + j)..][..d.n]).to_f64())
                    .collect()
            });
            let pdp: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
            let dl: Vec<f64> = p
                .iter()
                .zip(&dp)
                .map(|(pj, dpj)| pj * (dpj - pdp))
                .collect();
            let dt = dl.iter().zip(&s).map(|(a, b)| a * b).sum();
            (dl.iter().map(|v| v * t).collect(), p, dt)
        })
        .collect();
    let total = d.b * 3 * d.ch * d.n;
    let mut out = Vec::with_capacity(total + d.heads);
    out.resize(total, T::zero());
    out.par_chunks_mut(d.n.max(1))
        .enumerate()
        .for_each(|(r, o)| {
            let (b, part, channel) = (r / (3 * d.ch), (r / d.ch) % 3, r % d.ch);
            let (hd, i) = (channel / d.c, channel % d.c);
            let head_row = |k: usize| b * d.ch + hd * d.c + k;
            let nq = |k: usize| nrm[b * 2 * d.ch + hd * d.c + k];
            let nk = |k: usize| nrm[(b * 2 + 1) * d.ch + hd * d.c + k];
            super::wide::run(|| match part {
                0 => {
                    // dq̂_i = Σ_j dS_ij k̂_j
                    let ds = &rows[head_row(i)].0;
                    for j in 0..d.c {
                        let k = &qkv[d.row(b, 1, hd * d.c + j)..][..d.n];
                        axpy(o, T::from_f64(ds[j] / nk(j).max(NORM_EPS)), k);
                    }
                    through_normalize(o, &qkv[d.row(b, 0, channel)..][..d.n], nq(i));
                }
                1 => {
                    // dk̂_j = Σ_i dS_ij q̂_i  (here j = i)
                    for k in 0..d.c {
                        let q = &qkv[d.row(b, 0, hd * d.c + k)..][..d.n];
                        axpy(
                            o,
                            T::from_f64(rows[head_row(k)].0[i] / nq(k).max(NORM_EPS)),
                            q,
                        );
                    }
                    through_normalize(o, &qkv[d.row(b, 1, channel)..][..d.n], nk(i));
                }
                _ => {
                    // dv_j = Σ_i P_ij dO_i
                    for k in 0..d.c {
                        axpy(
                            o,
                            T::from_f64(rows[head_row(k)].1[i]),
                            &dout[head_row(k) * d.n..][..d.n],
                        );
                    }
                }
            })
        });
    let mut dt = vec![0f64; d.heads];
    for (r, row) in rows.iter().enumerate() {
        dt[(r % d.ch) / d.c] += row.2;
    }
    out.extend(dt.into_iter().map(T::from_f64));
    out
}

impl CustomOp2 for TransposedAttention {
    fn name(&self) -> &'static str {
        "transposed-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::new(l1, l2, self.heads)?;
        let out = match s1 {
            CpuStorage::F64(_) => f64::storage(forward(
                arg(s1, l1, self.name())?,
                arg(s2, l2, self.name())?,
                d,
            )),
            _ => f32::storage(forward::<f32>(
                arg(s1, l1, self.name())?,
                arg(s2, l2, self.name())?,
                d,
            )),
        };
        let (b, _, h, w) = l1.shape().dims4()?;
        Ok((out, Shape::from((b, d.ch, h, w))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        temp: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = qkv.elem_count();
        let packed = qkv.apply_op3_no_bwd(
            temp,
            &grad.contiguous()?,
            &TransposedAttentionBackward { heads: self.heads },
        )?;
        let gq = packed.narrow(0, 0, n)?.reshape(qkv.shape())?;
        let gt = packed.narrow(0, n, self.heads)?.reshape(temp.shape())?;
        Ok((Some(gq), Some(gt)))
    }
}

impl CustomOp3 for TransposedAttentionBackward {
    fn name(&self) -> &'static str {
        "transposed-attention-backward"
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
        let d = Dims::new(l1, l2, self.heads)?;
        if l3.shape().elem_count() != d.b * d.ch * d.n {
            bail!(
                "transposed_attention backward: gradient shape {:?} does not match",
                l3.shape()
            );
        }
        let name = self.name();
        let out = match s1 {
            CpuStorage::F64(_) => f64::storage(backward(
                arg(s1, l1, name)?,
                arg(s2, l2, name)?,
                arg(s3, l3, name)?,
                d,
            )),
            _ => f32::storage(backward::<f32>(
                arg(s1, l1, name)?,
                arg(s2, l2, name)?,
                arg(s3, l3, name)?,
                d,
            )),
        };
        Ok((out, Shape::from(l1.shape().elem_count() + self.heads)))
    }
}
