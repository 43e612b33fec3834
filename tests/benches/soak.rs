//! Soak and speed bench of the shipped binary, driven the way a user drives it.
//!
//! Starts the release `restoreflow up` (the binary users run, with its own
//! process settings) on a fresh data directory, generates pairs over REST,
//! starts one Layer 2 training job over REST and samples the process's RSS
//! while it runs. At the end it prints one table: steps, epochs, ms per step
//! and seconds per epoch from the job's own epoch records, peak RSS (VmHWM),
//! RSS at step 50 and at the end, and the growth between them. Optionally it
//! then registers an evaluation folder (pairs `NNN_clean.png`,
//! `NNN_degraded.png`, `NNN.txt`) and evaluates the trained model and the
//! classical baselines on it (the model card), and/or runs the PyTorch
//! reference's train mode for comparison.
//!
//! ```sh
//! cargo build --release -p restoreflow
//! SOAK_BODY='{"preset":"small","max_minutes":30}' SOAK_PAIRS=300 \
//!   cargo bench -p restoreflow-tests --bench soak
//! ```
//!
//! Environment:
//! - `RESTOREFLOW_BIN`: the binary (default `$CARGO_TARGET_DIR/release/restoreflow`,
//!   else `target/release/restoreflow`).
//! - `SOAK_PAIRS` (default 300) and `SOAK_PRESET` (default `mixed`): generated pairs;
//!   `SOAK_TARGET` (default `as_printed`): what their clean half holds (`digital`:
//!   black on white).
//! - `SOAK_GENERATE`: a JSON object merged into both generation bodies, e.g.
//!   `{"steps": [...]}` for a free composition instead of the preset, or
//!   `{"page_size": "a4", "dpi": 150}`.
//! - `SOAK_BODY`: the JSON body of `POST /training/layer2/start` (default `{}`:
//!   the default recipe).
//! - `SOAK_TEST_PAIRS`: generate this many held-out (`split: "test"`) pairs of
//!   `SOAK_PRESET` and evaluate the trained model on their whole pages.
//! - `SOAK_EVAL_DIR`: a folder of pairs to register and evaluate on afterwards.
//! - `SOAK_TORCH`: `PYTHON SCRIPT` of the PyTorch reference; with `SOAK_TORCH_ARGS`
//!   (default `train small 4 64`) it runs once before and once after the job.
//! - `SOAK_KEEP`: keep the data directory (path printed).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Sample {
    secs: f64,
    step: u64,
    rss_mb: f64,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RESTOREFLOW_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(|p| p.join("target"))
                .unwrap_or_else(|| PathBuf::from("target"))
        });
    target.join("release").join("restoreflow")
}

fn proc_kb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> Res<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status} {v}").into());
        }
        Ok(v)
    }

    async fn post(&self, path: &str, body: &Value) -> Res<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
            .json(body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            return Err(format!("POST {path}: {status} {v}").into());
        }
        Ok(v)
    }

    async fn wait_job(&self, id: &str) -> Res<Value> {
        loop {
            let j = self.get(&format!("/jobs/{id}")).await?;
            match j["status"].as_str() {
                Some("completed") => return Ok(j),
                Some("failed") | Some("cancelled") => return Err(format!("job {id}: {j}").into()),
                _ => tokio::time::sleep(Duration::from_secs(2)).await,
            }
        }
    }
}

fn torch(label: &str) -> Option<Value> {
    let spec = std::env::var("SOAK_TORCH").ok()?;
    let mut parts = spec.split_whitespace();
    let (python, script) = (parts.next()?, parts.next()?);
    let args = std::env::var("SOAK_TORCH_ARGS").unwrap_or_else(|_| "train small 4 64".into());
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args.split_whitespace())
        .env(
            "THREADS",
            std::env::var("THREADS").unwrap_or_else(|_| "2".into()),
        )
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))?;
    let v: Value = serde_json::from_str(line).ok()?;
    println!("pytorch ({label}): {v}");
    Some(v)
}

