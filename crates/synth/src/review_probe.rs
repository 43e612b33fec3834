//! THROWAWAY review probe; delete after use.
use crate::*;
use image::RgbImage;
use std::panic::{AssertUnwindSafe, catch_unwind};

fn msg(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn probe_defocus_scaled() {
    let img = RgbImage::from_pixel(64, 64, image::Rgb([250, 250, 250]));
    let mut fails = Vec::new();
    for scale in [2.0f32, 2.6667, 3.0, 4.0] {
        for seed in 0..12u64 {
            let r = catch_unwind(AssertUnwindSafe(|| {
                Pipeline::single(Family::DefocusBlur).apply_scaled(&img, seed, scale)
            }));
            match r {
                Ok(d) => {
                    let min = d.image.as_raw().iter().min().copied();
                    println!("scale {scale} seed {seed} {} min {:?}", d.applied[0].params, min);
                }
                Err(e) => fails.push(format!("scale {scale} seed {seed}: {}", msg(e))),
            }
        }
    }
    println!("FAILS: {fails:#?}");
}

#[test]
fn probe_all_families_scaled() {
    let fonts = FontLibrary::system().unwrap();
    let mut fails = Vec::new();
    for (w, h) in [(64u32, 64u32), (64, 400), (400, 64), (256, 320)] {
        let page = render_page(&fonts, w, h, 5).unwrap().image;
        for &family in Family::ALL {
            for scale in [0.6667f32, 1.3333, 2.6667, 4.0] {
                for seed in 0..4u64 {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        Pipeline::single(family).apply_scaled(&page, seed, scale)
                    }));
                    if let Err(e) = r {
                        fails.push(format!("{w}x{h} {} scale {scale} seed {seed}: {}", family.name(), msg(e)));
                    }
                }
            }
        }
    }
    println!("FAILS ({}): {:#?}", fails.len(), fails.iter().take(40).collect::<Vec<_>>());
}

#[test]
fn probe_double_scaled_params() {
    let img = RgbImage::from_pixel(200, 200, image::Rgb([250, 250, 250]));
    for family in [Family::BleedThrough, Family::BadPhotocopy] {
        for scale in [1.0f32, 4.0] {
            let d = Pipeline::single(family).apply_scaled(&img, 7, scale);
            println!("{} scale {scale}: {}", family.name(), d.applied[0].params);
        }
    }
}

#[test]
fn probe_extreme_pages() {
    let all = FontLibrary::system().unwrap();
    let hand = all.subset(&["handwriting"]).unwrap();
    let mut specs = vec![
        PageSpec::pixels(64, 64),
        PageSpec::pixels(64, 4096),
        PageSpec::pixels(4096, 64),
        PageSpec::pixels(100, 4096),
    ];
    for dpi in [50u32, 300] {
        for (w, h) in [(64u32, 64u32), (64, 4096), (4096, 64), (640, 832), (300, 2000)] {
            specs.push(PageSpec::sized_at(w, h, dpi).unwrap());
        }
    }
    let mut fails = Vec::new();
    for (fname, fonts) in [("all", &all), ("hand", &hand)] {
        for spec in &specs {
            for seed in 0..25u64 {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let p = render_page_as(fonts, spec, seed, Target::AsPrinted).unwrap();
                    let d = render_page_as(fonts, spec, seed, Target::Digital).unwrap();
                    assert_eq!(p.text, d.text, "text differs");
                    assert_eq!(p.elements, d.elements, "elements differ");
                    for e in &p.elements {
                        assert!(e.x + e.width <= spec.width && e.y + e.height <= spec.height);
                    }
                }));
                if let Err(e) = r {
                    fails.push(format!("{fname} {spec:?} seed {seed}: {}", msg(e)));
                }
            }
        }
    }
    println!("FAILS ({}): {:#?}", fails.len(), fails.iter().take(40).collect::<Vec<_>>());
}

#[test]
fn probe_big_pages() {
    let all = FontLibrary::system().unwrap();
    let mut fails = Vec::new();
    for spec in [
        PageSpec::pixels(4096, 4096),
        PageSpec::paper(PaperSize::A4, 300).unwrap(),
        PageSpec::sized_at(4096, 4096, 50).unwrap(),
    ] {
        for seed in 0..4u64 {
            let r = catch_unwind(AssertUnwindSafe(|| {
                let t = std::time::Instant::now();
                let p = render_page_as(&all, &spec, seed, Target::AsPrinted).unwrap();
                println!("{spec:?} seed {seed}: {} elements {:?}", p.elements.len(), t.elapsed());
            }));
            if let Err(e) = r {
                fails.push(format!("{spec:?} seed {seed}: {}", msg(e)));
            }
        }
    }
    println!("FAILS ({}): {:#?}", fails.len(), fails);
}
