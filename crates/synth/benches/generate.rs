//! Throughput of clean+degraded pair generation with the `mixed` preset,
//! single-threaded and on all cores, printed as a markdown table. Pages are
//! 640x832 (no dpi) by default; `SYNTH_BENCH_PAGE=a4@150` (or `letter@300`,
//! ...) generates whole sheets at that resolution instead, with fonts and
//! degradations scaled to it. It allocates as the shipped binaries do:
//! mimalloc, run with `MIMALLOC_PURGE_DELAY=-1`.
//!
//! Run with `cargo bench -p restoreflow-synth --bench generate`. To compare
//! with Augraphy, point `AUGRAPHY_PYTHON` at a python with augraphy installed
//! and `AUGRAPHY_BENCH` at the peer script (`../shared/bench/augraphy_bench.py`
//! from the project root; give an absolute path, since cargo runs benches
//! from the crate directory). It runs before and after our measurements, in
//! a scratch directory so Augraphy's cache stays out of the repository,
//! with a local font (`AUGRAPHY_FONT`, DejaVu Sans by default) in its
//! `fonts/` folder so that its scribbles do not try to download one.

use std::error::Error;
use std::process::Command;
use std::time::Instant;

use restoreflow_synth::{
    Family, FontLibrary, PageSpec, PaperSize, Pipeline, Target, degradation_seed, generate_pair,
    render_page_as,
};

/// The allocator every restoreflow binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator setting the binaries run with (`restoreflow_core::process`):
/// freed pages are kept for reuse instead of being returned to the OS.
const PURGE_DELAY: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "-1");

const PEER_PAGES: &str = "8";

/// The face Augraphy's scribbles are drawn in (`AUGRAPHY_FONT` overrides).
const PEER_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The page to generate: `SYNTH_BENCH_PAGE=SIZE@DPI`, else 640x832.
fn page_spec() -> Result<PageSpec, Box<dyn Error>> {
    let Ok(v) = std::env::var("SYNTH_BENCH_PAGE") else {
        return Ok(PageSpec::pixels(640, 832));
    };
    let (size, dpi) = v
        .split_once('@')
        .ok_or("SYNTH_BENCH_PAGE is SIZE@DPI, e.g. a4@150")?;
    Ok(PageSpec::paper(size.parse::<PaperSize>()?, dpi.parse()?)?)
}

struct Row {
    mode: String,
    threads: usize,
    pairs: usize,
    seconds: f64,
}

impl Row {
    fn print(&self) {
        let per_s = self.pairs as f64 / self.seconds;
        println!(
            "| {} | {} | {} | {:.3} | {:.1} | {:.2} |",
            self.mode,
            self.threads,
            self.pairs,
            self.seconds,
            per_s,
            1000.0 / per_s
        );
    }
}

