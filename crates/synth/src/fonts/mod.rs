//! Loading fonts once and sharing them between rendering threads.
//!
//! Faces are grouped into families (every weight and slant a family ships,
//! light to black) and families into [`FontPack`]s (serif, sans, mono,
//! typewriter, condensed, handwriting) that `scripts/install-fonts.sh`
//! installs from Debian packages. A page picks its body family across packs
//! ([`FontLibrary::pick_body`]), so a system with many serif families still
//! sets a fair share of pages in sans, typewriter or condensed type.

mod packs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontArc, FontVec};
use fontdb::{Database, FaceInfo, Source, Stretch, Style};
use rand::Rng;

pub use packs::FontPack;
use packs::INSTALLER;

use crate::SynthError;

/// Families past this count are ignored; a few dozen already give plenty of
/// variety and keeping every font of a large system would waste memory. The
/// families of the font packs are loaded first, so the cap only ever drops
/// other system fonts.
const MAX_FAMILIES: usize = 64;
/// Faces kept per family; past it the weights furthest from text weights
/// (thin, black) go first. Twelve holds six weights in upright and italic.
const MAX_FACES_PER_FAMILY: usize = 12;
/// Font files above this size are pan-Unicode CJK collections, not useful for
/// Latin document pages and expensive to keep in memory.
const MAX_FONT_BYTES: usize = 32 << 20;
/// How much worse a face of the wrong slant is than one of the right slant,
/// in weight units: a bold italic request takes the bold upright face before
/// the regular italic one, a regular italic request takes the regular upright
/// face before a bold italic one.
const SLANT_PENALTY: u32 = 250;

/// One parsed font face with a stable id used as a glyph-cache key.
#[derive(Clone)]
pub(crate) struct Face {
    pub(crate) id: u32,
    /// Family and style, e.g. `Roboto Condensed Medium Italic`.
    pub(crate) name: String,
    /// CSS-style weight: 400 regular, 700 bold.
    pub(crate) weight: u16,
    pub(crate) italic: bool,
    pub(crate) font: FontArc,
}

/// The faces of one family: one per weight and slant it ships, at least one.
#[derive(Clone)]
pub(crate) struct FontFamily {
    pub(crate) name: String,
    /// Fixed pitch (by the font's own flag, or a mono or typewriter pack);
    /// pages pick fixed-pitch families by pack, tests check the flag.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) monospace: bool,
    pub(crate) pack: FontPack,
    /// Sorted by (italic, weight); never empty.
    faces: Vec<Face>,
}

impl FontFamily {
    /// The closest available face to regular (400) or bold (700) weight with
    /// the requested slant.
    #[cfg(test)]
    pub(crate) fn face(&self, bold: bool, italic: bool) -> &Face {
        self.face_weighted(if bold { 700 } else { 400 }, italic)
    }

    /// The face closest to `weight` (100 thin … 400 regular … 900 black)
    /// with the requested slant; a face of the other slant only serves when
    /// it is more than [`SLANT_PENALTY`] weight units closer.
    pub(crate) fn face_weighted(&self, weight: u16, italic: bool) -> &Face {
        let cost = |f: &Face| {
            let slant = if f.italic == italic { 0 } else { SLANT_PENALTY };
            u32::from(f.weight.abs_diff(weight)) + slant
        };
        // `load_family` never builds a family without faces.
        self.faces
            .iter()
            .min_by_key(|f| cost(f))
            .expect("a family has at least one face")
    }

    /// The distinct weights of the upright faces, ascending (of the italic
    /// ones for a family that only ships italics, like some scripts).
    pub(crate) fn weights(&self) -> Vec<u16> {
        let upright = self.faces.iter().any(|f| !f.italic);
        let mut weights: Vec<u16> = self
            .faces
            .iter()
            .filter(|f| !f.italic || !upright)
            .map(|f| f.weight)
            .collect();
        weights.dedup();
        weights
    }

