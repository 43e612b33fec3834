//! Gathers a report's facts from stored records only: the job row, its
//! events (`data`, `config`, `environment`, `metric`, `samples`), the
//! registered model version with its aliases and the version before it.

use std::collections::BTreeMap;

use chrono::Utc;
use restoreflow_core::db::entity::{job, job_event, model_alias, model_version};
use restoreflow_core::db::{self, Db, JobKind};
use restoreflow_core::devices;
use restoreflow_report_render::{
    DataStats, Environment, EpochRow, GpuOffer, JobInfo, ModelInfo, PreviousVersion,
    ProgressiveStage, ReportData, SkippedPair, TrainingParameters, TrainingRecipe,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::Value;

use crate::ReportError;

/// Where a stored validation sample lives.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleKeys {
    /// Page id.
    pub name: String,
    /// Keys in `training-outputs` of the degraded, restored and clean PNGs.
    pub degraded: String,
    /// See `degraded`.
    pub restored: String,
    /// See `degraded`.
    pub clean: String,
}

/// Everything collected for one job.
pub struct Collected {
    /// The report's facts.
    pub data: ReportData,
    /// Validation samples the trainer stored, if any.
    pub samples: Vec<SampleKeys>,
}

/// Where the report looks up the trainer workers a next run could use.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// `trainer.on_demand_devices`.
    pub on_demand: Vec<String>,
    /// A worker whose heartbeat is older than this many seconds is not live
    /// (`jobs.lease_secs`, as the trainer counts them).
    pub live_secs: u64,
}

impl Fleet {
    /// The GPU trainer workers live now, and whether more start on demand.
    pub async fn gpus(&self, db: &Db) -> Result<GpuOffer, ReportError> {
        let since = Utc::now() - chrono::Duration::seconds(self.live_secs as i64);
        let pool = db::device_pool(db, "trainer", since, &self.on_demand)
            .await
            .map_err(ReportError::from)?;
        Ok(GpuOffer {
            live_workers: pool.live_count(devices::CUDA) as u32,
            on_demand: pool.on_demand.iter().any(|c| c == devices::CUDA),
        })
    }
}

/// Terminal statuses a report can be built for.
const TERMINAL: [&str; 3] = ["completed", "failed", "cancelled"];

/// Collects the facts about training job `job_id`.
pub async fn collect(
    db: &Db,
    fleet: &Fleet,
    job_id: &str,
    report_id: &str,
) -> Result<Collected, ReportError> {
    let job = job::Entity::find_by_id(job_id.to_string())
        .one(db)
        .await
        .map_err(db::DbError::from)?
        .ok_or_else(|| ReportError::NotFound(format!("training job {job_id:?}")))?;
    if job.kind != JobKind::TrainingLayer2 {
        return Err(ReportError::Invalid(format!(
            "job {job_id} is a {} job, not a training job",
            job.kind
        )));
    }
    if !TERMINAL.contains(&job.status.as_str()) {
        return Err(ReportError::NotFinished(format!(
            "job {job_id} is {}; a report is built once it has finished",
            job.status
        )));
    }
    // Only the kinds a report reads: a long run has many throttled `progress` events.
    let events = job_event::Entity::find()
        .filter(job_event::Column::JobId.eq(job_id))
        .filter(job_event::Column::Kind.is_in([
            "data",
            "config",
            "environment",
            "metric",
            "samples",
            "log",
        ]))
        .order_by_asc(job_event::Column::Id)
        .all(db)
        .await
        .map_err(db::DbError::from)?;
    let layer = 2u32;
    let model = match job
        .result
        .as_ref()
        .and_then(|r| r.get("version"))
        .and_then(Value::as_u64)
    {
        Some(v) => model_info(db, layer as i32, v as i32, job.result.as_ref()).await?,
        None => None,
    };
    let previous = match &model {
        Some(m) => previous_version(db, m).await?,
        None => None,
    };
    let data = ReportData {
        report_id: report_id.to_string(),
        generated_at: Utc::now(),
        job: job_info(&job, layer, &events),
        parameters: parameters(&job, &events),
        data: data_stats(&job, &events),
        epochs: epochs(&events),
        model,
        previous,
        environment: last_payload(&events, "environment")
            .and_then(|p| serde_json::from_value::<Environment>(p.clone()).ok()),
        gpus: Some(fleet.gpus(db).await?),
    };
    Ok(Collected {
        data,
        samples: samples(&events),
    })
}

