//! Low-level painting for non-text content: single-ink coverage masks drawn
//! off the page (pen strokes, outlines, shapes, text), rotated, and then
//! composited like ink (multiply) or like opaque print (over).
//!
//! Every operation treats the three channels alike, so grey on grey stays
//! grey: a digital twin page keeps `r == g == b` everywhere.

use image::RgbImage;

use super::text::{Canvas, TextStyle};

/// Coverage in `0.0..=1.0` of one ink over a `width` x `height` box.
pub(super) struct Mask {
    pub width: usize,
    pub height: usize,
    pub cov: Vec<f32>,
}

impl Mask {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            cov: vec![0.0; width * height],
        }
    }

    fn add(&mut self, x: i32, y: i32, c: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let v = &mut self.cov[y as usize * self.width + x as usize];
        *v = v.max(c.min(1.0));
    }

    /// Integer pixel range covering `lo..hi`, clipped to `0..len`.
    fn span(lo: f32, hi: f32, len: usize) -> std::ops::Range<i32> {
        (lo.floor() as i32).max(0)..(hi.ceil() as i32).min(len as i32)
    }

    /// An anti-aliased filled disc.
    pub fn disc(&mut self, cx: f32, cy: f32, r: f32, strength: f32) {
        for y in Self::span(cy - r - 1.0, cy + r + 1.0, self.height) {
            for x in Self::span(cx - r - 1.0, cx + r + 1.0, self.width) {
                let d = (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy);
                let c = (r + 0.5 - d).clamp(0.0, 1.0) * strength;
                if c > 0.0 {
                    self.add(x, y, c);
                }
            }
        }
    }

    /// An anti-aliased circle outline of `thickness` centred on radius `r`.
    pub fn ring(&mut self, cx: f32, cy: f32, r: f32, thickness: f32) {
        let outer = r + thickness * 0.5 + 1.0;
        for y in Self::span(cy - outer, cy + outer, self.height) {
            for x in Self::span(cx - outer, cx + outer, self.width) {
                let d = (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy);
                let c = (thickness * 0.5 + 0.5 - (d - r).abs()).clamp(0.0, 1.0);
                if c > 0.0 {
                    self.add(x, y, c);
                }
            }
        }
    }

    /// A pen stroke through `(x, y, radius)` points: discs close enough
    /// together to read as one smooth line of varying width.
    pub fn stroke(&mut self, pts: &[(f32, f32, f32)], strength: f32) {
        if let [(x, y, r)] = pts {
            self.disc(*x, *y, *r, strength);
        }
        for pair in pts.windows(2) {
            let [(x0, y0, r0), (x1, y1, r1)] = [pair[0], pair[1]];
            let len = (x1 - x0).hypot(y1 - y0);
            let step = (r0.min(r1) * 0.4).max(0.2);
            let n = (len / step).ceil().max(1.0) as usize;
            for i in 0..n {
                let t = i as f32 / n as f32;
                let r = r0 + (r1 - r0) * t;
                self.disc(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, r, strength);
            }
        }
        if let Some(&(x, y, r)) = pts.last() {
            self.disc(x, y, r, strength);
        }
    }

    /// Fills whole pixels of the rectangle `x0..x1` x `y0..y1`.
    pub fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32) {
        for y in Self::span(y0, y1, self.height) {
            for x in Self::span(x0, x1, self.width) {
                self.add(x, y, 1.0);
            }
        }
    }

    /// A rectangle outline `t` pixels thick, inside `x0..x1` x `y0..y1`.
    pub fn rect_outline(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, t: f32) {
        self.fill_rect(x0, y0, x1, y0 + t);
        self.fill_rect(x0, y1 - t, x1, y1);
        self.fill_rect(x0, y0, x0 + t, y1);
        self.fill_rect(x1 - t, y0, x1, y1);
    }

    /// A filled polygon, anti-aliased by 4 x 4 supersampling (even-odd rule).
    pub fn polygon(&mut self, pts: &[(f32, f32)]) {
        if pts.len() < 3 {
            return;
        }
        let (mut lo_x, mut lo_y, mut hi_x, mut hi_y) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &(x, y) in pts {
            (lo_x, lo_y, hi_x, hi_y) = (lo_x.min(x), lo_y.min(y), hi_x.max(x), hi_y.max(y));
        }
        let inside = |px: f32, py: f32| {
            let mut odd = false;
            let mut j = pts.len() - 1;
            for i in 0..pts.len() {
                let ((xi, yi), (xj, yj)) = (pts[i], pts[j]);
                if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
                    odd = !odd;
                }
                j = i;
            }
            odd
        };
        for y in Self::span(lo_y, hi_y, self.height) {
            for x in Self::span(lo_x, hi_x, self.width) {
                let mut hits = 0;
                for sy in 0..4 {
                    for sx in 0..4 {
                        let (px, py) = (
                            x as f32 + (sx as f32 + 0.5) / 4.0,
                            y as f32 + (sy as f32 + 0.5) / 4.0,
                        );
                        hits += u32::from(inside(px, py));
                    }
                }
                if hits > 0 {
                    self.add(x, y, hits as f32 / 16.0);
                }
            }
        }
    }

    /// Draws `text` into the mask with its left edge at `x` and baseline at
    /// `baseline`, reusing the page's glyph rasteriser; returns the advance.
    pub fn text(&mut self, style: &TextStyle, x: f32, baseline: f32, text: &str) -> f32 {
        let mut canvas = Canvas::new(self.width as u32, self.height as u32, [255; 3]);
        let black = TextStyle {
            ink: [0, 0, 0],
            ..*style
        };
        let advance = canvas.draw_text(&black, x, baseline, text);
        for (v, p) in self.cov.iter_mut().zip(canvas.image.pixels()) {
            *v = v.max(1.0 - f32::from(p.0[0]) / 255.0);
        }
        advance
    }

    /// Scales every coverage value by `f(x, y)` (fading, speckle).
    pub fn modulate(&mut self, mut f: impl FnMut(f32, f32) -> f32) {
        for y in 0..self.height {
            for x in 0..self.width {
                let v = &mut self.cov[y * self.width + x];
                if *v > 0.0 {
                    *v = (*v * f(x as f32, y as f32)).clamp(0.0, 1.0);
                }
            }
        }
    }

    /// Bilinear coverage at a continuous position; zero outside.
    fn sample(&self, x: f32, y: f32) -> f32 {
        let (x, y) = (x - 0.5, y - 0.5);
        // `floor` without the libm call the baseline target makes of it
        // (the same value for every finite input in i32 range).
        let floor = |v: f32| {
            let t = v as i32 as f32;
            if t > v { t - 1.0 } else { t }
        };
        let (x0, y0) = (floor(x), floor(y));
        let (fx, fy) = (x - x0, y - y0);
        let at = |xi: i32, yi: i32| {
            if xi < 0 || yi < 0 || xi as usize >= self.width || yi as usize >= self.height {
                0.0
            } else {
                self.cov[yi as usize * self.width + xi as usize]
            }
        };
        let (xi, yi) = (x0 as i32, y0 as i32);
        let top = at(xi, yi) * (1.0 - fx) + at(xi + 1, yi) * fx;
        let bottom = at(xi, yi + 1) * (1.0 - fx) + at(xi + 1, yi + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    /// The mask turned by `angle` radians (clockwise on the page) about its
    /// centre, in a box just large enough to hold it.
    pub fn rotated(&self, angle: f32) -> Mask {
        let (s, c) = angle.sin_cos();
        let (w, h) = (self.width as f32, self.height as f32);
        let nw = (w * c.abs() + h * s.abs()).ceil() as usize + 2;
        let nh = (w * s.abs() + h * c.abs()).ceil() as usize + 2;
        let mut out = Mask::new(nw, nh);
        let (cx, cy, ncx, ncy) = (w * 0.5, h * 0.5, nw as f32 * 0.5, nh as f32 * 0.5);
        for y in 0..nh {
            for x in 0..nw {
                let (dx, dy) = (x as f32 + 0.5 - ncx, y as f32 + 0.5 - ncy);
                // Inverse rotation: where this output pixel came from.
                let (sx, sy) = (c * dx + s * dy + cx, -s * dx + c * dy + cy);
                out.cov[y * nw + x] = self.sample(sx, sy);
            }
        }
        out
    }

    /// The smallest box holding every covered pixel, as `(x0, y0, x1, y1)`
    /// (exclusive ends); `None` for an empty mask.
    #[cfg(test)]
    pub fn ink_bounds(&self) -> Option<(usize, usize, usize, usize)> {
        let mut b: Option<(usize, usize, usize, usize)> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if self.cov[y * self.width + x] > 0.0 {
                    b = Some(match b {
                        None => (x, y, x + 1, y + 1),
                        Some((x0, y0, x1, y1)) => {
                            (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1))
                        }
                    });
                }
            }
        }
        b
    }
}

