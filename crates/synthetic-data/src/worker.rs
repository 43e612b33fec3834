//! The generation worker: claims synthetic jobs (from bus wake-ups or the
//! recovery sweep), renders pairs on all cores off the async runtime, stores
//! them and records the dataset. One job at a time per worker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use restoreflow_core::Backends;
use restoreflow_core::bus::queues;
use restoreflow_core::config::JobSettings;
use restoreflow_core::db::{self, JobKind, JobStatus, entity::dataset, entity::job};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::{Bucket, ObjectStore, retry};
use restoreflow_synth::FontLibrary;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::params::{GenerateParams, pair_seed};
use restoreflow_core::jobs::{JobLoop, JobRunner};

/// Pixels rendered per batch (bounds memory for large pages).
const PIXELS_PER_BATCH: u64 = 48 * 1024 * 1024;

/// Why a job stopped early.
#[derive(Debug)]
enum Stop {
    Cancelled,
    LeaseLost,
    Failed(String),
}

/// One pair as recorded in the manifest.
#[derive(Clone, Debug, Serialize)]
struct PairRecord {
    name: String,
    seed: u64,
    clean_key: String,
    degraded_key: String,
    text_key: String,
    clean_sha256: String,
    degraded_sha256: String,
    clean_bytes: u64,
    degraded_bytes: u64,
    /// Font faces drawn with, in order of first use.
    fonts: Vec<String>,
    /// Non-text content (figures, photos, logos, stamps, forms, ...) with
    /// boxes and parameters.
    elements: Vec<restoreflow_synth::Element>,
    degradations: Vec<restoreflow_synth::Applied>,
}

/// A rendered, encoded pair ready to upload.
struct Encoded {
    index: u64,
    seed: u64,
    clean: Vec<u8>,
    degraded: Vec<u8>,
    text: String,
    fonts: Vec<String>,
    elements: Vec<restoreflow_synth::Element>,
    applied: Vec<restoreflow_synth::Applied>,
}

/// Claims and runs synthetic-data jobs.
pub struct Worker {
    backends: Backends,
    fonts: Arc<FontLibrary>,
    jobs: JobSettings,
    id: String,
}

impl Worker {
    /// A worker with a unique id.
    pub fn new(backends: Backends, fonts: Arc<FontLibrary>, jobs: JobSettings) -> Self {
        let id = format!(
            "synthetic-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Self {
            backends,
            fonts,
            jobs,
            id,
        }
    }

    /// Consumes wake-ups and sweeps for orphaned jobs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let jobs = JobLoop::new(
            self.backends.clone(),
            self.jobs.clone(),
            JobKind::Synthetic,
            queues::SYNTHETIC,
            self.id.clone(),
        );
        tracing::info!(worker = %self.id, "synthetic-data worker started");
        jobs.run(&self, &shutdown).await;
        tracing::info!(worker = %self.id, "synthetic-data worker stopped");
    }
}

#[async_trait::async_trait]
impl JobRunner for Worker {
    async fn run_job(&self, job: job::Model, shutdown: &CancellationToken) {
        self.run_claimed(job, shutdown).await;
    }
}

