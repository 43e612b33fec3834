//! Handwriting-like pen work: signatures over a signature line, notes in the
//! margin, underlines and circles around printed words, handwritten form
//! values and checkbox ticks.
//!
//! A hand writes pseudo-cursive words: control points that rise to the
//! x-height, loop up into ascenders and down into descenders, slanted and
//! jittered, joined by a Catmull-Rom curve and inked with a pressure that
//! varies along the stroke. None of it is legible text, so none of it goes
//! into the ground truth.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::blocks::{Column, Writer};
use super::content::{hex, pick, r2};
use super::names;
use super::paint::{Blend, Mask, Noise, catmull_rom, composite};

/// Pen inks as printed, by name.
pub(super) const PEN_INKS: &[(&str, [u8; 3])] = &[
    ("blue", [30, 55, 160]),
    ("royal_blue", [38, 48, 125]),
    ("black", [25, 25, 30]),
    ("blue_black", [30, 36, 62]),
];
/// Inks for notes and marks made while reading.
const NOTE_INKS: &[(&str, [u8; 3])] = &[
    ("blue", [30, 55, 160]),
    ("black", [25, 25, 30]),
    ("red", [178, 34, 40]),
    ("pencil", [105, 105, 112]),
];

/// Pen strokes in local coordinates (first baseline at y = 0).
pub(super) type Strokes = Vec<Vec<(f32, f32)>>;

/// A writer's hand, in pixels.
#[derive(Clone, Copy)]
pub(super) struct Hand {
    x_height: f32,
    letter: f32,
    slant: f32,
    pen: f32,
    wobble: f32,
}

impl Hand {
    pub fn sample(rng: &mut ChaCha8Rng, x_height: f32) -> Self {
        Self {
            x_height,
            letter: x_height * rng.random_range(0.6..0.95),
            slant: rng.random_range(0.1..0.45),
            pen: (x_height * rng.random_range(0.07..0.11)).max(0.6),
            wobble: rng.random_range(0.04..0.14),
        }
    }

    fn params(&self) -> serde_json::Value {
        json!({
            "x_height": r2(self.x_height),
            "slant": r2(self.slant),
            "pen_width": r2(self.pen * 2.0),
        })
    }
}

/// Control points of one pseudo-cursive word of `letters` letters written
/// from `x` along `baseline`; returns them and where the word ends.
fn word(
    rng: &mut ChaCha8Rng,
    hand: &Hand,
    letters: usize,
    x: f32,
    baseline: f32,
) -> (Vec<(f32, f32)>, f32) {
    let xh = hand.x_height;
    let mut pts = vec![(x, baseline - xh * 0.15)];
    let mut pen = x;
    for _ in 0..letters {
        let w = hand.letter * rng.random_range(0.75..1.3);
        match rng.random_range(0..10) {
            // Ascenders (l, h, b): up high, loop back, down to the line.
            0 | 1 => {
                let top = xh * rng.random_range(1.9..2.5);
                pts.push((pen + w * 0.55, baseline - top));
                pts.push((pen + w * 0.35, baseline - top * 0.7));
                pts.push((pen + w * 0.6, baseline));
            }
            // Descenders (g, y, p): a loop below the line.
            2 => {
                let depth = xh * rng.random_range(0.7..1.0);
                pts.push((pen + w * 0.5, baseline - xh));
                pts.push((pen + w * 0.55, baseline + depth));
                pts.push((pen + w * 0.3, baseline + depth * 0.5));
                pts.push((pen + w * 0.8, baseline - xh * 0.2));
            }
            // Round letters (o, a, e): a closed bowl.
            3..6 => {
                pts.push((pen + w * 0.8, baseline - xh));
                pts.push((pen + w * 0.3, baseline - xh * 0.8));
                pts.push((pen + w * 0.4, baseline));
                pts.push((pen + w, baseline - xh * 0.5));
            }
            // Arches (n, m, u, r).
            _ => {
                pts.push((pen + w * 0.3, baseline - xh * rng.random_range(0.8..1.05)));
                pts.push((pen + w * 0.75, baseline));
            }
        }
        pen += w;
    }
    for p in &mut pts {
        let (jx, jy) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        p.0 += (baseline - p.1) * hand.slant + jx * hand.wobble * xh;
        p.1 += jy * hand.wobble * xh;
    }
    (pts, pen)
}

