//! Learning-rate schedules, evaluated per optimiser step.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A learning rate as a function of the number of optimiser steps already
/// taken (`step = 0` for the first update), i.e. PyTorch's
/// `scheduler.last_epoch` when the scheduler is stepped once per iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout.
    Constant {
        /// The rate.
        lr: f64,
    },
    /// Linear warm-up from `lr / warmup_steps` to `lr` over `warmup_steps`,
    /// then a half cosine down to `min_lr` at `total_steps` (held after).
    /// `total_steps = 0` means "the end of the run" (see [`LrSchedule::lr_in_run`]).
    WarmupCosine {
        /// Peak rate.
        lr: f64,
        /// Warm-up length; 0 for none.
        warmup_steps: u64,
        /// Step at which the cosine reaches `min_lr`.
        total_steps: u64,
        /// Final rate.
        min_lr: f64,
    },
    /// BasicSR's `CosineAnnealingRestartCyclicLR` as the official Restormer
    /// recipe uses it: cycle `i` lasts `periods[i]` steps and anneals from
    /// `eta_min_i + restart_weights[i] * (lr - eta_min_i)` to `eta_mins[i]`.
    /// A step `s` belongs to the first cycle whose cumulative end is `>= s`;
    /// past the last cycle the rate stays at its end value.
    CyclicCosine {
        /// Base rate.
        lr: f64,
        /// Cycle lengths in steps.
        periods: Vec<u64>,
        /// Restart weight per cycle.
        restart_weights: Vec<f64>,
        /// Floor per cycle.
        eta_mins: Vec<f64>,
    },
    /// The official recipe's shape stretched over the whole run: flat at `lr`
    /// for the first [`OFFICIAL_FLAT_SHARE`] of it (92k of 300k iterations),
    /// then a half cosine down to `min_lr` at the end of the run.
    OfficialCyclic {
        /// Base rate.
        lr: f64,
        /// Final rate.
        min_lr: f64,
    },
}

/// Share of the official Restormer run (92,000 of 300,000 iterations) spent at
/// the flat base rate before the cosine decay.
pub const OFFICIAL_FLAT_SHARE: f64 = 92_000.0 / 300_000.0;

fn half_cosine(hi: f64, lo: f64, progress: f64) -> f64 {
    lo + 0.5 * (hi - lo) * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
}

impl LrSchedule {
    /// The official Restormer schedule: lr 3e-4, periods [92000, 208000],
    /// restart weights [1, 1], eta_mins [3e-4, 1e-6] (flat, then cosine decay).
    pub fn restormer_official() -> Self {
        Self::CyclicCosine {
            lr: 3e-4,
            periods: vec![92_000, 208_000],
            restart_weights: vec![1.0, 1.0],
            eta_mins: vec![3e-4, 1e-6],
        }
    }

