//! Typed, layered configuration: defaults → optional TOML file → environment
//! (`RESTOREFLOW__SECTION__KEY=value`), then [`Settings::validate`].

pub mod keys;
mod secret;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// Prefix of environment variables read by [`Settings::load`].
pub const ENV_PREFIX: &str = "RESTOREFLOW";

/// Errors raised while loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or a value has the wrong type.
    #[error("cannot load configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but makes no sense.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Every setting of every service; each service reads the sections it needs.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    /// The REST gateway.
    pub gateway: GatewaySettings,
    /// The synthetic-data service.
    pub synthetic_data: SyntheticDataSettings,
    /// The model-registry service.
    pub model_registry: ModelRegistrySettings,
    /// The trainer service.
    pub trainer: TrainerSettings,
    /// The report service.
    pub report: ReportSettings,
    /// Metadata database.
    pub database: DatabaseSettings,
    /// Object storage.
    pub storage: StorageSettings,
    /// Message bus.
    pub bus: BusSettings,
    /// Job leases and recovery.
    pub jobs: JobSettings,
    /// Logging.
    pub telemetry: TelemetrySettings,
    /// The internal gRPC API.
    pub grpc: GrpcSettings,
}

/// Settings of the internal gRPC API every service serves and calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcSettings {
    /// Shared token every gRPC call carries (health checks excepted); the
    /// services refuse to start without it. At least 16 characters.
    pub token: Option<Secret>,
    /// Deadline of one call from a client (gateway, trainer, CLI), in
    /// seconds; a service that accepts the call and never answers fails it
    /// with `DEADLINE_EXCEEDED` instead of hanging the caller. The longest
    /// call restores a whole page on a CPU.
    pub timeout_secs: u64,
    /// Deadline of connecting to a service, in seconds.
    pub connect_timeout_secs: u64,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        Self {
            token: None,
            timeout_secs: 600,
            connect_timeout_secs: 5,
        }
    }
}

/// Routes that may answer without a key (`gateway.public_read`): they show
/// no stored data.
pub const HARMLESS_ROUTES: [&str; 5] = ["/health", "/ready", "/docs", "/openapi.json", "/metrics"];

/// `gateway.public_read` by default: the probes and the API documentation.
pub const DEFAULT_PUBLIC_READ: [&str; 4] = ["/health", "/ready", "/docs", "/openapi.json"];

/// Settings of the REST gateway.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// Address the HTTP server binds (`127.0.0.1:0` picks a free port).
    pub http_addr: String,
    /// An admin key in plain text (`restoreflow up` generates one). At
    /// least 16 characters.
    pub api_key: Option<Secret>,
    /// More keys, stored hashed: `scope:name:sha256hex` entries (scope `read`
    /// or `admin`; see [`keys`]). All are valid at once, so a key is rotated
    /// by adding the new entry before removing the old one.
    pub api_keys: Vec<String>,
    /// Routes that answer GET without a key. Only harmless ones may be
    /// listed: `/health`, `/ready`, `/docs`, `/openapi.json`, `/metrics`.
    pub public_read: Vec<String>,
    /// Largest accepted request body for uploads, in bytes.
    pub max_upload_bytes: u64,
    /// Largest accepted JSON body, in bytes.
    pub max_json_bytes: u64,
    /// Per-request timeout, in seconds (streaming downloads are exempt).
    pub request_timeout_secs: u64,
    /// gRPC endpoint of the synthetic-data service.
    pub synthetic_data_url: String,
    /// gRPC endpoint of the model-registry service.
    pub model_registry_url: String,
    /// gRPC endpoint of the trainer service (training, evaluation, restoration).
    pub trainer_url: String,
    /// gRPC endpoint of the report service.
    pub report_url: String,
    /// Largest image accepted by `/restore/document`, in pixels (width x height).
    pub max_restore_pixels: u64,
    /// Lifetime of presigned model download URLs, in seconds (S3 only).
    pub presign_ttl_secs: u64,
    /// Requests per minute each key may make of each kind of expensive work
    /// (restore, generate, train, evaluate); 0 turns the limit off.
    pub rate_per_minute: u32,
    /// Requests of each kind of expensive work each key may have in flight;
    /// 0 turns the limit off.
    pub max_concurrent: u32,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            http_addr: "127.0.0.1:8000".into(),
            api_key: None,
            api_keys: Vec::new(),
            public_read: DEFAULT_PUBLIC_READ.iter().map(|p| p.to_string()).collect(),
            max_upload_bytes: 64 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            request_timeout_secs: 60,
            synthetic_data_url: "http://127.0.0.1:50051".into(),
            model_registry_url: "http://127.0.0.1:50052".into(),
            trainer_url: "http://127.0.0.1:50053".into(),
            report_url: "http://127.0.0.1:50054".into(),
            max_restore_pixels: 40_000_000,
            presign_ttl_secs: 900,
            rate_per_minute: 60,
            max_concurrent: 4,
        }
    }
}

