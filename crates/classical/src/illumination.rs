//! Illumination flattening: estimate the paper background and divide it out.
//!
//! Photographed and scanned pages carry shading (lamp fall-off, page curl,
//! yellowed paper). Dividing by a smooth estimate of the paper brightness
//! turns the paper white everywhere while keeping ink as dark as it was
//! relative to its surroundings.

use image::GrayImage;
use rayon::prelude::*;

use crate::IlluminationParams;

/// Flattens uneven lighting so that the paper becomes white (255).
///
/// Each pixel is divided by the background estimate of
/// [`estimate_background`] and rescaled so the background maps to 255.
/// Empty images are returned unchanged; a `window` below 3 is treated as 3.
pub fn normalize_illumination(img: &GrayImage, p: &IlluminationParams) -> GrayImage {
    if img.width() == 0 || img.height() == 0 {
        return img.clone();
    }
    let background = estimate_background(img, p.window);
    let mut out = img.clone();
    out.par_iter_mut()
        .zip(background.par_iter())
        .for_each(|(px, &bg)| {
            // A floor of 1 keeps black backgrounds from dividing by zero.
            let scaled = 255.0 * f32::from(*px) / f32::from(bg.max(1));
            *px = scaled.round().min(255.0) as u8;
        });
    out
}

/// Estimates the paper brightness at every pixel, ignoring dark features
/// smaller than about `window` pixels.
///
/// The image is reduced to a grid of cells of `window / 8` pixels holding the
/// cell median (robust to noise and to ink covering part of a cell). A
/// grayscale closing (max then min) over roughly `window` pixels on that grid
/// fills cells that are mostly ink with their paper neighbours; unlike a
/// plain max filter it reproduces a shading ramp without bias, borders
/// included. A box blur then smooths the grid, which is upsampled
/// bilinearly.
pub fn estimate_background(img: &GrayImage, window: u32) -> GrayImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return img.clone();
    }
    let window = window.max(3);
    let cell = (window / 8).max(1);
    let gw = w.div_ceil(cell) as usize;
    let gh = h.div_ceil(cell) as usize;
    let radius = window.div_ceil(2 * cell).max(1) as usize;

    let grid = cell_medians(img, cell, gw, gh);
    let (grid, ew, eh) = separable(&grid, gw, gh, |line| dilate_extended(line, radius));
    let (grid, _, _) = separable(&grid, ew, eh, |line| erode_shrink(line, radius));
    let (grid, _, _) = separable(&grid, gw, gh, |line| mean_symmetric(line, radius));

    let mut out = GrayImage::new(w, h);
    let cell_f = cell as f32;
    out.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            let (y0, y1, fy) = grid_coord(y, cell_f, gh);
            for (x, px) in row.iter_mut().enumerate() {
                let (x0, x1, fx) = grid_coord(x, cell_f, gw);
                let top = grid[y0 * gw + x0] * (1.0 - fx) + grid[y0 * gw + x1] * fx;
                let bottom = grid[y1 * gw + x0] * (1.0 - fx) + grid[y1 * gw + x1] * fx;
                *px = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        });
    out
}

/// Median of each `cell` x `cell` block (partial blocks at the edges).
fn cell_medians(img: &GrayImage, cell: u32, gw: usize, gh: usize) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let mut grid = vec![0.0; gw * gh];
    let mut buf = Vec::with_capacity((cell * cell) as usize);
    for gy in 0..gh {
        for gx in 0..gw {
            buf.clear();
            let x0 = gx as u32 * cell;
            let y0 = gy as u32 * cell;
            for y in y0..(y0 + cell).min(h) {
                for x in x0..(x0 + cell).min(w) {
                    buf.push(img.get_pixel(x, y)[0]);
                }
            }
            let mid = buf.len() / 2;
            // Every cell has at least one pixel because gw, gh are ceilings.
            let (_, median, _) = buf.select_nth_unstable(mid);
            grid[gy * gw + gx] = f32::from(*median);
        }
    }
    grid
}

/// Maps an output pixel index to the two grid cells around it and the
/// interpolation weight of the second, with cell values at cell centres.
fn grid_coord(i: usize, cell: f32, n: usize) -> (usize, usize, f32) {
    let g = ((i as f32 + 0.5) / cell - 0.5).max(0.0);
    let i0 = (g.floor() as usize).min(n - 1);
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, (g - i0 as f32).clamp(0.0, 1.0))
}

