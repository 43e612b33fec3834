//! `restoreflow-report`: the report service on its own.

use restoreflow_core::{Settings, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = std::env::var_os("RESTOREFLOW_CONFIG").map(std::path::PathBuf::from);
    let settings = Settings::load(config.as_deref(), std::env::vars())?;
    let _guard = telemetry::init(&settings.telemetry);
    let app = restoreflow_report::Application::build(settings).await?;
    app.run_until_stopped(shutdown::signal_token()).await?;
    Ok(())
}