    /// A weight for running text: usually the regular face, sometimes a
    /// light (300) or medium (500) one when the family has it.
    pub(crate) fn body_weight<R: Rng + ?Sized>(&self, rng: &mut R) -> u16 {
        let regular = self.face_weighted(400, false).weight;
        let others: Vec<u16> = self
            .weights()
            .into_iter()
            .filter(|&w| w != regular && (300..=500).contains(&w))
            .collect();
        if others.is_empty() || rng.random_bool(0.7) {
            regular
        } else {
            others[rng.random_range(0..others.len())]
        }
    }

    /// A weight for titles and headings: usually the bold face, sometimes a
    /// semibold, extra-bold or black one when the family has it.
    pub(crate) fn heading_weight<R: Rng + ?Sized>(&self, rng: &mut R) -> u16 {
        let bold = self.face_weighted(700, false).weight;
        let others: Vec<u16> = self
            .weights()
            .into_iter()
            .filter(|&w| w != bold && w >= 600)
            .collect();
        if others.is_empty() || rng.random_bool(0.6) {
            bold
        } else {
            others[rng.random_range(0..others.len())]
        }
    }
}

/// Every usable font family, parsed once; cheap to share across threads
/// (`Send + Sync`, faces are reference counted) and cheap to clone.
#[derive(Clone)]
pub struct FontLibrary {
    /// Sorted by name; never empty.
    families: Vec<FontFamily>,
    /// Indices into `families` for every pack that has at least one family,
    /// in [`FontPack::ALL`] order.
    by_pack: Vec<(FontPack, Vec<usize>)>,
}

impl FontLibrary {
    /// Loads the fonts installed on this system.
    pub fn system() -> Result<Self, SynthError> {
        let mut db = Database::new();
        db.load_system_fonts();
        Self::from_database(&db).ok_or_else(|| {
            SynthError::NoFonts(format!(
                "no system font covers basic Latin text; install a font pack with {INSTALLER} \
                 (or at least apt-get install fonts-dejavu-core)"
            ))
        })
    }

    /// Loads every font file found (recursively) in `dirs`.
    pub fn from_dirs(dirs: &[PathBuf]) -> Result<Self, SynthError> {
        let mut db = Database::new();
        for dir in dirs {
            db.load_fonts_dir(dir);
        }
        Self::from_database(&db).ok_or_else(|| {
            let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            SynthError::NoFonts(format!(
                "no font covering basic Latin text in [{}]; add .ttf/.otf files such as DejaVu",
                list.join(", ")
            ))
        })
    }

    /// Names of the loaded families, sorted.
    pub fn family_names(&self) -> Vec<String> {
        self.families.iter().map(|f| f.name.clone()).collect()
    }

    /// The packs this library has families of, in [`FontPack::ALL`] order,
    /// each with its loaded family names (sorted). Families outside the pack
    /// table are filed by their metadata (fixed pitch → mono, narrow →
    /// condensed) and name words, else as sans.
    pub fn packs(&self) -> Vec<(FontPack, Vec<String>)> {
        self.by_pack
            .iter()
            .map(|(pack, members)| {
                let names = members
                    .iter()
                    .map(|&i| self.families[i].name.clone())
                    .collect();
                (*pack, names)
            })
            .collect()
    }

    /// The pack of the loaded family `name` (ignoring case); `None` when no
    /// such family is loaded.
    pub fn family_pack(&self, name: &str) -> Option<FontPack> {
        self.position(name).map(|i| self.families[i].pack)
    }

