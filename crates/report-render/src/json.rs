//! The JSON report: the stored data, the derived numbers and the
//! recommendations in one document, described by [`JSON_SCHEMA`].

use serde_json::{Value, json};

use crate::data::{ReportData, SCHEMA_VERSION};
use crate::derive::derive;
use crate::recommend::recommendations;

/// JSON Schema (draft 2020-12) of [`render_json`]'s output.
///
/// `report` is [`ReportData`] as serde writes it (timestamps RFC 3339, absent
/// options `null`); `derived` is [`crate::Derived`]; `recommendations` is a
/// list of [`crate::Recommendation`]. Non-finite numbers (an infinite PSNR)
/// are written as `null` by serde_json.
pub const JSON_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "restoreflow-training-report.schema.json",
  "title": "Restoreflow training report",
  "description": "One training run: stored facts (report), numbers derived from them (derived) and advice (recommendations).",
  "type": "object",
  "required": ["schema_version", "report", "derived", "recommendations"],
  "properties": {
    "schema_version": { "const": 1, "description": "Bumped on any incompatible change." },
    "report": {
      "type": "object",
      "description": "The stored facts about the run.",
      "required": ["report_id", "generated_at", "job", "parameters", "data", "epochs", "model", "previous", "environment"],
      "properties": {
        "report_id": { "type": "string" },
        "generated_at": { "type": "string", "format": "date-time" },
        "job": { "$ref": "#/$defs/job" },
        "parameters": { "$ref": "#/$defs/parameters" },
        "data": { "$ref": "#/$defs/data" },
        "epochs": { "type": "array", "items": { "$ref": "#/$defs/epoch" }, "description": "One row per finished epoch, in order." },
        "model": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/model" }] },
        "previous": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/previous" }] },
        "environment": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/environment" }] },
        "gpus": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/gpus" }], "description": "The GPU trainer workers the deployment offered when the report was built (null in older reports)." }
      }
    },
    "derived": {
      "type": "object",
      "description": "Numbers computed from report; each is null when its inputs are missing.",
      "required": ["epochs_recorded", "first", "last", "best", "registered", "improvement", "baseline_psnr", "baseline_ssim", "baseline_accuracy", "best_psnr_gain_db", "last_psnr_gain_db", "data_effectiveness_percent", "skipped_percent_of_valid", "vs_previous", "mean_pairs_per_second", "mean_epoch_seconds", "total_epoch_seconds"],
      "properties": {
        "epochs_recorded": { "type": "integer", "minimum": 0 },
        "first": { "$ref": "#/$defs/optional_epoch" },
        "last": { "$ref": "#/$defs/optional_epoch" },
        "best": { "$ref": "#/$defs/optional_epoch", "description": "Highest PSNR, earliest on ties." },
        "registered": { "$ref": "#/$defs/optional_epoch", "description": "The epoch whose weights were registered." },
        "improvement": {
          "type": "object",
          "description": "First to last change per metric.",
          "properties": {
            "train_loss": { "$ref": "#/$defs/change" },
            "val_loss": { "$ref": "#/$defs/change" },
            "psnr": { "$ref": "#/$defs/change" },
            "ssim": { "$ref": "#/$defs/change" },
            "accuracy": { "$ref": "#/$defs/change" }
          }
        },
        "baseline_psnr": { "type": ["number", "null"], "description": "Identity baseline (degraded vs clean), last epoch's." },
        "baseline_ssim": { "type": ["number", "null"] },
        "baseline_accuracy": { "type": ["number", "null"] },
        "best_psnr_gain_db": { "type": ["number", "null"], "description": "best.psnr - baseline_psnr" },
        "last_psnr_gain_db": { "type": ["number", "null"], "description": "last.psnr - baseline_psnr" },
        "data_effectiveness_percent": { "type": ["number", "null"], "description": "pairs_used / max(clean_files, degraded_files) * 100" },
        "skipped_percent_of_valid": { "type": ["number", "null"], "description": "len(skipped) / valid_pairs * 100" },
        "vs_previous": {
          "oneOf": [{ "type": "null" }, {
            "type": "object",
            "required": ["previous_version", "same_validation_data", "label"],
            "properties": {
              "previous_version": { "type": "integer" },
              "same_validation_data": { "type": "boolean" },
              "label": { "enum": ["same validation data", "different data"] },
              "psnr_delta": { "type": ["number", "null"] },
              "ssim_delta": { "type": ["number", "null"] },
              "val_loss_delta": { "type": ["number", "null"] }
            }
          }]
        },
        "mean_pairs_per_second": { "type": ["number", "null"] },
        "mean_epoch_seconds": { "type": ["number", "null"] },
        "total_epoch_seconds": { "type": "number" }
      }
    },
    "recommendations": {
      "type": "array",
      "items": {
        "type": "object",
        "required": ["rule", "severity", "message"],
        "properties": {
          "rule": { "type": "string", "description": "Stable id, e.g. overfitting." },
          "severity": { "enum": ["info", "warning"] },
          "message": { "type": "string" }
        }
      }
    }
  },
  "$defs": {
    "optional_number": { "type": ["number", "null"] },
    "job": {
      "type": "object",
      "required": ["id", "layer", "status", "created_at", "attempts"],
      "properties": {
        "id": { "type": "string" },
        "layer": { "type": "integer" },
        "status": { "type": "string", "description": "completed | failed | cancelled" },
        "created_at": { "type": "string", "format": "date-time" },
        "started_at": { "type": ["string", "null"], "format": "date-time" },
        "finished_at": { "type": ["string", "null"], "format": "date-time" },
        "duration_seconds": { "type": ["number", "null"] },
        "attempts": { "type": "integer" },
        "error": { "type": ["string", "null"] },
        "stop_reason": { "type": ["string", "null"], "description": "completed | early_stopped | time_budget | cancelled" },
        "resumed_from_epoch": { "type": ["integer", "null"] }
      }
    },
    "parameters": {
      "type": "object",
      "required": ["epochs", "batch_size", "learning_rate", "schedule", "max_pairs", "optimizer", "preset", "patch_size", "seed", "device", "val_fraction"],
      "properties": {
        "epochs": { "type": "integer" },
        "batch_size": { "type": "integer" },
        "learning_rate": { "type": "number" },
        "schedule": { "type": "string" },
        "max_pairs": { "type": "integer", "description": "0: every pair" },
        "optimizer": { "type": "string" },
        "preset": { "type": "string" },
        "patch_size": { "type": "integer" },
        "seed": { "type": "integer" },
        "device": { "type": "string" },
        "val_fraction": { "type": "number" },
        "early_stopping_patience": { "type": ["integer", "null"] },
        "base_model": { "type": ["string", "null"] },
        "dataset": { "type": ["string", "null"] },
        "recipe": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/recipe" }], "description": "How the run trained; null for runs started before training recipes." },
        "validation_view": { "type": ["string", "null"], "description": "What the validation figures were measured on, e.g. centre 256x256 crop or whole page (tiled 256 px, overlap 32)." }
      }
    },
    "recipe": {
      "type": "object",
      "description": "The training recipe as the job's params state it (names as in the training request).",
      "required": ["schedule", "peak_learning_rate", "progressive", "loss", "patch_sampling"],
      "properties": {
        "schedule": { "type": "string", "description": "constant | warmup_cosine | cyclic_cosine" },
        "peak_learning_rate": { "type": "number" },
        "warmup_steps": { "type": ["integer", "null"], "description": "warmup_cosine only" },
        "min_learning_rate": { "type": ["number", "null"], "description": "warmup_cosine and cyclic_cosine only" },
        "progressive": { "type": "array", "items": { "$ref": "#/$defs/progressive_stage" }, "description": "Empty for one patch and batch size throughout." },
        "loss": { "type": "string", "description": "l1 | charbonnier | l1_ssim" },
        "ssim_weight": { "type": ["number", "null"], "description": "l1_ssim only" },
        "ink_weight": { "type": ["number", "null"], "description": "Extra weight of ink pixels in the per-pixel loss (ink counts 1 + ink_weight times paper); null for runs from before the option." },
        "patches_per_page": { "type": ["integer", "null"] },
        "steps_per_epoch": { "type": ["integer", "null"] },
        "patch_sampling": { "type": "string", "description": "ink | uniform" },
        "clip_norm": { "type": ["number", "null"], "description": "null: gradients not clipped" },
        "max_minutes": { "type": ["number", "null"], "description": "Wall-clock budget; null without one." }
      }
    },
    "progressive_stage": {
      "type": "object",
      "required": ["patch_size", "batch_size", "until_step"],
      "properties": {
        "patch_size": { "type": "integer" },
        "batch_size": { "type": "integer" },
        "until_step": { "type": "integer", "description": "First step that no longer belongs to the stage." }
      }
    },
    "data": {
      "type": "object",
      "required": ["location", "files_seen", "clean_files", "degraded_files", "valid_pairs", "pairs_used", "train_pairs", "val_pairs", "skipped"],
      "properties": {
        "location": { "type": "string" },
        "files_seen": { "type": "integer" },
        "clean_files": { "type": "integer" },
        "degraded_files": { "type": "integer" },
        "valid_pairs": { "type": "integer" },
        "pairs_used": { "type": "integer" },
        "train_pairs": { "type": "integer" },
        "val_pairs": { "type": "integer" },
        "skipped": {
          "type": "array",
          "items": { "type": "object", "required": ["name", "reason"], "properties": { "name": { "type": "string" }, "reason": { "type": "string" } } }
        },
        "dataset_id": { "type": ["string", "null"] },
        "dataset_hash": { "type": ["string", "null"] },
        "targets": { "type": "object", "additionalProperties": { "type": "integer" }, "description": "Pairs selected (before skipped ones) per target of their datasets: as_printed | digital | uploaded | unknown; empty for runs recorded before targets." },
        "dpi": { "type": "array", "items": { "type": "integer" }, "description": "The dpi values the datasets recorded, ascending; empty when none did." }
      }
    },
    "epoch": {
      "type": "object",
      "required": ["epoch", "train_loss", "learning_rate", "pairs_per_second", "seconds"],
      "properties": {
        "epoch": { "type": "integer" },
        "train_loss": { "type": "number" },
        "val_loss": { "$ref": "#/$defs/optional_number" },
        "psnr": { "$ref": "#/$defs/optional_number", "description": "dB, restored vs clean" },
        "ssim": { "$ref": "#/$defs/optional_number" },
        "accuracy": { "$ref": "#/$defs/optional_number", "description": "fraction in [0, 1]" },
        "baseline_psnr": { "$ref": "#/$defs/optional_number", "description": "dB, degraded vs clean" },
        "baseline_ssim": { "$ref": "#/$defs/optional_number" },
        "baseline_accuracy": { "$ref": "#/$defs/optional_number" },
        "learning_rate": { "type": "number" },
        "pairs_per_second": { "type": "number" },
        "seconds": { "type": "number" }
      }
    },
    "optional_epoch": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/epoch" }] },
    "change": {
      "oneOf": [{ "type": "null" }, {
        "type": "object",
        "required": ["first", "last", "absolute"],
        "properties": {
          "first": { "type": "number" },
          "last": { "type": "number" },
          "absolute": { "type": "number", "description": "last - first" },
          "percent": { "type": ["number", "null"], "description": "(last - first) / |first| * 100" }
        }
      }]
    },
    "model": {
      "type": "object",
      "required": ["layer", "version", "object_path", "size_bytes", "parameter_count", "architecture", "config", "sha256", "aliases"],
      "properties": {
        "layer": { "type": "integer" },
        "version": { "type": "integer" },
        "object_path": { "type": "string" },
        "size_bytes": { "type": "integer" },
        "parameter_count": { "type": "integer" },
        "architecture": { "type": "string" },
        "config": {},
        "sha256": { "type": "string" },
        "aliases": { "type": "array", "items": { "type": "string" } },
        "best_epoch": { "type": ["integer", "null"] }
      }
    },
    "previous": {
      "type": "object",
      "required": ["version", "same_validation_data"],
      "properties": {
        "version": { "type": "integer" },
        "psnr": { "$ref": "#/$defs/optional_number" },
        "ssim": { "$ref": "#/$defs/optional_number" },
        "val_loss": { "$ref": "#/$defs/optional_number" },
        "dataset_hash": { "type": ["string", "null"] },
        "same_validation_data": { "type": "boolean" }
      }
    },
    "environment": {
      "type": "object",
      "required": ["os", "cpu_model", "cpu_threads", "rustc_version", "crate_versions"],
      "properties": {
        "os": { "type": "string" },
        "cpu_model": { "type": "string" },
        "cpu_threads": { "type": "integer" },
        "gpu": { "type": ["string", "null"] },
        "rustc_version": { "type": "string" },
        "crate_versions": { "type": "object", "additionalProperties": { "type": "string" } },
        "peak_memory_bytes": { "type": ["integer", "null"] },
        "hostname": { "type": ["string", "null"] }
      }
    },
    "gpus": {
      "type": "object",
      "required": ["live_workers", "on_demand"],
      "properties": {
        "live_workers": { "type": "integer", "minimum": 0, "description": "Live trainer workers of the cuda class." },
        "on_demand": { "type": "boolean", "description": "Whether the deployment starts CUDA workers on demand." }
      }
    }
  }
}"##;

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
        let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
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
        serde_json::from_str(JSON_SCHEMA).expect("JSON_SCHEMA is valid JSON")
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
        let report = &schema["properties"]["report"];
        for key in keys(&report["properties"]) {
            assert!(out["report"].get(&key).is_some(), "report lacks {key}");
        }
        for key in keys(&out["report"]) {
            assert!(
                report["properties"].get(&key).is_some(),
                "schema lacks report.{key}"
            );
        }
        for key in keys(&schema["properties"]["derived"]["properties"]) {
            assert!(out["derived"].get(&key).is_some(), "derived lacks {key}");
        }
        for key in keys(&out["derived"]) {
            assert!(
                schema["properties"]["derived"]["properties"]
                    .get(&key)
                    .is_some(),
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
            ("job", &report["job"]),
            ("parameters", &report["parameters"]),
            ("recipe", &report["parameters"]["recipe"]),
            (
                "progressive_stage",
                &report["parameters"]["recipe"]["progressive"][0],
            ),
            ("data", &report["data"]),
            ("epoch", &report["epochs"][0]),
            ("model", &report["model"]),
            ("previous", &report["previous"]),
            ("environment", &report["environment"]),
            ("gpus", &report["gpus"]),
        ] {
            let props = &schema["$defs"][def]["properties"];
            assert_eq!(keys(props).len(), keys(value).len(), "{def}");
            for key in keys(value) {
                assert!(props.get(&key).is_some(), "$defs.{def} lacks {key}");
            }
        }
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
