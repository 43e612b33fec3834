//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in the classical pipeline.
///
/// The pixel operations themselves cannot fail; errors come from parameters
/// that make no sense and from inputs the pipeline refuses to process.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClassicalError {
    /// A parameter is out of its allowed range or not a finite number.
    #[error("invalid parameter `{field}`: {reason}")]
    InvalidParam {
        /// Dotted path of the offending field, e.g. `clahe.clip_limit`.
        field: &'static str,
        /// Why the value was rejected.
        reason: String,
    },
    /// The input image has no pixels.
    #[error("image is empty ({width}x{height})")]
    EmptyImage {
        /// Width of the rejected image.
        width: u32,
        /// Height of the rejected image.
        height: u32,
    },
    /// A baseline name did not match any known baseline.
    #[error("unknown baseline `{0}` (expected one of: identity, median, nl_means, layer1)")]
    UnknownBaseline(String),
}

impl ClassicalError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParam {
            field,
            reason: reason.into(),
        }
    }
}
