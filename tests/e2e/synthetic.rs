//! Generating synthetic pairs through the gateway, end to end.

use std::collections::BTreeSet;
use std::time::Duration;

use restoreflow_core::storage::{Bucket, get_bytes, list_all};
use restoreflow_tests::{Kind, TestApp, sha256};
use serde_json::{Value, json};

/// The manifest the gateway serves for `dataset`.
async fn manifest_of(app: &TestApp, dataset: &str) -> Value {
    let (status, manifest) = app
        .get_bytes(&format!("/files/synthetic-data/{dataset}/manifest.json"))
        .await;
    assert_eq!(status, 200, "manifest of {dataset}");
    serde_json::from_slice(&manifest).expect("manifest is JSON")
}

/// Generates `body` over REST, waits up to `wait` for the job to complete,
/// and returns its dataset id and manifest.
async fn generated(app: &TestApp, body: Value, wait: Duration) -> (String, Value) {
    let id = app.generate(body).await;
    let job = app.wait_job(&id, wait).await;
    assert_eq!(job["status"], "completed", "{job}");
    let dataset = job["result"]["dataset_id"]
        .as_str()
        .expect("dataset id")
        .to_string();
    let manifest = manifest_of(app, &dataset).await;
    (dataset, manifest)
}

/// Generates `n` pairs and checks everything a user and a trainer rely on:
/// listing with pagination, matching names, downloads, manifest hashes, the
/// dataset row and the stats. Returns the finished job.
async fn generate_and_verify(app: &TestApp, n: u64, width: u32, height: u32) -> Value {
    let id = app
        .generate(json!({"num_images": n, "preset": "mixed", "seed": 42, "width": width, "height": height}))
        .await;
    let job = app.wait_job(&id, Duration::from_secs(240)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["progress"], 100.0);
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    let result = &job["result"];
    let dataset = result["dataset_id"]
        .as_str()
        .expect("dataset id")
        .to_string();
    assert_eq!(result["num_pairs"], n);

    // Listing pages through every key (page size 7 forces several pages).
    let clean: BTreeSet<String> = app
        .list_keys("training-data", &format!("clean/{dataset}_"), 7)
        .await
        .into_iter()
        .map(|k| k.trim_start_matches("clean/").to_string())
        .collect();
    let degraded: BTreeSet<String> = app
        .list_keys("training-data", &format!("degraded/{dataset}_"), 7)
        .await
        .into_iter()
        .map(|k| k.trim_start_matches("degraded/").to_string())
        .collect();
    assert_eq!(clean.len() as u64, n);
    assert_eq!(clean, degraded, "clean and degraded names must match");

    // The manifest's hashes match the bytes served by the gateway.
    let manifest = manifest_of(app, &dataset).await;
    assert_eq!(manifest["seed"], 42);
    assert_eq!(manifest["content_hash"], result["content_hash"]);
    let pairs = manifest["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len() as u64, n);
    for p in pairs {
        let name = p["name"].as_str().unwrap();
        assert!(clean.contains(name), "{name} not listed");
        let (s, c) = app
            .get_bytes(&format!("/files/training-data/clean/{name}"))
            .await;
        assert_eq!(s, 200);
        let (s, d) = app
            .get_bytes(&format!("/files/training-data/degraded/{name}"))
            .await;
        assert_eq!(s, 200);
        assert_eq!(
            sha256(&c),
            p["clean_sha256"].as_str().unwrap(),
            "{name} clean hash"
        );
        assert_eq!(
            sha256(&d),
            p["degraded_sha256"].as_str().unwrap(),
            "{name} degraded hash"
        );
        assert_ne!(c, d, "degraded must differ from clean");
        let ci = image::load_from_memory(&c).expect("clean is an image");
        let di = image::load_from_memory(&d).expect("degraded is an image");
        assert_eq!((ci.width(), ci.height()), (width, height));
        assert_eq!(
            (di.width(), di.height()),
            (width, height),
            "pairs stay aligned"
        );
        assert!(
            !p["degradations"].as_array().unwrap().is_empty(),
            "degradations recorded"
        );
        // Ground-truth text exists for OCR metrics.
        let text_key = p["text_key"]
            .as_str()
            .unwrap()
            .trim_start_matches("synthetic-data/");
        let (s, t) = app
            .get_bytes(&format!("/files/synthetic-data/{text_key}"))
            .await;
        assert_eq!(s, 200);
        assert!(String::from_utf8_lossy(&t).split_whitespace().count() > 20);
    }

    // The content hash is recomputable from the manifest entries.
    let mut lines: Vec<String> = pairs
        .iter()
        .map(|p| {
            format!(
                "{} {} {}\n",
                p["name"].as_str().unwrap(),
                p["clean_sha256"].as_str().unwrap(),
                p["degraded_sha256"].as_str().unwrap()
            )
        })
        .collect();
    lines.sort();
    assert_eq!(
        sha256(lines.concat().as_bytes()),
        manifest["content_hash"].as_str().unwrap()
    );

    let (status, datasets) = app.get_json("/synthetic/datasets").await;
    assert_eq!(status, 200);
    let row = datasets
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == dataset.as_str())
        .expect("dataset row");
    assert_eq!(row["num_pairs"], n);
    assert_eq!(row["content_hash"], manifest["content_hash"]);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_generates_twenty_pairs_that_can_be_listed_and_downloaded() {
    let app = TestApp::spawn(Kind::Embedded).await;
    generate_and_verify(&app, 20, 640, 832).await;
    let (status, stats) = app.get_json("/synthetic/stats").await;
    assert_eq!(status, 200);
    assert_eq!(stats["matched_pairs"], 20);
    assert_eq!(stats["datasets"], 1);
    assert_eq!(stats["jobs"]["completed"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn digital_target_pairs_are_black_on_white_and_recorded_in_the_manifest() {
    let app = TestApp::spawn(Kind::Embedded).await;
    let mut names = Vec::new();
    for target in ["as_printed", "digital"] {
        // Same seed for both: the same pages, printed and degraded alike;
        // only the clean half differs with the target.
        let (dataset, manifest) = generated(
            &app,
            json!({"num_images": 3, "preset": "archive", "seed": 7, "width": 160,
                         "height": 200, "target": target}),
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(manifest["target"], target);
        names.push((
            dataset,
            manifest["pairs"][0]["name"].as_str().unwrap().to_string(),
        ));
    }
    let load = |bytes: &[u8]| image::load_from_memory(bytes).expect("a PNG").to_rgb8();
    let mut pages = Vec::new();
    for (_, name) in &names {
        let (_, clean) = app
            .get_bytes(&format!("/files/training-data/clean/{name}"))
            .await;
        let (_, degraded) = app
            .get_bytes(&format!("/files/training-data/degraded/{name}"))
            .await;
        pages.push((load(&clean), load(&degraded)));
    }
    let (printed, digital) = (&pages[0], &pages[1]);
    assert_eq!(printed.1, digital.1, "same seed, same degraded input");
    assert_ne!(printed.0, digital.0);
    assert_eq!(digital.0.get_pixel(0, 0).0, [255, 255, 255], "white paper");
    assert!(
        digital
            .0
            .pixels()
            .all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]),
        "grey only"
    );
    assert!(digital.0.pixels().any(|p| p.0 == [0, 0, 0]), "black ink");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_backends_store_pairs_in_s3_and_jobs_in_postgres() {
    let app = TestApp::spawn(Kind::Real).await;
    let job = generate_and_verify(&app, 12, 320, 416).await;
    let dataset = job["result"]["dataset_id"].as_str().unwrap();

    // Look at S3 directly, not through the gateway.
    let store = app.backends.store.as_ref();
    assert_eq!(store.backend(), "s3");
    let clean = list_all(store, Bucket::TrainingData, &format!("clean/{dataset}_"))
        .await
        .unwrap();
    let degraded = list_all(store, Bucket::TrainingData, &format!("degraded/{dataset}_"))
        .await
        .unwrap();
    assert_eq!(clean.len(), 12);
    let names = |v: &[restoreflow_core::storage::ObjectMeta], p: &str| -> BTreeSet<String> {
        v.iter()
            .map(|o| o.key.trim_start_matches(p).to_string())
            .collect()
    };
    assert_eq!(names(&clean, "clean/"), names(&degraded, "degraded/"));
    let manifest = get_bytes(
        store,
        Bucket::SyntheticData,
        &format!("{dataset}/manifest.json"),
        1 << 24,
    )
    .await
    .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    for p in manifest["pairs"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let bytes = get_bytes(
            store,
            Bucket::TrainingData,
            &format!("degraded/{name}"),
            1 << 26,
        )
        .await
        .unwrap();
        assert_eq!(
            restoreflow_tests::sha256(&bytes),
            p["degraded_sha256"].as_str().unwrap()
        );
    }

    // The job row and its events live in PostgreSQL.
    let db = &app.backends.db;
    assert_eq!(
        format!("{:?}", sea_orm::ConnectionTrait::get_database_backend(db)),
        "Postgres"
    );
    let row = restoreflow_core::db::require_job(db, job["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(row.status, restoreflow_core::db::JobStatus::Completed);
    assert_eq!(row.attempts, 1);
    let events = restoreflow_core::db::list_events(db, &row.id, 0, 100)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "progress"));
    assert_eq!(events.last().unwrap().payload["status"], "completed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_without_a_bus_message_is_recovered_by_the_sweep() {
    let app = TestApp::spawn(Kind::Real).await;
    // As if the gateway had crashed between the insert and the publish.
    let params = json!({"num_images": 2, "degradation": {"type": "family", "name": "gaussian_blur"},
        "seed": 5, "width": 128, "height": 160, "split": "train"});
    let job = restoreflow_core::db::create_job(
        &app.backends.db,
        restoreflow_core::db::JobKind::Synthetic,
        params,
    )
    .await
    .unwrap();
    let done = app.wait_job(&job.id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["num_pairs"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_restart_on_the_same_data_dir_keeps_everything() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_embedded(dir.clone()).await;
    let key = app.api_key.clone();
    // A free composition of families rather than a preset.
    let steps = json!([{"family": "jpeg", "probability": 1.0}, {"family": "salt_pepper", "probability": 1.0}]);
    let id = app
        .generate(json!({"num_images": 3, "steps": steps, "width": 128, "height": 160}))
        .await;
    let job = app.wait_job(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let manifest = manifest_of(&app, job["result"]["dataset_id"].as_str().unwrap()).await;
    for p in manifest["pairs"].as_array().unwrap() {
        let families: Vec<&str> = p["degradations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["family"].as_str().unwrap())
            .collect();
        assert_eq!(families, ["jpeg", "salt_pepper"]);
    }
    app.stop().await;

    let again = TestApp::spawn_embedded(dir).await;
    assert_eq!(again.api_key, key, "the API key survives restarts");
    let (status, job2) = again.get_json(&format!("/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(job2["status"], "completed");
    assert_eq!(
        again.list_keys("training-data", "clean/", 100).await.len(),
        3
    );
    let (_, stats) = again.get_json("/synthetic/stats").await;
    assert_eq!(stats["datasets"], 1);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_job_removes_its_partial_pairs() {
    let app = TestApp::spawn(Kind::Embedded).await;
    let id = app
        .generate(json!({"num_images": 400, "width": 640, "height": 832}))
        .await;
    // Wait until it is running with some pairs stored.
    loop {
        let (_, job) = app.get_json(&format!("/jobs/{id}")).await;
        if job["status"] == "running" && job["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert_ne!(
            job["status"], "completed",
            "job finished before it could be cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app
        .http
        .post(app.url(&format!("/jobs/{id}/cancel")))
        .header("x-api-key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job = app.wait_job(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "cancelled");
    assert!(
        app.list_keys("training-data", "", 1000).await.is_empty(),
        "partial pairs removed"
    );
    let (status, err) = app
        .post_json(&format!("/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    app.stop().await;
}

/// A whole sheet at a stated resolution: generated with the requested fonts,
/// recorded in the manifest with its content elements, trained on, and
/// restored at its native size. Bad sheet requests are refused up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sheets_at_a_dpi_generate_train_and_restore_at_native_size() {
    // A noisy A4 scan is a few MB of PNG: above the harness's 2 MiB upload cap.
    let app = TestApp::spawn_with(Kind::Embedded, |s| {
        s.gateway.max_upload_bytes = 32 << 20;
    })
    .await;
    for (body, needle) in [
        (json!({"num_images": 2, "page_size": "a3"}), "a4, letter"),
        (
            json!({"num_images": 2, "page_size": "a4", "dpi": 20}),
            "dpi 20",
        ),
        (json!({"num_images": 2, "dpi": 600}), "dpi 600"),
        (
            json!({"num_images": 2, "page_size": "letter", "width": 800}),
            "page_size or width",
        ),
        (
            json!({"num_images": 2, "fonts": ["No Such Typeface"]}),
            "No Such Typeface",
        ),
    ] {
        let (status, v) = app.post_json("/synthetic/generate", &body).await;
        // A font this host lacks: the request is fine, the host is not (409).
        let want = if needle == "No Such Typeface" {
            409
        } else {
            400
        };
        assert_eq!(status, want, "{body} -> {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{body}: {msg}");
    }

    // A4 at 100 dpi: 827x1169 pixels.
    let (dataset, manifest) = generated(
        &app,
        json!({"num_images": 3, "preset": "scan", "seed": 3, "page_size": "a4",
                     "dpi": 100, "fonts": ["DejaVu Serif", "DejaVu Sans Mono"]}),
        Duration::from_secs(240),
    )
    .await;
    assert_eq!(
        (&manifest["width"], &manifest["height"]),
        (&json!(827), &json!(1169))
    );
    assert_eq!(manifest["dpi"], 100);
    assert_eq!(manifest["page_size"], "a4");
    assert_eq!(
        manifest["fonts"],
        json!(["DejaVu Serif", "DejaVu Sans Mono"])
    );
    for pair in manifest["pairs"].as_array().expect("pairs") {
        let fonts = pair["fonts"].as_array().expect("fonts per pair");
        assert!(!fonts.is_empty(), "{pair}");
        for f in fonts {
            let f = f.as_str().unwrap();
            assert!(
                f.starts_with("DejaVu Serif") || f.starts_with("DejaVu Sans Mono"),
                "{f} was not requested"
            );
        }
        assert!(pair["elements"].is_array(), "{pair}");
    }
    let name = manifest["pairs"][0]["name"].as_str().unwrap();
    let (_, degraded) = app
        .get_bytes(&format!("/files/training-data/degraded/{name}"))
        .await;
    let page = image::load_from_memory(&degraded).expect("a PNG");
    assert_eq!((page.width(), page.height()), (827, 1169));

    // A short run on the sheets, then restore one at its native size.
    let (status, v) = app
        .post_json(
            "/training/layer2/start",
            &json!({"num_epochs": 1, "batch_size": 2, "max_pairs": 3, "patch_size": 32,
                    "preset": "tiny", "seed": 2, "dataset": dataset}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let train_id = v["job_id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let trained = loop {
        let (_, j) = app.get_json(&format!("/training/jobs/{train_id}")).await;
        if matches!(
            j["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "training hangs: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(trained["status"], "completed", "{trained}");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(degraded.to_vec()).file_name("sheet.png"),
        )
        .text("pipeline", "layer2")
        .text("alias", "latest");
    let r = app
        .http
        .post(app.url("/restore/document"))
        .header("x-api-key", &app.api_key)
        .multipart(form)
        .send()
        .await
        .expect("restore request");
    assert_eq!(r.status(), 200, "{}", degraded.len());
    let out = image::load_from_memory(&r.bytes().await.unwrap()).expect("a PNG");
    assert_eq!((out.width(), out.height()), (827, 1169), "native size");
    app.stop().await;
}

/// `content: "text"` generates the same kind of pages without figures,
/// forms or marks, and says so in the manifest; an unknown content is
/// refused before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn text_only_content_is_generated_and_recorded() {
    let app = TestApp::spawn(Kind::Embedded).await;
    let (status, v) = app
        .post_json(
            "/synthetic/generate",
            &json!({"num_images": 2, "content": "photos"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("photos") && msg.contains("mixed, text"),
        "{msg}"
    );

    let (_, manifest) = generated(
        &app,
        json!({"num_images": 8, "seed": 11, "content": "text"}),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(manifest["content"], "text");
    let pairs = manifest["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 8);
    for pair in pairs {
        for e in pair["elements"].as_array().expect("elements") {
            let kind = e["kind"].as_str().unwrap_or_default();
            assert!(
                matches!(kind, "page_number" | "header" | "footer"),
                "a text-only page holds a {kind}: {pair}"
            );
        }
    }
    app.stop().await;
}
