//! `job_events`: the append-only history of a job (progress, status, metrics).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A job event row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "job_events")]
pub struct Model {
    /// Monotonic id; orders events.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Owning job.
    pub job_id: String,
    /// `status`, `progress`, `metric`, `log`.
    pub kind: String,
    /// Event body.
    pub payload: Json,
    /// When it happened.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
