//! Evaluation and Layer 1 routes; the trainer service scores models over gRPC.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use restoreflow_proto::v1;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Body of `POST /evaluation/run`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// 1 (classical) or 2 (Restormer).
    pub layer: u32,
    /// Version number to evaluate (or use `alias`).
    pub version: Option<u32>,
    /// Alias to evaluate (`latest`, `champion`, …); default `latest`.
    pub alias: Option<String>,
    /// Dataset id (e.g. a `test` split generated with a held-out seed, or an
    /// uploaded set) or a `training-data` pair-name prefix.
    pub dataset: String,
    /// Score at most this many pairs (default all).
    pub max_pairs: Option<u32>,
    /// Layer 2 only: `layer2` (default: the model on the degraded page) or
    /// `layer1+layer2` (the model on the classical pipeline's output; a model
    /// never trained on Layer 1 output can score below `layer2` alone).
    pub pipeline: Option<String>,
    /// `cpu`, `cuda` or `auto` (default): the device class of the worker that
    /// runs the evaluation (409 when no live worker has it and none is
    /// started on demand).
    pub device: Option<String>,
}

/// Answer of `POST /evaluation/run`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EvaluationAccepted {
    /// The evaluation (and job) id.
    pub evaluation_id: String,
    /// Always `queued`.
    pub status: String,
    /// Where to poll.
    pub status_url: String,
}

/// Mean scores.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct Scores {
    /// PSNR in dB.
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
    /// Pixel accuracy in [0, 1].
    pub accuracy: f64,
    /// Mean character error rate of tesseract (`--psm 6`, whitespace
    /// collapsed) on this method's output against the pages' ground-truth
    /// text; present when the dataset has texts (generated sets, uploaded
    /// sets registered with `.txt` files) and tesseract is installed.
    pub cer: Option<f64>,
}

impl From<v1::ImageScores> for Scores {
    fn from(s: v1::ImageScores) -> Self {
        Self {
            psnr: s.psnr,
            ssim: s.ssim,
            accuracy: s.accuracy,
            cer: s.cer,
        }
    }
}

/// An evaluation.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EvaluationView {
    /// Evaluation id (= job id).
    pub id: String,
    /// Layer evaluated.
    pub layer: u32,
    /// Version evaluated.
    pub version: u32,
    /// Dataset evaluated on.
    pub dataset: String,
    /// queued, running, completed, failed or cancelled.
    pub status: String,
    /// Pairs scored.
    pub pairs: u32,
    /// The model's mean scores.
    pub mean: Option<Scores>,
    /// Baseline name (identity, median, nl_means, layer1) -> mean scores,
    /// measured like the model's: colour in, colour out, PSNR over RGB, SSIM
    /// on luma, CER over the same pages.
    pub baselines: BTreeMap<String, Scores>,
    /// Mean PSNR gain over the degraded input (identity baseline), in dB.
    pub gain_over_identity_db: Option<f64>,
    /// What was run: `layer1`, `layer2` or `layer1+layer2`.
    pub pipeline: String,
    /// Skipped pairs and per-image scores (absent in the leaderboard): each
    /// image has `model` and `baselines.{name}` scores (with `cer` when OCR
    /// read it) and `ocr` (`cer_before` of the degraded page, `cer_after` of
    /// the restored one, or null). `targets` (pairs per target of the pairs
    /// evaluated: `as_printed`, `digital`, `uploaded` or `unknown`), `dpi`,
    /// `model_targets` (what the Layer 2 model was trained on; null for Layer 1
    /// or when not recorded) and `target_mismatch` (true when some pages have a
    /// target the model never trained on; null when either side is unknown).
    #[schema(value_type = Object)]
    pub details: Option<Value>,
    /// Where the restored images and results.json are (`evaluation/{id}/`).
    pub object_prefix: String,
    /// The error of a failed evaluation.
    pub error: Option<String>,
}

fn view(e: v1::Evaluation) -> EvaluationView {
    let mean = e.mean.map(Scores::from);
    let baselines: BTreeMap<String, Scores> = e
        .baselines
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    let gain = match (&mean, baselines.get("identity")) {
        (Some(m), Some(i)) if e.pairs > 0 => Some(m.psnr - i.psnr),
        _ => None,
    };
    EvaluationView {
        id: e.id,
        layer: e.layer,
        version: e.version,
        dataset: e.dataset,
        status: e.status,
        pairs: e.pairs,
        mean: mean.filter(|_| e.pairs > 0),
        baselines,
        gain_over_identity_db: gain,
        pipeline: e.pipeline,
        details: e.details.as_ref().map(restoreflow_proto::struct_to_json),
        object_prefix: e.object_prefix,
        error: e.error,
    }
}

