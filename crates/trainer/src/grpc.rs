//! The `TrainerService` gRPC implementation.

use restoreflow_core::jobs::JobMessage;
use restoreflow_core::messages::{BusMessage, TrainingCompleted};
use std::time::Duration;

use restoreflow_core::bus::queues;
use restoreflow_core::db::{self, DbError, JobKind, JobStatus, entity::job};
use restoreflow_core::devices;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_core::{Backends, ErrorCode};
use restoreflow_proto::v1::{
    self, model_registry_service_client::ModelRegistryServiceClient,
    trainer_service_server::TrainerService,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::pairs::find_training_pairs;
use crate::params::{MIN_PAIRS, TrainParams};
use crate::view::training_job;
use crate::worker::SERVICE;

/// How often `WatchTraining` looks for new events.
const WATCH_POLL: Duration = Duration::from_millis(500);
/// Most events read per poll.
const EVENT_PAGE: u64 = 1000;

/// Shared state of the gRPC handlers.
pub struct TrainerGrpc {
    pub(crate) backends: Backends,
    /// Datasets, from synthetic-data.
    pub(crate) catalog: crate::catalog::Catalog,
    /// Resolves the requested device against the live workers.
    pub(crate) router: crate::devices::DeviceRouter,
    /// `trainer.max_job_memory`, resolved (0 became half the machine's memory).
    pub(crate) max_job_memory: u64,
    pub(crate) registry: ModelRegistryServiceClient<AuthChannel>,
}

/// Logs an unexpected failure and answers a bare internal error.
pub(crate) fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "internal error");
    ErrorCode::Internal.status("internal error")
}

/// A metadata failure as a status (internals are logged, not returned).
pub(crate) fn from_db(e: DbError) -> Status {
    e.into_status()
}

/// Every event of a job, oldest first.
async fn all_events(
    db: &db::Db,
    job_id: &str,
) -> Result<Vec<restoreflow_core::db::entity::job_event::Model>, DbError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = db::list_events(db, job_id, after, EVENT_PAGE).await?;
        let full = page.len() as u64 == EVENT_PAGE;
        after = page.last().map_or(after, |e| e.id);
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// One device class's line of the training status, with a notice when its
/// jobs wait for a worker that is not there.
fn device_status(
    class: &str,
    pool: &devices::Pool,
    queued: u64,
    running: u64,
    queue_depth: u64,
) -> v1::DeviceClassStatus {
    let live = pool.live_count(class);
    let on_demand = pool.on_demand.iter().any(|c| c == class);
    let notice = if queued > 0 && live == 0 {
        if on_demand {
            format!(
                "{queued} {class} job(s) waiting: no live {class} worker yet; the deployment starts {class} workers on demand"
            )
        } else {
            format!(
                "{queued} {class} job(s) waiting: no live {class} worker; start one, or cancel them and train on another device"
            )
        }
    } else {
        String::new()
    };
    v1::DeviceClassStatus {
        device: class.to_string(),
        live_workers: live as u32,
        on_demand,
        queued,
        running,
        queue_depth,
        accepting: pool.serves(class),
        notice,
    }
}

impl TrainerGrpc {
    /// The memory a training step may need on `class`: the machine-memory
    /// limit (`trainer.max_job_memory`) for the CPU; for CUDA, the largest
    /// GPU memory a live CUDA worker advertises (unknown: not checked here,
    /// the GPU worker fails the job if it does not fit).
    async fn memory_limit(&self, class: &str) -> Result<u64, Status> {
        if class != devices::CUDA {
            return Ok(self.max_job_memory);
        }
        let live = db::live_workers(&self.backends.db, SERVICE, self.router.since())
            .await
            .map_err(from_db)?;
        Ok(live
            .iter()
            .filter(|w| w.device == devices::CUDA)
            .flat_map(db::capabilities_of)
            .filter_map(|c| c.memory_bytes)
            .max()
            .unwrap_or(u64::MAX))
    }

    /// A training job by id; other kinds are not found here.
    async fn training_row(&self, id: &str) -> Result<job::Model, Status> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ErrorCode::InvalidArgument.status(format!("job id {id:?} is not a UUID")));
        }
        let j = db::require_job(&self.backends.db, id)
            .await
            .map_err(from_db)?;
        if j.kind != JobKind::TrainingLayer2 {
            return Err(ErrorCode::NotFound.status(format!("training job {id} not found")));
        }
        Ok(j)
    }

    async fn view(&self, j: &job::Model) -> Result<v1::TrainingJob, Status> {
        let events = all_events(&self.backends.db, &j.id)
            .await
            .map_err(from_db)?;
        Ok(training_job(j, &events))
    }
}

