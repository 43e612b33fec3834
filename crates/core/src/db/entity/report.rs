//! `reports`: one training report per finished training job.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A report row; the documents themselves live in the object store.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    /// Report id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The training job it describes (one report per job).
    pub job_id: String,
    /// Model layer trained.
    pub layer: i32,
    /// Final status of the job: completed, failed or cancelled.
    pub status: String,
    /// Version registered by the job, if any.
    pub model_version: Option<i32>,
    /// Key prefix in `training-outputs` (`reports/{job_id}/`).
    pub prefix: String,
    /// Format -> object key, e.g. `{"txt": "reports/…/report.txt"}`.
    pub formats: Json,
    /// Chart file name -> object key (`analysis/{job_id}/…`).
    pub charts: Json,
    /// The derived headline numbers (as in the JSON report's `derived`).
    pub summary: Json,
    /// When the report was built.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
