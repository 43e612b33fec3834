//! Job repository: the lifecycle every job kind shares.
//!
//! queued → running (claimed with a lease) → completed | failed | cancelled.
//! Claims and terminal transitions are conditional updates, so two workers can
//! never both own a job and a terminal state is written once.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DeriveActiveEnum, EntityTrait, EnumIter,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::entity::{dataset, job, job_event};
use super::{Db, DbError};
use crate::devices::DeviceClass;

/// Where a job is in its life: the `jobs.status` column, typed (a row with
/// another spelling fails to load instead of passing through as a string).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum JobStatus {
    /// Waiting for a worker.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Claimed by a worker.
    #[sea_orm(string_value = "running")]
    Running,
    /// Finished successfully.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// Finished with an error.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Stopped on request.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No further transitions.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job does: the `jobs.kind` column, typed.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum JobKind {
    /// Synthetic pair generation.
    #[sea_orm(string_value = "synthetic")]
    Synthetic,
    /// Layer 2 training.
    #[sea_orm(string_value = "training_layer2")]
    TrainingLayer2,
    /// Model evaluation.
    #[sea_orm(string_value = "evaluation")]
    Evaluation,
    /// Layer 1 evaluation.
    #[sea_orm(string_value = "layer1_evaluation")]
    Layer1Evaluation,
    /// Restoring every image under a prefix.
    #[sea_orm(string_value = "restore_batch")]
    RestoreBatch,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 5] = [
        JobKind::Synthetic,
        JobKind::TrainingLayer2,
        JobKind::Evaluation,
        JobKind::Layer1Evaluation,
        JobKind::RestoreBatch,
    ];

    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synthetic => "synthetic",
            Self::TrainingLayer2 => "training_layer2",
            Self::Evaluation => "evaluation",
            Self::Layer1Evaluation => "layer1_evaluation",
            Self::RestoreBatch => "restore_batch",
        }
    }

    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Inserts a queued job and its first event.
#[tracing::instrument(skip(db, params), err)]
pub async fn create_job(db: &Db, kind: JobKind, params: Value) -> Result<job::Model, DbError> {
    create_job_on(db, kind, params, None).await
}

/// Records a queued job that only workers of device class `device` may claim
/// (`None`: any worker of the kind).
pub async fn create_job_on(
    db: &Db,
    kind: JobKind,
    params: Value,
    device: Option<DeviceClass>,
) -> Result<job::Model, DbError> {
    let now = Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    let model = job::ActiveModel {
        id: Set(id.clone()),
        kind: Set(kind),
        status: Set(JobStatus::Queued),
        params: Set(params),
        progress: Set(0.0),
        attempts: Set(0),
        error: Set(None),
        result: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        cancel_requested: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        progress_at: Set(None),
        device: Set(device),
    }
    .insert(db)
    .await?;
    append_event(db, &id, "status", serde_json::json!({"status": "queued"})).await?;
    Ok(model)
}

/// A job by id.
pub async fn get_job(db: &Db, id: &str) -> Result<Option<job::Model>, DbError> {
    Ok(job::Entity::find_by_id(id.to_string()).one(db).await?)
}

/// A job by id, or `NotFound`.
pub async fn require_job(db: &Db, id: &str) -> Result<job::Model, DbError> {
    get_job(db, id)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("job {id}")))
}

/// Newest jobs first, optionally filtered.
pub async fn list_jobs(
    db: &Db,
    kind: Option<JobKind>,
    status: Option<JobStatus>,
    limit: u64,
    offset: u64,
) -> Result<Vec<job::Model>, DbError> {
    let mut q = job::Entity::find();
    if let Some(k) = kind {
        q = q.filter(job::Column::Kind.eq(k));
    }
    if let Some(s) = status {
        q = q.filter(job::Column::Status.eq(s));
    }
    Ok(q.order_by_desc(job::Column::CreatedAt)
        .order_by_desc(job::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?)
}

/// A position in the newest-first order of jobs (creation time, then id):
/// the page token of keyset paging, so a page never skips or repeats a job
/// when new ones arrive, and lists of several ledgers merge in one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCursor {
    /// Creation time of the last job of the page.
    pub created_at: DateTime<Utc>,
    /// Its id.
    pub id: String,
}

impl JobCursor {
    /// The cursor just past `job`.
    pub fn after(job: &job::Model) -> Self {
        Self {
            created_at: job.created_at,
            id: job.id.clone(),
        }
    }

    /// The token: `{unix seconds}.{nanoseconds, 9 digits}_{id}`.
    pub fn encode(&self) -> String {
        format!(
            "{}.{:09}_{}",
            self.created_at.timestamp(),
            self.created_at.timestamp_subsec_nanos(),
            self.id
        )
    }

    /// Parses a token of [`JobCursor::encode`]; `None` for anything else.
    pub fn decode(token: &str) -> Option<Self> {
        let (time, id) = token.split_once('_')?;
        let (secs, nanos) = time.split_once('.')?;
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(secs, 12) || nanos.len() != 9 || !digits(nanos, 9) {
            return None;
        }
        uuid::Uuid::parse_str(id).ok()?;
        let created_at = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
        Some(Self {
            created_at,
            id: id.to_string(),
        })
    }

