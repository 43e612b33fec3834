//! Shared state of the handlers.

use std::sync::Arc;

use restoreflow_core::Backends;
use restoreflow_core::config::GatewaySettings;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_core::ledger::Owner;
use restoreflow_proto::v1::evaluation_service_client::EvaluationServiceClient;
use restoreflow_proto::v1::job_service_client::JobServiceClient;
use restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use restoreflow_proto::v1::report_service_client::ReportServiceClient;
use restoreflow_proto::v1::restoration_service_client::RestorationServiceClient;
use restoreflow_proto::v1::synthetic_data_service_client::SyntheticDataServiceClient;
use restoreflow_proto::v1::trainer_service_client::TrainerServiceClient;
use tonic::transport::Channel;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Metadata, objects, bus.
    pub backends: Backends,
    /// The synthetic-data service.
    pub synthetic: SyntheticDataServiceClient<AuthChannel>,
    /// Channel to the synthetic-data service (for its gRPC health).
    pub synthetic_channel: Channel,
    /// The model-registry service.
    pub registry: ModelRegistryServiceClient<AuthChannel>,
    /// Channel to the model-registry service (for its gRPC health).
    pub registry_channel: Channel,
    /// The trainer service.
    pub trainer: TrainerServiceClient<AuthChannel>,
    /// Channel to the trainer service (for its gRPC health).
    pub trainer_channel: Channel,
    /// Restoration (hosted by the trainer service).
    pub restoration: RestorationServiceClient<AuthChannel>,
    /// Evaluation (hosted by the trainer service).
    pub evaluation: EvaluationServiceClient<AuthChannel>,
    /// The trainer's job ledger (training, evaluation, batch restoration).
    pub trainer_jobs: JobServiceClient<AuthChannel>,
    /// synthetic-data's job ledger (generation).
    pub synthetic_jobs: JobServiceClient<AuthChannel>,
    /// The report service.
    pub reports: ReportServiceClient<AuthChannel>,
    /// Channel to the report service (for its gRPC health).
    pub report_channel: Channel,
    /// Gateway settings (limits, keys).
    pub settings: Arc<GatewaySettings>,
    /// The accepted keys (hashed) and the public routes.
    pub keys: Arc<crate::auth::KeyRing>,
    /// Per-key rate and concurrency limits of the expensive routes.
    pub limiter: Arc<crate::limits::Limiter>,
    /// The OpenAPI document served at `/openapi.json`.
    pub openapi: Arc<serde_json::Value>,
}

impl AppState {
    /// The job ledger of `owner`.
    pub fn ledger(&self, owner: Owner) -> JobServiceClient<AuthChannel> {
        match owner {
            Owner::Trainer => self.trainer_jobs.clone(),
            Owner::SyntheticData => self.synthetic_jobs.clone(),
        }
    }
}
