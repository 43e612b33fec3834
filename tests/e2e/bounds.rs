//! Bounded work on the real backends: a decompression bomb among stored
//! pages is refused from its header by training, evaluation and batch
//! restore, the worker's memory stays bounded and it lives on.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use restoreflow_tests::{RealOptions, TestApp, TrainerProcess, trainer_env, unique};
use serde_json::{Value, json};

use crate::training::{start, wait_training};

/// A 20000x20000 white greyscale PNG: 400 megapixels (1.2 GB as RGB) in a
/// few hundred KB, written row by row.
fn bomb_png() -> Vec<u8> {
    let side = 20_000u32;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![255u8; side as usize];
        for _ in 0..side {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// A small page and a noisy copy of it.
fn small_pair(seed: u32) -> (Vec<u8>, Vec<u8>) {
    let clean = image::RgbImage::from_fn(96, 128, |x, y| {
        if (x / 6 + y / 9 + seed).is_multiple_of(5) {
            image::Rgb([30, 30, 30])
        } else {
            image::Rgb([245, 245, 240])
        }
    });
    let mut degraded = clean.clone();
    for (i, p) in degraded.pixels_mut().enumerate() {
        let n = ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 27) as u8;
        p.0 = p.0.map(|c| c.saturating_sub(n * 3));
    }
    let png = |img: &image::RgbImage| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    (png(&clean), png(&degraded))
}

fn mentions_the_limit(reason: &Value) -> bool {
    let r = reason.to_string();
    r.contains("20000x20000") && r.contains("limit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decompression_bomb_in_storage_is_refused_and_the_worker_lives() {
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainers: 0,
            ..RealOptions::default()
        },
    )
    .await;
    let bin = Path::new(env!("CARGO_BIN_EXE_restoreflow-test-trainer"));
    let trainer = TrainerProcess::spawn(bin, &trainer_env(&app.settings));
    let bomb = bomb_png();
    assert!(bomb.len() < 2 << 20, "a few hundred KB: {}", bomb.len());
    for i in 0..4 {
        let (clean, degraded) = small_pair(i);
        for (side, bytes) in [("clean", clean), ("degraded", degraded)] {
            let (status, v) = app
                .put_bytes(&format!("/files/training-data/{side}/bomb-0{i}.png"), bytes)
                .await;
            assert_eq!(status, 201, "{v}");
        }
    }
    for side in ["clean", "degraded"] {
        let (status, v) = app
            .put_bytes(
                &format!("/files/training-data/{side}/bomb-99.png"),
                bomb.clone(),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }

    // Training: the bomb is skipped with the reason; the run completes.
    let id = start(
        &app,
        &json!({"dataset": "bomb-", "num_epochs": 1, "batch_size": 2, "patch_size": 32,
                "preset": "tiny", "max_pairs": 10, "seed": 3, "val_fraction": 0.2}),
    )
    .await;
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let skipped = job["result"]["skipped_pages"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["page"].to_string().contains("bomb-99") && mentions_the_limit(&s["reason"])),
        "{skipped:?}"
    );
    let version = job["result"]["version"].as_u64().unwrap();

    // Evaluation: the pair is skipped with the reason.
    let name = format!("bombs-{}", unique());
    let (status, v) = app
        .post_json(
            "/evaluation/datasets",
            &json!({"name": name, "prefix": "bomb-"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = app
        .post_json(
            "/evaluation/run",
            &json!({"layer": 2, "version": version, "dataset": name}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let eval_id = v["evaluation_id"].as_str().unwrap().to_string();
    let eval = app.wait_job(&eval_id, Duration::from_secs(300)).await;
    assert_eq!(eval["status"], "completed", "{eval}");
    let (_, scores) = app.get_json(&format!("/evaluation/{eval_id}")).await;
    let skipped = scores["details"]["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(mentions_the_limit),
        "the bomb is skipped with the reason: {scores}"
    );
    assert_eq!(scores["pairs"], 4, "{scores}");

    // Batch restore: the page fails with the reason, the others are restored.
    let (status, v) = app
        .post_json(
            "/restore/batch",
            &json!({"bucket": "training-data", "prefix": "degraded/bomb-",
                    "version": version.to_string()}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let batch = app
        .wait_job(v["job_id"].as_str().unwrap(), Duration::from_secs(300))
        .await;
    assert_eq!(batch["status"], "completed", "{batch}");
    let failed = batch["result"]["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{batch}");
    assert!(mentions_the_limit(&failed[0]["reason"]), "{failed:?}");

    // Nothing decoded the 1.2 GB canvas, and the worker is alive.
    let peak = trainer.peak_rss_bytes();
    assert!(peak < 900 << 20, "peak RSS {} MB", peak >> 20);
    let mut trainer = trainer;
    assert!(trainer.running());
    app.stop().await;
}
