//! The Markdown report: the same sections as the text report, as headings and
//! tables, with chart images linked by relative path.

use crate::data::ReportData;
use crate::format::is_numeric;
use crate::sections::{self, Block, METRICS_SECTION};

/// A chart image to link from the Markdown report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRef {
    /// Alt text and caption, e.g. "Loss".
    pub title: String,
    /// Path relative to the Markdown file, e.g. "loss.png".
    pub file_name: String,
}

/// Renders the Markdown report; `chart_links` are embedded after the metrics.
pub fn render_markdown(data: &ReportData, chart_links: &[ChartRef]) -> String {
    let content = sections::build(data);
    let mut out = format!(
        "# Restoreflow training report\n\n{}\n",
        escape(&content.subtitle)
    );
    for (i, section) in content.sections.iter().enumerate() {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&format!("## {}\n\n", heading(section.title)));
        for block in &section.blocks {
            write_block(&mut out, block);
        }
        if i == METRICS_SECTION && !chart_links.is_empty() {
            out.push_str("### Charts\n\n");
            for chart in chart_links {
                out.push_str(&format!(
                    "![{}]({})\n\n",
                    escape(&chart.title),
                    chart.file_name.replace(' ', "%20")
                ));
            }
        }
    }
    out
}

/// "TRAINING METRICS" -> "Training metrics".
pub(crate) fn heading(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn write_block(out: &mut String, block: &Block) {
    match block {
        Block::Fields(fields) => {
            out.push_str("| Field | Value |\n|---|---|\n");
            for (label, value) in fields {
                out.push_str(&format!("| {} | {} |\n", escape(label), escape(value)));
            }
            out.push('\n');
        }
        Block::Table(rows) => {
            let Some((header, body)) = rows.split_first() else {
                return;
            };
            out.push_str(&row(header));
            let align: Vec<&str> = (0..header.len())
                .map(|c| {
                    let numeric = body.iter().all(|r| r.get(c).is_none_or(|s| is_numeric(s)));
                    if c > 0 && numeric { "---:" } else { "---" }
                })
                .collect();
            out.push_str(&format!("|{}|\n", align.join("|")));
            for r in body {
                out.push_str(&row(r));
            }
            out.push('\n');
        }
        Block::Subheading(title) => out.push_str(&format!("### {}\n\n", escape(&heading(title)))),
        Block::Note(text) => out.push_str(&format!("{}\n\n", escape(text))),
        Block::Numbered(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push_str(&format!("{}. {}\n", i + 1, escape(item)));
            }
            out.push('\n');
        }
    }
}

fn row(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// Keeps stored text from breaking the layout: table pipes, line breaks and
/// raw HTML (which Markdown renderers pass through) are neutralised.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;
    use crate::format;
    use crate::sections::SECTION_TITLES;

    fn links() -> Vec<ChartRef> {
        ["loss.png", "psnr_ssim.png"]
            .map(|f| ChartRef {
                title: f.trim_end_matches(".png").into(),
                file_name: f.into(),
            })
            .to_vec()
    }

    #[test]
    fn sections_in_order_with_charts_after_metrics() {
        let md = render_markdown(&sample_data(), &links());
        let pos: Vec<usize> = SECTION_TITLES
            .iter()
            .map(|t| md.find(&format!("\n## {}\n", heading(t))).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
        let chart = md.find("![loss](loss.png)").unwrap();
        assert!(pos[METRICS_SECTION] < chart && chart < pos[METRICS_SECTION + 1]);
        assert!(md.contains("![psnr_ssim](psnr_ssim.png)"));
    }

    #[test]
    fn every_epoch_psnr_appears_in_a_table_row() {
        let data = sample_data();
        let md = render_markdown(&data, &[]);
        for r in &data.epochs {
            let cells = format!(
                "| {} | {} |",
                format::loss(r.val_loss.unwrap()),
                format::psnr(r.psnr.unwrap())
            );
            assert!(md.contains(&cells), "missing {cells}");
        }
        assert!(!md.contains("### Charts"));
    }

    #[test]
    fn stored_text_cannot_break_tables() {
        let mut data = sample_data();
        data.job.error = Some("a|b\n<script>".into());
        let md = render_markdown(&data, &[]);
        assert!(md.contains("a\\|b &lt;script&gt;"));
    }

    #[test]
    fn heading_is_sentence_case() {
        assert_eq!(heading("TRAINING METRICS"), "Training metrics");
    }
}
