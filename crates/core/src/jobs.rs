//! The worker side of the job lifecycle, shared by every job-running service.
//!
//! A [`JobLoop`] consumes wake-up messages from a work queue and sweeps the
//! database for jobs nobody was told about (lost message, dead worker). Either
//! way it claims the job row with a lease, acks the delivery as soon as the
//! claim is durable (so hours of work never hold an unacked message), and hands
//! the claimed job to the service's [`JobRunner`], one job at a time.
//!
//! Every job ends: the sweep also finishes jobs that no worker will
//! (a cancel requested while the worker was dead; a job whose workers died
//! on each of its `jobs.max_attempts` attempts, which is also dead-lettered
//! to the work queue's `.dead` queue with the reason).

use std::time::Duration;

use crate::Backends;
use crate::bus::DEAD_LETTER_SUFFIX;
use crate::config::JobSettings;
use crate::db::{self, Abandoned, JobKind, entity::job};
use crate::shutdown::CancellationToken;
use async_trait::async_trait;

pub use crate::messages::JobMessage;
use crate::messages::{BusMessage, DeadLetter};
use crate::metrics::names;
use crate::telemetry::TraceHeaders;
use tracing::Instrument;

/// What a service does with a job it has claimed.
#[async_trait]
pub trait JobRunner: Send + Sync {
    /// Runs a claimed job to a terminal state (or leaves it for another worker
    /// when the lease is lost or the process shuts down).
    async fn run_job(&self, job: job::Model, shutdown: &CancellationToken);

    /// Called after the recovery sweep ended one of this kind's jobs that
    /// no live worker owned (cancelled while its worker was gone, or failed
    /// after `jobs.max_attempts`): announce the outcome as a worker that
    /// finished it would. `job` is the row as it is now.
    async fn abandoned(&self, job: &job::Model) {
        let _ = job;
    }
}

/// Claims jobs of one kind from a queue and from the recovery sweep.
pub struct JobLoop {
    backends: Backends,
    jobs: JobSettings,
    kind: JobKind,
    queue: String,
    /// The device class this loop's worker serves; `None` takes every job.
    device: Option<crate::devices::DeviceClass>,
    worker: String,
}

impl JobLoop {
    /// A loop for `kind` jobs woken on `queue`, claiming as `worker`.
    pub fn new(
        backends: Backends,
        jobs: JobSettings,
        kind: JobKind,
        queue: &'static str,
        worker: impl Into<String>,
    ) -> Self {
        Self {
            backends,
            jobs,
            kind,
            queue: queue.to_string(),
            device: None,
            worker: worker.into(),
        }
    }

    /// Serves only jobs of device class `class`: consumes that class's queue
    /// (see [`crate::devices::queue_for`]) and claims only jobs recorded for
    /// it (or for no device).
    pub fn on_device(mut self, class: crate::devices::DeviceClass) -> Self {
        self.queue = crate::devices::queue_for(&self.queue, class);
        self.device = Some(class);
        self
    }

