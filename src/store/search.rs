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

/// `col OP value` for a text or number column, true or false.
fn compare_value(b: &mut Builder, col: &str, op: Op, value: &Value) -> String {
    match (op, value) {
        (Op::Contains | Op::NotContains, v) => {
            let needle = match v {
                Value::Text(s) => s.clone(),
                other => other.to_string(),
            };
            let p = b.text(&needle);
            let found = format!("instr(lower({col}), lower({p})) > 0");
            if op == Op::Contains {
                format!("coalesce({found}, 0)")
            } else {
                format!("coalesce(NOT ({found}), 0)")
            }
        }
        (Op::Eq, Value::None) => format!("({col} IS NULL OR {col} = '')"),
        (_, Value::None) => format!("({col} IS NOT NULL AND {col} <> '')"),
        (op, Value::Number(n)) => {
            let p = b.arg(Sql::Real(*n));
            format!(
                "coalesce(typeof({col}) IN ('integer', 'real') AND {col} {} {p}, 0)",
                sql_op(op)
            )
        }
        (op, Value::Text(s)) => {
            let p = b.text(s);
            format!("coalesce({col} {} {p}, 0)", sql_op(op))
        }
        (op, Value::Bool(v)) => {
            let p = b.arg(Sql::Integer(*v as i64));
            format!("coalesce({col} {} {p}, 0)", sql_op(op))
        }
    }
}

/// The condition on one parameter row `p` (columns kind, num, text).
fn param_condition(b: &mut Builder, op: Op, value: &Value) -> String {
    match (op, value) {
        (Op::Contains | Op::NotContains, _) => compare_value(b, "p.text", op, value),
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

fn compare(b: &mut Builder, field: &Field, op: Op, value: &Value) -> String {
    match field {
        Field::Tag => {
            // `tag = x`: membership; `tag ~ x`: a substring of some tag;
            // `!=` and `!~` are their negations.
            let (inner_op, negate) = match op {
                Op::Ne => (Op::Eq, true),
                Op::NotContains => (Op::Contains, true),
                other => (other, false),
            };
            let cond = compare_value(b, "t.tag", inner_op, value);
            let set = format!(
                "r.id IN (SELECT t.record_id FROM record_tags t WHERE t.project_id = ?1 AND {cond})"
            );
            if negate {
                format!("NOT {set}")
            } else {
                set
            }
        }
        Field::Param(key) => {
            let k = b.text(key);
            let cond = param_condition(b, op, value);
            format!(
                "r.id IN (SELECT p.record_id FROM record_params p WHERE p.key = {k} AND {cond})"
            )
        }
        Field::Dep(name) => {
            let n = b.text(name);
            let cond = compare_value(b, "d.version", op, value);
            format!("r.id IN (SELECT d.record_id FROM record_deps d WHERE d.name = {n} AND {cond})")
        }
        fixed => {
            let col = column(fixed).expect("a fixed field has a column");
            compare_value(b, col, op, value)
        }
    }
}

fn exists(b: &mut Builder, field: &Field) -> String {
    match field {
        Field::Tag => {
            "r.id IN (SELECT t.record_id FROM record_tags t WHERE t.project_id = ?1)".into()
        }
        Field::Param(key) => {
            let k = b.text(key);
            format!("r.id IN (SELECT p.record_id FROM record_params p WHERE p.key = {k})")
        }
        Field::Dep(name) => {
            let n = b.text(name);
            format!("r.id IN (SELECT d.record_id FROM record_deps d WHERE d.name = {n})")
        }
        fixed => {
            let col = column(fixed).expect("a fixed field has a column");
            format!("coalesce({col} IS NOT NULL AND {col} <> '', 0)")
        }
    }
}

/// The SQL condition of `expr` on `records r`.
pub(super) fn condition(b: &mut Builder, expr: &Expr) -> String {
    match expr {
        Expr::Or(items) | Expr::And(items) => {
            let joiner = if matches!(expr, Expr::Or(_)) {
                " OR "
            } else {
                " AND "
            };
            let parts: Vec<String> = items.iter().map(|e| condition(b, e)).collect();
            format!("({})", parts.join(joiner))
        }
        Expr::Not(inner) => format!("NOT ({})", condition(b, inner)),
        Expr::Compare { field, op, value } => compare(b, field, *op, value),
        Expr::In { field, values } => {
            let parts: Vec<String> = values
                .iter()
                .map(|v| compare(b, field, Op::Eq, v))
                .collect();
            format!("({})", parts.join(" OR "))
        }
        Expr::Exists(field) => exists(b, field),
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
        let c = condition(&mut b, &crate::query::parse(q).unwrap());
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
             AND r.id IN (SELECT t.record_id FROM record_tags t WHERE t.project_id = ?1 AND coalesce(t.tag = ?4, 0)))"
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
