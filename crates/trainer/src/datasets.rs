//! Uploaded evaluation datasets: pairs put under
//! `training-data/clean/{prefix}` and `training-data/degraded/{prefix}` with
//! matching names, and optionally the ground-truth text of each page at
//! `training-data/text/{prefix}{stem}.txt`, registered as a held-out `test`
//! dataset (training refuses it and leaves its pairs out of "every pair").

use std::collections::BTreeMap;

use restoreflow_core::storage::{Bucket, list_all, validate_prefix};
use restoreflow_core::{Backends, ErrorCode};
use restoreflow_proto::v1;
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::catalog::Catalog;
use crate::pairs::{PairRef, find_pairs, pairs_hash};
use crate::restoration::{from_pairs, invalid};
use crate::texts::upload_text_key;

/// The content hash of an uploaded set: [`pairs_hash`] when it has no texts,
/// else sha256 over the same `name clean_bytes degraded_bytes` lines followed
/// by `text key bytes` lines, so replacing a ground truth changes the hash.
pub(crate) fn upload_hash(pairs: &[PairRef], texts: &BTreeMap<String, (String, u64)>) -> String {
    if texts.is_empty() {
        return pairs_hash(pairs);
    }
    let mut h = Sha256::new();
    for p in pairs {
        h.update(format!(
            "{} {} {}\n",
            p.name, p.clean_bytes, p.degraded_bytes
        ));
    }
    for (key, size) in texts.values() {
        h.update(format!("text {key} {size}\n"));
    }
    hex::encode(h.finalize())
}

/// Pair name -> (key, size) of its text, among the listed text objects.
pub(crate) fn match_texts(
    pairs: &[PairRef],
    listed: &BTreeMap<String, u64>,
) -> BTreeMap<String, (String, u64)> {
    pairs
        .iter()
        .filter_map(|p| {
            let key = upload_text_key(&p.name);
            let size = *listed.get(&key)?;
            Some((p.name.clone(), (key, size)))
        })
        .collect()
}

/// `RegisterEvaluationDataset`: checks the name and the prefix, matches the
/// pairs and their texts, and has synthetic-data (the owner of datasets)
/// record the dataset.
pub(crate) async fn register_upload(
    backends: &Backends,
    catalog: &Catalog,
    r: v1::RegisterEvaluationDatasetRequest,
) -> Result<v1::EvaluationDataset, Status> {
    let id = r.name.trim().to_string();
    if !restoreflow_core::db::valid_dataset_id(&id) {
        return Err(invalid("name must be 1-64 characters of a-z, 0-9, _ and -"));
    }
    let prefix = r.prefix.trim().to_string();
    if prefix.is_empty() {
        return Err(invalid(
            "prefix is required: the pairs are clean/<prefix>* and degraded/<prefix>* in training-data",
        ));
    }
    validate_prefix(&prefix).map_err(|e| invalid(e.to_string()))?;
    if catalog.get(&id).await.map_err(|e| e.status())?.is_some() {
        return Err(ErrorCode::AlreadyExists.status(format!("dataset {id:?} already exists")));
    }
    let pairs = find_pairs(backends, catalog, &prefix, usize::MAX)
        .await
        .map_err(from_pairs)?;
    if pairs.pairs.is_empty() {
        return Err(ErrorCode::FailedPrecondition.status(format!(
            "no clean/degraded pairs with matching names under clean/{prefix} and degraded/{prefix}"
        )));
    }
    let unmatched = (pairs.clean_files + pairs.degraded_files).saturating_sub(2 * pairs.available);
    let listed: BTreeMap<String, u64> = list_all(
        backends.store.as_ref(),
        Bucket::TrainingData,
        &format!("text/{prefix}"),
    )
    .await
    .map_err(|e| e.code().status(e.to_string()))?
    .into_iter()
    .map(|o| (o.key, o.size))
    .collect();
    let texts = match_texts(&pairs.pairs, &listed);
    let hash = upload_hash(&pairs.pairs, &texts);
    let text_keys: BTreeMap<&String, &String> =
        texts.iter().map(|(name, (key, _))| (name, key)).collect();
    let manifest = json!({
        "prefix": prefix,
        "unmatched_files": unmatched,
        "texts": text_keys,
    });
    // ALREADY_EXISTS when a concurrent registration of the same name won.
    catalog
        .record_upload(v1::RecordUploadRequest {
            id: id.clone(),
            num_pairs: pairs.pairs.len() as u32,
            content_hash: hash.clone(),
            manifest_json: manifest.to_string(),
        })
        .await?;
    let mut skipped = Vec::new();
    if unmatched > 0 {
        skipped.push(format!(
            "{unmatched} files without a partner of the same name"
        ));
    }
    let orphan_texts = listed.len() - texts.len();
    if orphan_texts > 0 {
        skipped.push(format!(
            "{orphan_texts} texts under text/{prefix} without a pair"
        ));
    }
    Ok(v1::EvaluationDataset {
        id,
        pairs: pairs.pairs.len() as u32,
        skipped,
        content_hash: hash,
        pairs_with_text: texts.len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::match_pairs;

    #[test]
    fn texts_pair_up_by_stem_and_change_the_hash() {
        let pairs = match_pairs(
            [("s.000.png", 10), ("s.001.jpg", 11)].into_iter(),
            [("s.000.png", 20), ("s.001.jpg", 21)].into_iter(),
        );
        let listed: BTreeMap<String, u64> = [
            ("text/s.000.txt".to_string(), 5),
            ("text/s.999.txt".to_string(), 7),
        ]
        .into_iter()
        .collect();
        let texts = match_texts(&pairs, &listed);
        assert_eq!(texts.len(), 1);
        assert_eq!(texts["s.000.png"], ("text/s.000.txt".to_string(), 5));
        // No texts: the plain pair hash, as before texts existed.
        assert_eq!(upload_hash(&pairs, &BTreeMap::new()), pairs_hash(&pairs));
        let with = upload_hash(&pairs, &texts);
        assert_ne!(with, pairs_hash(&pairs));
        let mut edited = texts.clone();
        edited.insert("s.000.png".into(), ("text/s.000.txt".into(), 6));
        assert_ne!(upload_hash(&pairs, &edited), with);
    }
}
