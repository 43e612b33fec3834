//! The `RestorationService` and `EvaluationService` gRPC implementations:
//! synchronous document restoration, batch restoration and evaluation jobs,
//! Layer 1 measurement and registration, and evaluation datasets.

use crate::error::TrainerError;
use std::io::Cursor;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use image::{DynamicImage, ImageReader, RgbImage};
use restoreflow_classical::{Layer1Params, run_pipeline_rgb};
use restoreflow_core::bus::queues;
use restoreflow_core::db::entity::evaluation;
use restoreflow_core::db::{self, JobKind};
use restoreflow_core::devices::queue_for;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_core::jobs::JobMessage;
use restoreflow_core::messages::BusMessage;
use restoreflow_core::storage::{Bucket, get_bytes, validate_prefix};
use restoreflow_core::{Backends, ErrorCode};
use restoreflow_proto::v1::{
    self, evaluation_service_server::EvaluationService,
    model_registry_service_client::ModelRegistryServiceClient,
    restoration_service_server::RestorationService,
};
use restoreflow_training::{MetricSet, RgbF32};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::batch::BatchParams;
use crate::datasets::register_upload;
use crate::evaluation::EvalParams;
use crate::grpc::{from_db, internal};
use crate::inference::{ModelCache, ModelError, Pipeline, restore};
use crate::model::code_version;
use crate::pairs::{PairError, find_pairs};

/// Largest page `RestoreDocument` accepts, in pixels (the gateway's own limit
/// is usually lower).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Default and largest number of pairs `EvaluateLayer1` measures.
const LAYER1_DEFAULT_IMAGES: u32 = 10;
const LAYER1_MAX_IMAGES: u32 = 200;
/// Largest page read from storage.
const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// Shared state of the restoration and evaluation handlers.
#[derive(Clone)]
pub struct RestorationGrpc {
    /// Resolves the device of evaluation and restoration requests.
    pub(crate) router: crate::devices::DeviceRouter,
    pub(crate) backends: Backends,
    /// Datasets, from synthetic-data.
    pub(crate) catalog: crate::catalog::Catalog,
    pub(crate) models: Arc<ModelCache>,
    pub(crate) registry: ModelRegistryServiceClient<AuthChannel>,
    /// Bounds concurrent restorations, and so memory.
    pub(crate) permits: Arc<Semaphore>,
}

pub(crate) fn invalid(m: impl Into<String>) -> Status {
    ErrorCode::InvalidArgument.status(m)
}

fn from_model(e: ModelError) -> Status {
    match e {
        ModelError::NotFound(m) => ErrorCode::NotFound.status(m),
        ModelError::Invalid(m) => invalid(m),
        ModelError::Corrupt(m) => ErrorCode::FailedPrecondition.status(m),
        ModelError::Unavailable(m) => ErrorCode::Unavailable.status(m),
    }
}

pub(crate) fn from_pairs(e: PairError) -> Status {
    match e {
        PairError::Storage(s) => s.code().status(s.to_string()),
        PairError::Catalog(c) => c.status(),
        held_out @ PairError::HeldOut(_) => invalid(held_out.to_string()),
    }
}

fn timestamp(t: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn scores(m: &MetricSet) -> v1::ImageScores {
    v1::ImageScores {
        psnr: m.psnr,
        ssim: m.ssim,
        accuracy: m.accuracy,
        cer: None,
    }
}

fn scores_from_json(v: &Value) -> v1::ImageScores {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    v1::ImageScores {
        psnr: f("psnr"),
        ssim: f("ssim"),
        accuracy: f("accuracy"),
        cer: v.get("cer").and_then(Value::as_f64),
    }
}

/// Checks the header of an uploaded image: a known format and at most
/// `max_pixels` pixels, before anything is decoded.
pub fn check_image(bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), TrainerError> {
    if bytes.is_empty() {
        return Err(TrainerError::invalid("the image is empty"));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| TrainerError::invalid(format!("cannot read the image: {e}")))?;
    if reader.format().is_none() {
        return Err(TrainerError::invalid("not an image: expected PNG or JPEG"));
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| TrainerError::invalid(format!("not a readable image: {e}")))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(TrainerError::invalid("the image has no pixels"));
    }
    if pixels > max_pixels {
        return Err(TrainerError::invalid(format!(
            "the image is {w}x{h} = {pixels} pixels; the limit is {max_pixels}"
        )));
    }
    Ok((w, h))
}

