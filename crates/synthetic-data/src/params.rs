//! Validation of generation requests, shared by the gRPC handler and the worker.

use restoreflow_proto::{ErrorCode, v1};
use restoreflow_synth::{
    Content, Family, MAX_SIZE, MIN_SIZE, PageSpec, PaperSize, Pipeline, Step, SynthError, Target,
};
use serde::{Deserialize, Serialize};

/// Default page width (a 640x832 page is the benchmark size).
pub const DEFAULT_WIDTH: u32 = 640;
/// Default page height.
pub const DEFAULT_HEIGHT: u32 = 832;
/// Base seeds from here up are held out for `test` (evaluation) datasets and
/// refused for training splits, so an evaluation page never repeats a
/// training page.
pub const HELD_OUT_SEEDS: u64 = 1 << 63;

/// Accepted dataset splits.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// A request rejected with a message the caller can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<Invalid> for tonic::Status {
    fn from(e: Invalid) -> Self {
        ErrorCode::InvalidArgument.status(e.0)
    }
}

/// Which degradations to apply.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Degradation {
    /// A named preset.
    Preset(String),
    /// One family, always applied.
    Family(Family),
    /// A free composition of families, each applied with its probability.
    Custom(Vec<Step>),
}

impl Degradation {
    /// Resolves to a concrete pipeline.
    pub fn pipeline(&self) -> Result<Pipeline, Invalid> {
        match self {
            Degradation::Preset(p) => Pipeline::preset(p).map_err(|e| Invalid(e.to_string())),
            Degradation::Family(f) => Ok(Pipeline::single(*f)),
            Degradation::Custom(steps) => {
                Pipeline::new(steps.clone()).map_err(|e| Invalid(e.to_string()))
            }
        }
    }

    /// Short label stored with datasets.
    pub fn label(&self) -> String {
        match self {
            Degradation::Preset(p) => p.clone(),
            Degradation::Family(f) => format!("family:{}", f.name()),
            Degradation::Custom(steps) => format!("custom:{}", steps.len()),
        }
    }

