//! Clean synthetic document pages: real prose laid out as headings,
//! paragraphs, lists and ruled tables in one, two or three columns, with
//! non-text content among it (charts, photos, logos, forms, signatures,
//! stamps, highlighter and pen marks, running headers and page numbers),
//! every piece of which is listed in the page's [`Element`] manifest.

mod blocks;
mod content;
mod corpus;
mod figures;
mod forms;
mod furniture;
mod marks;
mod names;
mod paint;
mod pen;
mod photos;
mod text;

use std::str::FromStr;

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::fonts::{FontFamily, FontPack};
use crate::{FontLibrary, SynthError};
use blocks::{Column, Flow, Writer};
pub use content::Element;
use content::{Insert, Plan};
use figures::Figure;
use text::TextStyle;

/// Smallest page width or height accepted, in pixels.
pub const MIN_SIZE: u32 = 64;
/// Largest page (and decoded image) width or height accepted, in pixels.
pub const MAX_SIZE: u32 = 4096;

/// A rendered clean page and its ground truth.
pub struct Page {
    /// The clean RGB page.
    pub image: RgbImage,
    /// Every drawn text line in reading order, separated by `'\n'`.
    pub text: String,
    /// Names of the font faces used, in order of first use.
    pub fonts_used: Vec<String>,
    /// Non-text content and page furniture, in drawing order, with boxes
    /// and sampled parameters; identical for every [`Target`].
    pub elements: Vec<Element>,
}

/// Validates a page or image size against [`MIN_SIZE`] and [`MAX_SIZE`].
pub(crate) fn check_size(width: u32, height: u32) -> Result<(), SynthError> {
    let ok = |v: u32| (MIN_SIZE..=MAX_SIZE).contains(&v);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(SynthError::InvalidSize { width, height })
    }
}

/// What a restored page should look like: the ground truth a pair's clean
/// image holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The page as it was printed: the theme's ink colour on its paper tone
    /// (a restorer learns to keep blue ink blue and cream paper cream).
    #[default]
    AsPrinted,
    /// The digital original: pure black ink on white paper, whatever ink
    /// and paper the printed copy used (a restorer learns to recover the
    /// document, not the copy).
    Digital,
}

impl Target {
    /// Every target, in a stable order, the default first.
    pub const ALL: &'static [Target] = &[Target::AsPrinted, Target::Digital];

    /// The snake_case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::AsPrinted => "as_printed",
            Target::Digital => "digital",
        }
    }
}

impl FromStr for Target {
    type Err = SynthError;

    /// Parses a target name; case-insensitive, `-` accepted for `_`, empty
    /// means [`Target::AsPrinted`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, Target::ALL, Target::name).ok_or_else(|| SynthError::UnknownTarget(s.into()))
    }
}

/// What a page holds besides its text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Documents of every kind: running text with figures, charts, photos,
    /// logos, forms, signatures, stamps, highlighter and pen marks.
    #[default]
    Mixed,
    /// Text only: the same titles, paragraphs, headings, lists, tables,
    /// running headers and page numbers as [`Content::Mixed`] draws for the
    /// seed, without any of its non-text content (letters, reports, books).
    Text,
}

impl Content {
    /// Every content kind, in a stable order, the default first.
    pub const ALL: &'static [Content] = &[Content::Mixed, Content::Text];

    /// The lowercase name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Content::Mixed => "mixed",
            Content::Text => "text",
        }
    }
}

impl FromStr for Content {
    type Err = SynthError;

    /// Parses a content name; case-insensitive, empty means [`Content::Mixed`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, Content::ALL, Content::name)
            .ok_or_else(|| SynthError::UnknownContent(s.into()))
    }
}

/// The entry of `all` (whose first entry is the default) named `s`:
/// case-insensitive, `-` accepted for `_`, empty meaning the default.
fn parse_name<T: Copy>(s: &str, all: &[T], name: fn(T) -> &'static str) -> Option<T> {
    let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
    if wanted.is_empty() {
        return all.first().copied();
    }
    all.iter().copied().find(|t| name(*t) == wanted)
}

