//! The OpenAPI 3.1 document served at `/openapi.json` (Swagger UI at `/docs`).

pub mod refine;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API description: title, tags, security and shared schemas. The
/// paths come from the router itself ([`crate::api`]).
#[derive(OpenApi)]
#[openapi(
    info(title = "restoreflow", description = "Document-image restoration: synthetic data, training, models, reports."),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorInner)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "system", description = "health and metrics"),
        (name = "jobs", description = "every asynchronous job"),
        (name = "synthetic", description = "synthetic document pairs"),
        (name = "training", description = "Layer 2 (Restormer) training jobs, progress, metrics, event streams"),
        (name = "files", description = "objects in the product's buckets"),
        (name = "models", description = "versioned model weights per layer, aliases, comparisons"),
        (name = "reports", description = "training reports in text, Markdown, JSON and HTML, with charts"),
        (name = "evaluation", description = "scoring model versions against classical baselines; Layer 1 measurement"),
        (name = "restore", description = "restoring documents with Layer 1, Layer 2 or both"),
    )
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::API_KEY_HEADER,
                "A `read` key may GET every route; everything else needs an `admin` key. \
                 Only the routes in `gateway.public_read` answer without one.",
            ))),
        );
        // Every operation needs a key unless it says otherwise.
        openapi.security = Some(vec![SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// The answers the gate in front of the handlers can give, on every
/// operation it guards: 401 (no or unknown key), 403 (a read key on a route
/// that changes something) and 429 (the per-key limits of expensive work).
fn declare_gate_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::HttpMethod;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, op) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
        ] {
            let Some(op) = op else { continue };
            declare_input_responses(op, &error);
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().any(|r| *r == SecurityRequirement::default()));
            if public {
                continue;
            }
            let responses = &mut op.responses.responses;
            responses
                .entry("401".into())
                .or_insert_with(|| error("missing or unknown API key").into());
            if method != HttpMethod::Get {
                responses.entry("403".into()).or_insert_with(|| {
                    error("a read-only key on a route that changes something").into()
                });
            }
            let http_method = match method {
                HttpMethod::Post => axum::http::Method::POST,
                _ => axum::http::Method::GET,
            };
            if crate::limits::Work::of(&http_method, path).is_some() {
                responses.entry("429".into()).or_insert_with(|| {
                    error("over the key's rate or concurrency limit for this kind of work; see Retry-After")
                        .into()
                });
            }
        }
    }
}

/// What the extractors answer before a handler runs: 400 for a path or query
/// value that does not parse (every operation with parameters), and for a
/// body, 400 for one that does not parse, 413 for one over the size limit
/// and 415 for a wrong `Content-Type`.
fn declare_input_responses(
    op: &mut utoipa::openapi::path::Operation,
    error: &dyn Fn(&str) -> utoipa::openapi::Response,
) {
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    let responses = &mut op.responses.responses;
    if has_params || has_body {
        responses.entry("400".into()).or_insert_with(|| {
            error("a parameter or the body is invalid; the message says which").into()
        });
    }
    if has_body {
        responses
            .entry("413".into())
            .or_insert_with(|| error("the body is over the size limit").into());
        responses
            .entry("415".into())
            .or_insert_with(|| error("the body's Content-Type is not the one documented").into());
    }
}

/// The document served at `/openapi.json`: the generated one with every rule
/// of [`refine`] written in.
pub fn document(settings: &restoreflow_core::Settings) -> serde_json::Value {
    let (_, mut api) = crate::api(&settings.gateway).split_for_parts();
    // The router's paths are in only now: declare the gate's answers on them.
    declare_gate_responses(&mut api);
    let mut doc = serde_json::to_value(api).expect("the document serialises");
    let limits = refine::Limits {
        max_images: settings.synthetic_data.max_images,
        buckets: restoreflow_core::storage::Bucket::ALL
            .iter()
            .map(|b| b.name())
            .collect(),
        job_kinds: restoreflow_core::db::JobKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect(),
        job_statuses: restoreflow_core::db::JobStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect(),
    };
    refine::refine(&mut doc, &limits);
    doc
}
