//! The training worker: claims training jobs (from bus wake-ups or the
//! recovery sweep), resumes from the job's newest checkpoint if an earlier
//! attempt left one, trains on a blocking thread, uploads a checkpoint per
//! epoch, registers the best weights once and announces the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use restoreflow_core::Backends;
use restoreflow_core::bus::queues;
use restoreflow_core::config::{JobSettings, TrainerSettings};
use restoreflow_core::db::{self, JobKind, JobStatus, entity::job};
use restoreflow_core::grpc::AuthChannel;
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::{Bucket, ObjectStore, RetryPolicy, retry};
use restoreflow_proto::v1::{self, model_registry_service_client::ModelRegistryServiceClient};
use restoreflow_training::{
    Checkpoint, EpochReport, Progress, StopReason, TrainHooks, TrainOutcome,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::catalog::Catalog;
use crate::checkpoints;
use crate::error::TrainerError;
use crate::model::{RestormerNet, code_version};
use crate::pairs::{PairSet, StorePairs, find_training_pairs};
use crate::params::{MIN_PAIRS, TrainParams};
use crate::samples::SampleImages;
use crate::view::metric_payload;
use restoreflow_core::jobs::{JobLoop, JobRunner};
use restoreflow_core::messages::{BusMessage, TrainingCompleted};
use restoreflow_core::metrics::names;

/// Service name in the worker registry.
pub const SERVICE: &str = "trainer";
/// Layer the trainer produces.
const LAYER: u32 = 2;
/// Least time between two progress rows of one job.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What the training thread reports to the async side.
enum HookEvent {
    Progress(Progress),
    Epoch(EpochReport),
    Checkpoint(String),
}

/// How a training attempt ended (short of an error).
enum Trained {
    /// Finished or stopped early: the registered version and the job result.
    Completed { result: Value, version: u32 },
    /// Stopped by the cancel flag; the key prefix of the checkpoint written then.
    Cancelled { checkpoint: Option<String> },
}

/// Callbacks of the engine, running on the training thread.
struct Hooks {
    tx: mpsc::UnboundedSender<HookEvent>,
    handle: tokio::runtime::Handle,
    store: Arc<dyn ObjectStore>,
    job_id: String,
    retry: RetryPolicy,
    /// Checkpoints are uploaded only while this worker holds the lease.
    db: db::Db,
    worker: String,
    lease: chrono::Duration,
    flags: Flags,
    /// The device class, a label of the step-time histogram.
    device: String,
    /// The step and time of the previous progress call.
    last_step: Option<(u64, Instant)>,
}

impl TrainHooks for Hooks {
    fn on_progress(&mut self, p: &Progress) {
        let now = Instant::now();
        // One step since the previous call: its wall time (validation and
        // checkpoints happen between epochs, after an epoch's last step).
        if let Some((step, at)) = self.last_step
            && p.step == step + 1
        {
            metrics::histogram!(names::TRAINING_STEP, "device" => self.device.clone())
                .record(now.duration_since(at).as_secs_f64());
        }
        self.last_step = Some((p.step, now));
        metrics::gauge!(names::TRAINING_THROUGHPUT, "job_id" => self.job_id.clone())
            .set(p.pairs_per_sec);
        let _ = self.tx.send(HookEvent::Progress(p.clone()));
    }

    fn on_epoch_end(&mut self, r: &EpochReport) {
        if let Some(m) = &r.restored
            && m.psnr.is_finite()
        {
            metrics::gauge!(names::VALIDATION_PSNR, "job_id" => self.job_id.clone()).set(m.psnr);
        }
        // Validation ran since the last step: the next step's gap is not a step.
        self.last_step = None;
        let _ = self.tx.send(HookEvent::Epoch(r.clone()));
    }

    /// Uploads before training goes on, so a stored checkpoint is never behind
    /// the epochs reported as done by more than the one being written.
    /// A worker that lost its lease (paused or cut off past it while another
    /// worker took the job over) uploads nothing: the lease is renewed first,
    /// and the upload happens only if this worker still owns the job.
    fn on_checkpoint(&mut self, ck: &Checkpoint) -> restoreflow_training::Result<()> {
        // Writing it is not a step.
        self.last_step = None;
        let owned = self.handle.block_on(db::heartbeat(
            &self.db,
            &self.job_id,
            &self.worker,
            self.lease,
        ));
        match owned {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.flags.lease_lost.store(true, Ordering::SeqCst);
                self.flags.cancel.store(true, Ordering::SeqCst);
                return Err(restoreflow_training::Error::Hook(
                    "lease lost: another worker owns the job; checkpoint not stored".into(),
                ));
            }
            // Ownership is not disproved; the heartbeat task keeps checking.
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease before a checkpoint"),
        }
        let prefix = self
            .handle
            .block_on(checkpoints::upload(
                self.store.as_ref(),
                &self.job_id,
                ck,
                self.retry,
            ))
            .map_err(|e| restoreflow_training::Error::Hook(e.to_string()))?;
        let _ = self.tx.send(HookEvent::Checkpoint(prefix));
        Ok(())
    }
}

