//! The OCR metric of evaluations: with a `tesseract` binary on the PATH, an
//! evaluation of a synthetic set (whose pages know their text) reports the
//! character error rate of the degraded input and of the restored output.
//! `scripts/test.sh` installs tesseract; without it this test fails unless
//! `RESTOREFLOW_SKIP_OCR=1` says to skip it on purpose.

use std::time::{Duration, Instant};

use restoreflow_tests::{Kind, TestApp, tesseract_or_skip};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evaluations_report_character_error_rates() {
    if !tesseract_or_skip() {
        return;
    }
    let app = TestApp::spawn(Kind::Embedded).await;
    // Full-size pages: OCR needs legible text. A fixed held-out seed whose
    // page is one column of text: tesseract reads pages as one uniform block
    // (`--psm 6`, like the published yardsticks), which interleaves the lines
    // of multi-column pages, so a random layout would make this check flaky.
    let id = app
        .generate(json!({"num_images": 1, "preset": "light", "split": "test",
                          "seed": restoreflow_synthetic_data::HELD_OUT_SEEDS}))
        .await;
    let job = app.wait_job(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let dataset = job["result"]["dataset_id"].as_str().unwrap().to_string();
    let (status, l1) = app
        .post_json(
            "/training/layer1/evaluate",
            &json!({"max_images": 1, "dataset": dataset, "register": true}),
        )
        .await;
    assert_eq!(status, 200, "{l1}");
    let version = l1["registered_version"].as_u64().unwrap();
    let (status, v) = app
        .post_json(
            "/evaluation/run",
            &json!({"layer": 1, "version": version, "dataset": dataset}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let eval_id = v["evaluation_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let eval = loop {
        let (_, e) = app.get_json(&format!("/evaluation/{eval_id}")).await;
        if e["status"] == "completed" || e["status"] == "failed" {
            break e;
        }
        assert!(Instant::now() < deadline, "evaluation did not finish: {e}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(eval["status"], "completed", "{eval}");
    let after = eval["mean"]["cer"]
        .as_f64()
        .expect("CER of the restored pages");
    let before = eval["baselines"]["identity"]["cer"]
        .as_f64()
        .expect("CER of the degraded pages");
    for cer in [before, after] {
        assert!((0.0..=2.0).contains(&cer), "CER {cer}");
    }
    // A lightly degraded full page is mostly legible.
    assert!(before < 0.5, "degraded CER {before}: {eval}");
    let ocr = &eval["details"]["per_image"][0]["ocr"];
    assert_eq!(ocr["cer_before"].as_f64(), Some(before), "{ocr}");
    assert_eq!(ocr["cer_after"].as_f64(), Some(after), "{ocr}");
    app.stop().await;
}
