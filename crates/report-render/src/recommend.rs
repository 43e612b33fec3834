//! Recommendations: small rules over the report's numbers.
//!
//! Each rule is one function returning at most one [`Recommendation`]; its
//! message cites the numbers that triggered it. Thresholds are the named
//! constants below, so a reader can see why a rule fired.

use serde::Serialize;

use crate::data::ReportData;
use crate::derive::{Derived, derive};
use crate::format::{loss, psnr_db, secs, signed};

/// Epochs over which validation loss must rise (each step) while train loss
/// falls for the "overfitting" rule.
pub const OVERFITTING_WINDOW: usize = 3;
/// PSNR gain of the last epoch over the one before, in dB, above which
/// training is still improving ("more_epochs").
pub const MORE_EPOCHS_MIN_PSNR_GAIN_DB: f64 = 0.05;
/// Fewer pairs used than this suggests more data ("more_data").
pub const MORE_DATA_MIN_PAIRS: u64 = 100;
/// Mean epoch time on CPU, in seconds, above which a GPU is suggested ("use_gpu").
pub const USE_GPU_MIN_EPOCH_SECONDS: f64 = 120.0;
/// Skipped pairs, as a percentage of valid pairs, above which the skips are
/// worth a look ("skipped_pairs").
pub const SKIPPED_PAIRS_MAX_PERCENT: f64 = 10.0;
/// A PSNR drop vs the previous version larger than this, in dB, counts as a
/// regression (smaller differences vanish at the report's 2 decimals).
pub const REGRESSION_PSNR_TOLERANCE_DB: f64 = 0.01;

/// How much a recommendation matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A suggestion for the next run.
    Info,
    /// Something is wrong with this run or its model.
    Warning,
}

impl Severity {
    /// "info" or "warning".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
        }
    }
}

/// One piece of advice, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Recommendation {
    /// Stable id of the rule, e.g. "overfitting".
    pub rule: &'static str,
    pub severity: Severity,
    /// Human-readable advice citing the triggering numbers.
    pub message: String,
}

/// Runs every rule over `data`; warnings come first.
pub fn recommendations(data: &ReportData) -> Vec<Recommendation> {
    let d = derive(data);
    let rules: [fn(&ReportData, &Derived) -> Option<Recommendation>; 9] = [
        failed_run,
        no_metrics,
        below_baseline,
        regression,
        overfitting,
        skipped_pairs,
        more_epochs,
        more_data,
        use_gpu,
    ];
    let mut out: Vec<_> = rules.iter().filter_map(|rule| rule(data, &d)).collect();
    // Stable sort: rules keep their order within a severity.
    out.sort_by_key(|r| r.severity != Severity::Warning);
    out
}

fn rec(rule: &'static str, severity: Severity, message: String) -> Option<Recommendation> {
    Some(Recommendation {
        rule,
        severity,
        message,
    })
}

fn failed_run(data: &ReportData, _: &Derived) -> Option<Recommendation> {
    let status = data.job.status.as_str();
    if status != "failed" && status != "cancelled" {
        return None;
    }
    if status == "cancelled" {
        // Someone asked for it: nothing to fix.
        return rec(
            "failed_run",
            Severity::Info,
            format!(
                "the job was cancelled on request after {} attempt(s); start a new run for a model",
                data.job.attempts
            ),
        );
    }
    let error = data.job.error.as_deref().unwrap_or("no error was recorded");
    rec(
        "failed_run",
        Severity::Warning,
        format!(
            "the job {status} after {} attempt(s): {error}; fix the cause and start a new run",
            data.job.attempts
        ),
    )
}

fn no_metrics(data: &ReportData, _: &Derived) -> Option<Recommendation> {
    if !data.epochs.is_empty() {
        return None;
    }
    rec(
        "no_metrics",
        Severity::Warning,
        "no epoch finished, so this run has no training or validation metrics; \
         check the job's events and run it again"
            .to_string(),
    )
}

fn below_baseline(_: &ReportData, d: &Derived) -> Option<Recommendation> {
    let psnr = d.registered.as_ref()?.psnr?;
    let baseline = d.baseline_psnr?;
    if psnr > baseline {
        return None;
    }
    rec(
        "below_baseline",
        Severity::Warning,
        format!(
            "the model's PSNR {} is not above the identity baseline {} (degraded input vs clean); \
             the model does not restore yet: train longer, lower the learning rate or check the data",
            psnr_db(psnr),
            psnr_db(baseline)
        ),
    )
}

fn regression(_: &ReportData, d: &Derived) -> Option<Recommendation> {
    let cmp = d.vs_previous.as_ref()?;
    let delta = cmp.psnr_delta?;
    if !cmp.same_validation_data || delta >= -REGRESSION_PSNR_TOLERANCE_DB {
        return None;
    }
    rec(
        "regression",
        Severity::Warning,
        format!(
            "on the same validation data this version's PSNR is {} dB against version {} \
             (worse by more than {REGRESSION_PSNR_TOLERANCE_DB} dB); keep the previous version",
            signed(delta, 2),
            cmp.previous_version
        ),
    )
}