/// Resolution the generator's pixel sizes were designed at: a page of
/// [`PageSpec::pixels`] (no dpi) renders and degrades as a 75 dpi scan.
pub const REFERENCE_DPI: u32 = 75;
/// Lowest scan resolution accepted, in dots per inch.
pub const MIN_DPI: u32 = 50;
/// Highest scan resolution accepted, in dots per inch.
pub const MAX_DPI: u32 = 300;

/// A standard paper size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaperSize {
    /// ISO A4, 210 x 297 mm.
    A4,
    /// US Letter, 8.5 x 11 in.
    Letter,
}

impl PaperSize {
    /// Every paper size, in a stable order.
    pub const ALL: &'static [PaperSize] = &[PaperSize::A4, PaperSize::Letter];

    /// The lowercase name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PaperSize::A4 => "a4",
            PaperSize::Letter => "letter",
        }
    }

    /// Width and height in inches.
    pub fn inches(self) -> (f64, f64) {
        match self {
            PaperSize::A4 => (210.0 / 25.4, 297.0 / 25.4),
            PaperSize::Letter => (8.5, 11.0),
        }
    }
}

impl FromStr for PaperSize {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        PaperSize::ALL
            .iter()
            .copied()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| SynthError::UnknownPaperSize(s.to_owned()))
    }
}

/// The size of a page to render and the resolution it stands for.
///
/// With a `dpi`, fonts, rules and every degradation's pixel-sized
/// parameters (blur radii, stroke and line widths, mottle sizes, ...) scale by
/// `dpi / REFERENCE_DPI`, so a 300 dpi page looks like the same document
/// scanned finer, not like a page with more, smaller text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Scan resolution; `None` sizes text by the page width and keeps the
    /// degradations at their reference scale.
    pub dpi: Option<u32>,
    /// Whether non-text content is drawn among the text.
    #[serde(default)]
    pub content: Content,
}

impl PageSpec {
    /// A page of `width` x `height` pixels without a stated resolution.
    pub fn pixels(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            dpi: None,
            content: Content::Mixed,
        }
    }

    /// The same page with `content`.
    pub fn with_content(self, content: Content) -> Self {
        Self { content, ..self }
    }

    /// A page of `width` x `height` pixels scanned at `dpi`.
    pub fn sized_at(width: u32, height: u32, dpi: u32) -> Result<Self, SynthError> {
        check_dpi(dpi)?;
        check_size(width, height)?;
        Ok(Self {
            width,
            height,
            dpi: Some(dpi),
            content: Content::Mixed,
        })
    }

    /// A whole sheet of `paper` scanned at `dpi` (A4 at 150 dpi is 1240 x 1754).
    pub fn paper(paper: PaperSize, dpi: u32) -> Result<Self, SynthError> {
        check_dpi(dpi)?;
        let (w, h) = paper.inches();
        let px = |inches: f64| (inches * f64::from(dpi)).round() as u32;
        Self::sized_at(px(w), px(h), dpi)
    }

    /// How much larger than at [`REFERENCE_DPI`] every pixel size is.
    pub fn scale(&self) -> f32 {
        self.dpi.map_or(1.0, |d| d as f32 / REFERENCE_DPI as f32)
    }
}

fn check_dpi(dpi: u32) -> Result<(), SynthError> {
    if (MIN_DPI..=MAX_DPI).contains(&dpi) {
        Ok(())
    } else {
        Err(SynthError::InvalidDpi(dpi))
    }
}

/// Renders a clean page of `width` x `height` pixels; the same seed always
/// gives the same page.
pub fn render_page(
    fonts: &FontLibrary,
    width: u32,
    height: u32,
    seed: u64,
) -> Result<Page, SynthError> {
    render_page_as(
        fonts,
        &PageSpec::pixels(width, height),
        seed,
        Target::AsPrinted,
    )
}