/// Handwritten lines of `words[i]` words each, `line_gap` apart.
pub(super) fn scribble(
    rng: &mut ChaCha8Rng,
    hand: &Hand,
    words: &[usize],
    line_gap: f32,
) -> Strokes {
    let mut strokes = Vec::new();
    for (line, &count) in words.iter().enumerate() {
        let baseline = line as f32 * line_gap;
        let mut x = rng.random_range(0.0..hand.letter);
        for _ in 0..count {
            let letters = rng.random_range(2..=7);
            let (pts, end) = word(rng, hand, letters, x, baseline);
            strokes.push(pts);
            // An i-dot or t-bar now and then.
            if rng.random_bool(0.3) {
                let at = x + (end - x) * rng.random_range(0.2..0.8);
                strokes.push(vec![(at, baseline - hand.x_height * 1.6)]);
            }
            x = end + hand.letter * rng.random_range(0.9..1.6);
        }
    }
    strokes
}

/// A signature about `height` tall: one or two names, each a looped
/// capital run into a quick cursive word, often with an underline swash.
fn signature(rng: &mut ChaCha8Rng, height: f32) -> (Strokes, Hand) {
    let xh = height * 0.3;
    // Signatures sprawl: wide letters, tall capitals.
    let hand = Hand {
        x_height: xh,
        letter: xh * rng.random_range(0.9..1.5),
        slant: rng.random_range(0.2..0.6),
        pen: (height * rng.random_range(0.025..0.04)).max(0.7),
        wobble: 0.1,
    };
    let mut strokes = Vec::new();
    let mut x = 0.0;
    let names = if rng.random_bool(0.6) { 2 } else { 1 };
    for _ in 0..names {
        let cap = height * rng.random_range(0.75..1.0);
        let w = xh * rng.random_range(1.3..2.3);
        let capital = [
            (x, -xh * 0.1),
            (x + w * 0.5, -cap),
            (x + w * 0.9, -cap * 0.75),
            (x + w * 0.3, -cap * 0.35),
            (x + w * 0.2, 0.0),
        ];
        let mut pts: Vec<(f32, f32)> = capital
            .iter()
            .map(|&(px, py)| (px - py * hand.slant, py))
            .collect();
        let letters = rng.random_range(4..=9);
        let (rest, end) = word(rng, &hand, letters, x + w * 0.7, 0.0);
        pts.extend(rest);
        strokes.push(pts);
        x = end + xh * rng.random_range(0.8..1.5);
    }
    if rng.random_bool(0.6) {
        let y = xh * rng.random_range(0.5..0.9);
        strokes.push(vec![
            (x - xh * 0.5, -xh * 0.3),
            (x * 0.6, y),
            (x * 0.2, y + xh * 0.2),
            (-xh * 0.3, y * 0.8),
        ]);
    }
    (strokes, hand)
}

