//! The evaluation worker: scores a model version over an evaluation dataset
//! against the classical baselines, per image and on average, and stores the
//! results in `evaluation/{eval_id}/` and the `evaluations` table.
//!
//! When the dataset knows its pages' texts (generated sets, and uploaded sets
//! registered with `.txt` files) and tesseract is installed, every page's
//! restored output and every baseline's output is read by OCR and scored by
//! character error rate; a page whose OCR fails for any method counts for
//! none, so the mean CERs of all methods cover the same pages.

use crate::error::TrainerError;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use image::{DynamicImage, RgbImage};
use restoreflow_core::Backends;
use restoreflow_core::bus::queues;
use restoreflow_core::config::JobSettings;
use restoreflow_core::db::entity::{evaluation, job};
use restoreflow_core::db::{self, JobKind, JobStatus};
use restoreflow_core::jobs::{JobLoop, JobRunner};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::{Bucket, get_bytes};
use restoreflow_training::{MetricSet, PSNR_CAP_DB};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::inference::{ModelCache, Pipeline, Subject, ocr_available, ocr_cers, score_pair};
use crate::lease::{Halt, Lease, finish, settle};
use crate::pairs::{PairRef, find_pairs};
use crate::targets::evaluation_targets;
use crate::texts::TextSource;

/// Largest page read for evaluation.
const MAX_IMAGE_BYTES: u64 = 64 << 20;
/// The key of the evaluated model's scores among the baselines' (whose
/// names come from [`restoreflow_classical::Baseline::name`]).
const MODEL: &str = "model";

/// Parameters of an evaluation job, as `RunEvaluation` recorded them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalParams {
    /// 1 or 2.
    pub layer: u32,
    /// The version the reference resolved to when the job was created.
    pub version: u32,
    /// The reference as given (number or alias).
    pub model: String,
    /// Dataset id or prefix.
    pub dataset: String,
    /// Cap on pairs; 0 = all.
    pub max_pairs: u32,
    /// `layer1`, `layer2` or `layer1+layer2` (empty in jobs stored before
    /// pipelines could be chosen: the layer alone).
    #[serde(default)]
    pub pipeline: String,
}

/// Claims and runs evaluation jobs.
pub struct EvaluationWorker {
    backends: Backends,
    jobs: JobSettings,
    models: Arc<ModelCache>,
    catalog: Catalog,
    id: String,
    /// Deadline of one tesseract read (`trainer.ocr_timeout_secs`).
    ocr_timeout: std::time::Duration,
}

/// Scores as stored JSON. PSNR is capped at [`PSNR_CAP_DB`] as the means
/// cap it: identical images (a page no degradation touched) have an infinite
/// PSNR, which JSON cannot hold and would store as `null`.
fn metrics_json(m: &MetricSet, cer: Option<f64>) -> Value {
    let mut v = json!({"psnr": m.psnr.min(PSNR_CAP_DB), "ssim": m.ssim, "accuracy": m.accuracy});
    if let Some(c) = cer {
        v["cer"] = json!(c);
    }
    v
}

