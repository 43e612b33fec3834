//! `restoreflow train …`: start, inspect, watch and cancel Layer 2 training
//! jobs through the trainer's gRPC API.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use restoreflow_core::Settings;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_proto::v1::{self, trainer_service_client::TrainerServiceClient};
use restoreflow_trainer::{
    DEFAULT_BATCH_SIZE, DEFAULT_BUDGET_EPOCHS, DEFAULT_CLIP_NORM, DEFAULT_INK_WEIGHT,
    DEFAULT_LEARNING_RATE, DEFAULT_LOSS, DEFAULT_MAX_MINUTES, DEFAULT_MIN_LEARNING_RATE,
    DEFAULT_PATCH_SAMPLING, DEFAULT_PATCH_SIZE, DEFAULT_PATCHES_PER_PAGE, DEFAULT_PRESET,
    DEFAULT_SCHEDULE, DEFAULT_SSIM_WEIGHT, DEFAULT_VAL_CROP, DEFAULT_VAL_FRACTION,
    DEFAULT_VAL_PAGES, DEFAULT_VAL_VIEW, DEFAULT_WARMUP_STEPS, patch_sampling_name,
};
use serde_json::{Value, json};

use super::{EXIT_CANCELLED, ToolError, connect, job_status, print_json, struct_json, table};

/// `restoreflow train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Trainer gRPC endpoint [default: a configured gateway.trainer_url, else
    /// the one `restoreflow up` wrote to ./data/services.json].
    #[arg(long, global = true, value_name = "URL")]
    trainer: Option<String>,
    /// Print JSON instead of text (`watch`: one JSON event per line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: TrainCommand,
}

#[derive(Subcommand, Debug)]
enum TrainCommand {
    /// Starts a Layer 2 training job and prints its id.
    // Boxed: the recipe makes these arguments much larger than the others.
    Start(Box<StartArgs>),
    /// Queued/running/finished counts, live workers and the queue depth.
    Status,
    /// Follows a job with a progress bar until it ends (exit 0 when it
    /// completed, 1 when it failed, 3 when it was cancelled).
    Watch {
        /// Job id.
        job_id: String,
    },
    /// Stops a job at its next step, keeping its last checkpoint.
    Cancel {
        /// Job id.
        job_id: String,
    },
}

