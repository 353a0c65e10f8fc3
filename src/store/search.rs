//! The query language's syntax tree (`crate::query`) turned into SQL with
//! parameters (SPEC 7.2, 7.3): no text of a query ever becomes SQL text;
//! only the shape of the tree chooses among fixed fragments, and every
//! value and key is a bound parameter.
//!
//! Each comparison is true or false, never NULL, so that a record without
//! the field (or key) matches no comparison but does match `not (...)` of
//! one. Parameters, tags and dependency versions are looked up by index
//! (`record_id IN (SELECT ... WHERE key = ? AND num > ?)`).

use super::index::{BOOL, NONE, NUMBER};
use crate::query::{Expr, Field, Op, SortKey, Value};
use rusqlite::types::Value as Sql;

/// The parameters of an SQL text, numbered in order (`?1` is always the
/// project).
pub(super) struct Builder {
    pub args: Vec<Sql>,
}

impl Builder {
    pub fn new(project: &str) -> Builder {
        Builder {
            args: vec![Sql::Text(project.to_string())],
        }
    }

    /// A placeholder for `v`.
    pub fn arg(&mut self, v: Sql) -> String {
        self.args.push(v);
        format!("?{}", self.args.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Sql::Text(s.to_string()))
    }
}

/// The SQL expression of a fixed field on `records r` (`None` for tags,
/// parameters and dependencies, which live in tables of their own).
fn column(field: &Field) -> Option<&'static str> {
    Some(match field {
        Field::Label => "r.label",
        Field::Timestamp => "r.timestamp",
        Field::Reason => "json_extract(r.body, '$.reason')",
        Field::Outcome => "json_extract(r.body, '$.outcome')",
        Field::Duration => "json_extract(r.body, '$.duration')",
        Field::User => "json_extract(r.body, '$.user')",
        Field::MainFile => "json_extract(r.body, '$.main_file')",
        Field::Version => "json_extract(r.body, '$.version')",
        Field::Executable => "json_extract(r.body, '$.executable.name')",
        Field::ScriptArguments => "json_extract(r.body, '$.script_arguments')",
        Field::Repository => "json_extract(r.body, '$.repository.url')",
        Field::Stdout => "json_extract(r.body, '$.stdout_stderr')",
        Field::Tag | Field::Param(_) | Field::Dep(_) => return None,
    })
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Contains | Op::NotContains => unreachable!("containment is not an SQL operator"),
    }
}

/// `col OP value` for a text or number column of `records r`, true or
/// false (never NULL: a missing value matches no comparison, but does
/// match `NOT` of one).
fn compare_value(b: &mut Builder, col: &str, op: Op, value: &Value) -> String {
    let cond = compare_plain(b, col, op, value);
    format!("coalesce({cond}, 0)")
}

/// `col OP value` as an index can answer it: for the columns inside the
/// subqueries of tags, parameters and dependencies, where a NULL only
/// leaves a row out.
fn compare_plain(b: &mut Builder, col: &str, op: Op, value: &Value) -> String {
    match (op, value) {
        (Op::Contains | Op::NotContains, v) => {
            let needle = match v {
                Value::Text(s) => s.clone(),
                other => other.to_string(),
            };
            let p = b.text(&needle);
            let found = format!("instr(lower({col}), lower({p})) > 0");
            if op == Op::Contains {
                found
            } else {
                format!("NOT ({found})")
            }
        }
        (Op::Eq, Value::None) => format!("({col} IS NULL OR {col} = '')"),
        (_, Value::None) => format!("({col} IS NOT NULL AND {col} <> '')"),
        (op, Value::Number(n)) => {
            let p = b.arg(Sql::Real(*n));
            format!(
                "(typeof({col}) IN ('integer', 'real') AND {col} {} {p})",
                sql_op(op)
            )
        }
        (op, Value::Text(s)) => {
            let p = b.text(s);
            format!("{col} {} {p}", sql_op(op))
        }
        (op, Value::Bool(v)) => {
            let p = b.arg(Sql::Integer(*v as i64));
            format!("{col} {} {p}", sql_op(op))
        }
    }
}