fn overfitting(data: &ReportData, _: &Derived) -> Option<Recommendation> {
    let window = data
        .epochs
        .get(data.epochs.len().checked_sub(OVERFITTING_WINDOW)?..)?;
    let val: Vec<f64> = window.iter().filter_map(|r| r.val_loss).collect();
    if val.len() != OVERFITTING_WINDOW {
        return None;
    }
    let val_rising = val.windows(2).all(|w| w[1] > w[0]);
    let (first, last) = (window.first()?, window.last()?);
    let train_falling = last.train_loss < first.train_loss;
    if !(val_rising && train_falling) {
        return None;
    }
    rec(
        "overfitting",
        Severity::Warning,
        format!(
            "from epoch {} to {} validation loss rose from {} to {} while train loss fell from {} to {}: \
             the model is overfitting; use more data, fewer epochs or early stopping",
            first.epoch,
            last.epoch,
            loss(val[0]),
            loss(val[OVERFITTING_WINDOW - 1]),
            loss(first.train_loss),
            loss(last.train_loss)
        ),
    )
}

fn skipped_pairs(data: &ReportData, d: &Derived) -> Option<Recommendation> {
    let skipped = data.data.skipped.len();
    if skipped == 0 {
        return None;
    }
    let cited = match d.skipped_percent_of_valid {
        Some(p) if p <= SKIPPED_PAIRS_MAX_PERCENT => return None,
        Some(p) => format!("{p:.2}% of {} valid pairs", data.data.valid_pairs),
        None => "with no valid pairs".to_string(),
    };
    rec(
        "skipped_pairs",
        Severity::Warning,
        format!(
            "{skipped} pairs were skipped ({cited}, above {SKIPPED_PAIRS_MAX_PERCENT}%); \
             fix the listed files so they can be trained on"
        ),
    )
}

fn more_epochs(data: &ReportData, _: &Derived) -> Option<Recommendation> {
    let [.., prev, last] = data.epochs.as_slice() else {
        return None;
    };
    let gain = last.psnr? - prev.psnr?;
    if gain <= MORE_EPOCHS_MIN_PSNR_GAIN_DB {
        return None;
    }
    rec(
        "more_epochs",
        Severity::Info,
        format!(
            "PSNR was still rising at the last epoch ({} at epoch {} to {} at epoch {}, {} dB, \
             more than {MORE_EPOCHS_MIN_PSNR_GAIN_DB} dB); training for more epochs should help",
            psnr_db(prev.psnr?),
            prev.epoch,
            psnr_db(last.psnr?),
            last.epoch,
            signed(gain, 2)
        ),
    )
}

fn more_data(data: &ReportData, _: &Derived) -> Option<Recommendation> {
    let used = data.data.pairs_used;
    if used >= MORE_DATA_MIN_PAIRS {
        return None;
    }
    rec(
        "more_data",
        Severity::Info,
        format!(
            "only {used} pairs were used (fewer than {MORE_DATA_MIN_PAIRS}); \
             add more clean/degraded pairs for a model that generalises"
        ),
    )
}