/// Flags shared by a running job, its heartbeat and the training thread.
#[derive(Clone, Default)]
struct Flags {
    /// Raised to make the engine checkpoint and stop at the next step.
    cancel: Arc<AtomicBool>,
    /// Another worker owns the job now: write nothing more.
    lease_lost: Arc<AtomicBool>,
}

/// Claims and runs training jobs, one at a time.
pub struct Worker {
    backends: Backends,
    jobs: JobSettings,
    settings: TrainerSettings,
    registry: ModelRegistryServiceClient<AuthChannel>,
    catalog: Catalog,
    id: String,
    /// What this worker advertises in the workers table.
    capabilities: Vec<restoreflow_core::devices::Capability>,
    current: Arc<Mutex<Option<String>>>,
}

impl Worker {
    /// A worker with a unique id.
    pub fn new(
        backends: Backends,
        jobs: JobSettings,
        settings: TrainerSettings,
        registry: ModelRegistryServiceClient<AuthChannel>,
        catalog: Catalog,
    ) -> Self {
        let id = format!(
            "trainer-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let capabilities = restoreflow_core::devices::probe(&settings.device);
        Self {
            backends,
            jobs,
            settings,
            registry,
            catalog,
            id,
            capabilities,
            current: Arc::new(Mutex::new(None)),
        }
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.jobs.lease_secs as i64)
    }

