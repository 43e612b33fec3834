//! Synthetic-data routes; the synthetic-data service does the work over gRPC.

use axum::extract::{Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use restoreflow_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::state::AppState;

/// Body of `POST /synthetic/generate`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// Pairs to generate (1..=configured maximum, 10,000 by default).
    pub num_images: u32,
    /// A degradation family (e.g. `gaussian_noise`) or a preset name.
    pub degradation_type: Option<String>,
    /// A preset: `light`, `scan`, `photo`, `heavy`, `mixed` (default).
    pub preset: Option<String>,
    /// Base seed; random (and recorded) when absent.
    pub seed: Option<u64>,
    /// Page width in pixels (64..=4096, default 640).
    pub width: Option<u32>,
    /// Page height in pixels (64..=4096, default 832).
    pub height: Option<u32>,
    /// `train` (default), `validation` or `test`.
    pub split: Option<String>,
    /// A free composition instead of a preset: each family applied with its probability.
    pub steps: Option<Vec<StepBody>>,
    /// What the clean half of each pair holds: `as_printed` (default: the
    /// printed page with its ink colour and paper tone) or `digital` (the
    /// black-on-white original, so a model learns to recover the document
    /// rather than the copy).
    pub target: Option<String>,
    /// Scan resolution, 50..=300 dpi: fonts, table rules and the
    /// degradations' pixel sizes (blur radii, stroke widths, ...) scale with
    /// it. With `page_size` (150 by default) the page is a whole sheet.
    pub dpi: Option<u32>,
    /// `a4` or `letter`: a whole sheet at `dpi` (A4 at 150 dpi is
    /// 1240x1754 pixels); excludes `width` and `height`.
    pub page_size: Option<String>,
    /// Font families or packs (`serif`, `sans`, `mono`, `typewriter`,
    /// `condensed`, `handwriting`) to draw with; absent means every installed family. A
    /// family that is not installed is refused with its Debian package.
    pub fonts: Option<Vec<String>>,
    /// `mixed` (default: figures, charts, photos, logos, forms, signatures,
    /// stamps, highlighter and pen marks among the text) or `text` (the
    /// same pages' text, headers and page numbers only).
    pub content: Option<String>,
}

/// One step of a free composition.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// Family name (see `GET /synthetic/presets`).
    pub family: String,
    /// Chance in [0, 1] of applying it to a page.
    pub probability: f32,
}

/// Answer of `POST /synthetic/generate`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The queued job.
    pub job_id: String,
    /// Always `queued`.
    pub status: String,
    /// Where to poll.
    pub status_url: String,
}

/// Queues a generation job and returns at once.
#[utoipa::path(post, path = "/synthetic/generate", tag = "synthetic", request_body = GenerateBody,
    security(("api_key" = [])),
    responses((status = 202, body = Accepted), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn generate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<GenerateBody>,
) -> Result<(StatusCode, ApiJson<Accepted>), ApiError> {
    crate::error::no_empty_names(&[
        ("degradation_type", body.degradation_type.as_deref()),
        ("preset", body.preset.as_deref()),
        ("split", body.split.as_deref()),
        ("target", body.target.as_deref()),
        ("page_size", body.page_size.as_deref()),
        ("content", body.content.as_deref()),
    ])?;
    // An empty list would read as "absent" once in the gRPC message.
    if body.steps.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::invalid(
            "steps is empty; leave it out to use a preset",
        ));
    }
    if body.fonts.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::invalid(
            "fonts is empty; leave it out to draw with every installed family",
        ));
    }
    let req = v1::GenerateRequest {
        num_images: body.num_images,
        preset: body.preset.unwrap_or_default(),
        degradation_type: body.degradation_type.unwrap_or_default(),
        seed: body.seed,
        width: body.width,
        height: body.height,
        split: body.split.unwrap_or_default(),
        target: body.target.unwrap_or_default(),
        dpi: body.dpi,
        page_size: body.page_size.unwrap_or_default(),
        fonts: body.fonts.unwrap_or_default(),
        content: body.content.unwrap_or_default(),
        steps: body
            .steps
            .unwrap_or_default()
            .into_iter()
            .map(|s| v1::DegradationStep {
                family: s.family,
                probability: s.probability,
            })
            .collect(),
    };
    let job = state.synthetic.clone().generate(req).await?.into_inner();
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Accepted {
            status_url: format!("/jobs/{}", job.id),
            job_id: job.id,
            status: "queued".into(),
        }),
    ))
}

