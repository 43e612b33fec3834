//! The job ledger of one service over gRPC (`JobService`): the jobs of the
//! kinds the service runs, their history and their cancellation.
//!
//! Every service that runs jobs mounts one over its own rows (the trainer
//! for training, evaluation and batch restoration; synthetic-data for
//! generation), so readers such as the gateway see jobs through the owner's
//! API instead of querying its tables. A job of another kind is `NOT_FOUND`
//! here: it belongs to another service's ledger.

use restoreflow_proto::ErrorCode;
use restoreflow_proto::v1::{self, job_service_server};
use tonic::{Request, Response, Status};

use crate::db::{self, Db, DbError, JobCursor, JobKind};

/// Largest page of jobs or events one call returns.
pub const MAX_PAGE: u32 = 1000;

/// The services that run jobs, each the owner of its kinds' ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Training, evaluation and batch restoration.
    Trainer,
    /// Synthetic pair generation.
    SyntheticData,
}

impl Owner {
    /// Every owner.
    pub const ALL: [Owner; 2] = [Owner::Trainer, Owner::SyntheticData];

    /// The service that runs jobs of `kind`.
    pub fn of(kind: JobKind) -> Self {
        match kind {
            JobKind::Synthetic => Self::SyntheticData,
            JobKind::TrainingLayer2
            | JobKind::Evaluation
            | JobKind::Layer1Evaluation
            | JobKind::RestoreBatch => Self::Trainer,
        }
    }

    /// The kinds it runs.
    pub fn kinds(self) -> Vec<JobKind> {
        JobKind::ALL
            .into_iter()
            .filter(|k| Self::of(*k) == self)
            .collect()
    }

    /// The service's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trainer => "trainer",
            Self::SyntheticData => "synthetic-data",
        }
    }
}

/// `JobService` over the jobs of `kinds`.
#[derive(Clone)]
pub struct JobLedger {
    db: Db,
    kinds: Vec<JobKind>,
}

impl JobLedger {
    /// The ledger of the jobs of `kinds` in `db`.
    pub fn new(db: Db, kinds: &[JobKind]) -> Self {
        Self {
            db,
            kinds: kinds.to_vec(),
        }
    }

    /// The ledger of `owner`'s jobs.
    pub fn of(db: Db, owner: Owner) -> Self {
        Self::new(db, &owner.kinds())
    }

    /// The tonic service.
    pub fn server(self) -> job_service_server::JobServiceServer<Self> {
        job_service_server::JobServiceServer::new(self)
    }

    /// The job `id`, when it is one of this ledger's kinds.
    async fn owned(&self, id: &str) -> Result<db::entity::job::Model, Status> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ErrorCode::InvalidArgument.status(format!("job id {id:?} is not a UUID")));
        }
        match db::get_job(&self.db, id).await.map_err(from_db)? {
            Some(j) if self.kinds.contains(&j.kind) => Ok(j),
            _ => Err(ErrorCode::NotFound.status(format!("job {id} not found"))),
        }
    }
}

fn from_db(e: DbError) -> Status {
    e.into_status()
}

fn invalid(message: impl Into<String>) -> Status {
    ErrorCode::InvalidArgument.status(message)
}

fn page_size(requested: u32, default: u32, name: &str) -> Result<u64, Status> {
    match requested {
        0 => Ok(default.into()),
        n if n <= MAX_PAGE => Ok(n.into()),
        n => Err(invalid(format!(
            "{name} must be between 1 and {MAX_PAGE}, got {n}"
        ))),
    }
}

#[tonic::async_trait]
impl job_service_server::JobService for JobLedger {
    async fn get_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::Job>, Status> {
        let job = self.owned(&request.get_ref().job_id).await?;
        Ok(Response::new(db::job_to_proto(&job)))
    }

