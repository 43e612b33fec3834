//! One autograd node per transformer block, for CPU training.
//!
//! Left to Candle's autograd, a block is about a dozen graph nodes, and for
//! every argument of every node the backward pass allocates a zero-filled
//! gradient buffer and adds the node's gradient into it, even when that
//! argument receives exactly one gradient (the common case). For a block
//! those buffers are activation-sized, so this bookkeeping costs as much
//! memory traffic as some of the kernels themselves.
//!
//! Here the block runs its forward pass on detached tensors, keeps the
//! intermediates it needs, and records a single node whose backward chains the
//! kernels' own backward functions by hand. The two residual connections are
//! the only places where gradients are summed. The block's parameters enter
//! the graph as one flat tensor (a `cat` of the flattened variables, a few
//! hundred kilobytes at most), so Candle still routes every parameter's
//! gradient to its variable and the optimiser sees nothing different.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Storage, Tensor, bail};
use rayon::prelude::*;

use crate::kernels::{self, grad};

/// Whether [`forward`] can stand in for the block's autograd forward, given
/// its [`TransformerBlock::fusable_parameters`](super::blocks::TransformerBlock::fusable_parameters):
/// a CPU tensor in f32 or f64 and trainable weights (a frozen model records
/// no graph to begin with).
pub(crate) fn applies(params: &[&Tensor; 11], x: &Tensor) -> bool {
    x.device().is_cpu()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && params.iter().any(|p| p.is_variable() || p.track_op())
}

/// What the backward pass needs from the forward pass.
struct Saved {
    heads: usize,
    /// The parameters, detached, in `fusable_parameters` order.
    w: Vec<Tensor>,
    x: Tensor,
    n1: Tensor,
    q0: Tensor,
    q1: Tensor,
    a: Tensor,
    x2: Tensor,
    n2: Tensor,
    f0: Tensor,
    f1: Tensor,
    g: Tensor,
}

/// The graph node of one block: its forward adds the feed-forward branch to
/// the attention residual (the block's last step), its backward is the
/// block's chain rule.
struct BlockNode {
    saved: Saved,
    /// The feed-forward branch's output, taken by the node's forward.
    ffn_out: Mutex<Option<Tensor>>,
}

/// `x + attn(norm1(x))`, then `+ ffn(norm2(·))`, recorded as one node.
pub(crate) fn forward(heads: usize, params: &[&Tensor; 11], x: &Tensor) -> Result<Tensor> {
    let w: Vec<Tensor> = params.iter().map(|p| p.detach()).collect();
    let xd = x.detach().contiguous()?;
    let n1 = kernels::channel_layer_norm(&xd, &w[0], Some(&w[1]))?;
    let q0 = kernels::pointwise_conv(&n1, &w[3])?;
    let q1 = kernels::depthwise_conv3x3(&q0, &w[4])?;
    let a = kernels::transposed_attention(&q1, &w[2], heads)?;
    let x2 = (&xd + kernels::pointwise_conv(&a, &w[5])?)?;
    let n2 = kernels::channel_layer_norm(&x2, &w[6], Some(&w[7]))?;
    let f0 = kernels::pointwise_conv(&n2, &w[8])?;
    let f1 = kernels::depthwise_conv3x3(&f0, &w[9])?;
    let g = kernels::gelu_gate(&f1)?;
    let ffn_out = kernels::pointwise_conv(&g, &w[10])?;
    let flat = params
        .iter()
        .map(|p| p.flatten_all())
        .collect::<Result<Vec<_>>>()?;
    let flat = Tensor::cat(&flat, 0)?;
    let node = BlockNode {
        saved: Saved {
            heads,
            w,
            x: xd,
            n1,
            q0,
            q1,
            a,
            x2,
            n2,
            f0,
            f1,
            g,
        },
        ffn_out: Mutex::new(Some(ffn_out)),
    };
    x.contiguous()?.apply_op2(&flat, node)
}