fn use_gpu(data: &ReportData, d: &Derived) -> Option<Recommendation> {
    let mean = d.mean_epoch_seconds?;
    if !data.parameters.device.eq_ignore_ascii_case("cpu") || mean <= USE_GPU_MIN_EPOCH_SECONDS {
        return None;
    }
    let slow = format!(
        "epochs took {} on average on the CPU (more than {})",
        secs(mean),
        secs(USE_GPU_MIN_EPOCH_SECONDS)
    );
    // Only advice the deployment can follow: name the GPU workers it has.
    let advice = match &data.gpus {
        Some(g) if g.live_workers > 0 => format!(
            "train on a GPU: {} CUDA worker(s) are live; start the next run with device cuda (or auto)",
            g.live_workers
        ),
        Some(g) if g.on_demand => {
            "train on a GPU: this deployment starts CUDA workers on demand; start the next run with device cuda".into()
        }
        Some(_) => {
            "a GPU would be faster, but no trainer worker here has one: deploy a CUDA trainer \
             (docker compose --profile gpu, or the Kubernetes gpu overlay), then train with device cuda"
                .into()
        }
        None => "train on a GPU (device cuda) if the deployment has a CUDA trainer".into(),
    };
    rec("use_gpu", Severity::Info, format!("{slow}; {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;

    fn fired(data: &ReportData, rule: &str) -> Option<Recommendation> {
        recommendations(data).into_iter().find(|r| r.rule == rule)
    }

    #[test]
    fn sample_run_gets_only_more_epochs() {
        let rules: Vec<_> = recommendations(&sample_data())
            .iter()
            .map(|r| r.rule)
            .collect();
        assert_eq!(rules, ["more_epochs"]);
    }

    #[test]
    fn overfitting_fires_when_val_rises_and_train_falls() {
        let mut data = sample_data();
        assert!(fired(&data, "overfitting").is_none());
        for (i, row) in data.epochs.iter_mut().skip(2).enumerate() {
            row.val_loss = Some(0.05 + i as f64 * 0.01);
        }
        let r = fired(&data, "overfitting").unwrap();
        assert!(r.message.contains("0.050000") && r.message.contains("0.070000"));
        assert!(r.message.contains(&loss(data.epochs[4].train_loss)));
        // Train loss rising too is not overfitting.
        for (i, row) in data.epochs.iter_mut().enumerate() {
            row.train_loss = 0.01 * (i + 1) as f64;
        }
        assert!(fired(&data, "overfitting").is_none());
    }

    #[test]
    fn more_epochs_fires_only_above_threshold() {
        let mut data = sample_data();
        let r = fired(&data, "more_epochs").unwrap();
        assert!(r.message.contains("28.79 dB") && r.message.contains("+0.33"));
        data.epochs[4].psnr = Some(data.epochs[3].psnr.unwrap() + 0.04);
        assert!(fired(&data, "more_epochs").is_none());
    }

    #[test]
    fn more_data_fires_below_min_pairs() {
        let mut data = sample_data();
        assert!(fired(&data, "more_data").is_none());
        data.data.pairs_used = 42;
        assert!(
            fired(&data, "more_data")
                .unwrap()
                .message
                .contains("only 42 pairs")
        );
    }

    #[test]
    fn use_gpu_fires_for_slow_cpu_epochs() {
        let mut data = sample_data();
        assert!(fired(&data, "use_gpu").is_none());
        for row in &mut data.epochs {
            row.seconds = 150.0;
        }
        assert!(fired(&data, "use_gpu").unwrap().message.contains("2m 30s"));
        // The advice follows what the deployment has.
        data.gpus = Some(crate::data::GpuOffer {
            live_workers: 0,
            on_demand: false,
        });
        let m = fired(&data, "use_gpu").unwrap().message;
        assert!(
            m.contains("no trainer worker here has one") && m.contains("--profile gpu"),
            "{m}"
        );
        data.gpus = Some(crate::data::GpuOffer {
            live_workers: 2,
            on_demand: false,
        });
        let m = fired(&data, "use_gpu").unwrap().message;
        assert!(m.contains("2 CUDA worker(s) are live"), "{m}");
        data.gpus = Some(crate::data::GpuOffer {
            live_workers: 0,
            on_demand: true,
        });
        assert!(
            fired(&data, "use_gpu")
                .unwrap()
                .message
                .contains("on demand")
        );
        data.parameters.device = "cuda".into();
        assert!(fired(&data, "use_gpu").is_none());
    }

    #[test]
    fn below_baseline_fires_when_not_above_identity() {
        let mut data = sample_data();
        assert!(fired(&data, "below_baseline").is_none());
        for row in &mut data.epochs {
            row.baseline_psnr = Some(30.0);
        }
        let r = fired(&data, "below_baseline").unwrap();
        assert_eq!(r.severity, Severity::Warning);
        assert!(r.message.contains("30.00 dB") && r.message.contains("28.79 dB"));
    }

    #[test]
    fn skipped_pairs_fires_above_ten_percent() {
        let mut data = sample_data();
        assert!(fired(&data, "skipped_pairs").is_none());
        data.data.valid_pairs = 10;
        let r = fired(&data, "skipped_pairs").unwrap();
        assert!(r.message.contains("20.00% of 10 valid pairs"));
    }

    #[test]
    fn failed_run_cites_the_error() {
        let mut data = sample_data();
        assert!(fired(&data, "failed_run").is_none());
        data.job.status = "failed".into();
        data.job.error = Some("out of memory".into());
        let recs = recommendations(&data);
        assert_eq!(recs[0].rule, "failed_run");
        assert!(recs[0].message.contains("out of memory"));
        data.job.status = "cancelled".into();
        data.job.error = None;
        let r = fired(&data, "failed_run").unwrap();
        assert!(r.message.contains("cancelled on request"), "{}", r.message);
        assert!(!r.message.contains("fix the cause"), "{}", r.message);
    }

    #[test]
    fn regression_fires_only_on_same_data() {
        let mut data = sample_data();
        assert!(fired(&data, "regression").is_none());
        data.previous.as_mut().unwrap().psnr = Some(29.5);
        let r = fired(&data, "regression").unwrap();
        assert!(r.message.contains("-0.71"));
        data.previous.as_mut().unwrap().same_validation_data = false;
        assert!(fired(&data, "regression").is_none());
    }

    #[test]
    fn no_epochs_explains_missing_metrics() {
        let mut data = sample_data();
        assert!(fired(&data, "no_metrics").is_none());
        data.epochs.clear();
        let recs = recommendations(&data);
        assert!(recs.iter().any(|r| r.rule == "no_metrics"));
        assert!(recs.iter().all(|r| r.rule != "more_epochs"));
    }
}
