//! Reference implementations built from stock Candle ops.
//!
//! Used on devices without a fused kernel and as the ground truth the fused CPU
//! kernels are tested against. Only ops whose backward Candle implements are used
//! (composed softmax, mean/variance LayerNorm).

use candle_core::{D, Result, Tensor};

/// Floor on the L2 norm, as in PyTorch's `F.normalize`.
pub(crate) const NORM_EPS: f64 = 1e-12;
/// LayerNorm variance epsilon of the official model.
pub(crate) const LN_EPS: f64 = 1e-5;

/// Channel LayerNorm of `[B, C, H, W]` over `C`; `bias = None` is the bias-free variant.
pub fn channel_layer_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let c = x.dim(1)?;
    let mu = x.mean_keepdim(1)?;
    let xc = x.broadcast_sub(&mu)?;
    let var = xc.sqr()?.mean_keepdim(1)?;
    let inv = (var + LN_EPS)?.sqrt()?.recip()?;
    let w = weight.reshape((1, c, 1, 1))?;
    match bias {
        Some(b) => xc
            .broadcast_mul(&inv)?
            .broadcast_mul(&w)?
            .broadcast_add(&b.reshape((1, c, 1, 1))?),
        // the official bias-free norm keeps the mean: x / sqrt(var + eps) * w
        None => x.broadcast_mul(&inv)?.broadcast_mul(&w),
    }
}

/// `gelu(x1) * x2` for the two channel halves of `[B, 2h, H, W]`, giving `[B, h, H, W]`.
pub fn gelu_gate(x: &Tensor) -> Result<Tensor> {
    let hidden = x.dim(1)? / 2;
    let x1 = x.narrow(1, 0, hidden)?;
    let x2 = x.narrow(1, hidden, hidden)?;
    x1.gelu_erf()? * x2
}

fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(NORM_EPS)?;
    x.broadcast_div(&norm)
}

/// MDTA core: `qkv` `[B, 3C, H, W]` and per-head `temperature` `[heads, 1, 1]` to
/// `[B, C, H, W]` = per head `softmax(norm(q) norm(k)ᵀ · t) v`, norms along pixels.
pub fn transposed_attention(qkv: &Tensor, temperature: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, c3, h, w) = qkv.dims4()?;
    let c = c3 / 3;
    // [B, C, H, W] -> [B, heads, C/heads, HW]
    let split = |i: usize| {
        qkv.narrow(1, i * c, c)?
            .reshape((b, heads, c / heads, h * w))
    };
    let (q, k, v) = (
        l2_normalize(&split(0)?)?,
        l2_normalize(&split(1)?)?,
        split(2)?,
    );
    // [B, heads, c, HW] x [B, heads, HW, c] -> [B, heads, c, c]
    let attn = q.matmul(&k.t()?)?.broadcast_mul(temperature)?;
    let attn = candle_nn::ops::softmax(&attn, D::Minus1)?;
    // [B, heads, c, c] x [B, heads, c, HW] -> [B, C, H, W]
    attn.matmul(&v.contiguous()?)?.reshape((b, c, h, w))
}

/// Depthwise 3x3 convolution through Candle's grouped `conv2d` (one conv per channel).
pub fn depthwise_conv3x3(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    x.conv2d(weight, 1, 1, 1, x.dim(1)?)
}

/// 1x1 convolution through reshape and a broadcast batched matmul.
pub fn pointwise_conv(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let o = weight.dim(0)?;
    // [O, C] x [B, C, HW] -> [B, O, HW]
    weight
        .reshape((o, c))?
        .broadcast_matmul(&x.reshape((b, c, h * w))?)?
        .reshape((b, o, h, w))
}
