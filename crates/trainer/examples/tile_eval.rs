//! Scores one Layer 2 weights file on a folder of pairs at several
//! inference tile sizes, so the tiling the services use can be checked
//! against the alternatives on the same model.
//!
//! ```text
//! cargo run --release -p restoreflow-trainer --example tile_eval -- \
//!     WEIGHTS.safetensors PRESET DIR TILE:OVERLAP[,TILE:OVERLAP...]
//! ```
//!
//! `DIR` holds `NNN_clean.png`, `NNN_degraded.png` and, for the character
//! error rate, `NNN.txt` (the layout of an evaluation folder such as
//! augraphy-dev). Each page is restored by the model the services load
//! (`restormer_from_file`) with `restore_tiled`, as 8-bit output like the
//! evaluation jobs', then scored with `MetricSet` (PSNR over RGB, SSIM on
//! luma) and, when tesseract is installed, by CER. A tile at least as large
//! as the page restores it in one pass.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::Device;
use restoreflow_trainer::{ocr_available, ocr_cers, restormer_from_file};
use restoreflow_training::{MetricSet, RgbF32, TileConfig, restore_tiled};

const USAGE: &str = "usage: tile_eval WEIGHTS PRESET DIR TILE:OVERLAP[,TILE:OVERLAP...]";

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, preset, dir, tiles] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let tiles = tiles
        .split(',')
        .map(|spec| -> Result<TileConfig, Box<dyn Error>> {
            let (t, o) = spec.split_once(':').ok_or(USAGE)?;
            let cfg = TileConfig {
                tile: t.parse()?,
                overlap: o.parse()?,
                batch: 1,
            };
            cfg.validate()?;
            Ok(cfg)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let device = Device::Cpu;
    let net = restormer_from_file(Path::new(weights), preset, &device)?;

    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix("_clean.png").map(str::to_string))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no NNN_clean.png pages in {dir}").into());
    }
    // Each page is read once, whatever the number of tilings.
    let mut pages = Vec::new();
    for name in &names {
        let clean = RgbF32::from_rgb8(&image::open(format!("{dir}/{name}_clean.png"))?.to_rgb8());
        let degraded =
            RgbF32::from_rgb8(&image::open(format!("{dir}/{name}_degraded.png"))?.to_rgb8());
        let truth = std::fs::read_to_string(format!("{dir}/{name}.txt")).ok();
        pages.push((clean, degraded, truth));
    }
    let ocr = ocr_available();
    println!("| tile, overlap | PSNR dB | SSIM | CER | seconds | CER per page |");
    println!("|---|---|---|---|---|---|");
    for tc in &tiles {
        let start = Instant::now();
        let (mut scores, mut cers) = (Vec::new(), Vec::new());
        for (clean, degraded, truth) in &pages {
            // Scored as 8-bit output, like the evaluation jobs' restored
            // pages.
            let img = restore_tiled(&net, degraded, tc, &device)?
                .clamp01()
                .to_rgb8();
            scores.push(MetricSet::compute(clean, &RgbF32::from_rgb8(&img)));
            if let (true, Some(truth)) = (ocr, truth) {
                let images = BTreeMap::from([(String::new(), &img)]);
                if let Some(c) = ocr_cers(truth, &images, Duration::from_secs(120)) {
                    cers.extend(c.into_values());
                }
            }
        }
        let mean = MetricSet::mean(&scores);
        let cer = if cers.len() == names.len() {
            format!("{:.3}", cers.iter().sum::<f64>() / cers.len() as f64)
        } else {
            "n/a".into()
        };
        let per_page: Vec<String> = cers.iter().map(|c| format!("{c:.3}")).collect();
        println!(
            "| {}, {} | {:.2} | {:.3} | {cer} | {:.0} | {} |",
            tc.tile,
            tc.overlap,
            mean.psnr,
            mean.ssim,
            start.elapsed().as_secs_f64(),
            per_page.join(" ")
        );
    }
    Ok(())
}
