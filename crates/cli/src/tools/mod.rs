//! `restoreflow train …` and `restoreflow models …`: internal tools that talk
//! gRPC to the trainer and the model registry; `restoreflow verify`,
//! `restoreflow demo` and `restoreflow eval register` drive a running
//! deployment through the REST gateway.
//!
//! Endpoints come from `--trainer` / `--registry`, else from the configured
//! `gateway.trainer_url` / `gateway.model_registry_url` (file or
//! `RESTOREFLOW__GATEWAY__…` environment). Output is a human-readable table by
//! default and JSON with `--json`. A failed call prints the service's message
//! and exits non-zero: 2 for invalid arguments, 1 otherwise.

mod demo;
mod eval;
mod folder;
mod models;
mod rest;
mod table;
mod train;
mod verify;

use std::process::ExitCode;

use restoreflow_core::Settings;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_proto::{prost_types, v1};

pub use demo::{DemoArgs, run_demo};
pub use eval::{EvalArgs, RegisteredDataset, dataset_prefix, register_folder, run_eval};
pub use folder::{IMAGE_EXTENSIONS, Layout, LocalPair, PairFolder, scan_folder};
pub use models::{ModelsArgs, run_models};
pub use rest::{Gateway, GatewayArgs};
pub use train::{TrainArgs, run_train};
pub use verify::{VerifyArgs, run_verify};

/// Exit code of a call the service refused as invalid.
pub const EXIT_INVALID: u8 = 2;
/// Exit code of `train watch` when the job was cancelled (failed jobs exit 1).
pub const EXIT_CANCELLED: u8 = 3;

/// Why a tool command failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The service answered with an error status.
    #[error("{}", .0.message())]
    Rpc(#[from] tonic::Status),
    /// The service could not be reached.
    #[error("cannot reach the {service} at {url}: {reason}")]
    Connect {
        /// Which service.
        service: &'static str,
        /// Its endpoint.
        url: String,
        /// Cause.
        reason: String,
    },
    /// Local input the tool refuses (a folder that is not a set of pairs, a
    /// bad name); exits like an invalid argument.
    #[error("{0}")]
    Invalid(String),
    /// Anything else (files, object storage, unexpected answers).
    #[error("{0}")]
    Other(String),
}

impl ToolError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Rpc(s) if s.code() == tonic::Code::InvalidArgument => {
                ExitCode::from(EXIT_INVALID)
            }
            Self::Invalid(_) => ExitCode::from(EXIT_INVALID),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Where the `restoreflow up` this command talks to keeps its files.
const UP_DATA_DIR: &str = "data";

/// A service endpoint: the flag, else a configured value that is not the
/// built-in default, else what `restoreflow up` wrote to `./data/services.json`
/// (its gRPC ports are picked at start), else the default.
fn endpoint(
    flag: Option<&str>,
    configured: &str,
    default: &str,
    from_up: impl FnOnce(&crate::embedded::UpServices) -> String,
    data_dir: &std::path::Path,
) -> String {
    if let Some(f) = flag {
        return f.to_string();
    }
    if configured != default {
        return configured.to_string();
    }
    crate::embedded::UpServices::read(data_dir)
        .map(|u| from_up(&u))
        .unwrap_or_else(|| configured.to_string())
}

/// The internal gRPC token: `grpc.token` (`RESTOREFLOW__GRPC__TOKEN`), else
/// the one `restoreflow up` keeps in `./data/grpc-token`.
fn grpc_token(settings: &Settings) -> Option<restoreflow_core::config::Secret> {
    settings.grpc.token.clone().or_else(|| {
        std::fs::read_to_string(std::path::Path::new("data").join(crate::embedded::GRPC_TOKEN_FILE))
            .ok()
            .map(|t| restoreflow_core::config::Secret::new(t.trim()))
    })
}

/// Connects eagerly so an unreachable service fails with its address; every
/// call carries the internal token.
async fn connect(
    service: &'static str,
    url: &str,
    settings: &Settings,
) -> Result<AuthChannel, ToolError> {
    let err = |reason: String| ToolError::Connect {
        service,
        url: url.to_string(),
        reason,
    };
    let channel = restoreflow_core::grpc::connect(url, &settings.grpc)
        .await
        .map_err(err)?;
    Ok(restoreflow_core::grpc::authed(
        channel,
        grpc_token(settings).as_ref(),
    ))
}

/// `JOB_STATUS_RUNNING` → `running`.
fn job_status(status: i32) -> String {
    v1::JobStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("JOB_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({status})"))
}

fn time(t: Option<&prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    restoreflow_core::db::from_timestamp(t)
}

fn struct_json(s: Option<&prost_types::Struct>) -> serde_json::Value {
    s.map_or(serde_json::json!({}), restoreflow_proto::struct_to_json)
}

fn print_json(v: &serde_json::Value) {
    // A `Value` always serializes.
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_flags_config_then_what_up_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let d = "http://127.0.0.1:50053";
        let pick = |u: &crate::embedded::UpServices| u.trainer.clone();
        // Nothing written: the configured (default) value.
        assert_eq!(endpoint(None, d, d, pick, dir.path()), d);
        let up = crate::embedded::UpServices {
            gateway: "http://127.0.0.1:8000".into(),
            synthetic_data: "http://127.0.0.1:41001".into(),
            model_registry: "http://127.0.0.1:41002".into(),
            trainer: "http://127.0.0.1:41003".into(),
            report: "http://127.0.0.1:41004".into(),
        };
        std::fs::write(
            dir.path().join(crate::embedded::SERVICES_FILE),
            serde_json::to_vec(&up).unwrap(),
        )
        .unwrap();
        assert_eq!(endpoint(None, d, d, pick, dir.path()), up.trainer);
        // A configured address wins over the file, a flag over both.
        let set = "http://trainer:50053";
        assert_eq!(endpoint(None, set, d, pick, dir.path()), set);
        assert_eq!(
            endpoint(Some("http://x:1"), set, d, pick, dir.path()),
            "http://x:1"
        );
        // An unreadable file is ignored.
        std::fs::write(dir.path().join(crate::embedded::SERVICES_FILE), "{").unwrap();
        assert_eq!(endpoint(None, d, d, pick, dir.path()), d);
    }

    #[test]
    fn statuses_read_as_lowercase_words() {
        assert_eq!(job_status(v1::JobStatus::Running as i32), "running");
        assert_eq!(job_status(v1::JobStatus::Cancelled as i32), "cancelled");
        assert_eq!(job_status(99), "unknown(99)");
    }

    #[test]
    fn invalid_arguments_exit_with_two() {
        let invalid = ToolError::Rpc(tonic::Status::invalid_argument("num_epochs must be ≥ 1"));
        assert_eq!(invalid.exit_code(), ExitCode::from(EXIT_INVALID));
        assert_eq!(invalid.to_string(), "num_epochs must be ≥ 1");
        let missing = ToolError::Rpc(tonic::Status::not_found("version 9 of layer 2"));
        assert_eq!(missing.exit_code(), ExitCode::FAILURE);
    }
}