/// The condition on one parameter row `p` (columns kind, num, text).
fn param_condition(b: &mut Builder, op: Op, value: &Value) -> String {
    match (op, value) {
        (Op::Contains | Op::NotContains, _) => compare_plain(b, "p.text", op, value),
        (Op::Eq, Value::None) => format!("p.kind = {NONE}"),
        (_, Value::None) => format!("p.kind <> {NONE}"),
        (Op::Eq | Op::Ne, Value::Bool(v)) => {
            let t = b.text(if *v { "True" } else { "False" });
            let is = format!("(p.kind = {BOOL} AND p.text = {t})");
            if op == Op::Eq {
                is
            } else {
                format!("NOT {is}")
            }
        }
        (op, Value::Bool(_)) => unreachable!("the parser refuses {op} with a boolean"),
        (op, Value::Number(n)) => {
            let p = b.arg(Sql::Real(*n));
            format!("(p.kind = {NUMBER} AND p.num {} {p})", sql_op(op))
        }
        (op, Value::Text(s)) => {
            let p = b.text(s);
            format!("p.text {} {p}", sql_op(op))
        }
    }
}

/// A condition on one of the tables beside the records: which table, its
/// alias, and the condition on its rows.
struct SetTerm {
    table: &'static str,
    alias: char,
    cond: String,
    negate: bool,
}

impl SetTerm {
    /// The rows' records, for `IN` and for estimates.
    fn subquery(&self) -> String {
        let (t, a, c) = (self.table, self.alias, &self.cond);
        format!("SELECT {a}.record_id FROM {t} {a} WHERE {c}")
    }

    /// As a condition on `r`: the driving term as `r.id IN (...)`, which
    /// SQLite answers by index and then looks each record up; any other as
    /// a probe of the record's own rows (`EXISTS`, by primary key).
    fn render(&self, drive: bool) -> String {
        let (t, a, c) = (self.table, self.alias, &self.cond);
        let test = if drive {
            format!("r.id IN ({})", self.subquery())
        } else {
            format!("EXISTS (SELECT 1 FROM {t} {a} WHERE {a}.record_id = r.id AND {c})")
        };
        if self.negate {
            format!("NOT {test}")
        } else {
            test
        }
    }
}

/// The set term of a comparison on tags, parameters or dependencies.
fn set_term(b: &mut Builder, field: &Field, op: Op, value: &Value) -> Option<SetTerm> {
    Some(match field {
        Field::Tag => {
            // `tag = x`: membership; `tag ~ x`: a substring of some tag;
            // `!=` and `!~` are their negations.
            let (inner_op, negate) = match op {
                Op::Ne => (Op::Eq, true),
                Op::NotContains => (Op::Contains, true),
                other => (other, false),
            };
            let cond = compare_plain(b, "t.tag", inner_op, value);
            SetTerm {
                table: "record_tags",
                alias: 't',
                cond: format!("t.project_id = ?1 AND {cond}"),
                negate,
            }
        }
        Field::Param(key) => {
            let k = b.text(key);
            let cond = param_condition(b, op, value);
            SetTerm {
                table: "record_params",
                alias: 'p',
                cond: format!("p.key = {k} AND {cond}"),
                negate: false,
            }
        }
        Field::Dep(name) => {
            let n = b.text(name);
            let cond = compare_plain(b, "d.version", op, value);
            SetTerm {
                table: "record_deps",
                alias: 'd',
                cond: format!("d.name = {n} AND {cond}"),
                negate: false,
            }
        }
        _ => return None,
    })
}

fn exists_term(b: &mut Builder, field: &Field) -> Option<SetTerm> {
    let (table, alias, cond) = match field {
        Field::Tag => ("record_tags", 't', "t.project_id = ?1".to_string()),
        Field::Param(key) => ("record_params", 'p', format!("p.key = {}", b.text(key))),
        Field::Dep(name) => ("record_deps", 'd', format!("d.name = {}", b.text(name))),
        _ => return None,
    };
    Some(SetTerm {
        table,
        alias,
        cond,
        negate: false,
    })
}

/// The set term of a whole comparison node, if it is one.
fn node_term(b: &mut Builder, expr: &Expr) -> Option<SetTerm> {
    match expr {
        Expr::Compare { field, op, value } => set_term(b, field, *op, value),
        Expr::Exists(field) => exists_term(b, field),
        _ => None,
    }
}

