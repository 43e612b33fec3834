//! A second build of every family for CPUs with 256-bit vectors.
//!
//! Release binaries target baseline x86-64, whose SSE2 vectors are 128 bits
//! wide and have no byte shuffles, so the per-pixel loops of the families
//! run at half the width of nearly every CPU they meet. [`apply`] runs the
//! same source compiled with AVX2, FMA and BMI enabled when the running CPU
//! has them (checked once): [`Family::apply_here`] and the functions it calls
//! are `#[inline(always)]`, so they are compiled into [`apply_avx2`] with its
//! features rather than called in their baseline form.
//!
//! The bytes are the same on either path. Integer code is exact at any
//! width, Rust never contracts a float multiply and add into one fused
//! operation by itself, and both builds call the same library functions;
//! a unit test holds every family to that.

#![allow(unsafe_code)]

use image::RgbImage;
use rand_chacha::ChaCha8Rng;

use super::Family;

/// Whether this CPU has every feature [`apply_avx2`] is compiled with.
#[cfg(target_arch = "x86_64")]
pub(super) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("popcnt")
    })
}

/// Other architectures have only the baseline build.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn available() -> bool {
    false
}

/// `family.apply_here(..)` in its AVX2 build, or `None` on a CPU without it.
pub(super) fn apply(
    family: Family,
    img: &mut RgbImage,
    rng: &mut ChaCha8Rng,
    scale: f64,
) -> Option<serde_json::Value> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `apply_avx2` may run only where the CPU has the features
        // it is compiled with, and `available` has just checked each one.
        return Some(unsafe { apply_avx2(family, img, rng, scale) });
    }
    let _ = (family, img, rng, scale);
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn apply_avx2(
    family: Family,
    img: &mut RgbImage,
    rng: &mut ChaCha8Rng,
    scale: f64,
) -> serde_json::Value {
    family.apply_here(img, rng, scale)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::{FontLibrary, PageSpec, PaperSize, Target, render_page_as};

    /// Both builds of every family make the same bytes and parameters, at
    /// the reference resolution and on a page scaled to 150 dpi (larger
    /// kernels, the u32 paths of the blurs), for several seeds.
    #[test]
    fn both_builds_degrade_every_page_alike() {
        if !available() {
            eprintln!("this CPU has no AVX2: only the baseline build can run here");
            return;
        }
        let fonts = FontLibrary::system().expect("the build machines have DejaVu installed");
        // A corner of an A4 sheet at 150 dpi: fonts and kernels twice the size.
        let sheet = PageSpec {
            width: 330,
            height: 420,
            ..PageSpec::paper(PaperSize::A4, 150).expect("A4 at 150 dpi is a valid page")
        };
        for (spec, seeds) in [(PageSpec::pixels(211, 263), 0..4u64), (sheet, 4..6)] {
            for seed in seeds {
                let page = render_page_as(&fonts, &spec, seed, Target::AsPrinted)
                    .expect("valid size")
                    .image;
                for &family in Family::ALL {
                    let (mut narrow, mut wide) = (page.clone(), page.clone());
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let a = family.apply_here(&mut narrow, &mut rng, spec.scale().into());
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let b =
                        apply(family, &mut wide, &mut rng, spec.scale().into()).expect("available");
                    assert_eq!(a, b, "{family:?} parameters, seed {seed}");
                    assert!(narrow == wide, "{family:?} pixels differ, seed {seed}");
                }
            }
        }
    }
}
