//! The training loop: epochs of AdamW steps on random patches, validation,
//! checkpoints, progress callbacks, early stopping and cancellation.

mod config;
mod validate;

pub use config::{BestEpoch, EpochReport, ProgressiveStage, TrainConfig, ValMode};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_nn::VarMap;
use chrono::Utc;

use crate::checkpoint::{Checkpoint, CheckpointMeta, FORMAT_VERSION, PartialEpoch};
use crate::data::{DEFAULT_POOL_PATCHES, PageStore, PairSource, PatchSampler, split_pages};
use crate::{AdamW, Error, Restorer, Result, clip_grad_norm};

/// Sent after every optimiser step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Current epoch, from 1.
    pub epoch: usize,
    /// Optimiser steps completed.
    pub step: u64,
    /// Steps the run will take in all.
    pub total_steps: u64,
    /// This step's training loss.
    pub loss: f64,
    /// This step's learning rate.
    pub lr: f64,
    /// Training pairs per second in this epoch so far.
    pub pairs_per_sec: f64,
    /// Estimated seconds to the end of training, validation excluded.
    pub eta_secs: f64,
}

/// Callbacks from the training loop. All methods have empty defaults.
pub trait TrainHooks {
    /// After every optimiser step.
    fn on_progress(&mut self, _progress: &Progress) {}
    /// After each epoch's validation.
    fn on_epoch_end(&mut self, _report: &EpochReport) {}
    /// After a checkpoint was written (e.g. to upload it). An error aborts training.
    fn on_checkpoint(&mut self, _checkpoint: &Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// Hooks that do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl TrainHooks for NoHooks {}

/// Run-level inputs that are not hyper-parameters.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Checkpoints go to `<dir>/epoch-NNNN` after each epoch and
    /// `<dir>/step-NNNNNNNN` on cancellation.
    pub checkpoint_dir: PathBuf,
    /// Stored verbatim in every checkpoint.
    pub model_config: serde_json::Value,
    /// Stored verbatim in every checkpoint.
    pub code_version: String,
    /// Checked before every step; when set, training checkpoints and stops.
    pub cancel: Option<&'a AtomicBool>,
    /// Continue from this checkpoint (weights, optimiser, sampler, history).
    pub resume: Option<Checkpoint>,
    /// A gradient-free copy of the model sharing the trained variables'
    /// storage (for Restormer: `restoreflow_restormer::frozen`), used for
    /// validation. Without it validation runs the training model, whose
    /// forward records an autograd graph holding every activation alive.
    pub inference: Option<&'a dyn Restorer>,
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All epochs ran.
    Completed,
    /// The cancel flag was raised.
    Cancelled,
    /// Validation PSNR stopped improving for `early_stopping` epochs.
    EarlyStopped,
    /// The wall-clock budget (`max_seconds`) was used up.
    TimeBudget,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Why training stopped.
    pub stop: StopReason,
    /// Epochs completed (including those before a resume).
    pub epochs_completed: usize,
    /// Optimiser steps completed.
    pub step: u64,
    /// One report per completed epoch.
    pub history: Vec<EpochReport>,
    /// The best epoch by validation PSNR.
    pub best: Option<BestEpoch>,
    /// The last checkpoint written (on cancellation: the one written then).
    pub last_checkpoint: Option<Checkpoint>,
    /// Pages left out as `(page_id, reason)`.
    pub skipped: Vec<(String, String)>,
}

/// State that moves through the loop and into checkpoints.
struct RunState {
    step: u64,
    epoch: usize,
    partial: PartialEpoch,
    history: Vec<EpochReport>,
    best: Option<BestEpoch>,
    stale_epochs: usize,
    started: chrono::DateTime<Utc>,
}

/// Trains `model` (whose variables are `varmap`) on `source`.
///
/// The device is taken from the variables. Determinism: on CPU, a run resumed
/// from any checkpoint continues with bit-identical weights, because the
/// split, the patch stream and the optimiser state are all restored exactly
/// and validation consumes no randomness.
pub fn train(
    model: &dyn Restorer,
    varmap: &VarMap,
    source: &dyn PairSource,
    cfg: &TrainConfig,
    run: RunOptions<'_>,
    hooks: &mut dyn TrainHooks,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    let mut optimizer = AdamW::new(varmap, cfg.optimizer)?;
    let device = optimizer
        .vars()
        .first()
        .map(|v| v.device().clone())
        .ok_or_else(|| Error::Config("the model has no variables".into()))?;
    let split = split_pages(source, cfg.val_fraction, cfg.seed);
    if split.train.is_empty() {
        return Err(Error::Data("no training pages".into()));
    }
    // Validation scores the first `max_val_pages` held-out pages, the same
    // ones every epoch; the rest of the held-out pages stay unused.
    let val_pages = &split.val[..split.val.len().min(cfg.max_val_pages.unwrap_or(usize::MAX))];
    let store = PageStore::new(source, cfg.cache_pages);
    store.set_pages_in_play(split.train.len() + val_pages.len());
    let spe = cfg.steps_per_epoch.unwrap_or_else(|| {
        (split.train.len() * cfg.patches_per_page.unwrap_or(1)).div_ceil(cfg.batch_size)
    }) as u64;
    let total_steps = spe * cfg.epochs as u64;
    let pool_patches = cfg.patches_per_page.map_or(DEFAULT_POOL_PATCHES, |p| {
        u32::try_from(p).unwrap_or(u32::MAX)
    });

    let (sampler, mut st) = match &run.resume {
        Some(ck) => {
            ck.restore_weights(varmap)?;
            optimizer.load(&ck.optimizer_path())?;
            let m = &ck.meta;
            let st = RunState {
                step: m.step,
                epoch: m.epoch,
                partial: m.partial_epoch.unwrap_or_default(),
                history: m.history.clone(),
                best: m.best,
                stale_epochs: m.epochs_without_improvement,
                started: m.run_started_at,
            };
            (PatchSampler::from_state(&m.sampler)?, st)
        }
        None => {
            let st = RunState {
                step: 0,
                epoch: 0,
                partial: PartialEpoch::default(),
                history: Vec::new(),
                best: None,
                stale_epochs: 0,
                started: Utc::now(),
            };
            (PatchSampler::new(cfg.seed), st)
        }
    };
    let mut sampler = sampler.with_patches_per_page(pool_patches);
    let checkpoint = |st: &RunState, sampler: &PatchSampler, opt: &AdamW, partial: bool| {
        let name = if partial {
            format!("step-{:08}", st.step)
        } else {
            format!("epoch-{:04}", st.epoch)
        };
        let meta = CheckpointMeta {
            format_version: FORMAT_VERSION,
            code_version: run.code_version.clone(),
            model_config: run.model_config.clone(),
            train_config: cfg.clone(),
            epoch: st.epoch,
            step: st.step,
            partial_epoch: partial.then_some(st.partial),
            history: st.history.clone(),
            best: st.best,
            epochs_without_improvement: st.stale_epochs,
            sampler: sampler.state(),
            run_started_at: st.started,
            created_at: Utc::now(),
        };
        Checkpoint::write(&run.checkpoint_dir.join(name), varmap, opt, meta)
    };

    let mut last_checkpoint = run.resume.clone();
    let session_start = Instant::now();
    let session_first_step = st.step;
    let outcome = |stop, st: RunState, last_checkpoint, store: &PageStore<'_>| TrainOutcome {
        stop,
        epochs_completed: st.epoch,
        step: st.step,
        history: st.history,
        best: st.best,
        last_checkpoint,
        skipped: store.skipped(),
    };

