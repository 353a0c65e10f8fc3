//! `records` (SPEC 7.4): a project's records found by a query, as a table
//! on a terminal, or as CSV or JSON for scripts.

use crate::cli::RecordsFormat;
use crate::error::Result;
use crate::results::{self, Search};
use crate::store::Store;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::io::Write;

/// What the command line asked for.
pub struct Asked<'a> {
    pub query: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub columns: Option<&'a str>,
    pub limit: Option<u64>,
}

pub fn records(
    store: &mut Store,
    project: &str,
    asked: Asked<'_>,
    format: RecordsFormat,
) -> Result<()> {
    store.read().require_project(project)?;
    store.ensure_indexed(project)?;
    let tx = store.read();
    let search = Search::parse(|k| match k {
        "q" => asked.query,
        "sort" => asked.sort,
        "columns" => asked.columns,
        _ => None,
    })?;
    // The shell sees every project: parents and children in all of them.
    let sel = search.selection(&[], None).reading(None);
    let cols = results::columns_for(&tx, project, &sel, search.columns.as_deref())?;
    let mut out = std::io::stdout().lock();
    match format {
        RecordsFormat::Csv => {
            let mut buffered = std::io::BufWriter::new(&mut out);
            results::csv(&tx, project, &sel, &cols, asked.limit, 0, &mut buffered)?;
        }
        RecordsFormat::Json => {
            let mut buffered = std::io::BufWriter::new(&mut out);
            results::table(&tx, project, &sel, &cols, asked.limit, 0, &mut buffered)?;
            writeln!(buffered)?;
        }
        RecordsFormat::Table => {
            let headers: Vec<String> = cols.iter().map(crate::query::columns::header).collect();
            let mut rows: Vec<Vec<String>> = Vec::new();
            results::for_each_row(&tx, project, &sel, asked.limit, 0, |row| {
                rows.push(
                    cols.iter()
                        .zip(&headers)
                        .map(|(c, h)| shown_cell(h, row.cell(c).text()))
                        .collect(),
                );
                Ok(())
            })?;
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            let width = table.width().map(usize::from);
            let keep = fitting(&headers, &rows, width);
            table.set_header(keep.iter().map(|&i| headers[i].clone()));
            for r in &rows {
                table.add_row(keep.iter().map(|&i| r[i].clone()));
            }
            writeln!(out, "{table}")?;
            let count = tx.select_count(project, &sel)?;
            eprintln!("{} of {count} record(s)", rows.len());
            if keep.len() < headers.len() {
                let dropped: Vec<&str> = (0..headers.len())
                    .filter(|i| !keep.contains(i))
                    .map(|i| headers[i].as_str())
                    .collect();
                eprintln!(
                    "not shown to fit the terminal: {} (choose with --columns, or --format csv)",
                    dropped.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Characters of a text cell a terminal table shows at most.
const CELL: usize = 40;

/// A cell as a terminal table shows it: a commit id cut to 12 characters,
/// a duration in seconds to two decimals, long texts cut.
fn shown_cell(header: &str, text: String) -> String {
    match header {
        "version" => text.chars().take(12).collect(),
        "duration" => text.parse::<f64>().map_or(text, |d| format!("{d:.2}")),
        _ if text.chars().count() > CELL => text.chars().take(CELL - 1).collect::<String>() + "…",
        _ => text.replace(['\n', '\r'], " "),
    }
}

/// The columns that fit `width` characters (all without a terminal),
/// from the left: the first always.
fn fitting(headers: &[String], rows: &[Vec<String>], width: Option<usize>) -> Vec<usize> {
    let all: Vec<usize> = (0..headers.len()).collect();
    let Some(width) = width else { return all };
    let widest = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(headers[i].chars().count()))
            .max()
            .unwrap_or(0)
    };
    let mut used = 1; // the left border
    let mut keep = Vec::new();
    for i in all {
        // Each column: its text, a space either side, a border.
        let w = widest(i) + 3;
        if keep.is_empty() || used + w <= width {
            used += w;
            keep.push(i);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (SPEC 10.4): on a 110-column terminal `records` printed
    /// a 280-column table (40-character commit ids, durations like
    /// 0.08062529563903809).
    #[test]
    fn a_table_fits_the_terminal() {
        assert_eq!(
            shown_cell("version", "4659728da5bc46bbac431dbc4c8eebaffbcde543".into()),
            "4659728da5bc"
        );
        assert_eq!(shown_cell("duration", "0.08062529563903809".into()), "0.08");
        assert_eq!(shown_cell("reason", "x".repeat(100)).chars().count(), CELL);
        let headers: Vec<String> = ["label", "reason", "outcome"].map(String::from).to_vec();
        let rows = vec![vec!["a".repeat(10), "b".repeat(40), "c".repeat(40)]];
        assert_eq!(fitting(&headers, &rows, None), [0, 1, 2]);
        assert_eq!(fitting(&headers, &rows, Some(110)), [0, 1, 2]);
        assert_eq!(fitting(&headers, &rows, Some(60)), [0, 1]);
        assert_eq!(fitting(&headers, &rows, Some(5)), [0]);
    }
}
