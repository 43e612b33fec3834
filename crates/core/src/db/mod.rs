//! The metadata port: sea-orm over PostgreSQL (deployment) or SQLite
//! (embedded), the schema migrations and the job repository every service uses.

pub mod entity;
mod jobs;
mod migration;
pub mod paging;
mod proto;
mod workers;

use restoreflow_proto::ErrorCode;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use jobs::*;
pub use migration::Migrator;
pub use proto::{event_to_proto, job_to_proto};
pub use sea_orm::DatabaseConnection as Db;
pub use workers::{live_workers, remove_worker, touch_worker, versions_of_job};

/// Errors of the metadata port.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// No such row.
    #[error("{0} not found")]
    NotFound(String),
    /// The row is in a state that forbids the change.
    #[error("{0}")]
    Conflict(String),
}

impl DbError {
    /// The shared error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Db(DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) => ErrorCode::Unavailable,
            Self::Db(_) => ErrorCode::Internal,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::FailedPrecondition,
        }
    }
}

/// Connects and brings the schema up to date. Safe to call from several
/// processes at once: on PostgreSQL the migration runs under an advisory lock.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbError> {
    connect_with(url, max_connections, std::time::Duration::from_secs(10)).await
}

/// [`connect`] with `timeout` as the deadline of opening a connection and of
/// waiting for a free one.
#[tracing::instrument(skip(url), err)]
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    timeout: std::time::Duration,
) -> Result<DatabaseConnection, DbError> {
    if let Some(path) = sqlite_path(url)
        && let Some(parent) = std::path::Path::new(&path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max_connections.max(1))
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        .sqlx_logging(false);
    let db = Database::connect(opts).await?;
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock(727001)",
            ))
            .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        }
        DatabaseBackend::Sqlite => {
            db.execute(Statement::from_string(
                DatabaseBackend::Sqlite,
                "PRAGMA journal_mode=WAL",
            ))
            .await?;
            Migrator::up(&db, None).await?;
        }
        DatabaseBackend::MySql => {
            return Err(DbErr::Custom("MySQL is not supported".into()).into());
        }
    }
    Ok(db)
}

/// Checks the connection with a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbError> {
    db.ping().await?;
    Ok(())
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_extracted() {
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc").as_deref(),
            Some("data/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