    /// Whether `job` comes after this cursor in the order.
    pub fn precedes(&self, job: &job::Model) -> bool {
        (job.created_at, job.id.as_str()) < (self.created_at, self.id.as_str())
    }
}

/// A page of jobs of `kinds` (every kind when empty) in any of `statuses`
/// (any status when empty), newest first, starting after `after`.
pub async fn list_jobs_page(
    db: &Db,
    kinds: &[JobKind],
    statuses: &[JobStatus],
    after: Option<&JobCursor>,
    limit: u64,
) -> Result<Vec<job::Model>, DbError> {
    let mut q = job::Entity::find();
    if !kinds.is_empty() {
        q = q.filter(job::Column::Kind.is_in(kinds.iter().copied()));
    }
    if !statuses.is_empty() {
        q = q.filter(job::Column::Status.is_in(statuses.iter().copied()));
    }
    if let Some(c) = after {
        q = q.filter(
            Condition::any()
                .add(job::Column::CreatedAt.lt(c.created_at))
                .add(
                    Condition::all()
                        .add(job::Column::CreatedAt.eq(c.created_at))
                        .add(job::Column::Id.lt(c.id.as_str())),
                ),
        );
    }
    Ok(q.order_by_desc(job::Column::CreatedAt)
        .order_by_desc(job::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Number of jobs of a kind in each status.
pub async fn count_by_status(db: &Db, kind: JobKind) -> Result<Vec<(JobStatus, u64)>, DbError> {
    let mut out = Vec::new();
    for s in JobStatus::ALL {
        let n = job::Entity::find()
            .filter(job::Column::Kind.eq(kind))
            .filter(job::Column::Status.eq(s))
            .count(db)
            .await?;
        out.push((s, n));
    }
    Ok(out)
}

/// Claims a job for `worker` if it is queued, or running with an expired lease.
/// Returns the claimed row, or `None` if someone else holds it or it is done.
///
/// A job already claimed `max_attempts` times is never claimed again: its
/// workers died on every attempt, so [`settle_abandoned`] ends it instead.
pub async fn claim_job(
    db: &Db,
    id: &str,
    worker: &str,
    lease: Duration,
    max_attempts: u32,
) -> Result<Option<job::Model>, DbError> {
    claim_job_on(db, id, worker, None, lease, max_attempts).await
}

/// [`claim_job`] for a worker of device class `device`: a job recorded for
/// another class is never claimed (`None`: no device filter).
#[tracing::instrument(skip(db), err)]
pub async fn claim_job_on(
    db: &Db,
    id: &str,
    worker: &str,
    device: Option<DeviceClass>,
    lease: Duration,
    max_attempts: u32,
) -> Result<Option<job::Model>, DbError> {
    let now = Utc::now();
    let claimable = Condition::any()
        .add(job::Column::Status.eq(JobStatus::Queued))
        .add(
            Condition::all()
                .add(job::Column::Status.eq(JobStatus::Running))
                .add(job::Column::LeaseExpiresAt.lt(now)),
        );
    let res = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(JobStatus::Running))
        .col_expr(job::Column::LeaseOwner, Expr::value(worker))
        .col_expr(job::Column::LeaseExpiresAt, Expr::value(now + lease))
        .col_expr(
            job::Column::Attempts,
            Expr::col(job::Column::Attempts).add(1),
        )
        .col_expr(
            job::Column::StartedAt,
            Func::coalesce([Expr::col(job::Column::StartedAt).into(), Expr::value(now)]).into(),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(job::Column::ProgressAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::CancelRequested.eq(false))
        .filter(job::Column::Attempts.lt(max_attempts as i32))
        .filter(claimable)
        .filter(for_device(device))
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    let model = require_job(db, id).await?;
    append_event(
        db,
        id,
        "status",
        serde_json::json!({"status": "running", "worker": worker, "attempt": model.attempts}),
    )
    .await?;
    Ok(Some(model))
}

/// Extends the lease. Returns the row if `worker` still owns the running job
/// (check `cancel_requested` on it), `None` if the lease was lost.
pub async fn heartbeat(
    db: &Db,
    id: &str,
    worker: &str,
    lease: Duration,
) -> Result<Option<job::Model>, DbError> {
    let now = Utc::now();
    let res = job::Entity::update_many()
        .col_expr(job::Column::LeaseExpiresAt, Expr::value(now + lease))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(owned_by(id, worker))
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    get_job(db, id).await
}

/// Jobs a worker of class `device` may take: those recorded for its class and
/// those that need no device. `None` matches every job.
fn for_device(device: Option<DeviceClass>) -> Condition {
    match device {
        None => Condition::all(),
        Some(class) => Condition::any()
            .add(job::Column::Device.is_null())
            .add(job::Column::Device.eq(class)),
    }
}

/// Queued and running jobs of `kind` recorded for device class `device`.
pub async fn count_active_on(
    db: &Db,
    kind: JobKind,
    device: DeviceClass,
) -> Result<(u64, u64), DbError> {
    let count = |status: JobStatus| {
        job::Entity::find()
            .filter(job::Column::Kind.eq(kind))
            .filter(job::Column::Device.eq(device))
            .filter(job::Column::Status.eq(status))
            .count(db)
    };
    Ok((
        count(JobStatus::Queued).await?,
        count(JobStatus::Running).await?,
    ))
}

fn owned_by(id: &str, worker: &str) -> Condition {
    Condition::all()
        .add(job::Column::Id.eq(id))
        .add(job::Column::Status.eq(JobStatus::Running))
        .add(job::Column::LeaseOwner.eq(worker))
}

/// Records progress (0..=100) and a progress event carrying `detail`.
pub async fn set_progress(
    db: &Db,
    id: &str,
    worker: &str,
    progress: f64,
    detail: Value,
) -> Result<bool, DbError> {
    let res = job::Entity::update_many()
        .col_expr(
            job::Column::Progress,
            Expr::value(progress.clamp(0.0, 100.0)),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(job::Column::ProgressAt, Expr::value(Utc::now()))
        .filter(owned_by(id, worker))
        .exec(db)
        .await?;
    if res.rows_affected == 1 {
        let mut payload = serde_json::json!({"progress": progress});
        if let (Value::Object(p), Value::Object(d)) = (&mut payload, detail) {
            p.extend(d);
        }
        append_event(db, id, "progress", payload).await?;
    }
    Ok(res.rows_affected == 1)
}

/// Moves a running job owned by `worker` to a terminal status, once.
pub async fn finish_job(
    db: &Db,
    id: &str,
    worker: &str,
    status: JobStatus,
    result: Option<Value>,
    error: Option<String>,
) -> Result<bool, DbError> {
    debug_assert!(status.is_terminal());
    let now = Utc::now();
    let mut update = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(status))
        .col_expr(job::Column::Error, Expr::value(error.clone()))
        .col_expr(job::Column::Result, Expr::value(result))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(job::Column::FinishedAt, Expr::value(now));
    if status == JobStatus::Completed {
        update = update.col_expr(job::Column::Progress, Expr::value(100.0));
    }
    let res = update.filter(owned_by(id, worker)).exec(db).await?;
    if res.rows_affected == 1 {
        let mut payload = serde_json::json!({"status": status.as_str()});
        if let Some(e) = error {
            payload["error"] = Value::String(e);
        }
        append_event(db, id, "status", payload).await?;
    }
    Ok(res.rows_affected == 1)
}

/// Asks a job to stop: a queued job is cancelled at once, a running one is
/// flagged and stops at its next checkpoint. Finished jobs cannot be cancelled.
pub async fn request_cancel(db: &Db, id: &str) -> Result<job::Model, DbError> {
    let now = Utc::now();
    let queued = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(JobStatus::Cancelled))
        .col_expr(job::Column::CancelRequested, Expr::value(true))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(job::Column::FinishedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::Status.eq(JobStatus::Queued))
        .exec(db)
        .await?;
    if queued.rows_affected == 1 {
        append_event(db, id, "status", serde_json::json!({"status": "cancelled"})).await?;
        return require_job(db, id).await;
    }
    let running = job::Entity::update_many()
        .col_expr(job::Column::CancelRequested, Expr::value(true))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .exec(db)
        .await?;
    let job = require_job(db, id).await?;
    if running.rows_affected == 1 {
        append_event(
            db,
            id,
            "status",
            serde_json::json!({"status": "cancel_requested"}),
        )
        .await?;
        return Ok(job);
    }
    Err(DbError::Conflict(format!(
        "job {id} is already {} and cannot be cancelled",
        job.status
    )))
}

/// Ids of jobs of `kind` that a worker should pick up without a bus message:
/// queued for longer than `grace`, or running with an expired lease.
pub async fn find_claimable(
    db: &Db,
    kind: JobKind,
    device: Option<DeviceClass>,
    grace: Duration,
    max_attempts: u32,
    limit: u64,
) -> Result<Vec<String>, DbError> {
    let now = Utc::now();
    let rows = job::Entity::find()
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::CancelRequested.eq(false))
        .filter(job::Column::Attempts.lt(max_attempts as i32))
        .filter(for_device(device))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(job::Column::Status.eq(JobStatus::Queued))
                        .add(job::Column::CreatedAt.lt(now - grace)),
                )
                .add(
                    Condition::all()
                        .add(job::Column::Status.eq(JobStatus::Running))
                        .add(job::Column::LeaseExpiresAt.lt(now)),
                ),
        )
        .order_by_asc(job::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|j| j.id).collect())
}

