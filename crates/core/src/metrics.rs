//! Prometheus metrics every service exposes.
//!
//! One process-wide recorder ([`handle`]); latencies and durations are
//! histograms with explicit buckets (so replicas aggregate with
//! `histogram_quantile(sum by (le) (rate(..._bucket[5m])))`). The gateway
//! serves them at `/metrics` on its HTTP address; the gRPC services at
//! `GET /metrics` on `telemetry.metrics_addr` ([`serve`]). In the embedded
//! process every service shares the one recorder, so the gateway's
//! `/metrics` has them all. The names are in [`names`]; the Grafana
//! dashboard in `deploy/monitoring` queries only those.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Metric names, one place for code, dashboard and tests.
pub mod names {
    /// Counter: HTTP requests by method, route and status.
    pub const HTTP_REQUESTS: &str = "http_requests_total";
    /// Histogram: HTTP request latency by method, route and status.
    pub const HTTP_DURATION: &str = "http_request_duration_seconds";
    /// Counter: gRPC calls served, by service, method and code.
    pub const GRPC_REQUESTS: &str = "grpc_server_requests_total";
    /// Histogram: gRPC call latency, by service, method and code.
    pub const GRPC_DURATION: &str = "grpc_server_request_duration_seconds";
    /// Gauge: messages ready in a work queue.
    pub const QUEUE_DEPTH: &str = "restoreflow_queue_depth";
    /// Gauge: jobs by kind and status (from the database).
    pub const JOBS: &str = "restoreflow_jobs";
    /// Counter: jobs a worker ran to an end, by kind and status.
    pub const JOBS_FINISHED: &str = "restoreflow_jobs_finished_total";
    /// Histogram: start-to-end time of jobs a worker ran, by kind and status.
    pub const JOB_DURATION: &str = "restoreflow_job_duration_seconds";
    /// Histogram: one optimiser step of training, by device.
    pub const TRAINING_STEP: &str = "restoreflow_training_step_seconds";
    /// Gauge: training throughput of a running job, samples per second.
    pub const TRAINING_THROUGHPUT: &str = "restoreflow_training_samples_per_second";
    /// Gauge: latest validation PSNR (dB) of a running training job.
    pub const VALIDATION_PSNR: &str = "restoreflow_validation_psnr_db";
    /// Histogram: restoring one image (`mode` sync or batch), by device.
    pub const RESTORE_DURATION: &str = "restoreflow_restore_duration_seconds";
    /// Counter: model-cache look-ups by result (hit or miss).
    pub const MODEL_CACHE: &str = "restoreflow_model_cache_requests_total";
    /// Counter: storage operations retried after a transient error, by operation.
    pub const STORAGE_RETRIES: &str = "restoreflow_storage_retries_total";
    /// Counter: broker connections re-established after a loss.
    pub const BUS_RECONNECTS: &str = "restoreflow_bus_reconnects_total";
}

/// Request latencies: 5 ms to 10 min.
const LATENCY: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0,
];
/// Whole jobs: a second to a day.
const JOB: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];
/// One training step: 10 ms (a GPU) to 30 s (a big CPU batch).
const STEP: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
];
/// One restored image: 10 ms to 5 min.
const RESTORE: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

fn builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets(LATENCY)?
        .set_buckets_for_metric(Matcher::Full(names::JOB_DURATION.into()), JOB)?
        .set_buckets_for_metric(Matcher::Full(names::TRAINING_STEP.into()), STEP)?
        .set_buckets_for_metric(Matcher::Full(names::RESTORE_DURATION.into()), RESTORE)
        // Per-job gauges (throughput, PSNR) of jobs long gone drop out.
        .map(|b| b.idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(15 * 60))))
}