/// Largest stored page any job decodes (training, evaluation, Layer 1
/// evaluation, batch restore): 40 megapixels, an A4 page at 600 dpi with room
/// to spare. A larger one (or a decompression bomb: a small file that claims
/// a huge canvas) is refused from its header, before any pixel is decoded.
pub const MAX_PAGE_PIXELS: u64 = 40_000_000;

/// Decodes an image to RGB after checking its header against `max_pixels`
/// ([`check_image`]); the decoder's own allocation limit backs the check up.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, TrainerError> {
    check_image(bytes, max_pixels)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| TrainerError::invalid(format!("cannot read the image: {e}")))?;
    let mut limits = image::Limits::default();
    // 16-bit RGBA is the widest pixel the decoders produce: 8 bytes.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    Ok(reader
        .decode()
        .map_err(|e| TrainerError::invalid(format!("does not decode: {e}")))?
        .to_rgb8())
}

impl RestorationGrpc {
    /// A synchronous restoration runs here, on this replica's device: `auto`
    /// (or empty) and this replica's class pass; an unknown device is a 400;
    /// another class is a 409 that points to batch restoration, which is
    /// routed to a worker of that class.
    fn check_local_device(&self, requested: &str) -> Result<(), Status> {
        let here = self.models.device_class();
        match requested.trim() {
            "" | restoreflow_core::devices::AUTO => Ok(()),
            d if d == here.as_str() => Ok(()),
            d if restoreflow_core::devices::is_class(d) => Err(ErrorCode::FailedPrecondition.status(format!(
                "synchronous restoration runs on the trainer replica that received it, which has device {here}, not {d}; \
                 use batch restoration (POST /restore/batch with device {d}), which runs on a {d} worker"
            ))),
            d => Err(crate::devices::to_status(
                restoreflow_core::devices::DeviceError::Unknown(d.to_string()),
            )),
        }
    }

    async fn publish(&self, queue: &str, job_id: &str) {
        let msg = JobMessage::new(job_id).encode();
        // The row is the truth: a lost wake-up is found by a worker's sweep.
        if let Err(e) = self.backends.bus.publish(queue, &msg).await {
            tracing::warn!(job_id, error = %e, "publish failed; the recovery sweep will pick the job up");
        }
    }

    async fn load_rgb(&self, key: &str) -> Result<RgbImage, TrainerError> {
        let bytes = get_bytes(
            self.backends.store.as_ref(),
            Bucket::TrainingData,
            key,
            MAX_IMAGE_BYTES,
        )
        .await
        .map_err(|e| TrainerError::unavailable(format!("cannot read {key}: {e}")))?;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            decode_rgb(&bytes, MAX_PAGE_PIXELS).map_err(|e| e.context(&key))
        })
        .await
        .map_err(|e| TrainerError::internal(format!("decoding thread failed: {e}")))?
    }
}

