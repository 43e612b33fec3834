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
//! The same process hosts inference: `RestorationService` restores documents
//! with Layer 1 (`restoreflow-classical`), Layer 2 or both (tiled, with an LRU
//! of loaded versions and single-flight loading) and measures Layer 1 on pairs;
//! `EvaluationService` queues `evaluation` jobs (scored per image against the
//! identity, median, non-local-means and Layer 1 baselines, every method
//! colour in, colour out, plus tesseract's character error rate of each when
//! the pages' texts are known, into `evaluation/{id}/` and the `evaluations`
//! table) and registers uploaded evaluation sets with their texts; a batch
//! worker restores whole prefixes (`restore_batch` jobs on `jobs.restore`).
//!
//! Features: `cuda` trains on CUDA device 0. Run alone with
//! `restoreflow serve trainer`, or inside `restoreflow up`.

mod batch;
mod catalog;
mod checkpoints;
mod datasets;
mod devices;
mod env;
mod error;
mod evaluation;
mod grpc;
mod inference;
mod lease;
mod model;
mod pairs;
mod params;
mod restoration;
mod samples;
mod targets;
mod texts;
mod view;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use restoreflow_core::ledger::{JobLedger, Owner};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::{BackendError, Backends, Settings};
use restoreflow_proto::v1::evaluation_service_server::EvaluationServiceServer;
use restoreflow_proto::v1::job_service_server::JobServiceServer;
use restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use restoreflow_proto::v1::restoration_service_server::RestorationServiceServer;
use restoreflow_proto::v1::trainer_service_server::TrainerServiceServer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use batch::{BatchParams, BatchWorker, is_image_key};
pub use catalog::{Catalog, CatalogError, DatasetRow};
pub use checkpoints::{complete_dirs, epoch_dir};
pub use error::TrainerError;
pub use evaluation::{EvalParams, EvaluationWorker};
pub use grpc::TrainerGrpc;
pub use inference::{
    ModelCache, Pipeline, cer, ocr, ocr_available, ocr_cers, restormer_from_file, score_pair,
};
pub use model::{RestormerNet, code_version};
pub use pairs::{
    PairRef, PairSet, StorePairs, find_pairs, find_training_pairs, match_pairs, pairs_hash,
};
pub use params::{
    CHARBONNIER_EPS, DEFAULT_BATCH_SIZE, DEFAULT_BUDGET_EPOCHS, DEFAULT_CLIP_NORM,
    DEFAULT_INK_WEIGHT, DEFAULT_LEARNING_RATE, DEFAULT_LOSS, DEFAULT_MAX_MINUTES,
    DEFAULT_MIN_LEARNING_RATE, DEFAULT_PATCH_SAMPLING, DEFAULT_PATCH_SIZE,
    DEFAULT_PATCHES_PER_PAGE, DEFAULT_PRESET, DEFAULT_PROGRESSIVE, DEFAULT_SCHEDULE,
    DEFAULT_SSIM_WEIGHT, DEFAULT_VAL_CROP, DEFAULT_VAL_FRACTION, DEFAULT_VAL_PAGES,
    DEFAULT_VAL_VIEW, DEFAULT_WARMUP_STEPS, Invalid, Loss, MIN_PAIRS, PRESETS, Schedule, Stage,
    TrainParams, ValView, cuda_available, patch_sampling_name,
};
pub use restoration::{MAX_PAGE_PIXELS, MAX_PIXELS, RestorationGrpc, check_image, decode_rgb};
pub use targets::PairTargets;
pub use texts::{TextSource, upload_text_key};
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
    /// The inference device cannot be opened.
    #[error("cannot open the inference device: {0}")]
    Device(String),
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] restoreflow_core::grpc::ServeError),
}

/// Restorations running at once; more requests wait (bounded memory).
const RESTORE_CONCURRENCY: usize = 2;

