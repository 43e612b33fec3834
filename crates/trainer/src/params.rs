//! The validated training request, stored as the job's params.

use restoreflow_core::ErrorCode;
use restoreflow_proto::v1;
use restoreflow_training::{LrSchedule, TrainConfig};
use serde::{Deserialize, Serialize};

/// A request value that is out of range; becomes `INVALID_ARGUMENT`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<Invalid> for tonic::Status {
    fn from(e: Invalid) -> Self {
        ErrorCode::InvalidArgument.status(e.0)
    }
}

/// Model presets a job may ask for.
pub const PRESETS: [&str; 3] = ["tiny", "small", "base"];
/// Default learning rate (constant schedule).
pub const DEFAULT_LEARNING_RATE: f64 = 3e-4;
/// Default training patch side.
pub const DEFAULT_PATCH_SIZE: u32 = 64;
/// Default preset.
pub const DEFAULT_PRESET: &str = "small";
/// Default share of pages held out for validation.
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;
/// Fewest pairs a run can use: one to train on and one to validate on.
pub const MIN_PAIRS: usize = 2;

/// Whether this build can train on CUDA.
pub fn cuda_available() -> bool {
    cfg!(feature = "cuda")
}

/// A validated `StartTraining` request with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// Epochs to run.
    pub num_epochs: u32,
    /// Patches per optimiser step.
    pub batch_size: u32,
    /// Most pairs to use (the first ones in name order).
    pub max_pairs: u32,
    /// Constant learning rate.
    pub learning_rate: f64,
    /// Training patch side in pixels.
    pub patch_size: u32,
    /// `tiny`, `small` or `base`.
    pub preset: String,
    /// Share of pages held out for validation.
    pub val_fraction: f64,
    /// Seeds the split and the patch sampler.
    pub seed: u64,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Dataset id or key prefix; empty means every pair in `training-data`.
    pub dataset: String,
    /// Version number or alias to fine-tune from.
    pub base_model: Option<String>,
    /// Stop after this many epochs without a better validation PSNR.
    pub early_stopping: Option<u32>,
}

impl TrainParams {
    /// Validates a request; `default_device` fills an empty device.
    pub fn from_request(
        r: &v1::StartTrainingRequest,
        default_device: &str,
    ) -> Result<Self, Invalid> {
        let bad = |m: String| Err(Invalid(m));
        if !(1..=1000).contains(&r.num_epochs) {
            return bad(format!(
                "num_epochs must be between 1 and 1000, got {}",
                r.num_epochs
            ));
        }
        if !(1..=64).contains(&r.batch_size) {
            return bad(format!(
                "batch_size must be between 1 and 64, got {}",
                r.batch_size
            ));
        }
        if (r.max_pairs as usize) < MIN_PAIRS {
            return bad(format!(
                "max_pairs must be at least {MIN_PAIRS} (one training and one validation page), got {}",
                r.max_pairs
            ));
        }
        let learning_rate = r.learning_rate.unwrap_or(DEFAULT_LEARNING_RATE);
        if !(learning_rate > 0.0 && learning_rate < 1.0) {
            return bad(format!(
                "learning_rate must be in (0, 1), got {learning_rate}"
            ));
        }
        let patch_size = r.patch_size.unwrap_or(DEFAULT_PATCH_SIZE);
        if !(16..=512).contains(&patch_size) || patch_size % 8 != 0 {
            return bad(format!(
                "patch_size must be a multiple of 8 between 16 and 512, got {patch_size}"
            ));
        }
        let preset = if r.preset.is_empty() {
            DEFAULT_PRESET.to_string()
        } else {
            r.preset.clone()
        };
        if !PRESETS.contains(&preset.as_str()) {
            return bad(format!(
                "unknown preset {preset:?}; presets are {}",
                PRESETS.join(", ")
            ));
        }
        let val_fraction = r.val_fraction.unwrap_or(DEFAULT_VAL_FRACTION);
        if !(val_fraction > 0.0 && val_fraction <= 0.5) {
            return bad(format!(
                "val_fraction must be in (0, 0.5], got {val_fraction}"
            ));
        }
        let device = if r.device.is_empty() {
            default_device.to_string()
        } else {
            r.device.clone()
        };
        match device.as_str() {
            "cpu" => {}
            "cuda" if cuda_available() => {}
            "cuda" => {
                return bad(
                    "device cuda is not available: this trainer was built without CUDA support (the cuda feature); use device cpu"
                        .into(),
                );
            }
            other => return bad(format!("unknown device {other:?}; devices are cpu, cuda")),
        }
        let dataset = r.dataset.trim().to_string();
        if dataset.len() > 512 || dataset.contains("..") || dataset.starts_with('/') {
            return bad(format!(
                "dataset {dataset:?} is not a dataset id or key prefix"
            ));
        }
        let base_model = Some(r.base_model.trim().to_string()).filter(|b| !b.is_empty());
        if let Some(b) = &base_model
            && b.len() > 64
        {
            return bad("base_model must be a version number or an alias".into());
        }
        let early_stopping = r.early_stopping_patience;
        if early_stopping == Some(0) {
            return bad("early_stopping must be at least 1 epoch".into());
        }
        Ok(Self {
            num_epochs: r.num_epochs,
            batch_size: r.batch_size,
            max_pairs: r.max_pairs,
            learning_rate,
            patch_size,
            preset,
            val_fraction,
            seed: r.seed.unwrap_or_else(rand_seed),
            device,
            dataset,
            base_model,
            early_stopping,
        })
    }

