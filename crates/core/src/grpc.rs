//! gRPC plumbing every service shares: health, reflection, and the shared
//! internal token.
//!
//! The gRPC services are an internal API: every call needs the token of
//! `grpc.token` in the `x-restoreflow-token` metadata, except the standard
//! health service (Kubernetes' gRPC probes cannot send metadata). Servers
//! refuse to start without a token; clients add it with [`authed`].

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;

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
    /// No internal token is configured.
    #[error(
        "grpc.token is not set: the gRPC services are an internal API and need a shared token \
         of 16 or more characters (RESTOREFLOW__GRPC__TOKEN, the same for every service and client)"
    )]
    NoToken,
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
    token: Option<&crate::config::Secret>,
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
        token,
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
    token: Option<&crate::config::Secret>,
    shutdown: crate::shutdown::CancellationToken,
) -> Result<(), ServeError> {
    let token = token.ok_or(ServeError::NoToken)?;
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
        .layer(ObserveLayer)
        .layer(RequireTokenLayer::new(token))
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

/// A channel to `url` that connects on first use (services may start in any
/// order), within `grpc.connect_timeout_secs`, and gives every call
/// `grpc.timeout_secs` to answer. HTTP/2 pings find a peer that stopped
/// answering (a stalled process or host) sooner than the call deadline.
pub fn lazy_channel(
    url: &str,
    settings: &crate::config::GrpcSettings,
) -> Result<tonic::transport::Channel, String> {
    Ok(endpoint(url, settings)?.connect_lazy())
}

/// A [`lazy_channel`] that carries the internal token (`grpc.token`) on
/// every call: what one service uses to call another.
pub fn client_channel(
    url: &str,
    settings: &crate::config::GrpcSettings,
) -> Result<AuthChannel, String> {
    Ok(authed(
        lazy_channel(url, settings)?,
        settings.token.as_ref(),
    ))
}

/// Like [`lazy_channel`], but connects now: a command-line tool says at once
/// that a service is unreachable.
pub async fn connect(
    url: &str,
    settings: &crate::config::GrpcSettings,
) -> Result<tonic::transport::Channel, String> {
    endpoint(url, settings)?
        .connect()
        .await
        .map_err(|e| e.to_string())
}

fn endpoint(
    url: &str,
    settings: &crate::config::GrpcSettings,
) -> Result<tonic::transport::Endpoint, String> {
    use std::time::Duration;
    Ok(tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("{url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
        .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10)))
}

/// Metadata key carrying the internal token.
pub const TOKEN_HEADER: &str = "x-restoreflow-token";

/// Adds the internal token to every outgoing call.
#[derive(Clone)]
pub struct TokenInterceptor {
    value: Option<tonic::metadata::AsciiMetadataValue>,
}

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.value {
            req.metadata_mut().insert(TOKEN_HEADER, v.clone());
        }
        // The caller's trace context and request id travel with the call.
        let trace = crate::telemetry::TraceHeaders::current();
        for (name, value) in trace.pairs() {
            if let Ok(v) = value.parse() {
                req.metadata_mut().insert(name, v);
            }
        }
        Ok(req)
    }
}

/// A channel whose calls carry the internal token.
pub type AuthChannel = InterceptedService<tonic::transport::Channel, TokenInterceptor>;

/// `channel` with `token` on every call (none when `token` is `None`: the
/// server then refuses every call but health).
pub fn authed(
    channel: tonic::transport::Channel,
    token: Option<&crate::config::Secret>,
) -> AuthChannel {
    let value = token.and_then(|t| t.expose().parse().ok());
    InterceptedService::new(channel, TokenInterceptor { value })
}

/// Refuses calls without the internal token (health excepted) with
/// `UNAUTHENTICATED`.
#[derive(Clone)]
pub struct RequireToken<S> {
    inner: S,
    token: Arc<[u8; 32]>,
}

/// The [`RequireToken`] layer for a server.
#[derive(Clone)]
pub struct RequireTokenLayer {
    token: Arc<[u8; 32]>,
}

impl RequireTokenLayer {
    /// Checks calls against `token`.
    pub fn new(token: &crate::config::Secret) -> Self {
        Self {
            token: Arc::new(crate::config::keys::hash_key(token.expose())),
        }
    }
}

impl<S> tower::Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;
    fn layer(&self, inner: S) -> RequireToken<S> {
        RequireToken {
            inner,
            token: self.token.clone(),
        }
    }
}

