//! Degradation families and the pipelines that compose them.
//!
//! Every family is a small function `fn(&mut RgbImage, &Params, &mut rng)`
//! with a `Params::sample(rng, w, h)` that draws its parameters; the
//! pipeline records the sampled parameters so each degradation is
//! reproducible and inspectable. No family moves pixels geometrically:
//! clean and degraded images stay aligned.

mod blur;
mod ink;
mod jpeg;
mod light;
mod noise;
mod paper;
mod presets;
mod print;
mod scan;
mod util;
mod wide;

use std::str::FromStr;

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::SynthError;
pub(crate) use presets::preset_list;
pub use presets::{PRESET_ALIASES, PresetInfo, canonical_preset, presets};

/// A kind of degradation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is described by `Family::description`
pub enum Family {
    GaussianNoise,
    PoissonNoise,
    SpeckleNoise,
    SaltPepper,
    GaussianBlur,
    MotionBlur,
    DefocusBlur,
    LowResolution,
    Jpeg,
    UnevenIllumination,
    Shadow,
    ContrastGamma,
    FoldCrease,
    PaperTexture,
    Stains,
    CoffeeRing,
    Watermark,
    InkBleed,
    BleedThrough,
    FadedInk,
    BrokenStrokes,
    ScannerLines,
    Halftone,
    Photocopy,
    InkColourSwap,
    ColouredPaper,
    LowInkLines,
    HollowStrokes,
    Dithering,
    DirtyDrum,
    BadPhotocopy,
    LowLightNoise,
    TexturedStains,
}

