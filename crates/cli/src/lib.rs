//! The `restoreflow` command.
//!
//! - `restoreflow up [--data-dir DIR]`: every service in one process on the
//!   embedded defaults (SQLite, a local object store and logs under the data
//!   dir, an in-process bus). Prints where things are and the API key.
//! - `restoreflow serve <service>`: one service against the configured
//!   backends (PostgreSQL, RabbitMQ, S3), configured by file and environment.
//! - `restoreflow train …` / `restoreflow models …`: internal tools that talk
//!   gRPC to the trainer and the model registry (see [`tools`]).
//! - `restoreflow verify`, `restoreflow demo` and `restoreflow eval register
//!   DIR --name NAME`: drive a running deployment through the REST gateway
//!   (the last uploads a folder of pairs and registers it for evaluation).

mod embedded;
pub mod tools;

pub use embedded::{
    Embedded, EmbeddedOptions, SERVICES_FILE, UpServices, embedded_settings, load_or_create_api_key,
};
