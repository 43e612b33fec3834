//! Training configuration and the per-epoch records the engine produces.

use serde::{Deserialize, Serialize};

use crate::data::PatchSampling;
use crate::infer::TileConfig;
use crate::{AdamWConfig, Error, LossConfig, LrSchedule, MetricSet, Result};

/// One stage of progressive training (official Restormer style): use
/// `patch` x `patch` crops in batches of `batch` while `step < until_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressiveStage {
    /// Patch side in pixels.
    pub patch: usize,
    /// Batch size.
    pub batch: usize,
    /// First step that no longer belongs to this stage.
    pub until_step: u64,
}

/// What the model sees of each validation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValMode {
    /// One centred crop of `size` x `size` (clipped to the page, rounded down
    /// to a multiple of 8 when the page is at least 8 px), restored at once.
    CenterCrop {
        /// Crop side in pixels.
        size: usize,
    },
    /// The whole page, restored with tiled inference.
    Tiled(TileConfig),
}

impl ValMode {
    /// What the validation figures are measured on, in words, e.g.
    /// `centre 256x256 crop` or `whole page (tiled 256 px, overlap 32)`.
    pub fn describe(&self) -> String {
        match self {
            Self::CenterCrop { size } => format!("centre {size}x{size} crop"),
            Self::Tiled(t) => format!("whole page (tiled {} px, overlap {})", t.tile, t.overlap),
        }
    }
}

/// Everything that shapes a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs to run in total (a resumed run counts the epochs already done).
    pub epochs: usize,
    /// Batch size when `progressive` is unset.
    pub batch_size: usize,
    /// Patch side when `progressive` is unset.
    pub patch_size: usize,
    /// Optional progressive schedule; past the last stage its sizes stay.
    pub progressive: Option<Vec<ProgressiveStage>>,
    /// Learning-rate schedule, evaluated per step.
    pub schedule: LrSchedule,
    /// AdamW hyper-parameters.
    pub optimizer: AdamWConfig,
    /// Training objective (also used for the validation loss).
    pub loss: LossConfig,
    /// Clip gradients to this global L2 norm; `None` (the default) does not clip.
    pub clip_norm: Option<f64>,
    /// Share of pages held out for validation.
    pub val_fraction: f64,
    /// How validation pages are evaluated.
    pub val_mode: ValMode,
    /// Score at most this many held-out pages per epoch (the first ones of
    /// the split, the same every epoch); `None` scores them all.
    #[serde(default)]
    pub max_val_pages: Option<usize>,
    /// Seeds the split and the patch sampler.
    pub seed: u64,
    /// Optimiser steps per epoch; default
    /// `ceil(train pages * patches_per_page / batch_size)`.
    pub steps_per_epoch: Option<usize>,
    /// Patches drawn per training page per epoch when `steps_per_epoch` is
    /// unset; default 1.
    #[serde(default)]
    pub patches_per_page: Option<usize>,
    /// Where patches are taken inside a page.
    #[serde(default)]
    pub patch_sampling: PatchSampling,
    /// Wall-clock budget in seconds (validation included): steps stop when
    /// the budget less the last validation's duration is used, and the epoch
    /// in progress is validated and checkpointed as the last (shortened) one;
    /// an epoch starts only when a tenth of one still fits. Schedules tied to
    /// the run's end decay by the share of the budget used, so the rate
    /// reaches its floor when the time runs out.
    #[serde(default)]
    pub max_seconds: Option<f64>,
    /// Stop after this many epochs without a better validation PSNR.
    pub early_stopping: Option<usize>,
    /// Decoded pages kept in memory at most.
    pub cache_pages: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 4,
            patch_size: 128,
            progressive: None,
            schedule: LrSchedule::Constant { lr: 3e-4 },
            optimizer: AdamWConfig::default(),
            loss: LossConfig::default(),
            clip_norm: None,
            val_fraction: 0.1,
            val_mode: ValMode::CenterCrop { size: 256 },
            max_val_pages: None,
            seed: 0,
            steps_per_epoch: None,
            patches_per_page: None,
            patch_sampling: PatchSampling::Uniform,
            max_seconds: None,
            early_stopping: None,
            cache_pages: 64,
        }
    }
}

