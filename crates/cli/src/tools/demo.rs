//! `restoreflow demo`: the whole story on a running system, through the
//! gateway — generate pairs, train a tiny model, read its report, evaluate it
//! against the baselines on a held-out set, restore a sample page — printing
//! progress and where every artifact is.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use restoreflow_core::Settings;
use serde_json::{Value, json};

use super::rest::{Gateway, GatewayArgs};
use super::{ToolError, table};

/// `restoreflow demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Training pairs to generate.
    #[arg(long, default_value_t = 12)]
    pairs: u32,
    /// Training epochs.
    #[arg(long, default_value_t = 3)]
    epochs: u32,
    /// Page size WIDTHxHEIGHT of the generated pairs.
    #[arg(long, default_value = "256x320")]
    size: String,
    /// Where the report, the sample page and its restoration are saved.
    #[arg(long, default_value = "demo-output")]
    out: PathBuf,
    /// Give up on any step after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

fn size(s: &str) -> Result<(u32, u32), ToolError> {
    let bad = || {
        ToolError::Other(format!(
            "--size must be WIDTHxHEIGHT (e.g. 256x320), got {s:?}"
        ))
    };
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h) = (
        w.parse::<u32>().map_err(|_| bad())?,
        h.parse::<u32>().map_err(|_| bad())?,
    );
    if w < 64 || h < 64 {
        return Err(ToolError::Other("--size must be at least 64x64".into()));
    }
    Ok((w, h))
}

fn step(n: u32, what: &str) {
    println!("\n[{n}/5] {what}");
}

