//! Model hyper-parameters and the named presets.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which channel LayerNorm the transformer blocks use.
///
/// The names and parameter layouts follow the official Restormer code:
/// `WithBias` stores `body.weight` and `body.bias`, `BiasFree` only
/// `body.weight` and does not subtract the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerNormType {
    /// `(x - mean) / sqrt(var + eps) * weight + bias`.
    WithBias,
    /// `x / sqrt(var + eps) * weight` (variance still taken around the mean).
    BiasFree,
}

/// Floats a transformer block keeps per channel and pixel for the backward
/// pass (its inputs, norms, attention and feed-forward intermediates, and
/// their gradients while they are formed). Measured: see
/// [`Config::train_step_bytes`].
pub const ACTIVATION_FLOATS: f64 = 40.0;

/// Memory a training step needs whatever its size: the allocator's arenas,
/// the loss and optimiser temporaries, Candle's thread pools. Measured with
/// [`ACTIVATION_FLOATS`]: see [`Config::train_step_bytes`].
pub const STEP_OVERHEAD_BYTES: u64 = 150 << 20;

/// Restormer hyper-parameters.
///
/// Field names follow the constructor arguments of the official
/// implementation so a config can be read next to a checkpoint's notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Image channels in (3 for RGB).
    pub inp_channels: usize,
    /// Image channels out; must equal `inp_channels` for the global residual.
    pub out_channels: usize,
    /// Channel width of level 1; levels 2, 3, 4 use 2x, 4x, 8x.
    pub dim: usize,
    /// Transformer blocks per encoder level 1..3 and the latent level 4
    /// (decoder levels mirror the encoder).
    pub num_blocks: [usize; 4],
    /// Transformer blocks in the full-resolution refinement stage.
    pub num_refinement_blocks: usize,
    /// Attention heads per level.
    pub heads: [usize; 4],
    /// GDFN hidden width is `int(dim * ffn_expansion_factor)`.
    pub ffn_expansion_factor: f64,
    /// Whether the convolutions inside blocks, `reduce_chan_*` and `output` carry a bias.
    pub bias: bool,
    /// LayerNorm flavour of the transformer blocks.
    pub layer_norm: LayerNormType,
}

impl Config {
    fn preset(dim: usize, num_blocks: [usize; 4], num_refinement_blocks: usize) -> Self {
        Self {
            inp_channels: 3,
            out_channels: 3,
            dim,
            num_blocks,
            num_refinement_blocks,
            heads: [1, 2, 4, 8],
            ffn_expansion_factor: 2.66,
            bias: false,
            layer_norm: LayerNormType::WithBias,
        }
    }

    /// Test-sized network: dim 8, one block per level, 208,225 parameters.
    pub fn tiny() -> Self {
        Self::preset(8, [1, 1, 1, 1], 1)
    }

    /// CPU-trainable network: dim 16, blocks [2,2,2,4], 1,590,678 parameters.
    pub fn small() -> Self {
        Self::preset(16, [2, 2, 2, 4], 2)
    }

    /// The official Restormer: dim 48, blocks [4,6,6,8], 26,126,644 parameters.
    pub fn base() -> Self {
        Self::preset(48, [4, 6, 6, 8], 4)
    }

    /// Every transformer block as `(channels, downscale)`: its width and how
    /// many times its level halves the input (0 = full resolution).
    fn blocks(&self) -> Vec<(usize, u32)> {
        let d = self.dim;
        let n = self.num_blocks;
        let mut out = Vec::new();
        let mut add = |count: usize, channels: usize, level: u32| {
            out.extend(std::iter::repeat_n((channels, level), count));
        };
        // Encoder levels 1-3, the latent level, the mirrored decoder (level 1
        // of the decoder works at 2 x dim) and the refinement stage.
        add(n[0], d, 0);
        add(n[1], 2 * d, 1);
        add(n[2], 4 * d, 2);
        add(n[3], 8 * d, 3);
        add(n[2], 4 * d, 2);
        add(n[1], 2 * d, 1);
        add(n[0], 2 * d, 0);
        add(self.num_refinement_blocks, 2 * d, 0);
        out
    }

    /// Bytes one training step of `batch` images of `patch`² pixels needs for
    /// the model: weights, gradients and the two AdamW moments (16 bytes a
    /// parameter), and the activations autograd keeps for the backward pass,
    /// counted per transformer block as [`ACTIVATION_FLOATS`] floats per
    /// channel and pixel. Calibrated by `restormer-bench --memory`, which
    /// prints measured peaks next to this estimate.
    pub fn train_step_bytes(&self, batch: usize, patch: usize) -> u64 {
        let blocks = self.blocks();
        let pixels = (patch * patch) as f64;
        let channel_pixels: f64 = blocks
            .iter()
            .map(|&(c, level)| c as f64 * pixels / 4f64.powi(level as i32))
            .sum();
        let activations = batch as f64 * channel_pixels * ACTIVATION_FLOATS * 4.0;
        STEP_OVERHEAD_BYTES + (self.parameter_estimate() as f64 * 16.0 + activations) as u64
    }

