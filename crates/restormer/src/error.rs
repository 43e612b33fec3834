//! The crate's error type.

/// Errors raised while building, loading or running a Restormer model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside Candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A configuration value cannot describe a valid network.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A CUDA device was requested from a build without the `cuda` feature.
    #[error("cuda requested but this build has no cuda support (enable the `cuda` feature)")]
    CudaNotCompiled,
}

/// Shorthand for results carrying [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
