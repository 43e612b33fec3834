//! Training a tiny Restormer through the gateway, end to end: validation,
//! per-epoch metrics, the event stream, checkpoints, registration, the
//! completion event, cancellation and resuming after a dead worker.

use std::time::{Duration, Instant};

use futures::StreamExt;
use restoreflow_core::bus::queues;
use restoreflow_core::db::{self, JobKind};
use restoreflow_core::storage::{Bucket, copy_hashed, list_all};
use restoreflow_tests::{Kind, TestApp};
use serde_json::{Value, json};

/// Six 128x160 pairs; returns the dataset id.
pub(crate) async fn tiny_dataset(app: &TestApp) -> String {
    let id = app
        .generate(
            json!({"num_images": 6, "preset": "light", "seed": 5, "width": 128, "height": 160}),
        )
        .await;
    let job = app.wait_job(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    job["result"]["dataset_id"].as_str().unwrap().to_string()
}

pub(crate) fn tiny_run(dataset: &str, epochs: u32) -> Value {
    json!({"num_epochs": epochs, "batch_size": 2, "max_pairs": 6, "patch_size": 32,
           "preset": "tiny", "seed": 11, "learning_rate": 0.001, "dataset": dataset})
}

pub(crate) async fn start(app: &TestApp, body: &Value) -> String {
    let (status, v) = app.post_json("/training/layer2/start", body).await;
    assert_eq!(status, 202, "{v}");
    v["job_id"].as_str().unwrap().to_string()
}

pub(crate) async fn wait_training(app: &TestApp, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, job) = app.get_json(&format!("/training/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if matches!(
            job["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "training {id} did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a whole SSE stream (until the server closes it) as `(event, data)`.
async fn read_sse(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    let resp = app
        .http
        .get(app.url(&format!("/training/jobs/{id}/events")))
        .send()
        .await
        .expect("sse request");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = String::new();
    let mut stream = resp.bytes_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.expect("sse chunk")));
        }
    };
    tokio::time::timeout(Duration::from_secs(300), read)
        .await
        .expect("the event stream closes after the job ends");
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data = serde_json::from_str(d.trim()).ok();
                }
            }
            Some((event?, data?))
        })
        .collect()
}

/// `training.completed` messages until one for `job_id` arrives.
pub(crate) async fn completion_of(app: &TestApp, job_id: &str) -> Value {
    let mut c = app
        .bus
        .consume(
            queues::EVENTS_TRAINING_COMPLETED,
            &format!("test-{}", restoreflow_tests::unique()),
        )
        .await
        .expect("consume completions");
    loop {
        let d = tokio::time::timeout(Duration::from_secs(20), c.next())
            .await
            .expect("a training.completed message arrives")
            .expect("consumer open")
            .expect("delivery");
        let v: Value = serde_json::from_slice(&d.payload).expect("completion is JSON");
        d.ack().await.unwrap();
        if v["job_id"] == job_id {
            return v;
        }
    }
}

fn finite(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"));
    assert!(x.is_finite(), "{key} = {x}");
    x
}

