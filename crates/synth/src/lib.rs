//! Synthetic training data for document-image restoration.
//!
//! This crate renders clean, deterministic document pages (real prose set in
//! the system's fonts as headings, paragraphs, lists and ruled tables, with
//! charts, photos, logos, forms, signatures, stamps and highlighter among it,
//! each listed with its box in [`Page::elements`]) and degrades them into
//! realistic scans with a pipeline of parameterised degradation families
//! (noise, blur, JPEG, stains, bleed-through, ...).
//! The service crates use it to produce pixel-aligned `(clean, degraded)`
//! pairs with OCR ground truth; everything is a pure function of its seed.
//!
//! ```no_run
//! use restoreflow_synth::{FontLibrary, PageSpec, PaperSize, Pipeline, Target, generate_pair};
//! let fonts = FontLibrary::system()?;
//! let pipeline = Pipeline::preset("scan")?;
//! let sheet = PageSpec::paper(PaperSize::A4, 150)?; // 1240x1754, fonts and kernels scaled
//! let pair = generate_pair(&fonts, &pipeline, &sheet, 42, Target::Digital)?;
//! assert_eq!(pair.clean.dimensions(), pair.degraded.dimensions());
//! # Ok::<(), restoreflow_synth::SynthError>(())
//! ```
//!
//! Run the tests with `cargo test -p restoreflow-synth`, the throughput
//! benchmark with `cargo bench -p restoreflow-synth --bench generate`, and
//! write sample pairs to look at with
//! `cargo run -p restoreflow-synth --release --example sample_pairs -- OUT_DIR mixed 8`.

mod codec;
mod degrade;
mod error;
mod fonts;
mod page;
mod pair;

pub use codec::{decode_image, encode_png};
pub use degrade::{
    Applied, Degraded, Family, PRESET_ALIASES, Pipeline, PresetInfo, Step, canonical_preset,
    presets,
};
pub use error::SynthError;
pub use fonts::{FontLibrary, FontPack};
pub use page::{
    Content, DIGITAL_INK, DIGITAL_PAPER, Element, MAX_DPI, MAX_SIZE, MIN_DPI, MIN_SIZE, Page,
    PageSpec, PaperSize, REFERENCE_DPI, Target, render_page, render_page_as,
};
pub use pair::{Pair, degradation_seed, generate_batch, generate_pair};
