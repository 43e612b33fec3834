//! Colour in, colour out: the classical methods on RGB pages, so they are
//! scored against colour clean pages the way a learned model is.
//!
//! Median and non-local means are not luminance operations, so they filter
//! R, G and B each on its own ([`median_denoise_rgb`], [`nl_means_denoise_rgb`]).
//!
//! Layer 1 is different: illumination flattening, CLAHE, skew estimation and
//! binarisation are decisions about brightness, and running them per channel
//! would change colours rather than correct light (CLAHE on R, G and B
//! separately shifts hues; binarising each channel gives eight colours). So
//! [`run_pipeline_rgb`] keeps Layer 1 on luma and transfers its result to the
//! colour page: every pixel takes the luma Layer 1 produced and keeps its own
//! chroma, i.e. its offsets `R - Y`, `G - Y`, `B - Y` from its luma. The chroma
//! goes through the steps that are not about light: the same denoiser (per
//! channel) and the same rotation. Coloured ink therefore stays coloured,
//! while shading, contrast and skew are corrected exactly as on grey. A
//! binarised page is black and white by definition, so with binarisation
//! enabled the output is the binary luma replicated to R, G and B.
//!
//! The transfer adds `Y' - Y` to each channel and clamps to 0..=255, so a
//! pixel whose corrected luma pushes a channel past white (tinted paper made
//! white) keeps the channel at 255: its luma ends slightly below `Y'`.

use std::time::Instant;

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};

use crate::pipeline::straightening_angle;
use crate::{
    ClassicalError, DenoiseParams, Layer1Params, StepTiming, median_denoise, nl_means_denoise,
    rotate, run_pipeline, to_gray,
};

/// Applies `filter` to R, G and B, each as a greyscale image of its own.
pub fn map_channels(img: &RgbImage, filter: impl Fn(&GrayImage) -> GrayImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let channel = |c: usize| {
        filter(&GrayImage::from_fn(w, h, |x, y| {
            Luma([img.get_pixel(x, y)[c]])
        }))
    };
    let (r, g, b) = (channel(0), channel(1), channel(2));
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            r.get_pixel(x, y)[0],
            g.get_pixel(x, y)[0],
            b.get_pixel(x, y)[0],
        ])
    })
}

/// [`median_denoise`] on each of R, G and B.
pub fn median_denoise_rgb(img: &RgbImage, radius: u32) -> RgbImage {
    map_channels(img, |c| median_denoise(c, radius))
}

/// [`nl_means_denoise`] on each of R, G and B (each channel weighs its
/// candidates by its own patches).
pub fn nl_means_denoise_rgb(
    img: &RgbImage,
    h: f32,
    patch_radius: u32,
    search_radius: u32,
) -> RgbImage {
    map_channels(img, |c| nl_means_denoise(c, h, patch_radius, search_radius))
}

/// [`rotate`] on each of R, G and B (corners from outside are white).
pub fn rotate_rgb(img: &RgbImage, angle_deg: f32) -> RgbImage {
    map_channels(img, |c| rotate(c, angle_deg))
}

/// Result of [`run_pipeline_rgb`].
#[derive(Debug, Clone, PartialEq)]
pub struct Layer1RgbOutput {
    /// The cleaned page, the same size as the input.
    pub image: RgbImage,
    /// Skew found, as [`crate::Layer1Output::skew_angle_deg`].
    pub skew_angle_deg: Option<f32>,
    /// The luma steps that ran, then `colour` (the chroma transfer).
    pub steps: Vec<StepTiming>,
}

/// Runs Layer 1 on the luma of `img` ([`run_pipeline`]) and gives the result
/// the page's colours back, as the module documentation describes: the
/// output's luma is Layer 1's, its chroma is the input's (denoised and
/// rotated like the luma was); binarised output is grey.
///
/// A grey page (R = G = B) gives exactly [`run_pipeline`]'s output
/// replicated to R, G and B, and the passthrough parameters return the input.
pub fn run_pipeline_rgb(
    img: &RgbImage,
    params: &Layer1Params,
) -> Result<Layer1RgbOutput, ClassicalError> {
    let out = run_pipeline(&to_gray(&DynamicImage::ImageRgb8(img.clone())), params)?;
    let mut steps = out.steps;
    let start = Instant::now();
    let image = if params.binarize.is_some() {
        DynamicImage::ImageLuma8(out.image).to_rgb8()
    } else {
        let mut colour = match params.denoise {
            Some(DenoiseParams::Median { radius }) => median_denoise_rgb(img, radius),
            Some(DenoiseParams::NonLocalMeans {
                h,
                patch_radius,
                search_radius,
            }) => nl_means_denoise_rgb(img, h, patch_radius, search_radius),
            None => img.clone(),
        };
        if let (Some(p), Some(angle)) = (&params.deskew, out.skew_angle_deg)
            && let Some(turn) = straightening_angle(angle, p)
        {
            colour = rotate_rgb(&colour, turn);
        }
        transfer_luma(&colour, &out.image)
    };
    steps.push(StepTiming {
        name: "colour".to_owned(),
        millis: start.elapsed().as_secs_f64() * 1000.0,
    });
    Ok(Layer1RgbOutput {
        image,
        skew_angle_deg: out.skew_angle_deg,
        steps,
    })
}