    /// Checks lengths and ranges.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Constant { lr } if *lr >= 0.0 => Ok(()),
            Self::WarmupCosine {
                lr,
                total_steps,
                warmup_steps,
                min_lr,
            } if *lr >= 0.0
                && *min_lr >= 0.0
                && (*total_steps == 0 || total_steps >= warmup_steps) =>
            {
                Ok(())
            }
            Self::OfficialCyclic { lr, min_lr } if *lr >= 0.0 && *min_lr >= 0.0 => Ok(()),
            Self::CyclicCosine {
                lr,
                periods,
                restart_weights,
                eta_mins,
            } if *lr >= 0.0
                && !periods.is_empty()
                && periods.iter().all(|&p| p > 0)
                && periods.len() == restart_weights.len()
                && periods.len() == eta_mins.len() =>
            {
                Ok(())
            }
            other => Err(Error::Config(format!(
                "invalid learning-rate schedule {other:?}"
            ))),
        }
    }

    /// The peak (base) rate.
    pub fn peak(&self) -> f64 {
        match self {
            Self::Constant { lr }
            | Self::WarmupCosine { lr, .. }
            | Self::CyclicCosine { lr, .. }
            | Self::OfficialCyclic { lr, .. } => *lr,
        }
    }

    /// The rate for the update that follows `step` completed updates of a run
    /// that will take `run_steps` updates, when `time_share` (elapsed share of
    /// a wall-clock budget, if the run has one) may end it sooner.
    ///
    /// Schedules tied to the run's end (`WarmupCosine` with `total_steps = 0`
    /// and `OfficialCyclic`) progress by `max(step share, time share)`, so a
    /// budgeted run decays to its floor when its time runs out, not at a step
    /// count it will never reach. `CyclicCosine` counts `max(step, time share x
    /// its total period)`. Without a time share this is deterministic.
    pub fn lr_in_run(&self, step: u64, run_steps: u64, time_share: Option<f64>) -> f64 {
        let t = time_share.unwrap_or(0.0).clamp(0.0, 1.0);
        match self {
            Self::Constant { lr } => *lr,
            Self::WarmupCosine {
                lr,
                warmup_steps,
                total_steps,
                min_lr,
            } => {
                let (horizon, warmup) = if *total_steps == 0 {
                    // Tied to the run: a short run warms up over at most a
                    // fifth of itself, so it still reaches its peak and decays.
                    (run_steps, (*warmup_steps).min(run_steps / 5))
                } else {
                    (*total_steps, *warmup_steps)
                };
                if step < warmup {
                    return lr * (step + 1) as f64 / warmup as f64;
                }
                let span = horizon.saturating_sub(warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).max(t);
                half_cosine(*lr, *min_lr, progress)
            }
            Self::CyclicCosine { periods, .. } => {
                let total: u64 = periods.iter().sum();
                self.lr_at(step.max((t * total as f64) as u64))
            }
            Self::OfficialCyclic { lr, min_lr } => {
                let progress = (step as f64 / run_steps.max(1) as f64).max(t);
                if progress <= OFFICIAL_FLAT_SHARE {
                    *lr
                } else {
                    half_cosine(
                        *lr,
                        *min_lr,
                        (progress - OFFICIAL_FLAT_SHARE) / (1.0 - OFFICIAL_FLAT_SHARE),
                    )
                }
            }
        }
    }

    /// The rate for the update that follows `step` completed updates
    /// (schedules tied to the run's end are taken as ending at `step`; use
    /// [`LrSchedule::lr_in_run`] inside a run).
    pub fn lr_at(&self, step: u64) -> f64 {
        match self {
            // Fixed horizons ignore the run length; run-relative ones end here.
            Self::OfficialCyclic { .. } | Self::WarmupCosine { .. } => {
                self.lr_in_run(step, step, None)
            }
            Self::Constant { lr } => *lr,
            Self::CyclicCosine {
                lr,
                periods,
                restart_weights,
                eta_mins,
            } => {
                let mut start = 0u64;
                let last = periods.len() - 1;
                for (i, &period) in periods.iter().enumerate() {
                    let end = start + period;
                    if step <= end || i == last {
                        let progress = ((step - start.min(step)) as f64 / period as f64).min(1.0);
                        let eta_min = eta_mins[i];
                        return eta_min
                            + restart_weights[i]
                                * 0.5
                                * (lr - eta_min)
                                * (1.0 + (std::f64::consts::PI * progress).cos());
                    }
                    start = end;
                }
                *lr
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
    }

    #[test]
    fn constant_is_constant() {
        let s = LrSchedule::Constant { lr: 1e-3 };
        assert_eq!(s.lr_at(0), 1e-3);
        assert_eq!(s.lr_at(1_000_000), 1e-3);
    }

    #[test]
    fn warmup_cosine_key_steps() {
        let s = LrSchedule::WarmupCosine {
            lr: 1e-3,
            warmup_steps: 10,
            total_steps: 110,
            min_lr: 1e-5,
        };
        assert!(close(s.lr_at(0), 1e-4));
        assert!(close(s.lr_at(9), 1e-3));
        assert!(close(s.lr_at(10), 1e-3));
        assert!(close(s.lr_at(60), (1e-3 + 1e-5) / 2.0));
        assert!(close(s.lr_at(110), 1e-5));
        assert!(close(s.lr_at(10_000), 1e-5));
    }

    #[test]
    fn official_cyclic_key_steps() {
        let s = LrSchedule::restormer_official();
        s.validate().unwrap();
        assert!(close(s.lr_at(0), 3e-4));
        assert!(close(s.lr_at(50_000), 3e-4));
        // 92000 still belongs to the first (flat) cycle: BasicSR uses `<=`.
        assert!(close(s.lr_at(92_000), 3e-4));
        assert!(close(s.lr_at(92_000 + 104_000), (3e-4 + 1e-6) / 2.0));
        assert!(close(s.lr_at(300_000), 1e-6));
        assert!(close(s.lr_at(400_000), 1e-6));
    }

    #[test]
    fn cyclic_restart_weight_scales_the_peak() {
        let s = LrSchedule::CyclicCosine {
            lr: 1.0,
            periods: vec![10, 10],
            restart_weights: vec![1.0, 0.5],
            eta_mins: vec![0.0, 0.0],
        };
        assert!(close(s.lr_at(5), 0.5));
        assert!(close(s.lr_at(10), 0.0));
        // Step 11 is one step into the second cycle, which peaks at 0.5.
        let want = 0.5 * 0.5 * (1.0 + (std::f64::consts::PI * 0.1).cos());
        assert!(close(s.lr_at(11), want));
    }

    #[test]
    fn run_relative_schedules_follow_steps_or_time() {
        let s = LrSchedule::WarmupCosine {
            lr: 1e-3,
            warmup_steps: 10,
            total_steps: 0,
            min_lr: 0.0,
        };
        s.validate().unwrap();
        assert!(close(s.lr_in_run(0, 110, None), 1e-4));
        assert!(close(s.lr_in_run(60, 110, None), 5e-4));
        assert!(close(s.lr_in_run(110, 110, None), 0.0));
        // A run shorter than five warm-ups warms up over a fifth of itself.
        assert!(close(s.lr_in_run(3, 20, None), 1e-3));
        assert!(close(s.lr_in_run(20, 20, None), 0.0));
        // Half the time budget gone after 20 steps: time leads.
        assert!(close(s.lr_in_run(20, 1_000_000, Some(0.5)), 5e-4));
        assert!(close(s.lr_in_run(20, 1_000_000, Some(1.0)), 0.0));
        let o = LrSchedule::OfficialCyclic {
            lr: 3e-4,
            min_lr: 1e-6,
        };
        assert!(close(o.lr_in_run(0, 300, None), 3e-4));
        assert!(close(o.lr_in_run(92, 300, None), 3e-4));
        assert!(close(o.lr_in_run(196, 300, None), (3e-4 + 1e-6) / 2.0));
        assert!(close(o.lr_in_run(300, 300, None), 1e-6));
        assert!(close(o.lr_in_run(1, 300, Some(1.0)), 1e-6));
        assert_eq!(o.peak(), 3e-4);
        // Fixed schedules ignore the run length.
        let f = LrSchedule::restormer_official();
        assert!(close(f.lr_in_run(50_000, 10, None), f.lr_at(50_000)));
    }

    #[test]
    fn invalid_schedules_are_rejected() {
        let bad = LrSchedule::CyclicCosine {
            lr: 1.0,
            periods: vec![10],
            restart_weights: vec![],
            eta_mins: vec![0.0],
        };
        assert!(bad.validate().is_err());
    }
}