/// Parameters of `train start`; the trainer validates them. An absent flag
/// takes the trainer's default (the `DEFAULT_*` constants of
/// `restoreflow-trainer`, shown in the help).
#[derive(Args, Debug)]
struct StartArgs {
    #[arg(long, help = format!(
        "Epochs, 1–1000 [default: a time budget of --max-minutes, at most {DEFAULT_BUDGET_EPOCHS} epochs]"
    ))]
    epochs: Option<u32>,
    #[arg(long, help = format!(
        "Patches per step, 1–64 [default: {DEFAULT_BATCH_SIZE}, or the first --stage's]"
    ))]
    batch_size: Option<u32>,
    /// Pages to use, at least 2 [default: every pair].
    #[arg(long)]
    max_pairs: Option<u32>,
    #[arg(long, help = format!("Model size: tiny, small or base [default: {DEFAULT_PRESET}]"))]
    preset: Option<String>,
    #[arg(long, help = format!("Peak learning rate, in (0, 1) [default: {DEFAULT_LEARNING_RATE:e}]"))]
    lr: Option<f64>,
    #[arg(long, help = format!(
        "Training patch size: a multiple of 8 in 16–512, not with --stage [default: {DEFAULT_PATCH_SIZE}]"
    ))]
    patch_size: Option<u32>,
    #[arg(long, help = format!(
        "Fraction of pages held out for validation, in (0, 0.5] [default: {DEFAULT_VAL_FRACTION}]"
    ))]
    val_fraction: Option<f64>,
    #[arg(long, help = format!(
        "Held-out pages scored at each epoch's end (the first of the split), 1–100000 [default: {DEFAULT_VAL_PAGES}]"
    ))]
    val_pages: Option<u32>,
    /// Seed of the split, shuffling and initialisation [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// Device [default: auto, a GPU when a CUDA worker is live].
    #[arg(long, value_enum)]
    device: Option<DeviceArg>,
    /// Matmul precision [default: auto, tf32 on cuda].
    #[arg(long, value_enum)]
    precision: Option<PrecisionArg>,
    /// Dataset id or key prefix [default: every pair in training-data].
    #[arg(long)]
    dataset: Option<String>,
    /// Version number or alias to fine-tune from.
    #[arg(long)]
    base_model: Option<String>,
    /// Stop after this many epochs without a better validation PSNR.
    #[arg(long)]
    early_stopping: Option<u32>,
    #[arg(long, help = format!(
        "Learning-rate schedule: constant, warmup_cosine or cyclic_cosine [default: {}]",
        DEFAULT_SCHEDULE.as_str()
    ))]
    schedule: Option<String>,
    #[arg(long, help = format!(
        "Warm-up steps of warmup_cosine, 0–100000 [default: {DEFAULT_WARMUP_STEPS}]"
    ))]
    warmup_steps: Option<u64>,
    #[arg(long, help = format!(
        "Final rate of warmup_cosine and cyclic_cosine, in [0, --lr] [default: {DEFAULT_MIN_LEARNING_RATE:e}]"
    ))]
    min_lr: Option<f64>,
    /// A progressive stage, PATCHxBATCH@UNTIL_STEP (e.g. 64x8@2000): patches
    /// of PATCH px in batches of BATCH until step UNTIL_STEP. Repeat it for
    /// up to 8 stages with increasing steps [default: none].
    #[arg(long = "stage", value_name = "PATCHxBATCH@UNTIL_STEP", value_parser = parse_stage)]
    stages: Vec<v1::ProgressiveStage>,
    #[arg(long, help = format!(
        "Training loss: l1, charbonnier or l1_ssim [default: {}]",
        DEFAULT_LOSS.as_str()
    ))]
    loss: Option<String>,
    #[arg(long, help = format!(
        "Weight of the SSIM term of l1_ssim, in [0, 10] [default: {DEFAULT_SSIM_WEIGHT}]"
    ))]
    ssim_weight: Option<f64>,
    #[arg(long, help = format!(
        "Extra weight of ink pixels in the per-pixel loss, in [0, 20]: ink counts 1 + this times paper [default: {DEFAULT_INK_WEIGHT}]"
    ))]
    ink_weight: Option<f64>,
    #[arg(long, help = format!(
        "Patches per training page per epoch, 1–256 [default: {DEFAULT_PATCHES_PER_PAGE}]"
    ))]
    patches_per_page: Option<u32>,
    /// Optimiser steps per epoch, 1–100000 (instead of --patches-per-page).
    #[arg(long)]
    steps_per_epoch: Option<u32>,
    #[arg(long, help = format!(
        "Where patches are taken in a page: ink, damage or uniform [default: {}]",
        patch_sampling_name(DEFAULT_PATCH_SAMPLING)
    ))]
    patch_sampling: Option<String>,
    #[arg(long, help = format!(
        "Clip gradients to this global L2 norm (> 0) [default: {}]",
        DEFAULT_CLIP_NORM.map_or("no clipping".to_string(), |c| c.to_string())
    ))]
    clip_norm: Option<f64>,
    #[arg(long, help = format!(
        "Wall-clock budget in minutes, (0, 10080] [default: {DEFAULT_MAX_MINUTES} without --epochs, else none]"
    ))]
    max_minutes: Option<f64>,
    #[arg(long, help = format!(
        "What validation measures each page on: center_crop or whole_page [default: {}]",
        DEFAULT_VAL_VIEW.as_str()
    ))]
    val_view: Option<String>,
    #[arg(long, help = format!(
        "Side of the center_crop square, a multiple of 8 in 32–1024 [default: {DEFAULT_VAL_CROP}]"
    ))]
    val_crop: Option<u32>,
}

/// Parses `PATCHxBATCH@UNTIL_STEP`, e.g. `64x8@2000`.
fn parse_stage(s: &str) -> Result<v1::ProgressiveStage, String> {
    let bad = || format!("{s:?} is not PATCHxBATCH@UNTIL_STEP (e.g. 64x8@2000)");
    let (sizes, until) = s.split_once('@').ok_or_else(bad)?;
    let (patch, batch) = sizes.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok(v1::ProgressiveStage {
        patch_size: patch.trim().parse().map_err(|_| bad())?,
        batch_size: batch.trim().parse().map_err(|_| bad())?,
        until_step: until.trim().parse().map_err(|_| bad())?,
    })
}

