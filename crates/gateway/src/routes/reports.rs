//! Training report routes; the report service builds and serves them over gRPC,
//! chart images stream from the object store.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use restoreflow_core::storage::Bucket;
use restoreflow_proto::v1::{self, ReportFormat};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Query of the report listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only reports of this layer (1 or 2).
    pub layer: Option<u32>,
    /// Reports per page, 1..=200 (default 20).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// Query choosing a report's format.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `txt`, `md`, `json` (default) or `html`.
    pub format: Option<String>,
}

/// One report in a listing.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReportSummary {
    /// Report id.
    pub id: String,
    /// The training job it describes.
    pub job_id: String,
    /// Layer trained.
    pub layer: u32,
    /// Final status of the job.
    pub status: String,
    /// When the report was built (RFC 3339).
    pub created_at: Option<String>,
    /// Format -> URL of the document.
    pub formats: std::collections::BTreeMap<String, String>,
    /// URLs of the chart images.
    pub charts: Vec<String>,
    /// Every stored object (keys in `training-outputs`).
    pub object_keys: Vec<String>,
}

/// A page of reports, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReportPage {
    /// The reports.
    pub reports: Vec<ReportSummary>,
    /// Token of the next page; absent on the last one.
    pub next_page_token: Option<String>,
}

fn parse_format(f: Option<&str>) -> Result<ReportFormat, ApiError> {
    match f.unwrap_or("json") {
        "txt" | "text" => Ok(ReportFormat::Txt),
        "md" | "markdown" => Ok(ReportFormat::Md),
        "json" => Ok(ReportFormat::Json),
        "html" => Ok(ReportFormat::Html),
        other => Err(ApiError::invalid(format!(
            "format must be txt, md, json or html, got {other:?}"
        ))),
    }
}

fn timestamp(t: Option<&restoreflow_proto::prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|d| d.to_rfc3339())
}

fn summary(r: v1::Report) -> ReportSummary {
    let formats = ["txt", "md", "json", "html"]
        .into_iter()
        .map(|f| {
            (
                f.to_string(),
                format!("/training/reports/{}?format={f}", r.id),
            )
        })
        .collect();
    let charts = r
        .object_keys
        .iter()
        .filter(|k| k.starts_with("analysis/") && k.ends_with(".png"))
        .filter_map(|k| k.rsplit('/').next())
        .map(|name| format!("/training/reports/{}/charts/{name}", r.id))
        .collect();
    ReportSummary {
        created_at: timestamp(r.created_at.as_ref()),
        id: r.id,
        job_id: r.job_id,
        layer: r.layer,
        status: r.status,
        formats,
        charts,
        object_keys: r.object_keys,
    }
}

fn document(r: v1::Report) -> Response {
    let mut resp = Body::from(r.body).into_response();
    if let Ok(v) = HeaderValue::from_str(&r.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// Lists training reports, newest first.
#[utoipa::path(get, path = "/training/reports", tag = "reports", params(ListQuery),
    responses((status = 200, body = ReportPage), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<ReportPage>, ApiError> {
    let resp = state
        .reports
        .clone()
        .list_reports(v1::ListReportsRequest {
            layer: q.layer,
            page_size: q.page_size.unwrap_or(0),
            page_token: q.page_token.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(ApiJson(ReportPage {
        reports: resp.reports.into_iter().map(summary).collect(),
        next_page_token: Some(resp.next_page_token).filter(|t| !t.is_empty()),
    }))
}

/// One report in the chosen format (`json` by default).
#[utoipa::path(get, path = "/training/reports/{id}", tag = "reports",
    params(("id" = String, Path, description = "report id"), FormatQuery),
    responses((status = 200, description = "the report as text/plain, text/markdown, application/json or text/html"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = parse_format(q.format.as_deref())?;
    let r = state
        .reports
        .clone()
        .get_report(v1::GetReportRequest {
            report_id: id,
            format: format as i32,
        })
        .await?
        .into_inner();
    Ok(document(r))
}

/// The report of a training job in the chosen format (`json` by default).
#[utoipa::path(get, path = "/training/reports/job/{job_id}", tag = "reports",
    params(("job_id" = String, Path, description = "training job id"), FormatQuery),
    responses((status = 200, description = "the report as text/plain, text/markdown, application/json or text/html"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn for_job(
    State(state): State<AppState>,
    ApiPath(job_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    let format = parse_format(q.format.as_deref())?;
    let r = state
        .reports
        .clone()
        .get_report_for_job(v1::GetReportForJobRequest {
            job_id,
            format: format as i32,
        })
        .await?
        .into_inner();
    Ok(document(r))
}

/// A chart image of a report (`image/png`).
#[utoipa::path(get, path = "/training/reports/{id}/charts/{name}", tag = "reports",
    params(("id" = String, Path, description = "report id"), ("name" = String, Path, description = "chart file name, e.g. loss.png")),
    responses((status = 200, description = "image/png"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn chart(
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let r = state
        .reports
        .clone()
        .get_report(v1::GetReportRequest {
            report_id: id.clone(),
            format: ReportFormat::Unspecified as i32,
        })
        .await?
        .into_inner();
    let key = r
        .object_keys
        .iter()
        .find(|k| k.starts_with("analysis/") && k.rsplit('/').next() == Some(name.as_str()))
        .ok_or_else(|| ApiError::not_found(format!("report {id} has no chart {name:?}")))?;
    let obj = state
        .backends
        .store
        .get(Bucket::TrainingOutputs, key)
        .await?;
    let mut resp = Body::from_stream(obj.stream).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(obj.meta.size));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_rejected() {
        assert_eq!(parse_format(None).unwrap(), ReportFormat::Json);
        assert_eq!(parse_format(Some("html")).unwrap(), ReportFormat::Html);
        assert_eq!(parse_format(Some("txt")).unwrap(), ReportFormat::Txt);
        assert_eq!(parse_format(Some("md")).unwrap(), ReportFormat::Md);
        assert!(parse_format(Some("pdf")).is_err());
    }
}