/// Renders the page of `seed` for `target`: the same layout, text and
/// anti-aliasing for every target, only the ink and paper colours differ.
pub fn render_page_as(
    fonts: &FontLibrary,
    spec: &PageSpec,
    seed: u64,
    target: Target,
) -> Result<Page, SynthError> {
    let (width, height) = (spec.width, spec.height);
    check_size(width, height)?;
    if let Some(dpi) = spec.dpi {
        check_dpi(dpi)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut theme = Theme::sample(&mut rng, fonts, spec);
    if target == Target::Digital {
        theme.set_colours(DIGITAL_INK, DIGITAL_PAPER);
    }
    let mut writer = Writer::new(&theme, width, height);
    lay_out(&mut writer, &theme, &mut rng, spec);
    Ok(writer.finish())
}

/// Ink of a [`Target::Digital`] page.
pub const DIGITAL_INK: [u8; 3] = [0, 0, 0];
/// Paper of a [`Target::Digital`] page.
pub const DIGITAL_PAPER: [u8; 3] = [255, 255, 255];

/// Everything about a page's look that is fixed before layout starts.
struct Theme<'f> {
    body: TextStyle<'f>,
    italic: TextStyle<'f>,
    title: TextStyle<'f>,
    heading: TextStyle<'f>,
    table: TextStyle<'f>,
    table_head: TextStyle<'f>,
    small: TextStyle<'f>,
    paper: [u8; 3],
    ink: [u8; 3],
    /// Line box height as a multiple of the font size.
    leading: f32,
    justify: bool,
    /// First-line indent in pixels (0 when paragraphs are separated by space instead).
    indent: f32,
    /// Vertical space after a paragraph in pixels.
    para_gap: f32,
    left: f32,
    right: f32,
    top: f32,
    bottom: f32,
    columns: u32,
    gutter: f32,
    /// Thickness of a hairline rule in pixels (thicker at higher dpi).
    rule: i32,
    /// Whether the page is a [`Target::Digital`] twin: coloured content
    /// (logos, stamps, photos, highlighter) is drawn in its luminance.
    digital: bool,
}

impl<'f> Theme<'f> {
    /// Repaints every style with `ink` on `paper`; layout is untouched.
    fn set_colours(&mut self, ink: [u8; 3], paper: [u8; 3]) {
        for style in [
            &mut self.body,
            &mut self.italic,
            &mut self.title,
            &mut self.heading,
            &mut self.table,
            &mut self.table_head,
            &mut self.small,
        ] {
            style.ink = ink;
        }
        self.ink = ink;
        self.paper = paper;
        self.digital = true;
    }

    /// The colour to draw a coloured element in: `rgb` itself on an
    /// as-printed page, its BT.601 luminance as grey on a digital twin.
    fn colour(&self, rgb: [u8; 3]) -> [u8; 3] {
        if self.digital {
            let [r, g, b] = rgb.map(u32::from);
            let y = ((77 * r + 150 * g + 29 * b + 128) >> 8).min(255) as u8;
            [y, y, y]
        } else {
            rgb
        }
    }

