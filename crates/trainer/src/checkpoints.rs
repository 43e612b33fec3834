//! Checkpoints in the object store: `training-outputs/checkpoints/{job_id}/{dir}/`
//! where `dir` is the engine's `epoch-NNNN` (after each epoch) or
//! `step-NNNNNNNN` (on cancellation or shutdown).

use std::path::Path;

use futures::StreamExt;
use restoreflow_core::storage::{
    Bucket, ObjectStore, RetryError, RetryPolicy, StorageError, get_bytes, list_all, retry,
};
use restoreflow_training::{Checkpoint, CheckpointMeta, META_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};
use tokio::io::AsyncWriteExt;

/// Files of a checkpoint in upload order: the sidecar last, so its presence
/// marks a complete checkpoint in the store too.
pub const FILES: [&str; 3] = [WEIGHTS_FILE, OPTIMIZER_FILE, META_FILE];

/// Key prefix of a job's checkpoints (with a trailing `/`).
pub fn job_prefix(job_id: &str) -> String {
    format!("checkpoints/{job_id}/")
}

/// Key prefix of one checkpoint directory (with a trailing `/`).
pub fn dir_prefix(job_id: &str, dir: &str) -> String {
    format!("checkpoints/{job_id}/{dir}/")
}

/// Name of the epoch checkpoint directory the engine writes.
pub fn epoch_dir(epoch: usize) -> String {
    format!("epoch-{epoch:04}")
}

/// Directory names under a job's prefix that hold every checkpoint file.
pub fn complete_dirs<'a>(job_id: &str, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let prefix = job_prefix(job_id);
    let mut files: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for key in keys {
        if let Some((dir, file)) = key.strip_prefix(&prefix).and_then(|r| r.split_once('/')) {
            files.entry(dir).or_default().push(file);
        }
    }
    files
        .into_iter()
        .filter(|(_, f)| FILES.iter().all(|want| f.contains(want)))
        .map(|(d, _)| d.to_string())
        .collect()
}

/// Uploads a checkpoint directory written by the engine, streaming each file.
/// Each file is retried under `policy` (re-read from disk every attempt), so
/// an object-store outage shorter than the budget only delays training.
pub async fn upload(
    store: &dyn ObjectStore,
    job_id: &str,
    ck: &Checkpoint,
    policy: RetryPolicy,
) -> Result<String, RetryError> {
    let dir = ck
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| epoch_dir(ck.meta.epoch));
    let prefix = dir_prefix(job_id, &dir);
    for file in FILES {
        let ct = if file.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        let key = format!("{prefix}{file}");
        let path = ck.dir.join(file);
        retry(policy, "checkpoint upload", || async {
            let f = tokio::fs::File::open(&path).await?;
            let stream = tokio_util::io::ReaderStream::new(f).boxed();
            store
                .put_stream(Bucket::TrainingOutputs, &key, stream, ct, None)
                .await
        })
        .await?;
    }
    Ok(prefix)
}

/// Downloads an object to a file, streaming.
pub async fn download_to(
    store: &dyn ObjectStore,
    bucket: Bucket,
    key: &str,
    path: &Path,
) -> Result<(), StorageError> {
    let mut body = store.get(bucket, key).await?;
    let mut f = tokio::fs::File::create(path).await?;
    while let Some(chunk) = body.stream.next().await {
        f.write_all(&chunk?).await?;
    }
    f.flush().await?;
    Ok(())
}

/// Finds the job's newest complete checkpoint (most optimiser steps) and
/// downloads it under `dest`. `None` when the job has none yet.
pub async fn download_latest(
    store: &dyn ObjectStore,
    job_id: &str,
    dest: &Path,
    policy: RetryPolicy,
) -> Result<Option<Checkpoint>, String> {
    let prefix = job_prefix(job_id);
    let objects = retry(policy, "listing checkpoints", || {
        list_all(store, Bucket::TrainingOutputs, &prefix)
    })
    .await
    .map_err(|e| format!("cannot list checkpoints: {e}"))?;
    let dirs = complete_dirs(job_id, objects.iter().map(|o| o.key.as_str()));
    let mut best: Option<(u64, String)> = None;
    for dir in dirs {
        let key = format!("{}{META_FILE}", dir_prefix(job_id, &dir));
        let meta = retry(policy, "reading a checkpoint sidecar", || {
            get_bytes(store, Bucket::TrainingOutputs, &key, 64 * 1024 * 1024)
        })
        .await
        .map_err(|e| format!("cannot read {key}: {e}"))?;
        let Ok(meta) = serde_json::from_slice::<CheckpointMeta>(&meta) else {
            tracing::warn!(key, "skipping a checkpoint whose sidecar does not parse");
            continue;
        };
        if best.as_ref().is_none_or(|(s, _)| meta.step > *s) {
            best = Some((meta.step, dir));
        }
    }
    let Some((_, dir)) = best else {
        return Ok(None);
    };
    let local = dest.join(&dir);
    tokio::fs::create_dir_all(&local)
        .await
        .map_err(|e| format!("cannot create {}: {e}", local.display()))?;
    for file in FILES {
        let key = format!("{}{file}", dir_prefix(job_id, &dir));
        let path = local.join(file);
        retry(policy, "checkpoint download", || {
            download_to(store, Bucket::TrainingOutputs, &key, &path)
        })
        .await
        .map_err(|e| format!("cannot download {key}: {e}"))?;
    }
    Checkpoint::load(&local)
        .map(Some)
        .map_err(|e| format!("checkpoint {dir} is unusable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_directories_count() {
        let keys = [
            "checkpoints/j/epoch-0001/model.safetensors",
            "checkpoints/j/epoch-0001/optimizer.safetensors",
            "checkpoints/j/epoch-0001/checkpoint.json",
            "checkpoints/j/epoch-0002/model.safetensors",
            "checkpoints/j/epoch-0002/optimizer.safetensors",
            "checkpoints/j/step-00000009/model.safetensors",
            "checkpoints/j/step-00000009/optimizer.safetensors",
            "checkpoints/j/step-00000009/checkpoint.json",
            "checkpoints/other/epoch-0003/checkpoint.json",
        ];
        assert_eq!(
            complete_dirs("j", keys.into_iter()),
            ["epoch-0001", "step-00000009"]
        );
        assert_eq!(epoch_dir(12), "epoch-0012");
        assert_eq!(dir_prefix("j", "epoch-0012"), "checkpoints/j/epoch-0012/");
    }
}
