//! The HTML report: one self-contained page (inline CSS, charts inlined as
//! `data:` URIs, no external resources), with the same sections as the text
//! report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::charts::Chart;
use crate::data::ReportData;
use crate::format::is_numeric;
use crate::markdown::heading;
use crate::sections::{self, Block, METRICS_SECTION};

const CSS: &str = "\
body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}\
h1{border-bottom:3px double #444;padding-bottom:.3em}\
h2{border-bottom:1px solid #bbb;margin-top:1.8em}\
table{border-collapse:collapse;margin:.6em 0 1.2em}\
th,td{padding:.25em .7em;border-bottom:1px solid #e2e2e2;vertical-align:top}\
th{background:#f3f3f3;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
table.fields th{background:none;font-weight:600;white-space:nowrap}\
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}\
figcaption{color:#555;font-size:.9em}\
.subtitle{color:#555}";

/// Renders the HTML page; every chart is inlined after the metrics.
pub fn render_html(data: &ReportData, charts: &[Chart]) -> String {
    let content = sections::build(data);
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!(
        "<title>Restoreflow training report {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&data.report_id)
    ));
    out.push_str("<h1>Restoreflow training report</h1>\n");
    out.push_str(&format!(
        "<p class=\"subtitle\">{}</p>\n",
        escape(&content.subtitle)
    ));
    for (i, section) in content.sections.iter().enumerate() {
        out.push_str(&format!("<h2>{}</h2>\n", escape(&heading(section.title))));
        for block in &section.blocks {
            write_block(&mut out, block);
        }
        if i == METRICS_SECTION && !charts.is_empty() {
            out.push_str("<h3>Charts</h3>\n");
            for chart in charts {
                out.push_str(&format!(
                    "<figure><img src=\"data:image/png;base64,{}\" alt=\"{title}\"><figcaption>{title}</figcaption></figure>\n",
                    STANDARD.encode(&chart.png),
                    title = escape(&chart.title)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn write_block(out: &mut String, block: &Block) {
    match block {
        Block::Fields(fields) => {
            out.push_str("<table class=\"fields\">\n");
            for (label, value) in fields {
                out.push_str(&format!(
                    "<tr><th>{}</th><td>{}</td></tr>\n",
                    escape(label),
                    escape(value)
                ));
            }
            out.push_str("</table>\n");
        }
        Block::Table(rows) => {
            let Some((header, body)) = rows.split_first() else {
                return;
            };
            out.push_str("<table class=\"data\">\n<tr>");
            for cell in header {
                out.push_str(&format!("<th>{}</th>", escape(cell)));
            }
            out.push_str("</tr>\n");
            for row in body {
                out.push_str("<tr>");
                for (c, cell) in row.iter().enumerate() {
                    let class = if c > 0 && is_numeric(cell) {
                        " class=\"num\""
                    } else {
                        ""
                    };
                    out.push_str(&format!("<td{class}>{}</td>", escape(cell)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        Block::Subheading(title) => {
            out.push_str(&format!("<h3>{}</h3>\n", escape(&heading(title))))
        }
        Block::Note(text) => out.push_str(&format!("<p>{}</p>\n", escape(text))),
        Block::Numbered(items) => {
            out.push_str("<ol>\n");
            for item in items {
                out.push_str(&format!("<li>{}</li>\n", escape(item)));
            }
            out.push_str("</ol>\n");
        }
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;
    use crate::format;
    use crate::sections::SECTION_TITLES;

    fn charts() -> Vec<Chart> {
        ["loss.png", "psnr_ssim.png", "learning_rate.png"]
            .map(|f| Chart {
                file_name: f.into(),
                title: f.into(),
                png: vec![0x89, b'P', b'N', b'G'],
            })
            .to_vec()
    }

    #[test]
    fn sections_in_order_and_psnr_of_every_epoch() {
        let data = sample_data();
        let html = render_html(&data, &[]);
        let pos: Vec<usize> = SECTION_TITLES
            .iter()
            .map(|t| html.find(&format!("<h2>{}</h2>", heading(t))).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
        for r in &data.epochs {
            let cell = format!("<td class=\"num\">{}</td>", format::psnr(r.psnr.unwrap()));
            assert!(html.contains(&cell), "missing {cell}");
        }
    }

    #[test]
    fn self_contained_with_one_img_per_chart() {
        let charts = charts();
        let html = render_html(&sample_data(), &charts);
        assert_eq!(html.matches("<img ").count(), charts.len());
        assert_eq!(
            html.matches("src=\"data:image/png;base64,").count(),
            charts.len()
        );
        for attr in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
            "@import",
        ] {
            assert!(!html.contains(attr), "external resource via {attr}");
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn error_message_is_escaped() {
        let mut data = sample_data();
        data.job.status = "failed".into();
        data.job.error = Some("<script>alert(\"x\")</script>".into());
        let html = render_html(&data, &[]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    }

    #[test]
    fn escape_handles_all_specials() {
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
    }
}