/// Why [`settle_abandoned`] ended a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abandoned {
    /// Cancel was requested while its worker was gone: now `cancelled`.
    Cancelled,
    /// Its worker died on every allowed attempt: now `failed`, with the reason.
    GaveUp {
        /// Attempts made.
        attempts: i32,
        /// The reason written to the job.
        error: String,
    },
}

/// Ends the jobs of `kind` that no live worker owns and no worker may claim
/// again (their lease has expired):
///
/// - a cancel was requested while the worker was gone: `cancelled`;
/// - the job was claimed `max_attempts` times already: `failed`, with a
///   reason that says so.
///
/// Each transition is a conditional update on the row as it was read (same
/// status, owner and attempt count, lease still expired), so a worker that
/// comes back, or another sweep, cannot race it: exactly one writer wins.
/// Returns the jobs this call ended, as they are now.
pub async fn settle_abandoned(
    db: &Db,
    kind: JobKind,
    max_attempts: u32,
    limit: u64,
) -> Result<Vec<(job::Model, Abandoned)>, DbError> {
    let now = Utc::now();
    let rows = job::Entity::find()
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LeaseExpiresAt.lt(now))
        .filter(
            Condition::any()
                .add(job::Column::CancelRequested.eq(true))
                .add(job::Column::Attempts.gte(max_attempts as i32)),
        )
        .order_by_asc(job::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let why = if row.cancel_requested {
            Abandoned::Cancelled
        } else {
            Abandoned::GaveUp {
                attempts: row.attempts,
                error: format!(
                    "abandoned after {} attempt(s): each time its worker stopped (crashed, \
                     killed, out of memory) or made no progress for jobs.watchdog_secs before \
                     finishing it, and jobs.max_attempts is {max_attempts}",
                    row.attempts
                ),
            }
        };
        let (status, error) = match &why {
            Abandoned::Cancelled => (JobStatus::Cancelled, None),
            Abandoned::GaveUp { error, .. } => (JobStatus::Failed, Some(error.clone())),
        };
        let mut same = Condition::all()
            .add(job::Column::Id.eq(row.id.as_str()))
            .add(job::Column::Status.eq(JobStatus::Running))
            .add(job::Column::Attempts.eq(row.attempts))
            .add(job::Column::LeaseExpiresAt.lt(now));
        same = match &row.lease_owner {
            Some(owner) => same.add(job::Column::LeaseOwner.eq(owner.as_str())),
            None => same.add(job::Column::LeaseOwner.is_null()),
        };
        let res = job::Entity::update_many()
            .col_expr(job::Column::Status, Expr::value(status))
            .col_expr(job::Column::Error, Expr::value(error.clone()))
            .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                job::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(job::Column::UpdatedAt, Expr::value(now))
            .col_expr(job::Column::FinishedAt, Expr::value(now))
            .filter(same)
            .exec(db)
            .await?;
        if res.rows_affected != 1 {
            continue;
        }
        let mut payload = serde_json::json!({
            "status": status.as_str(),
            "abandoned_by": row.lease_owner,
            "attempts": row.attempts,
        });
        if let Some(e) = error {
            payload["error"] = Value::String(e);
        }
        append_event(db, &row.id, "status", payload).await?;
        out.push((require_job(db, &row.id).await?, why));
    }
    Ok(out)
}

