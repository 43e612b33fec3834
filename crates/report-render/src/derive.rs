//! Numbers derived from [`ReportData`] by documented arithmetic.
//!
//! Nothing here is estimated or made up: each field says how it is computed
//! from the stored records, and is `None` when the inputs it needs are missing
//! (or a division would be by zero).

use serde::{Deserialize, Serialize};

use crate::data::{EpochRow, ReportData};

/// Label of a comparison whose versions were validated on the same data.
pub(crate) const SAME_DATA_LABEL: &str = "same validation data";
/// Label of a comparison whose versions were validated on different data.
pub(crate) const DIFFERENT_DATA_LABEL: &str = "different data";

/// Change of one metric from the first epoch to the last.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Change {
    /// Value at the first epoch that recorded it.
    pub first: f64,
    /// Value at the last epoch that recorded it.
    pub last: f64,
    /// `last - first`, in the metric's own unit.
    pub absolute: f64,
    /// `(last - first) / |first| * 100`; `None` when `first` is 0.
    pub percent: Option<f64>,
}

impl Change {
    /// The change between two values; `percent` is relative to `first`.
    pub fn between(first: f64, last: f64) -> Self {
        let absolute = last - first;
        let percent = (first != 0.0).then(|| absolute / first.abs() * 100.0);
        Self {
            first,
            last,
            absolute,
            percent,
        }
    }
}

/// First → last change of each metric (each over the epochs that recorded it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Improvement {
    pub train_loss: Option<Change>,
    pub val_loss: Option<Change>,
    /// In dB.
    pub psnr: Option<Change>,
    pub ssim: Option<Change>,
    /// As a fraction in `[0, 1]`, like [`EpochRow::accuracy`].
    pub accuracy: Option<Change>,
}

/// The new version against the previous version of the layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Comparison {
    pub previous_version: u32,
    /// Copied from [`crate::PreviousVersion::same_validation_data`].
    pub same_validation_data: bool,
    /// "same validation data" or "different data".
    pub label: String,
    /// New PSNR (the registered epoch's) minus previous PSNR, in dB.
    pub psnr_delta: Option<f64>,
    /// New SSIM minus previous SSIM.
    pub ssim_delta: Option<f64>,
    /// New validation loss minus previous; negative is better.
    pub val_loss_delta: Option<f64>,
}

/// Numbers derived from [`ReportData`]; see each field for its arithmetic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Derived {
    /// Number of epoch rows.
    pub epochs_recorded: usize,
    /// The first epoch row.
    pub first: Option<EpochRow>,
    /// The last epoch row.
    pub last: Option<EpochRow>,
    /// The row with the highest PSNR (the earliest on ties); `None` when no
    /// epoch recorded a PSNR.
    pub best: Option<EpochRow>,
    /// The row whose weights were registered: the model's `best_epoch` when
    /// that row exists, otherwise [`Derived::best`]. Its metrics are the new
    /// version's metrics in the comparison with the previous version.
    pub registered: Option<EpochRow>,
    pub improvement: Improvement,
    /// Identity baseline PSNR (degraded input vs clean) of the last epoch that
    /// recorded one; every epoch shares one validation set, so it is the same
    /// baseline for all of them.
    pub baseline_psnr: Option<f64>,
    pub baseline_ssim: Option<f64>,
    /// As a fraction in `[0, 1]`.
    pub baseline_accuracy: Option<f64>,
    /// `best.psnr - baseline_psnr`, in dB.
    pub best_psnr_gain_db: Option<f64>,
    /// `last.psnr - baseline_psnr`, in dB.
    pub last_psnr_gain_db: Option<f64>,
    /// `pairs_used / max(clean_files, degraded_files) * 100`: the share of the
    /// pairs the listing could have formed that were trained on. `None` when
    /// both file counts are 0.
    pub data_effectiveness_percent: Option<f64>,
    /// `skipped.len() / valid_pairs * 100`; `None` when `valid_pairs` is 0.
    pub skipped_percent_of_valid: Option<f64>,
    /// Present when the layer had a previous version.
    pub vs_previous: Option<Comparison>,
    /// Mean of the epochs' `pairs_per_second`.
    pub mean_pairs_per_second: Option<f64>,
    /// Mean of the epochs' `seconds`.
    pub mean_epoch_seconds: Option<f64>,
    /// Sum of the epochs' `seconds` (0 without epochs).
    pub total_epoch_seconds: f64,
}

