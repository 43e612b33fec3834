//! Retrying object-store calls through short outages: exponential backoff
//! within a time budget, then one error that says how hard it tried.

use std::future::Future;
use std::time::{Duration, Instant};

use super::StorageError;

/// How long and how often to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Give up once this much time has passed since the first attempt.
    pub budget: Duration,
    /// Wait after the first failure; doubles after each further one.
    pub first_delay: Duration,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Retries for up to `budget`, waiting 250 ms, 500 ms, … up to 10 s between attempts.
    pub fn within(budget: Duration) -> Self {
        Self {
            budget,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// A call that kept failing until the budget ran out (or failed for good).
#[derive(Debug, thiserror::Error)]
#[error("{what} failed after {attempts} attempt{s} over {secs:.1} s: {last}", s = if *.attempts == 1 { "" } else { "s" })]
pub struct RetryError {
    /// What was attempted, e.g. `checkpoint upload`.
    pub what: String,
    /// Attempts made.
    pub attempts: u32,
    /// Seconds from the first attempt to giving up.
    pub secs: f64,
    /// The last attempt's error.
    pub last: StorageError,
}

impl StorageError {
    /// Whether trying again later may succeed (the backend or the network
    /// failed), as opposed to a request that is wrong in itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend(_) | Self::Io(_))
    }
}

/// Runs `op` until it succeeds, fails with a non-transient error, or the
/// policy's budget is spent. `op` must be safe to repeat (re-open the file it
/// uploads, clone the bytes it writes).
pub async fn retry<T, F, Fut>(policy: RetryPolicy, what: &str, mut op: F) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    let start = Instant::now();
    let mut delay = policy.first_delay;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match op().await {
            Ok(v) => {
                if attempts > 1 {
                    tracing::info!(what, attempts, "object store call succeeded after retrying");
                }
                return Ok(v);
            }
            Err(e) => e,
        };
        let elapsed = start.elapsed();
        if !err.is_transient() || elapsed >= policy.budget {
            return Err(RetryError {
                what: what.to_string(),
                attempts,
                secs: elapsed.as_secs_f64(),
                last: err,
            });
        }
        let wait = delay.min(policy.budget - elapsed);
        metrics::counter!(crate::metrics::names::STORAGE_RETRIES, "op" => what.to_string())
            .increment(1);
        tracing::warn!(what, attempt = attempts, error = %err, retry_in_ms = wait.as_millis() as u64, "object store call failed; retrying");
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(policy.max_delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(budget_ms: u64) -> RetryPolicy {
        RetryPolicy {
            budget: Duration::from_millis(budget_ms),
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let retried = || {
            crate::metrics::sample(
                &crate::metrics::render(),
                crate::metrics::names::STORAGE_RETRIES,
                &[("op", "unit-test put")],
            )
            .unwrap_or(0.0)
        };
        let before = retried();
        let calls = AtomicU32::new(0);
        let v = retry(fast(5_000), "unit-test put", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(StorageError::Backend("connection refused".into()))
            } else {
                Ok(7)
            }
        })
        .await
        .unwrap();
        assert_eq!((v, calls.load(Ordering::SeqCst)), (7, 4));
        // Three failed attempts, three retries counted for the operation.
        assert_eq!(retried() - before, 3.0);
    }

    #[tokio::test]
    async fn gives_up_after_the_budget_with_a_counting_message() {
        let e = retry(fast(30), "checkpoint upload", || async {
            Err::<(), _>(StorageError::Backend("connection refused".into()))
        })
        .await
        .unwrap_err();
        assert!(e.attempts > 2, "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "checkpoint upload failed after {} attempts over 0.0",
                e.attempts
            )),
            "{msg}"
        );
        assert!(msg.ends_with("connection refused"), "{msg}");
    }

    #[tokio::test]
    async fn does_not_retry_a_wrong_request() {
        let calls = AtomicU32::new(0);
        let e = retry(fast(5_000), "get", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(StorageError::NotFound {
                bucket: "b".into(),
                key: "k".into(),
            })
        })
        .await
        .unwrap_err();
        assert_eq!((e.attempts, calls.load(Ordering::SeqCst)), (1, 1));
        assert!(e.to_string().contains("after 1 attempt over"), "{e}");
    }
}
