//! The three n8n workflows in `n8n/workflows/`, run by a real n8n against the
//! gateway on the embedded default: prepared by `n8n/prepare.mjs`, their two
//! header credentials and the workflows imported and published with n8n's
//! CLI before the server starts (as `deploy/n8n/start-n8n.sh` does), with the
//! n8n nodes denied the environment; triggered through their webhooks, which
//! refuse calls without the webhook secret. Responses and the
//! system's state (pairs in storage, a registered version with the champion
//! alias, a stored report, an evaluation row) are checked.
//!
//! n8n comes from `n8n/package.json` (installed by `scripts/test.sh` into a
//! cache and named by `RESTOREFLOW_N8N_DIR`). Without it the test fails, unless
//! `RESTOREFLOW_SKIP_N8N=1` says to skip it on purpose.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use restoreflow_core::db::{self, entity::evaluation};
use restoreflow_tests::{Kind, TestApp};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The secret the webhooks require in `X-Restoreflow-Webhook-Secret`.
const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789";

const WORKFLOWS: [(&str, &str); 3] = [
    ("rfSyntheticGen01", "restoreflow/generate"),
    ("rfLayer2Train01", "restoreflow/train"),
    ("rfModelEval0001", "restoreflow/evaluate"),
];

struct N8n {
    child: Child,
    base: String,
    http: reqwest::Client,
    _home: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for N8n {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn n8n_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("RESTOREFLOW_N8N_DIR").map(PathBuf::from)?;
    let bin = dir.join("node_modules/.bin/n8n");
    assert!(
        bin.exists(),
        "RESTOREFLOW_N8N_DIR has no node_modules/.bin/n8n: {}",
        bin.display()
    );
    Some(bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn workflows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../n8n/workflows")
}

fn command(bin: &Path, home: &Path, port: u16) -> Command {
    let mut c = Command::new(bin);
    c.env("N8N_USER_FOLDER", home)
        .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
        .env("N8N_PORT", port.to_string())
        .env("WEBHOOK_URL", format!("http://127.0.0.1:{port}/"))
        .env("N8N_ENCRYPTION_KEY", "restoreflow-test-encryption-key")
        .env("DB_TYPE", "sqlite")
        .env("N8N_DIAGNOSTICS_ENABLED", "false")
        .env("N8N_VERSION_NOTIFICATIONS_ENABLED", "false")
        .env("N8N_PERSONALIZATION_ENABLED", "false")
        .env("N8N_TEMPLATES_ENABLED", "false")
        .env("N8N_COMMUNITY_PACKAGES_ENABLED", "false")
        .env("N8N_RUNNERS_MODE", "internal")
        .env("N8N_RUNNERS_BROKER_PORT", free_port().to_string())
        .env("N8N_SECURE_COOKIE", "false")
        // As deployed: nodes may not read the environment; the key and the
        // webhook secret reach n8n only as encrypted credentials.
        .env("N8N_BLOCK_ENV_ACCESS_IN_NODE", "true")
        .env_remove("RESTOREFLOW_API_KEY")
        .kill_on_drop(true);
    c
}

impl N8n {
    /// Imports and publishes the workflows with n8n's CLI (the shipped
    /// deployment's way; a published workflow is activated when the server
    /// starts), starts n8n and waits until the webhooks answer.
    async fn start(bin: &Path, app: &TestApp) -> N8n {
        let home = tempfile::tempdir().expect("n8n home");
        let port = free_port();
        let log = home.path().join("n8n.log");
        let cli = |args: Vec<String>| {
            let mut c = command(bin, home.path(), port);
            c.args(&args);
            async move {
                let out = c.output().await.expect("the n8n CLI runs");
                assert!(
                    out.status.success(),
                    "n8n {args:?} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        // The shipped preparation: credentials, and the gateway URL filled in.
        let prepared = home.path().join("prepared");
        let out = Command::new("node")
            .arg(workflows_dir().join("../prepare.mjs"))
            .arg(workflows_dir())
            .arg(&prepared)
            .env("RESTOREFLOW_GATEWAY_URL", &app.base)
            .env("RESTOREFLOW_API_KEY", &app.api_key)
            .env("RESTOREFLOW_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .output()
            .await
            .expect("node runs prepare.mjs");
        assert!(
            out.status.success(),
            "prepare.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let credentials = format!("--input={}", prepared.join("credentials.json").display());
        cli(vec!["import:credentials".into(), credentials]).await;
        let input = format!("--input={}", prepared.join("workflows").display());
        cli(vec!["import:workflow".into(), "--separate".into(), input]).await;
        std::fs::remove_file(prepared.join("credentials.json"))
            .expect("plain-text secrets removed");
        for (id, _) in WORKFLOWS {
            cli(vec!["publish:workflow".into(), format!("--id={id}")]).await;
        }
        let file = std::fs::File::create(&log).expect("n8n log");
        let child = command(bin, home.path(), port)
            .arg("start")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("n8n starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let n8n = N8n {
            child,
            base,
            http,
            _home: home,
            log,
        };
        for (_, path) in WORKFLOWS {
            let url = format!("{}/webhook/{path}", n8n.base);
            n8n.wait(
                || async {
                    match n8n.http.get(&url).send().await {
                        Ok(r) if r.status() == 404 => {
                            r.text().await.is_ok_and(|t| t.contains("POST"))
                        }
                        _ => false,
                    }
                },
                "webhook registration",
            )
            .await;
        }
        n8n
    }

    async fn wait<F, Fut>(&self, ready: F, what: &str)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready().await {
            assert!(
                Instant::now() < deadline,
                "{what} not ready:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// POSTs to a workflow's webhook; returns status and JSON answer.
    async fn trigger(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/webhook/{path}", self.base))
            .header("X-Restoreflow-Webhook-Secret", WEBHOOK_SECRET)
            .json(&body)
            .send()
            .await
            .expect("webhook call");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or_else(|_| {
            panic!(
                "webhook {path} answered {status} with non-JSON {text:?}\n{}",
                self.log_tail()
            )
        });
        (status, v)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n8n_workflows_drive_the_system() {
    let Some(bin) = n8n_bin() else {
        assert!(
            std::env::var_os("RESTOREFLOW_SKIP_N8N").is_some(),
            "RESTOREFLOW_N8N_DIR is not set: run the tests with scripts/test.sh (it installs n8n), or set RESTOREFLOW_SKIP_N8N=1 to skip this test on purpose"
        );
        eprintln!("skipping the n8n test: RESTOREFLOW_SKIP_N8N is set");
        return;
    };
    let app = TestApp::spawn(Kind::Embedded).await;
    let n8n = N8n::start(&bin, &app).await;

    // 0. The webhooks refuse callers without the secret (or with a wrong
    //    one), and nothing starts.
    let (_, jobs_before) = app.get_json("/jobs?limit=200").await;
    assert!(jobs_before["jobs"].is_array(), "{jobs_before}");
    for (_, path) in WORKFLOWS {
        let url = format!("{}/webhook/{path}", n8n.base);
        for secret in [None, Some("a-wrong-webhook-secret-000")] {
            let mut req = n8n.http.post(&url).json(&json!({"num_images": 4}));
            if let Some(s) = secret {
                req = req.header("X-Restoreflow-Webhook-Secret", s);
            }
            let status = req.send().await.expect("webhook call").status().as_u16();
            assert!(
                status == 401 || status == 403,
                "{path} with {secret:?} answered {status}"
            );
        }
    }
    let (_, jobs_after) = app.get_json("/jobs?limit=200").await;
    assert_eq!(jobs_after["jobs"], jobs_before["jobs"], "no job started");

    // 1. Synthetic data generation: validated, generated, summarised.
    let (status, v) = n8n
        .trigger("restoreflow/generate", json!({"num_images": 0}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("num_images"), "{v}");
    let (status, v) = n8n
        .trigger(
            "restoreflow/generate",
            json!({"num_images": 6, "preset": "light", "width": 128, "height": 160, "seed": 5}),
        )
        .await;
    assert_eq!(status, 200, "{v}\n{}", n8n.log_tail());
    assert_eq!(v["ok"], true);
    assert_eq!(v["num_pairs"], 6);
    let dataset = v["dataset_id"].as_str().unwrap().to_string();
    let keys = app
        .list_keys("training-data", &format!("degraded/{dataset}_"), 100)
        .await;
    assert_eq!(keys.len(), 6, "{keys:?}");
    // The gateway refuses a split: the workflow says so.
    let (status, v) = n8n
        .trigger(
            "restoreflow/generate",
            json!({"num_images": 1, "split": "everything"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("split"), "{v}");
    // Sheet fields are forwarded (the gateway refuses an unknown page size
    // by name) and checked for type in the workflow itself.
    let (status, v) = n8n
        .trigger(
            "restoreflow/generate",
            json!({"num_images": 1, "page_size": "a3", "dpi": 150}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("a4, letter"), "{v}");
    let (status, v) = n8n
        .trigger(
            "restoreflow/generate",
            json!({"num_images": 1, "fonts": "serif"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("fonts must be an array"),
        "{v}"
    );
    // A job that outlives the workflow's timeout ends in a clear 504.
    let (status, v) = n8n
        .trigger(
            "restoreflow/generate",
            json!({"num_images": 300, "preset": "heavy", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(status, 504, "{v}");
    assert!(v["error"].as_str().unwrap().contains("timed out"), "{v}");
    let slow = v["job_id"].as_str().unwrap();
    let (status, _) = app
        .post_json(&format!("/jobs/{slow}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    app.wait_job(slow, Duration::from_secs(60)).await;

    // 2. Layer 2 training: too few pairs, so it generates more first, trains,
    // fetches the report and the new version, and crowns it champion.
    let (status, v) = n8n
        .trigger(
            "restoreflow/train",
            json!({
                "num_epochs": 2, "batch_size": 2, "max_pairs": 8, "patch_size": 32, "preset": "tiny",
                "learning_rate": 0.001, "seed": 11, "min_pairs": 8, "schedule": "constant",
                "generate": {"preset": "light", "width": 128, "height": 160},
                "set_champion": true
            }),
        )
        .await;
    assert_eq!(status, 200, "{v}\n{}", n8n.log_tail());
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["generated_dataset"].is_string(),
        "two pairs were missing: {v}"
    );
    assert_eq!(v["epochs"], 2, "{v}");
    assert_eq!(v["champion"]["promoted"], true, "{v}");
    let version = v["version"].as_u64().unwrap();
    let job_id = v["job_id"].as_str().unwrap().to_string();
    // The recipe field went through the workflow to the job as given; what
    // the body left out took the trainer's defaults, not the workflow's.
    let params = db::require_job(&app.backends.db, &job_id)
        .await
        .unwrap()
        .params;
    assert_eq!(params["schedule"], "constant", "{params}");
    assert_eq!(params["warmup_steps"], Value::Null, "{params}");
    assert_eq!(
        params["patches_per_page"].as_u64(),
        Some(u64::from(restoreflow_trainer::DEFAULT_PATCHES_PER_PAGE)),
        "{params}"
    );
    let (status, champ) = app.get_json("/models/layer/2/champion").await;
    assert_eq!(status, 200);
    assert_eq!(champ["version"].as_u64(), Some(version));
    assert_eq!(
        db::versions_of_job(&app.backends.db, 2, &job_id)
            .await
            .unwrap()
            .len(),
        1
    );
    let (status, report) = app
        .get_json(&format!("/training/reports/job/{job_id}?format=json"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["report"]["report_id"], v["report_id"]);
    let (status, v) = n8n
        .trigger("restoreflow/train", json!({"num_epochs": 0}))
        .await;
    assert_eq!(status, 400, "{v}");

    // 3. Evaluation on a held-out set: a leaderboard row and a verdict.
    let (status, test_set) = n8n
        .trigger(
            "restoreflow/generate",
            json!({"num_images": 2, "preset": "light", "width": 128, "height": 160, "split": "test"}),
        )
        .await;
    assert_eq!(status, 200, "{test_set}");
    let test_set = test_set["dataset_id"].as_str().unwrap().to_string();
    let (status, v) = n8n
        .trigger(
            "restoreflow/evaluate",
            json!({"layer": 2, "alias": "champion", "dataset": test_set, "min_psnr_gain_db": -100.0}),
        )
        .await;
    assert_eq!(status, 200, "{v}\n{}", n8n.log_tail());
    assert_eq!(v["ok"], true);
    assert_eq!(v["pass"], true, "{v}");
    assert_eq!(v["version"].as_u64(), Some(version));
    assert_eq!(v["pairs"], 2);
    assert!(v["baselines"]["identity"]["psnr"].is_number(), "{v}");
    let eval_id = v["evaluation_id"].as_str().unwrap().to_string();
    let row = evaluation::Entity::find_by_id(eval_id)
        .one(&app.backends.db)
        .await
        .unwrap()
        .expect("evaluation row");
    assert_eq!(row.status, "completed");
    assert_eq!(row.version as u64, version);
    let (status, v) = n8n
        .trigger(
            "restoreflow/evaluate",
            json!({"layer": 2, "version": version, "dataset": test_set, "min_psnr_gain_db": 1000.0}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["pass"], false, "no model gains 1000 dB: {v}");
    let (status, v) = n8n
        .trigger(
            "restoreflow/evaluate",
            json!({"layer": 2, "alias": "no-such-alias", "dataset": test_set}),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no-such-alias"),
        "{v}"
    );
    let (status, v) = n8n
        .trigger("restoreflow/evaluate", json!({"layer": 2}))
        .await;
    assert_eq!(status, 400, "{v}");
    drop(n8n);
    app.stop().await;
}
