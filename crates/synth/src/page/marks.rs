//! Coloured marks on a page: a company letterhead (geometric logo and name),
//! rubber stamps pressed over the text, and highlighter bands across words.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::blocks::{Column, Writer};
use super::content::{hex, pick, r2};
use super::names;
use super::paint::{Blend, Mask, Noise, composite};
use super::text::TextStyle;

/// Brand colours for logos, as printed.
const BRANDS: &[[u8; 3]] = &[
    [22, 52, 122],
    [172, 32, 48],
    [0, 112, 112],
    [32, 102, 52],
    [226, 112, 22],
    [102, 42, 132],
    [0, 122, 192],
    [122, 92, 42],
];
const MARKS: &[&str] = &[
    "disc", "ring", "diamond", "triangle", "bars", "monogram", "squares",
];
const TAGLINES: &[&str] = &[
    "Established 1884",
    "Solicitors and Notaries",
    "Chartered Accountants",
    "Shipping and Forwarding Agents",
    "Registered Office",
    "Engineers and Surveyors",
];
const STAMP_WORDS: &[&str] = &[
    "RECEIVED",
    "APPROVED",
    "PAID",
    "COPY",
    "FILED",
    "ENTERED",
    "CONFIDENTIAL",
    "VERIFIED",
    "CANCELLED",
    "URGENT",
];
const STAMP_LINES: &[&str] = &[
    "ACCOUNTS DEPT.",
    "REGISTRY",
    "HEAD OFFICE",
    "POST ROOM",
    "TREASURY",
];
const STAMP_INKS: &[(&str, [u8; 3])] = &[
    ("red", [196, 36, 42]),
    ("blue", [36, 62, 168]),
    ("violet", [106, 46, 142]),
    ("green", [30, 116, 66]),
    ("black", [42, 42, 46]),
];
const HIGHLIGHTERS: &[(&str, [u8; 3])] = &[
    ("yellow", [255, 236, 60]),
    ("green", [140, 240, 110]),
    ("pink", [255, 140, 200]),
    ("orange", [255, 190, 90]),
    ("blue", [130, 200, 255]),
];

impl Writer<'_, '_> {
    /// A letterhead across the top of the page: a coloured geometric mark
    /// beside (or above) a company name and an optional tagline or address.
    pub fn letterhead(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) {
        let theme = self.theme;
        let px = theme.body.px;
        let s = (px * rng.random_range(2.2..3.4)).round();
        let name = names::company_name(rng);
        let (brand, accent) = (*pick(rng, BRANDS), *pick(rng, BRANDS));
        let mark = rng.random_range(0..MARKS.len());
        let name_in_brand = rng.random_bool(0.6);
        let name_style = TextStyle {
            px: (px * rng.random_range(1.15..1.6)).round(),
            ink: if name_in_brand {
                theme.colour(brand)
            } else {
                theme.ink
            },
            ..theme.title
        };
        let tagline = match rng.random_range(0..3) {
            0 => None,
            1 => Some(names::address(rng)),
            _ => Some((*pick(rng, TAGLINES)).to_owned()),
        };
        let mut stacked = rng.random_bool(0.25);
        let right = rng.random_bool(0.3);
        let rule_below = rng.random_bool(0.5);

        let small = theme.small;
        let words: Vec<&str> = name.split(' ').collect();
        let name_w = Self::natural_width(&name_style, &words);
        let tag_w = tagline.as_deref().map_or(0.0, |t| small.width(t));
        let (name_lh, tag_lh) = (
            self.line_height(&name_style),
            if tagline.is_some() {
                self.line_height(&small)
            } else {
                0.0
            },
        );
        let gap = px * 0.6;
        let text_w = name_w.max(tag_w);
        if s + gap + text_w > col.width {
            stacked = true;
        }
        let (block_w, block_h) = if stacked {
            (s.max(text_w), s + px * 0.3 + name_lh + tag_lh)
        } else {
            (s + gap + text_w, s.max(name_lh + tag_lh))
        };
        let rule_h = if rule_below { px * 0.7 } else { 0.0 };
        if block_w > col.width || col.y + block_h + rule_h + px > col.bottom {
            return;
        }
        let x = if stacked {
            col.x + (col.width - block_w) * 0.5
        } else if right {
            col.x + col.width - block_w
        } else {
            col.x
        };
        let x = x.round();
        let y = col.y.round();

        // The mark, painted opaque in its brand colours.
        let (mx, my) = if stacked {
            ((x + (block_w - s) * 0.5).round(), y)
        } else {
            (x, (y + (block_h - s) * 0.5).round())
        };
        let initial = name.chars().next().unwrap_or('R');
        self.logo_mark(mark, s, (mx, my), (brand, accent), name_style, initial);
        let text_x = if stacked { None } else { Some(x + s + gap) };
        let name_top = if stacked {
            y + s + px * 0.3
        } else {
            y + (block_h - name_lh - tag_lh) * 0.5
        };
        let centred = |w: f32| text_x.unwrap_or(x + (block_w - w) * 0.5);
        self.emit_line(&name_style, centred(name_w), name_top, &words, None);
        if let Some(t) = &tagline {
            self.emit_text(&small, centred(tag_w), name_top + name_lh, t);
        }
        let mut bottom = y + block_h;
        if rule_below {
            let ry = (bottom + px * 0.35).round();
            let thick = (px * 0.15).round().max(theme.rule as f32) as i32;
            let rule_colour = theme.colour(brand);
            self.canvas.fill_rect(
                col.x.round() as i32,
                ry as i32,
                col.width.round() as i32,
                thick,
                rule_colour,
            );
            bottom = ry + thick as f32;
        }
        let (x0, x1) = if rule_below {
            (col.x, col.x + col.width)
        } else {
            (x, x + block_w)
        };
        let params = json!({
            "mark": MARKS[mark],
            "colour": hex(brand),
            "accent": hex(accent),
            "name": name,
            "name_colour": if name_in_brand { "brand" } else { "ink" },
            "tagline": tagline,
            "layout": if stacked { "stacked" } else if right { "right" } else { "left" },
            "mark_size": s,
            "rule": rule_below,
        });
        self.add_element("logo", x0, y, x1, bottom, params);
        col.y = bottom + px * 0.8;
    }

