//! Device routing on real PostgreSQL and RabbitMQ: requests are checked
//! against the live workers of every trainer replica, and each job is claimed
//! only by a worker of its device class.
//!
//! These machines have no GPU, so the CUDA side is a second worker that
//! advertises the `cuda` class in the workers table and claims through the
//! same job loop (queue per class, claim filter, recovery sweep) as a trainer
//! built with the `cuda` feature; it records what it was given instead of
//! training. The CPU side is a real trainer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use restoreflow_core::bus::queues;
use restoreflow_core::db::{self, JobKind, JobStatus, entity::job};
use restoreflow_core::devices::{self, DeviceClass};
use restoreflow_core::jobs::{JobLoop, JobRunner};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_tests::{RealOptions, TestApp, unique};
use serde_json::{Value, json};

use crate::training::{tiny_dataset, tiny_run};

/// A worker of the `cuda` class: heartbeats in the workers table as the
/// trainer's workers do, and finishes each job it claims, recording it.
struct CudaStandIn {
    id: String,
    claimed: Arc<Mutex<Vec<String>>>,
    db: db::Db,
}

#[async_trait]
impl JobRunner for CudaStandIn {
    async fn run_job(&self, job: job::Model, _shutdown: &CancellationToken) {
        self.claimed.lock().unwrap().push(job.id.clone());
        db::finish_job(
            &self.db,
            &job.id,
            &self.id,
            JobStatus::Cancelled,
            None,
            Some("claimed by the cuda stand-in worker".into()),
        )
        .await
        .expect("finish");
    }
}

struct Running {
    id: String,
    claimed: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self, app: &TestApp) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        db::remove_worker(&app.backends.db, &self.id)
            .await
            .expect("remove worker");
    }

    fn claimed(&self) -> Vec<String> {
        self.claimed.lock().unwrap().clone()
    }
}

/// Starts the stand-in: a `trainer` worker row of class `cuda`, refreshed
/// every second, and a job loop on the cuda training queue.
async fn start_cuda_worker(app: &TestApp) -> Running {
    let id = format!("trainer-cuda-{}", unique());
    let caps = vec![devices::Capability {
        device: "cuda:0".into(),
        class: "cuda".into(),
        name: Some("stand-in GPU".into()),
        memory_bytes: Some(80 << 30),
    }];
    db::touch_worker(&app.backends.db, &id, "trainer", "cuda", &caps, None)
        .await
        .expect("register");
    let stop = CancellationToken::new();
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let heartbeat = {
        let (db, id, stop) = (app.backends.db.clone(), id.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let _ = db::touch_worker(&db, &id, "trainer", "cuda", &caps, None).await;
            }
        })
    };
    let jobs = JobLoop::new(
        app.backends.clone(),
        app.settings.jobs.clone(),
        JobKind::TrainingLayer2,
        queues::TRAINING,
        id.clone(),
    )
    .on_device(DeviceClass::Cuda);
    assert_eq!(jobs.queue(), "jobs.training.cuda");
    let runner = CudaStandIn {
        id: id.clone(),
        claimed: claimed.clone(),
        db: app.backends.db.clone(),
    };
    let loop_stop = stop.clone();
    let worker = tokio::spawn(async move { jobs.run(&runner, &loop_stop).await });
    Running {
        id,
        claimed,
        stop,
        tasks: vec![heartbeat, worker],
    }
}

async fn status(app: &TestApp) -> Value {
    let (code, s) = app.get_json("/training/status").await;
    assert_eq!(code, 200, "{s}");
    s
}

fn class<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {status}"))
}

async fn job_row(app: &TestApp, id: &str) -> job::Model {
    db::require_job(&app.backends.db, id)
        .await
        .expect("job row")
}

