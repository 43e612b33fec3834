//! The training recipe in words: the "training recipe" part of the
//! parameters section, the stop reason and the heading of the per-epoch table
//! (which names the validation view).

use crate::data::{ReportData, TrainingRecipe};
use crate::format::{self as f, NA, opt};
use crate::sections::field;

/// A stored stop reason in words (`time_budget` reads "time budget reached").
pub(crate) fn stop_reason(reason: &str) -> String {
    match reason {
        "time_budget" => "time budget reached".into(),
        "early_stopped" => "early stopped".into(),
        other => other.into(),
    }
}

/// Where the per-epoch validation figures come from, for the metrics heading.
pub(crate) fn metrics_heading(data: &ReportData) -> String {
    format!(
        "PER-EPOCH METRICS (validation: {})",
        data.parameters
            .validation_view
            .as_deref()
            .unwrap_or("view not recorded")
    )
}

fn schedule(r: &TrainingRecipe) -> String {
    let peak = f::lr(r.peak_learning_rate);
    let floor = opt(r.min_learning_rate, f::lr);
    match r.schedule.as_str() {
        "constant" => format!("constant at {peak}"),
        "warmup_cosine" => format!(
            "warmup_cosine: linear warm-up over {} steps to the peak {peak}, then cosine to {floor} at the end of the run",
            opt(r.warmup_steps, |w| w.to_string())
        ),
        "cyclic_cosine" => format!(
            "cyclic_cosine (official Restormer shape over the run): {peak} for its first 92/300, then cosine to {floor}"
        ),
        other => format!("{other} (peak {peak}, final {floor})"),
    }
}

