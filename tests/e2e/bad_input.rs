//! Bad input gets a clear 4xx in the shared error shape, stores nothing and
//! leaves the service running.

use reqwest::multipart::{Form, Part};
use restoreflow_tests::{Kind, TestApp};
use serde_json::{Value, json};

/// Sends a request and returns its status and JSON body.
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn authed(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    app.http
        .request(method, app.url(path))
        .header("x-api-key", &app.api_key)
}

fn assert_error((status, body): (u16, Value), want_status: u16, want_code: &str, mention: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        msg.contains(&mention.to_lowercase()),
        "message {msg:?} should mention {mention:?}"
    );
}

async fn check_generate_rejections(app: &TestApp) {
    let bad = "invalid_argument";
    let cases: Vec<(Value, &str)> = vec![
        (json!({"num_images": 0}), "at least 1"),
        (json!({"num_images": 100000}), "at most"),
        (json!({"num_images": -3}), "num_images"),
        (json!({"num_images": 99999999999u64}), "num_images"),
        (json!({"num_images": 2, "preset": "nonsense"}), "nonsense"),
        (
            json!({"num_images": 2, "degradation_type": "sparkles"}),
            "sparkles",
        ),
        (json!({"num_images": 2, "width": 10}), "width"),
        (json!({"num_images": 2, "height": 100000}), "height"),
        (json!({"num_images": 2, "split": "everything"}), "split"),
        (json!({"num_images": 2, "target": "scanned"}), "scanned"),
        (json!({"num_images": 2, "colour": "blue"}), "colour"),
        (json!({"preset": "light"}), "num_images"),
        (
            json!({"num_images": 2, "steps": [{"family": "glitter", "probability": 0.5}]}),
            "glitter",
        ),
        (
            json!({"num_images": 2, "steps": [{"family": "jpeg", "probability": 2.0}]}),
            "probab",
        ),
    ];
    for (body, mention) in cases {
        assert_error(
            app.post_json("/synthetic/generate", &body).await,
            400,
            bad,
            mention,
        );
    }
    let not_json = authed(app, reqwest::Method::POST, "/synthetic/generate")
        .header("content-type", "application/json")
        .body("{not json");
    assert_error(send(not_json).await, 400, bad, "json");
    let no_key = restoreflow_tests::client()
        .post(app.url("/synthetic/generate"))
        .json(&json!({"num_images": 1}));
    assert_error(send(no_key).await, 401, "unauthenticated", "api key");
    let wrong_key = app
        .http
        .post(app.url("/synthetic/generate"))
        .header("x-api-key", "wrong")
        .json(&json!({"num_images": 1}));
    assert_error(send(wrong_key).await, 401, "unauthenticated", "invalid");
}

async fn check_file_rejections(app: &TestApp) {
    for (path, status, code, mention) in [
        ("/files/secrets", 400, "invalid_argument", "unknown bucket"),
        (
            "/files/training-data/..%2F..%2Fetc%2Fpasswd",
            400,
            "invalid_argument",
            "..",
        ),
        (
            "/files/training-data?prefix=../",
            400,
            "invalid_argument",
            "..",
        ),
        (
            "/files/training-data?limit=0",
            400,
            "invalid_argument",
            "limit",
        ),
        (
            "/files/training-data/clean/missing.png",
            404,
            "not_found",
            "not found",
        ),
        ("/jobs/not-a-uuid", 400, "invalid_argument", "uuid"),
        (
            "/jobs/6f1c1c1e-0000-4000-8000-000000000000",
            404,
            "not_found",
            "not found",
        ),
        ("/jobs?status=weird", 400, "invalid_argument", "status"),
        // Offsets past what the database binds (i64) answered 500 (a
        // panic in the SQL binder): a clear 400 now, on every listing.
        (
            "/jobs?offset=9223372036854775808",
            400,
            "invalid_argument",
            "offset",
        ),
        (
            "/synthetic/datasets?offset=9223372036854775808",
            400,
            "invalid_argument",
            "offset",
        ),
        (
            "/training/jobs?page_token=9223372036854775808",
            400,
            "invalid_argument",
            "page_token",
        ),
        (
            "/training/reports?page_token=9223372036854775808",
            400,
            "invalid_argument",
            "page_token",
        ),
        (
            "/evaluation?page_token=9223372036854775808",
            400,
            "invalid_argument",
            "page_token",
        ),
        ("/no/such/route", 404, "not_found", "route"),
    ] {
        assert_error(app.get_json(path).await, status, code, mention);
    }
    // Oversized upload with a declared length: refused up front, nothing stored.
    let limit = app.settings.gateway.max_upload_bytes as usize;
    let put = |path: &str| authed(app, reqwest::Method::PUT, path);
    let big = put("/files/training-data/clean/huge.png").body(vec![0u8; limit + 1]);
    assert_error(send(big).await, 413, "payload_too_large", "limit");
    // Streamed without a length: the limit is enforced while streaming.
    let chunks = futures::stream::iter(
        (0..(limit / 65536 + 1))
            .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 65536]))),
    );
    let streamed =
        put("/files/training-data/clean/huge2.png").body(reqwest::Body::wrap_stream(chunks));
    assert_error(send(streamed).await, 413, "payload_too_large", "limit");
    let (status, _) = send(put("/files/training-data/a/../../b.png").body("x")).await;
    assert!((400..500).contains(&status), "{status}");
}

async fn check_degrade_rejections(app: &TestApp) {
    let degrade =
        |form: Form| authed(app, reqwest::Method::POST, "/synthetic/degrade").multipart(form);
    let not_image = Form::new().part(
        "image",
        Part::bytes(b"this is not an image".to_vec()).file_name("x.png"),
    );
    assert_error(
        send(degrade(not_image)).await,
        400,
        "invalid_argument",
        "image",
    );
    let no_image = Form::new().text("preset", "light");
    assert_error(
        send(degrade(no_image)).await,
        400,
        "invalid_argument",
        "image",
    );
    let limit = app.settings.gateway.max_upload_bytes as usize;
    let too_big = Form::new().part(
        "image",
        Part::bytes(vec![7u8; limit + 10]).file_name("big.png"),
    );
    assert_error(send(degrade(too_big)).await, 413, "payload_too_large", "");
}

async fn check_nothing_stored_and_still_serving(app: &TestApp) {
    assert!(
        app.list_keys("training-data", "", 1000).await.is_empty(),
        "nothing stored"
    );
    let (_, jobs) = app.get_json("/jobs").await;
    assert!(
        jobs["jobs"].as_array().unwrap().is_empty(),
        "no job queued: {jobs}"
    );
    let (status, _) = app.get_json("/health").await;
    assert_eq!(status, 200, "service keeps running");
}

async fn check_all(app: &TestApp) {
    check_generate_rejections(app).await;
    check_file_rejections(app).await;
    check_degrade_rejections(app).await;
    check_nothing_stored_and_still_serving(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_rejected_clearly_on_embedded_backends() {
    let app = TestApp::spawn(Kind::Embedded).await;
    check_all(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_rejected_clearly_on_real_backends() {
    let app = TestApp::spawn(Kind::Real).await;
    check_all(&app).await;
    app.stop().await;
}
