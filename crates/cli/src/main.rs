//! `restoreflow`: run everything embedded (`up`) or one service (`serve`), or
//! drive the trainer and the model registry (`train`, `models`) and a running
//! deployment (`verify`, `demo`, `eval register`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use restoreflow::tools::{self, DemoArgs, EvalArgs, ModelsArgs, TrainArgs, VerifyArgs};
use restoreflow::{Embedded, EmbeddedOptions};
use restoreflow_core::{Settings, shutdown, telemetry};

/// Every binary allocates with mimalloc (see `restoreflow_core::process` for
/// the settings it runs with).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Start, inspect, watch and cancel training jobs (gRPC to the trainer).
    Train(TrainArgs),
    /// List, show, alias, compare, download and delete model versions (gRPC to the registry).
    Models(ModelsArgs),
    /// Check a running deployment end to end (gateway, services, database,
    /// bus, buckets, API key, n8n) and print a pass/fail table.
    Verify(VerifyArgs),
    /// Run the whole story on a running system: generate, train, report,
    /// evaluate, restore.
    Demo(DemoArgs),
    /// Register a folder of clean/degraded pairs (and their text) as an
    /// evaluation dataset on a running gateway.
    Eval(EvalArgs),
    /// Print the process settings this binary runs with (allocator purge
    /// delay, Candle pool spin limit), one `NAME=value` a line.
    #[command(hide = true)]
    ProcessInfo,
}

#[derive(Clone, Copy, ValueEnum)]
enum Service {
    Gateway,
    SyntheticData,
    ModelRegistry,
    Trainer,
    Report,
}

fn main() -> anyhow::Result<ExitCode> {
    // Before any thread exists: re-executes with the allocator and thread-pool
    // settings the benchmarks run with, when they are missing.
    restoreflow_core::process::apply();
    run()
}

#[tokio::main]
async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Command::ProcessInfo = cli.command {
        for (name, value) in restoreflow_core::process::effective() {
            println!("{name}={}", value.as_deref().unwrap_or("(unset)"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings::load(cli.config.as_deref(), std::env::vars())?;
    let tool = match cli.command {
        Command::Train(args) => tools::run_train(args, &settings).await,
        Command::Models(args) => tools::run_models(args, &settings)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => tools::run_verify(args, &settings).await.map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Demo(args) => tools::run_demo(args, &settings)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => tools::run_eval(args, &settings)
            .await
            .map(|()| ExitCode::SUCCESS),
        command => {
            serve(command, settings).await?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    Ok(tool.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        e.exit_code()
    }))
}

/// `up` and `serve`: run services until Ctrl-C.
async fn serve(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
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
                Service::Report => {
                    restoreflow_report::Application::build(settings)
                        .await?
                        .run_until_stopped(token)
                        .await?
                }
            }
        }
        Command::Train(_)
        | Command::Models(_)
        | Command::Verify(_)
        | Command::Demo(_)
        | Command::Eval(_)
        | Command::ProcessInfo => {}
    }
    Ok(())
}
