//! End-to-end engine behaviour with the toy convolutional model: learning,
//! bit-exact resume, cancellation, early stopping and skipped pages.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use candle_nn::VarMap;
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use restoreflow_training::{
    Checkpoint, ConvResidual, EpochReport, InMemoryPairs, LossConfig, LrSchedule, NoHooks,
    Progress, ProgressiveStage, RunOptions, StopReason, TileConfig, TrainConfig, TrainHooks,
    ValMode, train,
};

/// A white page with dark text-like bars, and a copy with Gaussian noise.
fn page(seed: u64, w: u32, h: u32, sigma: f64) -> (RgbImage, RgbImage) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut clean = RgbImage::from_pixel(w, h, Rgb([245, 245, 240]));
    let mut y = rng.random_range(2..6);
    while y + 4 < h {
        let mut x = rng.random_range(2..8);
        let bar_h = rng.random_range(2..4);
        while x + 6 < w {
            let bar_w = rng.random_range(3..12).min(w - 2 - x);
            for yy in y..y + bar_h {
                for xx in x..x + bar_w {
                    clean.put_pixel(xx, yy, Rgb([30, 30, 40]));
                }
            }
            x += bar_w + rng.random_range(2..5);
        }
        y += bar_h + rng.random_range(3..7);
    }
    let noise = Normal::new(0.0, sigma * 255.0).expect("sigma is positive");
    let mut noisy = clean.clone();
    for p in noisy.pixels_mut() {
        for c in 0..3 {
            let v = f64::from(p.0[c]) + noise.sample(&mut rng);
            p.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    (clean, noisy)
}

fn pages(n: u64, size: u32, sigma: f64) -> InMemoryPairs {
    let mut src = InMemoryPairs::new();
    for i in 0..n {
        let (c, d) = page(i, size, size, sigma);
        src.push(format!("page-{i:03}"), c, d);
    }
    src
}

fn weights(vm: &VarMap) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = vm
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Reports without the timing fields, which legitimately differ between runs.
fn stable(h: &[EpochReport]) -> Vec<EpochReport> {
    h.iter()
        .map(|r| EpochReport {
            seconds: 0.0,
            pairs_per_sec: 0.0,
            steps_per_sec: 0.0,
            val_seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

fn small_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 2,
        patch_size: 16,
        schedule: LrSchedule::WarmupCosine {
            lr: 2e-3,
            warmup_steps: 3,
            total_steps: 12,
            min_lr: 1e-4,
        },
        loss: LossConfig {
            ssim_weight: 0.1,
            ink_weight: 2.0,
            ..LossConfig::charbonnier()
        },
        clip_norm: Some(0.5),
        val_fraction: 0.25,
        val_mode: ValMode::CenterCrop { size: 16 },
        seed: 5,
        steps_per_epoch: Some(3),
        cache_pages: 2,
        ..TrainConfig::default()
    }
}

fn run_opts(dir: &std::path::Path) -> RunOptions<'static> {
    RunOptions {
        checkpoint_dir: dir.to_path_buf(),
        model_config: serde_json::json!({"model": "conv-residual", "hidden": 4}),
        code_version: "test".into(),
        ..RunOptions::default()
    }
}

#[derive(Default)]
struct Recorder {
    progress: Vec<Progress>,
    epochs: Vec<EpochReport>,
    checkpoints: Vec<Checkpoint>,
}

impl TrainHooks for Recorder {
    fn on_progress(&mut self, p: &Progress) {
        self.progress.push(p.clone());
    }
    fn on_epoch_end(&mut self, r: &EpochReport) {
        self.epochs.push(r.clone());
    }
    fn on_checkpoint(&mut self, c: &Checkpoint) -> restoreflow_training::Result<()> {
        self.checkpoints.push(c.clone());
        Ok(())
    }
}

#[test]
fn resume_from_epoch_checkpoint_is_bit_exact() {
    let src = pages(8, 24, 0.1);
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;

    let (model, straight) = ConvResidual::seeded(4, 1, &dev).unwrap();
    let mut rec = Recorder::default();
    let full = train(
        &model,
        &straight,
        &src,
        &small_config(4),
        run_opts(&dir.path().join("a")),
        &mut rec,
    )
    .unwrap();
    assert_eq!(full.stop, StopReason::Completed);
    assert_eq!((full.epochs_completed, full.step), (4, 12));
    assert_eq!(rec.progress.len(), 12);
    assert_eq!(rec.epochs.len(), 4);
    assert_eq!(rec.checkpoints.len(), 4);
    let r = &full.history[0];
    assert!(
        r.val_pages == 2 && r.restored.is_some() && r.baseline.is_some(),
        "{r:?}"
    );
    assert!(r.train_loss.is_finite() && r.pairs_per_sec > 0.0);

    let (model, first) = ConvResidual::seeded(4, 1, &dev).unwrap();
    let half = train(
        &model,
        &first,
        &src,
        &small_config(2),
        run_opts(&dir.path().join("b")),
        &mut NoHooks,
    )
    .unwrap();
    let ck = Checkpoint::load(&half.last_checkpoint.unwrap().dir).unwrap();
    assert_eq!((ck.meta.epoch, ck.meta.step), (2, 6));
    assert_eq!(ck.meta.model_config["hidden"], 4);

    // A differently initialised model proves the weights come from the checkpoint.
    let (model, resumed) = ConvResidual::seeded(4, 99, &dev).unwrap();
    let opts = RunOptions {
        resume: Some(ck),
        ..run_opts(&dir.path().join("c"))
    };
    let rest = train(&model, &resumed, &src, &small_config(4), opts, &mut NoHooks).unwrap();
    assert_eq!(rest.step, 12);
    assert_eq!(weights(&straight), weights(&resumed));
    assert_eq!(stable(&rest.history), stable(&full.history));
}

/// Raises the cancel flag after a given number of steps.
struct CancelAfter<'a> {
    flag: &'a AtomicBool,
    steps: u64,
}

