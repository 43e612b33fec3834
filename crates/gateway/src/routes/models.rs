//! Model routes; the model-registry service owns versions and aliases (gRPC),
//! the gateway streams the weights from the object store and verifies them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use restoreflow_core::storage::{Bucket, ByteStream};
use restoreflow_proto::{prost_types, v1};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Header carrying the sha256 (hex) of downloaded weights.
pub const SHA256_HEADER: &str = "x-restoreflow-sha256";

/// A registered model version.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelVersionView {
    /// 1 (classical preprocessing) or 2 (Restormer).
    pub layer: u32,
    /// 1, 2, 3… per layer, never reused.
    pub version: u32,
    /// Key of the weights in the `models` bucket.
    pub object_key: String,
    /// Key of the JSON sidecar in the `models` bucket.
    pub sidecar_key: String,
    /// sha256 (hex) of the weights.
    pub sha256: String,
    /// Size of the weights in bytes.
    pub size_bytes: u64,
    /// Trainable parameters.
    pub parameter_count: u64,
    /// Model configuration.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Metrics: `final` values and per-epoch history.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    /// Training job that produced it.
    pub training_job_id: Option<String>,
    /// Dataset it was trained on.
    pub dataset_id: Option<String>,
    /// Content hash of its validation data.
    pub dataset_hash: Option<String>,
    /// Code version that trained it.
    pub code_version: Option<String>,
    /// Version it was fine-tuned from.
    pub parent_version: Option<u32>,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
    /// Registration time.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where to download the weights.
    pub download_url: String,
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<v1::ModelVersion> for ModelVersionView {
    fn from(m: v1::ModelVersion) -> Self {
        // Exact JSON (a large seed stays whole); `{}` when there is none.
        let json = |v: serde_json::Value| {
            if v.is_null() {
                serde_json::json!({})
            } else {
                v
            }
        };
        let config = json(restoreflow_proto::version_config(&m));
        let metrics = json(restoreflow_proto::version_metrics(&m));
        Self {
            download_url: format!("/models/layer/{}/{}/download", m.layer, m.version),
            layer: m.layer,
            version: m.version,
            object_key: m.object_key,
            sidecar_key: m.sidecar_key,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            parameter_count: m.parameter_count,
            config,
            metrics,
            training_job_id: opt(m.training_job_id),
            dataset_id: opt(m.dataset_id),
            dataset_hash: opt(m.dataset_hash),
            code_version: opt(m.code_version),
            parent_version: m.parent_version,
            aliases: m.aliases,
            created_at: m
                .created_at
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)),
        }
    }
}

/// Query of `GET /models/layer/{layer}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1..=1000 (default 50).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Deprecated alias of `page_size` (accepted until 0.2).
    pub limit: Option<u32>,
    /// Only the version this alias points at (e.g. `champion`, `latest`).
    pub alias: Option<String>,
    /// Only versions produced by this training job.
    pub training_job_id: Option<String>,
    /// Only versions trained on this dataset.
    pub dataset_id: Option<String>,
    /// Only versions registered at or after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only versions registered before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

