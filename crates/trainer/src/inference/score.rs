//! Scoring one evaluation pair: the model's output and every classical
//! baseline against the clean page.

use std::collections::BTreeMap;
use std::sync::Arc;

use image::{DynamicImage, RgbImage};
use restoreflow_classical::{Baseline, Layer1Params, run_pipeline};
use restoreflow_training::{MetricSet, RgbF32};

use super::cache::Layer2Model;
use super::pipeline::run_layer2;

/// What is evaluated.
#[derive(Clone)]
pub enum Subject {
    /// A Layer 1 parameter set.
    Layer1(Arc<Layer1Params>),
    /// A Layer 2 model.
    Layer2(Arc<Layer2Model>),
}

/// Scores of one pair.
pub struct PairScores {
    /// The subject's output.
    pub restored: RgbImage,
    /// The subject's output vs clean.
    pub model: MetricSet,
    /// Baseline name -> its output vs clean.
    pub baselines: BTreeMap<String, MetricSet>,
}

/// Runs the subject and the baselines on `degraded` and scores them against
/// `clean`. The identity baseline is the degraded page as it is; the classical
/// ones work on luma and are compared as gray RGB.
pub fn score_pair(
    clean: &RgbImage,
    degraded: &RgbImage,
    subject: &Subject,
) -> Result<PairScores, String> {
    if clean.dimensions() != degraded.dimensions() {
        return Err(format!(
            "clean is {}x{} but degraded is {}x{}",
            clean.width(),
            clean.height(),
            degraded.width(),
            degraded.height()
        ));
    }
    let reference = RgbF32::from_rgb8(clean);
    let score = |img: &RgbImage| MetricSet::compute(&reference, &RgbF32::from_rgb8(img));
    let gray = DynamicImage::ImageRgb8(degraded.clone()).to_luma8();
    let restored = match subject {
        Subject::Layer1(p) => {
            let out = run_pipeline(&gray, p).map_err(|e| format!("layer 1 failed: {e}"))?;
            DynamicImage::ImageLuma8(out.image).to_rgb8()
        }
        Subject::Layer2(m) => run_layer2(m, degraded)?,
    };
    let mut baselines = BTreeMap::new();
    for b in Baseline::ALL {
        let out = match b {
            Baseline::Identity => degraded.clone(),
            other => DynamicImage::ImageLuma8(
                other
                    .apply(&gray)
                    .map_err(|e| format!("baseline {} failed: {e}", other.name()))?,
            )
            .to_rgb8(),
        };
        baselines.insert(b.name().to_string(), score(&out));
    }
    Ok(PairScores {
        model: score(&restored),
        restored,
        baselines,
    })
}

/// Character error rate: edit distance between the texts (whitespace runs
/// collapsed) over the reference's length; `None` for an empty reference.
pub fn cer(reference: &str, hypothesis: &str) -> Option<f64> {
    let norm = |s: &str| -> Vec<char> {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .collect()
    };
    let (r, h) = (norm(reference), norm(hypothesis));
    if r.is_empty() {
        return None;
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    let mut cur = vec![0; h.len() + 1];
    for (i, rc) in r.iter().enumerate() {
        cur[0] = i + 1;
        for (j, hc) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rc != hc);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[h.len()] as f64 / r.len() as f64)
}

/// Text tesseract reads from a PNG, when a `tesseract` binary is on the PATH.
pub fn ocr(png: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("page.png");
    std::fs::write(&path, png).ok()?;
    let out = std::process::Command::new("tesseract")
        .arg(&path)
        .arg("stdout")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether OCR scoring is possible here.
pub fn ocr_available() -> bool {
    std::process::Command::new("tesseract")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cer_counts_edits_over_reference_length() {
        assert_eq!(cer("hello world", "hello world"), Some(0.0));
        assert_eq!(cer("abcd", "abxd"), Some(0.25));
        assert_eq!(cer("abcd", ""), Some(1.0));
        assert_eq!(cer("ab  cd\n", "ab cd"), Some(0.0));
        assert_eq!(cer("", "x"), None);
        // kitten -> sitting: 3 edits over 6 characters
        assert!((cer("kitten", "sitting").unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn known_inputs_give_known_metrics() {
        let clean = RgbImage::from_pixel(32, 32, image::Rgb([200, 200, 200]));
        // Degraded = clean + 10 everywhere: MSE = (10/255)^2, PSNR = 20 log10(25.5).
        let degraded = RgbImage::from_pixel(32, 32, image::Rgb([210, 210, 210]));
        let params = Layer1Params::default();
        let s = score_pair(
            &clean,
            &degraded,
            &Subject::Layer1(Arc::new(params.clone())),
        )
        .unwrap();
        let identity = s.baselines["identity"];
        assert!(
            (identity.psnr - 20.0 * 25.5f64.log10()).abs() < 1e-6,
            "{}",
            identity.psnr
        );
        assert_eq!(s.baselines.len(), Baseline::ALL.len());
        let bad = RgbImage::new(16, 32);
        assert!(score_pair(&clean, &bad, &Subject::Layer1(Arc::new(params.clone()))).is_err());
    }
}