/// Waits until `f` holds for the job row.
async fn wait_row(
    app: &TestApp,
    id: &str,
    what: &str,
    f: impl Fn(&job::Model) -> bool,
) -> job::Model {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = job_row(app, id).await;
        if f(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "{what}: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_are_checked_against_live_workers_and_each_class_takes_only_its_jobs() {
    let app = TestApp::spawn_real_with(&unique(), RealOptions::default()).await;
    let dataset = tiny_dataset(&app).await;
    let run = |device: &str| {
        let mut body = tiny_run(&dataset, 1);
        body["device"] = json!(device);
        body
    };

    // Only the CPU trainer is live: cuda is refused, auto is the CPU.
    let s = status(&app).await;
    assert_eq!(class(&s, "cpu")["live_workers"], 1, "{s}");
    assert_eq!(class(&s, "cuda")["live_workers"], 0, "{s}");
    assert_eq!(class(&s, "cuda")["accepting"], false, "{s}");
    let caps = &s["workers"][0]["capabilities"][0];
    assert_eq!(caps["class"], "cpu", "{s}");
    assert!(caps["memory_bytes"].as_u64().unwrap() > 0, "{s}");
    let (code, v) = app.post_json("/training/layer2/start", &run("cuda")).await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no live worker has device cuda (live workers: 1 cpu)"),
        "{v}"
    );
    for (path, body) in [
        (
            "/evaluation/run",
            json!({"layer": 2, "dataset": dataset, "device": "cuda"}),
        ),
        (
            "/restore/batch",
            json!({"bucket": "training-data", "prefix": "x/", "device": "cuda"}),
        ),
    ] {
        let (code, v) = app.post_json(path, &body).await;
        assert_eq!(code, 409, "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("device cuda"),
            "{v}"
        );
    }

    // A CUDA worker comes up: cuda and auto go to it, cpu to the CPU trainer.
    let gpu = start_cuda_worker(&app).await;
    let s = status(&app).await;
    assert_eq!(class(&s, "cuda")["live_workers"], 1, "{s}");
    assert_eq!(class(&s, "cuda")["accepting"], true, "{s}");
    let cuda_job = crate::training::start(&app, &run("cuda")).await;
    let auto_job = crate::training::start(&app, &run("auto")).await;
    // A seed a double cannot hold comes back from the API as it ran.
    let seed: u64 = 9_223_372_036_854_775_813;
    let mut cpu_body = run("cpu");
    cpu_body["seed"] = json!(seed);
    let cpu_job = crate::training::start(&app, &cpu_body).await;
    let (_, view) = app.get_json(&format!("/training/jobs/{cpu_job}")).await;
    assert_eq!(view["params"]["seed"].as_u64(), Some(seed), "{view}");
    assert_eq!(
        job_row(&app, &cpu_job).await.params["seed"].as_u64(),
        Some(seed)
    );
    assert_eq!(
        job_row(&app, &cuda_job).await.device,
        Some(DeviceClass::Cuda)
    );
    assert_eq!(
        job_row(&app, &auto_job).await.device,
        Some(DeviceClass::Cuda)
    );
    let (_, view) = app.get_json(&format!("/training/jobs/{auto_job}")).await;
    assert_eq!(view["device"], "cuda", "{view}");
    let params = job_row(&app, &auto_job).await.params;
    assert_eq!(
        params["precision"], "tf32",
        "auto precision on cuda: {params}"
    );

    let cpu_row = wait_row(&app, &cpu_job, "the CPU trainer claims the cpu job", |r| {
        r.lease_owner.is_some() || r.status != JobStatus::Queued
    })
    .await;
    assert!(
        cpu_row
            .lease_owner
            .as_deref()
            .unwrap_or("")
            .starts_with("trainer-")
            && cpu_row.lease_owner.as_deref() != Some(gpu.id.as_str()),
        "{cpu_row:?}"
    );
    assert_eq!(job_row(&app, &cpu_job).await.params["precision"], "f32");
    for id in [&cuda_job, &auto_job] {
        wait_row(&app, id, "the cuda worker ends its jobs", |r| {
            r.status == JobStatus::Cancelled
        })
        .await;
    }
    let mut got = gpu.claimed();
    got.sort();
    let mut want = vec![cuda_job.clone(), auto_job.clone()];
    want.sort();
    assert_eq!(got, want, "the cuda worker got exactly the cuda jobs");
    let (code, v) = app
        .post_json(&format!("/training/jobs/{cpu_job}/cancel"), &json!({}))
        .await;
    assert!(code == 200 || code == 202, "{v}");
    wait_row(&app, &cpu_job, "the cpu job ends", |r| {
        r.status == JobStatus::Cancelled
    })
    .await;

    // Batch restoration routes by class too: the job is recorded for cuda
    // and woken on the cuda restore queue.
    let (code, v) = app
        .post_json(
            "/restore/batch",
            &json!({"bucket": "training-data", "prefix": "x/", "pipeline": "layer1", "device": "cuda"}),
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let batch = job_row(&app, v["job_id"].as_str().unwrap()).await;
    assert_eq!(batch.device, Some(DeviceClass::Cuda));
    assert_eq!(
        app.bus.depth("jobs.restore.cuda").await.unwrap(),
        1,
        "the CPU trainer's restore worker does not consume the cuda queue"
    );

    // The GPU worker goes away: cuda is refused again.
    gpu.stop(&app).await;
    let (code, v) = app.post_json("/training/layer2/start", &run("cuda")).await;
    assert_eq!(code, 409, "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cuda_job_waits_for_a_cuda_worker_and_never_runs_on_the_cpu() {
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            configure: Some(|s| s.trainer.on_demand_devices = vec!["cpu".into(), "cuda".into()]),
            ..RealOptions::default()
        },
    )
    .await;
    let dataset = tiny_dataset(&app).await;
    let mut body = tiny_run(&dataset, 1);
    body["device"] = json!("cuda");
    // Accepted with no GPU live: the deployment starts GPU workers on demand.
    let job = crate::training::start(&app, &body).await;
    // auto does not count on a GPU that is not live yet.
    let mut auto = tiny_run(&dataset, 1);
    auto["device"] = json!("auto");
    let auto_job = crate::training::start(&app, &auto).await;
    assert_eq!(
        job_row(&app, &auto_job).await.device,
        Some(DeviceClass::Cpu)
    );
    let (code, v) = app
        .post_json(&format!("/training/jobs/{auto_job}/cancel"), &json!({}))
        .await;
    assert!(code == 200 || code == 202, "{v}");
    wait_row(&app, &auto_job, "the cpu job ends", |r| {
        r.status.is_terminal()
    })
    .await;

    // Several recovery sweeps (1 s apart here) later it is still waiting,
    // unclaimed, and the status says why.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let row = job_row(&app, &job).await;
    assert_eq!(row.status, JobStatus::Queued, "{row:?}");
    assert_eq!(row.attempts, 0, "no CPU worker ever claimed it: {row:?}");
    assert!(row.lease_owner.is_none(), "{row:?}");
    let s = status(&app).await;
    let cuda = class(&s, "cuda");
    assert_eq!(cuda["queued"], 1, "{s}");
    assert_eq!(cuda["live_workers"], 0, "{s}");
    assert_eq!(cuda["on_demand"], true, "{s}");
    assert_eq!(
        cuda["queue_depth"], 1,
        "the wake-up waits in the cuda queue: {s}"
    );
    assert!(
        cuda["notice"]
            .as_str()
            .unwrap()
            .contains("1 cuda job(s) waiting"),
        "{s}"
    );
    assert_eq!(class(&s, "cpu")["queued"], 0, "{s}");
    assert!(
        s["workers"][0]["current_job"].is_null(),
        "the CPU trainer is idle: {s}"
    );

    // A GPU worker starts (as the autoscaler would): it takes the job.
    let gpu = start_cuda_worker(&app).await;
    wait_row(&app, &job, "the cuda worker takes the waiting job", |r| {
        r.status == JobStatus::Cancelled
    })
    .await;
    assert_eq!(gpu.claimed(), vec![job.clone()]);
    let s = status(&app).await;
    assert!(class(&s, "cuda")["notice"].is_null(), "{s}");
    gpu.stop(&app).await;
    app.stop().await;
}

