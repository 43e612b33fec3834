//! `jobs`: one row per unit of asynchronous work, whatever its kind.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::{JobKind, JobStatus};
use crate::devices::DeviceClass;

/// A job row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    /// UUID as text.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `synthetic`, `training_layer2`, `evaluation`, ...
    pub kind: JobKind,
    /// `queued`, `running`, `completed`, `failed`, `cancelled`.
    pub status: JobStatus,
    /// The validated request.
    pub params: Json,
    /// 0..=100.
    pub progress: f64,
    /// How many times a worker claimed it.
    pub attempts: i32,
    /// Failure cause, when failed.
    pub error: Option<String>,
    /// Kind-specific result, when completed.
    pub result: Option<Json>,
    /// Worker holding the lease.
    pub lease_owner: Option<String>,
    /// Lease end; after it any worker may re-claim.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Set when a user asked to cancel.
    pub cancel_requested: bool,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// First claim.
    pub started_at: Option<DateTimeUtc>,
    /// Terminal state reached.
    pub finished_at: Option<DateTimeUtc>,
    /// Last time the job moved (claimed, or progress recorded); the
    /// watchdog hands a job over when this gets too old.
    pub progress_at: Option<DateTimeUtc>,
    /// The device class the job needs (`cpu`, `cuda`); only workers of that
    /// class claim it. `None` for kinds that need no device.
    pub device: Option<DeviceClass>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