fn mean_of(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn png(img: &RgbImage) -> Result<Vec<u8>, String> {
    let mut buf = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode png: {e}"))?;
    Ok(buf.into_inner())
}

impl EvaluationWorker {
    /// A worker sharing the service's model cache.
    pub fn new(
        backends: Backends,
        jobs: JobSettings,
        models: Arc<ModelCache>,
        catalog: Catalog,
        ocr_timeout: std::time::Duration,
    ) -> Self {
        let id = format!(
            "evaluator-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Self {
            backends,
            jobs,
            models,
            catalog,
            id,
            ocr_timeout,
        }
    }

    /// Consumes `jobs.evaluation` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let jobs = JobLoop::new(
            self.backends.clone(),
            self.jobs.clone(),
            JobKind::Evaluation,
            queues::EVALUATION,
            self.id.clone(),
        )
        .on_device(self.models.device_class());
        jobs.run(&self, &shutdown).await;
    }

    async fn evaluate(&self, job: &job::Model, lease: &Lease) -> Result<Value, Halt> {
        let p: EvalParams = serde_json::from_value(job.params.clone())
            .map_err(|e| format!("job params are not an evaluation request: {e}"))?;
        let cap = if p.max_pairs == 0 {
            usize::MAX
        } else {
            p.max_pairs as usize
        };
        let pairs = find_pairs(&self.backends, &self.catalog, &p.dataset, cap)
            .await
            .map_err(|e| format!("cannot list evaluation pairs: {e}"))?;
        if pairs.pairs.is_empty() {
            return Err(format!("no clean/degraded pairs in {}", pairs.location).into());
        }
        let subject = if p.layer == 1 {
            let (_, params) = self
                .models
                .layer1(&p.version.to_string())
                .await
                .map_err(|e| e.to_string())?;
            Subject::Layer1(Arc::new(params))
        } else {
            let model = self
                .models
                .layer2(&p.version.to_string())
                .await
                .map_err(|e| e.to_string())?;
            if p.pipeline == Pipeline::Layer1ThenLayer2.as_str() {
                // The registered Layer 1 (or the default pipeline) first.
                let (_, l1) = self.models.layer1("").await.map_err(|e| e.to_string())?;
                Subject::Chain(Arc::new(l1), model)
            } else {
                Subject::Layer2(model)
            }
        };
        // Layer 1 has no training target; the Layer 2 model's is in its config.
        let model_config = if p.layer == 2 {
            let mv = self
                .models
                .resolve(2, &p.version.to_string())
                .await
                .map_err(|e| e.to_string())?;
            Some(restoreflow_proto::version_config(&mv))
        } else {
            None
        };
        let targets = evaluation_targets(&pairs.targets, model_config.as_ref());
        let prefix = format!("{}/", job.id);
        let texts = TextSource::for_dataset(pairs.dataset.as_ref());
        let with_ocr = texts.has_texts() && ocr_available();
        self.upsert_row(job, &p, "running", &prefix, None).await?;
        let store = self.backends.store.as_ref();
        let mut per_image = Vec::new();
        let mut skipped = Vec::new();
        let mut model_scores = Vec::new();
        let mut base_scores: BTreeMap<String, Vec<MetricSet>> = BTreeMap::new();
        // Method (MODEL or a baseline) -> CER of each page OCR read for every method.
        let mut cers: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let total = pairs.pairs.len();
        for (i, pair) in pairs.pairs.iter().enumerate() {
            lease.check().map_err(Halt::Stopped)?;
            let (clean, degraded) = match self.load_pair(pair).await {
                Ok(p) => p,
                Err(reason) => {
                    skipped.push(json!({"name": pair.name, "reason": reason}));
                    continue;
                }
            };
            let job_subject = subject.clone();
            let scored = tokio::task::spawn_blocking(move || {
                let scores =
                    score_pair(&clean, &degraded, &job_subject).map_err(|e| e.to_string())?;
                let restored_png = png(&scores.restored)?;
                Ok::<_, String>((scores, restored_png))
            })
            .await
            .map_err(|e| format!("scoring thread failed: {e}"))?;
            let (mut scores, restored_png) = match scored {
                Ok(s) => s,
                Err(reason) => {
                    skipped.push(json!({"name": pair.name, "reason": reason}));
                    continue;
                }
            };
            let key = format!("{prefix}restored/{}", png_name(&pair.name));
            store
                .put(
                    Bucket::Evaluation,
                    &key,
                    Bytes::from(restored_png),
                    "image/png",
                )
                .await
                .map_err(|e| format!("cannot store {key}: {e}"))?;
            let mut page_cers = None;
            if with_ocr && let Some(truth) = texts.text(store, &pair.name).await {
                let deadline = self.ocr_timeout;
                let mut outputs = std::mem::take(&mut scores.baseline_outputs);
                outputs.insert(MODEL.to_string(), std::mem::take(&mut scores.restored));
                page_cers = tokio::task::spawn_blocking(move || {
                    let images = outputs.iter().map(|(k, v)| (k.clone(), v)).collect();
                    ocr_cers(&truth, &images, deadline)
                })
                .await
                .ok()
                .flatten();
            }
            let cer_of = |method: &str| page_cers.as_ref().and_then(|c| c.get(method).copied());
            let ocr_row = match (cer_of("identity"), cer_of(MODEL)) {
                (Some(before), Some(after)) => json!({"cer_before": before, "cer_after": after}),
                _ => Value::Null,
            };
            per_image.push(json!({
                "name": pair.name,
                "model": metrics_json(&scores.model, cer_of(MODEL)),
                "baselines": scores.baselines.iter().map(|(k, m)| (k.clone(), metrics_json(m, cer_of(k)))).collect::<serde_json::Map<_, _>>(),
                "ocr": ocr_row,
                "restored_key": key,
            }));
            for (method, c) in page_cers.into_iter().flatten() {
                cers.entry(method).or_default().push(c);
            }
            model_scores.push(scores.model);
            for (k, m) in scores.baselines {
                base_scores.entry(k).or_default().push(m);
            }
            let pct = 100.0 * (i + 1) as f64 / total as f64;
            let _ = db::set_progress(
                &self.backends.db,
                &job.id,
                &self.id,
                pct.min(99.0),
                json!({"scored": i + 1, "total": total}),
            )
            .await;
        }
        if model_scores.is_empty() {
            return Err(Halt::Failed(TrainerError::internal(format!(
                "none of the {total} pairs could be scored: {}",
                skipped
                    .iter()
                    .filter_map(|s| s.get("reason").and_then(Value::as_str))
                    .next()
                    .unwrap_or("no reason")
            ))));
        }
        let mean_cer = |method: &str| cers.get(method).and_then(|v| mean_of(v));
        let mut mean = metrics_json(&MetricSet::mean(&model_scores), mean_cer(MODEL));
        mean["pairs"] = json!(model_scores.len());
        let pipeline = if p.pipeline.is_empty() {
            if p.layer == 1 { "layer1" } else { "layer2" }
        } else {
            p.pipeline.as_str()
        };
        mean["pipeline"] = json!(pipeline);
        // Kept with the scores (like the pipeline) so `GET /evaluation/{id}`
        // can show what the model was trained on beside what it was scored on.
        for (k, v) in targets.as_object().into_iter().flatten() {
            mean[k] = v.clone();
        }
        let mut baselines = serde_json::Map::new();
        for (k, v) in &base_scores {
            baselines.insert(k.clone(), metrics_json(&MetricSet::mean(v), mean_cer(k)));
        }
        let ocr_pairs = cers.get(MODEL).map_or(0, Vec::len);
        let mut result = json!({
            "evaluation_id": job.id,
            "layer": p.layer,
            "version": p.version,
            "pipeline": pipeline,
            "dataset": p.dataset,
            "dataset_id": pairs.dataset_id,
            "pairs": model_scores.len(),
            "skipped": skipped,
            "mean": mean,
            "baselines": baselines,
            "ocr": if with_ocr { json!("tesseract --psm 6") } else { json!(null) },
            "ocr_pairs": ocr_pairs,
            "results_key": format!("{}/{prefix}results.json", Bucket::Evaluation),
        });
        for (k, v) in targets.as_object().into_iter().flatten() {
            result[k] = v.clone();
        }
        let doc = json!({"summary": result, "per_image": per_image});
        store
            .put(
                Bucket::Evaluation,
                &format!("{prefix}results.json"),
                Bytes::from(serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?),
                "application/json",
            )
            .await
            .map_err(|e| format!("cannot store results: {e}"))?;
        self.upsert_row(
            job,
            &p,
            "completed",
            &prefix,
            Some((
                model_scores.len(),
                &skipped,
                &mean,
                &Value::Object(baselines),
                &Value::Array(per_image),
            )),
        )
        .await?;
        Ok(result)
    }

    async fn load_pair(&self, pair: &PairRef) -> Result<(RgbImage, RgbImage), String> {
        let store = self.backends.store.as_ref();
        let clean = get_bytes(
            store,
            Bucket::TrainingData,
            &pair.clean_key(),
            MAX_IMAGE_BYTES,
        )
        .await
        .map_err(|e| format!("cannot read the clean image: {e}"))?;
        let degraded = get_bytes(
            store,
            Bucket::TrainingData,
            &pair.degraded_key(),
            MAX_IMAGE_BYTES,
        )
        .await
        .map_err(|e| format!("cannot read the degraded image: {e}"))?;
        let (clean, degraded) = tokio::task::spawn_blocking(move || {
            use crate::restoration::{MAX_PAGE_PIXELS, decode_rgb};
            let clean =
                decode_rgb(&clean, MAX_PAGE_PIXELS).map_err(|e| format!("clean image: {e}"))?;
            let degraded = decode_rgb(&degraded, MAX_PAGE_PIXELS)
                .map_err(|e| format!("degraded image: {e}"))?;
            Ok::<_, String>((clean, degraded))
        })
        .await
        .map_err(|e| format!("decoding thread failed: {e}"))??;
        if clean.dimensions() != degraded.dimensions() {
            return Err(format!(
                "sizes differ: clean {}x{}, degraded {}x{}",
                clean.width(),
                clean.height(),
                degraded.width(),
                degraded.height()
            ));
        }
        Ok((clean, degraded))
    }

    #[allow(clippy::type_complexity)]
    async fn upsert_row(
        &self,
        job: &job::Model,
        p: &EvalParams,
        status: &str,
        prefix: &str,
        done: Option<(usize, &Vec<Value>, &Value, &Value, &Value)>,
    ) -> Result<(), String> {
        let (pairs, skipped, mean, baselines, per_image) = match done {
            Some((n, s, m, b, pi)) => (n as i32, json!(s), m.clone(), b.clone(), pi.clone()),
            None => (0, json!([]), json!({}), json!({}), json!([])),
        };
        let row = evaluation::ActiveModel {
            id: Set(job.id.clone()),
            layer: Set(p.layer as i32),
            version: Set(p.version as i32),
            dataset_id: Set(p.dataset.clone()),
            status: Set(status.to_string()),
            pairs: Set(pairs),
            skipped: Set(skipped),
            mean: Set(mean),
            baselines: Set(baselines),
            per_image: Set(per_image),
            object_prefix: Set(prefix.to_string()),
            created_at: Set(job.created_at),
            finished_at: Set((status != "running").then(Utc::now)),
        };
        let upsert = evaluation::Entity::insert(row).on_conflict(
            OnConflict::column(evaluation::Column::Id)
                .update_columns([
                    evaluation::Column::Status,
                    evaluation::Column::Pairs,
                    evaluation::Column::Skipped,
                    evaluation::Column::Mean,
                    evaluation::Column::Baselines,
                    evaluation::Column::PerImage,
                    evaluation::Column::FinishedAt,
                ])
                .to_owned(),
        );
        // Fenced: a worker that lost the job to another one writes no row.
        let lease = chrono::Duration::seconds(self.jobs.lease_secs as i64);
        let written = db::fenced(&self.backends.db, &job.id, &self.id, lease, move |txn| {
            Box::pin(async move {
                upsert.exec(txn).await?;
                Ok(())
            })
        })
        .await
        .map_err(|e| format!("cannot record the evaluation: {e}"))?;
        written.ok_or_else(|| {
            "the job is no longer this worker's: the evaluation row was not written".to_string()
        })
    }
}

