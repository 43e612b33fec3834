//! Layer 2 training routes; the trainer service does the work over gRPC, and
//! the event stream reads job events from the metadata database.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use restoreflow_core::db::{self, JobStatus};
use restoreflow_core::ledger::Owner;
use restoreflow_proto::{prost_types, v1};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::routes::jobs::EventView;
use crate::state::AppState;

/// How often the event stream looks for new events.
const POLL: Duration = Duration::from_millis(500);

/// Body of `POST /training/layer2/start`. Every field is optional: an empty
/// body trains the default recipe on every pair for the default time budget.
/// The trainer checks each field and answers 400 naming the one it refuses;
/// the defaults are the trainer's (listed in the README's training section).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// Epochs to run, 1..=1000. Absent (or 0): train for a time budget,
    /// `max_minutes` (default budget when absent) capped at the default epochs.
    pub num_epochs: Option<u32>,
    /// Patches per optimiser step, 1..=64 (absent or 0: the default, or the
    /// first progressive stage's batch). With `progressive` it only sizes an
    /// epoch.
    pub batch_size: Option<u32>,
    /// Most clean/degraded pairs to use (at least 2), the first in name order;
    /// absent or 0: every pair.
    pub max_pairs: Option<u32>,
    /// Peak learning rate in (0, 1) (the rate of `constant`).
    pub learning_rate: Option<f64>,
    /// Training patch side, a multiple of 8 in 16..=512; not with `progressive`.
    pub patch_size: Option<u32>,
    /// Model size: `tiny`, `small` (default) or `base`.
    pub preset: Option<String>,
    /// Share of pages held out for validation, in (0, 0.5].
    pub val_fraction: Option<f64>,
    /// Held-out pages scored at each epoch's end, 1..=100000 (default 32): the
    /// first ones of the split, the same every epoch.
    pub val_pages: Option<u32>,
    /// Seeds the split and the patch sampler; random (and recorded) when absent.
    pub seed: Option<u64>,
    /// `cpu`, `cuda` or `auto` (default): the device class the job runs on,
    /// checked against the live trainer workers (409 when none has it and the
    /// deployment does not start one on demand); `auto` picks `cuda` when a
    /// CUDA worker is live, else `cpu`. Only a worker of that class runs it.
    pub device: Option<String>,
    /// Matrix-multiply precision: `f32`, `tf32` (CUDA TensorFloat-32, f32
    /// storage) or `auto` (default: `tf32` on cuda, `f32` on cpu).
    pub precision: Option<String>,
    /// A dataset id or a key prefix of pair names; default every pair in `training-data`.
    pub dataset: Option<String>,
    /// Layer 2 version number or alias to fine-tune from.
    pub base_model: Option<String>,
    /// Stop after this many epochs without a better validation PSNR.
    pub early_stopping: Option<u32>,
    /// Learning-rate schedule: `warmup_cosine` (linear warm-up, then a half
    /// cosine to `min_learning_rate` at the end of the run or its time
    /// budget), `constant`, or `cyclic_cosine` (the official Restormer shape:
    /// flat for the first 92/300 of the run, then a half cosine).
    pub schedule: Option<String>,
    /// Warm-up steps of `warmup_cosine`, 0..=100000.
    pub warmup_steps: Option<u64>,
    /// Final rate of `warmup_cosine` and `cyclic_cosine`, in [0, learning_rate].
    pub min_learning_rate: Option<f64>,
    /// Progressive training (1..=8 stages): each stage's patch and batch size
    /// apply until its `until_step` (strictly increasing); the last stage's
    /// sizes stay after it.
    pub progressive: Option<Vec<StageBody>>,
    /// Training loss: `l1`, `charbonnier` (eps 1e-3) or `l1_ssim`
    /// (L1 + `ssim_weight` x (1 - SSIM)).
    pub loss: Option<String>,
    /// Weight of the SSIM term of `l1_ssim`, in [0, 10].
    pub ssim_weight: Option<f64>,
    /// Extra weight of ink pixels in the per-pixel loss (any loss), in
    /// [0, 20]: each pixel counts 1 + `ink_weight` x (1 - luma of the clean
    /// page), so black ink counts 1 + `ink_weight` times white paper.
    pub ink_weight: Option<f64>,
    /// Patches drawn per training page per epoch, 1..=256 (an epoch is
    /// `ceil(train pages x patches_per_page / batch_size)` steps); not with
    /// `steps_per_epoch`.
    pub patches_per_page: Option<u32>,
    /// Optimiser steps per epoch, 1..=100000; not with `patches_per_page`.
    pub steps_per_epoch: Option<u32>,
    /// Where patches are taken inside a page: `ink` (prefer patches with
    /// text), `damage` (prefer where the degraded page differs most from
    /// the clean one) or `uniform`.
    pub patch_sampling: Option<String>,
    /// Clip gradients to this global L2 norm (> 0); absent: no clipping
    /// unless the trainer's default clips.
    pub clip_norm: Option<f64>,
    /// Wall-clock budget in minutes, (0, 10080], validation included: the
    /// run stops cleanly (stop reason `time_budget`) and its schedule decays
    /// by the share of the budget used.
    pub max_minutes: Option<f64>,
    /// What each validation page is measured on: `center_crop` (a centred
    /// `val_crop_size` square, fast) or `whole_page` (tiled, as restoration
    /// restores it).
    pub val_view: Option<String>,
    /// Side of the `center_crop` square, a multiple of 8 in 32..=1024.
    pub val_crop_size: Option<u32>,
}

