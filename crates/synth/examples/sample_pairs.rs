//! Writes a few clean/degraded pairs with their ground truth to a folder,
//! for eyeballing layouts and degradations.
//!
//! `cargo run -p restoreflow-synth --release --example sample_pairs -- OUT_DIR [PRESET|FAMILY] [COUNT] [as_printed|digital] [SIZE@DPI]`
//!
//! `SIZE@DPI` (e.g. `a4@150`) renders whole sheets at that resolution;
//! without it pages are 640x832.

use std::error::Error;
use std::path::PathBuf;

use restoreflow_synth::{
    Family, FontLibrary, PageSpec, PaperSize, Pipeline, Target, encode_png, generate_pair,
};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: sample_pairs OUT_DIR [PRESET|FAMILY] [COUNT] [TARGET] [SIZE@DPI]")?,
    );
    let which = args.next().unwrap_or_else(|| "mixed".into());
    let count: u64 = args.next().map(|c| c.parse()).transpose()?.unwrap_or(4);
    let target: Target = args.next().unwrap_or_default().parse()?;
    let spec = match args.next() {
        None => PageSpec::pixels(640, 832),
        Some(v) => {
            let (size, dpi) = v.split_once('@').ok_or("SIZE@DPI, e.g. a4@150")?;
            PageSpec::paper(size.parse::<PaperSize>()?, dpi.parse()?)?
        }
    };
    let pipeline = match Pipeline::preset(&which) {
        Ok(p) => p,
        Err(_) => Pipeline::single(which.parse::<Family>()?),
    };
    let fonts = FontLibrary::system()?;
    std::fs::create_dir_all(&out)?;
    for seed in 0..count {
        let pair = generate_pair(&fonts, &pipeline, &spec, seed, target)?;
        std::fs::write(
            out.join(format!("{seed:04}_clean.png")),
            encode_png(&pair.clean)?,
        )?;
        std::fs::write(
            out.join(format!("{seed:04}_degraded.png")),
            encode_png(&pair.degraded)?,
        )?;
        std::fs::write(out.join(format!("{seed:04}.txt")), &pair.text)?;
        std::fs::write(
            out.join(format!("{seed:04}.json")),
            serde_json::to_string_pretty(&serde_json::json!({
                "degradations": pair.applied,
                "elements": pair.elements,
                "fonts": pair.fonts_used,
            }))?,
        )?;
    }
    println!("wrote {count} pairs to {}", out.display());
    Ok(())
}
