//! Training losses: L1, Charbonnier and an optional differentiable SSIM term,
//! with an optional extra weight on the pixels where the clean page has ink.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::metrics::{GAUSS_RADIUS, gaussian_kernel_1d};
use crate::{Error, Result};

/// The per-pixel part of the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PixelLoss {
    /// Mean absolute error (the official Restormer loss).
    L1,
    /// Mean of `sqrt((pred - target)^2 + eps^2)`, a smooth L1.
    Charbonnier {
        /// Smoothing constant; 1e-3 is customary.
        eps: f64,
    },
}

/// The training objective: `pixel + ssim_weight * (1 - SSIM(luma))`, where
/// the per-pixel term weighs each pixel by `1 + ink_weight * ink`, `ink`
/// being `1 - luma` of the clean target (1 on black ink, 0 on white paper).
///
/// Text covers a few percent of a page, so an unweighted loss barely
/// notices a model that turns faint words into paper: the page still scores
/// well and reads worse. The ink weight makes each ink pixel count
/// `1 + ink_weight` times a paper pixel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// The per-pixel loss.
    pub pixel: PixelLoss,
    /// Weight of the SSIM term; 0 turns it off. Needs patches of at least 11 px.
    pub ssim_weight: f64,
    /// Extra weight of ink pixels in the per-pixel term; 0 weighs every
    /// pixel the same.
    #[serde(default)]
    pub ink_weight: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            pixel: PixelLoss::L1,
            ssim_weight: 0.0,
            ink_weight: 0.0,
        }
    }
}

impl LossConfig {
    /// Charbonnier with `eps = 1e-3` and no SSIM term.
    pub fn charbonnier() -> Self {
        Self {
            pixel: PixelLoss::Charbonnier { eps: 1e-3 },
            ssim_weight: 0.0,
            ink_weight: 0.0,
        }
    }

    /// The per-pixel term alone, a scalar: the mean of `|d|` (L1) or of
    /// `sqrt(d^2 + eps^2)` (Charbonnier), `d = pred - target`, each pixel
    /// ink-weighted when `ink_weight` is not 0 (which needs `[B, 3, H, W]`
    /// inputs; any shape otherwise).
    pub fn pixel_term(&self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        let d = pred.sub(target)?;
        let per_pixel = match self.pixel {
            PixelLoss::L1 => d.abs()?,
            PixelLoss::Charbonnier { eps } => d.sqr()?.affine(1.0, eps * eps)?.sqrt()?,
        };
        if self.ink_weight == 0.0 {
            return Ok(per_pixel.mean_all()?);
        }
        // 1 + w (1 - luma) = (1 + w) - w luma, clamped so that targets
        // outside [0, 1] never weigh a pixel below zero.
        let weight = to_luma(target)?
            .affine(-self.ink_weight, 1.0 + self.ink_weight)?
            .clamp(1.0, 1.0 + self.ink_weight)?;
        Ok(per_pixel.broadcast_mul(&weight)?.mean_all()?)
    }

    /// The scalar loss of `pred` against `target`, both `[B, 3, H, W]`.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        let base = self.pixel_term(pred, target)?;
        if self.ssim_weight == 0.0 {
            return Ok(base);
        }
        let term = ssim_loss(pred, target)?.affine(self.ssim_weight, 0.0)?;
        Ok((base + term)?)
    }
}

/// `1 - ssim_tensor(pred, target)`.
pub fn ssim_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    Ok(ssim_tensor(pred, target)?.affine(-1.0, 1.0)?)
}

/// Differentiable mean SSIM of the BT.601 luma of two `[B, 3, H, W]` batches,
/// with the same window and constants as [`crate::metrics::ssim`] (valid
/// region only, averaged over the batch). H and W must be at least 11.
pub fn ssim_tensor(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let (_, c, h, w) = pred.dims4()?;
    let win = 2 * GAUSS_RADIUS + 1;
    if c != 3 || h < win || w < win {
        return Err(Error::Config(format!(
            "ssim loss needs [B, 3, >={win}, >={win}] inputs, got {:?}",
            pred.dims()
        )));
    }
    let dev = pred.device();
    let x = to_luma(pred)?; // [B, 1, H, W]
    let y = to_luma(target)?;
    let k = window(dev, pred.dtype())?; // [1, 1, 11, 11]
    let blur = |t: &Tensor| -> Result<Tensor> { Ok(t.conv2d(&k, 0, 1, 1, 1)?) };
    let mx = blur(&x)?;
    let my = blur(&y)?;
    let mx2 = mx.sqr()?;
    let my2 = my.sqr()?;
    let mxy = (&mx * &my)?;
    let vx = (blur(&x.sqr()?)? - &mx2)?;
    let vy = (blur(&y.sqr()?)? - &my2)?;
    let vxy = (blur(&(&x * &y)?)? - &mxy)?;
    let (c1, c2) = (1e-4, 9e-4);
    let num = (mxy.affine(2.0, c1)? * vxy.affine(2.0, c2)?)?;
    let den = ((mx2 + my2)?.affine(1.0, c1)? * (vx + vy)?.affine(1.0, c2)?)?;
    Ok((num / den)?.mean_all()?)
}

/// `[B, 3, H, W] -> [B, 1, H, W]` with Y = 0.299 R + 0.587 G + 0.114 B.
fn to_luma(x: &Tensor) -> Result<Tensor> {
    let w = Tensor::new(&[0.299f32, 0.587, 0.114], x.device())?
        .to_dtype(x.dtype())?
        .reshape((1, 3, 1, 1))?;
    Ok(x.broadcast_mul(&w)?.sum_keepdim(1)?)
}