/// How a mask's ink meets what is already on the page.
#[derive(Clone, Copy)]
pub(super) enum Blend {
    /// Transparent ink darkening what lies under it (stamps, pens,
    /// highlighter): text under it stays readable.
    Multiply,
    /// Opaque print covering what lies under it (logos).
    Over,
}

/// Composites `colour` through `mask` onto the page with the mask's top-left
/// at `(x, y)`; pixels outside the page are skipped.
pub(super) fn composite(
    img: &mut RgbImage,
    mask: &Mask,
    x: i32,
    y: i32,
    colour: [u8; 3],
    opacity: f32,
    blend: Blend,
) {
    let (iw, ih) = (img.width() as i32, img.height() as i32);
    let k = colour.map(|c| f32::from(c) / 255.0);
    for my in 0..mask.height {
        let py = y + my as i32;
        if !(0..ih).contains(&py) {
            continue;
        }
        for mx in 0..mask.width {
            let px = x + mx as i32;
            let a = mask.cov[my * mask.width + mx] * opacity;
            if !(0..iw).contains(&px) || a <= 0.0 {
                continue;
            }
            // In bounds by the checks above.
            let p = img.get_pixel_mut(px as u32, py as u32);
            for (v, &kc) in p.0.iter_mut().zip(&k) {
                let d = f32::from(*v);
                let out = match blend {
                    Blend::Multiply => d * (1.0 - a * (1.0 - kc)),
                    Blend::Over => d * (1.0 - a) + kc * 255.0 * a,
                };
                *v = (out + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Multiplies an RGB picture (white where empty) into the page at `(x, y)`,
/// so the paper tone shows through its background.
pub(super) fn multiply_image(img: &mut RgbImage, src: &RgbImage, x: i32, y: i32) {
    let (iw, ih) = (img.width() as i32, img.height() as i32);
    for (sx, sy, s) in src.enumerate_pixels() {
        let (px, py) = (x + sx as i32, y + sy as i32);
        if px < 0 || py < 0 || px >= iw || py >= ih {
            continue;
        }
        let p = img.get_pixel_mut(px as u32, py as u32);
        for (v, &c) in p.0.iter_mut().zip(&s.0) {
            *v = ((u32::from(*v) * u32::from(c) + 127) / 255) as u8;
        }
    }
}

/// Smooth value noise in `0.0..=1.0`, a pure function of its seed.
#[derive(Clone, Copy)]
pub(super) struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn lattice(&self, ix: i32, iy: i32) -> f32 {
        let mut z = self.0
            ^ u64::from(ix as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(iy as u32).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The lattice values at the four corners of cell `(ix, iy)`.
    fn corners(&self, ix: i32, iy: i32) -> [f32; 4] {
        [
            self.lattice(ix, iy),
            self.lattice(ix + 1, iy),
            self.lattice(ix, iy + 1),
            self.lattice(ix + 1, iy + 1),
        ]
    }

    /// Value noise with one lattice cell per unit.
    pub fn value(&self, x: f32, y: f32) -> f32 {
        let cell = Cell::of(x, y);
        cell.blend(self.corners(cell.ix, cell.iy))
    }

    /// Fractal sum of `octaves` octaves, normalised to `0.0..=1.0`.
    pub fn fbm(&self, x: f32, y: f32, octaves: u32) -> f32 {
        fractal(x, y, octaves, |_, x, y| self.value(x, y))
    }

    /// The same noise, remembering the last lattice cell of each octave.
    pub fn cached(self) -> CachedNoise {
        CachedNoise {
            noise: self,
            cells: [CachedCell {
                ix: i32::MIN,
                iy: i32::MIN,
                corners: [0.0; 4],
                y_bits: f32::NAN.to_bits(),
                y_axis: Cell::axis(f32::NAN),
            }; OCTAVE_SLOTS],
        }
    }
}

/// A point's lattice cell and its smoothed position inside it.
struct Cell {
    ix: i32,
    iy: i32,
    fx: f32,
    fy: f32,
}

impl Cell {
    #[inline(always)]
    fn of(x: f32, y: f32) -> Self {
        let (ix, fx) = Self::axis(x);
        let (iy, fy) = Self::axis(y);
        Self { ix, iy, fx, fy }
    }

    /// A coordinate's lattice index and smoothed position in its cell.
    #[inline(always)]
    fn axis(v: f32) -> (i32, f32) {
        // `floor` without the libm call the baseline target makes of it
        // (the same value for every finite input in i32 range).
        let t = v as i32 as f32;
        let v0 = if t > v { t - 1.0 } else { t };
        let f = v - v0;
        (v0 as i32, f * f * (3.0 - 2.0 * f))
    }

    /// Bilinear blend of the corners `[top left, top right, bottom left,
    /// bottom right]`.
    #[inline(always)]
    fn blend(&self, c: [f32; 4]) -> f32 {
        let (fx, fy) = (self.fx, self.fy);
        let top = c[0] * (1.0 - fx) + c[1] * fx;
        let bottom = c[2] * (1.0 - fx) + c[3] * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// Fractal sum of `octaves` octaves of `value(octave, x, y)`, normalised to
/// `0.0..=1.0`.
fn fractal(x: f32, y: f32, octaves: u32, mut value: impl FnMut(usize, f32, f32) -> f32) -> f32 {
    let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
    for o in 0..octaves {
        // Offsetting each octave keeps lattice points from lining up.
        let shift = o as f32 * 17.31;
        sum += amp * value(o as usize, x * freq + shift, y * freq - shift);
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

/// Octaves whose last cell a [`CachedNoise`] remembers (deeper ones share).
const OCTAVE_SLOTS: usize = 8;

/// [`Noise`] for a path that moves a little at a time, such as a row of
/// pixels: the corner values of the last cell met at each octave are kept,
/// so the pixels that share a cell hash its corners once. It gives exactly
/// the values [`Noise`] gives.
pub(super) struct CachedNoise {
    noise: Noise,
    cells: [CachedCell; OCTAVE_SLOTS],
}

/// The last lattice cell one octave met, and the last `y` it was asked
/// for with that coordinate's index and weight: along a row of pixels `y`
/// repeats, so only `x` is split anew.
#[derive(Clone, Copy)]
struct CachedCell {
    ix: i32,
    iy: i32,
    corners: [f32; 4],
    y_bits: u32,
    y_axis: (i32, f32),
}

impl CachedNoise {
    #[inline(always)]
    fn value_at(&mut self, octave: usize, x: f32, y: f32) -> f32 {
        let slot = &mut self.cells[octave % OCTAVE_SLOTS];
        if slot.y_bits != y.to_bits() {
            slot.y_bits = y.to_bits();
            slot.y_axis = Cell::axis(y);
        }
        let (ix, fx) = Cell::axis(x);
        let (iy, fy) = slot.y_axis;
        if (slot.ix, slot.iy) != (ix, iy) {
            (slot.ix, slot.iy) = (ix, iy);
            slot.corners = self.noise.corners(ix, iy);
        }
        Cell { ix, iy, fx, fy }.blend(slot.corners)
    }

    /// [`Noise::value`].
    pub fn value(&mut self, x: f32, y: f32) -> f32 {
        self.value_at(0, x, y)
    }

    /// [`Noise::fbm`].
    pub fn fbm(&mut self, x: f32, y: f32, octaves: u32) -> f32 {
        fractal(x, y, octaves, |o, x, y| self.value_at(o, x, y))
    }
}

/// A smooth Catmull-Rom curve through every control point, sampled about
/// every `spacing` pixels.
pub(super) fn catmull_rom(ctrl: &[(f32, f32)], spacing: f32) -> Vec<(f32, f32)> {
    if ctrl.len() < 3 {
        return ctrl.to_vec();
    }
    let last = ctrl.len() - 1;
    let mut out = Vec::new();
    for i in 0..last {
        let p0 = ctrl[i.saturating_sub(1)];
        let (p1, p2) = (ctrl[i], ctrl[i + 1]);
        let p3 = ctrl[(i + 2).min(last)];
        let chord = (p2.0 - p1.0).hypot(p2.1 - p1.1);
        let n = (chord / spacing).ceil().max(1.0) as usize;
        for k in 0..n {
            let t = k as f32 / n as f32;
            let (t2, t3) = (t * t, t * t * t);
            let f = |a: f32, b: f32, c: f32, d: f32| {
                0.5 * (2.0 * b
                    + (c - a) * t
                    + (2.0 * a - 5.0 * b + 4.0 * c - d) * t2
                    + (3.0 * b - a - 3.0 * c + d) * t3)
            };
            out.push((f(p0.0, p1.0, p2.0, p3.0), f(p0.1, p1.1, p2.1, p3.1)));
        }
    }
    out.push(ctrl[last]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_passes_through_its_control_points() {
        let ctrl = [(0.0, 0.0), (10.0, 5.0), (20.0, -3.0), (30.0, 8.0)];
        let pts = catmull_rom(&ctrl, 1.0);
        for c in ctrl {
            let near = pts
                .iter()
                .any(|p| (p.0 - c.0).abs() < 1e-3 && (p.1 - c.1).abs() < 1e-3);
            assert!(near, "{c:?} not on the curve");
        }
        assert!(pts.len() > 30);
    }

    #[test]
    fn cells_floor_like_libm() {
        for i in -2000..2000 {
            for v in [i as f32 * 0.37, i as f32, i as f32 - 1e-3, i as f32 * 1e-4] {
                let cell = Cell::of(v, -v);
                assert_eq!(cell.ix, v.floor() as i32, "{v}");
                assert_eq!(cell.iy, (-v).floor() as i32, "{v}");
            }
        }
    }

    #[test]
    fn cached_noise_gives_the_same_values() {
        let noise = Noise::new(9);
        let mut cached = noise.cached();
        // Rows of pixels crossing cells both ways, with jumps between them,
        // negative coordinates and more octaves than the cache has slots.
        for row in -3..4 {
            for i in -300..300 {
                let (x, y) = (i as f32 * 0.13, row as f32 * 2.7 + (i % 7) as f32 * 0.01);
                assert_eq!(cached.value(x, y), noise.value(x, y), "({x}, {y})");
                for octaves in [1, 3, 4, 11] {
                    assert_eq!(cached.fbm(x, y, octaves), noise.fbm(x, y, octaves));
                }
            }
        }
    }

    #[test]
    fn noise_is_smooth_bounded_and_seeded() {
        let (a, b) = (Noise::new(1), Noise::new(2));
        let mut differs = false;
        for i in 0..200 {
            let (x, y) = (i as f32 * 0.37, i as f32 * 0.11);
            let v = a.fbm(x, y, 4);
            assert!((0.0..=1.0).contains(&v));
            assert_eq!(v, Noise::new(1).fbm(x, y, 4));
            assert!((a.value(x, y) - a.value(x + 0.01, y)).abs() < 0.05);
            differs |= (v - b.fbm(x, y, 4)).abs() > 1e-3;
        }
        assert!(differs);
    }

    #[test]
    fn rotation_keeps_the_ink() {
        let mut m = Mask::new(40, 20);
        m.fill_rect(5.0, 5.0, 35.0, 15.0);
        let total: f32 = m.cov.iter().sum();
        let r = m.rotated(0.3);
        let turned: f32 = r.cov.iter().sum();
        assert!((turned - total).abs() < total * 0.05, "{total} -> {turned}");
        assert!(r.width > m.width && r.height > m.height);
    }

    #[test]
    fn multiply_keeps_dark_ink_dark_and_grey_grey() {
        let mut img = RgbImage::from_pixel(4, 1, image::Rgb([250, 250, 250]));
        img.put_pixel(1, 0, image::Rgb([10, 10, 10]));
        let mut m = Mask::new(4, 1);
        m.fill_rect(0.0, 0.0, 4.0, 1.0);
        composite(&mut img, &m, 0, 0, [226, 226, 226], 0.8, Blend::Multiply);
        assert!(img.get_pixel(1, 0).0[0] <= 10);
        assert!(img.get_pixel(0, 0).0[0] < 250);
        assert!(img.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
        // Off-page parts of a mask are skipped, not wrapped.
        composite(&mut img, &m, -2, -1, [0, 0, 0], 1.0, Blend::Over);
        assert!(img.get_pixel(3, 0).0[0] > 100);
    }

    #[test]
    fn strokes_and_shapes_cover_what_they_should() {
        let mut m = Mask::new(30, 30);
        m.stroke(&[(5.0, 5.0, 1.5), (25.0, 25.0, 2.5)], 1.0);
        assert!(m.cov[15 * 30 + 15] > 0.9);
        assert_eq!(m.cov[25 * 30 + 5], 0.0);
        let mut p = Mask::new(30, 30);
        p.polygon(&[(15.0, 2.0), (28.0, 28.0), (2.0, 28.0)]);
        assert!(p.cov[20 * 30 + 15] > 0.99);
        assert_eq!(p.cov[3 * 30 + 2], 0.0);
        assert_eq!(p.ink_bounds().map(|b| b.1), Some(2));
    }
}
