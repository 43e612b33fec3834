//! Drawing blocks (title, headings, paragraphs, lists, tables, quotes) into
//! columns while recording the ground-truth text line by line.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::content::{Element, LineBox};
use super::text::{Canvas, TextStyle};
use super::{Page, Theme, corpus};

/// A vertical strip being filled from `y` down to `bottom`.
pub(super) struct Column {
    pub x: f32,
    pub width: f32,
    pub y: f32,
    pub bottom: f32,
}

/// Whether a block finished, or stopped because its column is full
/// (carrying the index of the first word not drawn).
pub(super) enum Flow {
    Done,
    Stopped(usize),
}

/// Draws onto the page and keeps the text in reading order.
pub(super) struct Writer<'t, 'f> {
    pub(super) theme: &'t Theme<'f>,
    pub(super) canvas: Canvas,
    text: String,
    fonts_used: Vec<String>,
    /// Number of the next numbered section heading.
    section: u32,
    /// Number of the next figure (0 until the first figure picks one).
    pub(super) figure_no: u32,
    /// Every line drawn through `emit_line`, for marks made over the text.
    pub(super) lines: Vec<LineBox>,
    elements: Vec<Element>,
}

impl<'t, 'f> Writer<'t, 'f> {
    pub fn new(theme: &'t Theme<'f>, width: u32, height: u32) -> Self {
        Self {
            theme,
            canvas: Canvas::new(width, height, theme.paper),
            text: String::new(),
            fonts_used: Vec::new(),
            section: 0,
            figure_no: 0,
            lines: Vec::new(),
            elements: Vec::new(),
        }
    }

    pub fn finish(self) -> Page {
        Page {
            image: self.canvas.image,
            text: self.text,
            fonts_used: self.fonts_used,
            elements: self.elements,
        }
    }

    /// Page width and height in pixels.
    pub fn page_size(&self) -> (f32, f32) {
        let (w, h) = self.canvas.image.dimensions();
        (w as f32, h as f32)
    }

    /// Records an element whose box spans `x0..x1` x `y0..y1`, rounded
    /// outwards and clipped to the page; empty boxes are dropped.
    pub fn add_element(
        &mut self,
        kind: &str,
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        params: serde_json::Value,
    ) {
        let (w, h) = self.canvas.image.dimensions();
        let clip = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
        let (left, top) = (clip(x0.floor(), w), clip(y0.floor(), h));
        let (right, bottom) = (clip(x1.ceil(), w), clip(y1.ceil(), h));
        if right > left && bottom > top {
            self.elements.push(Element {
                kind: kind.to_owned(),
                x: left,
                y: top,
                width: right - left,
                height: bottom - top,
                params,
            });
        }
    }

    pub(super) fn line_height(&self, style: &TextStyle) -> f32 {
        style.px * self.theme.leading
    }

    /// Baseline offset that centres the font's ascent in a line box.
    fn baseline(&self, style: &TextStyle) -> f32 {
        style.ascent() + (self.line_height(style) - style.px) * 0.5
    }

    /// Draws words separated by `gap` (a normal space when `None`);
    /// returns the left and right edge of every word.
    pub(super) fn draw_words(
        &mut self,
        style: &TextStyle,
        x: f32,
        top: f32,
        words: &[&str],
        gap: Option<f32>,
    ) -> Vec<(f32, f32)> {
        let gap = gap.unwrap_or_else(|| style.space());
        let baseline = top + self.baseline(style);
        let mut pen = x;
        let mut extents = Vec::with_capacity(words.len());
        for word in words {
            let advance = self.canvas.draw_text(style, pen, baseline, word);
            extents.push((pen, pen + advance));
            pen += advance + gap;
        }
        extents
    }

    /// Draws a line of words and records it as ground truth.
    pub(super) fn emit_line(
        &mut self,
        style: &TextStyle,
        x: f32,
        top: f32,
        words: &[&str],
        gap: Option<f32>,
    ) {
        let extents = self.draw_words(style, x, top, words, gap);
        self.record(style, &words.join(" "));
        self.lines.push(LineBox {
            baseline: top + self.baseline(style),
            px: style.px,
            words: extents,
            text: words.iter().map(|w| (*w).to_owned()).collect(),
        });
    }

    /// Draws a single-line string and records it as ground truth.
    pub(super) fn emit_text(&mut self, style: &TextStyle, x: f32, top: f32, text: &str) {
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        self.emit_line(style, x, top, &words, None);
    }

    pub(super) fn natural_width(style: &TextStyle, words: &[&str]) -> f32 {
        let spaces = words.len().saturating_sub(1) as f32 * style.space();
        words.iter().map(|w| style.width(w)).sum::<f32>() + spaces
    }