#[tonic::async_trait]
impl TrainerService for TrainerGrpc {
    #[tracing::instrument(skip(self, request), err)]
    async fn start_training(
        &self,
        request: Request<v1::StartTrainingRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let mut params = TrainParams::from_request(request.get_ref(), devices::AUTO)?;
        let class = self.router.resolve(&params.device).await?;
        params.settle_device(class.as_str())?;
        params.check_memory(self.memory_limit(class.as_str()).await?)?;
        if let Some(base) = params.base_model.clone() {
            let v = self
                .registry
                .clone()
                .resolve_version(v1::VersionRef {
                    layer: 2,
                    version: base.clone(),
                })
                .await
                .map_err(|s| match ErrorCode::from_grpc(s.code()) {
                    ErrorCode::NotFound | ErrorCode::InvalidArgument => ErrorCode::InvalidArgument
                        .status(format!(
                            "base_model {base:?} is not a layer 2 model version or alias: {}",
                            s.message()
                        )),
                    _ => ErrorCode::Unavailable.status("the model registry is unavailable"),
                })?
                .into_inner();
            // Pin the number, so moving an alias later does not change the job.
            params.base_model = Some(v.version.to_string());
        }
        let pairs = find_training_pairs(
            &self.backends,
            &self.catalog,
            &params.dataset,
            params.max_pairs as usize,
        )
        .await
        .map_err(|e| match e {
            crate::pairs::PairError::Storage(s) => s.code().status(s.to_string()),
            crate::pairs::PairError::Catalog(c) => c.status(),
            held_out @ crate::pairs::PairError::HeldOut(_) => {
                ErrorCode::InvalidArgument.status(held_out.to_string())
            }
        })?;
        if pairs.pairs.len() < MIN_PAIRS {
            // The request is fine; the stored data is not there (yet).
            return Err(ErrorCode::FailedPrecondition.status(format!(
                "found {} valid clean/degraded pairs in {}; training needs at least {MIN_PAIRS} (generate some with POST /synthetic/generate)",
                pairs.available, pairs.location
            )));
        }
        let value = serde_json::to_value(&params).map_err(internal)?;
        let job = db::create_job_on(
            &self.backends.db,
            JobKind::TrainingLayer2,
            value,
            Some(class),
        )
        .await
        .map_err(from_db)?;
        let msg = JobMessage::new(&job.id).encode();
        // The row is the truth: if the wake-up is lost, a worker's sweep still finds the job.
        let queue = devices::queue_for(queues::TRAINING, class);
        if let Err(e) = self.backends.bus.publish(&queue, &msg).await {
            tracing::warn!(job_id = %job.id, error = %e, "publish failed; the recovery sweep will pick the job up");
        }
        Ok(Response::new(db::job_to_proto(&job)))
    }

    async fn get_training_job(
        &self,
        request: Request<v1::JobRef>,
    ) -> Result<Response<v1::TrainingJob>, Status> {
        let j = self.training_row(&request.get_ref().job_id).await?;
        Ok(Response::new(self.view(&j).await?))
    }