/// The 2-D Gaussian window as the outer product of the 1-D taps.
fn window(dev: &Device, dtype: DType) -> Result<Tensor> {
    let k = gaussian_kernel_1d();
    let n = k.len();
    let taps: Vec<f32> = (0..n * n).map(|i| (k[i / n] * k[i % n]) as f32).collect();
    Ok(Tensor::from_vec(taps, (1, 1, n, n), dev)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RgbF32;
    use candle_core::Var;

    fn pair() -> (Tensor, Tensor) {
        let dev = Device::Cpu;
        let n = 2 * 3 * 14 * 12;
        let a: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 53) % 89) as f32 / 88.0).collect();
        (
            Tensor::from_vec(a, (2, 3, 14, 12), &dev).unwrap(),
            Tensor::from_vec(b, (2, 3, 14, 12), &dev).unwrap(),
        )
    }

    #[test]
    fn l1_and_charbonnier_match_hand_values() {
        let dev = Device::Cpu;
        let p = Tensor::new(&[0.0f32, 0.5, 1.0, 0.25], &dev).unwrap();
        let t = Tensor::new(&[0.0f32, 0.0, 0.5, 1.0], &dev).unwrap();
        let l1 = LossConfig::default()
            .pixel_term(&p, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((l1 - (0.0 + 0.5 + 0.5 + 0.75) / 4.0).abs() < 1e-7);
        let eps = 1e-3f64;
        let want: f64 = [0.0f64, 0.5, 0.5, 0.75]
            .iter()
            .map(|d| (d * d + eps * eps).sqrt())
            .sum::<f64>()
            / 4.0;
        let ch = LossConfig::charbonnier()
            .pixel_term(&p, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((f64::from(ch) - want).abs() < 1e-6, "{ch} vs {want}");
    }

    #[test]
    fn ssim_tensor_matches_the_metric() {
        let (a, b) = pair();
        let got = f64::from(ssim_tensor(&a, &b).unwrap().to_scalar::<f32>().unwrap());
        let mut want = 0.0;
        for i in 0..2 {
            let ia = RgbF32::from_tensor(&a.get(i).unwrap()).unwrap();
            let ib = RgbF32::from_tensor(&b.get(i).unwrap()).unwrap();
            want += crate::metrics::ssim(&ia, &ib) / 2.0;
        }
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        let same = ssim_tensor(&a, &a).unwrap().to_scalar::<f32>().unwrap();
        assert!((same - 1.0).abs() < 1e-4);
    }

    #[test]
    fn every_loss_has_a_gradient() {
        let (a, b) = pair();
        let configs = [
            LossConfig::default(),
            LossConfig::charbonnier(),
            LossConfig {
                pixel: PixelLoss::L1,
                ssim_weight: 0.5,
                ink_weight: 0.0,
            },
            LossConfig {
                pixel: PixelLoss::Charbonnier { eps: 1e-3 },
                ssim_weight: 0.5,
                ink_weight: 4.0,
            },
        ];
        for cfg in configs {
            let v = Var::from_tensor(&a).unwrap();
            let loss = cfg.compute(v.as_tensor(), &b).unwrap();
            let grads = loss.backward().unwrap();
            let g = grads.get(v.as_tensor()).expect("gradient missing");
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0 && norm.is_finite(), "{cfg:?}: grad norm {norm}");
        }
    }

    #[test]
    fn ink_weight_counts_ink_pixels_more() {
        let dev = Device::Cpu;
        // Two pixels of one image: black ink (luma 0) and white paper
        // (luma 1), both off by the same amounts in every channel.
        let target = Tensor::new(&[0.0f32, 1.0, 0.0, 1.0, 0.0, 1.0], &dev)
            .unwrap()
            .reshape((1, 3, 1, 2))
            .unwrap();
        let pred = Tensor::new(&[0.2f32, 0.9, 0.2, 0.9, 0.2, 0.9], &dev)
            .unwrap()
            .reshape((1, 3, 1, 2))
            .unwrap();
        let value = |ink_weight: f64| {
            let cfg = LossConfig {
                ink_weight,
                ..LossConfig::default()
            };
            f64::from(
                cfg.compute(&pred, &target)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        // No weight: the plain L1, (0.2 + 0.1) / 2 over every channel.
        assert!((value(0.0) - 0.15).abs() < 1e-6, "{}", value(0.0));
        // Weight 4: the ink pixel counts 5 times, the paper pixel once.
        assert!(
            (value(4.0) - (5.0 * 0.2 + 0.1) / 2.0).abs() < 1e-6,
            "{}",
            value(4.0)
        );
        // Grey ink (luma 0.5) is weighted halfway: 1 + 4 * 0.5 = 3.
        let grey = Tensor::full(0.5f32, (1, 3, 1, 1), &dev).unwrap();
        let off = Tensor::full(0.6f32, (1, 3, 1, 1), &dev).unwrap();
        let cfg = LossConfig {
            ink_weight: 4.0,
            ..LossConfig::default()
        };
        let got = cfg
            .pixel_term(&off, &grey)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((f64::from(got) - 3.0 * 0.1).abs() < 1e-6, "{got}");
    }

    #[test]
    fn ssim_loss_rejects_small_patches() {
        let t = Tensor::zeros((1, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
        assert!(ssim_loss(&t, &t).is_err());
    }
}