    fn sample(rng: &mut ChaCha8Rng, fonts: &'f FontLibrary, spec: &PageSpec) -> Self {
        let (width, height) = (spec.width, spec.height);
        // Pack first, then family, then weight: serif, sans, typewriter,
        // condensed, mono and handwriting looks mix whatever the number of
        // families each pack has installed.
        let (body_family, body_weight) = fonts.pick_body(rng);
        let head_family = if rng.random_bool(0.5) {
            body_family
        } else {
            fonts.pick_body(rng).0
        };
        let head_weight = head_family.heading_weight(rng);
        let table_family = if rng.random_bool(0.25) {
            fonts
                .pick_in(rng, &[FontPack::Mono, FontPack::Typewriter])
                .unwrap_or(body_family)
        } else {
            body_family
        };

        let (w, h) = (width as f32, height as f32);
        // Body text spans the same share of a Letter-wide sheet at any dpi;
        // without a dpi it spans the same share of the page width.
        let base = match spec.dpi {
            Some(dpi) => 8.5 * dpi as f32,
            None => w.min(h * 0.8),
        };
        let px = (base * rng.random_range(0.0175..0.027)).max(7.0).round();
        let ink = match rng.random_range(0..10) {
            0..6 => {
                let v = rng.random_range(0..28);
                [v, v, v]
            }
            6 | 7 => {
                let v = rng.random_range(35..75);
                [v, v, v]
            }
            8 => [
                rng.random_range(10..35),
                rng.random_range(20..45),
                rng.random_range(70..120),
            ],
            _ => [
                rng.random_range(55..80),
                rng.random_range(35..50),
                rng.random_range(20..35),
            ],
        };
        let style = |family: &'f FontFamily, weight: u16, italic, size: f32| TextStyle {
            face: family.face_weighted(weight, italic),
            px: size.round().max(6.0),
            ink,
        };
        let strong = |bold: bool| if bold { head_weight } else { 400 };
        let table_px = px * rng.random_range(0.82..1.0);
        let leading = rng.random_range(1.15..1.6);
        let first_line_indent = rng.random_bool(0.4);
        let columns = if w * 0.78 / 2.0 > px * 20.0 && rng.random_bool(0.35) {
            2
        } else {
            1
        };
        let pv = rng.random_range(244..=255u8);
        let warm = rng.random_range(0..=6u8).min(pv);
        Self {
            body: style(body_family, body_weight, false, px),
            italic: style(body_family, body_weight, true, px),
            title: style(
                head_family,
                strong(rng.random_bool(0.8)),
                false,
                px * rng.random_range(1.6..2.4),
            ),
            heading: style(
                head_family,
                strong(rng.random_bool(0.85)),
                rng.random_bool(0.15),
                px * rng.random_range(1.1..1.5),
            ),
            table: style(table_family, 400, false, table_px),
            table_head: style(table_family, 700, false, table_px),
            small: style(body_family, body_weight, rng.random_bool(0.5), px * 0.8),
            paper: [pv, pv, pv - warm],
            ink,
            leading,
            justify: rng.random_bool(0.5),
            indent: if first_line_indent {
                px * rng.random_range(1.5..3.0)
            } else {
                0.0
            },
            para_gap: if first_line_indent {
                0.0
            } else {
                px * leading * rng.random_range(0.35..1.0)
            },
            left: w * rng.random_range(0.06..0.14),
            right: w * rng.random_range(0.06..0.14),
            top: h * rng.random_range(0.05..0.1),
            bottom: h * rng.random_range(0.05..0.1),
            columns,
            gutter: w * rng.random_range(0.03..0.06),
            rule: (px / 14.0).round().max(1.0) as i32,
            digital: false,
        }
    }
}

/// The kinds of block a column is filled with.
#[derive(Clone, Copy)]
enum Block {
    Paragraph,
    Heading,
    List,
    Table,
    Quote,
    /// A plotters chart with its caption.
    Chart,
    /// A procedural photograph with its caption.
    Photo,
    /// Labelled fields and checkboxes.
    Form,
}

/// The next block: the planned figure or form that is `due` at this point
/// of the column, otherwise running text, tables and the like at random.
fn choose_block(rng: &mut ChaCha8Rng, due: Option<Block>) -> Block {
    // Drawn even when a planned block is due, so the text that follows is
    // the same wherever the planned block lands.
    let roll = rng.random_range(0..100);
    if let Some(block) = due {
        return block;
    }
    match roll {
        0..55 => Block::Paragraph,
        55..67 => Block::Heading,
        67..79 => Block::List,
        79..92 => Block::Table,
        _ => Block::Quote,
    }
}