impl TrainHooks for CancelAfter<'_> {
    fn on_progress(&mut self, p: &Progress) {
        if p.step >= self.steps {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn cancel_mid_epoch_then_resume_is_bit_exact() {
    let src = pages(8, 24, 0.1);
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    let (model, straight) = ConvResidual::seeded(4, 2, &dev).unwrap();
    let full = train(
        &model,
        &straight,
        &src,
        &small_config(3),
        run_opts(&dir.path().join("a")),
        &mut NoHooks,
    )
    .unwrap();

    let (model, first) = ConvResidual::seeded(4, 2, &dev).unwrap();
    let flag = AtomicBool::new(false);
    let opts = RunOptions {
        cancel: Some(&flag),
        ..run_opts(&dir.path().join("b"))
    };
    let mut hooks = CancelAfter {
        flag: &flag,
        steps: 4,
    };
    let cut = train(&model, &first, &src, &small_config(3), opts, &mut hooks).unwrap();
    assert_eq!(cut.stop, StopReason::Cancelled);
    assert_eq!((cut.step, cut.epochs_completed), (4, 1));
    let ck = cut.last_checkpoint.unwrap();
    assert!(ck.dir.ends_with("step-00000004"));
    assert!(ck.meta.partial_epoch.is_some());

    let (model, resumed) = ConvResidual::seeded(4, 77, &dev).unwrap();
    let opts = RunOptions {
        resume: Some(Checkpoint::load(&ck.dir).unwrap()),
        ..run_opts(&dir.path().join("c"))
    };
    let rest = train(&model, &resumed, &src, &small_config(3), opts, &mut NoHooks).unwrap();
    assert_eq!(rest.stop, StopReason::Completed);
    assert_eq!(weights(&straight), weights(&resumed));
    assert_eq!(stable(&rest.history), stable(&full.history));
}

#[test]
fn early_stopping_and_skipped_pages() {
    let mut src = pages(6, 24, 0.1);
    src.push("odd", RgbImage::new(24, 24), RgbImage::new(20, 24));
    let dir = tempfile::tempdir().unwrap();
    let (model, vm) = ConvResidual::seeded(4, 3, &Device::Cpu).unwrap();
    // lr 0: the model never changes, so validation PSNR never improves.
    let cfg = TrainConfig {
        epochs: 10,
        schedule: LrSchedule::Constant { lr: 0.0 },
        early_stopping: Some(2),
        val_fraction: 0.3,
        // Exercise whole-page tiled validation and progressive patch sizes too.
        val_mode: ValMode::Tiled(TileConfig {
            tile: 16,
            overlap: 4,
            batch: 2,
        }),
        progressive: Some(vec![
            ProgressiveStage {
                patch: 16,
                batch: 2,
                until_step: 3,
            },
            ProgressiveStage {
                patch: 24,
                batch: 1,
                until_step: 100,
            },
        ]),
        ..small_config(10)
    };
    let out = train(&model, &vm, &src, &cfg, run_opts(dir.path()), &mut NoHooks).unwrap();
    assert_eq!(out.stop, StopReason::EarlyStopped);
    assert_eq!(out.epochs_completed, 3);
    assert_eq!(out.best.unwrap().epoch, 1);
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].0, "odd");
    assert!(
        out.skipped[0].1.contains("size mismatch"),
        "{:?}",
        out.skipped
    );
}