/// The progress watchdog: running jobs of `kind` whose last progress (or
/// claim) is older than `stalled_for` lose their lease at once, so the next
/// sweep hands them to another worker (their old worker's fenced writes and
/// heartbeats fail from then on), and a job that stalls on every attempt ends
/// `failed` after `jobs.max_attempts` like any job whose worker dies. Returns
/// the ids handed over.
pub async fn expire_stalled(
    db: &Db,
    kind: JobKind,
    stalled_for: Duration,
    limit: u64,
) -> Result<Vec<String>, DbError> {
    let now = Utc::now();
    let stale = now - stalled_for;
    let rows = job::Entity::find()
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LeaseExpiresAt.gte(now))
        .filter(job::Column::ProgressAt.lt(stale))
        .limit(limit)
        .all(db)
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let res = job::Entity::update_many()
            .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(job::Column::LeaseExpiresAt, Expr::value(now))
            .col_expr(job::Column::UpdatedAt, Expr::value(now))
            .filter(job::Column::Id.eq(row.id.as_str()))
            .filter(job::Column::Status.eq(JobStatus::Running))
            .filter(job::Column::ProgressAt.lt(stale))
            .exec(db)
            .await?;
        if res.rows_affected == 1 {
            append_event(
                db,
                &row.id,
                "log",
                serde_json::json!({
                    "message": "no progress for too long: the job is handed to another worker",
                    "stalled_worker": row.lease_owner,
                    "stalled_seconds": stalled_for.num_seconds(),
                }),
            )
            .await?;
            out.push(row.id);
        }
    }
    Ok(out)
}