#[tonic::async_trait]
impl RestorationService for RestorationGrpc {
    #[tracing::instrument(skip(self, request), fields(pipeline = %request.get_ref().pipeline, bytes = request.get_ref().image.len()), err)]
    async fn restore_document(
        &self,
        request: Request<v1::RestoreDocumentRequest>,
    ) -> Result<Response<v1::RestoreDocumentResponse>, Status> {
        let r = request.into_inner();
        let pipeline = Pipeline::from_str(&r.pipeline)?;
        check_image(&r.image, MAX_PIXELS)?;
        self.check_local_device(&r.device)?;
        let (l1_version, layer1) = if pipeline.uses_layer1() {
            let (v, p) = self
                .models
                .layer1(&r.layer1_model)
                .await
                .map_err(from_model)?;
            (v, Some(Arc::new(p)))
        } else {
            (None, None)
        };
        let layer2 = if pipeline.uses_layer2() {
            Some(self.models.layer2(&r.model).await.map_err(from_model)?)
        } else {
            None
        };
        let _permit = self.permits.acquire().await.map_err(internal)?;
        let started = Instant::now();
        let l2 = layer2.clone();
        // Only an undecodable upload is the caller's fault; the rest is ours.
        let out = tokio::task::spawn_blocking(move || {
            let img = image::load_from_memory(&r.image)
                .map_err(|e| invalid(format!("the image does not decode: {e}")))?
                .to_rgb8();
            let restored = restore(&img, pipeline, layer1.as_deref(), l2.as_deref())
                .map_err(|e| internal(format!("restoration failed: {e}")))?;
            let (w, h) = restored.image.dimensions();
            let mut buf = Cursor::new(Vec::new());
            DynamicImage::ImageRgb8(restored.image)
                .write_to(&mut buf, image::ImageFormat::Png)
                .map_err(|e| internal(format!("cannot encode png: {e}")))?;
            Ok::<_, Status>((buf.into_inner(), w, h, restored.skew_angle_deg))
        })
        .await
        .map_err(internal)?;
        let (png, width, height, skew) = out?;
        metrics::histogram!(
            restoreflow_core::metrics::names::RESTORE_DURATION,
            "mode" => "sync",
            "device" => self.models.device_class().as_str()
        )
        .record(started.elapsed().as_secs_f64());
        Ok(Response::new(v1::RestoreDocumentResponse {
            png,
            width,
            height,
            layer2_version: layer2.map(|m| m.version),
            layer1_version: l1_version,
            skew_angle_deg: skew.map(f64::from),
            seconds: started.elapsed().as_secs_f64(),
        }))
    }

    #[tracing::instrument(skip(self, request), fields(bucket = %request.get_ref().bucket, prefix = %request.get_ref().prefix), err)]
    async fn start_batch_restore(
        &self,
        request: Request<v1::BatchRestoreRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let r = request.into_inner();
        Bucket::from_str(&r.bucket).map_err(|e| invalid(e.to_string()))?;
        validate_prefix(&r.prefix).map_err(|e| invalid(e.to_string()))?;
        let pipeline = Pipeline::from_str(&r.pipeline)?;
        let device = self.router.resolve(&r.device).await?;
        let layer2_version = if pipeline.uses_layer2() {
            Some(
                self.models
                    .resolve(2, &r.model)
                    .await
                    .map_err(from_model)?
                    .version,
            )
        } else {
            None
        };
        let layer1_version = if pipeline.uses_layer1() {
            self.models.layer1("").await.map_err(from_model)?.0
        } else {
            None
        };
        let output_prefix = if r.output_prefix.trim().is_empty() {
            format!("restored/{}/", uuid::Uuid::new_v4())
        } else {
            let p = r.output_prefix.trim().to_string();
            validate_prefix(&p).map_err(|e| invalid(e.to_string()))?;
            if p.ends_with('/') { p } else { format!("{p}/") }
        };
        // The inputs are listed once, minus anything under the output prefix.
        let input = r.prefix.trim();
        if input.starts_with(&output_prefix) || format!("{input}/") == output_prefix {
            return Err(invalid(
                "output_prefix must not contain the input prefix (outputs would be skipped as inputs)",
            ));
        }
        let params = BatchParams {
            bucket: r.bucket,
            prefix: r.prefix,
            pipeline: pipeline.as_str().into(),
            layer2_version,
            layer1_version,
            output_prefix,
            max_images: r.max_images,
        };
        let value = serde_json::to_value(&params).map_err(internal)?;
        let job = db::create_job_on(
            &self.backends.db,
            JobKind::RestoreBatch,
            value,
            Some(device),
        )
        .await
        .map_err(from_db)?;
        self.publish(&queue_for(queues::RESTORE, device), &job.id)
            .await;
        Ok(Response::new(db::job_to_proto(&job)))
    }

