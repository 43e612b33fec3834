//! Tests that hold on a machine with only DejaVu (fonts-dejavu-core) as well
//! as with every font pack installed: pack-dependent checks either find the
//! family or assert the error that names its package.

use std::collections::{BTreeMap, HashSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::packs::{KNOWN_FAMILIES, classify, family_name, is_not_text, known_family};
use super::*;

fn system() -> FontLibrary {
    FontLibrary::system().expect("the build machines have DejaVu installed")
}

/// The three DejaVu families every build machine has, whatever else is
/// installed, so that "not installed" cases are certain.
fn dejavu() -> FontLibrary {
    system()
        .subset(&["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"])
        .expect("DejaVu Sans, Serif and Sans Mono are installed")
}

fn family<'a>(lib: &'a FontLibrary, name: &str) -> &'a FontFamily {
    let i = lib.position(name).expect("family is loaded");
    &lib.families()[i]
}

/// A family of made-up weights that all draw with DejaVu Sans outlines.
fn fake_family(font: &FontArc, name: &str, pack: FontPack, styles: &[(u16, bool)]) -> FontFamily {
    let mut faces: Vec<Face> = styles
        .iter()
        .enumerate()
        .map(|(i, &(weight, italic))| Face {
            id: 10_000 + i as u32,
            name: format!("{name} {}", style_name(weight, italic)),
            weight,
            italic,
            font: font.clone(),
        })
        .collect();
    faces.sort_by_key(|f| (f.italic, f.weight));
    FontFamily {
        name: name.to_owned(),
        monospace: false,
        pack,
        faces,
    }
}

fn dejavu_font() -> FontArc {
    family(&system(), "DejaVu Sans")
        .face(false, false)
        .font
        .clone()
}

fn missing(err: SynthError) -> (&'static str, String, String) {
    let message = err.to_string();
    match err {
        SynthError::MissingFont { kind, name, .. } => (kind, name, message),
        other => panic!("expected MissingFont, got {other:?}"),
    }
}

#[test]
fn empty_directory_has_no_fonts() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let err = FontLibrary::from_dirs(&[dir.path().to_path_buf()]).err();
    assert!(matches!(err, Some(SynthError::NoFonts(_))), "{err:?}");
}

#[test]
fn library_is_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<FontLibrary>();
}

#[test]
fn system_fonts_have_styles() {
    let lib = system();
    let sans = family(&lib, "DejaVu Sans");
    let regular = sans.face(false, false);
    assert_eq!(regular.name, "DejaVu Sans Regular");
    assert_eq!((regular.weight, regular.italic), (400, false));
    let bold = sans.face(true, false);
    assert_eq!(bold.name, "DejaVu Sans Bold");
    assert_eq!(bold.weight, 700);
    let ids: Vec<u32> = lib
        .families()
        .iter()
        .flat_map(|f| f.faces.iter().map(|face| face.id))
        .collect();
    let unique: HashSet<u32> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "face ids are unique");
    for f in lib.families() {
        assert!(!f.faces.is_empty() && f.faces.len() <= MAX_FACES_PER_FAMILY);
        assert!(!is_not_text(&f.name), "{} is not a text face", f.name);
    }
}

#[test]
fn known_names_classify_into_their_packs() {
    for k in KNOWN_FAMILIES {
        assert_eq!(classify(k.name, false, false), k.pack, "{}", k.name);
        let shouted = k.name.to_uppercase();
        assert_eq!(classify(&shouted, true, true), k.pack, "{shouted}");
    }
    assert_eq!(classify("DejaVu Serif", false, false), FontPack::Serif);
    assert_eq!(classify("Liberation Sans", false, false), FontPack::Sans);
    assert_eq!(classify("DejaVu Sans Mono", true, false), FontPack::Mono);
    // Fixed pitch, but a typewriter face by the table.
    assert_eq!(
        classify("Nimbus Mono PS", true, false),
        FontPack::Typewriter
    );
    assert_eq!(
        classify("Roboto Condensed", false, false),
        FontPack::Condensed
    );
    assert_eq!(
        classify("Dancing Script", false, false),
        FontPack::Handwriting
    );
}

#[test]
fn unknown_names_classify_by_metadata_and_words() {
    assert_eq!(classify("Acme", true, false), FontPack::Mono);
    assert_eq!(classify("Acme", false, true), FontPack::Condensed);
    assert_eq!(classify("Acme Narrow", false, false), FontPack::Condensed);
    assert_eq!(
        classify("Acme Typewriter", true, false),
        FontPack::Typewriter
    );
    assert_eq!(classify("Acme Code Pro", false, false), FontPack::Mono);
    assert_eq!(classify("Acme Script", false, false), FontPack::Handwriting);
    assert_eq!(classify("Acme Serif Pro", false, false), FontPack::Serif);
    assert_eq!(classify("Acme Sans Serif", false, false), FontPack::Sans);
    // "Encode" contains "code" but is no code font.
    assert_eq!(classify("Encode Sans", false, false), FontPack::Sans);
    assert_eq!(classify("Acme", false, false), FontPack::Sans);
}

