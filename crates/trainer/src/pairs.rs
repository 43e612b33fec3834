//! Training pairs in the object store: which ones a job uses, and a
//! [`PairSource`] that fetches them on demand from a blocking thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use restoreflow_core::Backends;
use restoreflow_core::storage::{
    Bucket, ObjectStore, RetryPolicy, StorageError, get_bytes, list_all, retry,
};
use restoreflow_training::PairSource;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, CatalogError, DatasetRow};
use crate::targets::PairTargets;

/// Largest page image fetched, in bytes.
const MAX_PAGE_BYTES: u64 = 256 * 1024 * 1024;

/// One clean/degraded pair with matching names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairRef {
    /// File name shared by both images (`{dataset}_{i:05}.png`).
    pub name: String,
    /// Size of the clean image in bytes.
    pub clean_bytes: u64,
    /// Size of the degraded image in bytes.
    pub degraded_bytes: u64,
}

impl PairRef {
    /// Key of the clean image in `training-data`.
    pub fn clean_key(&self) -> String {
        format!("clean/{}", self.name)
    }

    /// Key of the degraded image in `training-data`.
    pub fn degraded_key(&self) -> String {
        format!("degraded/{}", self.name)
    }
}

/// The pairs a job trains on and where they came from.
#[derive(Debug, Clone)]
pub struct PairSet {
    /// Pairs in name order, at most `max_pairs`.
    pub pairs: Vec<PairRef>,
    /// Matching pairs available before `max_pairs` was applied.
    pub available: usize,
    /// The dataset row's id when `dataset` named one.
    pub dataset_id: Option<String>,
    /// That dataset, as synthetic-data recorded it.
    pub dataset: Option<DatasetRow>,
    /// The dataset's content hash when every one of its pairs is used,
    /// else a hash over the names and sizes of the pairs used.
    pub content_hash: String,
    /// Where the pairs were looked for, for messages.
    pub location: String,
    /// Objects listed under the clean side.
    pub clean_files: usize,
    /// Objects listed under the degraded side.
    pub degraded_files: usize,
    /// Targets and dpi of the datasets the pairs come from.
    pub targets: PairTargets,
}

impl PairSet {
    /// The data statistics recorded as the job's `data` event.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "location": self.location,
            "files_seen": self.clean_files + self.degraded_files,
            "clean_files": self.clean_files,
            "degraded_files": self.degraded_files,
            "valid_pairs": self.available,
            "pairs_used": self.pairs.len(),
            "dataset_id": self.dataset_id,
            "dataset_hash": self.content_hash,
            "targets": self.targets.targets,
            "dpi": self.targets.dpi,
        })
    }
}

/// Errors while finding pairs.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// Listing failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Looking up the dataset failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The dataset is a held-out evaluation set.
    #[error(
        "dataset {0} is a held-out test set: evaluate on it (POST /evaluation/run), do not train on it"
    )]
    HeldOut(String),
}

impl PairError {
    /// The shared code: the store's, synthetic-data's answer (Unavailable
    /// when it cannot be reached), InvalidArgument for a held-out set.
    pub fn code(&self) -> restoreflow_core::ErrorCode {
        match self {
            Self::Storage(s) => s.code(),
            Self::Catalog(c) => restoreflow_core::ErrorCode::from_grpc(c.0.code()),
            Self::HeldOut(_) => restoreflow_core::ErrorCode::InvalidArgument,
        }
    }
}

