//! Non-text content of a page: the [`Element`] manifest and the per-page
//! plan of what goes where (figures, forms, stamps, signatures, ...).
//!
//! Everything is sampled inside `lay_out` from a content stream split off
//! the page's RNG, never from the target, so a printed page and its digital
//! twin draw the same elements in the same places.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Block, Theme};

/// One piece of non-text content (or page furniture) drawn on a page, with
/// its pixel box and the parameters it was drawn with.
///
/// Kinds: `chart`, `photo`, `caption`, `logo`, `stamp`, `signature`,
/// `handwriting`, `highlighter`, `form`, `checkbox`, `page_number`,
/// `header`, `footer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Element {
    /// What the element is, e.g. `"chart"` or `"stamp"`.
    pub kind: String,
    /// Left edge of the box in pixels.
    pub x: u32,
    /// Top edge of the box in pixels.
    pub y: u32,
    /// Box width in pixels; the box always lies inside the page.
    pub width: u32,
    /// Box height in pixels.
    pub height: u32,
    /// Sampled parameters (colours as `#rrggbb` as printed, text, rotation,
    /// series count, ...); the same for every target.
    pub params: serde_json::Value,
}

/// Every element kind a page can contain, for tests and documentation.
#[cfg(test)]
pub(super) const KINDS: &[&str] = &[
    "chart",
    "photo",
    "caption",
    "logo",
    "stamp",
    "signature",
    "handwriting",
    "highlighter",
    "form",
    "checkbox",
    "page_number",
    "header",
    "footer",
];

/// A drawn text line: where its words are, for highlighter and pen marks.
pub(super) struct LineBox {
    pub baseline: f32,
    pub px: f32,
    /// Left and right edge of every word.
    pub words: Vec<(f32, f32)>,
    pub text: Vec<String>,
}

/// A block to insert into column `column` once the column is filled past
/// `at` (a fraction of its height).
#[derive(Clone, Copy)]
pub(super) struct Insert {
    pub block: Block,
    pub column: u32,
    pub at: f32,
}

/// The page number and how it is written.
pub(super) struct Folio {
    pub number: u32,
    pub total: Option<u32>,
    style: u32,
}

impl Folio {
    fn sample(rng: &mut ChaCha8Rng) -> Self {
        let number = rng.random_range(1..240);
        let total = rng
            .random_bool(0.3)
            .then(|| number + rng.random_range(0..40));
        Self {
            number,
            total,
            style: rng.random_range(0..5),
        }
    }

    /// The page number as printed: "7", "- 7 -", "Page 7 of 12", ...
    pub fn label(&self) -> String {
        let n = self.number;
        match (self.total, self.style) {
            (Some(t), 0..3) => format!("Page {n} of {t}"),
            (Some(t), _) => format!("{n} / {t}"),
            (None, 0) => n.to_string(),
            (None, 1) => format!("- {n} -"),
            (None, 2) => format!("Page {n}"),
            (None, 3) => format!("p. {n}"),
            (None, _) => format!("[{n}]"),
        }
    }
}

/// What a page gets besides its running text, decided before layout.
pub(super) struct Plan {
    pub folio: Folio,
    pub header: bool,
    pub header_number: bool,
    pub footer: bool,
    pub letterhead: bool,
    /// Figures and forms, sorted by column and height.
    pub inserts: Vec<Insert>,
    pub columns: u32,
    pub gutter: f32,
    pub column_rules: bool,
    pub signature: bool,
    pub stamp: bool,
    pub highlights: u32,
    pub margin_note: bool,
    pub pen_mark: bool,
}

