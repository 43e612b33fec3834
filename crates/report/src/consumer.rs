//! Builds reports when training jobs finish: from `events.training.completed`
//! and, for events that never arrived, from a periodic database sweep.

use std::collections::HashMap;
use std::time::Duration;

use restoreflow_core::Backends;
use restoreflow_core::bus::queues;
use restoreflow_core::config::JobSettings;
use restoreflow_core::db::entity::{job, report};
use restoreflow_core::db::{DbError, JobKind};
use restoreflow_core::messages::{BusMessage, TrainingCompleted};
use restoreflow_core::shutdown::CancellationToken;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tracing::Instrument;

use crate::builder::build_report;
use crate::collect::Fleet;

/// A sweep gives up on a job after this many failed builds (until restart);
/// `BuildReport` over gRPC still retries it.
const MAX_FAILURES: u32 = 3;

/// Consumes completion events and sweeps for jobs without a report.
pub struct ReportWorker {
    backends: Backends,
    fleet: Fleet,
    jobs: JobSettings,
    failures: HashMap<String, u32>,
}

impl ReportWorker {
    /// A worker on `backends`; `jobs.sweep_interval_secs` paces the sweep.
    pub fn new(backends: Backends, fleet: Fleet, jobs: JobSettings) -> Self {
        Self {
            backends,
            fleet,
            jobs,
            failures: HashMap::new(),
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
        match build_report(&self.backends, &self.fleet, job_id).await {
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
        let missing = match missing_reports(&self.backends, &given_up).await {
            Ok(ids) => ids,
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

/// Finished training jobs without a report, oldest first, except `given_up`.
async fn missing_reports(backends: &Backends, given_up: &[String]) -> Result<Vec<String>, DbError> {
    let reported = Query::select()
        .column(report::Column::JobId)
        .from(report::Entity)
        .to_owned();
    let rows = job::Entity::find()
        .filter(job::Column::Kind.eq(JobKind::TrainingLayer2.as_str()))
        .filter(job::Column::Status.is_in(["completed", "failed", "cancelled"]))
        .filter(job::Column::Id.not_in_subquery(reported))
        .filter(job::Column::Id.is_not_in(given_up.iter().cloned()))
        .order_by_asc(job::Column::FinishedAt)
        .limit(16)
        .all(&backends.db)
        .await?;
    Ok(rows.into_iter().map(|j| j.id).collect())
}
