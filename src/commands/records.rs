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
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header(cols.iter().map(crate::query::columns::header));
            let mut shown = 0;
            results::for_each_row(&tx, project, &sel, asked.limit, 0, |row| {
                table.add_row(cols.iter().map(|c| row.cell(c).text()));
                shown += 1;
                Ok(())
            })?;
            writeln!(out, "{table}")?;
            let count = tx.select_count(project, &sel)?;
            eprintln!("{shown} of {count} record(s)");
        }
    }
    Ok(())
}