/// Header, letterhead or masthead, title, columns of blocks with the
/// planned figures and forms, signature and footer (the text in reading
/// order), then marks over the finished page: highlighter, pen marks,
/// margin notes and stamps.
fn lay_out(w: &mut Writer, theme: &Theme, rng: &mut ChaCha8Rng, spec: &PageSpec) {
    let (width, height) = (spec.width, spec.height);
    let (pw, ph) = (width as f32, height as f32);
    let content_w = pw - theme.left - theme.right;
    let bottom = ph - theme.bottom;
    // Non-text content draws from a stream of its own: where a figure
    // lands can move by a line between resolutions, and that must not
    // change the text sampled around it.
    let extra = &mut ChaCha8Rng::seed_from_u64(rng.random());
    let mut plan = Plan::sample(extra, theme, width);
    if spec.content == Content::Text {
        plan.keep_text_only();
    }
    let mut full = Column {
        x: theme.left,
        width: content_w,
        y: theme.top,
        bottom,
    };

    if plan.header {
        w.running_header(rng, &mut full, plan.header_number.then_some(&plan.folio));
    }
    if plan.letterhead {
        w.letterhead(extra, &mut full);
    }
    if plan.columns == 3 {
        w.masthead(extra, &mut full);
    }
    w.title(rng, &mut full);

    // Figures, forms and the signature share at most half the text area,
    // so every page stays mostly text.
    let top = full.y;
    let mut budget = (bottom - top) * 0.5;
    let signature_h = w.signature_height();
    plan.signature &= signature_h <= budget;
    if plan.signature {
        budget -= signature_h;
    }

    let cols = plan.columns as f32;
    let col_w = (content_w - plan.gutter * (cols - 1.0)) / cols;
    let mut pending: std::collections::VecDeque<Insert> = plan.inserts.drain(..).collect();
    let mut carry: Option<(Vec<&'static str>, usize)> = None;
    let mut lowest = top;
    let mut end = (theme.left, col_w, top);
    for c in 0..plan.columns {
        let last = c + 1 == plan.columns;
        let mut col = Column {
            x: theme.left + c as f32 * (col_w + plan.gutter),
            width: col_w,
            y: top,
            bottom: if last && plan.signature {
                bottom - signature_h
            } else {
                bottom
            },
        };
        let mut full_already = false;
        if let Some((words, from)) = carry.take()
            && let Flow::Stopped(at) = w.paragraph(&mut col, &words, from, theme.body, false)
        {
            carry = Some((words, at));
            full_already = true;
        }
        // Blocks that do not fit are skipped, so stop once not even a body
        // line fits; the cap only guards against surprises.
        let body_line = theme.body.px * theme.leading;
        let mut previous = Block::Paragraph;
        for _ in 0..1000 {
            if full_already || col.y + body_line > col.bottom {
                break;
            }
            let reached = |i: &&Insert| i.column <= c && col.y >= top + i.at * (col.bottom - top);
            let due = pending.front().filter(reached).map(|i| i.block);
            if due.is_some() {
                pending.pop_front();
            }
            let mut block = choose_block(rng, due);
            // A heading always introduces something other than a heading.
            if matches!((previous, block), (Block::Heading, Block::Heading)) {
                block = Block::Paragraph;
            }
            previous = block;
            let flow = match block {
                Block::Paragraph => {
                    let count = rng.random_range(2..=6);
                    let words = corpus::paragraph_words(rng, count);
                    let flow = w.paragraph(&mut col, &words, 0, theme.body, true);
                    if let Flow::Stopped(at) = flow {
                        carry = Some((words, at));
                    }
                    flow
                }
                Block::Heading => w.heading(rng, &mut col),
                Block::List => w.list(rng, &mut col),
                Block::Table => w.table(rng, &mut col),
                Block::Quote => w.quote(rng, &mut col),
                Block::Chart | Block::Photo | Block::Form => {
                    let before = col.y;
                    let placed = match block {
                        Block::Chart => w.figure(extra, &mut col, Figure::Chart, budget),
                        Block::Photo => w.figure(extra, &mut col, Figure::Photo, budget),
                        _ => w.form(extra, &mut col, budget),
                    };
                    budget -= col.y - before;
                    if !placed && !last {
                        // Try again at the top of the next column.
                        pending.push_front(Insert {
                            block,
                            column: c + 1,
                            at: 0.0,
                        });
                    }
                    Flow::Done
                }
            };
            if let Flow::Stopped(_) = flow {
                break;
            }
        }
        lowest = lowest.max(col.y.min(col.bottom));
        end = (col.x, col.width, col.y);
    }
    if plan.column_rules && plan.columns > 1 {
        let xs: Vec<f32> = (1..plan.columns)
            .map(|c| theme.left + c as f32 * (col_w + plan.gutter) - plan.gutter * 0.5)
            .collect();
        w.column_rules(&xs, top, lowest);
    }
    if plan.signature {
        let (x, width, y) = end;
        let mut sig = Column {
            x,
            width,
            y: y.min(bottom - signature_h),
            bottom,
        };
        w.signature_block(extra, &mut sig);
    }
    if plan.footer {
        w.footer(rng, height, &plan.folio);
    }
    if plan.highlights > 0 {
        w.highlight(extra, plan.highlights);
    }
    if plan.pen_mark {
        w.pen_mark(extra);
    }
    if plan.margin_note {
        w.margin_note(extra);
    }
    if plan.stamp {
        w.stamp(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_parse() {
        assert_eq!("".parse::<Target>().expect("empty"), Target::AsPrinted);
        assert_eq!(
            " As-Printed ".parse::<Target>().expect("dash"),
            Target::AsPrinted
        );
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>().expect("own name"), *t);
        }
        assert!("scanned".parse::<Target>().is_err());
    }

    fn fonts() -> FontLibrary {
        FontLibrary::system().expect("the build machines have DejaVu installed")
    }

    #[test]
    fn same_seed_same_page() {
        let f = fonts();
        let a = render_page(&f, 320, 400, 7).expect("valid size");
        let b = render_page(&f, 320, 400, 7).expect("valid size");
        assert_eq!(a.image, b.image);
        assert_eq!(a.text, b.text);
        assert_eq!(a.fonts_used, b.fonts_used);
        let c = render_page(&f, 320, 400, 8).expect("valid size");
        assert_ne!(a.image, c.image);
        assert_ne!(a.text, c.text);
    }

    #[test]
    fn page_has_text_and_ink() {
        let f = fonts();
        for seed in 0..6 {
            let page = render_page(&f, 480, 620, seed).expect("valid size");
            let words = page.text.split_whitespace().count();
            assert!(words > 60, "seed {seed}: only {words} words");
            assert!(page.text.lines().count() > 8);
            assert!(!page.fonts_used.is_empty());
            let dark = page
                .image
                .pixels()
                .filter(|p| {
                    (77 * u32::from(p.0[0]) + 150 * u32::from(p.0[1]) + 29 * u32::from(p.0[2])) >> 8
                        < 110
                })
                .count();
            assert!(dark > 1500, "seed {seed}: {dark} dark pixels");
            // Ink stays inside the page: the outermost pixel rows are paper.
            let top_row_dark = (0..480)
                .filter(|&x| page.image.get_pixel(x, 0).0[0] < 200)
                .count();
            assert_eq!(top_row_dark, 0);
        }
    }

    #[test]
    fn text_respects_the_bottom_margin() {
        let f = fonts();
        for seed in 10..14 {
            let page = render_page(&f, 400, 520, seed).expect("valid size");
            // The footer may sit in the margin, but nothing touches the edge.
            let last_rows = (517..520)
                .flat_map(|y| (0..400).map(move |x| (x, y)))
                .filter(|&(x, y)| page.image.get_pixel(x, y).0[0] < 128)
                .count();
            assert_eq!(last_rows, 0, "seed {seed} draws into the bottom edge");
        }
    }

    #[test]
    fn paper_sizes_at_a_dpi() {
        let a4 = PageSpec::paper(PaperSize::A4, 150).expect("valid");
        assert_eq!((a4.width, a4.height, a4.dpi), (1240, 1754, Some(150)));
        let letter = PageSpec::paper(PaperSize::Letter, 300).expect("valid");
        assert_eq!((letter.width, letter.height), (2550, 3300));
        assert!((letter.scale() - 4.0).abs() < 1e-6);
        assert!((PageSpec::pixels(640, 832).scale() - 1.0).abs() < 1e-6);
        for dpi in [0, MIN_DPI - 1, MAX_DPI + 1] {
            assert!(matches!(
                PageSpec::paper(PaperSize::A4, dpi),
                Err(SynthError::InvalidDpi(d)) if d == dpi
            ));
        }
        assert_eq!(
            "Letter".parse::<PaperSize>().expect("known"),
            PaperSize::Letter
        );
        let err = "a3".parse::<PaperSize>().expect_err("unknown");
        assert!(err.to_string().contains("a4, letter"), "{err}");
        let f = fonts();
        let bad = PageSpec {
            width: 400,
            height: 500,
            dpi: Some(1000),
            content: Content::Mixed,
        };
        assert!(matches!(
            render_page_as(&f, &bad, 1, Target::AsPrinted),
            Err(SynthError::InvalidDpi(1000))
        ));
    }

    /// Dark (ink) pixels of a page.
    fn ink_pixels(img: &RgbImage) -> usize {
        img.pixels().filter(|p| p.0[0] < 128).count()
    }

    #[test]
    fn a_finer_scan_is_the_same_document_with_larger_strokes() {
        let f = fonts();
        for seed in [3u64, 4, 5] {
            let low = render_page_as(
                &f,
                &PageSpec::paper(PaperSize::Letter, 75).expect("valid"),
                seed,
                Target::AsPrinted,
            )
            .expect("renders");
            let high = render_page_as(
                &f,
                &PageSpec::paper(PaperSize::Letter, 150).expect("valid"),
                seed,
                Target::AsPrinted,
            )
            .expect("renders");
            // Twice the dpi: twice the pixels per side, four times the ink
            // pixels for the same text (fonts and rules scale, the layout
            // does not gain lines).
            assert!(high.image.width().abs_diff(2 * low.image.width()) <= 1);
            let (lo, hi) = (ink_pixels(&low.image), ink_pixels(&high.image));
            let ratio = hi as f64 / lo as f64;
            assert!(
                (2.5..5.5).contains(&ratio),
                "seed {seed}: ink ratio {ratio:.2}"
            );
            let (wl, wh) = (
                low.text.split_whitespace().count(),
                high.text.split_whitespace().count(),
            );
            assert!(
                wl.abs_diff(wh) * 10 <= wl,
                "seed {seed}: {wl} words at 75 dpi, {wh} at 150"
            );
        }
    }

    #[test]
    fn size_limits() {
        let f = fonts();
        for (w, h) in [(63, 200), (200, 63), (4097, 200), (200, 4097)] {
            let err = render_page(&f, w, h, 1).err();
            assert!(
                matches!(err, Some(SynthError::InvalidSize { .. })),
                "{w}x{h}: {err:?}"
            );
        }
        let tiny = render_page(&f, MIN_SIZE, MIN_SIZE, 1).expect("minimum size is valid");
        assert_eq!(tiny.image.dimensions(), (MIN_SIZE, MIN_SIZE));
    }
}