/// `a + b` for two contiguous CPU tensors of the same shape, in parallel
/// (writing the result once, without zero-filling it first).
fn residual_sum<T>(a: &Tensor, b: &Tensor) -> Result<Vec<T>>
where
    T: candle_core::WithDType + std::ops::Add<Output = T>,
{
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    let (Storage::Cpu(sa), Storage::Cpu(sb)) = (&*sa, &*sb) else {
        bail!("fused block: the residual terms are not on the CPU");
    };
    let (Some((a0, a1)), Some((b0, b1))) = (la.contiguous_offsets(), lb.contiguous_offsets())
    else {
        bail!("fused block: a residual term is not contiguous");
    };
    let (a, b) = (&sa.as_slice::<T>()?[a0..a1], &sb.as_slice::<T>()?[b0..b1]);
    Ok(a.par_iter().zip(b).map(|(x, y)| *x + *y).collect())
}

impl CustomOp2 for BlockNode {
    fn name(&self) -> &'static str {
        "restormer-block"
    }

    fn cpu_fwd(
        &self,
        _x: &CpuStorage,
        lx: &Layout,
        _p: &CpuStorage,
        _lp: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ffn_out = self
            .ffn_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(ffn_out) = ffn_out else {
            bail!("fused block: forward evaluated twice");
        };
        let x2 = &self.saved.x2;
        if x2.shape() != lx.shape() || ffn_out.shape() != lx.shape() {
            bail!(
                "fused block: branch shapes differ from the input {:?}",
                lx.shape()
            );
        }
        let y = match x2.dtype() {
            DType::F64 => CpuStorage::F64(residual_sum(x2, &ffn_out)?),
            _ => CpuStorage::F32(residual_sum(x2, &ffn_out)?),
        };
        Ok((y, lx.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _p: &Tensor,
        _res: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let s = &self.saved;
        let w = &s.w;
        let gy = gy.contiguous()?;
        // y = x2 + project_out(gelu_gate(dwconv(project_in(norm2(x2)))))
        let (gg, g_ffn_out) = grad::pointwise_conv(&s.g, &w[10], &gy)?;
        let gf1 = grad::gelu_gate(&s.f1, &gg)?;
        let (gf0, g_ffn_dw) = grad::depthwise_conv3x3(&s.f0, &w[9], &gf1)?;
        let (gn2, g_in) = grad::pointwise_conv(&s.n2, &w[8], &gf0)?;
        let (gx2_norm, g_norm2_w, g_norm2_b) = grad::channel_layer_norm(&s.x2, &w[6], &w[7], &gn2)?;
        let gx2 = (&gy + gx2_norm)?;
        // x2 = x + project_out(attention(dwconv(qkv(norm1(x)))))
        let (ga, g_attn_out) = grad::pointwise_conv(&s.a, &w[5], &gx2)?;
        let (gq1, g_temp) = grad::transposed_attention(&s.q1, &w[2], s.heads, &ga)?;
        let (gq0, g_qkv_dw) = grad::depthwise_conv3x3(&s.q0, &w[4], &gq1)?;
        let (gn1, g_qkv) = grad::pointwise_conv(&s.n1, &w[3], &gq0)?;
        let (gx_norm, g_norm1_w, g_norm1_b) = grad::channel_layer_norm(&s.x, &w[0], &w[1], &gn1)?;
        let gx = (gx2 + gx_norm)?;
        let gp = [
            g_norm1_w, g_norm1_b, g_temp, g_qkv, g_qkv_dw, g_attn_out, g_norm2_w, g_norm2_b, g_in,
            g_ffn_dw, g_ffn_out,
        ]
        .iter()
        .map(|g| g.flatten_all())
        .collect::<Result<Vec<_>>>()?;
        Ok((Some(gx), Some(Tensor::cat(&gp, 0)?)))
    }
}
