//! Scoring one evaluation pair: the model's output and every classical
//! baseline against the clean page.

use crate::error::TrainerError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use restoreflow_classical::{Baseline, Layer1Params, run_pipeline_rgb};
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
    /// Layer 1, then the Layer 2 model on its output.
    Chain(Arc<Layer1Params>, Arc<Layer2Model>),
}

/// Scores of one pair.
pub struct PairScores {
    /// The subject's output.
    pub restored: RgbImage,
    /// The subject's output vs clean.
    pub model: MetricSet,
    /// Baseline name -> its output vs clean.
    pub baselines: BTreeMap<String, MetricSet>,
    /// Baseline name -> its output (the identity baseline's is the degraded
    /// page), for scores computed later such as OCR.
    pub baseline_outputs: BTreeMap<String, RgbImage>,
}

/// Runs the subject and the baselines on `degraded` and scores them against
/// `clean`, every method the same way: colour in, colour out, PSNR over RGB
/// and SSIM on luma as [`MetricSet`] defines them. The identity baseline is
/// the degraded page as it is; median and non-local means filter R, G and B
/// each; Layer 1 (subject or baseline) works on luma and keeps the page's
/// chroma ([`run_pipeline_rgb`]), so none of them loses points for colour
/// it threw away rather than for how well it restored.
pub fn score_pair(
    clean: &RgbImage,
    degraded: &RgbImage,
    subject: &Subject,
) -> Result<PairScores, TrainerError> {
    if clean.dimensions() != degraded.dimensions() {
        return Err(TrainerError::invalid(format!(
            "clean is {}x{} but degraded is {}x{}",
            clean.width(),
            clean.height(),
            degraded.width(),
            degraded.height()
        )));
    }
    let reference = RgbF32::from_rgb8(clean);
    let score = |img: &RgbImage| MetricSet::compute(&reference, &RgbF32::from_rgb8(img));
    let restored = match subject {
        Subject::Layer1(p) => {
            run_pipeline_rgb(degraded, p)
                .map_err(|e| TrainerError::internal(format!("layer 1 failed: {e}")))?
                .image
        }
        Subject::Layer2(m) => run_layer2(m, degraded)?,
        Subject::Chain(p, m) => {
            let first = run_pipeline_rgb(degraded, p)
                .map_err(|e| TrainerError::internal(format!("layer 1 failed: {e}")))?
                .image;
            run_layer2(m, &first)?
        }
    };
    let mut baselines = BTreeMap::new();
    let mut baseline_outputs = BTreeMap::new();
    for b in Baseline::ALL {
        let out = b
            .apply_rgb(degraded)
            .map_err(|e| TrainerError::internal(format!("baseline {} failed: {e}", b.name())))?;
        baselines.insert(b.name().to_string(), score(&out));
        baseline_outputs.insert(b.name().to_string(), out);
    }
    Ok(PairScores {
        model: score(&restored),
        restored,
        baselines,
        baseline_outputs,
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

/// Text tesseract reads from a PNG, when a `tesseract` binary is on the PATH
/// and it answers within `deadline` (a reader still running then is killed).
///
/// Page segmentation mode 6 (one uniform block of text), the mode the
/// published yardstick scores use ("tesseract 5 `--psm 6`, whitespace
/// collapsed"; [`cer`] collapses the whitespace). One OCR thread per call,
/// so several pages can be read at once without oversubscribing the cores.
pub fn ocr(png: &[u8], deadline: Duration) -> Option<String> {
    ocr_with("tesseract", png, deadline)
}

/// [`ocr`] with the reader named: `program <png> stdout --psm 6`.
fn ocr_with(program: &str, png: &[u8], deadline: Duration) -> Option<String> {
    use std::io::Read;
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("page.png");
    std::fs::write(&path, png).ok()?;
    let mut child = std::process::Command::new(program)
        .arg(&path)
        .arg("stdout")
        .args(["--psm", "6"])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    // Read the output on a thread so a full pipe cannot stall the reader.
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).map(|_| text)
    });
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= deadline => {
                tracing::warn!(?deadline, "tesseract did not finish in time; killed");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // A killed reader's output is not waited for (a child it left behind may
    // hold the pipe open); the thread ends when the pipe closes.
    if !status?.success() {
        return None;
    }
    let text = reader.join().ok()?.ok()?;
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// The character error rate of each named image against `truth`, the
/// images read by tesseract in parallel. `None` when the reference is empty
/// or any image could not be read, so that means over a set always cover the
/// same pages for every method.
pub fn ocr_cers(
    truth: &str,
    images: &BTreeMap<String, &RgbImage>,
    deadline: Duration,
) -> Option<BTreeMap<String, f64>> {
    truth.split_whitespace().next()?;
    std::thread::scope(|scope| {
        let readers: Vec<_> = images
            .iter()
            .map(|(name, img)| {
                scope.spawn(move || {
                    let text = ocr(&encode_png(img)?, deadline)?;
                    Some((name.clone(), cer(truth, &text)?))
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().ok().flatten())
            .collect()
    })
}

fn encode_png(img: &RgbImage) -> Option<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).ok()?;
    Some(buf.into_inner())
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
    use image::{DynamicImage, GrayImage, Rgb};

    /// A stand-in reader: a shell script with the given body.
    #[cfg(unix)]
    fn fake_reader(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("reader.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[cfg(unix)]
    #[test]
    fn a_reader_past_its_deadline_is_killed_and_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let hung = fake_reader(dir.path(), "echo partial; sleep 30");
        let started = std::time::Instant::now();
        assert_eq!(ocr_with(&hung, b"png", Duration::from_millis(300)), None);
        // Killed at the deadline, not after the reader's 30 s.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let quick = fake_reader(dir.path(), "echo 'some text'");
        assert_eq!(
            ocr_with(&quick, b"png", Duration::from_secs(10)).as_deref(),
            Some("some text\n")
        );
        let failing = fake_reader(dir.path(), "echo text; exit 1");
        assert_eq!(ocr_with(&failing, b"png", Duration::from_secs(10)), None);
    }

    /// A white page with thick red and blue lines, like headings or
    /// underlines (shapes a 3x3 median keeps).
    fn colour_page() -> RgbImage {
        RgbImage::from_fn(160, 120, |x, y| {
            let ink = (10..110).contains(&y) && y % 20 < 10 && (10..150).contains(&x);
            match (ink, (y / 20) % 2) {
                (false, _) => Rgb([255, 255, 255]),
                (true, 0) => Rgb([200, 20, 30]),
                (true, _) => Rgb([20, 40, 190]),
            }
        })
    }

    /// Every classical method restores the clean colour page itself, so all it
    /// can lose is what it does to the page. Scored as grey (the old way), the
    /// coloured ink alone cost them most of their PSNR; in colour they keep it.
    #[test]
    fn classical_methods_are_scored_colour_in_colour_out() {
        let clean = colour_page();
        let layer1 = Arc::new(Layer1Params::default());
        let s = score_pair(&clean, &clean, &Subject::Layer1(layer1.clone())).unwrap();
        let reference = RgbF32::from_rgb8(&clean);
        let grey = DynamicImage::ImageRgb8(clean.clone()).to_luma8();
        let as_grey = |g: GrayImage| {
            MetricSet::compute(
                &reference,
                &RgbF32::from_rgb8(&DynamicImage::ImageLuma8(g).to_rgb8()),
            )
        };
        let old = [
            ("median", as_grey(Baseline::Median.apply(&grey).unwrap())),
            (
                "nl_means",
                as_grey(Baseline::NonLocalMeans.apply(&grey).unwrap()),
            ),
            ("layer1", as_grey(Baseline::Layer1.apply(&grey).unwrap())),
        ];
        for (name, was) in old {
            let now = s.baselines[name];
            assert!(
                now.psnr > was.psnr + 10.0,
                "{name}: {} dB in colour vs {} dB as grey",
                now.psnr,
                was.psnr
            );
            assert!(now.psnr > 25.0, "{name}: {} dB", now.psnr);
            assert_eq!(s.baseline_outputs[name].dimensions(), clean.dimensions());
        }
        // Layer 1 as the subject is scored exactly like the Layer 1 baseline
        // (same parameters here).
        assert_eq!(s.model.psnr, s.baselines["layer1"].psnr);
        assert_eq!(s.restored, s.baseline_outputs["layer1"]);
        // The identity baseline of a perfect page is perfect (PSNR capped).
        assert!(s.baselines["identity"].psnr >= 99.0);
        assert_eq!(s.baseline_outputs["identity"], clean);
    }

    #[test]
    fn ocr_needs_a_reference_text() {
        let page = colour_page();
        let images: BTreeMap<String, &RgbImage> = [("model".to_string(), &page)].into();
        // Nothing to compare with: no OCR is even started.
        assert_eq!(ocr_cers(" \n\t", &images, Duration::from_secs(60)), None);
    }

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