    #[tracing::instrument(skip(self, request), fields(dataset = %request.get_ref().dataset), err)]
    async fn evaluate_layer1(
        &self,
        request: Request<v1::EvaluateLayer1Request>,
    ) -> Result<Response<v1::EvaluateLayer1Response>, Status> {
        let r = request.into_inner();
        let max = match r.max_images {
            0 => LAYER1_DEFAULT_IMAGES,
            n if n > LAYER1_MAX_IMAGES => {
                return Err(invalid(format!(
                    "max_images must be at most {LAYER1_MAX_IMAGES}"
                )));
            }
            n => n,
        };
        let params: Layer1Params = match &r.params {
            Some(s) => serde_json::from_value(restoreflow_proto::struct_to_json(s))
                .map_err(|e| invalid(format!("params are not layer 1 parameters: {e}")))?,
            None => self.models.layer1("").await.map_err(from_model)?.1,
        };
        params.validate().map_err(|e| invalid(e.to_string()))?;
        let pairs = find_pairs(
            &self.backends,
            &self.catalog,
            r.dataset.trim(),
            max as usize,
        )
        .await
        .map_err(from_pairs)?;
        if pairs.pairs.is_empty() {
            return Err(ErrorCode::FailedPrecondition.status(format!(
                "no clean/degraded pairs in {} (generate some with POST /synthetic/generate)",
                pairs.location
            )));
        }
        let started = Instant::now();
        let mut before = Vec::new();
        let mut after = Vec::new();
        let mut per_image = Vec::new();
        let shared = Arc::new(params.clone());
        for pair in &pairs.pairs {
            let loaded = async {
                Ok::<_, TrainerError>((
                    self.load_rgb(&pair.clean_key()).await?,
                    self.load_rgb(&pair.degraded_key()).await?,
                ))
            }
            .await;
            let (clean, degraded) = match loaded {
                Ok(x) => x,
                Err(reason) => {
                    per_image.push(json!({"name": pair.name, "skipped": reason.to_string()}));
                    continue;
                }
            };
            if clean.dimensions() != degraded.dimensions() {
                per_image
                    .push(json!({"name": pair.name, "skipped": "clean and degraded sizes differ"}));
                continue;
            }
            let p = shared.clone();
            let _permit = self.permits.acquire().await.map_err(internal)?;
            let measured = tokio::task::spawn_blocking(move || {
                let reference = RgbF32::from_rgb8(&clean);
                // Colour in, colour out, scored like evaluations score it.
                let out = run_pipeline_rgb(&degraded, &p).map_err(|e| e.to_string())?;
                let restored = out.image;
                Ok::<_, String>((
                    MetricSet::compute(&reference, &RgbF32::from_rgb8(&degraded)),
                    MetricSet::compute(&reference, &RgbF32::from_rgb8(&restored)),
                    out.skew_angle_deg,
                ))
            })
            .await
            .map_err(internal)?;
            match measured {
                Ok((b, a, skew)) => {
                    per_image.push(json!({
                        "name": pair.name,
                        "before": {"psnr": b.psnr, "ssim": b.ssim, "accuracy": b.accuracy},
                        "after": {"psnr": a.psnr, "ssim": a.ssim, "accuracy": a.accuracy},
                        "skew_angle_deg": skew,
                    }));
                    before.push(b);
                    after.push(a);
                }
                Err(reason) => per_image.push(json!({"name": pair.name, "skipped": reason})),
            }
        }
        if before.is_empty() {
            return Err(invalid("none of the pairs could be measured"));
        }
        let (mb, ma) = (MetricSet::mean(&before), MetricSet::mean(&after));
        let params_json = serde_json::to_value(&params).map_err(internal)?;
        let registered_version = if r.register {
            Some(
                self.register_layer1(
                    &params_json,
                    &mb,
                    &ma,
                    before.len(),
                    &pairs.content_hash,
                    pairs.dataset_id.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Response::new(v1::EvaluateLayer1Response {
            images: before.len() as u32,
            before: Some(scores(&mb)),
            after: Some(scores(&ma)),
            params: Some(restoreflow_proto::json_to_struct(&params_json)),
            registered_version,
            per_image: Some(restoreflow_proto::json_to_struct(
                &json!({"images": per_image}),
            )),
            seconds: started.elapsed().as_secs_f64(),
        }))
    }
}

impl RestorationGrpc {
    /// Stores the parameters and registers them as a new `layer_1` version.
    async fn register_layer1(
        &self,
        params: &Value,
        before: &MetricSet,
        after: &MetricSet,
        images: usize,
        dataset_hash: &str,
        dataset_id: Option<String>,
    ) -> Result<u32, Status> {
        let key = format!("layer1/{}/params.json", uuid::Uuid::new_v4());
        let body = serde_json::to_vec_pretty(params).map_err(internal)?;
        self.backends
            .store
            .put(
                Bucket::TrainingOutputs,
                &key,
                Bytes::from(body),
                "application/json",
            )
            .await
            .map_err(|e| e.code().status(e.to_string()))?;
        let metrics = json!({
            "final": {"psnr": after.psnr, "ssim": after.ssim, "accuracy": after.accuracy},
            "baseline": {"psnr": before.psnr, "ssim": before.ssim, "accuracy": before.accuracy},
            "images": images,
        });
        let req = v1::RegisterModelRequest {
            layer: 1,
            source_bucket: Bucket::TrainingOutputs.name().into(),
            source_key: key,
            config: Some(restoreflow_proto::json_to_struct(
                &json!({"model": {"kind": "classical", "params": params}}),
            )),
            metrics: Some(restoreflow_proto::json_to_struct(&metrics)),
            training_job_id: String::new(),
            dataset_id: dataset_id.unwrap_or_default(),
            dataset_hash: dataset_hash.to_string(),
            code_version: code_version(),
            parent_version: None,
            parameter_count: 0,
        };
        let v = self
            .registry
            .clone()
            .register_model(req)
            .await
            .map_err(|s| {
                ErrorCode::Unavailable
                    .status(format!("layer 1 registration failed: {}", s.message()))
            })?
            .into_inner();
        Ok(v.version)
    }
}

fn evaluation_message(row: &evaluation::Model, error: Option<String>) -> v1::Evaluation {
    let baselines = row
        .baselines
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), scores_from_json(v)))
                .collect()
        })
        .unwrap_or_default();
    v1::Evaluation {
        id: row.id.clone(),
        layer: row.layer as u32,
        version: row.version as u32,
        dataset: row.dataset_id.clone(),
        status: row.status.clone(),
        pairs: row.pairs as u32,
        mean: Some(scores_from_json(&row.mean)),
        baselines,
        details: Some(restoreflow_proto::json_to_struct(&json!({
            "skipped": row.skipped,
            "per_image": row.per_image,
            // Stored with the mean scores; absent in evaluations from before targets.
            "targets": row.mean.get("targets"),
            "dpi": row.mean.get("dpi"),
            "model_targets": row.mean.get("model_targets"),
            "target_mismatch": row.mean.get("target_mismatch"),
        }))),
        object_prefix: format!("{}/{}", Bucket::Evaluation, row.object_prefix),
        pipeline: row
            .mean
            .get("pipeline")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| if row.layer == 1 { "layer1" } else { "layer2" }.to_string()),
        created_at: Some(timestamp(row.created_at)),
        finished_at: row.finished_at.map(timestamp),
        error,
    }
}

