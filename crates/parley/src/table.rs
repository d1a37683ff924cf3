//! `--format table`: the same documents, laid out for a terminal.

use std::io::Write;

use parley_core::doc::{enum_label, LogPage, ReportDoc};
use parley_core::report::{ColType, Report};
use parley_core::time::format_duration;
use serde_json::Value;

/// Writes rows as left-aligned columns under a header, two spaces apart; fitted to the
/// terminal's width when stdout is one (long cells wrap).
fn grid(
    out: &mut dyn Write,
    header: &[String],
    rows: &[Vec<String>],
    indent: &str,
) -> std::io::Result<()> {
    grid_within(out, header, rows, indent, None)
}

/// `grid`, fitted to `width` columns when given (else to the terminal, if any).
/// Columns are measured by display width (comfy-table), so names in Arabic, CJK or
/// with emoji keep the columns after them aligned.
fn grid_within(
    out: &mut dyn Write,
    header: &[String],
    rows: &[Vec<String>],
    indent: &str,
    width: Option<u16>,
) -> std::io::Result<()> {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header)
        .add_rows(rows);
    if let Some(w) = width {
        table.set_width(w.saturating_sub(indent.len() as u16));
    }
    let last = header.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
    }
    for line in table.lines() {
        writeln!(out, "{indent}{}", line.trim_end())?;
    }
    Ok(())
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn filters_line(filters: &Value) -> String {
    match filters.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_array()
                        .map(|a| a.iter().map(cell).collect::<Vec<_>>().join("|"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".to_string(),
    }
}

pub fn report(out: &mut dyn Write, doc: &ReportDoc) -> anyhow::Result<()> {
    let v = serde_json::to_value(doc)?;
    let r = &v["range"];
    writeln!(
        out,
        "{} report · workspace {} ({}) · {} to {} · by {}",
        doc.report,
        doc.workspace,
        doc.timezone,
        cell(&r["from"]),
        cell(&r["to"]),
        cell(&r["bucket"])
    )?;
    writeln!(out, "filters: {}", filters_line(&v["filters"]))?;
    let buckets: Vec<String> = doc.buckets.clone();
    for (id, component) in &doc.components.0 {
        let c = &serde_json::to_value(component)?;
        let kind = cell(&c["kind"]);
        let status = cell(&c["status"]);
        writeln!(out)?;
        if status == "filters_not_applicable" {
            writeln!(out, "{id} ({kind}): filters not applicable")?;
            continue;
        }
        let note = if status == "no_data" {
            " · no data"
        } else {
            ""
        };
        match kind.as_str() {
            "metric" => writeln!(out, "{id}: {}{note}", cell(&c["value"]))?,
            "bar" => {
                writeln!(out, "{id}{note}")?;
                let series = c["series"].as_array().cloned().unwrap_or_default();
                let mut header = vec!["bucket".to_string()];
                header.extend(series.iter().map(|s| cell(&s["label"])));
                let rows: Vec<Vec<String>> = buckets
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let mut row = vec![b.clone()];
                        row.extend(series.iter().map(|s| cell(&s["values"][i])));
                        row
                    })
                    .collect();
                grid(out, &header, &rows, "  ")?;
            }
            "heatmap" => {
                writeln!(out, "{id}{note}")?;
                let mut header = vec!["".to_string()];
                header.extend((0..24).map(|h| format!("{h:02}")));
                let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
                let rows: Vec<Vec<String>> = days
                    .iter()
                    .enumerate()
                    .map(|(d, name)| {
                        let mut row = vec![name.to_string()];
                        row.extend((0..24).map(|h| cell(&c["values"][d][h])));
                        row
                    })
                    .collect();
                grid(out, &header, &rows, "  ")?;
            }
            _ => {
                writeln!(out, "{id}: total {}{note}", cell(&c["total"]))?;
                let header: Vec<String> = ["key", "label", "count", "percent"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let rows: Vec<Vec<String>> = c["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        vec![
                            cell(&r["key"]),
                            cell(&r["label"]),
                            cell(&r["count"]),
                            format!("{}%", cell(&r["percent"])),
                        ]
                    })
                    .collect();
                grid(out, &header, &rows, "  ")?;
            }
        }
    }
    Ok(())
}

pub fn log(out: &mut dyn Write, page: &LogPage) -> anyhow::Result<()> {
    let v = serde_json::to_value(page)?;
    writeln!(
        out,
        "{} log of the {} report · {} to {} · filters: {} · {} rows{} · page {} ({} per page)",
        page.log,
        page.report,
        page.range.from,
        page.range.to,
        filters_line(&v["filters"]),
        page.total,
        if page.truncated {
            " (only the first 10000 can be paged)"
        } else {
            ""
        },
        page.page,
        page.per_page
    )?;
    let header: Vec<String> = page.columns.iter().map(|c| c.to_string()).collect();
    let types = Report::from_wire(page.report)
        .and_then(|r| r.log(page.log))
        .map(|l| l.columns())
        .unwrap_or_default();
    // As in CSV: labels for enumerations and clock times for durations.
    let shown = |t: Option<ColType>, v: &Value| match (t, v) {
        (Some(ColType::Enum), Value::String(s)) => enum_label(s),
        (Some(ColType::Duration), Value::Number(n)) => {
            format_duration(n.as_i64().unwrap_or_default())
        }
        _ => cell(v),
    };
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            page.columns
                .iter()
                .enumerate()
                .map(|(i, c)| shown(types.get(i).map(|(_, t)| *t), &r[*c]))
                .collect()
        })
        .collect();
    grid(out, &header, &rows, "")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    fn lines(header: &[&str], rows: &[&[&str]], width: Option<u16>) -> Vec<String> {
        let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect();
        let mut out = Vec::new();
        grid_within(&mut out, &header, &rows, "  ", width).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The display column where `needle` starts in `line`.
    fn column_of(line: &str, needle: &str) -> usize {
        line[..line.find(needle).unwrap()].width()
    }

    #[test]
    fn wide_characters_keep_the_columns_aligned() {
        let shown = lines(
            &["contact_name", "channel"],
            &[
                &["王芳 陈", "wa"],
                &["محمد الحسني", "fb"],
                &["Ana 🌻", "ig"],
                &["Zoë", "web"],
            ],
            None,
        );
        let at: Vec<usize> = ["channel", "wa", "fb", "ig", "web"]
            .iter()
            .zip(&shown)
            .map(|(n, l)| column_of(l, n))
            .collect();
        assert!(at.iter().all(|c| *c == at[0]), "{shown:#?} {at:?}");
        assert!(
            shown[0].starts_with("  contact_name  channel"),
            "{shown:#?}"
        );
    }

    #[test]
    fn wide_logs_fit_the_width_given() {
        let long = "Incidencia resuelta por teléfono tras varios intentos de contacto";
        let shown = lines(
            &["at", "contact_id", "content"],
            &[&["2026-11-03T09:15:27+01:00", "c1", long]],
            Some(60),
        );
        assert!(shown.len() > 2, "the long cell wraps: {shown:#?}");
        assert!(shown.iter().all(|l| l.width() <= 60), "{shown:#?}");
        let unbounded = lines(
            &["at", "contact_id", "content"],
            &[&["2026-11-03T09:15:27+01:00", "c1", long]],
            None,
        );
        assert_eq!(unbounded.len(), 2, "{unbounded:#?}");
    }
}
