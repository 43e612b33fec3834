//! The restoration pipeline: Layer 1 (classical), Layer 2 (Restormer) or
//! Layer 1 then Layer 2, on one image, on the calling (blocking) thread.

use crate::error::TrainerError;
use std::str::FromStr;

use image::RgbImage;
use restoreflow_classical::{Layer1Params, run_pipeline_rgb};
use restoreflow_training::{RgbF32, TileConfig, restore_tiled};

use super::cache::Layer2Model;

/// Which layers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// The Restormer only.
    Layer2,
    /// The classical pipeline only.
    Layer1,
    /// The classical pipeline, then the Restormer on its output.
    Layer1ThenLayer2,
}

impl Pipeline {
    /// Accepted spellings, for messages.
    pub const NAMES: [&'static str; 3] = ["layer2", "layer1", "layer1+layer2"];

    /// Whether Layer 1 runs.
    pub fn uses_layer1(self) -> bool {
        matches!(self, Self::Layer1 | Self::Layer1ThenLayer2)
    }

    /// Whether Layer 2 runs.
    pub fn uses_layer2(self) -> bool {
        matches!(self, Self::Layer2 | Self::Layer1ThenLayer2)
    }

    /// The spelling of this pipeline.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Layer2 => "layer2",
            Self::Layer1 => "layer1",
            Self::Layer1ThenLayer2 => "layer1+layer2",
        }
    }
}

impl FromStr for Pipeline {
    type Err = TrainerError;
    fn from_str(s: &str) -> Result<Self, TrainerError> {
        match s.trim() {
            "" | "layer2" => Ok(Self::Layer2),
            "layer1" => Ok(Self::Layer1),
            "layer1+layer2" | "layer1 layer2" => Ok(Self::Layer1ThenLayer2),
            other => Err(TrainerError::invalid(format!(
                "pipeline must be one of {}, got {other:?}",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

/// A restored image.
pub struct Restored {
    /// The output.
    pub image: RgbImage,
    /// Skew Layer 1 estimated and removed, in degrees.
    pub skew_angle_deg: Option<f32>,
}

/// Runs `pipeline` on `input`. Layer 2 runs tiled, so memory stays bounded by
/// the tile size whatever the page size.
pub fn restore(
    input: &RgbImage,
    pipeline: Pipeline,
    layer1: Option<&Layer1Params>,
    layer2: Option<&Layer2Model>,
) -> Result<Restored, TrainerError> {
    let mut image = input.clone();
    let mut skew = None;
    if pipeline.uses_layer1() {
        let params =
            layer1.ok_or_else(|| TrainerError::internal("layer 1 parameters are missing"))?;
        // Layer 1 decides on luma and keeps the page's colours (grey only
        // when it binarises), so what it restores is what evaluations score.
        let out = run_pipeline_rgb(&image, params)
            .map_err(|e| TrainerError::internal(format!("layer 1 failed: {e}")))?;
        skew = out.skew_angle_deg;
        image = out.image;
    }
    if pipeline.uses_layer2() {
        let model = layer2.ok_or_else(|| TrainerError::internal("layer 2 model is missing"))?;
        image = run_layer2(model, &image)?;
    }
    Ok(Restored {
        image,
        skew_angle_deg: skew,
    })
}

/// The Restormer on a whole page, tile by tile.
pub fn run_layer2(model: &Layer2Model, image: &RgbImage) -> Result<RgbImage, TrainerError> {
    let input = RgbF32::from_rgb8(image);
    let out = restore_tiled(
        &model.net,
        &input,
        &TileConfig::for_device(&model.device),
        &model.device,
    )
    .map_err(|e| TrainerError::internal(format!("layer 2 failed: {e}")))?;
    Ok(out.clamp01().to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_parse_and_reject_unknown_names() {
        assert_eq!("".parse::<Pipeline>().unwrap(), Pipeline::Layer2);
        assert_eq!("layer1".parse::<Pipeline>().unwrap(), Pipeline::Layer1);
        assert_eq!(
            "layer1+layer2".parse::<Pipeline>().unwrap(),
            Pipeline::Layer1ThenLayer2
        );
        let err = "layer3".parse::<Pipeline>().unwrap_err();
        assert!(err.message.contains("layer1+layer2"), "{err}");
        assert_eq!(err.code, restoreflow_proto::ErrorCode::InvalidArgument);
    }

    #[test]
    fn layer1_alone_needs_no_model_and_keeps_the_size() {
        let img = RgbImage::from_fn(64, 48, |x, y| {
            if (x / 8 + y / 8) % 2 == 0 {
                image::Rgb([30, 30, 30])
            } else {
                image::Rgb([230, 230, 230])
            }
        });
        let out = restore(&img, Pipeline::Layer1, Some(&Layer1Params::default()), None).unwrap();
        assert_eq!(out.image.dimensions(), (64, 48));
        // Colour survives Layer 1: red marks on white paper stay red.
        let red = RgbImage::from_fn(64, 48, |x, y| {
            if x % 16 < 4 && y % 16 < 4 {
                image::Rgb([200, 20, 20])
            } else {
                image::Rgb([250, 250, 250])
            }
        });
        let out = restore(&red, Pipeline::Layer1, Some(&Layer1Params::default()), None).unwrap();
        let p = out.image.get_pixel(17, 17);
        assert!(p[0] > p[1] + 100 && p[0] > p[2] + 100, "{p:?}");
        assert!(restore(&img, Pipeline::Layer2, None, None).is_err());
    }
}
