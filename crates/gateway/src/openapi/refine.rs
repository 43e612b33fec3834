//! The rules the handlers and services enforce, written into the OpenAPI
//! document so that a client (or a fuzzer) knows them before it asks: the
//! names each string accepts, the bounds of each number, the formats of ids,
//! and which fields exclude each other. The derive macros cannot say most of
//! these (`not`, `multipleOf`, enums over `String` fields), so they are
//! patched into the generated JSON here, next to each other, and tests keep
//! the name lists equal to the ones the code uses.

use serde_json::{Map, Value, json};

/// Training model sizes.
pub const MODEL_PRESETS: [&str; 3] = ["tiny", "small", "base"];
/// Devices a job or restoration asks for (`auto`: a GPU when one is live).
pub const DEVICES: [&str; 3] = ["cpu", "cuda", "auto"];
/// Training matmul precisions.
pub const PRECISIONS: [&str; 3] = ["f32", "tf32", "auto"];
/// Learning-rate schedules.
pub const SCHEDULES: [&str; 3] = ["warmup_cosine", "constant", "cyclic_cosine"];
/// Training losses.
pub const LOSSES: [&str; 3] = ["l1", "charbonnier", "l1_ssim"];
/// Where training patches are taken.
pub const PATCH_SAMPLING: [&str; 3] = ["ink", "damage", "uniform"];
/// What validation measures.
pub const VAL_VIEWS: [&str; 2] = ["center_crop", "whole_page"];
/// Restoration pipelines.
pub const PIPELINES: [&str; 3] = ["layer2", "layer1", "layer1+layer2"];
/// Pipelines an evaluation of a Layer 2 model runs.
pub const EVALUATION_PIPELINES: [&str; 2] = ["layer2", "layer1+layer2"];
/// Report formats (with their long spellings).
pub const REPORT_FORMATS: [&str; 6] = ["txt", "text", "md", "markdown", "json", "html"];
/// Synthetic-data degradation presets.
pub const SYNTHETIC_PRESETS: [&str; 9] = [
    "light",
    "scan",
    "photo",
    "heavy",
    "mixed",
    "office_copier",
    "archive",
    "phone_photo",
    // The replaced system's name for a clean document scan: `light`.
    "document-clean",
];
/// Synthetic-data degradation families.
pub const FAMILIES: [&str; 30] = [
    "gaussian_noise",
    "poisson_noise",
    "speckle_noise",
    "salt_pepper",
    "gaussian_blur",
    "motion_blur",
    "defocus_blur",
    "low_resolution",
    "jpeg",
    "uneven_illumination",
    "shadow",
    "contrast_gamma",
    "fold_crease",
    "paper_texture",
    "stains",
    "coffee_ring",
    "watermark",
    "ink_bleed",
    "bleed_through",
    "faded_ink",
    "broken_strokes",
    "scanner_lines",
    "halftone",
    "photocopy",
    "ink_colour_swap",
    "coloured_paper",
    "low_ink_lines",
    "hollow_strokes",
    "dithering",
    "dirty_drum",
];
/// Dataset splits of generated pairs.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];
/// What the clean half of a generated pair holds.
pub const TARGETS: [&str; 2] = ["as_printed", "digital"];
/// Whole-sheet page sizes.
pub const PAGE_SIZES: [&str; 2] = ["a4", "letter"];
/// What generated pages hold.
pub const CONTENTS: [&str; 2] = ["mixed", "text"];

/// The first seed of the held-out range a `test` split draws from.
pub const HELD_OUT_SEEDS: u64 = 1 << 63;