    /// Paints logo mark number `mark`, `s` pixels square, at `(x, y)`; a
    /// monogram knocks the company's `initial` out of a brand square.
    fn logo_mark(
        &mut self,
        mark: usize,
        s: f32,
        (x, y): (f32, f32),
        (brand, accent): ([u8; 3], [u8; 3]),
        name_style: TextStyle,
        initial: char,
    ) {
        let n = s as usize;
        let c = s * 0.5;
        let mut main = Mask::new(n, n);
        let mut second = Mask::new(n, n);
        let mut knock_out = Mask::new(n, n);
        match MARKS[mark] {
            "disc" => main.disc(c, c, c - 0.5, 1.0),
            "ring" => {
                main.ring(c, c, c - s * 0.1, s * 0.14);
                second.disc(c, c, s * 0.2, 1.0);
            }
            "diamond" => main.polygon(&[(c, 0.0), (s, c), (c, s), (0.0, c)]),
            "triangle" => {
                main.polygon(&[(c, 0.5), (s - 0.5, s - 0.5), (0.5, s - 0.5)]);
                second.polygon(&[(c, s * 0.45), (s * 0.75, s - 0.5), (s * 0.25, s - 0.5)]);
            }
            "bars" => {
                for (k, h) in [0.45f32, 0.7, 1.0].into_iter().enumerate() {
                    let bx = k as f32 * s * 0.38;
                    main.fill_rect(bx, s * (1.0 - h), bx + s * 0.24, s);
                }
            }
            "monogram" => {
                main.fill_rect(0.0, 0.0, s, s);
                let letter = TextStyle {
                    px: (s * 0.72).round(),
                    ..name_style
                };
                let initial = initial.to_string();
                let w = letter.width(&initial);
                knock_out.text(&letter, (s - w) * 0.5, c + letter.px * 0.36, &initial);
            }
            _ => {
                main.fill_rect(0.0, 0.0, s * 0.66, s * 0.66);
                second.fill_rect(s * 0.34, s * 0.34, s, s);
            }
        }
        let (xi, yi) = (x as i32, y as i32);
        let img = &mut self.canvas.image;
        let theme = self.theme;
        composite(img, &main, xi, yi, theme.colour(brand), 1.0, Blend::Over);
        composite(img, &second, xi, yi, theme.colour(accent), 0.9, Blend::Over);
        composite(img, &knock_out, xi, yi, theme.paper, 1.0, Blend::Over);
    }