/// A built, bound, not yet running trainer service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// The internal gRPC token (`grpc.token`) calls must carry.
    token: Option<restoreflow_core::config::Secret>,
    grpc: TrainerGrpc,
    restoration: RestorationGrpc,
    /// This service's jobs (`JobService`).
    ledger: JobLedger,
    worker: Option<Worker>,
    evaluator: Option<EvaluationWorker>,
    batch: Option<BatchWorker>,
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
        let cfg = settings.trainer.clone();
        if cfg.device == "cuda" && !cuda_available() {
            return Err(ServiceError::NoCuda);
        }
        let channel = |url: &String| {
            restoreflow_core::grpc::client_channel(url, &settings.grpc).map_err(|reason| {
                ServiceError::Url {
                    url: url.clone(),
                    reason,
                }
            })
        };
        let registry = ModelRegistryServiceClient::new(channel(&cfg.model_registry_url)?);
        let catalog = Catalog::new(channel(&cfg.synthetic_data_url)?);
        let bind_err = |source| ServiceError::Bind {
            addr: cfg.grpc_addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&cfg.grpc_addr).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let device = restoreflow_restormer::device(cfg.device == "cuda")
            .map_err(|e| ServiceError::Device(e.to_string()))?;
        let models = Arc::new(ModelCache::new(
            registry.clone(),
            backends.store.clone(),
            device,
            cfg.model_cache_size,
        ));
        let router = devices::DeviceRouter::new(
            backends.db.clone(),
            settings.jobs.lease_secs,
            cfg.on_demand_devices.clone(),
        );
        let restoration = RestorationGrpc {
            router: router.clone(),
            backends: backends.clone(),
            catalog: catalog.clone(),
            models: models.clone(),
            registry: registry.clone(),
            permits: Arc::new(Semaphore::new(RESTORE_CONCURRENCY)),
        };
        let evaluator = cfg.worker.then(|| {
            EvaluationWorker::new(
                backends.clone(),
                settings.jobs.clone(),
                models.clone(),
                catalog.clone(),
                Duration::from_secs(settings.trainer.ocr_timeout_secs),
            )
        });
        let batch = cfg
            .worker
            .then(|| BatchWorker::new(backends.clone(), settings.jobs.clone(), models.clone()));
        let worker = cfg.worker.then(|| {
            Worker::new(
                backends.clone(),
                settings.jobs.clone(),
                cfg.clone(),
                registry.clone(),
                catalog.clone(),
            )
        });
        Ok(Self {
            listener,
            token,
            addr,
            ledger: JobLedger::of(backends.db.clone(), Owner::Trainer),
            grpc: TrainerGrpc {
                backends,
                catalog,
                router,
                max_job_memory: match cfg.max_job_memory {
                    0 => machine_memory_bytes() / 2,
                    n => n,
                },
                registry,
            },
            restoration,
            worker,
            evaluator,
            batch,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves gRPC and runs the workers until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let mut tasks = Vec::new();
        if let Some(w) = self.worker {
            tasks.push(tokio::spawn(w.run(shutdown.clone())));
        }
        if let Some(w) = self.evaluator {
            tasks.push(tokio::spawn(w.run(shutdown.clone())));
        }
        if let Some(w) = self.batch {
            tasks.push(tokio::spawn(w.run(shutdown.clone())));
        }
        // Pages and weights travel in single messages.
        let max = 256 * 1024 * 1024;
        let routes = tonic::service::Routes::new(TrainerServiceServer::new(self.grpc))
            .add_service(
                RestorationServiceServer::new(self.restoration.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(EvaluationServiceServer::new(self.restoration))
            .add_service(self.ledger.server());
        let result = restoreflow_core::grpc::serve_routes(
            self.listener,
            routes,
            &[
                <TrainerServiceServer<TrainerGrpc> as tonic::server::NamedService>::NAME,
                <RestorationServiceServer<RestorationGrpc> as tonic::server::NamedService>::NAME,
                <EvaluationServiceServer<RestorationGrpc> as tonic::server::NamedService>::NAME,
                <JobServiceServer<JobLedger> as tonic::server::NamedService>::NAME,
            ],
            self.token.as_ref(),
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        for t in tasks {
            let _ = t.await;
        }
        result.map_err(ServiceError::from)
    }
}

/// Total memory of this machine (`MemTotal`), or 8 GiB when unknown.
fn machine_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024)
}