/// Model layers.
const LAYERS: [u32; 2] = [1, 2];
/// A model alias: lower-case letters, digits, `_` and `-`, not all digits
/// (with [`alias`]'s length).
const ALIAS_PATTERN: &str = "^[a-z0-9_-]*[a-z_-][a-z0-9_-]*$";
/// A version number.
const VERSION_PATTERN: &str = "^[1-9][0-9]{0,8}$";
/// A version reference: a number or an alias.
const VERSION_REF_PATTERN: &str = "^([1-9][0-9]{0,8}|[a-z0-9_-]*[a-z_-][a-z0-9_-]*)$";
/// One segment of an object key: 1-255 characters, no `/`, backslash or
/// control character, not `.` or `..` (the server counts 255 bytes).
const SEGMENT: &str = r"(?:[^/\\\x00-\x1f\x7f-\x9f.][^/\\\x00-\x1f\x7f-\x9f]{0,254}|\.[^/\\\x00-\x1f\x7f-\x9f.][^/\\\x00-\x1f\x7f-\x9f]{0,253}|\.\.[^/\\\x00-\x1f\x7f-\x9f]{1,253})";
/// A decimal offset token of the listings that page by offset.
const OFFSET_TOKEN_PATTERN: &str = "^(0|[1-9][0-9]{0,8}|1000000000)?$";
/// The page token of `GET /jobs`: a position in the newest-first order
/// (`{unix seconds}.{nanoseconds}_{job id}`), or empty (the first page).
const JOB_CURSOR_PATTERN: &str =
    "^([0-9]{1,12}\\.[0-9]{9}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$";
/// Largest version number (the registry stores them as 32-bit integers).
const MAX_VERSION: u64 = i32::MAX as u64;
/// A dataset id.
const DATASET_ID_PATTERN: &str = "^[a-z0-9_-]{1,64}$";

/// What the gateway knows of limits configured elsewhere.
pub struct Limits {
    /// `synthetic_data.max_images`.
    pub max_images: u32,
    /// The bucket names.
    pub buckets: Vec<&'static str>,
    /// Job kinds.
    pub job_kinds: Vec<&'static str>,
    /// Job statuses.
    pub job_statuses: Vec<&'static str>,
}

