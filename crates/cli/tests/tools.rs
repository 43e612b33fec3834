//! The `restoreflow train` and `restoreflow models` tools against the real
//! services started in-process on the embedded backends (port 0), driving the
//! built binary as a user would.

use std::path::{Path, PathBuf};
use std::process::Output;

use restoreflow::{Embedded, EmbeddedOptions};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_core::storage::Bucket;
use restoreflow_core::{Backends, Settings};
use restoreflow_proto::v1;
use restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use serde_json::{Value, json};
use sha2::Digest;

struct App {
    grpc_token: String,
    gateway: String,
    api_key: String,
    registry: String,
    trainer: String,
    backends: Backends,
    data_dir: PathBuf,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn spawn() -> App {
        let dir = tempfile::tempdir().unwrap();
        let app = Embedded::build(
            Settings::default(),
            EmbeddedOptions {
                data_dir: dir.path().to_path_buf(),
                http_addr: Some("127.0.0.1:0".into()),
            },
        )
        .await
        .expect("embedded services build");
        let grpc_token = app
            .settings
            .grpc
            .token
            .clone()
            .unwrap()
            .expose()
            .to_string();
        // The CLI runs in the data dir's parent layout of `up` (`./data/grpc-token`).
        std::fs::create_dir_all(app.data_dir.join("data")).unwrap();
        std::fs::write(app.data_dir.join("data/grpc-token"), &grpc_token).unwrap();
        let registry = app.settings.gateway.model_registry_url.clone();
        let gateway = format!("http://{}", app.http_addr());
        let api_key = app.api_key.clone();
        let trainer = app.settings.gateway.trainer_url.clone();
        let backends = app.backends.clone();
        let data_dir = app.data_dir.clone();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            app.run_until_stopped(token).await.expect("services run");
        });
        App {
            grpc_token,
            gateway,
            api_key,
            registry,
            trainer,
            backends,
            data_dir,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Runs the binary with the service's endpoint (unless `args` names one)
    /// and the local object store.
    async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let (flag, url) = match args[0] {
            "models" => ("--registry", &self.registry),
            _ => ("--trainer", &self.trainer),
        };
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_restoreflow"));
        cmd.args(args);
        if !args.contains(&flag) {
            cmd.arg(flag).arg(url);
        }
        // Downloads go through the gateway, with its key (no store access).
        if args.get(1) == Some(&"download") && !args.contains(&"--gateway") {
            cmd.arg("--gateway").arg(&self.gateway);
            cmd.arg("--api-key").arg(&self.api_key);
        }
        let out: Output = cmd
            .env_remove("RESTOREFLOW_CONFIG")
            .env("RESTOREFLOW__STORAGE__BACKEND", "local")
            .env(
                "RESTOREFLOW__STORAGE__LOCAL_ROOT",
                self.data_dir.join("objects"),
            )
            .current_dir(&self.data_dir)
            .output()
            .await
            .expect("run restoreflow");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn cli_json(&self, args: &[&str]) -> Value {
        let (code, out, err) = self.cli(args).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    async fn register(&self, name: &str, bytes: &[u8], metrics: Value) -> v1::ModelVersion {
        let key = format!("checkpoints/cli/{name}");
        self.backends
            .store
            .put(
                Bucket::TrainingOutputs,
                &key,
                bytes.to_vec().into(),
                "application/octet-stream",
            )
            .await
            .unwrap();
        let channel = tonic::transport::Endpoint::from_shared(self.registry.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = ModelRegistryServiceClient::new(restoreflow_core::grpc::authed(
            channel,
            Some(&restoreflow_core::config::Secret::new(
                self.grpc_token.clone(),
            )),
        ));
        c.register_model(v1::RegisterModelRequest {
            layer: 2,
            source_bucket: "training-outputs".into(),
            source_key: key,
            metrics: Some(restoreflow_proto::json_to_struct(&metrics)),
            training_job_id: format!("job-{name}"),
            dataset_id: "ds-cli".into(),
            dataset_hash: "h1".into(),
            ..Default::default()
        })
        .await
        .expect("register")
        .into_inner()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn numbers(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn models_round_trip() {
    let app = App::spawn().await;
    let a: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let b: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 241) as u8).collect();
    app.register("a", &a, json!({"final": {"psnr": 28.5, "ssim": 0.9}}))
        .await;
    let v2 = app
        .register("b", &b, json!({"final": {"psnr": 30.0, "ssim": 0.92}}))
        .await;

    // list: newest first, `latest` on the newest; the table names it too.
    let list = app.cli_json(&["models", "list", "--json"]).await;
    assert_eq!(numbers(&list), [2, 1]);
    assert_eq!(list[0]["aliases"], json!(["latest"]));
    let (code, table, _) = app.cli(&["models", "list"]).await;
    assert_eq!(code, 0);
    assert!(table.starts_with("VERSION"), "{table}");
    assert!(
        table.contains("latest") && table.contains("30.00"),
        "{table}"
    );
    let limited = app
        .cli_json(&["models", "list", "--limit", "1", "--json"])
        .await;
    assert_eq!(numbers(&limited), [2]);
    let by_job = app
        .cli_json(&["models", "list", "--job", "job-a", "--json"])
        .await;
    assert_eq!(numbers(&by_job), [1]);

    // show, alias, list by alias.
    let shown = app.cli_json(&["models", "show", "1", "--json"]).await;
    assert_eq!(shown["sha256"], sha256(&a));
    assert_eq!(shown["metrics"]["final"]["psnr"], 28.5);
    let (code, out, err) = app.cli(&["models", "alias", "champion", "1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("champion -> version 1"), "{out}");
    let champ = app
        .cli_json(&["models", "list", "--alias", "champion", "--json"])
        .await;
    assert_eq!(numbers(&champ), [1]);
    let (code, out, _) = app.cli(&["models", "show", "champion"]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&sha256(&a)), "{out}");

    // compare: deltas b - a.
    let (code, out, err) = app.cli(&["models", "compare", "champion", "2"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("psnr") && out.contains("+1.5000"), "{out}");
    assert!(out.contains("validated on the same data"), "{out}");
    let cmp = app
        .cli_json(&["models", "compare", "1", "latest", "--json"])
        .await;
    assert_eq!(cmp["b"]["version"], 2);
    assert_eq!(cmp["deltas"][0]["name"], "psnr");

    // download: exact bytes; default name is the object's name.
    let target = app.data_dir.join("champion.safetensors");
    let (code, out, err) = app
        .cli(&[
            "models",
            "download",
            "champion",
            "-o",
            target.to_str().unwrap(),
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("written to"), "{out}");
    assert_eq!(sha256(&std::fs::read(&target).unwrap()), sha256(&a));
    let (code, _, err) = app.cli(&["models", "download", "2"]).await;
    assert_eq!(code, 0, "{err}");
    let default_name = v2.object_key.rsplit('/').next().unwrap();
    assert_eq!(
        sha256(&std::fs::read(app.data_dir.join(default_name)).unwrap()),
        sha256(&b)
    );

    // A corrupt stored object fails the download and leaves no file behind.
    app.backends
        .store
        .put(
            Bucket::Models,
            &v2.object_key,
            vec![0u8; b.len()].into(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let bad = app.data_dir.join("corrupt.safetensors");
    let (code, _, err) = app
        .cli(&["models", "download", "2", "-o", bad.to_str().unwrap()])
        .await;
    assert_eq!(code, 1, "{err}");
    // The gateway cuts a transfer whose bytes do not hash to the registered
    // sha256 before its last chunk; the CLI keeps nothing of it.
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!exists(&bad) && !exists(&bad.with_extension("safetensors.part")));
    // Without a key the gateway refuses, and nothing is written either.
    let (code, _, err) = app
        .cli(&[
            "models",
            "download",
            "1",
            "-o",
            bad.to_str().unwrap(),
            "--gateway",
            &app.gateway,
            "--api-key",
            "not-the-key-0123456789",
        ])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("401") || err.to_lowercase().contains("key"),
        "{err}"
    );
    assert!(!exists(&bad));

    // delete: refused while aliased (exit 1), fine once the alias moved.
    let (code, _, err) = app.cli(&["models", "delete", "1"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("champion"), "{err}");
    let (code, _, _) = app.cli(&["models", "alias", "champion", "2"]).await;
    assert_eq!(code, 0);
    let deleted = app.cli_json(&["models", "delete", "1", "--json"]).await;
    assert_eq!(deleted["version"], 1);
    assert_eq!(deleted["deleted_objects"].as_array().unwrap().len(), 2);
    let (code, _, err) = app.cli(&["models", "show", "1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("version 1 of layer 2"), "{err}");

    // Invalid arguments exit with 2 and the service's message.
    let (code, _, err) = app.cli(&["models", "alias", "BAD", "2"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a-z, 0-9"), "{err}");
    let (code, _, err) = app.cli(&["models", "list", "--layer", "7"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("layer must be 1"), "{err}");

    // An unreachable registry says where it looked.
    let (code, _, err) = app
        .cli(&["models", "list", "--registry", "http://127.0.0.1:1"])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot reach the model registry at http://127.0.0.1:1"),
        "{err}"
    );
    // A wrong internal token is refused by the service, with the reason.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_restoreflow"))
        .args(["models", "list", "--registry", &app.registry])
        .env("RESTOREFLOW__GRPC__TOKEN", "a-wrong-internal-token")
        .current_dir(&app.data_dir)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid internal token"), "{err}");
    app.stop().await;
}

fn exists(p: &Path) -> bool {
    p.try_exists().unwrap_or(false)
}

#[tokio::test]
async fn train_commands() {
    let app = App::spawn().await;
    // Bad arguments: the trainer's message, exit 2.
    let (code, out, err) = app
        .cli(&[
            "train",
            "start",
            "--epochs",
            "1001",
            "--batch-size",
            "2",
            "--max-pairs",
            "4",
        ])
        .await;
    // (0 would mean "not given": a run for the default time budget.)
    assert_eq!(code, 2, "{out} {err}");
    assert!(
        err.contains("num_epochs must be between 1 and 1000"),
        "{err}"
    );
    // Devices and precisions are enums the CLI knows: refused before any
    // call, with the choices.
    let (code, _, err) = app.cli(&["train", "start", "--device", "tpu"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cpu") && err.contains("cuda") && err.contains("auto"),
        "{err}"
    );
    let (code, _, err) = app.cli(&["train", "start", "--precision", "f16"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tf32"), "{err}");
    // Valid arguments but no data: refused with the reason, non-zero.
    let (code, _, err) = app
        .cli(&[
            "train",
            "start",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--max-pairs",
            "4",
            "--preset",
            "tiny",
        ])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("pairs"), "{err}");

    // Status: counts, workers and queue depth, as text and JSON.
    let (code, out, err) = app.cli(&["train", "status"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("jobs: 0 queued, 0 running, 0 finished"),
        "{out}"
    );
    assert!(
        out.contains("queue depth: 0") && out.contains("workers:"),
        "{out}"
    );
    let status = app.cli_json(&["train", "status", "--json"]).await;
    assert_eq!(status["queued"], 0);
    assert!(status["workers"].is_array());

    // Unknown jobs: watch and cancel fail with the trainer's message.
    let (code, _, err) = app
        .cli(&["train", "watch", "00000000-0000-0000-0000-000000000000"])
        .await;
    assert_ne!(code, 0);
    assert!(err.starts_with("error: "), "{err}");
    let (code, _, err) = app
        .cli(&["train", "cancel", "00000000-0000-0000-0000-000000000000"])
        .await;
    assert_ne!(code, 0);
    assert!(err.starts_with("error: "), "{err}");
    app.stop().await;
}
