//! The trainer service.
//!
//! Serves `restoreflow.v1.TrainerService` over gRPC (with health and
//! reflection) and runs the training worker. `StartTraining` validates a
//! request (ranges, preset, device, base model, enough clean/degraded pairs),
//! records a `training_layer2` job and publishes a wake-up on `jobs.training`.
//! The worker claims the job with a lease, acks the message, and trains a
//! Restormer (`restoreflow-restormer`) with the `restoreflow-training` engine
//! on a blocking thread, fetching pages from `training-data/` on demand. Each
//! epoch's checkpoint goes to `training-outputs/checkpoints/{job_id}/epoch-NNNN/`;
//! progress and per-epoch metrics become job events. A job whose worker died
//! is re-claimed after its lease and resumes from its newest checkpoint. At
//! the end the best epoch by validation PSNR is registered with the model
//! registry (once per job) and `events.training.completed` announces the
//! outcome (also for failed and cancelled jobs).
//!
//! Features: `cuda` trains on CUDA device 0. Run alone with
//! `restoreflow serve trainer`, or inside `restoreflow up`.

mod checkpoints;
mod grpc;
mod model;
mod pairs;
mod params;
mod view;
mod worker;

use std::net::SocketAddr;
use std::time::Duration;

use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::{BackendError, Backends, Settings};
use restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use restoreflow_proto::v1::trainer_service_server::TrainerServiceServer;
use tokio::net::TcpListener;

pub use checkpoints::{complete_dirs, epoch_dir};
pub use grpc::TrainerGrpc;
pub use model::{RestormerNet, code_version};
pub use pairs::{PairRef, PairSet, StorePairs, find_pairs, match_pairs, pairs_hash};
pub use params::{Invalid, MIN_PAIRS, PRESETS, TrainParams, cuda_available};
pub use view::{epochs_from_events, metric_payload, training_job};
pub use worker::{SERVICE, Worker};

/// Errors while building or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A backend could not be connected.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Binding the listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The model-registry URL is not usable.
    #[error("invalid model registry url {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The configured default device cannot be used by this build.
    #[error(
        "trainer.device is cuda but this build has no CUDA support (build with the cuda feature)"
    )]
    NoCuda,
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] restoreflow_core::grpc::ServeError),
}

/// A built, bound, not yet running trainer service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    grpc: TrainerGrpc,
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
        let cfg = settings.trainer.clone();
        if cfg.device == "cuda" && !cuda_available() {
            return Err(ServiceError::NoCuda);
        }
        let url = cfg.model_registry_url.clone();
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| ServiceError::Url {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let registry = ModelRegistryServiceClient::new(channel);
        let bind_err = |source| ServiceError::Bind {
            addr: cfg.grpc_addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&cfg.grpc_addr).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let worker = cfg.worker.then(|| {
            Worker::new(
                backends.clone(),
                settings.jobs.clone(),
                cfg.clone(),
                registry.clone(),
            )
        });
        Ok(Self {
            listener,
            addr,
            grpc: TrainerGrpc {
                backends,
                jobs: settings.jobs.clone(),
                default_device: cfg.device.clone(),
                registry,
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
        let result = restoreflow_core::grpc::serve(
            self.listener,
            TrainerServiceServer::new(self.grpc),
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
