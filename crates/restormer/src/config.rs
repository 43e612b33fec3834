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
