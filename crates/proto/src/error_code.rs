//! The shared error-code vocabulary and its mapping to gRPC and HTTP.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes used in every API response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// Missing or wrong API key.
    Unauthenticated,
    /// Authenticated but not allowed.
    PermissionDenied,
    /// The named resource does not exist.
    NotFound,
    /// The resource already exists.
    AlreadyExists,
    /// The operation conflicts with the resource's current state.
    FailedPrecondition,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The upload's media type is not accepted.
    UnsupportedMediaType,
    /// Too many requests or a quota was hit.
    ResourceExhausted,
    /// The deadline passed before the operation finished.
    Timeout,
    /// A backend (database, bus, storage, another service) is unavailable.
    Unavailable,
    /// A bug or unexpected failure; details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// The snake_case string used in JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::FailedPrecondition => "failed_precondition",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ResourceExhausted => "resource_exhausted",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status for this code.
    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::PermissionDenied => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::AlreadyExists | Self::FailedPrecondition => S::CONFLICT,
            Self::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            Self::ResourceExhausted => S::TOO_MANY_REQUESTS,
            Self::Timeout => S::GATEWAY_TIMEOUT,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code for this code.
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code as C;
        match self {
            Self::InvalidArgument | Self::UnsupportedMediaType => C::InvalidArgument,
            Self::Unauthenticated => C::Unauthenticated,
            Self::PermissionDenied => C::PermissionDenied,
            Self::NotFound => C::NotFound,
            Self::AlreadyExists => C::AlreadyExists,
            Self::FailedPrecondition => C::FailedPrecondition,
            Self::PayloadTooLarge | Self::ResourceExhausted => C::ResourceExhausted,
            Self::Timeout => C::DeadlineExceeded,
            Self::Unavailable => C::Unavailable,
            Self::Internal => C::Internal,
        }
    }

    /// The code a gRPC status maps back to (used by the gateway for downstream errors).
    pub fn from_grpc(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::InvalidArgument | C::OutOfRange => Self::InvalidArgument,
            C::Unauthenticated => Self::Unauthenticated,
            C::PermissionDenied => Self::PermissionDenied,
            C::NotFound => Self::NotFound,
            C::AlreadyExists => Self::AlreadyExists,
            C::FailedPrecondition | C::Aborted => Self::FailedPrecondition,
            C::ResourceExhausted => Self::ResourceExhausted,
            C::DeadlineExceeded => Self::Timeout,
            C::Unavailable => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// Builds a `tonic::Status` with this code and a message.
    pub fn status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), message.into())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::ResourceExhausted,
        ErrorCode::Timeout,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    #[test]
    fn client_errors_are_4xx_and_server_errors_5xx() {
        for c in ALL {
            let s = c.http_status().as_u16();
            let server_side = matches!(
                c,
                ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::Timeout
            );
            assert_eq!(server_side, s >= 500, "{c}: {s}");
        }
    }

    #[test]
    fn grpc_round_trip_is_stable_where_lossless() {
        for c in ALL {
            let back = ErrorCode::from_grpc(c.grpc_code());
            assert_eq!(back.grpc_code(), c.grpc_code(), "{c}");
        }
        assert_eq!(
            ErrorCode::from_grpc(tonic::Code::InvalidArgument),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn json_names_are_snake_case() {
        for c in ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
