//! PNG encoding and size-checked decoding of uploaded images.

use std::io::Cursor;

use image::{ImageReader, Limits, RgbImage};

use crate::{MAX_SIZE, SynthError};

/// Encodes an RGB image as PNG bytes.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, SynthError> {
    let mut out = Cursor::new(Vec::with_capacity(img.as_raw().len() / 4));
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| SynthError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

/// Decodes PNG or JPEG bytes into RGB, refusing images larger than
/// [`MAX_SIZE`] on either side before any pixel data is decoded.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, SynthError> {
    let invalid = |e: image::ImageError| SynthError::InvalidImage(e.to_string());
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| SynthError::InvalidImage(e.to_string()))?;
    if reader.format().is_none() {
        return Err(SynthError::InvalidImage(
            "unrecognised image format (expected png or jpeg)".into(),
        ));
    }
    // Reading only the header is cheap and lets us reject huge images with a
    // precise size error instead of a generic limits error.
    let (width, height) = reader.into_dimensions().map_err(invalid)?;
    if width == 0 || height == 0 || width > MAX_SIZE || height > MAX_SIZE {
        return Err(SynthError::InvalidSize { width, height });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| SynthError::InvalidImage(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIZE);
    limits.max_image_height = Some(MAX_SIZE);
    reader.limits(limits);
    Ok(reader.decode().map_err(invalid)?.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_is_lossless() {
        let img = RgbImage::from_fn(17, 9, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let bytes = encode_png(&img).expect("encoding a small image");
        let back = decode_image(&bytes).expect("decoding our own png");
        assert_eq!(back, img);
    }

    #[test]
    fn rejects_non_images() {
        let err = decode_image(b"definitely not an image").unwrap_err();
        assert!(matches!(err, SynthError::InvalidImage(_)), "{err}");
        let err = decode_image(&[]).unwrap_err();
        assert!(matches!(err, SynthError::InvalidImage(_)), "{err}");
    }

    #[test]
    fn rejects_truncated_png() {
        let img = RgbImage::from_pixel(32, 32, image::Rgb([1, 2, 3]));
        let bytes = encode_png(&img).expect("encoding a small image");
        let err = decode_image(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(matches!(err, SynthError::InvalidImage(_)), "{err}");
    }

    #[test]
    fn rejects_oversized_images() {
        let img = RgbImage::new(MAX_SIZE + 1, 1);
        let bytes = encode_png(&img).expect("encoding a thin image");
        let err = decode_image(&bytes).unwrap_err();
        assert!(
            matches!(err, SynthError::InvalidSize { width, height: 1 } if width == MAX_SIZE + 1),
            "{err}"
        );
    }
}
