//! The report's content, independent of format.
//!
//! [`build`] turns the data, its [`Derived`] numbers and the recommendations
//! into titled sections of labelled fields, tables, notes and lists; the text,
//! Markdown and HTML renderers only lay these out, so all three say the same
//! thing in the same order.

use std::collections::BTreeMap;

use crate::data::ReportData;
use crate::derive::{Change, Derived, derive};
use crate::format::{self as f, NA, opt};
use crate::recipe::{metrics_heading, recipe_fields, stop_reason};
use crate::recommend::{Recommendation, recommendations};

/// Title of the text report's banner.
pub(crate) const REPORT_TITLE: &str = "RESTOREFLOW TRAINING REPORT";

/// Section titles, in the order every format prints them.
pub(crate) const SECTION_TITLES: [&str; 8] = [
    "JOB INFORMATION",
    "TRAINING PARAMETERS",
    "DATA STATISTICS",
    "TRAINING METRICS",
    "MODEL INFORMATION",
    "COMPARISON WITH PREVIOUS VERSION",
    "ENVIRONMENT",
    "RECOMMENDATIONS",
];

/// Index of "TRAINING METRICS" in [`SECTION_TITLES`]; charts follow it.
pub(crate) const METRICS_SECTION: usize = 3;

/// Skipped pairs listed by name; the rest are counted.
const SKIPPED_LISTED_MAX: usize = 20;

/// Header of the per-epoch metrics table.
pub(crate) const METRICS_HEADER: [&str; 9] = [
    "Epoch",
    "Train loss",
    "Val loss",
    "PSNR (dB)",
    "SSIM",
    "Accuracy (%)",
    "LR",
    "Pairs/s",
    "Seconds",
];

/// One titled section.
pub(crate) struct Section {
    pub title: &'static str,
    pub blocks: Vec<Block>,
}

/// A piece of a section.
pub(crate) enum Block {
    /// Label/value pairs.
    Fields(Vec<(String, String)>),
    /// A table whose first row is the header.
    Table(Vec<Vec<String>>),
    /// A heading inside a section.
    Subheading(String),
    /// A sentence.
    Note(String),
    /// A numbered list.
    Numbered(Vec<String>),
}

/// The whole report.
pub(crate) struct Content {
    /// One line under the title: report id, layer, generation time.
    pub subtitle: String,
    pub sections: Vec<Section>,
}

/// Builds the report's content.
pub(crate) fn build(data: &ReportData) -> Content {
    let d = derive(data);
    let recs = recommendations(data);
    let blocks = [
        job(data),
        parameters(data),
        data_stats(data, &d),
        metrics(data, &d),
        model(data),
        comparison(data, &d),
        environment(data),
        recommendation_list(&recs),
    ];
    Content {
        subtitle: format!(
            "Report {} for job {} (layer {}), generated {}",
            data.report_id,
            data.job.id,
            data.job.layer,
            f::time(data.generated_at)
        ),
        sections: SECTION_TITLES
            .iter()
            .zip(blocks)
            .map(|(&title, blocks)| Section { title, blocks })
            .collect(),
    }
}

pub(crate) fn field(label: &str, value: impl Into<String>) -> (String, String) {
    (label.to_string(), value.into())
}

fn job(data: &ReportData) -> Vec<Block> {
    let j = &data.job;
    vec![Block::Fields(vec![
        field("Job id", &j.id),
        field("Layer", j.layer.to_string()),
        field("Status", &j.status),
        field("Stop reason", opt(j.stop_reason.as_deref(), stop_reason)),
        field("Error", j.error.clone().unwrap_or_else(|| "none".into())),
        field("Attempts", j.attempts.to_string()),
        field(
            "Resumed from epoch",
            opt(j.resumed_from_epoch, |e| e.to_string()),
        ),
        field("Created", f::time(j.created_at)),
        field("Started", opt(j.started_at, f::time)),
        field("Finished", opt(j.finished_at, f::time)),
        field("Duration", opt(j.duration_seconds, f::duration)),
    ])]
}

