//! Gathers a report's facts from what their owners recorded, asked over
//! gRPC: the job and its events (`data`, `config`, `environment`, `metric`,
//! `samples`, `log`) from the trainer's job ledger, the GPU workers from the
//! trainer's status, and the registered model version with its aliases and
//! the version before it from the model registry. The report service reads
//! no other service's tables.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use restoreflow_core::db::{self, JobKind, JobStatus};
use restoreflow_core::devices;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_proto::v1::{
    self, job_service_client::JobServiceClient,
    model_registry_service_client::ModelRegistryServiceClient,
    trainer_service_client::TrainerServiceClient,
};
use restoreflow_report_render::{
    DataStats, Environment, EpochRow, GpuOffer, JobInfo, ModelInfo, PreviousVersion,
    ProgressiveStage, ReportData, SkippedPair, TrainingParameters, TrainingRecipe,
};
use serde_json::Value;
use tonic::Code;

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

/// The event kinds a report reads: a long run also has many throttled
/// `progress` events, which it does not need.
const EVENT_KINDS: [&str; 6] = ["data", "config", "environment", "metric", "samples", "log"];

/// Events asked for per call.
const EVENT_PAGE: u32 = 1000;

/// The owners of a report's facts, as gRPC clients: the trainer (its job
/// ledger and status) and the model registry.
#[derive(Clone)]
pub struct Sources {
    jobs: JobServiceClient<AuthChannel>,
    trainer: TrainerServiceClient<AuthChannel>,
    registry: ModelRegistryServiceClient<AuthChannel>,
}

/// An owner's refusal or failure, as a report error.
fn upstream(service: &'static str, status: tonic::Status) -> ReportError {
    ReportError::Upstream {
        service,
        code: status.code(),
        message: status.message().to_string(),
    }
}

impl Sources {
    /// Clients over the trainer's and the registry's channels.
    pub fn new(trainer: AuthChannel, registry: AuthChannel) -> Self {
        Self {
            jobs: JobServiceClient::new(trainer.clone()),
            trainer: TrainerServiceClient::new(trainer),
            registry: ModelRegistryServiceClient::new(registry),
        }
    }

    /// The GPU trainer workers live now, and whether more start on demand.
    pub async fn gpus(&self) -> Result<GpuOffer, ReportError> {
        let status = self
            .trainer
            .clone()
            .get_training_status(v1::GetTrainingStatusRequest {})
            .await
            .map_err(|s| upstream("trainer", s))?
            .into_inner();
        let cuda = status.devices.iter().find(|d| d.device == devices::CUDA);
        Ok(GpuOffer {
            live_workers: cuda.map_or(0, |d| d.live_workers),
            on_demand: cuda.is_some_and(|d| d.on_demand),
        })
    }

    /// Training job `job_id` as the trainer's ledger has it.
    pub async fn job(&self, job_id: &str) -> Result<JobFacts, ReportError> {
        let job = self
            .jobs
            .clone()
            .get_job(v1::JobRef {
                job_id: job_id.to_string(),
            })
            .await
            .map_err(|s| match s.code() {
                Code::NotFound => ReportError::NotFound(format!("training job {job_id:?}")),
                Code::InvalidArgument => ReportError::Invalid(s.message().to_string()),
                _ => upstream("trainer", s),
            })?
            .into_inner();
        JobFacts::from_proto(&job)
    }

    /// The events of `job_id` that a report reads, oldest first.
    pub async fn events(&self, job_id: &str) -> Result<Vec<Event>, ReportError> {
        let mut out: Vec<Event> = Vec::new();
        loop {
            let page = self
                .jobs
                .clone()
                .list_job_events(v1::JobEventQuery {
                    job_id: job_id.to_string(),
                    after: out.last().map_or(0, |e| e.id),
                    limit: EVENT_PAGE,
                    kinds: EVENT_KINDS.iter().map(|k| k.to_string()).collect(),
                })
                .await
                .map_err(|s| upstream("trainer", s))?
                .into_inner();
            let n = page.events.len();
            out.extend(page.events.iter().map(|e| Event {
                id: e.id,
                kind: e.kind.clone(),
                payload: restoreflow_proto::event_payload(e),
            }));
            if n < EVENT_PAGE as usize {
                return Ok(out);
            }
        }
    }

