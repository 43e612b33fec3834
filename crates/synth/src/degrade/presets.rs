//! Named pipelines for common acquisition scenarios.

use serde::Serialize;

use super::{Family, Pipeline, Step};
use crate::SynthError;

/// A named preset with its description and pipeline.
#[derive(Clone, Debug, Serialize)]
pub struct PresetInfo {
    /// Preset name accepted by [`Pipeline::preset`].
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The steps it runs.
    pub pipeline: Pipeline,
    /// Other names accepted for it (see [`canonical_preset`]).
    pub aliases: Vec<&'static str>,
}

/// Names the system this one replaced used, accepted where they name one
/// preset unambiguously: `document-clean` (a clean document scan) is
/// `light`.
pub const PRESET_ALIASES: &[(&str, &str)] = &[("document-clean", "light")];

/// The preset a name or alias means: case-insensitive, `-` and `_` alike.
pub fn canonical_preset(name: &str) -> Option<&'static str> {
    let norm = |s: &str| s.trim().to_ascii_lowercase().replace('-', "_");
    let wanted = norm(name);
    PRESETS
        .iter()
        .map(|p| p.0)
        .find(|p| norm(p) == wanted)
        .or_else(|| {
            PRESET_ALIASES
                .iter()
                .find(|(alias, _)| norm(alias) == wanted)
                .map(|(_, preset)| *preset)
        })
}

use Family::*;