    let val_model = run.inference.unwrap_or(model);
    // Seconds of the run in earlier sessions (completed epochs and the
    // trained part of an interrupted one), so a resumed run keeps its budget.
    let earlier_seconds = st.history.iter().map(|r| r.seconds).sum::<f64>() + st.partial.seconds;
    let budget_start = Instant::now();
    let elapsed = || earlier_seconds + budget_start.elapsed().as_secs_f64();
    let time_share = |e: f64| cfg.max_seconds.map(|b| e / b);
    let mut last_val_seconds = st.history.last().map_or(0.0, |r| r.val_seconds);
    while st.epoch < cfg.epochs {
        let epoch_start = Instant::now();
        let epoch_end_step = (st.epoch as u64 + 1) * spe;
        let mut lr = cfg
            .schedule
            .lr_in_run(st.step, total_steps, time_share(elapsed()));
        let mut out_of_time = false;
        while st.step < epoch_end_step {
            // Leave room for this epoch's validation inside the budget; an
            // epoch always takes at least one step.
            if let Some(budget) = cfg.max_seconds
                && st.partial.steps > 0
                && elapsed() + last_val_seconds >= budget
            {
                out_of_time = true;
                break;
            }
            if run.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                let ck = checkpoint(&st, &sampler, &optimizer, true)?;
                hooks.on_checkpoint(&ck)?;
                return Ok(outcome(StopReason::Cancelled, st, Some(ck), &store));
            }
            let t0 = Instant::now();
            let (patch, batch) = cfg.stage_at(st.step);
            let (x, y) = sampler.sample(
                &store,
                &split.train,
                batch,
                patch,
                cfg.patch_sampling,
                &device,
            )?;
            lr = cfg
                .schedule
                .lr_in_run(st.step, total_steps, time_share(elapsed()));
            let pred = model.forward(&x)?;
            let loss = cfg.loss.compute(&pred, &y)?;
            let mut grads = loss.backward()?;
            if let Some(max) = cfg.clip_norm {
                clip_grad_norm(&mut grads, optimizer.vars(), max)?;
            }
            optimizer.step(&grads, lr)?;
            let loss = f64::from(loss.to_scalar::<f32>()?);
            st.step += 1;
            st.partial.loss_sum += loss;
            st.partial.steps += 1;
            st.partial.pairs += batch as u64;
            st.partial.seconds += t0.elapsed().as_secs_f64();
            let per_step =
                session_start.elapsed().as_secs_f64() / (st.step - session_first_step) as f64;
            hooks.on_progress(&Progress {
                epoch: st.epoch + 1,
                step: st.step,
                total_steps,
                loss,
                lr,
                pairs_per_sec: st.partial.pairs as f64 / st.partial.seconds.max(1e-9),
                eta_secs: per_step * total_steps.saturating_sub(st.step) as f64,
            });
        }
        let val_start = Instant::now();
        let val = validate::validate(
            val_model,
            &store,
            val_pages,
            &cfg.val_mode,
            &cfg.loss,
            &device,
        )?;
        last_val_seconds = val_start.elapsed().as_secs_f64();
        st.epoch += 1;
        let report = EpochReport {
            epoch: st.epoch,
            step: st.step,
            train_loss: st.partial.loss_sum / st.partial.steps.max(1) as f64,
            val_loss: val.map(|v| v.loss),
            restored: val.map(|v| v.restored),
            baseline: val.map(|v| v.baseline),
            val_pages: val.map_or(0, |v| v.pages),
            held_out_pages: split.val.len(),
            val_view: cfg.val_mode.describe(),
            lr,
            pairs_per_sec: st.partial.pairs as f64 / st.partial.seconds.max(1e-9),
            steps_per_sec: st.partial.steps as f64 / st.partial.seconds.max(1e-9),
            seconds: epoch_start.elapsed().as_secs_f64(),
            val_seconds: last_val_seconds,
        };
        st.partial = PartialEpoch::default();
        if let Some(r) = report.restored {
            if st.best.is_none_or(|b| r.psnr > b.psnr) {
                st.best = Some(BestEpoch {
                    epoch: st.epoch,
                    psnr: r.psnr,
                });
                st.stale_epochs = 0;
            } else {
                st.stale_epochs += 1;
            }
        }
        hooks.on_epoch_end(&report);
        st.history.push(report);
        let ck = checkpoint(&st, &sampler, &optimizer, false)?;
        hooks.on_checkpoint(&ck)?;
        last_checkpoint = Some(ck);
        // Stop when the budget is spent, or when what is left would not
        // hold a tenth of an epoch's training plus its validation. Otherwise
        // the next epoch starts and is cut short when the time runs out, so
        // a run uses its whole budget however long its epochs are.
        let train_seconds = st
            .history
            .last()
            .map_or(0.0, |r| (r.seconds - r.val_seconds).max(0.0));
        if st.epoch < cfg.epochs
            && cfg.max_seconds.is_some_and(|b| {
                out_of_time || elapsed() + last_val_seconds + 0.1 * train_seconds >= b
            })
        {
            return Ok(outcome(StopReason::TimeBudget, st, last_checkpoint, &store));
        }
        if cfg.early_stopping.is_some_and(|p| st.stale_epochs >= p) && st.epoch < cfg.epochs {
            return Ok(outcome(
                StopReason::EarlyStopped,
                st,
                last_checkpoint,
                &store,
            ));
        }
    }
    Ok(outcome(StopReason::Completed, st, last_checkpoint, &store))
}