/// Settings of the synthetic-data service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SyntheticDataSettings {
    /// Address the gRPC server binds.
    pub grpc_addr: String,
    /// Largest `num_images` one job may ask for.
    pub max_images: u32,
    /// Whether this process also runs the job worker.
    pub worker: bool,
    /// Extra font directories searched besides the system fonts.
    pub font_dirs: Vec<PathBuf>,
}

impl Default for SyntheticDataSettings {
    fn default() -> Self {
        Self {
            grpc_addr: "127.0.0.1:50051".into(),
            max_images: 10_000,
            worker: true,
            font_dirs: Vec::new(),
        }
    }
}

/// Settings of the model-registry service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelRegistrySettings {
    /// Address the gRPC server binds.
    pub grpc_addr: String,
}

impl Default for ModelRegistrySettings {
    fn default() -> Self {
        Self {
            grpc_addr: "127.0.0.1:50052".into(),
        }
    }
}

impl TrainerSettings {
    /// [`TrainerSettings::device`] as a class (validated at load: `cpu` or `cuda`).
    pub fn device_class(&self) -> crate::devices::DeviceClass {
        crate::devices::DeviceClass::parse(&self.device).unwrap_or(crate::devices::DeviceClass::Cpu)
    }
}

/// Settings of the trainer service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainerSettings {
    /// Address the gRPC server binds.
    pub grpc_addr: String,
    /// The device class this replica's workers serve and its synchronous
    /// restoration runs on: `cpu` or `cuda` (a `--features cuda` build). Its
    /// workers claim only jobs of this class.
    pub device: String,
    /// Device classes whose jobs are accepted while no live worker has them,
    /// because the deployment starts such workers on demand (an autoscaler
    /// scaling a GPU deployment from zero). Jobs of any other class are
    /// refused (409) unless a live worker serves it. Env: comma-separated.
    pub on_demand_devices: Vec<String>,
    /// Whether this process also runs the training worker.
    pub worker: bool,
    /// Decoded pages a training run keeps in memory at most.
    pub cache_pages: usize,
    /// gRPC endpoint of the model-registry service (registration, base models).
    pub model_registry_url: String,
    /// gRPC endpoint of the synthetic-data service, the owner of datasets
    /// (which pairs a dataset has, held-out sets, recording uploads).
    pub synthetic_data_url: String,
    /// Model versions kept loaded for restoration and evaluation (LRU).
    pub model_cache_size: usize,
    /// Largest memory estimate of a training job's step (model, optimiser
    /// state and activations of the largest batch and patch it uses) that
    /// `StartTraining` accepts, in bytes; bigger jobs are refused with 400
    /// before they can take the process down. 0: half of this machine's
    /// memory. The page cache (`cache_pages`, at most 512 MB) comes on top.
    pub max_job_memory: u64,
    /// Deadline of reading one page with tesseract (OCR scoring), in
    /// seconds: a reader still running then is killed and the page gets no
    /// character error rate.
    pub ocr_timeout_secs: u64,
}

