//! A local folder of clean/degraded pairs, checked before anything is
//! uploaded: every clean image has a degraded twin of the same size and
//! both are readable PNG or JPEG; an optional UTF-8 `.txt` beside a pair is
//! its ground-truth text.
//!
//! Two layouts are accepted:
//! - flat: `NNN_clean.png`, `NNN_degraded.png` and optionally `NNN.txt`;
//! - subfolders: `clean/NAME.png` and `degraded/NAME.png` with matching
//!   names, and optionally `text/NAME.txt` (or `NAME.txt` at the top).
//!
//! Other files (a README, hidden files) are left alone and reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ToolError;

/// Extensions of the images a pair may hold (the services read PNG and JPEG).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Problems listed in one refusal before the rest are summarised.
const MAX_LISTED: usize = 20;

/// One pair in a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalPair {
    /// The pair's name in the folder: `000` for `000_clean.png`, `a` for `clean/a.png`.
    pub stem: String,
    /// The clean image.
    pub clean: PathBuf,
    /// The degraded image.
    pub degraded: PathBuf,
    /// Its ground-truth text, if there is one.
    pub text: Option<PathBuf>,
    /// Extension of the degraded image, lowercase (names the stored pair).
    pub extension: String,
    /// Width and height of both images.
    pub size: (u32, u32),
}

/// How a folder lays its pairs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `NNN_clean.png` + `NNN_degraded.png` (+ `NNN.txt`).
    Flat,
    /// `clean/` + `degraded/` (+ `text/`).
    Subfolders,
}

/// A checked folder of pairs.
#[derive(Debug, Clone)]
pub struct PairFolder {
    /// Which layout it uses.
    pub layout: Layout,
    /// The pairs, in name order.
    pub pairs: Vec<LocalPair>,
    /// Files left alone (not part of a pair), for the user to see.
    pub ignored: Vec<String>,
}

impl PairFolder {
    /// Pairs with a ground-truth text.
    pub fn with_text(&self) -> usize {
        self.pairs.iter().filter(|p| p.text.is_some()).count()
    }
}

/// Which side of a pair a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Clean,
    Degraded,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Clean => "clean",
            Side::Degraded => "degraded",
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Clean => Side::Degraded,
            Side::Degraded => Side::Clean,
        }
    }
}

/// What the scan collects before matching.
#[derive(Default)]
struct Found {
    images: BTreeMap<(String, Side), (PathBuf, String)>,
    texts: BTreeMap<String, PathBuf>,
    ignored: Vec<String>,
    problems: Vec<String>,
}

impl Found {
    fn image(&mut self, side: Side, stem: &str, ext: &str, path: PathBuf) {
        if !IMAGE_EXTENSIONS.contains(&ext) {
            self.problems.push(format!(
                "{}: not an image (expected .png, .jpg or .jpeg)",
                path.display()
            ));
            return;
        }
        let key = (stem.to_string(), side);
        if let Some((first, _)) = self.images.get(&key) {
            self.problems.push(format!(
                "two {} images for {stem}: {} and {}",
                side.name(),
                first.display(),
                path.display()
            ));
            return;
        }
        self.images.insert(key, (path, ext.to_string()));
    }

    fn text(&mut self, stem: &str, path: PathBuf) {
        if let Some(first) = self.texts.get(stem) {
            self.problems.push(format!(
                "two texts for {stem}: {} and {}",
                first.display(),
                path.display()
            ));
            return;
        }
        self.texts.insert(stem.to_string(), path);
    }
}

/// Scans and checks `dir`; refuses, listing every problem, when a clean or
/// degraded image has no twin, when twins differ in size, or when a pair
/// file is not a readable PNG or JPEG, or a text is not UTF-8.
pub fn scan_folder(dir: &Path) -> Result<PairFolder, ToolError> {
    let entries = files(dir)?;
    let clean_dir = dir.join("clean");
    let degraded_dir = dir.join("degraded");
    let mut found = Found::default();
    let layout = if clean_dir.is_dir() || degraded_dir.is_dir() {
        for (side, sub) in [(Side::Clean, &clean_dir), (Side::Degraded, &degraded_dir)] {
            if !sub.is_dir() {
                return Err(ToolError::Invalid(format!(
                    "{} has {}/ but no {}/: the subfolder layout needs both",
                    dir.display(),
                    side.other().name(),
                    side.name()
                )));
            }
            for (file, path) in files(sub)? {
                let (stem, ext) = split_extension(&file);
                found.image(side, stem, &ext, path);
            }
        }
        let text_dir = dir.join("text");
        let mut texts = entries;
        if text_dir.is_dir() {
            texts.extend(files(&text_dir)?);
        }
        for (file, path) in texts {
            match split_extension(&file) {
                (stem, ext) if ext == "txt" => found.text(stem, path),
                _ => found.ignored.push(path.display().to_string()),
            }
        }
        Layout::Subfolders
    } else {
        for (file, path) in entries {
            let (base, ext) = split_extension(&file);
            if let Some(stem) = base.strip_suffix("_clean") {
                found.image(Side::Clean, stem, &ext, path);
            } else if let Some(stem) = base.strip_suffix("_degraded") {
                found.image(Side::Degraded, stem, &ext, path);
            } else if ext == "txt" {
                found.text(base, path);
            } else {
                found.ignored.push(path.display().to_string());
            }
        }
        Layout::Flat
    };
    match_pairs(dir, layout, found)
}