    /// A rubber stamp pressed somewhere over the text: a word, maybe a
    /// department and a date, in a rectangular or round border; turned,
    /// unevenly inked and multiplied into the page like real ink.
    pub fn stamp(&mut self, rng: &mut ChaCha8Rng) {
        let theme = self.theme;
        let px = theme.body.px;
        let word = *pick(rng, STAMP_WORDS);
        let dept = rng.random_bool(0.3).then(|| *pick(rng, STAMP_LINES));
        let date = rng.random_bool(0.7).then(|| names::stamp_date(rng));
        let round = rng.random_bool(0.35);
        let (ink_name, ink) = *pick(rng, STAMP_INKS);
        let angle = rng.random_range(-15.0..15.0f32).to_radians();
        let fade = rng.random_range(0.2..0.7f32);
        let opacity = rng.random_range(0.7..0.95);
        let noise = Noise::new(rng.random());
        let big = TextStyle {
            px: (px * rng.random_range(1.3..1.9)).round(),
            ink: [0, 0, 0],
            ..theme.heading
        };
        let small = TextStyle {
            px: (px * 0.85).round(),
            ..big
        };

        let mut lines: Vec<(&str, TextStyle)> = Vec::new();
        if let Some(d) = dept {
            lines.push((d, small));
        }
        lines.push((word, big));
        if let Some(d) = &date {
            lines.push((d.as_str(), small));
        }
        let text_w = lines.iter().map(|(t, s)| s.width(t)).fold(0.0, f32::max);
        let text_h: f32 = lines.iter().map(|(_, s)| s.px * 1.2).sum();
        let t = (px * 0.2).max(1.2);
        let pad = px * 0.45;
        let (w, h) = if round {
            let d = text_w.hypot(text_h) + 2.0 * (pad + 3.0 * t);
            (d, d)
        } else {
            (
                text_w + 2.0 * (pad + 3.0 * t),
                text_h + 2.0 * (pad + 3.0 * t),
            )
        };
        let mut mask = Mask::new(w.ceil() as usize + 2, h.ceil() as usize + 2);
        let (cx, cy) = (mask.width as f32 * 0.5, mask.height as f32 * 0.5);
        if round {
            let r = w * 0.5 - t;
            mask.ring(cx, cy, r, t);
            mask.ring(cx, cy, r - 2.2 * t, t * 0.6);
        } else {
            let (x0, y0) = (cx - w * 0.5, cy - h * 0.5);
            mask.rect_outline(x0, y0, x0 + w, y0 + h, t);
            let i = 2.2 * t;
            mask.rect_outline(x0 + i, y0 + i, x0 + w - i, y0 + h - i, t * 0.6);
        }
        let mut top = cy - text_h * 0.5;
        for (text, style) in &lines {
            let baseline = top + style.px * 0.95;
            mask.text(style, cx - style.width(text) * 0.5, baseline, text);
            top += style.px * 1.2;
        }
        // Uneven inking: broad faded patches plus fine speckle.
        let (scale, grain) = (px * 1.5, px * 0.12);
        let (mut broad_noise, mut speck_noise) = (noise.cached(), noise.cached());
        mask.modulate(|x, y| {
            let broad = broad_noise.fbm(x / scale, y / scale, 3);
            let keep = ((broad - fade * 0.5) * 3.0).clamp(0.0, 1.0);
            let speck = speck_noise.value(x / grain + 91.0, y / grain - 37.0);
            let speck = if speck < fade * 0.3 { 0.3 } else { 1.0 };
            (0.3 + 0.7 * keep) * speck
        });
        let mask = mask.rotated(angle);

        let (pw, ph) = self.page_size();
        let (mw, mh) = (mask.width as f32, mask.height as f32);
        let edge = (px * 0.5).max(3.0);
        let span = |lo: f32, hi: f32, len: f32, page: f32| {
            if hi - lo >= len {
                Some((lo, hi - len))
            } else if page - 2.0 * edge >= len {
                Some((edge, page - edge - len))
            } else {
                None
            }
        };
        let (Some(xs), Some(ys)) = (
            span(theme.left, pw - theme.right, mw, pw),
            span(theme.top, ph - theme.bottom, mh, ph),
        ) else {
            return;
        };
        let x = rng.random_range(xs.0..=xs.1).round();
        let y = rng.random_range(ys.0..=ys.1).round();
        composite(
            &mut self.canvas.image,
            &mask,
            x as i32,
            y as i32,
            theme.colour(ink),
            opacity,
            Blend::Multiply,
        );
        let params = json!({
            "shape": if round { "round" } else { "rect" },
            "text": lines.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            "ink": ink_name,
            "colour": hex(ink),
            "rotation_deg": r2(angle.to_degrees()),
            "opacity": r2(opacity),
            "fade": r2(fade),
        });
        self.add_element("stamp", x, y, x + mw, y + mh, params);
    }

