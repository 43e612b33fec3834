//! The crate's error type.

/// Everything that can go wrong while training, evaluating or checkpointing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside Candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint sidecar could not be encoded or decoded.
    #[error("checkpoint metadata is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// Two images that must share a size do not.
    #[error("image sizes differ: {a_width}x{a_height} vs {b_width}x{b_height}")]
    SizeMismatch {
        /// Width of the first image.
        a_width: u32,
        /// Height of the first image.
        a_height: u32,
        /// Width of the second image.
        b_width: u32,
        /// Height of the second image.
        b_height: u32,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data source cannot supply what training needs.
    #[error("dataset error: {0}")]
    Data(String),
    /// A checkpoint does not fit the model or optimiser it is loaded into.
    #[error("checkpoint does not match: {0}")]
    Checkpoint(String),
    /// The caller's checkpoint hook refused a checkpoint.
    #[error("checkpoint hook failed: {0}")]
    Hook(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
