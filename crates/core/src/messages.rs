//! The messages services exchange on the bus: typed and versioned.
//!
//! Every message is a JSON object with a `v` field (its schema version; a
//! message without one is version 1) and the trace context of the code that
//! sent it. A consumer reads versions up to [`MESSAGE_VERSION`] and
//! dead-letters newer ones with a clear reason instead of guessing their
//! meaning.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::{JobKind, JobStatus};
use crate::telemetry::TraceHeaders;

/// The newest message schema this build writes and reads.
pub const MESSAGE_VERSION: u32 = 1;

fn first_version() -> u32 {
    1
}

/// A message that can travel on the bus.
pub trait BusMessage: Serialize + DeserializeOwned {
    /// What the message is, for errors (e.g. `job wake-up`).
    const WHAT: &'static str;
    /// The schema version the message says it has.
    fn version(&self) -> u32;

    /// The JSON body.
    fn encode(&self) -> Vec<u8> {
        // Plain structs of strings and numbers always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks a body.
    fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let msg: Self = serde_json::from_slice(body).map_err(|e| MessageError::Malformed {
            what: Self::WHAT,
            reason: e.to_string(),
        })?;
        let v = msg.version();
        if v == 0 || v > MESSAGE_VERSION {
            return Err(MessageError::Version {
                what: Self::WHAT,
                version: v,
            });
        }
        Ok(msg)
    }
}

/// A bus message this build cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// Not the JSON of this message.
    #[error("malformed {what} message: {reason}")]
    Malformed {
        /// The message type.
        what: &'static str,
        /// What serde said.
        reason: String,
    },
    /// Written by a newer (or broken) producer.
    #[error(
        "{what} message of schema version {version}; this build reads versions 1 to {MESSAGE_VERSION}"
    )]
    Version {
        /// The message type.
        what: &'static str,
        /// The version it claimed.
        version: u32,
    },
}

/// Wakes a worker for a job (queues `jobs.*`); the job row is the truth.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobMessage {
    /// Schema version.
    #[serde(default = "first_version")]
    pub v: u32,
    /// The job to claim.
    pub job_id: String,
    /// Trace context of the request that created the job.
    #[serde(default)]
    pub trace: TraceHeaders,
}

impl JobMessage {
    /// A wake-up for `job_id`, in the current trace.
    pub fn new(job_id: impl Into<String>) -> Self {
        Self {
            v: MESSAGE_VERSION,
            job_id: job_id.into(),
            trace: TraceHeaders::current(),
        }
    }
}

impl BusMessage for JobMessage {
    const WHAT: &'static str = "job wake-up";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A training job ended (queue `events.training.completed`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrainingCompleted {
    /// Schema version.
    #[serde(default = "first_version")]
    pub v: u32,
    /// The job.
    pub job_id: String,
    /// Its terminal status.
    pub status: JobStatus,
    /// The model version it registered, if any (`version` on the wire, as
    /// the events before versioning had it).
    #[serde(rename = "version", default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<u32>,
    /// Trace context of the worker that ended it.
    #[serde(default)]
    pub trace: TraceHeaders,
}

impl TrainingCompleted {
    /// The event for `job_id` ending as `status`, in the current trace.
    pub fn new(job_id: impl Into<String>, status: JobStatus, model_version: Option<u32>) -> Self {
        Self {
            v: MESSAGE_VERSION,
            job_id: job_id.into(),
            status,
            model_version,
            trace: TraceHeaders::current(),
        }
    }
}

impl BusMessage for TrainingCompleted {
    const WHAT: &'static str = "training.completed";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A job that gave up, sent to its work queue's `.dead` queue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeadLetter {
    /// Schema version.
    #[serde(default = "first_version")]
    pub v: u32,
    /// The job.
    pub job_id: String,
    /// Its kind.
    pub kind: JobKind,
    /// Attempts made.
    pub attempts: u32,
    /// Why it gave up.
    pub error: String,
}

impl DeadLetter {
    /// A dead letter for `job_id`.
    pub fn new(
        job_id: impl Into<String>,
        kind: JobKind,
        attempts: u32,
        error: impl Into<String>,
    ) -> Self {
        Self {
            v: MESSAGE_VERSION,
            job_id: job_id.into(),
            kind,
            attempts,
            error: error.into(),
        }
    }
}

impl BusMessage for DeadLetter {
    const WHAT: &'static str = "dead letter";
    fn version(&self) -> u32 {
        self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_old_bodies_still_read() {
        let m = JobMessage::new("job-1");
        assert_eq!(JobMessage::decode(&m.encode()).unwrap(), m);
        // What producers before versioning wrote.
        let old = JobMessage::decode(br#"{"job_id":"job-2"}"#).unwrap();
        assert_eq!((old.v, old.job_id.as_str()), (1, "job-2"));
        let old = TrainingCompleted::decode(br#"{"job_id":"j","status":"completed","version":3}"#)
            .unwrap();
        assert_eq!(old.status, JobStatus::Completed);
        let e = TrainingCompleted::new("j", JobStatus::Failed, Some(2));
        let body: serde_json::Value = serde_json::from_slice(&e.encode()).unwrap();
        assert_eq!(body["status"], "failed");
        assert_eq!(body["version"], 2);
        let old = TrainingCompleted::decode(br#"{"job_id":"j","status":"completed","version":3}"#)
            .unwrap();
        assert_eq!(old.model_version, Some(3));
        assert_eq!(body["v"], 1);
        let d = DeadLetter::new("j", JobKind::TrainingLayer2, 3, "boom");
        let body: serde_json::Value = serde_json::from_slice(&d.encode()).unwrap();
        assert_eq!(body["kind"], "training_layer2");
    }

    #[test]
    fn newer_or_malformed_messages_are_refused_with_a_reason() {
        let e = JobMessage::decode(br#"{"v":2,"job_id":"j"}"#).unwrap_err();
        assert!(e.to_string().contains("schema version 2"), "{e}");
        let e = JobMessage::decode(br#"{"v":0,"job_id":"j"}"#).unwrap_err();
        assert!(matches!(e, MessageError::Version { version: 0, .. }));
        let e = JobMessage::decode(b"not json").unwrap_err();
        assert!(matches!(e, MessageError::Malformed { .. }), "{e}");
        let e = TrainingCompleted::decode(br#"{"job_id":"j","status":"exploded"}"#).unwrap_err();
        assert!(e.to_string().contains("training.completed"), "{e}");
    }
}
