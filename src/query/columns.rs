//! The columns of a result table (SPEC 7.3): which columns, and the typed
//! value of each field for one record, shared by the CSV, the table JSON,
//! the HTML page, the plot and the `records` command.

use super::Field;
use crate::record::summary::{Scalar, Summary};
use serde_json::Value;

/// The columns of a table when none are asked for, before the parameter
/// columns.
pub const DEFAULT: [Field; 9] = [
    Field::Label,
    Field::Timestamp,
    Field::Reason,
    Field::Outcome,
    Field::Duration,
    Field::Tag,
    Field::User,
    Field::MainFile,
    Field::Version,
];

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Number(f64),
    Text(String),
}

impl Cell {
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The cell as text: numbers as Python prints them (no `.0` on
    /// integers), empty as nothing.
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Number(n) => number_text(*n),
            Cell::Text(s) => s.clone(),
        }
    }

    /// The cell as a typed JSON value (numbers stay numbers).
    pub fn json(&self) -> Value {
        match self {
            Cell::Empty => Value::Null,
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(*n as i64),
            Cell::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Cell::Text(s) => Value::String(s.clone()),
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A parameter's value as indexed: a number, or text as shown.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamCell {
    Number(f64),
    Text(String),
}

/// The value of `field` for a record (what tables read of its stored
/// JSON) and its indexed parameters (looked up by key).
pub fn cell(
    field: &Field,
    record: &Summary<'_>,
    param: impl Fn(&str) -> Option<ParamCell>,
) -> Cell {
    let scalar = |v: &Scalar<'_>| match v {
        Scalar::Text(s) if !s.is_empty() => Cell::Text(s.to_string()),
        Scalar::Number(n) => Cell::Number(*n),
        _ => Cell::Empty,
    };
    match field {
        Field::Label => scalar(&record.label),
        Field::Timestamp => scalar(&record.timestamp),
        Field::Reason => scalar(&record.reason),
        Field::Outcome => scalar(&record.outcome),
        Field::Duration => scalar(&record.duration),
        Field::User => scalar(&record.user),
        Field::MainFile => scalar(&record.main_file),
        Field::Version => scalar(&record.version),
        Field::Executable => scalar(&record.executable),
        Field::ScriptArguments => scalar(&record.script_arguments),
        Field::Repository => scalar(&record.repository),
        Field::Stdout => scalar(&record.stdout_stderr),
        Field::Tag => {
            if record.tags.is_empty() {
                Cell::Empty
            } else {
                Cell::Text(record.tags.join(","))
            }
        }
        Field::Param(key) => match param(key) {
            Some(ParamCell::Number(n)) => Cell::Number(n),
            Some(ParamCell::Text(t)) => Cell::Text(t),
            None => Cell::Empty,
        },
        // Refused as columns by the parser (a record has many files).
        Field::File { .. } | Field::Parent | Field::Child => Cell::Empty,
        Field::Dep(name) => record
            .dependencies
            .iter()
            .find(|(n, _)| n.as_str() == Some(name.as_str()))
            .and_then(|(_, v)| v.as_str())
            .map_or(Cell::Empty, |v| Cell::Text(v.to_string())),
    }
}

/// The header of a column: `tags` for the tag set (as the CSV header
/// names it), the field's query name otherwise.
pub fn header(field: &Field) -> String {
    match field {
        Field::Tag => "tags".into(),
        other => other.name(),
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a
/// line break (or a `;`, the list separator of many locales, so that it
/// stays one cell there too); a text a spreadsheet would run as a formula
/// gets a leading `'` ([`runs_as_formula`]).
pub fn csv_field(cell: &Cell, out: &mut String) {
    let mut text = cell.text();
    if let Cell::Text(t) = cell {
        if runs_as_formula(t) {
            text.insert(0, '\'');
        }
    }
    if text.contains([',', '"', '\n', '\r', ';']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

/// Whether a spreadsheet would run a text as a formula (SPEC 7.3, 7.6): it
/// starts with tab or carriage return, or, after any leading spaces
/// (non-breaking ones too), with `=`, `+`, `-`, `@` or their full-width
/// forms, and is not a number; or a part of it after a `;` does.
fn runs_as_formula(text: &str) -> bool {
    let starts_risky = |part: &str| {
        if part.starts_with(['\t', '\r']) {
            return true;
        }
        let rest = part.trim_start();
        rest.starts_with([
            '=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
        ]) && rest.trim().parse::<f64>().is_err()
    };
    text.split(';').any(starts_risky)
}

/// One CSV line of cells, ended with CRLF.
pub fn csv_line(cells: impl IntoIterator<Item = Cell>, out: &mut String) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&c, out);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut out = String::new();
        csv_line(
            [
                Cell::Text("=HYPERLINK(\"x\")".into()),
                Cell::Text("-2.5".into()),
                Cell::Number(-3.0),
                Cell::Text("a,b".into()),
                Cell::Text("@SUM(A1)".into()),
                Cell::Empty,
                Cell::Text("line\nbreak".into()),
                Cell::Number(0.25),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            "\"'=HYPERLINK(\"\"x\"\")\",-2.5,-3,\"a,b\",'@SUM(A1),,\"line\nbreak\",0.25\r\n"
        );
    }

    /// Regression (SPEC 7.6): formulas behind a space, a non-breaking
    /// space, a full-width `＝` or a `;` went through undefused.
    #[test]
    fn formulas_behind_spaces_full_width_signs_and_semicolons_are_defused() {
        for (cell, want) in [
            (" =1+1", "' =1+1"),
            ("\u{a0}=cmd|' /C calc'!A0", "'\u{a0}=cmd|' /C calc'!A0"),
            ("\u{FF1D}HYPERLINK(1)", "'\u{FF1D}HYPERLINK(1)"),
            ("\u{3000}@SUM(A1)", "'\u{3000}@SUM(A1)"),
            ("ok;=1+1", "\"'ok;=1+1\""),
            ("a; b", "\"a; b\""),
            (" -2.5", " -2.5"),
            ("1;-2", "\"1;-2\""),
            ("plain", "plain"),
        ] {
            let mut out = String::new();
            csv_field(&Cell::Text(cell.into()), &mut out);
            assert_eq!(out, want, "{cell:?}");
        }
    }

    #[test]
    fn cells_of_fixed_fields_parameters_and_dependencies() {
        let json = serde_json::json!({
            "label": "r1", "duration": 1.5, "reason": "", "tags": ["b", "a"],
            "executable": {"name": "Python"},
            "dependencies": [{"name": "numpy", "version": "2.0.1"}],
        })
        .to_string();
        let r = Summary::read(&json).unwrap();
        let p = |k: &str| (k == "n").then_some(ParamCell::Number(50.0));
        assert_eq!(cell(&Field::Label, &r, p), Cell::Text("r1".into()));
        assert_eq!(cell(&Field::Duration, &r, p), Cell::Number(1.5));
        assert_eq!(cell(&Field::Reason, &r, p), Cell::Empty);
        assert_eq!(cell(&Field::Tag, &r, p), Cell::Text("b,a".into()));
        assert_eq!(cell(&Field::Executable, &r, p), Cell::Text("Python".into()));
        assert_eq!(cell(&Field::Param("n".into()), &r, p), Cell::Number(50.0));
        assert_eq!(cell(&Field::Param("m".into()), &r, p), Cell::Empty);
        assert_eq!(
            cell(&Field::Dep("numpy".into()), &r, p),
            Cell::Text("2.0.1".into())
        );
        assert_eq!(Cell::Number(50.0).text(), "50");
    }
}
