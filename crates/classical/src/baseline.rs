//! Classical baselines that learned restoration models are scored against.
//!
//! Each baseline uses fixed parameters so scores are comparable between
//! evaluation runs; changing them changes every historical comparison.

use std::fmt;
use std::str::FromStr;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::{
    ClassicalError, Layer1Params, median_denoise, median_denoise_rgb, nl_means_denoise,
    nl_means_denoise_rgb, run_pipeline, run_pipeline_rgb,
};

/// Radius of the [`Baseline::Median`] filter (3x3).
pub const MEDIAN_RADIUS: u32 = 1;
/// Strength `h` of the [`Baseline::NonLocalMeans`] filter, in grey levels;
/// suits noise with a standard deviation around 10.
pub const NL_MEANS_H: f32 = 10.0;
/// Patch radius of the [`Baseline::NonLocalMeans`] filter (3x3 patches).
pub const NL_MEANS_PATCH_RADIUS: u32 = 1;
/// Search radius of the [`Baseline::NonLocalMeans`] filter (11x11 window).
pub const NL_MEANS_SEARCH_RADIUS: u32 = 5;

/// A classical restoration method with fixed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The degraded input itself: the score of doing nothing.
    Identity,
    /// A [`MEDIAN_RADIUS`] median filter.
    Median,
    /// Non-local means with [`NL_MEANS_H`], [`NL_MEANS_PATCH_RADIUS`] and
    /// [`NL_MEANS_SEARCH_RADIUS`].
    #[serde(rename = "nl_means")]
    NonLocalMeans,
    /// The full Layer 1 pipeline with [`Layer1Params::default_pipeline`].
    Layer1,
}

impl Baseline {
    /// Every baseline, in the order reports list them.
    pub const ALL: [Baseline; 4] = [
        Baseline::Identity,
        Baseline::Median,
        Baseline::NonLocalMeans,
        Baseline::Layer1,
    ];

    /// Stable lowercase name used in reports, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Identity => "identity",
            Baseline::Median => "median",
            Baseline::NonLocalMeans => "nl_means",
            Baseline::Layer1 => "layer1",
        }
    }

    /// Restores `img` with this baseline; the output has the input's size.
    /// Empty images are rejected for every baseline, identity included, so
    /// callers see the same behaviour whichever they pick.
    pub fn apply(&self, img: &GrayImage) -> Result<GrayImage, ClassicalError> {
        non_empty(img.width(), img.height())?;
        Ok(match self {
            Baseline::Identity => img.clone(),
            Baseline::Median => median_denoise(img, MEDIAN_RADIUS),
            Baseline::NonLocalMeans => nl_means_denoise(
                img,
                NL_MEANS_H,
                NL_MEANS_PATCH_RADIUS,
                NL_MEANS_SEARCH_RADIUS,
            ),
            Baseline::Layer1 => run_pipeline(img, &Layer1Params::default_pipeline())?.image,
        })
    }

    /// Restores a colour page with this baseline, colour in, colour out, so
    /// it can be scored against a colour clean page like a learned model:
    /// the denoisers filter R, G and B each on its own, and Layer 1 runs on
    /// luma and keeps the page's chroma ([`run_pipeline_rgb`]). Empty images
    /// are rejected as in [`Baseline::apply`].
    pub fn apply_rgb(&self, img: &RgbImage) -> Result<RgbImage, ClassicalError> {
        non_empty(img.width(), img.height())?;
        Ok(match self {
            Baseline::Identity => img.clone(),
            Baseline::Median => median_denoise_rgb(img, MEDIAN_RADIUS),
            Baseline::NonLocalMeans => nl_means_denoise_rgb(
                img,
                NL_MEANS_H,
                NL_MEANS_PATCH_RADIUS,
                NL_MEANS_SEARCH_RADIUS,
            ),
            Baseline::Layer1 => run_pipeline_rgb(img, &Layer1Params::default_pipeline())?.image,
        })
    }
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Baseline {
    type Err = ClassicalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Baseline::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| ClassicalError::UnknownBaseline(s.to_owned()))
    }
}

/// Every baseline refuses an empty image, identity included, so callers see
/// the same behaviour whichever they pick.
fn non_empty(width: u32, height: u32) -> Result<(), ClassicalError> {
    if width == 0 || height == 0 {
        return Err(ClassicalError::EmptyImage { width, height });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{add_noise, mse, text_page};

    #[test]
    fn names_round_trip_through_str_and_json() {
        for b in Baseline::ALL {
            assert_eq!(b.name().parse::<Baseline>(), Ok(b));
            assert_eq!(b.to_string(), b.name());
            let json = serde_json::to_string(&b).expect("baseline serialises");
            assert_eq!(json, format!("\"{}\"", b.name()));
        }
        assert!(matches!(
            "bm3d".parse::<Baseline>(),
            Err(ClassicalError::UnknownBaseline(_))
        ));
    }

    #[test]
    fn every_baseline_keeps_the_size_and_denoisers_help() {
        let clean = text_page(120, 150);
        let noisy = add_noise(&clean, 15.0, 31);
        let identity = mse(&noisy, &clean);
        for b in Baseline::ALL {
            let out = b.apply(&noisy).expect("non-empty image");
            assert_eq!(out.dimensions(), noisy.dimensions(), "{b}");
            if matches!(b, Baseline::Median | Baseline::NonLocalMeans) {
                assert!(mse(&out, &clean) < identity, "{b} did not reduce error");
            }
        }
        assert_eq!(Baseline::Identity.apply(&noisy), Ok(noisy));
        for b in Baseline::ALL {
            assert!(b.apply(&GrayImage::new(0, 0)).is_err());
            assert!(b.apply_rgb(&RgbImage::new(0, 0)).is_err());
        }
    }

    #[test]
    fn colour_baselines_on_grey_pages_match_the_grey_ones() {
        let noisy = add_noise(&text_page(120, 150), 15.0, 32);
        let rgb = image::DynamicImage::ImageLuma8(noisy.clone()).to_rgb8();
        for b in Baseline::ALL {
            let grey = b.apply(&noisy).expect("non-empty image");
            let colour = b.apply_rgb(&rgb).expect("non-empty image");
            assert_eq!(
                colour,
                image::DynamicImage::ImageLuma8(grey).to_rgb8(),
                "{b}"
            );
        }
    }
}
