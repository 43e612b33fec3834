//! The object-store port: buckets and keys as the product defines them, with
//! an S3 adapter (MinIO, Garage, AWS) and a local-directory adapter.
//!
//! Bucket layout:
//! `training-data/{clean,degraded}/`, `models/{layer_1,layer_2}/`,
//! `training-outputs/{checkpoints,analysis,reports}/`, `synthetic-data/`, `evaluation/`.

mod local;
mod retry;
#[cfg(feature = "s3")]
mod s3;

use std::str::FromStr;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use restoreflow_proto::ErrorCode;
use serde::{Deserialize, Serialize};

pub use local::LocalStore;
pub use retry::{RetryError, RetryPolicy, retry};
#[cfg(feature = "s3")]
pub use s3::S3Store;

/// Longest accepted object key, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// A stream of object bytes.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Errors of the object-store port.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key is empty, too long, absolute or escapes its bucket.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not one of the product's buckets.
    #[error(
        "unknown bucket {0:?}; buckets are training-data, models, training-outputs, synthetic-data, evaluation"
    )]
    UnknownBucket(String),
    /// No such object.
    #[error("object {bucket}/{key} not found")]
    NotFound {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A streamed upload exceeded its limit; nothing was stored.
    #[error("object larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The upload stream itself failed.
    #[error("upload stream failed: {0}")]
    Body(String),
    /// The key cannot be stored next to the keys already there (the local
    /// store keeps `a/b` as a file in folder `a`, so `a` cannot also be an object).
    #[error("{0}")]
    Conflict(String),
    /// The backend failed.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// Local filesystem error.
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// The shared error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidKey { .. } | Self::UnknownBucket(_) | Self::Body(_) => {
                ErrorCode::InvalidArgument
            }
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Conflict(_) => ErrorCode::FailedPrecondition,
            Self::Backend(_) => ErrorCode::Unavailable,
            Self::Io(_) => ErrorCode::Internal,
        }
    }
}

/// The product's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bucket {
    /// `clean/` and `degraded/` training pairs with matching names.
    TrainingData,
    /// `layer_1/` and `layer_2/` versioned model weights.
    Models,
    /// `checkpoints/`, `analysis/` and `reports/` of training runs.
    TrainingOutputs,
    /// Dataset manifests and ground-truth text of generated pages.
    SyntheticData,
    /// Evaluation runs.
    Evaluation,
}

impl Bucket {
    /// Every bucket, created at startup.
    pub const ALL: [Bucket; 5] = [
        Bucket::TrainingData,
        Bucket::Models,
        Bucket::TrainingOutputs,
        Bucket::SyntheticData,
        Bucket::Evaluation,
    ];

    /// The bucket's product name.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::TrainingData => "training-data",
            Bucket::Models => "models",
            Bucket::TrainingOutputs => "training-outputs",
            Bucket::SyntheticData => "synthetic-data",
            Bucket::Evaluation => "evaluation",
        }
    }
}

impl FromStr for Bucket {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bucket::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| StorageError::UnknownBucket(s.to_string()))
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest segment of a key (between '/'), in bytes: the local store keeps
/// each segment as a file or directory name.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Checks that a key stays inside its bucket on every backend.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = |reason| {
        Err(StorageError::InvalidKey {
            key: key.chars().take(200).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("key is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("key must not start with '/'");
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return bad("key must not contain backslashes or control characters");
    }
    if key.split('/').any(|s| s == ".." || s == ".") {
        return bad("key must not contain '.' or '..' segments");
    }
    if key.split('/').any(str::is_empty) {
        return bad("key must not contain empty segments");
    }
    if key.split('/').any(|s| s.len() > MAX_SEGMENT_LEN) {
        return bad("a key segment (between '/') is longer than 255 bytes");
    }
    Ok(())
}

/// Checks a listing prefix: like a key, but may be empty or end with '/'.
pub fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(prefix.strip_suffix('/').unwrap_or(prefix))
}

/// Content type guessed from a key's extension (used when none was recorded).
pub fn content_type_for(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("json") => "application/json",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// What a listing or `head` knows about an object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Key within its bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type, when known.
    pub content_type: Option<String>,
    /// Last modification time, when known.
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct ObjectPage {
    /// Objects in key order.
    pub objects: Vec<ObjectMeta>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_token: Option<String>,
}

/// An object's metadata and a stream of its bytes.
pub struct ObjectBody {
    /// Metadata.
    pub meta: ObjectMeta,
    /// The bytes, streamed.
    pub stream: ByteStream,
}

/// The object-store port.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// `"s3"` or `"local"`.
    fn backend(&self) -> &'static str;
    /// Creates every bucket if missing (private); idempotent.
    async fn ensure_buckets(&self) -> Result<(), StorageError>;
    /// Checks the backend is reachable and the buckets exist.
    async fn health(&self) -> Result<(), StorageError>;
    /// Stores a small object held in memory.
    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StorageError>;
    /// Stores a stream of any size without holding it in memory (multipart on
    /// S3). If `max_bytes` is exceeded or the stream fails, nothing is stored.
    async fn put_stream(
        &self,
        bucket: Bucket,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: Option<u64>,
    ) -> Result<ObjectMeta, StorageError>;
    /// Streams an object.
    async fn get(&self, bucket: Bucket, key: &str) -> Result<ObjectBody, StorageError>;
    /// Metadata of an object, `None` if absent.
    async fn head(&self, bucket: Bucket, key: &str) -> Result<Option<ObjectMeta>, StorageError>;
    /// One page of keys under `prefix`, in key order, at most `limit` (1..=1000).
    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        token: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, StorageError>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), StorageError>;
    /// A time-limited URL anyone can GET the object from, or `None` when the
    /// backend cannot make one (the local store). Checks that the object exists.
    async fn presign_get(
        &self,
        bucket: Bucket,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, StorageError>;
}

