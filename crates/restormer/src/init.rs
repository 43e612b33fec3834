//! Seeded initialisation: the same seed gives the same weights on CPU.
//!
//! Candle's initialisers draw from an unseeded generator, so two models built
//! for the same configuration differ. [`SeededInit`] is a [`SimpleBackend`]
//! for a [`VarBuilder`] that creates each variable in a [`VarMap`] from the
//! initialiser the layer asks for (PyTorch's defaults, as the layers name
//! them), drawing from one ChaCha8 stream in construction order.

use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Creates variables in a [`VarMap`] from a seeded stream.
pub(crate) struct SeededInit {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SeededInit {
    pub(crate) fn new(varmap: VarMap, seed: u64) -> Self {
        Self {
            varmap,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    fn values(&self, init: Init, shape: &Shape) -> Vec<f32> {
        let n = shape.elem_count();
        // a poisoned lock means another thread panicked mid-draw; the stream is still usable
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let uniform = |rng: &mut ChaCha8Rng, lo: f64, up: f64| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(lo..up) as f32).collect()
        };
        let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    // Box-Muller on (0, 1] so the log is finite
                    let u1: f64 = 1.0 - rng.random::<f64>();
                    let u2: f64 = rng.random::<f64>();
                    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    (mean + std * z) as f32
                })
                .collect()
        };
        match init {
            Init::Const(c) => vec![c as f32; n],
            Init::Uniform { lo, up } if up > lo => uniform(&mut rng, lo, up),
            Init::Uniform { lo, .. } => vec![lo as f32; n],
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, -bound, bound)
                    }
                    NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                }
            }
        }
    }
}

impl SimpleBackend for SeededInit {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(var) = vars.get(name) {
            let t = var.as_tensor();
            if t.shape() != &s {
                candle_core::bail!(
                    "variable {name} exists with shape {:?}, asked for {s:?}",
                    t.dims()
                );
            }
            return Ok(t.clone());
        }
        let values = self.values(h, &s);
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        let t = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        let vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        match vars.get(name) {
            Some(var) => Ok(var.as_tensor().clone()),
            None => candle_core::bail!("no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        let vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        vars.contains_key(name)
    }
}