    /// The queue this loop consumes.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Consumes wake-ups and sweeps for orphaned jobs until `shutdown`.
    pub async fn run(&self, runner: &dyn JobRunner, shutdown: &CancellationToken) {
        let mut consumer = loop {
            match self.backends.bus.consume(&self.queue, &self.worker).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(queue = %self.queue, error = %e, "cannot consume jobs; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        let mut sweep = tokio::time::interval(Duration::from_secs(self.jobs.sweep_interval_secs));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                delivery = consumer.next() => {
                    let Some(delivery) = delivery else { break };
                    let delivery = match delivery {
                        Ok(d) => d,
                        Err(e) => { tracing::error!(error = %e, "bus delivery failed"); continue; }
                    };
                    let msg = match JobMessage::decode(&delivery.payload) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "unusable job message; dead-lettering it");
                            let _ = delivery.reject().await;
                            continue;
                        }
                    };
                    let claimed = self.claim(&msg.job_id).await;
                    // Ack once the claim is durable (or impossible): long work
                    // never holds an unacked delivery.
                    if let Err(e) = delivery.ack().await {
                        tracing::warn!(error = %e, "ack failed");
                    }
                    if let Some(job) = claimed {
                        self.run_one(runner, job, &msg.trace, shutdown).await;
                    }
                }
                _ = sweep.tick() => self.sweep(runner, shutdown).await,
            }
        }
    }

    /// Claims a job for this worker with a fresh lease.
    pub async fn claim(&self, id: &str) -> Option<job::Model> {
        let lease = chrono::Duration::seconds(self.jobs.lease_secs as i64);
        match db::claim_job_on(
            &self.backends.db,
            id,
            &self.worker,
            self.device,
            lease,
            self.jobs.max_attempts,
        )
        .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(job_id = id, error = %e, "claim failed");
                None
            }
        }
    }

    /// Ends the jobs nobody will finish (see [`db::settle_abandoned`]):
    /// dead-letters the ones that gave up, with the reason, and lets the
    /// runner announce each outcome.
    pub async fn settle_abandoned(&self, runner: &dyn JobRunner) {
        let settled =
            match db::settle_abandoned(&self.backends.db, self.kind, self.jobs.max_attempts, 16)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot settle abandoned jobs");
                    return;
                }
            };
        for (job, why) in settled {
            match &why {
                Abandoned::Cancelled => {
                    tracing::info!(job_id = %job.id, "cancelled a job whose worker is gone");
                }
                Abandoned::GaveUp { attempts, error } => {
                    tracing::error!(job_id = %job.id, attempts, "{error}");
                    let letter = DeadLetter::new(
                        &job.id,
                        self.kind,
                        (*attempts).max(0) as u32,
                        error.clone(),
                    );
                    let queue = format!("{}{DEAD_LETTER_SUFFIX}", self.queue);
                    if let Err(e) = self.backends.bus.publish(&queue, &letter.encode()).await {
                        tracing::warn!(job_id = %job.id, error = %e, "cannot dead-letter the job");
                    }
                }
            }
            runner.abandoned(&job).await;
        }
    }

    /// Runs one claimed job inside a `job` span that continues the trace of
    /// the request that created it, and records how it ended.
    async fn run_one(
        &self,
        runner: &dyn JobRunner,
        job: job::Model,
        trace: &TraceHeaders,
        shutdown: &CancellationToken,
    ) {
        let span = tracing::info_span!(
            "job",
            otel.name = %format!("job {}", self.kind.as_str()),
            job_id = %job.id,
            kind = self.kind.as_str(),
            attempt = job.attempts,
            request_id = tracing::field::Empty,
        );
        trace.adopt(&span);
        let id = job.id.clone();
        let started = std::time::Instant::now();
        runner.run_job(job, shutdown).instrument(span).await;
        // A job handed back (lease lost, shutdown) did not end here.
        if let Ok(Some(j)) = db::get_job(&self.backends.db, &id).await
            && j.status.is_terminal()
        {
            let labels = [
                ("kind", self.kind.as_str().to_string()),
                ("status", j.status.to_string()),
            ];
            metrics::counter!(names::JOBS_FINISHED, &labels).increment(1);
            metrics::histogram!(names::JOB_DURATION, &labels)
                .record(started.elapsed().as_secs_f64());
        }
        self.observe().await;
    }

    /// Publishes the queue depth and the job counts of this loop's kind.
    pub async fn observe(&self) {
        if let Ok(depth) = self.backends.bus.depth(&self.queue).await {
            metrics::gauge!(names::QUEUE_DEPTH, "queue" => self.queue.clone()).set(depth as f64);
        }
        if let Ok(counts) = db::count_by_status(&self.backends.db, self.kind).await {
            for status in db::JobStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!(
                    names::JOBS,
                    "kind" => self.kind.as_str(),
                    "status" => status.as_str()
                )
                .set(n as f64);
            }
        }
    }

    async fn sweep(&self, runner: &dyn JobRunner, shutdown: &CancellationToken) {
        self.observe().await;
        if self.jobs.watchdog_secs > 0 {
            let stalled = chrono::Duration::seconds(self.jobs.watchdog_secs as i64);
            match db::expire_stalled(&self.backends.db, self.kind, stalled, 16).await {
                Ok(ids) => {
                    for id in ids {
                        tracing::warn!(job_id = %id, "no progress for {} s: handing the job over", self.jobs.watchdog_secs);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "progress watchdog failed"),
            }
        }
        self.settle_abandoned(runner).await;
        let grace = chrono::Duration::seconds(self.jobs.sweep_interval_secs as i64);
        let ids = match db::find_claimable(
            &self.backends.db,
            self.kind,
            self.device,
            grace,
            self.jobs.max_attempts,
            4,
        )
        .await
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "recovery sweep failed");
                return;
            }
        };
        for id in ids {
            if shutdown.is_cancelled() {
                return;
            }
            if let Some(job) = self.claim(&id).await {
                tracing::info!(job_id = %id, attempt = job.attempts, "recovered a job without a live worker");
                self.run_one(runner, job, &TraceHeaders::default(), shutdown)
                    .await;
            }
        }
    }
}
