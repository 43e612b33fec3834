//! Hand-written kernels for the layers where stock Candle is slow or lacks a
//! backward, each with a gradient that Candle's autograd picks up.
//!
//! The public functions dispatch on the tensor's device: CPU tensors use the
//! multi-threaded kernels here (rayon's global pool). On CUDA,
//! [`depthwise_conv3x3`] runs an NVRTC-compiled kernel and [`pointwise_conv`]
//! cuBLAS through Candle's storage; the other three fall back to the
//! [`reference`] compositions, whose gradients Candle provides.

mod attention;
mod composed;
mod depthwise;
#[cfg(feature = "cuda")]
mod depthwise_cuda;
mod gelu_gate;
mod layer_norm;
mod pointwise;
mod real;
mod wide;

use candle_core::{Result, Tensor};

/// Reference implementations from stock Candle ops (slower; for tests and benches).
pub mod reference {
    pub use super::composed::{
        channel_layer_norm, depthwise_conv3x3, gelu_gate, pointwise_conv, transposed_attention,
    };
}

/// The kernels' backward passes, called directly by code that chains them
/// by hand (one graph node for a whole block, `model::fused`). Each takes the
/// op's inputs and the gradient of its output and returns the gradients of
/// its inputs, exactly as Candle's autograd would receive them. CPU only.
/// None of these backward passes reads the op's own result, so the gradient
/// stands in for it in the `res` argument.
pub(crate) mod grad {
    use candle_core::{CustomOp1, CustomOp2, CustomOp3, Result, Tensor, bail};

    fn both(g: (Option<Tensor>, Option<Tensor>), op: &str) -> Result<(Tensor, Tensor)> {
        match g {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => bail!("{op}: backward returned no gradient"),
        }
    }

    /// `(dX, dW)` of [`super::pointwise_conv`].
    pub(crate) fn pointwise_conv(x: &Tensor, w: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
        both(
            super::pointwise::PointwiseConv.bwd(x, w, g, g)?,
            "pointwise_conv",
        )
    }

    /// `(dX, dW)` of [`super::depthwise_conv3x3`].
    pub(crate) fn depthwise_conv3x3(
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let op = super::depthwise::DwConv3x3 { flip: false };
        both(op.bwd(x, w, g, g)?, "depthwise_conv3x3")
    }

    /// `(dX, dWeight, dBias)` of [`super::channel_layer_norm`] with a bias.
    pub(crate) fn channel_layer_norm(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        g: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        match super::layer_norm::LayerNorm.bwd(x, w, b, g, g)? {
            (Some(gx), Some(gw), Some(gb)) => Ok((gx, gw, gb)),
            _ => bail!("channel_layer_norm: backward returned no gradient"),
        }
    }

    /// `dX` of [`super::gelu_gate`].
    pub(crate) fn gelu_gate(x: &Tensor, g: &Tensor) -> Result<Tensor> {
        match super::gelu_gate::GeluGate.bwd(x, g, g)? {
            Some(gx) => Ok(gx),
            None => bail!("gelu_gate: backward returned no gradient"),
        }
    }

    /// `(dQKV, dTemperature)` of [`super::transposed_attention`].
    pub(crate) fn transposed_attention(
        qkv: &Tensor,
        temperature: &Tensor,
        heads: usize,
        g: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let op = super::attention::TransposedAttention { heads };
        both(op.bwd(qkv, temperature, g, g)?, "transposed_attention")
    }
}

/// Depthwise 3x3 convolution, padding 1, stride 1: `x` `[B, C, H, W]`, `weight`
/// `[C, 1, 3, 3]` (PyTorch layout) -> `[B, C, H, W]`. f32 or f64 on CPU, f32 on CUDA.
///
/// Differentiable with respect to both arguments.
pub fn depthwise_conv3x3(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let weight = weight.contiguous()?;
    x.apply_op2(&weight, depthwise::DwConv3x3 { flip: false })
}

/// 1x1 convolution without bias: `x` `[B, C, H, W]`, `weight` `[O, C, 1, 1]`
/// (PyTorch layout) -> `[B, O, H, W]`, as one batched GEMM. Differentiable in both.
pub fn pointwise_conv(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, pointwise::PointwiseConv)
}

/// Channel LayerNorm of `[B, C, H, W]` over `C` per pixel (eps 1e-5, biased
/// variance); `bias = None` gives the official bias-free variant.
pub fn channel_layer_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(bias) if x.device().is_cpu() => x.contiguous()?.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            layer_norm::LayerNorm,
        ),
        _ => composed::channel_layer_norm(x, weight, bias),
    }
}

/// GDFN gate: `gelu(x1) * x2` (exact erf GELU) for the channel halves of
/// `[B, 2h, H, W]` -> `[B, h, H, W]`.
pub fn gelu_gate(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op1(gelu_gate::GeluGate)
    } else {
        composed::gelu_gate(x)
    }
}

/// MDTA core: `qkv` `[B, 3C, H, W]`, `temperature` `[heads, 1, 1]` -> `[B, C, H, W]`,
/// per head `softmax(q̂ k̂ᵀ · t) v` with `q̂`, `k̂` L2-normalised along the pixels.
pub fn transposed_attention(qkv: &Tensor, temperature: &Tensor, heads: usize) -> Result<Tensor> {
    if qkv.device().is_cpu() {
        let op = attention::TransposedAttention { heads };
        qkv.contiguous()?.apply_op2(&temperature.contiguous()?, op)
    } else {
        composed::transposed_attention(qkv, temperature, heads)
    }
}

#[cfg(test)]
mod tests;