    async fn list_training_jobs(
        &self,
        request: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListTrainingJobsResponse>, Status> {
        let r = request.into_inner();
        let status =
            db::status_from_proto(r.status).map_err(|m| ErrorCode::InvalidArgument.status(m))?;
        let limit = if r.page_size == 0 { 50 } else { r.page_size };
        if limit > 200 {
            return Err(ErrorCode::InvalidArgument.status("page_size must be at most 200"));
        }
        let offset = db::paging::parse_page_token(&r.page_token)
            .map_err(|e| ErrorCode::InvalidArgument.status(e))?;
        let rows = db::list_jobs(
            &self.backends.db,
            Some(JobKind::TrainingLayer2),
            status,
            u64::from(limit),
            offset,
        )
        .await
        .map_err(from_db)?;
        let next_page_token = if rows.len() as u64 == u64::from(limit) {
            (offset + u64::from(limit)).to_string()
        } else {
            String::new()
        };
        let mut jobs = Vec::with_capacity(rows.len());
        for j in &rows {
            jobs.push(self.view(j).await?);
        }
        Ok(Response::new(v1::ListTrainingJobsResponse {
            jobs,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request), fields(job_id = %request.get_ref().job_id), err)]
    async fn cancel_training(
        &self,
        request: Request<v1::JobRef>,
    ) -> Result<Response<v1::Job>, Status> {
        let j = self.training_row(&request.get_ref().job_id).await?;
        let j = db::request_cancel(&self.backends.db, &j.id)
            .await
            .map_err(from_db)?;
        if j.status == JobStatus::Cancelled {
            // Cancelled while queued: no worker will announce it.
            let event = TrainingCompleted::new(&j.id, JobStatus::Cancelled, None).encode();
            if let Err(e) = self
                .backends
                .bus
                .publish(queues::EVENTS_TRAINING_COMPLETED, &event)
                .await
            {
                tracing::warn!(error = %e, "cannot publish training.completed");
            }
        }
        Ok(Response::new(db::job_to_proto(&j)))
    }

    async fn get_training_status(
        &self,
        _request: Request<v1::GetTrainingStatusRequest>,
    ) -> Result<Response<v1::TrainingStatus>, Status> {
        let b = &self.backends;
        let counts = db::count_by_status(&b.db, JobKind::TrainingLayer2)
            .await
            .map_err(from_db)?;
        let count = |f: &dyn Fn(JobStatus) -> bool| -> u64 {
            counts.iter().filter(|(s, _)| f(*s)).map(|(_, n)| *n).sum()
        };
        let live = db::live_workers(&b.db, SERVICE, self.router.since())
            .await
            .map_err(from_db)?;
        let pool = self.router.pool_of(&live);
        let mut device_rows = Vec::new();
        let mut queue_depth = 0;
        for class in devices::DeviceClass::ALL {
            let depth = b
                .bus
                .depth(&devices::queue_for(queues::TRAINING, class))
                .await
                .map_err(|e| ErrorCode::Unavailable.status(e.to_string()))?;
            queue_depth += depth;
            let (queued, running) = db::count_active_on(&b.db, JobKind::TrainingLayer2, class)
                .await
                .map_err(from_db)?;
            device_rows.push(device_status(class.as_str(), &pool, queued, running, depth));
        }
        let workers = live
            .into_iter()
            .map(|w| v1::Worker {
                capabilities: db::capabilities_of(&w)
                    .into_iter()
                    .map(|c| v1::DeviceCapability {
                        device: c.device,
                        class: c.class,
                        name: c.name,
                        memory_bytes: c.memory_bytes,
                    })
                    .collect(),
                id: w.id,
                device: w.device,
                current_job: w.current_job,
            })
            .collect();
        Ok(Response::new(v1::TrainingStatus {
            queued: count(&|s| s == JobStatus::Queued),
            running: count(&|s| s == JobStatus::Running),
            finished: count(&|s| s.is_terminal()),
            workers,
            queue_depth,
            devices: device_rows,
        }))
    }

    type WatchTrainingStream = ReceiverStream<Result<v1::JobEvent, Status>>;

    async fn watch_training(
        &self,
        request: Request<v1::JobRef>,
    ) -> Result<Response<Self::WatchTrainingStream>, Status> {
        let j = self.training_row(&request.get_ref().job_id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let db = self.backends.db.clone();
        tokio::spawn(async move {
            let mut after = 0;
            loop {
                // Read the status before the events, so the last poll after a
                // terminal status still sees every event written before it.
                let terminal = match db::get_job(&db, &j.id).await {
                    Ok(Some(row)) => row.status.is_terminal(),
                    Ok(None) => true,
                    Err(e) => {
                        let _ = tx.send(Err(from_db(e))).await;
                        return;
                    }
                };
                let full = match all_events_after(&db, &j.id, after).await {
                    Ok(events) => {
                        let full = events.len() as u64 == EVENT_PAGE;
                        for e in events {
                            after = e.id;
                            if tx.send(Ok(db::event_to_proto(&e))).await.is_err() {
                                return;
                            }
                        }
                        full
                    }
                    Err(e) => {
                        let _ = tx.send(Err(from_db(e))).await;
                        return;
                    }
                };
                if full {
                    continue;
                }
                if terminal {
                    return;
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(WATCH_POLL) => {}
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn all_events_after(
    db: &db::Db,
    job_id: &str,
    after: i64,
) -> Result<Vec<restoreflow_core::db::entity::job_event::Model>, DbError> {
    db::list_events(db, job_id, after, EVENT_PAGE).await
}