    /// Greedy line break: the end index of the line starting at `from`.
    fn take_line(style: &TextStyle, words: &[&str], from: usize, width: f32) -> usize {
        let space = style.space();
        let mut used = 0.0;
        let mut end = from;
        while end < words.len() {
            let w = style.width(words[end]) + if end > from { space } else { 0.0 };
            if used + w > width {
                break;
            }
            used += w;
            end += 1;
        }
        end
    }

    /// Wraps `words[from..]` into the column; stops at the bottom.
    pub fn paragraph(
        &mut self,
        col: &mut Column,
        words: &[&str],
        from: usize,
        style: TextStyle,
        new_paragraph: bool,
    ) -> Flow {
        let lh = self.line_height(&style);
        let mut i = from;
        let mut first = new_paragraph;
        while i < words.len() {
            if col.y + lh > col.bottom {
                return Flow::Stopped(i);
            }
            let indent = if first { self.theme.indent } else { 0.0 };
            let avail = col.width - indent;
            let end = Self::take_line(&style, words, i, avail);
            if end == i {
                // A single word wider than the column is left out rather
                // than drawn past the margin.
                i += 1;
                continue;
            }
            let line = &words[i..end];
            let gap = (self.theme.justify && end < words.len() && line.len() > 1).then(|| {
                let ink: f32 = line.iter().map(|w| style.width(w)).sum();
                (avail - ink) / (line.len() - 1) as f32
            });
            // Very loose lines look wrong when justified; set them ragged.
            let gap = gap.filter(|g| *g < style.space() * 3.0);
            self.emit_line(&style, col.x + indent, col.y, line, gap);
            col.y += lh;
            i = end;
            first = false;
        }
        col.y += self.theme.para_gap;
        Flow::Done
    }

    /// Wrapped lines, each centred or left-aligned, for titles and headings.
    pub(super) fn short_block(
        &mut self,
        col: &mut Column,
        words: &[&str],
        style: TextStyle,
        centre: bool,
    ) -> Flow {
        let lh = self.line_height(&style);
        let mut i = 0;
        while i < words.len() {
            if col.y + lh > col.bottom {
                return Flow::Stopped(0);
            }
            let end = Self::take_line(&style, words, i, col.width);
            if end == i {
                i += 1;
                continue;
            }
            let line = &words[i..end];
            let x = if centre {
                col.x + (col.width - Self::natural_width(&style, line)) * 0.5
            } else {
                col.x
            };
            self.emit_line(&style, x, col.y, line, None);
            col.y += lh;
            i = end;
        }
        Flow::Done
    }

    pub fn title(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) {
        let words = corpus::heading(rng, 7);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let centre = rng.random_bool(0.5);
        let _ = self.short_block(col, &words, self.theme.title, centre);
        if rng.random_bool(0.4) {
            let sub = corpus::sentence(rng, 9);
            let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
            let _ = self.short_block(col, &sub, self.theme.small, centre);
        }
        col.y += self.line_height(&self.theme.body) * rng.random_range(0.5..1.2);
        if rng.random_bool(0.3) && col.y < col.bottom {
            self.canvas.fill_rect(
                col.x as i32,
                col.y as i32,
                col.width as i32,
                self.theme.rule,
                self.theme.ink,
            );
            col.y += self.line_height(&self.theme.body) * 0.6;
        }
    }