fn to_timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A page of versions, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelVersionList {
    /// Layer.
    pub layer: u32,
    /// Versions, newest first.
    pub versions: Vec<ModelVersionView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// Lists a layer's versions, newest first, optionally filtered.
#[utoipa::path(get, path = "/models/layer/{layer}", tag = "models",
    params(("layer" = u32, Path, description = "1 (classical preprocessing) or 2 (Restormer)"), ListQuery),
    responses((status = 200, body = ModelVersionList), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(layer): ApiPath<u32>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<ModelVersionList>, ApiError> {
    let page = super::paging::request(q.page_size, q.limit, q.page_token, None)?;
    let page_size = super::paging::size(&page, 50, 1000)? as u32;

    let r = state
        .registry
        .clone()
        .list_versions(v1::ListVersionsRequest {
            layer,
            page_size,
            page_token: page.token.unwrap_or_default(),
            alias: q.alias.unwrap_or_default(),
            training_job_id: q.training_job_id.unwrap_or_default(),
            dataset_id: q.dataset_id.unwrap_or_default(),
            created_after: q.created_after.map(to_timestamp),
            created_before: q.created_before.map(to_timestamp),
        })
        .await?
        .into_inner();
    Ok(ApiJson(ModelVersionList {
        layer,
        versions: r.versions.into_iter().map(Into::into).collect(),
        next_page_token: opt(r.next_page_token),
    }))
}

async fn resolve(
    state: &AppState,
    layer: u32,
    version: String,
) -> Result<v1::ModelVersion, ApiError> {
    Ok(state
        .registry
        .clone()
        .resolve_version(v1::VersionRef { layer, version })
        .await?
        .into_inner())
}

/// One version, by number or alias.
#[utoipa::path(get, path = "/models/layer/{layer}/{version}", tag = "models",
    params(("layer" = u32, Path), ("version" = String, Path, description = "a number such as 3 or an alias such as champion")),
    responses((status = 200, body = ModelVersionView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath((layer, version)): ApiPath<(u32, String)>,
) -> Result<ApiJson<ModelVersionView>, ApiError> {
    Ok(ApiJson(resolve(&state, layer, version).await?.into()))
}

/// Query of the download route.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// Answer with a time-limited S3 URL instead of the bytes (S3 backend only).
    pub presigned: Option<bool>,
}

/// A presigned download.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PresignedDownload {
    /// GET this URL (no API key needed) before it expires.
    pub url: String,
    /// Seconds the URL stays valid.
    pub expires_in_secs: u64,
    /// sha256 (hex) the bytes must have.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Suggested file name.
    pub filename: String,
}

fn filename(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).replace('"', "")
}

/// Streams a version's weights (verified against the registered sha256 while
/// streaming: a mismatch aborts the transfer), or with `presigned=true`
/// returns a presigned S3 URL.
#[utoipa::path(get, path = "/models/layer/{layer}/{version}/download", tag = "models",
    params(("layer" = u32, Path), ("version" = String, Path, description = "number or alias"), DownloadQuery),
    responses((status = 200, description = "the weights (application/octet-stream) with an X-Restoreflow-Sha256 header, or a PresignedDownload with presigned=true", body = PresignedDownload),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    ApiPath((layer, version)): ApiPath<(u32, String)>,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> Result<Response, ApiError> {
    let m = resolve(&state, layer, version).await?;
    let store = &state.backends.store;
    let name = filename(&m.object_key);
    if q.presigned.unwrap_or(false) {
        let ttl = state.settings.presign_ttl_secs;
        let url = store
            .presign_get(Bucket::Models, &m.object_key, Duration::from_secs(ttl))
            .await?
            .ok_or_else(|| {
                // How this system is set up, not the request, decides.
                ApiError::new(restoreflow_core::ErrorCode::FailedPrecondition, format!(
                    "presigned URLs need the S3 backend; this gateway uses the {} store, so download without presigned=true",
                    store.backend()
                ))
            })?;
        return Ok(ApiJson(PresignedDownload {
            url,
            expires_in_secs: ttl,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            filename: name,
        })
        .into_response());
    }
    let obj = store.get(Bucket::Models, &m.object_key).await?;
    let body = Verified::new(obj.stream, m.sha256.clone(), m.object_key.clone());
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(obj.meta.size));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&m.sha256) {
        h.insert(HeaderName::from_static(SHA256_HEADER), v);
    }
    Ok(resp)
}

/// Passes bytes through while hashing them, always holding the latest chunk
/// back: only when the whole object hashed to the registered sha256 does the
/// last chunk go out. On a mismatch the stream ends in an error instead, so the
/// client receives fewer bytes than `Content-Length` announced and sees a
/// failed transfer rather than silently corrupt weights.
struct Verified {
    inner: ByteStream,
    hasher: Option<sha2::Sha256>,
    held: Option<bytes::Bytes>,
    expected: String,
    key: String,
}

impl Verified {
    fn new(inner: ByteStream, expected: String, key: String) -> Self {
        Self {
            inner,
            hasher: Some(sha2::Sha256::new()),
            held: None,
            expected,
            key,
        }
    }
}

