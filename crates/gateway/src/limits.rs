//! Per-key rate and concurrency limits on the expensive routes.
//!
//! Restoring, generating, training and evaluating cost CPU (or GPU) time.
//! Each key gets, per kind of work, a token bucket of
//! `gateway.rate_per_minute` requests (refilled evenly over the minute) and
//! at most `gateway.max_concurrent` requests in flight. A request over either
//! limit is answered 429 `resource_exhausted` with `Retry-After` (seconds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use restoreflow_core::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::KeyName;
use crate::error::ApiError;
use crate::state::AppState;

/// The kinds of expensive work, each limited on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// `/restore/document`, `/restore/batch`.
    Restore,
    /// `/synthetic/generate`, `/synthetic/degrade`.
    Generate,
    /// `/training/layer2/start`.
    Train,
    /// `/evaluation/run`, `/training/layer1/evaluate`.
    Evaluate,
}

impl Work {
    /// The kind of work a request asks for, if it is an expensive one.
    pub fn of(method: &Method, path: &str) -> Option<Self> {
        if method != Method::POST {
            return None;
        }
        match path {
            "/restore/document" | "/restore/batch" => Some(Self::Restore),
            "/synthetic/generate" | "/synthetic/degrade" => Some(Self::Generate),
            "/training/layer2/start" => Some(Self::Train),
            "/evaluation/run" | "/training/layer1/evaluate" => Some(Self::Evaluate),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Restore => "restore",
            Self::Generate => "generate",
            Self::Train => "train",
            Self::Evaluate => "evaluate",
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
    running: Arc<Semaphore>,
}

/// The buckets and in-flight counts of every (key, work) pair.
pub struct Limiter {
    per_minute: u32,
    max_concurrent: u32,
    buckets: Mutex<HashMap<(String, Work), Bucket>>,
}

/// Why a request was turned away, and when to try again (seconds).
#[derive(Debug, PartialEq)]
pub struct Refused {
    /// Seconds until the request would be admitted (at least 1).
    pub retry_after: u64,
    /// What was exceeded.
    pub reason: String,
}

impl Limiter {
    /// Limits of `per_minute` requests and `max_concurrent` in flight per key
    /// and kind of work; 0 turns a limit off.
    pub fn new(per_minute: u32, max_concurrent: u32) -> Self {
        Self {
            per_minute,
            max_concurrent,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `work` for `key` at `now`, or says when to retry.
    /// The permit is held while the request runs.
    pub fn admit(
        &self,
        key: &str,
        work: Work,
        now: Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, Refused> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = f64::from(self.per_minute);
        let bucket = buckets
            .entry((key.to_string(), work))
            .or_insert_with(|| Bucket {
                tokens: capacity,
                at: now,
                running: Arc::new(Semaphore::new(self.max_concurrent.max(1) as usize)),
            });
        if self.per_minute > 0 {
            let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * capacity / 60.0;
            bucket.tokens = (bucket.tokens + refill).min(capacity);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let wait = (1.0 - bucket.tokens) * 60.0 / capacity;
                return Err(Refused {
                    retry_after: wait.ceil().max(1.0) as u64,
                    reason: format!(
                        "rate limit: at most {} {} requests a minute per key",
                        self.per_minute,
                        work.name()
                    ),
                });
            }
        }
        let permit = if self.max_concurrent > 0 {
            Some(
                bucket
                    .running
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| Refused {
                        retry_after: 1,
                        reason: format!(
                            "concurrency limit: at most {} {} requests in flight per key",
                            self.max_concurrent,
                            work.name()
                        ),
                    })?,
            )
        } else {
            None
        };
        if self.per_minute > 0 {
            bucket.tokens -= 1.0;
        }
        Ok(permit)
    }
}

/// Applies the limits to the expensive routes (after authentication, which
/// names the key).
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(work) = Work::of(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let key = req
        .extensions()
        .get::<KeyName>()
        .map(|k| k.0.clone())
        .unwrap_or_default();
    match state.limiter.admit(&key, work, Instant::now()) {
        Ok(permit) => {
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        Err(refused) => {
            let mut resp = ApiError::new(ErrorCode::ResourceExhausted, refused.reason)
                .with_details(serde_json::json!({"retry_after_seconds": refused.retry_after}))
                .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(refused.retry_after));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_refills_over_the_minute() {
        let l = Limiter::new(3, 0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.admit("a", Work::Train, t0).is_ok());
        }
        let refused = l.admit("a", Work::Train, t0).unwrap_err();
        assert_eq!(refused.retry_after, 20, "one token every 20 s");
        assert!(refused.reason.contains("3 train requests a minute"));
        // Another key and another kind of work have their own buckets.
        assert!(l.admit("b", Work::Train, t0).is_ok());
        assert!(l.admit("a", Work::Restore, t0).is_ok());
        // 20 s later one more is admitted, not two.
        let t1 = t0 + Duration::from_secs(20);
        assert!(l.admit("a", Work::Train, t1).is_ok());
        assert!(l.admit("a", Work::Train, t1).is_err());
    }

    #[test]
    fn requests_in_flight_are_bounded() {
        let l = Limiter::new(0, 2);
        let t = Instant::now();
        let p1 = l.admit("a", Work::Restore, t).unwrap();
        let _p2 = l.admit("a", Work::Restore, t).unwrap();
        let refused = l.admit("a", Work::Restore, t).unwrap_err();
        assert_eq!(refused.retry_after, 1);
        assert!(refused.reason.contains("2 restore requests in flight"));
        drop(p1);
        assert!(l.admit("a", Work::Restore, t).is_ok());
    }

    #[test]
    fn only_expensive_posts_are_limited() {
        assert_eq!(
            Work::of(&Method::POST, "/restore/document"),
            Some(Work::Restore)
        );
        assert_eq!(Work::of(&Method::GET, "/restore/document"), None);
        assert_eq!(Work::of(&Method::POST, "/jobs/x/cancel"), None);
        assert_eq!(
            Work::of(&Method::POST, "/training/layer1/evaluate"),
            Some(Work::Evaluate)
        );
    }
}
