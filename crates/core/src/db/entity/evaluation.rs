//! `evaluations`: one scored run of a model version over an evaluation dataset.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An evaluation row (its id is the evaluation job's id).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "evaluations")]
pub struct Model {
    /// Evaluation id = job id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Layer evaluated (1 or 2).
    pub layer: i32,
    /// Version evaluated.
    pub version: i32,
    /// Dataset id or key prefix evaluated on.
    pub dataset_id: String,
    /// queued, running, completed or failed.
    pub status: String,
    /// Pairs scored.
    pub pairs: i32,
    /// Pairs skipped, with reasons: `[{"name", "reason"}]`.
    pub skipped: Json,
    /// Means of the model's output: `{"psnr", "ssim", "accuracy", "cer"?}`.
    pub mean: Json,
    /// Baseline name -> the same means (identity, median, nl_means, layer1).
    pub baselines: Json,
    /// Per image: `[{"name", "model": {...}, "baselines": {name: {...}}}]`.
    pub per_image: Json,
    /// Key prefix in the `evaluation` bucket (`{eval_id}/`).
    pub object_prefix: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// When scoring finished.
    pub finished_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