fn parameters(data: &ReportData) -> Vec<Block> {
    let p = &data.parameters;
    let mut blocks = vec![Block::Fields(vec![
        field("Epochs requested", p.epochs.to_string()),
        field("Batch size", p.batch_size.to_string()),
        field("Learning rate", f::lr(p.learning_rate)),
        field("Schedule", &p.schedule),
        field("Optimizer", &p.optimizer),
        field("Preset", &p.preset),
        field("Patch size", format!("{} px", p.patch_size)),
        field(
            "Max pairs",
            if p.max_pairs == 0 {
                "all".to_string()
            } else {
                f::count(u64::from(p.max_pairs))
            },
        ),
        field(
            "Validation fraction",
            format!("{} ({})", p.val_fraction, f::pct(p.val_fraction * 100.0)),
        ),
        field("Seed", p.seed.to_string()),
        field("Device", &p.device),
        field(
            "Early stopping patience",
            opt(p.early_stopping_patience, |e| format!("{e} epochs")),
        ),
        field(
            "Base model",
            p.base_model
                .clone()
                .unwrap_or_else(|| "none (from scratch)".into()),
        ),
        field(
            "Dataset",
            p.dataset.clone().unwrap_or_else(|| "all pairs".into()),
        ),
    ])];
    blocks.push(Block::Subheading("TRAINING RECIPE".into()));
    match &p.recipe {
        Some(r) => blocks.push(Block::Fields(recipe_fields(data, r))),
        None => blocks.push(Block::Note(format!(
            "Not recorded: the run was started before training recipes (schedule above; validation view: {}).",
            opt(p.validation_view.clone(), |v| v)
        ))),
    }
    blocks
}

fn data_stats(data: &ReportData, d: &Derived) -> Vec<Block> {
    let s = &data.data;
    let mut blocks = vec![Block::Fields(vec![
        field("Location", &s.location),
        field("Target", targets(&s.targets)),
        field(
            "DPI",
            if s.dpi.is_empty() {
                NOT_RECORDED.to_string()
            } else {
                let dpi: Vec<String> = s.dpi.iter().map(u32::to_string).collect();
                dpi.join(", ")
            },
        ),
        field("Files seen", f::count(s.files_seen)),
        field("Clean files", f::count(s.clean_files)),
        field("Degraded files", f::count(s.degraded_files)),
        field("Valid pairs", f::count(s.valid_pairs)),
        field("Pairs used", f::count(s.pairs_used)),
        field(
            "Train / val split",
            format!("{} / {}", f::count(s.train_pairs), f::count(s.val_pairs)),
        ),
        field("Skipped pairs", f::count(s.skipped.len() as u64)),
        field(
            "Data effectiveness",
            format!(
                "{} (pairs used / max(clean files, degraded files))",
                opt(d.data_effectiveness_percent, f::pct)
            ),
        ),
        field("Dataset id", opt(s.dataset_id.clone(), |s| s)),
        field("Dataset hash", opt(s.dataset_hash.clone(), |s| s)),
    ])];
    if !s.skipped.is_empty() {
        blocks.push(Block::Subheading("Skipped pairs".into()));
        let mut rows = vec![vec!["Pair".to_string(), "Reason".to_string()]];
        rows.extend(
            s.skipped
                .iter()
                .take(SKIPPED_LISTED_MAX)
                .map(|p| vec![p.name.clone(), p.reason.clone()]),
        );
        blocks.push(Block::Table(rows));
        if s.skipped.len() > SKIPPED_LISTED_MAX {
            blocks.push(Block::Note(format!(
                "… and {} more (all are listed in the JSON report)",
                s.skipped.len() - SKIPPED_LISTED_MAX
            )));
        }
    }
    blocks
}

/// What a run recorded no value for because it predates the field (or the
/// data had none), as opposed to [`NA`], a value that could not be computed.
const NOT_RECORDED: &str = "not recorded";

/// Pairs per target, e.g. "as_printed (100 pairs), digital (400 pairs)".
fn targets(t: &BTreeMap<String, u64>) -> String {
    if t.is_empty() {
        return NOT_RECORDED.into();
    }
    let parts: Vec<String> = t
        .iter()
        .map(|(target, &n)| {
            let unit = if n == 1 { "pair" } else { "pairs" };
            format!("{target} ({} {unit})", f::count(n))
        })
        .collect();
    parts.join(", ")
}

/// The per-epoch table: header then one row per epoch.
pub(crate) fn metrics_table(data: &ReportData) -> Vec<Vec<String>> {
    let mut rows = vec![METRICS_HEADER.iter().map(|h| h.to_string()).collect()];
    rows.extend(data.epochs.iter().map(|r| {
        vec![
            r.epoch.to_string(),
            f::loss(r.train_loss),
            opt(r.val_loss, f::loss),
            opt(r.psnr, f::psnr),
            opt(r.ssim, f::ssim),
            opt(r.accuracy, f::accuracy_pct),
            f::lr(r.learning_rate),
            f::rate(r.pairs_per_second),
            f::seconds(r.seconds),
        ]
    }));
    rows
}

