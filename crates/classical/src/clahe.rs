//! Contrast-limited adaptive histogram equalisation (CLAHE).
//!
//! The image is cut into a grid of tiles; each tile gets its own
//! equalisation curve from a histogram whose bins are clipped (the excess is
//! spread over all bins) so flat regions are not stretched into noise. Each
//! pixel blends the curves of the four nearest tile centres bilinearly,
//! which hides the tile seams.

use image::GrayImage;
use rayon::prelude::*;

use crate::ClaheParams;

/// Applies CLAHE with the given tile grid and clip limit.
///
/// The tile counts are clamped to the image size, and a clip limit that is
/// not a positive finite number is treated as 1.0 (the weakest useful
/// setting); call
/// [`crate::Layer1Params::validate`] to reject such values instead. Empty
/// images are returned unchanged.
pub fn clahe(img: &GrayImage, p: &ClaheParams) -> GrayImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return img.clone();
    }
    let tiles_x = p.tiles_x.clamp(1, w);
    let tiles_y = p.tiles_y.clamp(1, h);
    let clip = if p.clip_limit.is_finite() && p.clip_limit > 0.0 {
        p.clip_limit
    } else {
        1.0
    };

    let mut luts = Vec::with_capacity((tiles_x * tiles_y) as usize);
    for ty in 0..tiles_y {
        for tx in 0..tiles_x {
            let (x0, x1) = tile_span(tx, tiles_x, w);
            let (y0, y1) = tile_span(ty, tiles_y, h);
            let mut hist = [0u32; 256];
            for y in y0..y1 {
                for x in x0..x1 {
                    hist[usize::from(img.get_pixel(x, y)[0])] += 1;
                }
            }
            luts.push(tile_lut(&mut hist, (x1 - x0) * (y1 - y0), clip));
        }
    }

    let tile_w = w as f32 / tiles_x as f32;
    let tile_h = h as f32 / tiles_y as f32;
    let tiles_x = tiles_x as usize;
    let mut out = img.clone();
    out.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            let (ty0, ty1, fy) = tile_coord(y, tile_h, tiles_y as usize);
            for (x, px) in row.iter_mut().enumerate() {
                let (tx0, tx1, fx) = tile_coord(x, tile_w, tiles_x);
                let v = usize::from(*px);
                let at = |tx: usize, ty: usize| f32::from(luts[ty * tiles_x + tx][v]);
                let top = at(tx0, ty0) * (1.0 - fx) + at(tx1, ty0) * fx;
                let bottom = at(tx0, ty1) * (1.0 - fx) + at(tx1, ty1) * fx;
                *px = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        });
    out
}

/// Pixel range `[start, end)` of tile `i` out of `n` across `len` pixels.
fn tile_span(i: u32, n: u32, len: u32) -> (u32, u32) {
    let at = |k: u32| (u64::from(k) * u64::from(len) / u64::from(n)) as u32;
    (at(i), at(i + 1))
}

/// The two tiles whose centres bracket pixel `i`, and the weight of the
/// second. Pixels outside the outermost centres use one tile only.
fn tile_coord(i: usize, tile: f32, n: usize) -> (usize, usize, f32) {
    let g = ((i as f32 + 0.5) / tile - 0.5).max(0.0);
    let i0 = (g.floor() as usize).min(n - 1);
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, (g - i0 as f32).clamp(0.0, 1.0))
}

