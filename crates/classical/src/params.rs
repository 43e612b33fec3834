//! Layer 1 parameters: the versioned "model" that the registry stores as JSON.
//!
//! Every step is optional (`None` skips it) so that one parameter set can
//! describe anything from a no-op to the full pipeline. `validate` is the
//! single gate that keeps nonsense values away from the pixel code.

use serde::{Deserialize, Serialize};

use crate::ClassicalError;

/// Background estimation and flattening (see [`crate::normalize_illumination`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IlluminationParams {
    /// Side in pixels of the neighbourhood used to estimate the paper
    /// background. It must be larger than the darkest features (characters,
    /// rules) so they are not mistaken for background.
    pub window: u32,
}

/// Contrast-limited adaptive histogram equalisation (see [`crate::clahe`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClaheParams {
    /// Number of tiles across the image.
    pub tiles_x: u32,
    /// Number of tiles down the image.
    pub tiles_y: u32,
    /// Histogram clip limit as a multiple of the mean bin height; larger
    /// values allow stronger equalisation (1 to 4 is the useful range).
    pub clip_limit: f32,
}

/// Noise removal method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum DenoiseParams {
    /// Square median filter of side `2 * radius + 1`.
    Median {
        /// Filter radius in pixels.
        radius: u32,
    },
    /// Non-local means (see [`crate::nl_means_denoise`]).
    NonLocalMeans {
        /// Filter strength in grey levels; larger smooths more.
        h: f32,
        /// Radius of the compared patches.
        patch_radius: u32,
        /// Radius of the window searched for similar patches.
        search_radius: u32,
    },
}

/// Skew estimation and correction (see [`crate::estimate_skew`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeskewParams {
    /// Largest skew, in degrees either way, that is searched for.
    pub max_angle_deg: f32,
    /// Resolution of the final search step in degrees.
    pub step_deg: f32,
}

/// Final black-and-white conversion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Binarization {
    /// One global threshold chosen by Otsu's method.
    Otsu,
    /// Sauvola's local threshold `mean * (1 + k * (std / r - 1))`.
    Sauvola {
        /// Side of the local window in pixels.
        window: u32,
        /// Sensitivity to local contrast, typically 0.2 to 0.5.
        k: f32,
        /// Dynamic range of the standard deviation, 128 for 8-bit images.
        r: f32,
    },
}

/// The full Layer 1 configuration. Steps run in a fixed order:
/// illumination, denoise, CLAHE, deskew, binarize (denoising before CLAHE so
/// that the contrast stretch does not amplify noise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer1Params {
    /// Flatten uneven lighting; `None` skips the step.
    pub illumination: Option<IlluminationParams>,
    /// Local contrast enhancement; `None` skips the step.
    pub clahe: Option<ClaheParams>,
    /// Noise removal; `None` skips the step.
    pub denoise: Option<DenoiseParams>,
    /// Skew estimation and correction; `None` skips the step.
    pub deskew: Option<DeskewParams>,
    /// Black-and-white output; `None` keeps greyscale.
    pub binarize: Option<Binarization>,
}

impl Layer1Params {
    /// The default cleaning pipeline: flatten the background, mild CLAHE, a
    /// 3x3 median, deskew within ±10° to 0.1°, and greyscale output.
    pub fn default_pipeline() -> Self {
        Self {
            // 64 px is about two text lines at 150 dpi: wide enough to see
            // past any glyph, narrow enough to follow shading and folds.
            illumination: Some(IlluminationParams { window: 64 }),
            // A low clip keeps the mapping close to linear on clean paper.
            clahe: Some(ClaheParams {
                tiles_x: 8,
                tiles_y: 8,
                clip_limit: 1.5,
            }),
            denoise: Some(DenoiseParams::Median { radius: 1 }),
            deskew: Some(DeskewParams {
                max_angle_deg: 10.0,
                step_deg: 0.1,
            }),
            binarize: None,
        }
    }

    /// A pipeline that does nothing; the output equals the input.
    pub fn passthrough() -> Self {
        Self {
            illumination: None,
            clahe: None,
            denoise: None,
            deskew: None,
            binarize: None,
        }
    }

    /// Checks every enabled step for values that make no sense (zero
    /// windows, non-positive clip limits, out-of-range angles, NaN).
    pub fn validate(&self) -> Result<(), ClassicalError> {
        if let Some(p) = &self.illumination {
            check_range("illumination.window", p.window, 3, 4096)?;
        }
        if let Some(p) = &self.clahe {
            check_range("clahe.tiles_x", p.tiles_x, 1, 64)?;
            check_range("clahe.tiles_y", p.tiles_y, 1, 64)?;
            check_positive("clahe.clip_limit", p.clip_limit)?;
        }
        match &self.denoise {
            None => {}
            Some(DenoiseParams::Median { radius }) => {
                check_range("denoise.radius", *radius, 1, 32)?;
            }
            Some(DenoiseParams::NonLocalMeans {
                h,
                patch_radius,
                search_radius,
            }) => {
                check_positive("denoise.h", *h)?;
                check_range("denoise.patch_radius", *patch_radius, 0, 5)?;
                check_range("denoise.search_radius", *search_radius, 1, 20)?;
            }
        }
        if let Some(p) = &self.deskew {
            check_positive("deskew.max_angle_deg", p.max_angle_deg)?;
            if p.max_angle_deg > 45.0 {
                return Err(ClassicalError::invalid(
                    "deskew.max_angle_deg",
                    format!("must be at most 45, got {}", show(p.max_angle_deg)),
                ));
            }
            check_positive("deskew.step_deg", p.step_deg)?;
            // The floor bounds the number of angles tried per search level.
            if p.step_deg < 0.01 || p.step_deg > p.max_angle_deg {
                return Err(ClassicalError::invalid(
                    "deskew.step_deg",
                    format!(
                        "must be between 0.01 and max_angle_deg ({}), got {}",
                        show(p.max_angle_deg),
                        show(p.step_deg)
                    ),
                ));
            }
        }
        if let Some(Binarization::Sauvola { window, k, r }) = &self.binarize {
            check_range("binarize.window", *window, 3, 1001)?;
            if !k.is_finite() || !(0.0..=1.0).contains(k) {
                return Err(ClassicalError::invalid(
                    "binarize.k",
                    format!("must be a number between 0 and 1, got {}", show(*k)),
                ));
            }
            check_positive("binarize.r", *r)?;
        }
        Ok(())
    }
}