/// Runs `write` in a transaction that first renews `worker`'s lease on the
/// running job `id`, and commits only if that renewal matched: a worker that
/// lost its lease (another worker claimed the job, or it was ended) writes
/// nothing. The renewal locks the job row until the commit (PostgreSQL row
/// lock; SQLite's single writer), so no claim can slip in between the check
/// and the write. Returns `Ok(None)` when the job is no longer this worker's.
pub async fn fenced<T, F>(
    db: &Db,
    id: &str,
    worker: &str,
    lease: Duration,
    write: F,
) -> Result<Option<T>, DbError>
where
    T: Send,
    F: for<'c> FnOnce(
            &'c sea_orm::DatabaseTransaction,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, DbError>> + Send + 'c>,
        > + Send,
{
    use sea_orm::TransactionTrait;
    // The whole transaction has the statement deadline: a database that
    // stops answering mid-way rolls it back (the dropped transaction).
    db.bounded(async {
        let txn = db.begin().await?;
        let now = Utc::now();
        let res = job::Entity::update_many()
            .col_expr(job::Column::LeaseExpiresAt, Expr::value(now + lease))
            .col_expr(job::Column::UpdatedAt, Expr::value(now))
            .filter(owned_by(id, worker))
            .exec(&txn)
            .await?;
        if res.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(None);
        }
        let out = write(&txn).await?;
        txn.commit().await?;
        Ok(Some(out))
    })
    .await
}

/// Appends an event only while `worker` still owns the running job `id`
/// (see [`fenced`]); `Ok(false)` when it does not.
pub async fn append_event_fenced(
    db: &Db,
    id: &str,
    worker: &str,
    lease: Duration,
    kind: &str,
    payload: Value,
) -> Result<bool, DbError> {
    let (job_id, kind) = (id.to_string(), kind.to_string());
    let done = fenced(db, id, worker, lease, move |txn| {
        Box::pin(async move { append_event(txn, &job_id, &kind, payload).await.map(drop) })
    })
    .await?;
    Ok(done.is_some())
}

