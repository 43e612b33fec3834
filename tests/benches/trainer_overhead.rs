//! Trainer service overhead: one fixed tiny training job run through the bare
//! engine (`restoreflow_training::train` over the same stored pages) and
//! through the trainer service on the embedded backends (HTTP start, gRPC
//! validation, bus, claim, heartbeats, progress and metric rows, checkpoint
//! uploads, registration), each twice in alternation; the faster run of each
//! counts. Prints one table.
//!
//! `cargo bench -p restoreflow-tests --bench trainer_overhead --profile dev`
//! (the dev profile builds the model and engine at opt-level 3).

use std::time::{Duration, Instant};

use restoreflow_core::db::{self, JobStatus};
use restoreflow_tests::{Kind, TestApp};
use restoreflow_trainer::{
    Catalog, RestormerNet, StorePairs, TrainParams, code_version, find_pairs,
};
use restoreflow_training::{NoHooks, RunOptions};
use serde_json::{Value, json};

const EPOCHS: u32 = 3;
const BATCH: u32 = 4;
const PAIRS: u32 = 16;

/// Wall time and optimiser steps of one run.
struct Run {
    secs: f64,
    steps: u64,
}

async fn dataset(app: &TestApp) -> String {
    let id = app
        .generate(
            json!({"num_images": PAIRS, "preset": "light", "seed": 3, "width": 192, "height": 256}),
        )
        .await;
    let job = app.wait_job(&id, Duration::from_secs(600)).await;
    assert_eq!(job["status"], "completed", "{job}");
    job["result"]["dataset_id"].as_str().unwrap().to_string()
}

async fn service_run(app: &TestApp, body: &Value) -> (Run, TrainParams) {
    let t0 = Instant::now();
    let (status, v) = app.post_json("/training/layer2/start", body).await;
    assert_eq!(status, 202, "{v}");
    let id = v["job_id"].as_str().unwrap().to_string();
    let job = loop {
        let j = db::get_job(&app.backends.db, &id).await.unwrap().unwrap();
        if !matches!(j.status, JobStatus::Queued | JobStatus::Running) {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    let steps = job.result.as_ref().unwrap()["steps"].as_u64().unwrap();
    (
        Run { secs, steps },
        serde_json::from_value(job.params).unwrap(),
    )
}

async fn bare_run(app: &TestApp, params: &TrainParams) -> Run {
    let catalog = Catalog::new(app.grpc_channel(&app.synthetic_grpc).await);
    let pairs = find_pairs(
        &app.backends,
        &catalog,
        &params.dataset,
        params.max_pairs as usize,
    )
    .await
    .unwrap();
    let source = StorePairs::new(
        pairs.pairs,
        app.backends.store.clone(),
        tokio::runtime::Handle::current(),
    );
    let cfg = params.train_config(app.settings.trainer.cache_pages);
    let preset = params.preset.clone();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let mcfg = restoreflow_restormer::Config::by_name(&preset).unwrap();
        let device = restoreflow_restormer::device(false).unwrap();
        // As the trainer service does: seeded weights, a gradient-free copy for validation.
        let (model, varmap) =
            restoreflow_restormer::build_seeded(&mcfg, &device, cfg.seed).unwrap();
        let frozen = RestormerNet(restoreflow_restormer::frozen(&mcfg, &varmap).unwrap());
        let run = RunOptions {
            checkpoint_dir: dir,
            model_config: json!({"preset": preset}),
            code_version: code_version(),
            cancel: None,
            resume: None,
            inference: Some(&frozen),
        };
        let outcome = restoreflow_training::train(
            &RestormerNet(model),
            &varmap,
            &source,
            &cfg,
            run,
            &mut NoHooks,
        )
        .unwrap();
        Run {
            secs: t0.elapsed().as_secs_f64(),
            steps: outcome.step,
        }
    })
    .await
    .unwrap()
}

fn row(name: &str, r: &Run) {
    println!(
        "| {name:<18} | {:>8.2} | {:>6} | {:>7.2} | {:>8.1} |",
        r.secs,
        r.steps,
        r.steps as f64 / r.secs,
        (r.steps * u64::from(BATCH)) as f64 / r.secs
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let app = TestApp::spawn(Kind::Embedded).await;
    let dataset = dataset(&app).await;
    let body = json!({"num_epochs": EPOCHS, "batch_size": BATCH, "max_pairs": PAIRS,
                      "patch_size": 64, "preset": "tiny", "seed": 11, "learning_rate": 0.001,
                      "dataset": dataset});
    let mut service: Option<Run> = None;
    let mut bare: Option<Run> = None;
    for _ in 0..2 {
        let (s, params) = service_run(&app, &body).await;
        let b = bare_run(&app, &params).await;
        assert_eq!(s.steps, b.steps, "both runs take the same steps");
        if service.as_ref().is_none_or(|x| s.secs < x.secs) {
            service = Some(s);
        }
        if bare.as_ref().is_none_or(|x| b.secs < x.secs) {
            bare = Some(b);
        }
    }
    let (service, bare) = (service.unwrap(), bare.unwrap());
    println!(
        "tiny preset, {PAIRS} pairs 192x256, {EPOCHS} epochs, batch {BATCH}, patch 64, cpu; best of 2"
    );
    println!("| run                | wall (s) | steps | steps/s | images/s |");
    println!("|--------------------|---------:|------:|--------:|---------:|");
    row("bare engine", &bare);
    row("trainer service", &service);
    println!(
        "overhead: {:+.1} % of the bare wall time",
        100.0 * (service.secs - bare.secs) / bare.secs
    );
    app.stop().await;
}