/// What [`copy_hashed`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct CopiedObject {
    /// Metadata of the new object.
    pub meta: ObjectMeta,
    /// sha256 (hex) of the bytes copied.
    pub sha256: String,
    /// Number of bytes copied.
    pub size: u64,
}

/// Copies an object of any size by streaming it through this process, computing
/// its sha256 on the way (never holding the whole object in memory). Works the
/// same on every adapter; a server-side copy could not report the hash.
#[tracing::instrument(skip(store), err)]
pub async fn copy_hashed(
    store: &dyn ObjectStore,
    from: (Bucket, &str),
    to: (Bucket, &str),
    content_type: &str,
) -> Result<CopiedObject, StorageError> {
    use sha2::Digest;
    use std::sync::{Arc, Mutex};
    let src = store.get(from.0, from.1).await?;
    // The hasher is shared with the stream the store consumes; the store drops
    // the stream before `put_stream` returns, so the lock is never contended.
    let state = Arc::new(Mutex::new((sha2::Sha256::new(), 0u64)));
    let tap = state.clone();
    let stream = src
        .stream
        .inspect(move |chunk| {
            if let Ok(bytes) = chunk
                && let Ok(mut s) = tap.lock()
            {
                s.0.update(bytes);
                s.1 += bytes.len() as u64;
            }
        })
        .boxed();
    let meta = store
        .put_stream(to.0, to.1, stream, content_type, None)
        .await?;
    let (hasher, size) = {
        let mut guard = state
            .lock()
            .map_err(|_| StorageError::Backend("hash state poisoned".into()))?;
        std::mem::replace(&mut *guard, (sha2::Sha256::new(), 0))
    };
    Ok(CopiedObject {
        meta,
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

/// Reads a whole object into memory, refusing objects above `max_bytes`.
pub async fn get_bytes(
    store: &dyn ObjectStore,
    bucket: Bucket,
    key: &str,
    max_bytes: u64,
) -> Result<Bytes, StorageError> {
    let mut body = store.get(bucket, key).await?;
    if body.meta.size > max_bytes {
        return Err(StorageError::TooLarge { limit: max_bytes });
    }
    let mut out = Vec::with_capacity(body.meta.size as usize);
    while let Some(chunk) = body.stream.next().await {
        let chunk = chunk.map_err(|e| StorageError::Backend(e.to_string()))?;
        if (out.len() + chunk.len()) as u64 > max_bytes {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// Lists every object under `prefix`, following continuation tokens to the end.
pub async fn list_all(
    store: &dyn ObjectStore,
    bucket: Bucket,
    prefix: &str,
) -> Result<Vec<ObjectMeta>, StorageError> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list(bucket, prefix, token.as_deref(), 1000).await?;
        all.extend(page.objects);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

/// Wraps an in-memory value as a one-chunk [`ByteStream`].
pub fn stream_from_bytes(bytes: Bytes) -> ByteStream {
    futures::stream::once(async move { Ok(bytes) }).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_their_bucket() {
        for bad in [
            "", "/abs", "a/../b", "..", "../x", "a/./b", "a//b", "a\\b", "a/\u{0}b", "a/",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_key(&"k".repeat(1025)).is_err());
        for good in [
            "clean/p_00001.png",
            "a",
            "models/layer_2/x.safetensors",
            "a..b/c",
        ] {
            assert!(validate_key(good).is_ok(), "{good:?} rejected");
        }
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("clean/").is_ok());
        assert!(validate_prefix("../").is_err());
    }

    #[tokio::test]
    async fn copy_hashed_streams_and_hashes() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "");
        store.ensure_buckets().await.unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        store
            .put(
                Bucket::TrainingOutputs,
                "checkpoints/a.safetensors",
                Bytes::from(data.clone()),
                "application/octet-stream",
            )
            .await
            .unwrap();
        let copied = copy_hashed(
            &store,
            (Bucket::TrainingOutputs, "checkpoints/a.safetensors"),
            (Bucket::Models, "layer_2/b.safetensors"),
            "application/octet-stream",
        )
        .await
        .unwrap();
        assert_eq!(copied.size, data.len() as u64);
        assert_eq!(copied.sha256, hex::encode(sha2::Sha256::digest(&data)));
        let back = get_bytes(&store, Bucket::Models, "layer_2/b.safetensors", 1 << 20)
            .await
            .unwrap();
        assert_eq!(&back[..], &data[..]);
        let missing = copy_hashed(
            &store,
            (Bucket::TrainingOutputs, "checkpoints/none"),
            (Bucket::Models, "layer_2/c"),
            "application/octet-stream",
        )
        .await
        .unwrap_err();
        assert_eq!(missing.code(), ErrorCode::NotFound);
        assert_eq!(
            store
                .presign_get(
                    Bucket::Models,
                    "layer_2/b.safetensors",
                    std::time::Duration::from_secs(60)
                )
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn buckets_parse_by_product_name() {
        for b in Bucket::ALL {
            assert_eq!(b.name().parse::<Bucket>().unwrap(), b);
        }
        let err = "secrets".parse::<Bucket>().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }
}