impl Family {
    /// Every family, in a stable order.
    pub const ALL: &'static [Family] = &[
        Family::GaussianNoise,
        Family::PoissonNoise,
        Family::SpeckleNoise,
        Family::SaltPepper,
        Family::GaussianBlur,
        Family::MotionBlur,
        Family::DefocusBlur,
        Family::LowResolution,
        Family::Jpeg,
        Family::UnevenIllumination,
        Family::Shadow,
        Family::ContrastGamma,
        Family::FoldCrease,
        Family::PaperTexture,
        Family::Stains,
        Family::CoffeeRing,
        Family::Watermark,
        Family::InkBleed,
        Family::BleedThrough,
        Family::FadedInk,
        Family::BrokenStrokes,
        Family::ScannerLines,
        Family::Halftone,
        Family::Photocopy,
        Family::InkColourSwap,
        Family::ColouredPaper,
        Family::LowInkLines,
        Family::HollowStrokes,
        Family::Dithering,
        Family::DirtyDrum,
        Family::BadPhotocopy,
        Family::LowLightNoise,
        Family::TexturedStains,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Family::GaussianNoise => "gaussian_noise",
            Family::PoissonNoise => "poisson_noise",
            Family::SpeckleNoise => "speckle_noise",
            Family::SaltPepper => "salt_pepper",
            Family::GaussianBlur => "gaussian_blur",
            Family::MotionBlur => "motion_blur",
            Family::DefocusBlur => "defocus_blur",
            Family::LowResolution => "low_resolution",
            Family::Jpeg => "jpeg",
            Family::UnevenIllumination => "uneven_illumination",
            Family::Shadow => "shadow",
            Family::ContrastGamma => "contrast_gamma",
            Family::FoldCrease => "fold_crease",
            Family::PaperTexture => "paper_texture",
            Family::Stains => "stains",
            Family::CoffeeRing => "coffee_ring",
            Family::Watermark => "watermark",
            Family::InkBleed => "ink_bleed",
            Family::BleedThrough => "bleed_through",
            Family::FadedInk => "faded_ink",
            Family::BrokenStrokes => "broken_strokes",
            Family::ScannerLines => "scanner_lines",
            Family::Halftone => "halftone",
            Family::Photocopy => "photocopy",
            Family::InkColourSwap => "ink_colour_swap",
            Family::ColouredPaper => "coloured_paper",
            Family::LowInkLines => "low_ink_lines",
            Family::HollowStrokes => "hollow_strokes",
            Family::Dithering => "dithering",
            Family::DirtyDrum => "dirty_drum",
            Family::BadPhotocopy => "bad_photocopy",
            Family::LowLightNoise => "low_light_noise",
            Family::TexturedStains => "textured_stains",
        }
    }

    /// A one-line description of what the family simulates.
    pub fn description(self) -> &'static str {
        match self {
            Family::GaussianNoise => "additive Gaussian sensor noise, grey or per channel",
            Family::PoissonNoise => "signal-dependent photon shot noise",
            Family::SpeckleNoise => "multiplicative speckle noise",
            Family::SaltPepper => "isolated pure black and white pixels",
            Family::GaussianBlur => "isotropic Gaussian blur of a slightly soft scan",
            Family::MotionBlur => "linear motion blur from a moving camera or page",
            Family::DefocusBlur => "disc-shaped out-of-focus blur",
            Family::LowResolution => "downsampled then upscaled, losing fine detail",
            Family::Jpeg => {
                "JPEG compression at a low quality: 4:2:0 chroma, quantised 8x8 DCT blocks"
            }
            Family::UnevenIllumination => "low-frequency brightness gradient and blotches",
            Family::Shadow => "soft shadow falling across one edge of the page",
            Family::ContrastGamma => "global contrast, gamma and brightness change",
            Family::FoldCrease => "dark fold line with a highlight beside it",
            Family::PaperTexture => "aged paper tint, mottling and fine grain",
            Family::Stains => "irregular translucent blotches with darker rims",
            Family::CoffeeRing => "ring-shaped stain left by a cup",
            Family::Watermark => "semi-transparent diagonal stamp text",
            Family::InkBleed => "ink spreading into the paper around strokes",
            Family::BleedThrough => "faint mirrored ghost of the reverse side",
            Family::FadedInk => "low or faded ink that lightens strokes unevenly",
            Family::BrokenStrokes => "small random gaps breaking character strokes",
            Family::ScannerLines => "streaks from dirt on the scanner glass or sensor",
            Family::Halftone => "binary halftone or dithered reproduction",
            Family::Photocopy => "photocopier darkening, toner specks and rough edges",
            Family::InkColourSwap => "parts of the text printed in another, often pale, ink colour",
            Family::ColouredPaper => "coloured or tinted paper stock that the ink darkens with",
            Family::LowInkLines => "thin lines where the print head or toner ran dry",
            Family::HollowStrokes => {
                "worn letterpress or starved ink: thick strokes print as outlines"
            }
            Family::Dithering => {
                "few colour levels per channel, ordered or error-diffusion dithered"
            }
            Family::DirtyDrum => "bands of toner specks from a dirty copier drum or roller",
            Family::BadPhotocopy => "large blotches of dark grainy toner from a bad photocopy",
            Family::LowLightNoise => {
                "a dim exposure pushed up: darker page, glare-lifted blacks and strong colour noise"
            }
            Family::TexturedStains => {
                "stains soaked into the fibres: mottled, grainy bodies with tide lines"
            }
        }
    }

    /// Samples this family's parameters, applies it and returns the parameters,
    /// on CPUs with AVX2 through the wider build of the same code ([`wide`]).
    fn apply(self, img: &mut RgbImage, rng: &mut ChaCha8Rng, scale: f64) -> serde_json::Value {
        match wide::apply(self, img, rng, scale) {
            Some(params) => params,
            None => self.apply_here(img, rng, scale),
        }
    }

    /// [`Family::apply`] in whatever build it is inlined into.
    #[inline(always)]
    fn apply_here(self, img: &mut RgbImage, rng: &mut ChaCha8Rng, scale: f64) -> serde_json::Value {
        let (w, h) = img.dimensions();
        match self {
            Family::GaussianNoise => run(
                scale,
                noise::GaussianNoise::sample(rng),
                img,
                rng,
                noise::gaussian_noise,
            ),
            Family::PoissonNoise => run(
                scale,
                noise::PoissonNoise::sample(rng),
                img,
                rng,
                noise::poisson_noise,
            ),
            Family::SpeckleNoise => run(
                scale,
                noise::SpeckleNoise::sample(rng),
                img,
                rng,
                noise::speckle_noise,
            ),
            Family::SaltPepper => run(
                scale,
                noise::SaltPepper::sample(rng),
                img,
                rng,
                noise::salt_pepper,
            ),
            Family::GaussianBlur => run(
                scale,
                blur::GaussianBlur::sample(rng),
                img,
                rng,
                blur::gaussian_blur,
            ),
            Family::MotionBlur => run(
                scale,
                blur::MotionBlur::sample(rng),
                img,
                rng,
                blur::motion_blur,
            ),
            Family::DefocusBlur => run(
                scale,
                blur::DefocusBlur::sample(rng),
                img,
                rng,
                blur::defocus_blur,
            ),
            Family::LowResolution => run(
                scale,
                blur::LowResolution::sample(rng),
                img,
                rng,
                blur::low_resolution,
            ),
            Family::Jpeg => run(scale, scan::Jpeg::sample(rng), img, rng, scan::jpeg),
            Family::UnevenIllumination => run(
                scale,
                light::UnevenIllumination::sample(rng, w, h),
                img,
                rng,
                light::uneven_illumination,
            ),
            Family::Shadow => run(scale, light::Shadow::sample(rng), img, rng, light::shadow),
            Family::ContrastGamma => run(
                scale,
                light::ContrastGamma::sample(rng),
                img,
                rng,
                light::contrast_gamma,
            ),
            Family::FoldCrease => run(
                scale,
                light::FoldCrease::sample(rng),
                img,
                rng,
                light::fold_crease,
            ),
            Family::PaperTexture => run(
                scale,
                paper::PaperTexture::sample(rng),
                img,
                rng,
                paper::paper_texture,
            ),
            Family::Stains => run(
                scale,
                paper::Stains::sample(rng, w, h),
                img,
                rng,
                paper::stains,
            ),
            Family::CoffeeRing => run(
                scale,
                paper::CoffeeRing::sample(rng, w, h),
                img,
                rng,
                paper::coffee_ring,
            ),
            Family::Watermark => run(
                scale,
                paper::Watermark::sample(rng),
                img,
                rng,
                paper::watermark,
            ),
            Family::InkBleed => run(scale, ink::InkBleed::sample(rng), img, rng, ink::ink_bleed),
            Family::BleedThrough => run(
                scale,
                ink::BleedThrough::sample(rng, h),
                img,
                rng,
                ink::bleed_through,
            ),
            Family::FadedInk => run(scale, ink::FadedInk::sample(rng), img, rng, ink::faded_ink),
            Family::BrokenStrokes => run(
                scale,
                ink::BrokenStrokes::sample(rng),
                img,
                rng,
                ink::broken_strokes,
            ),
            Family::ScannerLines => run(
                scale,
                scan::ScannerLines::sample(rng, w, h),
                img,
                rng,
                scan::scanner_lines,
            ),
            Family::Halftone => run(scale, scan::Halftone::sample(rng), img, rng, scan::halftone),
            Family::Photocopy => run(
                scale,
                scan::Photocopy::sample(rng),
                img,
                rng,
                scan::photocopy,
            ),
            Family::InkColourSwap => run(
                scale,
                print::InkColourSwap::sample(rng, w, h),
                img,
                rng,
                print::ink_colour_swap,
            ),
            Family::ColouredPaper => run(
                scale,
                print::ColouredPaper::sample(rng),
                img,
                rng,
                print::coloured_paper,
            ),
            Family::LowInkLines => run(
                scale,
                print::LowInkLines::sample(rng, h),
                img,
                rng,
                print::low_ink_lines,
            ),
            Family::HollowStrokes => run(
                scale,
                print::HollowStrokes::sample(rng),
                img,
                rng,
                print::hollow_strokes,
            ),
            Family::Dithering => run(
                scale,
                print::Dithering::sample(rng),
                img,
                rng,
                print::dithering,
            ),
            Family::DirtyDrum => run(
                scale,
                print::DirtyDrum::sample(rng),
                img,
                rng,
                print::dirty_drum,
            ),
            Family::BadPhotocopy => run(
                scale,
                print::BadPhotocopy::sample(rng, w, h),
                img,
                rng,
                print::bad_photocopy,
            ),
            Family::TexturedStains => run(
                scale,
                paper::TexturedStains::sample(rng, w, h),
                img,
                rng,
                paper::textured_stains,
            ),
            Family::LowLightNoise => run(
                scale,
                print::LowLightNoise::sample(rng),
                img,
                rng,
                print::low_light_noise,
            ),
        }
    }
}

