//! The model-registry service.
//!
//! Serves `restoreflow.v1.ModelRegistryService` over gRPC (with health and
//! reflection). It versions model weights per layer (1 = classical
//! preprocessing parameters, 2 = Restormer weights): `RegisterModel` copies an
//! uploaded object (such as a checkpoint in `training-outputs/`) into
//! `models/layer_{L}/…_v{N}.safetensors`, hashing it on the way, writes a JSON
//! sidecar with every piece of metadata next to it and records a
//! `model_versions` row. Numbers are 1, 2, 3… per layer and never reused.
//! Aliases (`champion`, …) point at versions; an aliased version cannot be
//! deleted; deleting removes the objects together with the row. The registry
//! moves `latest` to each new version itself. `ApplyRetention` deletes all but
//! the newest K and the aliased versions; `PreviousVersion` compares a version
//! with the one before it.
//!
//! Run alone with `restoreflow serve model-registry`, or inside `restoreflow up`.

mod grpc;
pub mod naming;
mod repo;

use std::net::SocketAddr;

use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::{BackendError, Backends, Settings};
use restoreflow_proto::v1::model_registry_service_server::ModelRegistryServiceServer;
use tokio::net::TcpListener;

pub use grpc::RegistryGrpc;

/// Errors while building or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A backend could not be connected.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Binding the listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] restoreflow_core::grpc::ServeError),
}

/// A built, bound, not yet running model-registry service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// The internal gRPC token (`grpc.token`) calls must carry.
    token: Option<restoreflow_core::config::Secret>,
    grpc: RegistryGrpc,
}

impl Application {
    /// Connects backends from settings, then [`Application::build_with`].
    pub async fn build(settings: Settings) -> Result<Self, ServiceError> {
        let backends = Backends::connect(&settings).await?;
        Self::build_with(settings, backends).await
    }

    /// Builds on already connected backends (shared in the embedded mode) and
    /// binds the gRPC port (port 0 picks a free one).
    pub async fn build_with(settings: Settings, backends: Backends) -> Result<Self, ServiceError> {
        let token = settings.grpc.token.clone();
        let addr = settings.model_registry.grpc_addr.clone();
        let bind_err = |source| ServiceError::Bind {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        Ok(Self {
            listener,
            token,
            addr: local,
            grpc: RegistryGrpc { backends },
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves gRPC until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        restoreflow_core::grpc::serve(
            self.listener,
            ModelRegistryServiceServer::new(self.grpc),
            self.token.as_ref(),
            shutdown,
        )
        .await?;
        Ok(())
    }
}
