//! Renders a job's report in every format and stores it with its charts.

use bytes::Bytes;
use chrono::Utc;
use restoreflow_core::Backends;
use restoreflow_core::db::DbError;
use restoreflow_core::db::entity::report;
use restoreflow_core::storage::{Bucket, get_bytes};
use restoreflow_report_render::{
    ChartRef, Sample, derive, render_charts, render_html, render_json, render_markdown, render_text,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value, json};

use crate::ReportError;
use crate::collect::{Sources, collect};

/// Formats and their file names and content types.
pub const FORMATS: [(&str, &str, &str); 4] = [
    ("txt", "report.txt", "text/plain; charset=utf-8"),
    ("md", "report.md", "text/markdown; charset=utf-8"),
    ("json", "report.json", "application/json"),
    ("html", "report.html", "text/html; charset=utf-8"),
];

/// Builds (or rebuilds) the report of a finished training job; returns its
/// `reports` row.
#[tracing::instrument(skip(backends, sources), err)]
pub async fn build_report(
    backends: &Backends,
    sources: &Sources,
    job_id: &str,
) -> Result<report::Model, ReportError> {
    let db = &backends.db;
    let existing = report::Entity::find()
        .filter(report::Column::JobId.eq(job_id))
        .one(db)
        .await
        .map_err(DbError::from)?;
    let report_id = existing
        .as_ref()
        .map(|r| r.id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let collected = collect(sources, job_id, &report_id).await?;
    let store = backends.store.as_ref();
    let mut samples = Vec::new();
    for s in &collected.samples {
        let limit = 32 << 20;
        match (
            get_bytes(store, Bucket::TrainingOutputs, &s.degraded, limit).await,
            get_bytes(store, Bucket::TrainingOutputs, &s.restored, limit).await,
            get_bytes(store, Bucket::TrainingOutputs, &s.clean, limit).await,
        ) {
            (Ok(d), Ok(r), Ok(c)) => samples.push(Sample {
                name: s.name.clone(),
                degraded_png: d.to_vec(),
                restored_png: r.to_vec(),
                clean_png: c.to_vec(),
            }),
            _ => {
                tracing::warn!(sample = %s.name, "a stored validation sample is missing; leaving it out")
            }
        }
    }
    let data = collected.data;
    let rendered = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let charts =
                render_charts(&data, &samples).map_err(|e| ReportError::Render(e.to_string()))?;
            let links: Vec<ChartRef> = charts
                .iter()
                .map(|c| ChartRef {
                    title: c.title.clone(),
                    file_name: format!("charts/{}", c.file_name),
                })
                .collect();
            let docs = vec![
                render_text(&data),
                render_markdown(&data, &links),
                serde_json::to_string_pretty(&render_json(&data))
                    .map_err(|e| ReportError::Render(e.to_string()))?,
                render_html(&data, &charts),
            ];
            Ok::<_, ReportError>((charts, docs))
        })
        .await
        .map_err(|e| ReportError::Render(format!("render thread failed: {e}")))??
    };
    let (charts, docs) = rendered;
    let mut formats = Map::new();
    for ((fmt, file, content_type), body) in FORMATS.iter().zip(docs) {
        let key = format!("reports/{job_id}/{file}");
        store
            .put(
                Bucket::TrainingOutputs,
                &key,
                Bytes::from(body),
                content_type,
            )
            .await?;
        formats.insert(fmt.to_string(), json!(key));
    }
    let mut chart_keys = Map::new();
    for c in &charts {
        let analysis = format!("analysis/{job_id}/{}", c.file_name);
        let beside = format!("reports/{job_id}/charts/{}", c.file_name);
        for key in [&analysis, &beside] {
            store
                .put(
                    Bucket::TrainingOutputs,
                    key,
                    Bytes::from(c.png.clone()),
                    "image/png",
                )
                .await?;
        }
        chart_keys.insert(c.file_name.clone(), json!(analysis));
    }
    let row = report::Model {
        id: report_id,
        job_id: job_id.to_string(),
        layer: data.job.layer as i32,
        status: data.job.status.clone(),
        model_version: data.model.as_ref().map(|m| m.version as i32),
        prefix: format!("reports/{job_id}/"),
        formats: Value::Object(formats),
        charts: Value::Object(chart_keys),
        summary: serde_json::to_value(derive(&data)).unwrap_or(Value::Null),
        created_at: existing.map(|e| e.created_at).unwrap_or_else(Utc::now),
    };
    let active = report::ActiveModel {
        id: Set(row.id.clone()),
        job_id: Set(row.job_id.clone()),
        layer: Set(row.layer),
        status: Set(row.status.clone()),
        model_version: Set(row.model_version),
        prefix: Set(row.prefix.clone()),
        formats: Set(row.formats.clone()),
        charts: Set(row.charts.clone()),
        summary: Set(row.summary.clone()),
        created_at: Set(row.created_at),
    };
    report::Entity::insert(active)
        .on_conflict(
            // One report per job: a concurrent build of the same job (another
            // replica, or BuildReport racing the consumer) updates, never fails.
            OnConflict::column(report::Column::JobId)
                .update_columns([
                    report::Column::Status,
                    report::Column::ModelVersion,
                    report::Column::Formats,
                    report::Column::Charts,
                    report::Column::Summary,
                ])
                .to_owned(),
        )
        .exec(db)
        .await
        .map_err(DbError::from)?;
    // The winner of a concurrent build keeps its id; answer with the stored row.
    let row = report::Entity::find()
        .filter(report::Column::JobId.eq(job_id))
        .one(db)
        .await
        .map_err(DbError::from)?
        .unwrap_or(row);
    tracing::info!(report_id = %row.id, job_id, charts = charts.len(), "report stored");
    Ok(row)
}
