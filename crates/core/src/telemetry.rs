//! Logging, trace context and span export, shared by every binary.
//!
//! Every span carries W3C trace context (trace and span ids kept by
//! `tracing-opentelemetry`), and the context crosses service boundaries: as
//! the `traceparent` header on HTTP and gRPC calls, and inside bus messages
//! ([`TraceHeaders`] in [`crate::messages`]), together with the request id
//! (`x-request-id`) the gateway gave the request. A worker's job span is so a
//! child of the HTTP request that created the job, in the same trace. With
//! `telemetry.otlp_endpoint` set, finished spans are exported over OTLP/gRPC.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde::{Deserialize, Serialize};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, TelemetrySettings};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C vendor trace state header.
pub const TRACESTATE: &str = "tracestate";
/// The request id header the gateway sets (or keeps) on every request.
pub const REQUEST_ID: &str = "x-request-id";

/// Spans at or above info go to the trace pipeline; the chatty transport
/// crates stay out of it.
const TRACE_FILTER: &str = "info,h2=warn,hyper=warn,hyper_util=warn,tower=warn,tonic=warn,\
                            sqlx=warn,sea_orm=warn,lapin=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn,\
                            opentelemetry=warn,opentelemetry_sdk=warn";

/// Keeps the background log writer and the span exporter alive; drop it last
/// (it flushes the spans not exported yet).
pub struct TelemetryGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("restoreflow: flushing trace spans failed: {e}");
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Installs the global subscriber for `service` (the default `service.name`
/// of exported spans). Calling it twice is harmless (the second call keeps
/// the first subscriber), so tests may call it freely.
pub fn init(settings: &TelemetrySettings, service: &str) -> TelemetryGuard {
    let filter = || EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let stdout = match settings.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_filter(filter())
            .boxed(),
    };
    let (file_layer, guard) = match &settings.log_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::daily(dir, "restoreflow.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter())
                .boxed();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let name = settings
        .service_name
        .clone()
        .unwrap_or_else(|| service.to_string());
    let (provider, runtime) = tracer_provider(settings.otlp_endpoint.as_deref(), &name);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("restoreflow"))
        .with_filter(EnvFilter::new(TRACE_FILTER));
    let installed = tracing_subscriber::registry()
        .with(RequestIdLayer)
        .with(otel)
        .with(stdout)
        .with(file_layer)
        .try_init()
        .is_ok();
    if installed && let Some(url) = &settings.otlp_endpoint {
        tracing::info!(endpoint = %url, service = %name, "exporting trace spans over OTLP");
    }
    // Only an exporting provider has spans to flush at exit; the plain one
    // stays up for the life of the process (shut down, it would stop giving
    // spans ids).
    let exporting = installed && runtime.is_some();
    TelemetryGuard {
        _file: guard,
        provider: exporting.then_some(provider),
        runtime,
    }
}

/// A provider that samples every span (trace ids exist and propagate even
/// when nothing is exported) and, with an endpoint, batches them to it.
fn tracer_provider(
    endpoint: Option<&str>,
    service: &str,
) -> (SdkTracerProvider, Option<tokio::runtime::Runtime>) {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_string())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(endpoint) = endpoint else {
        return (builder.build(), None);
    };
    match OtlpExporter::new(endpoint) {
        Ok((exporter, runtime)) => (builder.with_batch_exporter(exporter).build(), Some(runtime)),
        Err(e) => {
            eprintln!("restoreflow: no OTLP export to {endpoint}: {e}");
            (builder.build(), None)
        }
    }
}

/// The OTLP/gRPC exporter driven by a runtime of its own: the batch
/// processor exports from a plain thread, and tonic needs a Tokio reactor.
#[derive(Debug)]
struct OtlpExporter {
    inner: std::sync::Arc<opentelemetry_otlp::SpanExporter>,
    handle: tokio::runtime::Handle,
}

impl OtlpExporter {
    fn new(endpoint: &str) -> Result<(Self, tokio::runtime::Runtime), String> {
        use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let inner = {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(Duration::from_secs(10))
                .with_compression(opentelemetry_otlp::Compression::Gzip)
                .build()
                .map_err(|e| e.to_string())?
        };
        let handle = runtime.handle().clone();
        Ok((
            Self {
                inner: std::sync::Arc::new(inner),
                handle,
            },
            runtime,
        ))
    }
}

impl SpanExporter for OtlpExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.handle.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        if let Some(inner) = std::sync::Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