impl Default for TrainerSettings {
    fn default() -> Self {
        Self {
            grpc_addr: "127.0.0.1:50053".into(),
            device: "cpu".into(),
            on_demand_devices: vec!["cpu".into()],
            worker: true,
            cache_pages: 64,
            model_registry_url: "http://127.0.0.1:50052".into(),
            synthetic_data_url: "http://127.0.0.1:50051".into(),
            model_cache_size: 4,
            max_job_memory: 0,
            ocr_timeout_secs: 120,
        }
    }
}

/// Settings of the report service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportSettings {
    /// Address the gRPC server binds.
    pub grpc_addr: String,
    /// Whether this process consumes `events.training.completed` and builds reports.
    pub worker: bool,
    /// gRPC endpoint of the trainer: the training jobs, their events and the
    /// GPU workers a report describes.
    pub trainer_url: String,
    /// gRPC endpoint of the model-registry: the version a run registered,
    /// its aliases and the version before it.
    pub model_registry_url: String,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            grpc_addr: "127.0.0.1:50054".into(),
            worker: true,
            trainer_url: "http://127.0.0.1:50053".into(),
            model_registry_url: "http://127.0.0.1:50052".into(),
        }
    }
}

/// Metadata database settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` (embedded) or `postgres://user@host/db`.
    pub url: Secret,
    /// Connection pool size.
    pub max_connections: u32,
    /// Deadline of opening a connection and of waiting for a free one in the
    /// pool: a database that accepts connections and never answers fails
    /// the call instead of hanging it.
    pub timeout_secs: u64,
    /// Deadline of every statement, and of every transaction as a whole: a
    /// database that stops answering mid-call fails the call (503 on the
    /// API; a worker's lease then lapses and the job is handed over).
    pub statement_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://restoreflow.db?mode=rwc"),
            max_connections: 10,
            timeout_secs: 10,
            statement_timeout_secs: 30,
        }
    }
}

/// Which object-store adapter to use.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A local directory (embedded default).
    Local,
    /// An S3-compatible server (MinIO in deployment).
    S3,
}

/// Object storage settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// Adapter.
    pub backend: StorageBackend,
    /// Root directory of the local store.
    pub local_root: PathBuf,
    /// Prepended to every bucket name (isolates tests and tenants).
    pub bucket_prefix: String,
    /// S3 endpoint such as `http://minio:9000`; empty uses AWS.
    pub s3_endpoint: String,
    /// The S3 endpoint presigned URLs name, for clients outside the
    /// services' network (e.g. `http://127.0.0.1:9000` where compose
    /// publishes MinIO); empty: `s3_endpoint`. Signing needs no connection,
    /// so the services need not reach it.
    pub s3_public_endpoint: String,
    /// S3 region the server checks signatures against.
    pub s3_region: String,
    /// Access key id.
    pub s3_access_key_id: String,
    /// Secret access key.
    pub s3_secret_access_key: Secret,
    /// Multipart part size for streamed uploads, in bytes (≥ 5 MiB).
    pub multipart_part_bytes: u64,
    /// Deadline of one S3 request attempt (a part of a multipart upload, a
    /// GET until its body starts, a listing page); the retry budget
    /// (`jobs.storage_retry_secs`) decides what happens next.
    pub timeout_secs: u64,
    /// Deadline of opening a connection to the S3 server.
    pub connect_timeout_secs: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            local_root: PathBuf::from("objects"),
            bucket_prefix: String::new(),
            s3_endpoint: String::new(),
            s3_public_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: Secret::new(""),
            multipart_part_bytes: 8 * 1024 * 1024,
            timeout_secs: 60,
            connect_timeout_secs: 5,
        }
    }
}

/// Which bus adapter to use.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// In-process channels (embedded default).
    Memory,
    /// RabbitMQ over AMQP 0.9.1.
    Amqp,
}