/// Applies `f` with `params` and returns the parameters as JSON.
#[inline(always)]
fn run<P: Serialize + Scaled>(
    scale: f64,
    params: P,
    img: &mut RgbImage,
    rng: &mut ChaCha8Rng,
    f: fn(&mut RgbImage, &P, &mut ChaCha8Rng),
) -> serde_json::Value {
    let params = if scale == 1.0 {
        params
    } else {
        params.scaled(scale)
    };
    f(img, &params, rng);
    // Parameter structs hold only numbers, strings and bools, which always
    // serialise; Null would only hide a future non-serialisable field.
    serde_json::to_value(&params).unwrap_or_default()
}

/// Parameters whose pixel sizes (radii, widths, periods) grow with the
/// scan resolution. Parameters sampled as fractions of the page, levels or
/// probabilities stay as they are; per-pixel effects (sensor noise, JPEG
/// blocks, dithering) keep acting per pixel, as a finer scanner's do.
pub(crate) trait Scaled: Sized {
    /// The same degradation for a page `scale` times the reference dpi.
    fn scaled(self, _scale: f64) -> Self {
        self
    }
}

/// Scales a pixel count, never below one pixel.
pub(crate) fn scale_px(v: u32, scale: f64) -> u32 {
    ((f64::from(v) * scale).round() as u32).max(1)
}

