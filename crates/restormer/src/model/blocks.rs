//! Restormer building blocks: MDTA attention, GDFN feed-forward, the transformer
//! block that chains them, and the resampling layers between levels.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::fused;
use super::layers::{ChannelLayerNorm, Conv1x1, DwConv3x3, conv3x3};
use crate::config::Config;
use crate::kernels;

/// Multi-Dconv head Transposed Attention: attention across channels, so its cost is
/// linear in the number of pixels.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    heads: usize,
    temperature: Tensor,
    qkv: Conv1x1,
    qkv_dwconv: DwConv3x3,
    project_out: Conv1x1,
}

impl Attention {
    pub(crate) fn new(dim: usize, heads: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            heads,
            temperature: vb.get_with_hints((heads, 1, 1), "temperature", Init::Const(1.0))?,
            qkv: Conv1x1::new(dim, dim * 3, bias, vb.pp("qkv"))?,
            qkv_dwconv: DwConv3x3::new(dim * 3, bias, vb.pp("qkv_dwconv"))?,
            project_out: Conv1x1::new(dim, dim, bias, vb.pp("project_out"))?,
        })
    }
}

impl Module for Attention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        // [B, C, H, W] -> [B, 3C, H, W]
        let qkv = self.qkv_dwconv.forward(&self.qkv.forward(x)?)?;
        // [B, 3C, H, W] -> [B, C, H, W] (per head: softmax(q̂ k̂ᵀ · t) v)
        let y = kernels::transposed_attention(&qkv, &self.temperature, self.heads)?;
        debug_assert_eq!(y.dims4()?, (b, c, h, w));
        self.project_out.forward(&y)
    }
}

/// Gated-Dconv Feed-forward Network: `project_out(gelu(x1) * x2)` where `x1, x2`
/// are the two halves of a depthwise-convolved expansion.
#[derive(Debug, Clone)]
pub(crate) struct FeedForward {
    project_in: Conv1x1,
    dwconv: DwConv3x3,
    project_out: Conv1x1,
}

impl FeedForward {
    pub(crate) fn new(dim: usize, hidden: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            project_in: Conv1x1::new(dim, hidden * 2, bias, vb.pp("project_in"))?,
            dwconv: DwConv3x3::new(hidden * 2, bias, vb.pp("dwconv"))?,
            project_out: Conv1x1::new(hidden, dim, bias, vb.pp("project_out"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // [B, C, H, W] -> [B, 2h, H, W] -> [B, h, H, W] -> [B, C, H, W]
        let x = self.dwconv.forward(&self.project_in.forward(x)?)?;
        self.project_out.forward(&kernels::gelu_gate(&x)?)
    }
}

/// Pre-norm transformer block: `x + attn(norm1(x))`, then `x + ffn(norm2(x))`.
#[derive(Debug, Clone)]
pub(crate) struct TransformerBlock {
    norm1: ChannelLayerNorm,
    attn: Attention,
    norm2: ChannelLayerNorm,
    ffn: FeedForward,
    /// Record one graph node for the block where [`fused::applies`] (CPU
    /// training); off, every layer is its own node.
    fused: bool,
}

impl TransformerBlock {
    pub(crate) fn new(dim: usize, heads: usize, cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm1: ChannelLayerNorm::new(dim, cfg.layer_norm, vb.pp("norm1"))?,
            attn: Attention::new(dim, heads, cfg.bias, vb.pp("attn"))?,
            norm2: ChannelLayerNorm::new(dim, cfg.layer_norm, vb.pp("norm2"))?,
            ffn: FeedForward::new(dim, cfg.ffn_hidden(dim), cfg.bias, vb.pp("ffn"))?,
            fused: true,
        })
    }

    /// The block's parameters in the order [`fused`] packs them, or `None`
    /// when the block has a part the fused path does not cover: a LayerNorm
    /// without bias (no fused LayerNorm kernel) or a convolution with a bias.
    pub(crate) fn fusable_parameters(&self) -> Option<[&Tensor; 11]> {
        let (a, f) = (&self.attn, &self.ffn);
        let convs = [&a.qkv, &a.project_out, &f.project_in, &f.project_out];
        if convs.iter().any(|c| c.has_bias()) || a.qkv_dwconv.has_bias() || f.dwconv.has_bias() {
            return None;
        }
        let (n1w, n1b) = self.norm1.parts();
        let (n2w, n2b) = self.norm2.parts();
        Some([
            n1w,
            n1b?,
            &a.temperature,
            a.qkv.weight(),
            a.qkv_dwconv.weight(),
            a.project_out.weight(),
            n2w,
            n2b?,
            f.project_in.weight(),
            f.dwconv.weight(),
            f.project_out.weight(),
        ])
    }

    pub(crate) fn set_fused(&mut self, on: bool) {
        self.fused = on;
    }
}

impl Module for TransformerBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.fused
            && let Some(params) = self.fusable_parameters()
            && fused::applies(&params, x)
        {
            return fused::forward(self.attn.heads, &params, x);
        }
        let x = (x + self.attn.forward(&self.norm1.forward(x)?)?)?;
        &x + self.ffn.forward(&self.norm2.forward(&x)?)?
    }
}

/// A sequence of transformer blocks named `0`, `1`, … like `nn.Sequential`.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    blocks: Vec<TransformerBlock>,
}

impl Stage {
    pub(crate) fn new(
        n: usize,
        dim: usize,
        heads: usize,
        cfg: &Config,
        vb: VarBuilder,
    ) -> Result<Self> {
        let blocks = (0..n)
            .map(|i| TransformerBlock::new(dim, heads, cfg, vb.pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self { blocks })
    }

    pub(crate) fn set_fused(&mut self, on: bool) {
        for block in &mut self.blocks {
            block.set_fused(on);
        }
    }
}

impl Module for Stage {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        Ok(x)
    }
}

/// Halves the resolution: 3x3 conv to C/2 channels, then pixel-unshuffle by 2.
#[derive(Debug, Clone)]
pub(crate) struct Downsample {
    conv: candle_nn::Conv2d,
}

impl Downsample {
    pub(crate) fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: conv3x3(dim, dim / 2, false, vb.pp("body").pp("0"))?,
        })
    }
}

impl Module for Downsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // [B, C, H, W] -> [B, C/2, H, W] -> [B, 2C, H/2, W/2]
        candle_nn::ops::pixel_unshuffle(&self.conv.forward(x)?, 2)
    }
}

/// Doubles the resolution: 3x3 conv to 2C channels, then pixel-shuffle by 2.
#[derive(Debug, Clone)]
pub(crate) struct Upsample {
    conv: candle_nn::Conv2d,
}

impl Upsample {
    pub(crate) fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: conv3x3(dim, dim * 2, false, vb.pp("body").pp("0"))?,
        })
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // [B, C, H, W] -> [B, 2C, H, W] -> [B, C/2, 2H, 2W]
        candle_nn::ops::pixel_shuffle(&self.conv.forward(x)?, 2)
    }
}
