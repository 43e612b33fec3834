//! `restoreflow train …`: start, inspect, watch and cancel Layer 2 training
//! jobs through the trainer's gRPC API.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use restoreflow_core::Settings;
use restoreflow_proto::v1::{self, trainer_service_client::TrainerServiceClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{EXIT_CANCELLED, ToolError, connect, job_status, print_json, struct_json, table};

/// `restoreflow train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Trainer gRPC endpoint [default: the configured gateway.trainer_url].
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
    Start(StartArgs),
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

/// Parameters of `train start`; the trainer validates them.
#[derive(Args, Debug)]
struct StartArgs {
    /// Epochs, 1–1000.
    #[arg(long)]
    epochs: u32,
    /// Batch size, 1–64.
    #[arg(long)]
    batch_size: u32,
    /// Pages to use, at least 2.
    #[arg(long)]
    max_pairs: u32,
    /// Model size: tiny, small or base [default: the trainer's].
    #[arg(long)]
    preset: Option<String>,
    /// Learning rate, in (0, 1).
    #[arg(long)]
    lr: Option<f64>,
    /// Training patch size: a multiple of 8 in 16–512.
    #[arg(long)]
    patch_size: Option<u32>,
    /// Fraction of pages held out for validation, in (0, 0.5].
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Seed of the split, shuffling and initialisation.
    #[arg(long)]
    seed: Option<u64>,
    /// cpu or cuda [default: the trainer's].
    #[arg(long)]
    device: Option<String>,
    /// Dataset id or key prefix [default: every pair in training-data].
    #[arg(long)]
    dataset: Option<String>,
    /// Version number or alias to fine-tune from.
    #[arg(long)]
    base_model: Option<String>,
    /// Stop after this many epochs without a better validation PSNR.
    #[arg(long)]
    early_stopping: Option<u32>,
}

impl StartArgs {
    fn request(self) -> v1::StartTrainingRequest {
        v1::StartTrainingRequest {
            num_epochs: self.epochs,
            batch_size: self.batch_size,
            max_pairs: self.max_pairs,
            learning_rate: self.lr,
            patch_size: self.patch_size,
            preset: self.preset.unwrap_or_default(),
            val_fraction: self.val_fraction,
            seed: self.seed,
            device: self.device.unwrap_or_default(),
            dataset: self.dataset.unwrap_or_default(),
            base_model: self.base_model.unwrap_or_default(),
            early_stopping_patience: self.early_stopping,
        }
    }
}

/// Runs a `train` subcommand; `watch` decides the exit code from the job's end.
pub async fn run_train(args: TrainArgs, settings: &Settings) -> Result<ExitCode, ToolError> {
    let url = args
        .trainer
        .clone()
        .unwrap_or_else(|| settings.gateway.trainer_url.clone());
    let mut client = TrainerServiceClient::new(connect("trainer", &url).await?);
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
    client: &mut TrainerServiceClient<Channel>,
    job_id: &str,
    json_lines: bool,
) -> Result<ExitCode, ToolError> {
    let job_ref = || v1::JobRef {
        job_id: job_id.to_string(),
    };
    let first = client.get_training_job(job_ref()).await?.into_inner();
    let params = struct_json(first.job.as_ref().and_then(|j| j.params.as_ref()));
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
        "completed" => match result.get("version").and_then(Value::as_u64) {
            Some(v) => format!("job {} completed: registered as version {v}", job.id),
            None => format!("job {} completed", job.id),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

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
            }],
        };
        let t = status_text(&s);
        assert!(t.starts_with("jobs: 1 queued, 1 running, 4 finished\nqueue depth: 1\nworkers: 1"));
        assert!(t.contains("w1      cpu     job-9"), "{t}");
        assert_eq!(status_json(&s)["workers"][0]["current_job"], "job-9");
    }
}
