//! Model-agnostic Candle training for document restoration.
//!
//! `restoreflow-training` trains any network that implements [`Restorer`]
//! (the Restormer crate plugs in here; [`ConvResidual`] is a toy for tests
//! and smoke runs) on aligned clean/degraded page pairs. It is a pure
//! library: no async, no network; the trainer service adapts storage and
//! messaging around it and runs [`train`] on a blocking thread.
//!
//! # Pieces
//! - **Data** ([`PairSource`], [`InMemoryPairs`], [`split_pages`],
//!   [`PageStore`], [`PatchSampler`]): pages come from a caller-provided
//!   source and are decoded on demand into a bounded LRU cache. Pages are
//!   split into train and validation by hashing `(seed, page_id)`, so a page
//!   never lands on both sides. Training batches are random `P x P` patches at
//!   the same spot in both images with one of 8 flips/rotations applied to
//!   both, as `[B, 3, P, P]` f32 tensors. Pages that fail to load or whose two
//!   images differ in size are skipped and reported as `(page_id, reason)`.
//! - **Losses** ([`LossConfig`]): L1 (official Restormer), Charbonnier
//!   (eps 1e-3) and an optional differentiable luma-SSIM term.
//! - **Optimisation** ([`AdamW`], [`LrSchedule`], [`clip_grad_norm`]): an
//!   AdamW whose moments we own so they can be checkpointed; constant,
//!   warm-up + cosine and the official cyclic cosine schedules.
//! - **Checkpoints** ([`Checkpoint`]): a directory with `model.safetensors`,
//!   `optimizer.safetensors` and `checkpoint.json` (model config, code
//!   version, epoch, step, history, best epoch, sampler position, times).
//! - **Engine** ([`train`], [`TrainConfig`], [`TrainHooks`], [`RunOptions`]):
//!   epochs of steps, per-epoch validation with the identity baseline,
//!   progress and epoch callbacks, a checkpoint per epoch, cancellation
//!   between steps, early stopping, best epoch by validation PSNR. Resuming
//!   on CPU is bit-for-bit identical to an uninterrupted run.
//! - **Inference** ([`restore_whole`], [`restore_tiled`], [`TileConfig`]):
//!   reflect-padding to multiples of 8 and overlapping tiles blended with
//!   linear ramps, so memory is bounded by the tile size.
//! - **Metrics** ([`psnr`], [`ssim`], [`pixel_accuracy`], [`MetricSet`]) on
//!   plain [`RgbF32`] images, matching scikit-image:
//!   PSNR over RGB with data range 1 (`f64::INFINITY` for identical images,
//!   capped at [`PSNR_CAP_DB`] inside means); SSIM on BT.601 luma with an
//!   11 x 11 Gaussian window (sigma 1.5, K1 0.01, K2 0.03, population
//!   covariance, mean over the map cropped by 5 px, as
//!   `structural_similarity(gaussian_weights=True, sigma=1.5,
//!   use_sample_covariance=False, data_range=1)`); pixel accuracy = share of
//!   pixels whose max-over-RGB absolute error is at most 8/255.
//!
//! # Example
//! ```no_run
//! use restoreflow_training::{
//!     ConvResidual, InMemoryPairs, NoHooks, RunOptions, TrainConfig, train,
//! };
//! # fn main() -> restoreflow_training::Result<()> {
//! let (model, varmap) = ConvResidual::seeded(16, 0, &candle_core::Device::Cpu)?;
//! let pages = InMemoryPairs::new(); // push (id, clean, degraded) pages here
//! let cfg = TrainConfig { epochs: 2, patch_size: 64, ..TrainConfig::default() };
//! let run = RunOptions { checkpoint_dir: "/tmp/ckpt".into(), ..RunOptions::default() };
//! let outcome = train(&model, &varmap, &pages, &cfg, run, &mut NoHooks)?;
//! println!("best epoch: {:?}", outcome.best);
//! # Ok(()) }
//! ```
//!
//! Tests: `cargo test -p restoreflow-training` (CPU, tiny tensors). The
//! metric fixtures under `tests/fixtures/` were computed with scikit-image by
//! `tests/fixtures/make_fixtures.py`.

mod checkpoint;
mod data;
mod engine;
mod error;
mod image;
mod infer;
mod loss;
mod metrics;
mod model;
mod optim;

pub use checkpoint::{
    Checkpoint, CheckpointMeta, FORMAT_VERSION, META_FILE, OPTIMIZER_FILE, PartialEpoch,
    WEIGHTS_FILE, load_weights, save_weights,
};
pub use data::{
    DAMAGE_INK_WEIGHT, DAMAGE_TRIES, DEFAULT_POOL_PATCHES, INK_LUMA, INK_SHARE, INK_TRIES,
    InMemoryPairs, PageStore, Pair, PairSource, PatchSampler, PatchSampling, SamplerState, Split,
    damage_score, dihedral_index, ink_share, split_pages,
};
pub use engine::{
    BestEpoch, EpochReport, NoHooks, Progress, ProgressiveStage, RunOptions, StopReason,
    TrainConfig, TrainHooks, TrainOutcome, ValMode, train,
};
pub use error::{Error, Result};
pub use image::RgbF32;
pub use infer::{
    CUDA_TILE_BATCH, SIZE_MULTIPLE, TileConfig, pad_reflect, restore_batch, restore_tiled,
    restore_whole,
};
pub use loss::{LossConfig, PixelLoss, ssim_loss, ssim_tensor};
pub use metrics::{
    ACCURACY_TOLERANCE, GAUSS_RADIUS, GAUSS_SIGMA, MetricSet, PSNR_CAP_DB, gaussian_kernel_1d,
    luma, mse, pixel_accuracy, psnr, ssim, ssim_luma,
};
pub use model::{ConvResidual, Restorer, init_deterministic};
pub use optim::{AdamW, AdamWConfig, LrSchedule, OFFICIAL_FLAT_SHARE, clip_grad_norm};
