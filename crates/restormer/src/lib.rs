//! Restormer document-restoration model for restoreflow, written with Candle.
//!
//! The crate holds the network ([`Restormer`], configured by [`Config`] presets
//! `tiny`, `small`, `base`), the kernels that make it trainable at a reasonable
//! speed on CPU ([`kernels`]: depthwise 3x3 convolution, channel LayerNorm, GELU
//! gate and transposed attention, each with its own backward), and small helpers
//! to pick a device and build a model with its [`VarMap`]. Parameter names equal
//! the PyTorch reference's state-dict keys, so weights move both ways through
//! safetensors (`VarMap::save` / `VarMap::load`).
//!
//! The training engine and tiling live in `restoreflow-training`; this crate has
//! no async code and no I/O beyond safetensors.
//!
//! ```no_run
//! use candle_core::{DType, Module, Tensor};
//! use restoreflow_restormer::{Config, build, device};
//!
//! let dev = device(false)?;
//! let (model, varmap) = build(&Config::tiny(), &dev)?;
//! let x = Tensor::rand(0f32, 1f32, (1, 3, 64, 64), &dev)?;
//! let y = model.forward(&x)?;
//! varmap.save("tiny.safetensors")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For inference use [`frozen`]: a model built by [`build`] records the autograd
//! graph and keeps every activation alive. On the CPU each transformer block of
//! a trainable model records a single graph node whose backward chains the
//! kernels' own backward passes ([`Restormer::set_fused_blocks`]), which spares
//! Candle's zero-filled gradient buffer per layer.
//!
//! CPU speed depends on the process around the model (measured in `BENCHMARKS.md`):
//! use mimalloc as the global allocator and start the process with
//! `MIMALLOC_PURGE_DELAY=-1` (otherwise every training step page-faults its
//! activations back in), and on small machines `CANDLE_BARRIER_POOL_SPIN_LIMIT=0`.
//! Kernels run on rayon's global pool; Candle reads `RAYON_NUM_THREADS` too.
//!
//! Features: `cuda` adds candle's CUDA backend and an NVRTC depthwise kernel;
//! `bench` builds the `restormer-bench` binary (see `BENCHMARKS.md`).

mod config;
mod error;
mod init;
pub mod kernels;
mod model;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

pub use crate::config::{Config, LayerNormType};
pub use crate::error::{Error, Result};
pub use crate::model::Restormer;

/// Returns the compute device: CUDA device 0 when `cuda` is true, else the CPU.
///
/// Asking for CUDA from a build without the `cuda` feature is an error rather
/// than a silent fallback, so a misconfigured worker fails at start-up.
pub fn device(cuda: bool) -> Result<Device> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    if cfg!(feature = "cuda") {
        Ok(Device::new_cuda(0)?)
    } else {
        Err(Error::CudaNotCompiled)
    }
}

/// Lets CUDA f32 matrix multiplies use TensorFloat-32 (`true`) or keeps them
/// in full f32 (`false`). Storage stays f32 either way; on the CPU, and in a
/// build without the `cuda` feature, this does nothing. The setting is
/// process-wide: a worker sets it for each job it runs.
pub fn set_tf32(on: bool) {
    candle_core::cuda::set_gemm_reduced_precision_f32(on);
}

/// Builds a freshly initialised f32 model on `device` together with the
/// [`VarMap`] that owns its trainable variables (for an optimiser and saving).
pub fn build(cfg: &Config, device: &Device) -> Result<(Restormer, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = Restormer::new(cfg, vb)?;
    Ok((model, varmap))
}

/// Like [`build`], but every variable is drawn from a ChaCha8 stream seeded
/// with `seed` (same initialisers as [`build`]: PyTorch's defaults), so on
/// CPU the same seed gives bit-identical initial weights.
pub fn build_seeded(cfg: &Config, device: &Device, seed: u64) -> Result<(Restormer, VarMap)> {
    let varmap = VarMap::new();
    let backend = init::SeededInit::new(varmap.clone(), seed);
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
    let model = Restormer::new(cfg, vb)?;
    Ok((model, varmap))
}

/// Builds an inference copy of a model from the variables in `varmap`.
///
/// The copy shares the variables' storage (no weights are copied) but holds them
/// as plain tensors, so its forward pass records no autograd graph and frees each
/// activation as soon as it is used. A model built by [`build`] keeps every
/// intermediate of a forward pass alive until the output is dropped, which for a
/// 512² tile of the `small` preset is several GB.
pub fn frozen(cfg: &Config, varmap: &VarMap) -> Result<Restormer> {
    // a poisoned lock only means another thread panicked while holding it; the map
    // of variables itself is still whole
    let vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut tensors = std::collections::HashMap::with_capacity(vars.len());
    let mut device = Device::Cpu;
    for (name, var) in vars.iter() {
        device = var.device().clone();
        tensors.insert(name.clone(), var.as_tensor().detach());
    }
    drop(vars);
    Restormer::new(cfg, VarBuilder::from_tensors(tensors, DType::F32, &device))
}

/// Number of scalar parameters held by a [`VarMap`].
pub fn parameter_count(varmap: &VarMap) -> usize {
    varmap.all_vars().iter().map(|v| v.elem_count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(vm: &VarMap) -> Vec<(String, Vec<f32>)> {
        let mut v: Vec<_> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn seeded_builds_repeat_and_differ_by_seed() {
        let cfg = Config::tiny();
        let (_, a) = build_seeded(&cfg, &Device::Cpu, 5).unwrap();
        let (_, b) = build_seeded(&cfg, &Device::Cpu, 5).unwrap();
        let (_, c) = build_seeded(&cfg, &Device::Cpu, 6).unwrap();
        let (_, plain) = build(&cfg, &Device::Cpu).unwrap();
        assert_eq!(weights(&a), weights(&b));
        assert_ne!(weights(&a), weights(&c));
        assert_eq!(parameter_count(&a), parameter_count(&plain));
        // Same initialisers as `build`: constants stay constants, uniform
        // weights stay inside PyTorch's bound.
        for (name, w) in weights(&a) {
            if name.ends_with("temperature") || name.contains("norm") && name.ends_with("weight") {
                assert!(w.iter().all(|&x| x == 1.0), "{name}");
            }
            if name == "patch_embed.proj.weight" {
                let bound = 1.0 / (27f32).sqrt();
                assert!(w.iter().all(|x| x.abs() <= bound), "{name}");
                assert!(w.iter().any(|&x| x != w[0]), "{name} is not random");
            }
        }
    }

    #[test]
    fn cpu_device_is_available() {
        assert!(device(false).expect("cpu").is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let err = device(true).expect_err("no cuda in this build");
        assert!(matches!(err, Error::CudaNotCompiled));
        assert!(err.to_string().contains("cuda"));
    }
}
