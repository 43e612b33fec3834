//! What the clean half of a set of pairs holds: the target (`as_printed` or
//! `digital`) and the resolution that the datasets the pairs come from
//! recorded in their manifests. Training records it with the job and the
//! model version; evaluation records it beside the model's training targets.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::catalog::DatasetRow;
use crate::pairs::PairRef;
use crate::texts::UPLOAD_SOURCE;

/// The target of generated sets whose manifest predates targets: the clean
/// half was always the printed page.
const LEGACY_TARGET: &str = "as_printed";
/// The "target" of uploaded sets, which record none.
pub(crate) const UPLOADED: &str = "uploaded";
/// The "target" of pairs that no dataset row claims (a bare key prefix).
pub(crate) const UNKNOWN: &str = "unknown";

/// Pairs per target and the resolutions of the datasets behind some pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PairTargets {
    /// Target -> pairs: `as_printed` or `digital` as the dataset's manifest
    /// says, [`UPLOADED`] or [`UNKNOWN`].
    pub targets: BTreeMap<String, usize>,
    /// The dpi values the datasets recorded, ascending; sets generated
    /// without one, or before dpi was recorded, and uploads add none.
    pub dpi: Vec<u32>,
}

impl PairTargets {
    /// Counts `pairs` by the dataset each comes from: the row whose pair
    /// prefix (`{id}_`, or an upload's `prefix`) is the longest that the
    /// pair's name starts with.
    pub fn of(pairs: &[PairRef], datasets: &[DatasetRow]) -> Self {
        let mut rows: Vec<(String, &DatasetRow)> = datasets
            .iter()
            .map(|d| (crate::pairs::pair_prefix(d), d))
            .collect();
        // Longest first, so `ab_` never claims the pairs of a set `ab_c`.
        rows.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let mut targets: BTreeMap<String, usize> = BTreeMap::new();
        let mut dpi = BTreeSet::new();
        for p in pairs {
            let row = rows
                .iter()
                .find(|(prefix, _)| p.name.starts_with(prefix.as_str()))
                .map(|(_, d)| *d);
            let target = match row {
                Some(d) => {
                    dpi.extend(dataset_dpi(d));
                    dataset_target(d)
                }
                None => UNKNOWN.to_string(),
            };
            *targets.entry(target).or_default() += 1;
        }
        Self {
            targets,
            dpi: dpi.into_iter().collect(),
        }
    }

    /// The targets other than [`UPLOADED`] and [`UNKNOWN`].
    fn known(&self) -> BTreeSet<&str> {
        known(self.targets.keys().map(String::as_str))
    }
}

/// What a dataset row's clean images hold.
fn dataset_target(d: &DatasetRow) -> String {
    match d.manifest.get("target").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if d.source == UPLOAD_SOURCE => UPLOADED.to_string(),
        None => LEGACY_TARGET.to_string(),
    }
}

/// The dpi a dataset row's manifest records, if any.
fn dataset_dpi(d: &DatasetRow) -> Option<u32> {
    d.manifest
        .get("dpi")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

fn known<'a>(targets: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    targets.filter(|&t| t != UPLOADED && t != UNKNOWN).collect()
}

