//! Writes a few clean/degraded pairs with their ground truth to a folder,
//! for eyeballing layouts and degradations.
//!
//! `cargo run -p restoreflow-synth --release --example sample_pairs -- OUT_DIR [PRESET|FAMILY] [COUNT] [as_printed|digital]`

use std::error::Error;
use std::path::PathBuf;

use restoreflow_synth::{Family, FontLibrary, Pipeline, Target, encode_png, generate_pair};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: sample_pairs OUT_DIR [PRESET|FAMILY] [COUNT] [TARGET]")?,
    );
    let which = args.next().unwrap_or_else(|| "mixed".into());
    let count: u64 = args.next().map(|c| c.parse()).transpose()?.unwrap_or(4);
    let target: Target = args.next().unwrap_or_default().parse()?;
    let pipeline = match Pipeline::preset(&which) {
        Ok(p) => p,
        Err(_) => Pipeline::single(which.parse::<Family>()?),
    };
    let fonts = FontLibrary::system()?;
    std::fs::create_dir_all(&out)?;
    for seed in 0..count {
        let pair = generate_pair(&fonts, &pipeline, 640, 832, seed, target)?;
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
            serde_json::to_string_pretty(&pair.applied)?,
        )?;
    }
    println!("wrote {count} pairs to {}", out.display());
    Ok(())
}