/// Message bus settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct BusSettings {
    /// Adapter.
    pub backend: BusBackend,
    /// `amqp://user:pass@host:5672/%2f`.
    pub url: Secret,
    /// Prepended to every queue name (isolates tests and environments).
    pub queue_prefix: String,
    /// Unacked deliveries per consumer. Jobs are acked once claimed in the
    /// database, so 1 is right for long work.
    pub prefetch: u16,
    /// Deadline of a publish (confirm included), a queue-depth query or a
    /// health check, reconnecting included; a broker that accepts the
    /// connection and never answers fails the call instead of hanging it.
    pub timeout_secs: u64,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            backend: BusBackend::Memory,
            url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            queue_prefix: "restoreflow.".into(),
            prefetch: 1,
            timeout_secs: 10,
        }
    }
}

/// Job lease and recovery settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    /// A claimed job whose lease is older than this is considered abandoned.
    pub lease_secs: u64,
    /// How often a running job renews its lease.
    pub heartbeat_secs: u64,
    /// How often workers look for queued or abandoned jobs the bus did not deliver.
    pub sweep_interval_secs: u64,
    /// How long a worker keeps retrying a failing object-store call (checkpoint
    /// uploads, generated files, page reads) before the job fails.
    pub storage_retry_secs: u64,
    /// How many times a job may be claimed. A job whose worker died on its
    /// last allowed attempt (lease expired) ends `failed` instead of being
    /// claimed again, so one poison job cannot take every worker down in turn.
    pub max_attempts: u32,
    /// The progress watchdog: a running job that records no progress for
    /// this long is handed to another worker (its lease expires at once);
    /// 0 turns the watchdog off.
    pub watchdog_secs: u64,
}