    /// From a generation request: a free composition (`steps`), or the
    /// `preset` / `degradation_type` pair; only one of the three may be given.
    pub fn from_generate(r: &v1::GenerateRequest) -> Result<Self, Invalid> {
        if r.steps.is_empty() {
            return Self::from_request(&r.preset, &r.degradation_type);
        }
        if !r.preset.trim().is_empty() || !r.degradation_type.trim().is_empty() {
            return Err(Invalid(
                "give one of steps, preset or degradation_type, not several".into(),
            ));
        }
        if r.steps.len() > 64 {
            return Err(Invalid("steps may hold at most 64 entries".into()));
        }
        let steps = r
            .steps
            .iter()
            .map(|s| {
                let family = s
                    .family
                    .parse::<Family>()
                    .map_err(|e| Invalid(e.to_string()))?;
                Ok(Step {
                    family,
                    probability: s.probability,
                })
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        let d = Degradation::Custom(steps);
        d.pipeline()?;
        Ok(d)
    }

    /// From the request's `preset` / `degradation_type` pair (both empty → `mixed`).
    /// `degradation_type` may name a family or, for convenience, a preset.
    pub fn from_request(preset: &str, degradation_type: &str) -> Result<Self, Invalid> {
        let (preset, kind) = (preset.trim(), degradation_type.trim());
        let d = match (preset.is_empty(), kind.is_empty()) {
            (false, false) => {
                return Err(Invalid(
                    "give either preset or degradation_type, not both".into(),
                ));
            }
            (true, true) => Degradation::Preset("mixed".into()),
            // Stored under its own name: an alias resolves here.
            (false, true) => Degradation::Preset(
                restoreflow_synth::canonical_preset(preset)
                    .unwrap_or(preset)
                    .to_string(),
            ),
            (true, false) => match kind.parse::<Family>() {
                Ok(f) => Degradation::Family(f),
                Err(family_err) => {
                    if let Some(name) = restoreflow_synth::canonical_preset(kind) {
                        Degradation::Preset(name.to_string())
                    } else {
                        return Err(Invalid(format!(
                            "unknown degradation_type {kind:?}: {family_err}; presets are {}",
                            restoreflow_synth::presets()
                                .iter()
                                .map(|p| p.name)
                                .chain(restoreflow_synth::PRESET_ALIASES.iter().map(|a| a.0))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            },
        };
        d.pipeline()?;
        Ok(d)
    }
}

/// A validated generation request, stored as the job's params.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenerateParams {
    /// Number of pairs.
    pub num_images: u32,
    /// Degradations.
    pub degradation: Degradation,
    /// Base seed; pair `i` uses a seed derived from it.
    pub seed: u64,
    /// Page width.
    pub width: u32,
    /// Page height.
    pub height: u32,
    /// Dataset split.
    pub split: String,
    /// What the clean half of each pair holds (jobs stored before targets
    /// existed read as `as_printed`).
    #[serde(default)]
    pub target: Target,
    /// Scan resolution the page stands for; fonts, rules and degradation
    /// sizes scale with it (absent: sized by the page width, reference scale).
    #[serde(default)]
    pub dpi: Option<u32>,
    /// The paper size when the page is a whole sheet (width and height
    /// then follow from it and `dpi`).
    #[serde(default)]
    pub page_size: Option<PaperSize>,
    /// Font families or packs to draw with (empty: every installed family).
    #[serde(default)]
    pub fonts: Vec<String>,
    /// Whether pages carry figures, forms and marks or text only (jobs
    /// stored before the option read as `mixed`).
    #[serde(default)]
    pub content: Content,
}

/// Resolution of an `a4` / `letter` page when the request names no dpi.
pub const DEFAULT_SHEET_DPI: u32 = 150;
/// Most font names a request may list.
pub const MAX_FONT_NAMES: usize = 32;

impl GenerateParams {
    /// Validates a request; a missing seed is drawn at random and recorded.
    pub fn from_request(r: &v1::GenerateRequest, max_images: u32) -> Result<Self, Invalid> {
        if r.num_images == 0 {
            return Err(Invalid("num_images must be at least 1".into()));
        }
        if r.num_images > max_images {
            return Err(Invalid(format!(
                "num_images must be at most {max_images}, got {}",
                r.num_images
            )));
        }
        let page_size = match r.page_size.trim() {
            "" => None,
            name => Some(
                name.parse::<PaperSize>()
                    .map_err(|e: SynthError| Invalid(e.to_string()))?,
            ),
        };
        let spec = match page_size {
            Some(paper) => {
                if r.width.is_some() || r.height.is_some() {
                    return Err(Invalid(
                        "give either page_size or width/height, not both".into(),
                    ));
                }
                PageSpec::paper(paper, r.dpi.unwrap_or(DEFAULT_SHEET_DPI))
                    .map_err(|e| Invalid(e.to_string()))?
            }
            None => {
                let width = r.width.unwrap_or(DEFAULT_WIDTH);
                let height = r.height.unwrap_or(DEFAULT_HEIGHT);
                for (name, v) in [("width", width), ("height", height)] {
                    if !(MIN_SIZE..=MAX_SIZE).contains(&v) {
                        return Err(Invalid(format!(
                            "{name} must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {v}"
                        )));
                    }
                }
                match r.dpi {
                    Some(dpi) => PageSpec::sized_at(width, height, dpi)
                        .map_err(|e| Invalid(e.to_string()))?,
                    None => PageSpec::pixels(width, height),
                }
            }
        };
        if r.fonts.len() > MAX_FONT_NAMES {
            return Err(Invalid(format!(
                "fonts may list at most {MAX_FONT_NAMES} names, got {}",
                r.fonts.len()
            )));
        }
        let mut fonts: Vec<String> = Vec::new();
        for name in &r.fonts {
            let name = name.trim();
            if name.is_empty() {
                return Err(Invalid("fonts holds an empty name".into()));
            }
            if !fonts.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                fonts.push(name.to_string());
            }
        }
        let split = if r.split.trim().is_empty() {
            "train".to_string()
        } else {
            r.split.trim().to_string()
        };
        if !SPLITS.contains(&split.as_str()) {
            return Err(Invalid(format!(
                "split must be one of {}, got {split:?}",
                SPLITS.join(", ")
            )));
        }
        let target: Target = r
            .target
            .parse()
            .map_err(|e: SynthError| Invalid(e.to_string()))?;
        let content: Content = r
            .content
            .parse()
            .map_err(|e: SynthError| Invalid(e.to_string()))?;
        let held_out = split == "test";
        let seed = match r.seed {
            Some(s) if held_out && s < HELD_OUT_SEEDS => {
                return Err(Invalid(format!(
                    "test datasets use held-out seeds (at least {HELD_OUT_SEEDS}) so they never repeat a training page; got {s}"
                )));
            }
            Some(s) if !held_out && s >= HELD_OUT_SEEDS => {
                return Err(Invalid(format!(
                    "seeds from {HELD_OUT_SEEDS} up are held out for test datasets; got {s} for split {split}"
                )));
            }
            Some(s) => s,
            None if held_out => HELD_OUT_SEEDS | rand::random::<u64>(),
            None => rand::random::<u64>() & (HELD_OUT_SEEDS - 1),
        };
        Ok(Self {
            num_images: r.num_images,
            degradation: Degradation::from_generate(r)?,
            seed,
            width: spec.width,
            height: spec.height,
            split,
            target,
            dpi: spec.dpi,
            page_size,
            fonts,
            content,
        })
    }

    /// The page every pair of the job is rendered on.
    pub fn spec(&self) -> PageSpec {
        PageSpec {
            width: self.width,
            height: self.height,
            dpi: self.dpi,
            content: self.content,
        }
    }
}

/// Seed of pair `index` of a dataset with base seed `seed`, so every pair is
/// reproducible on its own and independent of batching.
///
/// The page-seed space is partitioned by split, by construction: the top bit
/// of a page seed is the top bit of its base seed, which
/// [`GenerateParams::from_request`] sets for `test` datasets and clears for
/// every other split ([`HELD_OUT_SEEDS`]). The other 63 bits are a bijective
/// mix (splitmix64's finaliser, reduced modulo 2^63) of the base seed's low
/// bits and the index, so within a dataset distinct indices never share a
/// seed. A training page can therefore never have the seed of a held-out
/// page, whatever the base seeds and indices; mixing the index into all 64
/// bits, as an earlier version did, let `train` seed `s ^ G` page 1 equal
/// `test` seed `s` page 0 (G the golden-ratio increment).
pub fn pair_seed(seed: u64, index: u64) -> u64 {
    const LOW: u64 = HELD_OUT_SEEDS - 1;
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    // Every step is a bijection of 0..2^63: xor with a constant-per-dataset
    // value, adding a constant, multiplying by an odd constant, and
    // xor-shifting right, all modulo 2^63.
    let mut z = (seed ^ index.wrapping_mul(GOLDEN)) & LOW;
    z = z.wrapping_add(GOLDEN) & LOW;
    z = ((z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9)) & LOW;
    z = ((z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB)) & LOW;
    z ^= z >> 31;
    (seed & HELD_OUT_SEEDS) | z
}

/// Whether a page seed belongs to a held-out (`test`) dataset.
pub fn is_held_out_page(page_seed: u64) -> bool {
    page_seed & HELD_OUT_SEEDS != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: u32) -> v1::GenerateRequest {
        v1::GenerateRequest {
            num_images: n,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_fill_in() {
        let p = GenerateParams::from_request(&req(3), 100).unwrap();
        assert_eq!((p.width, p.height), (DEFAULT_WIDTH, DEFAULT_HEIGHT));
        assert!(matches!(p.degradation, Degradation::Preset(ref n) if n == "mixed"));
        assert_eq!(p.split, "train");
        assert_eq!(p.target, Target::AsPrinted);
    }

    #[test]
    fn content_is_parsed_into_the_page_spec_and_bad_content_is_refused() {
        let p = GenerateParams::from_request(&req(2), 100).unwrap();
        assert_eq!(p.content, Content::Mixed);
        let text = v1::GenerateRequest {
            content: "text".into(),
            ..req(2)
        };
        let p = GenerateParams::from_request(&text, 100).unwrap();
        assert_eq!(p.content, Content::Text);
        assert_eq!(p.spec().content, Content::Text);
        let bad = v1::GenerateRequest {
            content: "photos".into(),
            ..req(2)
        };
        let msg = GenerateParams::from_request(&bad, 100).unwrap_err().0;
        assert!(
            msg.contains("photos") && msg.contains("mixed, text"),
            "{msg}"
        );
        // Job params stored before the option existed still load.
        let mut json = serde_json::to_value(&p).unwrap();
        json.as_object_mut().unwrap().remove("content");
        let old: GenerateParams = serde_json::from_value(json).unwrap();
        assert_eq!(old.content, Content::Mixed);
    }

    #[test]
    fn target_is_parsed_and_bad_targets_are_refused() {
        let digital = v1::GenerateRequest {
            target: "Digital".into(),
            ..req(2)
        };
        let p = GenerateParams::from_request(&digital, 100).unwrap();
        assert_eq!(p.target, Target::Digital);
        let bad = v1::GenerateRequest {
            target: "scanned".into(),
            ..req(2)
        };
        let msg = GenerateParams::from_request(&bad, 100).unwrap_err().0;
        assert!(msg.contains("scanned") && msg.contains("digital"), "{msg}");
        // Job params stored before targets existed still load.
        let mut json = serde_json::to_value(&p).unwrap();
        json.as_object_mut().unwrap().remove("target");
        let old: GenerateParams = serde_json::from_value(json).unwrap();
        assert_eq!(old.target, Target::AsPrinted);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let msg = |r: v1::GenerateRequest| GenerateParams::from_request(&r, 100).unwrap_err().0;
        assert!(msg(req(0)).contains("at least 1"));
        assert!(msg(req(101)).contains("at most 100"));
        assert!(
            msg(v1::GenerateRequest {
                width: Some(10),
                ..req(1)
            })
            .contains("width")
        );
        assert!(
            msg(v1::GenerateRequest {
                height: Some(5000),
                ..req(1)
            })
            .contains("height")
        );
        assert!(
            msg(v1::GenerateRequest {
                preset: "nope".into(),
                ..req(1)
            })
            .contains("nope")
        );
        assert!(
            msg(v1::GenerateRequest {
                degradation_type: "nope".into(),
                ..req(1)
            })
            .contains("nope")
        );
        assert!(
            msg(v1::GenerateRequest {
                split: "x".into(),
                ..req(1)
            })
            .contains("split")
        );
        assert!(
            msg(v1::GenerateRequest {
                preset: "light".into(),
                degradation_type: "jpeg".into(),
                ..req(1)
            })
            .contains("not both")
        );
    }

    #[test]
    fn degradation_type_accepts_families_and_presets() {
        let family = Family::ALL[0];
        let d = Degradation::from_request("", family.name()).unwrap();
        assert!(matches!(d, Degradation::Family(f) if f == family));
        assert!(matches!(
            Degradation::from_request("", "heavy").unwrap(),
            Degradation::Preset(ref n) if n == "heavy"
        ));
    }

    #[test]
    fn free_compositions_are_validated() {
        let step = |f: &str, p: f32| v1::DegradationStep {
            family: f.into(),
            probability: p,
        };
        let ok = GenerateParams::from_request(
            &v1::GenerateRequest {
                steps: vec![step("jpeg", 0.5), step("gaussian_blur", 1.0)],
                ..req(1)
            },
            10,
        )
        .unwrap();
        assert!(matches!(ok.degradation, Degradation::Custom(ref s) if s.len() == 2));
        let msg = |r: v1::GenerateRequest| GenerateParams::from_request(&r, 10).unwrap_err().0;
        assert!(
            msg(v1::GenerateRequest {
                steps: vec![step("glitter", 0.5)],
                ..req(1)
            })
            .contains("glitter")
        );
        assert!(
            msg(v1::GenerateRequest {
                steps: vec![step("jpeg", 1.5)],
                ..req(1)
            })
            .contains("1.5")
        );
        assert!(
            msg(v1::GenerateRequest {
                steps: vec![step("jpeg", 0.5)],
                preset: "light".into(),
                ..req(1)
            })
            .contains("not several")
        );
    }

    #[test]
    fn test_splits_use_held_out_seeds() {
        let req = |split: &str, seed: Option<u64>| v1::GenerateRequest {
            num_images: 1,
            split: split.into(),
            seed,
            ..Default::default()
        };
        let drawn = GenerateParams::from_request(&req("test", None), 10).unwrap();
        assert!(drawn.seed >= HELD_OUT_SEEDS);
        let train = GenerateParams::from_request(&req("train", None), 10).unwrap();
        assert!(train.seed < HELD_OUT_SEEDS);
        let err = GenerateParams::from_request(&req("test", Some(5)), 10).unwrap_err();
        assert!(err.0.contains("held-out"), "{}", err.0);
        let err =
            GenerateParams::from_request(&req("train", Some(HELD_OUT_SEEDS + 1)), 10).unwrap_err();
        assert!(err.0.contains("held out"), "{}", err.0);
        assert!(GenerateParams::from_request(&req("test", Some(HELD_OUT_SEEDS + 7)), 10).is_ok());
    }

    #[test]
    fn pair_seeds_differ_and_repeat() {
        assert_eq!(pair_seed(7, 3), pair_seed(7, 3));
        for base in [7, HELD_OUT_SEEDS | 7] {
            let seeds: std::collections::HashSet<u64> =
                (0..1000).map(|i| pair_seed(base, i)).collect();
            assert_eq!(seeds.len(), 1000);
        }
    }

    /// The seeds and indices where the previous derivation (index mixed into
    /// all 64 bits before hashing) gave a training page the seed of a test
    /// page: `s ^ index * G` is the same for train seed `s ^ G`, page 1 and
    /// test seed `s`, page 0.
    #[test]
    fn training_pages_never_take_a_held_out_page_seed() {
        const G: u64 = 0x9E37_79B9_7F4A_7C15;
        let test_seed = HELD_OUT_SEEDS | 12_345;
        let train_seed = test_seed ^ G;
        assert!(train_seed < HELD_OUT_SEEDS, "a valid training seed");
        assert_ne!(pair_seed(train_seed, 1), pair_seed(test_seed, 0));

        // The partition itself, over seeds drawn as the service draws them
        // and over the ends of both ranges, for many pages each.
        let mut train_seeds: Vec<u64> = (0..64)
            .map(|_| rand::random::<u64>() & (HELD_OUT_SEEDS - 1))
            .collect();
        train_seeds.extend([0, 1, HELD_OUT_SEEDS - 1, train_seed]);
        let mut test_seeds: Vec<u64> = (0..64)
            .map(|_| HELD_OUT_SEEDS | rand::random::<u64>())
            .collect();
        test_seeds.extend([HELD_OUT_SEEDS, u64::MAX, test_seed]);
        let mut train_pages = std::collections::HashSet::new();
        for &s in &train_seeds {
            for i in 0..500 {
                let p = pair_seed(s, i);
                assert!(!is_held_out_page(p), "train seed {s} page {i} -> {p}");
                train_pages.insert(p);
            }
        }
        for &s in &test_seeds {
            for i in 0..500 {
                let p = pair_seed(s, i);
                assert!(is_held_out_page(p), "test seed {s} page {i} -> {p}");
                assert!(!train_pages.contains(&p));
            }
        }
    }
}
