//! Sensor noise: additive Gaussian, photon shot, multiplicative speckle and
//! impulse (salt and pepper).

use super::Scaled;
use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::util::{
    DEVIATE_STD, HashNoise, add_noise, add_pixel_noise, clamp_f, random_bytes, sat_i32, uniform,
};

/// Additive Gaussian noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct GaussianNoise {
    /// Standard deviation in 8-bit levels.
    pub sigma: f64,
    /// Same noise on all channels (grey sensor) instead of per channel.
    pub mono: bool,
}

impl GaussianNoise {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            sigma: uniform(rng, 2.0, 14.0),
            mono: rng.random_bool(0.6),
        }
    }
}

#[inline(always)]
pub(super) fn gaussian_noise(img: &mut RgbImage, p: &GaussianNoise, rng: &mut ChaCha8Rng) {
    let noise = HashNoise::new(rng);
    if p.mono {
        add_pixel_noise(img, p.sigma as f32, noise);
    } else {
        add_noise(img, p.sigma as f32, noise);
    }
}

/// Photon shot noise: variance proportional to brightness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct PoissonNoise {
    /// Photons collected by a white pixel; fewer means noisier.
    pub photons: f64,
}

impl PoissonNoise {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            photons: uniform(rng, 150.0, 1500.0),
        }
    }
}

#[inline(always)]
pub(super) fn poisson_noise(img: &mut RgbImage, p: &PoissonNoise, rng: &mut ChaCha8Rng) {
    // A level v collects v/255 * photons photons; the normal approximation of
    // Poisson then gives a std of sqrt(v * 255 / photons) levels, which a
    // deviate reaches times sqrt(v * c) with c = 255 / photons / DEVIATE_STD².
    let c = 255.0 / p.photons.max(1.0) as f32 / (DEVIATE_STD * DEVIATE_STD);
    let noise = HashNoise::new(rng);
    let mut i = 0u32;
    for v in img.iter_mut() {
        let level = f32::from(*v);
        *v = clamp_f(level + noise.deviate(i) as f32 * (level * c).sqrt());
        i = i.wrapping_add(1);
    }
}

/// Multiplicative speckle noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct SpeckleNoise {
    /// Relative standard deviation of the multiplier.
    pub sigma: f64,
}

impl SpeckleNoise {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            sigma: uniform(rng, 0.04, 0.2),
        }
    }
}

#[inline(always)]
pub(super) fn speckle_noise(img: &mut RgbImage, p: &SpeckleNoise, rng: &mut ChaCha8Rng) {
    // One relative change per pixel in 16.16 fixed point, shared by its
    // channels (the paper's reflectance varies, not its colour): a deviate
    // times k has standard deviation sigma x 65536.
    let k = sat_i32((p.sigma.clamp(0.0, 4.0) as f32 * 65536.0 / DEVIATE_STD).round());
    let noise = HashNoise::new(rng);
    let mut i = 0u32;
    for px in img.chunks_exact_mut(3) {
        // |m| <= 510 k, and k stays below 2^11 for any sigma up to 4.
        let m = noise.deviate(i) * k;
        for v in px {
            let x = i32::from(*v);
            *v = (x + ((x * m + 32768) >> 16)).clamp(0, 255) as u8;
        }
        i = i.wrapping_add(1);
    }
}

/// Impulse noise: a fraction of pixels become pure white or black.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct SaltPepper {
    /// Fraction of pixels hit.
    pub amount: f64,
    /// Fraction of hits that are white (salt) rather than black.
    pub salt_ratio: f64,
}

impl SaltPepper {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        Self {
            amount: uniform(rng, 0.002, 0.03),
            salt_ratio: uniform(rng, 0.2, 0.8),
        }
    }
}

#[inline(always)]
pub(super) fn salt_pepper(img: &mut RgbImage, p: &SaltPepper, rng: &mut ChaCha8Rng) {
    let hit = (p.amount.clamp(0.0, 1.0) * 4_294_967_295.0) as u64;
    let salt = (hit as f64 * p.salt_ratio.clamp(0.0, 1.0)) as u64;
    let w = img.width() as usize;
    let mut bytes = Vec::new();
    for row in img.chunks_exact_mut(w * 3) {
        random_bytes(rng, &mut bytes, w * 4);
        for (px, b) in row.chunks_exact_mut(3).zip(bytes.chunks_exact(4)) {
            let r = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            if r < hit {
                px.fill(if r < salt { 255 } else { 0 });
            }
        }
    }
}