/// Writes every rule into `doc` (the generated document as JSON).
pub fn refine(doc: &mut Value, limits: &Limits) {
    let names = |list: &[&str]| json!({ "enum": list });
    let uint = |min: u64, max: u64| json!({ "minimum": min, "maximum": max });
    let uuid = json!({ "format": "uuid" });
    let layer = json!({ "enum": LAYERS });
    let any_u64 = json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX });

    // Training.
    for (field, rule) in [
        ("num_epochs", uint(0, 1000)),
        ("batch_size", uint(0, 64)),
        ("max_pairs", json!({ "not": { "const": 1 } })),
        (
            "learning_rate",
            json!({ "exclusiveMinimum": 0, "exclusiveMaximum": 1 }),
        ),
        (
            "patch_size",
            json!({ "minimum": 16, "maximum": 512, "multipleOf": 8 }),
        ),
        ("preset", names(&MODEL_PRESETS)),
        (
            "val_fraction",
            json!({ "exclusiveMinimum": 0, "maximum": 0.5 }),
        ),
        ("val_pages", uint(1, 100_000)),
        ("seed", any_u64.clone()),
        ("device", names(&DEVICES)),
        ("precision", names(&PRECISIONS)),
        ("dataset", prefix(0)),
        ("base_model", version_ref()),
        ("early_stopping", uint(1, u64::from(u32::MAX))),
        ("schedule", names(&SCHEDULES)),
        ("warmup_steps", uint(0, 100_000)),
        (
            "min_learning_rate",
            json!({ "minimum": 0, "exclusiveMaximum": 1 }),
        ),
        ("progressive", json!({ "minItems": 1, "maxItems": 8 })),
        ("loss", names(&LOSSES)),
        ("ssim_weight", json!({ "minimum": 0, "maximum": 10 })),
        ("ink_weight", json!({ "minimum": 0, "maximum": 20 })),
        ("patches_per_page", uint(1, 256)),
        ("steps_per_epoch", uint(1, 100_000)),
        ("patch_sampling", names(&PATCH_SAMPLING)),
        ("clip_norm", json!({ "exclusiveMinimum": 0 })),
        (
            "max_minutes",
            json!({ "exclusiveMinimum": 0, "maximum": 10080 }),
        ),
        ("val_view", names(&VAL_VIEWS)),
        (
            "val_crop_size",
            json!({ "minimum": 32, "maximum": 1024, "multipleOf": 8 }),
        ),
    ] {
        property(doc, "StartBody", field, rule);
    }
    exclusive(
        doc,
        "StartBody",
        &[
            ("patch_size", "progressive"),
            ("patches_per_page", "steps_per_epoch"),
        ],
    );
    // Options that belong to some choices of another field; `default` is
    // whether the choice taken when that field is absent is one of them.
    for (field, other, allowed, default) in [
        ("warmup_steps", "schedule", &["warmup_cosine"][..], true),
        (
            "min_learning_rate",
            "schedule",
            &["warmup_cosine", "cyclic_cosine"][..],
            true,
        ),
        ("ssim_weight", "loss", &["l1_ssim"][..], false),
        ("val_crop_size", "val_view", &["center_crop"][..], true),
    ] {
        let shape = if default {
            json!({
                "required": [field, other],
                "properties": {
                    field: { "not": { "type": "null" } },
                    other: { "type": "string", "not": { "enum": allowed } }
                }
            })
        } else {
            json!({
                "required": [field],
                "properties": {
                    field: { "not": { "type": "null" } },
                    other: { "not": { "enum": allowed } }
                }
            })
        };
        forbid(doc, "StartBody", shape);
    }
    property(
        doc,
        "StageBody",
        "patch_size",
        json!({ "minimum": 16, "maximum": 512, "multipleOf": 8 }),
    );
    property(doc, "StageBody", "batch_size", uint(1, 64));
    property(doc, "StageBody", "until_step", uint(1, u64::MAX));

    // Synthetic data.
    property(
        doc,
        "GenerateBody",
        "num_images",
        uint(1, u64::from(limits.max_images)),
    );
    let degradation: Vec<&str> = FAMILIES
        .iter()
        .chain(SYNTHETIC_PRESETS.iter())
        .copied()
        .collect();
    property(doc, "GenerateBody", "degradation_type", names(&degradation));
    property(doc, "GenerateBody", "preset", names(&SYNTHETIC_PRESETS));
    property(doc, "GenerateBody", "seed", any_u64.clone());
    property(doc, "GenerateBody", "width", uint(64, 4096));
    property(doc, "GenerateBody", "height", uint(64, 4096));
    property(doc, "GenerateBody", "split", names(&SPLITS));
    property(doc, "GenerateBody", "target", names(&TARGETS));
    property(doc, "GenerateBody", "dpi", uint(50, 300));
    property(doc, "GenerateBody", "page_size", names(&PAGE_SIZES));
    property(doc, "GenerateBody", "content", names(&CONTENTS));
    property(
        doc,
        "GenerateBody",
        "fonts",
        json!({ "minItems": 1, "maxItems": 32 }),
    );
    items(
        doc,
        "GenerateBody",
        "fonts",
        json!({ "pattern": "\\S", "maxLength": 128 }),
    );
    property(
        doc,
        "GenerateBody",
        "steps",
        json!({ "minItems": 1, "maxItems": 64 }),
    );
    // Seeds from 2^63 up belong to test splits only (a train or validation
    // page never repeats a test page).
    forbid(
        doc,
        "GenerateBody",
        json!({
            "required": ["seed"],
            "properties": {
                "seed": { "type": "integer", "minimum": HELD_OUT_SEEDS },
                "split": { "not": { "const": "test" } }
            }
        }),
    );
    exclusive(
        doc,
        "GenerateBody",
        &[
            ("page_size", "width"),
            ("page_size", "height"),
            ("preset", "degradation_type"),
            ("steps", "preset"),
            ("steps", "degradation_type"),
        ],
    );
    // A test split draws its seeds from the held-out range.
    forbid(
        doc,
        "GenerateBody",
        json!({
            "required": ["split", "seed"],
            "properties": {
                "split": { "const": "test" },
                "seed": { "type": "integer", "maximum": HELD_OUT_SEEDS - 1 }
            }
        }),
    );
    property(doc, "StepBody", "family", names(&FAMILIES));
    property(
        doc,
        "StepBody",
        "probability",
        json!({ "minimum": 0, "maximum": 1 }),
    );
    property(doc, "DegradeForm", "preset", names(&SYNTHETIC_PRESETS));
    property(doc, "DegradeForm", "degradation_type", names(&degradation));
    property(doc, "DegradeForm", "seed", any_u64.clone());
    parameter(doc, "get", "/synthetic/datasets", "limit", uint(1, 200));
    parameter(doc, "get", "/synthetic/datasets", "page_size", uint(1, 200));
    parameter(
        doc,
        "get",
        "/synthetic/datasets",
        "page_token",
        json!({ "pattern": OFFSET_TOKEN_PATTERN }),
    );
    parameter(
        doc,
        "get",
        "/synthetic/datasets",
        "offset",
        uint(0, 1_000_000_000),
    );

    // Jobs.
    parameter(doc, "get", "/jobs", "kind", names(&limits.job_kinds));
    parameter(doc, "get", "/jobs", "status", names(&limits.job_statuses));
    parameter(doc, "get", "/jobs", "limit", uint(1, 200));
    parameter(doc, "get", "/jobs", "page_size", uint(1, 200));
    parameter(
        doc,
        "get",
        "/jobs",
        "page_token",
        json!({ "pattern": JOB_CURSOR_PATTERN }),
    );
    parameter(
        doc,
        "get",
        "/jobs",
        "offset",
        uint(0, crate::routes::jobs::MAX_JOBS_OFFSET),
    );
    parameter(doc, "get", "/jobs/{id}/events", "limit", uint(1, 1000));
    for (method, path) in [
        ("get", "/jobs/{id}"),
        ("get", "/jobs/{id}/events"),
        ("post", "/jobs/{id}/cancel"),
        ("get", "/training/jobs/{id}"),
        ("get", "/training/jobs/{id}/events"),
        ("post", "/training/jobs/{id}/cancel"),
        ("get", "/evaluation/{id}"),
    ] {
        parameter(doc, method, path, "id", uuid.clone());
    }
    parameter(
        doc,
        "get",
        "/training/jobs",
        "status",
        names(&limits.job_statuses),
    );
    parameter(doc, "get", "/training/jobs", "limit", uint(1, 200));
    parameter(doc, "get", "/training/jobs", "page_size", uint(1, 200));
    property(
        doc,
        "TrainingJobView",
        "status",
        names(&limits.job_statuses),
    );
    parameter(
        doc,
        "get",
        "/training/jobs",
        "page_token",
        json!({ "pattern": OFFSET_TOKEN_PATTERN }),
    );

    // Reports.
    parameter(doc, "get", "/training/reports", "layer", layer.clone());
    parameter(doc, "get", "/training/reports", "page_size", uint(0, 200));
    parameter(
        doc,
        "get",
        "/training/reports",
        "page_token",
        json!({ "pattern": OFFSET_TOKEN_PATTERN }),
    );
    for path in ["/training/reports/{id}", "/training/reports/job/{job_id}"] {
        parameter(doc, "get", path, "format", names(&REPORT_FORMATS));
    }
    parameter(
        doc,
        "get",
        "/training/reports/job/{job_id}",
        "job_id",
        uuid.clone(),
    );
    parameter(doc, "get", "/training/reports/{id}", "id", uuid.clone());
    parameter(
        doc,
        "get",
        "/training/reports/{id}/charts/{name}",
        "id",
        uuid.clone(),
    );
    parameter(
        doc,
        "get",
        "/training/reports/{id}/charts/{name}",
        "name",
        json!({ "pattern": "^[A-Za-z0-9_.-]{1,128}\\.png$" }),
    );

    // Files.
    let buckets = names(&limits.buckets);
    for (method, path) in [
        ("get", "/files/{bucket}"),
        ("get", "/files/{bucket}/{key}"),
        ("put", "/files/{bucket}/{key}"),
    ] {
        parameter(doc, method, path, "bucket", buckets.clone());
    }
    parameter(doc, "get", "/files/{bucket}", "limit", uint(1, 1000));
    parameter(doc, "get", "/files/{bucket}", "page_size", uint(1, 1000));
    parameter(doc, "get", "/files/{bucket}", "prefix", prefix(0));
    for method in ["get", "put"] {
        parameter(doc, method, "/files/{bucket}/{key}", "key", key());
    }
    // An empty upload is an empty object.
    operation(doc, "put", "/files/{bucket}/{key}")["requestBody"]["required"] = json!(false);

    // Models.
    for (method, path) in [
        ("get", "/models/layer/{layer}"),
        ("get", "/models/layer/{layer}/{version}"),
        ("delete", "/models/layer/{layer}/{version}"),
        ("get", "/models/layer/{layer}/{version}/download"),
        ("put", "/models/layer/{layer}/aliases/{alias}"),
        ("post", "/models/layer/{layer}/retention"),
        ("get", "/models/compare"),
    ] {
        parameter(doc, method, path, "layer", layer.clone());
    }
    for (method, path) in [
        ("get", "/models/layer/{layer}/{version}"),
        ("get", "/models/layer/{layer}/{version}/download"),
    ] {
        parameter(doc, method, path, "version", version_ref());
    }
    parameter(
        doc,
        "delete",
        "/models/layer/{layer}/{version}",
        "version",
        json!({ "pattern": VERSION_PATTERN }),
    );
    parameter(doc, "get", "/models/layer/{layer}", "limit", uint(1, 1000));
    parameter(
        doc,
        "get",
        "/models/layer/{layer}",
        "page_size",
        uint(1, 1000),
    );
    // Empty filters filter nothing.
    parameter(
        doc,
        "get",
        "/models/layer/{layer}",
        "alias",
        json!({ "pattern": format!("^({}|)$", &ALIAS_PATTERN[1..ALIAS_PATTERN.len() - 1]), "maxLength": 64 }),
    );
    for filter in ["training_job_id", "dataset_id"] {
        parameter(
            doc,
            "get",
            "/models/layer/{layer}",
            filter,
            json!({ "maxLength": 64 }),
        );
    }
    parameter(
        doc,
        "get",
        "/models/layer/{layer}",
        "page_token",
        json!({ "pattern": "^([1-9][0-9]{0,8})?$" }),
    );
    // `latest` always names the newest version; the registry sets it.
    let mut settable = alias();
    settable["not"] = json!({ "enum": ["latest", "aliases", "retention"] });
    parameter(
        doc,
        "put",
        "/models/layer/{layer}/aliases/{alias}",
        "alias",
        settable,
    );
    parameter(doc, "get", "/models/compare", "a", version_ref());
    parameter(doc, "get", "/models/compare", "b", version_ref());
    property(doc, "AliasBody", "version", uint(1, MAX_VERSION));
    property(
        doc,
        "RetentionBody",
        "keep_last",
        uint(1, u64::from(u32::MAX)),
    );

    // Evaluation.
    property(doc, "RunBody", "layer", layer.clone());
    property(doc, "RunBody", "version", uint(1, MAX_VERSION));
    property(doc, "RunBody", "alias", alias());
    property(doc, "RunBody", "dataset", prefix(1));
    property(doc, "RunBody", "pipeline", names(&EVALUATION_PIPELINES));
    property(doc, "RunBody", "device", names(&DEVICES));
    exclusive(doc, "RunBody", &[("version", "alias")]);
    // A pipeline is a Layer 2 choice.
    forbid(
        doc,
        "RunBody",
        json!({
            "required": ["layer", "pipeline"],
            "properties": { "layer": { "const": 1 }, "pipeline": { "not": { "type": "null" } } }
        }),
    );
    parameter(doc, "get", "/evaluation", "layer", layer.clone());
    parameter(doc, "get", "/evaluation", "page_size", uint(0, 200));
    parameter(
        doc,
        "get",
        "/evaluation",
        "version",
        uint(1, u64::from(u32::MAX)),
    );
    parameter(
        doc,
        "get",
        "/evaluation",
        "page_token",
        json!({ "pattern": OFFSET_TOKEN_PATTERN }),
    );
    property(
        doc,
        "DatasetBody",
        "name",
        json!({ "pattern": DATASET_ID_PATTERN }),
    );
    property(doc, "DatasetBody", "prefix", prefix(1));
    property(doc, "Layer1Body", "max_images", uint(1, 200));
    property(doc, "Layer1Body", "dataset", prefix(0));

    // Restoration.
    property(doc, "RestoreForm", "pipeline", names(&PIPELINES));
    property(
        doc,
        "RestoreForm",
        "version",
        json!({ "pattern": VERSION_PATTERN }),
    );
    property(doc, "RestoreForm", "alias", alias());
    property(doc, "RestoreForm", "layer", layer.clone());
    property(doc, "RestoreForm", "device", names(&DEVICES));
    property(doc, "BatchBody", "device", names(&DEVICES));
    property(doc, "BatchBody", "bucket", buckets);
    property(doc, "BatchBody", "prefix", prefix(0));
    property(doc, "BatchBody", "version", version_ref());
    property(doc, "BatchBody", "pipeline", names(&PIPELINES));
    property(doc, "BatchBody", "output_prefix", prefix(1));
    property(doc, "BatchBody", "max_images", uint(1, u64::from(u32::MAX)));
    // Every Layer 1 evaluation field is optional: no body means the defaults.
    if let Some(required) = component(doc, "Layer1Body")
        .get_mut("required")
        .and_then(Value::as_array_mut)
    {
        required.retain(|f| f != "params");
    }
    operation(doc, "post", "/training/layer1/evaluate")["requestBody"]["required"] = json!(false);
    // The weights themselves, or (presigned) where to fetch them.
    operation(doc, "get", "/models/layer/{layer}/{version}/download")["responses"]["200"]["content"]
        ["application/octet-stream"] =
        json!({ "schema": { "type": "string", "format": "binary" } });
    // (The forms' "version or alias" and "preset or degradation_type" stay
    // in their descriptions: a `not` in a multipart schema is more than the
    // fuzzer's form encoder takes.)
    component(doc, "Layer1Body")["properties"]["params"]["type"] = json!(["object", "null"]);
    for form in ["RestoreForm", "DegradeForm"] {
        component(doc, form).insert("additionalProperties".into(), json!(false));
    }

    // What the server's state can answer to a well-formed request: a model,
    // dataset or job that is not there (404), data or fonts this host does
    // not have, or a name already taken (409).
    for (method, path, status, description) in [
        (
            "post",
            "/restore/batch",
            "404",
            "no such model version or alias",
        ),
        (
            "post",
            "/restore/document",
            "404",
            "no such model version or alias",
        ),
        (
            "post",
            "/evaluation/run",
            "404",
            "no such model version, alias or dataset",
        ),
        (
            "post",
            "/training/layer2/start",
            "404",
            "no such base model",
        ),
        (
            "post",
            "/training/layer2/start",
            "409",
            "not enough clean/degraded pairs stored, or no live worker has the device",
        ),
        (
            "post",
            "/restore/batch",
            "409",
            "no live worker has the device",
        ),
        (
            "post",
            "/restore/document",
            "409",
            "the trainer replica serving the call has another device (use /restore/batch)",
        ),
        (
            "post",
            "/training/layer1/evaluate",
            "409",
            "no clean/degraded pairs stored",
        ),
        (
            "post",
            "/training/layer1/evaluate",
            "404",
            "no such Layer 1 version",
        ),
        (
            "post",
            "/synthetic/generate",
            "409",
            "a font family this host does not have",
        ),
        (
            "post",
            "/evaluation/datasets",
            "409",
            "the dataset exists, or no pairs match the prefix",
        ),
        (
            "post",
            "/evaluation/run",
            "409",
            "no clean/degraded pairs match the dataset, or no live worker has the device",
        ),
        (
            "put",
            "/files/{bucket}/{key}",
            "409",
            "the key clashes with a stored key (local store: `a` and `a/...`)",
        ),
        (
            "get",
            "/models/layer/{layer}/{version}/download",
            "409",
            "presigned=true on a system without the S3 backend",
        ),
    ] {
        respond(doc, method, path, status, description);
    }

    // Each server-sent event: its name, id and JSON data.
    operation(doc, "get", "/training/jobs/{id}/events")["responses"]["200"]["content"]["text/event-stream"]
        ["schema"] = json!({
        "type": "object",
        "properties": {
            "event": { "type": "string" },
            "id": { "type": "string" },
            "data": { "type": "string" },
            "retry": { "type": "integer" }
        }
    });
}