#[tonic::async_trait]
impl EvaluationService for RestorationGrpc {
    #[tracing::instrument(skip(self, request), fields(layer = request.get_ref().layer, model = %request.get_ref().model, dataset = %request.get_ref().dataset), err)]
    async fn run_evaluation(
        &self,
        request: Request<v1::RunEvaluationRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let r = request.into_inner();
        if !(1..=2).contains(&r.layer) {
            return Err(invalid("layer must be 1 or 2"));
        }
        let dataset = r.dataset.trim().to_string();
        if dataset.is_empty() {
            return Err(invalid(
                "dataset is required (a dataset id or a training-data prefix)",
            ));
        }
        let pipeline = match (r.layer, r.pipeline.trim()) {
            (1, "" | "layer1") => Pipeline::Layer1,
            (1, other) => {
                return Err(invalid(format!(
                    "pipeline {other:?} needs layer 2; layer 1 evaluations run layer1"
                )));
            }
            (_, "") => Pipeline::Layer2,
            (_, name) => match name.parse::<Pipeline>()? {
                Pipeline::Layer1 => {
                    return Err(invalid(
                        "pipeline layer1 evaluates Layer 1: ask for layer 1 instead",
                    ));
                }
                p => p,
            },
        };
        let device = self.router.resolve(&r.device).await?;
        let version = self
            .models
            .resolve(r.layer, &r.model)
            .await
            .map_err(from_model)?
            .version;
        let cap = if r.max_pairs == 0 {
            usize::MAX
        } else {
            r.max_pairs as usize
        };
        let pairs = find_pairs(&self.backends, &self.catalog, &dataset, cap)
            .await
            .map_err(from_pairs)?;
        if pairs.pairs.is_empty() {
            return Err(ErrorCode::FailedPrecondition
                .status(format!("no clean/degraded pairs in {}", pairs.location)));
        }
        let params = EvalParams {
            pipeline: pipeline.as_str().to_string(),
            layer: r.layer,
            version,
            model: if r.model.trim().is_empty() {
                "latest".into()
            } else {
                r.model.trim().into()
            },
            dataset,
            max_pairs: r.max_pairs,
        };
        let value = serde_json::to_value(&params).map_err(internal)?;
        let job = db::create_job_on(&self.backends.db, JobKind::Evaluation, value, Some(device))
            .await
            .map_err(from_db)?;
        self.publish(&queue_for(queues::EVALUATION, device), &job.id)
            .await;
        Ok(Response::new(db::job_to_proto(&job)))
    }