    /// Consumes wake-ups and sweeps for orphaned jobs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let registration = self.spawn_registration(shutdown.clone());
        let jobs = JobLoop::new(
            self.backends.clone(),
            self.jobs.clone(),
            JobKind::TrainingLayer2,
            queues::TRAINING,
            self.id.clone(),
        )
        .on_device(self.settings.device_class());
        tracing::info!(worker = %self.id, device = %self.settings.device, "training worker started");
        jobs.run(&self, &shutdown).await;
        registration.abort();
        let _ = registration.await;
        if let Err(e) = db::remove_worker(&self.backends.db, &self.id).await {
            tracing::warn!(error = %e, "cannot remove the worker row");
        }
        tracing::info!(worker = %self.id, "training worker stopped");
    }

    /// Keeps this worker's row in the worker registry fresh.
    fn spawn_registration(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let db = self.backends.db.clone();
        let id = self.id.clone();
        let device = self.settings.device.clone();
        let capabilities = self.capabilities.clone();
        let current = self.current.clone();
        let every = Duration::from_secs(self.jobs.heartbeat_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let job = current.lock().await.clone();
                if let Err(e) =
                    db::touch_worker(&db, &id, SERVICE, &device, &capabilities, job.as_deref())
                        .await
                {
                    tracing::warn!(error = %e, "worker heartbeat failed");
                }
            }
        })
    }

    #[tracing::instrument(skip(self, job, shutdown), fields(job_id = %job.id, attempt = job.attempts))]
    async fn run_claimed(&self, job: job::Model, shutdown: &CancellationToken) {
        *self.current.lock().await = Some(job.id.clone());
        let _ = db::touch_worker(
            &self.backends.db,
            &self.id,
            SERVICE,
            &self.settings.device,
            &self.capabilities,
            Some(&job.id),
        )
        .await;
        let flags = Flags::default();
        let heartbeat = self.spawn_heartbeat(job.id.clone(), flags.clone(), shutdown.clone());
        let outcome = self.train_job(&job, &flags).await;
        heartbeat.abort();
        let _ = heartbeat.await;
        *self.current.lock().await = None;
        if flags.lease_lost.load(Ordering::SeqCst) {
            tracing::warn!("lease lost; another worker owns the job now");
            return;
        }
        let (status, result, error, version) = match outcome {
            Ok(Trained::Completed { result, version }) => {
                (JobStatus::Completed, Some(result), None, Some(version))
            }
            Ok(Trained::Cancelled { .. }) | Err(_) if shutdown.is_cancelled() => {
                // Process shutdown, not a user cancel: the job stays running
                // and the next worker resumes it from its newest checkpoint.
                tracing::info!("shutting down mid-training; the job will be resumed");
                return;
            }
            Ok(Trained::Cancelled { checkpoint }) => (
                JobStatus::Cancelled,
                Some(
                    json!({"checkpoint": checkpoint.map(|c| format!("{}/{c}", Bucket::TrainingOutputs))}),
                ),
                None,
                None,
            ),
            Err(e) => {
                tracing::error!(code = %e.code, error = %e, "training failed");
                // The code travels with the job: `result.error_code`.
                let result = json!({"error_code": e.code.as_str()});
                (JobStatus::Failed, Some(result), Some(e.message), None)
            }
        };
        // Again at the end: the peak memory is only known now.
        self.event(
            &job.id,
            "environment",
            crate::env::environment(&self.settings.device),
        )
        .await;
        match db::finish_job(&self.backends.db, &job.id, &self.id, status, result, error).await {
            Ok(true) => {
                tracing::info!(status = status.as_str(), "training job finished");
                self.announce(&job.id, status, version).await;
            }
            Ok(false) => tracing::warn!("job was no longer ours when finishing"),
            Err(e) => tracing::error!(error = %e, "cannot record the job outcome"),
        }
    }

    /// Appends a job event while this worker owns the job; a worker that
    /// lost its lease writes nothing.
    async fn event(&self, job_id: &str, kind: &str, payload: Value) {
        match db::append_event_fenced(
            &self.backends.db,
            job_id,
            &self.id,
            self.lease(),
            kind,
            payload,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(kind, "event not recorded: the job is no longer ours"),
            Err(e) => tracing::warn!(kind, error = %e, "cannot record a job event"),
        }
    }

    /// Publishes `training.completed` for a job that reached `status`.
    async fn announce(&self, job_id: &str, status: JobStatus, version: Option<u32>) {
        let body = TrainingCompleted::new(job_id, status, version).encode();
        if let Err(e) = self
            .backends
            .bus
            .publish(queues::EVENTS_TRAINING_COMPLETED, &body)
            .await
        {
            tracing::warn!(error = %e, "cannot publish training.completed");
        }
    }

    /// Renews the lease; raises the cancel flag on user cancel, lease loss or shutdown.
    fn spawn_heartbeat(
        &self,
        id: String,
        flags: Flags,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let db = self.backends.db.clone();
        let worker = self.id.clone();
        let lease = chrono::Duration::seconds(self.jobs.lease_secs as i64);
        let every = Duration::from_secs(self.jobs.heartbeat_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        flags.cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    _ = tick.tick() => {}
                }
                match db::heartbeat(&db, &id, &worker, lease).await {
                    Ok(Some(j)) if j.cancel_requested => {
                        flags.cancel.store(true, Ordering::SeqCst);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        flags.lease_lost.store(true, Ordering::SeqCst);
                        flags.cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
        })
    }

    /// One attempt at a job: prepare, train, register.
    async fn train_job(&self, job: &job::Model, flags: &Flags) -> Result<Trained, TrainerError> {
        let params: TrainParams = serde_json::from_value(job.params.clone())
            .map_err(|e| format!("job params are not a training request: {e}"))?;
        let pairs = find_training_pairs(
            &self.backends,
            &self.catalog,
            &params.dataset,
            params.max_pairs as usize,
        )
        .await
        .map_err(|e| TrainerError::from(e).context("cannot list training pairs"))?;
        if pairs.pairs.len() < MIN_PAIRS {
            return Err(TrainerError::new(
                restoreflow_proto::ErrorCode::FailedPrecondition,
                format!(
                    "found {} valid pairs in {}; training needs at least {MIN_PAIRS}",
                    pairs.pairs.len(),
                    pairs.location
                ),
            ));
        }
        self.event(&job.id, "data", pairs.stats()).await;
        self.event(
            &job.id,
            "config",
            json!({"train_config": params.train_config(self.settings.cache_pages)}),
        )
        .await;
        self.event(
            &job.id,
            "environment",
            crate::env::environment(&self.settings.device),
        )
        .await;
        let tmp = tempfile::tempdir().map_err(|e| format!("cannot create a work dir: {e}"))?;
        let resume = checkpoints::download_latest(
            self.backends.store.as_ref(),
            &job.id,
            &tmp.path().join("resume"),
            self.jobs.storage_retry(),
        )
        .await?;
        if let Some(ck) = &resume {
            tracing::info!(
                epoch = ck.meta.epoch,
                step = ck.meta.step,
                "resuming from checkpoint"
            );
            self.event(
                &job.id,
                "log",
                json!({"message": "resuming from checkpoint", "epoch": ck.meta.epoch, "step": ck.meta.step}),
            )
            .await;
        }
        let resumed_from = resume.as_ref().map(|c| (c.meta.epoch, c.meta.step));
        let parent = match &params.base_model {
            Some(b) => Some(self.resolve_base(b).await?),
            None => None,
        };
        // A resumed run already carries the fine-tuned weights in its checkpoint.
        let base_weights = match (&parent, &resume) {
            (Some(p), None) => {
                let path = tmp.path().join("base.safetensors");
                retry(self.jobs.storage_retry(), "base model download", || {
                    checkpoints::download_to(
                        self.backends.store.as_ref(),
                        Bucket::Models,
                        &p.object_key,
                        &path,
                    )
                })
                .await
                .map_err(|e| format!("cannot download base model v{}: {e}", p.version))?;
                Some(path)
            }
            _ => None,
        };
        let (outcome, parameter_count, model_config, samples) = self
            .train_blocking(
                job,
                &params,
                &pairs,
                flags,
                tmp.path().join("out"),
                resume,
                base_weights,
            )
            .await?;
        if flags.lease_lost.load(Ordering::SeqCst) {
            return Err(TrainerError::internal("lease lost"));
        }
        if !samples.is_empty() {
            self.store_samples(&job.id, samples).await;
        }
        if outcome.stop == StopReason::Cancelled {
            let checkpoint = outcome.last_checkpoint.as_ref().and_then(|c| {
                c.dir
                    .file_name()
                    .map(|n| checkpoints::dir_prefix(&job.id, &n.to_string_lossy()))
            });
            return Ok(Trained::Cancelled { checkpoint });
        }
        self.register(
            job,
            &params,
            &pairs,
            &outcome,
            parameter_count,
            model_config,
            parent.map(|p| p.version),
            resumed_from,
        )
        .await
        .map_err(TrainerError::from)
    }

    /// Uploads validation samples to `analysis/{job}/samples/` and records
    /// them as a `samples` event; a failure only costs the report its strip.
    async fn store_samples(&self, job_id: &str, samples: Vec<SampleImages>) {
        let mut recorded = Vec::new();
        for (i, s) in samples.into_iter().enumerate() {
            let mut keys = serde_json::Map::new();
            for (side, png) in [
                ("degraded", s.degraded),
                ("restored", s.restored),
                ("clean", s.clean),
            ] {
                let key = format!("analysis/{job_id}/samples/{i:02}_{side}.png");
                let put = retry(self.jobs.storage_retry(), "sample upload", || {
                    self.backends.store.put(
                        Bucket::TrainingOutputs,
                        &key,
                        bytes::Bytes::from(png.clone()),
                        "image/png",
                    )
                })
                .await;
                if let Err(e) = put {
                    tracing::warn!(error = %e, key, "cannot store a validation sample");
                    return;
                }
                keys.insert(side.into(), json!(key));
            }
            recorded.push(json!({"name": s.name, "keys": keys}));
        }
        self.event(
            job_id,
            "samples",
            json!({"bucket": Bucket::TrainingOutputs.name(), "samples": recorded}),
        )
        .await;
    }

    async fn resolve_base(&self, base: &str) -> Result<v1::ModelVersion, String> {
        self.registry
            .clone()
            .resolve_version(v1::VersionRef {
                layer: LAYER,
                version: base.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("cannot resolve base model {base:?}: {}", s.message()))
    }

    /// Runs the engine on a blocking thread while the async side records its
    /// progress and metrics.
    #[allow(clippy::too_many_arguments)]
    async fn train_blocking(
        &self,
        job: &job::Model,
        params: &TrainParams,
        pairs: &PairSet,
        flags: &Flags,
        out_dir: PathBuf,
        resume: Option<Checkpoint>,
        base_weights: Option<PathBuf>,
    ) -> Result<(TrainOutcome, usize, Value, Vec<SampleImages>), String> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let hooks = Hooks {
            tx,
            handle: tokio::runtime::Handle::current(),
            store: self.backends.store.clone(),
            job_id: job.id.clone(),
            retry: self.jobs.storage_retry(),
            db: self.backends.db.clone(),
            worker: self.id.clone(),
            lease: self.lease(),
            flags: flags.clone(),
            device: self.settings.device.clone(),
            last_step: None,
        };
        let source = StorePairs::new(
            pairs.pairs.clone(),
            self.backends.store.clone(),
            tokio::runtime::Handle::current(),
        )
        .with_retry(self.jobs.storage_retry());
        let train_cfg = params.train_config(self.settings.cache_pages);
        let (val_fraction, sample_seed) = (train_cfg.val_fraction, train_cfg.seed);
        let preset = params.preset.clone();
        // Only jobs of this worker's class are claimed (a job recorded
        // before device routing ran wherever it was claimed).
        let cuda = self.settings.device == "cuda";
        let tf32 = cuda && params.precision == "tf32";
        let cancel = flags.cancel.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut hooks = hooks;
            let cfg = restoreflow_restormer::Config::by_name(&preset).map_err(|e| e.to_string())?;
            let device = restoreflow_restormer::device(cuda).map_err(|e| e.to_string())?;
            restoreflow_restormer::set_tf32(tf32);
            // Seeded: the same seed gives the same initial weights (on CPU).
            let (model, varmap) =
                restoreflow_restormer::build_seeded(&cfg, &device, train_cfg.seed)
                    .map_err(|e| e.to_string())?;
            if let Some(path) = base_weights {
                restoreflow_training::load_weights(&varmap, &path)
                    .map_err(|e| format!("base model does not fit preset {preset}: {e}"))?;
            }
            // Validation and samples run a gradient-free copy that shares the
            // trained weights' storage, so it sees every update.
            let frozen = RestormerNet(
                restoreflow_restormer::frozen(&cfg, &varmap).map_err(|e| e.to_string())?,
            );
            let model_config = json!({"preset": preset, "restormer": cfg});
            let out_dir_for_samples = out_dir.clone();
            let run = restoreflow_training::RunOptions {
                checkpoint_dir: out_dir,
                model_config: model_config.clone(),
                code_version: code_version(),
                cancel: Some(&*cancel),
                resume,
                inference: Some(&frozen),
            };
            let outcome = restoreflow_training::train(
                &RestormerNet(model),
                &varmap,
                &source,
                &train_cfg,
                run,
                &mut hooks,
            )
            .map_err(|e| format!("training failed: {e}"))?;
            let samples = if outcome.stop == StopReason::Cancelled {
                Vec::new()
            } else {
                // Show what the registered (best) weights do; the last epoch's
                // weights stand in when the best checkpoint is not on this disk
                // (a run resumed in another process).
                if let Some(best) = outcome.best {
                    let path = out_dir_for_samples
                        .join(crate::checkpoints::epoch_dir(best.epoch))
                        .join(restoreflow_training::WEIGHTS_FILE);
                    if path.exists() {
                        let _ = restoreflow_training::load_weights(&varmap, &path);
                    }
                }
                crate::samples::validation_samples(
                    &frozen,
                    &source,
                    val_fraction,
                    sample_seed,
                    &device,
                )
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot render validation samples");
                    Vec::new()
                })
            };
            Ok::<_, String>((
                outcome,
                restoreflow_restormer::parameter_count(&varmap),
                model_config,
                samples,
            ))
        });
        let db = &self.backends.db;
        let mut last_progress: Option<Instant> = None;
        // The channel closes when the training thread drops its hooks.
        while let Some(event) = rx.recv().await {
            if flags.lease_lost.load(Ordering::SeqCst) {
                continue;
            }
            let recorded = match event {
                HookEvent::Progress(p) => {
                    let last_step = p.step == p.total_steps;
                    if !last_step && last_progress.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
                        continue;
                    }
                    last_progress = Some(Instant::now());
                    let pct = 100.0 * p.step as f64 / p.total_steps.max(1) as f64;
                    db::set_progress(db, &job.id, &self.id, pct.min(99.0), progress_detail(&p)).await
                }
                HookEvent::Epoch(r) => {
                    db::append_event_fenced(db, &job.id, &self.id, self.lease(), "metric", metric_payload(&r))
                        .await
                }
                HookEvent::Checkpoint(prefix) => db::append_event_fenced(
                    db,
                    &job.id,
                    &self.id,
                    self.lease(),
                    "log",
                    json!({"message": "checkpoint stored", "checkpoint": format!("{}/{prefix}", Bucket::TrainingOutputs)}),
                )
                .await,
            };
            match recorded {
                Ok(true) => {}
                Ok(false) => {
                    flags.lease_lost.store(true, Ordering::SeqCst);
                    flags.cancel.store(true, Ordering::SeqCst);
                }
                Err(e) => tracing::warn!(error = %e, "cannot record training progress"),
            }
        }
        task.await
            .map_err(|e| format!("training thread failed: {e}"))?
    }

    /// Registers the best-by-validation-PSNR weights, once per job.
    #[allow(clippy::too_many_arguments)]
    async fn register(
        &self,
        job: &job::Model,
        params: &TrainParams,
        pairs: &PairSet,
        outcome: &TrainOutcome,
        parameter_count: usize,
        model_config: Value,
        parent_version: Option<u32>,
        resumed_from: Option<(usize, u64)>,
    ) -> Result<Trained, String> {
        let best_epoch = outcome
            .best
            .map(|b| b.epoch)
            .unwrap_or(outcome.epochs_completed);
        let best = outcome.history.iter().find(|r| r.epoch == best_epoch);
        let source_key = format!(
            "{}{}",
            checkpoints::dir_prefix(&job.id, &checkpoints::epoch_dir(best_epoch)),
            restoreflow_training::WEIGHTS_FILE
        );
        let mut final_metrics = best.map(metric_payload).unwrap_or_else(|| json!({}));
        final_metrics["best_epoch"] = json!(best_epoch);
        let metrics = json!({
            "final": final_metrics,
            "epochs": outcome.history.iter().map(metric_payload).collect::<Vec<_>>(),
        });
        // `targets` and `dpi` say what the model learnt to produce (printed
        // or digital pages); evaluations compare them with what they score.
        let config = json!({
            "model": model_config,
            "training": params,
            "pairs_used": pairs.pairs.len(),
            "targets": pairs.targets.targets,
            "dpi": pairs.targets.dpi,
        });
        // Still ours? A worker that lost its lease must not register.
        let lease = chrono::Duration::seconds(self.jobs.lease_secs as i64);
        match db::heartbeat(&self.backends.db, &job.id, &self.id, lease).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err("lease lost before registration".into()),
            Err(e) => return Err(format!("cannot renew the lease: {e}")),
        }
        // The registry answers a repeated registration of this job (a resumed
        // run whose earlier worker registered before dying) with the version
        // it already has: one version per training job, enforced there.
        let req = v1::RegisterModelRequest {
            layer: LAYER,
            source_bucket: Bucket::TrainingOutputs.name().into(),
            source_key: source_key.clone(),
            config: Some(restoreflow_proto::json_to_struct(&config)),
            metrics: Some(restoreflow_proto::json_to_struct(&metrics)),
            training_job_id: job.id.clone(),
            dataset_id: pairs.dataset_id.clone().unwrap_or_default(),
            dataset_hash: pairs.content_hash.clone(),
            code_version: code_version(),
            parent_version,
            parameter_count: parameter_count as u64,
        };
        let version = self
            .registry
            .clone()
            .register_model(req)
            .await
            .map_err(|s| format!("model registration failed: {}", s.message()))?
            .into_inner()
            .version;
        let result = json!({
            "version": version,
            "layer": LAYER,
            "best_epoch": best_epoch,
            "epochs_completed": outcome.epochs_completed,
            "steps": outcome.step,
            "stop_reason": match outcome.stop {
                StopReason::Completed => "completed",
                StopReason::EarlyStopped => "early_stopped",
                StopReason::Cancelled => "cancelled",
                StopReason::TimeBudget => "time_budget",
            },
            "metrics": metrics["final"],
            "weights": format!("{}/{source_key}", Bucket::TrainingOutputs),
            "checkpoints": format!("{}/{}", Bucket::TrainingOutputs, checkpoints::job_prefix(&job.id)),
            "dataset_id": pairs.dataset_id,
            "dataset_hash": pairs.content_hash,
            "pairs_used": pairs.pairs.len(),
            "targets": pairs.targets.targets,
            "dpi": pairs.targets.dpi,
            "skipped_pages": outcome.skipped.iter().map(|(id, why)| json!({"page": id, "reason": why})).collect::<Vec<_>>(),
            "parameter_count": parameter_count,
            "resumed_from": resumed_from.map(|(epoch, step)| json!({"epoch": epoch, "step": step})),
        });
        Ok(Trained::Completed { result, version })
    }
}

fn progress_detail(p: &Progress) -> Value {
    json!({
        "epoch": p.epoch,
        "step": p.step,
        "total_steps": p.total_steps,
        "loss": p.loss,
        "learning_rate": p.lr,
        "pairs_per_second": p.pairs_per_sec,
        "eta_seconds": p.eta_secs,
    })
}

#[async_trait::async_trait]
impl JobRunner for Worker {
    async fn run_job(&self, job: job::Model, shutdown: &CancellationToken) {
        self.run_claimed(job, shutdown).await;
    }

    /// Announces a job the sweep ended, so its report is written as for any
    /// other failed or cancelled run.
    async fn abandoned(&self, job: &job::Model) {
        self.announce(&job.id, job.status, None).await;
    }
}
