//! Generic job routes, over every job kind.

use axum::extract::State;
use chrono::{DateTime, Utc};
use restoreflow_core::db::{self, JobKind, JobStatus};
use restoreflow_core::ledger::{self, Owner};
use restoreflow_proto::v1;
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

impl JobView {
    /// A job as its owning service's ledger answered it.
    pub fn from_proto(j: v1::Job) -> Result<Self, ApiError> {
        let kind = db::kind_from_proto(j.kind)
            .ok()
            .flatten()
            .ok_or_else(|| ApiError::internal(format!("job {} came with kind {}", j.id, j.kind)))?;
        let status = db::status_from_proto(j.status)
            .ok()
            .flatten()
            .ok_or_else(|| {
                ApiError::internal(format!("job {} came with status {}", j.id, j.status))
            })?;
        let created_at = db::from_timestamp(j.created_at.as_ref()).ok_or_else(|| {
            ApiError::internal(format!("job {} came with no creation time", j.id))
        })?;
        Ok(Self {
            kind,
            status,
            progress: j.progress,
            attempts: i32::try_from(j.attempts).unwrap_or(i32::MAX),
            params: restoreflow_proto::job_params(&j),
            result: restoreflow_proto::job_result(&j),
            cancel_requested: j.cancel_requested,
            created_at,
            updated_at: db::from_timestamp(j.updated_at.as_ref()).unwrap_or(created_at),
            started_at: db::from_timestamp(j.started_at.as_ref()),
            finished_at: db::from_timestamp(j.finished_at.as_ref()),
            error: j.error,
            id: j.id,
        })
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

impl From<v1::JobEvent> for EventView {
    fn from(e: v1::JobEvent) -> Self {
        Self {
            payload: restoreflow_proto::event_payload(&e),
            id: e.id,
            kind: e.kind,
            created_at: db::from_timestamp(e.created_at.as_ref()).unwrap_or_default(),
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
    /// Deprecated: jobs to skip, at most 10000; use `page_token` (accepted until 0.2).
    pub offset: Option<u64>,
}

/// A page of jobs.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
    /// Deprecated: the offset of the next page, when paging by `offset` (until 0.2).
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

/// Largest deprecated `offset` of `GET /jobs` (the jobs are read from each
/// service's ledger in pages, so deep offsets cost a page per 1000 skipped).
pub const MAX_JOBS_OFFSET: u64 = 10_000;

/// A page of the jobs of `owners`, newest first, after `cursor`: each
/// owner's ledger gives its first `n`, merged in the one order. `more` when a
/// job may follow the page.
async fn merged_page(
    state: &AppState,
    owners: &[Owner],
    query: &v1::JobQuery,
    n: u32,
) -> Result<(Vec<v1::Job>, bool), ApiError> {
    let calls = owners.iter().map(|o| {
        let mut ledger = state.ledger(*o);
        let q = v1::JobQuery {
            page_size: n,
            ..query.clone()
        };
        async move { ledger.list_jobs(q).await }
    });
    let mut jobs = Vec::new();
    let mut more = false;
    for page in futures::future::join_all(calls).await {
        let page = page?.into_inner();
        more |= !page.next_page_token.is_empty();
        jobs.extend(page.jobs);
    }
    let key = |j: &v1::Job| (db::from_timestamp(j.created_at.as_ref()), j.id.clone());
    jobs.sort_by_key(|j| std::cmp::Reverse(key(j)));
    more |= jobs.len() > n as usize;
    jobs.truncate(n as usize);
    Ok((jobs, more))
}

/// The token after the last job of a page.
fn cursor_after(job: &v1::Job) -> Result<String, ApiError> {
    let created_at = db::from_timestamp(job.created_at.as_ref())
        .ok_or_else(|| ApiError::internal(format!("job {} came with no creation time", job.id)))?;
    Ok(db::JobCursor {
        created_at,
        id: job.id.clone(),
    }
    .encode())
}

/// Lists jobs of every kind, newest first, from the ledgers of the services
/// that run them (the trainer's and synthetic-data's), merged in one order.
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
    let limit = paging::size(&page, 50, 200)? as u32;
    let owners: Vec<Owner> = match kind {
        Some(k) => vec![Owner::of(k)],
        None => Owner::ALL.to_vec(),
    };
    let mut query = v1::JobQuery {
        kind: kind.map_or(0, |k| db::kind_to_proto(k) as i32),
        status: status.map_or(0, |s| db::status_to_proto(s) as i32),
        ..Default::default()
    };
    // The deprecated offset: walk past that many jobs, a page at a time.
    let mut skip = 0;
    let by_offset = page.token.is_none();
    match page.token {
        Some(t) => {
            if db::JobCursor::decode(&t).is_none() {
                return Err(ApiError::invalid(format!(
                    "page_token {t:?} is not a token this list gave (pass next_page_token back as it is)"
                )));
            }
            query.page_token = t;
        }
        None => {
            skip = q.offset.unwrap_or(0);
            if skip > MAX_JOBS_OFFSET {
                return Err(ApiError::invalid(format!(
                    "offset must be at most {MAX_JOBS_OFFSET}, got {skip}; page with page_token"
                )));
            }
        }
    }
    let mut left = skip;
    while left > 0 {
        let n = left.min(u64::from(ledger::MAX_PAGE)) as u32;
        let (passed, more) = merged_page(&state, &owners, &query, n).await?;
        left -= passed.len() as u64;
        match passed.last() {
            Some(last) if more => query.page_token = cursor_after(last)?,
            _ => {
                // Past the end: an empty page.
                return Ok(ApiJson(JobList {
                    jobs: Vec::new(),
                    next_page_token: None,
                    next_offset: None,
                }));
            }
        }
    }
    let (jobs, more) = merged_page(&state, &owners, &query, limit).await?;
    let next_page_token = match jobs.last() {
        Some(last) if more => Some(cursor_after(last)?),
        _ => None,
    };
    let next_offset = (by_offset && next_page_token.is_some()).then_some(skip + u64::from(limit));
    Ok(ApiJson(JobList {
        jobs: jobs
            .into_iter()
            .map(JobView::from_proto)
            .collect::<Result<_, _>>()?,
        next_page_token,
        next_offset,
    }))
}

fn parse_id(id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::invalid(format!("job id {id:?} is not a UUID")))
}

/// The job `id` and the service whose ledger holds it: every ledger is asked
/// at once; one that cannot answer makes the job unknowable (its error), not
/// missing.
async fn find(state: &AppState, id: &str) -> Result<(Owner, v1::Job), ApiError> {
    parse_id(id)?;
    let calls = Owner::ALL.map(|o| {
        let mut ledger = state.ledger(o);
        let r = v1::JobRef {
            job_id: id.to_string(),
        };
        async move { (o, ledger.get_job(r).await) }
    });
    let mut failure = None;
    for (owner, answer) in futures::future::join_all(calls).await {
        match answer {
            Ok(job) => return Ok((owner, job.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => failure = failure.or(Some(s)),
        }
    }
    match failure {
        Some(s) => Err(s.into()),
        None => Err(ApiError::not_found(format!("job {id} not found"))),
    }
}

/// One job with status, progress, timestamps, result and error.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<JobView>, ApiError> {
    let (_, job) = find(&state, &id).await?;
    Ok(ApiJson(JobView::from_proto(job)?))
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
    let limit = q.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let (owner, _) = find(&state, &id).await?;
    let events = state
        .ledger(owner)
        .list_job_events(v1::JobEventQuery {
            job_id: id,
            after: q.after.unwrap_or(0),
            limit: limit as u32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .events;
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
    let (owner, _) = find(&state, &id).await?;
    let job = state
        .ledger(owner)
        .cancel_job(v1::JobRef { job_id: id })
        .await?
        .into_inner();
    Ok(ApiJson(JobView::from_proto(job)?))
}
