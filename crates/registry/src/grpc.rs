//! The `ModelRegistryService` gRPC implementation.

use chrono::Utc;
use restoreflow_core::db::DbError;
use restoreflow_core::db::entity::model_version;
use restoreflow_core::storage::{Bucket, StorageError, copy_hashed, validate_key};
use restoreflow_core::{Backends, ErrorCode};
use restoreflow_proto::v1::{self, model_registry_service_server::ModelRegistryService};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use crate::naming::{self, Invalid, VersionRef};
use crate::repo;

/// Shared state of the gRPC handlers.
pub struct RegistryGrpc {
    pub(crate) backends: Backends,
}

impl From<Invalid> for Status {
    fn from(e: Invalid) -> Self {
        ErrorCode::InvalidArgument.status(e.0)
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "internal error");
    ErrorCode::Internal.status("internal error")
}

fn from_db(e: DbError) -> Status {
    match e.code() {
        ErrorCode::Internal => internal(e),
        ErrorCode::Unavailable => {
            tracing::error!(error = %e, "database unavailable");
            ErrorCode::Unavailable.status("database is unavailable")
        }
        code => code.status(e.to_string()),
    }
}

fn from_store(e: StorageError) -> Status {
    match e.code() {
        ErrorCode::Internal => internal(e),
        ErrorCode::Unavailable => {
            tracing::error!(error = %e, "storage unavailable");
            ErrorCode::Unavailable.status("object storage is unavailable")
        }
        code => code.status(e.to_string()),
    }
}

fn timestamp(t: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A row as the protobuf message.
fn to_proto(m: &model_version::Model, aliases: Vec<String>) -> v1::ModelVersion {
    v1::ModelVersion {
        layer: m.layer as u32,
        version: m.version as u32,
        object_key: m.object_key.clone(),
        sidecar_key: m.sidecar_key.clone(),
        sha256: m.sha256.clone(),
        size_bytes: m.size_bytes.max(0) as u64,
        parameter_count: m.parameter_count.max(0) as u64,
        config: Some(restoreflow_proto::json_to_struct(&m.config)),
        metrics: Some(restoreflow_proto::json_to_struct(&m.metrics)),
        training_job_id: m.training_job_id.clone().unwrap_or_default(),
        dataset_id: m.dataset_id.clone().unwrap_or_default(),
        dataset_hash: m.dataset_hash.clone().unwrap_or_default(),
        code_version: m.code_version.clone().unwrap_or_default(),
        parent_version: m.parent_version.map(|p| p as u32),
        aliases,
        created_at: Some(timestamp(m.created_at)),
        config_json: m.config.to_string(),
        metrics_json: m.metrics.to_string(),
    }
}

/// An optional text field: empty means absent; more than `max` characters
/// (as the API document and PostgreSQL count them) is refused.
fn text(name: &str, value: &str, max: usize) -> Result<Option<String>, Invalid> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(Invalid(format!(
            "{name} must be at most {max} characters long"
        )));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

fn from_timestamp(
    name: &str,
    t: Option<&prost_types::Timestamp>,
) -> Result<Option<chrono::DateTime<Utc>>, Invalid> {
    t.map(|t| {
        u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| chrono::DateTime::from_timestamp(t.seconds, nanos))
            .ok_or_else(|| Invalid(format!("{name} is not a valid timestamp")))
    })
    .transpose()
}

/// The filters of a `ListVersions` request, checked.
fn list_filter(r: &v1::ListVersionsRequest) -> Result<repo::ListFilter, Invalid> {
    let alias = text("alias", &r.alias, naming::MAX_ALIAS_LEN)?;
    if let Some(a) = &alias {
        naming::alias(a)?;
    }
    let created_after = from_timestamp("created_after", r.created_after.as_ref())?;
    let created_before = from_timestamp("created_before", r.created_before.as_ref())?;
    Ok(repo::ListFilter {
        alias,
        training_job_id: text("training_job_id", &r.training_job_id, 64)?,
        dataset_id: text("dataset_id", &r.dataset_id, 64)?,
        created_after,
        created_before,
    })
}

