//! Whole-image and tiled inference with reflect padding and blended overlaps.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::{Error, Restorer, Result, RgbF32};

/// The spatial multiple Restormer needs (three 2x down-samplings).
pub const SIZE_MULTIPLE: usize = 8;

/// How to cut a page into tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileConfig {
    /// Tile side in pixels (clipped to the image; a multiple of 8 avoids padding).
    pub tile: usize,
    /// Overlap between neighbouring tiles in pixels; must be below `tile`.
    pub overlap: usize,
    /// Tiles restored per forward pass (all tiles of a page have one size,
    /// so they stack into one batch); at least 1. Batches keep a GPU busy;
    /// on the CPU they only add memory.
    #[serde(default = "one")]
    pub batch: usize,
}

fn one() -> usize {
    1
}

/// Tiles per forward pass on a CUDA device.
pub const CUDA_TILE_BATCH: usize = 8;

impl Default for TileConfig {
    fn default() -> Self {
        Self {
            tile: 256,
            overlap: 32,
            batch: 1,
        }
    }
}

impl TileConfig {
    /// The default tiles, batched for `device`: [`CUDA_TILE_BATCH`] tiles per
    /// forward pass on CUDA, one on the CPU.
    pub fn for_device(device: &Device) -> Self {
        Self {
            batch: if device.is_cuda() { CUDA_TILE_BATCH } else { 1 },
            ..Self::default()
        }
    }

    /// Checks `0 < tile`, `overlap < tile` and `batch >= 1`.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Config("tile batch must be at least 1".into()));
        }
        if self.tile == 0 || self.overlap >= self.tile {
            return Err(Error::Config(format!(
                "tile {} with overlap {} is invalid (need overlap < tile)",
                self.tile, self.overlap
            )));
        }
        Ok(())
    }
}

/// numpy-style `reflect` (edge not repeated) index for any `i >= 0`.
fn reflect_index(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let r = i % period;
    if r < n { r } else { period - r }
}

/// Pads on the right and bottom, by reflection, up to multiples of `multiple`.
pub fn pad_reflect(img: &RgbF32, multiple: usize) -> RgbF32 {
    let (w, h) = (img.width(), img.height());
    let pw = w.div_ceil(multiple) * multiple;
    let ph = h.div_ceil(multiple) * multiple;
    if (pw, ph) == (w, h) {
        return img.clone();
    }
    let mut data = Vec::with_capacity(pw * ph * 3);
    for y in 0..ph {
        let sy = reflect_index(y, h);
        for x in 0..pw {
            let sx = reflect_index(x, w);
            let s = (sy * w + sx) * 3;
            data.extend_from_slice(&img.data()[s..s + 3]);
        }
    }
    // Length is pw * ph * 3 by construction.
    RgbF32::new(pw, ph, data).expect("padded buffer has the padded size")
}

/// Runs the model on the whole image at once: reflect-pad to a multiple of 8,
/// forward, crop back (as the official Restormer test scripts do). No clamping.
pub fn restore_whole(model: &dyn Restorer, img: &RgbF32, device: &Device) -> Result<RgbF32> {
    let padded = pad_reflect(img, SIZE_MULTIPLE);
    let out = model.forward(&padded.to_tensor(device)?)?;
    let out = RgbF32::from_tensor(&out)?;
    Ok(out.crop(0, 0, img.width(), img.height()))
}

/// Restores same-sized images in one forward pass: each is reflect-padded
/// to a multiple of 8, they are stacked on the batch axis, and each output is
/// cropped back. One image is [`restore_whole`].
pub fn restore_batch(
    model: &dyn Restorer,
    imgs: &[RgbF32],
    device: &Device,
) -> Result<Vec<RgbF32>> {
    let Some(first) = imgs.first() else {
        return Ok(Vec::new());
    };
    let (w, h) = (first.width(), first.height());
    if imgs.iter().any(|i| (i.width(), i.height()) != (w, h)) {
        return Err(Error::Config("a batch of tiles must have one size".into()));
    }
    let inputs = imgs
        .iter()
        .map(|i| pad_reflect(i, SIZE_MULTIPLE).to_tensor(device))
        .collect::<Result<Vec<_>>>()?;
    let batch = candle_core::Tensor::cat(&inputs, 0)?;
    let out = model.forward(&batch)?;
    (0..imgs.len())
        .map(|i| Ok(RgbF32::from_tensor(&out.narrow(0, i, 1)?)?.crop(0, 0, w, h)))
        .collect()
}

/// Tile origins along an axis of length `n`: every `tile - overlap` pixels,
/// with the last tile flush with the far edge.
fn tile_starts(n: usize, tile: usize, overlap: usize) -> Vec<usize> {
    let t = tile.min(n);
    let stride = (t - overlap.min(t - 1)).max(1);
    let mut starts = Vec::new();
    let mut s = 0;
    while s + t < n {
        starts.push(s);
        s += stride;
    }
    starts.push(n - t);
    starts
}

/// Blend weight at local offset `i` of a tile of length `t` along one axis.
/// Edges that touch the image border get full weight; interior edges ramp
/// linearly from 0 over the overlap, after a dead margin of `overlap / 4`
/// pixels whose values (seen with truncated context) hardly count.
fn axis_weight(i: usize, t: usize, ramp_left: bool, ramp_right: bool, overlap: usize) -> f32 {
    if overlap == 0 {
        return 1.0;
    }
    let margin = overlap / 4;
    let span = (overlap - 2 * margin).max(1) as f32;
    let ramp = |d: usize| ((d as f32 + 0.5 - margin as f32) / span).clamp(0.0, 1.0);
    let mut w = 1.0f32;
    if ramp_left {
        w = w.min(ramp(i));
    }
    if ramp_right {
        w = w.min(ramp(t - 1 - i));
    }
    w.max(1e-6)
}

