//! The Layer 1 pipeline: the enabled steps of a [`Layer1Params`] in order.

use std::time::Instant;

use image::GrayImage;
use serde::{Deserialize, Serialize};

use crate::{
    Binarization, ClassicalError, DenoiseParams, DeskewParams, Layer1Params, binarize_otsu, clahe,
    estimate_skew, median_denoise, nl_means_denoise, normalize_illumination, rotate, sauvola,
};

/// How long one pipeline step took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// Step name: `illumination`, `denoise`, `clahe`, `deskew` or `binarize`.
    pub name: String,
    /// Wall-clock time in milliseconds.
    pub millis: f64,
}

/// Result of [`run_pipeline`].
#[derive(Debug, Clone, PartialEq)]
pub struct Layer1Output {
    /// The cleaned page, the same size as the input.
    pub image: GrayImage,
    /// Skew found in the input, in degrees, positive when the text was
    /// rotated counter-clockwise on screen (the page was turned back by the
    /// opposite angle). `None` when deskewing is disabled.
    pub skew_angle_deg: Option<f32>,
    /// The steps that ran, in order, with their timings.
    pub steps: Vec<StepTiming>,
}

/// Runs the enabled steps of `params` in the order illumination, denoise,
/// CLAHE, deskew, binarize.
///
/// The pixels depend only on the input and the parameters (timings aside,
/// the output is deterministic). Fails when the parameters do not validate
/// or the image has no pixels.
pub fn run_pipeline(
    img: &GrayImage,
    params: &Layer1Params,
) -> Result<Layer1Output, ClassicalError> {
    params.validate()?;
    if img.width() == 0 || img.height() == 0 {
        return Err(ClassicalError::EmptyImage {
            width: img.width(),
            height: img.height(),
        });
    }
    let mut steps = Vec::new();
    let mut image = img.clone();

    if let Some(p) = &params.illumination {
        image = timed(&mut steps, "illumination", || {
            normalize_illumination(&image, p)
        });
    }
    if let Some(p) = &params.denoise {
        image = timed(&mut steps, "denoise", || match *p {
            DenoiseParams::Median { radius } => median_denoise(&image, radius),
            DenoiseParams::NonLocalMeans {
                h,
                patch_radius,
                search_radius,
            } => nl_means_denoise(&image, h, patch_radius, search_radius),
        });
    }
    if let Some(p) = &params.clahe {
        image = timed(&mut steps, "clahe", || clahe(&image, p));
    }
    let mut skew_angle_deg = None;
    if let Some(p) = &params.deskew {
        let (angle, straight) = timed(&mut steps, "deskew", || {
            let angle = estimate_skew(&image, p.max_angle_deg, p.step_deg);
            let straight = straightening_angle(angle, p).map(|turn| rotate(&image, turn));
            (angle, straight)
        });
        skew_angle_deg = Some(angle);
        if let Some(straight) = straight {
            image = straight;
        }
    }
    if let Some(b) = &params.binarize {
        image = timed(&mut steps, "binarize", || match *b {
            Binarization::Otsu => binarize_otsu(&image),
            Binarization::Sauvola { window, k, r } => sauvola(&image, window, k, r),
        });
    }
    Ok(Layer1Output {
        image,
        skew_angle_deg,
        steps,
    })
}

/// The rotation that straightens a page whose skew was estimated as
/// `angle` degrees, or `None` when it is left as it is: below half a search
/// step the estimate is indistinguishable from zero, and rotating would only
/// blur. Shared with the colour pipeline, which must turn its chroma alike.
pub(crate) fn straightening_angle(angle: f32, p: &DeskewParams) -> Option<f32> {
    (angle.abs() >= p.step_deg / 2.0).then_some(-angle)
}

