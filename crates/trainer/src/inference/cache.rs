//! Model versions loaded for restoration and evaluation, kept in memory per
//! version and evicted least-recently-used. Concurrent requests for a version
//! that is not loaded yet share one load (single flight).

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::Device;
use lru::LruCache;
use restoreflow_classical::Layer1Params;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_core::storage::{Bucket, ObjectStore, get_bytes};
use restoreflow_proto::v1::{self, model_registry_service_client::ModelRegistryServiceClient};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::checkpoints::download_to;
use crate::model::RestormerNet;

/// Largest Layer 1 parameter document read.
const MAX_PARAMS_BYTES: u64 = 1 << 20;

/// Why a model could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No such version or alias.
    #[error("{0}")]
    NotFound(String),
    /// The reference is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Registry, storage or decoding failed.
    #[error("{0}")]
    Unavailable(String),
    /// The stored object is not what the registry says it is.
    #[error("{0}")]
    Corrupt(String),
}

impl ModelError {
    /// The same error, its message prefixed with the version it concerns.
    fn in_version(self, version: u32) -> Self {
        let at = |m: String| format!("version {version}: {m}");
        match self {
            Self::NotFound(m) => Self::NotFound(at(m)),
            Self::Invalid(m) => Self::Invalid(at(m)),
            Self::Unavailable(m) => Self::Unavailable(at(m)),
            Self::Corrupt(m) => Self::Corrupt(at(m)),
        }
    }
}

/// A loaded Layer 2 model.
pub struct Layer2Model {
    /// Registry version.
    pub version: u32,
    /// Preset name (`tiny`, `small`, `base`).
    pub preset: String,
    /// The network.
    pub net: RestormerNet,
    /// Where it runs.
    pub device: Device,
}

type Slot = Arc<OnceCell<Arc<Layer2Model>>>;

/// The LRU cache of Layer 2 models plus Layer 1 parameter lookups.
pub struct ModelCache {
    registry: ModelRegistryServiceClient<AuthChannel>,
    store: Arc<dyn ObjectStore>,
    device: Device,
    slots: Mutex<LruCache<u32, Slot>>,
    loads: AtomicU64,
}

impl ModelCache {
    /// The device class the cached models run on: `cuda` or `cpu`.
    pub fn device_class(&self) -> restoreflow_core::devices::DeviceClass {
        if self.device.is_cuda() {
            restoreflow_core::devices::DeviceClass::Cuda
        } else {
            restoreflow_core::devices::DeviceClass::Cpu
        }
    }

