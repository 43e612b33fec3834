//! Test harness: starts the real services in-process on port 0 against either
//! the embedded backends or the real ones (PostgreSQL, RabbitMQ, S3), each test
//! isolated in its own database, queue prefix and bucket prefix.
//!
//! Real-backend endpoints come from the environment (defaults match
//! `scripts/test.sh`): `RESTOREFLOW_TEST_PG_URL`, `RESTOREFLOW_TEST_AMQP_URL`,
//! `RESTOREFLOW_TEST_S3_ENDPOINT`, `RESTOREFLOW_TEST_S3_ACCESS_KEY`,
//! `RESTOREFLOW_TEST_S3_SECRET_KEY`.

mod otlp;
mod process;
mod proxy;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use restoreflow::{Embedded, EmbeddedOptions};
use restoreflow_core::config::{BusBackend, Secret, StorageBackend};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::{ObjectStore, S3Store};
use restoreflow_core::{Backends, Settings};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;

pub use otlp::{Collector, ReceivedSpan};
pub use process::{TrainerProcess, trainer_env};
pub use proxy::Proxy;

/// Which backends a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SQLite, local directory, in-process bus (what `restoreflow up` uses).
    Embedded,
    /// PostgreSQL, RabbitMQ, S3.
    Real,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

/// Default test S3 credentials, the ones `scripts/garage.sh` provisions.
pub const TEST_S3_ACCESS_KEY: &str = "GK5e7a1f0c9b2d4e6f8a0b1c2d";
/// Secret of [`TEST_S3_ACCESS_KEY`].
pub const TEST_S3_SECRET_KEY: &str =
    "9c1f5e2a7b3d8c4e0f6a1b7c2d8e3f9a4b0c5d1e6f2a7b3c8d4e9f0a5b1c6d2e";

/// A short unique token for database, queue and bucket names.
/// Whether tesseract is on the PATH for an OCR test; without it the test
/// fails unless `RESTOREFLOW_SKIP_OCR` says to skip it.
pub fn tesseract_or_skip() -> bool {
    if restoreflow_trainer::ocr_available() {
        return true;
    }
    assert!(
        std::env::var_os("RESTOREFLOW_SKIP_OCR").is_some(),
        "no tesseract on the PATH: run the tests with scripts/test.sh (it installs it), or set RESTOREFLOW_SKIP_OCR=1"
    );
    false
}

pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// Settings pointing at the real backends, isolated by `tag`. Creates the database.
pub async fn real_settings(tag: &str) -> Settings {
    let mut s = Settings::default();
    s.database.url = Secret::new(create_database(&format!("rf_test_{tag}")).await);
    s.database.max_connections = 5;
    s.bus.backend = BusBackend::Amqp;
    s.bus.url = Secret::new(env_or(
        "RESTOREFLOW_TEST_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    ));
    s.bus.queue_prefix = format!("t{tag}.");
    s.storage = s3_settings(tag);
    s
}

/// Creates PostgreSQL database `db_name` on the test server; its URL.
pub async fn create_database(db_name: &str) -> String {
    let admin = env_or(
        "RESTOREFLOW_TEST_PG_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let conn = Database::connect(&admin)
        .await
        .expect("PostgreSQL is reachable");
    conn.execute(Statement::from_string(
        conn.get_database_backend(),
        format!("CREATE DATABASE {db_name}"),
    ))
    .await
    .expect("create test database");
    conn.close().await.ok();
    database_url(db_name)
}

/// The URL of database `db_name` on the test PostgreSQL server.
pub fn database_url(db_name: &str) -> String {
    let admin = env_or(
        "RESTOREFLOW_TEST_PG_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{db_name}")
}

/// `settings`, on a database of `service`'s own when `own` (see
/// [`RealOptions::database_per_service`]).
async fn database_of(settings: &Settings, tag: &str, service: &str, own: bool) -> Settings {
    let mut s = settings.clone();
    if own {
        s.database.url = Secret::new(create_database(&format!("rf_test_{tag}_{service}")).await);
    }
    s
}

/// Storage settings for the test S3 server with bucket prefix `t{tag}-`.
pub fn s3_settings(tag: &str) -> restoreflow_core::config::StorageSettings {
    let mut st = restoreflow_core::config::StorageSettings {
        backend: StorageBackend::S3,
        bucket_prefix: format!("t{tag}-"),
        s3_endpoint: env_or("RESTOREFLOW_TEST_S3_ENDPOINT", "http://127.0.0.1:3900"),
        s3_access_key_id: env_or("RESTOREFLOW_TEST_S3_ACCESS_KEY", TEST_S3_ACCESS_KEY),
        s3_secret_access_key: Secret::new(env_or(
            "RESTOREFLOW_TEST_S3_SECRET_KEY",
            TEST_S3_SECRET_KEY,
        )),
        ..Default::default()
    };
    st.multipart_part_bytes = 5 * 1024 * 1024;
    st
}

/// Fast job polling for tests.
/// The internal gRPC token of every test system.
pub const TEST_GRPC_TOKEN: &str = "test-internal-grpc-token";

/// Installs the tracing subscriber once per test process, as every binary
/// does at start: spans then carry trace context across the services, as in
/// production. Logs stay off (the tests read results, not log lines).
fn observe() {
    static GUARD: std::sync::OnceLock<restoreflow_core::telemetry::TelemetryGuard> =
        std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        let settings = restoreflow_core::config::TelemetrySettings {
            filter: "off".into(),
            ..Default::default()
        };
        restoreflow_core::telemetry::init(&settings, "restoreflow-tests")
    });
}

fn tune(s: &mut Settings) {
    observe();
    s.grpc.token = Some(Secret::new(TEST_GRPC_TOKEN));
    // Tests fire many requests with one key; the limits have their own test.
    s.gateway.rate_per_minute = 100_000;
    s.gateway.max_concurrent = 1_000;
    s.jobs.sweep_interval_secs = 1;
    s.jobs.heartbeat_secs = 1;
    s.jobs.lease_secs = 10;
    s.jobs.storage_retry_secs = 10;
    s.synthetic_data.grpc_addr = "127.0.0.1:0".into();
    s.model_registry.grpc_addr = "127.0.0.1:0".into();
    s.trainer.grpc_addr = "127.0.0.1:0".into();
    s.report.grpc_addr = "127.0.0.1:0".into();
    s.trainer.cache_pages = 8;
    s.gateway.http_addr = "127.0.0.1:0".into();
    s.gateway.max_upload_bytes = 2 * 1024 * 1024;
    s.synthetic_data.max_images = 500;
}

/// Changes to the standard real-backend system.
pub struct RealOptions {
    /// The AMQP URL every service uses (e.g. through a [`Proxy`]).
    pub amqp_url: Option<String>,
    /// The S3 endpoint the trainers use (e.g. through a [`Proxy`]).
    pub trainer_s3_endpoint: Option<String>,
    /// Where every service reaches PostgreSQL (`host:port`, e.g. a [`Proxy`]).
    pub database_via: Option<std::net::SocketAddr>,
    /// In-process training workers. The first trainer serves the gateway's
    /// gRPC calls either way; with 0 it runs no worker (jobs wait for a
    /// worker started otherwise, e.g. a [`TrainerProcess`]).
    pub trainers: usize,
    /// Last word on the settings of every service.
    pub configure: Option<fn(&mut Settings)>,
    /// Every service on a PostgreSQL database of its own
    /// (`rf_test_{tag}_{service}`), as a deployment that splits them would
    /// run: what one service needs of another's records must come over
    /// gRPC. [`TestApp::backends`] is then the gateway's.
    pub database_per_service: bool,
}

impl Default for RealOptions {
    fn default() -> Self {
        Self {
            amqp_url: None,
            trainer_s3_endpoint: None,
            database_via: None,
            trainers: 1,
            configure: None,
            database_per_service: false,
        }
    }
}

/// A running system under test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin key (every route but the public ones needs a key).
    pub api_key: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// An independent connection to the same backends, for assertions.
    pub backends: Backends,
    /// gRPC address of the synthetic-data service.
    pub synthetic_grpc: String,
    /// gRPC address of the model-registry service (`http://…`).
    pub registry_grpc: String,
    /// gRPC address of the trainer service (`http://…`).
    pub trainer_grpc: String,
    /// The bus the services use (in-process on the embedded backends).
    pub bus: Arc<dyn restoreflow_core::bus::Bus>,
    /// Which backends.
    pub kind: Kind,
    /// Settings the services run with.
    pub settings: Settings,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Keeps the embedded data dir alive.
    pub dir: Option<Arc<tempfile::TempDir>>,
}