#[test]
fn narrow_faces_get_one_condensed_suffix() {
    assert_eq!(
        family_name("DejaVu Sans", Stretch::SemiCondensed),
        "DejaVu Sans Condensed"
    );
    assert_eq!(
        family_name("Open Sans", Stretch::Condensed),
        "Open Sans Condensed"
    );
    assert_eq!(
        family_name("Open Sans Condensed", Stretch::Condensed),
        "Open Sans Condensed"
    );
    assert_eq!(
        family_name("Nimbus Sans Narrow", Stretch::SemiCondensed),
        "Nimbus Sans Narrow"
    );
    assert_eq!(family_name("Acme", Stretch::Expanded), "Acme Expanded");
    assert_eq!(family_name("Acme", Stretch::Normal), "Acme");
}

#[test]
fn pack_names_parse_ignoring_case() {
    assert_eq!(FontPack::from_name("Serif"), Some(FontPack::Serif));
    assert_eq!(
        FontPack::from_name(" TYPEWRITER "),
        Some(FontPack::Typewriter)
    );
    assert_eq!(FontPack::from_name("cursive"), None);
    for pack in FontPack::ALL {
        assert_eq!(FontPack::from_name(&pack.to_string()), Some(pack));
    }
}

#[test]
fn every_pack_has_packages_and_families() {
    let mut names = HashSet::new();
    for k in KNOWN_FAMILIES {
        assert!(
            names.insert(k.name.to_lowercase()),
            "{} listed twice",
            k.name
        );
        assert!(k.package.starts_with("fonts-"), "{}", k.package);
        assert!(!is_not_text(k.name), "{}", k.name);
    }
    for pack in FontPack::ALL {
        assert!(!pack.packages().is_empty(), "{pack}");
        assert!(!pack.families().is_empty(), "{pack}");
        assert!(pack.body_share() > 0.0, "{pack}");
    }
    let total: f64 = FontPack::ALL.iter().map(|p| p.body_share()).sum();
    assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
    // The cap must never drop a pack family (they are loaded first).
    assert!(KNOWN_FAMILIES.len() < MAX_FAMILIES);
    for (name, pack) in [
        ("DejaVu Serif", FontPack::Serif),
        ("DejaVu Sans", FontPack::Sans),
        ("DejaVu Sans Mono", FontPack::Mono),
    ] {
        let k = known_family(name).expect("DejaVu is in the table");
        assert_eq!((k.pack, k.package), (pack, "fonts-dejavu-core"));
    }
}

#[test]
fn installer_script_lists_the_same_packages() {
    let script = include_str!("../../../../scripts/install-fonts.sh");
    let mut listed = BTreeMap::new();
    for line in script.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((pack, packages)) = rest.split_once("]=") else {
            continue;
        };
        if !pack.chars().all(|c| c.is_ascii_lowercase()) {
            continue;
        }
        let packages: Vec<&str> = packages.trim_matches('"').split_whitespace().collect();
        listed.insert(pack, packages);
    }
    assert_eq!(listed.len(), FontPack::ALL.len(), "{listed:?}");
    for pack in FontPack::ALL {
        assert_eq!(
            listed.get(pack.name()),
            Some(&pack.packages()),
            "pack {pack}"
        );
    }
}