/// Clips the histogram, redistributes the excess and returns the
/// equalisation curve of a tile holding `count` pixels.
fn tile_lut(hist: &mut [u32; 256], count: u32, clip: f32) -> [u8; 256] {
    // The limit is relative to the mean bin height so the same clip works
    // for any tile size; at least 1 so tiny tiles still map something.
    let limit = (clip * count as f32 / 256.0).max(1.0) as u32;
    let mut excess = 0u32;
    for bin in hist.iter_mut() {
        if *bin > limit {
            excess += *bin - limit;
            *bin = limit;
        }
    }
    let share = excess / 256;
    let leftover = excess % 256;
    for (i, bin) in hist.iter_mut().enumerate() {
        *bin += share;
        // Spread the remainder evenly rather than piling it on dark bins,
        // which would brighten the whole curve's low end.
        if leftover > 0 && (i as u32 * leftover) % 256 < leftover {
            *bin += 1;
        }
    }
    let total: u32 = hist.iter().sum();
    let mut lut = [0u8; 256];
    let mut cdf = 0u64;
    for (v, bin) in hist.iter().enumerate() {
        cdf += u64::from(*bin);
        lut[v] = ((cdf * 255 + u64::from(total) / 2) / u64::from(total.max(1))).min(255) as u8;
    }
    lut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{add_noise, degenerate_images, stats, text_page};
    use image::Luma;

    fn params(clip_limit: f32) -> ClaheParams {
        ClaheParams {
            tiles_x: 8,
            tiles_y: 8,
            clip_limit,
        }
    }

    /// A faded page: text at 110 on paper at 140, with slight noise.
    fn low_contrast() -> GrayImage {
        let page = text_page(160, 120);
        let faded = GrayImage::from_fn(160, 120, |x, y| {
            Luma([if page.get_pixel(x, y)[0] < 128 {
                110
            } else {
                140
            }])
        });
        add_noise(&faded, 2.0, 2)
    }

    #[test]
    fn increases_local_contrast() {
        let img = low_contrast();
        let out = clahe(&img, &params(3.0));
        let (_, before) = stats(&img, |_, _| true);
        let (_, after) = stats(&out, |_, _| true);
        assert!(after > before * 1.5, "std {before} -> {after}");
        // Ink and paper are pushed further apart (the clip bounds the slope
        // of the curve, so the gain is moderate: about 1.4 here).
        let page = text_page(160, 120);
        let gap = |im: &GrayImage| {
            let (ink, _) = stats(im, |x, y| page.get_pixel(x, y)[0] < 128);
            let (paper, _) = stats(im, |x, y| page.get_pixel(x, y)[0] >= 128);
            paper - ink
        };
        assert!(
            gap(&out) > gap(&img) * 1.25,
            "{} -> {}",
            gap(&img),
            gap(&out)
        );
    }

    #[test]
    fn clip_limit_keeps_flat_regions_flat() {
        let flat = add_noise(&GrayImage::from_pixel(128, 128, Luma([128])), 1.0, 3);
        let (mean_in, std_in) = stats(&flat, |_, _| true);
        let out = clahe(&flat, &params(2.0));
        let (mean_out, std_out) = stats(&out, |_, _| true);
        // Slope of a clipped curve is at most about (clip + 1) times unity.
        assert!(std_out <= std_in * 3.5 + 0.5, "std {std_in} -> {std_out}");
        assert!(
            (mean_out - mean_in).abs() < 10.0,
            "mean {mean_in} -> {mean_out}"
        );
    }

    #[test]
    fn uniform_image_stays_uniform() {
        let img = GrayImage::from_pixel(64, 48, Luma([90]));
        let out = clahe(&img, &params(4.0));
        let first = out.get_pixel(0, 0)[0];
        assert!(out.pixels().all(|p| p[0] == first));
        assert!(first.abs_diff(90) < 10, "uniform 90 mapped to {first}");
    }

    #[test]
    fn deterministic_and_size_safe() {
        let img = low_contrast();
        assert_eq!(clahe(&img, &params(2.0)), clahe(&img, &params(2.0)));
        for img in degenerate_images() {
            for clip in [2.0, f32::NAN, 0.0] {
                let p = ClaheParams {
                    tiles_x: 16,
                    tiles_y: 16,
                    clip_limit: clip,
                };
                assert_eq!(clahe(&img, &p).dimensions(), img.dimensions());
            }
        }
    }
}
