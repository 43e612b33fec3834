//! Pure rules of the registry: layers, object names, alias and version-reference
//! syntax, page tokens and metric deltas. No I/O, so all of it is unit-tested.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A request value the caller has to fix; maps to `InvalidArgument`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Longest alias name.
pub const MAX_ALIAS_LEN: usize = 64;

/// Names that would clash with routes of the HTTP API.
pub const RESERVED_ALIASES: [&str; 2] = ["aliases", "retention"];

/// The alias the registry moves to each newly registered version of a layer.
pub const LATEST: &str = "latest";

/// Checks a layer number: 1 (classical preprocessing) or 2 (Restormer).
pub fn layer(layer: u32) -> Result<i32, Invalid> {
    match layer {
        1 | 2 => Ok(layer as i32),
        other => Err(Invalid(format!(
            "layer must be 1 (classical preprocessing) or 2 (Restormer), got {other}"
        ))),
    }
}

/// Checks an alias name: `[a-z0-9_-]{1,64}` and not purely numeric (that would
/// read as a version number).
pub fn alias(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_ALIAS_LEN {
        return Err(Invalid(format!(
            "alias must be 1 to {MAX_ALIAS_LEN} characters long"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Invalid(format!(
            "alias {:?} may only contain a-z, 0-9, '_' and '-'",
            truncate(name)
        )));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid(format!(
            "alias {name:?} is purely numeric and would read as a version number"
        )));
    }
    if RESERVED_ALIASES.contains(&name) {
        return Err(Invalid(format!(
            "alias {name:?} is reserved (it is a path segment of the HTTP API)"
        )));
    }
    Ok(())
}

/// Checks an alias a caller may set: a valid name other than [`LATEST`], which
/// the registry manages itself.
pub fn settable_alias(name: &str) -> Result<(), Invalid> {
    alias(name)?;
    if name == LATEST {
        return Err(Invalid(format!(
            "alias {LATEST:?} is managed by the registry: it always names the newest version"
        )));
    }
    Ok(())
}

/// What a version string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    /// A version number.
    Number(i32),
    /// An alias such as `champion`.
    Alias(String),
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "version {n}"),
            Self::Alias(a) => write!(f, "alias {a:?}"),
        }
    }
}

/// Parses a version number (`"3"`) or an alias (`"champion"`).
pub fn version_ref(s: &str) -> Result<VersionRef, Invalid> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Invalid(
            "version is required: a number such as 3 or an alias such as champion".into(),
        ));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(VersionRef::Number(n)),
            _ => Err(Invalid(format!(
                "version number must be between 1 and {}, got {}",
                i32::MAX,
                truncate(s)
            ))),
        };
    }
    alias(s).map_err(|e| {
        Invalid(format!(
            "version must be a number or an alias name; {}",
            e.0
        ))
    })?;
    Ok(VersionRef::Alias(s.to_string()))
}

/// Checks a version number given as an integer field.
pub fn version_number(n: u32) -> Result<i32, Invalid> {
    match i32::try_from(n) {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(Invalid(format!(
            "version must be between 1 and {}, got {n}",
            i32::MAX
        ))),
    }
}

/// The key (in the `models` bucket) of a version's weights and of its JSON sidecar:
/// `layer_{L}/restormer_layer{L}_{YYYYMMDD_HHMMSS}_v{N}` + `.safetensors`
/// (layer 2) or `.params.json` (layer 1, whose "weights" are JSON parameters),
/// and the sidecar `…_v{N}.json`.
pub fn object_keys(layer: i32, version: i32, at: DateTime<Utc>) -> (String, String) {
    let stem = format!(
        "layer_{layer}/restormer_layer{layer}_{}_v{version}",
        at.format("%Y%m%d_%H%M%S")
    );
    let weights = if layer == 1 {
        format!("{stem}.params.json")
    } else {
        format!("{stem}.safetensors")
    };
    (weights, format!("{stem}.json"))
}