/// Queues an evaluation of a model version against the classical baselines.
#[utoipa::path(post, path = "/evaluation/run", tag = "evaluation", request_body = RunBody,
    security(("api_key" = [])),
    responses((status = 202, body = EvaluationAccepted), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<(StatusCode, ApiJson<EvaluationAccepted>), ApiError> {
    crate::error::no_empty_names(&[
        ("alias", body.alias.as_deref()),
        ("pipeline", body.pipeline.as_deref()),
        ("dataset", Some(body.dataset.as_str())),
        ("device", body.device.as_deref()),
    ])?;
    let model = match (body.version, body.alias) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give version or alias, not both")),
        (Some(v), None) => v.to_string(),
        (None, Some(a)) => a,
        (None, None) => "latest".into(),
    };
    let job = state
        .evaluation
        .clone()
        .run_evaluation(v1::RunEvaluationRequest {
            layer: body.layer,
            model,
            dataset: body.dataset,
            max_pairs: body.max_pairs.unwrap_or(0),
            pipeline: body.pipeline.unwrap_or_default(),
            device: body.device.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(EvaluationAccepted {
            status_url: format!("/evaluation/{}", job.id),
            evaluation_id: job.id,
            status: "queued".into(),
        }),
    ))
}

/// One evaluation with per-image scores.
#[utoipa::path(get, path = "/evaluation/{id}", tag = "evaluation",
    params(("id" = String, Path, description = "evaluation id")),
    responses((status = 200, body = EvaluationView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<EvaluationView>, ApiError> {
    let e = state
        .evaluation
        .clone()
        .get_evaluation(v1::GetEvaluationRequest { evaluation_id: id })
        .await?
        .into_inner();
    Ok(ApiJson(view(e)))
}

/// Query of the leaderboard.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    /// Only this layer.
    pub layer: Option<u32>,
    /// Only this version.
    pub version: Option<u32>,
    /// Only this dataset.
    pub dataset: Option<String>,
    /// Rows per page, 1..=200 (default 50).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// The leaderboard.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Leaderboard {
    /// Completed evaluations, best mean PSNR first.
    pub evaluations: Vec<EvaluationView>,
    /// Token of the next page.
    pub next_page_token: Option<String>,
}

/// Completed evaluations ranked by mean PSNR (a leaderboard across versions).
#[utoipa::path(get, path = "/evaluation", tag = "evaluation", params(LeaderboardQuery),
    responses((status = 200, body = Leaderboard), (status = 400, body = crate::error::ErrorBody)))]
pub async fn leaderboard(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LeaderboardQuery>,
) -> Result<ApiJson<Leaderboard>, ApiError> {
    if q.version == Some(0) {
        return Err(ApiError::invalid("version must be at least 1"));
    }
    let resp = state
        .evaluation
        .clone()
        .list_evaluations(v1::ListEvaluationsRequest {
            layer: q.layer,
            version: q.version,
            page_size: q.page_size.unwrap_or(0),
            page_token: q.page_token.unwrap_or_default(),
            dataset: q.dataset.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(ApiJson(Leaderboard {
        evaluations: resp.evaluations.into_iter().map(view).collect(),
        next_page_token: Some(resp.next_page_token).filter(|t| !t.is_empty()),
    }))
}

/// Body of `POST /evaluation/datasets`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetBody {
    /// Dataset id to create: 1-64 of a-z, 0-9, `_`, `-`.
    pub name: String,
    /// Pairs are `training-data/clean/{prefix}*` and `training-data/degraded/{prefix}*`
    /// with matching names (upload them with `PUT /files/training-data/...`);
    /// the ground-truth text of pair `{prefix}NAME.png`, when uploaded to
    /// `training-data/text/{prefix}NAME.txt`, is recorded for the OCR metric.
    /// `restoreflow eval register DIR --name NAME` does all of it from a folder.
    pub prefix: String,
}

/// A registered evaluation dataset.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    /// Dataset id.
    pub id: String,
    /// Matched pairs.
    pub pairs: u32,
    /// Files left out, and why.
    pub skipped: Vec<String>,
    /// sha256 over the pairs' names and sizes (and their texts' keys and
    /// sizes, when there are texts).
    pub content_hash: String,
    /// Pairs with a ground-truth text: evaluations report tesseract's
    /// character error rate on these.
    pub pairs_with_text: u32,
}

