//! Clean/degraded training pairs, one at a time or in parallel batches.

use image::RgbImage;
use rayon::prelude::*;

use crate::degrade::{Applied, Pipeline};
use crate::{FontLibrary, PageSpec, SynthError, Target, render_page_as};

/// A pixel-aligned training pair with its ground truth.
pub struct Pair {
    /// The seed this pair was generated from (also a stable name for it).
    pub name_seed: u64,
    /// The clean rendered page.
    pub clean: RgbImage,
    /// The same page after the degradation pipeline; same dimensions.
    pub degraded: RgbImage,
    /// Text drawn on the page, lines in reading order.
    pub text: String,
    /// Non-text content on the page (figures, stamps, forms, ...) with its
    /// boxes and parameters.
    pub elements: Vec<crate::Element>,
    /// Names of the font faces used, in order of first use.
    pub fonts_used: Vec<String>,
    /// Degradations actually applied, with their sampled parameters.
    pub applied: Vec<Applied>,
}

/// The degradation seed of a pair ([`generate_pair`]): the page seed
/// through a SplitMix64 finaliser, so page layout and degradation draws are
/// unrelated.
pub fn degradation_seed(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Renders the page for `seed` as printed, degrades it with `pipeline` (its
/// pixel-sized parameters scaled to the page's dpi), and pairs it with the
/// page as `target` wants it restored: the printed page itself, or its
/// black-on-white digital original (same layout and anti-aliasing, so the
/// two stay pixel-aligned).
pub fn generate_pair(
    fonts: &FontLibrary,
    pipeline: &Pipeline,
    spec: &PageSpec,
    seed: u64,
    target: Target,
) -> Result<Pair, SynthError> {
    let page = render_page_as(fonts, spec, seed, Target::AsPrinted)?;
    let degraded = pipeline.apply_scaled(&page.image, degradation_seed(seed), spec.scale());
    let clean = match target {
        Target::AsPrinted => page.image,
        Target::Digital => render_page_as(fonts, spec, seed, target)?.image,
    };
    Ok(Pair {
        name_seed: seed,
        clean,
        degraded: degraded.image,
        text: page.text,
        elements: page.elements,
        fonts_used: page.fonts_used,
        applied: degraded.applied,
    })
}

/// Generates many pairs on all cores (rayon); result `i` corresponds to
/// `seeds[i]`, and the output is identical regardless of thread count
/// because every pair depends on its own seed only.
pub fn generate_batch(
    fonts: &FontLibrary,
    pipeline: &Pipeline,
    spec: &PageSpec,
    seeds: &[u64],
    target: Target,
) -> Vec<Result<Pair, SynthError>> {
    seeds
        .par_iter()
        .map(|&seed| generate_pair(fonts, pipeline, spec, seed, target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DIGITAL_INK, DIGITAL_PAPER};

    #[test]
    fn batch_matches_sequential() {
        let fonts = FontLibrary::system().expect("the build machines have DejaVu installed");
        let pipeline = Pipeline::preset("mixed").expect("mixed is a preset");
        let seeds = [3u64, 99, 3, 12345];
        let batch = generate_batch(
            &fonts,
            &pipeline,
            &PageSpec::pixels(200, 260),
            &seeds,
            Target::AsPrinted,
        );
        assert_eq!(batch.len(), seeds.len());
        for (seed, got) in seeds.iter().zip(&batch) {
            let got = got.as_ref().expect("valid size");
            let want = generate_pair(
                &fonts,
                &pipeline,
                &PageSpec::pixels(200, 260),
                *seed,
                Target::AsPrinted,
            )
            .expect("valid size");
            assert_eq!(got.name_seed, *seed);
            assert_eq!(got.clean, want.clean);
            assert_eq!(got.degraded, want.degraded);
            assert_eq!(got.text, want.text);
            assert_eq!(got.applied, want.applied);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a 1-thread pool");
        let single = pool.install(|| {
            generate_batch(
                &fonts,
                &pipeline,
                &PageSpec::pixels(200, 260),
                &seeds,
                Target::AsPrinted,
            )
        });
        for (a, b) in single.iter().zip(&batch) {
            let (a, b) = (a.as_ref().expect("valid"), b.as_ref().expect("valid"));
            assert_eq!(a.degraded, b.degraded);
        }
    }

    #[test]
    fn pair_is_aligned_and_reports_errors() {
        let fonts = FontLibrary::system().expect("the build machines have DejaVu installed");
        let pipeline = Pipeline::preset("heavy").expect("heavy is a preset");
        let pair = generate_pair(
            &fonts,
            &pipeline,
            &PageSpec::pixels(180, 240),
            5,
            Target::AsPrinted,
        )
        .expect("valid size");
        assert_eq!(pair.clean.dimensions(), pair.degraded.dimensions());
        assert_ne!(pair.clean, pair.degraded);
        let bad = generate_batch(
            &fonts,
            &pipeline,
            &PageSpec::pixels(10, 240),
            &[1],
            Target::Digital,
        );
        assert!(matches!(bad[0], Err(SynthError::InvalidSize { .. })));
    }

    #[test]
    fn digital_target_is_black_on_white_and_aligned_with_the_printed_page() {
        let fonts = FontLibrary::system().expect("the build machines have DejaVu installed");
        let pipeline = Pipeline::preset("light").expect("light is a preset");
        // Find a page printed in coloured ink or on tinted paper, so the
        // digital target must differ from the printed one.
        let (printed, digital) = (0..64u64)
            .find_map(|seed| {
                let p = generate_pair(
                    &fonts,
                    &pipeline,
                    &PageSpec::pixels(200, 260),
                    seed,
                    Target::AsPrinted,
                )
                .ok()?;
                let d = generate_pair(
                    &fonts,
                    &pipeline,
                    &PageSpec::pixels(200, 260),
                    seed,
                    Target::Digital,
                )
                .ok()?;
                let tinted = p
                    .clean
                    .pixels()
                    .any(|px| px.0 != [255; 3] && px.0[0] != px.0[2]);
                tinted.then_some((p, d))
            })
            .expect("some page in 64 is printed in colour or on tinted paper");
        assert_eq!(
            printed.degraded, digital.degraded,
            "the input is the printed copy"
        );
        assert_eq!(printed.text, digital.text);
        assert_ne!(printed.clean, digital.clean);
        let printed_paper = printed.clean.get_pixel(0, 0).0;
        let (mut paper_p, mut paper_d) = (0usize, 0usize);
        for (p, d) in printed.clean.pixels().zip(digital.clean.pixels()) {
            let [r, g, b] = d.0;
            assert!(r == g && g == b, "digital pages are grey: {:?}", d.0);
            paper_p += usize::from(p.0 == printed_paper);
            paper_d += usize::from(d.0 == DIGITAL_PAPER);
        }
        // Same layout and coverage: the paper areas agree up to the
        // rounding of the faintest anti-aliased edge pixels.
        let n = (printed.clean.width() * printed.clean.height()) as usize;
        assert!(
            paper_p.abs_diff(paper_d) * 100 < n,
            "{paper_p} vs {paper_d} of {n}"
        );
        assert!(
            digital.clean.pixels().any(|px| px.0 == DIGITAL_INK),
            "solid ink pixels are black"
        );
    }
}