    /// The engine configuration of this run.
    pub fn train_config(&self, cache_pages: usize) -> TrainConfig {
        TrainConfig {
            epochs: self.num_epochs as usize,
            batch_size: self.batch_size as usize,
            patch_size: self.patch_size as usize,
            schedule: LrSchedule::Constant {
                lr: self.learning_rate,
            },
            val_fraction: self.val_fraction,
            seed: self.seed,
            early_stopping: self.early_stopping.map(|p| p as usize),
            cache_pages,
            ..TrainConfig::default()
        }
    }
}

fn rand_seed() -> u64 {
    // A seed only needs to differ between runs; the uuid generator is already here.
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> v1::StartTrainingRequest {
        v1::StartTrainingRequest {
            num_epochs: 2,
            batch_size: 2,
            max_pairs: 6,
            patch_size: Some(32),
            preset: "tiny".into(),
            seed: Some(7),
            ..Default::default()
        }
    }

    fn err(r: v1::StartTrainingRequest) -> String {
        TrainParams::from_request(&r, "cpu").unwrap_err().0
    }

    #[test]
    fn defaults_are_filled_in() {
        let p = TrainParams::from_request(
            &v1::StartTrainingRequest {
                num_epochs: 1,
                batch_size: 4,
                max_pairs: 10,
                ..Default::default()
            },
            "cpu",
        )
        .unwrap();
        assert_eq!(p.preset, "small");
        assert_eq!(p.patch_size, DEFAULT_PATCH_SIZE);
        assert_eq!(p.learning_rate, DEFAULT_LEARNING_RATE);
        assert_eq!(p.val_fraction, DEFAULT_VAL_FRACTION);
        assert_eq!(p.device, "cpu");
        assert_eq!(p.dataset, "");
        assert_eq!(p.base_model, None);
        let cfg = p.train_config(8);
        cfg.validate().unwrap();
        assert_eq!((cfg.epochs, cfg.batch_size, cfg.patch_size), (1, 4, 64));
        assert_eq!(cfg.cache_pages, 8);
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let cases: Vec<(Box<dyn Fn(&mut v1::StartTrainingRequest)>, &str)> = vec![
            (Box::new(|r| r.num_epochs = 0), "num_epochs"),
            (Box::new(|r| r.num_epochs = 1001), "num_epochs"),
            (Box::new(|r| r.batch_size = 0), "batch_size"),
            (Box::new(|r| r.batch_size = 65), "batch_size"),
            (Box::new(|r| r.max_pairs = 1), "max_pairs"),
            (Box::new(|r| r.learning_rate = Some(0.0)), "learning_rate"),
            (Box::new(|r| r.learning_rate = Some(1.0)), "learning_rate"),
            (Box::new(|r| r.patch_size = Some(36)), "patch_size"),
            (Box::new(|r| r.patch_size = Some(8)), "patch_size"),
            (Box::new(|r| r.patch_size = Some(520)), "patch_size"),
            (Box::new(|r| r.preset = "huge".into()), "preset"),
            (Box::new(|r| r.val_fraction = Some(0.0)), "val_fraction"),
            (Box::new(|r| r.val_fraction = Some(0.6)), "val_fraction"),
            (Box::new(|r| r.device = "tpu".into()), "device"),
            (Box::new(|r| r.dataset = "../x".into()), "dataset"),
            (
                Box::new(|r| r.early_stopping_patience = Some(0)),
                "early_stopping",
            ),
        ];
        for (edit, field) in cases {
            let mut r = req();
            edit(&mut r);
            let msg = err(r);
            assert!(msg.contains(field), "{field}: {msg}");
        }
        let mut r = req();
        r.val_fraction = Some(0.5);
        r.patch_size = Some(512);
        assert!(TrainParams::from_request(&r, "cpu").is_ok());
    }

    #[test]
    fn cuda_is_refused_on_a_cpu_build() {
        let mut r = req();
        r.device = "cuda".into();
        let res = TrainParams::from_request(&r, "cpu");
        if cuda_available() {
            assert_eq!(res.unwrap().device, "cuda");
        } else {
            let msg = res.unwrap_err().0;
            assert!(
                msg.contains("cuda") && msg.contains("not available"),
                "{msg}"
            );
        }
    }

    #[test]
    fn params_round_trip_through_json() {
        let p = TrainParams::from_request(&req(), "cpu").unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(serde_json::from_value::<TrainParams>(v).unwrap(), p);
    }
}