/// One progressive training stage.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    /// Patch side, a multiple of 8 in 16..=512.
    pub patch_size: u32,
    /// Patches per step, 1..=64.
    pub batch_size: u32,
    /// First step that no longer belongs to this stage.
    pub until_step: u64,
}

impl From<StartBody> for v1::StartTrainingRequest {
    fn from(body: StartBody) -> Self {
        Self {
            num_epochs: body.num_epochs.unwrap_or(0),
            batch_size: body.batch_size.unwrap_or(0),
            max_pairs: body.max_pairs.unwrap_or(0),
            learning_rate: body.learning_rate,
            patch_size: body.patch_size,
            preset: body.preset.unwrap_or_default(),
            val_fraction: body.val_fraction,
            val_pages: body.val_pages,
            seed: body.seed,
            device: body.device.unwrap_or_default(),
            precision: body.precision.unwrap_or_default(),
            dataset: body.dataset.unwrap_or_default(),
            base_model: body.base_model.unwrap_or_default(),
            early_stopping_patience: body.early_stopping,
            schedule: body.schedule.unwrap_or_default(),
            warmup_steps: body.warmup_steps,
            min_learning_rate: body.min_learning_rate,
            progressive: body
                .progressive
                .unwrap_or_default()
                .into_iter()
                .map(|s| v1::ProgressiveStage {
                    patch_size: s.patch_size,
                    batch_size: s.batch_size,
                    until_step: s.until_step,
                })
                .collect(),
            loss: body.loss.unwrap_or_default(),
            ssim_weight: body.ssim_weight,
            ink_weight: body.ink_weight,
            patches_per_page: body.patches_per_page,
            steps_per_epoch: body.steps_per_epoch,
            patch_sampling: body.patch_sampling.unwrap_or_default(),
            clip_norm: body.clip_norm,
            max_minutes: body.max_minutes,
            val_view: body.val_view.unwrap_or_default(),
            val_crop_size: body.val_crop_size,
        }
    }
}

/// Answer of `POST /training/layer2/start`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingAccepted {
    /// The queued job.
    pub job_id: String,
    /// Always `queued`.
    pub status: String,
    /// Where to poll.
    pub status_url: String,
    /// Server-Sent Events of progress and metrics.
    pub events_url: String,
}