/// Registers user-uploaded clean/degraded pairs as an evaluation dataset.
/// (Synthetic evaluation sets come from `POST /synthetic/generate` with
/// `split: "test"`, whose seeds are drawn from a held-out range.)
#[utoipa::path(post, path = "/evaluation/datasets", tag = "evaluation", request_body = DatasetBody,
    security(("api_key" = [])),
    responses((status = 201, body = DatasetView), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn register_dataset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DatasetBody>,
) -> Result<(StatusCode, ApiJson<DatasetView>), ApiError> {
    let d = state
        .evaluation
        .clone()
        .register_evaluation_dataset(v1::RegisterEvaluationDatasetRequest {
            prefix: body.prefix,
            name: body.name,
        })
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        ApiJson(DatasetView {
            id: d.id,
            pairs: d.pairs,
            skipped: d.skipped,
            content_hash: d.content_hash,
            pairs_with_text: d.pairs_with_text,
        }),
    ))
}

/// Body of `POST /training/layer1/evaluate`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Layer1Body {
    /// Pairs to measure, 1..=200 (default 10).
    pub max_images: Option<u32>,
    /// Dataset id or pair-name prefix (default every pair).
    pub dataset: Option<String>,
    /// Layer 1 parameters to try (default: the latest layer 1 version, else the default pipeline).
    #[schema(value_type = Object)]
    pub params: Option<Value>,
    /// Register the parameters with the measured metrics as a new layer 1 version (default false).
    pub register: Option<bool>,
}

/// What Layer 1 did to the pairs.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Layer1Result {
    /// Pairs measured.
    pub images: u32,
    /// Degraded input vs clean.
    pub before: Option<Scores>,
    /// Layer 1 output vs clean.
    pub after: Option<Scores>,
    /// after.psnr - before.psnr.
    pub psnr_gain_db: Option<f64>,
    /// The parameters used.
    #[schema(value_type = Object)]
    pub params: Value,
    /// The new layer 1 version, when registered.
    pub registered_version: Option<u32>,
    /// Per image: before, after, estimated skew, or why it was skipped.
    #[schema(value_type = Object)]
    pub per_image: Value,
    /// Wall time.
    pub seconds: f64,
}

/// Runs the classical Layer 1 pipeline on pairs and measures PSNR/SSIM before and after.
#[utoipa::path(post, path = "/training/layer1/evaluate", tag = "evaluation", request_body = Layer1Body,
    security(("api_key" = [])),
    responses((status = 200, body = Layer1Result), (status = 400, body = crate::error::ErrorBody)))]
pub async fn layer1_evaluate(
    State(state): State<AppState>,
    raw: axum::body::Bytes,
) -> Result<ApiJson<Layer1Result>, ApiError> {
    // Every field is optional, so an empty body means all defaults.
    let body: Layer1Body = if raw.iter().all(u8::is_ascii_whitespace) {
        Layer1Body::default()
    } else {
        let mut value: Value = serde_json::from_slice(&raw)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
        crate::error::integral_floats_to_integers(&mut value);
        crate::error::from_json_value(value)?
    };
    if body.max_images == Some(0) {
        return Err(ApiError::invalid(
            "max_images must be between 1 and 200 (leave it out for 10)",
        ));
    }

    let params = match body.params {
        Some(Value::Object(_)) => body.params.as_ref().map(restoreflow_proto::json_to_struct),
        Some(_) => return Err(ApiError::invalid("params must be a JSON object")),
        None => None,
    };
    let r = state
        .restoration
        .clone()
        .evaluate_layer1(v1::EvaluateLayer1Request {
            max_images: body.max_images.unwrap_or(0),
            dataset: body.dataset.unwrap_or_default(),
            params,
            register: body.register.unwrap_or(false),
        })
        .await?
        .into_inner();
    let before = r.before.map(Scores::from);
    let after = r.after.map(Scores::from);
    Ok(ApiJson(Layer1Result {
        images: r.images,
        psnr_gain_db: match (&before, &after) {
            (Some(b), Some(a)) => Some(a.psnr - b.psnr),
            _ => None,
        },
        before,
        after,
        params: r
            .params
            .as_ref()
            .map(restoreflow_proto::struct_to_json)
            .unwrap_or(Value::Null),
        registered_version: r.registered_version,
        per_image: r
            .per_image
            .as_ref()
            .map(restoreflow_proto::struct_to_json)
            .unwrap_or(Value::Null),
        seconds: r.seconds,
    }))
}
