//! Restoration routes: one document synchronously, or a whole prefix as a job.

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use restoreflow_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

/// Multipart form of `POST /restore/document`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RestoreForm {
    /// The page (PNG or JPEG).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// `layer2` (default), `layer1` or `layer1+layer2`. `layer1+layer2` feeds
    /// Layer 1's output to a Layer 2 model that was trained on degraded pages,
    /// never on Layer 1 output, so this untrained chain can score below
    /// `layer2` alone.
    pub pipeline: Option<String>,
    /// Layer 2 version number (or use `alias`; not both).
    pub version: Option<String>,
    /// Layer 2 alias (default `latest`).
    pub alias: Option<String>,
    /// Layer of `version`/`alias`: 2 (default) or 1 (then it picks the Layer 1 parameters).
    pub layer: Option<u32>,
    /// `cpu`, `cuda` or `auto` (default). The page is restored synchronously
    /// by the trainer replica that receives the call; another device than
    /// that replica's is refused with 409 (use `/restore/batch`, which is
    /// routed to a worker of the device).
    pub device: Option<String>,
}

/// Restores one page: answers the restored PNG at full resolution (tiled
/// inference), with the versions used in `X-Restoreflow-*` headers.
#[utoipa::path(post, path = "/restore/document", tag = "restore",
    request_body(content = RestoreForm, content_type = "multipart/form-data"),
    security(("api_key" = [])),
    responses((status = 200, description = "the restored page (image/png)"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn document(
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart?;
    let mut image = None;
    let (mut pipeline, mut version, mut alias, mut layer) = (None, None, None, None);
    let mut device = None;
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" | "image" => image = Some(field.bytes().await?),
            "pipeline" => pipeline = Some(field.text().await?),
            "version" => version = Some(field.text().await?),
            "alias" => alias = Some(field.text().await?),
            "device" => device = Some(field.text().await?),
            "layer" => {
                let t = field.text().await?;
                layer =
                    Some(t.trim().parse::<u32>().map_err(|_| {
                        ApiError::invalid(format!("layer must be 1 or 2, got {t:?}"))
                    })?);
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unexpected form field {other:?}; expected file, pipeline, version, alias, layer, device"
                )));
            }
        }
    }
    let image = image.ok_or_else(|| ApiError::invalid("missing form field \"file\""))?;
    let max = state.settings.max_restore_pixels;
    let (w, h) = crate::routes::restore::dimensions(&image)?;
    if u64::from(w) * u64::from(h) > max {
        return Err(ApiError::new(
            restoreflow_core::ErrorCode::PayloadTooLarge,
            format!(
                "the image is {w}x{h} = {} pixels; the limit is {max}",
                u64::from(w) * u64::from(h)
            ),
        ));
    }
    let reference = match (version, alias) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give version or alias, not both")),
        (Some(v), None) => v.trim().to_string(),
        (None, Some(a)) => a.trim().to_string(),
        (None, None) => String::new(),
    };
    let (model, layer1_model) = match layer.unwrap_or(2) {
        2 => (reference, String::new()),
        1 => (String::new(), reference),
        other => {
            return Err(ApiError::invalid(format!(
                "layer must be 1 or 2, got {other}"
            )));
        }
    };
    let r = state
        .restoration
        .clone()
        .restore_document(v1::RestoreDocumentRequest {
            image: image.to_vec(),
            pipeline: pipeline.unwrap_or_default(),
            model,
            layer1_model,
            device: device.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut resp = Body::from(r.png).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    let mut put = |name: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    if let Some(v) = r.layer2_version {
        put("x-restoreflow-layer2-version", v.to_string());
    }
    if let Some(v) = r.layer1_version {
        put("x-restoreflow-layer1-version", v.to_string());
    }
    if let Some(a) = r.skew_angle_deg {
        put("x-restoreflow-skew-degrees", format!("{a:.2}"));
    }
    put("x-restoreflow-seconds", format!("{:.3}", r.seconds));
    Ok(resp)
}

/// Width and height from the image header, or a 4xx for a non-image.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::invalid(format!("cannot read the file: {e}")))?;
    if reader.format().is_none() {
        return Err(ApiError::new(
            restoreflow_core::ErrorCode::UnsupportedMediaType,
            "the file is not an image; send a PNG or JPEG",
        ));
    }
    reader
        .into_dimensions()
        .map_err(|e| ApiError::invalid(format!("the image header is unreadable: {e}")))
}

