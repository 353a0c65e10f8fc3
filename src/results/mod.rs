//! A project's records as a table (SPEC 7.2, 7.3, 7.4): the search asked
//! for (`q`, `sort`, `columns`, `plot`), and its matches as CSV, table
//! JSON, rows for the HTML page and the `records` command, and a plot.
//! Knows the store and the query language, not HTTP.

pub mod graph;
pub mod plot;

use crate::error::{Error, Result};
use crate::query::columns::{self, Cell, ParamCell};
use crate::query::{self, Expr, Field, SortKey};
use crate::record::summary::Summary;
use crate::store::{parse_params, Indexed, Selected, Selection, Tx};
use plot::Point;
use serde_json::{json, Value};

/// Points drawn at most in one plot.
pub const MAX_PLOT_POINTS: usize = 20_000;
/// Parameter columns the HTML page shows unless others are chosen (the most
/// common keys): with the default columns they fit a 1280-pixel window
/// (SPEC 10.4).
pub const PAGE_PARAM_COLUMNS: usize = 5;
/// Parameter keys the page's column chooser offers at most.
pub const PAGE_PARAM_CHOICES: usize = 60;
/// Matches whose keys choose the page's parameter columns: all of them
/// would cost a scan of every match for every page.
pub const PAGE_KEY_SAMPLE: u64 = 1000;

/// What a request asks of a project's records.
#[derive(Debug, Default)]
pub struct Search {
    /// `q` as given (trimmed), and parsed.
    pub text: Option<String>,
    pub expr: Option<Expr>,
    pub sort_text: Option<String>,
    pub sort: Vec<SortKey>,
    pub columns: Option<Vec<Field>>,
    pub plot: Option<(Field, Field)>,
}

struct Getter<F>(F);

impl<'a, F: Fn(&str) -> Option<&'a str>> Getter<F> {
    fn get(&self, key: &str) -> Option<&'a str> {
        (self.0)(key)
    }
}

fn bad(e: query::QueryError) -> Error {
    Error::BadRequest(e.to_string())
}

impl Search {
    /// Reads `q`, `sort`, `columns` and `plot` (by name, from `get`); a
    /// malformed one is a bad request saying where (`query: column N: ...`).
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Search> {
        let q = Getter(get);
        let text = q.get("q").map(str::trim).filter(|t| !t.is_empty());
        let expr = match text {
            Some(t) => query::parse_optional(t).map_err(bad)?,
            None => None,
        };
        let sort_text = q.get("sort").map(str::trim).filter(|t| !t.is_empty());
        let sort = sort_text
            .map(query::parse_sort)
            .transpose()
            .map_err(bad)?
            .unwrap_or_default();
        let columns = q
            .get("columns")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(query::parse_columns)
            .transpose()
            .map_err(bad)?;
        let plot = match q.get("plot").map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => {
                let fields = query::parse_fields(p).map_err(bad)?;
                match <[Field; 2]>::try_from(fields) {
                    Ok([x, y]) => Some((x, y)),
                    Err(_) => {
                        return Err(Error::bad(format!(
                            "plot: give two fields, X,Y (like plot=params.n,duration), not {p:?}"
                        )))
                    }
                }
            }
        };
        Ok(Search {
            text: text.map(String::from),
            expr,
            sort_text: sort_text.map(String::from),
            sort,
            columns,
            plot,
        })
    }

    /// Nothing beyond the plain project view was asked for.
    pub fn is_plain(&self) -> bool {
        self.expr.is_none() && self.sort.is_empty()
    }

    pub fn selection<'a>(&'a self, tags: &'a [String], search: Option<&'a str>) -> Selection<'a> {
        Selection::new(tags, search, self.expr.as_ref(), &self.sort)
    }

    /// Whether the query asks about parents or children: the caller's
    /// readable projects are then needed (`Selection::reading`).
    pub fn asks_lineage(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::Or(items) | Expr::And(items) => items.iter().any(walk),
                Expr::Not(inner) => walk(inner),
                Expr::Compare { field, .. } | Expr::In { field, .. } | Expr::Exists(field) => {
                    matches!(field, Field::Parent | Field::Child)
                }
            }
        }
        self.expr.as_ref().is_some_and(walk)
    }
}

/// One matching record, read for its cells (borrowing from the stored
/// row where it can).
pub struct Row<'a> {
    pub label: &'a str,
    pub record: Summary<'a>,
    pub params: Vec<(String, Indexed)>,
}

