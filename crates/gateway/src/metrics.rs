//! HTTP metrics and trace context of every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use restoreflow_core::metrics::{self, names};
use restoreflow_core::telemetry::{TRACEPARENT, TraceHeaders};

pub use restoreflow_core::metrics::handle;

/// The span of one HTTP request: it continues the caller's W3C trace
/// context (`traceparent`) when there is one, and carries the request id
/// that the gRPC calls and bus messages it causes carry on.
pub fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{} {route}", req.method()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = %route,
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    TraceHeaders::from_headers(req.headers()).adopt(&span);
    span
}

/// Records `http_requests_total` and `http_request_duration_seconds`, and
/// answers with the request's `traceparent` (so a caller can find its trace).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let trace = TraceHeaders::current();
    let mut resp = next.run(req).await;
    if let Some(tp) = trace
        .traceparent
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        resp.headers_mut().insert(TRACEPARENT, tp);
    }
    let status = resp.status().as_u16();
    tracing::Span::current().record("http.response.status_code", status);
    let labels = [
        ("method", method),
        ("path", path),
        ("status", status.to_string()),
    ];
    ::metrics::counter!(names::HTTP_REQUESTS, &labels).increment(1);
    ::metrics::histogram!(names::HTTP_DURATION, &labels).record(start.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render() -> Response {
    metrics::metrics_endpoint().await.into_response()
}
