//! `workers`: the live workers of a service, refreshed by their heartbeat.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A worker row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    /// Worker id (also the lease owner of the jobs it claims).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `trainer`, ...
    pub service: String,
    /// The device class it serves: `cpu` or `cuda`.
    pub device: String,
    /// The job it is running, if any.
    pub current_job: Option<String>,
    /// When it started.
    pub started_at: DateTimeUtc,
    /// Its last heartbeat.
    pub heartbeat_at: DateTimeUtc,
    /// What it can run: a list of [`crate::devices::Capability`].
    pub capabilities: Option<Json>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
