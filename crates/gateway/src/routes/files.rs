//! Object routes: paginated listing, streamed download, size-limited upload.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use restoreflow_core::ErrorCode;
use restoreflow_core::storage::{Bucket, ObjectMeta, validate_key, validate_prefix};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Query of `GET /files/{bucket}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Deprecated alias of `page_size` (accepted until 0.2).
    pub limit: Option<u32>,
    /// Deprecated alias of `page_token` (accepted until 0.2).
    pub continuation_token: Option<String>,
}

/// An object in a listing.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ObjectView {
    /// Key within the bucket.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Last modified.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of objects.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ObjectList {
    /// Bucket.
    pub bucket: String,
    /// Prefix used.
    pub prefix: String,
    /// Objects in key order.
    pub objects: Vec<ObjectView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
    /// Deprecated: the same token under its old name (until 0.2).
    pub next_token: Option<String>,
}

fn bucket(name: &str) -> Result<Bucket, ApiError> {
    name.parse::<Bucket>().map_err(ApiError::from)
}

/// Lists objects one page at a time (no cap: follow `next_token`).
#[utoipa::path(get, path = "/files/{bucket}", tag = "files",
    params(("bucket" = String, Path, description = "training-data, models, training-outputs, synthetic-data or evaluation"), ListQuery),
    responses((status = 200, body = ObjectList), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<ObjectList>, ApiError> {
    let b = bucket(&name)?;
    let prefix = q.prefix.unwrap_or_default();
    validate_prefix(&prefix)?;
    let req = super::paging::request(q.page_size, q.limit, q.page_token, q.continuation_token)?;
    let limit = super::paging::size(&req, 100, 1000)? as u32;
    let page = state
        .backends
        .store
        .list(b, &prefix, req.token.as_deref(), limit)
        .await?;
    Ok(ApiJson(ObjectList {
        bucket: b.to_string(),
        prefix,
        objects: page
            .objects
            .into_iter()
            .map(|o| ObjectView {
                key: o.key,
                size: o.size,
                last_modified: o.last_modified,
            })
            .collect(),
        next_page_token: page.next_token.clone(),
        next_token: page.next_token,
    }))
}

/// Oversized uploads up to this much over the limit are read and discarded
/// before the 413 so the client receives the answer.
const DRAIN_SLACK_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and discards a body, giving up after a few seconds.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(_)) = futures::StreamExt::next(&mut stream).await {}
    })
    .await;
}

/// Streams an object.
#[utoipa::path(get, path = "/files/{bucket}/{key}", tag = "files",
    params(("bucket" = String, Path), ("key" = String, Path, description = "object key, may contain '/'")),
    responses((status = 200, description = "the object's bytes, as an attachment (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`, a sandboxing `Content-Security-Policy`)"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let b = bucket(&name)?;
    validate_key(&key)?;
    let obj = state.backends.store.get(b, &key).await?;
    let ct = obj
        .meta
        .content_type
        .clone()
        .filter(|c| c != "binary/octet-stream" && !c.is_empty())
        .unwrap_or_else(|| restoreflow_core::storage::content_type_for(&key).to_string());
    let mut resp = Body::from_stream(obj.stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).map_err(ApiError::internal)?,
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(obj.meta.size));
    // Stored objects are user data: always a download, never a page the
    // browser renders or sniffs (an uploaded .html or .svg would otherwise
    // run script on the gateway's origin, next to `/docs`).
    let file: String = key
        .rsplit('/')
        .next()
        .unwrap_or(&key)
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(resp)
}

/// Streams the request body into an object, refusing bodies over the
/// configured limit (nothing is stored then).
#[utoipa::path(put, path = "/files/{bucket}/{key}", tag = "files",
    params(("bucket" = String, Path), ("key" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("api_key" = [])),
    responses((status = 201, body = ObjectView), (status = 400, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
    req: Request,
) -> Result<(StatusCode, ApiJson<ObjectView>), ApiError> {
    let b = bucket(&name)?;
    validate_key(&key)?;
    let limit = state.settings.max_upload_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        // Answering while the client is still sending makes many clients see a
        // broken pipe instead of the 413; read (and drop) a modest excess first.
        if n <= limit + DRAIN_SLACK_BYTES {
            drain(req.into_body()).await;
        }
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("upload is larger than the limit of {limit} bytes"),
        ));
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| restoreflow_core::storage::content_type_for(&key))
        .to_string();
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let meta: ObjectMeta = state
        .backends
        .store
        .put_stream(b, &key, Box::pin(stream), &ct, Some(limit))
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ObjectView {
            key: meta.key,
            size: meta.size,
            last_modified: meta.last_modified,
        }),
    ))
}