/// The CUDA proof program (scripts/gpu-check.sh) at toy sizes with the CPU as
/// the device under test: every check runs and passes, the table and the JSON
/// say so. On a GPU the same program compares CUDA against the CPU.
#[test]
fn the_gpu_check_program_runs_every_check_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("gpu-check.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_restoreflow-gpu-check"))
        .args([
            "--device",
            "cpu",
            "--quick",
            "--train-steps",
            "20",
            "--timing-steps",
            "2",
        ])
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("gpu-check runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains("| check | setup | result | pass |"),
        "{table}"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["check"].as_str().unwrap()).collect();
    for want in [
        "model forward+backward vs CPU",
        "depthwise 3x3 kernel vs CPU kernel",
        "train through the engine",
        "restore a page (tiled)",
        "batched tiles = single tiles",
        "train step (candle, f32)",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(rows.iter().all(|r| r["pass"] != json!(false)), "{v}");
    let train = rows
        .iter()
        .find(|r| r["check"] == "train through the engine")
        .unwrap();
    assert!(train["data"]["steps"].as_u64().unwrap() >= 20, "{train}");
    assert!(
        train["data"]["last_loss"].as_f64().unwrap()
            < train["data"]["first_loss"].as_f64().unwrap(),
        "{train}"
    );
    // A bad argument is refused with a message, not a panic.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_restoreflow-gpu-check"))
        .args(["--device", "tpu"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--device must be cuda or cpu"));
}