/// Comma-separated family names, for error messages.
pub(crate) fn family_list() -> String {
    Family::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Family {
    type Err = SynthError;

    /// Parses a family name; case-insensitive, `-` accepted for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Family::ALL
            .iter()
            .copied()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| SynthError::UnknownFamily(s.to_owned()))
    }
}

/// One pipeline step: a family applied with the given probability.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// The degradation to apply.
    pub family: Family,
    /// Chance in `[0, 1]` that the step runs for a given seed.
    pub probability: f32,
}

/// An ordered list of probabilistic degradation steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pipeline {
    /// Steps in application order.
    pub steps: Vec<Step>,
}

/// A family that was applied, with the parameters actually sampled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Applied {
    /// Which degradation ran.
    pub family: Family,
    /// Its sampled parameters (family-specific JSON object).
    pub params: serde_json::Value,
}

/// A degraded image and what was done to it, in order.
pub struct Degraded {
    /// The degraded image, same dimensions as the input.
    pub image: RgbImage,
    /// The steps that ran.
    pub applied: Vec<Applied>,
}

impl Pipeline {
    /// A pipeline from explicit steps; rejects empty pipelines and
    /// probabilities outside `[0, 1]`.
    pub fn new(steps: Vec<Step>) -> Result<Pipeline, SynthError> {
        if steps.is_empty() {
            return Err(SynthError::InvalidPipeline(
                "a pipeline needs at least one step".into(),
            ));
        }
        if let Some(bad) = steps.iter().find(|s| !(0.0..=1.0).contains(&s.probability)) {
            return Err(SynthError::InvalidPipeline(format!(
                "probability {} of step `{}` is outside [0, 1]",
                bad.probability,
                bad.family.name()
            )));
        }
        Ok(Pipeline { steps })
    }

    /// A pipeline that always applies `family`.
    pub fn single(family: Family) -> Pipeline {
        Pipeline {
            steps: vec![Step {
                family,
                probability: 1.0,
            }],
        }
    }

    /// Degrades a copy of `img`. Step `i` draws everything from its own
    /// ChaCha8 stream `i` of `seed`, so results are identical bytes for the
    /// same inputs and independent of threads or of earlier steps' draws.
    pub fn apply(&self, img: &RgbImage, seed: u64) -> Degraded {
        self.apply_scaled(img, seed, 1.0)
    }

