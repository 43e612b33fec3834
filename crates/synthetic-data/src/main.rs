//! `restoreflow-synthetic-data`: the synthetic-data service on its own.

use restoreflow_core::{Settings, shutdown, telemetry};

/// Every binary allocates with mimalloc (see `restoreflow_core::process` for
/// the settings it runs with).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Before any thread exists: re-executes with the allocator and thread-pool
    // settings the benchmarks run with, when they are missing.
    restoreflow_core::process::apply();
    run()
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let config = std::env::var_os("RESTOREFLOW_CONFIG").map(std::path::PathBuf::from);
    let settings = Settings::load(config.as_deref(), std::env::vars())?;
    // `healthcheck`: exit 0 when the running service answers its gRPC health check.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return restoreflow_core::grpc::probe(&settings.synthetic_data.grpc_addr)
            .await
            .map_err(anyhow::Error::msg);
    }
    let _guard = telemetry::init(&settings.telemetry, "synthetic-data");
    // Prometheus metrics on `telemetry.metrics_addr`, when set.
    let shutdown = shutdown::signal_token();
    restoreflow_core::metrics::spawn_endpoint(
        settings.telemetry.metrics_addr.as_deref(),
        shutdown.clone(),
    )
    .await?;
    let app = restoreflow_synthetic_data::Application::build(settings).await?;
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
