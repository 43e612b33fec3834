//! Registering a folder of pairs with ground-truth texts through the
//! `restoreflow eval register` path (its library function, against the
//! gateway), then evaluating on it: the evaluation reports tesseract's
//! character error rate for the model and for every baseline, per image and
//! on average. Needs a `tesseract` binary, like the OCR test.

use std::path::Path;
use std::time::Duration;

use restoreflow::tools::{Gateway, ToolError, register_folder};
use restoreflow_tests::{Kind, TestApp, tesseract_or_skip};
use serde_json::{Value, json};

const BASELINES: [&str; 4] = ["identity", "median", "nl_means", "layer1"];

/// Downloads a generated held-out set into `dir` laid out like a folder of
/// someone else's pairs: `NNN_clean.png`, `NNN_degraded.png`, `NNN.txt`.
async fn write_folder(app: &TestApp, dataset: &str, pages: usize, dir: &Path) {
    for i in 0..pages {
        let name = format!("{dataset}_{i:05}");
        for (side, file) in [("clean", "clean"), ("degraded", "degraded")] {
            let (status, bytes) = app
                .get_bytes(&format!("/files/training-data/{side}/{name}.png"))
                .await;
            assert_eq!(status, 200, "{side} of {name}");
            std::fs::write(dir.join(format!("{i:03}_{file}.png")), &bytes).unwrap();
        }
        let (status, text) = app
            .get_bytes(&format!("/files/synthetic-data/{dataset}/text/{name}.txt"))
            .await;
        assert_eq!(status, 200, "text of {name}");
        std::fs::write(dir.join(format!("{i:03}.txt")), &text).unwrap();
    }
    std::fs::write(dir.join("README.md"), "pairs for a test\n").unwrap();
}

fn cer(v: &Value) -> f64 {
    let c = v["cer"].as_f64().unwrap_or_else(|| panic!("no cer in {v}"));
    assert!((0.0..=3.0).contains(&c), "CER {c}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registered_folders_with_texts_report_cer_for_model_and_baselines() {
    if !tesseract_or_skip() {
        return;
    }
    let app = TestApp::spawn(Kind::Embedded).await;
    // Legible pages whose text is known: a generated held-out set, with a
    // fixed seed whose pages are single-column (tesseract reads a page as one
    // block of text, `--psm 6`, which interleaves the lines of multi-column
    // layouts; a random layout would make the legibility check below flaky).
    let job = app
        .generate(json!({"num_images": 2, "preset": "light", "split": "test",
                          "seed": restoreflow_synthetic_data::HELD_OUT_SEEDS + 2}))
        .await;
    let job = app.wait_job(&job, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let generated = job["result"]["dataset_id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    write_folder(&app, &generated, 2, dir.path()).await;

    let gw = Gateway::connect(app.base.clone(), Some(app.api_key.clone())).unwrap();
    let mut lines = Vec::new();

    // A broken folder is refused before anything is uploaded.
    let broken = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("000_clean.png"),
        broken.path().join("000_clean.png"),
    )
    .unwrap();
    let err = register_folder(&gw, broken.path(), "broken-set", |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ToolError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("no degraded twin"), "{err}");
    assert!(
        app.list_keys("training-data", "clean/broken-set.", 100)
            .await
            .is_empty()
    );

    let name = format!("upload-{}", restoreflow_tests::unique());
    let d = register_folder(&gw, dir.path(), &name, |l| lines.push(l.to_string()))
        .await
        .expect("the folder registers");
    assert_eq!(
        (d.id.as_str(), d.pairs, d.pairs_with_text),
        (name.as_str(), 2, 2)
    );
    assert!(lines.iter().any(|l| l.contains("README.md")), "{lines:?}");
    // The texts sit beside the pairs in the object store.
    assert_eq!(
        app.list_keys("training-data", &format!("text/{name}."), 100)
            .await,
        [
            format!("text/{name}.000.txt"),
            format!("text/{name}.001.txt")
        ]
    );
    // Registering the same name again is refused up front.
    let again = register_folder(&gw, dir.path(), &name, |_| {})
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");

    // A Layer 1 version to evaluate (measured on the uploaded set itself).
    let (status, l1) = app
        .post_json(
            "/training/layer1/evaluate",
            &json!({"max_images": 1, "dataset": name, "register": true}),
        )
        .await;
    assert_eq!(status, 200, "{l1}");
    let version = l1["registered_version"].as_u64().unwrap();
    let (status, v) = app
        .post_json(
            "/evaluation/run",
            &json!({"layer": 1, "version": version, "dataset": name}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let eval_id = v["evaluation_id"].as_str().unwrap().to_string();
    let job = app.wait_job(&eval_id, Duration::from_secs(600)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"]["ocr_pairs"], 2, "{job}");

    let (status, eval) = app.get_json(&format!("/evaluation/{eval_id}")).await;
    assert_eq!(status, 200, "{eval}");
    assert_eq!(eval["pairs"], 2, "{eval}");
    let model_mean = cer(&eval["mean"]);
    let base_means: Vec<f64> = BASELINES
        .iter()
        .map(|b| cer(&eval["baselines"][b]))
        .collect();
    // Per image: every method has its CER, and the means are their means.
    let per_image = eval["details"]["per_image"].as_array().unwrap();
    assert_eq!(per_image.len(), 2);
    let mean_of = |f: &dyn Fn(&Value) -> f64| per_image.iter().map(f).sum::<f64>() / 2.0;
    assert!((mean_of(&|i| cer(&i["model"])) - model_mean).abs() < 1e-9);
    for (b, mean) in BASELINES.iter().zip(&base_means) {
        assert!(
            (mean_of(&|i| cer(&i["baselines"][b])) - mean).abs() < 1e-9,
            "{b}"
        );
    }
    for image in per_image {
        assert_eq!(
            image["ocr"]["cer_before"], image["baselines"]["identity"]["cer"],
            "{image}"
        );
        assert_eq!(image["ocr"]["cer_after"], image["model"]["cer"], "{image}");
    }
    // Lightly degraded full pages are mostly legible as they are.
    assert!(
        base_means[0] < 0.5,
        "degraded CER {}: {eval}",
        base_means[0]
    );

    // The leaderboard shows the same CERs.
    let (status, board) = app
        .get_json(&format!("/evaluation?layer=1&dataset={name}"))
        .await;
    assert_eq!(status, 200, "{board}");
    let row = &board["evaluations"][0];
    assert_eq!(row["id"], eval_id.as_str(), "{board}");
    assert_eq!(row["mean"]["cer"], eval["mean"]["cer"]);
    for b in BASELINES {
        assert_eq!(
            row["baselines"][b]["cer"], eval["baselines"][b]["cer"],
            "{b}"
        );
    }
    app.stop().await;
}