/// Declares that `method path` may answer `status` (with the error body).
fn respond(doc: &mut Value, method: &str, path: &str, status: &str, description: &str) {
    let responses = operation(doc, method, path)
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{method} {path} has no responses"));
    responses.entry(status.to_string()).or_insert_with(|| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
        })
    });
}

/// An object key's rule.
fn key() -> Value {
    json!({ "pattern": format!("^{SEGMENT}(?:/{SEGMENT})*$"), "maxLength": 1024 })
}

/// A key prefix's rule (may be empty, may end with `/`).
fn prefix(min_length: u64) -> Value {
    json!({
        "pattern": format!("^(?:{SEGMENT}(?:/{SEGMENT})*/?)?$"),
        "minLength": min_length,
        "maxLength": 1000
    })
}

/// An alias's rule.
fn alias() -> Value {
    json!({ "pattern": ALIAS_PATTERN, "minLength": 1, "maxLength": 64 })
}

/// A version reference's rule (a number or an alias).
fn version_ref() -> Value {
    json!({ "pattern": VERSION_REF_PATTERN, "minLength": 1, "maxLength": 64 })
}

/// Merges `rule` into a schema. An enum over a field that may be `null`
/// keeps `null` among its values.
fn merge(schema: &mut Value, rule: Value) {
    let Some(schema) = schema.as_object_mut() else {
        return;
    };
    let nullable = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        _ => false,
    };
    for (k, v) in rule.as_object().cloned().unwrap_or_default() {
        let v = match (k.as_str(), v) {
            ("enum", Value::Array(mut values)) if nullable => {
                values.push(Value::Null);
                Value::Array(values)
            }
            ("type", v) if nullable => json!([v, "null"]),
            (_, v) => v,
        };
        schema.insert(k, v);
    }
    // A given format (e.g. `int64` of a `u64`) would bound the values
    // narrower than the explicit limits say.
    if schema.contains_key("maximum") && schema.get("format").is_some_and(|f| f != "uuid") {
        schema.remove("format");
    }
}

