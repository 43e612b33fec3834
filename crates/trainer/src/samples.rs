//! Before/after samples from the validation split, restored by the registered
//! weights at the end of a run, for the report's image strip.

use std::io::Cursor;

use candle_core::Device;
use image::{DynamicImage, RgbImage};
use restoreflow_training::{PairSource, Restorer, RgbF32, TileConfig, restore_tiled, split_pages};

/// Validation pages shown in a report.
pub const SAMPLES: usize = 3;
/// Side of the centre crop restored per sample, so a report never waits on a
/// full page per sample.
pub const CROP: u32 = 256;

/// One validation sample as PNG bytes.
pub struct SampleImages {
    /// Page id.
    pub name: String,
    /// The degraded input.
    pub degraded: Vec<u8>,
    /// The model's output.
    pub restored: Vec<u8>,
    /// The clean target.
    pub clean: Vec<u8>,
}

/// Restores the centre crop of the first [`SAMPLES`] validation pages (the
/// split the engine used: same fraction and seed).
pub fn validation_samples(
    model: &dyn Restorer,
    source: &dyn PairSource,
    val_fraction: f64,
    seed: u64,
    device: &Device,
) -> Result<Vec<SampleImages>, String> {
    let split = split_pages(source, val_fraction, seed);
    let mut out = Vec::new();
    for &i in split.val.iter().take(SAMPLES) {
        let (clean, degraded) = source.load(i).map_err(|e| e.to_string())?;
        if clean.dimensions() != degraded.dimensions() {
            continue;
        }
        let clean = centre_crop(&clean);
        let degraded = centre_crop(&degraded);
        let input = RgbF32::from_rgb8(&degraded);
        let restored = restore_tiled(model, &input, &TileConfig::for_device(device), device)
            .map_err(|e| e.to_string())?
            .clamp01()
            .to_rgb8();
        out.push(SampleImages {
            name: source.page_id(i),
            degraded: png(degraded)?,
            restored: png(restored)?,
            clean: png(clean)?,
        });
    }
    Ok(out)
}

fn centre_crop(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cw, ch) = (w.min(CROP), h.min(CROP));
    image::imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
}

fn png(img: RgbImage) -> Result<Vec<u8>, String> {
    let mut buf = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode a sample: {e}"))?;
    Ok(buf.into_inner())
}