/// Everything stored in the sidecar next to the weights.
fn sidecar(m: &model_version::Model, source: (&str, &str)) -> Value {
    json!({
        "layer": m.layer,
        "version": m.version,
        "object_key": m.object_key,
        "sidecar_key": m.sidecar_key,
        "sha256": m.sha256,
        "size_bytes": m.size_bytes,
        "parameter_count": m.parameter_count,
        "config": m.config,
        "metrics": m.metrics,
        "training_job_id": m.training_job_id,
        "dataset_id": m.dataset_id,
        "dataset_hash": m.dataset_hash,
        "code_version": m.code_version,
        "parent_version": m.parent_version,
        "created_at": m.created_at,
        "source": {"bucket": source.0, "key": source.1},
    })
}

impl RegistryGrpc {
    /// The version registered for training job `job` of `layer`, if any: a
    /// ready one as a version; a deleted one is an error (the job's model was
    /// registered once and removed since).
    async fn version_of_job(
        &self,
        layer: i32,
        job: &str,
    ) -> Result<Option<v1::ModelVersion>, Status> {
        let Some(row) = repo::by_training_job(&self.backends.db, layer, job)
            .await
            .map_err(from_db)?
        else {
            return Ok(None);
        };
        if row.status != repo::READY {
            return Err(ErrorCode::FailedPrecondition.status(format!(
                "training job {job} was registered as version {} of layer {layer}, which is {}",
                row.version, row.status
            )));
        }
        Ok(Some(self.with_aliases(&row).await?))
    }

    async fn with_aliases(&self, m: &model_version::Model) -> Result<v1::ModelVersion, Status> {
        let mut aliases = repo::aliases_of(&self.backends.db, m.layer, &[m.version])
            .await
            .map_err(from_db)?;
        Ok(to_proto(m, aliases.remove(&m.version).unwrap_or_default()))
    }

    async fn resolve(&self, layer: u32, version: &str) -> Result<model_version::Model, Status> {
        let layer = naming::layer(layer)?;
        let r = naming::version_ref(version)?;
        repo::resolve(&self.backends.db, layer, &r)
            .await
            .map_err(from_db)
    }

    /// Deletes one version: hides the row, removes both objects, then marks the
    /// row deleted. Returns the removed keys.
    async fn delete_one(&self, layer: i32, version: i32) -> Result<Vec<String>, Status> {
        let db = &self.backends.db;
        // Hide the row first; it is only marked deleted once both objects are
        // gone, and a failed removal leaves it hidden for a retry to finish.
        let row = repo::begin_delete(db, layer, version)
            .await
            .map_err(from_db)?;
        let mut deleted_objects = Vec::new();
        for key in [&row.object_key, &row.sidecar_key] {
            if let Err(e) = self.backends.store.delete(Bucket::Models, key).await {
                tracing::error!(layer, version, key, error = %e, "object removal failed; the version stays hidden until a retried delete succeeds");
                return Err(ErrorCode::Unavailable.status(format!(
                    "could not remove the objects of version {version}; retry the delete"
                )));
            }
            deleted_objects.push(key.clone());
        }
        repo::finish_delete(db, layer, version)
            .await
            .map_err(from_db)?;
        tracing::info!(layer, version, "model version deleted");
        Ok(deleted_objects)
    }

    /// Two versions side by side with the deltas (`b - a`) of their shared metrics.
    async fn comparison(
        &self,
        a: &model_version::Model,
        b: &model_version::Model,
    ) -> Result<v1::CompareVersionsResponse, Status> {
        let deltas = naming::metric_deltas(&a.metrics, &b.metrics)
            .into_iter()
            .map(|d| v1::MetricDelta {
                name: d.name,
                a: d.a,
                b: d.b,
                delta: d.delta,
            })
            .collect();
        let same_validation_data = a.dataset_hash.is_some() && a.dataset_hash == b.dataset_hash;
        Ok(v1::CompareVersionsResponse {
            a: Some(self.with_aliases(a).await?),
            b: Some(self.with_aliases(b).await?),
            deltas,
            same_validation_data,
        })
    }

