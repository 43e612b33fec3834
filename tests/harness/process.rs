//! A trainer in its own process, configured only through the environment
//! (`RESTOREFLOW__SECTION__KEY`), so a test can `kill -9` it mid-run.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use restoreflow_core::Settings;
use restoreflow_core::config::{BusBackend, StorageBackend};

/// The environment that configures a stand-alone trainer like `settings`
/// (real backends only: PostgreSQL, RabbitMQ, S3). The gRPC port is free-picked.
pub fn trainer_env(settings: &Settings) -> Vec<(String, String)> {
    assert_eq!(
        settings.bus.backend,
        BusBackend::Amqp,
        "a trainer process needs RabbitMQ"
    );
    assert_eq!(
        settings.storage.backend,
        StorageBackend::S3,
        "a trainer process needs S3"
    );
    let st = &settings.storage;
    let pairs = [
        ("DATABASE__URL", settings.database.url.expose().to_string()),
        (
            "DATABASE__MAX_CONNECTIONS",
            settings.database.max_connections.to_string(),
        ),
        ("BUS__BACKEND", "amqp".into()),
        ("BUS__URL", settings.bus.url.expose().to_string()),
        ("BUS__QUEUE_PREFIX", settings.bus.queue_prefix.clone()),
        ("STORAGE__BACKEND", "s3".into()),
        ("STORAGE__BUCKET_PREFIX", st.bucket_prefix.clone()),
        ("STORAGE__S3_ENDPOINT", st.s3_endpoint.clone()),
        ("STORAGE__S3_REGION", st.s3_region.clone()),
        ("STORAGE__S3_ACCESS_KEY_ID", st.s3_access_key_id.clone()),
        (
            "STORAGE__S3_SECRET_ACCESS_KEY",
            st.s3_secret_access_key.expose().to_string(),
        ),
        (
            "STORAGE__MULTIPART_PART_BYTES",
            st.multipart_part_bytes.to_string(),
        ),
        ("TRAINER__GRPC_ADDR", "127.0.0.1:0".into()),
        (
            "TRAINER__MODEL_REGISTRY_URL",
            settings.trainer.model_registry_url.clone(),
        ),
        (
            "TRAINER__SYNTHETIC_DATA_URL",
            settings.trainer.synthetic_data_url.clone(),
        ),
        (
            "TRAINER__CACHE_PAGES",
            settings.trainer.cache_pages.to_string(),
        ),
        ("JOBS__LEASE_SECS", settings.jobs.lease_secs.to_string()),
        (
            "JOBS__HEARTBEAT_SECS",
            settings.jobs.heartbeat_secs.to_string(),
        ),
        (
            "JOBS__SWEEP_INTERVAL_SECS",
            settings.jobs.sweep_interval_secs.to_string(),
        ),
        ("JOBS__MAX_ATTEMPTS", settings.jobs.max_attempts.to_string()),
        (
            "JOBS__STORAGE_RETRY_SECS",
            settings.jobs.storage_retry_secs.to_string(),
        ),
        (
            "GRPC__TOKEN",
            settings
                .grpc
                .token
                .as_ref()
                .map(|t| t.expose().to_string())
                .unwrap_or_default(),
        ),
        ("TELEMETRY__FILTER", "warn".into()),
    ];
    pairs
        .into_iter()
        .map(|(k, v)| (format!("RESTOREFLOW__{k}"), v))
        .collect()
}

/// A running trainer process; killed (SIGKILL) when dropped.
pub struct TrainerProcess {
    child: Child,
}

impl TrainerProcess {
    /// Starts the trainer binary `bin` with `env` (see [`trainer_env`]) and
    /// nothing else from this process's `RESTOREFLOW__*` environment.
    pub fn spawn(bin: &Path, env: &[(String, String)]) -> TrainerProcess {
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RESTOREFLOW_")) {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        TrainerProcess { child }
    }

    /// Kills the process with SIGKILL (no shutdown, no cleanup) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the process (SIGSTOP): it holds its state and its lease
    /// expires, as when a host stalls or a container is paused.
    pub fn pause(&mut self) {
        self.signal("STOP");
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&mut self) {
        self.signal("CONT");
    }

    fn signal(&mut self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// The process's peak resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status is readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM in the status")
            * 1024
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TrainerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