impl JobSettings {
    /// Retry policy of a worker's object-store calls.
    pub fn storage_retry(&self) -> crate::storage::RetryPolicy {
        crate::storage::RetryPolicy::within(std::time::Duration::from_secs(self.storage_retry_secs))
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease_secs: 60,
            heartbeat_secs: 15,
            sweep_interval_secs: 15,
            storage_retry_secs: 120,
            max_attempts: 3,
            watchdog_secs: 1800,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// `tracing` env-filter directive.
    pub filter: String,
    /// Format of stdout logs.
    pub format: LogFormat,
    /// Also write daily-rotated log files here.
    pub log_dir: Option<PathBuf>,
    /// OpenTelemetry collector to export trace spans to over OTLP/gRPC
    /// (e.g. `http://otel-collector:4317`); none exports nothing, while trace
    /// context still propagates across services.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported spans; each binary names itself when this
    /// is unset.
    pub service_name: Option<String>,
    /// Where a gRPC-only service serves Prometheus metrics over HTTP
    /// (`GET /metrics`), e.g. `0.0.0.0:9464`; none serves no metrics port.
    /// The gateway serves `/metrics` on its own HTTP address.
    pub metrics_addr: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
            log_dir: None,
            otlp_endpoint: None,
            service_name: None,
            metrics_addr: None,
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` if given, then `RESTOREFLOW__*` variables from `env`,
    /// and validates the result. Pass `std::env::vars()` in binaries and a map in tests.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&Settings::default())?);
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("synthetic_data.font_dirs")
                .with_list_parse_key("gateway.api_keys")
                .with_list_parse_key("gateway.public_read")
                .with_list_parse_key("trainer.on_demand_devices")
                .try_parsing(true)
                .source(Some(env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks cross-field rules that types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        for (name, addr) in [
            ("gateway.http_addr", &self.gateway.http_addr),
            ("synthetic_data.grpc_addr", &self.synthetic_data.grpc_addr),
            ("model_registry.grpc_addr", &self.model_registry.grpc_addr),
            ("trainer.grpc_addr", &self.trainer.grpc_addr),
            ("report.grpc_addr", &self.report.grpc_addr),
        ] {
            if addr.parse::<SocketAddr>().is_err() {
                return invalid(format!("{name} must be host:port, got {addr:?}"));
            }
        }
        for (name, url) in [
            (
                "gateway.synthetic_data_url",
                &self.gateway.synthetic_data_url,
            ),
            (
                "gateway.model_registry_url",
                &self.gateway.model_registry_url,
            ),
            ("gateway.trainer_url", &self.gateway.trainer_url),
            ("gateway.report_url", &self.gateway.report_url),
            (
                "trainer.model_registry_url",
                &self.trainer.model_registry_url,
            ),
            (
                "trainer.synthetic_data_url",
                &self.trainer.synthetic_data_url,
            ),
            ("report.trainer_url", &self.report.trainer_url),
            ("report.model_registry_url", &self.report.model_registry_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid(format!(
                    "{name} must be an http:// or https:// URL, got {url:?}"
                ));
            }
        }
        if let Some(addr) = &self.telemetry.metrics_addr
            && addr.parse::<SocketAddr>().is_err()
        {
            return invalid(format!(
                "telemetry.metrics_addr must be host:port, got {addr:?}"
            ));
        }
        if let Some(url) = &self.telemetry.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(format!(
                "telemetry.otlp_endpoint must be an http:// or https:// URL (OTLP/gRPC, usually port 4317), got {url:?}"
            ));
        }
        let ttl = self.gateway.presign_ttl_secs;
        if ttl == 0 || ttl > 7 * 24 * 3600 {
            return invalid(
                "gateway.presign_ttl_secs must be between 1 and 604800 (7 days)".into(),
            );
        }
        if self.trainer.model_cache_size == 0 {
            return invalid("trainer.model_cache_size must be at least 1".into());
        }
        if self.gateway.max_restore_pixels == 0 {
            return invalid("gateway.max_restore_pixels must be positive".into());
        }
        if self.gateway.max_upload_bytes == 0 || self.gateway.max_json_bytes == 0 {
            return invalid("gateway body limits must be positive".into());
        }
        if self.database.timeout_secs == 0 || self.database.statement_timeout_secs == 0 {
            return invalid(
                "database.timeout_secs and database.statement_timeout_secs must be positive".into(),
            );
        }
        if self.trainer.ocr_timeout_secs == 0 {
            return invalid("trainer.ocr_timeout_secs must be positive".into());
        }
        if self.grpc.timeout_secs == 0 || self.grpc.connect_timeout_secs == 0 {
            return invalid(
                "grpc.timeout_secs and grpc.connect_timeout_secs must be positive".into(),
            );
        }
        if self.gateway.request_timeout_secs == 0 {
            return invalid("gateway.request_timeout_secs must be positive".into());
        }
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return invalid("database.url must start with sqlite: or postgres://".into());
        }
        if self.storage.backend == StorageBackend::S3 {
            if self.storage.s3_access_key_id.is_empty()
                || self.storage.s3_secret_access_key.expose().is_empty()
            {
                return invalid("storage.s3_access_key_id and s3_secret_access_key are required for the s3 backend".into());
            }
            if self.storage.multipart_part_bytes < 5 * 1024 * 1024 {
                return invalid(
                    "storage.multipart_part_bytes must be at least 5 MiB (S3 minimum)".into(),
                );
            }
        }
        if !self
            .storage
            .bucket_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return invalid("storage.bucket_prefix may hold only a-z, 0-9 and '-'".into());
        }
        if self.bus.prefetch == 0 {
            return invalid("bus.prefetch must be at least 1".into());
        }
        if self.jobs.heartbeat_secs == 0 || self.jobs.heartbeat_secs * 2 > self.jobs.lease_secs {
            return invalid(
                "jobs.heartbeat_secs must be positive and at most half of jobs.lease_secs".into(),
            );
        }
        if let Some(key) = &self.gateway.api_key
            && let Err(why) = keys::check_plain_key(key.expose())
        {
            return invalid(format!("gateway.api_key is refused: {why}"));
        }
        if let Some(token) = &self.grpc.token
            && let Err(why) = keys::check_plain_key(token.expose())
        {
            return invalid(format!("grpc.token is refused: {why}"));
        }
        let mut names = std::collections::HashSet::new();
        for entry in &self.gateway.api_keys {
            let key = keys::KeyEntry::parse(entry)
                .map_err(|why| ConfigError::Invalid(format!("gateway.api_keys: {why}")))?;
            if !names.insert(key.name.clone()) {
                return invalid(format!(
                    "gateway.api_keys: the name {:?} is used twice",
                    key.name
                ));
            }
        }
        for route in &self.gateway.public_read {
            if !HARMLESS_ROUTES.contains(&route.as_str()) {
                return invalid(format!(
                    "gateway.public_read may list only {}, got {route:?}",
                    HARMLESS_ROUTES.join(", ")
                ));
            }
        }
        if self.jobs.max_attempts == 0 {
            return invalid("jobs.max_attempts must be at least 1".into());
        }
        if !matches!(self.trainer.device.as_str(), "cpu" | "cuda") {
            return invalid(format!(
                "trainer.device must be cpu or cuda, got {:?}",
                self.trainer.device
            ));
        }
        if let Some(bad) = self
            .trainer
            .on_demand_devices
            .iter()
            .find(|d| !crate::devices::is_class(d))
        {
            return invalid(format!(
                "trainer.on_demand_devices may list only cpu and cuda, got {bad:?}"
            ));
        }
        if self.trainer.cache_pages == 0 {
            return invalid("trainer.cache_pages must be positive".into());
        }
        if self.synthetic_data.max_images == 0 {
            return invalid("synthetic_data.max_images must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.gateway.http_addr, "127.0.0.1:8000");
        assert_eq!(s.storage.backend, StorageBackend::Local);
        assert_eq!(s.bus.backend, BusBackend::Memory);
        assert_eq!(s.model_registry.grpc_addr, "127.0.0.1:50052");
        assert_eq!(s.gateway.model_registry_url, "http://127.0.0.1:50052");
        assert_eq!(s.trainer.grpc_addr, "127.0.0.1:50053");
        assert_eq!(s.gateway.trainer_url, "http://127.0.0.1:50053");
        assert_eq!(s.trainer.device, "cpu");
    }

    #[test]
    fn trainer_device_is_checked() {
        let err = Settings::load(None, env(&[("RESTOREFLOW__TRAINER__DEVICE", "tpu")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("trainer.device"), "{err}");
        let s = Settings::load(None, env(&[("RESTOREFLOW__TRAINER__DEVICE", "cuda")])).unwrap();
        assert_eq!(s.trainer.device, "cuda");
    }

    #[test]
    fn on_demand_devices_are_a_checked_list() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.trainer.on_demand_devices, vec!["cpu".to_string()]);
        let s = Settings::load(
            None,
            env(&[("RESTOREFLOW__TRAINER__ON_DEMAND_DEVICES", "cpu,cuda")]),
        )
        .unwrap();
        assert_eq!(s.trainer.on_demand_devices, vec!["cpu", "cuda"]);
        let err = Settings::load(
            None,
            env(&[("RESTOREFLOW__TRAINER__ON_DEMAND_DEVICES", "cpu,gpu")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("on_demand_devices"), "{err}");
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rf.toml");
        std::fs::write(
            &file,
            "[gateway]\nhttp_addr = \"0.0.0.0:9000\"\nmax_upload_bytes = 10\n[bus]\nbackend = \"amqp\"\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&file),
            env(&[
                ("RESTOREFLOW__GATEWAY__MAX_UPLOAD_BYTES", "2048"),
                ("RESTOREFLOW__STORAGE__BUCKET_PREFIX", "t1-"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.gateway.http_addr, "0.0.0.0:9000");
        assert_eq!(s.gateway.max_upload_bytes, 2048);
        assert_eq!(s.bus.backend, BusBackend::Amqp);
        assert_eq!(s.storage.bucket_prefix, "t1-");
    }

    #[test]
    fn invalid_values_are_rejected_with_the_key_name() {
        let err = Settings::load(None, env(&[("RESTOREFLOW__GATEWAY__HTTP_ADDR", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway.http_addr"), "{err}");
        let err = Settings::load(None, env(&[("RESTOREFLOW__STORAGE__BACKEND", "s3")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3_access_key_id"), "{err}");
        assert!(Settings::load(None, env(&[("RESTOREFLOW__BUS__PREFETCH", "lots")])).is_err());
        let err = Settings::load(
            None,
            env(&[("RESTOREFLOW__MODEL_REGISTRY__GRPC_ADDR", "registry")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("model_registry.grpc_addr"), "{err}");
        let err = Settings::load(
            None,
            env(&[(
                "RESTOREFLOW__GATEWAY__MODEL_REGISTRY_URL",
                "127.0.0.1:50052",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gateway.model_registry_url"), "{err}");
        // The clients between services are checked the same way.
        for (var, name) in [
            (
                "RESTOREFLOW__TRAINER__SYNTHETIC_DATA_URL",
                "trainer.synthetic_data_url",
            ),
            ("RESTOREFLOW__REPORT__TRAINER_URL", "report.trainer_url"),
            (
                "RESTOREFLOW__REPORT__MODEL_REGISTRY_URL",
                "report.model_registry_url",
            ),
        ] {
            let err = Settings::load(None, env(&[(var, "trainer:50053")]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn keys_and_public_routes_are_checked_at_start_up() {
        for (k, v, needle) in [
            ("RESTOREFLOW__GATEWAY__API_KEY", "", "gateway.api_key"),
            ("RESTOREFLOW__GATEWAY__API_KEY", "short-key", "at least 16"),
            (
                "RESTOREFLOW__GATEWAY__API_KEYS",
                "read:ci:nothex",
                "gateway.api_keys",
            ),
            (
                "RESTOREFLOW__GATEWAY__PUBLIC_READ",
                "/health,/files",
                "public_read",
            ),
            ("RESTOREFLOW__JOBS__MAX_ATTEMPTS", "0", "max_attempts"),
        ] {
            let err = Settings::load(None, env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{k}={v}: {err}");
        }
        let a = keys::KeyEntry {
            scope: keys::KeyScope::Read,
            name: "grafana".into(),
            sha256: keys::hash_key("a-read-only-key-for-grafana"),
        };
        let b = keys::KeyEntry {
            scope: keys::KeyScope::Admin,
            name: "ci".into(),
            sha256: keys::hash_key("an-admin-key-for-ci-jobs"),
        };
        let list = format!("{},{}", a.to_config(), b.to_config());
        let s = Settings::load(
            None,
            env(&[
                ("RESTOREFLOW__GATEWAY__API_KEYS", &list),
                ("RESTOREFLOW__GATEWAY__PUBLIC_READ", "/health,/metrics"),
            ]),
        )
        .unwrap();
        assert_eq!(s.gateway.api_keys, [a.to_config(), b.to_config()]);
        assert_eq!(s.gateway.public_read, ["/health", "/metrics"]);
        let dup = format!("{},{}", a.to_config(), a.to_config());
        let err = Settings::load(None, env(&[("RESTOREFLOW__GATEWAY__API_KEYS", &dup)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("used twice"), "{err}");
        assert_eq!(Settings::default().gateway.public_read, DEFAULT_PUBLIC_READ);
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load(
            None,
            env(&[("RESTOREFLOW__GATEWAY__API_KEY", "very-secret-key-value")]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret-key-value"));
        assert_eq!(s.gateway.api_key.unwrap().expose(), "very-secret-key-value");
    }
}
