//! Every route behind a key: the OpenAPI document is walked operation by
//! operation, without a key and with a wrong one; a read-only key reads but
//! changes nothing; only the public probes and documentation answer
//! without a key.

use restoreflow_core::Settings;
use restoreflow_core::config::DEFAULT_PUBLIC_READ;
use restoreflow_core::config::keys::{KeyEntry, KeyScope, hash_key};
use restoreflow_tests::{Kind, TestApp, client, client_with_key};
use serde_json::{Value, json};

const READ_KEY: &str = "a-read-only-key-for-dashboards";

fn with_read_key(s: &mut Settings) {
    s.gateway.api_keys = vec![
        KeyEntry {
            scope: KeyScope::Read,
            name: "dashboards".into(),
            sha256: hash_key(READ_KEY),
        }
        .to_config(),
    ];
}

/// A concrete URL path for an OpenAPI path template.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{layer}" => "2",
            "{version}" => "1",
            "{bucket}" => "training-data",
            "{id}" | "{job_id}" | "{report_id}" => "00000000-0000-0000-0000-000000000000",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(http: &reqwest::Client, method: &str, url: &str, key: Option<&str>) -> (u16, Value) {
    let method: reqwest::Method = method.to_uppercase().parse().unwrap();
    let mut req = http.request(method.clone(), url);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if matches!(method, reqwest::Method::POST | reqwest::Method::PUT) {
        req = req.json(&json!({}));
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn every_route_needs_a_key(kind: Kind) {
    let app = TestApp::spawn_with(kind, with_read_key).await;
    let anonymous = client();
    let (status, doc) = send(&anonymous, "get", &app.url("/openapi.json"), None).await;
    assert_eq!(status, 200, "the API document is public");
    let mut walked = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            walked += 1;
            let public = method == "get" && DEFAULT_PUBLIC_READ.contains(&template.as_str());
            let declared_open = op["security"] == json!([{}]);
            assert_eq!(
                public, declared_open,
                "{method} {template}: the document says who may call it"
            );
            if !public {
                let declared = |code: &str| op["responses"].get(code).is_some();
                assert!(declared("401"), "{method} {template} declares 401");
                assert_eq!(
                    declared("403"),
                    method != "get",
                    "{method} {template}: 403 on routes that change something"
                );
            }
            let url = app.url(&concrete(template));
            for key in [None, Some("wrong-key-0123456789abcdef"), Some("")] {
                let (status, body) = send(&anonymous, method, &url, key).await;
                if public {
                    assert!(
                        status == 200 || status == 503,
                        "{method} {template} is public: {status} {body}"
                    );
                } else {
                    assert_eq!(status, 401, "{method} {template} with {key:?}: {body}");
                    assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
                }
            }
        }
    }
    assert!(walked >= 38, "walked {walked} operations");
    for (path, method) in [
        ("/restore/document", "post"),
        ("/synthetic/generate", "post"),
        ("/training/layer2/start", "post"),
        ("/evaluation/run", "post"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"].get("429").is_some(),
            "{method} {path} declares 429"
        );
    }
    assert!(
        doc["paths"]["/jobs"]["get"]["responses"]
            .get("429")
            .is_none()
    );

    // A read key reads everything, changes nothing.
    let reader = client_with_key(READ_KEY);
    for path in [
        "/jobs",
        "/training/jobs",
        "/files/training-data",
        "/models/layer/2",
        "/synthetic/presets",
    ] {
        let (status, body) = send(&reader, "get", &app.url(path), None).await;
        assert_eq!(status, 200, "GET {path} with a read key: {body}");
    }
    for (method, path) in [
        ("post", "/synthetic/generate"),
        ("post", "/training/layer2/start"),
        ("delete", "/models/layer/2/1"),
        ("put", "/files/training-data/x.png"),
    ] {
        let (status, body) = send(&reader, method, &app.url(path), None).await;
        assert_eq!(status, 403, "{method} {path} with a read key: {body}");
        assert_eq!(body["error"]["code"], "permission_denied", "{body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("read-only") && msg.contains("dashboards"),
            "{msg}"
        );
    }
    // The admin key passes the gate (here: a well-formed request that fails
    // on its own merits).
    let (status, body) = app.post_json("/synthetic/generate", &json!({})).await;
    assert_ne!(status, 401, "{body}");
    assert_ne!(status, 403, "{body}");
    // The shallow probe answers without asking any dependency.
    let (status, body) = send(&anonymous, "get", &app.url("/ready"), None).await;
    assert_eq!((status, &body["status"]), (200, &json!("ready")), "{body}");
    // Metrics are not public unless configured.
    let (status, _) = send(&anonymous, "get", &app.url("/metrics"), None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_needs_a_key_on_embedded_backends() {
    every_route_needs_a_key(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_needs_a_key_on_real_backends() {
    every_route_needs_a_key(Kind::Real).await;
}

fn two_per_minute(s: &mut Settings) {
    s.gateway.rate_per_minute = 2;
}

/// Expensive routes are rate-limited per key and kind of work: past the
/// limit, 429 with `Retry-After`; other work and other keys are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expensive_routes_are_rate_limited_per_key() {
    let app = TestApp::spawn_with(Kind::Embedded, two_per_minute).await;
    let generate = json!({"num_images": 1, "width": 64, "height": 64});
    for _ in 0..2 {
        let (status, body) = app.post_json("/synthetic/generate", &generate).await;
        assert_eq!(status, 202, "{body}");
    }
    let r = app
        .http
        .post(app.url("/synthetic/generate"))
        .json(&generate)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "resource_exhausted", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 generate requests a minute"),
        "{body}"
    );
    // Training is another kind of work: its own bucket (here: a refusal on
    // the request's merits, not on the limit).
    let (status, body) = app
        .post_json("/training/layer2/start", &json!({"learning_rate": 5}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("learning_rate"),
        "{body}"
    );
    // Reads are never limited.
    for _ in 0..5 {
        let (status, _) = app.get_json("/jobs").await;
        assert_eq!(status, 200);
    }
    app.stop().await;
}
