//! Keeps a claimed job's lease alive while a worker runs it, and tells the
//! worker when to stop: the user cancelled, another worker took the job over
//! (lease lost), or the process is shutting down.

use crate::error::TrainerError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use restoreflow_core::config::JobSettings;
use restoreflow_core::db::{self, Db, JobStatus};
use restoreflow_core::shutdown::CancellationToken;
use serde_json::Value;

/// Why a job must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The user asked to cancel: finish the job as cancelled.
    Cancelled,
    /// Another worker owns the job now: write nothing more.
    Lost,
    /// This process is stopping: leave the job for another worker.
    Shutdown,
}

const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const LOST: u8 = 2;
const SHUTDOWN: u8 = 3;

/// A running heartbeat; dropping it stops the heartbeat.
pub struct Lease {
    state: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Renews the lease of `job_id` for `worker` every `jobs.heartbeat_secs`.
    pub fn start(
        db: Db,
        job_id: String,
        worker: String,
        jobs: &JobSettings,
        shutdown: CancellationToken,
    ) -> Self {
        let state = Arc::new(AtomicU8::new(RUNNING));
        let flag = state.clone();
        let lease = chrono::Duration::seconds(jobs.lease_secs as i64);
        let every = Duration::from_secs(jobs.heartbeat_secs.max(1));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        flag.store(SHUTDOWN, Ordering::SeqCst);
                        return;
                    }
                    _ = tick.tick() => {}
                }
                match db::heartbeat(&db, &job_id, &worker, lease).await {
                    Ok(Some(j)) if j.cancel_requested => flag.store(CANCELLED, Ordering::SeqCst),
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        flag.store(LOST, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
        });
        Self { state, task }
    }

    /// `Err` once the job must stop.
    pub fn check(&self) -> Result<(), Stop> {
        match self.state.load(Ordering::SeqCst) {
            CANCELLED => Err(Stop::Cancelled),
            LOST => Err(Stop::Lost),
            SHUTDOWN => Err(Stop::Shutdown),
            _ => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a leased job did not complete.
pub enum Halt {
    /// It failed, with the reason and its code.
    Failed(TrainerError),
    /// It was told to stop.
    Stopped(Stop),
}

impl From<String> for Halt {
    /// A failure described only by text is ours (Internal).
    fn from(e: String) -> Self {
        Self::Failed(TrainerError::internal(e))
    }
}

impl From<TrainerError> for Halt {
    fn from(e: TrainerError) -> Self {
        Self::Failed(e)
    }
}

/// What a job's outcome is recorded as: `(status, result, error)`, or `None`
/// when the job is left to another worker (lease lost, or shutdown: the next
/// worker re-claims it once the lease expires). `what` names the job in logs.
pub fn settle(
    job_id: &str,
    what: &str,
    outcome: Result<Value, Halt>,
) -> Option<(JobStatus, Option<Value>, Option<String>)> {
    match outcome {
        Ok(r) => Some((JobStatus::Completed, Some(r), None)),
        Err(Halt::Stopped(Stop::Cancelled)) => Some((JobStatus::Cancelled, None, None)),
        Err(Halt::Stopped(stop)) => {
            tracing::info!(job_id, ?stop, "{what} left to another worker");
            None
        }
        Err(Halt::Failed(e)) => {
            tracing::error!(job_id, code = %e.code, error = %e, "{what} failed");
            // The code travels with the job: `result.error_code`.
            let result = serde_json::json!({"error_code": e.code.as_str()});
            Some((JobStatus::Failed, Some(result), Some(e.message)))
        }
    }
}

/// Records a settled outcome, once, if the job is still this worker's.
pub async fn finish(
    db: &Db,
    job_id: &str,
    worker: &str,
    (status, result, error): (JobStatus, Option<Value>, Option<String>),
) {
    if let Err(e) = db::finish_job(db, job_id, worker, status, result, error).await {
        tracing::error!(job_id, error = %e, "cannot record the job outcome");
    }
}
