//! A float RGB image, the common currency of metrics, data and inference.

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::{Error, Result};

/// An RGB image of `f32` samples in `[0, 1]`, stored row-major HWC
/// (`data[(y * width + x) * 3 + c]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RgbF32 {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl RgbF32 {
    /// Wraps HWC samples; fails when `data.len() != width * height * 3`.
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != width * height * 3 {
            return Err(Error::Config(format!(
                "rgb buffer holds {} samples, {width}x{height}x3 needs {}",
                data.len(),
                width * height * 3
            )));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A black image.
    pub fn zeros(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width * height * 3],
        }
    }

    /// Converts 8-bit samples to `[0, 1]` by dividing by 255.
    pub fn from_rgb8(img: &RgbImage) -> Self {
        let data = img.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect();
        Self {
            width: img.width() as usize,
            height: img.height() as usize,
            data,
        }
    }

    /// Quantises to 8 bits: clamp to `[0, 1]`, scale by 255, round half away from zero.
    pub fn to_rgb8(&self) -> RgbImage {
        let raw = self
            .data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        // The buffer length is width*height*3 by construction.
        RgbImage::from_raw(self.width as u32, self.height as u32, raw)
            .expect("buffer length matches dimensions by construction")
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The HWC samples.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Sample `c` of pixel `(x, y)`.
    pub fn get(&self, x: usize, y: usize, c: usize) -> f32 {
        self.data[(y * self.width + x) * 3 + c]
    }

    /// Clamps every sample into `[0, 1]`.
    pub fn clamp01(mut self) -> Self {
        for v in &mut self.data {
            *v = v.clamp(0.0, 1.0);
        }
        self
    }

    /// A copy of the `w x h` window whose top-left corner is `(x, y)`; the
    /// window must lie inside the image.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Self {
        let mut data = Vec::with_capacity(w * h * 3);
        for row in y..y + h {
            let start = (row * self.width + x) * 3;
            data.extend_from_slice(&self.data[start..start + w * 3]);
        }
        Self {
            width: w,
            height: h,
            data,
        }
    }

    /// A `[1, 3, H, W]` tensor on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let plane = self.width * self.height;
        let mut chw = vec![0f32; plane * 3];
        for (i, px) in self.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * plane + i] = px[c];
            }
        }
        Ok(Tensor::from_vec(
            chw,
            (1, 3, self.height, self.width),
            device,
        )?)
    }

    /// Reads a `[1, 3, H, W]` or `[3, H, W]` tensor back (no clamping).
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let t = match t.rank() {
            4 => t.squeeze(0)?,
            _ => t.clone(),
        };
        let (c, h, w) = t.dims3()?;
        if c != 3 {
            return Err(Error::Config(format!("expected 3 channels, got {c}")));
        }
        let chw = t
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let plane = w * h;
        let mut data = vec![0f32; plane * 3];
        for i in 0..plane {
            for c in 0..3 {
                data[i * 3 + c] = chw[c * plane + i];
            }
        }
        Ok(Self {
            width: w,
            height: h,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_round_trip_keeps_layout() {
        let data: Vec<f32> = (0..4 * 2 * 3).map(|v| v as f32 / 32.0).collect();
        let img = RgbF32::new(4, 2, data).unwrap();
        let t = img.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 3, 2, 4]);
        // Channel 1 of pixel (x=3, y=1) is HWC index (1*4+3)*3+1 = 22.
        let v = t
            .get(0)
            .unwrap()
            .get(1)
            .unwrap()
            .get(1)
            .unwrap()
            .get(3)
            .unwrap();
        assert_eq!(v.to_scalar::<f32>().unwrap(), 22.0 / 32.0);
        assert_eq!(RgbF32::from_tensor(&t).unwrap(), img);
    }

    #[test]
    fn rgb8_round_trip_is_exact() {
        let raw: Vec<u8> = (0..5 * 3 * 3).map(|v| (v * 7 % 256) as u8).collect();
        let img = RgbImage::from_raw(5, 3, raw).unwrap();
        assert_eq!(RgbF32::from_rgb8(&img).to_rgb8(), img);
    }

    #[test]
    fn crop_takes_the_window() {
        let data: Vec<f32> = (0..4 * 4 * 3).map(|v| v as f32).collect();
        let img = RgbF32::new(4, 4, data).unwrap();
        let c = img.crop(1, 2, 2, 1);
        assert_eq!(c.data(), &[27.0, 28.0, 29.0, 30.0, 31.0, 32.0]);
    }
}
