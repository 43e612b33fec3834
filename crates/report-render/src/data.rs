//! The report's input: everything a report says, gathered from stored records
//! (the job row, its events, the dataset row, the model version row). The JSON
//! format is this structure plus the derived numbers in [`crate::Derived`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the JSON schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// All the stored facts about one training run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ReportData {
    pub report_id: String,
    pub generated_at: DateTime<Utc>,
    pub job: JobInfo,
    pub parameters: TrainingParameters,
    pub data: DataStats,
    /// One row per finished epoch, in epoch order.
    pub epochs: Vec<EpochRow>,
    /// The registered model, when the run registered one.
    pub model: Option<ModelInfo>,
    /// The previous version of the same layer, when there is one.
    pub previous: Option<PreviousVersion>,
    /// Where the run ran, as the trainer recorded it.
    pub environment: Option<Environment>,
    /// The GPUs the deployment offered when the report was built (absent
    /// in reports built before device routing).
    #[serde(default)]
    pub gpus: Option<GpuOffer>,
}

/// The GPU trainer workers a next run could use, read from the workers
/// table when the report was built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct GpuOffer {
    /// Live trainer workers of the `cuda` class.
    pub live_workers: u32,
    /// Whether the deployment starts CUDA workers on demand.
    pub on_demand: bool,
}

/// The job row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct JobInfo {
    pub id: String,
    pub layer: u32,
    /// completed | failed | cancelled
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// finished_at - started_at
    pub duration_seconds: Option<f64>,
    pub attempts: u32,
    pub error: Option<String>,
    /// completed | early_stopped | time_budget | cancelled
    pub stop_reason: Option<String>,
    /// Epoch a later attempt resumed from, after a crash.
    pub resumed_from_epoch: Option<u32>,
}

/// The parameters the job was started with (after defaults were applied).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TrainingParameters {
    pub epochs: u32,
    pub batch_size: u32,
    pub learning_rate: f64,
    /// e.g. "warmup 1 epoch, then cosine to 1e-6"
    pub schedule: String,
    pub max_pairs: u32,
    /// e.g. "AdamW (beta1 0.9, beta2 0.999, weight decay 0.0001)"
    pub optimizer: String,
    /// tiny | small | base
    pub preset: String,
    pub patch_size: u32,
    pub seed: u64,
    /// cpu | cuda
    pub device: String,
    pub val_fraction: f64,
    pub early_stopping_patience: Option<u32>,
    /// Version or alias fine-tuned from.
    pub base_model: Option<String>,
    /// Dataset id or prefix asked for; None means every pair.
    pub dataset: Option<String>,
    /// How the run trained; None for runs started before training recipes.
    #[serde(default)]
    pub recipe: Option<TrainingRecipe>,
    /// What the validation figures were measured on, e.g. "centre 256x256
    /// crop" or "whole page (tiled 256 px, overlap 32)", as the trainer
    /// recorded it.
    #[serde(default)]
    pub validation_view: Option<String>,
}

/// The training recipe of a run, as the job's params state it (names as in
/// the training request).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TrainingRecipe {
    /// constant | warmup_cosine | cyclic_cosine
    pub schedule: String,
    /// The schedule's peak (base) learning rate.
    pub peak_learning_rate: f64,
    /// Linear warm-up steps (warmup_cosine).
    pub warmup_steps: Option<u64>,
    /// Final learning rate (warmup_cosine, cyclic_cosine).
    pub min_learning_rate: Option<f64>,
    /// Progressive stages, empty for one patch and batch size throughout.
    pub progressive: Vec<ProgressiveStage>,
    /// l1 | charbonnier | l1_ssim
    pub loss: String,
    /// Weight of the SSIM term (l1_ssim).
    pub ssim_weight: Option<f64>,
    /// Extra weight of ink pixels in the per-pixel loss; None for runs
    /// from before the option (they weighed every pixel alike).
    #[serde(default)]
    pub ink_weight: Option<f64>,
    /// Patches per training page per epoch (when the epoch is sized by pages).
    pub patches_per_page: Option<u32>,
    /// Fixed optimiser steps per epoch.
    pub steps_per_epoch: Option<u32>,
    /// ink | damage | uniform
    pub patch_sampling: String,
    /// Global L2 norm gradients were clipped to; None when not clipped.
    pub clip_norm: Option<f64>,
    /// Wall-clock budget in minutes; None without one.
    pub max_minutes: Option<f64>,
}