/// What an evaluation records about targets: those of the pairs scored
/// (`targets`, `dpi`), the model's training targets as its version's config
/// records them (`model_targets`; null for Layer 1 and for versions
/// registered before targets were recorded) and `target_mismatch`: true
/// when some scored pairs have a target that the model never trained on,
/// null when either side's targets are unknown.
pub(crate) fn evaluation_targets(data: &PairTargets, model_config: Option<&Value>) -> Value {
    let model_targets = model_config
        .and_then(|c| c.get("targets"))
        .filter(|t| t.is_object())
        .cloned();
    let trained = model_targets
        .as_ref()
        .and_then(Value::as_object)
        .map(|m| known(m.keys().map(String::as_str)))
        .unwrap_or_default();
    let scored = data.known();
    let mismatch = (!trained.is_empty() && !scored.is_empty()).then(|| !scored.is_subset(&trained));
    json!({
        "targets": data.targets,
        "dpi": data.dpi,
        "model_targets": model_targets,
        "target_mismatch": mismatch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, source: &str, manifest: Value) -> DatasetRow {
        DatasetRow {
            id: id.into(),
            source: source.into(),
            split: "train".into(),
            num_pairs: 0,
            manifest,
            content_hash: String::new(),
        }
    }

    fn pairs(names: &[String]) -> Vec<PairRef> {
        names
            .iter()
            .map(|n| PairRef {
                name: n.clone(),
                clean_bytes: 1,
                degraded_bytes: 1,
            })
            .collect()
    }

    fn named(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:05}.png")).collect()
    }

    fn counts(t: &PairTargets) -> Vec<(&str, usize)> {
        t.targets.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }

    #[test]
    fn pairs_of_two_datasets_count_under_their_own_targets() {
        let rows = [
            row(
                "ab",
                "synthetic",
                json!({"target": "digital", "dpi": 300, "page_size": "a4"}),
            ),
            // `ab_c_` starts with `ab_`: the longer prefix claims its pairs.
            row(
                "ab_c",
                "synthetic",
                json!({"target": "as_printed", "dpi": 150, "page_size": null}),
            ),
        ];
        let names = [named("ab_", 3), named("ab_c_", 2)].concat();
        let t = PairTargets::of(&pairs(&names), &rows);
        assert_eq!(counts(&t), [("as_printed", 2), ("digital", 3)]);
        assert_eq!(t.dpi, [150, 300]);
        // Only the datasets pairs come from count.
        let t = PairTargets::of(&pairs(&named("ab_c_", 2)), &rows);
        assert_eq!(counts(&t), [("as_printed", 2)]);
        assert_eq!(t.dpi, [150]);
    }

    #[test]
    fn a_row_from_before_targets_is_as_printed_and_has_no_dpi() {
        let rows = [row("old", "synthetic", json!({"seed": 1, "width": 256}))];
        let t = PairTargets::of(&pairs(&named("old_", 4)), &rows);
        assert_eq!(counts(&t), [("as_printed", 4)]);
        assert!(t.dpi.is_empty());
        // A null dpi (generated without one) adds none either.
        let rows = [row(
            "new",
            "synthetic",
            json!({"target": "digital", "dpi": null}),
        )];
        let t = PairTargets::of(&pairs(&named("new_", 1)), &rows);
        assert_eq!(counts(&t), [("digital", 1)]);
        assert!(t.dpi.is_empty());
    }

    #[test]
    fn uploads_and_unclaimed_pairs_have_no_known_target() {
        let rows = [
            row(
                "upload-scans",
                UPLOAD_SOURCE,
                json!({"prefix": "scans/", "texts": {}}),
            ),
            row("gen", "synthetic", json!({"target": "digital"})),
        ];
        let names = [
            vec!["scans/a.png".to_string(), "scans/b.jpg".to_string()],
            named("gen_", 1),
            vec!["loose.png".to_string()],
        ]
        .concat();
        let t = PairTargets::of(&pairs(&names), &rows);
        assert_eq!(
            counts(&t),
            [("digital", 1), ("unknown", 1), ("uploaded", 2)]
        );
        assert_eq!(t.known(), BTreeSet::from(["digital"]));
        assert_eq!(PairTargets::of(&[], &rows), PairTargets::default());
    }

    #[test]
    fn an_evaluation_flags_targets_the_model_never_trained_on() {
        let printed = PairTargets {
            targets: BTreeMap::from([("as_printed".to_string(), 2)]),
            dpi: vec![300],
        };
        let digital_model = json!({"targets": {"digital": 600}, "dpi": [300]});
        let v = evaluation_targets(&printed, Some(&digital_model));
        assert_eq!(v["targets"], json!({"as_printed": 2}));
        assert_eq!(v["dpi"], json!([300]));
        assert_eq!(v["model_targets"], json!({"digital": 600}));
        assert_eq!(v["target_mismatch"], true);
        // A model trained on both targets covers either.
        let mixed = json!({"targets": {"digital": 600, "as_printed": 10}});
        assert_eq!(
            evaluation_targets(&printed, Some(&mixed))["target_mismatch"],
            false
        );
        // Unknown on either side: no verdict.
        let old_model = json!({"model": {"preset": "tiny"}});
        let v = evaluation_targets(&printed, Some(&old_model));
        assert_eq!(
            (&v["model_targets"], &v["target_mismatch"]),
            (&Value::Null, &Value::Null)
        );
        assert_eq!(
            evaluation_targets(&printed, None)["target_mismatch"],
            Value::Null
        );
        let uploaded = PairTargets {
            targets: BTreeMap::from([(UPLOADED.to_string(), 2)]),
            dpi: vec![],
        };
        let v = evaluation_targets(&uploaded, Some(&digital_model));
        assert_eq!(v["targets"], json!({"uploaded": 2}));
        assert_eq!(v["target_mismatch"], Value::Null);
    }
}
