//! Metrics agree with scikit-image on the fixtures made by
//! `tests/fixtures/make_fixtures.py`.

use std::path::PathBuf;

use restoreflow_training::{RgbF32, pixel_accuracy, psnr, ssim};

fn fixture(name: &str) -> RgbF32 {
    let path = // Read at run time: a test binary reused from another checkout (shared
    // target dir) would otherwise look in that checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    RgbF32::from_rgb8(&img.to_rgb8())
}

#[test]
fn metrics_match_scikit_image() {
    let dir = // Read at run time: a test binary reused from another checkout (shared
    // target dir) would otherwise look in that checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let clean = fixture(case["clean"].as_str().unwrap());
        let other = fixture(case["other"].as_str().unwrap());
        let name = case["other"].as_str().unwrap();
        let want = |k: &str| case[k].as_f64().unwrap();
        let (p, s, a) = (
            psnr(&clean, &other),
            ssim(&clean, &other),
            pixel_accuracy(&clean, &other),
        );
        eprintln!(
            "{name}: psnr {p} ({}), ssim {s} ({}), acc {a} ({})",
            want("psnr"),
            want("ssim"),
            want("accuracy")
        );
        assert!((p - want("psnr")).abs() < 1e-5, "{name} psnr {p}");
        assert!((s - want("ssim")).abs() < 1e-5, "{name} ssim {s}");
        assert!((a - want("accuracy")).abs() < 1e-9, "{name} accuracy {a}");
    }
}