/// The top-level conjuncts of a query that could drive it: comparisons on
/// tags, parameters or dependencies that are not negated.
pub(super) fn drivers(expr: &Expr) -> Vec<&Expr> {
    let items: Vec<&Expr> = match expr {
        Expr::And(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter(|e| {
            let mut b = Builder::new("");
            node_term(&mut b, e).is_some_and(|t| !t.negate)
        })
        .collect()
}

/// SQL counting the records of a driving conjunct, up to `cap`.
pub(super) fn estimate(b: &mut Builder, expr: &Expr, cap: i64) -> Option<String> {
    let term = node_term(b, expr)?;
    let cap = b.arg(Sql::Integer(cap));
    Some(format!(
        "SELECT count(*) FROM ({} LIMIT {cap})",
        term.subquery()
    ))
}

fn compare(b: &mut Builder, field: &Field, op: Op, value: &Value, drive: bool) -> String {
    match set_term(b, field, op, value) {
        Some(term) => term.render(drive),
        None => {
            let col = column(field).expect("a fixed field has a column");
            compare_value(b, col, op, value)
        }
    }
}

fn exists(b: &mut Builder, field: &Field, drive: bool) -> String {
    match exists_term(b, field) {
        Some(term) => term.render(drive),
        None => {
            let col = column(field).expect("a fixed field has a column");
            format!("coalesce({col} IS NOT NULL AND {col} <> '', 0)")
        }
    }
}

/// The SQL condition of `expr` on `records r`; `driver`, one of its
/// top-level conjuncts, is the one SQLite starts from (see [`drivers`]).
pub(super) fn condition(b: &mut Builder, expr: &Expr, driver: Option<&Expr>) -> String {
    let drive = driver.is_some_and(|d| std::ptr::eq(d, expr));
    match expr {
        Expr::Or(items) | Expr::And(items) => {
            let joiner = if matches!(expr, Expr::Or(_)) {
                " OR "
            } else {
                " AND "
            };
            let parts: Vec<String> = items.iter().map(|e| condition(b, e, driver)).collect();
            format!("({})", parts.join(joiner))
        }
        Expr::Not(inner) => format!("NOT ({})", condition(b, inner, None)),
        Expr::Compare { field, op, value } => compare(b, field, *op, value, drive),
        Expr::In { field, values } => {
            let parts: Vec<String> = values
                .iter()
                .map(|v| compare(b, field, Op::Eq, v, false))
                .collect();
            format!("({})", parts.join(" OR "))
        }
        Expr::Exists(field) => exists(b, field, drive),
    }
}

/// `LEFT JOIN`s and `ORDER BY` terms for `sort`: each key in numeric order
/// for numbers, records without it last (ascending or descending), then
/// the default, newest first.
pub(super) fn order(b: &mut Builder, sort: &[SortKey]) -> (String, String) {
    let mut joins = String::new();
    let mut terms = Vec::new();
    for (i, key) in sort.iter().enumerate() {
        let dir = if key.descending { "DESC" } else { "ASC" };
        let value = match &key.field {
            Field::Param(name) => {
                let k = b.text(name);
                joins.push_str(&format!(
                    " LEFT JOIN record_params s{i} ON s{i}.record_id = r.id AND s{i}.key = {k}"
                ));
                format!("coalesce(s{i}.num, s{i}.text)")
            }
            Field::Dep(name) => {
                let n = b.text(name);
                joins.push_str(&format!(
                    " LEFT JOIN record_deps s{i} ON s{i}.record_id = r.id AND s{i}.name = {n}"
                ));
                format!("s{i}.version")
            }
            Field::Tag => "(SELECT min(t.tag) FROM record_tags t WHERE t.record_id = r.id)".into(),
            fixed => column(fixed)
                .expect("a fixed field has a column")
                .to_string(),
        };
        terms.push(format!("({value}) IS NULL"));
        terms.push(format!("{value} {dir}"));
    }
    terms.push("r.timestamp DESC".into());
    terms.push("r.label DESC".into());
    (joins, terms.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(q: &str) -> (String, Vec<Sql>) {
        let mut b = Builder::new("P");
        let e = crate::query::parse(q).unwrap();
        let c = condition(&mut b, &e, drivers(&e).first().copied());
        (c, b.args)
    }

    #[test]
    fn query_text_never_reaches_sql() {
        let hostile = r#"label = "x'); DROP TABLE records; --" or params.`a'b` > 1"#;
        let (c, args) = sql(hostile);
        assert!(!c.contains("DROP") && !c.contains("a'b"), "{c}");
        assert!(args.contains(&Sql::Text("x'); DROP TABLE records; --".into())));
        assert!(args.contains(&Sql::Text("a'b".into())));
    }

    #[test]
    fn parameters_are_looked_up_by_key_and_typed_value() {
        let (c, args) = sql("params.n > 500 and tag = x");
        assert_eq!(
            c,
            "(r.id IN (SELECT p.record_id FROM record_params p WHERE p.key = ?2 AND (p.kind = 0 AND p.num > ?3)) \
             AND EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.project_id = ?1 AND t.tag = ?4))"
        );
        assert_eq!(
            args[1..],
            [
                Sql::Text("n".into()),
                Sql::Real(500.0),
                Sql::Text("x".into())
            ]
        );
    }
}
