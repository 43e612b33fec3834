//! Conversions from database rows to the shared protobuf messages.

use restoreflow_proto::v1;

use super::entity::{job, job_event};
use super::{JobKind, JobStatus};

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A job row as the shared `Job` message.
pub fn job_to_proto(j: &job::Model) -> v1::Job {
    let kind = match j.kind {
        JobKind::Synthetic => v1::JobKind::Synthetic,
        JobKind::TrainingLayer2 => v1::JobKind::TrainingLayer2,
        JobKind::Evaluation => v1::JobKind::Evaluation,
        JobKind::Layer1Evaluation => v1::JobKind::Layer1Evaluation,
        JobKind::RestoreBatch => v1::JobKind::RestoreBatch,
    };
    let status = match j.status {
        JobStatus::Queued => v1::JobStatus::Queued,
        JobStatus::Running => v1::JobStatus::Running,
        JobStatus::Completed => v1::JobStatus::Completed,
        JobStatus::Failed => v1::JobStatus::Failed,
        JobStatus::Cancelled => v1::JobStatus::Cancelled,
    };
    v1::Job {
        id: j.id.clone(),
        kind: kind as i32,
        status: status as i32,
        params: Some(restoreflow_proto::json_to_struct(&j.params)),
        progress: j.progress,
        attempts: j.attempts.max(0) as u32,
        error: j.error.clone(),
        result: j.result.as_ref().map(restoreflow_proto::json_to_struct),
        created_at: Some(timestamp(j.created_at)),
        updated_at: Some(timestamp(j.updated_at)),
        started_at: j.started_at.map(timestamp),
        finished_at: j.finished_at.map(timestamp),
        params_json: j.params.to_string(),
        result_json: j.result.as_ref().map(|r| r.to_string()).unwrap_or_default(),
    }
}

/// A job event row as the shared `JobEvent` message.
pub fn event_to_proto(e: &job_event::Model) -> v1::JobEvent {
    v1::JobEvent {
        id: e.id,
        job_id: e.job_id.clone(),
        kind: e.kind.clone(),
        payload: Some(restoreflow_proto::json_to_struct(&e.payload)),
        created_at: Some(timestamp(e.created_at)),
    }
}