impl Worker {
    #[tracing::instrument(skip(self, job, shutdown), fields(job_id = %job.id))]
    async fn run_claimed(&self, job: job::Model, shutdown: &CancellationToken) {
        let stop = CancellationToken::new();
        let heartbeat = self.spawn_heartbeat(job.id.clone(), stop.clone(), shutdown.clone());
        let mut written = Vec::new();
        let outcome = self.generate(&job, &stop, &mut written).await;
        heartbeat.abort();
        let lease_lost =
            heartbeat.await.ok() == Some(true) || matches!(outcome, Err(Stop::LeaseLost));
        let (status, result, error) = match outcome {
            Ok(result) => (JobStatus::Completed, Some(result), None),
            Err(_) if lease_lost => {
                tracing::warn!("lease lost; another worker owns the job now");
                return;
            }
            Err(Stop::Cancelled) if shutdown.is_cancelled() => {
                // Process shutdown, not a user cancel: leave the job to be resumed.
                tracing::info!("shutting down mid-job; the job will be resumed");
                return;
            }
            Err(Stop::Cancelled) => (JobStatus::Cancelled, None, None),
            Err(Stop::Failed(e)) => (JobStatus::Failed, None, Some(e)),
            Err(Stop::LeaseLost) => return,
        };
        if status != JobStatus::Completed {
            // Nothing half-stored: remove what this attempt wrote, but only
            // while the job is still ours (renewing the lease first): a worker
            // that took the job over writes the same keys.
            match db::heartbeat(&self.backends.db, &job.id, &self.id, self.lease()).await {
                Ok(Some(_)) => self.cleanup(&written).await,
                Ok(None) => {
                    tracing::warn!("lease lost; leaving the stored files to the new owner");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot confirm ownership; keeping the stored files");
                }
            }
        }
        match db::finish_job(&self.backends.db, &job.id, &self.id, status, result, error).await {
            Ok(true) => tracing::info!(status = status.as_str(), "job finished"),
            Ok(false) => tracing::warn!("job was no longer ours when finishing"),
            Err(e) => tracing::error!(error = %e, "cannot record job outcome"),
        }
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.jobs.lease_secs as i64)
    }

    /// Renews the lease; cancels `stop` on user cancel, lease loss or shutdown.
    /// Resolves to `true` when the lease was lost.
    fn spawn_heartbeat(
        &self,
        id: String,
        stop: CancellationToken,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<bool> {
        let db = self.backends.db.clone();
        let worker = self.id.clone();
        let lease = chrono::Duration::seconds(self.jobs.lease_secs as i64);
        let every = Duration::from_secs(self.jobs.heartbeat_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => { stop.cancel(); return false; }
                    _ = tick.tick() => {}
                }
                match db::heartbeat(&db, &id, &worker, lease).await {
                    Ok(Some(j)) if j.cancel_requested => {
                        stop.cancel();
                        return false;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        stop.cancel();
                        return true;
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
        })
    }

    async fn generate(
        &self,
        job: &job::Model,
        stop: &CancellationToken,
        written: &mut Vec<(Bucket, String)>,
    ) -> Result<serde_json::Value, Stop> {
        let params: GenerateParams = serde_json::from_value(job.params.clone())
            .map_err(|e| Stop::Failed(format!("job params are not a generation request: {e}")))?;
        let pipeline = params
            .degradation
            .pipeline()
            .map_err(|e| Stop::Failed(e.0))?;
        let pipeline = Arc::new(pipeline);
        // Derived from the job id so a resumed attempt overwrites the same keys.
        let dataset_id = format!("syn-{}", &job.id.replace('-', "")[..12]);
        let total = u64::from(params.num_images);
        let pixels = u64::from(params.width) * u64::from(params.height);
        let threads = rayon::current_num_threads() as u64;
        let batch = (PIXELS_PER_BATCH / pixels.max(1)).clamp(1, (threads * 2).max(2));
        let started = std::time::Instant::now();
        let mut records: Vec<PairRecord> = Vec::with_capacity(total as usize);
        let mut start = 0u64;
        while start < total {
            if stop.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let end = (start + batch).min(total);
            let encoded = self.render_batch(&params, &pipeline, start, end).await?;
            for pair in encoded {
                let rec = self.store_pair(&dataset_id, pair, written).await?;
                records.push(rec);
            }
            start = end;
            let elapsed = started.elapsed().as_secs_f64();
            let rate = start as f64 / elapsed.max(1e-9);
            let detail = serde_json::json!({
                "pairs_done": start,
                "pairs_total": total,
                "pairs_per_second": rate,
                "eta_seconds": (total - start) as f64 / rate.max(1e-9),
            });
            let progress = 100.0 * start as f64 / total as f64;
            match db::set_progress(
                &self.backends.db,
                &job.id,
                &self.id,
                progress.min(99.9),
                detail,
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => return Err(Stop::LeaseLost),
                Err(e) => return Err(Stop::Failed(format!("cannot record progress: {e}"))),
            }
        }
        self.finish_dataset(job, &params, &dataset_id, records, written)
            .await
    }

    async fn render_batch(
        &self,
        params: &GenerateParams,
        pipeline: &Arc<restoreflow_synth::Pipeline>,
        start: u64,
        end: u64,
    ) -> Result<Vec<Encoded>, Stop> {
        // Validated when the job was accepted; a font removed since fails the job here.
        let fonts = if params.fonts.is_empty() {
            self.fonts.clone()
        } else {
            Arc::new(
                self.fonts
                    .subset(&params.fonts)
                    .map_err(|e| Stop::Failed(e.to_string()))?,
            )
        };
        let pipeline = pipeline.clone();
        let (spec, seed, target) = (params.spec(), params.seed, params.target);
        tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            (start..end)
                .into_par_iter()
                .map(|i| {
                    let s = pair_seed(seed, i);
                    let pair =
                        restoreflow_synth::generate_pair(&fonts, &pipeline, &spec, s, target)
                            .map_err(|e| Stop::Failed(format!("pair {i}: {e}")))?;
                    let enc = |img| {
                        restoreflow_synth::encode_png(img).map_err(|e| Stop::Failed(e.to_string()))
                    };
                    Ok(Encoded {
                        index: i,
                        seed: s,
                        clean: enc(&pair.clean)?,
                        degraded: enc(&pair.degraded)?,
                        text: pair.text,
                        fonts: pair.fonts_used,
                        elements: pair.elements,
                        applied: pair.applied,
                    })
                })
                .collect::<Result<Vec<_>, Stop>>()
        })
        .await
        .map_err(|e| Stop::Failed(format!("generation task failed: {e}")))?
    }

    async fn store_pair(
        &self,
        dataset_id: &str,
        pair: Encoded,
        written: &mut Vec<(Bucket, String)>,
    ) -> Result<PairRecord, Stop> {
        let name = format!("{dataset_id}_{:05}", pair.index);
        let clean_key = format!("clean/{name}.png");
        let degraded_key = format!("degraded/{name}.png");
        let text_key = format!("{dataset_id}/text/{name}.txt");
        let rec = PairRecord {
            name: format!("{name}.png"),
            seed: pair.seed,
            clean_sha256: hex::encode(Sha256::digest(&pair.clean)),
            degraded_sha256: hex::encode(Sha256::digest(&pair.degraded)),
            clean_bytes: pair.clean.len() as u64,
            degraded_bytes: pair.degraded.len() as u64,
            clean_key: format!("{}/{clean_key}", Bucket::TrainingData),
            degraded_key: format!("{}/{degraded_key}", Bucket::TrainingData),
            text_key: format!("{}/{text_key}", Bucket::SyntheticData),
            fonts: pair.fonts,
            elements: pair.elements,
            degradations: pair.applied,
        };
        let store: &dyn ObjectStore = self.backends.store.as_ref();
        let uploads = [
            (
                Bucket::TrainingData,
                clean_key,
                Bytes::from(pair.clean),
                "image/png",
            ),
            (
                Bucket::TrainingData,
                degraded_key,
                Bytes::from(pair.degraded),
                "image/png",
            ),
            (
                Bucket::SyntheticData,
                text_key,
                Bytes::from(pair.text),
                "text/plain; charset=utf-8",
            ),
        ];
        for (bucket, key, body, ct) in uploads {
            written.push((bucket, key.clone()));
            // Bytes clone cheaply, so a retried write re-sends the same body.
            retry(
                self.jobs.storage_retry(),
                "storing a generated file",
                || store.put(bucket, &key, body.clone(), ct),
            )
            .await
            .map_err(|e| Stop::Failed(format!("cannot store {bucket}/{key}: {e}")))?;
        }
        Ok(rec)
    }

    async fn finish_dataset(
        &self,
        job: &job::Model,
        params: &GenerateParams,
        dataset_id: &str,
        records: Vec<PairRecord>,
        written: &mut Vec<(Bucket, String)>,
    ) -> Result<serde_json::Value, Stop> {
        let content_hash = content_hash(&records);
        let manifest_key = format!("{dataset_id}/manifest.json");
        let created_at = Utc::now();
        let summary = serde_json::json!({
            "dataset_id": dataset_id,
            "job_id": job.id,
            "created_at": created_at,
            "generator": format!("restoreflow-synth {}", env!("CARGO_PKG_VERSION")),
            "degradation": params.degradation,
            "pipeline": params.degradation.pipeline().ok(),
            "seed": params.seed,
            "width": params.width,
            "height": params.height,
            "dpi": params.dpi,
            "page_size": params.page_size,
            "fonts": params.fonts,
            "content": params.content,
            "split": params.split,
            "target": params.target,
            "num_pairs": records.len(),
            "content_hash": content_hash,
            "clean_prefix": format!("{}/clean/{dataset_id}_", Bucket::TrainingData),
            "degraded_prefix": format!("{}/degraded/{dataset_id}_", Bucket::TrainingData),
        });
        let mut manifest = summary.clone();
        manifest["pairs"] =
            serde_json::to_value(&records).map_err(|e| Stop::Failed(e.to_string()))?;
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Stop::Failed(e.to_string()))?;
        written.push((Bucket::SyntheticData, manifest_key.clone()));
        let body = Bytes::from(body);
        retry(self.jobs.storage_retry(), "storing the manifest", || {
            self.backends.store.put(
                Bucket::SyntheticData,
                &manifest_key,
                body.clone(),
                "application/json",
            )
        })
        .await
        .map_err(|e| Stop::Failed(format!("cannot store manifest: {e}")))?;
        let row = dataset::Model {
            id: dataset_id.to_string(),
            job_id: Some(job.id.clone()),
            source: "synthetic".into(),
            degradation: params.degradation.label(),
            split: params.split.clone(),
            seed: params.seed as i64,
            num_pairs: records.len() as i32,
            width: params.width as i32,
            height: params.height as i32,
            manifest_key: format!("{}/{manifest_key}", Bucket::SyntheticData),
            manifest: summary.clone(),
            content_hash: content_hash.clone(),
            created_at,
        };
        // Fenced: a worker that lost the job to another one records nothing.
        let recorded = db::fenced(&self.backends.db, &job.id, &self.id, self.lease(), |txn| {
            Box::pin(async move { db::replace_dataset(txn, row).await.map(drop) })
        })
        .await
        .map_err(|e| Stop::Failed(format!("cannot record dataset: {e}")))?;
        if recorded.is_none() {
            return Err(Stop::LeaseLost);
        }
        let mut result = summary;
        result["manifest_key"] =
            serde_json::Value::String(format!("{}/{manifest_key}", Bucket::SyntheticData));
        Ok(result)
    }

    async fn cleanup(&self, written: &[(Bucket, String)]) {
        for (bucket, key) in written {
            if let Err(e) = self.backends.store.delete(*bucket, key).await {
                tracing::warn!(%bucket, key, error = %e, "cleanup failed");
            }
        }
    }
}

/// sha256 over `name clean_sha degraded_sha` lines in name order: identifies a
/// dataset's content independently of where it is stored.
fn content_hash(records: &[PairRecord]) -> String {
    let mut sorted: Vec<&PairRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for r in sorted {
        h.update(format!(
            "{} {} {}\n",
            r.name, r.clean_sha256, r.degraded_sha256
        ));
    }
    hex::encode(h.finalize())
}
