//! The model interface the engine trains, and a small convolutional model
//! for tests and smoke runs.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Module, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// A restoration network: `[B, 3, H, W]` in `[0, 1]` to the same shape.
///
/// Its trainable parameters live in the [`VarMap`] handed to the engine next
/// to it. Models that need `H` and `W` to be multiples of 8 (Restormer) get
/// them from the engine: training patches, validation crops and inference
/// tiles are sized or reflect-padded accordingly.
pub trait Restorer {
    /// Restores a batch.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;
}

/// `x + conv3x3(gelu(conv3x3(x)))`: two 3x3 convolutions with a residual,
/// receptive field 5 x 5 (radius 2). Variables `c1.weight`, `c1.bias`,
/// `c2.weight`, `c2.bias`.
pub struct ConvResidual {
    c1: Conv2d,
    c2: Conv2d,
}

impl ConvResidual {
    /// Builds the model with `hidden` channels, creating its variables in `vb`.
    pub fn new(vb: VarBuilder, hidden: usize) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Self {
            c1: candle_nn::conv2d(3, hidden, 3, cfg, vb.pp("c1"))?,
            c2: candle_nn::conv2d(hidden, 3, 3, cfg, vb.pp("c2"))?,
        })
    }

    /// Builds the model in a fresh [`VarMap`] on `device` and initialises it
    /// reproducibly from `seed` (see [`init_deterministic`]).
    pub fn seeded(hidden: usize, seed: u64, device: &Device) -> Result<(Self, VarMap)> {
        let varmap = VarMap::new();
        let model = Self::new(VarBuilder::from_varmap(&varmap, DType::F32, device), hidden)?;
        init_deterministic(&varmap, seed, 0.1)?;
        Ok((model, varmap))
    }
}

impl Restorer for ConvResidual {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.c1.forward(x)?.gelu_erf()?;
        x + self.c2.forward(&h)?
    }
}

/// Re-initialises every variable from a ChaCha8 stream seeded with `seed`,
/// in name order: rank >= 2 tensors uniform in `±1/sqrt(fan_in)`, vectors zero.
/// Variables whose name contains `c2.` (the last layer of [`ConvResidual`])
/// are additionally scaled by `last_scale` so the model starts near identity.
/// Candle's own initialisers draw from an unseeded generator, hence this.
pub fn init_deterministic(varmap: &VarMap, seed: u64, last_scale: f64) -> Result<()> {
    let mut named: Vec<(String, candle_core::Var)> = varmap
        .data()
        .lock()
        .map_err(|_| crate::Error::Config("variable map lock is poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in named {
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if dims.len() >= 2 {
            let fan_in: usize = dims[1..].iter().product();
            let mut bound = 1.0 / (fan_in as f64).sqrt();
            if name.contains("c2.") {
                bound *= last_scale;
            }
            (0..n)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_models_are_identical_and_shape_preserving() {
        let (a, va) = ConvResidual::seeded(4, 9, &Device::Cpu).unwrap();
        let (_, vb) = ConvResidual::seeded(4, 9, &Device::Cpu).unwrap();
        let wa = va.data().lock().unwrap()["c1.weight"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let wb = vb.data().lock().unwrap()["c1.weight"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(wa, wb);
        let x = Tensor::zeros((2, 3, 8, 6), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(a.forward(&x).unwrap().dims(), &[2, 3, 8, 6]);
    }

    #[test]
    fn every_variable_gets_a_gradient() {
        let (m, vm) = ConvResidual::seeded(4, 1, &Device::Cpu).unwrap();
        let x = Tensor::ones((1, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let grads = m
            .forward(&x)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .backward()
            .unwrap();
        for var in vm.all_vars() {
            assert!(grads.get(var.as_tensor()).is_some());
        }
    }
}
