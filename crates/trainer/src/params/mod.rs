//! The validated training request, stored as the job's params.
//!
//! [`TrainParams::from_request`] checks a `StartTraining` request and fills in
//! the defaults below; [`TrainParams::train_config`] turns the result into the
//! engine's [`TrainConfig`]. The `DEFAULT_*` constants are the one place the
//! default recipe lives: the README's table of recipe fields is checked
//! against them by a test. Their values are starting points, still to be set
//! from measured runs.

use restoreflow_core::ErrorCode;
use restoreflow_proto::v1;
use restoreflow_training::{
    LossConfig, LrSchedule, PatchSampling, PixelLoss, ProgressiveStage, TileConfig, TrainConfig,
    ValMode,
};
use serde::{Deserialize, Serialize};

mod choices;

pub use choices::{Loss, Schedule, Stage, ValView, patch_sampling_name};
use choices::{choose, legacy};

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
/// Default peak learning rate (the constant rate of `constant`).
pub const DEFAULT_LEARNING_RATE: f64 = 1e-3;
/// Default training patch side.
pub const DEFAULT_PATCH_SIZE: u32 = 64;
/// Default preset.
pub const DEFAULT_PRESET: &str = "small";
/// Default share of pages held out for validation.
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;
/// Fewest pairs a run can use: one to train on and one to validate on.
pub const MIN_PAIRS: usize = 2;
/// Default patches per optimiser step.
pub const DEFAULT_BATCH_SIZE: u32 = 4;
/// Epoch cap of a run that gives no `num_epochs`: it trains for a time budget.
pub const DEFAULT_BUDGET_EPOCHS: u32 = 1000;
/// Time budget in minutes of a run that gives neither `num_epochs` nor
/// `max_minutes` (a run that gives `num_epochs` has no budget unless asked).
pub const DEFAULT_MAX_MINUTES: f64 = 30.0;
/// Default learning-rate schedule.
pub const DEFAULT_SCHEDULE: Schedule = Schedule::WarmupCosine;
/// Default linear warm-up of `warmup_cosine`, in optimiser steps.
pub const DEFAULT_WARMUP_STEPS: u64 = 100;
/// Default final rate of `warmup_cosine` and `cyclic_cosine` (capped at the
/// peak rate when the peak is lower).
pub const DEFAULT_MIN_LEARNING_RATE: f64 = 1e-5;
/// Default training loss.
pub const DEFAULT_LOSS: Loss = Loss::L1;
/// Default weight of the SSIM term when the loss is `l1_ssim`.
pub const DEFAULT_SSIM_WEIGHT: f64 = 0.2;
/// Default extra weight of ink pixels in the per-pixel loss (see
/// [`LossConfig`]).
pub const DEFAULT_INK_WEIGHT: f64 = 0.0;
/// Largest accepted ink weight.
pub const MAX_INK_WEIGHT: f64 = 20.0;
/// Default patches drawn per training page per epoch (when `steps_per_epoch`
/// is not given).
pub const DEFAULT_PATCHES_PER_PAGE: u32 = 4;
/// Default placement of patches inside a page.
pub const DEFAULT_PATCH_SAMPLING: PatchSampling = PatchSampling::Damage;
/// Default gradient clipping (global L2 norm); `None` does not clip.
pub const DEFAULT_CLIP_NORM: Option<f64> = None;
/// Default validation view.
pub const DEFAULT_VAL_VIEW: ValView = ValView::CenterCrop;
/// Default side of the `center_crop` validation crop.
pub const DEFAULT_VAL_CROP: u32 = 256;
/// Default number of held-out pages scored per epoch (the first of the
/// split). Each costs a forward pass of its crop or page at every epoch's
/// end, time the budget does not spend training: scoring all 60 held-out
/// pages of 600 pairs took 136 of a run's 1,417 s (BENCHMARKS.md, the first
/// soak), and more pages would take proportionally more.
pub const DEFAULT_VAL_PAGES: u32 = 32;
/// Most held-out pages a job may ask to score per epoch.
pub const MAX_VAL_PAGES: u32 = 100_000;
/// Default progressive stages: none (one patch and batch size throughout).
pub const DEFAULT_PROGRESSIVE: &[Stage] = &[];
/// Smoothing constant of the Charbonnier loss.
pub const CHARBONNIER_EPS: f64 = 1e-3;

/// Whether this build can train on CUDA.
pub fn cuda_available() -> bool {
    cfg!(feature = "cuda")
}

