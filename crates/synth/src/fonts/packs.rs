//! Font packs: groups of font families with a common look, each installed
//! from Debian packages by `scripts/install-fonts.sh`.
//!
//! The table below is the single source of truth on the Rust side; the
//! installer script carries the same pack → packages lists (a unit test keeps
//! the two in step) and README.md documents them.

use std::fmt;

use fontdb::Stretch;

use FontPack::{Condensed, Handwriting, Mono, Sans, Serif, Typewriter};

/// The script that installs the packs' Debian packages (all packs, or the
/// packs named as arguments).
pub(crate) const INSTALLER: &str = "scripts/install-fonts.sh";

/// A group of font families with a common look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FontPack {
    /// Book and office serif faces (Times, Palatino, Garamond and friends).
    Serif,
    /// Sans-serif office and screen faces (Helvetica, Calibri, Roboto...).
    Sans,
    /// Monospaced programming and terminal faces.
    Mono,
    /// Courier-style typewriter faces.
    Typewriter,
    /// Condensed and narrow faces.
    Condensed,
    /// Handwriting and casual script faces.
    Handwriting,
}

impl FontPack {
    /// Every pack, in the order the installer and README list them.
    pub const ALL: [FontPack; 6] = [
        FontPack::Serif,
        FontPack::Sans,
        FontPack::Mono,
        FontPack::Typewriter,
        FontPack::Condensed,
        FontPack::Handwriting,
    ];

    /// The lowercase name used by the installer, the README and
    /// [`crate::FontLibrary::subset`].
    pub fn name(self) -> &'static str {
        match self {
            FontPack::Serif => "serif",
            FontPack::Sans => "sans",
            FontPack::Mono => "mono",
            FontPack::Typewriter => "typewriter",
            FontPack::Condensed => "condensed",
            FontPack::Handwriting => "handwriting",
        }
    }

    /// The pack called `name`, ignoring case.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The Debian packages that provide this pack's families, in table order
    /// without repeats.
    pub fn packages(self) -> Vec<&'static str> {
        let mut packages: Vec<&'static str> = Vec::new();
        for known in KNOWN_FAMILIES.iter().filter(|k| k.pack == self) {
            if !packages.contains(&known.package) {
                packages.push(known.package);
            }
        }
        packages
    }

    /// The families this pack provides once its packages are installed.
    pub fn families(self) -> Vec<&'static str> {
        KNOWN_FAMILIES
            .iter()
            .filter(|k| k.pack == self)
            .map(|k| k.name)
            .collect()
    }

    /// The share of pages whose body text is set in this pack (before
    /// renormalising over the packs a library actually has). Chosen by hand:
    /// real scans are mostly serif and sans, typewritten archives and
    /// condensed forms come next, handwritten notes are rare.
    pub(crate) fn body_share(self) -> f64 {
        match self {
            FontPack::Serif => 0.34,
            FontPack::Sans => 0.28,
            FontPack::Typewriter => 0.12,
            FontPack::Condensed => 0.12,
            FontPack::Mono => 0.08,
            FontPack::Handwriting => 0.06,
        }
    }
}

impl fmt::Display for FontPack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `serif, sans, ...` for messages.
pub(crate) fn pack_list() -> String {
    let names: Vec<&str> = FontPack::ALL.iter().map(|p| p.name()).collect();
    names.join(", ")
}

/// A family that a pack's Debian package is known to provide.
pub(crate) struct KnownFamily {
    /// The family name as this crate groups it (typographic family, plus
    /// ` Condensed` for narrow faces filed under the wide family's name).
    pub(crate) name: &'static str,
    pub(crate) pack: FontPack,
    /// The Debian (bookworm) package holding its font files.
    pub(crate) package: &'static str,
}

const fn known(name: &'static str, pack: FontPack, package: &'static str) -> KnownFamily {
    KnownFamily {
        name,
        pack,
        package,
    }
}

/// Every family of the packs, checked against `fc-list` with the packages
/// installed on Debian bookworm. Keep `scripts/install-fonts.sh` and the
/// README's font table in step with it.
pub(crate) const KNOWN_FAMILIES: &[KnownFamily] = &[
    // serif
    known("DejaVu Serif", Serif, "fonts-dejavu-core"),
    known("Liberation Serif", Serif, "fonts-liberation2"),
    known("Caladea", Serif, "fonts-crosextra-caladea"),
    known("EB Garamond", Serif, "fonts-ebgaramond"),
    known("Linux Libertine O", Serif, "fonts-linuxlibertine"),
    known("Linux Libertine Display O", Serif, "fonts-linuxlibertine"),
    known("Nimbus Roman", Serif, "fonts-urw-base35"),
    known("C059", Serif, "fonts-urw-base35"),
    known("P052", Serif, "fonts-urw-base35"),
    known("URW Bookman", Serif, "fonts-urw-base35"),
    // sans
    known("DejaVu Sans", Sans, "fonts-dejavu-core"),
    known("Liberation Sans", Sans, "fonts-liberation2"),
    known("Carlito", Sans, "fonts-crosextra-carlito"),
    known("Open Sans", Sans, "fonts-open-sans"),
    known("Roboto", Sans, "fonts-roboto-unhinted"),
    known("Linux Biolinum O", Sans, "fonts-linuxlibertine"),
    known("Nimbus Sans", Sans, "fonts-urw-base35"),
    known("URW Gothic", Sans, "fonts-urw-base35"),
    // mono
    known("DejaVu Sans Mono", Mono, "fonts-dejavu-core"),
    known("Liberation Mono", Mono, "fonts-liberation2"),
    known("Noto Mono", Mono, "fonts-noto-mono"),
    known("Noto Sans Mono", Mono, "fonts-noto-mono"),
    known("Inconsolata", Mono, "fonts-inconsolata"),
    known("Courier Prime Code", Mono, "fonts-courier-prime"),
    known("Linux Libertine Mono O", Mono, "fonts-linuxlibertine"),
    // typewriter
    known("Courier Prime", Typewriter, "fonts-courier-prime"),
    known("Courier Prime Sans", Typewriter, "fonts-courier-prime"),
    known("Nimbus Mono PS", Typewriter, "fonts-urw-base35"),
    known("Tlwg Typewriter", Typewriter, "fonts-tlwg-typewriter-ttf"),
    // condensed
    known("DejaVu Sans Condensed", Condensed, "fonts-dejavu-extra"),
    known("DejaVu Serif Condensed", Condensed, "fonts-dejavu-extra"),
    known("Nimbus Sans Narrow", Condensed, "fonts-urw-base35"),
    known("Roboto Condensed", Condensed, "fonts-roboto-unhinted"),
    known("Open Sans Condensed", Condensed, "fonts-open-sans"),
    // handwriting
    known("Dancing Script", Handwriting, "fonts-dancingscript"),
    known("Breip", Handwriting, "fonts-breip"),
    known("DkgHandwriting", Handwriting, "fonts-dkg-handwriting"),
    known("Humor Sans", Handwriting, "fonts-humor-sans"),
];