/// Body of `POST /restore/batch`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// Bucket holding the images (e.g. `training-data`).
    pub bucket: String,
    /// Key prefix of the images (PNG/JPEG).
    pub prefix: String,
    /// Layer 2 version number or alias (default `latest`).
    pub version: Option<String>,
    /// `layer2` (default), `layer1` or `layer1+layer2` (an untrained chain:
    /// the Layer 2 model never saw Layer 1 output, so it can score below
    /// `layer2` alone).
    pub pipeline: Option<String>,
    /// Where the results go in the same bucket (default `restored/{uuid}/`).
    pub output_prefix: Option<String>,
    /// Restore at most this many images (default all).
    pub max_images: Option<u32>,
    /// `cpu`, `cuda` or `auto` (default): the device class of the worker that
    /// runs the job (409 when no live worker has it and none is started on
    /// demand).
    pub device: Option<String>,
}

/// Answer of `POST /restore/batch`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchAccepted {
    /// The job.
    pub job_id: String,
    /// Always `queued`.
    pub status: String,
    /// Where to poll (its result lists every output key).
    pub status_url: String,
}

/// Queues a job restoring every image under a prefix into a restored prefix;
/// results download through `/files/{bucket}/{key}`.
#[utoipa::path(post, path = "/restore/batch", tag = "restore", request_body = BatchBody,
    security(("api_key" = [])),
    responses((status = 202, body = BatchAccepted), (status = 400, body = crate::error::ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<(StatusCode, ApiJson<BatchAccepted>), ApiError> {
    crate::error::no_empty_names(&[
        ("pipeline", body.pipeline.as_deref()),
        ("device", body.device.as_deref()),
    ])?;
    // The job resolves the model when it runs; its spelling is checked now.
    if let Some(v) = body.version.as_deref()
        && !is_version_ref(v)
    {
        return Err(ApiError::invalid(format!(
            "version {v:?} is neither a version number (1-999999999) nor an alias \
             (1-64 of a-z, 0-9, _ and -, not all digits)"
        )));
    }
    if body.max_images == Some(0) {
        return Err(ApiError::invalid(
            "max_images must be at least 1 (leave it out for all)",
        ));
    }
    if body.output_prefix.as_deref() == Some("") {
        return Err(ApiError::invalid(
            "output_prefix is empty; leave it out for restored/{uuid}/",
        ));
    }
    let job = state
        .restoration
        .clone()
        .start_batch_restore(v1::BatchRestoreRequest {
            bucket: body.bucket,
            prefix: body.prefix,
            pipeline: body.pipeline.unwrap_or_default(),
            model: body.version.unwrap_or_default(),
            output_prefix: body.output_prefix.unwrap_or_default(),
            max_images: body.max_images.unwrap_or(0),
            device: body.device.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(BatchAccepted {
            status_url: format!("/jobs/{}", job.id),
            job_id: job.id,
            status: "queued".into(),
        }),
    ))
}

/// A version number (1-999999999, no leading zero) or an alias (1-64 of
/// a-z, 0-9, `_` and `-`, not all digits).
fn is_version_ref(s: &str) -> bool {
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    if digits {
        (1..=9).contains(&s.len()) && !s.starts_with('0')
    } else {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_references_are_numbers_or_aliases() {
        for ok in [
            "1",
            "42",
            "999999999",
            "latest",
            "champion",
            "v2",
            "a-b_c",
            "2024-q1",
        ] {
            assert!(is_version_ref(ok), "{ok}");
        }
        for bad in [
            "",
            "0",
            "007",
            "1000000000",
            "Latest",
            "a b",
            "a/b",
            &"a".repeat(65),
        ] {
            assert!(!is_version_ref(bad), "{bad}");
        }
    }
}
