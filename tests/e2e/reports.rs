//! Issue-5 story, end to end: a training run leaves a report in every format
//! with charts (every number traceable to stored records), the new version is
//! scored against the classical baselines, Layer 1 is measured and versioned,
//! and documents are restored one at a time (a full page) and in batches.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{DynamicImage, GrayImage};
use restoreflow_core::db;
use restoreflow_core::storage::{Bucket, get_bytes};
use restoreflow_proto::v1;
use restoreflow_tests::{Kind, TestApp};
use serde_json::{Value, json};

use crate::training::{start, tiny_dataset, tiny_run, wait_training};

fn png_bytes(img: DynamicImage) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

/// A page with dark text-like bars on light paper.
fn page(w: u32, h: u32) -> Vec<u8> {
    let img = GrayImage::from_fn(w, h, |x, y| {
        let line = (y / 24) % 2 == 0 && (x / 9) % 7 != 0 && x > 40 && x < w - 40;
        image::Luma([if line { 40 } else { 225 }])
    });
    png_bytes(DynamicImage::ImageLuma8(img))
}

/// Screenshots the HTML report with headless Chromium (installed by
/// `scripts/test.sh`): the page renders, and its charts draw real pixels.
fn html_renders_in_a_browser(html: &str) {
    let browser = ["chromium-headless-shell", "chromium"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        assert!(
            std::env::var_os("RESTOREFLOW_SKIP_BROWSER").is_some(),
            "no headless Chromium: run the tests with scripts/test.sh, or set RESTOREFLOW_SKIP_BROWSER=1"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let shot = dir.path().join("shot.png");
    std::fs::write(&page, html).unwrap();
    let out = std::process::Command::new(browser)
        .args([
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,4000",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot).expect("screenshot decodes").to_rgb8();
    assert_eq!(img.dimensions(), (1200, 4000));
    let inked = img
        .pixels()
        .filter(|p| p.0.iter().any(|&c| c < 200))
        .count();
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    // Text alone is a few grays; the embedded charts bring many colours.
    assert!(
        inked > 20_000,
        "the page is nearly blank: {inked} dark pixels"
    );
    assert!(
        colours.len() > 200,
        "only {} colours: charts did not render",
        colours.len()
    );
}

async fn get_text(app: &TestApp, path: &str) -> (u16, String, String) {
    let r = app.http.get(app.url(path)).send().await.expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap_or_default())
}

/// Polls the job's report until the report service has built it.
pub(crate) async fn wait_report(app: &TestApp, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, v) = app
            .get_json(&format!("/training/reports/job/{job_id}?format=json"))
            .await;
        if status == 200 {
            return v;
        }
        assert_eq!(status, 404, "{v}");
        assert!(Instant::now() < deadline, "no report for {job_id}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_evaluation(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, v) = app.get_json(&format!("/evaluation/{id}")).await;
        assert_eq!(status, 200, "{v}");
        if matches!(
            v["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "evaluation {id} did not finish: {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn restore_form(app: &TestApp, bytes: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("page.png"),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    app.http
        .post(app.url("/restore/document"))
        .header("x-api-key", &app.api_key)
        .multipart(form)
        .send()
        .await
        .expect("restore request")
}

/// Every metric in the JSON report is the number the trainer stored in its
/// `metric` events: nothing estimated.
async fn report_numbers_are_stored_records(app: &TestApp, job_id: &str, report: &Value) {
    let events = db::list_events(&app.backends.db, job_id, 0, 1000)
        .await
        .unwrap();
    let metrics: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "metric")
        .map(|e| &e.payload)
        .collect();
    let epochs = report["report"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), metrics.len(), "one row per metric event");
    for (row, stored) in epochs.iter().zip(metrics) {
        for key in [
            "epoch",
            "train_loss",
            "val_loss",
            "psnr",
            "ssim",
            "accuracy",
            "baseline_psnr",
            "learning_rate",
            "pairs_per_second",
            "seconds",
        ] {
            assert_eq!(row[key], stored[key], "{key} of {row} vs stored {stored}");
        }
    }
    let job = db::require_job(&app.backends.db, job_id).await.unwrap();
    let version = job.result.as_ref().unwrap()["version"].as_u64().unwrap();
    let model = &report["report"]["model"];
    assert_eq!(model["version"].as_u64(), Some(version));
    let row = restoreflow_core::db::versions_of_job(&app.backends.db, 2, job_id)
        .await
        .unwrap();
    assert_eq!(model["sha256"], row[0].sha256.as_str());
    assert_eq!(model["size_bytes"].as_i64(), Some(row[0].size_bytes));
    let data = &report["report"]["data"];
    let stats = events
        .iter()
        .find(|e| e.kind == "data")
        .expect("data event");
    assert_eq!(data["valid_pairs"], stats.payload["valid_pairs"]);
    assert_eq!(data["files_seen"], stats.payload["files_seen"]);
    // Derived numbers are arithmetic on those records.
    let first = epochs.first().unwrap()["psnr"].as_f64().unwrap();
    let last = epochs.last().unwrap()["psnr"].as_f64().unwrap();
    let change = &report["derived"]["improvement"]["psnr"];
    assert!(
        (change["absolute"].as_f64().unwrap() - (last - first)).abs() < 1e-9,
        "{change}"
    );
    let env = &report["report"]["environment"];
    assert!(env["cpu_threads"].as_u64().unwrap() >= 1, "{env}");
    assert!(env["rustc_version"].as_str().unwrap().starts_with("rustc"));
}

async fn reports_evaluation_and_restoration(kind: Kind) {
    let app = TestApp::spawn(kind).await;
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 2)).await;
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    // What the clean pages held: the generated set's (default) target, no dpi asked for.
    assert_eq!(job["result"]["targets"], json!({"as_printed": 6}), "{job}");
    assert_eq!(job["result"]["dpi"], json!([]), "{job}");

    // The report, built from the completion event, in every format.
    let report = wait_report(&app, &id).await;
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["report"]["job"]["id"], id.as_str());
    assert_eq!(report["report"]["job"]["status"], "completed");
    assert_eq!(report["report"]["parameters"]["preset"], "tiny");
    assert_eq!(
        report["report"]["data"]["targets"],
        json!({"as_printed": 6}),
        "{report}"
    );
    report_numbers_are_stored_records(&app, &id, &report).await;
    let report_id = report["report"]["report_id"].as_str().unwrap().to_string();
    let (status, ct, text) =
        get_text(&app, &format!("/training/reports/{report_id}?format=txt")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(text.contains("RESTOREFLOW TRAINING REPORT"), "{text}");
    assert!(text.contains(": as_printed (6 pairs)\n"), "{text}");
    let mut at = 0;
    for section in [
        "JOB INFORMATION",
        "TRAINING PARAMETERS",
        "DATA STATISTICS",
        "TRAINING METRICS",
        "MODEL INFORMATION",
        "ENVIRONMENT",
        "RECOMMENDATIONS",
    ] {
        let pos = text[at..]
            .find(section)
            .unwrap_or_else(|| panic!("{section} missing or out of order"));
        at += pos;
    }
    for e in report["report"]["epochs"].as_array().unwrap() {
        let psnr = format!("{:.2}", e["psnr"].as_f64().unwrap());
        assert!(text.contains(&psnr), "epoch PSNR {psnr} in the text report");
    }
    let (status, ct, md) = get_text(&app, &format!("/training/reports/job/{id}?format=md")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/markdown"), "{ct}");
    assert!(md.starts_with('#'), "{md}");
    let (status, ct, html) =
        get_text(&app, &format!("/training/reports/{report_id}?format=html")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        html.contains("data:image/png;base64,"),
        "charts are embedded"
    );
    assert!(!html.contains("src=\"http"), "the page is self-contained");
    if kind == Kind::Embedded {
        html_renders_in_a_browser(&html);
    }
    let (status, v) = app
        .get_json(&format!("/training/reports/{report_id}?format=pdf"))
        .await;
    assert_eq!(status, 400, "{v}");

    // Listed, with charts served as PNG and stored under reports/ and analysis/.
    let (status, list) = app.get_json("/training/reports?layer=2").await;
    assert_eq!(status, 200, "{list}");
    let entry = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == report_id.as_str())
        .expect("report listed")
        .clone();
    let charts: Vec<String> = entry["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    for name in [
        "loss.png",
        "psnr_ssim.png",
        "learning_rate.png",
        "samples.png",
    ] {
        assert!(
            charts.iter().any(|c| c.ends_with(name)),
            "{name} in {charts:?}"
        );
    }
    for chart in &charts {
        let r = app.http.get(app.url(chart)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{chart}");
        assert_eq!(r.headers()["content-type"], "image/png");
        let img = image::load_from_memory(&r.bytes().await.unwrap()).expect("chart decodes");
        assert!(img.width() >= 256 && img.height() >= 200);
    }
    let store = app.backends.store.as_ref();
    for key in [
        format!("reports/{id}/report.txt"),
        format!("reports/{id}/report.md"),
        format!("reports/{id}/report.json"),
        format!("reports/{id}/report.html"),
        format!("analysis/{id}/loss.png"),
        format!("reports/{id}/charts/loss.png"),
    ] {
        assert!(
            store
                .head(Bucket::TrainingOutputs, &key)
                .await
                .unwrap()
                .is_some(),
            "{key}"
        );
    }
    let (status, _) = app
        .get_json(&format!("/training/reports/{report_id}/charts/nope.png"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get_json("/training/reports/job/not-a-job").await;
    assert_eq!(status, 404);

    // A second run on the same data is compared with the first, like with like.
    let second = start(&app, &tiny_run(&dataset, 1)).await;
    let job2 = wait_training(&app, &second, Duration::from_secs(300)).await;
    assert_eq!(job2["status"], "completed", "{job2}");
    let report2 = wait_report(&app, &second).await;
    let first_version = report["report"]["model"]["version"].as_u64().unwrap();
    let prev = &report2["report"]["previous"];
    assert_eq!(prev["version"].as_u64(), Some(first_version), "{report2}");
    assert_eq!(prev["same_validation_data"], true, "{prev}");
    let cmp = &report2["derived"]["vs_previous"];
    let new_psnr = report2["derived"]["registered"]["psnr"].as_f64().unwrap();
    let old_psnr = prev["psnr"].as_f64().unwrap();
    assert!(
        (cmp["psnr_delta"].as_f64().unwrap() - (new_psnr - old_psnr)).abs() < 1e-9,
        "{cmp}"
    );
    // The previous version's PSNR is the one registered with it.
    let (_, m1) = app
        .get_json(&format!("/models/layer/2/{first_version}"))
        .await;
    assert_eq!(m1["metrics"]["final"]["psnr"].as_f64(), Some(old_psnr));
    assert_eq!(m1["config"]["targets"], json!({"as_printed": 6}), "{m1}");

    // Evaluation on a held-out test set against the baselines; its clean
    // pages are digital, which the model never trained on.
    let generation = app
        .generate(json!({
            "num_images": 2, "preset": "light", "width": 128, "height": 160,
            "split": "test", "target": "digital"
        }))
        .await;
    let gen_job = app.wait_job(&generation, Duration::from_secs(120)).await;
    let test_set = gen_job["result"]["dataset_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = app
        .post_json(
            "/evaluation/run",
            &json!({"layer": 2, "alias": "latest", "dataset": test_set}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let eval_id = v["evaluation_id"].as_str().unwrap().to_string();
    let eval = wait_evaluation(&app, &eval_id).await;
    assert_eq!(eval["status"], "completed", "{eval}");
    assert_eq!(eval["pairs"], 2);
    for b in ["identity", "median", "nl_means", "layer1"] {
        assert!(
            eval["baselines"][b]["psnr"].as_f64().unwrap().is_finite(),
            "{b}: {eval}"
        );
    }
    let per_image = eval["details"]["per_image"].as_array().unwrap();
    assert_eq!(per_image.len(), 2);
    // Known inputs, known metric: the identity baseline is the PSNR of the
    // stored degraded page against its clean page, computed here independently.
    let name = per_image[0]["name"].as_str().unwrap();
    let load = |side: &'static str| {
        let key = format!("{side}/{name}");
        async move {
            let b = get_bytes(store, Bucket::TrainingData, &key, 1 << 26)
                .await
                .unwrap();
            restoreflow_training::RgbF32::from_rgb8(&image::load_from_memory(&b).unwrap().to_rgb8())
        }
    };
    // Stored PSNRs are capped (a page no degradation touched is infinite).
    let expected = restoreflow_training::psnr(&load("clean").await, &load("degraded").await)
        .min(restoreflow_training::PSNR_CAP_DB);
    let got = per_image[0]["baselines"]["identity"]["psnr"]
        .as_f64()
        .unwrap();
    assert!(
        (expected - got).abs() < 1e-9,
        "identity PSNR {got} vs {expected}"
    );
    let restored_key = per_image[0]["restored_key"].as_str().unwrap();
    assert!(
        store
            .head(Bucket::Evaluation, restored_key)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .head(Bucket::Evaluation, &format!("{eval_id}/results.json"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(eval["pipeline"], "layer2", "{eval}");
    let details = &eval["details"];
    assert_eq!(details["targets"], json!({"digital": 2}), "{eval}");
    assert_eq!(details["model_targets"], json!({"as_printed": 6}), "{eval}");
    assert_eq!(details["target_mismatch"], true, "{eval}");
    let (_, eval_job) = app.get_json(&format!("/jobs/{eval_id}")).await;
    assert_eq!(
        eval_job["result"]["targets"],
        json!({"digital": 2}),
        "{eval_job}"
    );
    assert_eq!(eval_job["result"]["target_mismatch"], true, "{eval_job}");
    // The same model behind Layer 1: a pipeline of its own, scored the same way.
    let (status, v) = app
        .post_json(
            "/evaluation/run",
            &json!({"layer": 2, "alias": "latest", "dataset": test_set, "pipeline": "layer1+layer2"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let chain = wait_evaluation(&app, v["evaluation_id"].as_str().unwrap()).await;
    assert_eq!(chain["status"], "completed", "{chain}");
    assert_eq!(chain["pipeline"], "layer1+layer2", "{chain}");
    assert_eq!(chain["pairs"], 2);
    assert_ne!(
        chain["mean"]["psnr"], eval["mean"]["psnr"],
        "the chain restored exactly what layer 2 alone did"
    );
    assert_eq!(chain["baselines"], eval["baselines"]);
    let (status, board) = app.get_json("/evaluation?layer=2").await;
    assert_eq!(status, 200, "{board}");
    assert!(
        board["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == eval_id.as_str()),
        "{board}"
    );
    for (body, needle) in [
        (json!({"layer": 3, "dataset": test_set}), "layer"),
        (json!({"layer": 2, "dataset": ""}), "dataset"),
        (
            json!({"layer": 2, "alias": "nope", "dataset": test_set}),
            "nope",
        ),
        (
            json!({"layer": 2, "dataset": "no-such-pairs"}),
            "no clean/degraded",
        ),
        (
            json!({"layer": 2, "dataset": test_set, "pipeline": "layer3"}),
            "pipeline",
        ),
        (
            json!({"layer": 1, "dataset": test_set, "pipeline": "layer1+layer2"}),
            "pipeline",
        ),
    ] {
        let (status, v) = app.post_json("/evaluation/run", &body).await;
        // 409: well formed, but no stored pairs match.
        assert!(
            status == 400 || status == 404 || status == 409,
            "{needle}: {status} {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }

    // Layer 1: measured on the pairs and versioned under models/layer_1.
    let (status, l1) = app
        .post_json(
            "/training/layer1/evaluate",
            &json!({"max_images": 3, "dataset": dataset, "register": true}),
        )
        .await;
    assert_eq!(status, 200, "{l1}");
    assert_eq!(l1["images"], 3);
    assert!(l1["before"]["psnr"].as_f64().unwrap().is_finite());
    assert!(l1["after"]["psnr"].as_f64().unwrap().is_finite());
    let l1_version = l1["registered_version"].as_u64().expect("registered");
    let (status, m) = app.get_json(&format!("/models/layer/1/{l1_version}")).await;
    assert_eq!(status, 200, "{m}");
    assert!(
        m["object_key"].as_str().unwrap().starts_with("layer_1/"),
        "{m}"
    );
    let (status, v) = app
        .post_json(
            "/training/layer1/evaluate",
            &json!({"params": {"clahe": {"tiles_x": 0, "tiles_y": 8, "clip_limit": 1.5}}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");

    // An uploaded evaluation set: pairs with matching names; a pair whose
    // sizes differ is reported and skipped, not crashed on.
    let tag = restoreflow_tests::unique();
    let up = format!("up{}_", &tag[..8]);
    for (name, (cw, ch), (dw, dh)) in [("a.png", (96, 64), (96, 64)), ("b.png", (96, 64), (80, 64))]
    {
        let (status, v) = app
            .put_bytes(
                &format!("/files/training-data/clean/{up}{name}"),
                page(cw, ch),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let (status, v) = app
            .put_bytes(
                &format!("/files/training-data/degraded/{up}{name}"),
                page(dw, dh),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let set = format!("upload-{}", &tag[..8]).to_lowercase();
    let (status, v) = app
        .post_json("/evaluation/datasets", &json!({"name": set, "prefix": up}))
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["pairs"], 2);
    let (status, v) = app
        .post_json("/evaluation/datasets", &json!({"name": set, "prefix": up}))
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, v) = app
        .post_json(
            "/evaluation/datasets",
            &json!({"name": "Bad Name", "prefix": up}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = app
        .post_json(
            "/evaluation/run",
            &json!({"layer": 1, "version": l1_version, "dataset": set}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let up_eval = wait_evaluation(&app, v["evaluation_id"].as_str().unwrap()).await;
    assert_eq!(up_eval["status"], "completed", "{up_eval}");
    assert_eq!(up_eval["pairs"], 1, "{up_eval}");
    let skipped = up_eval["details"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{up_eval}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("sizes differ"),
        "{up_eval}"
    );
    // Uploads record no target, and Layer 1 was trained on none.
    let details = &up_eval["details"];
    assert_eq!(details["targets"], json!({"uploaded": 2}), "{up_eval}");
    assert_eq!(details["model_targets"], Value::Null, "{up_eval}");
    assert_eq!(details["target_mismatch"], Value::Null, "{up_eval}");

    // Held-out sets never reach training: refused by name, left out of "every pair".
    let mut body = tiny_run(&test_set, 1);
    let (status, v) = app.post_json("/training/layer2/start", &body).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("held-out"),
        "{v}"
    );
    body["dataset"] = json!("");
    body["num_epochs"] = json!(1000);
    body["max_pairs"] = json!(1000);
    let all = start(&app, &body).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let stats = loop {
        let events = db::list_events(&app.backends.db, &all, 0, 1000)
            .await
            .unwrap();
        if let Some(e) = events.iter().find(|e| e.kind == "data") {
            break e.payload.clone();
        }
        assert!(Instant::now() < deadline, "no data event for {all}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stats["valid_pairs"], 6,
        "only the training set's pairs: {stats}"
    );
    assert_eq!(stats["targets"], json!({"as_printed": 6}), "{stats}");
    let (status, _) = app
        .post_json(&format!("/training/jobs/{all}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        wait_training(&app, &all, Duration::from_secs(120)).await["status"],
        "cancelled"
    );

    // Restoration: a full page round-trips at full size, through both layers.
    let full = kind == Kind::Embedded;
    let (w, h) = if full { (1240, 1754) } else { (320, 400) };
    let r = restore_form(
        &app,
        page(w, h),
        &[("pipeline", "layer1+layer2"), ("alias", "latest")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers().contains_key("x-restoreflow-layer2-version"));
    assert!(r.headers().contains_key("x-restoreflow-skew-degrees"));
    let out = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((out.width(), out.height()), (w, h));
    let r = restore_form(&app, page(64, 48), &[("pipeline", "layer1")]).await;
    assert_eq!(r.status(), 200);
    let r = restore_form(&app, b"plain text, not an image".to_vec(), &[]).await;
    assert_eq!(r.status(), 415);
    let huge = png_bytes(DynamicImage::ImageLuma8(GrayImage::new(8000, 6000)));
    let r = restore_form(&app, huge, &[]).await;
    assert_eq!(r.status(), 413, "48 Mpx is over the pixel limit");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pixels"),
        "{body}"
    );
    let r = restore_form(&app, page(64, 48), &[("pipeline", "layer9")]).await;
    assert_eq!(r.status(), 400);
    let r = restore_form(&app, page(64, 48), &[("version", "999")]).await;
    assert_eq!(r.status(), 404);

    // Batch restoration writes a restored prefix, downloadable.
    let (status, v) = app
        .post_json(
            "/restore/batch",
            &json!({"bucket": "training-data", "prefix": format!("degraded/{test_set}_"), "version": "latest"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let batch = app
        .wait_job(v["job_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(batch["status"], "completed", "{batch}");
    assert_eq!(batch["result"]["restored"], 2);
    let out_key = batch["result"]["outputs"][0]["output"].as_str().unwrap();
    let (status, bytes) = app
        .get_bytes(&format!("/files/training-data/{out_key}"))
        .await;
    assert_eq!(status, 200);
    image::load_from_memory(&bytes).expect("restored page decodes");
    let (status, v) = app
        .post_json(
            "/restore/batch",
            &json!({"bucket": "no-bucket", "prefix": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = app
        .post_json(
            "/restore/batch",
            &json!({"bucket": "training-data", "prefix": "degraded/x", "output_prefix": "degraded/"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");

    // A cancelled run gets a report too, saying what happened.
    let long = start(&app, &tiny_run(&dataset, 1000)).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, j) = app.get_json(&format!("/training/jobs/{long}")).await;
        if j["step"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "long run never started: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = app
        .post_json(&format!("/training/jobs/{long}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let cancelled = wait_training(&app, &long, Duration::from_secs(120)).await;
    assert_eq!(cancelled["status"], "cancelled");
    let report = wait_report(&app, &long).await;
    assert_eq!(report["report"]["job"]["status"], "cancelled");
    assert!(
        report["report"]["model"].is_null(),
        "a cancelled run registers nothing"
    );
    assert!(
        report["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "failed_run"),
        "{report}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_reports_evaluation_and_restoration() {
    reports_evaluation_and_restoration(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_reports_evaluation_and_restoration() {
    reports_evaluation_and_restoration(Kind::Real).await;
}

/// The model cache loads a version once however many requests want it at
/// once, and evicts the least recently used version past its capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_cache_single_flight_and_lru() {
    let app = TestApp::spawn(Kind::Embedded).await;
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 1)).await;
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let v1 = job["result"]["version"].as_u64().unwrap() as u32;
    // A second version: the same weights registered again.
    let first = app
        .registry()
        .await
        .get_version(v1::VersionRef {
            layer: 2,
            version: v1.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    let second = app
        .registry()
        .await
        .register_model(v1::RegisterModelRequest {
            layer: 2,
            source_bucket: "models".into(),
            source_key: first.object_key.clone(),
            config: first.config.clone(),
            metrics: first.metrics.clone(),
            parameter_count: first.parameter_count,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let cache = Arc::new(restoreflow_trainer::ModelCache::new(
        v1::model_registry_service_client::ModelRegistryServiceClient::new(
            app.grpc_channel(&app.registry_grpc).await,
        ),
        app.backends.store.clone(),
        candle_core::Device::Cpu,
        1,
    ));
    let calls = (0..4).map(|_| {
        let c = cache.clone();
        let v = v1.to_string();
        tokio::spawn(async move { c.layer2(&v).await.map(|m| m.version) })
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap().unwrap(), v1);
    }
    assert_eq!(cache.loads(), 1, "four concurrent requests, one load");
    cache.layer2(&second.version.to_string()).await.unwrap();
    assert_eq!(cache.loads(), 2);
    assert_eq!(
        cache.loaded_versions(),
        vec![second.version],
        "capacity 1 evicts v{v1}"
    );
    cache.layer2(&v1.to_string()).await.unwrap();
    assert_eq!(cache.loads(), 3, "the evicted version loads again");
    assert!(cache.layer2("999").await.is_err());
    app.stop().await;
}