/// Restores an image of any size tile by tile, so memory for the model is
/// bounded by the tile size. Each tile is reflect-padded to a multiple of 8,
/// restored, cropped back and blended into the page with weights that ramp
/// across the overlaps ([`TileConfig`]). No clamping.
pub fn restore_tiled(
    model: &dyn Restorer,
    img: &RgbF32,
    cfg: &TileConfig,
    device: &Device,
) -> Result<RgbF32> {
    cfg.validate()?;
    let (w, h) = (img.width(), img.height());
    let (tw, th) = (cfg.tile.min(w), cfg.tile.min(h));
    let mut acc = vec![0f32; w * h * 3];
    let mut wsum = vec![0f32; w * h];
    let origins: Vec<(usize, usize)> = tile_starts(h, cfg.tile, cfg.overlap)
        .into_iter()
        .flat_map(|y0| {
            tile_starts(w, cfg.tile, cfg.overlap)
                .into_iter()
                .map(move |x0| (x0, y0))
        })
        .collect();
    for group in origins.chunks(cfg.batch) {
        let tiles: Vec<RgbF32> = group
            .iter()
            .map(|&(x0, y0)| img.crop(x0, y0, tw, th))
            .collect();
        let outs = restore_batch(model, &tiles, device)?;
        for (&(x0, y0), out) in group.iter().zip(outs) {
            for ty in 0..th {
                let wy = axis_weight(ty, th, y0 > 0, y0 + th < h, cfg.overlap);
                for tx in 0..tw {
                    let wx = axis_weight(tx, tw, x0 > 0, x0 + tw < w, cfg.overlap);
                    let wgt = wx * wy;
                    let p = (y0 + ty) * w + x0 + tx;
                    wsum[p] += wgt;
                    for c in 0..3 {
                        acc[p * 3 + c] += wgt * out.get(tx, ty, c);
                    }
                }
            }
        }
    }
    for (p, &ws) in wsum.iter().enumerate() {
        for c in 0..3 {
            acc[p * 3 + c] /= ws;
        }
    }
    RgbF32::new(w, h, acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConvResidual;

    fn pattern(w: usize, h: usize) -> RgbF32 {
        let data = (0..w * h * 3)
            .map(|i| (((i * 7919) % 1009) as f32 / 1009.0).sqrt())
            .collect();
        RgbF32::new(w, h, data).unwrap()
    }

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let img = RgbF32::new(3, 1, vec![0., 0., 0., 1., 1., 1., 2., 2., 2.]).unwrap();
        let p = pad_reflect(&img, 8);
        assert_eq!((p.width(), p.height()), (8, 8));
        let row: Vec<f32> = (0..8).map(|x| p.get(x, 0, 0)).collect();
        assert_eq!(row, vec![0., 1., 2., 1., 0., 1., 2., 1.]);
        assert_eq!(p.get(4, 7, 1), 0.0);
    }

    #[test]
    fn tile_starts_cover_the_axis() {
        assert_eq!(tile_starts(70, 32, 16), vec![0, 16, 32, 38]);
        assert_eq!(tile_starts(20, 32, 16), vec![0]);
        assert_eq!(tile_starts(32, 32, 8), vec![0]);
    }

    #[test]
    fn tiled_matches_whole_image_away_from_borders() {
        let (model, _vm) = ConvResidual::seeded(6, 3, &Device::Cpu).unwrap();
        let img = pattern(70, 53);
        let whole = restore_whole(&model, &img, &Device::Cpu).unwrap();
        let cfg = TileConfig {
            tile: 32,
            overlap: 16,
            batch: 1,
        };
        let tiled = restore_tiled(&model, &img, &cfg, &Device::Cpu).unwrap();
        // The model is not the identity, so agreement is meaningful.
        assert!(crate::metrics::psnr(&img, &whole) < 60.0);
        let border = 4;
        let mut worst = 0f32;
        for y in border..53 - border {
            for x in border..70 - border {
                for c in 0..3 {
                    worst = worst.max((whole.get(x, y, c) - tiled.get(x, y, c)).abs());
                }
            }
        }
        assert!(worst < 1e-3, "max interior difference {worst}");
    }

    #[test]
    fn batched_tiles_equal_one_tile_at_a_time() {
        let (model, _vm) = ConvResidual::seeded(6, 3, &Device::Cpu).unwrap();
        let img = pattern(70, 53);
        let single = TileConfig {
            tile: 32,
            overlap: 16,
            batch: 1,
        };
        let one = restore_tiled(&model, &img, &single, &Device::Cpu).unwrap();
        // 5 x 3 tiles: batches of 4 leave a short last batch.
        for batch in [2, 4, 64] {
            let cfg = TileConfig { batch, ..single };
            let many = restore_tiled(&model, &img, &cfg, &Device::Cpu).unwrap();
            let worst = one
                .data()
                .iter()
                .zip(many.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "batch {batch}: max difference {worst}");
        }
        assert!(TileConfig { batch: 0, ..single }.validate().is_err());
        assert_eq!(TileConfig::for_device(&Device::Cpu).batch, 1);
    }

    #[test]
    fn odd_sized_tiles_are_padded_and_cropped() {
        let (model, _vm) = ConvResidual::seeded(2, 4, &Device::Cpu).unwrap();
        let img = pattern(13, 9);
        let out = restore_tiled(
            &model,
            &img,
            &TileConfig {
                tile: 12,
                overlap: 4,
                batch: 3,
            },
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!((out.width(), out.height()), (13, 9));
        assert!(
            TileConfig {
                tile: 8,
                overlap: 8,
                batch: 1,
            }
            .validate()
            .is_err()
        );
    }
}