/// A validated `StartTraining` request with every default filled in.
///
/// Fields added with the training recipe carry serde defaults that mean what
/// older stored params ran with (constant rate, L1, one uniform patch per page
/// per epoch, a centre 256 px validation crop), not today's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// Epochs to run (at most: a time budget may stop the run sooner).
    pub num_epochs: u32,
    /// Patches per optimiser step (with progressive stages, only the size of
    /// an epoch: `ceil(train pages x patches_per_page / batch_size)` steps).
    pub batch_size: u32,
    /// Most pairs to use (the first ones in name order); 0 means all.
    pub max_pairs: u32,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Training patch side in pixels (with progressive stages, the first's).
    pub patch_size: u32,
    /// `tiny`, `small` or `base`.
    pub preset: String,
    /// Share of pages held out for validation.
    pub val_fraction: f64,
    /// Seeds the split and the patch sampler.
    pub seed: u64,
    /// `cpu` or `cuda` once resolved against the live workers
    /// ([`TrainParams::settle_device`]); `auto` before.
    pub device: String,
    /// Matmul precision: `f32`, or `tf32` (CUDA only).
    #[serde(default = "legacy::precision")]
    pub precision: String,
    /// Dataset id or key prefix; empty means every pair in `training-data`.
    pub dataset: String,
    /// Version number or alias to fine-tune from.
    pub base_model: Option<String>,
    /// Stop after this many epochs without a better validation PSNR.
    pub early_stopping: Option<u32>,
    /// Learning-rate schedule.
    #[serde(default = "legacy::schedule")]
    pub schedule: Schedule,
    /// Warm-up steps (`warmup_cosine` only).
    #[serde(default)]
    pub warmup_steps: Option<u64>,
    /// Final rate (`warmup_cosine` and `cyclic_cosine` only).
    #[serde(default)]
    pub min_learning_rate: Option<f64>,
    /// Progressive patch/batch stages; empty for one size throughout.
    #[serde(default)]
    pub progressive: Vec<Stage>,
    /// Training loss.
    #[serde(default = "legacy::loss")]
    pub loss: Loss,
    /// Weight of the SSIM term (`l1_ssim` only).
    #[serde(default)]
    pub ssim_weight: Option<f64>,
    /// Extra weight of ink pixels in the per-pixel loss (0: every pixel alike).
    #[serde(default)]
    pub ink_weight: f64,
    /// Patches per training page per epoch (absent when `steps_per_epoch` is set).
    #[serde(default)]
    pub patches_per_page: Option<u32>,
    /// Optimiser steps per epoch, when fixed.
    #[serde(default)]
    pub steps_per_epoch: Option<u32>,
    /// Where patches are taken inside a page.
    #[serde(default = "legacy::patch_sampling")]
    pub patch_sampling: PatchSampling,
    /// Global L2 norm gradients are clipped to; `None` does not clip.
    #[serde(default)]
    pub clip_norm: Option<f64>,
    /// Wall-clock budget in minutes, validation included; `None` for none.
    #[serde(default)]
    pub max_minutes: Option<f64>,
    /// What each validation page is measured on.
    #[serde(default = "legacy::val_view")]
    pub val_view: ValView,
    /// Side of the centre crop (`center_crop` only).
    #[serde(default = "legacy::val_crop_size")]
    pub val_crop_size: Option<u32>,
    /// Held-out pages scored per epoch at most; `None` (jobs recorded
    /// before the field existed) scores every held-out page.
    #[serde(default)]
    pub val_pages: Option<u32>,
}

/// `Ok(())` when `ok`, else the message.
fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), Invalid> {
    if ok { Ok(()) } else { Err(Invalid(message())) }
}

/// A patch side: a multiple of 8 in 16..=512.
fn patch_ok(p: u32) -> bool {
    (16..=512).contains(&p) && p.is_multiple_of(8)
}

impl TrainParams {
    /// The memory estimate of one training step at the largest batch and
    /// patch this job uses (see `Config::train_step_bytes`), in bytes.
    pub fn memory_estimate(&self) -> u64 {
        let Ok(cfg) = restoreflow_restormer::Config::by_name(&self.preset) else {
            return 0;
        };
        let mut sizes = vec![(self.batch_size, self.patch_size)];
        sizes.extend(
            self.progressive
                .iter()
                .map(|s| (s.batch_size, s.patch_size)),
        );
        sizes
            .into_iter()
            .map(|(b, p)| cfg.train_step_bytes(b as usize, p as usize))
            .max()
            .unwrap_or(0)
    }