/// Inks `strokes` (scaled by `scale`) into a mask fitted around them and
/// returns it with the local position of its top-left corner; the pen
/// presses harder and lighter along each stroke and tapers at its ends.
fn rasterise(strokes: &Strokes, pen: f32, noise: Noise, scale: f32) -> (Mask, (f32, f32)) {
    let pen = (pen * scale).max(0.5);
    let paths: Vec<Vec<(f32, f32)>> = strokes
        .iter()
        .map(|s| {
            let scaled: Vec<(f32, f32)> = s.iter().map(|&(x, y)| (x * scale, y * scale)).collect();
            catmull_rom(&scaled, 1.0)
        })
        .collect();
    let (mut lo_x, mut lo_y, mut hi_x, mut hi_y) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in paths.iter().flatten() {
        (lo_x, lo_y, hi_x, hi_y) = (lo_x.min(x), lo_y.min(y), hi_x.max(x), hi_y.max(y));
    }
    if lo_x > hi_x {
        return (Mask::new(1, 1), (0.0, 0.0));
    }
    let margin = pen * 2.0 + 2.0;
    let mut mask = Mask::new(
        (hi_x - lo_x + 2.0 * margin).ceil() as usize,
        (hi_y - lo_y + 2.0 * margin).ceil() as usize,
    );
    for (k, path) in paths.iter().enumerate() {
        let total: f32 = path
            .windows(2)
            .map(|p| (p[1].0 - p[0].0).hypot(p[1].1 - p[0].1))
            .sum();
        let mut s = 0.0;
        let mut prev = path[0];
        let mut pts = Vec::with_capacity(path.len());
        for &(x, y) in path {
            s += (x - prev.0).hypot(y - prev.1);
            prev = (x, y);
            let pressure = 0.55 + 0.7 * noise.value(s / (pen * 12.0), k as f32 * 7.3);
            let taper = ((s.min(total - s)) / (pen * 5.0) + 0.45).min(1.0);
            pts.push((x - lo_x + margin, y - lo_y + margin, pen * pressure * taper));
        }
        mask.stroke(&pts, 1.0);
    }
    (mask, (lo_x - margin, lo_y - margin))
}

/// Rasterises and turns `strokes`, shrinking them until they fit in
/// `max_w` x `max_h`; `None` when they cannot fit legibly.
fn fitted(
    strokes: &Strokes,
    pen: f32,
    noise: Noise,
    angle: f32,
    max_w: f32,
    max_h: f32,
) -> Option<(Mask, f32)> {
    let mut scale = 1.0;
    for _ in 0..3 {
        let (mut mask, _) = rasterise(strokes, pen, noise, scale);
        if angle != 0.0 {
            mask = mask.rotated(angle);
        }
        let (w, h) = (mask.width as f32, mask.height as f32);
        if w <= max_w && h <= max_h {
            return Some((mask, scale));
        }
        scale *= (max_w / w).min(max_h / h) * 0.97;
        if scale < 0.35 {
            return None;
        }
    }
    None
}

impl Writer<'_, '_> {
    /// Vertical space a signature block needs at the end of a column.
    pub fn signature_height(&self) -> f32 {
        let px = self.theme.body.px;
        px * 4.6 + self.line_height(&self.theme.small)
    }

