//! The `ReportService` gRPC implementation.

use chrono::Utc;
use restoreflow_core::db::DbError;
use restoreflow_core::db::entity::report;
use restoreflow_core::storage::{Bucket, get_bytes};
use restoreflow_core::{Backends, ErrorCode};
use restoreflow_proto::v1::{self, ReportFormat, report_service_server::ReportService};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::ReportError;
use crate::builder::{FORMATS, build_report};

/// Largest report document served (the HTML page embeds its charts).
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;
/// Default and largest page sizes of `ListReports`.
const PAGE_DEFAULT: u64 = 20;
const PAGE_MAX: u64 = 200;

/// Shared state of the gRPC handlers.
pub struct ReportGrpc {
    pub(crate) backends: Backends,
    /// The owners of a report's facts (trainer, model registry).
    pub(crate) sources: crate::collect::Sources,
}

fn status(e: ReportError) -> Status {
    match e.code() {
        ErrorCode::Internal => {
            tracing::error!(error = %e, "internal error");
            ErrorCode::Internal.status("internal error")
        }
        ErrorCode::Unavailable => {
            tracing::error!(error = %e, "backend unavailable");
            ErrorCode::Unavailable.status(e.to_string())
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

/// Every object of a report: documents, then charts.
fn object_keys(r: &report::Model) -> Vec<String> {
    let mut keys: Vec<String> = FORMATS
        .iter()
        .filter_map(|(f, _, _)| {
            r.formats
                .get(*f)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    if let Some(charts) = r.charts.as_object() {
        keys.extend(
            charts
                .values()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    keys
}

fn format_name(f: ReportFormat) -> Option<&'static str> {
    match f {
        ReportFormat::Unspecified => None,
        ReportFormat::Txt => Some("txt"),
        ReportFormat::Md => Some("md"),
        ReportFormat::Json => Some("json"),
        ReportFormat::Html => Some("html"),
    }
}

impl ReportGrpc {
    /// The row as a message, with the body of `format` when one is asked for.
    async fn message(
        &self,
        r: report::Model,
        format: ReportFormat,
    ) -> Result<v1::Report, ReportError> {
        let mut msg = v1::Report {
            id: r.id.clone(),
            job_id: r.job_id.clone(),
            layer: r.layer as u32,
            status: r.status.clone(),
            format: format as i32,
            content_type: String::new(),
            body: Vec::new(),
            object_keys: object_keys(&r),
            created_at: Some(timestamp(r.created_at)),
        };
        if let Some(name) = format_name(format) {
            let (_, _, content_type) = FORMATS
                .iter()
                .find(|(f, _, _)| *f == name)
                .copied()
                .unwrap_or(FORMATS[0]);
            let key = r.formats.get(name).and_then(Value::as_str).ok_or_else(|| {
                ReportError::NotFound(format!("{name} document of report {}", r.id))
            })?;
            let body = get_bytes(
                self.backends.store.as_ref(),
                Bucket::TrainingOutputs,
                key,
                MAX_DOCUMENT_BYTES,
            )
            .await?;
            msg.content_type = content_type.to_string();
            msg.body = body.to_vec();
        }
        Ok(msg)
    }

    async fn by_id(&self, id: &str) -> Result<report::Model, ReportError> {
        report::Entity::find_by_id(id.to_string())
            .one(&self.backends.db)
            .await
            .map_err(DbError::from)?
            .ok_or_else(|| ReportError::NotFound(format!("report {id:?}")))
    }

    async fn by_job(&self, job_id: &str) -> Result<report::Model, ReportError> {
        report::Entity::find()
            .filter(report::Column::JobId.eq(job_id))
            .one(&self.backends.db)
            .await
            .map_err(DbError::from)?
            .ok_or_else(|| ReportError::NotFound(format!("report of job {job_id:?}")))
    }
}

fn required(name: &str, value: &str) -> Result<(), Status> {
    if value.trim().is_empty() {
        return Err(ErrorCode::InvalidArgument.status(format!("{name} is required")));
    }
    Ok(())
}

fn format_of(v: i32) -> Result<ReportFormat, Status> {
    ReportFormat::try_from(v)
        .map_err(|_| ErrorCode::InvalidArgument.status(format!("unknown report format {v}")))
}

#[tonic::async_trait]
impl ReportService for ReportGrpc {
    #[tracing::instrument(skip(self, request), fields(job_id = %request.get_ref().job_id), err)]
    async fn build_report(
        &self,
        request: Request<v1::BuildReportRequest>,
    ) -> Result<Response<v1::Report>, Status> {
        let job_id = request.into_inner().job_id;
        required("job_id", &job_id)?;
        let row = build_report(&self.backends, &self.sources, &job_id)
            .await
            .map_err(status)?;
        let msg = self
            .message(row, ReportFormat::Unspecified)
            .await
            .map_err(status)?;
        Ok(Response::new(msg))
    }

    #[tracing::instrument(skip(self, request), fields(report_id = %request.get_ref().report_id), err)]
    async fn get_report(
        &self,
        request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::Report>, Status> {
        let r = request.into_inner();
        required("report_id", &r.report_id)?;
        let format = format_of(r.format)?;
        let row = self.by_id(&r.report_id).await.map_err(status)?;
        Ok(Response::new(
            self.message(row, format).await.map_err(status)?,
        ))
    }

    #[tracing::instrument(skip(self, request), fields(job_id = %request.get_ref().job_id), err)]
    async fn get_report_for_job(
        &self,
        request: Request<v1::GetReportForJobRequest>,
    ) -> Result<Response<v1::Report>, Status> {
        let r = request.into_inner();
        required("job_id", &r.job_id)?;
        let format = format_of(r.format)?;
        let row = self.by_job(&r.job_id).await.map_err(status)?;
        Ok(Response::new(
            self.message(row, format).await.map_err(status)?,
        ))
    }

    #[tracing::instrument(skip(self, request), err)]
    async fn list_reports(
        &self,
        request: Request<v1::ListReportsRequest>,
    ) -> Result<Response<v1::ListReportsResponse>, Status> {
        let r = request.into_inner();
        let size = match r.page_size as u64 {
            0 => PAGE_DEFAULT,
            n if n > PAGE_MAX => {
                return Err(ErrorCode::InvalidArgument
                    .status(format!("page_size must be at most {PAGE_MAX}")));
            }
            n => n,
        };
        let offset = restoreflow_core::db::paging::parse_page_token(&r.page_token)
            .map_err(|e| ErrorCode::InvalidArgument.status(e))?;
        let mut q = report::Entity::find();
        if let Some(layer) = r.layer {
            if !(1..=2).contains(&layer) {
                return Err(ErrorCode::InvalidArgument.status("layer must be 1 or 2"));
            }
            q = q.filter(report::Column::Layer.eq(layer as i32));
        }
        let db = &self.backends.db;
        let total = q
            .clone()
            .count(db)
            .await
            .map_err(|e| status(DbError::from(e).into()))?;
        let rows = q
            .order_by_desc(report::Column::CreatedAt)
            .order_by_asc(report::Column::Id)
            .offset(offset)
            .limit(size)
            .all(db)
            .await
            .map_err(|e| status(DbError::from(e).into()))?;
        let mut reports = Vec::with_capacity(rows.len());
        for row in rows {
            reports.push(
                self.message(row, ReportFormat::Unspecified)
                    .await
                    .map_err(status)?,
            );
        }
        let next = offset + reports.len() as u64;
        Ok(Response::new(v1::ListReportsResponse {
            next_page_token: if next < total {
                next.to_string()
            } else {
                String::new()
            },
            reports,
        }))
    }
}
