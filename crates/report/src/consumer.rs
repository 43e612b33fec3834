//! Builds reports when training jobs finish: from `events.training.completed`
//! and, for events that never arrived, from a periodic sweep that asks the
//! trainer's job ledger for finished training jobs and builds those without
//! a `reports` row.

use std::collections::HashMap;
use std::time::Duration;

use restoreflow_core::Backends;
use restoreflow_core::bus::queues;
use restoreflow_core::config::JobSettings;
use restoreflow_core::db::DbError;
use restoreflow_core::db::entity::report;
use restoreflow_core::messages::{BusMessage, TrainingCompleted};
use restoreflow_core::shutdown::CancellationToken;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use tracing::Instrument;

use crate::ReportError;
use crate::builder::build_report;
use crate::collect::Sources;

/// A sweep gives up on a job after this many failed builds (until restart);
/// `BuildReport` over gRPC still retries it.
const MAX_FAILURES: u32 = 3;

/// Finished training jobs a sweep looks at, newest first. The first sweep
/// after start looks at all of them ([`FIRST_SWEEP`]): a report missing
/// from before is built then; later sweeps catch events lost since.
const SWEEP_WINDOW: usize = 200;
/// See [`SWEEP_WINDOW`].
const FIRST_SWEEP: usize = 1_000_000;

/// Reports a sweep builds at most (the rest wait for the next sweep).
const SWEEP_BATCH: usize = 16;

/// Consumes completion events and sweeps for jobs without a report.
pub struct ReportWorker {
    backends: Backends,
    sources: Sources,
    jobs: JobSettings,
    failures: HashMap<String, u32>,
    /// Whether a sweep has looked at every finished job since start.
    swept_all: bool,
}

impl ReportWorker {
    /// A worker on `backends`; `jobs.sweep_interval_secs` paces the sweep.
    pub fn new(backends: Backends, sources: Sources, jobs: JobSettings) -> Self {
        Self {
            backends,
            sources,
            jobs,
            failures: HashMap::new(),
            swept_all: false,
        }
    }

    /// Runs until `shutdown`: consumes events (subscribing again whenever
    /// the broker drops the consumer) and sweeps on a timer either way.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let tag = format!("report-{}", uuid::Uuid::new_v4());
        let mut sweep =
            tokio::time::interval(Duration::from_secs(self.jobs.sweep_interval_secs.max(1)));
        let mut consumer = None;
        loop {
            if consumer.is_none() {
                match self
                    .backends
                    .bus
                    .consume(queues::EVENTS_TRAINING_COMPLETED, &tag)
                    .await
                {
                    Ok(c) => consumer = Some(c),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot consume training events; retrying")
                    }
                }
            }
            let Some(c) = consumer.as_mut() else {
                // No consumer yet: sweep meanwhile, and try again shortly.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = sweep.tick() => self.sweep(&shutdown).await,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                continue;
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                delivery = c.next() => match delivery {
                    None => {
                        tracing::warn!("training event consumer closed; subscribing again");
                        consumer = None;
                    }
                    Some(Err(e)) => tracing::error!(error = %e, "bus delivery failed"),
                    Some(Ok(delivery)) => {
                        let event = match TrainingCompleted::decode(&delivery.payload) {
                            Ok(event) => event,
                            Err(e) => {
                                tracing::warn!(error = %e, "unusable training event; dead-lettering it");
                                let _ = delivery.reject().await;
                                continue;
                            }
                        };
                        let span = tracing::info_span!(
                            "report",
                            job_id = %event.job_id,
                            request_id = tracing::field::Empty,
                        );
                        event.trace.adopt(&span);
                        self.build(&event.job_id).instrument(span).await;
                        // A failed build is retried by the sweep, so the event is done either way.
                        if let Err(e) = delivery.ack().await {
                            tracing::warn!(error = %e, "ack failed");
                        }
                    }
                },
                _ = sweep.tick() => self.sweep(&shutdown).await,
            }
        }
    }

    async fn build(&mut self, job_id: &str) {
        match build_report(&self.backends, &self.sources, job_id).await {
            Ok(_) => {
                self.failures.remove(job_id);
            }
            Err(e) => {
                tracing::error!(job_id, error = %e, "report build failed");
                *self.failures.entry(job_id.to_string()).or_default() += 1;
            }
        }
    }

    /// Finished training jobs without a report row.
    async fn sweep(&mut self, shutdown: &CancellationToken) {
        let given_up: Vec<String> = self
            .failures
            .iter()
            .filter(|(_, n)| **n >= MAX_FAILURES)
            .map(|(id, _)| id.clone())
            .collect();
        let window = if self.swept_all {
            SWEEP_WINDOW
        } else {
            FIRST_SWEEP
        };
        let missing = match missing_reports(&self.backends, &self.sources, window, &given_up).await
        {
            Ok(ids) => {
                self.swept_all = true;
                ids
            }
            Err(e) => {
                tracing::warn!(error = %e, "report sweep failed");
                return;
            }
        };
        for id in missing {
            if shutdown.is_cancelled() {
                return;
            }
            tracing::info!(job_id = %id, "building a report whose event never arrived");
            self.build(&id).await;
        }
    }
}

/// Finished training jobs without a report among the newest `window`,
/// oldest first, except `given_up`; at most [`SWEEP_BATCH`].
async fn missing_reports(
    backends: &Backends,
    sources: &Sources,
    window: usize,
    given_up: &[String],
) -> Result<Vec<String>, ReportError> {
    let finished = sources.finished_training_jobs(window).await?;
    let mut missing = Vec::new();
    // Oldest first; the ledger answers newest first.
    for chunk in finished.rchunks(500) {
        let reported: Vec<String> = report::Entity::find()
            .select_only()
            .column(report::Column::JobId)
            .filter(report::Column::JobId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(&backends.db)
            .await
            .map_err(DbError::from)?;
        missing.extend(
            chunk
                .iter()
                .rev()
                .filter(|id| !reported.contains(id) && !given_up.contains(id))
                .cloned(),
        );
        if missing.len() >= SWEEP_BATCH {
            break;
        }
    }
    missing.truncate(SWEEP_BATCH);
    Ok(missing)
}
