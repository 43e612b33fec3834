//! The batch restoration worker: restores every image under a prefix and
//! writes the results under a `restored/` prefix of the same bucket.

use crate::error::TrainerError;
use std::io::Cursor;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use image::DynamicImage;
use restoreflow_core::Backends;
use restoreflow_core::bus::queues;
use restoreflow_core::config::JobSettings;
use restoreflow_core::db::{self, JobKind, entity::job};
use restoreflow_core::jobs::{JobLoop, JobRunner};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::{Bucket, get_bytes, list_all};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::evaluation::png_name;
use crate::inference::{ModelCache, Pipeline, restore};
use crate::lease::{Halt, Lease, finish, settle};

/// Largest input image read.
const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// Parameters of a batch restoration job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchParams {
    /// Bucket name.
    pub bucket: String,
    /// Input key prefix.
    pub prefix: String,
    /// `layer2`, `layer1` or `layer1+layer2`.
    pub pipeline: String,
    /// Layer 2 version pinned at submission (when the pipeline uses it).
    pub layer2_version: Option<u32>,
    /// Layer 1 version pinned at submission; None = the default pipeline.
    pub layer1_version: Option<u32>,
    /// Output key prefix, ending in `/`.
    pub output_prefix: String,
    /// Cap on images; 0 = all.
    pub max_images: u32,
}

/// Whether a key names an image restoration accepts.
pub fn is_image_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with(".png") || k.ends_with(".jpg") || k.ends_with(".jpeg")
}

/// Claims and runs batch restoration jobs.
pub struct BatchWorker {
    backends: Backends,
    jobs: JobSettings,
    models: Arc<ModelCache>,
    id: String,
}

impl BatchWorker {
    /// A worker sharing the service's model cache.
    pub fn new(backends: Backends, jobs: JobSettings, models: Arc<ModelCache>) -> Self {
        let id = format!(
            "restorer-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Self {
            backends,
            jobs,
            models,
            id,
        }
    }

    /// Consumes `jobs.restore` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let jobs = JobLoop::new(
            self.backends.clone(),
            self.jobs.clone(),
            JobKind::RestoreBatch,
            queues::RESTORE,
            self.id.clone(),
        )
        .on_device(self.models.device_class());
        jobs.run(&self, &shutdown).await;
    }

    async fn restore_all(&self, job: &job::Model, lease: &Lease) -> Result<Value, Halt> {
        let p: BatchParams = serde_json::from_value(job.params.clone())
            .map_err(|e| format!("job params are not a batch restore request: {e}"))?;
        let bucket = Bucket::from_str(&p.bucket).map_err(|e| e.to_string())?;
        let pipeline = Pipeline::from_str(&p.pipeline)?;
        let layer1 = if pipeline.uses_layer1() {
            let r = p.layer1_version.map(|v| v.to_string()).unwrap_or_default();
            Some(Arc::new(
                self.models.layer1(&r).await.map_err(|e| e.to_string())?.1,
            ))
        } else {
            None
        };
        let layer2 = match (pipeline.uses_layer2(), p.layer2_version) {
            (true, Some(v)) => Some(
                self.models
                    .layer2(&v.to_string())
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            (true, None) => {
                return Err(Halt::Failed(TrainerError::invalid(
                    "the pipeline needs a layer 2 version",
                )));
            }
            _ => None,
        };
        let store = self.backends.store.as_ref();
        let mut keys: Vec<String> = list_all(store, bucket, &p.prefix)
            .await
            .map_err(|e| format!("cannot list {}/{}: {e}", p.bucket, p.prefix))?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| is_image_key(k) && !k.starts_with(&p.output_prefix))
            .collect();
        if p.max_images > 0 {
            keys.truncate(p.max_images as usize);
        }
        if keys.is_empty() {
            return Err(Halt::Failed(TrainerError::new(
                restoreflow_proto::ErrorCode::FailedPrecondition,
                format!("no PNG or JPEG images under {}/{}", p.bucket, p.prefix),
            )));
        }
        let mut outputs = Vec::new();
        let mut failed = Vec::new();
        let total = keys.len();
        for (i, key) in keys.iter().enumerate() {
            lease.check().map_err(Halt::Stopped)?;
            let bytes = match get_bytes(store, bucket, key, MAX_IMAGE_BYTES).await {
                Ok(b) => b,
                Err(e) => {
                    failed.push(json!({"key": key, "reason": e.to_string()}));
                    continue;
                }
            };
            let (l1, l2) = (layer1.clone(), layer2.clone());
            let started = std::time::Instant::now();
            let out = tokio::task::spawn_blocking(move || {
                let img =
                    crate::restoration::decode_rgb(&bytes, crate::restoration::MAX_PAGE_PIXELS)
                        .map_err(|e| format!("not a usable image: {e}"))?;
                let restored = restore(&img, pipeline, l1.as_deref(), l2.as_deref())
                    .map_err(|e| e.to_string())?;
                let mut buf = Cursor::new(Vec::new());
                DynamicImage::ImageRgb8(restored.image)
                    .write_to(&mut buf, image::ImageFormat::Png)
                    .map_err(|e| format!("cannot encode png: {e}"))?;
                Ok::<_, String>(buf.into_inner())
            })
            .await
            .map_err(|e| format!("restore thread failed: {e}"))?;
            if out.is_ok() {
                metrics::histogram!(
                    restoreflow_core::metrics::names::RESTORE_DURATION,
                    "mode" => "batch",
                    "device" => self.models.device_class().as_str()
                )
                .record(started.elapsed().as_secs_f64());
            }
            match out {
                Ok(png) => {
                    let rel = key
                        .strip_prefix(&p.prefix)
                        .unwrap_or(key)
                        .trim_start_matches('/');
                    let out_key = format!("{}{}", p.output_prefix, png_name(rel));
                    store
                        .put(bucket, &out_key, Bytes::from(png), "image/png")
                        .await
                        .map_err(|e| format!("cannot store {out_key}: {e}"))?;
                    outputs.push(json!({"input": key, "output": out_key}));
                }
                Err(reason) => failed.push(json!({"key": key, "reason": reason})),
            }
            let pct = 100.0 * (i + 1) as f64 / total as f64;
            let _ = db::set_progress(
                &self.backends.db,
                &job.id,
                &self.id,
                pct.min(99.0),
                json!({"restored": outputs.len(), "total": total}),
            )
            .await;
        }
        if outputs.is_empty() {
            return Err(Halt::Failed(TrainerError::internal(format!(
                "none of the {total} images could be restored"
            ))));
        }
        Ok(json!({
            "bucket": p.bucket,
            "output_prefix": p.output_prefix,
            "restored": outputs.len(),
            "failed": failed,
            "outputs": outputs,
            "pipeline": pipeline.as_str(),
            "layer2_version": layer2.as_ref().map(|m| m.version),
            "layer1_version": p.layer1_version,
        }))
    }
}

#[async_trait::async_trait]
impl JobRunner for BatchWorker {
    async fn run_job(&self, job: job::Model, shutdown: &CancellationToken) {
        let lease = Lease::start(
            self.backends.db.clone(),
            job.id.clone(),
            self.id.clone(),
            &self.jobs,
            shutdown.clone(),
        );
        let outcome = self.restore_all(&job, &lease).await;
        drop(lease);
        let Some(settled) = settle(&job.id, "batch restore", outcome) else {
            return;
        };
        finish(&self.backends.db, &job.id, &self.id, settled).await;
    }
}
