//! Renders restoreflow training reports.
//!
//! Every training run leaves a report a person wants to read. The report
//! service gathers the stored records of a run (job row, trainer events,
//! dataset row, model version row) into one [`ReportData`]; this crate turns
//! that value into the four formats we publish, plus the PNG charts they show:
//!
//! - [`render_text`]: a plain-text report laid out like a classic product report;
//! - [`render_markdown`]: the same sections as Markdown, linking chart files;
//! - [`render_json`]: the data, the [`Derived`] numbers and the
//!   [`Recommendation`]s, described by [`json_schema`];
//! - [`render_html`]: one self-contained page with the charts inlined;
//! - [`render_charts`]: `loss.png`, `psnr_ssim.png`, `learning_rate.png` and a
//!   `samples.png` strip of before/after images.
//!
//! The crate is pure: no network, no storage, no clock. The only I/O is
//! reading a system font (through `fontdb`) the first time a chart is drawn.
//!
//! Every number a report shows is a field of [`ReportData`] or is derived from
//! one by the arithmetic documented on [`Derived`]; anything missing prints as
//! `n/a`. Run the tests with
//! `cargo test -p restoreflow-report-render`.

mod charts;
mod data;
mod derive;
mod format;
mod html;
mod json;
mod markdown;
mod recipe;
mod recommend;
mod samples;
mod sections;
mod text;

#[cfg(test)]
mod fixtures;

pub use charts::{Chart, render_charts};
pub use data::*;
pub use derive::{Change, Comparison, Derived, Improvement, derive};
pub use html::render_html;
pub use json::{json_schema, render_json};
pub use markdown::{ChartRef, render_markdown};
pub use recommend::{
    MORE_DATA_MIN_PAIRS, MORE_EPOCHS_MIN_PSNR_GAIN_DB, OVERFITTING_WINDOW,
    REGRESSION_PSNR_TOLERANCE_DB, Recommendation, SKIPPED_PAIRS_MAX_PERCENT, Severity,
    USE_GPU_MIN_EPOCH_SECONDS, recommendations,
};
pub use text::render_text;

/// Errors from rendering charts; the text formats cannot fail.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No usable sans-serif font was found on the machine.
    #[error("no sans-serif font found on this machine (install fonts-dejavu-core)")]
    NoFont,
    /// The font file was found but could not be parsed.
    #[error("font {0} could not be loaded")]
    BadFont(String),
    /// Plotters failed while drawing a chart.
    #[error("drawing chart {chart} failed: {message}")]
    Plot {
        /// File name of the chart being drawn.
        chart: String,
        /// What plotters reported.
        message: String,
    },
    /// A sample image could not be decoded.
    #[error("sample {name} ({which}) could not be decoded: {source}")]
    SampleDecode {
        /// The sample's name.
        name: String,
        /// degraded | restored | clean
        which: &'static str,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// A chart could not be encoded as PNG.
    #[error("encoding {chart} as png failed: {source}")]
    Encode {
        /// File name of the chart being encoded.
        chart: String,
        /// The encoder's error.
        source: image::ImageError,
    },
}
