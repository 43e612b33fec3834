//! Form blocks: labelled fields in ruled boxes, on underlines or in
//! character combs, filled in by typewriter or by hand, and a row of
//! checkboxes with ticked answers.
//!
//! Labels and typed values are ground truth (one line per field, label
//! first); handwriting and ticks are not.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::blocks::{Column, Writer};
use super::content::{hex, pick};
use super::names;
use super::pen::PEN_INKS;

const FIELDS: &[&str] = &[
    "Name",
    "Full name",
    "Date",
    "Address",
    "Town",
    "Reference No.",
    "Account No.",
    "Telephone",
    "Amount",
    "Occupation",
    "Date of birth",
    "Signature",
];
const OCCUPATIONS: &[&str] = &[
    "Clerk",
    "Engineer",
    "Teacher",
    "Draughtsman",
    "Farmer",
    "Nurse",
    "Merchant",
    "Surveyor",
];
const QUESTIONS: &[(&str, &[&str])] = &[
    ("Contact by", &["Post", "Email", "Telephone"]),
    ("Payment", &["Cash", "Cheque", "Card"]),
    ("Status", &["Single", "Married", "Widowed"]),
    ("Approved", &["Yes", "No"]),
    ("Copies", &["One", "Two", "Three", "Four"]),
];
const TITLES: &[&str] = &[
    "Application Form",
    "Claim Details",
    "Section A: Applicant",
    "Order Form",
    "Registration",
    "Particulars of Account",
];
const BOX_STYLES: &[&str] = &["box", "underline", "comb"];

/// A plausible value for a field label.
fn value_for(rng: &mut ChaCha8Rng, label: &str) -> String {
    match label {
        "Name" | "Full name" => names::person_name(rng),
        "Date" | "Date of birth" => names::date_text(rng),
        "Address" => names::address(rng),
        "Town" => names::place(rng),
        "Reference No." => {
            let a = char::from(b'A' + rng.random_range(0..26u8));
            let b = char::from(b'A' + rng.random_range(0..26u8));
            format!("{a}{b}-{:05}", rng.random_range(0..100_000))
        }
        "Account No." => format!("{:08}", rng.random_range(0..100_000_000)),
        "Telephone" => format!(
            "0{} {:03} {:04}",
            rng.random_range(100..1000),
            rng.random_range(0..1000),
            rng.random_range(0..10_000)
        ),
        "Amount" => format!(
            "${}.{:02}",
            rng.random_range(1..5000),
            rng.random_range(0..100)
        ),
        "Occupation" => (*pick(rng, OCCUPATIONS)).to_owned(),
        _ => String::new(),
    }
}