    /// A body line and a run of up to `max_words` of its words, at random.
    pub fn pick_words(
        &self,
        rng: &mut ChaCha8Rng,
        max_words: usize,
    ) -> Option<(usize, usize, usize)> {
        let body = self.theme.body.px;
        let candidates: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.px == body && l.words.len() >= 3)
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let line = candidates[rng.random_range(0..candidates.len())];
        let n = self.lines[line].words.len();
        let from = rng.random_range(0..n - 1);
        let to = rng.random_range(from + 1..=n.min(from + max_words));
        Some((line, from, to))
    }

    /// `count` translucent highlighter bands over runs of body text; the
    /// multiply blend keeps the ink under them dark.
    pub fn highlight(&mut self, rng: &mut ChaCha8Rng, count: u32) {
        let (name, colour) = *pick(rng, HIGHLIGHTERS);
        let opacity = rng.random_range(0.45..0.8f32);
        let noise = Noise::new(rng.random());
        let (pw, _) = self.page_size();
        for band in 0..count {
            let Some((line, from, to)) = self.pick_words(rng, 7) else {
                return;
            };
            let lb = &self.lines[line];
            let lpx = lb.px;
            let x0 = (lb.words[from].0 - lpx * 0.25).max(2.0).round();
            let x1 = (lb.words[to - 1].1 + lpx * 0.25).min(pw - 2.0).round();
            let wob = lpx * 0.12;
            let y0 = (lb.baseline - lpx * 0.95 - wob).max(2.0).round();
            let y1 = (lb.baseline + lpx * 0.3 + wob).round();
            let text = lb.text[from..to].join(" ");
            let slant = rng.random_range(0.2..0.5) * lpx;
            let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
            if w < 2 || h < 2 {
                continue;
            }
            let mut mask = Mask::new(w, h);
            let (wf, hf) = (w as f32, h as f32);
            let seed_y = band as f32 * 13.7;
            for my in 0..h {
                for mx in 0..w {
                    let (fx, fy) = (mx as f32 + 0.5, my as f32 + 0.5);
                    let top = wob + wob * (noise.value(fx / (lpx * 3.0), seed_y) - 0.5) * 2.0;
                    let bottom =
                        hf - wob + wob * (noise.value(fx / (lpx * 3.0), seed_y + 5.0) - 0.5) * 2.0;
                    let vertical =
                        (fy - top + 0.5).clamp(0.0, 1.0) * (bottom - fy + 0.5).clamp(0.0, 1.0);
                    // A chisel tip leaves slanted ends.
                    let lean = slant * (1.0 - fy / hf);
                    let ends = (fx - lean + 0.5).clamp(0.0, 1.0)
                        * (wf - slant + lean - fx + 0.5).clamp(0.0, 1.0);
                    let streak =
                        0.85 + 0.15 * noise.value(fx / (lpx * 6.0), fy / (lpx * 0.2) + 50.0);
                    mask.cov[my * w + mx] = vertical * ends * streak;
                }
            }
            composite(
                &mut self.canvas.image,
                &mask,
                x0 as i32,
                y0 as i32,
                self.theme.colour(colour),
                opacity,
                Blend::Multiply,
            );
            let params = json!({
                "colour_name": name,
                "colour": hex(colour),
                "opacity": r2(opacity),
                "text": text,
            });
            self.add_element("highlighter", x0, y0, x1, y1, params);
        }
    }
}
