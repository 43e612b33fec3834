//! API-key authentication and scopes for every route.
//!
//! Every request needs a key, reads included, except GET/HEAD on the routes
//! listed in `gateway.public_read` (by default the probes and the API
//! documentation). A `read` key may GET and HEAD everything (listings, files,
//! model downloads and presigned URLs, reports); anything else needs an
//! `admin` key. Keys are compared by their SHA-256, the only form the
//! gateway keeps.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use restoreflow_core::ErrorCode;
use restoreflow_core::config::GatewaySettings;
use restoreflow_core::config::keys::{KeyEntry, KeyScope, hash_key};

use crate::error::ApiError;
use crate::state::AppState;

/// The name of the key a request was authenticated with (a request
/// extension; empty on public routes).
#[derive(Clone, Debug)]
pub struct KeyName(pub String);

/// Header carrying the key (`Authorization: Bearer <key>` works too).
pub const API_KEY_HEADER: &str = "x-api-key";

/// The keys this gateway accepts and the routes open without one.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<KeyEntry>,
    public: Vec<String>,
}

impl KeyRing {
    /// The keys of `gateway.api_key` (admin) and `gateway.api_keys`, and the
    /// public routes; the settings were validated at load.
    pub fn from_settings(gw: &GatewaySettings) -> Result<Self, String> {
        let mut keys = Vec::new();
        if let Some(k) = &gw.api_key {
            keys.push(KeyEntry {
                scope: KeyScope::Admin,
                name: "gateway.api_key".into(),
                sha256: hash_key(k.expose()),
            });
        }
        for entry in &gw.api_keys {
            keys.push(KeyEntry::parse(entry).map_err(|e| format!("gateway.api_keys: {e}"))?);
        }
        Ok(Self {
            keys,
            public: gw.public_read.clone(),
        })
    }

    /// Whether `path` answers GET without a key (`/docs` covers its assets).
    fn is_public(&self, path: &str) -> bool {
        self.public.iter().any(|p| {
            path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// The entry a presented key matches. Every entry is compared, in
    /// constant time, whatever matched first.
    fn find(&self, given: &str) -> Option<&KeyEntry> {
        let h = hash_key(given);
        let mut found = None;
        for k in &self.keys {
            if constant_time_eq(&h, &k.sha256) && found.is_none() {
                found = Some(k);
            }
        }
        found
    }
}

/// Which scope a request needs.
fn needed(method: &Method) -> KeyScope {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        KeyScope::Read
    } else {
        KeyScope::Admin
    }
}

/// Refuses requests without a key of the needed scope: 401 without a valid
/// key, 403 with a read-only key on a route that changes something.
pub async fn require_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let scope = needed(req.method());
    let ring = &state.keys;
    if scope == KeyScope::Read && ring.is_public(req.uri().path()) {
        return Ok(next.run(req).await);
    }
    if ring.keys.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "no API key is configured on this gateway; only its public routes answer",
        ));
    }
    let headers = req.headers();
    let given = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(given) = given else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "missing API key: send it in the X-API-Key header",
        ));
    };
    let Some(key) = ring.find(given) else {
        return Err(ApiError::new(ErrorCode::Unauthenticated, "invalid API key"));
    };
    if key.scope < scope {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "the key {:?} is {}-only; {} {} needs an admin key",
                key.name,
                key.scope.as_str(),
                req.method(),
                req.uri().path()
            ),
        ));
    }
    tracing::debug!(key = %key.name, "authenticated");
    let name = KeyName(key.name.clone());
    req.extensions_mut().insert(name);
    Ok(next.run(req).await)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use restoreflow_core::config::Secret;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn keys_are_found_by_hash_with_their_scope() {
        let reader = KeyEntry {
            scope: KeyScope::Read,
            name: "grafana".into(),
            sha256: hash_key("read-only-key-for-grafana"),
        };
        let gw = GatewaySettings {
            api_key: Some(Secret::new("the-admin-key-of-up")),
            api_keys: vec![reader.to_config()],
            ..GatewaySettings::default()
        };
        let ring = KeyRing::from_settings(&gw).unwrap();
        assert_eq!(
            ring.find("the-admin-key-of-up").unwrap().scope,
            KeyScope::Admin
        );
        assert_eq!(
            ring.find("read-only-key-for-grafana").unwrap().name,
            "grafana"
        );
        assert!(ring.find("read-only-key-for-grafan").is_none());
        assert!(ring.find("").is_none());
        assert!(ring.is_public("/health") && ring.is_public("/docs/index.html"));
        assert!(!ring.is_public("/docsx") && !ring.is_public("/files/models/x"));
        assert!(!ring.is_public("/metrics"), "not public by default");
        assert_eq!(needed(&Method::GET), KeyScope::Read);
        assert_eq!(needed(&Method::DELETE), KeyScope::Admin);
        assert!(KeyScope::Read < KeyScope::Admin);
    }
}