impl From<PairError> for crate::TrainerError {
    fn from(e: PairError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// Finds the pairs under `dataset` (a dataset id, a name prefix, or empty for
/// everything) whose clean and degraded images both exist, in name order, and
/// keeps the first `max_pairs` (all of them when `max_pairs` is 0).
pub async fn find_pairs(
    backends: &Backends,
    catalog: &Catalog,
    dataset: &str,
    max_pairs: usize,
) -> Result<PairSet, PairError> {
    select_pairs(backends, catalog, dataset, max_pairs, &[]).await
}

/// [`find_pairs`] for training: refuses a held-out (`test` split) dataset and
/// leaves out the pairs of every held-out dataset, so evaluation pages never
/// reach a training run (e.g. when `dataset` is empty and every pair counts).
pub async fn find_training_pairs(
    backends: &Backends,
    catalog: &Catalog,
    dataset: &str,
    max_pairs: usize,
) -> Result<PairSet, PairError> {
    let held_out = catalog.list(Some("test")).await?;
    if held_out.iter().any(|d| d.id == dataset) {
        return Err(PairError::HeldOut(dataset.to_string()));
    }
    let prefixes: Vec<String> = held_out.iter().map(pair_prefix).collect();
    select_pairs(backends, catalog, dataset, max_pairs, &prefixes).await
}

/// The name prefix of a dataset's pairs: `{id}_` for generated sets, the
/// upload prefix for uploaded ones.
pub(crate) fn pair_prefix(d: &DatasetRow) -> String {
    d.manifest
        .get("prefix")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}_", d.id))
}

async fn select_pairs(
    backends: &Backends,
    catalog: &Catalog,
    dataset: &str,
    max_pairs: usize,
    exclude: &[String],
) -> Result<PairSet, PairError> {
    let row = if dataset.is_empty() {
        None
    } else {
        catalog.get(dataset).await?
    };
    // A dataset's pairs are named `{id}_{i:05}.png`; anything else is a name prefix.
    let prefix = match &row {
        // Uploaded datasets keep the prefix their pairs were uploaded under.
        Some(d) => pair_prefix(d),
        None => dataset
            .strip_prefix("clean/")
            .or_else(|| dataset.strip_prefix("degraded/"))
            .unwrap_or(dataset)
            .to_string(),
    };
    let store = backends.store.as_ref();
    let clean = list_all(store, Bucket::TrainingData, &format!("clean/{prefix}")).await?;
    let degraded = list_all(store, Bucket::TrainingData, &format!("degraded/{prefix}")).await?;
    let all = match_pairs(
        clean
            .iter()
            .filter_map(|o| Some((o.key.strip_prefix("clean/")?, o.size))),
        degraded
            .iter()
            .filter_map(|o| Some((o.key.strip_prefix("degraded/")?, o.size))),
    );
    let all: Vec<PairRef> = all
        .into_iter()
        .filter(|p| !exclude.iter().any(|x| p.name.starts_with(x.as_str())))
        .collect();
    let available = all.len();
    // 0 is a training request's "every pair" (see `TrainParams::max_pairs`).
    let cap = if max_pairs == 0 {
        usize::MAX
    } else {
        max_pairs
    };
    let pairs: Vec<PairRef> = all.into_iter().take(cap).collect();
    // Any dataset's pairs may match a bare prefix (or everything).
    let origins = match &row {
        Some(d) => vec![d.clone()],
        None => catalog.list(None).await?,
    };
    let targets = PairTargets::of(&pairs, &origins);
    let content_hash = match &row {
        Some(d) if pairs.len() == available && available as u64 == u64::from(d.num_pairs) => {
            d.content_hash.clone()
        }
        _ => pairs_hash(&pairs),
    };
    let location = if dataset.is_empty() {
        "training-data".to_string()
    } else if row.is_some() {
        format!("dataset {dataset}")
    } else {
        format!("training-data with prefix {prefix:?}")
    };
    Ok(PairSet {
        pairs,
        available,
        dataset_id: row.as_ref().map(|d| d.id.clone()),
        dataset: row,
        content_hash,
        location,
        clean_files: clean.len(),
        degraded_files: degraded.len(),
        targets,
    })
}

/// Pairs whose name appears on both sides, in name order. Only image files count.
pub fn match_pairs<'a>(
    clean: impl Iterator<Item = (&'a str, u64)>,
    degraded: impl Iterator<Item = (&'a str, u64)>,
) -> Vec<PairRef> {
    let is_image = |n: &str| {
        let n = n.to_ascii_lowercase();
        !n.contains('/') && (n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".jpeg"))
    };
    let clean: BTreeMap<&str, u64> = clean.filter(|(n, _)| is_image(n)).collect();
    let mut out: Vec<PairRef> = degraded
        .filter(|(n, _)| is_image(n))
        .filter_map(|(n, size)| {
            clean.get(n).map(|&c| PairRef {
                name: n.to_string(),
                clean_bytes: c,
                degraded_bytes: size,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// sha256 over `name clean_bytes degraded_bytes` lines in name order.
pub fn pairs_hash(pairs: &[PairRef]) -> String {
    let mut h = Sha256::new();
    for p in pairs {
        h.update(format!(
            "{} {} {}\n",
            p.name, p.clean_bytes, p.degraded_bytes
        ));
    }
    hex::encode(h.finalize())
}

/// A [`PairSource`] over pairs in the object store. Images are fetched when
/// the engine asks for them (the engine's page cache bounds how many stay
/// decoded), so a large dataset is never held in memory at once.
///
/// `load` blocks on the runtime `handle`: call it only from a blocking thread
/// (the engine runs in `spawn_blocking`).
pub struct StorePairs {
    pairs: Vec<PairRef>,
    store: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
    retry: RetryPolicy,
}

impl StorePairs {
    /// A source over `pairs`.
    pub fn new(
        pairs: Vec<PairRef>,
        store: Arc<dyn ObjectStore>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        Self {
            pairs,
            store,
            handle,
            retry: RetryPolicy::within(Duration::ZERO),
        }
    }

    /// Retries failing page reads under `policy` (none by default).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    fn fetch(&self, key: &str) -> restoreflow_training::Result<RgbImage> {
        let bytes = self
            .handle
            .block_on(retry(self.retry, "page download", || {
                get_bytes(
                    self.store.as_ref(),
                    Bucket::TrainingData,
                    key,
                    MAX_PAGE_BYTES,
                )
            }))
            .map_err(|e| restoreflow_training::Error::Data(format!("cannot fetch {key}: {e}")))?;
        crate::restoration::decode_rgb(&bytes, crate::restoration::MAX_PAGE_PIXELS)
            .map_err(|e| restoreflow_training::Error::Data(format!("cannot decode {key}: {e}")))
    }
}

impl PairSource for StorePairs {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn load(&self, index: usize) -> restoreflow_training::Result<(RgbImage, RgbImage)> {
        let p = self.pairs.get(index).ok_or_else(|| {
            restoreflow_training::Error::Data(format!("page index {index} out of range"))
        })?;
        Ok((self.fetch(&p.clean_key())?, self.fetch(&p.degraded_key())?))
    }

    fn page_id(&self, index: usize) -> String {
        self.pairs
            .get(index)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_on_both_sides_pair_up_in_order() {
        let clean = [
            ("b.png", 10),
            ("a.png", 11),
            ("only-clean.png", 1),
            ("notes.txt", 3),
        ];
        let degraded = [
            ("a.png", 21),
            ("b.png", 20),
            ("only-degraded.png", 2),
            ("notes.txt", 3),
        ];
        let pairs = match_pairs(clean.into_iter(), degraded.into_iter());
        let names: Vec<&str> = pairs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a.png", "b.png"]);
        assert_eq!((pairs[0].clean_bytes, pairs[0].degraded_bytes), (11, 21));
        assert_eq!(pairs[0].clean_key(), "clean/a.png");
        assert_eq!(pairs[1].degraded_key(), "degraded/b.png");
    }

    #[test]
    fn pairs_hash_depends_on_names_and_sizes() {
        let a = match_pairs([("a.png", 1)].into_iter(), [("a.png", 2)].into_iter());
        let b = match_pairs([("a.png", 1)].into_iter(), [("a.png", 3)].into_iter());
        assert_eq!(pairs_hash(&a), pairs_hash(&a.clone()));
        assert_ne!(pairs_hash(&a), pairs_hash(&b));
        assert_eq!(pairs_hash(&a).len(), 64);
    }
}
