//! The Restormer network (Zamir et al., CVPR 2022) with the official parameter names.

mod blocks;
mod fused;
mod layers;

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use self::blocks::{Downsample, Stage, Upsample};
use self::layers::{Conv1x1, conv3x3};
use crate::config::Config;
use crate::error::Result;

/// Restormer: a 4-level encoder/decoder of transformer blocks with a global residual.
///
/// Built from a [`VarBuilder`]; variable names equal the PyTorch reference's
/// state-dict keys (`encoder_level1.0.attn.qkv.weight`, …), so a safetensors file
/// written by either side loads into the other. `forward` takes `[B, 3, H, W]`
/// with `H` and `W` multiples of [`Config::SIZE_MULTIPLE`] and returns the same shape.
#[derive(Debug, Clone)]
pub struct Restormer {
    patch_embed: candle_nn::Conv2d,
    encoder_level1: Stage,
    down1_2: Downsample,
    encoder_level2: Stage,
    down2_3: Downsample,
    encoder_level3: Stage,
    down3_4: Downsample,
    latent: Stage,
    up4_3: Upsample,
    reduce_chan_level3: Conv1x1,
    decoder_level3: Stage,
    up3_2: Upsample,
    reduce_chan_level2: Conv1x1,
    decoder_level2: Stage,
    up2_1: Upsample,
    decoder_level1: Stage,
    refinement: Stage,
    output: candle_nn::Conv2d,
}

impl Restormer {
    /// Creates (or loads, depending on the [`VarBuilder`]) a network for `cfg`.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let d = |level: usize| cfg.level_dim(level);
        let [n1, n2, n3, n4] = cfg.num_blocks;
        let [h1, h2, h3, h4] = cfg.heads;
        Ok(Self {
            patch_embed: conv3x3(
                cfg.inp_channels,
                d(0),
                false,
                vb.pp("patch_embed").pp("proj"),
            )?,
            encoder_level1: Stage::new(n1, d(0), h1, cfg, vb.pp("encoder_level1"))?,
            down1_2: Downsample::new(d(0), vb.pp("down1_2"))?,
            encoder_level2: Stage::new(n2, d(1), h2, cfg, vb.pp("encoder_level2"))?,
            down2_3: Downsample::new(d(1), vb.pp("down2_3"))?,
            encoder_level3: Stage::new(n3, d(2), h3, cfg, vb.pp("encoder_level3"))?,
            down3_4: Downsample::new(d(2), vb.pp("down3_4"))?,
            latent: Stage::new(n4, d(3), h4, cfg, vb.pp("latent"))?,
            up4_3: Upsample::new(d(3), vb.pp("up4_3"))?,
            reduce_chan_level3: Conv1x1::new(d(3), d(2), cfg.bias, vb.pp("reduce_chan_level3"))?,
            decoder_level3: Stage::new(n3, d(2), h3, cfg, vb.pp("decoder_level3"))?,
            up3_2: Upsample::new(d(2), vb.pp("up3_2"))?,
            reduce_chan_level2: Conv1x1::new(d(2), d(1), cfg.bias, vb.pp("reduce_chan_level2"))?,
            decoder_level2: Stage::new(n2, d(1), h2, cfg, vb.pp("decoder_level2"))?,
            up2_1: Upsample::new(d(1), vb.pp("up2_1"))?,
            decoder_level1: Stage::new(n1, d(1), h1, cfg, vb.pp("decoder_level1"))?,
            refinement: Stage::new(
                cfg.num_refinement_blocks,
                d(1),
                h1,
                cfg,
                vb.pp("refinement"),
            )?,
            output: conv3x3(d(1), cfg.out_channels, cfg.bias, vb.pp("output"))?,
        })
    }

    /// Whether each transformer block records one autograd node (the default)
    /// or one per layer. Both give the same values and gradients; one node per
    /// block skips most of the zero-filled gradient buffers Candle's backward
    /// allocates per node, which is faster on CPU. It applies only where it
    /// can (CPU, no convolution biases, LayerNorm with bias, trainable
    /// weights); elsewhere every layer is its own node either way.
    pub fn set_fused_blocks(&mut self, on: bool) {
        for stage in [
            &mut self.encoder_level1,
            &mut self.encoder_level2,
            &mut self.encoder_level3,
            &mut self.latent,
            &mut self.decoder_level3,
            &mut self.decoder_level2,
            &mut self.decoder_level1,
            &mut self.refinement,
        ] {
            stage.set_fused(on);
        }
    }
}

impl Module for Restormer {
    fn forward(&self, inp: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = inp.dims4()?;
        if h % Config::SIZE_MULTIPLE != 0 || w % Config::SIZE_MULTIPLE != 0 {
            candle_core::bail!(
                "restormer input {h}x{w} is not a multiple of {}",
                Config::SIZE_MULTIPLE
            );
        }
        // [B, 3, H, W] -> [B, d, H, W] … [B, 8d, H/8, W/8] and back up
        let e1 = self
            .encoder_level1
            .forward(&self.patch_embed.forward(inp)?)?;
        let e2 = self.encoder_level2.forward(&self.down1_2.forward(&e1)?)?;
        let e3 = self.encoder_level3.forward(&self.down2_3.forward(&e2)?)?;
        let lat = self.latent.forward(&self.down3_4.forward(&e3)?)?;
        let d3 = Tensor::cat(&[&self.up4_3.forward(&lat)?, &e3], 1)?;
        let d3 = self
            .decoder_level3
            .forward(&self.reduce_chan_level3.forward(&d3)?)?;
        let d2 = Tensor::cat(&[&self.up3_2.forward(&d3)?, &e2], 1)?;
        let d2 = self
            .decoder_level2
            .forward(&self.reduce_chan_level2.forward(&d2)?)?;
        // level 1 keeps the concatenated 2d channels (no reduce_chan)
        let d1 = Tensor::cat(&[&self.up2_1.forward(&d2)?, &e1], 1)?;
        let d1 = self
            .refinement
            .forward(&self.decoder_level1.forward(&d1)?)?;
        self.output.forward(&d1)? + inp
    }
}
