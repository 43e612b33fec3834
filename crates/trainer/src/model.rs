//! Adapts the Restormer network to the training engine.

use candle_core::{Module, Tensor};
use restoreflow_restormer::Restormer;
use restoreflow_training::Restorer;

/// A [`Restormer`] as the engine's [`Restorer`].
pub struct RestormerNet(pub Restormer);

impl Restorer for RestormerNet {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.forward(x)
    }
}

/// The code version recorded in checkpoints and registered models.
pub fn code_version() -> String {
    match option_env!("RESTOREFLOW_GIT_REV") {
        Some(rev) => format!("restoreflow-trainer {} ({rev})", env!("CARGO_PKG_VERSION")),
        None => format!("restoreflow-trainer {}", env!("CARGO_PKG_VERSION")),
    }
}