/// Queues a Layer 2 training job and returns at once.
#[utoipa::path(post, path = "/training/layer2/start", tag = "training", request_body = StartBody,
    security(("api_key" = [])),
    responses((status = 202, body = TrainingAccepted), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<(StatusCode, ApiJson<TrainingAccepted>), ApiError> {
    crate::error::no_empty_names(&[
        ("preset", body.preset.as_deref()),
        ("device", body.device.as_deref()),
        ("precision", body.precision.as_deref()),
        ("base_model", body.base_model.as_deref()),
        ("schedule", body.schedule.as_deref()),
        ("loss", body.loss.as_deref()),
        ("patch_sampling", body.patch_sampling.as_deref()),
        ("val_view", body.val_view.as_deref()),
    ])?;
    let req = v1::StartTrainingRequest::from(body);
    let job = state
        .trainer
        .clone()
        .start_training(req)
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(TrainingAccepted {
            status_url: format!("/training/jobs/{}", job.id),
            events_url: format!("/training/jobs/{}/events", job.id),
            job_id: job.id,
            status: "queued".into(),
        }),
    ))
}

/// One finished epoch.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EpochView {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Mean training loss.
    pub train_loss: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation PSNR of the restored images (dB).
    pub psnr: f64,
    /// Validation SSIM of the restored images.
    pub ssim: f64,
    /// Validation pixel accuracy of the restored images.
    pub accuracy: f64,
    /// PSNR of the degraded inputs themselves (the identity baseline).
    pub baseline_psnr: f64,
    /// SSIM of the degraded inputs.
    pub baseline_ssim: f64,
    /// Pixel accuracy of the degraded inputs.
    pub baseline_accuracy: f64,
    /// Learning rate at the epoch's end.
    pub learning_rate: f64,
    /// Training pairs (patches) per second.
    pub pairs_per_second: f64,
    /// Wall-clock seconds, validation included.
    pub seconds: f64,
    /// What the validation figures were measured on, e.g. `centre 256x256
    /// crop` or `whole page (tiled 256 px, overlap 32)`; empty for older runs.
    pub val_view: String,
    /// Optimiser steps completed at the epoch's end.
    pub step: u64,
    /// Optimiser steps per second of training (validation excluded).
    pub steps_per_second: f64,
    /// Wall-clock seconds of the epoch's validation alone.
    pub val_seconds: f64,
    /// Held-out pages scored at the epoch's end (`val_pages` at most).
    pub val_pages: u32,
    /// Pages the split held out of training.
    pub held_out_pages: u32,
}

impl From<v1::EpochMetrics> for EpochView {
    fn from(m: v1::EpochMetrics) -> Self {
        Self {
            epoch: m.epoch,
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            psnr: m.psnr,
            ssim: m.ssim,
            accuracy: m.accuracy,
            baseline_psnr: m.baseline_psnr,
            baseline_ssim: m.baseline_ssim,
            baseline_accuracy: m.baseline_accuracy,
            learning_rate: m.learning_rate,
            pairs_per_second: m.pairs_per_second,
            seconds: m.seconds,
            val_view: m.val_view,
            step: m.step,
            steps_per_second: m.steps_per_second,
            val_seconds: m.val_seconds,
            val_pages: m.val_pages,
            held_out_pages: m.held_out_pages,
        }
    }
}