impl<'a> Row<'a> {
    pub fn read(s: &Selected<'a>) -> Result<Row<'a>> {
        let record = Summary::read(s.body).map_err(|e| {
            Error::Database(format!("stored record {:?} is unreadable: {e}", s.label))
        })?;
        Ok(Row {
            label: s.label,
            record,
            params: parse_params(s.params),
        })
    }

    pub fn cell(&self, field: &Field) -> Cell {
        columns::cell(field, &self.record, |key| {
            self.params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| match v {
                    Indexed::Number(n, _) => ParamCell::Number(*n),
                    Indexed::Other(t) => ParamCell::Text(t.clone()),
                })
        })
    }
}

/// The columns asked for, or the default ones and then one `params.KEY`
/// per parameter key found among the matches (sorted by key).
pub fn columns_for(
    tx: &Tx<'_>,
    project: &str,
    sel: &Selection<'_>,
    asked: Option<&[Field]>,
) -> Result<Vec<Field>> {
    if let Some(a) = asked {
        return Ok(a.to_vec());
    }
    let mut keys: Vec<String> = tx
        .param_keys(project, sel, None)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    Ok(columns::DEFAULT
        .iter()
        .cloned()
        .chain(keys.into_iter().map(Field::Param))
        .collect())
}

/// Calls `f` with each match, in order, read for its cells.
pub fn for_each_row(
    tx: &Tx<'_>,
    project: &str,
    sel: &Selection<'_>,
    limit: Option<u64>,
    offset: u64,
    mut f: impl FnMut(Row<'_>) -> Result<()>,
) -> Result<()> {
    tx.for_each_selected(project, sel, limit, offset, true, |s| f(Row::read(&s)?))
}

/// The matches as CSV, written as they are read: a header row, then a row
/// per match (memory stays flat whatever the number of rows).
pub fn csv(
    tx: &Tx<'_>,
    project: &str,
    sel: &Selection<'_>,
    cols: &[Field],
    limit: Option<u64>,
    offset: u64,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let mut line = String::new();
    columns::csv_line(
        cols.iter().map(|c| Cell::Text(columns::header(c))),
        &mut line,
    );
    out.write_all(line.as_bytes())?;
    for_each_row(tx, project, sel, limit, offset, |row| {
        line.clear();
        columns::csv_line(cols.iter().map(|c| row.cell(c)), &mut line);
        Ok(out.write_all(line.as_bytes())?)
    })?;
    Ok(out.flush()?)
}

/// The matches as `{"columns", "rows", "count"}`, values typed, written
/// as they are read (memory stays flat whatever the number of rows).
pub fn table(
    tx: &Tx<'_>,
    project: &str,
    sel: &Selection<'_>,
    cols: &[Field],
    limit: Option<u64>,
    offset: u64,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let headers: Vec<String> = cols.iter().map(columns::header).collect();
    write!(out, "{{\"columns\": {}, \"rows\": [", json!(headers))?;
    let mut rows = 0i64;
    let mut line = Vec::new();
    for_each_row(tx, project, sel, limit, offset, |row| {
        line.clear();
        if rows > 0 {
            line.extend_from_slice(b", ");
        }
        let cells: Vec<Value> = cols.iter().map(|c| row.cell(c).json()).collect();
        serde_json::to_writer(&mut line, &cells).map_err(std::io::Error::from)?;
        rows += 1;
        Ok(out.write_all(&line)?)
    })?;
    // Every match listed: the count is the rows written.
    let count = if limit.is_none() && offset == 0 {
        rows
    } else {
        tx.select_count(project, sel)?
    };
    write!(out, "], \"count\": {count}}}")?;
    Ok(out.flush()?)
}

/// The points of a plot of `x` against `y` over the matches, and how many
/// matches had no numeric value for one of them.
pub fn plot_points(
    tx: &Tx<'_>,
    project: &str,
    sel: &Selection<'_>,
    (x, y): (&Field, &Field),
    record_url: impl Fn(&str) -> String,
) -> Result<(Vec<Point>, u64)> {
    let mut points = Vec::new();
    let mut missing = 0;
    for_each_row(tx, project, sel, None, 0, |row| {
        match (row.cell(x).number(), row.cell(y).number()) {
            (Some(px), Some(py)) if points.len() < MAX_PLOT_POINTS => points.push(Point {
                x: px,
                y: py,
                url: record_url(row.label),
                label: row.label.to_string(),
            }),
            (Some(_), Some(_)) => {}
            _ => missing += 1,
        }
        Ok(())
    })?;
    Ok((points, missing))
}