    /// Finished training jobs, newest first: at most `max` of them.
    pub async fn finished_training_jobs(&self, max: usize) -> Result<Vec<String>, ReportError> {
        let mut ids = Vec::new();
        let mut token = String::new();
        while ids.len() < max {
            let page = self
                .jobs
                .clone()
                .list_jobs(v1::JobQuery {
                    kind: db::kind_to_proto(JobKind::TrainingLayer2) as i32,
                    statuses: [
                        JobStatus::Completed,
                        JobStatus::Failed,
                        JobStatus::Cancelled,
                    ]
                    .into_iter()
                    .map(|s| db::status_to_proto(s) as i32)
                    .collect(),
                    page_size: (max - ids.len()).min(1000) as u32,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .map_err(|s| upstream("trainer", s))?
                .into_inner();
            ids.extend(page.jobs.into_iter().map(|j| j.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(ids)
    }

    /// Version `version` of `layer` with its aliases; `None` when the
    /// registry has no such version (deleted since).
    async fn version(
        &self,
        layer: u32,
        version: u32,
    ) -> Result<Option<v1::ModelVersion>, ReportError> {
        match self
            .registry
            .clone()
            .get_version(v1::VersionRef {
                layer,
                version: version.to_string(),
            })
            .await
        {
            Ok(v) => Ok(Some(v.into_inner())),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(upstream("model-registry", s)),
        }
    }

    /// The newest earlier ready version of the layer of `version`, and
    /// `version` itself as the registry has it.
    async fn previous(
        &self,
        layer: u32,
        version: u32,
    ) -> Result<Option<(v1::ModelVersion, v1::ModelVersion)>, ReportError> {
        match self
            .registry
            .clone()
            .previous_version(v1::VersionRef {
                layer,
                version: version.to_string(),
            })
            .await
        {
            Ok(c) => {
                let c = c.into_inner();
                Ok(c.a.zip(c.b))
            }
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(upstream("model-registry", s)),
        }
    }
}

/// The job facts a report reads.
#[derive(Debug, Clone)]
pub struct JobFacts {
    id: String,
    kind: JobKind,
    status: JobStatus,
    params: Value,
    result: Option<Value>,
    attempts: u32,
    error: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl JobFacts {
    fn from_proto(j: &v1::Job) -> Result<Self, ReportError> {
        let bad = |what: &str| ReportError::Upstream {
            service: "trainer",
            code: Code::Internal,
            message: format!("job {} came back with {what}", j.id),
        };
        Ok(Self {
            id: j.id.clone(),
            kind: db::kind_from_proto(j.kind)
                .ok()
                .flatten()
                .ok_or_else(|| bad("no kind"))?,
            status: db::status_from_proto(j.status)
                .ok()
                .flatten()
                .ok_or_else(|| bad("no status"))?,
            params: restoreflow_proto::job_params(j),
            result: restoreflow_proto::job_result(j),
            attempts: j.attempts,
            error: j.error.clone(),
            created_at: db::from_timestamp(j.created_at.as_ref())
                .ok_or_else(|| bad("no creation time"))?,
            started_at: db::from_timestamp(j.started_at.as_ref()),
            finished_at: db::from_timestamp(j.finished_at.as_ref()),
        })
    }
}

/// One job event.
#[derive(Debug, Clone)]
pub struct Event {
    id: i64,
    kind: String,
    payload: Value,
}

/// Collects the facts about training job `job_id`.
pub async fn collect(
    sources: &Sources,
    job_id: &str,
    report_id: &str,
) -> Result<Collected, ReportError> {
    let job = sources.job(job_id).await?;
    if job.kind != JobKind::TrainingLayer2 {
        return Err(ReportError::Invalid(format!(
            "job {job_id} is a {} job, not a training job",
            job.kind
        )));
    }
    if !job.status.is_terminal() {
        return Err(ReportError::NotFinished(format!(
            "job {job_id} is {}; a report is built once it has finished",
            job.status
        )));
    }
    let events = sources.events(job_id).await?;
    let layer = 2u32;
    let version = job
        .result
        .as_ref()
        .and_then(|r| r.get("version"))
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok());
    let (model, previous) = match version {
        Some(v) => match sources.version(layer, v).await? {
            Some(mv) => {
                let model = model_info(&mv, job.result.as_ref());
                let previous = sources
                    .previous(layer, v)
                    .await?
                    .map(|(prev, ours)| previous_version(&prev, &ours));
                (Some(model), previous)
            }
            None => (None, None),
        },
        None => (None, None),
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
        gpus: Some(sources.gpus().await?),
    };
    Ok(Collected {
        data,
        samples: samples(&events),
    })
}

fn last_payload<'a>(events: &'a [Event], kind: &str) -> Option<&'a Value> {
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

fn job_info(job: &JobFacts, layer: u32, events: &[Event]) -> JobInfo {
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
    let stop_reason = s(&result, "stop_reason")
        .or_else(|| (job.status == JobStatus::Cancelled).then(|| "cancelled".to_string()));
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
        attempts: job.attempts,
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

fn parameters(job: &JobFacts, events: &[Event]) -> TrainingParameters {
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
fn validation_view(events: &[Event], cfg: Option<&Value>) -> Option<String> {
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

fn data_stats(job: &JobFacts, events: &[Event]) -> DataStats {
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
    // The validation split size is what every metric event reports: the
    // pages held out of training (older events only have `val_pages`, which
    // then counted every held-out page).
    let val_pairs = events
        .iter()
        .rev()
        .find(|e| e.kind == "metric")
        .and_then(|e| u(&e.payload, "held_out_pages").or_else(|| u(&e.payload, "val_pages")))
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
fn epochs(events: &[Event]) -> Vec<EpochRow> {
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

fn samples(events: &[Event]) -> Vec<SampleKeys> {
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

fn model_info(m: &v1::ModelVersion, result: Option<&Value>) -> ModelInfo {
    let config = restoreflow_proto::version_config(m);
    let preset = config
        .get("model")
        .and_then(|c| c.get("preset"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let mut aliases = m.aliases.clone();
    aliases.sort();
    ModelInfo {
        layer: m.layer,
        version: m.version,
        object_path: format!("models/{}", m.object_key),
        size_bytes: m.size_bytes,
        parameter_count: m.parameter_count,
        architecture: format!("Restormer ({preset})"),
        config: config.get("model").cloned().unwrap_or(Value::Null),
        sha256: m.sha256.clone(),
        aliases,
        best_epoch: result.and_then(|r| u(r, "best_epoch")).map(|e| e as u32),
    }
}

/// The version before ours with its best-epoch validation metrics as
/// registered, and whether both validated on the same data: the same pairs
/// (dataset hash) split the same way (fraction and seed), the same number of
/// held-out pages scored (`val_pages`; absent before it existed, when every
/// held-out page was).
fn previous_version(prev: &v1::ModelVersion, ours: &v1::ModelVersion) -> PreviousVersion {
    let fin = restoreflow_proto::version_metrics(prev)
        .get("final")
        .cloned()
        .unwrap_or(Value::Null);
    let training = |m: &v1::ModelVersion| {
        restoreflow_proto::version_config(m)
            .get("training")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (a, b) = (training(prev), training(ours));
    let hash = |m: &v1::ModelVersion| (!m.dataset_hash.is_empty()).then(|| m.dataset_hash.clone());
    let same = hash(ours).is_some()
        && hash(ours) == hash(prev)
        && f(&a, "val_fraction") == f(&b, "val_fraction")
        && u(&a, "seed") == u(&b, "seed")
        && u(&a, "val_pages") == u(&b, "val_pages");
    PreviousVersion {
        version: prev.version,
        psnr: f(&fin, "psnr"),
        ssim: f(&fin, "ssim"),
        val_loss: f(&fin, "val_loss"),
        dataset_hash: hash(prev),
        same_validation_data: same,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: i64, kind: &str, payload: Value) -> Event {
        Event {
            id,
            kind: kind.into(),
            payload,
        }
    }

    fn metric(id: i64, payload: Value) -> Event {
        event(id, "metric", payload)
    }

    fn finished_job(result: Value) -> JobFacts {
        let t = Utc::now();
        JobFacts {
            id: "j".into(),
            kind: JobKind::TrainingLayer2,
            status: JobStatus::Completed,
            params: json!({}),
            attempts: 1,
            error: None,
            result: Some(result),
            created_at: t,
            started_at: Some(t),
            finished_at: Some(t),
        }
    }

    #[test]
    fn job_facts_come_from_the_ledger_exactly() {
        let seed: u64 = 9_007_199_254_740_993; // 2^53 + 1: a double rounds it
        let params = json!({"seed": seed});
        let job = v1::Job {
            id: "j".into(),
            kind: v1::JobKind::TrainingLayer2 as i32,
            status: v1::JobStatus::Failed as i32,
            params: Some(restoreflow_proto::json_to_struct(&params)),
            params_json: params.to_string(),
            attempts: 2,
            error: Some("out of pairs".into()),
            created_at: Some(db::timestamp(Utc::now())),
            ..Default::default()
        };
        let facts = JobFacts::from_proto(&job).unwrap();
        assert_eq!(facts.params["seed"].as_u64(), Some(seed));
        assert_eq!(
            (facts.kind, facts.status),
            (JobKind::TrainingLayer2, JobStatus::Failed)
        );
        assert_eq!(facts.attempts, 2);
        assert!(facts.result.is_none() && facts.started_at.is_none());
        // A job without a status is the trainer's fault, said as such.
        let broken = v1::Job { status: 0, ..job };
        let err = JobFacts::from_proto(&broken).unwrap_err();
        assert!(
            matches!(
                err,
                ReportError::Upstream {
                    code: Code::Internal,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_previous_version_shares_validation_data_only_when_split_alike() {
        let version = |v: u32, hash: &str, seed: u64, fraction: f64| {
            let config = json!({"training": {"seed": seed, "val_fraction": fraction}});
            v1::ModelVersion {
                layer: 2,
                version: v,
                dataset_hash: hash.into(),
                config_json: config.to_string(),
                metrics_json: json!({"final": {"psnr": 20.5, "ssim": 0.8}}).to_string(),
                ..Default::default()
            }
        };
        let big = 9_007_199_254_740_993;
        let p = previous_version(&version(1, "h", big, 0.1), &version(2, "h", big, 0.1));
        assert!(p.same_validation_data);
        assert_eq!((p.version, p.psnr, p.ssim), (1, Some(20.5), Some(0.8)));
        // Seeds a double cannot tell apart still differ.
        let p = previous_version(&version(1, "h", big, 0.1), &version(2, "h", big - 1, 0.1));
        assert!(!p.same_validation_data);
        let p = previous_version(&version(1, "h", 1, 0.2), &version(2, "h", 1, 0.1));
        assert!(!p.same_validation_data);
        let p = previous_version(&version(1, "", 1, 0.1), &version(2, "", 1, 0.1));
        assert!(!p.same_validation_data && p.dataset_hash.is_none());
        // Scoring 32 of the held-out pages is not scoring all of them.
        let capped = |v: u32, pages: Option<u32>| {
            let mut m = version(v, "h", 1, 0.1);
            let config = json!({"training": {"seed": 1, "val_fraction": 0.1, "val_pages": pages}});
            m.config_json = config.to_string();
            m
        };
        assert!(previous_version(&capped(1, Some(32)), &capped(2, Some(32))).same_validation_data);
        assert!(
            !previous_version(&version(1, "h", 1, 0.1), &capped(2, Some(32))).same_validation_data
        );
        assert!(!previous_version(&capped(1, Some(16)), &capped(2, Some(32))).same_validation_data);
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
    fn the_split_sizes_count_every_held_out_page() {
        let job = finished_job(json!({"skipped_pages": []}));
        let data = event(
            1,
            "data",
            json!({"location": "training-data", "pairs_used": 600}),
        );
        // 60 pages held out, 32 of them scored per epoch (val_pages).
        let events = vec![
            data.clone(),
            metric(
                2,
                json!({"epoch": 1, "val_pages": 32, "held_out_pages": 60}),
            ),
        ];
        let d = data_stats(&job, &events);
        assert_eq!((d.train_pairs, d.val_pairs), (540, 60));
        // Before held_out_pages, every held-out page was scored.
        let old = vec![data, metric(2, json!({"epoch": 1, "val_pages": 60}))];
        let d = data_stats(&job, &old);
        assert_eq!((d.train_pairs, d.val_pairs), (540, 60));
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
