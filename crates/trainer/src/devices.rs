//! Which device class a request runs on, decided from the live workers of
//! every trainer replica (the shared workers table), not from the build of
//! the replica that received the call.

use restoreflow_core::ErrorCode;
use restoreflow_core::db::{self, Db};
use restoreflow_core::devices::{self, DeviceError, Pool};
use tonic::Status;

use crate::grpc::from_db;
use crate::worker::SERVICE;

/// Resolves requested devices against the live trainer workers.
#[derive(Clone)]
pub struct DeviceRouter {
    db: Db,
    /// A worker whose heartbeat is older than this is not live.
    live_secs: u64,
    /// `trainer.on_demand_devices`.
    on_demand: Vec<String>,
}

impl DeviceRouter {
    /// A router over `db`'s workers table.
    pub fn new(db: Db, live_secs: u64, on_demand: Vec<String>) -> Self {
        Self {
            db,
            live_secs,
            on_demand,
        }
    }

    /// Live trainer workers per class, plus the on-demand classes.
    pub async fn pool(&self) -> Result<Pool, Status> {
        db::device_pool(&self.db, SERVICE, self.since(), &self.on_demand)
            .await
            .map_err(from_db)
    }

    /// The pool of live trainer workers already read (no second query).
    pub fn pool_of(&self, live: &[restoreflow_core::db::entity::worker::Model]) -> Pool {
        db::pool_of(live, &self.on_demand)
    }

    /// Oldest heartbeat that still counts as live.
    pub fn since(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() - chrono::Duration::seconds(self.live_secs as i64)
    }

    /// The class `requested` (`cpu`, `cuda`, `auto`; empty = auto) runs on:
    /// 400 for an unknown device, 409 when no live worker has it and the
    /// deployment does not start one on demand.
    pub async fn resolve(&self, requested: &str) -> Result<devices::DeviceClass, Status> {
        let requested = match requested.trim() {
            "" => devices::AUTO,
            r => r,
        };
        if requested != devices::AUTO && !devices::is_class(requested) {
            return Err(to_status(DeviceError::Unknown(requested.to_string())));
        }
        let pool = self.pool().await?;
        devices::resolve(requested, &pool).map_err(to_status)
    }
}

/// An unknown device is the caller's mistake (400); a device nobody serves
/// is the deployment's state (409).
pub fn to_status(e: DeviceError) -> Status {
    match e {
        DeviceError::Unknown(_) => ErrorCode::InvalidArgument.status(e.to_string()),
        DeviceError::NotServed { .. } => ErrorCode::FailedPrecondition.status(e.to_string()),
    }
}