impl TestApp {
    /// Starts every service on `kind` backends.
    pub async fn spawn(kind: Kind) -> TestApp {
        match kind {
            Kind::Embedded => {
                let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
                Self::spawn_embedded(dir).await
            }
            Kind::Real => Self::spawn_real(&unique()).await,
        }
    }

    /// [`TestApp::spawn`] with the last word on the settings of every service.
    pub async fn spawn_with(kind: Kind, configure: fn(&mut Settings)) -> TestApp {
        match kind {
            Kind::Embedded => {
                let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
                Self::spawn_embedded_with(dir, Some(configure)).await
            }
            Kind::Real => {
                Self::spawn_real_with(
                    &unique(),
                    RealOptions {
                        configure: Some(configure),
                        ..RealOptions::default()
                    },
                )
                .await
            }
        }
    }

    /// Starts the embedded system on an existing data dir (restart tests).
    pub async fn spawn_embedded(dir: Arc<tempfile::TempDir>) -> TestApp {
        Self::spawn_embedded_with(dir, None).await
    }

    async fn spawn_embedded_with(
        dir: Arc<tempfile::TempDir>,
        configure: Option<fn(&mut Settings)>,
    ) -> TestApp {
        let mut base = Settings::default();
        tune(&mut base);
        if let Some(configure) = configure {
            configure(&mut base);
        }
        let app = Embedded::build(
            base,
            EmbeddedOptions {
                data_dir: dir.path().to_path_buf(),
                http_addr: Some("127.0.0.1:0".into()),
            },
        )
        .await
        .expect("embedded system builds");
        let base_url = format!("http://{}", app.http_addr());
        let api_key = app.api_key.clone();
        let settings = app.settings.clone();
        // The embedded store is a directory; a second adapter on it sees the same objects.
        let backends = Backends::connect(&settings).await.expect("backends");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let synthetic_grpc = settings.gateway.synthetic_data_url.clone();
        let registry_grpc = settings.gateway.model_registry_url.clone();
        let trainer_grpc = settings.gateway.trainer_url.clone();
        let bus = app.backends.bus.clone();
        let task = tokio::spawn(async move {
            app.run_until_stopped(token)
                .await
                .expect("embedded system runs");
        });
        let t = TestApp {
            base: base_url,
            http: client_with_key(&api_key),
            api_key,
            backends,
            synthetic_grpc,
            registry_grpc,
            trainer_grpc,
            bus,
            kind: Kind::Embedded,
            settings,
            shutdown,
            tasks: vec![task],
            dir: Some(dir),
        };
        t.wait_healthy().await;
        t
    }

    /// Starts the services as separate applications on the real backends.
    pub async fn spawn_real(tag: &str) -> TestApp {
        Self::spawn_real_with(tag, RealOptions::default()).await
    }

