//! The embedded mode: all services in one process on local backends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use restoreflow_core::config::{BusBackend, Secret, StorageBackend};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::{Backends, Settings};

/// Options of `restoreflow up`.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Where the database, objects, logs and API key live.
    pub data_dir: PathBuf,
    /// Gateway address; `None` keeps the configured one (127.0.0.1:8000).
    pub http_addr: Option<String>,
}

/// Settings for the embedded mode rooted at `data_dir` (absolute).
pub fn embedded_settings(mut base: Settings, data_dir: &Path) -> Settings {
    base.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("restoreflow.db").display()
    ));
    base.storage.backend = StorageBackend::Local;
    base.storage.local_root = data_dir.join("objects");
    base.bus.backend = BusBackend::Memory;
    base.telemetry.log_dir = Some(data_dir.join("logs"));
    base.synthetic_data.grpc_addr = "127.0.0.1:0".into();
    base.model_registry.grpc_addr = "127.0.0.1:0".into();
    base.trainer.grpc_addr = "127.0.0.1:0".into();
    base.report.grpc_addr = "127.0.0.1:0".into();
    base
}

/// Where `up` keeps the internal gRPC token (the CLI's `train` and `models`
/// read it from `./data/` when `grpc.token` is not configured).
pub const GRPC_TOKEN_FILE: &str = "grpc-token";

/// Where `restoreflow up` writes the addresses it bound (its gRPC ports are
/// picked at start), so the CLI tools find the services without URLs.
pub const SERVICES_FILE: &str = "services.json";

/// The endpoints `restoreflow up` is serving, as written to [`SERVICES_FILE`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpServices {
    /// Gateway base URL (`http://…`).
    pub gateway: String,
    /// gRPC URL of synthetic-data.
    pub synthetic_data: String,
    /// gRPC URL of the model registry.
    pub model_registry: String,
    /// gRPC URL of the trainer.
    pub trainer: String,
    /// gRPC URL of the report service.
    pub report: String,
}

impl UpServices {
    /// What `up` wrote in `data_dir`, if it did (and the file reads).
    pub fn read(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(SERVICES_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The API key kept in `data_dir/api-key`, created on first start.
pub fn load_or_create_api_key(data_dir: &Path) -> anyhow::Result<String> {
    load_or_create_secret(data_dir, "api-key")
}

/// A secret kept in `data_dir/name` (mode 0600), created on first start.
fn load_or_create_secret(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = existing.trim().to_string();
        if key.len() >= 16 {
            return Ok(key);
        }
    }
    let key = restoreflow_core::config::keys::generate_key();
    std::fs::write(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(key)
}

/// Every service, built and bound, ready to run.
pub struct Embedded {
    gateway: restoreflow_gateway::Application,
    synthetic: restoreflow_synthetic_data::Application,
    registry: restoreflow_registry::Application,
    trainer: restoreflow_trainer::Application,
    report: restoreflow_report::Application,
    /// The backends every service shares (the in-process bus included).
    pub backends: Backends,
    /// Effective settings.
    pub settings: Settings,
    /// The admin API key (every route but the public ones needs a key).
    pub api_key: String,
    /// Absolute data directory.
    pub data_dir: PathBuf,
}

impl Embedded {
    /// Creates the data dir, connects the embedded backends and binds every port.
    pub async fn build(base: Settings, opts: EmbeddedOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.data_dir)
            .with_context(|| format!("cannot create data dir {}", opts.data_dir.display()))?;
        let data_dir = opts.data_dir.canonicalize()?;
        let mut settings = embedded_settings(base, &data_dir);
        if let Some(addr) = opts.http_addr {
            settings.gateway.http_addr = addr;
        }
        let api_key = match &settings.gateway.api_key {
            Some(k) => k.expose().to_string(),
            None => load_or_create_api_key(&data_dir)?,
        };
        settings.gateway.api_key = Some(Secret::new(api_key.clone()));
        if settings.grpc.token.is_none() {
            settings.grpc.token = Some(Secret::new(load_or_create_secret(
                &data_dir,
                GRPC_TOKEN_FILE,
            )?));
        }
        settings.validate()?;
        let backends = Backends::connect(&settings).await?;
        let synthetic =
            restoreflow_synthetic_data::Application::build_with(settings.clone(), backends.clone())
                .await?;
        settings.gateway.synthetic_data_url = format!("http://{}", synthetic.grpc_addr());
        settings.trainer.synthetic_data_url = settings.gateway.synthetic_data_url.clone();
        let registry =
            restoreflow_registry::Application::build_with(settings.clone(), backends.clone())
                .await?;
        settings.gateway.model_registry_url = format!("http://{}", registry.grpc_addr());
        settings.trainer.model_registry_url = settings.gateway.model_registry_url.clone();
        settings.report.model_registry_url = settings.gateway.model_registry_url.clone();
        let trainer =
            restoreflow_trainer::Application::build_with(settings.clone(), backends.clone())
                .await?;
        settings.gateway.trainer_url = format!("http://{}", trainer.grpc_addr());
        settings.report.trainer_url = settings.gateway.trainer_url.clone();
        let report =
            restoreflow_report::Application::build_with(settings.clone(), backends.clone()).await?;
        settings.gateway.report_url = format!("http://{}", report.grpc_addr());
        let gateway =
            restoreflow_gateway::Application::build_with(settings.clone(), backends.clone())
                .await?;
        let services = UpServices {
            gateway: format!("http://{}", gateway.http_addr()),
            synthetic_data: settings.gateway.synthetic_data_url.clone(),
            model_registry: settings.gateway.model_registry_url.clone(),
            trainer: settings.gateway.trainer_url.clone(),
            report: settings.gateway.report_url.clone(),
        };
        let path = data_dir.join(SERVICES_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&services)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            gateway,
            synthetic,
            registry,
            trainer,
            report,
            backends,
            settings,
            api_key,
            data_dir,
        })
    }