/// A training job with its progress and metrics.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingJobView {
    /// Job id.
    pub id: String,
    /// `queued`, `running`, `completed`, `failed`, `cancelled`.
    pub status: String,
    /// 0..=100.
    pub progress: f64,
    /// Current (or last) epoch, from 1.
    pub epoch: u32,
    /// Optimiser steps completed.
    pub step: u64,
    /// Estimated seconds left (while running).
    pub eta_seconds: Option<f64>,
    /// Training pairs per second of the latest progress report.
    pub throughput: Option<f64>,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Claims so far (more than 1 after a resume).
    pub attempts: u32,
    /// The validated request.
    pub params: serde_json::Value,
    /// Once completed: registered version, best epoch, final metrics,
    /// `targets` (pairs used per target of their datasets, e.g.
    /// `{"digital": 600}`) and `dpi`, ...
    pub result: Option<serde_json::Value>,
    /// Cause, once failed.
    pub error: Option<String>,
    /// Metrics of every finished epoch.
    pub epochs: Vec<EpochView>,
    /// Created.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last change.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// First claimed.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Terminal state reached.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn time(t: Option<prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    db::from_timestamp(t.as_ref())
}

/// Lowercase name of a job status.
pub fn status_name(s: i32) -> String {
    match db::status_from_proto(s) {
        Ok(Some(status)) => status.as_str(),
        _ => "unknown",
    }
    .to_string()
}

impl From<v1::TrainingJob> for TrainingJobView {
    fn from(t: v1::TrainingJob) -> Self {
        let job = t.job.unwrap_or_default();
        Self {
            status: status_name(job.status),
            progress: job.progress,
            epoch: t.epoch,
            step: t.step,
            eta_seconds: t.eta_seconds,
            throughput: t.throughput,
            device: t.device,
            attempts: job.attempts,
            params: restoreflow_proto::job_params(&job),
            result: restoreflow_proto::job_result(&job),
            error: job.error,
            epochs: t.epochs.into_iter().map(EpochView::from).collect(),
            created_at: time(job.created_at),
            updated_at: time(job.updated_at),
            started_at: time(job.started_at),
            finished_at: time(job.finished_at),
            id: job.id,
        }
    }
}

/// A worker and what it is doing.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    /// Worker id (the lease owner of its jobs).
    pub id: String,
    /// The device class it serves: `cpu` or `cuda`.
    pub device: String,
    /// The job it is training, if any.
    pub current_job: Option<String>,
    /// What it can run.
    pub capabilities: Vec<CapabilityView>,
}

/// One device a worker can run jobs on.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CapabilityView {
    /// `cpu`, `cuda:0`, ...
    pub device: String,
    /// `cpu` or `cuda`.
    pub class: String,
    /// CPU model or GPU name, when known.
    pub name: Option<String>,
    /// RAM (cpu) or GPU memory (cuda), in bytes, when known.
    pub memory_bytes: Option<u64>,
}

/// Training jobs and workers of one device class.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeviceClassView {
    /// `cpu` or `cuda`.
    pub device: String,
    /// Live workers of this class.
    pub live_workers: u32,
    /// Whether the deployment starts workers of this class on demand.
    pub on_demand: bool,
    /// Whether training jobs of this class are accepted now.
    pub accepting: bool,
    /// Jobs of this class waiting for a worker.
    pub queued: u64,
    /// Jobs of this class being trained.
    pub running: u64,
    /// Wake-ups waiting in this class's queue.
    pub queue_depth: u64,
    /// Set when jobs of this class wait with no live worker to run them.
    pub notice: Option<String>,
}

/// Training at a glance.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingStatusView {
    /// Jobs waiting for a worker.
    pub queued: u64,
    /// Jobs being trained.
    pub running: u64,
    /// Jobs completed, failed or cancelled.
    pub finished: u64,
    /// Live workers.
    pub workers: Vec<WorkerView>,
    /// Wake-ups waiting in the training queues of every device class.
    pub queue_depth: u64,
    /// Per device class: live workers, waiting jobs, and why they wait.
    pub devices: Vec<DeviceClassView>,
}

