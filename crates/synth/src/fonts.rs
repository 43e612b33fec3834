//! Loading fonts once and sharing them between rendering threads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ab_glyph::{Font, FontArc, FontVec};
use fontdb::{Database, FaceInfo, Stretch, Style};

use crate::SynthError;

/// Families past this count are ignored; a few dozen already give plenty of
/// variety and keeping every font of a large system would waste memory.
const MAX_FAMILIES: usize = 48;
/// Font files above this size are pan-Unicode CJK collections, not useful for
/// Latin document pages and expensive to keep in memory.
const MAX_FONT_BYTES: usize = 32 << 20;

/// One parsed font face with a stable id used as a glyph-cache key.
pub(crate) struct Face {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) font: FontArc,
}

/// The faces of one family; `regular` always exists, the others may not.
pub(crate) struct FontFamily {
    pub(crate) name: String,
    pub(crate) monospace: bool,
    regular: Face,
    bold: Option<Face>,
    italic: Option<Face>,
    bold_italic: Option<Face>,
}

impl FontFamily {
    /// The closest available face to the requested weight and slant.
    pub(crate) fn face(&self, bold: bool, italic: bool) -> &Face {
        let wanted = match (bold, italic) {
            (false, false) => None,
            (true, false) => self.bold.as_ref(),
            (false, true) => self.italic.as_ref(),
            (true, true) => self
                .bold_italic
                .as_ref()
                .or(self.bold.as_ref())
                .or(self.italic.as_ref()),
        };
        wanted.unwrap_or(&self.regular)
    }
}

/// Every usable font family, parsed once; cheap to share across threads
/// (`Send + Sync`, faces are reference counted).
pub struct FontLibrary {
    families: Vec<FontFamily>,
}

impl FontLibrary {
    /// Loads the fonts installed on this system.
    pub fn system() -> Result<Self, SynthError> {
        let mut db = Database::new();
        db.load_system_fonts();
        Self::from_database(&db).ok_or_else(|| {
            SynthError::NoFonts(
                "no system font covers basic Latin text; install a font package such as \
                 fonts-dejavu (apt-get install fonts-dejavu-core)"
                    .into(),
            )
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

    pub(crate) fn families(&self) -> &[FontFamily] {
        &self.families
    }

    fn from_database(db: &Database) -> Option<Self> {
        // Group face metadata first so that only the chosen faces are parsed.
        let mut groups: BTreeMap<String, Vec<&FaceInfo>> = BTreeMap::new();
        for info in db.faces() {
            let Some((base, _)) = info.families.first() else {
                continue;
            };
            let name = match info.stretch {
                Stretch::Normal => base.clone(),
                s if s < Stretch::Normal => format!("{base} Condensed"),
                _ => format!("{base} Expanded"),
            };
            groups.entry(name).or_default().push(info);
        }
        let mut families = Vec::new();
        let mut next_id = 0u32;
        for (name, mut infos) in groups {
            if families.len() == MAX_FAMILIES {
                break;
            }
            // Directory traversal order is not stable; sort for determinism.
            infos.sort_by(|a, b| a.post_script_name.cmp(&b.post_script_name));
            let mut load = |bold: bool, italic: bool| {
                let info = pick(&infos, bold, italic)?;
                let font = load_face(db, info)?;
                let style = match (bold, italic) {
                    (false, false) => "Regular",
                    (true, false) => "Bold",
                    (false, true) => "Italic",
                    (true, true) => "Bold Italic",
                };
                next_id += 1;
                Some(Face {
                    id: next_id,
                    name: format!("{name} {style}"),
                    font,
                })
            };
            let Some(regular) = load(false, false) else {
                continue;
            };
            let bold = load(true, false);
            let italic = load(false, true);
            let bold_italic = load(true, true);
            let monospace = infos.iter().any(|i| i.monospaced);
            families.push(FontFamily {
                name,
                monospace,
                regular,
                bold,
                italic,
                bold_italic,
            });
        }
        (!families.is_empty()).then_some(Self { families })
    }
}

/// Chooses the face closest to regular (400) or bold (700) weight with the
/// requested slant; light and black weights only serve when nothing closer exists.
fn pick<'a>(infos: &[&'a FaceInfo], bold: bool, italic: bool) -> Option<&'a FaceInfo> {
    let target: i32 = if bold { 700 } else { 400 };
    infos
        .iter()
        .copied()
        .filter(|i| (i.style != Style::Normal) == italic)
        .filter(|i| (i.weight.0 >= 600) == bold)
        .min_by_key(|i| (i32::from(i.weight.0) - target).abs())
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
mod tests {
    use super::*;

    #[test]
    fn empty_directory_has_no_fonts() {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let err = FontLibrary::from_dirs(&[dir.path().to_path_buf()]).err();
        assert!(matches!(err, Some(SynthError::NoFonts(_))), "{err:?}");
    }

    #[test]
    fn library_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<FontLibrary>();
    }

    #[test]
    fn system_fonts_have_styles() {
        let lib = FontLibrary::system().expect("the build machines have DejaVu installed");
        assert!(!lib.family_names().is_empty());
        let fam = &lib.families()[0];
        assert!(fam.face(false, false).name.ends_with("Regular"));
        let ids: std::collections::HashSet<u32> = lib
            .families()
            .iter()
            .map(|f| f.face(true, false).id)
            .collect();
        assert_eq!(ids.len(), lib.families().len(), "face ids are unique");
    }
}