impl StartArgs {
    /// The request; absent flags stay unset (0 or empty) for the trainer's defaults.
    fn request(self) -> v1::StartTrainingRequest {
        v1::StartTrainingRequest {
            num_epochs: self.epochs.unwrap_or(0),
            batch_size: self.batch_size.unwrap_or(0),
            max_pairs: self.max_pairs.unwrap_or(0),
            learning_rate: self.lr,
            patch_size: self.patch_size,
            preset: self.preset.unwrap_or_default(),
            val_fraction: self.val_fraction,
            val_pages: self.val_pages,
            seed: self.seed,
            device: self
                .device
                .map(|d| d.as_str().to_string())
                .unwrap_or_default(),
            precision: self
                .precision
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            dataset: self.dataset.unwrap_or_default(),
            base_model: self.base_model.unwrap_or_default(),
            early_stopping_patience: self.early_stopping,
            schedule: self.schedule.unwrap_or_default(),
            warmup_steps: self.warmup_steps,
            min_learning_rate: self.min_lr,
            progressive: self.stages,
            loss: self.loss.unwrap_or_default(),
            ssim_weight: self.ssim_weight,
            ink_weight: self.ink_weight,
            patches_per_page: self.patches_per_page,
            steps_per_epoch: self.steps_per_epoch,
            patch_sampling: self.patch_sampling.unwrap_or_default(),
            clip_norm: self.clip_norm,
            max_minutes: self.max_minutes,
            val_view: self.val_view.unwrap_or_default(),
            val_crop_size: self.val_crop,
        }
    }
}

