//! `model_versions`: one row per registered model version of a layer.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A model version row. `(layer, version)` is the primary key, so a number can
/// never be given out twice; numbers come from `model_version_counters`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "model_versions")]
pub struct Model {
    /// 1 (classical preprocessing) or 2 (Restormer).
    #[sea_orm(primary_key, auto_increment = false)]
    pub layer: i32,
    /// 1, 2, 3… per layer, never reused.
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// `ready`, `deleting` (hidden, objects being removed) or `deleted`.
    pub status: String,
    /// Key of the weights in the `models` bucket.
    pub object_key: String,
    /// Key of the JSON sidecar in the `models` bucket.
    pub sidecar_key: String,
    /// sha256 (hex) of the weights.
    pub sha256: String,
    /// Size of the weights in bytes.
    pub size_bytes: i64,
    /// Number of trainable parameters.
    pub parameter_count: i64,
    /// Model configuration.
    pub config: Json,
    /// Metrics: final values and per-epoch history.
    pub metrics: Json,
    /// The training job that produced it.
    pub training_job_id: Option<String>,
    /// The dataset it was trained on.
    pub dataset_id: Option<String>,
    /// Content hash of the validation data.
    pub dataset_hash: Option<String>,
    /// Code version (git revision) that trained it.
    pub code_version: Option<String>,
    /// The version it was fine-tuned from.
    pub parent_version: Option<i32>,
    /// Registration time.
    pub created_at: DateTimeUtc,
    /// Deletion time, once deleted.
    pub deleted_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