impl Plan {
    /// Samples the plan; about half the pages get a figure, photo or logo,
    /// smaller shares get forms, stamps, signatures and pen marks.
    pub fn sample(rng: &mut ChaCha8Rng, theme: &Theme, width: u32) -> Self {
        let content_w = width as f32 - theme.left - theme.right;
        // Condensed newspaper columns still hold about 25 characters a line.
        let narrow_gutter = theme.gutter * 0.6;
        let three_fit = (content_w - 2.0 * narrow_gutter) / 3.0 >= theme.body.px * 12.5;
        let wants_three = rng.random_bool(0.15);
        let three = three_fit && wants_three;

        let visuals = match rng.random_range(0..100) {
            0..50 => 0,
            50..85 => 1,
            _ => 2,
        };
        let mut letterhead = false;
        let mut blocks = Vec::new();
        for _ in 0..visuals {
            match rng.random_range(0..100) {
                0..25 if !letterhead && !three => letterhead = true,
                0..60 => blocks.push(Block::Chart),
                _ => blocks.push(Block::Photo),
            }
        }
        if rng.random_bool(0.16) {
            blocks.push(Block::Form);
        }
        let columns = if three { 3 } else { theme.columns };
        let mut inserts: Vec<Insert> = blocks
            .into_iter()
            .map(|block| Insert {
                block,
                column: rng.random_range(0..columns),
                at: rng.random_range(0.05..0.6),
            })
            .collect();
        inserts.sort_by(|a, b| a.column.cmp(&b.column).then(a.at.total_cmp(&b.at)));

        let folio = Folio::sample(rng);
        Self {
            folio,
            header: rng.random_bool(0.3),
            header_number: rng.random_bool(0.4),
            footer: rng.random_bool(0.55),
            letterhead,
            inserts,
            columns,
            gutter: if three { narrow_gutter } else { theme.gutter },
            column_rules: three || (columns == 2 && rng.random_bool(0.2)),
            signature: rng.random_bool(if letterhead { 0.5 } else { 0.14 }),
            stamp: rng.random_bool(if letterhead { 0.35 } else { 0.12 }),
            highlights: if rng.random_bool(0.15) {
                rng.random_range(1..=3)
            } else {
                0
            },
            margin_note: rng.random_bool(0.12),
            pen_mark: rng.random_bool(0.08),
        }
    }
}

impl Plan {
    /// Drops everything that is not text: figures, photos, forms, the
    /// letterhead's logo, signature, stamp, highlighter, margin notes and
    /// pen marks. Columns, running header, page number and footer stay, so
    /// the page keeps the layout and the text it has with its content.
    pub fn keep_text_only(&mut self) {
        self.letterhead = false;
        self.inserts.clear();
        self.signature = false;
        self.stamp = false;
        self.highlights = 0;
        self.margin_note = false;
        self.pen_mark = false;
    }
}

/// `#rrggbb` for the manifest.
pub(super) fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// A float rounded to two decimals for the manifest (f32 noise would make
/// the JSON unreadable).
pub(super) fn r2(v: f32) -> f64 {
    (f64::from(v) * 100.0).round() / 100.0
}

