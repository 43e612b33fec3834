//! Procedural "photographs" for figures: landscapes (sky, clouds, sun and
//! hazy ranges of hills) and still lifes (a wall, a wooden table and shaded
//! objects), built from gradients and value noise, with film grain and a
//! vignette, set on the page inside a thin frame. No image data is loaded.

use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::blocks::Writer;
use super::content::{hex, pick, r2};
use super::paint::{CachedNoise, Noise};

impl Writer<'_, '_> {
    /// Paints a procedural photograph in `w` x `h` pixels at `(x, y)` inside
    /// a thin frame.
    pub(super) fn photo(
        &mut self,
        rng: &mut ChaCha8Rng,
        x: i32,
        y: i32,
        w: u32,
        h: u32,
    ) -> serde_json::Value {
        let landscape = rng.random_bool(0.6);
        let noise = Noise::new(rng.random());
        // Grain and texture are sized by the type, not by the pixel, so a
        // page at a higher dpi gets the same photo, only sharper.
        let unit = self.theme.body.px / 12.0;
        let (picture, params) = if landscape {
            landscape_scene(rng, noise, w, h, unit)
        } else {
            still_life(rng, noise, w, h, unit)
        };
        let theme = self.theme;
        let img = &mut self.canvas.image;
        for (sx, sy, p) in picture.enumerate_pixels() {
            let (px, py) = (x + sx as i32, y + sy as i32);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, image::Rgb(theme.colour(p.0)));
            }
        }
        let t = theme.rule;
        let (wi, hi) = (w as i32, h as i32);
        for (rx, ry, rw, rh) in [
            (0, 0, wi, t),
            (0, hi - t, wi, t),
            (0, 0, t, hi),
            (wi - t, 0, t, hi),
        ] {
            self.canvas.fill_rect(x + rx, y + ry, rw, rh, theme.ink);
        }
        params
    }
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn to_rgb(c: [f32; 3]) -> image::Rgb<u8> {
    image::Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8))
}

/// Film grain (`unit` pixels per grain cell or so) and a soft vignette,
/// shared by every scene.
fn finish(
    c: [f32; 3],
    noise: &mut CachedNoise,
    (x, y): (f32, f32),
    (w, h): (f32, f32),
    unit: f32,
) -> image::Rgb<u8> {
    let grain = (noise.value(x / unit * 0.9 + 311.0, y / unit * 0.9) - 0.5) * 14.0;
    let (dx, dy) = (x / w - 0.5, y / h - 0.5);
    let vignette = 1.0 - 0.35 * (dx * dx + dy * dy);
    to_rgb(c.map(|v| v * vignette + grain))
}

/// Sky, clouds, a sun, and two or three ranges of hills fading into haze.
pub(super) fn landscape_scene(
    rng: &mut ChaCha8Rng,
    noise: Noise,
    w: u32,
    h: u32,
    unit: f32,
) -> (RgbImage, serde_json::Value) {
    let (wf, hf) = (w as f32, h as f32);
    let skies: &[([f32; 3], [f32; 3])] = &[
        ([70.0, 120.0, 190.0], [200.0, 215.0, 230.0]),
        ([110.0, 150.0, 200.0], [225.0, 230.0, 235.0]),
        ([150.0, 160.0, 175.0], [205.0, 205.0, 200.0]),
        ([90.0, 80.0, 140.0], [240.0, 170.0, 110.0]),
    ];
    let (sky_top, sky_low) = *pick(rng, skies);
    let lands: &[[f32; 3]] = &[
        [70.0, 100.0, 55.0],
        [95.0, 90.0, 60.0],
        [60.0, 80.0, 70.0],
        [120.0, 110.0, 80.0],
    ];
    let land = *pick(rng, lands);
    let horizon = hf * rng.random_range(0.35..0.6);
    let layers = rng.random_range(2..=3);
    let ridges: Vec<(f32, f32, f32, f32)> = (0..layers)
        .map(|j| {
            let base = horizon + (hf - horizon) * 0.35 * j as f32;
            let amp = hf * rng.random_range(0.06..0.2) / (j as f32 + 1.0);
            let freq = rng.random_range(1.5..4.0) / wf;
            (base, amp, freq, rng.random_range(0.0..100.0))
        })
        .collect();
    let sun = rng.random_bool(0.4).then(|| {
        (
            wf * rng.random_range(0.15..0.85),
            horizon * rng.random_range(0.25..0.7),
        )
    });
    let sun_r = hf * rng.random_range(0.05..0.1);
    let clouds = rng.random_range(0.3..0.7f32);

    let profiles: Vec<Vec<f32>> = ridges
        .iter()
        .map(|&(base, amp, freq, off)| {
            (0..w)
                .map(|x| base - amp * (noise.fbm(x as f32 * freq * 4.0 + off, off, 4) - 0.3) * 2.0)
                .collect()
        })
        .collect();
    let (mut clouds_noise, mut film) = (noise.cached(), noise.cached());
    let mut ranges: Vec<CachedNoise> = profiles.iter().map(|_| noise.cached()).collect();
    let mut img = RgbImage::new(w, h);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let mut c = mix(sky_top, sky_low, (fy / horizon).clamp(0.0, 1.0));
        let cloud = clouds_noise.fbm(fx / (wf * 0.15), fy / (hf * 0.06), 4);
        c = mix(c, [245.0; 3], ((cloud - clouds) * 2.5).clamp(0.0, 0.8));
        if let Some((sx, sy)) = sun {
            let d = (fx - sx).hypot(fy - sy);
            c = mix(
                c,
                [255.0, 240.0, 200.0],
                ((sun_r - d) / 2.0 + 0.5).clamp(0.0, 1.0),
            );
        }
        // The nearest range the pixel lies on paints it over every range
        // behind it, so only that one is evaluated.
        if let Some((j, profile)) = profiles
            .iter()
            .enumerate()
            .rev()
            .find(|(_, profile)| fy >= profile[x as usize])
        {
            // Nearer ranges are darker and less hazy.
            let haze = 0.55 * (1.0 - (j + 1) as f32 / layers as f32);
            let (ux, uy) = (fx / unit, fy / unit);
            let tex = 0.8 + 0.35 * ranges[j].fbm(ux * 0.08, uy * 0.08 + j as f32 * 9.0, 3);
            let depth = ((fy - profile[x as usize]) / hf).min(0.4);
            c = mix(land.map(|v| v * tex * (1.0 - depth)), sky_low, haze);
        }
        *p = finish(c, &mut film, (fx, fy), (wf, hf), unit);
    }
    let params = json!({
        "scene": "landscape",
        "ranges": layers,
        "sun": sun.is_some(),
        "horizon": r2(horizon / hf),
        "sky": hex(sky_top.map(|v| v as u8)),
        "land": hex(land.map(|v| v as u8)),
    });
    (img, params)
}