/// Job counts, live workers and queue depth.
#[utoipa::path(get, path = "/training/status", tag = "training",
    responses((status = 200, body = TrainingStatusView), (status = 503, body = crate::error::ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
) -> Result<ApiJson<TrainingStatusView>, ApiError> {
    let s = state
        .trainer
        .clone()
        .get_training_status(v1::GetTrainingStatusRequest {})
        .await?
        .into_inner();
    Ok(ApiJson(TrainingStatusView {
        queued: s.queued,
        running: s.running,
        finished: s.finished,
        workers: s
            .workers
            .into_iter()
            .map(|w| WorkerView {
                id: w.id,
                device: w.device,
                current_job: w.current_job,
                capabilities: w
                    .capabilities
                    .into_iter()
                    .map(|c| CapabilityView {
                        device: c.device,
                        class: c.class,
                        name: c.name,
                        memory_bytes: c.memory_bytes,
                    })
                    .collect(),
            })
            .collect(),
        queue_depth: s.queue_depth,
        devices: s
            .devices
            .into_iter()
            .map(|d| DeviceClassView {
                device: d.device,
                live_workers: d.live_workers,
                on_demand: d.on_demand,
                accepting: d.accepting,
                queued: d.queued,
                running: d.running,
                queue_depth: d.queue_depth,
                notice: Some(d.notice).filter(|n| !n.is_empty()),
            })
            .collect(),
    }))
}

/// Filters of `GET /training/jobs`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Page size, 1..=200 (default 50).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Deprecated alias of `page_size` (accepted until 0.2).
    pub limit: Option<u32>,
}

/// A page of training jobs.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingJobList {
    /// Newest first.
    pub jobs: Vec<TrainingJobView>,
    /// Pass as `page_token` for the next page; absent on the last one.
    pub next_page_token: Option<String>,
}