/// Appends an event to a job's history.
pub async fn append_event(
    db: &impl sea_orm::ConnectionTrait,
    job_id: &str,
    kind: &str,
    payload: Value,
) -> Result<job_event::Model, DbError> {
    Ok(job_event::ActiveModel {
        job_id: Set(job_id.to_string()),
        kind: Set(kind.to_string()),
        payload: Set(payload),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Events of a job with id greater than `after`, oldest first.
pub async fn list_events(
    db: &Db,
    job_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<job_event::Model>, DbError> {
    list_events_of(db, job_id, &[], after, limit).await
}

/// [`list_events`] of the given kinds only (empty: every kind).
pub async fn list_events_of(
    db: &Db,
    job_id: &str,
    kinds: &[String],
    after: i64,
    limit: u64,
) -> Result<Vec<job_event::Model>, DbError> {
    let mut q = job_event::Entity::find()
        .filter(job_event::Column::JobId.eq(job_id))
        .filter(job_event::Column::Id.gt(after));
    if !kinds.is_empty() {
        q = q.filter(job_event::Column::Kind.is_in(kinds.iter().cloned()));
    }
    Ok(q.order_by_asc(job_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Inserts a dataset row, replacing one with the same id (a resumed job
/// regenerates the same dataset).
pub async fn replace_dataset(
    db: &impl sea_orm::ConnectionTrait,
    row: dataset::Model,
) -> Result<dataset::Model, DbError> {
    dataset::Entity::delete_by_id(row.id.clone())
        .exec(db)
        .await?;
    let active: dataset::ActiveModel = row.into();
    Ok(active.reset_all().insert(db).await?)
}

/// Newest datasets first, of `split` only when one is given.
pub async fn list_datasets(
    db: &Db,
    split: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<Vec<dataset::Model>, DbError> {
    let mut q = dataset::Entity::find();
    if let Some(split) = split {
        q = q.filter(dataset::Column::Split.eq(split));
    }
    Ok(q.order_by_desc(dataset::Column::CreatedAt)
        .order_by_asc(dataset::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?)
}

/// The `source` of dataset rows whose pairs a user uploaded (generated ones
/// say `synthetic`).
pub const UPLOAD_SOURCE: &str = "upload";

/// Dataset ids: 1-64 of `[a-z0-9_-]` (generated ids and the names users
/// give uploads alike).
pub fn valid_dataset_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The dataset `id`, if there is one.
pub async fn get_dataset(db: &Db, id: &str) -> Result<Option<dataset::Model>, DbError> {
    Ok(dataset::Entity::find_by_id(id.to_string()).one(db).await?)
}

/// Inserts a new dataset row; `Ok(None)` when its id is already taken.
pub async fn insert_dataset(
    db: &Db,
    row: dataset::Model,
) -> Result<Option<dataset::Model>, DbError> {
    let id = row.id.clone();
    let active: dataset::ActiveModel = row.into();
    match active.reset_all().insert(db).await {
        Ok(m) => Ok(Some(m)),
        // A concurrent (or earlier) registration of the same id won.
        Err(e) => match get_dataset(db, &id).await? {
            Some(_) => Ok(None),
            None => Err(e.into()),
        },
    }
}

/// Number of datasets and the sum of their pairs.
pub async fn dataset_totals(db: &Db) -> Result<(u64, u64), DbError> {
    let rows = dataset::Entity::find().all(db).await?;
    let pairs = rows.iter().map(|d| d.num_pairs.max(0) as u64).sum();
    Ok((rows.len() as u64, pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url, 2).await.unwrap();
        (dir, db)
    }

    #[test]
    fn dataset_ids_are_slugs() {
        assert!(valid_dataset_id("eval-set_01"));
        assert!(!valid_dataset_id(""));
        assert!(!valid_dataset_id("Eval"));
        assert!(!valid_dataset_id("a/b"));
        assert!(!valid_dataset_id("a.b"));
        assert!(!valid_dataset_id(&"x".repeat(65)));
    }

    #[tokio::test]
    async fn keyset_pages_visit_every_job_of_the_kinds_once_newest_first() {
        let (_d, db) = sqlite().await;
        let mut made = Vec::new();
        for i in 0..7 {
            let kind = if i % 3 == 0 {
                JobKind::Synthetic
            } else {
                JobKind::TrainingLayer2
            };
            made.push(create_job(&db, kind, Value::Null).await.unwrap());
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = list_jobs_page(
                &db,
                &[JobKind::TrainingLayer2, JobKind::Evaluation],
                &[],
                cursor.as_ref(),
                2,
            )
            .await
            .unwrap();
            if page.is_empty() {
                break;
            }
            let token = JobCursor::after(page.last().unwrap()).encode();
            cursor = Some(JobCursor::decode(&token).expect("a token decodes"));
            seen.extend(page);
        }
        let mut want: Vec<job::Model> = made
            .into_iter()
            .filter(|j| j.kind == JobKind::TrainingLayer2)
            .collect();
        want.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let ids = |v: &[job::Model]| v.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&seen), ids(&want));
        // A job created after the first page does not shift the next ones.
        let first = list_jobs_page(&db, &[], &[], None, 3).await.unwrap();
        let c = JobCursor::after(first.last().unwrap());
        create_job(&db, JobKind::Synthetic, Value::Null)
            .await
            .unwrap();
        let next = list_jobs_page(&db, &[], &[], Some(&c), 100).await.unwrap();
        assert_eq!(next.len(), 4);
        assert!(next.iter().all(|j| c.precedes(j)));
        for bad in ["", "12", "1.5_x", "1.000000000_nope", "-1.000000000_0"] {
            assert!(JobCursor::decode(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn status_kind_and_device_are_typed_columns() {
        use sea_orm::ConnectionTrait;
        let (_d, db) = sqlite().await;
        let job = create_job_on(
            &db,
            JobKind::Evaluation,
            Value::Null,
            Some(DeviceClass::Cuda),
        )
        .await
        .unwrap();
        // Written in the database's spelling, read back as the enums.
        let row = db
            .query_one(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!(
                    "SELECT kind, status, device FROM jobs WHERE id = '{}'",
                    job.id
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        let text = |c: &str| row.try_get::<String>("", c).unwrap();
        assert_eq!(
            (text("kind"), text("status"), text("device")),
            ("evaluation".into(), "queued".into(), "cuda".into())
        );
        let back = require_job(&db, &job.id).await.unwrap();
        assert_eq!(
            (back.kind, back.status, back.device),
            (
                JobKind::Evaluation,
                JobStatus::Queued,
                Some(DeviceClass::Cuda)
            )
        );
        // A spelling outside the enum is an error naming it, never a panic or
        // a string passed on.
        db.execute_unprepared(&format!(
            "UPDATE jobs SET status = 'paused' WHERE id = '{}'",
            job.id
        ))
        .await
        .unwrap();
        let err = require_job(&db, &job.id).await.unwrap_err().to_string();
        assert!(err.contains("paused"), "{err}");
    }

    #[tokio::test]
    async fn workers_claim_only_their_device_class() {
        let (_d, db) = sqlite().await;
        let kind = JobKind::TrainingLayer2;
        let lease = Duration::seconds(30);
        let gpu = create_job_on(&db, kind, Value::Null, Some(DeviceClass::Cuda))
            .await
            .unwrap();
        let cpu = create_job_on(&db, kind, Value::Null, Some(DeviceClass::Cpu))
            .await
            .unwrap();
        let any = create_job(&db, kind, Value::Null).await.unwrap();
        assert_eq!(gpu.device, Some(DeviceClass::Cuda));

        let mut cpu_sees =
            find_claimable(&db, kind, Some(DeviceClass::Cpu), Duration::zero(), 3, 10)
                .await
                .unwrap();
        cpu_sees.sort();
        let mut want = vec![cpu.id.clone(), any.id.clone()];
        want.sort();
        assert_eq!(cpu_sees, want, "the CPU sweep never sees the cuda job");
        let gpu_sees = find_claimable(&db, kind, Some(DeviceClass::Cuda), Duration::zero(), 3, 10)
            .await
            .unwrap();
        assert!(gpu_sees.contains(&gpu.id) && !gpu_sees.contains(&cpu.id));

        assert!(
            claim_job_on(&db, &gpu.id, "cpu-worker", Some(DeviceClass::Cpu), lease, 3)
                .await
                .unwrap()
                .is_none(),
            "a CPU worker woken for a cuda job does not take it"
        );
        assert!(
            claim_job_on(
                &db,
                &cpu.id,
                "gpu-worker",
                Some(DeviceClass::Cuda),
                lease,
                3
            )
            .await
            .unwrap()
            .is_none()
        );
        assert_eq!(
            count_active_on(&db, kind, DeviceClass::Cuda).await.unwrap(),
            (1, 0)
        );
        let got = claim_job_on(
            &db,
            &gpu.id,
            "gpu-worker",
            Some(DeviceClass::Cuda),
            lease,
            3,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(got.lease_owner.as_deref(), Some("gpu-worker"));
        assert_eq!(
            count_active_on(&db, kind, DeviceClass::Cuda).await.unwrap(),
            (0, 1)
        );
        assert!(
            claim_job_on(
                &db,
                &any.id,
                "gpu-worker",
                Some(DeviceClass::Cuda),
                lease,
                3
            )
            .await
            .unwrap()
            .is_some(),
            "a job with no device goes to any worker"
        );
    }

    #[tokio::test]
    async fn lifecycle_claims_once_and_finishes_once() {
        let (_d, db) = sqlite().await;
        let job = create_job(&db, JobKind::Synthetic, serde_json::json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(job.status, JobStatus::Queued);
        let lease = Duration::seconds(30);
        let claimed = claim_job(&db, &job.id, "w1", lease, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.attempts, 1);
        assert!(claimed.started_at.is_some());
        assert!(
            claim_job(&db, &job.id, "w2", lease, 3)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            set_progress(&db, &job.id, "w1", 50.0, serde_json::json!({"done": 1}))
                .await
                .unwrap()
        );
        assert!(
            !set_progress(&db, &job.id, "w2", 60.0, Value::Null)
                .await
                .unwrap()
        );
        assert!(
            finish_job(
                &db,
                &job.id,
                "w1",
                JobStatus::Completed,
                Some(serde_json::json!({"ok": true})),
                None
            )
            .await
            .unwrap()
        );
        assert!(
            !finish_job(
                &db,
                &job.id,
                "w1",
                JobStatus::Failed,
                None,
                Some("late".into())
            )
            .await
            .unwrap()
        );
        let done = require_job(&db, &job.id).await.unwrap();
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!(done.progress, 100.0);
        let kinds: Vec<String> = list_events(&db, &job.id, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["status", "status", "progress", "status"]);
        assert!(request_cancel(&db, &job.id).await.is_err());
    }

    #[tokio::test]
    async fn abandoned_jobs_end_once_and_are_never_claimed_again() {
        let (_d, db) = sqlite().await;
        let expired = Duration::milliseconds(-1);
        let kind = JobKind::TrainingLayer2;
        // Cancelled while its worker was dead.
        let orphan = create_job(&db, kind, Value::Null).await.unwrap();
        claim_job(&db, &orphan.id, "dead", expired, 3)
            .await
            .unwrap()
            .unwrap();
        request_cancel(&db, &orphan.id).await.unwrap();
        // Its worker died on each of its three attempts.
        let poison = create_job(&db, kind, Value::Null).await.unwrap();
        for w in ["a", "b", "c"] {
            claim_job(&db, &poison.id, w, expired, 3)
                .await
                .unwrap()
                .unwrap();
        }
        // Alive, with a cancel its worker has not seen yet: left alone.
        let live = create_job(&db, kind, Value::Null).await.unwrap();
        claim_job(&db, &live.id, "alive", Duration::seconds(30), 3)
            .await
            .unwrap()
            .unwrap();
        request_cancel(&db, &live.id).await.unwrap();
        // Died once, attempts left: re-claimable, not settled.
        let retry = create_job(&db, kind, Value::Null).await.unwrap();
        claim_job(&db, &retry.id, "gone", expired, 3)
            .await
            .unwrap()
            .unwrap();

        assert!(
            claim_job(&db, &poison.id, "d", Duration::seconds(30), 3)
                .await
                .unwrap()
                .is_none(),
            "a fourth claim"
        );
        let claimable = find_claimable(&db, kind, None, Duration::zero(), 3, 10)
            .await
            .unwrap();
        assert_eq!(claimable, vec![retry.id.clone()]);

        let settled = settle_abandoned(&db, kind, 3, 10).await.unwrap();
        assert_eq!(settled.len(), 2, "{settled:?}");
        let (cancelled, why) = &settled[0];
        assert_eq!(cancelled.id, orphan.id);
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert_eq!(*why, Abandoned::Cancelled);
        assert!(cancelled.finished_at.is_some() && cancelled.lease_owner.is_none());
        let (failed, why) = &settled[1];
        assert_eq!(failed.id, poison.id);
        assert_eq!(failed.status, JobStatus::Failed);
        let error = failed.error.clone().unwrap();
        assert!(error.contains("3 attempt"), "{error}");
        assert!(matches!(why, Abandoned::GaveUp { attempts: 3, .. }));

        assert!(settle_abandoned(&db, kind, 3, 10).await.unwrap().is_empty());
        assert_eq!(
            require_job(&db, &live.id).await.unwrap().status,
            JobStatus::Running
        );
        assert_eq!(
            require_job(&db, &retry.id).await.unwrap().status,
            JobStatus::Running
        );
        assert!(
            !finish_job(&db, &orphan.id, "dead", JobStatus::Completed, None, None)
                .await
                .unwrap(),
            "the dead worker cannot overwrite the outcome"
        );
        let last = list_events(&db, &poison.id, 0, 100).await.unwrap();
        assert_eq!(last.last().unwrap().payload["status"], "failed");
    }

    #[tokio::test]
    async fn the_watchdog_hands_over_only_jobs_without_progress() {
        let (_d, db) = sqlite().await;
        let kind = JobKind::RestoreBatch;
        let lease = Duration::seconds(60);
        let stuck = create_job(&db, kind, Value::Null).await.unwrap();
        claim_job(&db, &stuck.id, "w1", lease, 3)
            .await
            .unwrap()
            .unwrap();
        let moving = create_job(&db, kind, Value::Null).await.unwrap();
        claim_job(&db, &moving.id, "w2", lease, 3)
            .await
            .unwrap()
            .unwrap();
        // Both were claimed a moment ago; only progress since then counts.
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert!(
            set_progress(&db, &moving.id, "w2", 10.0, Value::Null)
                .await
                .unwrap()
        );
        let handed = expire_stalled(&db, kind, Duration::milliseconds(20), 10)
            .await
            .unwrap();
        assert_eq!(handed, vec![stuck.id.clone()]);
        // The stalled worker has lost the job; another may claim it now.
        assert!(
            heartbeat(&db, &stuck.id, "w1", lease)
                .await
                .unwrap()
                .is_none()
        );
        let again = claim_job(&db, &stuck.id, "w3", lease, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 2);
        assert!(
            heartbeat(&db, &moving.id, "w2", lease)
                .await
                .unwrap()
                .is_some()
        );
        // A fresh claim counts as progress.
        assert!(
            expire_stalled(&db, kind, Duration::seconds(60), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn fenced_writes_need_the_lease() {
        let (_d, db) = sqlite().await;
        let job = create_job(&db, JobKind::Evaluation, Value::Null)
            .await
            .unwrap();
        let lease = Duration::seconds(30);
        claim_job(&db, &job.id, "w1", Duration::milliseconds(-1), 3)
            .await
            .unwrap()
            .unwrap();
        // w1's lease expired and w2 took over: w1 can no longer write.
        claim_job(&db, &job.id, "w2", lease, 3)
            .await
            .unwrap()
            .unwrap();
        let events = || async { list_events(&db, &job.id, 0, 100).await.unwrap().len() };
        let before = events().await;
        assert!(
            !append_event_fenced(&db, &job.id, "w1", lease, "metric", Value::Null)
                .await
                .unwrap()
        );
        assert_eq!(events().await, before);
        assert!(
            append_event_fenced(&db, &job.id, "w2", lease, "metric", Value::Null)
                .await
                .unwrap()
        );
        assert_eq!(events().await, before + 1);
        // The write inside the fence fails: nothing is committed.
        let failed = fenced(&db, &job.id, "w2", lease, |txn| {
            Box::pin(async move {
                append_event(txn, "x", "metric", Value::Null).await?;
                Err::<(), _>(DbError::Conflict("refused".into()))
            })
        })
        .await;
        assert!(failed.is_err());
        assert!(list_events(&db, "x", 0, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn expired_lease_is_reclaimable_and_cancel_works() {
        let (_d, db) = sqlite().await;
        let job = create_job(&db, JobKind::Synthetic, Value::Null)
            .await
            .unwrap();
        claim_job(&db, &job.id, "dead-worker", Duration::milliseconds(-1), 3)
            .await
            .unwrap()
            .unwrap();
        let ids = find_claimable(&db, JobKind::Synthetic, None, Duration::zero(), 3, 10)
            .await
            .unwrap();
        assert_eq!(ids, vec![job.id.clone()]);
        let again = claim_job(&db, &job.id, "w2", Duration::seconds(30), 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 2);
        assert!(
            heartbeat(&db, &job.id, "dead-worker", Duration::seconds(30))
                .await
                .unwrap()
                .is_none()
        );
        let flagged = request_cancel(&db, &job.id).await.unwrap();
        assert!(flagged.cancel_requested);
        let queued = create_job(&db, JobKind::Synthetic, Value::Null)
            .await
            .unwrap();
        assert_eq!(
            request_cancel(&db, &queued.id).await.unwrap().status,
            JobStatus::Cancelled
        );
        assert!(
            claim_job(&db, &queued.id, "w", Duration::seconds(5), 3)
                .await
                .unwrap()
                .is_none()
        );
    }
}