    /// Best-effort removal of objects written by a registration that failed.
    async fn discard(&self, keys: &[&str]) {
        for key in keys {
            if let Err(e) = self.backends.store.delete(Bucket::Models, key).await {
                tracing::warn!(key, error = %e, "could not remove object of a failed registration");
            }
        }
    }
}

#[tonic::async_trait]
impl ModelRegistryService for RegistryGrpc {
    #[tracing::instrument(skip(self, request), fields(layer = request.get_ref().layer, source_key = %request.get_ref().source_key), err)]
    async fn register_model(
        &self,
        request: Request<v1::RegisterModelRequest>,
    ) -> Result<Response<v1::ModelVersion>, Status> {
        let r = request.into_inner();
        let layer = naming::layer(r.layer)?;
        if r.source_bucket.is_empty() || r.source_key.is_empty() {
            return Err(Invalid("source_bucket and source_key are required".into()).into());
        }
        let source_bucket: Bucket = r
            .source_bucket
            .parse()
            .map_err(|e: StorageError| Invalid(e.to_string()))?;
        validate_key(&r.source_key).map_err(|e| Invalid(e.to_string()))?;
        let training_job_id = text("training_job_id", &r.training_job_id, 64)?;
        let dataset_id = text("dataset_id", &r.dataset_id, 64)?;
        let dataset_hash = text("dataset_hash", &r.dataset_hash, 128)?;
        let code_version = text("code_version", &r.code_version, 128)?;
        let parameter_count = i64::try_from(r.parameter_count)
            .map_err(|_| Invalid("parameter_count is too large".into()))?;
        let parent_version = match r.parent_version {
            None => None,
            Some(p) => {
                let p = naming::version_number(p)
                    .map_err(|e| Invalid(format!("parent_version: {}", e.0)))?;
                if !repo::exists(&self.backends.db, layer, p)
                    .await
                    .map_err(from_db)?
                {
                    return Err(ErrorCode::NotFound.status(format!(
                        "parent_version {p} of layer {layer} does not exist"
                    )));
                }
                Some(p)
            }
        };
        // Idempotent per training job: a second registration (a worker that
        // resumed after another one registered, a retried call) gets the
        // version the job already has.
        if let Some(job) = &training_job_id
            && let Some(existing) = self.version_of_job(layer, job).await?
        {
            return Ok(Response::new(existing));
        }
        let store = self.backends.store.as_ref();
        if store
            .head(source_bucket, &r.source_key)
            .await
            .map_err(from_store)?
            .is_none()
        {
            return Err(ErrorCode::NotFound.status(format!(
                "source object {}/{} not found",
                r.source_bucket, r.source_key
            )));
        }

        let version = repo::allocate_version(&self.backends.db, layer)
            .await
            .map_err(from_db)?;
        let now = Utc::now();
        let (object_key, sidecar_key) = naming::object_keys(layer, version, now);
        let copied = match copy_hashed(
            store,
            (source_bucket, &r.source_key),
            (Bucket::Models, &object_key),
            naming::weights_content_type(layer),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                self.discard(&[&object_key]).await;
                return Err(from_store(e));
            }
        };
        let row = model_version::Model {
            layer,
            version,
            status: repo::READY.into(),
            object_key: object_key.clone(),
            sidecar_key: sidecar_key.clone(),
            sha256: copied.sha256,
            size_bytes: copied.size as i64,
            parameter_count,
            config: r
                .config
                .as_ref()
                .map_or_else(|| json!({}), restoreflow_proto::struct_to_json),
            metrics: r
                .metrics
                .as_ref()
                .map_or_else(|| json!({}), restoreflow_proto::struct_to_json),
            training_job_id: training_job_id.clone(),
            dataset_id,
            dataset_hash,
            code_version,
            parent_version,
            created_at: now,
            deleted_at: None,
        };
        let doc = serde_json::to_vec_pretty(&sidecar(&row, (&r.source_bucket, &r.source_key)))
            .map_err(internal)?;
        if let Err(e) = store
            .put(Bucket::Models, &sidecar_key, doc.into(), "application/json")
            .await
        {
            self.discard(&[&object_key, &sidecar_key]).await;
            return Err(from_store(e));
        }
        // The row is written last, so it never points at objects that are not there.
        let row = match repo::insert_version(&self.backends.db, row).await {
            Ok(row) => row,
            Err(e) => {
                self.discard(&[&object_key, &sidecar_key]).await;
                // Lost a race with a concurrent registration of the same job
                // (the unique index refused this row): answer with the winner.
                if let Some(job) = &training_job_id
                    && let Some(existing) = self.version_of_job(layer, job).await?
                {
                    tracing::info!(
                        layer,
                        job,
                        version = existing.version,
                        "the job was registered concurrently"
                    );
                    return Ok(Response::new(existing));
                }
                return Err(from_db(e));
            }
        };
        // The version exists from here on; a failure to move `latest` is
        // reported but does not undo the registration.
        if let Err(e) = repo::move_latest(&self.backends.db, layer, version).await {
            tracing::error!(layer, version, error = %e, "could not move the latest alias");
        }
        tracing::info!(layer, version, sha256 = %row.sha256, size = row.size_bytes, "model registered");
        Ok(Response::new(self.with_aliases(&row).await?))
    }

    async fn list_versions(
        &self,
        request: Request<v1::ListVersionsRequest>,
    ) -> Result<Response<v1::ListVersionsResponse>, Status> {
        let r = request.into_inner();
        let layer = naming::layer(r.layer)?;
        let limit = naming::page_size(r.page_size)?;
        let before = naming::page_token(&r.page_token)?;
        let filter = list_filter(&r)?;
        let db = &self.backends.db;
        let mut rows = repo::list_ready(db, layer, before, &filter, limit + 1)
            .await
            .map_err(from_db)?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|m| m.version.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let numbers: Vec<i32> = rows.iter().map(|m| m.version).collect();
        let mut aliases = repo::aliases_of(db, layer, &numbers)
            .await
            .map_err(from_db)?;
        let versions = rows
            .iter()
            .map(|m| to_proto(m, aliases.remove(&m.version).unwrap_or_default()))
            .collect();
        Ok(Response::new(v1::ListVersionsResponse {
            versions,
            next_page_token,
        }))
    }

    async fn get_version(
        &self,
        request: Request<v1::VersionRef>,
    ) -> Result<Response<v1::ModelVersion>, Status> {
        let r = request.into_inner();
        let layer = naming::layer(r.layer)?;
        let VersionRef::Number(n) = naming::version_ref(&r.version)? else {
            return Err(Invalid(
                "GetVersion takes a version number; resolve aliases with ResolveVersion".into(),
            )
            .into());
        };
        let m = repo::resolve(&self.backends.db, layer, &VersionRef::Number(n))
            .await
            .map_err(from_db)?;
        Ok(Response::new(self.with_aliases(&m).await?))
    }

    async fn resolve_version(
        &self,
        request: Request<v1::VersionRef>,
    ) -> Result<Response<v1::ModelVersion>, Status> {
        let r = request.into_inner();
        let m = self.resolve(r.layer, &r.version).await?;
        Ok(Response::new(self.with_aliases(&m).await?))
    }

    #[tracing::instrument(skip(self, request), fields(layer = request.get_ref().layer, alias = %request.get_ref().alias, version = request.get_ref().version), err)]
    async fn set_alias(
        &self,
        request: Request<v1::SetAliasRequest>,
    ) -> Result<Response<v1::Alias>, Status> {
        let r = request.into_inner();
        let layer = naming::layer(r.layer)?;
        naming::settable_alias(&r.alias)?;
        let version = naming::version_number(r.version)?;
        let a = repo::set_alias(&self.backends.db, layer, &r.alias, version)
            .await
            .map_err(from_db)?;
        tracing::info!(layer, alias = %a.alias, version, "alias set");
        Ok(Response::new(v1::Alias {
            layer: a.layer as u32,
            alias: a.alias,
            version: a.version as u32,
        }))
    }

    #[tracing::instrument(skip(self, request), fields(layer = request.get_ref().layer, version = %request.get_ref().version), err)]
    async fn delete_version(
        &self,
        request: Request<v1::VersionRef>,
    ) -> Result<Response<v1::DeleteVersionResponse>, Status> {
        let r = request.into_inner();
        let layer = naming::layer(r.layer)?;
        let VersionRef::Number(version) = naming::version_ref(&r.version)? else {
            return Err(Invalid(
                "delete takes a version number, not an alias (an aliased version cannot be deleted)"
                    .into(),
            )
            .into());
        };
        let deleted_objects = self.delete_one(layer, version).await?;
        Ok(Response::new(v1::DeleteVersionResponse {
            layer: layer as u32,
            version: version as u32,
            deleted_objects,
        }))
    }

    async fn compare_versions(
        &self,
        request: Request<v1::CompareVersionsRequest>,
    ) -> Result<Response<v1::CompareVersionsResponse>, Status> {
        let r = request.into_inner();
        let a = self.resolve(r.layer, &r.a).await?;
        let b = self.resolve(r.layer, &r.b).await?;
        Ok(Response::new(self.comparison(&a, &b).await?))
    }

    async fn previous_version(
        &self,
        request: Request<v1::VersionRef>,
    ) -> Result<Response<v1::CompareVersionsResponse>, Status> {
        let r = request.into_inner();
        let b = self.resolve(r.layer, &r.version).await?;
        let a = repo::previous_ready(&self.backends.db, b.layer, b.version)
            .await
            .map_err(from_db)?
            .ok_or_else(|| {
                ErrorCode::NotFound.status(format!(
                    "version {} of layer {} has no earlier version to compare with",
                    b.version, b.layer
                ))
            })?;
        Ok(Response::new(self.comparison(&a, &b).await?))
    }

    #[tracing::instrument(skip(self, request), fields(layer = request.get_ref().layer, keep_last = request.get_ref().keep_last), err)]
    async fn apply_retention(
        &self,
        request: Request<v1::ApplyRetentionRequest>,
    ) -> Result<Response<v1::ApplyRetentionResponse>, Status> {
        let r = request.into_inner();
        let layer = naming::layer(r.layer)?;
        let keep_last = naming::keep_last(r.keep_last)?;
        let db = &self.backends.db;
        let versions = repo::ready_with_aliases(db, layer).await.map_err(from_db)?;
        let mut deleted_versions = Vec::new();
        let mut deleted_objects = Vec::new();
        // Oldest first, so an interrupted run has removed the least useful ones.
        for version in naming::retention_victims(&versions, keep_last)
            .into_iter()
            .rev()
        {
            match self.delete_one(layer, version).await {
                Ok(keys) => {
                    deleted_versions.push(version as u32);
                    deleted_objects.extend(keys);
                }
                // Aliased or deleted since the listing: it simply stays (or is gone).
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::FailedPrecondition | tonic::Code::NotFound
                    ) =>
                {
                    tracing::info!(layer, version, reason = %s.message(), "retention skipped a version");
                }
                Err(s) => return Err(s),
            }
        }
        let kept_versions = repo::ready_with_aliases(db, layer)
            .await
            .map_err(from_db)?
            .into_iter()
            .map(|(v, _)| v as u32)
            .collect();
        tracing::info!(layer, keep_last, deleted = ?deleted_versions, "retention applied");
        Ok(Response::new(v1::ApplyRetentionResponse {
            layer: layer as u32,
            deleted_versions,
            kept_versions,
            deleted_objects,
        }))
    }
}
