//! Per-epoch validation on fixed crops or whole pages.

use candle_core::Device;

use super::ValMode;
use crate::data::PageStore;
use crate::infer::{SIZE_MULTIPLE, restore_tiled, restore_whole};
use crate::loss::ssim_loss;
use crate::{LossConfig, MetricSet, Restorer, Result, RgbF32};

/// Validation figures averaged over pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ValResult {
    pub loss: f64,
    pub restored: MetricSet,
    pub baseline: MetricSet,
    pub pages: usize,
}

/// The centred window of side `size` (clipped, rounded down to a multiple of 8).
fn center_window(w: usize, h: usize, size: usize) -> (usize, usize, usize, usize) {
    let fit = |n: usize| {
        let s = size.min(n);
        if s >= SIZE_MULTIPLE {
            s - s % SIZE_MULTIPLE
        } else {
            s
        }
    };
    let (cw, ch) = (fit(w), fit(h));
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// The loss on one image pair; the SSIM term is left out for images too
/// small for its window.
fn image_loss(loss: &LossConfig, out: &RgbF32, clean: &RgbF32, device: &Device) -> Result<f64> {
    let p = out.to_tensor(device)?;
    let t = clean.to_tensor(device)?;
    let mut v = loss.pixel_term(&p, &t)?.to_scalar::<f32>()? as f64;
    if loss.ssim_weight != 0.0 && out.width() >= 11 && out.height() >= 11 {
        v += loss.ssim_weight * ssim_loss(&p, &t)?.to_scalar::<f32>()? as f64;
    }
    Ok(v)
}

/// Restores every usable validation page and averages loss and metrics.
/// Returns `None` when no page could be evaluated.
pub(crate) fn validate(
    model: &dyn Restorer,
    store: &PageStore<'_>,
    pages: &[usize],
    mode: &ValMode,
    loss: &LossConfig,
    device: &Device,
) -> Result<Option<ValResult>> {
    let mut losses = Vec::new();
    let mut restored = Vec::new();
    let mut baseline = Vec::new();
    for &i in pages {
        let Some(pair) = store.get(i) else { continue };
        let mut clean = RgbF32::from_rgb8(&pair.clean);
        let mut degraded = RgbF32::from_rgb8(&pair.degraded);
        let out = match mode {
            ValMode::CenterCrop { size } => {
                let (x, y, w, h) = center_window(clean.width(), clean.height(), *size);
                clean = clean.crop(x, y, w, h);
                degraded = degraded.crop(x, y, w, h);
                restore_whole(model, &degraded, device)?
            }
            ValMode::Tiled(tiles) => restore_tiled(model, &degraded, tiles, device)?,
        };
        let out = out.clamp01();
        losses.push(image_loss(loss, &out, &clean, device)?);
        restored.push(MetricSet::compute(&clean, &out));
        baseline.push(MetricSet::compute(&clean, &degraded));
        // Scored for this epoch; the store keeps it only if every page of
        // the run fits, since otherwise training evicts it before the next
        // validation anyway.
        store.release(i);
    }
    if losses.is_empty() {
        return Ok(None);
    }
    Ok(Some(ValResult {
        loss: losses.iter().sum::<f64>() / losses.len() as f64,
        restored: MetricSet::mean(&restored),
        baseline: MetricSet::mean(&baseline),
        pages: losses.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_window_is_centred_and_a_multiple_of_eight() {
        assert_eq!(center_window(100, 50, 32), (34, 9, 32, 32));
        assert_eq!(center_window(30, 20, 64), (3, 2, 24, 16));
        assert_eq!(center_window(5, 6, 64), (0, 0, 5, 6));
    }
}
