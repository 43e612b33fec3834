//! Connects the three ports (metadata, objects, bus) from settings.

use std::sync::Arc;

use sea_orm::ConnectionTrait;

#[cfg(feature = "amqp")]
use crate::bus::AmqpBus;
use crate::bus::{Bus, BusError, MemoryBus};
use crate::config::{BusBackend, Settings, StorageBackend};
use crate::db::{self, Db, DbError};
#[cfg(feature = "s3")]
use crate::storage::S3Store;
use crate::storage::{LocalStore, ObjectStore, StorageError};

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
    /// The settings name an adapter this binary was built without.
    #[error(
        "this build has no {adapter} adapter; rebuild with `--features {feature}` (the default builds have every adapter)"
    )]
    NotBuilt {
        /// The backend the settings name.
        adapter: &'static str,
        /// The cargo feature that builds it.
        feature: &'static str,
    },
}

/// Whether this build links the adapter for a database URL (`postgres://`,
/// `sqlite://`); `Err` names the feature it needs.
pub fn check_database_url(url: &str) -> Result<(), BackendError> {
    let scheme = url.split(':').next().unwrap_or("");
    match scheme {
        "postgres" | "postgresql" if !cfg!(feature = "postgres") => Err(BackendError::NotBuilt {
            adapter: "PostgreSQL",
            feature: "postgres",
        }),
        "sqlite" if !cfg!(feature = "sqlite") => Err(BackendError::NotBuilt {
            adapter: "SQLite",
            feature: "sqlite",
        }),
        _ => Ok(()),
    }
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
        check_database_url(settings.database.url.expose())?;
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
            #[cfg(feature = "s3")]
            StorageBackend::S3 => Arc::new(S3Store::new(&settings.storage)),
            #[cfg(not(feature = "s3"))]
            StorageBackend::S3 => {
                return Err(BackendError::NotBuilt {
                    adapter: "S3",
                    feature: "s3",
                });
            }
        };
        store.ensure_buckets().await?;
        let bus: Arc<dyn Bus> = match settings.bus.backend {
            BusBackend::Memory => Arc::new(MemoryBus::new()),
            #[cfg(not(feature = "amqp"))]
            BusBackend::Amqp => {
                return Err(BackendError::NotBuilt {
                    adapter: "RabbitMQ",
                    feature: "amqp",
                });
            }
            #[cfg(feature = "amqp")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_needs_its_adapter_built() {
        for (url, built) in [
            ("postgres://u@h/db", cfg!(feature = "postgres")),
            ("postgresql://u@h/db", cfg!(feature = "postgres")),
            ("sqlite://x.db?mode=rwc", cfg!(feature = "sqlite")),
        ] {
            match check_database_url(url) {
                Ok(()) => assert!(built, "{url}"),
                Err(e) => {
                    assert!(!built, "{url}");
                    assert!(e.to_string().contains("--features"), "{e}");
                }
            }
        }
    }
}
