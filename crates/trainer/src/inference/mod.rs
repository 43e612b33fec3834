//! Inference for restoration and evaluation: the model cache, the
//! restoration pipeline and pair scoring.

mod cache;
mod pipeline;
mod score;

pub use cache::{ModelCache, ModelError, restormer_from_file};
pub use pipeline::{Pipeline, restore};
pub use score::{Subject, cer, ocr, ocr_available, ocr_cers, score_pair};