    /// A handwritten signature over a ruled line, with a printed label
    /// ("Signature", or the signer's name) under the line.
    pub fn signature_block(&mut self, rng: &mut ChaCha8Rng, col: &mut Column) {
        let theme = self.theme;
        let px = theme.body.px;
        let small = theme.small;
        let sig_h = px * rng.random_range(1.8..2.6);
        let line_w = (col.width * rng.random_range(0.35..0.55))
            .max(px * 9.0)
            .min(col.width);
        let line_x = if rng.random_bool(0.6) {
            col.x
        } else {
            col.x + col.width - line_w
        };
        let (name, role) = (names::person_name(rng), *pick(rng, ROLES));
        let label = match rng.random_range(0..4) {
            0 => "Signature".to_owned(),
            1 => "Authorised signatory".to_owned(),
            2 => name.clone(),
            _ => format!("{name}, {role}"),
        };
        let (strokes, hand) = signature(rng, sig_h);
        let (ink_name, ink) = *pick(rng, PEN_INKS);
        let angle = rng.random_range(-0.08..0.05f32);
        let noise = Noise::new(rng.random());
        let opacity = rng.random_range(0.85..1.0);
        let slack = rng.random_range(0.0..1.0f32);

        let top = col.y + px * 0.6;
        let rule_y = top + px * 3.5;
        let rule = theme.rule as f32;
        let label_top = rule_y + rule + px * 0.2;
        if label_top + self.line_height(&small) > col.bottom + 0.5 {
            return;
        }
        let (line_x, rule_y) = (line_x.round(), rule_y.round());
        self.canvas.fill_rect(
            line_x as i32,
            rule_y as i32,
            line_w.round() as i32,
            theme.rule,
            theme.ink,
        );
        // Signatures sit on the line and dip through it.
        let max_w = line_w - px * 0.3;
        let max_h = rule_y + px * 0.45 - top;
        // The element's box holds the strokes and the line they sit on.
        let (mut x1, mut y0, mut y1) = (line_x + line_w.round(), rule_y, rule_y + rule);
        let fit = fitted(&strokes, hand.pen, noise, angle, max_w, max_h);
        if let Some((mask, _)) = &fit {
            let (mw, mh) = (mask.width as f32, mask.height as f32);
            let mx = (line_x + px * 0.3 + slack * (max_w - mw).max(0.0)).round();
            let my = (rule_y + px * 0.45 - mh).max(top).round();
            composite(
                &mut self.canvas.image,
                mask,
                mx as i32,
                my as i32,
                theme.colour(ink),
                opacity,
                Blend::Multiply,
            );
            (x1, y0, y1) = (x1.max(mx + mw), y0.min(my), y1.max(my + mh));
        }
        let mut params = hand.params();
        params["ink"] = json!(ink_name);
        params["colour"] = json!(hex(ink));
        params["strokes"] = json!(if fit.is_some() { strokes.len() } else { 0 });
        params["rotation_deg"] = json!(r2(angle.to_degrees()));
        params["signer"] = json!(name);
        params["label"] = json!(&label);
        params["line_width"] = json!(line_w.round());
        self.add_element("signature", line_x, y0, x1, y1, params);
        self.emit_text(&small, line_x, label_top, &label);
        col.y = label_top + self.line_height(&small);
    }

    /// A short handwritten note in the wider side margin, if it has room.
    pub fn margin_note(&mut self, rng: &mut ChaCha8Rng) {
        let theme = self.theme;
        let px = theme.body.px;
        let (pw, ph) = self.page_size();
        let left_side = theme.left >= theme.right;
        let space = theme.left.max(theme.right);
        let x_height = px * rng.random_range(0.5..0.7);
        let hand = Hand::sample(rng, x_height);
        // Narrow margins get one short word a line.
        let per_line = if theme.left.max(theme.right) < px * 6.0 {
            1
        } else {
            2
        };
        let lines: Vec<usize> = (0..rng.random_range(1..=3))
            .map(|_| rng.random_range(1..=per_line))
            .collect();
        let strokes = scribble(rng, &hand, &lines, hand.x_height * 3.4);
        let (ink_name, ink) = *pick(rng, NOTE_INKS);
        let angle = rng.random_range(-0.1..0.1f32);
        let noise = Noise::new(rng.random());
        let opacity = if ink_name == "pencil" { 0.7 } else { 0.95 };
        let slack = rng.random_range(0.0..1.0f32);
        let edge = (px * 0.4).max(3.0);
        let max_w = space - edge - px * 0.5;
        let max_h = ph - theme.top - theme.bottom;
        if max_w < px * 2.5 {
            return;
        }
        let Some((mask, scale)) = fitted(&strokes, hand.pen, noise, angle, max_w, max_h) else {
            return;
        };
        let (mw, mh) = (mask.width as f32, mask.height as f32);
        let x0 = if left_side {
            edge + (max_w - mw) * 0.5
        } else {
            pw - edge - max_w + (max_w - mw) * 0.5
        };
        let x0 = x0.round();
        let y0 = (theme.top + slack * (max_h - mh).max(0.0)).round();
        composite(
            &mut self.canvas.image,
            &mask,
            x0 as i32,
            y0 as i32,
            theme.colour(ink),
            opacity,
            Blend::Multiply,
        );
        let mut params = hand.params();
        params["form"] = json!("margin_note");
        params["ink"] = json!(ink_name);
        params["colour"] = json!(hex(ink));
        params["lines"] = json!(lines);
        params["scale"] = json!(r2(scale));
        params["rotation_deg"] = json!(r2(angle.to_degrees()));
        params["side"] = json!(if left_side { "left" } else { "right" });
        self.add_element("handwriting", x0, y0, x0 + mw, y0 + mh, params);
    }

