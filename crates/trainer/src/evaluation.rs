//! The evaluation worker: scores a model version over an evaluation dataset
//! against the classical baselines, per image and on average, and stores the
//! results in `evaluation/{eval_id}/` and the `evaluations` table.

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
use restoreflow_core::db::{self, DbError, JobKind, JobStatus};
use restoreflow_core::jobs::{JobLoop, JobRunner};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::{Bucket, get_bytes};
use restoreflow_training::MetricSet;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::inference::{ModelCache, Subject, cer, ocr, ocr_available, score_pair};
use crate::lease::{Halt, Lease, finish, settle};
use crate::pairs::{PairRef, find_pairs};

/// Largest page read for evaluation.
const MAX_IMAGE_BYTES: u64 = 64 << 20;

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
}

/// Claims and runs evaluation jobs.
pub struct EvaluationWorker {
    backends: Backends,
    jobs: JobSettings,
    models: Arc<ModelCache>,
    id: String,
}

fn metrics_json(m: &MetricSet, cer: Option<f64>) -> Value {
    let mut v = json!({"psnr": m.psnr, "ssim": m.ssim, "accuracy": m.accuracy});
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
    pub fn new(backends: Backends, jobs: JobSettings, models: Arc<ModelCache>) -> Self {
        let id = format!(
            "evaluator-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Self {
            backends,
            jobs,
            models,
            id,
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
        );
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
        let pairs = find_pairs(&self.backends, &p.dataset, cap)
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
            Subject::Layer2(
                self.models
                    .layer2(&p.version.to_string())
                    .await
                    .map_err(|e| e.to_string())?,
            )
        };
        let prefix = format!("{}/", job.id);
        let with_ocr = ocr_available() && pairs.dataset_id.is_some();
        self.upsert_row(job, &p, "running", &prefix, None).await?;
        let store = self.backends.store.as_ref();
        let mut per_image = Vec::new();
        let mut skipped = Vec::new();
        let mut model_scores = Vec::new();
        let mut base_scores: BTreeMap<String, Vec<MetricSet>> = BTreeMap::new();
        let (mut cer_before, mut cer_after) = (Vec::new(), Vec::new());
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
                let scores = score_pair(&clean, &degraded, &job_subject)?;
                let restored_png = png(&scores.restored)?;
                let degraded_png = if with_ocr {
                    png(&degraded)?
                } else {
                    Vec::new()
                };
                Ok::<_, String>((scores, restored_png, degraded_png))
            })
            .await
            .map_err(|e| format!("scoring thread failed: {e}"))?;
            let (scores, restored_png, degraded_png) = match scored {
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
                    Bytes::from(restored_png.clone()),
                    "image/png",
                )
                .await
                .map_err(|e| format!("cannot store {key}: {e}"))?;
            let mut ocr_row = Value::Null;
            if with_ocr
                && let Some(ds) = &pairs.dataset_id
                && let Some(truth) = self.ground_truth(ds, &pair.name).await
            {
                let after_png = restored_png.clone();
                let (before, after) = tokio::task::spawn_blocking(move || {
                    (
                        ocr(&degraded_png).and_then(|t| cer(&truth, &t)),
                        ocr(&after_png).and_then(|t| cer(&truth, &t)),
                    )
                })
                .await
                .unwrap_or((None, None));
                if let (Some(b), Some(a)) = (before, after) {
                    cer_before.push(b);
                    cer_after.push(a);
                    ocr_row = json!({"cer_before": b, "cer_after": a});
                }
            }
            per_image.push(json!({
                "name": pair.name,
                "model": metrics_json(&scores.model, None),
                "baselines": scores.baselines.iter().map(|(k, m)| (k.clone(), metrics_json(m, None))).collect::<serde_json::Map<_, _>>(),
                "ocr": ocr_row,
                "restored_key": key,
            }));
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
            return Err(Halt::Failed(format!(
                "none of the {total} pairs could be scored: {}",
                skipped
                    .iter()
                    .filter_map(|s| s.get("reason").and_then(Value::as_str))
                    .next()
                    .unwrap_or("no reason")
            )));
        }
        let mut mean = metrics_json(&MetricSet::mean(&model_scores), mean_of(&cer_after));
        mean["pairs"] = json!(model_scores.len());
        let mut baselines = serde_json::Map::new();
        for (k, v) in &base_scores {
            let c = if k == "identity" {
                mean_of(&cer_before)
            } else {
                None
            };
            baselines.insert(k.clone(), metrics_json(&MetricSet::mean(v), c));
        }
        let result = json!({
            "evaluation_id": job.id,
            "layer": p.layer,
            "version": p.version,
            "dataset": p.dataset,
            "dataset_id": pairs.dataset_id,
            "pairs": model_scores.len(),
            "skipped": skipped,
            "mean": mean,
            "baselines": baselines,
            "ocr": if with_ocr { json!("tesseract") } else { json!(null) },
            "results_key": format!("{}/{prefix}results.json", Bucket::Evaluation),
        });
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
            let clean = image::load_from_memory(&clean)
                .map_err(|e| format!("clean image does not decode: {e}"))?
                .to_rgb8();
            let degraded = image::load_from_memory(&degraded)
                .map_err(|e| format!("degraded image does not decode: {e}"))?
                .to_rgb8();
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

    /// The page's ground-truth text, stored by the synthetic-data service.
    async fn ground_truth(&self, dataset_id: &str, name: &str) -> Option<String> {
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        let key = format!("{dataset_id}/text/{stem}.txt");
        let bytes = get_bytes(
            self.backends.store.as_ref(),
            Bucket::SyntheticData,
            &key,
            1 << 20,
        )
        .await
        .ok()?;
        String::from_utf8(bytes.to_vec()).ok()
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
        evaluation::Entity::insert(row)
            .on_conflict(
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
            )
            .exec(&self.backends.db)
            .await
            .map_err(|e| format!("cannot record the evaluation: {}", DbError::from(e)))?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::png_name;

    #[test]
    fn output_names_never_collide() {
        assert_eq!(png_name("a.png"), "a.png");
        assert_eq!(png_name("a.jpg"), "a.jpg.png");
        assert_ne!(png_name("a.jpg"), png_name("a.png"));
        assert_eq!(png_name("dir/b.JPEG"), "dir/b.JPEG.png");
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
}