impl Writer<'_, '_> {
    /// A form of two to five fields and maybe a checkbox row; `false` (and
    /// nothing drawn) when it does not fit in the column or in `max_h`.
    pub fn form(&mut self, rng: &mut ChaCha8Rng, col: &mut Column, max_h: f32) -> bool {
        let theme = self.theme;
        let px = theme.body.px;
        let label_style = if rng.random_bool(0.5) {
            theme.body
        } else {
            theme.small
        };
        let value_style = if rng.random_bool(0.5) {
            theme.table
        } else {
            theme.body
        };
        let title = rng.random_bool(0.6).then(|| *pick(rng, TITLES));
        let count = rng.random_range(2..=5);
        let mut labels: Vec<&str> = Vec::with_capacity(count);
        while labels.len() < count {
            let l = *pick(rng, FIELDS);
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        // 0 typed, 1 handwritten, 2 left empty; a signature is always signed.
        let fills: Vec<u32> = labels
            .iter()
            .map(|&l| {
                let f = match rng.random_range(0..10) {
                    0..6 => 0,
                    6..9 => 1,
                    _ => 2,
                };
                if l == "Signature" { 1 } else { f }
            })
            .collect();
        let values: Vec<String> = labels.iter().map(|l| value_for(rng, l)).collect();
        let colon = rng.random_bool(0.5);
        let box_style = rng.random_range(0..BOX_STYLES.len());
        let checks = rng.random_bool(0.5).then(|| *pick(rng, QUESTIONS));
        let checked: Vec<bool> = checks
            .map(|(_, options)| options.iter().map(|_| rng.random_bool(0.4)).collect())
            .unwrap_or_default();
        let cross = rng.random_bool(0.3);
        let (ink_name, ink) = *pick(rng, PEN_INKS);

        let labels_shown: Vec<String> = labels
            .iter()
            .map(|l| {
                if colon {
                    format!("{l}:")
                } else {
                    (*l).to_owned()
                }
            })
            .collect();
        let label_w = labels_shown
            .iter()
            .map(|l| label_style.width(l))
            .fold(0.0, f32::max)
            + px * 0.8;
        let wants_left = rng.random_bool(0.7);
        let label_left = wants_left && col.width >= px * 22.0 && label_w < col.width * 0.45;
        let box_h = (px * 1.6).round();
        let row_gap = px * 0.55;
        let lh_label = self.line_height(&label_style);
        let heading = theme.heading;
        let title_h = if title.is_some() {
            self.line_height(&heading) + px * 0.3
        } else {
            0.0
        };
        let row_h = if label_left {
            box_h + row_gap
        } else {
            lh_label + box_h + row_gap
        };
        let check_h = lh_label.max(px * 1.4) + row_gap;
        let gap = self.line_height(&theme.body) * 0.5;
        // A form short of room drops fields, then its checkboxes, before
        // giving up, so a line more or less above it rarely removes it.
        let limit = max_h.min(col.bottom - col.y);
        let total = |fields: usize, checks: bool| {
            gap * 2.0 + title_h + fields as f32 * row_h + if checks { check_h } else { 0.0 }
        };
        let mut count = count;
        let mut with_checks = checks.is_some();
        while count > 2 && total(count, with_checks) > limit {
            count -= 1;
        }
        with_checks &= total(count, with_checks) <= limit;
        if total(count, with_checks) > limit {
            return false;
        }
        let checks = checks.filter(|_| with_checks);

        let top = (col.y + gap).round();
        let mut y = top;
        if let Some(t) = title {
            self.emit_text(&heading, col.x, y, t);
            y += title_h;
        }
        let rule = theme.rule;
        let box_x = if label_left { col.x + label_w } else { col.x };
        let box_x = box_x.round();
        let box_w = (col.x + col.width - box_x).floor();
        let mut fields = Vec::with_capacity(count);
        for (i, label) in labels_shown.iter().enumerate().take(count) {
            let by = if label_left {
                let label_top = y + (box_h - lh_label) * 0.5;
                self.draw_words(&label_style, col.x, label_top, &[label.as_str()], None);
                y
            } else {
                self.emit_text(&label_style, col.x, y, label);
                y + lh_label
            };
            let by = by.round();
            let value = &values[i];
            let value_w = value_style.width(value);
            let cell = (px * 1.05).round();
            let chars = value.chars().count();
            let comb = BOX_STYLES[box_style] == "comb"
                && fills[i] == 0
                && chars > 0
                && cell * chars as f32 <= box_w;
            let (bx, bw) = (box_x as i32, box_w as i32);
            match BOX_STYLES[box_style] {
                "underline" => {
                    self.canvas
                        .fill_rect(bx, (by + box_h) as i32 - rule, bw, rule, theme.ink);
                }
                _ if comb => {
                    let cw = (cell * chars as f32) as i32;
                    self.outline(bx, by as i32, cw, box_h as i32);
                    for k in 1..chars {
                        let cx = bx + (k as f32 * cell) as i32;
                        let tooth = (box_h * 0.4) as i32;
                        self.canvas.fill_rect(
                            cx,
                            (by + box_h) as i32 - tooth,
                            rule,
                            tooth,
                            theme.ink,
                        );
                    }
                }
                _ => self.outline(bx, by as i32, bw, box_h as i32),
            }
            let baseline = by + box_h * 0.5 + value_style.px * 0.35;
            let typed = fills[i] == 0 && value_w + px * 0.7 <= box_w;
            let fill = match fills[i] {
                0 if typed => {
                    if comb {
                        for (k, ch) in value.chars().enumerate() {
                            let s = ch.to_string();
                            let cx = box_x + (k as f32 + 0.5) * cell - value_style.width(&s) * 0.5;
                            self.canvas.draw_text(&value_style, cx, baseline, &s);
                        }
                    } else {
                        self.canvas
                            .draw_text(&value_style, box_x + px * 0.35, baseline, value);
                    }
                    self.note_face(&value_style);
                    "typed"
                }
                1 => {
                    let bounds = (box_x, by, box_x + box_w, by + box_h);
                    let signed = labels[i] == "Signature";
                    if self.handwrite_in(rng, bounds, (ink_name, ink), signed) {
                        "handwritten"
                    } else {
                        "empty"
                    }
                }
                _ => "empty",
            };
            // One ground-truth line per field: the label, then a typed value.
            if label_left && fill == "typed" {
                self.record(&label_style, &format!("{label} {value}"));
            } else if label_left {
                self.record(&label_style, label);
            } else if fill == "typed" {
                self.record(&value_style, value);
            }
            fields.push(json!({
                "label": labels[i],
                "value": if fill == "empty" { "" } else { value.as_str() },
                "fill": fill,
            }));
            y += row_h;
        }

        let mut options_drawn = Vec::new();
        if let Some((question, options)) = checks {
            let s = (px * 0.85).round();
            let row = lh_label.max(px * 1.4);
            let q = if colon {
                format!("{question}:")
            } else {
                question.to_owned()
            };
            let label_top = y + (row - lh_label) * 0.5;
            let mut x = col.x;
            let mut line = vec![q.clone()];
            let drawn = self.draw_words(&label_style, x, label_top, &[q.as_str()], None);
            x = drawn.last().map_or(x, |w| w.1) + px * 0.8;
            for (k, option) in options.iter().enumerate() {
                let need = s + px * 0.4 + label_style.width(option);
                if x + need > col.x + col.width {
                    break;
                }
                let (bx, by) = (x.round(), (y + (row - s) * 0.5).round());
                self.outline(bx as i32, by as i32, s as i32, s as i32);
                let (mut x0, mut y0, mut x1, mut y1) = (bx, by, bx + s, by + s);
                if checked[k] {
                    let t = self.tick(rng, bx, by, s, ink, cross);
                    (x0, y0, x1, y1) = (x0.min(t.0), y0.min(t.1), x1.max(t.2), y1.max(t.3));
                }
                let params = json!({
                    "label": option,
                    "checked": checked[k],
                    "mark": if cross { "cross" } else { "tick" },
                    "ink": ink_name,
                    "colour": hex(ink),
                });
                self.add_element("checkbox", x0, y0, x1, y1, params);
                self.draw_words(&label_style, bx + s + px * 0.4, label_top, &[*option], None);
                line.push((*option).to_owned());
                options_drawn.push(json!({ "label": option, "checked": checked[k] }));
                x += need + px * 1.0;
            }
            self.record(&label_style, &line.join(" "));
            y += check_h;
        }
        let params = json!({
            "title": title,
            "layout": if label_left { "label_left" } else { "label_above" },
            "box_style": BOX_STYLES[box_style],
            "fields": fields,
            "checkboxes": options_drawn,
        });
        // Glyphs may overhang the column edge by a pixel or two.
        let pad = (px * 0.15).max(2.0);
        self.add_element("form", col.x - pad, top, col.x + col.width + pad, y, params);
        col.y = y + gap;
        true
    }

    /// A rectangle outline in the page's ink and rule weight.
    fn outline(&mut self, x: i32, y: i32, w: i32, h: i32) {
        let (t, ink) = (self.theme.rule, self.theme.ink);
        self.canvas.fill_rect(x, y, w, t, ink);
        self.canvas.fill_rect(x, y + h - t, w, t, ink);
        self.canvas.fill_rect(x, y, t, h, ink);
        self.canvas.fill_rect(x + w - t, y, t, h, ink);
    }
}
