//! The `SyntheticDataService` gRPC implementation.

use restoreflow_core::bus::queues;
use restoreflow_core::db::{self, JobKind, JobStatus};
use restoreflow_core::jobs::JobMessage;
use restoreflow_core::messages::BusMessage;
use restoreflow_core::storage::{Bucket, list_all};
use restoreflow_core::{Backends, ErrorCode};
use restoreflow_proto::v1::{self, synthetic_data_service_server::SyntheticDataService};
use restoreflow_synth::{Family, Pipeline};
use std::collections::HashSet;
use tonic::{Request, Response, Status};

use crate::params::{Degradation, GenerateParams, Invalid};

/// Largest image accepted by `Degrade`, in bytes (the gateway enforces its own limit first).
pub const MAX_DEGRADE_BYTES: usize = 64 * 1024 * 1024;

/// Shared state of the gRPC handlers.
pub struct SyntheticGrpc {
    pub(crate) backends: Backends,
    pub(crate) max_images: u32,
    /// The installed fonts, to refuse a job naming a missing family up front.
    pub(crate) fonts: std::sync::Arc<restoreflow_synth::FontLibrary>,
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "internal error");
    ErrorCode::Internal.status("internal error")
}

fn from_db(e: db::DbError) -> Status {
    e.into_status()
}

#[tonic::async_trait]
impl SyntheticDataService for SyntheticGrpc {
    #[tracing::instrument(skip(self, request), err)]
    async fn generate(
        &self,
        request: Request<v1::GenerateRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let params = GenerateParams::from_request(request.get_ref(), self.max_images)?;
        if !params.fonts.is_empty()
            && let Err(e) = self.fonts.subset(&params.fonts)
        {
            // A well-formed name this host has no font for: what is
            // installed decides, not the request.
            return Err(ErrorCode::FailedPrecondition.status(e.to_string()));
        }
        let value = serde_json::to_value(&params).map_err(internal)?;
        let job = db::create_job(&self.backends.db, JobKind::Synthetic, value)
            .await
            .map_err(from_db)?;
        let msg = JobMessage::new(&job.id).encode();
        // The row is the truth: if the wake-up is lost, the worker's sweep still finds the job.
        if let Err(e) = self.backends.bus.publish(queues::SYNTHETIC, &msg).await {
            tracing::warn!(job_id = %job.id, error = %e, "publish failed; the recovery sweep will pick the job up");
        }
        Ok(Response::new(db::job_to_proto(&job)))
    }

    async fn list_presets(
        &self,
        _request: Request<v1::ListPresetsRequest>,
    ) -> Result<Response<v1::ListPresetsResponse>, Status> {
        let presets = restoreflow_synth::presets()
            .into_iter()
            .map(|p| v1::Preset {
                name: p.name.to_string(),
                description: p.description.to_string(),
                steps: p
                    .pipeline
                    .steps
                    .iter()
                    .map(|s| v1::DegradationStep {
                        family: s.family.name().to_string(),
                        probability: s.probability,
                    })
                    .collect(),
                aliases: p.aliases.iter().map(|a| a.to_string()).collect(),
            })
            .collect();
        let families = Family::ALL
            .iter()
            .map(|f| v1::Family {
                name: f.name().to_string(),
                description: f.description().to_string(),
            })
            .collect();
        Ok(Response::new(v1::ListPresetsResponse { presets, families }))
    }

    #[tracing::instrument(skip(self, request), fields(bytes = request.get_ref().image.len()), err)]
    async fn degrade(
        &self,
        request: Request<v1::DegradeRequest>,
    ) -> Result<Response<v1::DegradeResponse>, Status> {
        let r = request.into_inner();
        if r.image.is_empty() {
            return Err(ErrorCode::InvalidArgument.status("image is empty"));
        }
        if r.image.len() > MAX_DEGRADE_BYTES {
            return Err(ErrorCode::PayloadTooLarge
                .status(format!("image is larger than {MAX_DEGRADE_BYTES} bytes")));
        }
        let pipeline: Pipeline =
            Degradation::from_request(&r.preset, &r.degradation_type)?.pipeline()?;
        let seed = r.seed.unwrap_or_else(rand::random);
        let out = tokio::task::spawn_blocking(move || {
            let img =
                restoreflow_synth::decode_image(&r.image).map_err(|e| Invalid(e.to_string()))?;
            let degraded = pipeline.apply(&img, seed);
            let png = restoreflow_synth::encode_png(&degraded.image)
                .map_err(|e| Invalid(e.to_string()))?;
            Ok::<_, Invalid>((png, degraded.applied))
        })
        .await
        .map_err(internal)??;
        Ok(Response::new(v1::DegradeResponse {
            png: out.0,
            applied_json: serde_json::to_string(&out.1).map_err(internal)?,
            seed,
        }))
    }

