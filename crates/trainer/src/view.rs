//! The training view of a job: its row plus what its events say about epochs,
//! steps, throughput and the time left.

use std::collections::BTreeMap;

use restoreflow_core::db::{self, entity::job, entity::job_event};
use restoreflow_proto::v1;
use restoreflow_training::EpochReport;
use serde_json::{Value, json};

/// Payload of a `metric` event: one finished epoch.
pub fn metric_payload(r: &EpochReport) -> Value {
    let restored = r.restored.as_ref();
    let baseline = r.baseline.as_ref();
    json!({
        "epoch": r.epoch,
        "step": r.step,
        "train_loss": r.train_loss,
        "val_loss": r.val_loss,
        "psnr": restored.map(|m| m.psnr),
        "ssim": restored.map(|m| m.ssim),
        "accuracy": restored.map(|m| m.accuracy),
        "baseline_psnr": baseline.map(|m| m.psnr),
        "baseline_ssim": baseline.map(|m| m.ssim),
        "baseline_accuracy": baseline.map(|m| m.accuracy),
        "val_pages": r.val_pages,
        "held_out_pages": r.held_out_pages,
        // What the validation figures above were measured on.
        "val_view": r.val_view,
        "val_seconds": r.val_seconds,
        "learning_rate": r.lr,
        // One training pair is one image patch, so both names say the same;
        // `images_per_second` sits beside `steps_per_second` for dashboards.
        "pairs_per_second": r.pairs_per_sec,
        "images_per_second": r.pairs_per_sec,
        "steps_per_second": r.steps_per_sec,
        "seconds": r.seconds,
    })
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn count(v: &Value, key: &str) -> u32 {
    v.get(key)
        .and_then(Value::as_u64)
        .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32)
}

/// Per-epoch metrics from `metric` events, one per epoch (the latest wins when
/// a resumed run repeated an epoch), in epoch order.
pub fn epochs_from_events(events: &[job_event::Model]) -> Vec<v1::EpochMetrics> {
    let mut by_epoch: BTreeMap<u64, &Value> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "metric") {
        if let Some(epoch) = e.payload.get("epoch").and_then(Value::as_u64) {
            by_epoch.insert(epoch, &e.payload);
        }
    }
    by_epoch
        .into_iter()
        .map(|(epoch, p)| v1::EpochMetrics {
            epoch: epoch as u32,
            train_loss: num(p, "train_loss"),
            val_loss: num(p, "val_loss"),
            psnr: num(p, "psnr"),
            ssim: num(p, "ssim"),
            accuracy: num(p, "accuracy"),
            baseline_psnr: num(p, "baseline_psnr"),
            baseline_ssim: num(p, "baseline_ssim"),
            baseline_accuracy: num(p, "baseline_accuracy"),
            learning_rate: num(p, "learning_rate"),
            pairs_per_second: num(p, "pairs_per_second"),
            seconds: num(p, "seconds"),
            step: p.get("step").and_then(Value::as_u64).unwrap_or(0),
            steps_per_second: num(p, "steps_per_second"),
            val_seconds: num(p, "val_seconds"),
            val_pages: count(p, "val_pages"),
            // Before `held_out_pages` was recorded every held-out page was scored.
            held_out_pages: p
                .get("held_out_pages")
                .and_then(Value::as_u64)
                .map_or_else(|| count(p, "val_pages"), |n| n as u32),
            val_view: p
                .get("val_view")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

/// The training view of a job row and its events (oldest first).
pub fn training_job(j: &job::Model, events: &[job_event::Model]) -> v1::TrainingJob {
    let last_progress = events
        .iter()
        .rev()
        .find(|e| e.kind == "progress" && e.payload.get("step").is_some())
        .map(|e| &e.payload);
    let running = j.status == db::JobStatus::Running;
    let epochs = epochs_from_events(events);
    let epoch = last_progress
        .and_then(|p| p.get("epoch").and_then(Value::as_u64))
        .map(|e| e as u32)
        .or_else(|| epochs.last().map(|e| e.epoch))
        .unwrap_or(0);
    v1::TrainingJob {
        job: Some(db::job_to_proto(j)),
        epoch,
        step: last_progress
            .and_then(|p| p.get("step").and_then(Value::as_u64))
            .unwrap_or(0),
        eta_seconds: if running {
            last_progress.and_then(|p| p.get("eta_seconds").and_then(Value::as_f64))
        } else {
            None
        },
        throughput: last_progress.and_then(|p| p.get("pairs_per_second").and_then(Value::as_f64)),
        epochs,
        device: j
            .params
            .get("device")
            .and_then(Value::as_str)
            .unwrap_or("cpu")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn event(id: i64, kind: &str, payload: Value) -> job_event::Model {
        job_event::Model {
            id,
            job_id: "j".into(),
            kind: kind.into(),
            payload,
            created_at: Utc::now(),
        }
    }

    fn job(status: db::JobStatus) -> job::Model {
        let now = Utc::now();
        job::Model {
            progress_at: None,
            device: None,
            id: "j".into(),
            kind: db::JobKind::TrainingLayer2,
            status,
            params: json!({"device": "cpu"}),
            progress: 50.0,
            attempts: 1,
            error: None,
            result: None,
            lease_owner: None,
            lease_expires_at: None,
            cancel_requested: false,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn view_reads_progress_and_deduplicates_epochs() {
        let events = vec![
            event(1, "status", json!({"status": "running"})),
            event(
                2,
                "metric",
                json!({"epoch": 1, "psnr": 20.0, "train_loss": 0.5}),
            ),
            event(
                3,
                "metric",
                json!({"epoch": 2, "psnr": 21.0, "val_pages": 60}),
            ),
            // A resumed attempt repeated epoch 2.
            event(
                4,
                "metric",
                json!({"epoch": 2, "psnr": 22.0, "val_view": "centre 256x256 crop",
                       "val_pages": 32, "held_out_pages": 60}),
            ),
            event(
                5,
                "progress",
                json!({"progress": 50.0, "epoch": 3, "step": 9, "eta_seconds": 4.5, "pairs_per_second": 7.0}),
            ),
        ];
        let v = training_job(&job(db::JobStatus::Running), &events);
        assert_eq!(v.epochs.len(), 2);
        assert_eq!(v.epochs[1].psnr, 22.0);
        assert_eq!(v.epochs[1].val_view, "centre 256x256 crop");
        assert_eq!(v.epochs[0].train_loss, 0.5);
        assert_eq!(
            (v.epochs[1].val_pages, v.epochs[1].held_out_pages),
            (32, 60)
        );
        // Older runs recorded no view, and scored every held-out page.
        assert_eq!(v.epochs[0].val_view, "");
        let old = training_job(&job(db::JobStatus::Running), &events[..3]);
        assert_eq!(
            (old.epochs[1].val_pages, old.epochs[1].held_out_pages),
            (60, 60)
        );
        assert_eq!((v.epoch, v.step), (3, 9));
        assert_eq!(v.eta_seconds, Some(4.5));
        assert_eq!(v.throughput, Some(7.0));
        assert_eq!(v.device, "cpu");
        let done = training_job(&job(db::JobStatus::Completed), &events);
        assert_eq!(done.eta_seconds, None);
    }
}