#[test]
fn toy_model_beats_identity_baseline() {
    let src = pages(10, 48, 0.08);
    let dir = tempfile::tempdir().unwrap();
    let (model, vm) = ConvResidual::seeded(8, 4, &Device::Cpu).unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 4,
        patch_size: 16,
        schedule: LrSchedule::WarmupCosine {
            lr: 1e-2,
            warmup_steps: 5,
            total_steps: 75,
            min_lr: 1e-3,
        },
        loss: LossConfig::default(),
        val_fraction: 0.2,
        val_mode: ValMode::CenterCrop { size: 48 },
        seed: 1,
        steps_per_epoch: Some(25),
        ..TrainConfig::default()
    };
    let out = train(&model, &vm, &src, &cfg, run_opts(dir.path()), &mut NoHooks).unwrap();
    let last = out.history.last().unwrap();
    let (restored, baseline) = (last.restored.unwrap(), last.baseline.unwrap());
    eprintln!("restored {restored:?} baseline {baseline:?}");
    // About +3.4 dB when written; +1 dB leaves room for numeric drift.
    assert!(
        restored.psnr > baseline.psnr + 1.0,
        "restored {:.2} dB vs identity {:.2} dB",
        restored.psnr,
        baseline.psnr
    );
    assert!(out.history.first().unwrap().train_loss > last.train_loss);
}

/// Counts forwards and how many of them recorded an autograd graph.
struct Probe<'a> {
    inner: &'a ConvResidual,
    calls: std::cell::Cell<usize>,
    tracked: std::cell::Cell<usize>,
}

impl restoreflow_training::Restorer for Probe<'_> {
    fn forward(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        let y = self.inner.forward(x)?;
        self.calls.set(self.calls.get() + 1);
        self.tracked
            .set(self.tracked.get() + usize::from(y.track_op()));
        Ok(y)
    }
}

/// A gradient-free copy of `varmap`'s `ConvResidual` sharing its storage.
fn frozen_conv(varmap: &VarMap, hidden: usize) -> ConvResidual {
    let tensors = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, &Device::Cpu);
    ConvResidual::new(vb, hidden).unwrap()
}

#[test]
fn validation_runs_the_gradient_free_copy() {
    let src = pages(8, 24, 0.1);
    let (model, varmap) = ConvResidual::seeded(4, 3, &Device::Cpu).unwrap();
    let frozen = frozen_conv(&varmap, 4);
    let train_probe = Probe {
        inner: &model,
        calls: 0.into(),
        tracked: 0.into(),
    };
    let val_probe = Probe {
        inner: &frozen,
        calls: 0.into(),
        tracked: 0.into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        inference: Some(&val_probe),
        ..run_opts(dir.path())
    };
    let out = train(
        &train_probe,
        &varmap,
        &src,
        &small_config(2),
        opts,
        &mut NoHooks,
    )
    .unwrap();
    assert_eq!(out.epochs_completed, 2);
    // Training records its graph; validation ran on the copy and recorded none.
    assert_eq!(train_probe.tracked.get(), train_probe.calls.get());
    assert!(val_probe.calls.get() >= 2, "validation never ran the copy");
    assert_eq!(val_probe.tracked.get(), 0, "validation recorded a graph");
    // The copy saw the trained weights: its figures are the model's.
    let r = out.history.last().unwrap();
    assert_eq!(r.val_view, "centre 16x16 crop");
}