impl TrainConfig {
    /// Checks that sizes are positive and the pieces are consistent.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        if self.epochs == 0 || self.batch_size == 0 || self.patch_size == 0 {
            return bad("epochs, batch_size and patch_size must be positive");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("val_fraction must be in [0, 1)");
        }
        if self.max_val_pages == Some(0) {
            return bad("max_val_pages must be positive");
        }
        if self.steps_per_epoch == Some(0) || self.patches_per_page == Some(0) {
            return bad("steps_per_epoch and patches_per_page must be positive");
        }
        if self
            .max_seconds
            .is_some_and(|s| !(s > 0.0 && s.is_finite()))
        {
            return bad("max_seconds must be a positive number of seconds");
        }
        if let Some(stages) = &self.progressive {
            if stages.is_empty() || stages.iter().any(|s| s.patch == 0 || s.batch == 0) {
                return bad("progressive stages need positive patch and batch sizes");
            }
            if stages
                .windows(2)
                .any(|w| w[0].until_step >= w[1].until_step)
            {
                return bad("progressive stages must have increasing until_step");
            }
        }
        if !(self.loss.ink_weight.is_finite() && self.loss.ink_weight >= 0.0) {
            return bad("the ink weight must be a finite number of at least 0");
        }
        if self.loss.ssim_weight != 0.0 && self.smallest_patch() < 11 {
            return bad("the ssim loss term needs patches of at least 11 px");
        }
        if let ValMode::Tiled(t) = self.val_mode {
            t.validate()?;
        }
        self.schedule.validate()
    }

    /// `(patch, batch)` for the update after `step` completed updates.
    pub fn stage_at(&self, step: u64) -> (usize, usize) {
        match &self.progressive {
            Some(stages) if !stages.is_empty() => {
                let s = stages
                    .iter()
                    .find(|s| step < s.until_step)
                    .unwrap_or(&stages[stages.len() - 1]);
                (s.patch, s.batch)
            }
            _ => (self.patch_size, self.batch_size),
        }
    }

    fn smallest_patch(&self) -> usize {
        match &self.progressive {
            Some(stages) => stages
                .iter()
                .map(|s| s.patch)
                .min()
                .unwrap_or(self.patch_size),
            None => self.patch_size,
        }
    }
}

/// Metrics of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimiser steps completed at the end of the epoch.
    pub step: u64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Mean validation loss over validation pages (`None` without any).
    pub val_loss: Option<f64>,
    /// Mean metrics of the restored validation images (outputs clamped to `[0, 1]`).
    pub restored: Option<MetricSet>,
    /// Mean metrics of the degraded inputs themselves: the identity baseline.
    pub baseline: Option<MetricSet>,
    /// Validation pages that were evaluated.
    pub val_pages: usize,
    /// Pages the split held out of training (at least `val_pages`; more when
    /// `max_val_pages` scores only some of them). 0 in records written
    /// before the field existed, where it equalled `val_pages`.
    #[serde(default)]
    pub held_out_pages: usize,
    /// What the validation figures were measured on ([`ValMode::describe`]).
    #[serde(default)]
    pub val_view: String,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Training pairs (patches) per second.
    pub pairs_per_sec: f64,
    /// Optimiser steps per second of training (validation excluded).
    #[serde(default)]
    pub steps_per_sec: f64,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
    /// Wall-clock seconds of the epoch's validation alone.
    #[serde(default)]
    pub val_seconds: f64,
}

/// The best epoch by validation PSNR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Its mean validation PSNR of the restored images.
    pub psnr: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progressive_stages_switch_at_until_step() {
        let cfg = TrainConfig {
            progressive: Some(vec![
                ProgressiveStage {
                    patch: 64,
                    batch: 8,
                    until_step: 10,
                },
                ProgressiveStage {
                    patch: 128,
                    batch: 2,
                    until_step: 20,
                },
            ]),
            ..TrainConfig::default()
        };
        cfg.validate().unwrap();
        assert_eq!(cfg.stage_at(0), (64, 8));
        assert_eq!(cfg.stage_at(9), (64, 8));
        assert_eq!(cfg.stage_at(10), (128, 2));
        assert_eq!(cfg.stage_at(500), (128, 2));
        assert_eq!(TrainConfig::default().stage_at(3), (128, 4));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let mut cfg = TrainConfig {
            val_fraction: 1.0,
            ..TrainConfig::default()
        };
        assert!(cfg.validate().is_err());
        cfg.val_fraction = 0.1;
        cfg.patch_size = 8;
        cfg.loss.ssim_weight = 0.1;
        assert!(cfg.validate().is_err());
        cfg.patch_size = 64;
        assert!(cfg.validate().is_ok());
        for w in [-1.0, f64::NAN, f64::INFINITY] {
            cfg.loss.ink_weight = w;
            assert!(cfg.validate().is_err(), "ink weight {w} accepted");
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = TrainConfig {
            schedule: LrSchedule::restormer_official(),
            ..TrainConfig::default()
        };
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&text).unwrap(), cfg);
    }
}
