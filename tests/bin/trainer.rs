//! The trainer service as a process of its own, configured from the
//! environment exactly like `restoreflow serve trainer`. End-to-end tests
//! start it to kill it with SIGKILL mid-training; cargo builds it before the
//! tests run, so a fresh checkout needs no extra build step.

use restoreflow_core::{Settings, shutdown, telemetry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::load(None, std::env::vars())?;
    let _guard = telemetry::init(&settings.telemetry, "trainer");
    let stop = shutdown::signal_token();
    restoreflow_core::metrics::spawn_endpoint(
        settings.telemetry.metrics_addr.as_deref(),
        stop.clone(),
    )
    .await?;
    restoreflow_trainer::Application::build(settings)
        .await?
        .run_until_stopped(stop)
        .await?;
    Ok(())
}