/// Computes every [`Derived`] number from `data`.
pub fn derive(data: &ReportData) -> Derived {
    let epochs = &data.epochs;
    let best = best_epoch(epochs).cloned();
    let registered = data
        .model
        .as_ref()
        .and_then(|m| m.best_epoch)
        .and_then(|e| epochs.iter().find(|row| row.epoch == e))
        .cloned()
        .or_else(|| best.clone());

    let baseline_psnr = last_some(epochs, |r| r.baseline_psnr);
    let last_psnr = epochs.last().and_then(|r| r.psnr);
    let best_psnr = best.as_ref().and_then(|r| r.psnr);

    Derived {
        epochs_recorded: epochs.len(),
        first: epochs.first().cloned(),
        last: epochs.last().cloned(),
        best,
        registered: registered.clone(),
        improvement: Improvement {
            train_loss: change(epochs, |r| Some(r.train_loss)),
            val_loss: change(epochs, |r| r.val_loss),
            psnr: change(epochs, |r| r.psnr),
            ssim: change(epochs, |r| r.ssim),
            accuracy: change(epochs, |r| r.accuracy),
        },
        baseline_psnr,
        baseline_ssim: last_some(epochs, |r| r.baseline_ssim),
        baseline_accuracy: last_some(epochs, |r| r.baseline_accuracy),
        best_psnr_gain_db: sub(best_psnr, baseline_psnr),
        last_psnr_gain_db: sub(last_psnr, baseline_psnr),
        data_effectiveness_percent: percent(
            data.data.pairs_used,
            data.data.clean_files.max(data.data.degraded_files),
        ),
        skipped_percent_of_valid: percent(data.data.skipped.len() as u64, data.data.valid_pairs),
        vs_previous: data.previous.as_ref().map(|prev| Comparison {
            previous_version: prev.version,
            same_validation_data: prev.same_validation_data,
            label: if prev.same_validation_data {
                SAME_DATA_LABEL
            } else {
                DIFFERENT_DATA_LABEL
            }
            .to_string(),
            psnr_delta: sub(registered.as_ref().and_then(|r| r.psnr), prev.psnr),
            ssim_delta: sub(registered.as_ref().and_then(|r| r.ssim), prev.ssim),
            val_loss_delta: sub(registered.as_ref().and_then(|r| r.val_loss), prev.val_loss),
        }),
        mean_pairs_per_second: mean(epochs.iter().map(|r| r.pairs_per_second)),
        mean_epoch_seconds: mean(epochs.iter().map(|r| r.seconds)),
        total_epoch_seconds: epochs.iter().map(|r| r.seconds).sum(),
    }
}

/// The row with the highest PSNR; the earliest wins a tie.
fn best_epoch(epochs: &[EpochRow]) -> Option<&EpochRow> {
    let mut best: Option<(&EpochRow, f64)> = None;
    for row in epochs {
        if let Some(psnr) = row.psnr
            && best.is_none_or(|(_, b)| psnr > b)
        {
            best = Some((row, psnr));
        }
    }
    best.map(|(row, _)| row)
}

fn last_some(epochs: &[EpochRow], field: impl Fn(&EpochRow) -> Option<f64>) -> Option<f64> {
    epochs.iter().rev().find_map(field)
}

fn change(epochs: &[EpochRow], field: impl Fn(&EpochRow) -> Option<f64>) -> Option<Change> {
    let first = epochs.iter().find_map(&field)?;
    let last = last_some(epochs, &field)?;
    Some(Change::between(first, last))
}

fn sub(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// `part / whole * 100`, `None` when `whole` is 0.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole != 0).then(|| part as f64 / whole as f64 * 100.0)
}

fn mean(values: impl ExactSizeIterator<Item = f64>) -> Option<f64> {
    let n = values.len();
    (n != 0).then(|| values.sum::<f64>() / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;

    #[test]
    fn change_percent_is_relative_to_first() {
        let c = Change::between(0.2, 0.05);
        assert!((c.absolute + 0.15).abs() < 1e-12);
        assert!((c.percent.unwrap() + 75.0).abs() < 1e-9);
        assert_eq!(Change::between(0.0, 1.0).percent, None);
    }

    #[test]
    fn derives_first_last_best_and_baseline() {
        let data = sample_data();
        let d = derive(&data);
        assert_eq!(d.epochs_recorded, data.epochs.len());
        assert_eq!(d.first.as_ref().unwrap().epoch, 1);
        assert_eq!(d.last.as_ref().unwrap().epoch, 5);
        let best = d.best.as_ref().unwrap();
        let max = data
            .epochs
            .iter()
            .filter_map(|r| r.psnr)
            .fold(f64::MIN, f64::max);
        assert_eq!(best.psnr, Some(max));
        let baseline = data.epochs.last().unwrap().baseline_psnr.unwrap();
        assert_eq!(d.baseline_psnr, Some(baseline));
        assert_eq!(d.best_psnr_gain_db, Some(max - baseline));
        let total: f64 = data.epochs.iter().map(|r| r.seconds).sum();
        assert_eq!(d.total_epoch_seconds, total);
    }

    #[test]
    fn data_effectiveness_uses_larger_file_count() {
        let mut data = sample_data();
        data.data.clean_files = 200;
        data.data.degraded_files = 250;
        data.data.pairs_used = 125;
        assert_eq!(derive(&data).data_effectiveness_percent, Some(50.0));
        data.data.clean_files = 0;
        data.data.degraded_files = 0;
        assert_eq!(derive(&data).data_effectiveness_percent, None);
    }

    #[test]
    fn comparison_uses_registered_epoch_and_labels_data() {
        let mut data = sample_data();
        let prev = data.previous.as_mut().unwrap();
        prev.same_validation_data = false;
        prev.psnr = Some(20.0);
        let d = derive(&data);
        let reg = d.registered.as_ref().unwrap();
        assert_eq!(Some(reg.epoch), data.model.as_ref().unwrap().best_epoch);
        let cmp = d.vs_previous.unwrap();
        assert_eq!(cmp.label, DIFFERENT_DATA_LABEL);
        assert_eq!(cmp.psnr_delta, Some(reg.psnr.unwrap() - 20.0));
    }

    #[test]
    fn zero_epochs_derive_nothing() {
        let mut data = sample_data();
        data.epochs.clear();
        let d = derive(&data);
        assert_eq!(d.first, None);
        assert_eq!(d.best, None);
        assert_eq!(d.improvement, Improvement::default());
        assert_eq!(d.mean_pairs_per_second, None);
        assert_eq!(d.total_epoch_seconds, 0.0);
    }
}
