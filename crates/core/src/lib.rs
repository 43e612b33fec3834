//! Shared building blocks of every restoreflow service.
//!
//! - [`config`]: typed layered settings (defaults → file → `RESTOREFLOW__*` env).
//! - [`telemetry`] and [`shutdown`]: logging and the one shutdown signal.
//! - Three ports, each with a real and an embedded adapter:
//!   [`storage`] (S3 / local directory), [`db`] (PostgreSQL / SQLite via
//!   sea-orm, with migrations and the job repository) and [`bus`]
//!   (RabbitMQ / in-process).
//! - [`Backends`] connects all three from settings.
//!
//! Services depend on this crate and on `restoreflow-proto`, never on each other.

pub mod backends;
pub mod bus;
pub mod config;
pub mod db;
pub mod devices;
pub mod grpc;
pub mod jobs;
pub mod ledger;
pub mod messages;
pub mod metrics;
pub mod process;
pub mod shutdown;
pub mod storage;
pub mod telemetry;

pub use backends::{BackendError, Backends};
pub use config::Settings;
pub use restoreflow_proto::ErrorCode;
