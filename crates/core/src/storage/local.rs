//! Local-directory adapter: `{root}/{prefix}{bucket}/{key}`. Writes go to a
//! temporary file first and are renamed into place, so a failed or oversized
//! upload never leaves a partial object behind.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{
    Bucket, ByteStream, ObjectBody, ObjectMeta, ObjectPage, ObjectStore, StorageError,
    content_type_for, validate_key, validate_prefix,
};

const TMP_DIR: &str = ".tmp";

/// Objects as files under a root directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    prefix: String,
}

impl LocalStore {
    /// A store rooted at `root`, with `prefix` prepended to bucket directory names.
    pub fn new(root: impl Into<PathBuf>, prefix: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            prefix: prefix.into(),
        }
    }

    fn bucket_dir(&self, bucket: Bucket) -> PathBuf {
        self.root.join(format!("{}{}", self.prefix, bucket.name()))
    }

    fn path(&self, bucket: Bucket, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        Ok(self.bucket_dir(bucket).join(key))
    }

    fn meta(key: &str, md: &std::fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: md.len(),
            content_type: Some(content_type_for(key).to_string()),
            last_modified: md.modified().ok().map(DateTime::<Utc>::from),
        }
    }

    async fn commit(&self, tmp: &Path, dest: &Path, key: &str) -> Result<(), StorageError> {
        let clash = || {
            StorageError::Conflict(format!(
                "key {key:?} clashes with a stored key: the local store cannot hold both \
                 `a` and `a/...`"
            ))
        };
        if tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir()) {
            return Err(clash());
        }
        if let Some(parent) = dest.parent() {
            match tokio::fs::create_dir_all(parent).await {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists
                    ) =>
                {
                    return Err(clash());
                }
                Err(e) => return Err(e.into()),
            }
        }
        tokio::fs::rename(tmp, dest).await?;
        Ok(())
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// Every file under `dir`, as `/`-separated keys relative to `dir`, sorted.
fn walk(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file()
                && let Ok(rel) = entry.path().strip_prefix(dir)
            {
                let key: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                keys.push(key.join("/"));
            }
        }
    }
    keys.sort();
    Ok(keys)
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn ensure_buckets(&self) -> Result<(), StorageError> {
        for b in Bucket::ALL {
            tokio::fs::create_dir_all(self.bucket_dir(b)).await?;
        }
        tokio::fs::create_dir_all(self.root.join(TMP_DIR)).await?;
        Ok(())
    }

    async fn health(&self) -> Result<(), StorageError> {
        for b in Bucket::ALL {
            let md = tokio::fs::metadata(self.bucket_dir(b)).await.map_err(|e| {
                StorageError::Backend(format!("bucket directory {b} unavailable: {e}"))
            })?;
            if !md.is_dir() {
                return Err(StorageError::Backend(format!("{b} is not a directory")));
            }
        }
        Ok(())
    }

    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StorageError> {
        self.put_stream(
            bucket,
            key,
            super::stream_from_bytes(body),
            content_type,
            None,
        )
        .await
    }

    async fn put_stream(
        &self,
        bucket: Bucket,
        key: &str,
        mut body: ByteStream,
        _content_type: &str,
        max_bytes: Option<u64>,
    ) -> Result<ObjectMeta, StorageError> {
        let dest = self.path(bucket, key)?;
        let tmp = self.tmp_path();
        if let Some(parent) = tmp.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut written: u64 = 0;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StorageError::Body(e.to_string()))?;
                written += chunk.len() as u64;
                if let Some(limit) = max_bytes
                    && written > limit
                {
                    return Err(StorageError::TooLarge { limit });
                }
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok::<_, StorageError>(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        if let Err(e) = self.commit(&tmp, &dest, key).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let md = tokio::fs::metadata(&dest).await?;
        Ok(Self::meta(key, &md))
    }

    async fn get(&self, bucket: Bucket, key: &str) -> Result<ObjectBody, StorageError> {
        let path = self.path(bucket, key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let md = file.metadata().await?;
        if !md.is_file() {
            return Err(StorageError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        Ok(ObjectBody {
            meta: Self::meta(key, &md),
            stream: tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).boxed(),
        })
    }

    async fn head(&self, bucket: Bucket, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path(bucket, key)?;
        match tokio::fs::metadata(&path).await {
            Ok(md) if md.is_file() => Ok(Some(Self::meta(key, &md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        token: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, StorageError> {
        validate_prefix(prefix)?;
        let limit = limit.clamp(1, 1000) as usize;
        let dir = self.bucket_dir(bucket);
        let prefix = prefix.to_string();
        let token = token.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let keys = walk(&dir)?;
            let mut objects = Vec::new();
            let mut next_token = None;
            let candidates = keys
                .into_iter()
                .filter(|k| k.starts_with(&prefix))
                .filter(|k| token.as_deref().is_none_or(|t| k.as_str() > t));
            for key in candidates {
                if objects.len() == limit {
                    next_token = objects.last().map(|m: &ObjectMeta| m.key.clone());
                    break;
                }
                if let Ok(md) = std::fs::metadata(dir.join(&key)) {
                    objects.push(Self::meta(&key, &md));
                }
            }
            Ok(ObjectPage {
                objects,
                next_token,
            })
        })
        .await
        .map_err(|e| StorageError::Backend(e.to_string()))?
    }

    async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), StorageError> {
        let path = self.path(bucket, key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A directory cannot hand out URLs; callers stream the object instead.
    async fn presign_get(
        &self,
        _bucket: Bucket,
        key: &str,
        _ttl: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        validate_key(key)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{get_bytes, list_all};
    use restoreflow_proto::ErrorCode;

    #[tokio::test]
    async fn a_key_and_a_folder_of_the_same_name_conflict_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "t-");
        store.ensure_buckets().await.unwrap();
        let put = |key: &'static str| {
            store.put(
                Bucket::TrainingData,
                key,
                Bytes::from_static(b"x"),
                "text/plain",
            )
        };
        put("a/b").await.unwrap();
        let err = put("a").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::FailedPrecondition, "{err}");
        put("c").await.unwrap();
        let err = put("c/d").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::FailedPrecondition, "{err}");
        // What was there is still there.
        assert_eq!(
            get_bytes(&store, Bucket::TrainingData, "a/b", 1024)
                .await
                .unwrap(),
            "x"
        );
        assert_eq!(
            get_bytes(&store, Bucket::TrainingData, "c", 1024)
                .await
                .unwrap(),
            "x"
        );
        // A folder is not an object.
        let err = store.get(Bucket::TrainingData, "a").await.err().unwrap();
        assert_eq!(err.code(), ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn round_trip_list_pages_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "t-");
        store.ensure_buckets().await.unwrap();
        store.health().await.unwrap();
        for i in 0..25 {
            store
                .put(
                    Bucket::TrainingData,
                    &format!("clean/{i:03}.png"),
                    Bytes::from(vec![i as u8; 10]),
                    "image/png",
                )
                .await
                .unwrap();
        }
        store
            .put(
                Bucket::TrainingData,
                "degraded/000.png",
                Bytes::from_static(b"x"),
                "image/png",
            )
            .await
            .unwrap();
        let first = store
            .list(Bucket::TrainingData, "clean/", None, 10)
            .await
            .unwrap();
        assert_eq!(first.objects.len(), 10);
        assert_eq!(first.objects[0].key, "clean/000.png");
        let second = store
            .list(
                Bucket::TrainingData,
                "clean/",
                first.next_token.as_deref(),
                10,
            )
            .await
            .unwrap();
        assert_eq!(second.objects[0].key, "clean/010.png");
        assert_eq!(
            list_all(&store, Bucket::TrainingData, "clean/")
                .await
                .unwrap()
                .len(),
            25
        );
        let got = get_bytes(&store, Bucket::TrainingData, "clean/007.png", 100)
            .await
            .unwrap();
        assert_eq!(&got[..], &[7u8; 10]);
        store
            .delete(Bucket::TrainingData, "clean/007.png")
            .await
            .unwrap();
        assert!(
            store
                .head(Bucket::TrainingData, "clean/007.png")
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.get(Bucket::TrainingData, "clean/007.png").await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn oversized_stream_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "");
        store.ensure_buckets().await.unwrap();
        let chunks =
            futures::stream::iter((0..10).map(|_| Ok(Bytes::from(vec![0u8; 100])))).boxed();
        let err = store
            .put_stream(
                Bucket::Evaluation,
                "big.bin",
                chunks,
                "application/octet-stream",
                Some(500),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { limit: 500 }));
        assert!(
            store
                .head(Bucket::Evaluation, "big.bin")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            list_all(&store, Bucket::Evaluation, "")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn traversal_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "");
        store.ensure_buckets().await.unwrap();
        let err = store
            .put(
                Bucket::Models,
                "../escape.txt",
                Bytes::from_static(b"x"),
                "text/plain",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidKey { .. }));
        assert!(!dir.path().join("escape.txt").exists());
    }
}
