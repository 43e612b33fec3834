//! Generic job routes, over every job kind.

use axum::extract::State;
use chrono::{DateTime, Utc};
use restoreflow_core::db::{self, JobKind, JobStatus, entity::job, entity::job_event};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::paging;

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// A job as the API shows it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// What the job does.
    pub kind: JobKind,
    /// Where it is in its life.
    pub status: JobStatus,
    /// 0..=100.
    pub progress: f64,
    /// Claims so far (more than 1 after a worker died and another resumed it).
    pub attempts: i32,
    /// The validated request.
    pub params: serde_json::Value,
    /// Kind-specific result once completed.
    pub result: Option<serde_json::Value>,
    /// Cause, once failed.
    pub error: Option<String>,
    /// A cancel was requested.
    pub cancel_requested: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminal state reached.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<job::Model> for JobView {
    fn from(j: job::Model) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            status: j.status,
            progress: j.progress,
            attempts: j.attempts,
            params: j.params,
            result: j.result,
            error: j.error,
            cancel_requested: j.cancel_requested,
            created_at: j.created_at,
            updated_at: j.updated_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// One event of a job's history.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Monotonic id (use as `after` to page).
    pub id: i64,
    /// `status`, `progress`, `metric`, `log`.
    pub kind: String,
    /// Event body.
    pub payload: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<job_event::Model> for EventView {
    fn from(e: job_event::Model) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            payload: e.payload,
            created_at: e.created_at,
        }
    }
}

/// Filters of `GET /jobs`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Page size, 1..=200 (default 50).
    pub page_size: Option<u64>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Deprecated alias of `page_size` (accepted until 0.2).
    pub limit: Option<u64>,
    /// Deprecated: rows to skip, at most 1000000000; use `page_token` (accepted until 0.2).
    pub offset: Option<u64>,
}

/// A page of jobs.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
    /// Deprecated: the offset of the next page (until 0.2).
    pub next_offset: Option<u64>,
}

/// `after` cursor of `GET /jobs/{id}/events`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a larger id.
    pub after: Option<i64>,
    /// Page size, 1..=1000 (default 500).
    pub limit: Option<u64>,
}

/// Lists jobs, newest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(ListJobsQuery),
    responses((status = 200, body = JobList), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListJobsQuery>,
) -> Result<ApiJson<JobList>, ApiError> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            JobKind::parse(k).ok_or_else(|| {
                ApiError::invalid(format!(
                    "unknown kind {k:?}; kinds are {}",
                    JobKind::ALL.map(|k| k.as_str()).join(", ")
                ))
            })
        })
        .transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(format!(
                    "unknown status {s:?}; statuses are {}",
                    JobStatus::ALL.map(|s| s.as_str()).join(", ")
                ))
            })
        })
        .transpose()?;
    let page = paging::request(q.page_size, q.limit, q.page_token, None)?;
    let (limit, offset) = paging::offset_page(&page, q.offset, 50, 200)?;
    let jobs = db::list_jobs(&state.backends.db, kind, status, limit, offset).await?;
    let next_offset = (jobs.len() as u64 == limit).then_some(offset + limit);
    Ok(ApiJson(JobList {
        jobs: jobs.into_iter().map(JobView::from).collect(),
        next_page_token: next_offset.map(paging::offset_token),
        next_offset,
    }))
}

fn parse_id(id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::invalid(format!("job id {id:?} is not a UUID")))
}

/// One job with status, progress, timestamps, result and error.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<JobView>, ApiError> {
    parse_id(&id)?;
    let job = db::require_job(&state.backends.db, &id).await?;
    Ok(ApiJson(job.into()))
}

/// A job's history (status changes, progress), oldest first.
#[utoipa::path(get, path = "/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "job id"), EventsQuery),
    responses((status = 200, body = Vec<EventView>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<ApiJson<Vec<EventView>>, ApiError> {
    parse_id(&id)?;
    db::require_job(&state.backends.db, &id).await?;
    let limit = q.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let events = db::list_events(&state.backends.db, &id, q.after.unwrap_or(0), limit).await?;
    Ok(ApiJson(events.into_iter().map(EventView::from).collect()))
}

/// Cancels a job: queued jobs at once, running jobs at their next step.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    security(("api_key" = [])),
    responses((status = 200, body = JobView), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<JobView>, ApiError> {
    parse_id(&id)?;
    let job = db::request_cancel(&state.backends.db, &id).await?;
    Ok(ApiJson(job.into()))
}
