//! `restoreflow`: run everything embedded (`up`) or one service (`serve`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use restoreflow::{Embedded, EmbeddedOptions};
use restoreflow_core::{Settings, shutdown, telemetry};

#[derive(Parser)]
#[command(
    name = "restoreflow",
    version,
    about = "Trains document-image restoration models automatically"
)]
struct Cli {
    /// TOML configuration file (environment variables RESTOREFLOW__SECTION__KEY override it).
    #[arg(long, global = true, env = "RESTOREFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every service in one process on the embedded backends.
    Up {
        /// Database, objects, logs and the API key live here.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Gateway address (default 127.0.0.1:8000).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Run one service against the configured backends.
    Serve {
        /// Which service.
        service: Service,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Service {
    Gateway,
    SyntheticData,
    ModelRegistry,
    Trainer,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Up { data_dir, addr } => {
            let mut settings = settings;
            settings.telemetry.log_dir = Some(data_dir.join("logs"));
            let _guard = telemetry::init(&settings.telemetry);
            let app = Embedded::build(
                settings,
                EmbeddedOptions {
                    data_dir,
                    http_addr: addr,
                },
            )
            .await?;
            println!("{}", app.banner());
            app.run_until_stopped(shutdown::signal_token()).await?;
            println!("restoreflow stopped");
        }
        Command::Serve { service } => {
            let _guard = telemetry::init(&settings.telemetry);
            let token = shutdown::signal_token();
            match service {
                Service::Gateway => {
                    restoreflow_gateway::Application::build(settings)
                        .await?
                        .run_until_stopped(token)
                        .await?
                }
                Service::SyntheticData => {
                    restoreflow_synthetic_data::Application::build(settings)
                        .await?
                        .run_until_stopped(token)
                        .await?
                }
                Service::ModelRegistry => {
                    restoreflow_registry::Application::build(settings)
                        .await?
                        .run_until_stopped(token)
                        .await?
                }
                Service::Trainer => {
                    restoreflow_trainer::Application::build(settings)
                        .await?
                        .run_until_stopped(token)
                        .await?
                }
            }
        }
    }
    Ok(())
}