/// A wall, a wooden table and a few shaded round or boxy objects on it.
pub(super) fn still_life(
    rng: &mut ChaCha8Rng,
    noise: Noise,
    w: u32,
    h: u32,
    unit: f32,
) -> (RgbImage, serde_json::Value) {
    let (wf, hf) = (w as f32, h as f32);
    let walls: &[[f32; 3]] = &[
        [200.0, 190.0, 170.0],
        [170.0, 185.0, 195.0],
        [120.0, 110.0, 105.0],
        [210.0, 205.0, 200.0],
    ];
    let wall = *pick(rng, walls);
    let wood = [
        rng.random_range(100.0..160.0),
        rng.random_range(65.0..100.0),
        rng.random_range(35.0..60.0),
    ];
    let table = hf * rng.random_range(0.55..0.75);
    let objects: Vec<(f32, f32, f32, f32, [f32; 3], bool)> = (0..rng.random_range(2..=4))
        .map(|_| {
            let rx = wf * rng.random_range(0.06..0.14);
            let ry = rx * rng.random_range(0.8..1.6);
            let cx = wf * rng.random_range(0.15..0.85);
            let colour = [
                rng.random_range(40.0..230.0),
                rng.random_range(40.0..200.0),
                rng.random_range(30.0..180.0),
            ];
            (cx, table - ry * 0.8, rx, ry, colour, rng.random_bool(0.3))
        })
        .collect();
    let (mut wall_noise, mut wood_noise, mut film) =
        (noise.cached(), noise.cached(), noise.cached());
    let mut img = RgbImage::new(w, h);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let mut c = if fy < table {
            let light = 1.1 - 0.3 * (fx / wf) - 0.1 * (fy / table);
            let texture = wall_noise.fbm(fx / unit * 0.05, fy / unit * 0.05, 3);
            wall.map(|v| v * light * (0.95 + 0.1 * texture))
        } else {
            let grain = wood_noise.fbm(fx / unit * 0.01, fy / unit * 0.35 + 40.0, 4);
            wood.map(|v| v * (0.75 + 0.5 * grain))
        };
        for &(cx, cy, rx, ry, colour, boxy) in &objects {
            // A soft shadow on the table to the lower right.
            let (sx, sy) = (
                (fx - cx - rx * 0.4) / (rx * 1.2),
                (fy - table) / (ry * 0.25),
            );
            if fy >= table && sx * sx + sy * sy < 1.0 {
                c = c.map(|v| v * (0.65 + 0.35 * (sx * sx + sy * sy)));
            }
            let (nx, ny) = ((fx - cx) / rx, (fy - cy) / ry);
            let inside = if boxy {
                nx.abs() < 0.9 && ny.abs() < 1.0
            } else {
                nx * nx + ny * ny < 1.0
            };
            if inside {
                let shade = if boxy {
                    if nx > 0.55 { 0.65 } else { 1.0 - 0.15 * ny }
                } else {
                    let nz = (1.0 - nx * nx - ny * ny).max(0.0).sqrt();
                    (0.35 + 0.75 * (-0.5 * nx - 0.6 * ny + 0.62 * nz)).clamp(0.2, 1.25)
                };
                c = colour.map(|v| v * shade);
            }
        }
        *p = finish(c, &mut film, (fx, fy), (wf, hf), unit);
    }
    let params = json!({
        "scene": "still_life",
        "objects": objects.len(),
        "wall": hex(wall.map(|v| v as u8)),
        "table": r2(table / hf),
    });
    (img, params)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn scenes_are_colourful_and_deterministic() {
        for landscape in [true, false] {
            let scene = |seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let noise = Noise::new(seed);
                if landscape {
                    landscape_scene(&mut rng, noise, 90, 60, 1.0).0
                } else {
                    still_life(&mut rng, noise, 90, 60, 1.0).0
                }
            };
            let a = scene(4);
            assert_eq!(a, scene(4));
            let colourful = a
                .pixels()
                .filter(|p| p.0.iter().max().unwrap_or(&0) - p.0.iter().min().unwrap_or(&0) > 20)
                .count();
            assert!(colourful > 500, "{colourful} colourful pixels");
        }
    }
}
