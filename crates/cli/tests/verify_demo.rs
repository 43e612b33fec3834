//! `restoreflow verify` and `restoreflow demo` against `restoreflow up`'s
//! embedded system (started in-process on port 0), driving the built binary.

use std::process::Output;

use restoreflow::{Embedded, EmbeddedOptions};
use restoreflow_core::Settings;
use restoreflow_core::shutdown::CancellationToken;

async fn run(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let out: Output = tokio::process::Command::new(env!("CARGO_BIN_EXE_restoreflow"))
        .args(args)
        .env_remove("RESTOREFLOW_CONFIG")
        .env_remove("RESTOREFLOW_API_KEY")
        .env_remove("RESTOREFLOW_N8N_URL")
        .current_dir(cwd)
        .output()
        .await
        .expect("run restoreflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_and_demo_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let app = Embedded::build(
        Settings::default(),
        EmbeddedOptions {
            data_dir: dir.path().join("data"),
            http_addr: Some("127.0.0.1:0".into()),
        },
    )
    .await
    .expect("embedded system builds");
    let gateway = format!("http://{}", app.http_addr());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { app.run_until_stopped(token).await.expect("runs") });
    let cwd = dir.path();

    // The key is read from ./data/api-key, as `up` left it.
    let (code, out, err) = run(&["verify", "--gateway", &gateway], cwd).await;
    assert_eq!(code, 0, "{out}{err}");
    for check in [
        "database",
        "bus",
        "storage",
        "synthetic_data",
        "model_registry",
        "trainer",
        "report",
        "bucket training-data",
        "bucket evaluation",
        "api key",
        "openapi",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(check))
            .unwrap_or_else(|| panic!("{check} missing:\n{out}"));
        assert!(line.contains("PASS"), "{line}");
    }
    assert!(
        out.contains("SKIP"),
        "n8n is skipped when not configured:\n{out}"
    );
    assert!(out.contains("all checks passed"), "{out}");

    // A wrong key and an unreachable n8n fail, with the reason.
    let (code, out, _) = run(
        &[
            "verify",
            "--gateway",
            &gateway,
            "--api-key",
            "wrong-key-000000",
            "--n8n",
            "http://127.0.0.1:9",
        ],
        cwd,
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let key_line = out.lines().find(|l| l.starts_with("api key")).unwrap();
    assert!(
        key_line.contains("FAIL") && key_line.contains("refused"),
        "{key_line}"
    );
    let n8n_line = out.lines().find(|l| l.starts_with("n8n")).unwrap();
    assert!(n8n_line.contains("FAIL"), "{n8n_line}");
    let (code, out, _) = run(
        &["verify", "--gateway", "http://127.0.0.1:9", "--json"],
        cwd,
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);

    // The whole story, with small pages so it stays quick.
    let (code, out, err) = run(
        &[
            "demo",
            "--gateway",
            &gateway,
            "--pairs",
            "6",
            "--epochs",
            "2",
            "--size",
            "128x160",
            "--out",
            "demo",
        ],
        cwd,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    for step in ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "demo complete"] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
    let report = std::fs::read_to_string(cwd.join("demo/report.txt")).unwrap();
    assert!(report.contains("RESTOREFLOW TRAINING REPORT"), "{report}");
    let html = std::fs::read_to_string(cwd.join("demo/report.html")).unwrap();
    assert!(html.contains("data:image/png;base64,"));
    let restored =
        image::open(cwd.join("demo/sample-restored.png")).expect("restored page decodes");
    let degraded = image::open(cwd.join("demo/sample-degraded.png")).expect("sample decodes");
    assert_eq!(
        (restored.width(), restored.height()),
        (degraded.width(), degraded.height())
    );
    let (code, _, err) = run(&["demo", "--gateway", &gateway, "--size", "12"], cwd).await;
    assert_eq!(code, 1);
    assert!(err.contains("--size"), "{err}");
    shutdown.cancel();
    let _ = task.await;
}