fn match_pairs(dir: &Path, layout: Layout, mut found: Found) -> Result<PairFolder, ToolError> {
    let mut pairs = Vec::new();
    let stems: Vec<String> = found
        .images
        .keys()
        .map(|(stem, _)| stem.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for stem in stems {
        let clean = found.images.get(&(stem.clone(), Side::Clean)).cloned();
        let degraded = found.images.get(&(stem.clone(), Side::Degraded)).cloned();
        let ((clean, _), (degraded, extension)) = match (clean, degraded) {
            (Some(c), Some(d)) => (c, d),
            (Some((path, _)), None) => {
                found
                    .problems
                    .push(format!("{}: no degraded twin for {stem}", path.display()));
                continue;
            }
            (None, Some((path, _))) => {
                found
                    .problems
                    .push(format!("{}: no clean twin for {stem}", path.display()));
                continue;
            }
            (None, None) => continue,
        };
        let dims = |p: &Path| {
            image::ImageReader::open(p)
                .and_then(|r| r.with_guessed_format())
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    if r.format().is_none() {
                        return Err("not an image".to_string());
                    }
                    r.into_dimensions().map_err(|e| e.to_string())
                })
                .map_err(|e| format!("{}: not a readable PNG or JPEG image ({e})", p.display()))
        };
        let (c, d) = match (dims(&clean), dims(&degraded)) {
            (Ok(c), Ok(d)) => (c, d),
            (c, d) => {
                found
                    .problems
                    .extend([c.err(), d.err()].into_iter().flatten());
                continue;
            }
        };
        if c != d {
            found.problems.push(format!(
                "{stem}: clean is {}x{} but degraded is {}x{}",
                c.0, c.1, d.0, d.1
            ));
            continue;
        }
        let text = found.texts.remove(&stem);
        if let Some(t) = &text {
            match std::fs::read(t) {
                Err(e) => found
                    .problems
                    .push(format!("{}: cannot read the text ({e})", t.display())),
                Ok(bytes) if std::str::from_utf8(&bytes).is_err() => found
                    .problems
                    .push(format!("{}: the text is not UTF-8", t.display())),
                Ok(_) => {}
            }
        }
        pairs.push(LocalPair {
            stem,
            clean,
            degraded,
            text,
            extension,
            size: c,
        });
    }
    for path in found.texts.into_values() {
        found
            .ignored
            .push(format!("{} (a text without a pair)", path.display()));
    }
    if !found.problems.is_empty() {
        let n = found.problems.len();
        let mut msg = format!(
            "{} is not a folder of clean/degraded pairs ({n} problem{}):",
            dir.display(),
            if n == 1 { "" } else { "s" }
        );
        for p in found.problems.iter().take(MAX_LISTED) {
            msg.push_str("\n  - ");
            msg.push_str(p);
        }
        if n > MAX_LISTED {
            msg.push_str(&format!("\n  … and {} more", n - MAX_LISTED));
        }
        return Err(ToolError::Invalid(msg));
    }
    if pairs.is_empty() {
        return Err(ToolError::Invalid(format!(
            "no pairs in {}: expected NNN_clean.png + NNN_degraded.png (+ NNN.txt), \
             or clean/ and degraded/ subfolders with matching names (+ text/NAME.txt)",
            dir.display()
        )));
    }
    found.ignored.sort();
    Ok(PairFolder {
        layout,
        pairs,
        ignored: found.ignored,
    })
}

/// `a.b.PNG` -> (`a.b`, `png`); no extension -> (name, ``).
fn split_extension(file: &str) -> (&str, String) {
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext.to_ascii_lowercase()),
        _ => (file, String::new()),
    }
}