/// Lists training jobs, newest first.
#[utoipa::path(get, path = "/training/jobs", tag = "training", params(ListQuery),
    responses((status = 200, body = TrainingJobList), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<TrainingJobList>, ApiError> {
    let status = match q.status.as_deref() {
        None => v1::JobStatus::Unspecified,
        Some(s) => match JobStatus::parse(s) {
            Some(JobStatus::Queued) => v1::JobStatus::Queued,
            Some(JobStatus::Running) => v1::JobStatus::Running,
            Some(JobStatus::Completed) => v1::JobStatus::Completed,
            Some(JobStatus::Failed) => v1::JobStatus::Failed,
            Some(JobStatus::Cancelled) => v1::JobStatus::Cancelled,
            None => {
                return Err(ApiError::invalid(format!(
                    "unknown status {s:?}; statuses are {}",
                    JobStatus::ALL.map(|s| s.as_str()).join(", ")
                )));
            }
        },
    };
    let page = super::paging::request(q.page_size, q.limit, q.page_token, None)?;
    let limit = super::paging::size(&page, 50, 200)? as u32;
    let r = state
        .trainer
        .clone()
        .list_training_jobs(v1::ListJobsRequest {
            kind: v1::JobKind::TrainingLayer2 as i32,
            status: status as i32,
            page_size: limit,
            page_token: page.token.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(ApiJson(TrainingJobList {
        jobs: r.jobs.into_iter().map(TrainingJobView::from).collect(),
        next_page_token: (!r.next_page_token.is_empty()).then_some(r.next_page_token),
    }))
}

fn job_ref(id: String) -> Result<v1::JobRef, ApiError> {
    uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid(format!("job id {id:?} is not a UUID")))?;
    Ok(v1::JobRef { job_id: id })
}

/// One training job: status, progress, epoch/step, ETA, throughput, per-epoch metrics, result, error.
#[utoipa::path(get, path = "/training/jobs/{id}", tag = "training",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = TrainingJobView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<TrainingJobView>, ApiError> {
    let t = state
        .trainer
        .clone()
        .get_training_job(job_ref(id)?)
        .await?
        .into_inner();
    Ok(ApiJson(t.into()))
}

/// Asks a training job to stop: at once when queued, at the next step when
/// running (it keeps its last checkpoint); the status becomes `cancelled`.
#[utoipa::path(post, path = "/training/jobs/{id}/cancel", tag = "training",
    params(("id" = String, Path, description = "job id")),
    security(("api_key" = [])),
    responses((status = 200, body = TrainingJobView), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<TrainingJobView>, ApiError> {
    let r = job_ref(id)?;
    let mut trainer = state.trainer.clone();
    trainer.cancel_training(r.clone()).await?;
    Ok(ApiJson(
        trainer.get_training_job(r).await?.into_inner().into(),
    ))
}

/// Server-Sent Events of a training job: its history first (status, progress,
/// metric and log events, each as an SSE event named after its kind with the
/// event id as SSE id), then new events as they happen; after the job reaches
/// a terminal status a final `end` event carries it and the stream closes.
/// `Last-Event-ID` resumes after that event.
#[utoipa::path(get, path = "/training/jobs/{id}/events", tag = "training",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let mut ledger = state.ledger(Owner::Trainer);
    let job = ledger.get_job(job_ref(id)?).await?.into_inner();
    if job.kind != v1::JobKind::TrainingLayer2 as i32 {
        return Err(ApiError::not_found(format!(
            "training job {} not found",
            job.id
        )));
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let mut after = after;
        let mut pending = VecDeque::new();
        loop {
            // Status first: a terminal status read here means every event
            // written before it is visible to the read that follows.
            let job_ref = v1::JobRef {
                job_id: job.id.clone(),
            };
            let status = match ledger.get_job(job_ref).await {
                Ok(j) => db::status_from_proto(j.into_inner().status).ok().flatten(),
                Err(s) if s.code() == tonic::Code::NotFound => None,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream stopped");
                    return;
                }
            };
            let query = v1::JobEventQuery {
                job_id: job.id.clone(),
                after,
                limit: 500,
                ..Default::default()
            };
            match ledger.list_job_events(query).await {
                Ok(page) => pending.extend(page.into_inner().events),
                Err(e) => {
                    tracing::warn!(error = %e, "event stream stopped");
                    return;
                }
            }
            let full = pending.len() == 500;
            while let Some(e) = pending.pop_front() {
                after = e.id;
                let id = e.id.to_string();
                let kind = e.kind.clone();
                let data = serde_json::to_string(&EventView::from(e)).unwrap_or_default();
                let ev = Event::default().id(id).event(kind).data(data);
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            if full {
                continue;
            }
            if status.is_none_or(JobStatus::is_terminal) {
                let status = status.map_or("unknown", JobStatus::as_str);
                let end = Event::default()
                    .event("end")
                    .data(serde_json::json!({"job_id": job.id, "status": status}).to_string());
                let _ = tx.send(Ok(end)).await;
                return;
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_their_api_names() {
        assert_eq!(status_name(v1::JobStatus::Completed as i32), "completed");
        assert_eq!(status_name(v1::JobStatus::Cancelled as i32), "cancelled");
        assert_eq!(status_name(99), "unknown");
    }

    #[test]
    fn an_empty_body_asks_for_every_default() {
        let body: StartBody = serde_json::from_str("{}").unwrap();
        assert_eq!(
            v1::StartTrainingRequest::from(body),
            v1::StartTrainingRequest::default()
        );
    }

    #[test]
    fn recipe_fields_reach_the_request() {
        let body: StartBody = serde_json::from_value(serde_json::json!({
            "num_epochs": 3, "schedule": "cyclic_cosine", "warmup_steps": 5,
            "min_learning_rate": 1e-6, "loss": "l1_ssim", "ssim_weight": 0.3,
            "ink_weight": 4.0,
            "progressive": [{"patch_size": 32, "batch_size": 4, "until_step": 10},
                            {"patch_size": 64, "batch_size": 2, "until_step": 20}],
            "patches_per_page": 2, "steps_per_epoch": 9, "patch_sampling": "uniform",
            "clip_norm": 1.0, "max_minutes": 2.5, "val_view": "whole_page",
            "val_crop_size": 128
        }))
        .unwrap();
        let r = v1::StartTrainingRequest::from(body);
        assert_eq!((r.num_epochs, r.batch_size, r.max_pairs), (3, 0, 0));
        assert_eq!(r.schedule, "cyclic_cosine");
        assert_eq!(r.warmup_steps, Some(5));
        assert_eq!(r.min_learning_rate, Some(1e-6));
        assert_eq!(r.loss, "l1_ssim");
        assert_eq!((r.ssim_weight, r.ink_weight), (Some(0.3), Some(4.0)));
        assert_eq!(
            r.progressive,
            vec![
                v1::ProgressiveStage {
                    patch_size: 32,
                    batch_size: 4,
                    until_step: 10
                },
                v1::ProgressiveStage {
                    patch_size: 64,
                    batch_size: 2,
                    until_step: 20
                },
            ]
        );
        assert_eq!((r.patches_per_page, r.steps_per_epoch), (Some(2), Some(9)));
        assert_eq!(r.patch_sampling, "uniform");
        assert_eq!((r.clip_norm, r.max_minutes), (Some(1.0), Some(2.5)));
        assert_eq!(
            (r.val_view.as_str(), r.val_crop_size),
            ("whole_page", Some(128))
        );
    }

    #[test]
    fn unknown_fields_are_refused_in_stages_too() {
        assert!(serde_json::from_str::<StartBody>(r#"{"num_epoch": 1}"#).is_err());
        let stage = r#"{"progressive": [{"patch": 32, "batch_size": 2, "until_step": 5}]}"#;
        assert!(serde_json::from_str::<StartBody>(stage).is_err());
    }

    #[test]
    fn the_openapi_document_describes_the_recipe() {
        let doc = crate::openapi::document(&restoreflow_core::Settings::default());
        let body = &doc["components"]["schemas"]["StartBody"];
        for field in [
            "schedule",
            "warmup_steps",
            "min_learning_rate",
            "progressive",
            "loss",
            "ssim_weight",
            "ink_weight",
            "patches_per_page",
            "steps_per_epoch",
            "patch_sampling",
            "clip_norm",
            "max_minutes",
            "val_view",
            "val_crop_size",
        ] {
            let desc = body["properties"][field]["description"]
                .as_str()
                .unwrap_or_default();
            assert!(!desc.is_empty(), "{field} is documented: {body}");
        }
        assert_eq!(body["required"], serde_json::Value::Null, "{body}");
        let epoch = &doc["components"]["schemas"]["EpochView"]["properties"];
        assert!(epoch.get("val_view").is_some(), "{epoch}");
    }

    #[test]
    fn training_view_flattens_the_job() {
        let t = v1::TrainingJob {
            job: Some(v1::Job {
                id: "j".into(),
                status: v1::JobStatus::Running as i32,
                progress: 40.0,
                attempts: 2,
                ..Default::default()
            }),
            epoch: 2,
            step: 7,
            eta_seconds: Some(3.0),
            throughput: Some(9.5),
            epochs: vec![v1::EpochMetrics {
                epoch: 1,
                psnr: 21.0,
                val_view: "centre 256x256 crop".into(),
                val_pages: 32,
                held_out_pages: 60,
                ..Default::default()
            }],
            device: "cpu".into(),
        };
        let v = TrainingJobView::from(t);
        assert_eq!((v.id.as_str(), v.status.as_str()), ("j", "running"));
        assert_eq!((v.epoch, v.step, v.attempts), (2, 7, 2));
        assert_eq!(v.epochs[0].psnr, 21.0);
        assert_eq!(v.epochs[0].val_view, "centre 256x256 crop");
        assert_eq!(
            (v.epochs[0].val_pages, v.epochs[0].held_out_pages),
            (32, 60)
        );
        assert_eq!(v.params, serde_json::Value::Null);
    }
}