    /// [`TestApp::spawn_real`] with changes to the backends, trainers or settings.
    pub async fn spawn_real_with(tag: &str, options: RealOptions) -> TestApp {
        let mut settings = real_settings(tag).await;
        tune(&mut settings);
        if let Some(url) = &options.amqp_url {
            settings.bus.url = Secret::new(url.clone());
        }
        if let Some(addr) = options.database_via {
            let url = settings.database.url.expose().to_string();
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            let host = rest.split('/').next().unwrap_or(rest);
            settings.database.url = Secret::new(url.replacen(host, &addr.to_string(), 1));
        }
        if let Some(configure) = options.configure {
            configure(&mut settings);
        }
        settings.gateway.api_key = Some(Secret::new(format!("test-key-{tag}")));
        let shutdown = CancellationToken::new();
        let own = options.database_per_service;
        let synth = restoreflow_synthetic_data::Application::build(
            database_of(&settings, tag, "synthetic", own).await,
        )
        .await
        .expect("synthetic-data builds on real backends");
        settings.gateway.synthetic_data_url = format!("http://{}", synth.grpc_addr());
        settings.trainer.synthetic_data_url = settings.gateway.synthetic_data_url.clone();
        let registry = restoreflow_registry::Application::build(
            database_of(&settings, tag, "registry", own).await,
        )
        .await
        .expect("model-registry builds on real backends");
        settings.gateway.model_registry_url = format!("http://{}", registry.grpc_addr());
        settings.trainer.model_registry_url = settings.gateway.model_registry_url.clone();
        settings.report.model_registry_url = settings.gateway.model_registry_url.clone();
        let mut trainer_settings = database_of(&settings, tag, "trainer", own).await;
        if let Some(endpoint) = &options.trainer_s3_endpoint {
            trainer_settings.storage.s3_endpoint = endpoint.clone();
        }
        // The first trainer serves the gateway; the others only run workers.
        let mut trainers = Vec::new();
        for i in 0..options.trainers.max(1) {
            let mut s = trainer_settings.clone();
            s.trainer.worker = i < options.trainers;
            trainers.push(
                restoreflow_trainer::Application::build(s)
                    .await
                    .expect("trainer builds on real backends"),
            );
        }
        settings.gateway.trainer_url = format!("http://{}", trainers[0].grpc_addr());
        settings.report.trainer_url = settings.gateway.trainer_url.clone();
        let report = restoreflow_report::Application::build(
            database_of(&settings, tag, "report", own).await,
        )
        .await
        .expect("report builds on real backends");
        settings.gateway.report_url = format!("http://{}", report.grpc_addr());
        if own {
            settings = database_of(&settings, tag, "gateway", own).await;
        }
        let gateway = restoreflow_gateway::Application::build(settings.clone())
            .await
            .expect("gateway builds on real backends");
        let base = format!("http://{}", gateway.http_addr());
        let t1 = shutdown.clone();
        let t2 = shutdown.clone();
        let t3 = shutdown.clone();
        let t4 = shutdown.clone();
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = trainers
            .into_iter()
            .map(|trainer| {
                let t = t4.clone();
                tokio::spawn(
                    async move { trainer.run_until_stopped(t).await.expect("trainer runs") },
                )
            })
            .collect();
        let t5 = shutdown.clone();
        tasks.extend([
            tokio::spawn(async move { report.run_until_stopped(t5).await.expect("report runs") }),
            tokio::spawn(async move {
                synth
                    .run_until_stopped(t1)
                    .await
                    .expect("synthetic-data runs")
            }),
            tokio::spawn(async move { gateway.run_until_stopped(t2).await.expect("gateway runs") }),
            tokio::spawn(async move {
                registry
                    .run_until_stopped(t3)
                    .await
                    .expect("model-registry runs")
            }),
        ]);
        let backends = Backends::connect(&settings).await.expect("backends");
        let bus = backends.bus.clone();
        let t = TestApp {
            base,
            api_key: format!("test-key-{tag}"),
            http: client_with_key(&format!("test-key-{tag}")),
            backends,
            synthetic_grpc: settings.gateway.synthetic_data_url.clone(),
            registry_grpc: settings.gateway.model_registry_url.clone(),
            trainer_grpc: settings.gateway.trainer_url.clone(),
            bus,
            kind: Kind::Real,
            settings,
            shutdown,
            tasks,
            dir: None,
        };
        t.wait_healthy().await;
        t
    }