/// Installs the process-wide recorder once; later calls reuse it. `None`
/// when another recorder was installed first (metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = builder().and_then(|b| b.install_recorder());
            match installed {
                Ok(h) => {
                    describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "prometheus recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric so far.
pub fn render() -> String {
    handle().map(|h| h.render()).unwrap_or_default()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(names::HTTP_REQUESTS, "HTTP requests served");
    describe_histogram!(
        names::HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency"
    );
    describe_counter!(names::GRPC_REQUESTS, "gRPC calls served");
    describe_histogram!(
        names::GRPC_DURATION,
        metrics::Unit::Seconds,
        "gRPC call latency"
    );
    describe_gauge!(names::QUEUE_DEPTH, "Messages ready in a work queue");
    describe_gauge!(names::JOBS, "Jobs by kind and status");
    describe_counter!(names::JOBS_FINISHED, "Jobs run to an end by this worker");
    describe_histogram!(
        names::JOB_DURATION,
        metrics::Unit::Seconds,
        "Job start-to-end time"
    );
    describe_histogram!(
        names::TRAINING_STEP,
        metrics::Unit::Seconds,
        "One training step"
    );
    describe_gauge!(
        names::TRAINING_THROUGHPUT,
        "Training samples per second of a running job"
    );
    describe_gauge!(
        names::VALIDATION_PSNR,
        "Latest validation PSNR (dB) of a running job"
    );
    describe_histogram!(
        names::RESTORE_DURATION,
        metrics::Unit::Seconds,
        "Restoring one image"
    );
    describe_counter!(names::MODEL_CACHE, "Model-cache look-ups");
    describe_counter!(names::STORAGE_RETRIES, "Storage operations retried");
    describe_counter!(names::BUS_RECONNECTS, "Broker reconnections");
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics_endpoint() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        render(),
    )
}

/// Serves `GET /metrics` (and `GET /health`) on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::CancellationToken,
) -> std::io::Result<()> {
    let _ = handle();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_endpoint))
        .route("/health", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Binds `telemetry.metrics_addr` (if set) and serves metrics there in the
/// background until `shutdown`.
pub async fn spawn_endpoint(
    addr: Option<&str>,
    shutdown: crate::shutdown::CancellationToken,
) -> std::io::Result<Option<std::net::SocketAddr>> {
    let Some(addr) = addr else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, shutdown).await {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    Ok(Some(bound))
}

/// The value of one series in a Prometheus text exposition: the sample whose
/// name is `name` and whose labels include every pair of `labels` (summed
/// over the series that match). For tests and checks.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let has = |k: &str, v: &str| series_labels.contains(&format!("{k}=\"{v}\""));
        if labels.iter().all(|(k, v)| has(k, v))
            && let Ok(v) = value.parse::<f64>()
        {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text = "# HELP x y\nrestoreflow_jobs{kind=\"synthetic\",status=\"queued\"} 2\n\
                    restoreflow_jobs{kind=\"synthetic\",status=\"running\"} 1\n\
                    restoreflow_jobs{kind=\"evaluation\",status=\"queued\"} 4\n\
                    restoreflow_bus_reconnects_total 3\n";
        assert_eq!(
            sample(text, names::JOBS, &[("kind", "synthetic")]),
            Some(3.0)
        );
        assert_eq!(
            sample(text, names::JOBS, &[("status", "queued")]),
            Some(6.0)
        );
        assert_eq!(sample(text, names::BUS_RECONNECTS, &[]), Some(3.0));
        assert_eq!(sample(text, names::JOBS, &[("kind", "nope")]), None);
    }

    #[test]
    fn histograms_use_the_explicit_buckets() {
        let _ = handle();
        metrics::histogram!(names::TRAINING_STEP, "device" => "unit-test").record(0.3);
        metrics::histogram!(names::HTTP_DURATION, "path" => "/unit-test").record(0.02);
        let text = render();
        assert!(
            text.contains(
                "restoreflow_training_step_seconds_bucket{device=\"unit-test\",le=\"0.35\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{path=\"/unit-test\",le=\"0.025\"} 1"
            ),
            "{text}"
        );
        // Histograms, not summaries: no quantile series.
        assert!(!text.contains("quantile="));
    }
}