    async fn list_jobs(
        &self,
        request: Request<v1::JobQuery>,
    ) -> Result<Response<v1::JobPage>, Status> {
        let q = request.into_inner();
        let kinds = match db::kind_from_proto(q.kind).map_err(invalid)? {
            None => self.kinds.clone(),
            Some(k) if self.kinds.contains(&k) => vec![k],
            // Another service's kind: none of them are here.
            Some(_) => return Ok(Response::new(v1::JobPage::default())),
        };
        if q.status != 0 && !q.statuses.is_empty() {
            return Err(invalid("give status or statuses, not both"));
        }
        let mut statuses: Vec<_> = db::status_from_proto(q.status)
            .map_err(invalid)?
            .into_iter()
            .collect();
        for s in &q.statuses {
            match db::status_from_proto(*s).map_err(invalid)? {
                Some(s) => statuses.push(s),
                None => return Err(invalid("statuses must not contain JOB_STATUS_UNSPECIFIED")),
            }
        }
        let limit = page_size(q.page_size, 50, "page_size")?;
        let after = match q.page_token.as_str() {
            "" => None,
            t => Some(JobCursor::decode(t).ok_or_else(|| {
                invalid(format!(
                    "page_token {t:?} is not a token this list gave (pass next_page_token back as it is)"
                ))
            })?),
        };
        let jobs = db::list_jobs_page(&self.db, &kinds, &statuses, after.as_ref(), limit)
            .await
            .map_err(from_db)?;
        let next_page_token = match jobs.last() {
            Some(last) if jobs.len() as u64 == limit => JobCursor::after(last).encode(),
            _ => String::new(),
        };
        Ok(Response::new(v1::JobPage {
            jobs: jobs.iter().map(db::job_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_job_events(
        &self,
        request: Request<v1::JobEventQuery>,
    ) -> Result<Response<v1::JobEventPage>, Status> {
        let q = request.into_inner();
        let job = self.owned(&q.job_id).await?;
        let limit = page_size(q.limit, 500, "limit")?;
        if let Some(k) = q.kinds.iter().find(|k| {
            k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        }) {
            return Err(invalid(format!(
                "event kind {k:?} is not a kind name (lowercase letters and _)"
            )));
        }
        let events = db::list_events_of(&self.db, &job.id, &q.kinds, q.after.max(0), limit)
            .await
            .map_err(from_db)?;
        Ok(Response::new(v1::JobEventPage {
            events: events.iter().map(db::event_to_proto).collect(),
        }))
    }

    async fn cancel_job(&self, request: Request<v1::JobRef>) -> Result<Response<v1::Job>, Status> {
        let job = self.owned(&request.get_ref().job_id).await?;
        let job = db::request_cancel(&self.db, &job.id)
            .await
            .map_err(from_db)?;
        Ok(Response::new(db::job_to_proto(&job)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use job_service_server::JobService;
    use serde_json::Value;

    async fn ledger() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        (dir, crate::db::connect(&url, 2).await.unwrap())
    }

    #[tokio::test]
    async fn a_ledger_answers_for_its_kinds_only() {
        let (_d, db) = ledger().await;
        let train = db::create_job(&db, JobKind::TrainingLayer2, Value::Null)
            .await
            .unwrap();
        let synth = db::create_job(&db, JobKind::Synthetic, Value::Null)
            .await
            .unwrap();
        let trainer = JobLedger::new(db.clone(), &[JobKind::TrainingLayer2]);
        let get = |id: &str| {
            Request::new(v1::JobRef {
                job_id: id.to_string(),
            })
        };
        let got = trainer.get_job(get(&train.id)).await.unwrap().into_inner();
        assert_eq!(got.kind, v1::JobKind::TrainingLayer2 as i32);
        let err = trainer.get_job(get(&synth.id)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        let err = trainer.cancel_job(get(&synth.id)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(
            db::require_job(&db, &synth.id).await.unwrap().status,
            db::JobStatus::Queued,
            "another service's job is left alone"
        );
        let err = trainer.get_job(get("nope")).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);

        let list = |kind: v1::JobKind, token: &str, size: u32| {
            Request::new(v1::JobQuery {
                kind: kind as i32,
                page_size: size,
                page_token: token.to_string(),
                ..Default::default()
            })
        };
        let page = trainer
            .list_jobs(list(v1::JobKind::Unspecified, "", 10))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.jobs[0].id, train.id);
        assert!(page.next_page_token.is_empty());
        let page = trainer
            .list_jobs(list(v1::JobKind::Synthetic, "", 10))
            .await
            .unwrap()
            .into_inner();
        assert!(page.jobs.is_empty());
        for (size, token) in [(MAX_PAGE + 1, ""), (10, "17")] {
            let err = trainer
                .list_jobs(list(v1::JobKind::Unspecified, token, size))
                .await
                .unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        }

        let cancelled = trainer
            .cancel_job(get(&train.id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(cancelled.status, v1::JobStatus::Cancelled as i32);
        let err = trainer.cancel_job(get(&train.id)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        let events = trainer
            .list_job_events(Request::new(v1::JobEventQuery {
                job_id: train.id.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .events;
        assert!(events.len() >= 2, "{events:?}");
        assert!(events.windows(2).all(|w| w[0].id < w[1].id));
        let events_before = events.len();
        // Filters: by event kind, by several statuses.
        db::append_event(&db, &train.id, "log", serde_json::json!({"message": "x"}))
            .await
            .unwrap();
        let status_events = trainer
            .list_job_events(Request::new(v1::JobEventQuery {
                job_id: train.id.clone(),
                kinds: vec!["status".into()],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .events;
        assert_eq!(
            status_events.len(),
            events_before,
            "the log event is left out"
        );
        assert!(status_events.iter().all(|e| e.kind == "status"));
        let bad_kind = trainer
            .list_job_events(Request::new(v1::JobEventQuery {
                job_id: train.id.clone(),
                kinds: vec!["Status; drop".into()],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(bad_kind.code(), tonic::Code::InvalidArgument);
        let other = db::create_job(&db, JobKind::TrainingLayer2, Value::Null)
            .await
            .unwrap();
        let finished = |statuses: Vec<i32>, status: i32| {
            Request::new(v1::JobQuery {
                statuses,
                status,
                ..Default::default()
            })
        };
        let done = vec![
            v1::JobStatus::Completed as i32,
            v1::JobStatus::Failed as i32,
            v1::JobStatus::Cancelled as i32,
        ];
        let page = trainer
            .list_jobs(finished(done.clone(), 0))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<_> = page.jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(
            ids,
            [train.id.as_str()],
            "the queued {} is left out",
            other.id
        );
        for (statuses, status) in [(done, v1::JobStatus::Queued as i32), (vec![0], 0)] {
            let err = trainer
                .list_jobs(finished(statuses, status))
                .await
                .unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        }
    }
}