    pub fn heading(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) -> Flow {
        let style = self.theme.heading;
        let body_lh = self.line_height(&self.theme.body);
        // Keep a heading with at least two lines of what follows it.
        if col.y + body_lh * 0.5 + self.line_height(&style) + body_lh * 2.0 > col.bottom {
            return Flow::Done;
        }
        col.y += body_lh * 0.5;
        let mut words = corpus::heading(rng, 6);
        if self.section == 0 {
            // Whether this page numbers its sections, and from where.
            self.section = if rng.random_bool(0.4) {
                rng.random_range(1..9)
            } else {
                u32::MAX
            };
        }
        if self.section != u32::MAX {
            words.insert(0, format!("{}.", self.section));
            self.section += 1;
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let flow = self.short_block(col, &words, style, false);
        col.y += body_lh * 0.25;
        flow
    }

    pub fn quote(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) -> Flow {
        let inset = self.theme.body.px * 2.0;
        if col.width < inset * 6.0 {
            return Flow::Done;
        }
        let mut inner = Column {
            x: col.x + inset,
            width: col.width - 2.0 * inset,
            y: col.y,
            bottom: col.bottom,
        };
        let count = rng.random_range(1..=3);
        let words = corpus::paragraph_words(rng, count);
        let flow = self.paragraph(&mut inner, &words, 0, self.theme.italic, false);
        col.y = inner.y.max(col.y + self.theme.para_gap);
        match flow {
            Flow::Done => Flow::Done,
            Flow::Stopped(_) => Flow::Stopped(0),
        }
    }

    pub fn list(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) -> Flow {
        let style = self.theme.body;
        let lh = self.line_height(&style);
        let items = rng.random_range(2..=6);
        let kind = rng.random_range(0..4);
        let bullet = if style.has_glyph('\u{2022}') {
            "\u{2022}"
        } else {
            "-"
        };
        let marker = |k: usize| -> String {
            match kind {
                0 => bullet.to_owned(),
                1 => "-".to_owned(),
                2 => format!("{}.", k + 1),
                _ => format!("({})", char::from(b'a' + (k % 26) as u8)),
            }
        };
        let lead = style.px * rng.random_range(0.0..2.0);
        let marker_w = (0..items)
            .map(|k| style.width(&marker(k)))
            .fold(0.0, f32::max);
        let text_x = col.x + lead + marker_w + style.space() * 1.5;
        let text_w = col.x + col.width - text_x;
        if text_w < style.px * 6.0 {
            return Flow::Done;
        }
        col.y += lh * 0.2;
        for k in 0..items {
            let max_words = rng.random_range(6..=22);
            let sentence = corpus::sentence(rng, max_words);
            let words: Vec<&str> = sentence.iter().map(String::as_str).collect();
            let mut i = 0;
            while i < words.len() {
                if col.y + lh > col.bottom {
                    return Flow::Stopped(0);
                }
                let end = Self::take_line(&style, &words, i, text_w);
                if end == i {
                    i += 1;
                    continue;
                }
                if i == 0 {
                    // Marker and first line form one ground-truth line.
                    let m = marker(k);
                    let baseline = col.y + self.baseline(&style);
                    self.canvas.draw_text(&style, col.x + lead, baseline, &m);
                    self.draw_words(&style, text_x, col.y, &words[..end], None);
                    self.record(&style, &format!("{m} {}", words[..end].join(" ")));
                } else {
                    self.emit_line(&style, text_x, col.y, &words[i..end], None);
                }
                col.y += lh;
                i = end;
            }
        }
        col.y += self.theme.para_gap.max(lh * 0.3);
        Flow::Done
    }

    /// A ruled table with a bold header row; skipped when it cannot fit.
    pub fn table(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) -> Flow {
        let head = self.theme.table_head;
        let body = self.theme.table;
        let pad = body.px * 0.6;
        let row_h = body.px * rng.random_range(1.45..1.9);
        let mut ncols = rng.random_range(2..=5);
        let nrows = rng.random_range(3..=8);
        let kinds: Vec<u32> = (0..ncols)
            .map(|c| if c == 0 { 0 } else { rng.random_range(0..6) })
            .collect();
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(nrows + 1);
        let mut heads: Vec<String> = Vec::with_capacity(ncols);
        for &k in &kinds {
            let mut h = header(rng, k);
            for _ in 0..8 {
                if !heads.iter().any(|x| x == h) {
                    break;
                }
                h = header(rng, k);
            }
            heads.push(h.to_owned());
        }
        cells.push(heads);
        for _ in 0..nrows {
            cells.push(kinds.iter().map(|&k| cell(rng, k)).collect());
        }
        let col_width = |c: usize, cells: &[Vec<String>]| {
            cells
                .iter()
                .enumerate()
                .map(|(r, row)| {
                    if r == 0 {
                        head.width(&row[c])
                    } else {
                        body.width(&row[c])
                    }
                })
                .fold(0.0, f32::max)
                + 2.0 * pad
        };
        let mut widths: Vec<f32> = (0..ncols).map(|c| col_width(c, &cells)).collect();
        while widths.iter().sum::<f32>() > col.width && ncols > 2 {
            ncols -= 1;
            widths.pop();
        }
        let total_w: f32 = widths.iter().sum();
        let caption = rng.random_bool(0.4);
        let gap = self.line_height(&body) * 0.5;
        let needed = gap * 2.0
            + row_h * (nrows + 1) as f32
            + if caption {
                self.line_height(&self.theme.small)
            } else {
                0.0
            };
        if total_w > col.width || col.y + needed > col.bottom {
            return Flow::Done;
        }
        col.y += gap;
        if caption {
            let mut words = vec![format!("Table {}.", rng.random_range(1..20))];
            words.extend(corpus::heading(rng, 5));
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let _ = self.short_block(col, &words, self.theme.small, false);
        }
        let x0 = if rng.random_bool(0.5) {
            col.x
        } else {
            col.x + (col.width - total_w) * 0.5
        };
        let grid = rng.random_range(0..3); // 0: three rules, 1: every row, 2: full grid
        let ink = self.theme.ink;
        let (xi, wi) = (x0.round() as i32, total_w.round() as i32);
        let rule = self.theme.rule;
        let thick = if rng.random_bool(0.5) { 2 * rule } else { rule };
        let top = col.y;
        self.canvas.fill_rect(xi, top as i32, wi, thick, ink);
        for (r, row) in cells.iter().enumerate() {
            let style = if r == 0 { head } else { body };
            let y = top + r as f32 * row_h;
            let baseline = y + style.ascent() + (row_h - style.px) * 0.5;
            let mut x = x0;
            let mut drawn: Vec<&str> = Vec::with_capacity(ncols);
            for (c, text) in row.iter().take(ncols).enumerate() {
                let numeric = r > 0 && kinds[c] != 0;
                let tx = if numeric {
                    x + widths[c] - pad - style.width(text)
                } else {
                    x + pad
                };
                self.canvas.draw_text(&style, tx, baseline, text);
                drawn.push(text);
                x += widths[c];
            }
            self.record(&style, &drawn.join(" "));
            let rule_y = (y + row_h) as i32;
            if r == 0 || grid >= 1 && r < nrows {
                self.canvas.fill_rect(xi, rule_y, wi, rule, ink);
            }
        }
        let bottom = top + row_h * (nrows + 1) as f32;
        self.canvas.fill_rect(xi, bottom as i32, wi, thick, ink);
        if grid == 2 {
            let mut x = x0;
            for w in widths.iter().take(ncols) {
                self.canvas.fill_rect(
                    x.round() as i32,
                    top as i32,
                    rule,
                    (bottom - top) as i32,
                    ink,
                );
                x += w;
            }
            self.canvas.fill_rect(
                x.round() as i32 - rule,
                top as i32,
                rule,
                (bottom - top) as i32,
                ink,
            );
        }
        col.y = bottom + gap;
        Flow::Done
    }

    /// Notes that `style`'s face was used for drawn text.
    pub(super) fn note_face(&mut self, style: &TextStyle) {
        if !self.fonts_used.contains(&style.face.name) {
            self.fonts_used.push(style.face.name.clone());
        }
    }

    /// Records a line drawn by hand (table rows).
    /// Where the ground truth ends now, for [`Writer::text_since`].
    pub(super) fn text_mark(&self) -> usize {
        self.text.len()
    }

    /// The lines recorded since `mark`, joined by spaces.
    pub(super) fn text_since(&self, mark: usize) -> String {
        self.text[mark..]
            .trim_start_matches('\n')
            .replace('\n', " ")
    }

    pub(super) fn record(&mut self, style: &TextStyle, line: &str) {
        self.note_face(style);
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(line);
    }
}

/// A column header that suits the column's kind of cell.
fn header(rng: &mut ChaCha8Rng, kind: u32) -> &'static str {
    let options: &[&str] = match kind {
        0 => &[
            "Name", "Place", "Item", "Parish", "Station", "Subject", "Account", "District",
        ],
        1 => &[
            "Count", "Number", "Members", "Acres", "Copies", "Visitors", "Tons",
        ],
        2 => &[
            "Mean", "Depth", "Weight", "Length", "Ratio", "Index", "Width",
        ],
        3 => &["Share", "Rate", "Change", "Growth", "Yield", "Loss"],
        4 => &["Year", "Founded", "Opened", "Since", "Built"],
        _ => &[
            "Price", "Cost", "Rent", "Total", "Paid", "Balance", "Amount",
        ],
    };
    options[rng.random_range(0..options.len())]
}

/// A table cell of the given kind: 0 word, 1 count, 2 decimal, 3 percent, 4 year, 5 money.
fn cell(rng: &mut ChaCha8Rng, kind: u32) -> String {
    match kind {
        0 => corpus::noun(rng),
        1 => {
            let n: u32 = rng.random_range(1..100_000);
            if n >= 1000 {
                format!("{},{:03}", n / 1000, n % 1000)
            } else {
                n.to_string()
            }
        }
        2 => format!("{:.2}", rng.random_range(0.0..500.0f32)),
        3 => format!("{:.1}%", rng.random_range(0.0..100.0f32)),
        4 => rng.random_range(1780..1914).to_string(),
        _ => format!("${:.2}", rng.random_range(0.1..900.0f32)),
    }
}
