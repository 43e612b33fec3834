//! The metadata port: sea-orm over PostgreSQL (deployment) or SQLite
//! (embedded), the schema migrations and the job repository every service uses.

pub mod entity;
mod jobs;
mod migration;
pub mod paging;
mod proto;
mod workers;

use restoreflow_proto::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, ExecResult, IsolationLevel, QueryResult, RuntimeErr, Statement,
    TransactionError, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use jobs::*;
pub use migration::Migrator;
pub use proto::{
    event_to_proto, from_timestamp, job_to_proto, kind_from_proto, kind_to_proto,
    status_from_proto, status_to_proto, timestamp,
};
pub use workers::{
    capabilities_of, device_pool, live_workers, pool_of, remove_worker, touch_worker,
    versions_of_job,
};

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
    /// This failure as a gRPC status: its code and message, except an
    /// internal cause, which is logged and answered as a bare internal error.
    pub fn into_status(self) -> tonic::Status {
        match self.code() {
            ErrorCode::Internal => {
                tracing::error!(error = %self, "internal database error");
                ErrorCode::Internal.status("internal error")
            }
            code => code.status(self.to_string()),
        }
    }

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

/// The metadata database: a connection pool whose every statement, and every
/// transaction as a whole, has a deadline. A database that stops answering
/// (a stalled server or host; a connection that stays open and silent) fails
/// the call with an `Unavailable` error instead of hanging it forever, and
/// the caller's own recovery (retry, lease expiry, 503) takes over.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    deadline: Duration,
}

impl Db {
    /// `conn` with `deadline` on every statement and transaction.
    pub fn new(conn: DatabaseConnection, deadline: Duration) -> Self {
        Self { conn, deadline }
    }

    /// The deadline of one statement or transaction.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// `work` (statements on a transaction of this database, say), failed
    /// with `Unavailable` when it takes longer than the deadline.
    pub async fn bounded<T, E: From<DbErr>>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(self.overdue().into()),
        }
    }

    fn overdue(&self) -> DbErr {
        DbErr::Conn(RuntimeErr::Internal(format!(
            "the database did not answer within {:?}",
            self.deadline
        )))
    }

    /// Checks the connection with a trivial query.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.bounded(self.conn.ping()).await
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), DbErr> {
        let deadline = self.deadline;
        match tokio::time::timeout(deadline, self.conn.close()).await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.bounded(self.conn.execute(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.bounded(self.conn.execute_unprepared(sql)).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.bounded(self.conn.query_one(stmt)).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.bounded(self.conn.query_all(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.conn.support_returning()
    }
}

#[async_trait::async_trait]
impl TransactionTrait for Db {
    /// Begins within the deadline; the statements on the transaction are the
    /// caller's to bound ([`Db::bounded`]), or use [`TransactionTrait::transaction`].
    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.bounded(self.conn.begin()).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.bounded(self.conn.begin_with_config(isolation_level, access_mode))
            .await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction_with_config(callback, None, None).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let work = self
            .conn
            .transaction_with_config(callback, isolation_level, access_mode);
        match tokio::time::timeout(self.deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(TransactionError::Connection(self.overdue())),
        }
    }
}

/// Connects and brings the schema up to date. Safe to call from several
/// processes at once: on PostgreSQL the migration runs under an advisory lock.
pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
    connect_with(
        url,
        max_connections,
        Duration::from_secs(10),
        Duration::from_secs(30),
    )
    .await
}

/// [`connect`] with `timeout` as the deadline of opening a connection and of
/// waiting for a free one, and `statement_timeout` as that of every
/// statement and transaction afterwards (the migration has none).
#[tracing::instrument(skip(url), err)]
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    timeout: Duration,
    statement_timeout: Duration,
) -> Result<Db, DbError> {
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
    Ok(Db::new(db, statement_timeout))
}

/// Checks the connection with a trivial query.
pub async fn ping(db: &Db) -> Result<(), DbError> {
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
