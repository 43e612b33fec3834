//! The one error type of this crate.

use crate::degrade::{family_list, preset_list};
use crate::{MAX_SIZE, MIN_SIZE};

/// Everything that can go wrong while rendering, degrading or coding images.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// No font usable for rendering Latin text was found.
    #[error("no usable fonts: {0}")]
    NoFonts(String),
    /// A requested font family or font pack that is not loaded.
    #[error("font {kind} `{name}` is not installed; {hint}")]
    MissingFont {
        /// `family` or `pack`.
        kind: &'static str,
        /// The family or pack name as requested.
        name: String,
        /// The Debian package(s) that provide it and the installer command.
        hint: String,
    },
    /// A width or height outside `MIN_SIZE..=MAX_SIZE`.
    #[error("size {width}x{height} is outside the allowed range {min}..={max} per side", min = MIN_SIZE, max = MAX_SIZE)]
    InvalidSize {
        /// Requested or decoded width in pixels.
        width: u32,
        /// Requested or decoded height in pixels.
        height: u32,
    },
    /// A scan resolution outside `MIN_DPI..=MAX_DPI`.
    #[error("dpi {0} is outside the allowed range {min}..={max}", min = crate::MIN_DPI, max = crate::MAX_DPI)]
    InvalidDpi(u32),
    /// A paper size name that does not exist.
    #[error("unknown page size `{0}` (valid: a4, letter)")]
    UnknownPaperSize(String),
    /// A page content name that does not exist.
    #[error("unknown content `{0}` (valid: mixed, text)")]
    UnknownContent(String),
    /// A degradation family name that does not exist.
    #[error("unknown degradation family `{0}` (valid: {list})", list = family_list())]
    UnknownFamily(String),
    /// A preset name that does not exist.
    #[error("unknown preset `{0}` (valid: {list})", list = preset_list())]
    UnknownPreset(String),
    /// A target name that does not exist.
    #[error("unknown target `{0}` (valid: as_printed, digital)")]
    UnknownTarget(String),
    /// A pipeline that is empty or has a probability outside `[0, 1]`.
    #[error("invalid pipeline: {0}")]
    InvalidPipeline(String),
    /// Bytes that are not a decodable image.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// Encoding an image failed.
    #[error("image encoding failed: {0}")]
    Encode(String),
}
