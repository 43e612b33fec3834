//! `GET /health`: really checks the database, the bus, storage and the
//! synthetic-data, model-registry and trainer services.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// One dependency's check.
#[derive(Serialize, ToSchema)]
pub struct Check {
    /// Whether it answered correctly.
    pub ok: bool,
    /// Round-trip time.
    pub latency_ms: f64,
    /// Adapter in use (`postgres`, `sqlite`, `s3`, `local`, `amqp`, `memory`, `grpc`).
    pub backend: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Health of the gateway and what it depends on.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every check passed, else `degraded`.
    pub status: String,
    /// Crate version.
    pub version: String,
    /// Per-dependency results.
    pub checks: std::collections::BTreeMap<String, Check>,
}

async fn timed<F, E>(backend: &str, fut: F) -> Check
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(5), fut).await;
    let error = match res {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out after 5 s".into()),
    };
    Check {
        ok: error.is_none(),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
        backend: backend.to_string(),
        error,
    }
}

/// Asks a service's standard `grpc.health.v1` endpoint whether it is serving.
async fn grpc_serving(channel: tonic::transport::Channel) -> Result<(), String> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| s.message().to_string())?;
    match resp.into_inner().status() {
        tonic_health::pb::health_check_response::ServingStatus::Serving => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// Checks every dependency; 200 when all are fine, 503 otherwise.
/// Whether the gateway itself can serve.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`: the process is up and routing requests.
    pub status: String,
}

/// Shallow readiness for load balancers and Kubernetes: answers as soon as
/// the gateway routes requests, without asking any dependency. A downstream
/// outage shows in `GET /health` (and in the errors of the routes that need
/// it); it does not take the gateway out of rotation.
#[utoipa::path(get, path = "/ready", tag = "system", security(()),
    responses((status = 200, body = Ready)))]
pub async fn ready() -> Json<Ready> {
    Json(Ready {
        status: "ready".into(),
    })
}

#[utoipa::path(get, path = "/health", tag = "system", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    use sea_orm::ConnectionTrait;
    let b = &state.backends;
    let db_backend = format!("{:?}", b.db.get_database_backend()).to_lowercase();
    let (database, bus, storage, synthetic, registry, trainer, report) = tokio::join!(
        timed(&db_backend, restoreflow_core::db::ping(&b.db)),
        timed(b.bus.backend(), b.bus.health()),
        timed(b.store.backend(), b.store.health()),
        timed("grpc", grpc_serving(state.synthetic_channel.clone())),
        timed("grpc", grpc_serving(state.registry_channel.clone())),
        timed("grpc", grpc_serving(state.trainer_channel.clone())),
        timed("grpc", grpc_serving(state.report_channel.clone())),
    );
    let checks: std::collections::BTreeMap<String, Check> = [
        ("database", database),
        ("bus", bus),
        ("storage", storage),
        ("synthetic_data", synthetic),
        ("model_registry", registry),
        ("trainer", trainer),
        ("report", report),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let ok = checks.values().all(|c| c.ok);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ok { "ok" } else { "degraded" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            checks,
        }),
    )
}