fn rel_pairs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with("_clean.png"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::main]
async fn main() -> Res<()> {
    let bin = binary();
    if !bin.exists() {
        return Err(format!(
            "{} not found: cargo build --release -p restoreflow (or set RESTOREFLOW_BIN)",
            bin.display()
        )
        .into());
    }
    let pairs: u32 = std::env::var("SOAK_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let preset = std::env::var("SOAK_PRESET").unwrap_or_else(|_| "mixed".into());
    let target = std::env::var("SOAK_TARGET").unwrap_or_else(|_| "as_printed".into());
    let body: Value =
        serde_json::from_str(&std::env::var("SOAK_BODY").unwrap_or_else(|_| "{}".into()))?;
    let extra: Value =
        serde_json::from_str(&std::env::var("SOAK_GENERATE").unwrap_or_else(|_| "{}".into()))?;
    let generate_body = |fields: Value| -> Res<Value> {
        let mut merged = fields;
        let (Some(into), Some(from)) = (merged.as_object_mut(), extra.as_object()) else {
            return Err("SOAK_GENERATE must be a JSON object".into());
        };
        // A free composition replaces the preset (the API takes one or the other).
        if from.contains_key("steps") {
            into.remove("preset");
        }
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
        Ok(merged)
    };
    let torch_before = torch("before");

    let data = tempfile::Builder::new().prefix("rf-soak-").tempdir()?;
    let port = free_port()?;
    let mut child = tokio::process::Command::new(&bin)
        .args(["up", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data.path())
        .env_remove("MIMALLOC_PURGE_DELAY")
        .env_remove("CANDLE_BARRIER_POOL_SPIN_LIMIT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("restoreflow exited at once")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let started = Instant::now();
    loop {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("restoreflow did not answer /health within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let key = std::fs::read_to_string(data.path().join("api-key"))?
        .trim()
        .to_string();
    let api = Api { http, base, key };

    let t = Instant::now();
    let gen_job = api
        .post(
            "/synthetic/generate",
            &generate_body(
                json!({"num_images": pairs, "preset": preset, "seed": 1, "target": target}),
            )?,
        )
        .await?;
    api.wait_job(gen_job["job_id"].as_str().ok_or("no job id")?)
        .await?;
    println!(
        "generated {pairs} {preset} pairs ({target}, extra {extra}) in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    let job = api.post("/training/layer2/start", &body).await?;
    let id = job["job_id"].as_str().ok_or("no job id")?.to_string();
    println!("training job {id}: {body}");
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let view = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let v = api.get(&format!("/training/jobs/{id}")).await?;
        let rss_mb = proc_kb(pid, "VmRSS:").unwrap_or(0.0) / 1024.0;
        let step = v["step"].as_u64().unwrap_or(0);
        samples.push(Sample {
            secs: t0.elapsed().as_secs_f64(),
            step,
            rss_mb,
        });
        if samples.len().is_multiple_of(30) {
            println!(
                "{:>6.0} s  step {step:>6}  epoch {:>4}  rss {rss_mb:>7.0} MB",
                t0.elapsed().as_secs_f64(),
                v["epoch"]
            );
        }
        match v["status"].as_str() {
            Some("completed") => break v,
            Some("failed") | Some("cancelled") => {
                return Err(format!("training ended {}: {}", v["status"], v["error"]).into());
            }
            _ => {}
        }
    };
    let peak_mb = proc_kb(pid, "VmHWM:").unwrap_or(0.0) / 1024.0;
    let epochs = view["epochs"].as_array().cloned().unwrap_or_default();
    let params = &view["params"];
    let batch = params["batch_size"].as_f64().unwrap_or(4.0);
    // ms per optimiser step from each epoch's own record (validation excluded).
    let ms_per_step: Vec<f64> = epochs
        .iter()
        .filter_map(|e| {
            e["steps_per_second"]
                .as_f64()
                .filter(|s| *s > 0.0)
                .map(|s| 1000.0 / s)
                .or_else(|| {
                    let p = e["pairs_per_second"].as_f64().filter(|p| *p > 0.0)?;
                    Some(1000.0 * batch / p)
                })
        })
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    };
    let s_per_epoch = median(
        epochs
            .iter()
            .filter_map(|e| e["seconds"].as_f64())
            .collect(),
    );
    let steps = view["step"].as_u64().unwrap_or(0);
    let at50 = samples.iter().find(|s| s.step >= 50);
    let end = samples.last();
    let growth = match (at50, end) {
        (Some(a), Some(b)) if a.rss_mb > 0.0 => 100.0 * (b.rss_mb - a.rss_mb) / a.rss_mb,
        _ => f64::NAN,
    };
    let torch_after = torch("after");

    println!();
    println!("| what | value |");
    println!("|---|---|");
    println!("| job body | `{body}` |");
    println!("| stop | {} |", view["result"]["stop_reason"]);
    println!("| steps | {steps} |");
    println!("| epochs | {} |", epochs.len());
    println!(
        "| wall time of the job | {:.1} min |",
        t0.elapsed().as_secs_f64() / 60.0
    );
    println!(
        "| ms/step (median of epoch records) | {:.0} |",
        median(ms_per_step.clone())
    );
    let val_secs: f64 = epochs
        .iter()
        .filter_map(|e| e["val_seconds"].as_f64())
        .sum();
    let wall: f64 = epochs.iter().filter_map(|e| e["seconds"].as_f64()).sum();
    println!(
        "| seconds: training+checkpoints / validation ({}) | {:.0} / {val_secs:.0} |",
        epochs
            .last()
            .and_then(|e| e["val_view"].as_str())
            .unwrap_or("?"),
        wall - val_secs
    );
    println!("| s/epoch with validation (median) | {s_per_epoch:.1} |");
    println!("| peak RSS (VmHWM) | {peak_mb:.0} MB |");
    if let (Some(a), Some(b)) = (at50, end) {
        println!(
            "| RSS at step {} → end (step {}) | {:.0} → {:.0} MB ({growth:+.1}%) |",
            a.step, b.step, a.rss_mb, b.rss_mb
        );
        let max = samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
        println!("| max sampled RSS after step 50 | {max:.0} MB |");
        println!("| samples | {} over {:.0} s |", samples.len(), b.secs);
    }
    if let Some(last) = epochs.last() {
        println!(
            "| last epoch validation ({}) | PSNR {:.2} dB, SSIM {:.3} (identity {:.2} dB, {:.3}) |",
            last["val_view"].as_str().unwrap_or("?"),
            last["psnr"].as_f64().unwrap_or(f64::NAN),
            last["ssim"].as_f64().unwrap_or(f64::NAN),
            last["baseline_psnr"].as_f64().unwrap_or(f64::NAN),
            last["baseline_ssim"].as_f64().unwrap_or(f64::NAN),
        );
    }
    for (label, t) in [("before", &torch_before), ("after", &torch_after)] {
        if let Some(t) = t {
            println!("| PyTorch {label} | {t} |");
        }
    }

    let test_pairs: u32 = std::env::var("SOAK_TEST_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if test_pairs > 0 {
        let gen_job = api
            .post(
                "/synthetic/generate",
                &generate_body(
                    json!({"num_images": test_pairs, "preset": preset, "split": "test", "target": target, "seed": 9_223_372_036_854_779_999_u64}),
                )?,
            )
            .await?;
        let done = api
            .wait_job(gen_job["job_id"].as_str().ok_or("no job id")?)
            .await?;
        let dataset = done["result"]["dataset_id"]
            .as_str()
            .ok_or("the test generation names no dataset")?
            .to_string();
        println!("\nheld-out {preset} test split ({test_pairs} pages, whole pages):");
        evaluate(&api, &dataset, &view).await?;
    }
    if let Some(dir) = std::env::var_os("SOAK_EVAL_DIR").map(PathBuf::from) {
        model_card(&api, &dir, &view).await?;
    }
    if std::env::var_os("SOAK_KEEP").is_some() {
        let kept = data.keep();
        println!("data kept in {}", kept.display());
    }
    let _ = child.kill().await;
    Ok(())
}

/// Registers `dir` as an uploaded evaluation set and evaluates the newest
/// Layer 2 version (and the classical baselines) on it.
async fn model_card(api: &Api, dir: &Path, view: &Value) -> Res<()> {
    let names = rel_pairs(dir);
    if names.is_empty() {
        return Err(format!("{} has no *_clean.png pairs", dir.display()).into());
    }
    let out = std::process::Command::new(binary())
        .args(["eval", "register"])
        .arg(dir)
        .args([
            "--name",
            "soak-eval",
            "--url",
            &api.base,
            "--api-key",
            &api.key,
            "--json",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "eval register failed: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let registered: Value = serde_json::from_slice(&out.stdout)?;
    let dataset = registered["id"]
        .as_str()
        .ok_or("eval register printed no dataset id")?
        .to_string();
    println!("registered {} pairs as {dataset}", names.len());
    evaluate(api, &dataset, view).await
}

/// Evaluates the job's registered version on `dataset` and prints its row and
/// the baselines' rows.
async fn evaluate(api: &Api, dataset: &str, view: &Value) -> Res<()> {
    let version = view["result"]["version"].as_u64();
    let pipelines = std::env::var("SOAK_PIPELINES").unwrap_or_else(|_| "layer2".into());
    let mut results = Vec::new();
    for pipeline in pipelines
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let mut body = json!({"layer": 2, "dataset": dataset, "pipeline": pipeline});
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        let t = Instant::now();
        let ev = api.post("/evaluation/run", &body).await?;
        let eid = ev["evaluation_id"].as_str().ok_or("no evaluation id")?;
        let result = loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let v = api.get(&format!("/evaluation/{eid}")).await?;
            match v["status"].as_str() {
                Some("completed") => break v,
                Some("failed") | Some("cancelled") => {
                    return Err(format!("evaluation: {v}").into());
                }
                _ => {}
            }
        };
        println!(
            "evaluation {eid} ({pipeline}): {} pairs in {:.0} s",
            result["pairs"],
            t.elapsed().as_secs_f64()
        );
        results.push((pipeline.to_string(), result));
    }
    println!();
    println!("| method | PSNR dB | SSIM | CER |");
    println!("|---|---|---|---|");
    let row = |name: &str, s: &Value| {
        println!(
            "| {name} | {:.2} | {:.3} | {} |",
            s["psnr"].as_f64().unwrap_or(f64::NAN),
            s["ssim"].as_f64().unwrap_or(f64::NAN),
            s["cer"]
                .as_f64()
                .map_or("n/a".to_string(), |c| format!("{c:.3}"))
        );
    };
    for (pipeline, result) in &results {
        row(
            &format!("{pipeline} (layer 2 v{})", result["version"]),
            &result["mean"],
        );
    }
    if let Some((_, result)) = results.first()
        && let Some(b) = result["baselines"].as_object()
    {
        for (name, s) in b {
            row(name, s);
        }
    }
    Ok(())
}