impl Stream for Verified {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(hasher) = this.hasher.as_mut() else {
                // Verified (or failed) already: release what is held, then end.
                return Poll::Ready(this.held.take().map(Ok));
            };
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(chunk))) => {
                    hasher.update(&chunk);
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(None) => {
                    let actual = this
                        .hasher
                        .take()
                        .map(|h| hex::encode(h.finalize()))
                        .unwrap_or_default();
                    if actual != this.expected {
                        this.held = None;
                        tracing::error!(key = %this.key, expected = %this.expected, %actual,
                            "model weights do not match their registered sha256; download aborted");
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "sha256 mismatch: stored weights are corrupt",
                        ))));
                    }
                }
            }
        }
    }
}

/// Body of `PUT /models/layer/{layer}/aliases/{alias}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasBody {
    /// The version number the alias should point at.
    pub version: u32,
}

/// An alias.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AliasView {
    /// Layer.
    pub layer: u32,
    /// Alias name.
    pub alias: String,
    /// Version it points at.
    pub version: u32,
}

/// Creates or moves an alias such as `champion`.
#[utoipa::path(put, path = "/models/layer/{layer}/aliases/{alias}", tag = "models",
    params(("layer" = u32, Path), ("alias" = String, Path, description = "[a-z0-9_-]{1,64}, not purely numeric")),
    request_body = AliasBody, security(("api_key" = [])),
    responses((status = 200, body = AliasView), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_alias(
    State(state): State<AppState>,
    ApiPath((layer, alias)): ApiPath<(u32, String)>,
    ApiJson(body): ApiJson<AliasBody>,
) -> Result<ApiJson<AliasView>, ApiError> {
    let a = state
        .registry
        .clone()
        .set_alias(v1::SetAliasRequest {
            layer,
            alias,
            version: body.version,
        })
        .await?
        .into_inner();
    Ok(ApiJson(AliasView {
        layer: a.layer,
        alias: a.alias,
        version: a.version,
    }))
}

/// Answer of a deletion.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    /// Layer.
    pub layer: u32,
    /// The deleted version (its number is never given out again).
    pub version: u32,
    /// Keys removed from the `models` bucket.
    pub deleted_objects: Vec<String>,
}

/// Deletes a version and its objects; refused (409) while an alias points at it.
#[utoipa::path(delete, path = "/models/layer/{layer}/{version}", tag = "models",
    params(("layer" = u32, Path), ("version" = String, Path, description = "a version number")),
    security(("api_key" = [])),
    responses((status = 200, body = Deleted), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath((layer, version)): ApiPath<(u32, String)>,
) -> Result<ApiJson<Deleted>, ApiError> {
    let r = state
        .registry
        .clone()
        .delete_version(v1::VersionRef { layer, version })
        .await?
        .into_inner();
    Ok(ApiJson(Deleted {
        layer: r.layer,
        version: r.version,
        deleted_objects: r.deleted_objects,
    }))
}

/// Body of `POST /models/layer/{layer}/retention`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    /// How many of the newest versions to keep (at least 1).
    pub keep_last: u32,
}

/// Outcome of a retention run.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RetentionResult {
    /// Layer.
    pub layer: u32,
    /// Deleted versions, ascending (their numbers are never given out again).
    pub deleted_versions: Vec<u32>,
    /// Versions still there, newest first.
    pub kept_versions: Vec<u32>,
    /// Keys removed from the `models` bucket.
    pub deleted_objects: Vec<String>,
}