pub(super) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::page::blocks::{Column, Writer};
    use crate::page::figures::Figure;
    use crate::page::{PageSpec, Target, render_page, render_page_as};
    use crate::{FontLibrary, Page};

    const W: u32 = 560;
    const H: u32 = 720;

    fn fonts() -> FontLibrary {
        FontLibrary::system().expect("the build machines have DejaVu installed")
    }

    fn pages(fonts: &FontLibrary, seeds: std::ops::Range<u64>) -> Vec<Page> {
        seeds
            .map(|s| render_page(fonts, W, H, s).expect("valid size"))
            .collect()
    }

    /// Draws with `draw` on a blank page and checks that every changed
    /// pixel lies in a recorded element box or a recorded text line, and
    /// that every element box holds changed pixels; returns the elements.
    fn isolated(
        fonts: &FontLibrary,
        seed: u64,
        draw: impl FnOnce(&mut Writer, &mut ChaCha8Rng),
    ) -> Vec<Element> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let theme = Theme::sample(&mut rng, fonts, &PageSpec::pixels(W, H));
        let mut w = Writer::new(&theme, W, H);
        draw(&mut w, &mut rng);
        // Glyphs may overhang their line box a little.
        let lines: Vec<(f32, f32, f32, f32)> = w
            .lines
            .iter()
            .filter_map(|l| {
                let pad = l.px * 0.5;
                let (x0, x1) = (l.words.first()?.0, l.words.last()?.1);
                let (y0, y1) = (l.baseline - l.px * 1.5, l.baseline + l.px * 0.8);
                Some((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
            })
            .collect();
        let page = w.finish();
        let paper = image::Rgb(theme.paper);
        let in_box = |e: &Element, x: u32, y: u32| {
            (e.x..e.x + e.width).contains(&x) && (e.y..e.y + e.height).contains(&y)
        };
        for (x, y, p) in page.image.enumerate_pixels() {
            if *p == paper {
                continue;
            }
            let (fx, fy) = (x as f32, y as f32);
            let explained = page.elements.iter().any(|e| in_box(e, x, y))
                || lines
                    .iter()
                    .any(|&(x0, y0, x1, y1)| (x0..x1).contains(&fx) && (y0..y1).contains(&fy));
            assert!(
                explained,
                "seed {seed}: ink at ({x}, {y}) outside every box: {:?}",
                page.elements
            );
        }
        for e in &page.elements {
            let inked = page
                .image
                .enumerate_pixels()
                .filter(|&(x, y, p)| in_box(e, x, y) && *p != paper)
                .count();
            assert!(inked > 0, "seed {seed}: {} changes nothing", e.kind);
        }
        page.elements
    }

    fn column(w: &Writer) -> Column {
        Column {
            x: w.theme.left,
            width: W as f32 - w.theme.left - w.theme.right,
            y: w.theme.top,
            bottom: H as f32 - w.theme.bottom,
        }
    }

    /// Runs `draw` on blank pages for a few seeds; every kind in `kinds`
    /// must turn up, and nothing may be drawn outside the recorded boxes.
    fn each_draws_inside_its_box(kinds: &[&str], draw: impl Fn(&mut Writer, &mut ChaCha8Rng)) {
        let f = fonts();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..6 {
            for e in isolated(&f, seed, &draw) {
                seen.insert(e.kind);
            }
        }
        for kind in kinds {
            assert!(seen.contains(*kind), "no {kind}: {seen:?}");
        }
    }

    fn some_text(w: &mut Writer, rng: &mut ChaCha8Rng, col: &mut Column) {
        let words = crate::page::corpus::paragraph_words(rng, 4);
        let _ = w.paragraph(col, &words, 0, w.theme.body, true);
    }

    #[test]
    fn charts_photos_and_captions_draw_inside_their_boxes() {
        each_draws_inside_its_box(&["chart", "photo", "caption"], |w, rng| {
            let mut col = column(w);
            assert!(w.figure(rng, &mut col, Figure::Chart, f32::MAX));
            assert!(w.figure(rng, &mut col, Figure::Photo, f32::MAX));
        });
    }

    #[test]
    fn logos_forms_and_signatures_draw_inside_their_boxes() {
        each_draws_inside_its_box(
            &["logo", "form", "checkbox", "signature", "handwriting"],
            |w, rng| {
                let mut col = column(w);
                w.letterhead(rng, &mut col);
                assert!(w.form(rng, &mut col, f32::MAX));
                w.signature_block(rng, &mut col);
            },
        );
    }

    #[test]
    fn marks_over_text_draw_inside_their_boxes() {
        each_draws_inside_its_box(&["stamp", "highlighter", "handwriting"], |w, rng| {
            let mut col = column(w);
            some_text(w, rng, &mut col);
            w.highlight(rng, 3);
            w.pen_mark(rng);
            w.margin_note(rng);
            w.stamp(rng);
        });
    }

    #[test]
    fn headers_footers_and_page_numbers_draw_inside_their_boxes() {
        each_draws_inside_its_box(&["header", "footer", "page_number"], |w, rng| {
            let mut col = column(w);
            let folio = Folio::sample(rng);
            w.running_header(rng, &mut col, Some(&folio));
            w.footer(rng, H, &folio);
        });
    }

    #[test]
    fn same_seed_same_elements() {
        let f = fonts();
        for seed in [3, 17, 29] {
            let a = render_page(&f, W, H, seed).expect("valid size");
            let b = render_page(&f, W, H, seed).expect("valid size");
            assert_eq!(a.elements, b.elements);
            assert_eq!(a.image, b.image);
        }
    }

    #[test]
    fn digital_twins_share_layout_and_elements_and_are_grey() {
        let f = fonts();
        let spec = PageSpec::pixels(W, H);
        let mut coloured = 0;
        for seed in 0..24 {
            let printed = render_page_as(&f, &spec, seed, Target::AsPrinted).expect("valid");
            let digital = render_page_as(&f, &spec, seed, Target::Digital).expect("valid");
            assert_eq!(printed.text, digital.text, "seed {seed}");
            assert_eq!(printed.elements, digital.elements, "seed {seed}");
            let grey = |p: &image::Rgb<u8>| p.0[0] == p.0[1] && p.0[1] == p.0[2];
            assert!(digital.image.pixels().all(grey), "seed {seed}");
            // Photos, logos, stamps and highlighter keep their colour in print.
            for e in &printed.elements {
                let colourful = (e.y..e.y + e.height)
                    .flat_map(|y| (e.x..e.x + e.width).map(move |x| (x, y)))
                    .any(|(x, y)| !grey(printed.image.get_pixel(x, y)));
                if colourful {
                    coloured += 1;
                }
            }
        }
        assert!(coloured > 5, "{coloured} coloured elements in print");
    }

    #[test]
    fn folio_labels() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let f = Folio::sample(&mut rng);
            let label = f.label();
            assert!(label.contains(&f.number.to_string()), "{label}");
            if let Some(t) = f.total {
                assert!(t >= f.number && label.contains(&t.to_string()), "{label}");
            }
        }
    }

    #[test]
    fn every_kind_appears_over_forty_seeds() {
        let f = fonts();
        let mut seen = std::collections::BTreeMap::new();
        for page in pages(&f, 0..40) {
            for e in &page.elements {
                *seen.entry(e.kind.clone()).or_insert(0) += 1;
            }
        }
        for kind in KINDS {
            assert!(seen.contains_key(*kind), "no {kind} in 40 pages: {seen:?}");
        }
        assert!(seen.keys().all(|k| KINDS.contains(&k.as_str())), "{seen:?}");
    }

    #[test]
    fn text_only_pages_keep_the_text_and_drop_every_non_text_element() {
        let f = fonts();
        let mut dropped = 0;
        for seed in 0..40 {
            let spec = PageSpec::pixels(W, H);
            let mixed = render_page_as(&f, &spec, seed, Target::AsPrinted).expect("valid size");
            let text = render_page_as(
                &f,
                &spec.with_content(crate::Content::Text),
                seed,
                Target::AsPrinted,
            )
            .expect("valid size");
            let kinds: Vec<&str> = text.elements.iter().map(|e| e.kind.as_str()).collect();
            assert!(
                kinds
                    .iter()
                    .all(|k| matches!(*k, "page_number" | "header" | "footer")),
                "seed {seed}: {kinds:?}"
            );
            let furniture = |p: &Page| {
                p.elements
                    .iter()
                    .filter(|e| matches!(e.kind.as_str(), "page_number" | "header" | "footer"))
                    .count()
            };
            assert_eq!(furniture(&mixed), furniture(&text), "seed {seed}");
            if mixed.elements.len() > furniture(&mixed) {
                dropped += 1;
            }
            // The text page keeps a page of prose: at least about half as
            // many lines as the mixed page (whose captions, form labels and
            // notes count as lines too).
            let lines = |p: &Page| p.text.lines().count();
            assert!(
                lines(&text) + 3 >= lines(&mixed) / 2 && text.text.len() > 200,
                "seed {seed}: {} lines against {}",
                lines(&text),
                lines(&mixed)
            );
        }
        assert!(
            dropped >= 20,
            "only {dropped} of 40 mixed pages had content"
        );
    }

    #[test]
    fn content_names_parse() {
        use crate::Content;
        assert_eq!("".parse::<Content>().expect("empty"), Content::Mixed);
        assert_eq!(" Text ".parse::<Content>().expect("text"), Content::Text);
        for c in Content::ALL {
            assert_eq!(c.name().parse::<Content>().expect("own name"), *c);
        }
        let err = "photos".parse::<Content>().expect_err("unknown");
        assert!(err.to_string().contains("mixed, text"), "{err}");
    }

    #[test]
    fn about_half_the_pages_have_a_figure_photo_or_logo() {
        let f = fonts();
        let with = pages(&f, 100..140)
            .iter()
            .filter(|p| {
                p.elements
                    .iter()
                    .any(|e| matches!(e.kind.as_str(), "chart" | "photo" | "logo"))
            })
            .count();
        assert!((12..=28).contains(&with), "{with} of 40 pages");
    }

    #[test]
    fn elements_lie_inside_the_page_and_change_pixels() {
        let f = fonts();
        for (seed, page) in pages(&f, 0..40).iter().enumerate() {
            let (w, h) = page.image.dimensions();
            // Nothing is drawn into the page's outermost pixels.
            let paper = *page.image.get_pixel(0, 0);
            for e in &page.elements {
                assert!(e.width > 0 && e.height > 0, "seed {seed}: {e:?}");
                assert!(
                    e.x + e.width <= w && e.y + e.height <= h,
                    "seed {seed}: {e:?}"
                );
                let inked = (e.y..e.y + e.height)
                    .flat_map(|y| (e.x..e.x + e.width).map(move |x| (x, y)))
                    .filter(|&(x, y)| *page.image.get_pixel(x, y) != paper)
                    .count();
                assert!(inked > 0, "seed {seed}: {} draws nothing", e.kind);
            }
        }
    }

    #[test]
    fn elements_serialise_with_their_params() {
        let f = fonts();
        for page in pages(&f, 0..12) {
            let json = serde_json::to_string(&page.elements).expect("elements serialise");
            let back: Vec<Element> = serde_json::from_str(&json).expect("and parse back");
            assert_eq!(back, page.elements);
            let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
            for e in value.as_array().expect("an array") {
                for key in ["kind", "x", "y", "width", "height"] {
                    assert!(e.get(key).is_some(), "{key} missing in {e}");
                }
                let params = e["params"].as_object().expect("params are an object");
                assert!(!params.is_empty(), "{e}");
            }
        }
    }
}
