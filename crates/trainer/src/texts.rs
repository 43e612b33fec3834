//! Ground-truth text of evaluation pages, for the OCR metric. Generated sets
//! keep the text of each page in `synthetic-data/{dataset}/text/`; uploaded
//! sets keep it beside their pairs, `training-data/text/{name stem}.txt`, and
//! their dataset row records which pairs have one (`manifest.texts`).

use std::collections::BTreeMap;

use restoreflow_core::storage::{Bucket, ObjectStore, get_bytes};
use serde_json::Value;

use crate::catalog::DatasetRow;

/// Largest ground-truth text read, in bytes.
const MAX_TEXT_BYTES: u64 = 1 << 20;

pub use restoreflow_core::db::UPLOAD_SOURCE;

/// Where the texts of a dataset's pages are.
#[derive(Debug, Clone, PartialEq)]
pub enum TextSource {
    /// No ground truth (a bare prefix, or an upload without texts).
    None,
    /// A generated set: `synthetic-data/{dataset_id}/text/{stem}.txt`.
    Synthetic {
        /// The dataset id.
        dataset_id: String,
    },
    /// An uploaded set: pair name -> key of its text in `training-data`.
    Uploaded(BTreeMap<String, String>),
}

impl TextSource {
    /// The texts of `row`, as its source and manifest say.
    pub fn for_row(row: &DatasetRow) -> Self {
        if row.source != UPLOAD_SOURCE {
            return Self::Synthetic {
                dataset_id: row.id.clone(),
            };
        }
        let keys: BTreeMap<String, String> = row
            .manifest
            .get("texts")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(name, key)| Some((name.clone(), key.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() {
            Self::None
        } else {
            Self::Uploaded(keys)
        }
    }

    /// The texts of the dataset a set of pairs came from (`None`: pairs
    /// named by a bare prefix).
    pub fn for_dataset(row: Option<&DatasetRow>) -> Self {
        row.map_or(Self::None, Self::for_row)
    }

    /// Whether any page may have a text.
    pub fn has_texts(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// Where the text of pair `name` is, if it has one.
    pub fn location(&self, name: &str) -> Option<(Bucket, String)> {
        match self {
            Self::None => None,
            Self::Synthetic { dataset_id } => Some((
                Bucket::SyntheticData,
                format!("{dataset_id}/text/{}.txt", stem(name)),
            )),
            Self::Uploaded(keys) => Some((Bucket::TrainingData, keys.get(name)?.clone())),
        }
    }

    /// The text of pair `name`, when it has one that reads as UTF-8.
    pub async fn text(&self, store: &dyn ObjectStore, name: &str) -> Option<String> {
        let (bucket, key) = self.location(name)?;
        let bytes = get_bytes(store, bucket, &key, MAX_TEXT_BYTES).await.ok()?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// A file name without its extension.
fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// Key in `training-data` of the text of uploaded pair `name`
/// (`a.png` -> `text/a.txt`).
pub fn upload_text_key(name: &str) -> String {
    format!("text/{}.txt", stem(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(source: &str, manifest: Value) -> DatasetRow {
        DatasetRow {
            id: "set-1".into(),
            source: source.into(),
            split: "test".into(),
            num_pairs: 2,
            manifest,
            content_hash: String::new(),
        }
    }

    #[test]
    fn generated_sets_read_texts_from_their_dataset_folder() {
        let s = TextSource::for_row(&row("synthetic", json!({})));
        assert!(s.has_texts());
        assert_eq!(
            s.location("set-1_00003.png"),
            Some((Bucket::SyntheticData, "set-1/text/set-1_00003.txt".into()))
        );
    }

    #[test]
    fn uploaded_sets_read_the_texts_their_row_records() {
        let s = TextSource::for_row(&row(
            UPLOAD_SOURCE,
            json!({"prefix": "set-1.", "texts": {"set-1.000.png": "text/set-1.000.txt"}}),
        ));
        assert_eq!(
            s.location("set-1.000.png"),
            Some((Bucket::TrainingData, "text/set-1.000.txt".into()))
        );
        assert_eq!(s.location("set-1.001.png"), None);
        let bare = TextSource::for_row(&row(UPLOAD_SOURCE, json!({"prefix": "p"})));
        assert_eq!(bare, TextSource::None);
        assert!(!bare.has_texts());
    }

    #[test]
    fn upload_text_keys_drop_the_image_extension() {
        assert_eq!(upload_text_key("set.001.png"), "text/set.001.txt");
        assert_eq!(upload_text_key("a.JPEG"), "text/a.txt");
        assert_eq!(upload_text_key("noext"), "text/noext.txt");
    }
}
