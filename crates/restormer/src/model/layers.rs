//! Convolutions and the channel LayerNorm used throughout the network.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::config::LayerNormType;
use crate::kernels;

/// PyTorch's default conv initialisation (`kaiming_uniform(a = sqrt(5))`) reduces to
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weight and bias alike.
fn torch_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn bias_var(vb: &VarBuilder, out: usize, fan_in: usize, bias: bool) -> Result<Option<Tensor>> {
    if bias {
        vb.get_with_hints(out, "bias", torch_uniform(fan_in))
            .map(Some)
    } else {
        Ok(None)
    }
}

/// 1x1 convolution computed as a batched matrix product ([`kernels::pointwise_conv`]).
///
/// The weight keeps PyTorch's `[O, C, 1, 1]` layout so checkpoints load unchanged.
#[derive(Debug, Clone)]
pub(crate) struct Conv1x1 {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Conv1x1 {
    pub(crate) fn new(cin: usize, cout: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((cout, cin, 1, 1), "weight", torch_uniform(cin))?;
        let bias = bias_var(&vb, cout, cin, bias)?;
        Ok(Self { weight, bias })
    }

    pub(crate) fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub(crate) fn has_bias(&self) -> bool {
        self.bias.is_some()
    }
}

impl Module for Conv1x1 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = kernels::pointwise_conv(x, &self.weight)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(&bias.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}

/// 3x3 depthwise convolution (groups = channels, padding 1) on the crate's kernel.
#[derive(Debug, Clone)]
pub(crate) struct DwConv3x3 {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl DwConv3x3 {
    pub(crate) fn new(channels: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((channels, 1, 3, 3), "weight", torch_uniform(9))?;
        let bias = bias_var(&vb, channels, 9, bias)?;
        Ok(Self { weight, bias })
    }

    pub(crate) fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub(crate) fn has_bias(&self) -> bool {
        self.bias.is_some()
    }
}

impl Module for DwConv3x3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = kernels::depthwise_conv3x3(x, &self.weight)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(&bias.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}

/// Dense 3x3 convolution with padding 1 (patch embedding, resampling, output).
pub(crate) fn conv3x3(
    cin: usize,
    cout: usize,
    bias: bool,
    vb: VarBuilder,
) -> Result<candle_nn::Conv2d> {
    let fan_in = cin * 9;
    let weight = vb.get_with_hints((cout, cin, 3, 3), "weight", torch_uniform(fan_in))?;
    let bias = bias_var(&vb, cout, fan_in, bias)?;
    let cfg = candle_nn::Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    Ok(candle_nn::Conv2d::new(weight, bias, cfg))
}

/// LayerNorm over the channel dimension of a `[B, C, H, W]` map, per pixel.
///
/// Stored as `body.weight` (and `body.bias` for [`LayerNormType::WithBias`]) like
/// the official module, which wraps the per-token norm in a `body` field.
#[derive(Debug, Clone)]
pub(crate) struct ChannelLayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl ChannelLayerNorm {
    pub(crate) fn new(dim: usize, kind: LayerNormType, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("body");
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = match kind {
            LayerNormType::WithBias => Some(vb.get_with_hints(dim, "bias", Init::Const(0.0))?),
            LayerNormType::BiasFree => None,
        };
        Ok(Self { weight, bias })
    }

    /// `(weight, bias)`.
    pub(crate) fn parts(&self) -> (&Tensor, Option<&Tensor>) {
        (&self.weight, self.bias.as_ref())
    }
}

impl Module for ChannelLayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        kernels::channel_layer_norm(x, &self.weight, self.bias.as_ref())
    }
}