    /// A cache of at most `capacity` Layer 2 versions on `device`.
    pub fn new(
        registry: ModelRegistryServiceClient<AuthChannel>,
        store: Arc<dyn ObjectStore>,
        device: Device,
        capacity: usize,
    ) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            registry,
            store,
            device,
            slots: Mutex::new(LruCache::new(cap)),
            loads: AtomicU64::new(0),
        }
    }

    /// How many times weights were loaded from storage (a cache hit loads nothing).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::SeqCst)
    }

    /// Versions currently held, most recently used first.
    pub fn loaded_versions(&self) -> Vec<u32> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .filter(|(_, s)| s.initialized())
            .map(|(v, _)| *v)
            .collect()
    }

    /// Resolves a version number or alias of `layer` with the registry.
    pub async fn resolve(
        &self,
        layer: u32,
        reference: &str,
    ) -> Result<v1::ModelVersion, ModelError> {
        let reference = if reference.trim().is_empty() {
            "latest"
        } else {
            reference.trim()
        };
        self.registry
            .clone()
            .resolve_version(v1::VersionRef {
                layer,
                version: reference.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => ModelError::NotFound(format!(
                    "layer {layer} has no version or alias {reference:?}"
                )),
                tonic::Code::InvalidArgument => ModelError::Invalid(s.message().to_string()),
                _ => ModelError::Unavailable(format!("model registry: {}", s.message())),
            })
    }

    /// The Layer 2 model `reference` names (number or alias; empty = latest).
    pub async fn layer2(&self, reference: &str) -> Result<Arc<Layer2Model>, ModelError> {
        let mv = self.resolve(2, reference).await?;
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .get_or_insert(mv.version, || Arc::new(OnceCell::new()))
                .clone()
        };
        let result = if slot.initialized() { "hit" } else { "miss" };
        metrics::counter!(restoreflow_core::metrics::names::MODEL_CACHE, "result" => result)
            .increment(1);
        slot.get_or_try_init(|| self.load(mv)).await.map(Arc::clone)
    }

    async fn load(&self, mv: v1::ModelVersion) -> Result<Arc<Layer2Model>, ModelError> {
        let config = restoreflow_proto::version_config(&mv);
        let preset = config
            .get("model")
            .and_then(|m| m.get("preset"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("tiny")
            .to_string();
        let dir = tempfile::tempdir()
            .map_err(|e| ModelError::Unavailable(format!("cannot create a temp dir: {e}")))?;
        let path = dir.path().join("weights.safetensors");
        download_to(self.store.as_ref(), Bucket::Models, &mv.object_key, &path)
            .await
            .map_err(|e| {
                ModelError::Unavailable(format!("cannot download version {}: {e}", mv.version))
            })?;
        let version = mv.version;
        let device = self.device.clone();
        let want = mv.sha256.clone();
        let model = tokio::task::spawn_blocking(move || {
            load_blocking(&path, &want, &preset, device, version)
        })
        .await
        .map_err(|e| ModelError::Unavailable(format!("model load thread failed: {e}")))??;
        drop(dir);
        self.loads.fetch_add(1, Ordering::SeqCst);
        tracing::info!(version, "layer 2 model loaded");
        Ok(Arc::new(model))
    }

    /// The Layer 1 parameters `reference` names; with no Layer 1 version
    /// registered and no explicit reference, the default pipeline (version None).
    pub async fn layer1(&self, reference: &str) -> Result<(Option<u32>, Layer1Params), ModelError> {
        let mv = match self.resolve(1, reference).await {
            Ok(mv) => mv,
            Err(ModelError::NotFound(_)) if reference.trim().is_empty() => {
                return Ok((None, Layer1Params::default()));
            }
            Err(e) => return Err(e),
        };
        let bytes = get_bytes(
            self.store.as_ref(),
            Bucket::Models,
            &mv.object_key,
            MAX_PARAMS_BYTES,
        )
        .await
        .map_err(|e| {
            ModelError::Unavailable(format!("cannot read layer 1 v{}: {e}", mv.version))
        })?;
        let params: Layer1Params = serde_json::from_slice(&bytes).map_err(|e| {
            ModelError::Corrupt(format!(
                "layer 1 v{} is not a parameter set: {e}",
                mv.version
            ))
        })?;
        Ok((Some(mv.version), params))
    }
}

/// Builds the inference (graph-free) Restormer of `preset` from a weights
/// file: what the cache serves, and what tools that score a weights file
/// must run to score it as the services do.
pub fn restormer_from_file(
    path: &Path,
    preset: &str,
    device: &Device,
) -> Result<RestormerNet, ModelError> {
    let cfg = restoreflow_restormer::Config::by_name(preset)
        .map_err(|e| ModelError::Corrupt(e.to_string()))?;
    let (_, varmap) = restoreflow_restormer::build(&cfg, device)
        .map_err(|e| ModelError::Unavailable(format!("cannot build the model: {e}")))?;
    restoreflow_training::load_weights(&varmap, path)
        .map_err(|e| ModelError::Corrupt(format!("weights do not fit preset {preset}: {e}")))?;
    // Serving never needs gradients: the frozen copy records no graph, so each
    // activation is freed as soon as it is used.
    let model = restoreflow_restormer::frozen(&cfg, &varmap)
        .map_err(|e| ModelError::Unavailable(format!("cannot build the model: {e}")))?;
    Ok(RestormerNet(model))
}

fn load_blocking(
    path: &Path,
    want_sha: &str,
    preset: &str,
    device: Device,
    version: u32,
) -> Result<Layer2Model, ModelError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ModelError::Unavailable(format!("cannot read downloaded weights: {e}")))?;
    let got = hex::encode(Sha256::digest(&bytes));
    if !want_sha.is_empty() && got != want_sha {
        return Err(ModelError::Corrupt(format!(
            "weights of version {version} have sha256 {got}, the registry says {want_sha}"
        )));
    }
    let net = restormer_from_file(path, preset, &device).map_err(|e| e.in_version(version))?;
    Ok(Layer2Model {
        version,
        preset: preset.to_string(),
        net,
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Tensor};
    use restoreflow_training::Restorer;

    #[test]
    fn loaded_models_run_without_an_autograd_graph() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let cfg = restoreflow_restormer::Config::tiny();
        let (_, varmap) = restoreflow_restormer::build_seeded(&cfg, &Device::Cpu, 1).unwrap();
        varmap.save(&path).unwrap();
        let model = load_blocking(&path, "", "tiny", Device::Cpu, 7).unwrap();
        let x = Tensor::ones((1, 3, 16, 16), DType::F32, &Device::Cpu).unwrap();
        let y = model.net.forward(&x).unwrap();
        assert_eq!(y.dims(), &[1, 3, 16, 16]);
        assert!(!y.track_op(), "a served model recorded an autograd graph");
        // A wrong checksum is refused before anything is built.
        let err = load_blocking(&path, "00", "tiny", Device::Cpu, 7)
            .err()
            .unwrap();
        assert!(matches!(err, ModelError::Corrupt(_)));
    }
}
