//! The synthetic-data service.
//!
//! Serves `restoreflow.v1.SyntheticDataService` over gRPC (with health and
//! reflection) and runs the generation worker: jobs arrive as database rows
//! woken by `jobs.synthetic` bus messages; each job renders clean pages and
//! degraded twins with `restoreflow-synth` on all cores, writes PNG pairs to
//! `training-data/{clean,degraded}/` with matching names, ground-truth text and
//! a manifest to `synthetic-data/{dataset}/`, and records a dataset row.
//!
//! Run alone with `restoreflow serve synthetic-data`, or inside `restoreflow up`.

mod grpc;
mod params;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use restoreflow_core::ledger::{JobLedger, Owner};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::{BackendError, Backends, Settings};
use restoreflow_proto::v1::job_service_server::JobServiceServer;
use restoreflow_proto::v1::synthetic_data_service_server::SyntheticDataServiceServer;
use restoreflow_synth::FontLibrary;
use tokio::net::TcpListener;

pub use grpc::{MAX_DEGRADE_BYTES, SyntheticGrpc};
pub use params::{
    DEFAULT_HEIGHT, DEFAULT_WIDTH, Degradation, GenerateParams, HELD_OUT_SEEDS, is_held_out_page,
    pair_seed,
};
pub use worker::Worker;

/// Errors while building or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A backend could not be connected.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// No usable fonts.
    #[error(transparent)]
    Fonts(#[from] restoreflow_synth::SynthError),
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

/// A built, bound, not yet running synthetic-data service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// The internal gRPC token (`grpc.token`) calls must carry.
    token: Option<restoreflow_core::config::Secret>,
    grpc: SyntheticGrpc,
    /// This service's jobs (`JobService`).
    ledger: JobLedger,
    worker: Option<Worker>,
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
        let cfg = settings.synthetic_data.clone();
        let dirs = cfg.font_dirs.clone();
        let fonts = tokio::task::spawn_blocking(move || {
            if dirs.is_empty() {
                FontLibrary::system()
            } else {
                FontLibrary::from_dirs(&dirs).or_else(|_| FontLibrary::system())
            }
        })
        .await
        .map_err(|e| restoreflow_synth::SynthError::NoFonts(e.to_string()))??;
        let fonts = Arc::new(fonts);
        tracing::info!(families = ?fonts.family_names(), "fonts loaded");
        let listener =
            TcpListener::bind(&cfg.grpc_addr)
                .await
                .map_err(|source| ServiceError::Bind {
                    addr: cfg.grpc_addr.clone(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServiceError::Bind {
            addr: cfg.grpc_addr.clone(),
            source,
        })?;
        let worker = cfg
            .worker
            .then(|| Worker::new(backends.clone(), fonts.clone(), settings.jobs.clone()));
        Ok(Self {
            listener,
            token,
            addr,
            ledger: JobLedger::of(backends.db.clone(), Owner::SyntheticData),
            grpc: SyntheticGrpc {
                backends,
                max_images: cfg.max_images,
                fonts,
            },
            worker,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves gRPC and runs the worker until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let worker = self.worker.map(|w| tokio::spawn(w.run(shutdown.clone())));
        let routes = tonic::service::Routes::new(SyntheticDataServiceServer::new(self.grpc))
            .add_service(self.ledger.server());
        let result = restoreflow_core::grpc::serve_routes(
            self.listener,
            routes,
            &[
                <SyntheticDataServiceServer<SyntheticGrpc> as tonic::server::NamedService>::NAME,
                <JobServiceServer<JobLedger> as tonic::server::NamedService>::NAME,
            ],
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