async fn bad_inputs(app: &TestApp, dataset: &str) {
    // `num_epochs: 0` is not refused any more: like an absent one it asks for
    // a time-budgeted run (0 means "not given" in the protobuf request).
    let cases = [
        (json!({"num_epochs": 1001}), "num_epochs"),
        (json!({"batch_size": 65}), "batch_size"),
        (json!({"max_pairs": 1}), "max_pairs"),
        (json!({"learning_rate": 1.5}), "learning_rate"),
        (json!({"patch_size": 36}), "patch_size"),
        (json!({"preset": "huge"}), "preset"),
        (json!({"val_fraction": 0.9}), "val_fraction"),
        (json!({"val_pages": 0}), "val_pages"),
        (json!({"device": "tpu"}), "unknown device"),
        // No live worker has a GPU and none is started on demand here.
        (json!({"device": "cuda"}), "no live worker has device cuda"),
        (json!({"device": "cpu", "precision": "tf32"}), "tf32"),
        (json!({"base_model": "no-such-alias"}), "base_model"),
        (json!({"dataset": "nothing-here"}), "found 0"),
        (json!({"schedule": "cosine"}), "schedule"),
        (json!({"loss": "l2"}), "loss"),
        (json!({"ssim_weight": 0.5}), "ssim_weight"),
        (json!({"ink_weight": -1}), "ink_weight"),
        (json!({"max_minutes": 0}), "max_minutes"),
        (json!({"val_crop_size": 100}), "val_crop_size"),
        // Refused by its memory estimate before it could take the process down.
        (
            json!({"preset": "base", "batch_size": 64, "patch_size": 512}),
            "trainer.max_job_memory",
        ),
        (
            json!({"patches_per_page": 2, "steps_per_epoch": 2}),
            "steps_per_epoch",
        ),
    ];
    for (patch, needle) in cases {
        let mut body = tiny_run(dataset, 1);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = app.post_json("/training/layer2/start", &body).await;
        // A dataset with no pairs, or a device no worker has, is the
        // system's state, not a bad request (409).
        let (want, code) = if needle == "found 0" || needle.starts_with("no live worker") {
            (409, "failed_precondition")
        } else {
            (400, "invalid_argument")
        };
        assert_eq!(status, want, "{needle}: {v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    // Every field is optional now, but a misspelt one is still refused.
    let (status, v) = app
        .post_json("/training/layer2/start", &json!({"num_epoch": 1}))
        .await;
    assert_eq!(status, 400, "unknown field: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("num_epoch"),
        "{v}"
    );
    let r = restoreflow_tests::client()
        .post(app.url("/training/layer2/start"))
        .json(&tiny_run(dataset, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "starting training needs the key");
    let (status, _) = app
        .get_json("/training/jobs/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, 404);
}

async fn trains_registers_and_cancels(kind: Kind) {
    // This test reads `training.completed` itself, so the report service must
    // not compete for the messages (reports have their own test).
    let app = TestApp::spawn_with(kind, |s| s.report.worker = false).await;
    // Nothing generated yet: too few pairs, with the count.
    let (status, v) = app
        .post_json("/training/layer2/start", &tiny_run("", 1))
        .await;
    // The request is well formed; the stored data is what is missing.
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("found 0"),
        "{v}"
    );
    let dataset = tiny_dataset(&app).await;
    bad_inputs(&app, &dataset).await;

    let id = start(&app, &tiny_run(&dataset, 2)).await;
    let events = read_sse(&app, &id).await;
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["progress"], 100.0);
    assert_eq!(job["device"], "cpu");

    // The stream replayed the history and ended with the terminal status.
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"status"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    assert_eq!(events.last().unwrap().1["status"], "completed");
    assert!(kinds.contains(&"progress"), "{kinds:?}");
    let metric_epochs: Vec<u64> = events
        .iter()
        .filter(|(e, _)| e == "metric")
        .map(|(_, d)| d["payload"]["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(metric_epochs, [1, 2]);
    // Each epoch's metric event carries its training throughput.
    for (_, d) in events.iter().filter(|(e, _)| e == "metric") {
        let p = &d["payload"];
        assert!(finite(p, "steps_per_second") > 0.0, "{p}");
        assert!(finite(p, "images_per_second") > 0.0, "{p}");
    }
    // A late client gets the same history.
    let late = read_sse(&app, &id).await;
    assert_eq!(late.len(), events.len());

    // Per-epoch metrics with the identity baseline.
    let epochs = job["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2, "{job}");
    for e in epochs {
        for key in [
            "train_loss",
            "val_loss",
            "psnr",
            "ssim",
            "accuracy",
            "baseline_psnr",
            "baseline_ssim",
            "baseline_accuracy",
        ] {
            finite(e, key);
        }
        assert!(finite(e, "psnr") > 0.0 && finite(e, "baseline_psnr") > 0.0);
        // Every held-out page is scored: fewer than the default val_pages.
        let scored = e["val_pages"].as_u64().unwrap();
        assert!(
            scored >= 1 && e["held_out_pages"].as_u64() == Some(scored),
            "{e}"
        );
    }
    assert!(job["step"].as_u64().unwrap() >= 2);

    // A registered, downloadable version that points back at the job.
    let result = &job["result"];
    let version = result["version"].as_u64().expect("version in result");
    let (status, model) = app.get_json(&format!("/models/layer/2/{version}")).await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["training_job_id"], id.as_str());
    assert_eq!(model["dataset_id"], dataset.as_str());
    assert_eq!(model["metrics"]["epochs"].as_array().unwrap().len(), 2);
    finite(&model["metrics"]["final"], "psnr");
    assert_eq!(model["config"]["model"]["preset"], "tiny");
    assert!(model["parameter_count"].as_u64().unwrap() > 100_000);
    let (status, weights) = app
        .get_bytes(&format!("/models/layer/2/{version}/download"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(weights.len() as u64, model["size_bytes"].as_u64().unwrap());

    // Both epoch checkpoints are in the store, complete.
    let keys = app
        .list_keys("training-outputs", &format!("checkpoints/{id}/"), 100)
        .await;
    for epoch in ["epoch-0001", "epoch-0002"] {
        for file in [
            "model.safetensors",
            "optimizer.safetensors",
            "checkpoint.json",
        ] {
            let key = format!("checkpoints/{id}/{epoch}/{file}");
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }
    let done = completion_of(&app, &id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["version"].as_u64(), Some(version));

    // Status: counts, the live worker and its device.
    let (status, st) = app.get_json("/training/status").await;
    assert_eq!(status, 200, "{st}");
    assert!(st["finished"].as_u64().unwrap() >= 1, "{st}");
    let workers = st["workers"].as_array().unwrap();
    assert!(!workers.is_empty(), "{st}");
    assert_eq!(workers[0]["device"], "cpu");
    assert!(st["queue_depth"].is_u64());
    let (status, list) = app.get_json("/training/jobs?status=completed").await;
    assert_eq!(status, 200);
    assert!(
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str())
    );

    // Cancel a long run once it is training: it stops, keeps a checkpoint.
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
    let (status, v) = app
        .post_json(&format!("/training/jobs/{long}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    let asked = Instant::now();
    let cancelled = wait_training(&app, &long, Duration::from_secs(120)).await;
    let took = asked.elapsed();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // The worker sees the request at its next heartbeat and stops after the
    // step in progress: one heartbeat plus about one step (a tiny step takes
    // well under a second here), with slack for a busy machine.
    let bound = Duration::from_secs(app.settings.jobs.heartbeat_secs + 4);
    assert!(
        took < bound,
        "cancelling took {took:?}, more than {bound:?}"
    );
    assert!(
        db::versions_of_job(&app.backends.db, 2, &long)
            .await
            .unwrap()
            .is_empty(),
        "a cancelled run registers no model version"
    );
    let ck = cancelled["result"]["checkpoint"]
        .as_str()
        .expect("cancelled job names its checkpoint");
    let ck = ck.strip_prefix("training-outputs/").unwrap();
    let meta = app
        .backends
        .store
        .head(Bucket::TrainingOutputs, &format!("{ck}checkpoint.json"))
        .await
        .unwrap();
    assert!(meta.is_some(), "checkpoint {ck} kept");
    let done = completion_of(&app, &long).await;
    assert_eq!(done["status"], "cancelled");
    let (status, _) = app
        .post_json(&format!("/training/jobs/{long}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409, "a finished job cannot be cancelled again");
    app.stop().await;
}

/// A worker that claimed a job and died after its first epoch checkpoint:
/// another worker re-claims it once the lease expires, resumes from the
/// checkpoint and registers the model exactly once.
async fn resumes_after_a_dead_worker(kind: Kind) {
    let app = TestApp::spawn(kind).await;
    let dataset = tiny_dataset(&app).await;
    // A finished one-epoch run provides the dead worker's first checkpoint.
    let first = start(&app, &tiny_run(&dataset, 1)).await;
    let done = wait_training(&app, &first, Duration::from_secs(300)).await;
    assert_eq!(done["status"], "completed", "{done}");

    // The same run asked for two epochs, claimed by a worker that then died.
    let mut params = done["params"].clone();
    params["num_epochs"] = json!(2);
    let db = &app.backends.db;
    let job = db::create_job(db, JobKind::TrainingLayer2, params)
        .await
        .unwrap();
    db::claim_job(db, &job.id, "dead-worker", chrono::Duration::seconds(3), 3)
        .await
        .unwrap()
        .expect("the dead worker claims the job first");
    let store = app.backends.store.as_ref();
    for file in [
        "model.safetensors",
        "optimizer.safetensors",
        "checkpoint.json",
    ] {
        copy_hashed(
            store,
            (
                Bucket::TrainingOutputs,
                format!("checkpoints/{first}/epoch-0001/{file}").as_str(),
            ),
            (
                Bucket::TrainingOutputs,
                format!("checkpoints/{}/epoch-0001/{file}", job.id).as_str(),
            ),
            "application/octet-stream",
        )
        .await
        .unwrap();
    }

    let resumed = wait_training(&app, &job.id, Duration::from_secs(300)).await;
    assert_eq!(resumed["status"], "completed", "{resumed}");
    assert_eq!(
        resumed["attempts"], 2,
        "claimed by the dead worker, then resumed"
    );
    assert_eq!(resumed["result"]["resumed_from"]["epoch"], 1, "{resumed}");
    assert_eq!(resumed["result"]["epochs_completed"], 2);
    // Only epoch 2 was trained by this job's second attempt.
    let epochs: Vec<u64> = resumed["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [2]);
    let keys: Vec<String> = list_all(
        store,
        Bucket::TrainingOutputs,
        &format!("checkpoints/{}/", job.id),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|o| o.key)
    .collect();
    assert!(
        keys.iter()
            .any(|k| k.contains("epoch-0002/checkpoint.json")),
        "{keys:?}"
    );

    let versions = db::versions_of_job(db, 2, &job.id).await.unwrap();
    assert_eq!(versions.len(), 1, "registered exactly once");
    let version = resumed["result"]["version"].as_u64().unwrap();
    assert_eq!(versions[0].version as u64, version);
    assert_eq!(
        versions[0].metrics["epochs"].as_array().unwrap().len(),
        2,
        "the registered history includes the epoch before the resume"
    );
    app.stop().await;
}

/// The text report of a job, once the report service has built it.
async fn report_text(app: &TestApp, job_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = app
            .http
            .get(app.url(&format!("/training/reports/job/{job_id}?format=txt")))
            .send()
            .await
            .expect("report request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status == 200 {
            return text;
        }
        assert_eq!(status, 404, "{text}");
        assert!(Instant::now() < deadline, "no report for {job_id}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A non-default recipe through REST reaches the job's params, the engine's
/// config, every epoch (validation view, learning rate) and the report; a
/// run without `num_epochs` trains for its time budget and says so.
async fn trains_the_requested_recipe(kind: Kind) {
    let app = TestApp::spawn(kind).await;
    let dataset = tiny_dataset(&app).await;
    let (status, v) = app
        .post_json(
            "/training/layer2/start",
            &json!({"dataset": dataset, "preset": "tiny", "progressive": [
                {"patch_size": 16, "batch_size": 2, "until_step": 3},
                {"patch_size": 36, "batch_size": 2, "until_step": 6}]}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("progressive[1].patch_size"),
        "{v}"
    );

    let body = json!({
        "num_epochs": 2, "max_pairs": 6, "preset": "tiny", "seed": 11, "dataset": dataset,
        "learning_rate": 0.002, "schedule": "cyclic_cosine", "min_learning_rate": 1e-5,
        "loss": "l1_ssim", "ssim_weight": 0.3, "ink_weight": 2.5,
        "progressive": [{"patch_size": 16, "batch_size": 2, "until_step": 3},
                        {"patch_size": 32, "batch_size": 2, "until_step": 6}],
        "patches_per_page": 2, "patch_sampling": "uniform", "clip_norm": 0.5,
        "val_view": "whole_page", "max_minutes": 5, "val_pages": 1
    });
    let id = start(&app, &body).await;
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let p = &job["params"];
    for key in [
        "schedule",
        "min_learning_rate",
        "loss",
        "ssim_weight",
        "ink_weight",
        "progressive",
        "patches_per_page",
        "patch_sampling",
        "clip_norm",
        "val_view",
        "max_minutes",
        "val_pages",
    ] {
        // Numbers as numbers: the params keep the trainer's types (5 minutes
        // are stored as 5.0), exactly as stored.
        match (p[key].as_f64(), body[key].as_f64()) {
            (Some(a), Some(b)) => assert_eq!(a, b, "{key} in {p}"),
            _ => assert_eq!(p[key], body[key], "{key} in {p}"),
        }
    }
    // Filled in: the first stage's sizes, no warm-up or crop for these choices.
    assert_eq!(
        (p["batch_size"].as_u64(), p["patch_size"].as_u64()),
        (Some(2), Some(16))
    );
    assert_eq!(p["warmup_steps"], Value::Null, "{p}");
    assert_eq!(p["val_crop_size"], Value::Null, "{p}");

    // The engine ran the same recipe.
    let events = db::list_events(&app.backends.db, &id, 0, 1000)
        .await
        .unwrap();
    let config = &events
        .iter()
        .find(|e| e.kind == "config")
        .expect("config event")
        .payload["train_config"];
    assert_eq!(
        config["schedule"],
        json!({"kind": "official_cyclic", "lr": 0.002, "min_lr": 1e-5})
    );
    assert_eq!(config["loss"]["ssim_weight"], 0.3, "{config}");
    assert_eq!(config["loss"]["ink_weight"], 2.5, "{config}");
    assert_eq!(config["loss"]["pixel"]["kind"], "l1", "{config}");
    assert_eq!(
        config["progressive"],
        json!([{"patch": 16, "batch": 2, "until_step": 3},
               {"patch": 32, "batch": 2, "until_step": 6}])
    );
    assert_eq!(config["patches_per_page"], 2, "{config}");
    assert_eq!(config["patch_sampling"], "uniform", "{config}");
    assert_eq!(config["clip_norm"], 0.5, "{config}");
    assert_eq!(config["max_seconds"], 300.0, "{config}");
    assert_eq!(config["val_mode"]["kind"], "tiled", "{config}");
    assert_eq!(config["max_val_pages"], 1, "{config}");

    // Every epoch was validated on whole pages, at the scheduled rate.
    let epochs = job["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2, "{job}");
    for e in epochs {
        let view = e["val_view"].as_str().unwrap();
        assert!(view.starts_with("whole page (tiled"), "{e}");
        finite(e, "psnr");
    }
    let metric: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "metric")
        .map(|e| &e.payload)
        .collect();
    assert_eq!(metric.len(), 2);
    let steps_per_epoch = metric[0]["step"].as_u64().unwrap();
    let schedule = restoreflow_training::LrSchedule::OfficialCyclic {
        lr: 0.002,
        min_lr: 1e-5,
    };
    for m in &metric {
        // The rate of each epoch's last step, `step - 1` of a run of
        // `2 x steps_per_epoch` steps (the 5-minute budget's share of time
        // stays below the share of steps in a run this short).
        let want = schedule.lr_in_run(m["step"].as_u64().unwrap() - 1, 2 * steps_per_epoch, None);
        let got = m["learning_rate"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "lr {got} != {want} in {m}"
        );
    }
    assert!(
        metric[1]["learning_rate"].as_f64() < metric[0]["learning_rate"].as_f64(),
        "the rate decays: {metric:?}"
    );

    // The report states the recipe and names the validation view.
    let text = report_text(&app, &id).await;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "TRAINING RECIPE",
        "cyclic_cosine (official Restormer shape over the run): 2e-3",
        "then cosine to 1e-5",
        "16 px x 2 until step 3, then 32 px x 2 until step 6",
        "l1_ssim (SSIM weight 0.3, ink pixels x3.5)",
        "2 patches per page per epoch",
        "Patch sampling : uniform",
        "global L2 norm 0.5",
        "Time budget : 5 min",
        "PER-EPOCH METRICS (validation: whole page (tiled 256 px, overlap 32))",
    ] {
        assert!(flat.contains(needle), "report lacks {needle:?}:\n{text}");
    }

    // No num_epochs: the default epoch cap within a (tiny) time budget; it
    // stops on the budget after an epoch or two, registered and reported.
    let id = start(
        &app,
        &json!({"dataset": dataset, "preset": "tiny", "patch_size": 16, "batch_size": 2,
                "max_minutes": 0.01, "val_crop_size": 32}),
    )
    .await;
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let p = &job["params"];
    assert_eq!(
        p["num_epochs"].as_u64(),
        Some(u64::from(restoreflow_trainer::DEFAULT_BUDGET_EPOCHS)),
        "{p}"
    );
    assert_eq!(p["max_pairs"], 0, "every pair: {p}");
    assert_eq!(job["result"]["stop_reason"], "time_budget", "{job}");
    let epochs_done = job["result"]["epochs_completed"].as_u64().unwrap();
    assert!((1..10).contains(&epochs_done), "{job}");
    assert_eq!(job["result"]["pairs_used"], 6, "{job}");
    assert_eq!(job["epochs"][0]["val_view"], "centre 32x32 crop", "{job}");
    let text = report_text(&app, &id).await;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Stop reason : time budget reached"), "{text}");
    assert!(flat.contains("0.01 min (time budget reached)"), "{text}");
    assert!(flat.contains("(validation: centre 32x32 crop)"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_training_follows_the_recipe() {
    trains_the_requested_recipe(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_training_end_to_end() {
    trains_registers_and_cancels(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_training_end_to_end() {
    trains_registers_and_cancels(Kind::Real).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_training_resumes_after_a_dead_worker() {
    resumes_after_a_dead_worker(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_training_resumes_after_a_dead_worker() {
    resumes_after_a_dead_worker(Kind::Real).await;
}