/// Each pixel of `colour` shifted by `luma - luma(colour)` in every channel:
/// its chroma (offsets of R, G, B from its luma) kept, its luma replaced.
fn transfer_luma(colour: &RgbImage, luma: &GrayImage) -> RgbImage {
    let own = to_gray(&DynamicImage::ImageRgb8(colour.clone()));
    RgbImage::from_fn(colour.width(), colour.height(), |x, y| {
        let shift = i16::from(luma.get_pixel(x, y)[0]) - i16::from(own.get_pixel(x, y)[0]);
        let p = colour.get_pixel(x, y);
        Rgb(p.0.map(|c| (i16::from(c) + shift).clamp(0, 255) as u8))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, text_page};
    use crate::{Binarization, estimate_skew};

    /// `text_page` with the ink in `ink` instead of black, on white paper.
    fn colour_page(width: u32, height: u32, ink: [u8; 3]) -> RgbImage {
        let grey = text_page(width, height);
        RgbImage::from_fn(width, height, |x, y| {
            if grey.get_pixel(x, y)[0] < 128 {
                Rgb(ink)
            } else {
                Rgb([255, 255, 255])
            }
        })
    }

    fn noisy(img: &RgbImage, sigma: f32, seed: u64) -> RgbImage {
        let mut rng = Lcg::new(seed);
        RgbImage::from_fn(img.width(), img.height(), |x, y| {
            let p = img.get_pixel(x, y);
            Rgb(p
                .0
                .map(|c| (f32::from(c) + rng.noise(sigma)).round().clamp(0.0, 255.0) as u8))
        })
    }

    fn mse(a: &RgbImage, b: &RgbImage) -> f64 {
        let sum: f64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        sum / a.as_raw().len() as f64
    }

    fn grey_replicated(img: &GrayImage) -> RgbImage {
        DynamicImage::ImageLuma8(img.clone()).to_rgb8()
    }

    #[test]
    fn channel_filters_keep_colour_and_denoise() {
        let clean = colour_page(120, 100, [200, 30, 40]);
        let noisy = noisy(&clean, 15.0, 3);
        for out in [
            median_denoise_rgb(&noisy, 1),
            nl_means_denoise_rgb(&noisy, 15.0, 1, 4),
        ] {
            assert_eq!(out.dimensions(), clean.dimensions());
            assert!(mse(&out, &clean) < mse(&noisy, &clean) * 0.7);
        }
        // A clean colour page survives a median; the old grey path did not.
        let median = median_denoise_rgb(&clean, 1);
        let grey = grey_replicated(&median_denoise(
            &to_gray(&DynamicImage::ImageRgb8(clean.clone())),
            1,
        ));
        assert!(
            mse(&median, &clean) * 10.0 < mse(&grey, &clean),
            "colour {} grey {}",
            mse(&median, &clean),
            mse(&grey, &clean)
        );
        assert_eq!(
            median_denoise_rgb(&RgbImage::new(0, 0), 1).dimensions(),
            (0, 0)
        );
    }

    #[test]
    fn passthrough_returns_the_colour_input() {
        let page = noisy(&colour_page(90, 70, [20, 40, 190]), 8.0, 4);
        let out = run_pipeline_rgb(&page, &Layer1Params::passthrough()).expect("valid params");
        assert_eq!(out.image, page);
    }

    #[test]
    fn grey_pages_give_the_luma_pipeline_replicated() {
        let grey = text_page(160, 200);
        let skewed = rotate(&grey, 2.0);
        let page = grey_replicated(&skewed);
        let nl_means = Layer1Params {
            denoise: Some(DenoiseParams::NonLocalMeans {
                h: 10.0,
                patch_radius: 1,
                search_radius: 3,
            }),
            ..Layer1Params::default()
        };
        for params in [Layer1Params::default(), nl_means] {
            let luma = run_pipeline(&skewed, &params).expect("valid params");
            let rgb = run_pipeline_rgb(&page, &params).expect("valid params");
            assert_eq!(rgb.image, grey_replicated(&luma.image));
            assert_eq!(rgb.skew_angle_deg, luma.skew_angle_deg);
        }
    }

    #[test]
    fn coloured_ink_stays_coloured_and_pages_are_still_straightened() {
        let clean = colour_page(300, 360, [30, 50, 200]);
        let skewed = rotate_rgb(&clean, 3.0);
        let out = run_pipeline_rgb(&skewed, &Layer1Params::default()).expect("valid params");
        let found = out.skew_angle_deg.expect("deskew enabled");
        assert!((found - 3.0).abs() < 0.5, "reported {found}");
        let luma = to_gray(&DynamicImage::ImageRgb8(out.image.clone()));
        assert!(estimate_skew(&luma, 10.0, 0.1).abs() < 0.5);
        // Ink pixels of the output are still clearly blue.
        let ink: Vec<&Rgb<u8>> = out.image.pixels().filter(|p| p[2] < 250).collect();
        assert!(!ink.is_empty());
        let blue = ink
            .iter()
            .filter(|p| i32::from(p[2]) > i32::from(p[0]) + 60)
            .count();
        assert!(
            blue * 2 > ink.len(),
            "{blue} of {} ink pixels blue",
            ink.len()
        );
        // And it is much closer to the clean page than the grey output was.
        let grey = grey_replicated(
            &run_pipeline(
                &to_gray(&DynamicImage::ImageRgb8(skewed.clone())),
                &Layer1Params::default(),
            )
            .expect("valid params")
            .image,
        );
        assert!(mse(&out.image, &clean) < mse(&grey, &clean) * 0.5);
        assert_eq!(out.steps.last().map(|s| s.name.as_str()), Some("colour"));
    }

    #[test]
    fn binarised_output_is_black_and_white() {
        let page = colour_page(120, 140, [180, 20, 20]);
        let params = Layer1Params {
            binarize: Some(Binarization::Otsu),
            ..Layer1Params::default()
        };
        let out = run_pipeline_rgb(&page, &params).expect("valid params");
        assert!(
            out.image
                .pixels()
                .all(|p| p.0 == [0, 0, 0] || p.0 == [255, 255, 255])
        );
        assert!(run_pipeline_rgb(&RgbImage::new(0, 3), &params).is_err());
    }
}