/// A preset's name, description and `(family, probability)` steps.
type Preset = (&'static str, &'static str, &'static [(Family, f32)]);

/// Every preset. Steps are ordered the way
/// the defects arise physically: printing and ink, paper ageing, then
/// lighting, optics, sensor noise and finally compression.
const PRESETS: &[Preset] = &[
    (
        "light",
        "a clean flatbed scan: faint paper tone, slight softness, mild noise and compression",
        &[
            (PaperTexture, 0.7),
            (FadedInk, 0.15),
            (GaussianBlur, 0.35),
            (ContrastGamma, 0.4),
            (GaussianNoise, 0.6),
            (Jpeg, 0.4),
        ],
    ),
    (
        "scan",
        "an office scanner: paper texture, bleed-through, streaks, uneven lamp, noise and jpeg",
        &[
            (BleedThrough, 0.3),
            (PaperTexture, 1.0),
            (FoldCrease, 0.15),
            (UnevenIllumination, 0.5),
            (GaussianBlur, 0.5),
            (ScannerLines, 0.4),
            (ContrastGamma, 0.5),
            (GaussianNoise, 0.7),
            (SaltPepper, 0.2),
            (Jpeg, 0.6),
        ],
    ),
    (
        "photo",
        "a phone photo of a page: shading and shadows, focus or shake blur, shot noise, jpeg",
        &[
            (PaperTexture, 0.6),
            (UnevenIllumination, 1.0),
            (Shadow, 0.6),
            (DefocusBlur, 0.45),
            (MotionBlur, 0.35),
            (ContrastGamma, 0.6),
            (PoissonNoise, 0.8),
            (LowResolution, 0.25),
            (Jpeg, 0.9),
        ],
    ),
    (
        "heavy",
        "an old, damaged archive copy: stains, bleeding and broken ink, folds, copier and scan artefacts",
        &[
            (FadedInk, 0.4),
            (BrokenStrokes, 0.5),
            (InkBleed, 0.6),
            (BleedThrough, 0.6),
            (PaperTexture, 1.0),
            (Stains, 0.7),
            (CoffeeRing, 0.35),
            (FoldCrease, 0.5),
            (Photocopy, 0.35),
            (UnevenIllumination, 0.7),
            (GaussianBlur, 0.5),
            (ScannerLines, 0.5),
            (SpeckleNoise, 0.5),
            (SaltPepper, 0.4),
            (Jpeg, 0.8),
        ],
    ),
    (
        "mixed",
        "a broad random mix of every family, each sample drawing its own subset",
        &[
            (InkColourSwap, 0.15),
            (HollowStrokes, 0.08),
            (LowInkLines, 0.1),
            (Halftone, 0.05),
            (FadedInk, 0.2),
            (BrokenStrokes, 0.2),
            (InkBleed, 0.2),
            (BleedThrough, 0.25),
            (Watermark, 0.15),
            (ColouredPaper, 0.15),
            (PaperTexture, 0.6),
            (Stains, 0.15),
            (TexturedStains, 0.1),
            (CoffeeRing, 0.1),
            (FoldCrease, 0.15),
            (Photocopy, 0.1),
            (BadPhotocopy, 0.08),
            (DirtyDrum, 0.1),
            (Dithering, 0.06),
            (UnevenIllumination, 0.4),
            (Shadow, 0.2),
            (GaussianBlur, 0.3),
            (MotionBlur, 0.1),
            (DefocusBlur, 0.1),
            (LowResolution, 0.1),
            (ScannerLines, 0.15),
            (ContrastGamma, 0.35),
            (LowLightNoise, 0.12),
            (GaussianNoise, 0.35),
            (PoissonNoise, 0.2),
            (SpeckleNoise, 0.15),
            (SaltPepper, 0.15),
            (Jpeg, 0.5),
        ],
    ),
    (
        "office_copier",
        "an office printer and copier: swapped or low ink, hollow strokes, dithering, a dirty drum, a bad copy",
        &[
            (InkColourSwap, 0.35),
            (HollowStrokes, 0.2),
            (LowInkLines, 0.35),
            (FadedInk, 0.25),
            (ColouredPaper, 0.3),
            (Photocopy, 0.3),
            (BadPhotocopy, 0.3),
            (DirtyDrum, 0.4),
            (Dithering, 0.2),
            (ScannerLines, 0.3),
            (ContrastGamma, 0.5),
            (GaussianNoise, 0.5),
            (Jpeg, 0.5),
        ],
    ),
    (
        "archive",
        "an aged archive page: faded, broken and bleeding ink, coloured and stained paper, folds, stamps",
        &[
            (FadedInk, 0.5),
            (HollowStrokes, 0.15),
            (BrokenStrokes, 0.4),
            (InkBleed, 0.4),
            (BleedThrough, 0.5),
            (Watermark, 0.25),
            (ColouredPaper, 0.4),
            (PaperTexture, 1.0),
            (Stains, 0.4),
            (TexturedStains, 0.4),
            (CoffeeRing, 0.3),
            (FoldCrease, 0.4),
            (UnevenIllumination, 0.6),
            (GaussianBlur, 0.4),
            (SpeckleNoise, 0.4),
            (Jpeg, 0.6),
        ],
    ),
    (
        "phone_photo",
        "a phone photo in poor light: shading, cast shadows, dim noisy exposure, focus or shake blur, jpeg",
        &[
            (PaperTexture, 0.5),
            (ColouredPaper, 0.2),
            (UnevenIllumination, 1.0),
            (Shadow, 0.7),
            (DefocusBlur, 0.4),
            (MotionBlur, 0.3),
            (ContrastGamma, 0.6),
            (LowLightNoise, 0.4),
            (PoissonNoise, 0.7),
            (LowResolution, 0.3),
            (Jpeg, 0.9),
        ],
    ),
];

fn build(steps: &[(Family, f32)]) -> Pipeline {
    Pipeline {
        steps: steps
            .iter()
            .map(|&(family, probability)| Step {
                family,
                probability,
            })
            .collect(),
    }
}

/// All presets with their descriptions and pipelines.
pub fn presets() -> Vec<PresetInfo> {
    PRESETS
        .iter()
        .map(|&(name, description, steps)| PresetInfo {
            name,
            description,
            pipeline: build(steps),
            aliases: PRESET_ALIASES
                .iter()
                .filter(|(_, p)| *p == name)
                .map(|(a, _)| *a)
                .collect(),
        })
        .collect()
}

/// Comma-separated preset names, for error messages.
pub(crate) fn preset_list() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

impl Pipeline {
    /// The preset called `name` (`light`, `scan`, `photo`, `heavy`, `mixed`,
    /// `office_copier`, `archive`, `phone_photo`, or an alias of one).
    pub fn preset(name: &str) -> Result<Pipeline, SynthError> {
        let wanted = canonical_preset(name);
        PRESETS
            .iter()
            .find(|p| Some(p.0) == wanted)
            .map(|p| build(p.2))
            .ok_or_else(|| SynthError::UnknownPreset(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_name_exactly_one_preset() {
        assert_eq!(canonical_preset("document-clean"), Some("light"));
        assert_eq!(canonical_preset(" Document_Clean "), Some("light"));
        assert_eq!(canonical_preset("office-copier"), Some("office_copier"));
        assert_eq!(canonical_preset("document-dirty"), None);
        for (alias, preset) in PRESET_ALIASES {
            // An alias is never also a preset or a family name.
            assert!(PRESETS.iter().all(|p| p.0 != *alias));
            assert!(alias.parse::<Family>().is_err(), "{alias}");
            assert!(PRESETS.iter().any(|p| p.0 == *preset));
        }
        let light = presets().into_iter().find(|p| p.name == "light").unwrap();
        assert_eq!(light.aliases, ["document-clean"]);
    }

    #[test]
    fn all_presets_parse_and_validate() {
        for name in [
            "light",
            "scan",
            "photo",
            "heavy",
            "mixed",
            "office_copier",
            "archive",
            "phone_photo",
        ] {
            let p = Pipeline::preset(name).expect("documented preset");
            Pipeline::new(p.steps.clone()).expect("presets are valid pipelines");
        }
        assert_eq!(presets().len(), 8);
        assert!(presets().iter().all(|p| !p.description.is_empty()));
    }

    #[test]
    fn mixed_covers_every_family() {
        let mixed = Pipeline::preset("mixed").expect("mixed is a preset");
        for f in Family::ALL {
            assert!(
                mixed.steps.iter().any(|s| s.family == *f),
                "{f:?} missing from mixed"
            );
        }
    }

    #[test]
    fn mixed_samples_differ_in_their_subsets() {
        let mixed = Pipeline::preset("mixed").expect("mixed is a preset");
        let img = image::RgbImage::from_pixel(32, 32, image::Rgb([200, 200, 200]));
        let subsets: std::collections::HashSet<Vec<Family>> = (0..12)
            .map(|seed| {
                mixed
                    .apply(&img, seed)
                    .applied
                    .iter()
                    .map(|a| a.family)
                    .collect()
            })
            .collect();
        assert!(subsets.len() > 8, "only {} distinct subsets", subsets.len());
    }

    #[test]
    fn unknown_preset_lists_valid_ones() {
        let err = Pipeline::preset("grainy").unwrap_err();
        assert!(matches!(&err, SynthError::UnknownPreset(n) if n == "grainy"));
        let msg = err.to_string();
        assert!(msg.contains("light") && msg.contains("mixed"), "{msg}");
    }

    #[test]
    fn presets_serialise() {
        let json = serde_json::to_value(presets()).expect("serialises");
        assert_eq!(json[0]["name"], "light");
        assert!(
            json[4]["pipeline"]["steps"]
                .as_array()
                .is_some_and(|s| s.len() == Family::ALL.len())
        );
    }
}