/// Families that the packs' packages install but that are no text faces
/// (symbols, dingbats, maths, keyboard keys, drop-cap initials, a chancery
/// used only for display); they are never loaded.
const NOT_TEXT: &[&str] = &[
    "DejaVu Math TeX Gyre",
    "Standard Symbols PS",
    "D050000L",
    "Linux Biolinum Keyboard O",
    "Linux Libertine Initials O",
    "Z003",
];

/// The table entry for `name`, ignoring case.
pub(crate) fn known_family(name: &str) -> Option<&'static KnownFamily> {
    let name = name.trim();
    KNOWN_FAMILIES
        .iter()
        .find(|k| k.name.eq_ignore_ascii_case(name))
}

/// Whether `name` is a family that should never be loaded.
pub(crate) fn is_not_text(name: &str) -> bool {
    NOT_TEXT.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Words in a family name that mark a narrow design.
const CONDENSED_WORDS: &[&str] = &[
    "condensed",
    "narrow",
    "compressed",
    "cond",
    "cn",
    "semicondensed",
    "extracondensed",
];
/// Words in a family name that mark a wide design.
const EXPANDED_WORDS: &[&str] = &["expanded", "extended", "wide", "semiexpanded"];

fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn has_word(name: &str, list: &[&str]) -> bool {
    words(name).any(|w| list.contains(&w.as_str()))
}

/// The name this crate files a face under: its typographic family, plus
/// ` Condensed` / ` Expanded` when the face is narrower or wider than normal
/// and the family name does not say so already (`DejaVu Sans` condensed faces
/// become `DejaVu Sans Condensed`, `Nimbus Sans Narrow` stays as it is).
pub(crate) fn family_name(base: &str, stretch: Stretch) -> String {
    if stretch < Stretch::Normal && !has_word(base, CONDENSED_WORDS) {
        format!("{base} Condensed")
    } else if stretch > Stretch::Normal && !has_word(base, EXPANDED_WORDS) {
        format!("{base} Expanded")
    } else {
        base.to_owned()
    }
}

/// The pack of a family: the table for known names, otherwise a guess from
/// the name's words and the font's metadata (fixed pitch, width class).
/// Fonts do not say whether they have serifs, so an unmarked family counts
/// as sans, the more common design among system fonts.
pub(crate) fn classify(name: &str, monospaced: bool, condensed: bool) -> FontPack {
    if let Some(known) = known_family(name) {
        return known.pack;
    }
    let any = |list: &[&str]| has_word(name, list);
    if any(&["typewriter", "courier"]) {
        FontPack::Typewriter
    } else if monospaced || words(name).any(|w| w.starts_with("mono")) || any(&["code", "console"])
    {
        FontPack::Mono
    } else if condensed || any(CONDENSED_WORDS) {
        FontPack::Condensed
    } else if any(&[
        "script",
        "hand",
        "handwriting",
        "handwritten",
        "brush",
        "marker",
    ]) {
        FontPack::Handwriting
    } else if any(&["sans", "gothic", "grotesk", "grotesque"]) {
        FontPack::Sans
    } else if any(&["serif", "roman", "garamond", "times", "antiqua", "oldstyle"]) {
        FontPack::Serif
    } else {
        FontPack::Sans
    }
}

/// Why a family is missing and how to get it, for [`crate::SynthError::MissingFont`].
pub(crate) fn family_hint(name: &str, loaded: &[String]) -> String {
    match known_family(name) {
        Some(k) => format!(
            "it comes with the Debian package {} (pack `{}`): run {INSTALLER} {}",
            k.package, k.pack, k.pack
        ),
        None => format!(
            "no font pack provides it; loaded families: {}; packs: {} (install with {INSTALLER} [PACK...])",
            loaded.join(", "),
            pack_list()
        ),
    }
}

/// How to install a pack, for [`crate::SynthError::MissingFont`].
pub(crate) fn pack_hint(pack: FontPack) -> String {
    format!(
        "none of its families ({}) is loaded; install its Debian packages ({}) with {INSTALLER} {}",
        pack.families().join(", "),
        pack.packages().join(" "),
        pack
    )
}