/// A preset step.
#[derive(Serialize, ToSchema)]
pub struct StepView {
    /// Family name.
    pub family: String,
    /// Chance of being applied to a page.
    pub probability: f32,
}

/// A named preset.
#[derive(Serialize, ToSchema)]
pub struct PresetView {
    /// Name.
    pub name: String,
    /// What it imitates.
    pub description: String,
    /// Its families.
    pub steps: Vec<StepView>,
    /// Other names accepted for it as `preset` or `degradation_type`.
    pub aliases: Vec<String>,
}

/// A degradation family.
#[derive(Serialize, ToSchema)]
pub struct FamilyView {
    /// Name (usable as `degradation_type`).
    pub name: String,
    /// What it imitates.
    pub description: String,
}

/// Presets and families.
#[derive(Serialize, ToSchema)]
pub struct PresetList {
    /// Named presets.
    pub presets: Vec<PresetView>,
    /// Every degradation family.
    pub families: Vec<FamilyView>,
}

/// Lists presets and degradation families.
#[utoipa::path(get, path = "/synthetic/presets", tag = "synthetic",
    responses((status = 200, body = PresetList)))]
pub async fn presets(State(state): State<AppState>) -> Result<ApiJson<PresetList>, ApiError> {
    let r = state
        .synthetic
        .clone()
        .list_presets(v1::ListPresetsRequest {})
        .await?
        .into_inner();
    Ok(ApiJson(PresetList {
        presets: r
            .presets
            .into_iter()
            .map(|p| PresetView {
                name: p.name,
                description: p.description,
                steps: p
                    .steps
                    .into_iter()
                    .map(|s| StepView {
                        family: s.family,
                        probability: s.probability,
                    })
                    .collect(),
                aliases: p.aliases,
            })
            .collect(),
        families: r
            .families
            .into_iter()
            .map(|f| FamilyView {
                name: f.name,
                description: f.description,
            })
            .collect(),
    }))
}

/// Options of `POST /synthetic/degrade`, read from the form.
#[derive(Default)]
struct DegradeOptions {
    preset: Option<String>,
    degradation_type: Option<String>,
    seed: Option<u64>,
}

/// Multipart form of `POST /synthetic/degrade`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DegradeForm {
    /// The image (PNG, JPEG).
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    image: String,
    /// Preset name (or use `degradation_type`; not both).
    preset: Option<String>,
    /// Family or preset name.
    degradation_type: Option<String>,
    /// Seed.
    seed: Option<u64>,
}

/// Degrades one uploaded image and returns the PNG; the applied degradations
/// (with sampled parameters) come back in `X-Restoreflow-Degradations`.
#[utoipa::path(post, path = "/synthetic/degrade", tag = "synthetic",
    request_body(content = DegradeForm, content_type = "multipart/form-data"),
    security(("api_key" = [])),
    responses((status = 200, content_type = "image/png", description = "degraded PNG"),
        (status = 400, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
pub async fn degrade(
    State(state): State<AppState>,

    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart?;
    let mut q = DegradeOptions::default();
    let mut image: Option<bytes::Bytes> = None;
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "image" | "file" => image = Some(field.bytes().await?),
            "preset" => q.preset = Some(field.text().await?),
            "degradation_type" => q.degradation_type = Some(field.text().await?),
            "seed" => {
                let text = field.text().await?;
                q.seed = Some(text.trim().parse().map_err(|_| {
                    ApiError::invalid(format!("seed must be a non-negative integer, got {text:?}"))
                })?);
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unexpected form field {other:?}; expected image, preset, degradation_type, seed"
                )));
            }
        }
    }
    let image = image.ok_or_else(|| ApiError::invalid("missing form field \"image\""))?;
    let r = state
        .synthetic
        .clone()
        .degrade(v1::DegradeRequest {
            image: image.to_vec(),
            preset: q.preset.unwrap_or_default(),
            degradation_type: q.degradation_type.unwrap_or_default(),
            seed: q.seed,
        })
        .await?
        .into_inner();
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (
                header::HeaderName::from_static("x-restoreflow-degradations"),
                r.applied_json,
            ),
            (
                header::HeaderName::from_static("x-restoreflow-seed"),
                r.seed.to_string(),
            ),
        ],
        r.png,
    )
        .into_response())
}