    /// Polls `/health` until it is 200 (readiness, not a fixed sleep).
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/health")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "system did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every service and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET returning status and JSON.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Authenticated POST of JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("x-api-key", &self.api_key)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Authenticated PUT of raw bytes (an upload to `/files/...`).
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .put(self.url(path))
            .header("x-api-key", &self.api_key)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Authenticated PUT of JSON.
    pub async fn put_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .put(self.url(path))
            .header("x-api-key", &self.api_key)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Authenticated DELETE.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(self.url(path))
            .header("x-api-key", &self.api_key)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A gRPC client of the model-registry service.
    pub async fn registry(
        &self,
    ) -> restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient<
        restoreflow_core::grpc::AuthChannel,
    > {
        restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient::new(
            self.grpc_channel(&self.registry_grpc).await,
        )
    }

    /// A channel to one of the gRPC services, carrying the internal token.
    pub async fn grpc_channel(&self, url: &str) -> restoreflow_core::grpc::AuthChannel {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .expect("grpc url")
            .connect()
            .await
            .expect("grpc service reachable");
        restoreflow_core::grpc::authed(channel, self.settings.grpc.token.as_ref())
    }

    /// GET raw bytes.
    pub async fn get_bytes(&self, path: &str) -> (u16, bytes::Bytes) {
        let r = self.http.get(self.url(path)).send().await.expect("request");
        (r.status().as_u16(), r.bytes().await.expect("body"))
    }

    /// Starts a generation job and returns its id.
    pub async fn generate(&self, body: Value) -> String {
        let (status, v) = self.post_json("/synthetic/generate", &body).await;
        assert_eq!(status, 202, "generate: {v}");
        v["job_id"].as_str().expect("job_id").to_string()
    }

    /// Polls a job until it reaches a terminal status.
    pub async fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, job) = self.get_json(&format!("/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if matches!(
                job["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every key under a bucket prefix via the paginated HTTP listing.
    pub async fn list_keys(&self, bucket: &str, prefix: &str, page: u32) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("/files/{bucket}?prefix={prefix}&page_size={page}");
            if let Some(t) = &token {
                url.push_str(&format!("&page_token={}", urlencode(t)));
            }
            let (status, v) = self.get_json(&url).await;
            assert_eq!(status, 200, "{v}");
            for o in v["objects"].as_array().expect("objects") {
                keys.push(o["key"].as_str().expect("key").to_string());
            }
            match v["next_page_token"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => return keys,
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An S3 store on the test server, independent of any running service.
pub fn s3_store(tag: &str) -> S3Store {
    S3Store::new(&s3_settings(tag))
}

/// sha256 hex of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Whether a path holds a file (for embedded-store assertions).
pub fn exists(p: &Path) -> bool {
    p.is_file()
}

/// Store trait object helper.
pub fn store(app: &TestApp) -> &dyn ObjectStore {
    app.backends.store.as_ref()
}

/// The standard gRPC health client, re-exported for tests.
pub mod grpc_health {
    pub use tonic_health::pb::HealthCheckRequest;
    pub use tonic_health::pb::health_client::HealthClient;
}

/// An HTTP client that never reuses a connection a server may have closed
/// after refusing an oversized body.
/// An HTTP client that sends `key` on every request (a request that sets
/// its own `X-API-Key` overrides it). Every gateway route but the public ones
/// needs a key, reads included.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-api-key",
        reqwest::header::HeaderValue::from_str(key).expect("a key is a header value"),
    );
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// An HTTP client without a key.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client")
}
