//! restoreflow's gRPC contracts and shared error codes.
//!
//! The `.proto` files live in the workspace's top-level `proto/` directory and
//! are compiled here by `build.rs` with protox, so no system `protoc` is needed.
//! Every service and client depends on this crate, and on nothing of each other.
//!
//! [`ErrorCode`] is the single vocabulary of failure: each code maps to one
//! `tonic::Code` and one HTTP status, in both directions where that is lossless.

mod error_code;

pub use error_code::ErrorCode;

/// Generated messages, clients and servers of package `restoreflow.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("restoreflow.v1");
}

/// Encoded `FileDescriptorSet` of every restoreflow proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/restoreflow_descriptor.bin"));

pub use prost_types;
pub use tonic;

/// Converts a JSON value into a protobuf `Struct` (non-objects are wrapped as `{"value": ...}`).
pub fn json_to_struct(value: &serde_json::Value) -> prost_types::Struct {
    match value {
        serde_json::Value::Object(map) => prost_types::Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        serde_json::Value::Null => prost_types::Struct::default(),
        other => prost_types::Struct {
            fields: [("value".to_string(), json_to_value(other))].into(),
        },
    }
}

/// Converts a JSON value into a protobuf `Value`.
pub fn json_to_value(value: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A job's params exactly as stored: from `params_json` when the sender set
/// it (integers past 2^53 intact), else from the `params` Struct.
pub fn job_params(job: &v1::Job) -> serde_json::Value {
    exact_or_struct(&job.params_json, job.params.as_ref()).unwrap_or(serde_json::Value::Null)
}

/// A job's result exactly as stored (see [`job_params`]); `None` without one.
pub fn job_result(job: &v1::Job) -> Option<serde_json::Value> {
    exact_or_struct(&job.result_json, job.result.as_ref())
}

/// A job event's payload exactly as stored (see [`job_params`]).
pub fn event_payload(event: &v1::JobEvent) -> serde_json::Value {
    exact_or_struct(&event.payload_json, event.payload.as_ref()).unwrap_or(serde_json::Value::Null)
}

/// A model version's config exactly as registered (see [`job_params`]).
pub fn version_config(version: &v1::ModelVersion) -> serde_json::Value {
    exact_or_struct(&version.config_json, version.config.as_ref())
        .unwrap_or(serde_json::Value::Null)
}

/// A model version's metrics exactly as registered (see [`job_params`]).
pub fn version_metrics(version: &v1::ModelVersion) -> serde_json::Value {
    exact_or_struct(&version.metrics_json, version.metrics.as_ref())
        .unwrap_or(serde_json::Value::Null)
}

/// A dataset's manifest summary (`{}` when it has none).
pub fn dataset_manifest(dataset: &v1::Dataset) -> serde_json::Value {
    serde_json::from_str(&dataset.manifest_json)
        .unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}

fn exact_or_struct(
    text: &str,
    fallback: Option<&prost_types::Struct>,
) -> Option<serde_json::Value> {
    if !text.is_empty()
        && let Ok(v) = serde_json::from_str(text)
    {
        return Some(v);
    }
    fallback.map(struct_to_json)
}

/// Converts a protobuf `Struct` back into JSON.
pub fn struct_to_json(s: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

/// Converts a protobuf `Value` back into JSON.
pub fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            // Integral values round-trip as JSON integers so ids and counts stay exact.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_params_keep_integers_a_double_cannot() {
        let seed: u64 = 9_223_372_036_854_775_813;
        let params = serde_json::json!({"seed": seed, "preset": "tiny"});
        let mut job = v1::Job {
            params: Some(json_to_struct(&params)),
            params_json: params.to_string(),
            ..Default::default()
        };
        assert_eq!(job_params(&job)["seed"].as_u64(), Some(seed));
        // Through the Struct alone the seed is rounded: why the text exists.
        assert_ne!(
            struct_to_json(job.params.as_ref().unwrap())["seed"].as_u64(),
            Some(seed)
        );
        job.params_json.clear();
        assert_eq!(job_params(&job)["preset"], "tiny");
        assert_eq!(job_result(&job), None);
        job.result_json = r#"{"version": 3}"#.into();
        assert_eq!(job_result(&job).unwrap()["version"], 3);
    }

    #[test]
    fn json_struct_round_trip() {
        let v = serde_json::json!({"a": 1, "b": [true, "x", 2.5], "c": {"d": null}});
        assert_eq!(struct_to_json(&json_to_struct(&v)), v);
    }

    #[test]
    fn descriptor_set_names_every_service() {
        let fds = <prost_types::FileDescriptorSet as prost::Message>::decode(FILE_DESCRIPTOR_SET)
            .expect("descriptor set is generated by build.rs");
        let services: Vec<String> = fds
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(|s| s.name().to_string()))
            .collect();
        for name in [
            "SyntheticDataService",
            "TrainerService",
            "ModelRegistryService",
            "ReportService",
            "EvaluationService",
            "RestorationService",
        ] {
            assert!(services.iter().any(|s| s == name), "{name} missing");
        }
    }
}