fn change_row(
    metric: &str,
    change: Option<Change>,
    fmt: fn(f64) -> String,
    dp: usize,
) -> Vec<String> {
    let Some(c) = change else {
        return vec![
            metric.to_string(),
            NA.into(),
            NA.into(),
            NA.into(),
            NA.into(),
        ];
    };
    vec![
        metric.to_string(),
        fmt(c.first),
        fmt(c.last),
        f::signed(c.absolute, dp),
        opt(c.percent, f::signed_pct),
    ]
}

fn metrics(data: &ReportData, d: &Derived) -> Vec<Block> {
    let (Some(first), Some(last)) = (&d.first, &d.last) else {
        return vec![Block::Note(
            "No epoch finished, so no metrics were recorded.".into(),
        )];
    };
    let i = &d.improvement;
    // Accuracy is a fraction; its change is shown in percentage points.
    let acc = i.accuracy.map(|c| Change {
        first: c.first * 100.0,
        last: c.last * 100.0,
        absolute: c.absolute * 100.0,
        percent: c.percent,
    });
    let best = d.best.as_ref();
    vec![
        Block::Subheading(metrics_heading(data)),
        Block::Table(metrics_table(data)),
        Block::Fields(vec![
            field(
                "Total epoch time",
                opt(Some(d.total_epoch_seconds), f::duration),
            ),
            field("Mean epoch time", opt(d.mean_epoch_seconds, f::duration)),
            field(
                "Mean throughput",
                opt(d.mean_pairs_per_second, |v| {
                    format!("{} pairs/s", f::rate(v))
                }),
            ),
        ]),
        Block::Subheading(format!(
            "TOTAL IMPROVEMENT (epoch {} → epoch {})",
            first.epoch, last.epoch
        )),
        Block::Table(vec![
            ["Metric", "First", "Last", "Change", "Change %"]
                .map(String::from)
                .to_vec(),
            change_row("Train loss", i.train_loss, f::loss, 6),
            change_row("Val loss", i.val_loss, f::loss, 6),
            change_row("PSNR (dB)", i.psnr, f::psnr, 2),
            change_row("SSIM", i.ssim, f::ssim, 4),
            change_row("Accuracy (%)", acc, |v| format!("{v:.2}"), 2),
        ]),
        Block::Subheading("BASELINE (identity: degraded input vs clean)".into()),
        Block::Fields(vec![
            field("Baseline PSNR", opt(d.baseline_psnr, f::psnr_db)),
            field("Baseline SSIM", opt(d.baseline_ssim, f::ssim)),
            field(
                "Baseline accuracy",
                opt(d.baseline_accuracy, |v| format!("{}%", f::accuracy_pct(v))),
            ),
            field(
                "Best PSNR",
                opt(best.and_then(|b| b.psnr.map(|p| (p, b.epoch))), |(p, e)| {
                    format!("{} (epoch {e})", f::psnr_db(p))
                }),
            ),
            field(
                "Gain of best over baseline",
                opt(d.best_psnr_gain_db, |g| format!("{} dB", f::signed(g, 2))),
            ),
            field(
                "Gain of last over baseline",
                opt(d.last_psnr_gain_db, |g| format!("{} dB", f::signed(g, 2))),
            ),
        ]),
    ]
}

fn model(data: &ReportData) -> Vec<Block> {
    let Some(m) = &data.model else {
        return vec![Block::Note("No model was registered by this run.".into())];
    };
    let aliases = if m.aliases.is_empty() {
        "none".to_string()
    } else {
        m.aliases.join(", ")
    };
    vec![Block::Fields(vec![
        field("Version", format!("{} (layer {})", m.version, m.layer)),
        field("Path", &m.object_path),
        field("Size", f::bytes(m.size_bytes)),
        field("Parameters", f::count(m.parameter_count)),
        field("Architecture", &m.architecture),
        field("Config", m.config.to_string()),
        field("SHA-256", &m.sha256),
        field("Aliases", aliases),
        field("Best epoch", opt(m.best_epoch, |e| e.to_string())),
    ])]
}

