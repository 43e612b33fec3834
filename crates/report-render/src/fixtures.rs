//! Test fixtures: a plausible five-epoch run on CPU.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use crate::data::*;

/// A completed five-epoch run with a registered model and a previous version.
pub fn sample_data() -> ReportData {
    let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap(); // valid date
    let rows = [
        // epoch, train, val, psnr, ssim, acc, lr, pps, secs
        (
            1, 0.081234, 0.072345, 24.1234, 0.81234, 0.61234, 0.0002, 10.5, 95.25,
        ),
        (
            2, 0.052345, 0.049876, 26.5678, 0.85678, 0.70123, 0.00019, 11.25, 90.5,
        ),
        (
            3, 0.041234, 0.043456, 27.9012, 0.87901, 0.74567, 0.00015, 11.0, 91.0,
        ),
        (
            4, 0.036789, 0.041234, 28.4567, 0.88456, 0.76543, 0.00008, 11.75, 89.75,
        ),
        (
            5, 0.034567, 0.040123, 28.7891, 0.88789, 0.77654, 0.00001, 12.0, 88.5,
        ),
    ];
    let epochs = rows
        .iter()
        .map(
            |&(epoch, train, val, psnr, ssim, acc, lr, pps, secs)| EpochRow {
                epoch,
                train_loss: train,
                val_loss: Some(val),
                psnr: Some(psnr),
                ssim: Some(ssim),
                accuracy: Some(acc),
                baseline_psnr: Some(21.3456),
                baseline_ssim: Some(0.71234),
                baseline_accuracy: Some(0.45678),
                learning_rate: lr,
                pairs_per_second: pps,
                seconds: secs,
            },
        )
        .collect();
    ReportData {
        report_id: "rep-0001".into(),
        generated_at: t0 + chrono::Duration::hours(1),
        job: JobInfo {
            id: "job-42".into(),
            layer: 2,
            status: "completed".into(),
            created_at: t0,
            started_at: Some(t0 + chrono::Duration::seconds(5)),
            finished_at: Some(t0 + chrono::Duration::seconds(5 + 3723)),
            duration_seconds: Some(3723.0),
            attempts: 1,
            error: None,
            stop_reason: Some("completed".into()),
            resumed_from_epoch: None,
        },
        parameters: TrainingParameters {
            epochs: 5,
            batch_size: 4,
            learning_rate: 0.0002,
            schedule: "warmup 1 epoch, then cosine to 1e-6".into(),
            max_pairs: 1000,
            optimizer: "AdamW (beta1 0.9, beta2 0.999, weight decay 0.0001)".into(),
            preset: "tiny".into(),
            patch_size: 128,
            seed: 7,
            device: "cpu".into(),
            val_fraction: 0.1,
            early_stopping_patience: Some(3),
            base_model: None,
            dataset: Some("ds-1".into()),
            recipe: Some(TrainingRecipe {
                schedule: "warmup_cosine".into(),
                peak_learning_rate: 0.0002,
                warmup_steps: Some(100),
                min_learning_rate: Some(0.00001),
                progressive: vec![
                    ProgressiveStage {
                        patch_size: 64,
                        batch_size: 8,
                        until_step: 400,
                    },
                    ProgressiveStage {
                        patch_size: 128,
                        batch_size: 4,
                        until_step: 800,
                    },
                ],
                loss: "l1_ssim".into(),
                ssim_weight: Some(0.2),
                ink_weight: Some(4.0),
                patches_per_page: Some(4),
                steps_per_epoch: None,
                patch_sampling: "ink".into(),
                clip_norm: Some(1.0),
                max_minutes: Some(90.0),
            }),
            validation_view: Some("centre 256x256 crop".into()),
        },
        data: DataStats {
            location: "restoreflow-data/pairs/".into(),
            files_seen: 1010,
            clean_files: 500,
            degraded_files: 505,
            valid_pairs: 500,
            pairs_used: 498,
            train_pairs: 449,
            val_pairs: 49,
            skipped: vec![
                SkippedPair {
                    name: "page-017".into(),
                    reason: "size mismatch".into(),
                },
                SkippedPair {
                    name: "page-233".into(),
                    reason: "undecodable png".into(),
                },
            ],
            dataset_id: Some("ds-1".into()),
            dataset_hash: Some("ab12cd34".into()),
            targets: BTreeMap::from([
                ("as_printed".to_string(), 100),
                ("digital".to_string(), 400),
            ]),
            dpi: vec![150, 300],
        },
        epochs,
        model: Some(ModelInfo {
            layer: 2,
            version: 3,
            object_path: "restoreflow-models/layer-2/v3.safetensors".into(),
            size_bytes: 1_234_567,
            parameter_count: 308_611,
            architecture: "Restormer (tiny)".into(),
            config: serde_json::json!({"dim": 16}),
            sha256: "0123456789abcdef".into(),
            aliases: vec!["latest".into(), "staging".into()],
            best_epoch: Some(5),
        }),
        previous: Some(PreviousVersion {
            version: 2,
            psnr: Some(27.5),
            ssim: Some(0.87),
            val_loss: Some(0.045),
            dataset_hash: Some("ab12cd34".into()),
            same_validation_data: true,
        }),
        environment: Some(Environment {
            os: "linux x86_64".into(),
            cpu_model: "AMD EPYC 7B13".into(),
            cpu_threads: 16,
            gpu: None,
            rustc_version: "1.94.0".into(),
            crate_versions: BTreeMap::from([
                ("candle-core".to_string(), "0.11.1".to_string()),
                ("restoreflow".to_string(), "0.1.0".to_string()),
            ]),
            peak_memory_bytes: Some(2_147_483_648),
            hostname: Some("trainer-0".into()),
        }),
        gpus: Some(GpuOffer {
            live_workers: 0,
            on_demand: false,
        }),
    }
}