    /// A reader's pen mark on a printed line: an underline or a loose
    /// circle around a few words.
    pub fn pen_mark(&mut self, rng: &mut ChaCha8Rng) {
        let Some((line, from, to)) = self.pick_words(rng, 4) else {
            return;
        };
        let (ink_name, ink) = *pick(rng, NOTE_INKS);
        let circle = rng.random_bool(0.35);
        let noise = Noise::new(rng.random());
        let lb = &self.lines[line];
        let (x0, x1) = (lb.words[from].0, lb.words[to - 1].1);
        let (baseline, lpx) = (lb.baseline, lb.px);
        let text = lb.text[from..to].join(" ");
        let j = |rng: &mut ChaCha8Rng| rng.random_range(-0.15..0.15) * lpx;
        let strokes: Strokes = if circle {
            let (cx, cy) = ((x0 + x1) * 0.5, baseline - lpx * 0.35);
            let (rx, ry) = ((x1 - x0) * 0.5 + lpx * 0.5, lpx * 0.9);
            let turn = rng.random_range(6.6..7.2f32);
            let start = rng.random_range(0.0..std::f32::consts::TAU);
            vec![
                (0..=14)
                    .map(|k| {
                        let a = start + turn * k as f32 / 14.0;
                        let grow = 1.0 + 0.06 * k as f32 / 14.0;
                        (
                            cx + rx * grow * a.cos() + j(rng),
                            cy + ry * grow * a.sin() + j(rng),
                        )
                    })
                    .collect(),
            ]
        } else {
            let y = baseline + lpx * rng.random_range(0.18..0.35);
            let n = ((x1 - x0) / (lpx * 2.0)).ceil().max(2.0) as usize;
            vec![
                (0..=n)
                    .map(|k| (x0 + (x1 - x0) * k as f32 / n as f32, y + j(rng) * 0.5))
                    .collect(),
            ]
        };
        let pen = (lpx * 0.07).max(0.6);
        // The strokes are in page coordinates, so is the mask's origin.
        let (mask, (ox, oy)) = rasterise(&strokes, pen, noise, 1.0);
        let (mx, my) = (ox.round(), oy.round());
        let (pw, ph) = self.page_size();
        let (mw, mh) = (mask.width as f32, mask.height as f32);
        if mx < 2.0 || my < 2.0 || mx + mw > pw - 2.0 || my + mh > ph - 3.0 {
            return;
        }
        composite(
            &mut self.canvas.image,
            &mask,
            mx as i32,
            my as i32,
            self.theme.colour(ink),
            0.95,
            Blend::Multiply,
        );
        let params = json!({
            "form": if circle { "circle" } else { "underline" },
            "ink": ink_name,
            "colour": hex(ink),
            "text": text,
        });
        self.add_element("handwriting", mx, my, mx + mw, my + mh, params);
    }