#[test]
fn dejavu_families_are_in_their_packs() {
    let lib = system();
    assert_eq!(lib.family_pack("DejaVu Serif"), Some(FontPack::Serif));
    assert_eq!(lib.family_pack("dejavu sans"), Some(FontPack::Sans));
    assert_eq!(lib.family_pack("DEJAVU SANS MONO"), Some(FontPack::Mono));
    assert_eq!(lib.family_pack("No Such Font"), None);
    assert!(family(&lib, "DejaVu Sans Mono").monospace);
    let packs = lib.packs();
    let mut seen = Vec::new();
    for (pack, names) in &packs {
        assert!(!names.is_empty(), "{pack}");
        for name in names {
            assert_eq!(lib.family_pack(name), Some(*pack), "{name}");
            seen.push(name.clone());
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        lib.family_names(),
        "every family is in exactly one pack"
    );
    for pack in [FontPack::Serif, FontPack::Sans, FontPack::Mono] {
        assert!(packs.iter().any(|(p, _)| *p == pack), "{pack}");
    }
}

#[test]
fn subset_by_pack_keeps_the_whole_pack() {
    let lib = system();
    for (pack, names) in lib.packs() {
        let sub = lib
            .subset(&[pack.name().to_uppercase()])
            .expect("pack is loaded");
        assert_eq!(sub.family_names(), names, "{pack}");
        assert_eq!(sub.packs(), vec![(pack, names.clone())]);
    }
    let mono = lib.subset(&["mono"]).expect("DejaVu Sans Mono is loaded");
    assert!(mono.families().iter().all(|f| f.monospace));
}

#[test]
fn subset_by_family_ignores_case_and_mixes_with_packs() {
    let lib = dejavu();
    assert_eq!(
        lib.family_names(),
        ["DejaVu Sans", "DejaVu Sans Mono", "DejaVu Serif"]
    );
    let sub = lib
        .subset(&["dejavu SERIF".to_owned(), "Mono".to_owned()])
        .expect("both are loaded");
    assert_eq!(sub.family_names(), ["DejaVu Sans Mono", "DejaVu Serif"]);
    let again = sub
        .subset(&["DejaVu Serif", "dejavu serif"])
        .expect("loaded");
    assert_eq!(again.family_names(), ["DejaVu Serif"]);
}

#[test]
fn missing_pack_names_its_packages_and_the_installer() {
    let (kind, name, message) = missing(
        dejavu()
            .subset(&["Typewriter"])
            .err()
            .expect("no typewriter"),
    );
    assert_eq!((kind, name.as_str()), ("pack", "typewriter"));
    for needle in [
        "fonts-courier-prime",
        "fonts-urw-base35",
        "fonts-tlwg-typewriter-ttf",
        "scripts/install-fonts.sh typewriter",
    ] {
        assert!(message.contains(needle), "{message}");
    }
    // On this machine every pack is either loaded or reported with its packages.
    let lib = system();
    for pack in FontPack::ALL {
        match lib.subset(&[pack.name()]) {
            Ok(sub) => assert!(sub.families().iter().all(|f| f.pack == pack)),
            Err(err) => {
                let (_, _, message) = missing(err);
                for package in pack.packages() {
                    assert!(message.contains(package), "{message}");
                }
            }
        }
    }
}

#[test]
fn missing_family_names_its_package_and_the_installer() {
    let (kind, name, message) = missing(dejavu().subset(&["Caladea"]).err().expect("no Caladea"));
    assert_eq!((kind, name.as_str()), ("family", "Caladea"));
    assert!(message.contains("fonts-crosextra-caladea"), "{message}");
    assert!(
        message.contains("scripts/install-fonts.sh serif"),
        "{message}"
    );
    let lib = system();
    for k in KNOWN_FAMILIES {
        match lib.subset(&[k.name]) {
            Ok(sub) => {
                assert_eq!(sub.family_names(), [k.name]);
                assert_eq!(sub.family_pack(k.name), Some(k.pack));
            }
            Err(err) => {
                let (_, _, message) = missing(err);
                assert!(message.contains(k.package), "{message}");
                assert!(message.contains(INSTALLER), "{message}");
            }
        }
    }
}

#[test]
fn unknown_family_is_reported_with_what_is_loaded() {
    let err = dejavu().subset(&["DejaVu Sans", "No Such Font"]).err();
    let (kind, name, message) = missing(err.expect("not loaded"));
    assert_eq!((kind, name.as_str()), ("family", "No Such Font"));
    assert!(message.contains("no font pack provides it"), "{message}");
    assert!(message.contains("DejaVu Sans Mono"), "{message}");
    let empty: [&str; 0] = [];
    assert!(matches!(
        dejavu().subset(&empty),
        Err(SynthError::NoFonts(_))
    ));
}

#[test]
fn weighted_faces_pick_the_closest() {
    let font = dejavu_font();
    let fam = fake_family(
        &font,
        "Acme",
        FontPack::Sans,
        &[
            (300, false),
            (400, false),
            (500, false),
            (700, false),
            (900, false),
            (400, true),
        ],
    );
    let pick = |w, italic| {
        let f = fam.face_weighted(w, italic);
        (f.weight, f.italic)
    };
    assert_eq!(pick(400, false), (400, false));
    assert_eq!(pick(100, false), (300, false));
    assert_eq!(pick(650, false), (700, false));
    assert_eq!(pick(1000, false), (900, false));
    assert_eq!(pick(400, true), (400, true));
    assert_eq!(pick(300, true), (400, true));
    // No bold italic: the bold upright face beats the regular italic one.
    assert_eq!(pick(700, true), (700, false));
    assert_eq!(fam.face(true, true).name, "Acme Bold");
    assert_eq!(fam.face(false, true).name, "Acme Italic");
    assert_eq!(fam.weights(), [300, 400, 500, 700, 900]);

    let script = fake_family(&font, "Quill", FontPack::Handwriting, &[(400, true)]);
    assert_eq!(script.face(false, false).name, "Quill Italic");
    assert_eq!(script.weights(), [400]);

    // The real DejaVu Sans: regular and bold upright always exist.
    let lib = system();
    let sans = family(&lib, "DejaVu Sans");
    assert_eq!(sans.face_weighted(900, false).weight, 700);
    let bold_italic = sans.face_weighted(700, true);
    assert_eq!(bold_italic.weight, 700);
    let has_italics = sans.faces.iter().any(|f| f.italic);
    assert_eq!(bold_italic.italic, has_italics);
}

#[test]
fn body_and_heading_weights_stay_in_their_ranges() {
    let font = dejavu_font();
    let fam = fake_family(
        &font,
        "Acme",
        FontPack::Sans,
        &[
            (200, false),
            (300, false),
            (400, false),
            (500, false),
            (600, false),
            (700, false),
            (900, false),
        ],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let body: HashSet<u16> = (0..300).map(|_| fam.body_weight(&mut rng)).collect();
    let heading: HashSet<u16> = (0..300).map(|_| fam.heading_weight(&mut rng)).collect();
    assert_eq!(body, HashSet::from([300, 400, 500]));
    assert_eq!(heading, HashSet::from([600, 700, 900]));

    let plain = fake_family(
        &font,
        "Plain",
        FontPack::Serif,
        &[(400, false), (700, false)],
    );
    assert!((0..50).all(|_| plain.body_weight(&mut rng) == 400));
    assert!((0..50).all(|_| plain.heading_weight(&mut rng) == 700));
}

#[test]
fn body_picks_mix_packs_not_families() {
    let font = dejavu_font();
    let mut families: Vec<FontFamily> = (0..10)
        .map(|i| {
            fake_family(
                &font,
                &format!("Serif {i}"),
                FontPack::Serif,
                &[(400, false)],
            )
        })
        .collect();
    families.push(fake_family(
        &font,
        "Lone Sans",
        FontPack::Sans,
        &[(400, false)],
    ));
    let lib = FontLibrary::new(families);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let draws = 4000;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..draws {
        let (family, weight) = lib.pick_body(&mut rng);
        assert_eq!(weight, 400);
        *counts.entry(family.name.clone()).or_default() += 1;
    }
    // Picking families uniformly would give the sans family 1 page in 11;
    // by pack it gets sans / (serif + sans) = 0.28 / 0.62 of them.
    let sans = counts["Lone Sans"] as f64 / f64::from(draws);
    assert!((0.40..0.50).contains(&sans), "sans share {sans}");
    assert_eq!(counts.len(), 11, "every serif family is used: {counts:?}");
}

#[test]
fn body_picks_cover_every_loaded_pack() {
    let lib = system();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut seen = HashSet::new();
    for _ in 0..3000 {
        let (family, weight) = lib.pick_body(&mut rng);
        assert!(
            family.faces.iter().any(|f| f.weight == weight),
            "{}",
            family.name
        );
        seen.insert(family.pack);
    }
    let loaded: HashSet<FontPack> = lib.packs().into_iter().map(|(p, _)| p).collect();
    assert_eq!(seen, loaded);

    let lib = dejavu();
    let mono = lib.pick_in(&mut rng, &[FontPack::Mono, FontPack::Typewriter]);
    assert_eq!(mono.map(|f| f.name.as_str()), Some("DejaVu Sans Mono"));
    assert!(lib.pick_in(&mut rng, &[FontPack::Handwriting]).is_none());
}

#[test]
fn bold_is_read_from_names_when_the_weight_is_wrong() {
    let bold_file = Path::new("/usr/share/fonts/Courier Prime Bold.otf");
    let regular_file = Path::new("/usr/share/fonts/Courier Prime.otf");
    assert_eq!(effective_weight(300, "Courier-Prime", Some(bold_file)), 700);
    assert_eq!(
        effective_weight(300, "Courier-Prime", Some(regular_file)),
        300
    );
    assert_eq!(effective_weight(400, "Acme-Bold", None), 700);
    assert_eq!(effective_weight(400, "Acme-SemiBold", None), 400);
    assert_eq!(effective_weight(800, "Acme-Bold", None), 800);
}

#[test]
fn styles_are_named_by_weight() {
    assert_eq!(style_name(400, false), "Regular");
    assert_eq!(style_name(400, true), "Italic");
    assert_eq!(style_name(700, true), "Bold Italic");
    assert_eq!(style_name(300, false), "Light");
    assert_eq!(style_name(250, false), "ExtraLight");
    assert_eq!(style_name(600, false), "SemiBold");
    assert_eq!(style_name(900, true), "Black Italic");
}
