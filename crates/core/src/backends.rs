//! Connects the three ports (metadata, objects, bus) from settings.

use std::sync::Arc;

use sea_orm::ConnectionTrait;

use crate::bus::{AmqpBus, Bus, BusError, MemoryBus};
use crate::config::{BusBackend, Settings, StorageBackend};
use crate::db::{self, Db, DbError};
use crate::storage::{LocalStore, ObjectStore, S3Store, StorageError};

/// Errors while connecting backends.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Message bus.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The connected ports a service runs on. Cheap to clone.
#[derive(Clone)]
pub struct Backends {
    /// Metadata database.
    pub db: Db,
    /// Object store.
    pub store: Arc<dyn ObjectStore>,
    /// Message bus.
    pub bus: Arc<dyn Bus>,
}

impl Backends {
    /// Connects every port, runs migrations and creates the buckets.
    #[tracing::instrument(skip(settings), err)]
    pub async fn connect(settings: &Settings) -> Result<Self, BackendError> {
        let db = db::connect_with(
            settings.database.url.expose(),
            settings.database.max_connections,
            std::time::Duration::from_secs(settings.database.timeout_secs.max(1)),
            std::time::Duration::from_secs(settings.database.statement_timeout_secs.max(1)),
        )
        .await?;
        let store: Arc<dyn ObjectStore> = match settings.storage.backend {
            StorageBackend::Local => Arc::new(LocalStore::new(
                settings.storage.local_root.clone(),
                settings.storage.bucket_prefix.clone(),
            )),
            StorageBackend::S3 => Arc::new(S3Store::new(&settings.storage)),
        };
        store.ensure_buckets().await?;
        let bus: Arc<dyn Bus> = match settings.bus.backend {
            BusBackend::Memory => Arc::new(MemoryBus::new()),
            BusBackend::Amqp => Arc::new(
                AmqpBus::connect(
                    settings.bus.url.expose(),
                    &settings.bus.queue_prefix,
                    settings.bus.prefetch,
                )
                .await?
                .with_timeout(std::time::Duration::from_secs(
                    settings.bus.timeout_secs.max(1),
                )),
            ),
        };
        tracing::info!(
            db = ?db.get_database_backend(),
            storage = store.backend(),
            bus = bus.backend(),
            "backends connected"
        );
        Ok(Self { db, store, bus })
    }
}