/// Applies a 1-D operation to every row, then to every column of the
/// result; returns the new grid and its width and height.
fn separable(
    grid: &[f32],
    w: usize,
    h: usize,
    op: impl Fn(&[f32]) -> Vec<f32>,
) -> (Vec<f32>, usize, usize) {
    let rows: Vec<Vec<f32>> = grid.chunks_exact(w).map(&op).collect();
    let new_w = rows.first().map_or(0, Vec::len);
    let mut out = vec![0.0; new_w * h];
    let mut column = vec![0.0; h];
    let mut new_h = 0;
    for x in 0..new_w {
        for (y, row) in rows.iter().enumerate() {
            column[y] = row[x];
        }
        let filtered = op(&column);
        new_h = filtered.len();
        out.resize(new_w * new_h, 0.0);
        for (y, v) in filtered.into_iter().enumerate() {
            out[y * new_w + x] = v;
        }
    }
    (out, new_w, new_h)
}

/// Dilation (max) over windows of `2r + 1` whose centres range from `r`
/// before the line to `r` after it, truncated to the line: entry `i` is the
/// window centred at `i - r`. Letting windows hang over the ends is what
/// makes the following erosion reproduce a ramp up to the borders; with
/// windows clipped to the line, a closing brightens a ramp near its low end.
fn dilate_extended(line: &[f32], r: usize) -> Vec<f32> {
    let n = line.len();
    (0..n + 2 * r)
        .map(|i| {
            let lo = i.saturating_sub(2 * r);
            let hi = i.min(n - 1);
            line[lo..=hi].iter().copied().fold(f32::MIN, f32::max)
        })
        .collect()
}

/// Erosion (min) of an extended line from [`dilate_extended`] over every
/// window centre within `r` of each original position.
fn erode_shrink(line: &[f32], r: usize) -> Vec<f32> {
    (0..line.len() - 2 * r)
        .map(|x| line[x..=x + 2 * r].iter().copied().fold(f32::MAX, f32::min))
        .collect()
}

/// Box mean with a window that shrinks symmetrically near the ends, so a
/// linear ramp passes through unchanged.
fn mean_symmetric(line: &[f32], r: usize) -> Vec<f32> {
    let n = line.len();
    (0..n)
        .map(|x| {
            let k = r.min(x).min(n - 1 - x);
            line[x - k..=x + k].iter().sum::<f32>() / (2 * k + 1) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{degenerate_images, is_ink, stats, text_page};
    use image::Luma;

    /// Multiplies the page by a left-to-right lighting ramp from 1.0 to 0.45.
    fn shaded(clean: &GrayImage) -> GrayImage {
        let w = clean.width() as f32;
        GrayImage::from_fn(clean.width(), clean.height(), |x, y| {
            let light = 1.0 - 0.55 * x as f32 / w;
            Luma([(f32::from(clean.get_pixel(x, y)[0]) * light).round() as u8])
        })
    }

    #[test]
    fn flattens_a_shading_gradient_and_keeps_text_dark() {
        let clean = text_page(400, 500);
        let dark = shaded(&clean);
        let paper = |x, y| !is_ink(&clean, x, y);
        let (_, std_before) = stats(&dark, paper);

        let flat = normalize_illumination(&dark, &IlluminationParams { window: 64 });
        let (paper_mean, std_after) = stats(&flat, paper);
        let (ink_mean, _) = stats(&flat, |x, y| is_ink(&clean, x, y));

        assert!(std_before > 25.0, "test gradient too weak: {std_before}");
        assert!(std_after < std_before / 8.0, "{std_before} -> {std_after}");
        assert!(paper_mean > 245.0, "paper not white: {paper_mean}");
        assert!(ink_mean < 60.0, "text washed out: {ink_mean}");
    }

    #[test]
    fn background_ignores_text_and_follows_gradient() {
        let clean = text_page(300, 300);
        let bg = estimate_background(&shaded(&clean), 64);
        // Under ink the estimate must still be the (shaded) paper level.
        for (x, y, p) in bg.enumerate_pixels() {
            let expected = 255.0 * (1.0 - 0.55 * x as f32 / 300.0);
            assert!(
                (f32::from(p[0]) - expected).abs() < 12.0,
                "({x},{y}): {} vs {expected}",
                p[0]
            );
        }
    }

    #[test]
    fn uniform_image_is_white_and_odd_sizes_survive() {
        let grey = GrayImage::from_pixel(50, 30, Luma([180]));
        let out = normalize_illumination(&grey, &IlluminationParams { window: 16 });
        assert!(out.pixels().all(|p| p[0] == 255));
        for img in degenerate_images() {
            for window in [0, 3, 64] {
                let out = normalize_illumination(&img, &IlluminationParams { window });
                assert_eq!(out.dimensions(), img.dimensions());
            }
        }
    }
}