// Sensor noise acts per pixel at any resolution.
impl Scaled for GaussianNoise {}
impl Scaled for PoissonNoise {}
impl Scaled for SpeckleNoise {}
impl Scaled for SaltPepper {}

#[cfg(test)]
mod tests {
    use super::super::util::fixtures::*;
    use super::*;

    #[test]
    fn gaussian_noise_has_the_requested_spread() {
        for mono in [true, false] {
            let mut img = flat(200, 100, 128);
            gaussian_noise(&mut img, &GaussianNoise { sigma: 10.0, mono }, &mut rng(1));
            assert!((mean(&img) - 128.0).abs() < 0.5);
            assert!((std(&img) - 10.0).abs() < 0.6, "std {}", std(&img));
            let grey = count(&img, |p| p[0] == p[1] && p[1] == p[2]);
            if mono {
                assert_eq!(grey, 200 * 100);
            } else {
                assert!(grey < 200 * 100 / 10);
            }
        }
    }

    #[test]
    fn gaussian_noise_depends_on_seed() {
        let p = GaussianNoise {
            sigma: 5.0,
            mono: false,
        };
        let (mut a, mut b, mut c) = (flat(30, 30, 100), flat(30, 30, 100), flat(30, 30, 100));
        gaussian_noise(&mut a, &p, &mut rng(1));
        gaussian_noise(&mut b, &p, &mut rng(1));
        gaussian_noise(&mut c, &p, &mut rng(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn poisson_noise_grows_with_brightness() {
        let p = PoissonNoise { photons: 300.0 };
        let mut dark = flat(100, 100, 20);
        let mut bright = flat(100, 100, 230);
        let mut black = flat(100, 100, 0);
        poisson_noise(&mut dark, &p, &mut rng(3));
        poisson_noise(&mut bright, &p, &mut rng(3));
        poisson_noise(&mut black, &p, &mut rng(3));
        let (sd, sb) = (std(&dark), std(&bright));
        // Expected sqrt(v * 255 / photons): about 4.1 and 14.0.
        assert!((sd - 4.1).abs() < 0.6, "dark std {sd}");
        assert!((sb - 14.0).abs() < 1.2, "bright std {sb}");
        assert!(
            black.as_raw().iter().all(|&v| v == 0),
            "no photons, no noise"
        );
    }

    #[test]
    fn speckle_is_multiplicative() {
        let p = SpeckleNoise { sigma: 0.1 };
        let mut mid = flat(100, 100, 120);
        let mut black = flat(50, 50, 0);
        speckle_noise(&mut mid, &p, &mut rng(4));
        speckle_noise(&mut black, &p, &mut rng(4));
        assert!((std(&mid) - 12.0).abs() < 1.0, "std {}", std(&mid));
        assert!(black.as_raw().iter().all(|&v| v == 0));
    }

    #[test]
    fn salt_pepper_hits_the_requested_fraction() {
        let p = SaltPepper {
            amount: 0.05,
            salt_ratio: 0.3,
        };
        let mut img = flat(200, 200, 128);
        salt_pepper(&mut img, &p, &mut rng(5));
        let salt = count(&img, |px| px == [255, 255, 255]) as f64 / 40_000.0;
        let pepper = count(&img, |px| px == [0, 0, 0]) as f64 / 40_000.0;
        let untouched = count(&img, |px| px == [128, 128, 128]) as f64 / 40_000.0;
        assert!(
            (salt + pepper - 0.05).abs() < 0.006,
            "hit {}",
            salt + pepper
        );
        assert!((salt / (salt + pepper) - 0.3).abs() < 0.05);
        assert!((untouched - 0.95).abs() < 0.006);
        let mut other = flat(200, 200, 128);
        salt_pepper(&mut other, &p, &mut rng(6));
        assert_ne!(img, other);
    }
}
