//! The named choices of a training request (schedule, loss, patch sampling,
//! validation view), progressive stages, and what params stored before the
//! recipe existed meant.

use restoreflow_training::PatchSampling;
use serde::{Deserialize, Serialize};

use super::Invalid;

/// A request field that takes one of a few names.
pub(super) trait Choice: Copy + Sized + 'static {
    /// The request field.
    const FIELD: &'static str;
    /// Every value, in the order error messages list them.
    const ALL: &'static [Self];
    /// The value's name in requests and stored params.
    fn name(self) -> &'static str;
}

/// `given` as a `T`, `default` when empty; an unknown name is refused with
/// the valid ones.
pub(super) fn choose<T: Choice>(given: &str, default: T) -> Result<T, Invalid> {
    if given.is_empty() {
        return Ok(default);
    }
    T::ALL
        .iter()
        .copied()
        .find(|c| c.name() == given)
        .ok_or_else(|| {
            let names: Vec<&str> = T::ALL.iter().map(|c| c.name()).collect();
            Invalid(format!(
                "unknown {} {given:?}; valid values are {}",
                T::FIELD,
                names.join(", ")
            ))
        })
}

/// The learning-rate schedule of a run, peaking at `learning_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// `learning_rate` throughout.
    Constant,
    /// Linear warm-up over `warmup_steps`, then a half cosine down to
    /// `min_learning_rate` at the end of the run (or of its time budget).
    WarmupCosine,
    /// The official Restormer cyclic cosine shape stretched over the run: flat
    /// at `learning_rate` for its first 92/300, then a half cosine down to
    /// `min_learning_rate`.
    CyclicCosine,
}

impl Choice for Schedule {
    const FIELD: &'static str = "schedule";
    const ALL: &'static [Self] = &[Self::Constant, Self::WarmupCosine, Self::CyclicCosine];
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Schedule {
    /// The name in requests and stored params.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::WarmupCosine => "warmup_cosine",
            Self::CyclicCosine => "cyclic_cosine",
        }
    }
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean absolute error (the official Restormer loss).
    L1,
    /// Charbonnier (a smooth L1) with eps [`CHARBONNIER_EPS`].
    Charbonnier,
    /// L1 plus `ssim_weight` x (1 - SSIM of the luma).
    L1Ssim,
}

impl Choice for Loss {
    const FIELD: &'static str = "loss";
    const ALL: &'static [Self] = &[Self::L1, Self::Charbonnier, Self::L1Ssim];
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Loss {
    /// The name in requests and stored params.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::L1 => "l1",
            Self::Charbonnier => "charbonnier",
            Self::L1Ssim => "l1_ssim",
        }
    }
}

impl Choice for PatchSampling {
    const FIELD: &'static str = "patch_sampling";
    const ALL: &'static [Self] = &[Self::Ink, Self::Damage, Self::Uniform];
    fn name(self) -> &'static str {
        patch_sampling_name(self)
    }
}

/// The name of a patch sampling in requests and stored params.
pub fn patch_sampling_name(s: PatchSampling) -> &'static str {
    match s {
        PatchSampling::Uniform => "uniform",
        PatchSampling::Ink => "ink",
        PatchSampling::Damage => "damage",
    }
}

/// What each validation page is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValView {
    /// A centred `val_crop_size` square, restored at once (fast).
    CenterCrop,
    /// The whole page, restored tile by tile as restoration does (slower,
    /// what a user gets).
    WholePage,
}

impl Choice for ValView {
    const FIELD: &'static str = "val_view";
    const ALL: &'static [Self] = &[Self::CenterCrop, Self::WholePage];
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl ValView {
    /// The name in requests and stored params.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CenterCrop => "center_crop",
            Self::WholePage => "whole_page",
        }
    }
}

/// One progressive stage: `patch_size` patches in batches of `batch_size`
/// while fewer than `until_step` steps are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Patch side in pixels.
    pub patch_size: u32,
    /// Patches per step.
    pub batch_size: u32,
    /// First step that no longer belongs to this stage.
    pub until_step: u64,
}

/// What params stored before the recipe existed meant (the engine's settings
/// of that time), so older jobs resume and report as they ran.
pub(super) mod legacy {
    /// Stored params from before the precision option ran in f32.
    pub fn precision() -> String {
        "f32".into()
    }

    use super::*;

    pub fn schedule() -> Schedule {
        Schedule::Constant
    }
    pub fn loss() -> Loss {
        Loss::L1
    }
    pub fn patch_sampling() -> PatchSampling {
        PatchSampling::Uniform
    }
    pub fn val_view() -> ValView {
        ValView::CenterCrop
    }
    pub fn val_crop_size() -> Option<u32> {
        Some(256)
    }
}