    async fn get_stats(
        &self,
        _request: Request<v1::GetStatsRequest>,
    ) -> Result<Response<v1::SyntheticStats>, Status> {
        let b = &self.backends;
        let (datasets, pairs) = db::dataset_totals(&b.db).await.map_err(from_db)?;
        let store_err = |e: restoreflow_core::storage::StorageError| e.code().status(e.to_string());
        let clean = list_all(b.store.as_ref(), Bucket::TrainingData, "clean/")
            .await
            .map_err(store_err)?;
        let degraded = list_all(b.store.as_ref(), Bucket::TrainingData, "degraded/")
            .await
            .map_err(store_err)?;
        let clean_names: HashSet<&str> = clean
            .iter()
            .filter_map(|o| o.key.strip_prefix("clean/"))
            .collect();
        let matched = degraded
            .iter()
            .filter_map(|o| o.key.strip_prefix("degraded/"))
            .filter(|n| clean_names.contains(n))
            .count();
        let counts = db::count_by_status(&b.db, JobKind::Synthetic)
            .await
            .map_err(from_db)?;
        let count = |s: JobStatus| counts.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
        Ok(Response::new(v1::SyntheticStats {
            datasets,
            pairs_recorded: pairs,
            clean_objects: clean.len() as u64,
            degraded_objects: degraded.len() as u64,
            matched_pairs: matched as u64,
            jobs_queued: count(JobStatus::Queued),
            jobs_running: count(JobStatus::Running),
            jobs_completed: count(JobStatus::Completed),
            jobs_failed: count(JobStatus::Failed),
        }))
    }

    async fn list_datasets(
        &self,
        request: Request<v1::ListDatasetsRequest>,
    ) -> Result<Response<v1::ListDatasetsResponse>, Status> {
        let r = request.into_inner();
        let limit = match r.page_size {
            0 => 50,
            n @ 1..=200 => u64::from(n),
            n => {
                return Err(ErrorCode::InvalidArgument
                    .status(format!("page_size must be between 1 and 200, got {n}")));
            }
        };
        let offset = db::paging::parse_page_token(&r.page_token)
            .map_err(|m| ErrorCode::InvalidArgument.status(m))?;
        let split = match r.split.trim() {
            "" => None,
            s @ ("train" | "validation" | "test") => Some(s),
            s => {
                return Err(ErrorCode::InvalidArgument.status(format!(
                    "split must be train, validation or test, got {s:?}"
                )));
            }
        };
        let rows = db::list_datasets(&self.backends.db, split, limit, offset)
            .await
            .map_err(from_db)?;
        let next_page_token = if rows.len() as u64 == limit {
            (offset + limit).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListDatasetsResponse {
            datasets: rows.into_iter().map(dataset_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_dataset(
        &self,
        request: Request<v1::GetDatasetRequest>,
    ) -> Result<Response<v1::Dataset>, Status> {
        let id = request.into_inner().id;
        check_dataset_id(&id)?;
        match db::get_dataset(&self.backends.db, &id)
            .await
            .map_err(from_db)?
        {
            Some(d) => Ok(Response::new(dataset_to_proto(d))),
            None => Err(ErrorCode::NotFound.status(format!("dataset {id:?} not found"))),
        }
    }

    #[tracing::instrument(skip(self, request), fields(id = %request.get_ref().id), err)]
    async fn record_upload(
        &self,
        request: Request<v1::RecordUploadRequest>,
    ) -> Result<Response<v1::Dataset>, Status> {
        let r = request.into_inner();
        let invalid = |m: String| ErrorCode::InvalidArgument.status(m);
        check_dataset_id(&r.id)?;
        if r.num_pairs == 0 || r.num_pairs > i32::MAX as u32 {
            return Err(invalid(format!(
                "num_pairs must be at least 1, got {}",
                r.num_pairs
            )));
        }
        if r.content_hash.len() != 64 || !r.content_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("content_hash must be a sha256 in hex".into()));
        }
        let manifest: serde_json::Value = serde_json::from_str(&r.manifest_json)
            .map_err(|e| invalid(format!("manifest_json is not JSON: {e}")))?;
        let prefix_ok = manifest
            .get("prefix")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|p| !p.is_empty());
        if !manifest.is_object() || !prefix_ok {
            return Err(invalid(
                "manifest_json must be an object with the pairs' \"prefix\"".into(),
            ));
        }
        let row = db::entity::dataset::Model {
            id: r.id.clone(),
            job_id: None,
            source: db::UPLOAD_SOURCE.into(),
            degradation: db::UPLOAD_SOURCE.into(),
            split: "test".into(),
            seed: 0,
            num_pairs: r.num_pairs as i32,
            width: 0,
            height: 0,
            manifest_key: String::new(),
            manifest,
            content_hash: r.content_hash.to_ascii_lowercase(),
            created_at: chrono::Utc::now(),
        };
        match db::insert_dataset(&self.backends.db, row)
            .await
            .map_err(from_db)?
        {
            Some(d) => Ok(Response::new(dataset_to_proto(d))),
            None => {
                Err(ErrorCode::AlreadyExists.status(format!("dataset {:?} already exists", r.id)))
            }
        }
    }
}

/// InvalidArgument, saying the rule, unless `id` is a valid dataset id.
fn check_dataset_id(id: &str) -> Result<(), Status> {
    if db::valid_dataset_id(id) {
        Ok(())
    } else {
        Err(ErrorCode::InvalidArgument.status(format!(
            "dataset id {id:?} is not 1-64 characters of a-z, 0-9, _ and -"
        )))
    }
}

/// A dataset row as the API message.
fn dataset_to_proto(d: db::entity::dataset::Model) -> v1::Dataset {
    v1::Dataset {
        id: d.id,
        job_id: d.job_id,
        source: d.source,
        degradation: d.degradation,
        split: d.split,
        seed: d.seed,
        num_pairs: d.num_pairs.max(0) as u32,
        width: d.width.max(0) as u32,
        height: d.height.max(0) as u32,
        manifest_key: d.manifest_key,
        content_hash: d.content_hash,
        created_at: Some(db::timestamp(d.created_at)),
        manifest_json: d.manifest.to_string(),
    }
}