/// Media type of a layer's weights object.
pub fn weights_content_type(layer: i32) -> &'static str {
    if layer == 1 {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Page size of `ListVersions`: 50 by default, at most 1000.
pub fn page_size(requested: u32) -> Result<u64, Invalid> {
    match requested {
        0 => Ok(50),
        1..=1000 => Ok(requested as u64),
        n => Err(Invalid(format!("page_size must be at most 1000, got {n}"))),
    }
}

/// A page token is the last version number of the previous page (newest first).
pub fn page_token(token: &str) -> Result<Option<i32>, Invalid> {
    if token.is_empty() {
        return Ok(None);
    }
    match token.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(Invalid(format!(
            "page_token {:?} is not one this service returned",
            truncate(token)
        ))),
    }
}

/// Checks `keep_last` of a retention run: at least 1, so a slip cannot empty a layer.
pub fn keep_last(n: u32) -> Result<usize, Invalid> {
    if n == 0 {
        return Err(Invalid(
            "keep_last must be at least 1 (aliased versions are kept as well)".into(),
        ));
    }
    Ok(n as usize)
}

/// Which versions a retention run deletes: given the ready versions newest
/// first with whether an alias points at each, every one past the newest
/// `keep_last` that no alias points at. Returned newest first.
pub fn retention_victims(newest_first: &[(i32, bool)], keep_last: usize) -> Vec<i32> {
    newest_first
        .iter()
        .skip(keep_last)
        .filter(|(_, aliased)| !aliased)
        .map(|(v, _)| *v)
        .collect()
}

/// The final numeric metrics of a metrics document: the numeric fields of its
/// `final` object when it has one, else its top-level numeric fields (per-epoch
/// history and other non-numbers are left out).
pub fn final_metrics(metrics: &Value) -> BTreeMap<String, f64> {
    let source = match metrics.get("final") {
        Some(Value::Object(f)) => f,
        _ => match metrics {
            Value::Object(m) => m,
            _ => return BTreeMap::new(),
        },
    };
    source
        .iter()
        .filter_map(|(k, v)| v.as_f64().filter(|x| x.is_finite()).map(|x| (k.clone(), x)))
        .collect()
}

/// One metric side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// Metric name.
    pub name: String,
    /// Value of version a.
    pub a: f64,
    /// Value of version b.
    pub b: f64,
    /// `b - a`.
    pub delta: f64,
}