/// One progressive training stage.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProgressiveStage {
    pub patch_size: u32,
    pub batch_size: u32,
    /// First step that no longer belongs to the stage.
    pub until_step: u64,
}

/// What the trainer found and used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DataStats {
    /// Bucket/prefix the pairs were read from.
    pub location: String,
    /// Objects listed under the location.
    pub files_seen: u64,
    pub clean_files: u64,
    pub degraded_files: u64,
    /// Clean/degraded pairs with matching names.
    pub valid_pairs: u64,
    /// Pairs actually trained on (valid pairs capped by max_pairs, minus skipped).
    pub pairs_used: u64,
    pub train_pairs: u64,
    pub val_pairs: u64,
    pub skipped: Vec<SkippedPair>,
    pub dataset_id: Option<String>,
    pub dataset_hash: Option<String>,
    /// Pairs selected per target of their datasets: `as_printed` (the printed
    /// page) or `digital` (black on white), `uploaded` or `unknown`; empty
    /// for runs recorded before targets.
    #[serde(default)]
    pub targets: BTreeMap<String, u64>,
    /// The dpi values the datasets recorded, ascending; empty when none did.
    #[serde(default)]
    pub dpi: Vec<u32>,
}

/// A pair left out, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SkippedPair {
    pub name: String,
    pub reason: String,
}

/// One finished epoch, as the trainer's `metric` event recorded it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct EpochRow {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    /// Restored validation images vs clean.
    pub psnr: Option<f64>,
    pub ssim: Option<f64>,
    pub accuracy: Option<f64>,
    /// Identity baseline: degraded validation images vs clean.
    pub baseline_psnr: Option<f64>,
    pub baseline_ssim: Option<f64>,
    pub baseline_accuracy: Option<f64>,
    pub learning_rate: f64,
    pub pairs_per_second: f64,
    pub seconds: f64,
}

/// The registered model version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ModelInfo {
    pub layer: u32,
    pub version: u32,
    /// bucket/key of the weights
    pub object_path: String,
    pub size_bytes: u64,
    pub parameter_count: u64,
    /// e.g. "Restormer (tiny)"
    pub architecture: String,
    /// The model config as registered.
    pub config: serde_json::Value,
    pub sha256: String,
    pub aliases: Vec<String>,
    /// Epoch whose weights were registered (best validation PSNR).
    pub best_epoch: Option<u32>,
}

/// The previous version of the layer, to compare against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct PreviousVersion {
    pub version: u32,
    pub psnr: Option<f64>,
    pub ssim: Option<f64>,
    pub val_loss: Option<f64>,
    pub dataset_hash: Option<String>,
    /// True when both versions were validated on the same data (same dataset
    /// hash, validation fraction and seed), so the deltas compare like with like.
    pub same_validation_data: bool,
}

/// Where the run ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Environment {
    pub os: String,
    pub cpu_model: String,
    pub cpu_threads: u32,
    pub gpu: Option<String>,
    pub rustc_version: String,
    /// crate name -> version (restoreflow, candle-core, …)
    pub crate_versions: BTreeMap<String, String>,
    pub peak_memory_bytes: Option<u64>,
    pub hostname: Option<String>,
}

/// A before/after validation sample for the image strip (8-bit grayscale or RGB PNG bytes).
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub degraded_png: Vec<u8>,
    pub restored_png: Vec<u8>,
    pub clean_png: Vec<u8>,
}
