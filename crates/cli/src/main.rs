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
    /// Run one service against the configured backends (the container
    /// image runs this; `RESTOREFLOW_SERVICE` names the service when the
    /// argument is left out).
    Serve {
        /// Which service.
        #[arg(env = "RESTOREFLOW_SERVICE")]
        service: Service,
    },
    /// Exit 0 when the service running here answers its health check (the
    /// gateway's `GET /health`, a gRPC service's standard health service);
    /// the container image's HEALTHCHECK.
    Healthcheck {
        /// Which service.
        #[arg(env = "RESTOREFLOW_SERVICE")]
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
    /// Make API keys for the gateway.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the process settings this binary runs with (allocator purge
    /// delay, Candle pool spin limit), one `NAME=value` a line.
    #[command(hide = true)]
    ProcessInfo,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random key (give it to the client, once) and the
    /// `gateway.api_keys` entry that accepts it (only its SHA-256).
    New {
        /// `read` (GET everything) or `admin` (everything).
        #[arg(long, value_enum, default_value = "read")]
        scope: ScopeArg,
        /// Who holds the key, for logs and refusals (a-z, 0-9, '-', '_', '.').
        #[arg(long)]
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Read,
    Admin,
}

/// `keys new`: the key, and its configuration entry.
fn new_key(scope: ScopeArg, name: &str) -> anyhow::Result<()> {
    use restoreflow_core::config::keys::{KeyEntry, KeyScope, generate_key, hash_key};
    let key = generate_key();
    let scope = match scope {
        ScopeArg::Read => KeyScope::Read,
        ScopeArg::Admin => KeyScope::Admin,
    };
    let entry = KeyEntry {
        scope,
        name: name.to_string(),
        sha256: hash_key(&key),
    }
    .to_config();
    // The entry must load as configuration before it is shown.
    KeyEntry::parse(&entry).map_err(anyhow::Error::msg)?;
    println!("key:   {key}");
    println!("entry: {entry}");
    println!(
        "Give the key to its holder (it is not stored anywhere); add the entry to \
         gateway.api_keys (RESTOREFLOW__GATEWAY__API_KEYS, comma-separated) and restart the gateway."
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Service {
    Gateway,
    SyntheticData,
    ModelRegistry,
    Trainer,
    Report,
}

impl Service {
    /// The `service.name` of its spans.
    fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::SyntheticData => "synthetic-data",
            Self::ModelRegistry => "model-registry",
            Self::Trainer => "trainer",
            Self::Report => "report",
        }
    }
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
    if let Command::Keys {
        command: KeysCommand::New { scope, name },
    } = &cli.command
    {
        new_key(*scope, name)?;
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings::load(cli.config.as_deref(), std::env::vars())?;
    if let Command::Healthcheck { service } = cli.command {
        return Ok(match healthcheck(service, &settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        });
    }
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

/// Checks the service bound on this machine (its configured port, on
/// loopback).
async fn healthcheck(service: Service, settings: &Settings) -> Result<(), String> {
    let grpc = |addr: &str| {
        let addr = addr.to_string();
        async move { restoreflow_core::grpc::probe(&addr).await }
    };
    match service {
        Service::Gateway => {
            let addr = &settings.gateway.http_addr;
            let port = addr.rsplit_once(':').map_or("8000", |(_, p)| p);
            let url = format!("http://127.0.0.1:{port}/health");
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(|e| e.to_string())?;
            let r = client
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("{url} answered {}", r.status()))
            }
        }
        Service::SyntheticData => grpc(&settings.synthetic_data.grpc_addr).await,
        Service::ModelRegistry => grpc(&settings.model_registry.grpc_addr).await,
        Service::Trainer => grpc(&settings.trainer.grpc_addr).await,
        Service::Report => grpc(&settings.report.grpc_addr).await,
    }
}

/// `up` and `serve`: run services until Ctrl-C.
async fn serve(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Up { data_dir, addr } => {
            let mut settings = settings;
            settings.telemetry.log_dir = Some(data_dir.join("logs"));
            let _guard = telemetry::init(&settings.telemetry, "restoreflow");
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
            let _guard = telemetry::init(&settings.telemetry, service.name());
            let token = shutdown::signal_token();
            if service != Service::Gateway {
                // The gateway serves /metrics on its HTTP address.
                restoreflow_core::metrics::spawn_endpoint(
                    settings.telemetry.metrics_addr.as_deref(),
                    token.clone(),
                )
                .await?;
            }
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
        | Command::Keys { .. }
        | Command::Healthcheck { .. }
        | Command::ProcessInfo => {}
    }
    Ok(())
}