    /// Like [`Pipeline::apply`] for a page scanned at `scale` times the
    /// reference resolution: every pixel-sized parameter is multiplied by
    /// `scale` (and recorded that way), so the same seed degrades a 300 dpi
    /// page like its 75 dpi twin, only finer. The random draws are the
    /// same at every scale.
    pub fn apply_scaled(&self, img: &RgbImage, seed: u64, scale: f32) -> Degraded {
        let scale = if scale.is_finite() && scale > 0.0 {
            f64::from(scale)
        } else {
            1.0
        };
        let mut image = img.clone();
        let mut applied = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            let gate: f32 = rng.random();
            if gate >= step.probability {
                continue;
            }
            let params = step.family.apply(&mut image, &mut rng, scale);
            applied.push(Applied {
                family: step.family,
                params,
            });
        }
        Degraded { image, applied }
    }
}

#[cfg(test)]
mod tests {
    use super::util::fixtures::*;
    use super::*;
    use crate::{FontLibrary, render_page};

    #[test]
    fn at_least_twenty_distinct_families() {
        assert!(Family::ALL.len() >= 20);
        let names: std::collections::HashSet<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Family::ALL.len());
        for f in Family::ALL {
            assert_eq!(f.name().parse::<Family>().expect("own name parses"), *f);
            let json = serde_json::to_string(f).expect("enums serialise");
            assert_eq!(json, format!("\"{}\"", f.name()), "serde and name() agree");
            assert!(!f.description().is_empty());
        }
    }

    #[test]
    fn every_family_changes_a_page_and_keeps_alignment() {
        let fonts = FontLibrary::system().expect("the build machines have DejaVu installed");
        let page = render_page(&fonts, 240, 300, 11).expect("valid size").image;
        for &family in Family::ALL {
            let p = Pipeline::single(family);
            let a = p.apply(&page, 5);
            assert_eq!(a.image.dimensions(), page.dimensions(), "{family:?}");
            assert_ne!(a.image, page, "{family:?} left the page unchanged");
            assert_eq!(a.applied.len(), 1);
            assert_eq!(a.applied[0].family, family);
            assert!(
                a.applied[0].params.is_object(),
                "{family:?} params: {}",
                a.applied[0].params
            );
            let again = p.apply(&page, 5);
            assert_eq!(a.image, again.image, "{family:?} is not deterministic");
            assert_eq!(a.applied, again.applied);
            let other = p.apply(&page, 6);
            assert_ne!(a.image, other.image, "{family:?} ignores the seed");
        }
    }

    #[test]
    fn scaled_pipelines_scale_pixel_sizes_and_keep_the_draws() {
        let page = text_like(96, 96);
        let param = |family, scale: f32, key: &str| {
            let d = Pipeline::single(family).apply_scaled(&page, 9, scale);
            d.applied[0].params[key]
                .as_f64()
                .expect("numeric parameter")
        };
        for (family, key) in [
            (Family::GaussianBlur, "sigma"),
            (Family::DefocusBlur, "radius"),
            (Family::MotionBlur, "length"),
            (Family::FoldCrease, "width"),
            (Family::InkBleed, "softness"),
        ] {
            let (one, two) = (param(family, 1.0, key), param(family, 2.0, key));
            assert!(
                (two - 2.0 * one).abs() < 1e-9,
                "{family:?}.{key}: {one} -> {two}"
            );
        }
        // A finer scan is downsampled by more to reach the same coarse image.
        let (one, four) = (
            param(Family::LowResolution, 1.0, "scale"),
            param(Family::LowResolution, 4.0, "scale"),
        );
        assert!(
            (four - (one / 4.0).max(0.02)).abs() < 1e-9,
            "{one} -> {four}"
        );
        // Integer sizes scale and stay at least one pixel.
        let (one, three) = (
            param(Family::HollowStrokes, 1.0, "radius"),
            param(Family::HollowStrokes, 3.0, "radius"),
        );
        assert_eq!(three, (3.0 * one).round().max(1.0));
        // Page-relative sizes are not scaled twice.
        for (family, key) in [
            (Family::BadPhotocopy, "scale"),
            (Family::BleedThrough, "offset_y"),
        ] {
            assert_eq!(
                param(family, 1.0, key),
                param(family, 4.0, key),
                "{family:?}.{key}"
            );
        }
        // Every family survives a 300 dpi scale (radii 4x the sampled ones).
        for &family in Family::ALL {
            for seed in 0..6 {
                let page = text_like(64, 48);
                let out = Pipeline::single(family).apply_scaled(&page, seed, 4.0);
                assert_eq!(out.image.dimensions(), (64, 48), "{family:?}");
            }
        }
        // Per-pixel noise does not change with the resolution.
        let a = Pipeline::single(Family::GaussianNoise).apply_scaled(&page, 9, 1.0);
        let b = Pipeline::single(Family::GaussianNoise).apply_scaled(&page, 9, 4.0);
        assert_eq!(a.applied, b.applied);
        assert_eq!(a.image, b.image);
        // Scale 1 is the plain pipeline; nonsense scales fall back to it.
        let mixed = Pipeline::preset("mixed").expect("preset");
        let plain = mixed.apply(&page, 4);
        for s in [1.0, 0.0, -2.0, f32::NAN] {
            assert_eq!(
                mixed.apply_scaled(&page, 4, s).image,
                plain.image,
                "scale {s}"
            );
        }
    }

    #[test]
    fn families_survive_tiny_images() {
        for &family in Family::ALL {
            for (w, h) in [(1, 1), (2, 5), (7, 3)] {
                let img = text_like(w, h);
                let out = Pipeline::single(family).apply(&img, 1).image;
                assert_eq!(out.dimensions(), (w, h), "{family:?}");
            }
        }
    }

    #[test]
    fn unknown_family_lists_valid_names() {
        let err = "sepia_tone".parse::<Family>().unwrap_err();
        assert!(matches!(&err, SynthError::UnknownFamily(n) if n == "sepia_tone"));
        let msg = err.to_string();
        assert!(
            msg.contains("gaussian_noise") && msg.contains("photocopy"),
            "{msg}"
        );
        assert_eq!(
            "Motion-Blur".parse::<Family>().expect("lenient parse"),
            Family::MotionBlur
        );
    }

    #[test]
    fn pipeline_validation() {
        let bad = Pipeline::new(vec![Step {
            family: Family::Jpeg,
            probability: 1.5,
        }]);
        assert!(matches!(bad, Err(SynthError::InvalidPipeline(_))));
        let neg = Pipeline::new(vec![Step {
            family: Family::Jpeg,
            probability: -0.1,
        }]);
        assert!(matches!(neg, Err(SynthError::InvalidPipeline(_))));
        assert!(matches!(
            Pipeline::new(vec![]),
            Err(SynthError::InvalidPipeline(_))
        ));
        let ok = Pipeline::new(vec![Step {
            family: Family::Jpeg,
            probability: 0.0,
        }])
        .expect("valid");
        let img = text_like(20, 20);
        let out = ok.apply(&img, 3);
        assert!(out.applied.is_empty());
        assert_eq!(out.image, img);
    }

    #[test]
    fn pipeline_round_trips_through_json() {
        let p = Pipeline::preset("heavy").expect("heavy is a preset");
        let json = serde_json::to_string(&p).expect("serialises");
        let back: Pipeline = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back.steps.len(), p.steps.len());
        assert!(json.contains("\"paper_texture\""));
    }

    #[test]
    fn steps_draw_from_independent_streams() {
        // Turning an earlier step off must not change what a later step samples.
        let img = text_like(60, 40);
        let on = Pipeline::new(vec![
            Step {
                family: Family::GaussianNoise,
                probability: 1.0,
            },
            Step {
                family: Family::Jpeg,
                probability: 1.0,
            },
        ])
        .expect("valid");
        let off = Pipeline::new(vec![
            Step {
                family: Family::GaussianNoise,
                probability: 0.0,
            },
            Step {
                family: Family::Jpeg,
                probability: 1.0,
            },
        ])
        .expect("valid");
        let a = on.apply(&img, 9);
        let b = off.apply(&img, 9);
        assert_eq!(a.applied[1].params, b.applied[0].params);
    }
}