/// The regular files directly in `dir` (hidden ones skipped), by name.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, ToolError> {
    let read = std::fs::read_dir(dir).map_err(|e| {
        ToolError::Invalid(format!("cannot read the folder {}: {e}", dir.display()))
    })?;
    let mut out = Vec::new();
    for entry in read {
        let entry =
            entry.map_err(|e| ToolError::Other(format!("cannot read {}: {e}", dir.display())))?;
        let path = entry.path();
        // `metadata` follows links, so a linked image counts as a file.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(ToolError::Invalid(format!(
                "{}: file names must be UTF-8",
                path.display()
            )));
        };
        if name.starts_with('.') {
            continue;
        }
        if name.chars().any(char::is_control) {
            return Err(ToolError::Invalid(format!(
                "{}: file names must not contain control characters",
                path.display()
            )));
        }
        out.push((name, path));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn png(dir: &Path, name: &str, w: u32, h: u32) {
        RgbImage::from_pixel(w, h, Rgb([200, 10, 10]))
            .save(dir.join(name))
            .unwrap();
    }

    fn write(dir: &Path, name: &str, body: &[u8]) {
        std::fs::write(dir.join(name), body).unwrap();
    }

    fn refusal(dir: &Path) -> String {
        match scan_folder(dir) {
            Err(ToolError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn flat_folders_pair_up_with_their_texts() {
        let d = tempfile::tempdir().unwrap();
        for i in ["000", "001"] {
            png(d.path(), &format!("{i}_clean.png"), 40, 30);
            png(d.path(), &format!("{i}_degraded.png"), 40, 30);
        }
        write(d.path(), "000.txt", b"hello world");
        write(d.path(), "README.md", b"# a set");
        write(d.path(), ".hidden", b"x");
        let f = scan_folder(d.path()).unwrap();
        assert_eq!(f.layout, Layout::Flat);
        let stems: Vec<&str> = f.pairs.iter().map(|p| p.stem.as_str()).collect();
        assert_eq!(stems, ["000", "001"]);
        assert_eq!(f.pairs[0].text, Some(d.path().join("000.txt")));
        assert_eq!(f.pairs[1].text, None);
        assert_eq!(f.pairs[0].size, (40, 30));
        assert_eq!(f.pairs[0].extension, "png");
        assert_eq!(f.with_text(), 1);
        assert_eq!(f.ignored.len(), 1, "{:?}", f.ignored);
        assert!(f.ignored[0].ends_with("README.md"));
    }

    #[test]
    fn subfolders_pair_up_by_name() {
        let d = tempfile::tempdir().unwrap();
        for sub in ["clean", "degraded", "text"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        png(&d.path().join("clean"), "a.png", 32, 32);
        png(&d.path().join("degraded"), "a.png", 32, 32);
        png(&d.path().join("clean"), "b.png", 16, 8);
        png(&d.path().join("degraded"), "b.jpg", 16, 8);
        write(&d.path().join("text"), "a.txt", b"page a");
        write(d.path(), "b.txt", b"page b");
        let f = scan_folder(d.path()).unwrap();
        assert_eq!(f.layout, Layout::Subfolders);
        assert_eq!(f.pairs.len(), 2);
        assert_eq!(f.with_text(), 2);
        assert_eq!(f.pairs[1].extension, "jpg");
    }

    #[test]
    fn missing_twins_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        png(d.path(), "000_clean.png", 40, 30);
        png(d.path(), "000_degraded.png", 40, 30);
        png(d.path(), "001_clean.png", 40, 30);
        png(d.path(), "002_degraded.png", 40, 30);
        let m = refusal(d.path());
        assert!(m.contains("2 problems"), "{m}");
        assert!(m.contains("001_clean.png: no degraded twin for 001"), "{m}");
        assert!(m.contains("002_degraded.png: no clean twin for 002"), "{m}");
    }

    #[test]
    fn mismatched_sizes_and_non_images_are_refused() {
        let d = tempfile::tempdir().unwrap();
        png(d.path(), "000_clean.png", 40, 30);
        png(d.path(), "000_degraded.png", 40, 31);
        write(d.path(), "001_clean.png", b"not a png at all");
        png(d.path(), "001_degraded.png", 40, 30);
        write(d.path(), "002_clean.tiff", b"II*\0");
        png(d.path(), "002_degraded.png", 40, 30);
        write(d.path(), "003_clean.png", b"");
        write(d.path(), "003_degraded.png", b"");
        let m = refusal(d.path());
        assert!(
            m.contains("000: clean is 40x30 but degraded is 40x31"),
            "{m}"
        );
        assert!(
            m.contains("001_clean.png: not a readable PNG or JPEG image"),
            "{m}"
        );
        assert!(m.contains("002_clean.tiff: not an image"), "{m}");
        assert!(m.contains("003_degraded.png: not a readable"), "{m}");
    }

    #[test]
    fn texts_must_be_utf8_and_empty_folders_say_what_is_expected() {
        let d = tempfile::tempdir().unwrap();
        png(d.path(), "000_clean.png", 8, 8);
        png(d.path(), "000_degraded.png", 8, 8);
        write(d.path(), "000.txt", &[0xff, 0xfe, 0x00]);
        assert!(refusal(d.path()).contains("000.txt: the text is not UTF-8"));
        let empty = tempfile::tempdir().unwrap();
        write(empty.path(), "notes.md", b"nothing here");
        assert!(refusal(empty.path()).contains("NNN_clean.png"));
        let half = tempfile::tempdir().unwrap();
        std::fs::create_dir(half.path().join("clean")).unwrap();
        assert!(refusal(half.path()).contains("no degraded/"));
        assert!(refusal(&half.path().join("missing")).contains("cannot read the folder"));
    }
}
