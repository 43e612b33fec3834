//! The restoreflow REST gateway.
//!
//! An axum application that validates requests, authenticates every one but
//! the public routes with a scoped API key, limits the expensive ones per
//! key, and fronts the services: generic job routes read the job ledgers
//! of the trainer and synthetic-data over gRPC, `/files` streams objects, `/synthetic/*` calls the
//! synthetic-data service over gRPC, `/training/*` calls the trainer service
//! over gRPC (its event stream is Server-Sent Events polled from the trainer's job ledger), `/models/*` calls the model-registry
//! service over gRPC and streams verified weights from the object store. OpenAPI 3.1 at `/openapi.json`, Swagger UI
//! (vendored, works offline) at `/docs`, Prometheus metrics at `/metrics`.
//!
//! Run alone with `restoreflow serve gateway`, or inside `restoreflow up`.

mod auth;
mod error;
mod limits;
mod metrics;
mod openapi;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::{BackendError, Backends, ErrorCode, Settings};
use restoreflow_proto::v1::evaluation_service_client::EvaluationServiceClient;
use restoreflow_proto::v1::job_service_client::JobServiceClient;
use restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use restoreflow_proto::v1::report_service_client::ReportServiceClient;
use restoreflow_proto::v1::restoration_service_client::RestorationServiceClient;
use restoreflow_proto::v1::synthetic_data_service_client::SyntheticDataServiceClient;
use restoreflow_proto::v1::trainer_service_client::TrainerServiceClient;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use auth::API_KEY_HEADER;
pub use error::{ApiError, ErrorBody};
pub use openapi::ApiDoc;
pub use state::AppState;

/// Errors while building or running the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A backend could not be connected.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Bad downstream URL.
    #[error("invalid service url: {0}")]
    Url(String),
    /// Settings the gateway cannot run with.
    #[error("invalid gateway settings: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("http server error: {0}")]
    Io(#[from] std::io::Error),
}