/// The output name of `name`: outputs are always PNG, so a PNG keeps its name
/// and anything else gets `.png` appended (`a.jpg` -> `a.jpg.png`), which
/// keeps `a.jpg` and `a.png` from overwriting each other.
pub fn png_name(name: &str) -> String {
    if name.to_ascii_lowercase().ends_with(".png") {
        name.to_string()
    } else {
        format!("{name}.png")
    }
}

#[async_trait::async_trait]
impl JobRunner for EvaluationWorker {
    async fn run_job(&self, job: job::Model, shutdown: &CancellationToken) {
        let lease = Lease::start(
            self.backends.db.clone(),
            job.id.clone(),
            self.id.clone(),
            &self.jobs,
            shutdown.clone(),
        );
        let outcome = self.evaluate(&job, &lease).await;
        drop(lease);
        let Some(settled) = settle(&job.id, "evaluation", outcome) else {
            return;
        };
        if settled.0 != JobStatus::Completed
            && let Ok(p) = serde_json::from_value::<EvalParams>(job.params.clone())
        {
            let _ = self
                .upsert_row(&job, &p, settled.0.as_str(), &format!("{}/", job.id), None)
                .await;
        }
        finish(&self.backends.db, &job.id, &self.id, settled).await;
    }

    /// The sweep ended the job (cancelled while its worker was gone, or given
    /// up after its attempts): its evaluation row says so too.
    async fn abandoned(&self, job: &job::Model) {
        let res = evaluation::Entity::update_many()
            .col_expr(
                evaluation::Column::Status,
                sea_orm::sea_query::Expr::value(job.status),
            )
            .col_expr(
                evaluation::Column::FinishedAt,
                sea_orm::sea_query::Expr::value(job.finished_at.unwrap_or_else(Utc::now)),
            )
            .filter(evaluation::Column::Id.eq(job.id.as_str()))
            .filter(evaluation::Column::Status.eq("running"))
            .exec(&self.backends.db)
            .await;
        if let Err(e) = res {
            tracing::warn!(job_id = %job.id, error = %e, "cannot close the evaluation row");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MetricSet, PSNR_CAP_DB, metrics_json, png_name};

    #[test]
    fn an_untouched_page_stores_a_capped_psnr_not_null() {
        let identical = MetricSet {
            psnr: f64::INFINITY,
            ssim: 1.0,
            accuracy: 1.0,
        };
        let v = metrics_json(&identical, Some(0.0));
        assert_eq!(v["psnr"].as_f64(), Some(PSNR_CAP_DB), "{v}");
        // And through a JSON round trip (what the database stores).
        let back: serde_json::Value = serde_json::from_str(&v.to_string()).unwrap();
        assert_eq!(back["psnr"].as_f64(), Some(PSNR_CAP_DB));
    }

    #[test]
    fn output_names_never_collide() {
        assert_eq!(png_name("a.png"), "a.png");
        assert_eq!(png_name("a.jpg"), "a.jpg.png");
        assert_ne!(png_name("a.jpg"), png_name("a.png"));
        assert_eq!(png_name("dir/b.JPEG"), "dir/b.JPEG.png");
    }
}
