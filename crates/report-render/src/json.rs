//! The JSON report: the stored data, the derived numbers and the
//! recommendations in one document, described by [`json_schema`].

use serde_json::{Value, json};

use crate::data::{ReportData, SCHEMA_VERSION};
use crate::derive::derive;
use crate::recommend::recommendations;

/// The JSON report as a whole, for its schema: `report` is [`ReportData`] as
/// serde writes it (timestamps RFC 3339, absent options `null`), `derived`
/// is [`crate::Derived`], `recommendations` a list of
/// [`crate::Recommendation`].
#[derive(schemars::JsonSchema)]
#[schemars(
    title = "Restoreflow training report",
    description = "One training run: stored facts (report), numbers derived from them (derived) and advice (recommendations)."
)]
#[allow(dead_code)] // Only its schema is used; `render_json` writes the value.
struct ReportDocument {
    /// Version of this schema; bumped on any incompatible change.
    schema_version: u32,
    /// The stored facts.
    report: ReportData,
    /// Numbers derived from them.
    derived: crate::Derived,
    /// Advice, most severe first.
    recommendations: Vec<crate::Recommendation>,
}

/// JSON Schema (draft 2020-12) of [`render_json`]'s output, derived from the
/// types that produce it (`schemars`), so the two cannot drift apart.
/// Non-finite numbers (an infinite PSNR) are written as `null` by
/// serde_json, so every number in the schema also admits `null`.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(ReportDocument).to_value();
    schema["$id"] = json!("restoreflow-training-report.schema.json");
    schema["properties"]["schema_version"]["const"] = json!(SCHEMA_VERSION);
    numbers_admit_null(&mut schema);
    schema
}

/// Adds `null` to every `"type": "number"` (alone or in a list).
fn numbers_admit_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            match map.get_mut("type") {
                Some(t @ Value::String(_)) if t == "number" => {
                    *t = json!(["number", "null"]);
                }
                Some(Value::Array(types))
                    if types.iter().any(|t| t == "number")
                        && !types.iter().any(|t| t == "null") =>
                {
                    types.push(json!("null"));
                }
                _ => {}
            }
            for child in map.values_mut() {
                numbers_admit_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers_admit_null),
        _ => {}
    }
}

/// Renders the JSON report: `{schema_version, report, derived, recommendations}`.
pub fn render_json(data: &ReportData) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "report": data,
        "derived": derive(data),
        "recommendations": recommendations(data),
    })
}

#[cfg(test)]
mod tests {
    /// `docs/report-schema.json` is this schema, so the documentation stays
    /// true; `RESTOREFLOW_BLESS=1` rewrites the file.
    #[test]
    fn documented_schema_file_is_the_schema() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/report-schema.json");
        let schema = json_schema();
        if std::env::var_os("RESTOREFLOW_BLESS").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&schema).unwrap() + "\n").unwrap();
        }
        let text = std::fs::read_to_string(&path).expect("docs/report-schema.json exists");
        let file: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            file, schema,
            "run the test with RESTOREFLOW_BLESS=1 to update the file"
        );
    }

    use super::*;
    use crate::fixtures::sample_data;

    fn schema() -> Value {
        json_schema()
    }

    /// `node`, or the definition its `$ref` (direct, or the non-null branch
    /// of an `anyOf`/`oneOf` an `Option` makes) points at.
    fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
        if let Some(r) = node["$ref"].as_str() {
            let name = r.trim_start_matches("#/$defs/");
            return &schema["$defs"][name];
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = node[key].as_array()
                && let Some(b) = branches.iter().find(|b| b["$ref"].is_string())
            {
                return resolve(schema, b);
            }
        }
        node
    }

    fn keys(v: &Value) -> Vec<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    }

    #[test]
    fn output_has_every_key_the_schema_lists() {
        let schema = schema();
        let out = render_json(&sample_data());
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            json!(SCHEMA_VERSION)
        );
        for key in schema["required"].as_array().unwrap() {
            assert!(out.get(key.as_str().unwrap()).is_some(), "missing {key}");
        }
        let report = resolve(&schema, &schema["properties"]["report"]);
        for key in keys(&report["properties"]) {
            assert!(out["report"].get(&key).is_some(), "report lacks {key}");
        }
        for key in keys(&out["report"]) {
            assert!(
                report["properties"].get(&key).is_some(),
                "schema lacks report.{key}"
            );
        }
        let derived = resolve(&schema, &schema["properties"]["derived"]);
        for key in keys(&derived["properties"]) {
            assert!(out["derived"].get(&key).is_some(), "derived lacks {key}");
        }
        for key in keys(&out["derived"]) {
            assert!(
                derived["properties"].get(&key).is_some(),
                "schema lacks derived.{key}"
            );
        }
    }

    #[test]
    fn nested_defs_cover_the_serialized_fields() {
        let schema = schema();
        let out = render_json(&sample_data());
        let report = &out["report"];
        for (def, value) in [
            ("JobInfo", &report["job"]),
            ("TrainingParameters", &report["parameters"]),
            ("TrainingRecipe", &report["parameters"]["recipe"]),
            (
                "ProgressiveStage",
                &report["parameters"]["recipe"]["progressive"][0],
            ),
            ("DataStats", &report["data"]),
            ("EpochRow", &report["epochs"][0]),
            ("ModelInfo", &report["model"]),
            ("PreviousVersion", &report["previous"]),
            ("Environment", &report["environment"]),
            ("GpuOffer", &report["gpus"]),
        ] {
            let props = &schema["$defs"][def]["properties"];
            assert_eq!(keys(props).len(), keys(value).len(), "{def}");
            for key in keys(value) {
                assert!(props.get(&key).is_some(), "$defs.{def} lacks {key}");
            }
        }
    }

    #[test]
    fn every_number_admits_null_as_non_finite_values_are_written() {
        fn check(v: &Value, at: &str) {
            match v {
                Value::Object(map) => {
                    if let Some(t) = map.get("type") {
                        let types: Vec<&Value> = match t {
                            Value::Array(a) => a.iter().collect(),
                            one => vec![one],
                        };
                        if types.iter().any(|t| *t == "number") {
                            assert!(types.iter().any(|t| *t == "null"), "{at}: {v}");
                        }
                    }
                    for (k, c) in map {
                        check(c, &format!("{at}/{k}"));
                    }
                }
                Value::Array(a) => a.iter().for_each(|c| check(c, at)),
                _ => {}
            }
        }
        check(&schema(), "");
        // And such a value is written as null.
        let mut data = sample_data();
        data.epochs[0].psnr = Some(f64::INFINITY);
        let text = serde_json::to_string(&render_json(&data)).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["report"]["epochs"][0]["psnr"], Value::Null);
    }

    #[test]
    fn report_part_round_trips() {
        let data = sample_data();
        let out = render_json(&data);
        let back: ReportData = serde_json::from_value(out["report"].clone()).unwrap();
        assert_eq!(back, data);
        // Through text too, as a stored report is read back.
        let text = serde_json::to_string(&out).unwrap();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        let back: ReportData = serde_json::from_value(reparsed["report"].clone()).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn recommendations_and_zero_epochs_serialize() {
        let mut data = sample_data();
        data.epochs.clear();
        let out = render_json(&data);
        assert_eq!(out["derived"]["first"], Value::Null);
        let recs = out["recommendations"].as_array().unwrap();
        assert!(
            recs.iter()
                .any(|r| r["rule"] == "no_metrics" && r["severity"] == "warning")
        );
    }
}