/// Trace context and request id as they travel between services: HTTP
/// headers, gRPC metadata, and a field of every bus message.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceHeaders {
    /// W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate`, when a caller sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The gateway's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl TraceHeaders {
    /// The context of the current span (empty outside any span).
    pub fn current() -> Self {
        let span = tracing::Span::current();
        let cx = span.context();
        let mut map = HashMap::new();
        if cx.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(&cx, &mut map);
        }
        Self {
            traceparent: map.remove(TRACEPARENT),
            tracestate: map.remove(TRACESTATE).filter(|s| !s.is_empty()),
            request_id: current_request_id(),
        }
    }

    /// Reads the headers through `get` (HTTP headers, gRPC metadata);
    /// values that are not W3C trace context are dropped.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let request_id = get(REQUEST_ID)
            .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()));
        Self {
            traceparent: get(TRACEPARENT).filter(|t| parse_traceparent(t).is_some()),
            tracestate: get(TRACESTATE).filter(|s| !s.is_empty() && s.len() <= 512),
            request_id,
        }
    }

    /// Reads HTTP headers (or gRPC metadata, which travels as headers).
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        Self::from_lookup(|k| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    }

    /// The headers to send, as name and value.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (TRACEPARENT, self.traceparent.as_deref()),
            (TRACESTATE, self.tracestate.as_deref()),
            (REQUEST_ID, self.request_id.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }

    /// The 32 hex digits of the trace id, when there is a context.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent
            .as_deref()
            .and_then(parse_traceparent)
            .map(|(t, _)| t)
    }

    /// Makes `span` a child of this context (a span of another process) and
    /// records the request id on it (the span must declare a `request_id`
    /// field, e.g. `request_id = tracing::field::Empty`).
    pub fn adopt(&self, span: &tracing::Span) {
        if let Some(tp) = &self.traceparent {
            let mut map = HashMap::new();
            map.insert(TRACEPARENT.to_string(), tp.clone());
            if let Some(ts) = &self.tracestate {
                map.insert(TRACESTATE.to_string(), ts.clone());
            }
            let cx = TraceContextPropagator::new().extract(&map);
            if cx.span().span_context().is_valid() {
                let _ = span.set_parent(cx);
            }
        }
        if let Some(id) = &self.request_id {
            span.record("request_id", id.as_str());
        }
    }
}

/// `(trace id, parent span id)` of a valid version-00 `traceparent`.
fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0');
    ok.then_some((trace, span))
}

/// The request id recorded on the current span or the nearest ancestor.
pub fn current_request_id() -> Option<String> {
    let id = tracing::Span::current().id()?;
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(&id)?;
        span.scope()
            .find_map(|s| s.extensions().get::<RequestId>().map(|r| r.0.clone()))
    })
}

/// A request id recorded on a span (kept in the span's extensions).
struct RequestId(String);

/// Keeps every span's `request_id` field where [`current_request_id`]
/// finds it.
struct RequestIdLayer;

struct RequestIdVisitor(Option<String>);

impl tracing::field::Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl<S> Layer<S> for RequestIdLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = RequestIdVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(value), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(value));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = RequestIdVisitor(None);
        values.record(&mut visitor);
        if let (Some(value), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().replace(RequestId(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(good),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookup_drops_what_is_not_trace_context() {
        let headers: HashMap<&str, &str> = [
            (TRACEPARENT, "garbage"),
            (REQUEST_ID, "req 1"),
            (TRACESTATE, ""),
        ]
        .into();
        let t = TraceHeaders::from_lookup(|k| headers.get(k).map(|v| v.to_string()));
        assert_eq!(t, TraceHeaders::default());
        let headers: HashMap<&str, &str> = [
            (
                TRACEPARENT,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (REQUEST_ID, "abc-123"),
        ]
        .into();
        let t = TraceHeaders::from_lookup(|k| headers.get(k).map(|v| v.to_string()));
        assert_eq!(t.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(t.request_id.as_deref(), Some("abc-123"));
        assert_eq!(t.pairs().count(), 2);
    }

    #[test]
    fn a_child_span_inherits_the_remote_trace_and_the_request_id() {
        let _guard = init(&TelemetrySettings::default(), "telemetry-test");
        let remote = TraceHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
            request_id: Some("req-42".into()),
        };
        let span = tracing::info_span!("job", request_id = tracing::field::Empty);
        remote.adopt(&span);
        let inner = span.in_scope(|| {
            let child = tracing::info_span!("step");
            child.in_scope(TraceHeaders::current)
        });
        assert_eq!(inner.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(inner.request_id.as_deref(), Some("req-42"));
        // A new span id: the child is not the remote span itself.
        assert_ne!(inner.traceparent, remote.traceparent);
        assert_eq!(
            span.in_scope(TraceHeaders::current).trace_id(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // Outside any span there is no context to send.
        assert_eq!(TraceHeaders::current(), TraceHeaders::default());
    }
}