impl Default for Layer1Params {
    fn default() -> Self {
        Self::default_pipeline()
    }
}

fn check_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), ClassicalError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ClassicalError::invalid(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ))
    }
}

fn check_positive(field: &'static str, value: f32) -> Result<(), ClassicalError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ClassicalError::invalid(
            field,
            format!(
                "must be a finite number greater than 0, got {}",
                show(value)
            ),
        ))
    }
}

/// Formats a number for an error message; Rust prints NaN and inf in mixed
/// case, while error messages stay lowercase.
fn show(value: f32) -> String {
    value.to_string().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_default_pipeline() {
        assert_eq!(Layer1Params::default(), Layer1Params::default_pipeline());
        assert!(Layer1Params::default().validate().is_ok());
        assert!(Layer1Params::passthrough().validate().is_ok());
    }

    #[test]
    fn json_round_trip() {
        let mut params = Layer1Params::default_pipeline();
        params.denoise = Some(DenoiseParams::NonLocalMeans {
            h: 10.0,
            patch_radius: 1,
            search_radius: 5,
        });
        params.binarize = Some(Binarization::Sauvola {
            window: 25,
            k: 0.2,
            r: 128.0,
        });
        let json = serde_json::to_string(&params).expect("params serialise");
        let back: Layer1Params = serde_json::from_str(&json).expect("params deserialise");
        assert_eq!(back, params);

        let otsu = Layer1Params {
            binarize: Some(Binarization::Otsu),
            ..Layer1Params::passthrough()
        };
        let json = serde_json::to_string(&otsu).expect("params serialise");
        assert!(json.contains(r#""method":"otsu""#), "{json}");
        assert_eq!(serde_json::from_str::<Layer1Params>(&json).ok(), Some(otsu));
    }

    #[test]
    fn missing_steps_deserialise_as_skipped() {
        let params: Layer1Params =
            serde_json::from_str(r#"{"denoise":{"method":"median","radius":2}}"#)
                .expect("partial params deserialise");
        assert_eq!(params.denoise, Some(DenoiseParams::Median { radius: 2 }));
        assert_eq!(params.illumination, None);
        assert_eq!(params.deskew, None);
    }

    fn rejected(params: Layer1Params, field: &str) {
        match params.validate() {
            Err(ClassicalError::InvalidParam { field: f, reason }) => {
                assert_eq!(f, field);
                assert_eq!(reason, reason.to_lowercase());
            }
            other => panic!("expected {field} to be rejected, got {other:?}"),
        }
    }

    #[test]
    fn validate_rejects_nonsense() {
        let base = Layer1Params::default_pipeline;
        rejected(
            Layer1Params {
                illumination: Some(IlluminationParams { window: 0 }),
                ..base()
            },
            "illumination.window",
        );
        for clip in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            rejected(
                Layer1Params {
                    clahe: Some(ClaheParams {
                        tiles_x: 8,
                        tiles_y: 8,
                        clip_limit: clip,
                    }),
                    ..base()
                },
                "clahe.clip_limit",
            );
        }
        rejected(
            Layer1Params {
                clahe: Some(ClaheParams {
                    tiles_x: 0,
                    tiles_y: 8,
                    clip_limit: 2.0,
                }),
                ..base()
            },
            "clahe.tiles_x",
        );
        rejected(
            Layer1Params {
                denoise: Some(DenoiseParams::Median { radius: 0 }),
                ..base()
            },
            "denoise.radius",
        );
        rejected(
            Layer1Params {
                denoise: Some(DenoiseParams::NonLocalMeans {
                    h: f32::NAN,
                    patch_radius: 1,
                    search_radius: 5,
                }),
                ..base()
            },
            "denoise.h",
        );
        for (max, step, field) in [
            (90.0, 0.1, "deskew.max_angle_deg"),
            (f32::NAN, 0.1, "deskew.max_angle_deg"),
            (10.0, 0.0, "deskew.step_deg"),
            (10.0, 20.0, "deskew.step_deg"),
        ] {
            rejected(
                Layer1Params {
                    deskew: Some(DeskewParams {
                        max_angle_deg: max,
                        step_deg: step,
                    }),
                    ..base()
                },
                field,
            );
        }
        rejected(
            Layer1Params {
                binarize: Some(Binarization::Sauvola {
                    window: 0,
                    k: 0.2,
                    r: 128.0,
                }),
                ..base()
            },
            "binarize.window",
        );
        rejected(
            Layer1Params {
                binarize: Some(Binarization::Sauvola {
                    window: 25,
                    k: f32::NAN,
                    r: 128.0,
                }),
                ..base()
            },
            "binarize.k",
        );
    }
}
