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

/// A block's parameters, borrowed for [`fused`]: each LayerNorm as
/// `(weight, bias)`, the attention and feed-forward weights, and whether any
/// convolution has a bias.
pub(crate) struct BlockParts<'a> {
    pub heads: usize,
    pub norm1: (&'a Tensor, Option<&'a Tensor>),
    pub temperature: &'a Tensor,
    pub qkv: &'a Tensor,
    pub qkv_dwconv: &'a Tensor,
    pub attn_out: &'a Tensor,
    pub norm2: (&'a Tensor, Option<&'a Tensor>),
    pub project_in: &'a Tensor,
    pub ffn_dwconv: &'a Tensor,
    pub ffn_out: &'a Tensor,
    pub conv_biases: bool,
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

    pub(crate) fn parts(&self) -> BlockParts<'_> {
        let (a, f) = (&self.attn, &self.ffn);
        BlockParts {
            heads: a.heads,
            norm1: self.norm1.parts(),
            temperature: &a.temperature,
            qkv: a.qkv.weight(),
            qkv_dwconv: a.qkv_dwconv.weight(),
            attn_out: a.project_out.weight(),
            norm2: self.norm2.parts(),
            project_in: f.project_in.weight(),
            ffn_dwconv: f.dwconv.weight(),
            ffn_out: f.project_out.weight(),
            conv_biases: [
                a.qkv.has_bias(),
                a.qkv_dwconv.has_bias(),
                a.project_out.has_bias(),
                f.project_in.has_bias(),
                f.dwconv.has_bias(),
                f.project_out.has_bias(),
            ]
            .contains(&true),
        }
    }
}

impl Module for TransformerBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.fused && fused::applies(self, x) {
            return fused::forward(self, x);
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
}

impl Stage {
    pub(crate) fn set_fused(&mut self, on: bool) {
        for block in &mut self.blocks {
            block.fused = on;
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
