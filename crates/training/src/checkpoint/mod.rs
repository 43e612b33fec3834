//! Checkpoints: a directory holding model weights, optimiser state and a JSON
//! sidecar with everything needed to resume the exact run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data::SamplerState;
use crate::engine::{BestEpoch, EpochReport, TrainConfig};
use crate::{Error, Result};

/// Model weights inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// AdamW state inside a checkpoint directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The JSON sidecar inside a checkpoint directory; written last, so its
/// presence marks a complete checkpoint.
pub const META_FILE: &str = "checkpoint.json";

/// Version of the sidecar layout.
pub const FORMAT_VERSION: u32 = 1;

/// Accumulators of an epoch interrupted by cancellation, so a resumed run
/// reports the same epoch figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct PartialEpoch {
    /// Sum of per-step training losses so far.
    pub loss_sum: f64,
    /// Steps taken in this epoch so far.
    pub steps: u64,
    /// Training pairs seen in this epoch so far.
    pub pairs: u64,
    /// Seconds spent training in this epoch so far.
    pub seconds: f64,
}

/// The JSON sidecar of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Sidecar layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The caller's code version string (e.g. a git revision).
    pub code_version: String,
    /// The caller's model configuration, stored as given.
    pub model_config: serde_json::Value,
    /// The training configuration of the run.
    pub train_config: TrainConfig,
    /// Completed epochs.
    pub epoch: usize,
    /// Completed optimiser steps.
    pub step: u64,
    /// Set when the checkpoint was taken inside an epoch (on cancellation).
    pub partial_epoch: Option<PartialEpoch>,
    /// One report per completed epoch.
    pub history: Vec<EpochReport>,
    /// The best epoch so far by validation PSNR.
    pub best: Option<BestEpoch>,
    /// Epochs since the best one (for early stopping).
    pub epochs_without_improvement: usize,
    /// The patch sampler's stream position.
    pub sampler: SamplerState,
    /// When the run (its first segment) started.
    pub run_started_at: DateTime<Utc>,
    /// When this checkpoint was written.
    pub created_at: DateTime<Utc>,
}

/// A checkpoint on disk: its directory and its parsed sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// The parsed sidecar.
    pub meta: CheckpointMeta,
}

impl Checkpoint {
    /// Reads the sidecar of the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let meta: CheckpointMeta = serde_json::from_str(&text)?;
        if meta.format_version != FORMAT_VERSION {
            return Err(Error::Checkpoint(format!(
                "sidecar format {} is not the supported {FORMAT_VERSION}",
                meta.format_version
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
        })
    }

    /// Path of the weights file.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(WEIGHTS_FILE)
    }

    /// Path of the optimiser state file.
    pub fn optimizer_path(&self) -> PathBuf {
        self.dir.join(OPTIMIZER_FILE)
    }

    /// Loads the weights into `varmap` (see [`load_weights`]).
    pub fn restore_weights(&self, varmap: &VarMap) -> Result<()> {
        load_weights(varmap, &self.weights_path())
    }

    /// Writes weights, optimiser state and sidecar into `dir` (created if needed).
    pub(crate) fn write(
        dir: &Path,
        varmap: &VarMap,
        optimizer: &crate::AdamW,
        meta: CheckpointMeta,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        save_weights(varmap, &dir.join(WEIGHTS_FILE))?;
        optimizer.save(&dir.join(OPTIMIZER_FILE))?;
        let path = dir.join(META_FILE);
        let text = serde_json::to_string_pretty(&meta)?;
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
        })
    }
}

fn var_tensors(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("variable map lock is poisoned".into()))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

/// Saves every variable of `varmap` to a safetensors file under its name.
pub fn save_weights(varmap: &VarMap, path: &Path) -> Result<()> {
    candle_core::safetensors::save(&var_tensors(varmap)?, path)?;
    Ok(())
}

/// Sets every variable of `varmap` from a safetensors file; each must be
/// present with the same shape (extra tensors in the file are ignored).
/// Values are copied bit for bit.
pub fn load_weights(varmap: &VarMap, path: &Path) -> Result<()> {
    let vars: Vec<(String, candle_core::Var)> = {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| Error::Config("variable map lock is poisoned".into()))?;
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let device = vars
        .first()
        .map(|(_, v)| v.device().clone())
        .unwrap_or(candle_core::Device::Cpu);
    let file = candle_core::safetensors::load(path, &device)?;
    for (name, var) in vars {
        let t = file
            .get(&name)
            .ok_or_else(|| Error::Checkpoint(format!("weights lack {name}")))?;
        if t.shape() != var.shape() {
            return Err(Error::Checkpoint(format!(
                "{name} has shape {:?} in the file, {:?} in the model",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConvResidual;
    use candle_core::Device;

    fn flat(vm: &VarMap) -> Vec<Vec<f32>> {
        let mut v: Vec<_> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.iter()
            .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn weights_round_trip_exactly() {
        let (_, a) = ConvResidual::seeded(3, 1, &Device::Cpu).unwrap();
        let (_, b) = ConvResidual::seeded(3, 2, &Device::Cpu).unwrap();
        assert_ne!(flat(&a), flat(&b));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        save_weights(&a, &path).unwrap();
        load_weights(&b, &path).unwrap();
        assert_eq!(flat(&a), flat(&b));
    }

    #[test]
    fn shape_mismatch_is_reported() {
        let (_, a) = ConvResidual::seeded(3, 1, &Device::Cpu).unwrap();
        let (_, b) = ConvResidual::seeded(4, 1, &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        save_weights(&a, &path).unwrap();
        let err = load_weights(&b, &path).unwrap_err().to_string();
        assert!(err.contains("shape"), "{err}");
    }
}
