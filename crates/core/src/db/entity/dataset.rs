//! `datasets`: generated or uploaded sets of clean/degraded pairs.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A dataset row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "datasets")]
pub struct Model {
    /// Short id, also the file-name prefix of its pairs.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The job that produced it, if any.
    pub job_id: Option<String>,
    /// `synthetic` or `upload`.
    pub source: String,
    /// Preset name or `custom:<family>`.
    pub degradation: String,
    /// `train`, `validation` or `test`.
    pub split: String,
    /// Base seed.
    pub seed: i64,
    /// Number of pairs.
    pub num_pairs: i32,
    /// Page width in pixels.
    pub width: i32,
    /// Page height in pixels.
    pub height: i32,
    /// Key of the manifest in the `synthetic-data` bucket.
    pub manifest_key: String,
    /// Summary of the manifest (without the per-pair list).
    pub manifest: Json,
    /// sha256 over the per-file hashes, in name order.
    pub content_hash: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