/// Runs a `train` subcommand; `watch` decides the exit code from the job's end.
pub async fn run_train(args: TrainArgs, settings: &Settings) -> Result<ExitCode, ToolError> {
    let url = super::endpoint(
        args.trainer.as_deref(),
        &settings.gateway.trainer_url,
        &restoreflow_core::config::GatewaySettings::default().trainer_url,
        |u| u.trainer.clone(),
        std::path::Path::new(super::UP_DATA_DIR),
    );
    let mut client = TrainerServiceClient::new(connect("trainer", &url, settings).await?);
    match args.command {
        TrainCommand::Start(start) => {
            let job = client.start_training(start.request()).await?.into_inner();
            if args.json {
                print_json(&json!({"job_id": job.id, "status": job_status(job.status)}));
            } else {
                println!("{}", job.id);
            }
        }
        TrainCommand::Status => {
            let s = client
                .get_training_status(v1::GetTrainingStatusRequest {})
                .await?
                .into_inner();
            if args.json {
                print_json(&status_json(&s));
            } else {
                println!("{}", status_text(&s));
            }
        }
        TrainCommand::Watch { job_id } => return watch(&mut client, &job_id, args.json).await,
        TrainCommand::Cancel { job_id } => {
            let job = client
                .cancel_training(v1::JobRef { job_id })
                .await?
                .into_inner();
            if args.json {
                print_json(&json!({"job_id": job.id, "status": job_status(job.status)}));
            } else {
                println!("{}: {}", job.id, job_status(job.status));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_json(s: &v1::TrainingStatus) -> Value {
    json!({
        "queued": s.queued,
        "running": s.running,
        "finished": s.finished,
        "queue_depth": s.queue_depth,
        "workers": s.workers.iter().map(|w| json!({
            "id": w.id, "device": w.device, "current_job": w.current_job,
            "capabilities": w.capabilities.iter().map(|c| json!({
                "device": c.device, "class": c.class, "name": c.name, "memory_bytes": c.memory_bytes,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "devices": s.devices.iter().map(|d| json!({
            "device": d.device, "live_workers": d.live_workers, "on_demand": d.on_demand,
            "accepting": d.accepting, "queued": d.queued, "running": d.running,
            "queue_depth": d.queue_depth,
            "notice": Some(&d.notice).filter(|n| !n.is_empty()),
        })).collect::<Vec<_>>(),
    })
}

fn status_text(s: &v1::TrainingStatus) -> String {
    let mut out = format!(
        "jobs: {} queued, {} running, {} finished\nqueue depth: {}\nworkers: {}",
        s.queued,
        s.running,
        s.finished,
        s.queue_depth,
        s.workers.len()
    );
    if !s.workers.is_empty() {
        let rows: Vec<Vec<String>> = s
            .workers
            .iter()
            .map(|w| {
                vec![
                    w.id.clone(),
                    w.device.clone(),
                    w.current_job.clone().unwrap_or_else(|| "idle".into()),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table::render(&["WORKER", "DEVICE", "CURRENT JOB"], &rows));
    }
    if !s.devices.is_empty() {
        let rows: Vec<Vec<String>> = s
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.device.clone(),
                    d.live_workers.to_string(),
                    if d.on_demand { "yes" } else { "no" }.into(),
                    if d.accepting { "yes" } else { "no" }.into(),
                    d.queued.to_string(),
                    d.running.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table::render(
            &[
                "DEVICE",
                "LIVE",
                "ON DEMAND",
                "ACCEPTING",
                "QUEUED",
                "RUNNING",
            ],
            &rows,
        ));
        for d in s.devices.iter().filter(|d| !d.notice.is_empty()) {
            out.push_str(&format!("\nnote: {}", d.notice));
        }
    }
    out
}

/// What the progress line shows, updated from the job's events.
#[derive(Debug, Default, PartialEq)]
struct WatchState {
    epochs: Option<u64>,
    epoch: Option<u64>,
    step: Option<u64>,
    total_steps: Option<u64>,
    loss: Option<f64>,
    val_psnr: Option<f64>,
    status: Option<String>,
}

impl WatchState {
    /// Folds one event (`progress`, `metric`, `status`; others are ignored).
    fn apply(&mut self, kind: &str, payload: &Value) {
        let u = |k: &str| payload.get(k).and_then(Value::as_u64);
        let f = |k: &str| payload.get(k).and_then(Value::as_f64);
        match kind {
            "progress" => {
                self.epoch = u("epoch").or(self.epoch);
                self.step = u("step").or(self.step);
                self.total_steps = u("total_steps").or(self.total_steps);
                self.loss = f("loss").or(self.loss);
            }
            "metric" => {
                self.epoch = u("epoch").or(self.epoch);
                self.val_psnr = f("psnr").or(self.val_psnr);
            }
            "status" => {
                if let Some(s) = payload.get("status").and_then(Value::as_str) {
                    self.status = Some(s.to_string());
                }
            }
            _ => {}
        }
    }

    fn message(&self) -> String {
        let epoch = match (self.epoch, self.epochs) {
            (Some(e), Some(n)) => format!("epoch {e}/{n}"),
            (Some(e), None) => format!("epoch {e}"),
            _ => "epoch -".into(),
        };
        let loss = self.loss.map_or_else(|| "-".into(), |l| format!("{l:.4}"));
        let psnr = self
            .val_psnr
            .map_or_else(|| "-".into(), |p| format!("{p:.2} dB"));
        let status = self.status.as_deref().unwrap_or("queued");
        format!("{status} | {epoch} | loss {loss} | val PSNR {psnr}")
    }
}

/// Streams `WatchTraining` (history, then live) into a progress bar, then
/// reads the job's final state for the exit code.
async fn watch(
    client: &mut TrainerServiceClient<AuthChannel>,
    job_id: &str,
    json_lines: bool,
) -> Result<ExitCode, ToolError> {
    let job_ref = || v1::JobRef {
        job_id: job_id.to_string(),
    };
    let first = client.get_training_job(job_ref()).await?.into_inner();
    let params = first
        .job
        .as_ref()
        .map_or(json!({}), restoreflow_proto::job_params);
    let mut state = WatchState {
        epochs: params.get("num_epochs").and_then(Value::as_u64),
        ..Default::default()
    };
    let bar = if json_lines {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        // The template is a constant known to be valid.
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let mut events = client.watch_training(job_ref()).await?.into_inner();
    while let Some(event) = events.message().await? {
        let payload = struct_json(event.payload.as_ref());
        if json_lines {
            println!(
                "{}",
                json!({"id": event.id, "kind": event.kind, "payload": payload})
            );
        }
        state.apply(&event.kind, &payload);
        if event.kind == "log"
            && let Some(m) = payload.get("message").and_then(Value::as_str)
        {
            bar.println(m);
        }
        if let Some(total) = state.total_steps {
            bar.set_length(total);
        }
        if let Some(step) = state.step {
            bar.set_position(step);
        }
        bar.set_message(state.message());
    }
    bar.finish_and_clear();
    let end = client.get_training_job(job_ref()).await?.into_inner();
    let job = end.job.unwrap_or_default();
    let status = job_status(job.status);
    let result = struct_json(job.result.as_ref());
    let summary = match status.as_str() {
        "completed" => {
            let why = stopped_early(&result);
            match result.get("version").and_then(Value::as_u64) {
                Some(v) => format!("job {} completed{why}: registered as version {v}", job.id),
                None => format!("job {} completed{why}", job.id),
            }
        }
        "failed" => format!(
            "job {} failed: {}",
            job.id,
            job.error.as_deref().unwrap_or("no error recorded")
        ),
        other => format!("job {} {other}", job.id),
    };
    if json_lines {
        println!(
            "{}",
            json!({"job_id": job.id, "status": status, "result": result, "error": job.error})
        );
    } else {
        eprintln!("{}", state.message());
        println!("{summary}");
    }
    Ok(match status.as_str() {
        "completed" => ExitCode::SUCCESS,
        "cancelled" => ExitCode::from(EXIT_CANCELLED),
        _ => ExitCode::FAILURE,
    })
}

/// Why a completed run ended before its last epoch, e.g. ` (time budget
/// reached)`; empty when it ran them all.
fn stopped_early(result: &Value) -> &'static str {
    match result.get("stop_reason").and_then(Value::as_str) {
        Some("time_budget") => " (time budget reached)",
        Some("early_stopped") => " (early stopped)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Start {
        #[command(flatten)]
        args: StartArgs,
    }

    fn start(flags: &[&str]) -> Result<v1::StartTrainingRequest, clap::Error> {
        let argv = std::iter::once("start").chain(flags.iter().copied());
        Start::try_parse_from(argv).map(|s| s.args.request())
    }

    #[test]
    fn no_flags_leave_every_default_to_the_trainer() {
        assert_eq!(start(&[]).unwrap(), v1::StartTrainingRequest::default());
    }

    #[test]
    fn recipe_flags_build_the_request() {
        let r = start(&[
            "--epochs",
            "3",
            "--batch-size",
            "2",
            "--max-pairs",
            "6",
            "--lr",
            "0.002",
            "--schedule",
            "warmup_cosine",
            "--warmup-steps",
            "50",
            "--min-lr",
            "1e-6",
            "--stage",
            "32x4@100",
            "--stage",
            "64X2@200",
            "--loss",
            "l1_ssim",
            "--ssim-weight",
            "0.3",
            "--ink-weight",
            "2.5",
            "--steps-per-epoch",
            "12",
            "--patch-sampling",
            "uniform",
            "--clip-norm",
            "1",
            "--max-minutes",
            "2.5",
            "--val-view",
            "center_crop",
            "--val-crop",
            "128",
        ])
        .unwrap();
        assert_eq!((r.num_epochs, r.batch_size, r.max_pairs), (3, 2, 6));
        assert_eq!(r.learning_rate, Some(0.002));
        assert_eq!(r.schedule, "warmup_cosine");
        assert_eq!(
            (r.warmup_steps, r.min_learning_rate),
            (Some(50), Some(1e-6))
        );
        assert_eq!(
            r.progressive,
            vec![
                v1::ProgressiveStage {
                    patch_size: 32,
                    batch_size: 4,
                    until_step: 100
                },
                v1::ProgressiveStage {
                    patch_size: 64,
                    batch_size: 2,
                    until_step: 200
                },
            ]
        );
        assert_eq!((r.loss.as_str(), r.ssim_weight), ("l1_ssim", Some(0.3)));
        assert_eq!(r.ink_weight, Some(2.5));
        assert_eq!((r.patches_per_page, r.steps_per_epoch), (None, Some(12)));
        assert_eq!(r.patch_sampling, "uniform");
        assert_eq!((r.clip_norm, r.max_minutes), (Some(1.0), Some(2.5)));
        assert_eq!(
            (r.val_view.as_str(), r.val_crop_size),
            ("center_crop", Some(128))
        );
        let r = start(&["--patches-per-page", "8", "--val-view", "whole_page"]).unwrap();
        assert_eq!(
            (r.patches_per_page, r.val_view.as_str()),
            (Some(8), "whole_page")
        );
    }

    #[test]
    fn an_early_end_is_named() {
        assert_eq!(
            stopped_early(&json!({"stop_reason": "time_budget"})),
            " (time budget reached)"
        );
        assert_eq!(stopped_early(&json!({"stop_reason": "completed"})), "");
        assert_eq!(stopped_early(&json!({})), "");
    }

    #[test]
    fn stages_must_read_patch_x_batch_at_step() {
        assert_eq!(
            parse_stage("128x2@4000"),
            Ok(v1::ProgressiveStage {
                patch_size: 128,
                batch_size: 2,
                until_step: 4000
            })
        );
        for bad in ["128x2", "128@4000", "x2@4", "128x2@", "axb@c", "128x2@-1"] {
            let e = parse_stage(bad).unwrap_err();
            assert!(e.contains("PATCHxBATCH@UNTIL_STEP"), "{bad}: {e}");
        }
        let e = start(&["--stage", "64-8@10"]).unwrap_err().to_string();
        assert!(e.contains("PATCHxBATCH@UNTIL_STEP"), "{e}");
    }

    #[test]
    fn help_names_the_trainers_defaults() {
        use clap::CommandFactory;
        let help = Start::command().render_help().to_string();
        assert!(
            help.contains(&format!("[default: {}]", DEFAULT_SCHEDULE.as_str())),
            "{help}"
        );
        assert!(
            help.contains(&format!("[default: {DEFAULT_WARMUP_STEPS}]")),
            "{help}"
        );
        assert!(help.contains("--stage <PATCHxBATCH@UNTIL_STEP>"), "{help}");
    }

    #[test]
    fn events_fold_into_the_progress_line() {
        let mut s = WatchState {
            epochs: Some(5),
            ..Default::default()
        };
        assert_eq!(s.message(), "queued | epoch - | loss - | val PSNR -");
        s.apply("status", &json!({"status": "running"}));
        s.apply(
            "progress",
            &json!({"progress": 10.0, "epoch": 1, "step": 3, "total_steps": 30, "loss": 0.12345}),
        );
        s.apply(
            "metric",
            &json!({"epoch": 1, "psnr": 24.5, "train_loss": 0.1}),
        );
        s.apply("log", &json!({"message": "checkpoint stored"}));
        assert_eq!((s.step, s.total_steps), (Some(3), Some(30)));
        assert_eq!(
            s.message(),
            "running | epoch 1/5 | loss 0.1235 | val PSNR 24.50 dB"
        );
        // A progress event without a loss keeps the last one.
        s.apply(
            "progress",
            &json!({"progress": 20.0, "epoch": 2, "step": 6}),
        );
        assert_eq!(s.loss, Some(0.12345));
        assert_eq!(s.epoch, Some(2));
    }

    #[test]
    fn status_lists_workers() {
        let s = v1::TrainingStatus {
            queued: 1,
            running: 1,
            finished: 4,
            queue_depth: 1,
            workers: vec![v1::Worker {
                id: "w1".into(),
                device: "cpu".into(),
                current_job: Some("job-9".into()),
                capabilities: vec![],
            }],
            devices: vec![v1::DeviceClassStatus {
                device: "cuda".into(),
                queued: 2,
                notice: "2 cuda job(s) waiting: no live cuda worker".into(),
                ..Default::default()
            }],
        };
        let t = status_text(&s);
        assert!(t.starts_with("jobs: 1 queued, 1 running, 4 finished\nqueue depth: 1\nworkers: 1"));
        assert!(t.contains("w1      cpu     job-9"), "{t}");
        assert_eq!(status_json(&s)["workers"][0]["current_job"], "job-9");
        assert!(t.contains("note: 2 cuda job(s) waiting"), "{t}");
        assert_eq!(status_json(&s)["devices"][0]["queued"], 2);
    }
}

/// `--device`: the device classes and `auto`, spelled as the API spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// The CPU workers.
    Cpu,
    /// A CUDA worker.
    Cuda,
    /// A GPU when a CUDA worker is live, else the CPU.
    Auto,
}

impl DeviceArg {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => restoreflow_core::devices::CPU,
            Self::Cuda => restoreflow_core::devices::CUDA,
            Self::Auto => restoreflow_core::devices::AUTO,
        }
    }
}

/// `--precision`: matmul precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Full f32.
    F32,
    /// TF32 tensor cores (CUDA).
    Tf32,
    /// TF32 on CUDA, f32 elsewhere.
    Auto,
}

impl PrecisionArg {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Tf32 => "tf32",
            Self::Auto => "auto",
        }
    }
}