fn comparison(data: &ReportData, d: &Derived) -> Vec<Block> {
    let (Some(prev), Some(cmp)) = (&data.previous, &d.vs_previous) else {
        return vec![Block::Note("No previous version of this layer.".into())];
    };
    let this = match (&data.model, &d.registered) {
        (Some(m), Some(r)) => format!("This version ({}, epoch {})", m.version, r.epoch),
        (None, Some(r)) => format!("This run (epoch {})", r.epoch),
        _ => "This run".to_string(),
    };
    let reg = d.registered.as_ref();
    let mut blocks = vec![Block::Note(format!(
        "Compared with version {}{}.",
        prev.version,
        if cmp.same_validation_data {
            " on the same validation data"
        } else {
            " (different validation data)"
        }
    ))];
    blocks.push(Block::Table(vec![
        vec![
            "Metric".into(),
            format!("Previous ({})", prev.version),
            this,
            "Delta".into(),
        ],
        vec![
            "PSNR (dB)".into(),
            opt(prev.psnr, f::psnr),
            opt(reg.and_then(|r| r.psnr), f::psnr),
            opt(cmp.psnr_delta, |v| f::signed(v, 2)),
        ],
        vec![
            "SSIM".into(),
            opt(prev.ssim, f::ssim),
            opt(reg.and_then(|r| r.ssim), f::ssim),
            opt(cmp.ssim_delta, |v| f::signed(v, 4)),
        ],
        vec![
            "Val loss".into(),
            opt(prev.val_loss, f::loss),
            opt(reg.and_then(|r| r.val_loss), f::loss),
            opt(cmp.val_loss_delta, |v| f::signed(v, 6)),
        ],
    ]));
    if !cmp.same_validation_data {
        blocks.push(Block::Note(format!(
            "The versions were validated on different data (previous dataset hash {}), \
             so the deltas do not compare like with like.",
            opt(prev.dataset_hash.clone(), |h| h)
        )));
    }
    blocks
}

fn environment(data: &ReportData) -> Vec<Block> {
    let Some(e) = &data.environment else {
        return vec![Block::Note("The trainer recorded no environment.".into())];
    };
    let crates = if e.crate_versions.is_empty() {
        NA.to_string()
    } else {
        let parts: Vec<String> = e
            .crate_versions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        parts.join(", ")
    };
    vec![Block::Fields(vec![
        field("OS", &e.os),
        field(
            "CPU",
            format!("{} ({} threads)", e.cpu_model, e.cpu_threads),
        ),
        field("GPU", e.gpu.clone().unwrap_or_else(|| "none".into())),
        field("rustc", &e.rustc_version),
        field("Crate versions", crates),
        field("Peak memory", opt(e.peak_memory_bytes, f::bytes)),
        field("Hostname", opt(e.hostname.clone(), |h| h)),
    ])]
}

fn recommendation_list(recs: &[Recommendation]) -> Vec<Block> {
    if recs.is_empty() {
        return vec![Block::Note(
            "None: nothing in this run calls for a change.".into(),
        )];
    }
    vec![Block::Numbered(
        recs.iter()
            .map(|r| format!("[{}] {}: {}", r.severity.as_str(), r.rule, r.message))
            .collect(),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;
    use crate::{render_html, render_json, render_markdown, render_text};

    #[test]
    fn the_data_section_states_the_training_targets_and_dpi() {
        let mut data = sample_data();
        let text = render_text(&data);
        let md = render_markdown(&data, &[]);
        let html = render_html(&data, &[]);
        for (name, doc) in [("txt", &text), ("md", &md), ("html", &html)] {
            let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
            for needle in ["as_printed (100 pairs), digital (400 pairs)", "150, 300"] {
                assert!(flat.contains(needle), "{name} lacks {needle:?}:\n{doc}");
            }
        }
        // In the data statistics, not elsewhere.
        let at = text.find("digital (400 pairs)").unwrap();
        assert!(text.find("DATA STATISTICS").unwrap() < at);
        assert!(at < text.find("TRAINING METRICS").unwrap());
        let json = render_json(&data);
        assert_eq!(
            json["report"]["data"]["targets"],
            serde_json::json!({"as_printed": 100, "digital": 400})
        );
        assert_eq!(json["report"]["data"]["dpi"], serde_json::json!([150, 300]));

        data.data.targets = BTreeMap::from([("digital".to_string(), 1)]);
        data.data.dpi.clear();
        let text = render_text(&data);
        assert!(text.contains(": digital (1 pair)\n"), "{text}");
        assert!(text.contains(": not recorded\n"), "{text}");
        // A stored report from before targets reads back with none.
        let mut old = render_json(&data)["report"].clone();
        let d = old["data"].as_object_mut().unwrap();
        d.remove("targets");
        d.remove("dpi");
        let back: ReportData = serde_json::from_value(old).unwrap();
        assert!(back.data.targets.is_empty() && back.data.dpi.is_empty());
        assert_eq!(targets(&back.data.targets), NOT_RECORDED);
    }
}
