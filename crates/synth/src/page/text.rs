//! Glyph measurement, caching and anti-aliased drawing onto the page.

use std::collections::HashMap;

use ab_glyph::{Font, GlyphId, PxScale, ScaleFont, point};
use image::RgbImage;

use crate::fonts::Face;

/// Horizontal sub-pixel positions per pixel kept distinct in the cache.
const SUBPIXEL_STEPS: f32 = 4.0;

/// A font face at a pixel size with an ink colour.
#[derive(Clone, Copy)]
pub(super) struct TextStyle<'f> {
    pub face: &'f Face,
    pub px: f32,
    pub ink: [u8; 3],
}

impl TextStyle<'_> {
    /// Distance from the top of a line box to its baseline.
    pub fn ascent(&self) -> f32 {
        self.face.font.as_scaled(PxScale::from(self.px)).ascent()
    }

    /// Width of `word` including kerning between its letters.
    pub fn width(&self, word: &str) -> f32 {
        let font = self.face.font.as_scaled(PxScale::from(self.px));
        let mut prev: Option<GlyphId> = None;
        let mut w = 0.0;
        for c in word.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                w += font.kern(p, id);
            }
            w += font.h_advance(id);
            prev = Some(id);
        }
        w
    }

    /// Width of one inter-word space.
    pub fn space(&self) -> f32 {
        let font = self.face.font.as_scaled(PxScale::from(self.px));
        font.h_advance(font.glyph_id(' '))
    }

    /// Whether the face has a real glyph for `c`.
    pub fn has_glyph(&self, c: char) -> bool {
        self.face.font.glyph_id(c).0 != 0
    }
}

/// A rasterised glyph: coverage bytes placed relative to the pen position.
struct GlyphBitmap {
    left: i32,
    top: i32,
    width: usize,
    height: usize,
    coverage: Vec<u8>,
}

/// The page being drawn plus a per-page glyph cache; a page repeats the same
/// few hundred glyphs thousands of times, so rasterising each once pays off.
pub(super) struct Canvas {
    pub image: RgbImage,
    cache: HashMap<(u32, u16, u32, u8), Option<GlyphBitmap>>,
}

impl Canvas {
    /// A blank page filled with `paper`.
    pub fn new(width: u32, height: u32, paper: [u8; 3]) -> Self {
        Self {
            image: RgbImage::from_pixel(width, height, image::Rgb(paper)),
            cache: HashMap::new(),
        }
    }

    /// Draws `text` with its left edge at `x` and baseline at `baseline`;
    /// returns the advance width.
    pub fn draw_text(&mut self, style: &TextStyle, x: f32, baseline: f32, text: &str) -> f32 {
        let scale = PxScale::from(style.px);
        let font = style.face.font.as_scaled(scale);
        let base_y = baseline.round() as i32;
        let mut pen = x;
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            let whole = pen.floor();
            let sub = ((pen - whole) * SUBPIXEL_STEPS).floor() as u8;
            let key = (style.face.id, id.0, style.px.to_bits(), sub);
            let bitmap = self
                .cache
                .entry(key)
                .or_insert_with(|| rasterise(style.face, id, scale, sub));
            if let Some(bm) = bitmap {
                blit(
                    &mut self.image,
                    bm,
                    whole as i32 + bm.left,
                    base_y + bm.top,
                    style.ink,
                );
            }
            pen += font.h_advance(id);
            prev = Some(id);
        }
        pen - x
    }

    /// Fills an axis-aligned rectangle (used for table rules).
    pub fn fill_rect(&mut self, x: i32, y: i32, w: i32, h: i32, color: [u8; 3]) {
        let (iw, ih) = (self.image.width() as i32, self.image.height() as i32);
        for yy in y.max(0)..(y + h).min(ih) {
            for xx in x.max(0)..(x + w).min(iw) {
                // The ranges above are clamped to the image, so the pixel exists.
                self.image
                    .put_pixel(xx as u32, yy as u32, image::Rgb(color));
            }
        }
    }
}

fn rasterise(face: &Face, id: GlyphId, scale: PxScale, sub: u8) -> Option<GlyphBitmap> {
    let glyph = id.with_scale_and_position(scale, point(f32::from(sub) / SUBPIXEL_STEPS, 0.0));
    let outline = face.font.outline_glyph(glyph)?;
    let bounds = outline.px_bounds();
    let (width, height) = (bounds.width() as usize, bounds.height() as usize);
    let mut coverage = vec![0u8; width * height];
    outline.draw(|gx, gy, c| {
        let i = gy as usize * width + gx as usize;
        if let Some(slot) = coverage.get_mut(i) {
            *slot = (c.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    });
    Some(GlyphBitmap {
        left: bounds.min.x as i32,
        top: bounds.min.y as i32,
        width,
        height,
        coverage,
    })
}

/// Coverage blending of ink over the page, clipped to the image.
fn blit(img: &mut RgbImage, bm: &GlyphBitmap, x0: i32, y0: i32, ink: [u8; 3]) {
    let (iw, ih) = (img.width() as i32, img.height() as i32);
    let stride = iw as usize * 3;
    // Clip once per glyph, not per pixel: the visible columns and rows.
    let (c0, c1) = ((-x0).max(0), (iw - x0).min(bm.width as i32));
    let (r0, r1) = ((-y0).max(0), (ih - y0).min(bm.height as i32));
    if c0 >= c1 || r0 >= r1 {
        return;
    }
    let (c0, c1) = (c0 as usize, c1 as usize);
    let ink = ink.map(u32::from);
    let buf: &mut [u8] = img;
    for row in r0 as usize..r1 as usize {
        let start = (y0 as usize + row) * stride + (x0 + c0 as i32) as usize * 3;
        let dst = &mut buf[start..start + (c1 - c0) * 3];
        let cov = &bm.coverage[row * bm.width + c0..row * bm.width + c1];
        // No skip for zero coverage: it leaves the pixel as it was anyway
        // ((255 p + 127) / 255 = p), and a branch-free loop is faster.
        for (px, &a) in dst.chunks_exact_mut(3).zip(cov) {
            let a = u32::from(a);
            for (v, &k) in px.iter_mut().zip(&ink) {
                *v = ((u32::from(*v) * (255 - a) + k * a + 127) / 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FontLibrary;

    #[test]
    fn measures_and_draws_ink() {
        let lib = FontLibrary::system().expect("the build machines have DejaVu installed");
        let face = lib.families()[0].face(false, false);
        let style = TextStyle {
            face,
            px: 20.0,
            ink: [0, 0, 0],
        };
        let w = style.width("Hello");
        assert!(w > 20.0 && w < 100.0, "width {w}");
        assert!(style.width("Hello world") > w + style.space());
        let mut canvas = Canvas::new(120, 40, [255, 255, 255]);
        let adv = canvas.draw_text(&style, 5.0, 28.0, "Hello");
        assert!((adv - w).abs() < 1e-3);
        let dark = canvas.image.pixels().filter(|p| p.0[0] < 100).count();
        assert!(dark > 30, "{dark} dark pixels");
        // Nothing is drawn left of the pen or below the descender line.
        assert!(canvas.image.get_pixel(1, 20).0[0] == 255);
    }
}
