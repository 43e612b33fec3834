//! gRPC plumbing every service shares: health and reflection.

use tonic_health::server::HealthReporter;

/// The standard `grpc.health.v1` service and its reporter.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// A `grpc.reflection.v1` service describing every restoreflow proto and health.
pub fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(restoreflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// Maps a tonic status into the shared error code and message.
pub fn status_code(status: &tonic::Status) -> restoreflow_proto::ErrorCode {
    restoreflow_proto::ErrorCode::from_grpc(status.code())
}

/// Errors while serving a gRPC service.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("grpc server error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("grpc reflection error: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Serves `service` with health (reported serving) and reflection on
/// `listener` until `shutdown` is cancelled.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: crate::shutdown::CancellationToken,
) -> Result<(), ServeError>
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_routes(
        listener,
        tonic::service::Routes::new(service),
        &[S::NAME],
        shutdown,
    )
    .await
}

/// Serves several services (`names` are their gRPC names, each reported
/// serving by the health service) with health and reflection on `listener`
/// until `shutdown` is cancelled.
pub async fn serve_routes(
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    names: &[&str],
    shutdown: crate::shutdown::CancellationToken,
) -> Result<(), ServeError> {
    let (reporter, health) = health();
    for name in names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, services = ?names, "grpc listening");
    }
    tonic::transport::Server::builder()
        .add_routes(routes)
        .add_service(health)
        .add_service(reflection()?)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// Checks that the gRPC server bound to `addr` (as configured, e.g.
/// `0.0.0.0:50051`) reports serving; container healthchecks call this through
/// `restoreflow-<service> healthcheck`.
pub async fn probe(addr: &str) -> Result<(), String> {
    let port = addr
        .rsplit_once(':')
        .map(|(_, p)| p)
        .ok_or_else(|| format!("{addr:?} is not host:port"))?;
    let host = match addr.rsplit_once(':').map(|(h, _)| h) {
        Some("0.0.0.0" | "[::]" | "") | None => "127.0.0.1",
        Some(h) => h,
    };
    let url = format!("http://{host}:{port}");
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| format!("health check failed: {}", s.message()))?
        .into_inner()
        .status();
    if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
        Ok(())
    } else {
        Err(format!("{url} reports {status:?}"))
    }
}