/// Runs the Augraphy peer script once; `None` when it is not configured.
fn peer_seconds_per_page(spec: &PageSpec) -> Option<Result<f64, Box<dyn Error>>> {
    let python = std::env::var_os("AUGRAPHY_PYTHON")?;
    let script = std::env::var_os("AUGRAPHY_BENCH")?;
    let run = || -> Result<f64, Box<dyn Error>> {
        // Augraphy writes an `augraphy_cache/` folder into its working
        // directory; keep that out of the repository.
        let scratch = tempfile::tempdir()?;
        // Its `Scribbles` step draws text in a font from `fonts/` there and
        // downloads handwriting fonts when that folder is empty, which
        // fails offline; give it a local face instead.
        let font = std::env::var_os("AUGRAPHY_FONT").map_or_else(
            || std::path::PathBuf::from(PEER_FONT),
            std::path::PathBuf::from,
        );
        let fonts = scratch.path().join("fonts");
        std::fs::create_dir(&fonts)?;
        let name = font.file_name().ok_or("AUGRAPHY_FONT names a .ttf file")?;
        std::fs::copy(&font, fonts.join(name))
            .map_err(|e| format!("copying the peer's font {}: {e}", font.display()))?;
        let script = std::path::absolute(&script)?;
        let out = Command::new(python)
            .current_dir(scratch.path())
            .arg(script)
            .args([
                PEER_PAGES,
                &spec.width.to_string(),
                &spec.height.to_string(),
            ])
            .output()?;
        if !out.status.success() {
            return Err(format!("peer failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let stdout = String::from_utf8(out.stdout)?;
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or("no JSON line")?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        v["median_s_per_page"]
            .as_f64()
            .ok_or_else(|| "missing median_s_per_page".into())
    };
    Some(run())
}

/// Seconds to generate a pair for every seed on `pool`'s threads, each pair
/// dropped as soon as it is made, as the dataset worker drops it once
/// encoded (a batch that kept every pair would time first-touch page
/// faults of hundreds of MB instead).
fn time_pairs(
    pool: &rayon::ThreadPool,
    fonts: &FontLibrary,
    pipeline: &Pipeline,
    spec: &PageSpec,
    seeds: &[u64],
) -> f64 {
    use rayon::prelude::*;
    let start = Instant::now();
    pool.install(|| {
        seeds.par_iter().for_each(|&seed| {
            let pair = generate_pair(fonts, pipeline, spec, seed, Target::AsPrinted)
                .expect("the bench page is a valid size");
            std::hint::black_box(&pair);
        });
    });
    start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn Error>> {
    // mimalloc reads its settings at start-up: run again with the shipped
    // one when it is missing (a value set by hand is kept).
    if std::env::var_os(PURGE_DELAY.0).is_none() {
        let status = Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env(PURGE_DELAY.0, PURGE_DELAY.1)
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let fonts = FontLibrary::system()?;
    let pipeline = Pipeline::preset("mixed")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pairs: usize = std::env::var("SYNTH_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seeds: Vec<u64> = (0..pairs as u64).collect();
    let spec = page_spec()?;
    let (width, height) = (spec.width, spec.height);
    let dpi = spec
        .dpi
        .map_or_else(|| "no dpi".to_string(), |d| format!("{d} dpi"));

    let peer_before = peer_seconds_per_page(&spec).transpose()?;

    // Warm up caches, the corpus index and the allocator.
    for seed in 0..8 {
        generate_pair(
            &fonts,
            &pipeline,
            &spec,
            1_000_000 + seed,
            Target::AsPrinted,
        )?;
    }
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let all = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;

    let mut rows = Vec::new();
    let start = Instant::now();
    for &seed in &seeds {
        render_page_as(&fonts, &spec, seed, Target::AsPrinted)?;
    }
    rows.push(Row {
        mode: "render only".into(),
        threads: 1,
        pairs,
        seconds: start.elapsed().as_secs_f64(),
    });
    rows.push(Row {
        mode: "render + mixed degrade".into(),
        threads: 1,
        pairs,
        seconds: time_pairs(&single, &fonts, &pipeline, &spec, &seeds),
    });
    rows.push(Row {
        mode: "render + mixed degrade".into(),
        threads,
        pairs,
        seconds: time_pairs(&all, &fonts, &pipeline, &spec, &seeds),
    });

    let spread = per_page_ms(&fonts, &pipeline, &spec, &seeds)?;
    let peer_after = peer_seconds_per_page(&spec).transpose()?;
    let families = per_family_ms(&fonts, &spec)?;

    println!(
        "restoreflow-synth pair generation, {width}x{height} ({dpi}), preset `mixed`, \
         mimalloc with {}={}\n",
        PURGE_DELAY.0,
        std::env::var(PURGE_DELAY.0).unwrap_or_default()
    );
    println!("| mode | threads | pairs | seconds | pairs/s | ms/pair |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        row.print();
    }
    match (peer_before, peer_after) {
        (Some(before), Some(after)) => {
            let median = (before + after) / 2.0;
            let peer_pages = 2 * PEER_PAGES.parse::<usize>()?;
            Row {
                mode: "augraphy default pipeline (degrade only, peer)".into(),
                threads: 1,
                pairs: peer_pages,
                seconds: median * peer_pages as f64,
            }
            .print();
            let ours = rows[1].seconds / pairs as f64;
            println!(
                "\npeer median s/page: {before:.3} before, {after:.3} after; \
                 single-thread speed-up vs augraphy: {:.0}x ({} threads: {:.0}x)",
                median / ours,
                threads,
                median / (rows[2].seconds / pairs as f64)
            );
        }
        _ => println!(
            "\nAugraphy comparison skipped: set AUGRAPHY_PYTHON (a python with augraphy \
             installed) and AUGRAPHY_BENCH (path to augraphy_bench.py) to enable it."
        ),
    }
    println!(
        "\nper page, single thread, each timed alone ({pairs} seeds; \
         degrade only = the pipeline on an already rendered page, as the peer times Augraphy)\n"
    );
    println!("| work | mean ms | median ms | p90 ms | vs peer median (median / median) |");
    println!("|---|---|---|---|---|");
    let peer_median = match (peer_before, peer_after) {
        (Some(before), Some(after)) => Some((before + after) / 2.0),
        _ => None,
    };
    for (work, ms) in [
        ("render + degrade (a pair)", &spread.pair),
        ("degrade only", &spread.degrade),
    ] {
        let ratio = peer_median.map_or_else(
            || "-".to_string(),
            |peer| format!("{:.0}x", peer * 1000.0 / quantile(ms, 0.5)),
        );
        println!(
            "| {work} | {:.2} | {:.2} | {:.2} | {ratio} |",
            ms.iter().sum::<f64>() / ms.len().max(1) as f64,
            quantile(ms, 0.5),
            quantile(ms, 0.9),
        );
    }
    println!("\nper-family cost on one {width}x{height} page ({dpi}), single thread\n");
    println!("| family | ms/apply |");
    println!("|---|---|");
    for (family, ms) in families {
        println!("| {} | {ms:.2} |", family.name());
    }
    Ok(())
}

/// Milliseconds of each page, timed one at a time on this thread.
struct Spread {
    /// Rendering and degrading a pair, as [`time_pairs`] does.
    pair: Vec<f64>,
    /// The pipeline alone, on a page rendered beforehand.
    degrade: Vec<f64>,
}

fn per_page_ms(
    fonts: &FontLibrary,
    pipeline: &Pipeline,
    spec: &PageSpec,
    seeds: &[u64],
) -> Result<Spread, Box<dyn Error>> {
    let mut spread = Spread {
        pair: Vec::with_capacity(seeds.len()),
        degrade: Vec::with_capacity(seeds.len()),
    };
    for &seed in seeds {
        let start = Instant::now();
        let pair = generate_pair(fonts, pipeline, spec, seed, Target::AsPrinted)?;
        spread.pair.push(start.elapsed().as_secs_f64() * 1000.0);
        // An `as_printed` pair's clean half is the rendered page: degrade it
        // again with the pair's own seed, timing the pipeline alone.
        let start = Instant::now();
        let degraded = pipeline.apply_scaled(&pair.clean, degradation_seed(seed), spec.scale());
        spread.degrade.push(start.elapsed().as_secs_f64() * 1000.0);
        drop((pair, degraded));
    }
    Ok(spread)
}

/// The `q` quantile of `ms` (nearest rank), 0 when empty.
fn quantile(ms: &[f64], q: f64) -> f64 {
    let mut sorted = ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// Mean milliseconds of each family applied alone (probability 1).
fn per_family_ms(
    fonts: &FontLibrary,
    spec: &PageSpec,
) -> Result<Vec<(Family, f64)>, Box<dyn Error>> {
    const REPS: u64 = 10;
    let page = render_page_as(fonts, spec, 7, Target::AsPrinted)?.image;
    let mut out = Vec::new();
    for &family in Family::ALL {
        let pipeline = Pipeline::single(family);
        let start = Instant::now();
        for seed in 0..REPS {
            std::hint::black_box(pipeline.apply_scaled(&page, seed, spec.scale()));
        }
        out.push((family, start.elapsed().as_secs_f64() * 1000.0 / REPS as f64));
    }
    Ok(out)
}