#[test]
fn a_time_budget_ends_the_run_cleanly_after_an_epoch() {
    let src = pages(8, 24, 0.1);
    let (model, varmap) = ConvResidual::seeded(4, 3, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 1000,
        steps_per_epoch: Some(2),
        max_seconds: Some(0.6),
        schedule: LrSchedule::WarmupCosine {
            lr: 1e-3,
            warmup_steps: 0,
            total_steps: 0,
            min_lr: 0.0,
        },
        ..small_config(1000)
    };
    let mut rec = Recorder::default();
    let started = std::time::Instant::now();
    let out = train(&model, &varmap, &src, &cfg, run_opts(dir.path()), &mut rec).unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(out.stop, StopReason::TimeBudget);
    assert!(out.epochs_completed >= 1 && out.epochs_completed < 1000);
    // Every finished epoch was validated and checkpointed, and the best is known.
    assert_eq!(out.history.len(), out.epochs_completed);
    assert!(out.history.iter().all(|r| r.restored.is_some()));
    assert_eq!(rec.checkpoints.len(), out.epochs_completed);
    assert!(out.best.is_some());
    // The run stopped near its budget, not at 1000 epochs; the learning rate
    // decayed with the budget's share.
    assert!(took < 0.6 + 5.0, "took {took} s");
    let first = rec.progress.first().unwrap().lr;
    let last = rec.progress.last().unwrap().lr;
    assert!(last < first, "lr {first} -> {last} did not decay with time");
}

#[test]
fn patches_per_page_sets_the_epoch_length() {
    let src = pages(8, 24, 0.1);
    let (model, varmap) = ConvResidual::seeded(4, 3, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        steps_per_epoch: None,
        patches_per_page: Some(3),
        patch_sampling: restoreflow_training::PatchSampling::Ink,
        ..small_config(1)
    };
    let out = train(
        &model,
        &varmap,
        &src,
        &cfg,
        run_opts(dir.path()),
        &mut NoHooks,
    )
    .unwrap();
    // 8 pages, val_fraction 0.25 by hash: train pages * 3 patches / batch 2.
    let split = restoreflow_training::split_pages(&src, cfg.val_fraction, cfg.seed);
    assert_eq!(out.step as usize, (split.train.len() * 3).div_ceil(2));
}

#[test]
fn an_epoch_longer_than_the_budget_is_cut_short_and_validated() {
    let src = pages(8, 24, 0.1);
    let (model, varmap) = ConvResidual::seeded(4, 3, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        steps_per_epoch: Some(1_000_000),
        max_seconds: Some(0.5),
        ..small_config(3)
    };
    let mut rec = Recorder::default();
    let out = train(&model, &varmap, &src, &cfg, run_opts(dir.path()), &mut rec).unwrap();
    assert_eq!(out.stop, StopReason::TimeBudget);
    assert_eq!(out.epochs_completed, 1);
    let r = &out.history[0];
    assert!(r.step > 0 && r.step < 1_000_000, "step {}", r.step);
    assert!(
        r.restored.is_some(),
        "the shortened epoch was not validated"
    );
    assert_eq!(rec.checkpoints.len(), 1);
}

#[test]
fn validation_scores_at_most_max_val_pages() {
    let src = pages(12, 24, 0.1);
    let dir = tempfile::tempdir().unwrap();
    let (model, vm) = ConvResidual::seeded(4, 3, &Device::Cpu).unwrap();
    let run = |cap: Option<usize>| {
        let cfg = TrainConfig {
            epochs: 1,
            val_fraction: 0.5,
            max_val_pages: cap,
            ..small_config(1)
        };
        let out = train(&model, &vm, &src, &cfg, run_opts(dir.path()), &mut NoHooks).unwrap();
        out.history[0].val_pages
    };
    let held_out = restoreflow_training::split_pages(&src, 0.5, 5).val.len();
    assert_eq!(held_out, 6);
    assert_eq!(run(None), held_out);
    assert_eq!(run(Some(2)), 2);
    assert_eq!(run(Some(100)), held_out);
    let cfg = TrainConfig {
        max_val_pages: Some(0),
        ..small_config(1)
    };
    assert!(cfg.validate().is_err());
}