/// Runs the demo; every failure names the step.
pub async fn run_demo(args: DemoArgs, settings: &Settings) -> Result<(), ToolError> {
    let (width, height) = size(&args.size)?;
    if args.pairs < 4 {
        return Err(ToolError::Other("--pairs must be at least 4".into()));
    }
    let gw = Gateway::new(&args.gateway, settings)?;
    let timeout = Duration::from_secs(args.timeout_secs);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| ToolError::Other(format!("cannot create {}: {e}", args.out.display())))?;
    println!("restoreflow demo against {}", gw.base);

    step(
        1,
        &format!(
            "generating {} training pairs ({width}x{height}, preset mixed)",
            args.pairs
        ),
    );
    let a = gw
        .post(
            "/synthetic/generate",
            &json!({"num_images": args.pairs, "preset": "mixed", "width": width, "height": height}),
        )
        .await?;
    let job = Gateway::expect(a, 202, "generation")?;
    let gen_id = job["job_id"].as_str().unwrap_or_default().to_string();
    let done = gw
        .wait_job(&format!("/jobs/{gen_id}"), timeout, |j| {
            print!(
                "\r  job {gen_id}: {} {:.0}%   ",
                j["status"].as_str().unwrap_or("?"),
                j["progress"].as_f64().unwrap_or(0.0)
            );
        })
        .await?;
    let dataset = done["result"]["dataset_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!(
        "\n  dataset {dataset}: training-data/clean/{dataset}_*.png, training-data/degraded/{dataset}_*.png"
    );

    step(
        2,
        &format!("training a tiny Restormer for {} epochs", args.epochs),
    );
    let patch = (width.min(height) / 2 / 8 * 8).clamp(16, 128);
    let a = gw
        .post(
            "/training/layer2/start",
            &json!({"num_epochs": args.epochs, "batch_size": 2, "max_pairs": args.pairs,
                    "patch_size": patch, "preset": "tiny", "learning_rate": 0.001,
                    "dataset": dataset, "val_fraction": 0.25}),
        )
        .await?;
    let job = Gateway::expect(a, 202, "training")?;
    let train_id = job["job_id"].as_str().unwrap_or_default().to_string();
    let trained = gw
        .wait_job(&format!("/training/jobs/{train_id}"), timeout, |j| {
            print!(
                "\r  job {train_id}: {} epoch {} step {} {:.0}%   ",
                j["status"].as_str().unwrap_or("?"),
                j["epoch"].as_u64().unwrap_or(0),
                j["step"].as_u64().unwrap_or(0),
                j["progress"].as_f64().unwrap_or(0.0)
            );
        })
        .await?;
    let version = trained["result"]["version"].as_u64().unwrap_or(0);
    println!();
    let rows: Vec<Vec<String>> = trained["epochs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                e["epoch"].to_string(),
                format!("{:.6}", e["train_loss"].as_f64().unwrap_or(f64::NAN)),
                format!("{:.2}", e["psnr"].as_f64().unwrap_or(f64::NAN)),
                format!("{:.2}", e["baseline_psnr"].as_f64().unwrap_or(f64::NAN)),
                format!("{:.4}", e["ssim"].as_f64().unwrap_or(f64::NAN)),
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(
            &["EPOCH", "TRAIN LOSS", "PSNR dB", "INPUT PSNR dB", "SSIM"],
            &rows
        )
    );
    println!(
        "  registered layer 2 version {version}: GET {}/models/layer/2/{version}",
        gw.base
    );

    step(3, "reading the training report");
    let deadline = std::time::Instant::now() + timeout;
    let report = loop {
        let a = gw
            .get(&format!("/training/reports/job/{train_id}?format=txt"))
            .await?;
        if a.status == 200 {
            break a.bytes;
        }
        if a.status != 404 {
            return Err(ToolError::Other(format!("report: {}", a.message())));
        }
        if std::time::Instant::now() > deadline {
            return Err(ToolError::Other(format!(
                "the report of job {train_id} did not appear within {} s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let report_path = args.out.join("report.txt");
    std::fs::write(&report_path, &report)
        .map_err(|e| ToolError::Other(format!("cannot write {}: {e}", report_path.display())))?;
    let html = gw
        .get(&format!("/training/reports/job/{train_id}?format=html"))
        .await?;
    let html_path = args.out.join("report.html");
    std::fs::write(&html_path, &html.bytes)
        .map_err(|e| ToolError::Other(format!("cannot write {}: {e}", html_path.display())))?;
    println!(
        "  saved {} and {}",
        report_path.display(),
        html_path.display()
    );
    println!(
        "  stored in training-outputs/reports/{train_id}/ and training-outputs/analysis/{train_id}/"
    );

    step(
        4,
        "evaluating it against the classical baselines on a held-out test set",
    );
    let a = gw
        .post(
            "/synthetic/generate",
            &json!({"num_images": 2, "preset": "mixed", "width": width, "height": height, "split": "test"}),
        )
        .await?;
    let job = Gateway::expect(a, 202, "test set generation")?;
    let test_job = job["job_id"].as_str().unwrap_or_default().to_string();
    let test = gw
        .wait_job(&format!("/jobs/{test_job}"), timeout, |_| {})
        .await?;
    let test_set = test["result"]["dataset_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let a = gw
        .post(
            "/evaluation/run",
            &json!({"layer": 2, "version": version, "dataset": test_set}),
        )
        .await?;
    let job = Gateway::expect(a, 202, "evaluation")?;
    let eval_id = job["evaluation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let eval = gw
        .wait_job(&format!("/evaluation/{eval_id}"), timeout, |_| {})
        .await?;
    let score = |v: &Value| {
        vec![
            format!("{:.2}", v["psnr"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.4}", v["ssim"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.2}", 100.0 * v["accuracy"].as_f64().unwrap_or(f64::NAN)),
        ]
    };
    let mut rows = vec![[vec![format!("layer 2 v{version}")], score(&eval["mean"])].concat()];
    if let Some(b) = eval["baselines"].as_object() {
        for (name, v) in b {
            rows.push([vec![name.clone()], score(v)].concat());
        }
    }
    println!(
        "{}",
        table::render(&["ON TEST SET", "PSNR dB", "SSIM", "ACCURACY %"], &rows)
    );
    println!(
        "  results in evaluation/{eval_id}/ (GET {}/evaluation/{eval_id})",
        gw.base
    );

    step(5, "restoring a sample page");
    let name = eval["details"]["per_image"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let page = gw
        .get(&format!("/files/training-data/degraded/{name}"))
        .await?;
    if page.status != 200 {
        return Err(ToolError::Other(format!("sample page: {}", page.message())));
    }
    let degraded_path = args.out.join("sample-degraded.png");
    std::fs::write(&degraded_path, &page.bytes)
        .map_err(|e| ToolError::Other(format!("cannot write {}: {e}", degraded_path.display())))?;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(page.bytes).file_name(name.clone()),
        )
        .text("version", version.to_string());
    let restored = gw.post_form("/restore/document", form).await?;
    if restored.status != 200 {
        return Err(ToolError::Other(format!(
            "restoration: {}",
            restored.message()
        )));
    }
    let restored_path = args.out.join("sample-restored.png");
    std::fs::write(&restored_path, &restored.bytes)
        .map_err(|e| ToolError::Other(format!("cannot write {}: {e}", restored_path.display())))?;
    let seconds = restored
        .headers
        .get("x-restoreflow-seconds")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    println!(
        "  {} -> {} ({seconds} s)",
        degraded_path.display(),
        restored_path.display()
    );
    println!(
        "\ndemo complete: dataset {dataset}, training job {train_id}, model v{version}, evaluation {eval_id}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_are_refused() {
        assert_eq!(size("256x320").unwrap(), (256, 320));
        assert!(size("256").is_err());
        assert!(size("32x32").is_err());
        assert!(size("axb").is_err());
    }
}