    /// Refuses a job whose [`TrainParams::memory_estimate`] is over `limit`
    /// bytes, naming what to shrink.
    pub fn check_memory(&self, limit: u64) -> Result<(), Invalid> {
        let need = self.memory_estimate();
        if need <= limit {
            return Ok(());
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        Err(Invalid(format!(
            "this job needs about {:.1} GiB for a training step (preset {}, batch_size {}, patch_size {}{}), \
             over trainer.max_job_memory ({:.1} GiB): use a smaller batch_size, patch_size or preset",
            gib(need),
            self.preset,
            self.batch_size,
            self.patch_size,
            if self.progressive.is_empty() {
                ""
            } else {
                ", at its largest progressive stage"
            },
            gib(limit)
        )))
    }

    /// Fixes the device class the job runs on (resolved against the live
    /// workers) and the precision that follows from it: `auto` is `tf32` on
    /// cuda and `f32` on cpu; `tf32` on cpu is refused.
    pub fn settle_device(&mut self, class: &str) -> Result<(), Invalid> {
        self.precision = match (self.precision.as_str(), class) {
            ("auto", "cuda") => "tf32".into(),
            ("auto", _) => "f32".into(),
            ("tf32", "cpu") => {
                return Err(Invalid(
                    "precision tf32 is a CUDA matmul mode; on device cpu use f32 (or auto)".into(),
                ));
            }
            (p, _) => p.to_string(),
        };
        self.device = class.to_string();
        Ok(())
    }

    /// Validates a request; `default_device` fills an empty device.
    pub fn from_request(
        r: &v1::StartTrainingRequest,
        default_device: &str,
    ) -> Result<Self, Invalid> {
        let bad = |m: String| Err(Invalid(m));
        // No epoch count: train for a time budget (see DEFAULT_MAX_MINUTES).
        let budgeted = r.num_epochs == 0;
        let num_epochs = if budgeted {
            DEFAULT_BUDGET_EPOCHS
        } else {
            r.num_epochs
        };
        check((1..=1000).contains(&num_epochs), || {
            format!("num_epochs must be between 1 and 1000, got {num_epochs}")
        })?;
        check(
            r.max_pairs == 0 || r.max_pairs as usize >= MIN_PAIRS,
            || {
                format!(
                    "max_pairs must be at least {MIN_PAIRS} (one training and one validation page; 0 or absent uses every pair), got {}",
                    r.max_pairs
                )
            },
        )?;
        let learning_rate = r.learning_rate.unwrap_or(DEFAULT_LEARNING_RATE);
        check(learning_rate > 0.0 && learning_rate < 1.0, || {
            format!("learning_rate must be in (0, 1), got {learning_rate}")
        })?;
        let requested = progressive_stages(&r.progressive)?;
        if !requested.is_empty() && r.patch_size.is_some() {
            return bad(
                "patch_size cannot be combined with progressive: each stage sets its own patch_size"
                    .into(),
            );
        }
        // The default stages stand in only for a request that sizes nothing.
        let progressive = if r.progressive.is_empty() && r.patch_size.is_none() && r.batch_size == 0
        {
            DEFAULT_PROGRESSIVE.to_vec()
        } else {
            requested
        };
        let patch_size = match progressive.first() {
            Some(first) => first.patch_size,
            None => r.patch_size.unwrap_or(DEFAULT_PATCH_SIZE),
        };
        check(patch_ok(patch_size), || {
            format!("patch_size must be a multiple of 8 between 16 and 512, got {patch_size}")
        })?;
        let batch_size = match (r.batch_size, progressive.first()) {
            (0, Some(first)) => first.batch_size,
            (0, None) => DEFAULT_BATCH_SIZE,
            (b, _) => b,
        };
        check((1..=64).contains(&batch_size), || {
            format!("batch_size must be between 1 and 64, got {batch_size}")
        })?;
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
        check(val_fraction > 0.0 && val_fraction <= 0.5, || {
            format!("val_fraction must be in (0, 0.5], got {val_fraction}")
        })?;
        let device = if r.device.is_empty() {
            default_device.to_string()
        } else {
            r.device.clone()
        };
        // Which workers have the device is checked against the live pool
        // when the job is recorded (settle_device), not against this build.
        if !matches!(device.as_str(), "cpu" | "cuda" | "auto") {
            return bad(format!(
                "unknown device {device:?}; devices are cpu, cuda and auto"
            ));
        }
        let precision = match r.precision.trim() {
            "" => "auto".to_string(),
            p @ ("auto" | "f32" | "tf32") => p.to_string(),
            other => {
                return bad(format!(
                    "unknown precision {other:?}; precisions are f32, tf32 and auto"
                ));
            }
        };
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

        let schedule = choose(&r.schedule, DEFAULT_SCHEDULE)?;
        let warmup_steps = match (schedule, r.warmup_steps) {
            (Schedule::WarmupCosine, w) => {
                let w = w.unwrap_or(DEFAULT_WARMUP_STEPS);
                check(w <= 100_000, || {
                    format!("warmup_steps must be between 0 and 100000, got {w}")
                })?;
                Some(w)
            }
            (other, Some(_)) => {
                return bad(format!(
                    "warmup_steps applies only to schedule warmup_cosine, not {}",
                    other.as_str()
                ));
            }
            (_, None) => None,
        };
        let min_learning_rate = match (schedule, r.min_learning_rate) {
            (Schedule::Constant, Some(_)) => {
                return bad(
                    "min_learning_rate applies only to schedules warmup_cosine and cyclic_cosine, not constant"
                        .into(),
                );
            }
            (Schedule::Constant, None) => None,
            (_, m) => {
                let m = m.unwrap_or(DEFAULT_MIN_LEARNING_RATE.min(learning_rate));
                check((0.0..=learning_rate).contains(&m), || {
                    format!(
                        "min_learning_rate must be in [0, learning_rate = {learning_rate}], got {m}"
                    )
                })?;
                Some(m)
            }
        };

        let loss = choose(&r.loss, DEFAULT_LOSS)?;
        let ssim_weight = match (loss, r.ssim_weight) {
            (Loss::L1Ssim, w) => {
                let w = w.unwrap_or(DEFAULT_SSIM_WEIGHT);
                check((0.0..=10.0).contains(&w), || {
                    format!("ssim_weight must be in [0, 10], got {w}")
                })?;
                Some(w)
            }
            (other, Some(_)) => {
                return bad(format!(
                    "ssim_weight applies only to loss l1_ssim, not {}",
                    other.as_str()
                ));
            }
            (_, None) => None,
        };

        let ink_weight = r.ink_weight.unwrap_or(DEFAULT_INK_WEIGHT);
        check((0.0..=MAX_INK_WEIGHT).contains(&ink_weight), || {
            format!("ink_weight must be in [0, {MAX_INK_WEIGHT}], got {ink_weight}")
        })?;

        let (patches_per_page, steps_per_epoch) = match (r.patches_per_page, r.steps_per_epoch) {
            (Some(_), Some(_)) => {
                return bad(
                    "patches_per_page and steps_per_epoch both size an epoch; give one of them"
                        .into(),
                );
            }
            (None, Some(s)) => {
                check((1..=100_000).contains(&s), || {
                    format!("steps_per_epoch must be between 1 and 100000, got {s}")
                })?;
                (None, Some(s))
            }
            (p, None) => {
                let p = p.unwrap_or(DEFAULT_PATCHES_PER_PAGE);
                check((1..=256).contains(&p), || {
                    format!("patches_per_page must be between 1 and 256, got {p}")
                })?;
                (Some(p), None)
            }
        };
        let patch_sampling = choose(&r.patch_sampling, DEFAULT_PATCH_SAMPLING)?;
        let clip_norm = r.clip_norm.or(DEFAULT_CLIP_NORM);
        if let Some(c) = clip_norm {
            check(c > 0.0 && c.is_finite(), || {
                format!("clip_norm must be a positive number, got {c}")
            })?;
        }
        let max_minutes = match r.max_minutes {
            Some(m) => Some(m),
            None if budgeted => Some(DEFAULT_MAX_MINUTES),
            None => None,
        };
        if let Some(m) = max_minutes {
            check(m > 0.0 && m <= 10_080.0, || {
                format!("max_minutes must be in (0, 10080] (at most a week), got {m}")
            })?;
        }
        let val_pages = r.val_pages.unwrap_or(DEFAULT_VAL_PAGES);
        check((1..=MAX_VAL_PAGES).contains(&val_pages), || {
            format!("val_pages must be between 1 and {MAX_VAL_PAGES}, got {val_pages}")
        })?;
        let val_view = choose(&r.val_view, DEFAULT_VAL_VIEW)?;
        let val_crop_size = match (val_view, r.val_crop_size) {
            (ValView::CenterCrop, c) => {
                let c = c.unwrap_or(DEFAULT_VAL_CROP);
                check((32..=1024).contains(&c) && c.is_multiple_of(8), || {
                    format!("val_crop_size must be a multiple of 8 between 32 and 1024, got {c}")
                })?;
                Some(c)
            }
            (ValView::WholePage, Some(_)) => {
                return bad(
                    "val_crop_size applies only to val_view center_crop, not whole_page".into(),
                );
            }
            (ValView::WholePage, None) => None,
        };

        let params = Self {
            num_epochs,
            batch_size,
            max_pairs: r.max_pairs,
            learning_rate,
            patch_size,
            preset,
            val_fraction,
            seed: r.seed.unwrap_or_else(rand_seed),
            device,
            precision,
            dataset,
            base_model,
            early_stopping,
            schedule,
            warmup_steps,
            min_learning_rate,
            progressive,
            loss,
            ssim_weight,
            ink_weight,
            patches_per_page,
            steps_per_epoch,
            patch_sampling,
            clip_norm,
            max_minutes,
            val_view,
            val_crop_size,
            val_pages: Some(val_pages),
        };
        // Everything above is narrower than what the engine accepts; this
        // only guards against the two drifting apart.
        params
            .train_config(1)
            .validate()
            .map_err(|e| Invalid(format!("the training recipe is not valid: {e}")))?;
        Ok(params)
    }

    /// The engine configuration of this run.
    pub fn train_config(&self, cache_pages: usize) -> TrainConfig {
        let lr = self.learning_rate;
        let min_lr = self.min_learning_rate.unwrap_or(0.0);
        let schedule = match self.schedule {
            Schedule::Constant => LrSchedule::Constant { lr },
            Schedule::WarmupCosine => LrSchedule::WarmupCosine {
                lr,
                warmup_steps: self.warmup_steps.unwrap_or(0),
                // The end of the run (or of its time budget).
                total_steps: 0,
                min_lr,
            },
            Schedule::CyclicCosine => LrSchedule::OfficialCyclic { lr, min_lr },
        };
        let (pixel, ssim_weight) = match self.loss {
            Loss::L1 => (PixelLoss::L1, 0.0),
            Loss::Charbonnier => (
                PixelLoss::Charbonnier {
                    eps: CHARBONNIER_EPS,
                },
                0.0,
            ),
            Loss::L1Ssim => (
                PixelLoss::L1,
                self.ssim_weight.unwrap_or(DEFAULT_SSIM_WEIGHT),
            ),
        };
        let loss = LossConfig {
            pixel,
            ssim_weight,
            ink_weight: self.ink_weight,
        };
        let progressive = (!self.progressive.is_empty()).then(|| {
            self.progressive
                .iter()
                .map(|s| ProgressiveStage {
                    patch: s.patch_size as usize,
                    batch: s.batch_size as usize,
                    until_step: s.until_step,
                })
                .collect()
        });
        let val_mode = match self.val_view {
            ValView::CenterCrop => ValMode::CenterCrop {
                size: self.val_crop_size.unwrap_or(DEFAULT_VAL_CROP) as usize,
            },
            // Batched tiles keep a GPU busy; on the CPU they only add memory.
            ValView::WholePage => ValMode::Tiled(TileConfig {
                batch: if self.device == "cuda" {
                    restoreflow_training::CUDA_TILE_BATCH
                } else {
                    1
                },
                ..TileConfig::default()
            }),
        };
        TrainConfig {
            epochs: self.num_epochs as usize,
            batch_size: self.batch_size as usize,
            patch_size: self.patch_size as usize,
            progressive,
            schedule,
            loss,
            clip_norm: self.clip_norm,
            val_fraction: self.val_fraction,
            val_mode,
            max_val_pages: self.val_pages.map(|v| v as usize),
            seed: self.seed,
            steps_per_epoch: self.steps_per_epoch.map(|s| s as usize),
            patches_per_page: self.patches_per_page.map(|p| p as usize),
            patch_sampling: self.patch_sampling,
            max_seconds: self.max_minutes.map(|m| m * 60.0),
            early_stopping: self.early_stopping.map(|p| p as usize),
            cache_pages,
            ..TrainConfig::default()
        }
    }
}

/// Checks the requested progressive stages.
fn progressive_stages(stages: &[v1::ProgressiveStage]) -> Result<Vec<Stage>, Invalid> {
    check(stages.len() <= 8, || {
        format!("progressive takes at most 8 stages, got {}", stages.len())
    })?;
    let mut previous = 0u64;
    for (i, s) in stages.iter().enumerate() {
        check(patch_ok(s.patch_size), || {
            format!(
                "progressive[{i}].patch_size must be a multiple of 8 between 16 and 512, got {}",
                s.patch_size
            )
        })?;
        check((1..=64).contains(&s.batch_size), || {
            format!(
                "progressive[{i}].batch_size must be between 1 and 64, got {}",
                s.batch_size
            )
        })?;
        check(s.until_step > previous, || {
            format!(
                "progressive[{i}].until_step must be greater than {previous} (stages end at strictly increasing steps), got {}",
                s.until_step
            )
        })?;
        previous = s.until_step;
    }
    Ok(stages
        .iter()
        .map(|s| Stage {
            patch_size: s.patch_size,
            batch_size: s.batch_size,
            until_step: s.until_step,
        })
        .collect())
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
    use super::choices::Choice;
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
    fn jobs_over_the_memory_limit_are_refused_by_their_largest_stage() {
        let gib = 1u64 << 30;
        let mut r = req();
        r.preset = "small".into();
        r.batch_size = 4;
        r.patch_size = Some(64);
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        assert!(p.memory_estimate() < gib, "{}", p.memory_estimate());
        assert!(p.check_memory(12 * gib).is_ok());
        r.preset = "base".into();
        r.batch_size = 64;
        r.patch_size = Some(512);
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        let e = p.check_memory(12 * gib).unwrap_err().0;
        assert!(
            e.contains("trainer.max_job_memory") && e.contains("batch_size 64"),
            "{e}"
        );
        // A progressive run is judged by its largest stage.
        let mut r = req();
        r.preset = "small".into();
        r.patch_size = None;
        r.progressive = vec![stage(64, 4, 100), stage(256, 16, 200)];
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        let big = restoreflow_restormer::Config::small().train_step_bytes(16, 256);
        assert_eq!(p.memory_estimate(), big);
        let e = p.check_memory(big - 1).unwrap_err().0;
        assert!(e.contains("largest progressive stage"), "{e}");
    }

    fn stage(patch_size: u32, batch_size: u32, until_step: u64) -> v1::ProgressiveStage {
        v1::ProgressiveStage {
            patch_size,
            batch_size,
            until_step,
        }
    }

    type Edit = Box<dyn Fn(&mut v1::StartTrainingRequest)>;

    /// Each edit of [`req`] is refused with a message naming `field`.
    fn refused(cases: Vec<(Edit, &str)>) {
        for (edit, field) in cases {
            let mut r = req();
            edit(&mut r);
            let msg = err(r);
            assert!(msg.contains(field), "{field}: {msg}");
        }
    }

    #[test]
    fn an_empty_request_trains_the_default_recipe_for_the_default_budget() {
        let p = TrainParams::from_request(&v1::StartTrainingRequest::default(), "cpu").unwrap();
        assert_eq!(p.num_epochs, DEFAULT_BUDGET_EPOCHS);
        assert_eq!(p.max_minutes, Some(DEFAULT_MAX_MINUTES));
        assert_eq!(p.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(p.max_pairs, 0, "0 = every pair");
        assert_eq!(p.preset, DEFAULT_PRESET);
        assert_eq!(p.patch_size, DEFAULT_PATCH_SIZE);
        assert_eq!(p.learning_rate, DEFAULT_LEARNING_RATE);
        assert_eq!(p.val_fraction, DEFAULT_VAL_FRACTION);
        assert_eq!(p.val_pages, Some(DEFAULT_VAL_PAGES));
        assert_eq!(
            p.train_config(8).max_val_pages,
            Some(DEFAULT_VAL_PAGES as usize)
        );
        assert_eq!(p.device, "cpu");
        assert_eq!(p.dataset, "");
        assert_eq!(p.base_model, None);
        assert_eq!(p.schedule, DEFAULT_SCHEDULE);
        assert_eq!(p.loss, DEFAULT_LOSS);
        assert_eq!(p.patch_sampling, DEFAULT_PATCH_SAMPLING);
        assert_eq!(p.clip_norm, DEFAULT_CLIP_NORM);
        assert_eq!(p.val_view, DEFAULT_VAL_VIEW);
        assert_eq!(p.progressive, DEFAULT_PROGRESSIVE);
        assert_eq!(p.patches_per_page, Some(DEFAULT_PATCHES_PER_PAGE));
        assert_eq!(p.steps_per_epoch, None);
        let cfg = p.train_config(8);
        cfg.validate().unwrap();
        assert_eq!(cfg.epochs, DEFAULT_BUDGET_EPOCHS as usize);
        assert_eq!(cfg.max_seconds, Some(DEFAULT_MAX_MINUTES * 60.0));
        assert_eq!(cfg.batch_size, DEFAULT_BATCH_SIZE as usize);
        assert_eq!(cfg.patch_size, DEFAULT_PATCH_SIZE as usize);
        assert_eq!(
            cfg.patches_per_page,
            Some(DEFAULT_PATCHES_PER_PAGE as usize)
        );
        assert_eq!(cfg.patch_sampling, DEFAULT_PATCH_SAMPLING);
        assert_eq!(cfg.clip_norm, DEFAULT_CLIP_NORM);
        assert_eq!(cfg.cache_pages, 8);
        assert_eq!(cfg.schedule.peak(), DEFAULT_LEARNING_RATE);
    }

    #[test]
    fn default_schedule_loss_and_view_map_to_the_engine() {
        // Pinned to the defaults' kinds so a change of a default is a
        // deliberate edit here too.
        let p = TrainParams::from_request(&req(), "cpu").unwrap();
        let cfg = p.train_config(8);
        assert_eq!(
            cfg.schedule,
            LrSchedule::WarmupCosine {
                lr: DEFAULT_LEARNING_RATE,
                warmup_steps: DEFAULT_WARMUP_STEPS,
                total_steps: 0,
                min_lr: DEFAULT_MIN_LEARNING_RATE,
            }
        );
        assert_eq!(
            cfg.loss,
            LossConfig {
                ink_weight: DEFAULT_INK_WEIGHT,
                ..LossConfig::default()
            }
        );
        assert_eq!(
            cfg.val_mode,
            ValMode::CenterCrop {
                size: DEFAULT_VAL_CROP as usize
            }
        );
        assert_eq!(DEFAULT_PATCH_SAMPLING.name(), "damage");
    }

    #[test]
    fn explicit_epochs_have_no_time_budget_unless_asked() {
        let p = TrainParams::from_request(&req(), "cpu").unwrap();
        assert_eq!((p.num_epochs, p.max_minutes), (2, None));
        assert_eq!(p.train_config(8).max_seconds, None);
        let mut r = req();
        r.max_minutes = Some(1.5);
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        assert_eq!(p.train_config(8).max_seconds, Some(90.0));
        // A budget without epochs keeps the epoch cap.
        let r = v1::StartTrainingRequest {
            max_minutes: Some(5.0),
            ..Default::default()
        };
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        assert_eq!(
            (p.num_epochs, p.max_minutes),
            (DEFAULT_BUDGET_EPOCHS, Some(5.0))
        );
    }

    #[test]
    fn a_recipe_maps_to_the_engine_config() {
        let mut r = req();
        r.patch_size = None;
        r.batch_size = 0;
        r.learning_rate = Some(2e-3);
        r.schedule = "cyclic_cosine".into();
        r.min_learning_rate = Some(1e-6);
        r.progressive = vec![stage(32, 4, 10), stage(48, 2, 20)];
        r.loss = "l1_ssim".into();
        r.ssim_weight = Some(0.5);
        r.ink_weight = Some(3.0);
        r.steps_per_epoch = Some(7);
        r.patch_sampling = "uniform".into();
        r.clip_norm = Some(0.5);
        r.max_minutes = Some(2.0);
        r.val_view = "whole_page".into();
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        // Without a batch_size the first stage sizes the epoch.
        assert_eq!((p.batch_size, p.patch_size), (4, 32));
        let cfg = p.train_config(8);
        cfg.validate().unwrap();
        assert_eq!(
            cfg.schedule,
            LrSchedule::OfficialCyclic {
                lr: 2e-3,
                min_lr: 1e-6
            }
        );
        assert_eq!(
            cfg.progressive,
            Some(vec![
                ProgressiveStage {
                    patch: 32,
                    batch: 4,
                    until_step: 10
                },
                ProgressiveStage {
                    patch: 48,
                    batch: 2,
                    until_step: 20
                },
            ])
        );
        assert_eq!(
            cfg.loss,
            LossConfig {
                pixel: PixelLoss::L1,
                ssim_weight: 0.5,
                ink_weight: 3.0,
            }
        );
        assert_eq!((cfg.steps_per_epoch, cfg.patches_per_page), (Some(7), None));
        assert_eq!(cfg.patch_sampling, PatchSampling::Uniform);
        assert_eq!(cfg.clip_norm, Some(0.5));
        assert_eq!(cfg.max_seconds, Some(120.0));
        assert_eq!(cfg.val_mode, ValMode::Tiled(TileConfig::default()));
        let mut on_gpu = p.clone();
        on_gpu.settle_device("cuda").unwrap();
        match on_gpu.train_config(8).val_mode {
            ValMode::Tiled(t) => assert_eq!(t.batch, restoreflow_training::CUDA_TILE_BATCH),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.val_crop_size, None);

        let mut r = req();
        r.schedule = "warmup_cosine".into();
        r.warmup_steps = Some(0);
        r.learning_rate = Some(1e-6);
        r.loss = "charbonnier".into();
        r.patches_per_page = Some(3);
        r.val_crop_size = Some(128);
        let p = TrainParams::from_request(&r, "cpu").unwrap();
        let cfg = p.train_config(8);
        // The default floor is capped at a lower peak.
        assert_eq!(
            cfg.schedule,
            LrSchedule::WarmupCosine {
                lr: 1e-6,
                warmup_steps: 0,
                total_steps: 0,
                min_lr: 1e-6
            }
        );
        assert_eq!(
            cfg.loss,
            LossConfig {
                ink_weight: DEFAULT_INK_WEIGHT,
                ..LossConfig::charbonnier()
            }
        );
        assert_eq!(cfg.patches_per_page, Some(3));
        assert_eq!(cfg.val_mode, ValMode::CenterCrop { size: 128 });
        let mut r = req();
        r.schedule = "constant".into();
        let cfg = TrainParams::from_request(&r, "cpu")
            .unwrap()
            .train_config(8);
        assert_eq!(
            cfg.schedule,
            LrSchedule::Constant {
                lr: DEFAULT_LEARNING_RATE
            }
        );
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        // num_epochs 0 and batch_size 0 are no longer refused: 0 means "not
        // given" in the protobuf request, so they take the defaults (a time
        // budget, the default batch); see the tests above.
        refused(vec![
            (Box::new(|r| r.num_epochs = 1001), "num_epochs"),
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
            (Box::new(|r| r.val_pages = Some(0)), "val_pages"),
            (Box::new(|r| r.val_pages = Some(100_001)), "val_pages"),
            (Box::new(|r| r.device = "tpu".into()), "device"),
            (Box::new(|r| r.dataset = "../x".into()), "dataset"),
            (
                Box::new(|r| r.early_stopping_patience = Some(0)),
                "early_stopping",
            ),
        ]);
        let mut r = req();
        r.val_fraction = Some(0.5);
        r.patch_size = Some(512);
        assert!(TrainParams::from_request(&r, "cpu").is_ok());
    }

    #[test]
    fn out_of_range_recipe_values_name_the_field() {
        refused(vec![
            (Box::new(|r| r.warmup_steps = Some(100_001)), "warmup_steps"),
            (
                Box::new(|r| r.min_learning_rate = Some(-1e-6)),
                "min_learning_rate",
            ),
            (
                Box::new(|r| {
                    r.learning_rate = Some(1e-4);
                    r.min_learning_rate = Some(2e-4);
                }),
                "min_learning_rate",
            ),
            (
                Box::new(|r| r.min_learning_rate = Some(f64::NAN)),
                "min_learning_rate",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = (1..=9).map(|i| stage(32, 2, i)).collect();
                }),
                "progressive",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = vec![stage(36, 2, 5)];
                }),
                "progressive[0].patch_size",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = vec![stage(32, 2, 5), stage(520, 2, 9)];
                }),
                "progressive[1].patch_size",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = vec![stage(32, 0, 5)];
                }),
                "progressive[0].batch_size",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = vec![stage(32, 65, 5)];
                }),
                "progressive[0].batch_size",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = vec![stage(32, 2, 5), stage(64, 2, 5)];
                }),
                "progressive[1].until_step",
            ),
            (
                Box::new(|r| {
                    r.patch_size = None;
                    r.progressive = vec![stage(32, 2, 0)];
                }),
                "progressive[0].until_step",
            ),
            (
                Box::new(|r| {
                    r.loss = "l1_ssim".into();
                    r.ssim_weight = Some(10.5);
                }),
                "ssim_weight",
            ),
            (
                Box::new(|r| {
                    r.loss = "l1_ssim".into();
                    r.ssim_weight = Some(-0.1);
                }),
                "ssim_weight",
            ),
            (Box::new(|r| r.ink_weight = Some(-0.5)), "ink_weight"),
            (Box::new(|r| r.ink_weight = Some(20.5)), "ink_weight"),
            (Box::new(|r| r.ink_weight = Some(f64::NAN)), "ink_weight"),
            (
                Box::new(|r| r.patches_per_page = Some(0)),
                "patches_per_page",
            ),
            (
                Box::new(|r| r.patches_per_page = Some(257)),
                "patches_per_page",
            ),
            (Box::new(|r| r.steps_per_epoch = Some(0)), "steps_per_epoch"),
            (
                Box::new(|r| r.steps_per_epoch = Some(100_001)),
                "steps_per_epoch",
            ),
            (Box::new(|r| r.clip_norm = Some(0.0)), "clip_norm"),
            (Box::new(|r| r.clip_norm = Some(f64::INFINITY)), "clip_norm"),
            (Box::new(|r| r.max_minutes = Some(0.0)), "max_minutes"),
            (Box::new(|r| r.max_minutes = Some(10_081.0)), "max_minutes"),
            (Box::new(|r| r.val_crop_size = Some(24)), "val_crop_size"),
            (Box::new(|r| r.val_crop_size = Some(100)), "val_crop_size"),
            (Box::new(|r| r.val_crop_size = Some(1032)), "val_crop_size"),
        ]);
        // The edges are accepted.
        let mut r = req();
        r.warmup_steps = Some(100_000);
        r.min_learning_rate = Some(DEFAULT_LEARNING_RATE);
        r.steps_per_epoch = Some(100_000);
        r.max_minutes = Some(10_080.0);
        r.val_crop_size = Some(1024);
        r.clip_norm = Some(1e-9);
        TrainParams::from_request(&r, "cpu").unwrap();
        let mut r = req();
        r.patch_size = None;
        r.progressive = (1..=8).map(|i| stage(512, 64, i)).collect();
        r.loss = "l1_ssim".into();
        r.ssim_weight = Some(10.0);
        r.patches_per_page = Some(256);
        r.val_crop_size = Some(32);
        TrainParams::from_request(&r, "cpu").unwrap();
    }

    #[test]
    fn knobs_of_another_choice_are_refused() {
        refused(vec![
            (
                Box::new(|r| {
                    r.schedule = "constant".into();
                    r.warmup_steps = Some(10);
                }),
                "warmup_steps applies only to schedule warmup_cosine",
            ),
            (
                Box::new(|r| {
                    r.schedule = "cyclic_cosine".into();
                    r.warmup_steps = Some(10);
                }),
                "warmup_steps",
            ),
            (
                Box::new(|r| {
                    r.schedule = "constant".into();
                    r.min_learning_rate = Some(1e-6);
                }),
                "min_learning_rate applies only",
            ),
            (
                Box::new(|r| {
                    r.loss = "charbonnier".into();
                    r.ssim_weight = Some(0.1);
                }),
                "ssim_weight applies only to loss l1_ssim",
            ),
            (
                Box::new(|r| {
                    r.patches_per_page = Some(2);
                    r.steps_per_epoch = Some(2);
                }),
                "patches_per_page and steps_per_epoch",
            ),
            (
                Box::new(|r| {
                    r.val_view = "whole_page".into();
                    r.val_crop_size = Some(64);
                }),
                "val_crop_size applies only",
            ),
            (
                Box::new(|r| r.progressive = vec![stage(32, 2, 5)]),
                "patch_size cannot be combined with progressive",
            ),
        ]);
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_ones() {
        refused(vec![
            (
                Box::new(|r| r.schedule = "cosine".into()),
                "unknown schedule \"cosine\"; valid values are constant, warmup_cosine, cyclic_cosine",
            ),
            (
                Box::new(|r| r.loss = "L1".into()),
                "unknown loss \"L1\"; valid values are l1, charbonnier, l1_ssim",
            ),
            (
                Box::new(|r| r.patch_sampling = "random".into()),
                "unknown patch_sampling \"random\"; valid values are ink, damage, uniform",
            ),
            (
                Box::new(|r| r.val_view = "full".into()),
                "unknown val_view \"full\"; valid values are center_crop, whole_page",
            ),
        ]);
    }

    #[test]
    fn device_and_precision_are_settled_against_the_chosen_class() {
        let mut r = req();
        r.device = String::new();
        let mut p = TrainParams::from_request(&r, "auto").unwrap();
        assert_eq!((p.device.as_str(), p.precision.as_str()), ("auto", "auto"));
        p.settle_device("cuda").unwrap();
        assert_eq!((p.device.as_str(), p.precision.as_str()), ("cuda", "tf32"));
        let mut p = TrainParams::from_request(&r, "auto").unwrap();
        p.settle_device("cpu").unwrap();
        assert_eq!(p.precision, "f32");

        r.device = "cuda".into();
        r.precision = "f32".into();
        let mut p = TrainParams::from_request(&r, "auto").unwrap();
        p.settle_device("cuda").unwrap();
        assert_eq!(p.precision, "f32", "an explicit f32 stays f32 on cuda");

        r.device = "cpu".into();
        r.precision = "tf32".into();
        let mut p = TrainParams::from_request(&r, "auto").unwrap();
        let msg = p.settle_device("cpu").unwrap_err().0;
        assert!(msg.contains("tf32") && msg.contains("cpu"), "{msg}");

        r.precision = "fp8".into();
        let msg = TrainParams::from_request(&r, "auto").unwrap_err().0;
        assert!(msg.contains("unknown precision"), "{msg}");
        r.precision = String::new();
        r.device = "cuda:1".into();
        let msg = TrainParams::from_request(&r, "auto").unwrap_err().0;
        assert!(msg.contains("unknown device"), "{msg}");
    }

    #[test]
    fn params_round_trip_through_json() {
        let mut r = req();
        r.patch_size = None;
        r.progressive = vec![stage(32, 2, 5), stage(64, 1, 9)];
        r.loss = "l1_ssim".into();
        r.max_minutes = Some(3.0);
        r.val_view = "whole_page".into();
        for r in [req(), r] {
            let p = TrainParams::from_request(&r, "cpu").unwrap();
            let v = serde_json::to_value(&p).unwrap();
            assert_eq!(serde_json::from_value::<TrainParams>(v).unwrap(), p);
        }
        let v = serde_json::to_value(TrainParams::from_request(&req(), "cpu").unwrap()).unwrap();
        assert_eq!(v["schedule"], "warmup_cosine");
        assert_eq!(v["patch_sampling"], "damage");
        assert_eq!(v["val_view"], "center_crop");
    }

    #[test]
    fn params_stored_before_the_recipe_still_run_as_they_did() {
        let old = serde_json::json!({
            "num_epochs": 3, "batch_size": 2, "max_pairs": 6, "learning_rate": 0.0003,
            "patch_size": 32, "preset": "tiny", "val_fraction": 0.1, "seed": 7,
            "device": "cpu", "dataset": "", "base_model": null, "early_stopping": null
        });
        let p: TrainParams = serde_json::from_value(old).unwrap();
        assert_eq!(p.precision, "f32");
        let cfg = p.train_config(8);
        cfg.validate().unwrap();
        assert_eq!(cfg.schedule, LrSchedule::Constant { lr: 3e-4 });
        assert_eq!(cfg.loss, LossConfig::default());
        assert_eq!(cfg.patch_sampling, PatchSampling::Uniform);
        assert_eq!(cfg.patches_per_page, None);
        assert_eq!(cfg.val_mode, ValMode::CenterCrop { size: 256 });
        assert_eq!(cfg.max_val_pages, None, "every held-out page, as before");
        assert_eq!(
            (cfg.max_seconds, cfg.clip_norm, cfg.progressive),
            (None, None, None)
        );
    }

    /// The README's table of recipe fields states today's defaults.
    #[test]
    fn readme_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let row = |field: &str| -> &str {
            let start = format!("| `{field}` |");
            readme
                .lines()
                .find(|l| l.starts_with(&start))
                .unwrap_or_else(|| panic!("README has no recipe row for {field}"))
        };
        let cases = [
            ("num_epochs", format!("{DEFAULT_BUDGET_EPOCHS}")),
            ("max_minutes", format!("{DEFAULT_MAX_MINUTES}")),
            ("batch_size", format!("{DEFAULT_BATCH_SIZE}")),
            ("learning_rate", format!("{DEFAULT_LEARNING_RATE:e}")),
            ("schedule", format!("`{}`", DEFAULT_SCHEDULE.as_str())),
            ("warmup_steps", format!("{DEFAULT_WARMUP_STEPS}")),
            (
                "min_learning_rate",
                format!("{DEFAULT_MIN_LEARNING_RATE:e}"),
            ),
            ("loss", format!("`{}`", DEFAULT_LOSS.as_str())),
            ("ssim_weight", format!("{DEFAULT_SSIM_WEIGHT}")),
            ("ink_weight", format!("{DEFAULT_INK_WEIGHT}")),
            ("patches_per_page", format!("{DEFAULT_PATCHES_PER_PAGE}")),
            (
                "patch_sampling",
                format!("`{}`", patch_sampling_name(DEFAULT_PATCH_SAMPLING)),
            ),
            (
                "clip_norm",
                DEFAULT_CLIP_NORM.map_or("none".to_string(), |c| c.to_string()),
            ),
            ("val_view", format!("`{}`", DEFAULT_VAL_VIEW.as_str())),
            ("val_crop_size", format!("{DEFAULT_VAL_CROP}")),
            ("patch_size", format!("{DEFAULT_PATCH_SIZE}")),
            ("preset", format!("`{DEFAULT_PRESET}`")),
            ("val_fraction", format!("{DEFAULT_VAL_FRACTION}")),
            ("val_pages", format!("{DEFAULT_VAL_PAGES}")),
        ];
        for (field, default) in cases {
            let line = row(field);
            let cell = line.split('|').nth(2).unwrap_or_default();
            assert!(
                cell.contains(&default),
                "README row of {field} should give the default {default}: {line}"
            );
        }
        assert!(DEFAULT_PROGRESSIVE.is_empty(), "README says none");
        assert!(
            row("progressive")
                .split('|')
                .nth(2)
                .unwrap()
                .contains("none")
        );
    }
}
