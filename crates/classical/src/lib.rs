//! Layer 1: a deterministic classical document-cleaning pipeline, and the
//! classical baselines that learned restoration models are scored against.
//!
//! Pages are processed as 8-bit greyscale ([`image::GrayImage`]; convert
//! with [`to_gray`]). [`run_pipeline`] applies the steps enabled in a
//! [`Layer1Params`] in a fixed order:
//!
//! 1. [`normalize_illumination`]: divide out the paper background so
//!    shading and stains become white paper;
//! 2. [`median_denoise`] or [`nl_means_denoise`];
//! 3. [`clahe`]: contrast-limited adaptive histogram equalisation;
//! 4. [`estimate_skew`] and [`rotate`]: straighten the text lines;
//! 5. [`binarize_otsu`] or [`sauvola`]: optional black-and-white output.
//!
//! [`run_pipeline_rgb`] runs the same steps on a colour page: Layer 1 works
//! on its luma and the output keeps the page's chroma (binarised output is
//! grey); [`median_denoise_rgb`] and [`nl_means_denoise_rgb`] filter each
//! channel. Evaluations score every method colour in, colour out, against
//! colour clean pages (see the `colour` module for why Layer 1 stays on luma).
//!
//! `Layer1Params` is plain serde data: the registry stores it as JSON, as a
//! versioned "model" next to the learned ones. [`Baseline`] names the fixed
//! classical methods an evaluation compares a learned model with.
//!
//! The crate is pure computation: no I/O, no async, no global state. Heavy
//! loops run on rayon's pool, and every function accepts any image size,
//! 0x0 included, without panicking. Tests: `cargo test -p
//! restoreflow-classical`; full-page timing checks are ignored tests to
//! run with `--release -- --ignored --nocapture --test-threads 1` (one at a
//! time, since each uses every core).

mod baseline;
mod binarize;
mod clahe;
mod colour;
mod denoise;
mod error;
mod illumination;
mod params;
mod pipeline;
mod skew;
#[cfg(test)]
mod testutil;

use image::{DynamicImage, GrayImage};

pub use baseline::{
    Baseline, MEDIAN_RADIUS, NL_MEANS_H, NL_MEANS_PATCH_RADIUS, NL_MEANS_SEARCH_RADIUS,
};
pub use binarize::{binarize_otsu, otsu_threshold, sauvola};
pub use clahe::clahe;
pub use colour::{
    Layer1RgbOutput, map_channels, median_denoise_rgb, nl_means_denoise_rgb, rotate_rgb,
    run_pipeline_rgb,
};
pub use denoise::{median_denoise, nl_means_denoise};
pub use error::ClassicalError;
pub use illumination::{estimate_background, normalize_illumination};
pub use params::{
    Binarization, ClaheParams, DenoiseParams, DeskewParams, IlluminationParams, Layer1Params,
};
pub use pipeline::{Layer1Output, StepTiming, run_pipeline};
pub use skew::{estimate_skew, rotate};

/// Converts any decoded image to 8-bit greyscale (Rec. 709 luma, alpha
/// dropped), the form every function in this crate works on.
pub fn to_gray(img: &DynamicImage) -> GrayImage {
    img.to_luma8()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn to_gray_keeps_size_and_maps_white_and_black() {
        let rgb = RgbImage::from_fn(3, 2, |x, _| {
            if x == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let gray = to_gray(&DynamicImage::ImageRgb8(rgb));
        assert_eq!(gray.dimensions(), (3, 2));
        assert_eq!(gray.get_pixel(0, 0)[0], 0);
        assert_eq!(gray.get_pixel(2, 1)[0], 255);
        assert_eq!(to_gray(&DynamicImage::new_luma8(0, 0)).dimensions(), (0, 0));
    }
}