fn component<'a>(doc: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    doc.pointer_mut(&format!("/components/schemas/{name}"))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the document has no schema {name}"))
}

/// Merges `rule` into property `field` of component schema `name`.
fn property(doc: &mut Value, name: &str, field: &str, rule: Value) {
    let schema = component(doc, name)
        .get_mut("properties")
        .and_then(|p| p.get_mut(field))
        .unwrap_or_else(|| panic!("schema {name} has no property {field}"));
    merge(schema, rule);
}

/// Merges `rule` into the item schema of array property `field`.
fn items(doc: &mut Value, name: &str, field: &str, rule: Value) {
    let schema = component(doc, name)
        .get_mut("properties")
        .and_then(|p| p.get_mut(field))
        .and_then(|f| f.get_mut("items"))
        .unwrap_or_else(|| panic!("schema {name}.{field} has no items"));
    merge(schema, rule);
}

/// Says that no two fields of each pair may both be given (a `null` counts
/// as not given).
fn exclusive(doc: &mut Value, name: &str, pairs: &[(&str, &str)]) {
    let both: Vec<Value> = pairs
        .iter()
        .map(|(a, b)| {
            json!({
                "required": [a, b],
                "properties": { *a: { "not": { "type": "null" } }, *b: { "not": { "type": "null" } } }
            })
        })
        .collect();
    for b in both {
        forbid(doc, name, b);
    }
}

