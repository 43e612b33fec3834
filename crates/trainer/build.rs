//! Records the compiler version and the versions of the main crates this
//! binary was built with, for the environment section of training reports.

use std::path::PathBuf;
use std::process::Command;

const CRATES: [&str; 6] = [
    "candle-core",
    "candle-nn",
    "tonic",
    "sea-orm",
    "image",
    "tokio",
];

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RESTOREFLOW_RUSTC_VERSION={version}");
    // Versions come from the lock file the build used, never from memory.
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let lock = manifest.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut found = Vec::new();
    let mut name: Option<String> = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
            && CRATES.contains(&n.as_str())
            && !found.iter().any(|(f, _): &(String, String)| *f == n)
        {
            found.push((n, v.trim_matches('"').to_string()));
        }
    }
    let joined: Vec<String> = found.iter().map(|(n, v)| format!("{n}={v}")).collect();
    println!(
        "cargo:rustc-env=RESTOREFLOW_CRATE_VERSIONS={}",
        joined.join(",")
    );
}