fn timed<T>(steps: &mut Vec<StepTiming>, name: &str, step: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = step();
    steps.push(StepTiming {
        name: name.to_owned(),
        millis: start.elapsed().as_secs_f64() * 1000.0,
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClaheParams;
    use crate::testutil::{add_noise, degenerate_images, text_page};
    use image::Luma;

    fn deskew_only() -> Layer1Params {
        Layer1Params {
            deskew: Some(DeskewParams {
                max_angle_deg: 10.0,
                step_deg: 0.1,
            }),
            ..Layer1Params::passthrough()
        }
    }

    #[test]
    fn reports_and_corrects_skew() {
        let page = text_page(600, 800);
        for angle in [3.0f32, -1.7, 7.2] {
            let skewed = rotate(&page, angle);
            let out = run_pipeline(&skewed, &deskew_only()).expect("valid params");
            let found = out.skew_angle_deg.expect("deskew enabled");
            assert!(
                (found - angle).abs() < 0.5,
                "rotated {angle}, reported {found}"
            );
            let residual = estimate_skew(&out.image, 10.0, 0.1);
            assert!(residual.abs() < 0.5, "residual skew {residual}");
        }
    }

    #[test]
    fn default_pipeline_cleans_a_skewed_noisy_page() {
        let page = text_page(300, 400);
        let input = add_noise(&rotate(&page, -2.5), 12.0, 21);
        let out = run_pipeline(&input, &Layer1Params::default()).expect("valid params");
        let found = out.skew_angle_deg.expect("deskew enabled");
        assert!((found + 2.5).abs() < 0.5, "reported {found}");
        assert_eq!(out.image.dimensions(), input.dimensions());
        let names: Vec<&str> = out.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["illumination", "denoise", "clahe", "deskew"]);
    }

    #[test]
    fn deterministic() {
        let input = add_noise(&rotate(&text_page(200, 260), 1.3), 10.0, 22);
        let params = Layer1Params {
            binarize: Some(Binarization::Sauvola {
                window: 25,
                k: 0.2,
                r: 128.0,
            }),
            ..Layer1Params::default()
        };
        let a = run_pipeline(&input, &params).expect("valid params");
        let b = run_pipeline(&input, &params).expect("valid params");
        assert_eq!(a.image, b.image);
        assert_eq!(a.skew_angle_deg, b.skew_angle_deg);
        assert!(a.image.pixels().all(|p| p[0] == 0 || p[0] == 255));
    }

    #[test]
    fn passthrough_returns_the_input() {
        let input = text_page(120, 90);
        let out = run_pipeline(&input, &Layer1Params::passthrough()).expect("valid params");
        assert_eq!(out.image, input);
        assert_eq!(out.skew_angle_deg, None);
        assert!(out.steps.is_empty());
    }

    #[test]
    fn rejects_bad_params_and_empty_images() {
        let bad = Layer1Params {
            clahe: Some(ClaheParams {
                tiles_x: 8,
                tiles_y: 8,
                clip_limit: -1.0,
            }),
            ..Layer1Params::default()
        };
        let img = GrayImage::from_pixel(10, 10, Luma([200]));
        assert!(matches!(
            run_pipeline(&img, &bad),
            Err(ClassicalError::InvalidParam {
                field: "clahe.clip_limit",
                ..
            })
        ));
        assert_eq!(
            run_pipeline(&GrayImage::new(0, 4), &Layer1Params::default()),
            Err(ClassicalError::EmptyImage {
                width: 0,
                height: 4
            })
        );
    }

    #[test]
    fn tiny_images_do_not_panic() {
        let mut all_steps = Layer1Params {
            binarize: Some(Binarization::Otsu),
            ..Layer1Params::default()
        };
        for img in degenerate_images() {
            for denoise in [
                DenoiseParams::Median { radius: 3 },
                DenoiseParams::NonLocalMeans {
                    h: 10.0,
                    patch_radius: 2,
                    search_radius: 4,
                },
            ] {
                all_steps.denoise = Some(denoise);
                match run_pipeline(&img, &all_steps) {
                    Ok(out) => assert_eq!(out.image.dimensions(), img.dimensions()),
                    Err(e) => assert!(matches!(e, ClassicalError::EmptyImage { .. })),
                }
            }
        }
    }

    /// Prints the step timings of the default pipeline on a full A4 page at
    /// 150 dpi. Run with
    /// `cargo test --release -- --ignored --nocapture --test-threads 1`.
    #[test]
    #[ignore = "timing check, meaningful only in release builds"]
    fn default_pipeline_full_page_timing() {
        let input = add_noise(&rotate(&text_page(1240, 1754), 2.0), 10.0, 23);
        let out = run_pipeline(&input, &Layer1Params::default()).expect("valid params");
        for step in &out.steps {
            eprintln!("{:>12}: {:8.1} ms", step.name, step.millis);
        }
        assert_eq!(out.image.dimensions(), input.dimensions());
    }
}
