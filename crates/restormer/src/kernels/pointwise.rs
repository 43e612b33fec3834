//! 1x1 convolution as one autograd node.
//!
//! Written with stock ops (reshape, broadcast, matmul, reshape) a 1x1 convolution
//! is five graph nodes, and Candle's backward allocates, zero-fills and adds a
//! full-size gradient buffer for every node. This op runs the same batched GEMM
//! through the storage backend directly and returns both gradients from its own
//! backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};

/// `(x [B, C, H, W], weight [O, C, 1, 1]) -> [B, O, H, W]`.
pub(crate) struct PointwiseConv;

/// `(B, C, O, HW)` with the weight and input GEMM layouts.
type GemmPlan = ((usize, usize, usize, usize), Layout, Layout);

/// Problem size `(B, C, O, HW)` and the GEMM layouts: the weight broadcast over the
/// batch as `[B, O, C]` and the input as `[B, C, HW]`.
fn plan(x: &Layout, w: &Layout) -> Result<GemmPlan> {
    let (b, c, h, wd) = x.shape().dims4()?;
    let (o, wc, kh, kw) = w.shape().dims4()?;
    if wc != c || kh != 1 || kw != 1 {
        bail!(
            "pointwise_conv: weight {:?} does not fit {c} input channels",
            w.shape()
        );
    }
    if !x.is_contiguous() || !w.is_contiguous() {
        bail!("pointwise_conv: arguments must be contiguous");
    }
    let n = h * wd;
    let lw = Layout::new(Shape::from((b, o, c)), vec![0, c, 1], w.start_offset());
    let lx = Layout::new(Shape::from((b, c, n)), vec![c * n, n, 1], x.start_offset());
    Ok(((b, c, o, n), lw, lx))
}

impl CustomOp2 for PointwiseConv {
    fn name(&self) -> &'static str {
        "pointwise-conv"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((b, c, o, n), lw, lx) = plan(l1, l2)?;
        let y = s2.matmul(s1, (b, o, n, c), &lw, &lx)?;
        let (_, _, h, w) = l1.shape().dims4()?;
        Ok((y, Shape::from((b, o, h, w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let ((b, c, o, n), lw, lx) = plan(l1, l2)?;
        let y = s2.matmul(s1, (b, o, n, c), &lw, &lx)?;
        let (_, _, h, w) = l1.shape().dims4()?;
        Ok((y, Shape::from((b, o, h, w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, c, h, wd) = x.dims4()?;
        let o = w.dim(0)?;
        // detached copies keep these products out of any autograd graph
        let (x, w) = (x.detach(), w.detach());
        // [B, O, H, W] -> [B, O, HW]
        let g = grad.contiguous()?.reshape((b, o, h * wd))?;
        // dX = Wᵀ dY: [C, O] x [B, O, HW] -> [B, C, HW] (the small transposed weight
        // is copied so the GEMM reads both operands row-major)
        let gx = w
            .reshape((o, c))?
            .t()?
            .contiguous()?
            .broadcast_matmul(&g)?
            .reshape((b, c, h, wd))?;
        // dW = Σ_b dY Xᵀ: [B, O, HW] x [B, HW, C] -> [B, O, C] -> [O, C, 1, 1]
        let gw = g
            .matmul(&x.reshape((b, c, h * wd))?.t()?)?
            .sum(0)?
            .reshape((o, c, 1, 1))?;
        Ok((Some(gx), Some(gw)))
    }
}