    /// A library of only the requested families and packs. Each entry is a
    /// pack name (`serif`, `sans`, `mono`, `typewriter`, `condensed`,
    /// `handwriting`) or a family name, both ignoring case; a pack name wins
    /// over a family of the same name.
    ///
    /// Fails with [`SynthError::MissingFont`] on the first entry that matches
    /// nothing loaded; its message names the Debian package(s) that provide
    /// it and the `scripts/install-fonts.sh` command that installs them.
    pub fn subset<S: AsRef<str>>(&self, names: &[S]) -> Result<FontLibrary, SynthError> {
        if names.is_empty() {
            return Err(SynthError::NoFonts(format!(
                "the font selection is empty; name families or packs ({})",
                packs::pack_list()
            )));
        }
        let mut keep = vec![false; self.families.len()];
        for name in names {
            let name = name.as_ref().trim();
            if let Some(pack) = FontPack::from_name(name) {
                let members = self
                    .by_pack
                    .iter()
                    .find(|(p, _)| *p == pack)
                    .map(|(_, members)| members)
                    .ok_or_else(|| SynthError::MissingFont {
                        kind: "pack",
                        name: pack.name().to_owned(),
                        hint: packs::pack_hint(pack),
                    })?;
                for &i in members {
                    keep[i] = true;
                }
            } else if let Some(i) = self.position(name) {
                keep[i] = true;
            } else {
                return Err(SynthError::MissingFont {
                    kind: "family",
                    name: name.to_owned(),
                    hint: packs::family_hint(name, &self.family_names()),
                });
            }
        }
        let families = self
            .families
            .iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|(family, _)| family.clone())
            .collect();
        Ok(Self::new(families))
    }

    #[cfg(test)]
    pub(crate) fn families(&self) -> &[FontFamily] {
        &self.families
    }

    /// The family for running text and its weight: first a pack, by
    /// [`FontPack::body_share`] over the packs this library has, then a
    /// family of that pack uniformly. Picking the pack first keeps the mix
    /// of looks independent of how many families each pack happens to have.
    pub(crate) fn pick_body<R: Rng + ?Sized>(&self, rng: &mut R) -> (&FontFamily, u16) {
        let total: f64 = self.by_pack.iter().map(|(p, _)| p.body_share()).sum();
        let mut left = rng.random::<f64>() * total;
        // Rounding can leave `left` a hair above the last share: that is the
        // last pack. `by_pack` is never empty because `families` is not.
        let mut chosen = self.by_pack.len() - 1;
        for (i, (pack, _)) in self.by_pack.iter().enumerate() {
            if left < pack.body_share() {
                chosen = i;
                break;
            }
            left -= pack.body_share();
        }
        let members = &self.by_pack[chosen].1;
        let family = &self.families[members[rng.random_range(0..members.len())]];
        (family, family.body_weight(rng))
    }

    /// A family of one of `packs`, uniformly; `None` when the library has
    /// none (e.g. a monospaced family for a table).
    pub(crate) fn pick_in<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        packs: &[FontPack],
    ) -> Option<&FontFamily> {
        let members: Vec<&FontFamily> = self
            .families
            .iter()
            .filter(|f| packs.contains(&f.pack))
            .collect();
        (!members.is_empty()).then(|| members[rng.random_range(0..members.len())])
    }

    /// `families` must not be empty.
    fn new(mut families: Vec<FontFamily>) -> Self {
        families.sort_by(|a, b| a.name.cmp(&b.name));
        let by_pack = FontPack::ALL
            .into_iter()
            .map(|pack| {
                let members: Vec<usize> = families
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.pack == pack)
                    .map(|(i, _)| i)
                    .collect();
                (pack, members)
            })
            .filter(|(_, members)| !members.is_empty())
            .collect();
        Self { families, by_pack }
    }

    fn position(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        self.families
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    fn from_database(db: &Database) -> Option<Self> {
        // Group face metadata first so that only the chosen faces are parsed.
        let mut groups: BTreeMap<String, Vec<&FaceInfo>> = BTreeMap::new();
        for info in db.faces() {
            let Some((base, _)) = info.families.first() else {
                continue;
            };
            if packs::is_not_text(base) {
                continue;
            }
            let name = packs::family_name(base, info.stretch);
            groups.entry(name).or_default().push(info);
        }
        // The pack families first, so that MAX_FAMILIES never drops them.
        let (known, other): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .partition(|(name, _)| packs::known_family(name).is_some());
        let mut families = Vec::new();
        let mut next_id = 0u32;
        for (name, infos) in known.into_iter().chain(other) {
            if families.len() == MAX_FAMILIES {
                break;
            }
            if let Some(family) = load_family(db, name, infos, &mut next_id) {
                families.push(family);
            }
        }
        (!families.is_empty()).then(|| Self::new(families))
    }
}