/// Whether a call may pass: health always; anything else with the token.
fn admitted<B>(req: &http::Request<B>, token: &[u8; 32]) -> Result<(), &'static str> {
    if req.uri().path().starts_with("/grpc.health.v1.Health/") {
        return Ok(());
    }
    let given = req
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or("missing internal token: this gRPC API is internal (x-restoreflow-token)")?;
    let h = crate::config::keys::hash_key(given);
    if h.iter()
        .zip(token.iter())
        .fold(0u8, |a, (x, y)| a | (x ^ y))
        == 0
    {
        Ok(())
    } else {
        Err("invalid internal token")
    }
}

impl<S, B> tower::Service<http::Request<B>> for RequireToken<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(
        &mut self,
        req: http::Request<B>,
    ) -> futures::future::BoxFuture<'static, Result<http::Response<tonic::body::Body>, S::Error>>
    {
        match admitted(&req, &self.token) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(why) => {
                let resp = tonic::Status::unauthenticated(why).into_http();
                Box::pin(async move { Ok(resp) })
            }
        }
    }
}

/// Serves every call inside a `grpc` span that continues the caller's trace
/// (`traceparent`, `x-request-id` metadata) and records the call's latency
/// and code ([`crate::metrics::names::GRPC_DURATION`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// The [`ObserveLayer`] service.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
}

/// `(service, method)` of a gRPC path `/pkg.Service/Method`.
fn rpc_names(path: &str) -> (String, String) {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        Some((service, method)) => (service.to_string(), method.to_string()),
        None => (path.to_string(), String::new()),
    }
}

/// The gRPC code of a response: in its headers when it failed before any
/// message (a "trailers-only" response), otherwise OK (a failure after
/// messages is in the trailers, which streams alone can have).
fn response_code(resp: &http::Response<tonic::body::Body>) -> tonic::Code {
    resp.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

impl<S, B> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let (service, method) = rpc_names(req.uri().path());
        let quiet = service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.");
        let span = if quiet {
            tracing::Span::none()
        } else {
            let span = tracing::info_span!(
                "grpc",
                otel.name = %format!("{service}/{method}"),
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                request_id = tracing::field::Empty,
            );
            crate::telemetry::TraceHeaders::from_headers(req.headers()).adopt(&span);
            span
        };
        let started = std::time::Instant::now();
        let fut = self.inner.call(req).instrument(span);
        Box::pin(async move {
            let result = fut.await;
            let code = match &result {
                Ok(resp) => response_code(resp),
                Err(_) => tonic::Code::Unknown,
            };
            let labels = [
                ("service", service),
                ("method", method),
                ("code", format!("{code:?}")),
            ];
            metrics::counter!(crate::metrics::names::GRPC_REQUESTS, &labels).increment(1);
            metrics::histogram!(crate::metrics::names::GRPC_DURATION, &labels)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn calls_are_named_and_coded_from_the_wire() {
        assert_eq!(
            rpc_names("/restoreflow.v1.TrainerService/StartTraining"),
            (
                "restoreflow.v1.TrainerService".into(),
                "StartTraining".into()
            )
        );
        assert_eq!(rpc_names("/odd"), ("odd".into(), String::new()));
        // A failure before any message comes as grpc-status in the headers.
        let failed = tonic::Status::invalid_argument("no").into_http::<tonic::body::Body>();
        assert_eq!(response_code(&failed), tonic::Code::InvalidArgument);
        let ok = http::Response::new(tonic::body::Body::empty());
        assert_eq!(response_code(&ok), tonic::Code::Ok);
    }

    fn request(path: &str, token: Option<&str>) -> http::Request<()> {
        let mut b = http::Request::builder().uri(path);
        if let Some(t) = token {
            b = b.header(TOKEN_HEADER, t);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn calls_need_the_token_but_health_does_not() {
        let token = crate::config::keys::hash_key("internal-token-0123456789");
        let call = "/restoreflow.v1.ModelRegistryService/DeleteVersion";
        assert!(admitted(&request(call, Some("internal-token-0123456789")), &token).is_ok());
        assert!(
            admitted(&request(call, None), &token)
                .unwrap_err()
                .contains("missing")
        );
        assert!(admitted(&request(call, Some("internal-token-012345678")), &token).is_err());
        assert!(admitted(&request("/grpc.health.v1.Health/Check", None), &token).is_ok());
        let reflect = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(admitted(&request(reflect, None), &token).is_err());
    }
}
