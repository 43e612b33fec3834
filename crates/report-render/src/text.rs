//! The plain-text report, laid out like a classic product report: a framed
//! title banner, then `-`-underlined sections with aligned fields and tables.

use crate::data::ReportData;
use crate::sections::{self, Block, REPORT_TITLE};

/// Width of the banner's `=` lines.
const WIDTH: usize = 80;

/// Renders the plain-text report.
pub fn render_text(data: &ReportData) -> String {
    let content = sections::build(data);
    let mut out = String::new();
    let rule = "=".repeat(WIDTH);
    out.push_str(&rule);
    out.push('\n');
    out.push_str(&center(REPORT_TITLE, WIDTH));
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    out.push_str(&content.subtitle);
    out.push('\n');
    for section in &content.sections {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(section.title);
        out.push('\n');
        out.push_str(&"-".repeat(width(section.title)));
        out.push('\n');
        for block in &section.blocks {
            write_block(&mut out, block);
        }
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

fn write_block(out: &mut String, block: &Block) {
    match block {
        Block::Fields(fields) => {
            let w = fields.iter().map(|(l, _)| width(l)).max().unwrap_or(0);
            let indent = pad(2 + w + 3);
            for (label, value) in fields {
                let lines = wrap(value, WIDTH.saturating_sub(indent.len()));
                let (first, rest) = lines
                    .split_first()
                    .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
                let line = format!("  {label}{} : {first}", pad(w - width(label)));
                out.push_str(line.trim_end());
                out.push('\n');
                for more in rest {
                    out.push_str(&format!("{indent}{more}\n"));
                }
            }
        }
        Block::Table(rows) => write_table(out, rows),
        Block::Subheading(title) => {
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str(&format!("  {title}\n"));
        }
        Block::Note(text) => {
            for line in wrap(text, WIDTH - 2) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        Block::Numbered(items) => {
            for (i, item) in items.iter().enumerate() {
                let marker = format!("  {}. ", i + 1);
                let indent = pad(marker.len());
                for (j, line) in wrap(item, WIDTH - marker.len()).iter().enumerate() {
                    let lead = if j == 0 { &marker } else { &indent };
                    out.push_str(&format!("{lead}{line}\n"));
                }
            }
        }
    }
}

/// Columns are padded to their widest cell and the header is underlined.
/// Numeric columns are right-aligned, text columns left-aligned.
fn write_table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let cells = |c: usize| rows.iter().filter_map(move |r| r.get(c));
    let widths: Vec<usize> = (0..cols)
        .map(|c| cells(c).map(|s| width(s)).max().unwrap_or(0))
        .collect();
    let numeric: Vec<bool> = (0..cols)
        .map(|c| cells(c).skip(1).all(|s| crate::format::is_numeric(s)))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::from(" ");
        for (c, w) in widths.iter().enumerate() {
            let cell = row.get(c).map_or("", String::as_str);
            let gap = pad(w - width(cell));
            if numeric[c] && c > 0 {
                line.push_str(&format!(" {gap}{cell}"));
            } else {
                line.push_str(&format!(" {cell}{gap}"));
            }
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            out.push_str(&format!("  {}\n", "-".repeat(total)));
        }
    }
    out.push('\n');
}

/// Greedy word wrap to `max` characters; longer words keep their own line.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && width(&line) + 1 + width(word) > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Display width in characters (the report has no wide characters).
fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn center(s: &str, w: usize) -> String {
    format!("{}{s}", pad(w.saturating_sub(width(s)) / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_data;
    use crate::format;
    use crate::sections::{METRICS_HEADER, SECTION_TITLES};

    /// Positions of each heading line (title followed by a `-` underline).
    fn heading_positions(text: &str) -> Vec<usize> {
        let lines: Vec<&str> = text.lines().collect();
        SECTION_TITLES
            .iter()
            .map(|t| {
                let under = "-".repeat(t.len());
                lines
                    .windows(2)
                    .position(|w| w[0] == *t && w[1] == under)
                    .unwrap_or_else(|| panic!("heading {t} missing"))
            })
            .collect()
    }

    #[test]
    fn banner_and_sections_in_order() {
        let text = render_text(&sample_data());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "=".repeat(WIDTH));
        assert_eq!(lines[1].trim(), REPORT_TITLE);
        assert_eq!(lines[2], "=".repeat(WIDTH));
        let pos = heading_positions(&text);
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
        let improvement = text.find("TOTAL IMPROVEMENT").unwrap();
        let baseline = text.find("BASELINE (identity").unwrap();
        let model = text.find("MODEL INFORMATION").unwrap();
        assert!(improvement < baseline && baseline < model);
    }

    /// Every cell of the metrics table is a field of an epoch row, formatted.
    #[test]
    fn metrics_table_numbers_trace_to_epoch_rows() {
        let data = sample_data();
        let text = render_text(&data);
        let start = text.find(METRICS_HEADER[1]).unwrap();
        let table: Vec<Vec<&str>> = text[start..]
            .lines()
            .skip(2) // header and its underline
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(table.len(), data.epochs.len());
        for (cells, row) in table.iter().zip(&data.epochs) {
            let want = [
                row.epoch.to_string(),
                format::loss(row.train_loss),
                format::loss(row.val_loss.unwrap()),
                format::psnr(row.psnr.unwrap()),
                format::ssim(row.ssim.unwrap()),
                format::accuracy_pct(row.accuracy.unwrap()),
                format::lr(row.learning_rate),
                format::rate(row.pairs_per_second),
                format::seconds(row.seconds),
            ];
            assert_eq!(cells.len(), want.len());
            for (cell, want) in cells.iter().zip(&want) {
                // Each cell is a number, and it is exactly the formatted field.
                assert!(cell.parse::<f64>().is_ok(), "{cell} is not a number");
                assert_eq!(cell, want);
            }
        }
    }

    #[test]
    fn every_epoch_psnr_appears() {
        let data = sample_data();
        let text = render_text(&data);
        for row in &data.epochs {
            assert!(text.contains(&format::psnr(row.psnr.unwrap())));
        }
    }

    #[test]
    fn key_facts_are_printed() {
        let text = render_text(&sample_data());
        for want in [
            "1h 2m 3s (3723.00 s)",
            "1.18 MiB (1,234,567 bytes)",
            "98.61% (pairs used",
            "page-233",
            "undecodable png",
            "21.35 dB",
            "+7.44 dB",
            "1. [info] more_epochs",
            "AMD EPYC 7B13 (16 threads)",
            "same validation data",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn missing_values_print_na_and_no_epochs_is_explained() {
        let mut data = sample_data();
        data.epochs.clear();
        data.model = None;
        data.previous = None;
        data.environment = None;
        data.job.duration_seconds = None;
        let text = render_text(&data);
        assert!(text.contains("No epoch finished"));
        assert!(text.contains("No previous version"));
        assert!(text.contains("Duration") && text.contains(": n/a"));
        heading_positions(&text);
    }

    #[test]
    fn wrap_keeps_words_and_width() {
        let lines = wrap("one two three four five six", 9);
        assert_eq!(lines, ["one two", "three", "four five", "six"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn different_data_is_labelled() {
        let mut data = sample_data();
        data.previous.as_mut().unwrap().same_validation_data = false;
        assert!(render_text(&data).contains("(different validation data)"));
    }
}
