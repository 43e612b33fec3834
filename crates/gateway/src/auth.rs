//! API-key authentication for mutating routes.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use restoreflow_core::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// Header carrying the key (`Authorization: Bearer <key>` works too).
pub const API_KEY_HEADER: &str = "x-api-key";

/// Rejects POST/PUT/PATCH/DELETE requests without the configured key.
pub async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !mutating {
        return Ok(next.run(req).await);
    }
    let Some(expected) = state.settings.api_key.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "no API key is configured on this gateway; mutating routes are disabled",
        ));
    };
    let headers = req.headers();
    let given = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    match given {
        Some(k) if constant_time_eq(k.as_bytes(), expected.expose().as_bytes()) => {
            Ok(next.run(req).await)
        }
        Some(_) => Err(ApiError::new(ErrorCode::Unauthenticated, "invalid API key")),
        None => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "missing API key: send it in the X-API-Key header",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
