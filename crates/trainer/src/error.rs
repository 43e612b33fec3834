//! The trainer's error type: a message and the shared [`ErrorCode`] it
//! answers with over gRPC (and the gateway over HTTP).

use restoreflow_proto::ErrorCode;

/// What went wrong, and whose fault it is (the code).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TrainerError {
    /// The shared code: InvalidArgument for the caller's input,
    /// FailedPrecondition for the system's state, Unavailable for a backend,
    /// Internal for ours.
    pub code: ErrorCode,
    /// What to tell the caller.
    pub message: String,
}

impl TrainerError {
    /// An error with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The caller's input is wrong (an undecodable image, a bad name).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// A backend (object store, registry) failed or is out of reach.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A failure of ours (a model that does not run, a thread that died).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The same error with `context: ` in front of the message.
    pub fn context(self, context: impl std::fmt::Display) -> Self {
        Self {
            code: self.code,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl From<String> for TrainerError {
    /// A failure described only by text is ours (Internal).
    fn from(message: String) -> Self {
        Self::internal(message)
    }
}

impl From<TrainerError> for tonic::Status {
    fn from(e: TrainerError) -> Self {
        e.code.status(e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_code_through_context_and_into_grpc() {
        let e = TrainerError::invalid("not an image").context("page 3");
        assert_eq!(e.to_string(), "page 3: not an image");
        let s: tonic::Status = e.into();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "page 3: not an image");
        let s: tonic::Status = TrainerError::unavailable("store down").into();
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(
            tonic::Status::from(TrainerError::internal("boom")).code(),
            tonic::Code::Internal
        );
    }
}