/// Says that no body may match `shape` (added to the schema's `not`).
fn forbid(doc: &mut Value, name: &str, shape: Value) {
    let not = component(doc, name)
        .entry("not")
        .or_insert_with(|| json!({ "anyOf": [] }));
    if let Some(list) = not.get_mut("anyOf").and_then(Value::as_array_mut) {
        list.push(shape);
    }
}

/// Merges `rule` into the schema of parameter `param` of an operation.
fn parameter(doc: &mut Value, method: &str, path: &str, param: &str, rule: Value) {
    let params = operation(doc, method, path)
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("{method} {path} has no parameters"));
    let p = params
        .iter_mut()
        .find(|p| p["name"] == param)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {param}"));
    merge(&mut p["schema"], rule);
}

/// Operation `method path` of the document; a rule for one that is not
/// there is a bug of this file (the tests build the document).
fn operation<'a>(doc: &'a mut Value, method: &str, path: &str) -> &'a mut Value {
    doc.get_mut("paths")
        .and_then(|p| p.get_mut(path))
        .and_then(|p| p.get_mut(method))
        .unwrap_or_else(|| panic!("the document has no operation {method} {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        crate::openapi::document(&restoreflow_core::Settings::default())
    }

    #[test]
    fn every_rule_finds_its_place_and_the_lists_match_the_code() {
        let doc = doc();
        let kinds = doc
            .pointer("/paths/~1jobs/get/parameters")
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().find(|p| p["name"] == "kind"))
            .map(|p| p["schema"]["enum"].clone())
            .unwrap();
        let expected: Vec<&str> = restoreflow_core::db::JobKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(kinds, json!(expected));
        let preset = &doc["components"]["schemas"]["StartBody"]["properties"]["preset"];
        assert_eq!(preset["enum"], json!(["tiny", "small", "base", null]));
        let patch = &doc["components"]["schemas"]["StartBody"]["properties"]["patch_size"];
        assert_eq!(patch["multipleOf"], 8);
        assert!(doc["components"]["schemas"]["StartBody"]["not"]["anyOf"].is_array());
        let layer1 = &doc["paths"]["/training/layer1/evaluate"]["post"];
        assert_eq!(layer1["requestBody"]["required"], false);
        assert_eq!(
            layer1["responses"]["409"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }

    #[test]
    fn key_patterns_accept_what_the_store_accepts() {
        // The same rules as `storage::validate_key`, spelled as a regex.
        let doc = doc();
        let key = doc
            .pointer("/paths/~1files~1{bucket}~1{key}/get/parameters")
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().find(|p| p["name"] == "key"))
            .map(|p| p["schema"]["pattern"].as_str().unwrap().to_string())
            .unwrap();
        let key = regex::Regex::new(&key).unwrap();
        let long = "a".repeat(256);
        let longest = "a".repeat(255);
        for bad in [
            "", "/a", "a//b", "a/", "a/../b", ".", "..", "a\\b", "a\u{7}b", &long,
        ] {
            assert!(
                restoreflow_core::storage::validate_key(bad).is_err(),
                "{bad}"
            );
            assert!(!key.is_match(bad), "{bad}");
        }
        for good in [
            "a",
            "a/b.png",
            "..a/b",
            ".x",
            "...",
            "clean/page 1.png",
            &longest,
        ] {
            assert!(
                restoreflow_core::storage::validate_key(good).is_ok(),
                "{good}"
            );
            assert!(key.is_match(good), "{good}");
        }
    }
}