    /// Handwrites a value (a word or two) inside a form field's box;
    /// returns whether anything was drawn.
    pub fn handwrite_in(
        &mut self,
        rng: &mut ChaCha8Rng,
        (x0, y0, x1, y1): (f32, f32, f32, f32),
        ink: (&str, [u8; 3]),
        signature_field: bool,
    ) -> bool {
        let h = y1 - y0;
        let (strokes, hand) = if signature_field {
            signature(rng, h * 1.1)
        } else {
            let x_height = h * rng.random_range(0.36..0.46);
            let hand = Hand::sample(rng, x_height);
            let words = [rng.random_range(1..=3)];
            (scribble(rng, &hand, &words, 0.0), hand)
        };
        let noise = Noise::new(rng.random());
        let pad = h * 0.15;
        let Some((mask, scale)) =
            fitted(&strokes, hand.pen, noise, 0.0, x1 - x0 - 2.0 * pad, h * 1.6)
        else {
            return false;
        };
        // Handwriting is larger than type and spills over the box a little.
        let (mw, mh) = (mask.width as f32, mask.height as f32);
        let mx = (x0 + pad).round();
        let my = (y0 + (h - mh) * 0.55).round();
        composite(
            &mut self.canvas.image,
            &mask,
            mx as i32,
            my as i32,
            self.theme.colour(ink.1),
            0.95,
            Blend::Multiply,
        );
        let mut params = hand.params();
        params["form"] = json!("form_field");
        params["ink"] = json!(ink.0);
        params["colour"] = json!(hex(ink.1));
        params["scale"] = json!(r2(scale));
        let kind = if signature_field {
            "signature"
        } else {
            "handwriting"
        };
        self.add_element(kind, mx, my, mx + mw, my + mh, params);
        true
    }

    /// Pen strokes of a tick (or a cross) for a checkbox of side `s` at
    /// `(x, y)`; returns the box the mark was drawn in.
    pub fn tick(
        &mut self,
        rng: &mut ChaCha8Rng,
        x: f32,
        y: f32,
        s: f32,
        ink: [u8; 3],
        cross: bool,
    ) -> (f32, f32, f32, f32) {
        let mut j = || rng.random_range(-0.08..0.08) * s;
        let strokes: Strokes = if cross {
            vec![
                vec![
                    (0.15 * s + j(), 0.15 * s + j()),
                    (0.85 * s + j(), 0.85 * s + j()),
                ],
                vec![
                    (0.85 * s + j(), 0.15 * s + j()),
                    (0.15 * s + j(), 0.85 * s + j()),
                ],
            ]
        } else {
            vec![vec![
                (0.1 * s + j(), 0.5 * s + j()),
                (0.4 * s + j(), 0.85 * s + j()),
                (1.15 * s + j(), -0.25 * s + j()),
            ]]
        };
        let pen = (s * 0.09).max(0.6);
        let (mask, (ox, oy)) = rasterise(&strokes, pen, Noise::new(rng.random()), 1.0);
        let (mx, my) = ((x + ox).round(), (y + oy).round());
        composite(
            &mut self.canvas.image,
            &mask,
            mx as i32,
            my as i32,
            self.theme.colour(ink),
            0.95,
            Blend::Multiply,
        );
        (mx, my, mx + mask.width as f32, my + mask.height as f32)
    }
}

const ROLES: &[&str] = &[
    "Secretary",
    "Treasurer",
    "Director",
    "Manager",
    "Clerk",
    "Chairman",
    "Registrar",
];

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn handwriting_is_deterministic_and_inks_a_fitted_mask() {
        let strokes = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let hand = Hand::sample(&mut rng, 8.0);
            (scribble(&mut rng, &hand, &[2, 1], 26.0), hand)
        };
        let (a, hand) = strokes(5);
        assert_eq!(a, strokes(5).0);
        assert_ne!(a, strokes(6).0);
        let (mask, scale) =
            fitted(&a, hand.pen, Noise::new(1), 0.1, 60.0, 80.0).expect("a short note fits");
        assert!(mask.width <= 60 && mask.height <= 80 && scale <= 1.0);
        let inked = mask.cov.iter().filter(|&&c| c > 0.5).count();
        assert!(inked > 40, "{inked} inked pixels");
    }

    #[test]
    fn signatures_have_loops_and_fit_their_height() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (strokes, hand) = signature(&mut rng, 30.0);
        assert!(!strokes.is_empty());
        let (mask, _) = rasterise(&strokes, hand.pen, Noise::new(2), 1.0);
        // Capitals reach about the requested height, descenders a bit more.
        assert!(mask.height > 25 && mask.height < 80, "{}", mask.height);
        assert!(mask.ink_bounds().is_some());
    }
}
