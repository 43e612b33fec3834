//! One JSON error shape for every failure: `{"error": {"code", "message", "details"}}`.

use axum::extract::multipart::MultipartError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use restoreflow_core::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

/// An API error; converts into the JSON error shape.
#[derive(Debug)]
pub struct ApiError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message (never internals for 5xx).
    pub message: String,
    /// Optional structured details.
    pub details: Option<serde_json::Value>,
}

/// The error body, as documented in the OpenAPI spec.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorInner,
}

/// Fields of an error.
#[derive(Serialize, ToSchema)]
pub struct ErrorInner {
    /// Stable code such as `invalid_argument` or `not_found`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Structured details, when any.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A 400.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// Adds details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A 5xx whose cause is logged but not returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.http_status();
        let body = ErrorBody {
            error: ErrorInner {
                code: self.code.as_str().to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(self.code);
        resp
    }
}

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidArgument,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::new(code_for_status(r.status()), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(code_for_status(r.status()), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(code_for_status(r.status()), r.body_text())
    }
}

impl From<MultipartError> for ApiError {
    fn from(r: MultipartError) -> Self {
        Self::new(code_for_status(r.status()), r.body_text())
    }
}

impl From<axum::extract::multipart::MultipartRejection> for ApiError {
    fn from(r: axum::extract::multipart::MultipartRejection) -> Self {
        Self::new(code_for_status(r.status()), r.body_text())
    }
}

impl From<restoreflow_core::storage::StorageError> for ApiError {
    fn from(e: restoreflow_core::storage::StorageError) -> Self {
        match e.code() {
            ErrorCode::Internal => Self::internal(e),
            ErrorCode::Unavailable => {
                tracing::error!(error = %e, "storage unavailable");
                Self::new(ErrorCode::Unavailable, "object storage is unavailable")
            }
            code => Self::new(code, e.to_string()),
        }
    }
}

impl From<restoreflow_core::db::DbError> for ApiError {
    fn from(e: restoreflow_core::db::DbError) -> Self {
        match e.code() {
            ErrorCode::Internal => Self::internal(e),
            ErrorCode::Unavailable => {
                tracing::error!(error = %e, "database unavailable");
                Self::new(ErrorCode::Unavailable, "database is unavailable")
            }
            code => Self::new(code, e.to_string()),
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        // The gateway cancels a call only at its deadline (`grpc.timeout_secs`;
        // tonic reports it as CANCELLED): the service did not answer in time.
        if s.code() == tonic::Code::Cancelled {
            tracing::error!(status = %s, "downstream service did not answer in time");
            return Self::new(
                ErrorCode::Timeout,
                "a backend service did not answer in time",
            );
        }
        match ErrorCode::from_grpc(s.code()) {
            ErrorCode::Internal => Self::internal(format!("downstream: {s}")),
            ErrorCode::Unavailable => {
                tracing::error!(status = %s, "downstream service unavailable");
                Self::new(ErrorCode::Unavailable, "a backend service is unavailable")
            }
            code => Self::new(code, s.message().to_string()),
        }
    }
}

/// `Json<T>` whose rejections use the shared error shape. A number with no
/// fraction (`242.0`) is an integer, as JSON Schema counts it, so integer
/// fields take it.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(mut value) =
            axum::Json::<serde_json::Value>::from_request(req, state).await?;
        integral_floats_to_integers(&mut value);
        from_json_value(value).map(ApiJson)
    }
}

/// `T` from a JSON value; the error names the field at fault.
pub fn from_json_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::invalid(format!("invalid JSON body: {path}: {inner}"))
        }
    })
}

/// Turns every float with no fraction (within the 64-bit integers) into an
/// integer, in place.
pub fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
            {
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *value = Value::from(f as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// `Query<T>` whose rejections use the shared error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` whose rejections use the shared error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Refuses an empty string where a name is expected: the gRPC messages read
/// an empty string as "absent", so `""` would silently mean the default.
pub fn no_empty_names(fields: &[(&str, Option<&str>)]) -> Result<(), ApiError> {
    match fields.iter().find(|(_, v)| *v == Some("")) {
        Some((name, _)) => Err(ApiError::invalid(format!(
            "{name} is empty; leave it out for the default"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integral_floats_become_integers_and_others_stay() {
        let mut v =
            json!({"a": 242.0, "b": [1.0, 2.5, -3.0], "c": {"d": 0.0}, "e": "1.0", "f": 1e30});
        integral_floats_to_integers(&mut v);
        assert_eq!(v["a"], json!(242));
        assert!(v["a"].is_u64());
        assert_eq!(v["b"], json!([1, 2.5, -3]));
        assert!(v["c"]["d"].is_u64());
        assert_eq!(v["e"], "1.0");
        // Past the 64-bit integers: left as it is (an integer field refuses it).
        assert!(v["f"].is_f64());
    }

    #[test]
    fn empty_names_are_refused_by_name() {
        assert!(no_empty_names(&[("a", None), ("b", Some("x"))]).is_ok());
        let e = no_empty_names(&[("a", None), ("schedule", Some(""))]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("schedule"), "{}", e.message);
    }

    #[test]
    fn a_call_past_its_deadline_is_a_timeout_not_an_internal_error() {
        let e = ApiError::from(tonic::Status::cancelled("Timeout expired"));
        assert_eq!(e.code, ErrorCode::Timeout);
        assert_eq!(e.code.http_status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