/// Deletes every version of a layer except the newest `keep_last` and every
/// aliased one (`latest`, `champion`, …), objects included.
#[utoipa::path(post, path = "/models/layer/{layer}/retention", tag = "models",
    params(("layer" = u32, Path)), request_body = RetentionBody, security(("api_key" = [])),
    responses((status = 200, body = RetentionResult), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn retention(
    State(state): State<AppState>,
    ApiPath(layer): ApiPath<u32>,
    ApiJson(body): ApiJson<RetentionBody>,
) -> Result<ApiJson<RetentionResult>, ApiError> {
    let r = state
        .registry
        .clone()
        .apply_retention(v1::ApplyRetentionRequest {
            layer,
            keep_last: body.keep_last,
        })
        .await?
        .into_inner();
    Ok(ApiJson(RetentionResult {
        layer: r.layer,
        deleted_versions: r.deleted_versions,
        kept_versions: r.kept_versions,
        deleted_objects: r.deleted_objects,
    }))
}

/// Query of `GET /models/compare`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// Layer.
    pub layer: u32,
    /// First version (number or alias); absent: the newest version before `b`.
    pub a: Option<String>,
    /// Second version (number or alias).
    pub b: String,
}

/// One metric side by side.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MetricDeltaView {
    /// Metric name.
    pub name: String,
    /// Value of a.
    pub a: f64,
    /// Value of b.
    pub b: f64,
    /// `b - a`.
    pub delta: f64,
}

/// Two versions side by side.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Comparison {
    /// Version a.
    pub a: ModelVersionView,
    /// Version b.
    pub b: ModelVersionView,
    /// Deltas of the numeric final metrics both have, by name.
    pub deltas: Vec<MetricDeltaView>,
    /// Both were validated on data with the same content hash.
    pub same_validation_data: bool,
}

/// Compares two versions' metrics; without `a`, compares `b` with the newest
/// earlier version of the layer (404 when there is none).
#[utoipa::path(get, path = "/models/compare", tag = "models", params(CompareQuery),
    responses((status = 200, body = Comparison), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CompareQuery>,
) -> Result<ApiJson<Comparison>, ApiError> {
    let mut registry = state.registry.clone();
    let r = match q.a {
        Some(a) => registry
            .compare_versions(v1::CompareVersionsRequest {
                layer: q.layer,
                a,
                b: q.b,
            })
            .await?
            .into_inner(),
        None => registry
            .previous_version(v1::VersionRef {
                layer: q.layer,
                version: q.b,
            })
            .await?
            .into_inner(),
    };
    let missing = || ApiError::internal("registry answered a comparison without versions");
    Ok(ApiJson(Comparison {
        a: r.a.ok_or_else(missing)?.into(),
        b: r.b.ok_or_else(missing)?.into(),
        deltas: r
            .deltas
            .into_iter()
            .map(|d| MetricDeltaView {
                name: d.name,
                a: d.a,
                b: d.b,
                delta: d.delta,
            })
            .collect(),
        same_validation_data: r.same_validation_data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(bytes::Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    #[tokio::test]
    async fn verified_stream_passes_matching_bytes() {
        let expected = hex::encode(sha2::Sha256::digest(b"hello world"));
        let out: Vec<_> = Verified::new(chunks(&[b"hello ", b"world"]), expected, "k".into())
            .collect()
            .await;
        let bytes: Vec<u8> = out.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(bytes, b"hello world");
    }

    #[tokio::test]
    async fn verified_stream_fails_on_mismatch() {
        let expected = hex::encode(sha2::Sha256::digest(b"hello world"));
        let out: Vec<_> = Verified::new(chunks(&[b"hello ", b"WORLD"]), expected, "k".into())
            .collect()
            .await;
        // The last chunk is withheld: the client never gets the full length.
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].as_ref().unwrap()[..], b"hello ");
        let err = out[1].as_ref().unwrap_err();
        assert!(err.to_string().contains("sha256 mismatch"));
        // An empty object with the right hash still completes.
        let empty = hex::encode(sha2::Sha256::digest(b""));
        let out: Vec<_> = Verified::new(chunks(&[]), empty, "k".into())
            .collect()
            .await;
        assert!(out.is_empty());
    }

    #[test]
    fn views_turn_empty_strings_into_nulls() {
        let v: ModelVersionView = v1::ModelVersion {
            layer: 2,
            version: 3,
            ..Default::default()
        }
        .into();
        assert_eq!(v.download_url, "/models/layer/2/3/download");
        assert!(v.training_job_id.is_none() && v.dataset_hash.is_none());
        assert_eq!(v.metrics, serde_json::json!({}));
    }
}
