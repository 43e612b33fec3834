//! The report service.
//!
//! Every finished training run gets a report a person wants to read. The
//! service consumes `events.training.completed` (sent for completed, failed
//! and cancelled jobs) and also sweeps the database for finished training
//! jobs without a report, so a lost event only delays a report. A report is
//! built from stored records only, asked of their owners over gRPC (the job
//! and its `data`, `config`, `environment`, `metric` and `samples` events from
//! the trainer's job ledger, the GPU workers from the trainer's status, the
//! registered model version, its aliases and the version before it from the
//! model registry; the service reads no table but its own `reports`), and
//! rendered by
//! `restoreflow-report-render` as text, Markdown, JSON and a self-contained
//! HTML page with PNG charts. Documents go to
//! `training-outputs/reports/{job_id}/`, charts to
//! `training-outputs/analysis/{job_id}/` (and beside the documents); a
//! `reports` row indexes them. `restoreflow.v1.ReportService` serves them
//! over gRPC (with health and reflection).
//!
//! Run alone with `restoreflow serve report`, or inside `restoreflow up`.

mod builder;
mod collect;
mod consumer;
mod grpc;

use std::net::SocketAddr;

use restoreflow_core::db::DbError;
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::StorageError;
use restoreflow_core::{BackendError, Backends, ErrorCode, Settings};
use restoreflow_proto::v1::report_service_server::ReportServiceServer;
use tokio::net::TcpListener;

pub use builder::build_report;
pub use collect::{Collected, SampleKeys, Sources, collect, describe_schedule};
pub use consumer::ReportWorker;
pub use grpc::ReportGrpc;

/// Errors of building or serving reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such job or report.
    #[error("{0} not found")]
    NotFound(String),
    /// The request names something that cannot have a report.
    #[error("{0}")]
    Invalid(String),
    /// The job has not finished yet.
    #[error("{0}")]
    NotFinished(String),
    /// Metadata database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object store failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Rendering failed.
    #[error("cannot render the report: {0}")]
    Render(String),
    /// The service owning some of the facts (the trainer, the model
    /// registry) refused or could not be reached.
    #[error("{service}: {message}")]
    Upstream {
        /// Which service.
        service: &'static str,
        /// Its gRPC status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

impl ReportError {
    /// The shared error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Invalid(_) => ErrorCode::InvalidArgument,
            Self::NotFinished(_) => ErrorCode::FailedPrecondition,
            Self::Db(e) => e.code(),
            Self::Storage(e) => e.code(),
            Self::Render(_) => ErrorCode::Internal,
            Self::Upstream { code, .. } => ErrorCode::from_grpc(*code),
        }
    }
}

/// Errors while building or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A backend could not be connected.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A client URL (`report.trainer_url`, `report.model_registry_url`) is unusable.
    #[error("cannot use {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Binding the listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] restoreflow_core::grpc::ServeError),
}

/// A built, bound, not yet running report service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// The internal gRPC token (`grpc.token`) calls must carry.
    token: Option<restoreflow_core::config::Secret>,
    grpc: ReportGrpc,
    worker: Option<ReportWorker>,
}

impl Application {
    /// Connects backends from settings, then [`Application::build_with`].
    pub async fn build(settings: Settings) -> Result<Self, ServiceError> {
        let backends = Backends::connect(&settings).await?;
        Self::build_with(settings, backends).await
    }

    /// Builds on already connected backends (shared in the embedded mode) and
    /// binds the gRPC port (port 0 picks a free one).
    pub async fn build_with(settings: Settings, backends: Backends) -> Result<Self, ServiceError> {
        let token = settings.grpc.token.clone();
        let addr = settings.report.grpc_addr.clone();
        let bind_err = |source| ServiceError::Bind {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let channel = |url: &String| {
            restoreflow_core::grpc::client_channel(url, &settings.grpc).map_err(|reason| {
                ServiceError::Url {
                    url: url.clone(),
                    reason,
                }
            })
        };
        let sources = Sources::new(
            channel(&settings.report.trainer_url)?,
            channel(&settings.report.model_registry_url)?,
        );
        let worker = settings
            .report
            .worker
            .then(|| ReportWorker::new(backends.clone(), sources.clone(), settings.jobs.clone()));
        Ok(Self {
            listener,
            token,
            addr: local,
            grpc: ReportGrpc { backends, sources },
            worker,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves gRPC and consumes completion events until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let worker = self.worker.map(|w| tokio::spawn(w.run(shutdown.clone())));
        let result = restoreflow_core::grpc::serve(
            self.listener,
            ReportServiceServer::new(self.grpc),
            self.token.as_ref(),
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        if let Some(w) = worker {
            let _ = w.await;
        }
        result.map_err(ServiceError::from)
    }
}
