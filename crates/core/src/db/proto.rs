//! Conversions from database rows to the shared protobuf messages.

use restoreflow_proto::v1;

use super::entity::{job, job_event};
use super::{JobKind, JobStatus};

/// A time as the protobuf timestamp.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A job kind as the shared enum.
pub fn kind_to_proto(kind: JobKind) -> v1::JobKind {
    match kind {
        JobKind::Synthetic => v1::JobKind::Synthetic,
        JobKind::TrainingLayer2 => v1::JobKind::TrainingLayer2,
        JobKind::Evaluation => v1::JobKind::Evaluation,
        JobKind::Layer1Evaluation => v1::JobKind::Layer1Evaluation,
        JobKind::RestoreBatch => v1::JobKind::RestoreBatch,
    }
}

/// A job status as the shared enum.
pub fn status_to_proto(status: JobStatus) -> v1::JobStatus {
    match status {
        JobStatus::Queued => v1::JobStatus::Queued,
        JobStatus::Running => v1::JobStatus::Running,
        JobStatus::Completed => v1::JobStatus::Completed,
        JobStatus::Failed => v1::JobStatus::Failed,
        JobStatus::Cancelled => v1::JobStatus::Cancelled,
    }
}

/// The kind a request names (`None`: unspecified); an error names a value
/// that is no kind of job this version knows.
pub fn kind_from_proto(value: i32) -> Result<Option<JobKind>, String> {
    match v1::JobKind::try_from(value) {
        Ok(v1::JobKind::Unspecified) => Ok(None),
        Ok(k) => JobKind::ALL
            .into_iter()
            .find(|c| kind_to_proto(*c) == k)
            .map(Some)
            .ok_or_else(|| format!("job kind {} is not a kind of job", k.as_str_name())),
        Err(_) => Err(format!("unknown job kind {value}")),
    }
}

/// The status a request names (`None`: unspecified).
pub fn status_from_proto(value: i32) -> Result<Option<JobStatus>, String> {
    match v1::JobStatus::try_from(value) {
        Ok(v1::JobStatus::Unspecified) => Ok(None),
        Ok(s) => Ok(JobStatus::ALL
            .into_iter()
            .find(|c| status_to_proto(*c) == s)),
        Err(_) => Err(format!("unknown status {value}")),
    }
}

/// A job row as the shared `Job` message.
pub fn job_to_proto(j: &job::Model) -> v1::Job {
    let kind = kind_to_proto(j.kind);
    let status = status_to_proto(j.status);
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
        cancel_requested: j.cancel_requested,
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
        payload_json: e.payload.to_string(),
    }
}

/// A protobuf timestamp as a time (`None` when absent or out of range).
pub fn from_timestamp(t: Option<&prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_map_both_ways() {
        for k in JobKind::ALL {
            assert_eq!(kind_from_proto(kind_to_proto(k) as i32), Ok(Some(k)));
        }
        for s in JobStatus::ALL {
            assert_eq!(status_from_proto(status_to_proto(s) as i32), Ok(Some(s)));
        }
        assert_eq!(kind_from_proto(0), Ok(None));
        assert_eq!(status_from_proto(0), Ok(None));
        assert!(kind_from_proto(99).is_err());
        // REPORT is in the shared enum but no job has it.
        assert!(kind_from_proto(v1::JobKind::Report as i32).is_err());
        assert!(status_from_proto(-1).is_err());
    }
}