fn last_payload<'a>(events: &'a [job_event::Model], kind: &str) -> Option<&'a Value> {
    events
        .iter()
        .rev()
        .find(|e| e.kind == kind)
        .map(|e| &e.payload)
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn u(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn job_info(job: &job::Model, layer: u32, events: &[job_event::Model]) -> JobInfo {
    let result = job.result.clone().unwrap_or(Value::Null);
    let resumed = events
        .iter()
        .filter(|e| {
            e.kind == "log"
                && e.payload.get("message").and_then(Value::as_str)
                    == Some("resuming from checkpoint")
        })
        .filter_map(|e| u(&e.payload, "epoch"))
        .next_back()
        .map(|e| e as u32);
    let stop_reason = s(&result, "stop_reason").or_else(|| {
        (job.status == restoreflow_core::db::JobStatus::Cancelled).then(|| "cancelled".to_string())
    });
    JobInfo {
        id: job.id.clone(),
        layer,
        status: job.status.to_string(),
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        duration_seconds: match (job.started_at, job.finished_at) {
            (Some(a), Some(b)) => Some((b - a).num_milliseconds() as f64 / 1000.0),
            _ => None,
        },
        attempts: job.attempts.max(0) as u32,
        error: job.error.clone(),
        stop_reason,
        resumed_from_epoch: resumed,
    }
}

/// A one-line description of a serialized `LrSchedule` (`{"kind": …, …}`).
pub fn describe_schedule(v: &Value) -> String {
    let Some(obj) = v.as_object() else {
        return "n/a".into();
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("unknown");
    let rest: Vec<String> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "kind")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if rest.is_empty() {
        kind.replace('_', " ")
    } else {
        format!("{} ({})", kind.replace('_', " "), rest.join(", "))
    }
}

fn parameters(job: &job::Model, events: &[job_event::Model]) -> TrainingParameters {
    let p = &job.params;
    let cfg = last_payload(events, "config").and_then(|c| c.get("train_config"));
    let optimizer = cfg
        .and_then(|c| c.get("optimizer"))
        .map(|o| {
            format!(
                "AdamW (beta1 {}, beta2 {}, eps {}, weight decay {})",
                f(o, "beta1").map_or("n/a".into(), |x| x.to_string()),
                f(o, "beta2").map_or("n/a".into(), |x| x.to_string()),
                f(o, "eps").map_or("n/a".into(), |x| x.to_string()),
                f(o, "weight_decay").map_or("n/a".into(), |x| x.to_string()),
            )
        })
        .unwrap_or_else(|| "AdamW".into());
    TrainingParameters {
        epochs: u(p, "num_epochs").unwrap_or(0) as u32,
        batch_size: u(p, "batch_size").unwrap_or(0) as u32,
        learning_rate: f(p, "learning_rate").unwrap_or(0.0),
        schedule: cfg
            .and_then(|c| c.get("schedule"))
            .map(describe_schedule)
            .unwrap_or_else(|| "n/a".into()),
        max_pairs: u(p, "max_pairs").unwrap_or(0) as u32,
        optimizer,
        preset: s(p, "preset").unwrap_or_default(),
        patch_size: u(p, "patch_size").unwrap_or(0) as u32,
        seed: u(p, "seed").unwrap_or(0),
        device: s(p, "device").unwrap_or_default(),
        val_fraction: f(p, "val_fraction").unwrap_or(0.0),
        early_stopping_patience: u(p, "early_stopping").map(|x| x as u32),
        base_model: s(p, "base_model"),
        dataset: s(p, "dataset").filter(|d| !d.is_empty()),
        recipe: recipe(p),
        validation_view: validation_view(events, cfg),
    }
}

/// The recipe from the job's params; `None` for params stored before
/// recipes (they have no `schedule`).
fn recipe(p: &Value) -> Option<TrainingRecipe> {
    let schedule = s(p, "schedule")?;
    let progressive = p
        .get("progressive")
        .and_then(Value::as_array)
        .map(|stages| {
            stages
                .iter()
                .map(|st| ProgressiveStage {
                    patch_size: u(st, "patch_size").unwrap_or(0) as u32,
                    batch_size: u(st, "batch_size").unwrap_or(0) as u32,
                    until_step: u(st, "until_step").unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(TrainingRecipe {
        schedule,
        peak_learning_rate: f(p, "learning_rate").unwrap_or(0.0),
        warmup_steps: u(p, "warmup_steps"),
        min_learning_rate: f(p, "min_learning_rate"),
        progressive,
        loss: s(p, "loss").unwrap_or_default(),
        ssim_weight: f(p, "ssim_weight"),
        ink_weight: f(p, "ink_weight"),
        patches_per_page: u(p, "patches_per_page").map(|x| x as u32),
        steps_per_epoch: u(p, "steps_per_epoch").map(|x| x as u32),
        patch_sampling: s(p, "patch_sampling").unwrap_or_default(),
        clip_norm: f(p, "clip_norm"),
        max_minutes: f(p, "max_minutes"),
    })
}

/// What validation measured, as the last `metric` event recorded it; for a
/// run without one, described from the engine config's `val_mode` in the
/// words of the engine's `ValMode::describe`.
fn validation_view(events: &[job_event::Model], cfg: Option<&Value>) -> Option<String> {
    let recorded = events
        .iter()
        .rev()
        .filter(|e| e.kind == "metric")
        .find_map(|e| s(&e.payload, "val_view").filter(|v| !v.is_empty()));
    recorded.or_else(|| {
        let mode = cfg?.get("val_mode")?;
        match s(mode, "kind")?.as_str() {
            "center_crop" => u(mode, "size").map(|n| format!("centre {n}x{n} crop")),
            "tiled" => Some(format!(
                "whole page (tiled {} px, overlap {})",
                u(mode, "tile")?,
                u(mode, "overlap")?
            )),
            _ => None,
        }
    })
}

fn data_stats(job: &job::Model, events: &[job_event::Model]) -> DataStats {
    let d = last_payload(events, "data").cloned().unwrap_or(Value::Null);
    let result = job.result.clone().unwrap_or(Value::Null);
    let skipped: Vec<SkippedPair> = result
        .get("skipped_pages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| SkippedPair {
                    name: s(x, "page").unwrap_or_default(),
                    reason: s(x, "reason").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let pairs_used = u(&d, "pairs_used").unwrap_or(0);
    // The validation split size is what every metric event reports.
    let val_pairs = events
        .iter()
        .rev()
        .find(|e| e.kind == "metric")
        .and_then(|e| u(&e.payload, "val_pages"))
        .unwrap_or(0);
    DataStats {
        location: s(&d, "location").unwrap_or_else(|| "n/a".into()),
        files_seen: u(&d, "files_seen").unwrap_or(0),
        clean_files: u(&d, "clean_files").unwrap_or(0),
        degraded_files: u(&d, "degraded_files").unwrap_or(0),
        valid_pairs: u(&d, "valid_pairs").unwrap_or(0),
        pairs_used: pairs_used.saturating_sub(skipped.len() as u64),
        train_pairs: pairs_used
            .saturating_sub(val_pairs)
            .saturating_sub(skipped.len() as u64),
        val_pairs,
        skipped,
        dataset_id: s(&d, "dataset_id"),
        dataset_hash: s(&d, "dataset_hash"),
        // Absent from `data` events recorded before targets.
        targets: d
            .get("targets")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        dpi: d
            .get("dpi")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| u32::try_from(v.as_u64()?).ok())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// One row per epoch from `metric` events; a resumed run's repeat wins.
fn epochs(events: &[job_event::Model]) -> Vec<EpochRow> {
    let mut by_epoch: BTreeMap<u64, &Value> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "metric") {
        if let Some(epoch) = u(&e.payload, "epoch") {
            by_epoch.insert(epoch, &e.payload);
        }
    }
    by_epoch
        .into_iter()
        .map(|(epoch, p)| EpochRow {
            epoch: epoch as u32,
            train_loss: f(p, "train_loss").unwrap_or(f64::NAN),
            val_loss: f(p, "val_loss"),
            psnr: f(p, "psnr"),
            ssim: f(p, "ssim"),
            accuracy: f(p, "accuracy"),
            baseline_psnr: f(p, "baseline_psnr"),
            baseline_ssim: f(p, "baseline_ssim"),
            baseline_accuracy: f(p, "baseline_accuracy"),
            learning_rate: f(p, "learning_rate").unwrap_or(0.0),
            pairs_per_second: f(p, "pairs_per_second").unwrap_or(0.0),
            seconds: f(p, "seconds").unwrap_or(0.0),
        })
        .collect()
}

fn samples(events: &[job_event::Model]) -> Vec<SampleKeys> {
    let Some(p) = last_payload(events, "samples") else {
        return Vec::new();
    };
    p.get("samples")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    let keys = x.get("keys")?;
                    Some(SampleKeys {
                        name: s(x, "name").unwrap_or_default(),
                        degraded: s(keys, "degraded")?,
                        restored: s(keys, "restored")?,
                        clean: s(keys, "clean")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn model_info(
    db: &Db,
    layer: i32,
    version: i32,
    result: Option<&Value>,
) -> Result<Option<ModelInfo>, ReportError> {
    let Some(m) = model_version::Entity::find_by_id((layer, version))
        .one(db)
        .await
        .map_err(db::DbError::from)?
    else {
        return Ok(None);
    };
    let aliases = model_alias::Entity::find()
        .filter(model_alias::Column::Layer.eq(layer))
        .filter(model_alias::Column::Version.eq(version))
        .order_by_asc(model_alias::Column::Alias)
        .all(db)
        .await
        .map_err(db::DbError::from)?
        .into_iter()
        .map(|a| a.alias)
        .collect();
    let preset = m
        .config
        .get("model")
        .and_then(|c| c.get("preset"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    Ok(Some(ModelInfo {
        layer: m.layer as u32,
        version: m.version as u32,
        object_path: format!("models/{}", m.object_key),
        size_bytes: m.size_bytes.max(0) as u64,
        parameter_count: m.parameter_count.max(0) as u64,
        architecture: format!("Restormer ({preset})"),
        config: m.config.get("model").cloned().unwrap_or(Value::Null),
        sha256: m.sha256.clone(),
        aliases,
        best_epoch: result.and_then(|r| u(r, "best_epoch")).map(|e| e as u32),
    }))
}

/// The newest earlier version of the layer that still exists, with its
/// best-epoch validation metrics as registered.
async fn previous_version(
    db: &Db,
    model: &ModelInfo,
) -> Result<Option<PreviousVersion>, ReportError> {
    let Some(prev) = model_version::Entity::find()
        .filter(model_version::Column::Layer.eq(model.layer as i32))
        .filter(model_version::Column::Status.eq("ready"))
        .filter(model_version::Column::Version.lt(model.version as i32))
        .order_by_desc(model_version::Column::Version)
        .one(db)
        .await
        .map_err(db::DbError::from)?
    else {
        return Ok(None);
    };
    let fin = prev.metrics.get("final").cloned().unwrap_or(Value::Null);
    let ours = model_version::Entity::find_by_id((model.layer as i32, model.version as i32))
        .one(db)
        .await
        .map_err(db::DbError::from)?;
    // Same validation data = same pairs (hash) split the same way (fraction, seed).
    let training = |c: &Value| c.get("training").cloned().unwrap_or(Value::Null);
    let same = ours.as_ref().is_some_and(|o| {
        o.dataset_hash.is_some()
            && o.dataset_hash == prev.dataset_hash
            && f(&training(&o.config), "val_fraction") == f(&training(&prev.config), "val_fraction")
            && u(&training(&o.config), "seed") == u(&training(&prev.config), "seed")
    });
    Ok(Some(PreviousVersion {
        version: prev.version as u32,
        psnr: f(&fin, "psnr"),
        ssim: f(&fin, "ssim"),
        val_loss: f(&fin, "val_loss"),
        dataset_hash: prev.dataset_hash.clone(),
        same_validation_data: same,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: i64, kind: &str, payload: Value) -> job_event::Model {
        job_event::Model {
            id,
            job_id: "j".into(),
            kind: kind.into(),
            payload,
            created_at: Utc::now(),
        }
    }

    fn metric(id: i64, payload: Value) -> job_event::Model {
        event(id, "metric", payload)
    }

    fn finished_job(result: Value) -> job::Model {
        let t = Utc::now();
        job::Model {
            progress_at: None,
            device: None,
            id: "j".into(),
            kind: JobKind::TrainingLayer2,
            status: restoreflow_core::db::JobStatus::Completed,
            params: json!({}),
            progress: 100.0,
            attempts: 1,
            error: None,
            result: Some(result),
            lease_owner: None,
            lease_expires_at: None,
            cancel_requested: false,
            created_at: t,
            updated_at: t,
            started_at: Some(t),
            finished_at: Some(t),
        }
    }

    #[test]
    fn the_training_targets_come_from_the_data_event() {
        let job = finished_job(json!({"skipped_pages": []}));
        let events = vec![event(
            1,
            "data",
            json!({"location": "training-data", "pairs_used": 700, "dataset_id": null,
                   "targets": {"digital": 600, "as_printed": 100}, "dpi": [300, 150]}),
        )];
        let d = data_stats(&job, &events);
        assert_eq!(
            d.targets,
            BTreeMap::from([
                ("as_printed".to_string(), 100),
                ("digital".to_string(), 600)
            ])
        );
        // As recorded (the trainer writes them ascending).
        assert_eq!(d.dpi, [300, 150]);
        // Events from before targets have none.
        let old = vec![event(
            1,
            "data",
            json!({"location": "training-data", "pairs_used": 6}),
        )];
        let d = data_stats(&job, &old);
        assert!(d.targets.is_empty() && d.dpi.is_empty());
    }

    #[test]
    fn the_recipe_comes_from_the_params() {
        let p = json!({
            "learning_rate": 0.002, "schedule": "cyclic_cosine", "warmup_steps": null,
            "min_learning_rate": 1e-6, "loss": "l1_ssim", "ssim_weight": 0.5,
            "ink_weight": 3.0,
            "progressive": [{"patch_size": 32, "batch_size": 4, "until_step": 10}],
            "patches_per_page": null, "steps_per_epoch": 7, "patch_sampling": "uniform",
            "clip_norm": 0.5, "max_minutes": 2, "val_view": "whole_page", "val_crop_size": null
        });
        let r = recipe(&p).unwrap();
        assert_eq!(r.schedule, "cyclic_cosine");
        assert_eq!(r.peak_learning_rate, 0.002);
        assert_eq!((r.warmup_steps, r.min_learning_rate), (None, Some(1e-6)));
        assert_eq!(
            r.progressive,
            vec![ProgressiveStage {
                patch_size: 32,
                batch_size: 4,
                until_step: 10
            }]
        );
        assert_eq!((r.loss.as_str(), r.ssim_weight), ("l1_ssim", Some(0.5)));
        assert_eq!(r.ink_weight, Some(3.0));
        assert_eq!((r.patches_per_page, r.steps_per_epoch), (None, Some(7)));
        assert_eq!(r.patch_sampling, "uniform");
        assert_eq!((r.clip_norm, r.max_minutes), (Some(0.5), Some(2.0)));
        // Params stored before recipes have none.
        assert_eq!(recipe(&json!({"learning_rate": 0.0003})), None);
    }

    #[test]
    fn the_validation_view_is_the_recorded_one() {
        let events = vec![
            metric(1, json!({"epoch": 1, "val_view": "centre 128x128 crop"})),
            metric(2, json!({"epoch": 2})),
        ];
        assert_eq!(
            validation_view(&events, None).as_deref(),
            Some("centre 128x128 crop")
        );
        let tiled = json!({"val_mode": {"kind": "tiled", "tile": 256, "overlap": 32}});
        assert_eq!(
            validation_view(&[], Some(&tiled)).as_deref(),
            Some("whole page (tiled 256 px, overlap 32)")
        );
        let crop = json!({"val_mode": {"kind": "center_crop", "size": 256}});
        assert_eq!(
            validation_view(&[], Some(&crop)).as_deref(),
            Some("centre 256x256 crop")
        );
        assert_eq!(validation_view(&[], None), None);
    }

    #[test]
    fn schedules_are_described_from_their_fields() {
        assert_eq!(
            describe_schedule(&json!({"kind": "constant", "lr": 0.0003})),
            "constant (lr=0.0003)"
        );
        assert_eq!(describe_schedule(&json!(null)), "n/a");
        assert!(
            describe_schedule(&json!({"kind": "warmup_cosine", "lr": 0.001, "warmup_steps": 10}))
                .starts_with("warmup cosine (")
        );
    }
}