    /// The parameter count, from the layer shapes: per block its two 1x1
    /// projections of attention and feed-forward (about 12 C²) and its
    /// depth-wise convolutions and norms (about 79 C), plus the down- and
    /// up-sampling convolutions and the decoder's channel reductions.
    pub fn parameter_estimate(&self) -> u64 {
        let d = self.dim as f64;
        let blocks: f64 = self
            .blocks()
            .iter()
            .map(|&(c, _)| {
                let c = c as f64;
                12.0 * c * c + 79.0 * c
            })
            .sum();
        // Downsampling 3x3 convs (C -> C/2) at d, 2d, 4d; upsampling 3x3
        // convs (C -> 2C) at 8d, 4d, 2d; 1x1 reductions 8d -> 4d, 4d -> 2d.
        let sampling = 4.5 * (1.0 + 4.0 + 16.0) * d * d
            + 18.0 * (64.0 + 16.0 + 4.0) * d * d
            + (32.0 + 8.0) * d * d;
        (blocks + sampling) as u64
    }

    /// Looks a preset up by name (`tiny`, `small`, `base`).
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "small" => Ok(Self::small()),
            "base" => Ok(Self::base()),
            other => Err(Error::InvalidConfig(format!("unknown preset {other:?}"))),
        }
    }

    /// Hidden width of the GDFN for a level of `dim` channels, truncated like
    /// Python's `int()`.
    pub fn ffn_hidden(&self, dim: usize) -> usize {
        (dim as f64 * self.ffn_expansion_factor) as usize
    }

    /// Input height and width must be multiples of this (three 2x down-samplings).
    pub const SIZE_MULTIPLE: usize = 8;

    /// Checks that the numbers describe a buildable network.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if self.dim == 0 || !self.dim.is_multiple_of(2) {
            return bad(format!(
                "dim must be a positive even number, got {}",
                self.dim
            ));
        }
        if self.inp_channels == 0 || self.inp_channels != self.out_channels {
            return bad(format!(
                "the global residual needs inp_channels == out_channels > 0, got {} and {}",
                self.inp_channels, self.out_channels
            ));
        }
        for (level, &heads) in self.heads.iter().enumerate() {
            let width = self.level_dim(level);
            if heads == 0 || !width.is_multiple_of(heads) {
                return bad(format!(
                    "level {} width {width} is not divisible by {heads} heads",
                    level + 1
                ));
            }
        }
        if self.ffn_hidden(self.dim) == 0 {
            return bad(format!(
                "ffn_expansion_factor {} gives no hidden units",
                self.ffn_expansion_factor
            ));
        }
        Ok(())
    }

    /// Channel width of encoder level `level` (0-based): `dim << level`.
    pub fn level_dim(&self, level: usize) -> usize {
        self.dim << level
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::base()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for cfg in [Config::tiny(), Config::small(), Config::base()] {
            cfg.validate().expect("preset is valid");
        }
    }

    #[test]
    fn the_parameter_estimate_matches_the_presets() {
        // Exact counts of the presets (see their docs).
        for (cfg, exact) in [
            (Config::tiny(), 208_225u64),
            (Config::small(), 1_590_678),
            (Config::base(), 26_126_644),
        ] {
            let est = cfg.parameter_estimate();
            let err = (est as f64 - exact as f64).abs() / exact as f64;
            assert!(err < 0.02, "{est} vs {exact}");
        }
    }

    #[test]
    fn a_train_step_grows_with_batch_and_patch_area() {
        let cfg = Config::small();
        let fixed = cfg.parameter_estimate() * 16 + STEP_OVERHEAD_BYTES;
        let a = cfg.train_step_bytes(1, 64) - fixed;
        assert_eq!(cfg.train_step_bytes(4, 64) - fixed, 4 * a);
        let b = cfg.train_step_bytes(1, 128) - fixed;
        assert!((b as f64 / a as f64 - 4.0).abs() < 1e-6);
        assert!(Config::base().train_step_bytes(1, 64) > cfg.train_step_bytes(1, 64));
    }

    #[test]
    fn ffn_hidden_truncates_like_python() {
        let cfg = Config::base();
        assert_eq!(cfg.ffn_hidden(48), 127);
        assert_eq!(cfg.ffn_hidden(8), 21);
    }

    #[test]
    fn json_round_trip() {
        let cfg = Config::small();
        let text = serde_json::to_string(&cfg).expect("config serialises");
        let back: Config = serde_json::from_str(&text).expect("config parses");
        assert_eq!(cfg, back);
    }

    #[test]
    fn rejects_bad_heads() {
        let mut cfg = Config::tiny();
        cfg.heads = [3, 2, 4, 8];
        assert!(cfg.validate().is_err());
    }
}
