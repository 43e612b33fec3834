//! Bad input gets a clear 4xx in the shared error shape, stores nothing and
//! leaves the service running.

use restoreflow_tests::{Kind, TestApp};
use serde_json::{Value, json};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, mention: &str) {
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
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"num_images": 0}),
            400,
            "invalid_argument",
            "at least 1",
        ),
        (
            json!({"num_images": 100000}),
            400,
            "invalid_argument",
            "at most",
        ),
        (
            json!({"num_images": -3}),
            400,
            "invalid_argument",
            "num_images",
        ),
        (
            json!({"num_images": 99999999999u64}),
            400,
            "invalid_argument",
            "num_images",
        ),
        (
            json!({"num_images": 2, "preset": "nonsense"}),
            400,
            "invalid_argument",
            "nonsense",
        ),
        (
            json!({"num_images": 2, "degradation_type": "sparkles"}),
            400,
            "invalid_argument",
            "sparkles",
        ),
        (
            json!({"num_images": 2, "width": 10}),
            400,
            "invalid_argument",
            "width",
        ),
        (
            json!({"num_images": 2, "height": 100000}),
            400,
            "invalid_argument",
            "height",
        ),
        (
            json!({"num_images": 2, "split": "everything"}),
            400,
            "invalid_argument",
            "split",
        ),
        (
            json!({"num_images": 2, "colour": "blue"}),
            400,
            "invalid_argument",
            "colour",
        ),
        (
            json!({"preset": "light"}),
            400,
            "invalid_argument",
            "num_images",
        ),
        (
            json!({"num_images": 2, "steps": [{"family": "glitter", "probability": 0.5}]}),
            400,
            "invalid_argument",
            "glitter",
        ),
        (
            json!({"num_images": 2, "steps": [{"family": "jpeg", "probability": 2.0}]}),
            400,
            "invalid_argument",
            "probab",
        ),
    ];
    for (body, status, code, mention) in cases {
        let (s, v) = app.post_json("/synthetic/generate", &body).await;
        assert_error(s, &v, status, code, mention);
    }
    // Not JSON at all.
    let r = app
        .http
        .post(app.url("/synthetic/generate"))
        .header("x-api-key", &app.api_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 400, "invalid_argument", "json");
    // Missing and wrong keys.
    let r = app
        .http
        .post(app.url("/synthetic/generate"))
        .json(&json!({"num_images": 1}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        401,
        "unauthenticated",
        "api key",
    );
    let r = app
        .http
        .post(app.url("/synthetic/generate"))
        .header("x-api-key", "wrong")
        .json(&json!({"num_images": 1}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        401,
        "unauthenticated",
        "invalid",
    );
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
        ("/no/such/route", 404, "not_found", "route"),
    ] {
        let (s, v) = app.get_json(path).await;
        assert_error(s, &v, status, code, mention);
    }
    // Oversized upload: refused before or while streaming, nothing stored.
    let limit = app.settings.gateway.max_upload_bytes as usize;
    let r = app
        .http
        .put(app.url("/files/training-data/clean/huge.png"))
        .header("x-api-key", &app.api_key)
        .body(vec![0u8; limit + 1])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        413,
        "payload_too_large",
        "limit",
    );
    // Same, streamed without a length so the limit is enforced mid-stream.
    let chunks = futures::stream::iter(
        (0..(limit / 65536 + 1))
            .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 65536]))),
    );
    let r = app
        .http
        .put(app.url("/files/training-data/clean/huge2.png"))
        .header("x-api-key", &app.api_key)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        413,
        "payload_too_large",
        "limit",
    );
    let r = app
        .http
        .put(app.url("/files/training-data/a/../../b.png"))
        .header("x-api-key", &app.api_key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

async fn check_degrade_rejections(app: &TestApp) {
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(b"this is not an image".to_vec()).file_name("x.png"),
    );
    let r = app
        .http
        .post(app.url("/synthetic/degrade"))
        .header("x-api-key", &app.api_key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        400,
        "invalid_argument",
        "image",
    );
    let form = reqwest::multipart::Form::new().text("preset", "light");
    let r = app
        .http
        .post(app.url("/synthetic/degrade"))
        .header("x-api-key", &app.api_key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        400,
        "invalid_argument",
        "image",
    );
    let limit = app.settings.gateway.max_upload_bytes as usize;
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(vec![7u8; limit + 10]).file_name("big.png"),
    );
    let r = app
        .http
        .post(app.url("/synthetic/degrade"))
        .header("x-api-key", &app.api_key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 413, "payload_too_large", "");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_rejected_clearly_on_embedded_backends() {
    let app = TestApp::spawn(Kind::Embedded).await;
    check_generate_rejections(&app).await;
    check_file_rejections(&app).await;
    check_degrade_rejections(&app).await;
    check_nothing_stored_and_still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_rejected_clearly_on_real_backends() {
    let app = TestApp::spawn(Kind::Real).await;
    check_generate_rejections(&app).await;
    check_file_rejections(&app).await;
    check_degrade_rejections(&app).await;
    check_nothing_stored_and_still_serving(&app).await;
    app.stop().await;
}
