//! Clean synthetic document pages: real prose laid out as headings,
//! paragraphs, lists and ruled tables in one or two columns.

mod blocks;
mod corpus;
mod text;

use std::str::FromStr;

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::fonts::FontFamily;
use crate::{FontLibrary, SynthError};
use blocks::{Column, Flow, Writer};
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
    /// Every target, in a stable order.
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
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        if wanted.is_empty() {
            return Ok(Target::AsPrinted);
        }
        Target::ALL
            .iter()
            .copied()
            .find(|t| t.name() == wanted)
            .ok_or_else(|| SynthError::UnknownTarget(s.to_owned()))
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
    render_page_as(fonts, width, height, seed, Target::AsPrinted)
}

/// Renders the page of `seed` for `target`: the same layout, text and
/// anti-aliasing for every target, only the ink and paper colours differ.
pub fn render_page_as(
    fonts: &FontLibrary,
    width: u32,
    height: u32,
    seed: u64,
    target: Target,
) -> Result<Page, SynthError> {
    check_size(width, height)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut theme = Theme::sample(&mut rng, fonts, width, height);
    if target == Target::Digital {
        theme.set_colours(DIGITAL_INK, DIGITAL_PAPER);
    }
    let mut writer = Writer::new(&theme, width, height);
    lay_out(&mut writer, &theme, &mut rng, width, height);
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
    }

    fn sample(rng: &mut ChaCha8Rng, fonts: &'f FontLibrary, width: u32, height: u32) -> Self {
        let families = fonts.families();
        let pick = |rng: &mut ChaCha8Rng| -> &'f FontFamily {
            &families[rng.random_range(0..families.len())]
        };
        let body_family = pick(rng);
        let head_family = if rng.random_bool(0.5) {
            body_family
        } else {
            pick(rng)
        };
        let monos: Vec<&FontFamily> = families.iter().filter(|f| f.monospace).collect();
        let table_family = if !monos.is_empty() && rng.random_bool(0.25) {
            monos[rng.random_range(0..monos.len())]
        } else {
            body_family
        };

        let (w, h) = (width as f32, height as f32);
        let base = w.min(h * 0.8);
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
        let style = |family: &'f FontFamily, bold, italic, size: f32| TextStyle {
            face: family.face(bold, italic),
            px: size.round().max(6.0),
            ink,
        };
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
            body: style(body_family, false, false, px),
            italic: style(body_family, false, true, px),
            title: style(
                head_family,
                rng.random_bool(0.8),
                false,
                px * rng.random_range(1.6..2.4),
            ),
            heading: style(
                head_family,
                rng.random_bool(0.85),
                rng.random_bool(0.15),
                px * rng.random_range(1.1..1.5),
            ),
            table: style(table_family, false, false, table_px),
            table_head: style(table_family, true, false, table_px),
            small: style(body_family, false, rng.random_bool(0.5), px * 0.8),
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
}

fn choose_block(rng: &mut ChaCha8Rng) -> Block {
    match rng.random_range(0..100) {
        0..55 => Block::Paragraph,
        55..67 => Block::Heading,
        67..79 => Block::List,
        79..92 => Block::Table,
        _ => Block::Quote,
    }
}

/// Header, title, columns of blocks, footer; in reading order.
fn lay_out(w: &mut Writer, theme: &Theme, rng: &mut ChaCha8Rng, width: u32, height: u32) {
    let (pw, ph) = (width as f32, height as f32);
    let content_w = pw - theme.left - theme.right;
    let bottom = ph - theme.bottom;
    let mut full = Column {
        x: theme.left,
        width: content_w,
        y: theme.top,
        bottom,
    };

    if rng.random_bool(0.3) {
        w.running_header(rng, &mut full);
    }
    w.title(rng, &mut full);

    let cols = theme.columns as f32;
    let col_w = (content_w - theme.gutter * (cols - 1.0)) / cols;
    let mut carry: Option<(Vec<&'static str>, usize)> = None;
    for c in 0..theme.columns {
        let mut col = Column {
            x: theme.left + c as f32 * (col_w + theme.gutter),
            width: col_w,
            y: full.y,
            bottom,
        };
        if let Some((words, from)) = carry.take() {
            match w.paragraph(&mut col, &words, from, theme.body, false) {
                Flow::Done => {}
                Flow::Stopped(at) => {
                    carry = Some((words, at));
                    continue;
                }
            }
        }
        // Blocks that do not fit are skipped, so stop once not even a body
        // line fits; the cap only guards against surprises.
        let body_line = theme.body.px * theme.leading;
        let mut previous = Block::Paragraph;
        for _ in 0..1000 {
            if col.y + body_line > col.bottom {
                break;
            }
            let mut block = choose_block(rng);
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
            };
            if let Flow::Stopped(_) = flow {
                break;
            }
        }
    }
    if rng.random_bool(0.5) {
        w.footer(rng, height);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