    /// The gateway's bound address.
    pub fn http_addr(&self) -> SocketAddr {
        self.gateway.http_addr()
    }

    /// What `up` prints: where everything is.
    pub fn banner(&self) -> String {
        let http = self.http_addr();
        format!(
            "restoreflow is up (embedded mode)\n\
             \x20 Gateway:    http://{http}\n\
             \x20 API docs:   http://{http}/docs\n\
             \x20 API key:    {key}\n\
             \x20 Data dir:   {data}\n\
             \x20 Database:   {db}\n\
             \x20 Objects:    {objects}\n\
             \x20 Logs:       {logs}\n\
             \x20 gRPC synthetic-data: {grpc}\n\
             \x20 gRPC model-registry: {registry}\n\
             \x20 gRPC trainer:        {trainer} (device {device}; training, evaluation, restoration)\n\
             \x20 gRPC report:         {report}\n\
             Send the key as the X-API-Key header on POST/PUT requests. Press Ctrl-C to stop.",
            key = self.api_key,
            data = self.data_dir.display(),
            db = self.data_dir.join("restoreflow.db").display(),
            objects = self.data_dir.join("objects").display(),
            logs = self.data_dir.join("logs").display(),
            grpc = self.synthetic.grpc_addr(),
            registry = self.registry.grpc_addr(),
            trainer = self.trainer.grpc_addr(),
            device = self.settings.trainer.device,
            report = self.report.grpc_addr(),
        )
    }

    /// Runs every service until `shutdown`; stops all of them if one fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let synth = tokio::spawn(self.synthetic.run_until_stopped(shutdown.clone()));
        let registry = tokio::spawn(self.registry.run_until_stopped(shutdown.clone()));
        let trainer = tokio::spawn(self.trainer.run_until_stopped(shutdown.clone()));
        let report = tokio::spawn(self.report.run_until_stopped(shutdown.clone()));
        let gw = tokio::spawn(self.gateway.run_until_stopped(shutdown.clone()));
        // Whichever stops first (error or shutdown) stops the others.
        let (s, r, t, rep, g) = tokio::join!(
            async {
                let r = synth.await;
                shutdown.cancel();
                r
            },
            async {
                let r = registry.await;
                shutdown.cancel();
                r
            },
            async {
                let r = trainer.await;
                shutdown.cancel();
                r
            },
            async {
                let r = report.await;
                shutdown.cancel();
                r
            },
            async {
                let r = gw.await;
                shutdown.cancel();
                r
            }
        );
        s??;
        r??;
        t??;
        rep??;
        g??;
        Ok(())
    }
}
