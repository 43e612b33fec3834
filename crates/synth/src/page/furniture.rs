//! Page furniture: running headers and footers with page numbers in varied
//! styles and places, a newspaper masthead, and rules between columns.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::blocks::{Column, Writer};
use super::content::{Folio, pick};
use super::corpus;
use super::names;

const NEWSPAPERS: &[&str] = &[
    "Gazette",
    "Herald",
    "Chronicle",
    "Courier",
    "Observer",
    "Times",
    "Mercury",
    "Advertiser",
    "Standard",
];
const PRICES: &[&str] = &[
    "Price One Penny",
    "Twopence",
    "Price Five Cents",
    "One Halfpenny",
];
const FOOTER_TEXTS: &[&str] = &[
    "Confidential",
    "For internal use only",
    "Printed in Great Britain",
    "All rights reserved",
    "Draft",
];

/// Roman numerals for volume numbers (1..40 is all a masthead needs).
fn roman(mut n: u32) -> String {
    let mut out = String::new();
    for (v, s) in [(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")] {
        while n >= v {
            out.push_str(s);
            n -= v;
        }
    }
    out
}

impl Writer<'_, '_> {
    /// A short running title over a rule at the top of the page, with the
    /// page number at the right when `folio` is given.
    pub fn running_header(
        &mut self,
        rng: &mut ChaCha8Rng,
        col: &mut Column,
        folio: Option<&Folio>,
    ) {
        let style = self.theme.small;
        let words = corpus::heading(rng, 5);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let rule = rng.random_bool(0.75);
        let label = folio.map(Folio::label);
        let mut number: Vec<&str> = label
            .as_deref()
            .map_or(Vec::new(), |l| l.split(' ').collect());
        let num_w = Self::natural_width(&style, &number);
        if num_w + style.px * 8.0 > col.width {
            number.clear();
        }
        let top = col.y;
        let mut text_col = Column {
            x: col.x,
            width: col.width
                - if number.is_empty() {
                    0.0
                } else {
                    num_w + style.px * 2.0
                },
            y: col.y,
            bottom: col.bottom,
        };
        // Record what the page shows: a word wider than the column, or a
        // header below the page bottom, is skipped by `short_block`.
        let mark = self.text_mark();
        let _ = self.short_block(&mut text_col, &words, style, false);
        let drawn = self.text_since(mark);
        if !number.is_empty() && top + self.line_height(&style) <= col.bottom {
            let x = col.x + col.width - num_w;
            self.emit_line(&style, x, top, &number, None);
            let params = json!({
                "text": label.as_deref(),
                "number": folio.map(|f| f.number),
                "place": "header_right",
            });
            self.add_element(
                "page_number",
                x - 1.0,
                top,
                x + num_w + 1.0,
                top + self.line_height(&style),
                params,
            );
        }
        col.y = text_col.y;
        if rule {
            self.canvas.fill_rect(
                col.x as i32,
                col.y as i32,
                col.width as i32,
                self.theme.rule,
                self.theme.ink,
            );
        }
        let bottom = col.y + self.theme.rule as f32;
        let numbered = !number.is_empty();
        let params = json!({
            "text": drawn,
            "rule": rule,
            "page_number": if numbered { label } else { None },
        });
        self.add_element("header", col.x, top, col.x + col.width, bottom, params);
        col.y += self.line_height(&style);
    }

    /// The page number in the bottom margin (centred, right, left or on the
    /// outer edge), sometimes with a line of footer text on the other side.
    pub fn footer(&mut self, rng: &mut ChaCha8Rng, height: u32, folio: &Folio) {
        let style = self.theme.small;
        let place = rng.random_range(0..4);
        let extra = rng.random_bool(0.35).then(|| match rng.random_range(0..3) {
            0 => (*pick(rng, FOOTER_TEXTS)).to_owned(),
            1 => names::company_name(rng),
            _ => corpus::heading(rng, 4).join(" "),
        });
        if self.theme.bottom < style.px * 1.6 {
            return;
        }
        let (pw, _) = self.page_size();
        let (left, right) = (self.theme.left, pw - self.theme.right);
        let label = folio.label();
        let number: Vec<&str> = label.split(' ').collect();
        let num_w = Self::natural_width(&style, &number);
        if num_w > right - left {
            // A narrow page has no room for the number: draw no footer
            // rather than text off the page that the ground truth lists.
            return;
        }
        // 0 centre, 1 right, 2 left, 3 outer edge (odd pages right).
        let (num_x, place_name) = match place {
            0 => ((pw - num_w) * 0.5, "centre"),
            1 => (right - num_w, "right"),
            2 => (left, "left"),
            _ if folio.number % 2 == 1 => (right - num_w, "outer"),
            _ => (left, "outer"),
        };
        let top = height as f32 - self.theme.bottom * 0.5 - self.line_height(&style) * 0.5;
        let lh = self.line_height(&style);
        // Footer text goes on the side away from the number, if it fits.
        let extra = extra.filter(|t| {
            let w = style.width(t);
            if num_x > pw * 0.5 {
                left + w + style.px * 2.0 < num_x
            } else {
                num_x + num_w + style.px * 2.0 + w < right
            }
        });
        let mut parts: Vec<(f32, String, bool)> = vec![(num_x, label.clone(), true)];
        if let Some(t) = &extra {
            let x = if num_x > pw * 0.5 {
                left
            } else {
                right - style.width(t)
            };
            parts.push((x, t.clone(), false));
        }
        parts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut x0, mut x1) = (f32::MAX, f32::MIN);
        for (x, text, is_number) in &parts {
            let words: Vec<&str> = text.split(' ').collect();
            let w = Self::natural_width(&style, &words);
            self.emit_line(&style, *x, top, &words, None);
            (x0, x1) = (x0.min(*x), x1.max(x + w));
            if *is_number {
                let params = json!({ "text": text, "number": folio.number, "total": folio.total, "place": place_name });
                self.add_element("page_number", x - 1.0, top, x + w + 1.0, top + lh, params);
            }
        }
        let params = json!({ "page_number": label, "text": extra, "place": place_name });
        self.add_element("footer", x0 - 1.0, top, x1 + 1.0, top + lh, params);
    }

    /// A newspaper masthead: the paper's name between heavy rules and a
    /// dateline with volume, date and price.
    pub fn masthead(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) {
        let theme = self.theme;
        let px = theme.body.px;
        let name = format!("The {} {}", names::place(rng), pick(rng, NEWSPAPERS));
        let style = super::text::TextStyle {
            px: (theme.title.px * rng.random_range(1.0..1.3)).round(),
            ..theme.title
        };
        let mut parts = vec![
            format!(
                "Vol. {}, No. {}",
                roman(rng.random_range(1..40)),
                rng.random_range(1..400)
            ),
            names::long_date(rng),
            (*pick(rng, PRICES)).to_owned(),
        ];
        let words: Vec<&str> = name.split(' ').collect();
        let _ = self.short_block(col, &words, style, true);
        let rule = theme.rule;
        let thick = (rule * 3).max(2);
        col.y += px * 0.2;
        self.canvas.fill_rect(
            col.x as i32,
            col.y as i32,
            col.width as i32,
            thick,
            theme.ink,
        );
        col.y += (thick + rule * 2) as f32;
        self.canvas.fill_rect(
            col.x as i32,
            col.y as i32,
            col.width as i32,
            rule,
            theme.ink,
        );
        col.y += px * 0.3;
        let small = theme.small;
        let dash = if small.has_glyph('\u{2014}') {
            "\u{2014}"
        } else {
            "-"
        };
        let sep = format!(" {dash} ");
        let mut line = parts.join(sep.as_str());
        while parts.len() > 1 && small.width(&line) > col.width {
            parts.pop();
            line = parts.join(sep.as_str());
        }
        if small.width(&line) <= col.width {
            let words: Vec<&str> = line.split(' ').collect();
            let x = col.x + (col.width - Self::natural_width(&small, &words)) * 0.5;
            self.emit_line(&small, x, col.y, &words, None);
            col.y += self.line_height(&small);
        }
        self.canvas.fill_rect(
            col.x as i32,
            col.y as i32,
            col.width as i32,
            rule,
            theme.ink,
        );
        col.y += px * 0.8;
    }

    /// Vertical hairlines at `xs` from `top` to `bottom`.
    pub fn column_rules(&mut self, xs: &[f32], top: f32, bottom: f32) {
        for &x in xs {
            self.canvas.fill_rect(
                x.round() as i32,
                top as i32,
                self.theme.rule,
                (bottom - top) as i32,
                self.theme.ink,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_elements_record_only_the_text_the_page_shows() {
        use crate::page::{PageSpec, Target, render_page_as};
        let fonts = crate::FontLibrary::system().expect("the build machines have DejaVu installed");
        let mut headers = 0;
        for (w, h) in [(64, 64), (64, 4096), (4096, 64), (200, 2000), (640, 832)] {
            let spec = PageSpec::sized_at(w, h, 300).expect("valid");
            for seed in 0..40 {
                let page = render_page_as(&fonts, &spec, seed, Target::AsPrinted).expect("renders");
                for e in page.elements.iter().filter(|e| e.kind == "header") {
                    headers += 1;
                    let text = e.params["text"].as_str().expect("header text");
                    for word in text.split_whitespace() {
                        assert!(
                            page.text.split_whitespace().any(|t| t == word),
                            "{w}x{h} seed {seed}: header word {word:?} is not on the page"
                        );
                    }
                }
            }
        }
        assert!(headers > 10, "only {headers} headers");
    }

    #[test]
    fn roman_numerals() {
        assert_eq!(roman(1), "I");
        assert_eq!(roman(4), "IV");
        assert_eq!(roman(14), "XIV");
        assert_eq!(roman(39), "XXXIX");
    }
}