/// What synthetic data exists.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// Datasets recorded.
    pub datasets: u64,
    /// Pairs recorded across datasets.
    pub pairs_recorded: u64,
    /// Objects under `training-data/clean/`.
    pub clean_objects: u64,
    /// Objects under `training-data/degraded/`.
    pub degraded_objects: u64,
    /// Clean objects with a degraded twin of the same name.
    pub matched_pairs: u64,
    /// Generation jobs by status.
    pub jobs: JobCounts,
}

/// Job counts by status.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobCounts {
    /// Waiting.
    pub queued: u64,
    /// Running.
    pub running: u64,
    /// Done.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
}

/// Counts datasets, stored pairs and generation jobs.
#[utoipa::path(get, path = "/synthetic/stats", tag = "synthetic",
    responses((status = 200, body = StatsView)))]
pub async fn stats(State(state): State<AppState>) -> Result<ApiJson<StatsView>, ApiError> {
    let s = state
        .synthetic
        .clone()
        .get_stats(v1::GetStatsRequest {})
        .await?
        .into_inner();
    Ok(ApiJson(StatsView {
        datasets: s.datasets,
        pairs_recorded: s.pairs_recorded,
        clean_objects: s.clean_objects,
        degraded_objects: s.degraded_objects,
        matched_pairs: s.matched_pairs,
        jobs: JobCounts {
            queued: s.jobs_queued,
            running: s.jobs_running,
            completed: s.jobs_completed,
            failed: s.jobs_failed,
        },
    }))
}

/// A dataset row.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = SyntheticDataset)]
pub struct DatasetView {
    /// Id (also the file-name prefix of its pairs).
    pub id: String,
    /// Producing job.
    pub job_id: Option<String>,
    /// `synthetic` (generated here) or `upload` (pairs a user registered
    /// as a held-out evaluation set).
    #[schema(example = "synthetic")]
    pub source: String,
    /// Preset or `family:<name>`.
    pub degradation: String,
    /// Split.
    pub split: String,
    /// Base seed.
    pub seed: i64,
    /// Pairs.
    pub num_pairs: i32,
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
    /// `bucket/key` of the manifest.
    pub manifest_key: String,
    /// sha256 over per-file hashes.
    pub content_hash: String,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<v1::Dataset> for DatasetView {
    fn from(d: v1::Dataset) -> Self {
        Self {
            created_at: restoreflow_core::db::from_timestamp(d.created_at.as_ref())
                .unwrap_or_default(),
            id: d.id,
            job_id: d.job_id,
            source: d.source,
            degradation: d.degradation,
            split: d.split,
            seed: d.seed,
            num_pairs: i32::try_from(d.num_pairs).unwrap_or(i32::MAX),
            width: i32::try_from(d.width).unwrap_or(i32::MAX),
            height: i32::try_from(d.height).unwrap_or(i32::MAX),
            manifest_key: d.manifest_key,
            content_hash: d.content_hash,
        }
    }
}

/// Paging of `GET /synthetic/datasets`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetQuery {
    /// Page size, 1..=200 (default 50).
    pub page_size: Option<u64>,
    /// The `X-Next-Page-Token` of the previous page.
    pub page_token: Option<String>,
    /// Deprecated alias of `page_size` (accepted until 0.2).
    pub limit: Option<u64>,
    /// Deprecated: rows to skip, at most 1000000000; use `page_token` (accepted until 0.2).
    pub offset: Option<u64>,
}

/// Lists datasets, newest first. The body stays a bare array (as before);
/// the token of the next page is in the `X-Next-Page-Token` header.
#[utoipa::path(get, path = "/synthetic/datasets", tag = "synthetic", params(DatasetQuery),
    responses((status = 200, body = Vec<DatasetView>, headers(
        ("x-next-page-token" = String, description = "pass as page_token for the next page; absent on the last page"))),
        (status = 400, body = crate::error::ErrorBody)))]
pub async fn datasets(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DatasetQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let page = super::paging::request(q.page_size, q.limit, q.page_token, None)?;
    let (limit, offset) = super::paging::offset_page(&page, q.offset, 50, 200)?;
    let answer = state
        .synthetic
        .clone()
        .list_datasets(v1::ListDatasetsRequest {
            page_size: limit as u32,
            page_token: super::paging::offset_token(offset),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut resp = ApiJson(
        answer
            .datasets
            .into_iter()
            .map(DatasetView::from)
            .collect::<Vec<_>>(),
    )
    .into_response();
    if !answer.next_page_token.is_empty()
        && let Ok(v) = answer.next_page_token.parse()
    {
        resp.headers_mut().insert("x-next-page-token", v);
    }
    Ok(resp)
}