/// Parses the faces of one family (one per weight and slant), or `None` when
/// none of them covers basic Latin.
fn load_family(
    db: &Database,
    name: String,
    mut infos: Vec<&FaceInfo>,
    next_id: &mut u32,
) -> Option<FontFamily> {
    // Directory traversal order is not stable; sort for determinism.
    infos.sort_by(|a, b| {
        (a.post_script_name.as_str(), source_path(a), a.index).cmp(&(
            b.post_script_name.as_str(),
            source_path(b),
            b.index,
        ))
    });
    let fixed_pitch = infos.iter().any(|i| i.monospaced);
    let narrow = infos.iter().all(|i| i.stretch < Stretch::Normal);
    // One face per (weight, slant): the first in that order (duplicates come
    // from optical sizes such as EB Garamond 08/12 or a font installed twice).
    let mut chosen: Vec<(u16, bool, &FaceInfo)> = Vec::new();
    for info in infos {
        let weight = effective_weight(info.weight.0, &info.post_script_name, source_path(info));
        let italic = info.style != Style::Normal;
        if !chosen.iter().any(|&(w, i, _)| (w, i) == (weight, italic)) {
            chosen.push((weight, italic, info));
        }
    }
    chosen.sort_by_key(|&(weight, italic, _)| (off_text_weights(weight), italic, weight));
    let mut faces = Vec::new();
    for (weight, italic, info) in chosen {
        if faces.len() == MAX_FACES_PER_FAMILY {
            break;
        }
        let Some(font) = load_face(db, info) else {
            continue;
        };
        *next_id += 1;
        faces.push(Face {
            id: *next_id,
            name: format!("{name} {}", style_name(weight, italic)),
            weight,
            italic,
            font,
        });
    }
    if faces.is_empty() {
        return None;
    }
    faces.sort_by_key(|f| (f.italic, f.weight));
    let pack = packs::classify(&name, fixed_pitch, narrow);
    Some(FontFamily {
        name,
        monospace: fixed_pitch || matches!(pack, FontPack::Mono | FontPack::Typewriter),
        pack,
        faces,
    })
}

fn source_path(info: &FaceInfo) -> Option<&Path> {
    match &info.source {
        Source::File(path) | Source::SharedFile(path, _) => Some(path.as_path()),
        Source::Binary(_) => None,
    }
}

/// The OS/2 weight, unless it is below semibold while the PostScript or file
/// name says bold: Debian's Courier Prime gives all four files weight 300,
/// which would make the bold face indistinguishable from the regular one.
fn effective_weight(weight: u16, post_script_name: &str, path: Option<&Path>) -> u16 {
    if weight >= 600 {
        return weight;
    }
    let says_bold = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("bold") && !s.contains("semibold") && !s.contains("demibold")
    };
    let stem = path
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if says_bold(post_script_name) || says_bold(stem) {
        700
    } else {
        weight
    }
}

/// How far a weight lies outside the usual text weights 400..=700.
fn off_text_weights(weight: u16) -> u16 {
    if weight < 400 {
        400 - weight
    } else {
        weight.saturating_sub(700)
    }
}

/// `Light`, `Regular`, `Bold Italic`, ... by the usual weight names.
fn style_name(weight: u16, italic: bool) -> String {
    let name = match weight {
        0..=150 => "Thin",
        151..=250 => "ExtraLight",
        251..=350 => "Light",
        351..=450 => "Regular",
        451..=550 => "Medium",
        551..=650 => "SemiBold",
        651..=750 => "Bold",
        751..=850 => "ExtraBold",
        _ => "Black",
    };
    match (name, italic) {
        ("Regular", true) => "Italic".to_owned(),
        (name, true) => format!("{name} Italic"),
        (name, false) => name.to_owned(),
    }
}

fn load_face(db: &Database, info: &FaceInfo) -> Option<FontArc> {
    let font = db
        .with_face_data(info.id, |data, index| {
            if data.len() > MAX_FONT_BYTES {
                return None;
            }
            FontVec::try_from_vec_and_index(data.to_vec(), index).ok()
        })
        .flatten()?;
    covers_latin(&font).then(|| FontArc::new(font))
}

/// Symbol and non-Latin fonts would draw boxes for our English corpus.
fn covers_latin(font: &FontVec) -> bool {
    ('!'..='~').all(|c| font.glyph_id(c).0 != 0) && font.glyph_id(' ').0 != 0
}

#[cfg(test)]
mod tests;