    async fn get_evaluation(
        &self,
        request: Request<v1::GetEvaluationRequest>,
    ) -> Result<Response<v1::Evaluation>, Status> {
        let id = request.into_inner().evaluation_id;
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(invalid(format!("evaluation id {id:?} is not a UUID")));
        }
        let job = db::get_job(&self.backends.db, &id).await.map_err(from_db)?;
        let job = match job {
            Some(j) if j.kind == JobKind::Evaluation => j,
            _ => return Err(ErrorCode::NotFound.status(format!("evaluation {id} not found"))),
        };
        let row = evaluation::Entity::find_by_id(id.clone())
            .one(&self.backends.db)
            .await
            .map_err(|e| from_db(e.into()))?;
        // Before the worker starts there is only the job.
        let row = row.unwrap_or_else(|| {
            let p: Option<EvalParams> = serde_json::from_value(job.params.clone()).ok();
            evaluation::Model {
                id: job.id.clone(),
                layer: p.as_ref().map_or(0, |p| p.layer as i32),
                version: p.as_ref().map_or(0, |p| p.version as i32),
                dataset_id: p.map(|p| p.dataset).unwrap_or_default(),
                status: job.status.to_string(),
                pairs: 0,
                skipped: json!([]),
                mean: json!({}),
                baselines: json!({}),
                per_image: json!([]),
                object_prefix: format!("{}/", job.id),
                created_at: job.created_at,
                finished_at: None,
            }
        });
        Ok(Response::new(evaluation_message(&row, job.error.clone())))
    }

    async fn list_evaluations(
        &self,
        request: Request<v1::ListEvaluationsRequest>,
    ) -> Result<Response<v1::ListEvaluationsResponse>, Status> {
        let r = request.into_inner();
        let size = match r.page_size {
            0 => 50,
            n if n > 200 => return Err(invalid("page_size must be at most 200")),
            n => n as usize,
        };
        let offset = db::paging::parse_page_token(&r.page_token).map_err(invalid)? as usize;
        let mut q = evaluation::Entity::find().filter(evaluation::Column::Status.eq("completed"));
        if let Some(layer) = r.layer {
            if !(1..=2).contains(&layer) {
                return Err(invalid("layer must be 1 or 2"));
            }
            q = q.filter(evaluation::Column::Layer.eq(layer as i32));
        }
        if let Some(v) = r.version {
            q = q.filter(evaluation::Column::Version.eq(v as i32));
        }
        if !r.dataset.trim().is_empty() {
            q = q.filter(evaluation::Column::DatasetId.eq(r.dataset.trim()));
        }
        // The mean lives in JSON; rank in memory over a bounded window.
        let mut rows = q
            .order_by_desc(evaluation::Column::CreatedAt)
            .limit(5000)
            .all(&self.backends.db)
            .await
            .map_err(|e| from_db(e.into()))?;
        let psnr = |r: &evaluation::Model| {
            r.mean
                .get("psnr")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NEG_INFINITY)
        };
        rows.sort_by(|a, b| psnr(b).total_cmp(&psnr(a)).then_with(|| a.id.cmp(&b.id)));
        let total = rows.len();
        let page: Vec<v1::Evaluation> = rows
            .iter()
            .skip(offset)
            .take(size)
            .map(|row| {
                let mut m = evaluation_message(row, None);
                // The leaderboard carries no per-image detail.
                m.details = None;
                m
            })
            .collect();
        let next = offset + page.len();
        Ok(Response::new(v1::ListEvaluationsResponse {
            evaluations: page,
            next_page_token: if next < total {
                next.to_string()
            } else {
                String::new()
            },
        }))
    }

    #[tracing::instrument(skip(self, request), fields(prefix = %request.get_ref().prefix, name = %request.get_ref().name), err)]
    async fn register_evaluation_dataset(
        &self,
        request: Request<v1::RegisterEvaluationDatasetRequest>,
    ) -> Result<Response<v1::EvaluationDataset>, Status> {
        register_upload(&self.backends, &self.catalog, request.into_inner())
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(RgbImage::new(w, h))
            .write_to(&mut buf, image::ImageFormat::Png)
            .unwrap();
        buf.into_inner()
    }

    #[test]
    fn stored_pages_decode_only_within_the_pixel_limit() {
        let img = decode_rgb(&png(40, 30), 1_200).unwrap();
        assert_eq!(img.dimensions(), (40, 30));
        let e = decode_rgb(&png(40, 31), 1_200).unwrap_err();
        assert!(
            e.message.contains("40x31") && e.message.contains("limit is 1200"),
            "{e}"
        );
        // The caller's input: InvalidArgument all the way to the client.
        assert_eq!(e.code, restoreflow_proto::ErrorCode::InvalidArgument);
        assert!(decode_rgb(b"not a png", 1_200).is_err());
    }

    #[test]
    fn image_checks_reject_non_images_and_oversized_pages() {
        assert_eq!(check_image(&png(40, 30), 10_000).unwrap(), (40, 30));
        assert!(check_image(b"", 10).unwrap_err().message.contains("empty"));
        assert!(
            check_image(b"hello, not an image", 10)
                .unwrap_err()
                .message
                .contains("not an image")
        );
        let err = check_image(&png(200, 100), 10_000).unwrap_err();
        assert!(
            err.message.contains("200x100") && err.message.contains("10000"),
            "{err}"
        );
    }
}