pub(crate) fn recipe_fields(data: &ReportData, r: &TrainingRecipe) -> Vec<(String, String)> {
    let stages = if r.progressive.is_empty() {
        "none".to_string()
    } else {
        let parts: Vec<String> = r
            .progressive
            .iter()
            .map(|s| {
                format!(
                    "{} px x {} until step {}",
                    s.patch_size, s.batch_size, s.until_step
                )
            })
            .collect();
        format!("{} (the last sizes stay after)", parts.join(", then "))
    };
    let mut terms = Vec::new();
    if let Some(w) = r.ssim_weight {
        terms.push(format!("SSIM weight {w}"));
    }
    if let Some(w) = r.ink_weight.filter(|w| *w != 0.0) {
        terms.push(format!("ink pixels x{}", 1.0 + w));
    }
    let loss = if terms.is_empty() {
        r.loss.clone()
    } else {
        format!("{} ({})", r.loss, terms.join(", "))
    };
    let epoch_size = match (r.patches_per_page, r.steps_per_epoch) {
        (_, Some(s)) => format!("{s} steps per epoch"),
        (Some(p), None) => format!("{p} patches per page per epoch"),
        (None, None) => NA.into(),
    };
    let reached = data.job.stop_reason.as_deref() == Some("time_budget");
    let budget = match r.max_minutes {
        Some(m) if reached => format!("{m} min ({})", stop_reason("time_budget")),
        Some(m) => format!("{m} min"),
        None => "none".into(),
    };
    vec![
        field("Learning-rate schedule", schedule(r)),
        field("Peak learning rate", f::lr(r.peak_learning_rate)),
        field("Warm-up", opt(r.warmup_steps, |w| format!("{w} steps"))),
        field("Final learning rate", opt(r.min_learning_rate, f::lr)),
        field("Progressive stages", stages),
        field("Loss", loss),
        field("Epoch size", epoch_size),
        field("Patch sampling", &r.patch_sampling),
        field(
            "Gradient clipping",
            r.clip_norm
                .map_or_else(|| "none".into(), |c| format!("global L2 norm {c}")),
        ),
        field("Time budget", budget),
        field(
            "Validation view",
            opt(data.parameters.validation_view.clone(), |v| v),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;
    use crate::{render_html, render_json, render_markdown, render_text};

    /// What every format must say about the fixture's recipe.
    const RECIPE_TEXT: [&str; 11] = [
        "linear warm-up over 100 steps to the peak 2e-4, then cosine to 1e-5",
        "64 px x 8 until step 400, then 128 px x 4 until step 800",
        "l1_ssim (SSIM weight 0.2, ink pixels x5)",
        "4 patches per page per epoch",
        "ink",
        "global L2 norm 1",
        "90 min",
        "Validation view",
        "centre 256x256 crop",
        "validation: centre 256x256 crop",
        "Peak learning rate",
    ];

    #[test]
    fn every_format_shows_the_recipe_and_the_validation_view() {
        let data = sample_data();
        let text = render_text(&data);
        let md = render_markdown(&data, &[]);
        let html = render_html(&data, &[]);
        for (name, doc) in [("txt", &text), ("md", &md), ("html", &html)] {
            // The text report wraps long values.
            let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
            for needle in RECIPE_TEXT {
                assert!(flat.contains(needle), "{name} lacks {needle:?}:\n{doc}");
            }
        }
        assert!(text.contains("  TRAINING RECIPE\n"), "{text}");
        assert!(text.contains("  PER-EPOCH METRICS (validation: centre 256x256 crop)\n"));
        assert!(md.contains("### Training recipe\n"), "{md}");
        assert!(md.contains("### Per-epoch metrics (validation: centre 256x256 crop)\n"));
        assert!(html.contains("<h3>Training recipe</h3>"), "{html}");
        // The recipe sits in the parameters section, before the data statistics.
        let recipe = text.find("TRAINING RECIPE").unwrap();
        assert!(text.find("TRAINING PARAMETERS").unwrap() < recipe);
        assert!(recipe < text.find("DATA STATISTICS").unwrap());
        let json = render_json(&data);
        let r = &json["report"]["parameters"]["recipe"];
        assert_eq!(r["schedule"], "warmup_cosine");
        assert_eq!(r["progressive"][1]["patch_size"], 128);
        assert_eq!(r["max_minutes"], 90.0);
        assert_eq!(
            json["report"]["parameters"]["validation_view"],
            "centre 256x256 crop"
        );
    }

    #[test]
    fn a_time_budget_stop_is_named() {
        let mut data = sample_data();
        data.job.stop_reason = Some("time_budget".into());
        let text = render_text(&data);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("90 min (time budget reached)"), "{text}");
        assert!(text.contains(": time budget reached\n"), "{text}");
        assert_eq!(stop_reason("completed"), "completed");
    }

    #[test]
    fn other_recipes_read_plainly() {
        let mut data = sample_data();
        let r = data.parameters.recipe.as_mut().unwrap();
        r.schedule = "cyclic_cosine".into();
        r.warmup_steps = None;
        r.progressive.clear();
        r.loss = "charbonnier".into();
        r.ssim_weight = None;
        r.ink_weight = Some(0.0);
        r.patches_per_page = None;
        r.steps_per_epoch = Some(50);
        r.clip_norm = None;
        r.max_minutes = None;
        data.parameters.validation_view = Some("whole page (tiled 256 px, overlap 32)".into());
        let text = render_text(&data);
        let value = |label: &str| -> String {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("  {label} ")))
                .unwrap_or_else(|| panic!("no {label} in\n{text}"));
            line.split_once(" : ")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        assert!(
            value("Learning-rate schedule").starts_with("cyclic_cosine (official Restormer"),
            "{text}"
        );
        assert_eq!(value("Progressive stages"), "none");
        assert_eq!(value("Loss"), "charbonnier");
        assert_eq!(value("Warm-up"), NA);
        assert_eq!(value("Epoch size"), "50 steps per epoch");
        assert_eq!(value("Gradient clipping"), "none");
        assert_eq!(value("Time budget"), "none");
        assert!(
            text.contains("PER-EPOCH METRICS (validation: whole page (tiled 256 px, overlap 32))")
        );
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("2e-4 for its first 92/300, then cosine to 1e-5"),
            "{text}"
        );
        data.parameters.recipe = None;
        let text = render_text(&data);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("Not recorded: the run was started before training recipes"));
    }
}