/// A built, bound, not yet running gateway.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl Application {
    /// Connects backends from settings, then [`Application::build_with`].
    pub async fn build(settings: Settings) -> Result<Self, GatewayError> {
        let backends = Backends::connect(&settings).await?;
        Self::build_with(settings, backends).await
    }

    /// Builds on connected backends and binds the HTTP port (0 picks a free one).
    pub async fn build_with(settings: Settings, backends: Backends) -> Result<Self, GatewayError> {
        let gw = settings.gateway.clone();
        let channel = lazy_channel(&settings.grpc, &gw.synthetic_data_url)?;
        let registry_channel = lazy_channel(&settings.grpc, &gw.model_registry_url)?;
        let trainer_channel = lazy_channel(&settings.grpc, &gw.trainer_url)?;
        let report_channel = lazy_channel(&settings.grpc, &gw.report_url)?;
        // Every call carries the internal token (health checks use the bare channels).
        let token = settings.grpc.token.clone();
        let authed = |c| restoreflow_core::grpc::authed(c, token.as_ref());
        // Pages travel in single messages both ways.
        let max_msg = 256 * 1024 * 1024;
        let state = AppState {
            backends,
            synthetic: SyntheticDataServiceClient::new(authed(channel.clone()))
                .max_decoding_message_size(256 * 1024 * 1024)
                .max_encoding_message_size(256 * 1024 * 1024),
            synthetic_jobs: JobServiceClient::new(authed(channel.clone())),
            synthetic_channel: channel,
            registry: ModelRegistryServiceClient::new(authed(registry_channel.clone())),
            registry_channel,
            trainer: TrainerServiceClient::new(authed(trainer_channel.clone())),
            restoration: RestorationServiceClient::new(authed(trainer_channel.clone()))
                .max_decoding_message_size(max_msg)
                .max_encoding_message_size(max_msg),
            evaluation: EvaluationServiceClient::new(authed(trainer_channel.clone()))
                .max_decoding_message_size(max_msg),
            trainer_jobs: JobServiceClient::new(authed(trainer_channel.clone())),
            trainer_channel,
            reports: ReportServiceClient::new(authed(report_channel.clone()))
                .max_decoding_message_size(max_msg),
            report_channel,
            settings: Arc::new(gw.clone()),
            keys: Arc::new(auth::KeyRing::from_settings(&gw).map_err(GatewayError::Config)?),
            limiter: Arc::new(limits::Limiter::new(gw.rate_per_minute, gw.max_concurrent)),
            openapi: Arc::new(openapi::document(&settings)),
        };
        let listener = TcpListener::bind(&gw.http_addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            router: router(state),
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        tracing::info!(addr = %self.addr, "gateway listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        Ok(())
    }
}

/// A channel with the call deadlines of `grpc`.
fn lazy_channel(
    grpc: &restoreflow_core::config::GrpcSettings,
    url: &str,
) -> Result<tonic::transport::Channel, GatewayError> {
    restoreflow_core::grpc::lazy_channel(url, grpc).map_err(GatewayError::Url)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /docs")
}

/// The documented routes: each handler is registered with the path and
/// method of its `#[utoipa::path]`, so the router and the OpenAPI document
/// cannot drift apart (a route is served if and only if it is documented).
/// `gw` sets the body limits and the request timeout.
pub fn api(gw: &restoreflow_core::config::GatewaySettings) -> OpenApiRouter<AppState> {
    use routes::{evaluation, files, health, jobs, models, reports, restore, synthetic, training};
    let timeout = Duration::from_secs(gw.request_timeout_secs);
    let upload_limit = DefaultBodyLimit::max(gw.max_upload_bytes as usize);
    let json_limit = DefaultBodyLimit::max(gw.max_json_bytes as usize);
    // Routes with bounded work get the request timeout and the JSON body limit.
    let bounded = OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::list_events))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(synthetic::generate))
        .routes(routes!(synthetic::presets))
        .routes(routes!(synthetic::stats))
        .routes(routes!(synthetic::datasets))
        .routes(routes!(training::start))
        .routes(routes!(training::status))
        .routes(routes!(training::list))
        .routes(routes!(training::get))
        .routes(routes!(training::cancel))
        .routes(routes!(reports::list))
        .routes(routes!(reports::for_job))
        .routes(routes!(reports::get))
        .routes(routes!(reports::chart))
        .routes(routes!(evaluation::leaderboard))
        .routes(routes!(evaluation::run))
        .routes(routes!(evaluation::register_dataset))
        .routes(routes!(evaluation::get))
        .routes(routes!(restore::batch))
        .routes(routes!(files::list))
        .routes(routes!(models::compare))
        .routes(routes!(models::list))
        .routes(routes!(models::get, models::delete))
        .routes(routes!(models::set_alias))
        .routes(routes!(models::retention))
        .routes(routes!(synthetic::degrade).layer(upload_limit))
        .layer(json_limit)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ));
    // Streams: a download or upload may legitimately take longer than the timeout.
    let streams = OpenApiRouter::new()
        .routes(routes!(models::download))
        .routes(routes!(training::events))
        // Measuring Layer 1 on up to 200 pages can outlast the request timeout;
        // its body is JSON, so the JSON limit applies.
        .routes(routes!(evaluation::layer1_evaluate).layer(json_limit))
        // A full page restores in seconds to minutes on a CPU: no request timeout.
        .routes(routes!(restore::document).layer(upload_limit))
        // Object keys have slashes: served on a catch-all, documented as `{key}`.
        .merge(catch_all(
            "/files/{bucket}/{*key}",
            routes!(files::download, files::upload),
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(bounded)
        .merge(streams)
}

/// Serves `handlers` on the axum path `route` (a catch-all the OpenAPI path
/// syntax cannot spell) while documenting them at their own path.
fn catch_all(route: &str, handlers: UtoipaMethodRouter<AppState>) -> OpenApiRouter<AppState> {
    let (schemas, paths, method_router) = handlers;
    let mut doc = utoipa::openapi::OpenApi::new(utoipa::openapi::Info::default(), paths);
    doc.components = Some(
        utoipa::openapi::ComponentsBuilder::new()
            .schemas_from_iter(schemas)
            .build(),
    );
    OpenApiRouter::with_openapi(doc).route(route, method_router)
}

/// The full route table with middleware; public for router-level tests.
pub fn router(state: AppState) -> Router {
    let _ = metrics::handle();
    let (documented, _) = api(&state.settings).split_for_parts();
    documented
        .route("/metrics", get(metrics::render))
        .merge(
            SwaggerUi::new("/docs")
                .external_url_unchecked("/openapi.json", (*state.openapi).clone()),
        )
        .fallback(not_found)
        // Inside the key check, which names the key the limits count against.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::new(
                ErrorCode::Internal,
                "internal error",
            ))
        }))
        .layer(TraceLayer::new_for_http().make_span_with(metrics::request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