/// Deltas (`b - a`) for the numeric final metrics both versions have, by name.
pub fn metric_deltas(a: &Value, b: &Value) -> Vec<Delta> {
    let (a, b) = (final_metrics(a), final_metrics(b));
    a.iter()
        .filter_map(|(name, &va)| {
            b.get(name).map(|&vb| Delta {
                name: name.clone(),
                a: va,
                b: vb,
                delta: vb - va,
            })
        })
        .collect()
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn object_names_follow_the_layout() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        assert_eq!(
            object_keys(2, 12, at),
            (
                "layer_2/restormer_layer2_20260304_050607_v12.safetensors".to_string(),
                "layer_2/restormer_layer2_20260304_050607_v12.json".to_string()
            )
        );
        let (w, s) = object_keys(1, 1, at);
        assert_eq!(w, "layer_1/restormer_layer1_20260304_050607_v1.params.json");
        assert_eq!(s, "layer_1/restormer_layer1_20260304_050607_v1.json");
        assert_ne!(w, s, "weights and sidecar never collide");
    }

    #[test]
    fn layers_are_one_or_two() {
        assert_eq!(layer(1), Ok(1));
        assert_eq!(layer(2), Ok(2));
        for bad in [0, 3, 99] {
            assert!(layer(bad).unwrap_err().0.contains("layer must be 1"));
        }
    }

    #[test]
    fn alias_names_are_validated() {
        for good in ["champion", "a", "v2", "best-psnr", "x_1", &"a".repeat(64)] {
            assert!(alias(good).is_ok(), "{good:?} rejected");
        }
        assert!(alias("").unwrap_err().0.contains("1 to 64"));
        assert!(alias(&"a".repeat(65)).unwrap_err().0.contains("1 to 64"));
        assert!(alias("Champion").unwrap_err().0.contains("a-z, 0-9"));
        assert!(alias("has space").is_err());
        assert!(alias("a/b").is_err());
        assert!(alias("ü").is_err());
        assert!(alias("42").unwrap_err().0.contains("purely numeric"));
        assert!(alias("aliases").unwrap_err().0.contains("reserved"));
    }

    #[test]
    fn latest_is_resolvable_but_not_settable() {
        assert_eq!(
            version_ref("latest"),
            Ok(VersionRef::Alias("latest".into()))
        );
        assert!(settable_alias("champion").is_ok());
        assert!(settable_alias("latest").unwrap_err().0.contains("managed"));
        assert!(
            settable_alias("retention")
                .unwrap_err()
                .0
                .contains("reserved")
        );
        assert!(settable_alias("42").is_err());
    }

    #[test]
    fn retention_keeps_the_newest_and_the_aliased() {
        let versions = [
            (9, true),
            (8, false),
            (7, false),
            (5, true),
            (4, false),
            (1, false),
        ];
        assert_eq!(retention_victims(&versions, 2), [7, 4, 1]);
        assert_eq!(retention_victims(&versions, 1), [8, 7, 4, 1]);
        assert_eq!(retention_victims(&versions, 6), Vec::<i32>::new());
        assert_eq!(retention_victims(&versions, 100), Vec::<i32>::new());
        assert_eq!(retention_victims(&[], 1), Vec::<i32>::new());
        assert!(keep_last(0).unwrap_err().0.contains("at least 1"));
        assert_eq!(keep_last(3), Ok(3));
    }

    #[test]
    fn version_refs_parse_numbers_and_aliases() {
        assert_eq!(version_ref("3"), Ok(VersionRef::Number(3)));
        assert_eq!(version_ref(" 7 "), Ok(VersionRef::Number(7)));
        assert_eq!(
            version_ref("champion"),
            Ok(VersionRef::Alias("champion".into()))
        );
        assert!(version_ref("").unwrap_err().0.contains("required"));
        assert!(version_ref("0").unwrap_err().0.contains("between 1"));
        assert!(
            version_ref("99999999999")
                .unwrap_err()
                .0
                .contains("between 1")
        );
        assert!(version_ref("1.5").is_err());
        assert!(
            version_ref("Best!")
                .unwrap_err()
                .0
                .contains("number or an alias")
        );
        assert_eq!(
            version_number(0).unwrap_err().0,
            format!("version must be between 1 and {}, got 0", i32::MAX)
        );
        assert_eq!(version_number(5), Ok(5));
    }

    #[test]
    fn pages_are_bounded_and_tokens_checked() {
        assert_eq!(page_size(0), Ok(50));
        assert_eq!(page_size(1000), Ok(1000));
        assert!(page_size(1001).is_err());
        assert_eq!(page_token(""), Ok(None));
        assert_eq!(page_token("12"), Ok(Some(12)));
        assert!(page_token("abc").is_err());
        assert!(page_token("0").is_err());
    }

    #[test]
    fn deltas_cover_shared_numeric_final_metrics() {
        let a = json!({"final": {"psnr": 30.0, "ssim": 0.9, "loss": 0.1, "note": "x"},
                       "epochs": [{"psnr": 20.0}]});
        let b = json!({"final": {"psnr": 31.5, "ssim": 0.85, "cer": 0.02},
                       "epochs": [{"psnr": 25.0}]});
        let d = metric_deltas(&a, &b);
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["psnr", "ssim"]);
        assert_eq!(d[0].a, 30.0);
        assert_eq!(d[0].b, 31.5);
        assert!((d[0].delta - 1.5).abs() < 1e-12);
        assert!((d[1].delta + 0.05).abs() < 1e-12);
        // Flat metrics documents work too; non-numbers are ignored.
        let flat = metric_deltas(&json!({"psnr": 1, "x": "y"}), &json!({"psnr": 4}));
        assert_eq!(flat.len(), 1);
        assert_eq!(flat[0].delta, 3.0);
        assert!(metric_deltas(&json!(null), &json!({"psnr": 1})).is_empty());
    }
}
