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
use super::sql::{Arg, Dialect};
use crate::query::{Expr, Field, Op, SortKey, Value};

/// The parameters of an SQL text, numbered in order (`?1` is always the
/// project), and the dialect it is written in.
pub(super) struct Builder {
    pub args: Vec<Arg<'static>>,
    pub dialect: Dialect,
    /// Projects besides `?1` whose records may be parents or children
    /// (`None`: every project).
    pub readable: Option<Vec<String>>,
}

impl Builder {
    pub fn new(project: &str, dialect: Dialect) -> Builder {
        Builder {
            args: vec![Arg::from(project.to_string())],
            dialect,
            readable: Some(Vec::new()),
        }
    }

    /// A placeholder for `v`.
    pub fn arg(&mut self, v: Arg<'static>) -> String {
        self.args.push(v);
        format!("?{}", self.args.len())
    }

    pub fn text(&mut self, s: &str) -> String {
        self.arg(Arg::from(s.to_string()))
    }
}

/// Where a fixed field is kept: a column of `records r`, or a path into
/// its JSON body.
fn place(field: &Field) -> Option<Result<&'static str, &'static [&'static str]>> {
    Some(match field {
        Field::Label => Ok("r.label"),
        Field::Timestamp => Ok("r.timestamp"),
        Field::Reason => Err(&["reason"]),
        Field::Outcome => Err(&["outcome"]),
        Field::Duration => Err(&["duration"]),
        Field::User => Err(&["user"]),
        Field::MainFile => Err(&["main_file"]),
        Field::Version => Err(&["version"]),
        Field::Executable => Err(&["executable", "name"]),
        Field::ScriptArguments => Err(&["script_arguments"]),
        Field::Repository => Err(&["repository", "url"]),
        Field::Stdout => Err(&["stdout_stderr"]),
        Field::Tag
        | Field::Param(_)
        | Field::Dep(_)
        | Field::File { .. }
        | Field::Parent
        | Field::Child => return None,
    })
}

/// The body as PostgreSQL's `json`, read without failing on `\u0000`
/// (its text type cannot hold NUL, so extracting any text from a body with
/// one failed the whole search, SPEC 7.6): the escape reads as U+FFFD for
/// the comparison, as the index keeps it. An escaped backslash (`\\`) is
/// set aside first, so that a text holding the six characters `\u0000`
/// stays as it is. The stored record is unchanged.
const PG_BODY: &str = "replace(replace(replace(r.body, E'\\\\\\\\', chr(1)), E'\\\\u0000', E'\\\\ufffd'), chr(1), E'\\\\\\\\')::json";

/// The JSON value at `path` of the body (PostgreSQL).
fn pg_json(path: &[&str]) -> String {
    format!("({PG_BODY} #> '{{{}}}')", path.join(","))
}

/// A fixed field's value as SQL compares it as text (`None` for tags,
/// parameters and dependencies, which live in tables of their own). On
/// SQLite a JSON number stays a number; on PostgreSQL text is compared
/// byte by byte, as SQLite does.
pub(super) fn field_text(d: Dialect, field: &Field) -> String {
    match (place(field).expect("a fixed field"), d) {
        (Ok(col), _) => col.to_string(),
        (Err(path), Dialect::Sqlite) => format!("json_extract(r.body, '$.{}')", path.join(".")),
        (Err(path), Dialect::Postgres) => {
            format!("(({PG_BODY} #>> '{{{}}}') COLLATE \"C\")", path.join(","))
        }
    }
}

/// A fixed field's value when it is a number, else NULL.
fn field_number(d: Dialect, field: &Field) -> String {
    match (place(field).expect("a fixed field"), d) {
        (Ok(col), Dialect::Sqlite) => {
            format!("(CASE WHEN typeof({col}) IN ('integer', 'real') THEN {col} END)")
        }
        (Ok(_), Dialect::Postgres) => "CAST(NULL AS DOUBLE PRECISION)".into(),
        (Err(_), Dialect::Sqlite) => {
            let col = field_text(d, field);
            format!("(CASE WHEN typeof({col}) IN ('integer', 'real') THEN {col} END)")
        }
        (Err(path), Dialect::Postgres) => {
            let j = pg_json(path);
            format!(
                "(CASE WHEN json_typeof({j}) = 'number' THEN ({j}::text)::double precision END)"
            )
        }
    }
}

/// Whether a fixed field holds the JSON boolean `v`.
fn field_bool(b: &mut Builder, field: &Field, op: Op, v: bool) -> String {
    match (place(field).expect("a fixed field"), b.dialect) {
        (_, Dialect::Sqlite) => {
            let col = field_text(b.dialect, field);
            let p = b.arg(Arg::Int(v as i64));
            format!("{col} {} {p}", sql_op(op))
        }
        (Ok(_), Dialect::Postgres) => "FALSE".into(),
        (Err(path), Dialect::Postgres) => {
            let j = pg_json(path);
            let p = b.text(if v { "true" } else { "false" });
            format!(
                "(json_typeof({j}) = 'boolean' AND ({j}::text) {} {p})",
                sql_op(op)
            )
        }
    }
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

/// `field OP value` for a fixed field of `records r`, true or false
/// (never NULL: a missing value matches no comparison, but does match
/// `NOT` of one).
fn compare_field(b: &mut Builder, field: &Field, op: Op, value: &Value) -> String {
    let cond = match (op, value) {
        (Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne, Value::Number(n)) => {
            let col = field_number(b.dialect, field);
            let p = b.arg(Arg::Real(*n));
            format!("{col} {} {p}", sql_op(op))
        }
        (Op::Contains | Op::NotContains, _) if b.dialect == Dialect::Sqlite => {
            // The field read from the body once per record, however many
            // `~` name it: `json_extract` per term held a copy of a long
            // output per term (64 terms over 1 MiB outputs took 100 MB).
            let needle = b.text(&fold(&needle_of(value)));
            let found = match place(field).expect("a fixed field") {
                Ok(col) => format!("contains_folded({col}, {needle})"),
                Err(path) => format!(
                    "contains_field(r.id, r.body, '{}', {needle})",
                    path.join(".")
                ),
            };
            if op == Op::Contains {
                found
            } else {
                format!("NOT ({found})")
            }
        }
        (Op::Contains | Op::NotContains, _) | (_, Value::None | Value::Text(_)) => {
            let col = field_text(b.dialect, field);
            compare_plain(b, &col, op, value)
        }
        (op, Value::Bool(v)) => field_bool(b, field, op, *v),
    };
    format!("coalesce({cond}, FALSE)")
}

/// `col OP value` as an index can answer it: for the columns inside the
/// subqueries of tags, parameters and dependencies, where a NULL only
/// leaves a row out.
fn compare_plain(b: &mut Builder, col: &str, op: Op, value: &Value) -> String {
    match (op, value) {
        (Op::Contains | Op::NotContains, v) => {
            // Case folded by Unicode's rules on both engines alike
            // (`école` finds "ÉCOLE"): SQLite's own lower() folds ASCII only.
            let p = b.text(&fold(&needle_of(v)));
            let found = match b.dialect {
                Dialect::Sqlite => format!("contains_folded({col}, {p})"),
                Dialect::Postgres => {
                    format!("strpos(lower(({col}) COLLATE \"und-x-icu\"), {p}) > 0")
                }
            };
            if op == Op::Contains {
                found
            } else {
                format!("NOT ({found})")
            }
        }
        (Op::Eq, Value::None) => format!("({col} IS NULL OR {col} = '')"),
        (_, Value::None) => format!("({col} IS NOT NULL AND {col} <> '')"),
        // Tags and versions are text: a number matches none of them.
        (_, Value::Number(_)) => "FALSE".into(),
        (op, Value::Text(s)) => {
            let p = b.text(s);
            format!("{col} {} {p}", sql_op(op))
        }
        (_, Value::Bool(_)) => "FALSE".into(),
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
            let p = b.arg(Arg::Real(*n));
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

/// For set-valued fields (tags, files, parents and children), where `=`
/// is membership and `~` a substring of some member's: the operator to ask
/// of one member, and whether the answer is negated (`!=`, `!~`: no member
/// matches).
fn membership(op: Op) -> (Op, bool) {
    match op {
        Op::Ne => (Op::Eq, true),
        Op::NotContains => (Op::Contains, true),
        other => (other, false),
    }
}

/// The set term of a comparison on tags, parameters or dependencies.
fn set_term(b: &mut Builder, field: &Field, op: Op, value: &Value) -> Option<SetTerm> {
    Some(match field {
        Field::Tag => {
            // `tag = x`: membership; `tag ~ x`: a substring of some tag;
            // `!=` and `!~` are their negations.
            let (inner_op, negate) = membership(op);
            let cond = compare_plain(b, "t.tag", inner_op, value);
            SetTerm {
                table: "record_tags",
                alias: 't',
                cond: format!("t.project_id = ?1 AND {cond}"),
                negate,
            }
        }
        Field::File { output, path } => {
            // Like tags: `=` is membership, `~` a substring of some file's;
            // `!=` and `!~` their negations.
            let (inner_op, negate) = membership(op);
            let (col, value) = file_column(*path, value);
            let cond = compare_plain(b, col, inner_op, &value);
            SetTerm {
                table: "record_files",
                alias: 'f',
                cond: format!(
                    "f.project_id = ?1 AND f.role = {} AND {cond}",
                    *output as i64
                ),
                negate,
            }
        }
        Field::Param(key) => {
            let k = b.text(key);
            let cond = param_condition(b, op, value);
            SetTerm {
                table: "record_params",
                alias: 'p',
                cond: format!("p.project_id = ?1 AND p.key = {k} AND {cond}"),
                negate: false,
            }
        }
        Field::Dep(name) => {
            let n = b.text(name);
            let cond = compare_plain(b, "d.version", op, value);
            SetTerm {
                table: "record_deps",
                alias: 'd',
                cond: format!("d.project_id = ?1 AND d.name = {n} AND {cond}"),
                negate: false,
            }
        }
        _ => return None,
    })
}

/// The set term of `field in (v1, v2, ...)`: one probe of the index with
/// every value (`IN (...)`), not a subquery per value (SPEC 7.6).
fn in_term(b: &mut Builder, field: &Field, values: &[Value]) -> Option<SetTerm> {
    let texts = |b: &mut Builder| -> Vec<String> {
        values
            .iter()
            .filter_map(|v| match v {
                Value::Text(t) => Some(b.text(t)),
                _ => None,
            })
            .collect()
    };
    let one_of = |col: &str, marks: Vec<String>| -> Option<String> {
        (!marks.is_empty()).then(|| format!("{col} IN ({})", marks.join(", ")))
    };
    let any = |parts: Vec<String>| -> String {
        match parts.len() {
            0 => "FALSE".into(),
            _ => format!("({})", parts.join(" OR ")),
        }
    };
    Some(match field {
        Field::Tag => {
            let marks = texts(b);
            SetTerm {
                table: "record_tags",
                alias: 't',
                cond: format!(
                    "t.project_id = ?1 AND {}",
                    any(one_of("t.tag", marks).into_iter().collect())
                ),
                negate: false,
            }
        }
        Field::File { output, path } => {
            let marks: Vec<String> = values
                .iter()
                .filter_map(|v| match file_column(*path, v) {
                    (_, Value::Text(t)) => Some(b.text(&t)),
                    _ => None,
                })
                .collect();
            let col = if *path { "f.path" } else { "f.digest" };
            SetTerm {
                table: "record_files",
                alias: 'f',
                cond: format!(
                    "f.project_id = ?1 AND f.role = {} AND {}",
                    *output as i64,
                    any(one_of(col, marks).into_iter().collect())
                ),
                negate: false,
            }
        }
        Field::Param(key) => {
            let k = b.text(key);
            let numbers: Vec<String> = values
                .iter()
                .filter_map(|v| match v {
                    Value::Number(n) => Some(b.arg(Arg::Real(*n))),
                    _ => None,
                })
                .collect();
            let mut parts: Vec<String> = one_of("p.num", numbers)
                .map(|c| format!("(p.kind = {NUMBER} AND {c})"))
                .into_iter()
                .collect();
            parts.extend(one_of("p.text", texts(b)));
            let bools: Vec<String> = values
                .iter()
                .filter_map(|v| match v {
                    Value::Bool(t) => Some(b.text(if *t { "True" } else { "False" })),
                    _ => None,
                })
                .collect();
            parts.extend(one_of("p.text", bools).map(|c| format!("(p.kind = {BOOL} AND {c})")));
            if values.contains(&Value::None) {
                parts.push(format!("p.kind = {NONE}"));
            }
            SetTerm {
                table: "record_params",
                alias: 'p',
                cond: format!("p.project_id = ?1 AND p.key = {k} AND {}", any(parts)),
                negate: false,
            }
        }
        Field::Dep(name) => {
            let n = b.text(name);
            let mut parts: Vec<String> = one_of("d.version", texts(b)).into_iter().collect();
            if values.contains(&Value::None) {
                parts.push(compare_plain(b, "d.version", Op::Eq, &Value::None));
            }
            SetTerm {
                table: "record_deps",
                alias: 'd',
                cond: format!("d.project_id = ?1 AND d.name = {n} AND {}", any(parts)),
                negate: false,
            }
        }
        _ => return None,
    })
}

fn exists_term(b: &mut Builder, field: &Field) -> Option<SetTerm> {
    let (table, alias, cond) = match field {
        Field::File { output, .. } => (
            "record_files",
            'f',
            format!("f.project_id = ?1 AND f.role = {}", *output as i64),
        ),
        Field::Tag => ("record_tags", 't', "t.project_id = ?1".to_string()),
        Field::Param(key) => (
            "record_params",
            'p',
            format!("p.project_id = ?1 AND p.key = {}", b.text(key)),
        ),
        Field::Dep(name) => (
            "record_deps",
            'd',
            format!("d.project_id = ?1 AND d.name = {}", b.text(name)),
        ),
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
        Expr::In { field, values } => in_term(b, field, values),
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
            let mut b = Builder::new("", Dialect::Sqlite);
            node_term(&mut b, e).is_some_and(|t| !t.negate)
        })
        .collect()
}

/// SQL counting the records of a driving conjunct, up to `cap`.
pub(super) fn estimate(b: &mut Builder, expr: &Expr, cap: i64) -> Option<String> {
    let term = node_term(b, expr)?;
    let cap = b.arg(Arg::Int(cap));
    Some(format!(
        // `?1` (the project) is named even where the term does not need
        // it: PostgreSQL types every parameter from where it is used.
        "SELECT count(*) FROM ({} LIMIT {cap}) AS est WHERE CAST(?1 AS TEXT) IS NOT NULL",
        term.subquery()
    ))
}

/// Whether a record has a direct parent (or child) in lineage whose label
/// meets `label` (any, when `None`): a file it read was written by
/// another record of a readable project (or a file it wrote was read).
fn kin(b: &mut Builder, child: bool, label: Option<(Op, &Value)>) -> String {
    let (own, other) = if child { (1, 0) } else { (0, 1) };
    let projects = match b.readable.clone() {
        None => String::new(),
        Some(list) => {
            let mut marks = vec!["?1".to_string()];
            marks.extend(list.iter().map(|p| b.text(p)));
            format!(" AND o.project_id IN ({})", marks.join(", "))
        }
    };
    let (cond, negate) = match label {
        None => (String::new(), false),
        Some((op, value)) => {
            let (inner, negate) = membership(op);
            (
                format!(" AND {}", compare_plain(b, "k.label", inner, value)),
                negate,
            )
        }
    };
    let test = match b.dialect {
        // A lookup per candidate record, through the indexes: its files,
        // then for each the records on the other side of its digest.
        // PostgreSQL would make one EXISTS over the join a semi-join over
        // every file entry, and with `OFFSET 0` to keep it per record it
        // still took the join of a digest read by every record (the
        // calibration file) for a third of a million rows, so that reading
        // all of the table for the record's own files looked cheap: past
        // the deadline at a million records. Two nested EXISTS, each kept
        // a sub-plan, leave it only the indexes to choose (0.4 s).
        Dialect::Postgres => format!(
            "EXISTS (SELECT 1 FROM record_files f \
               WHERE f.record_id = r.id AND f.role = {own} AND f.linkable = 1 \
                 AND EXISTS (SELECT 1 FROM record_files o JOIN records k ON k.id = o.record_id \
                              WHERE o.digest = f.digest AND o.role = {other} AND o.linkable = 1 \
                                AND o.record_id <> f.record_id{projects}{cond} OFFSET 0) \
             OFFSET 0)"
        ),
        Dialect::Sqlite => format!(
            "EXISTS (SELECT 1 FROM record_files f \
               JOIN record_files o ON o.digest = f.digest AND o.role = {other} AND o.linkable = 1 \
                 AND o.record_id <> f.record_id{projects} \
               JOIN records k ON k.id = o.record_id \
             WHERE f.record_id = r.id AND f.role = {own} AND f.linkable = 1{cond})"
        ),
    };
    if negate {
        format!("NOT {test}")
    } else {
        test
    }
}

fn compare(b: &mut Builder, field: &Field, op: Op, value: &Value, drive: bool) -> String {
    if matches!(field, Field::Parent | Field::Child) {
        return kin(b, *field == Field::Child, Some((op, value)));
    }
    match set_term(b, field, op, value) {
        Some(term) => term.render(drive),
        None => compare_field(b, field, op, value),
    }
}

fn exists(b: &mut Builder, field: &Field, drive: bool) -> String {
    if matches!(field, Field::Parent | Field::Child) {
        return kin(b, *field == Field::Child, None);
    }
    match exists_term(b, field) {
        Some(term) => term.render(drive),
        None => {
            let col = field_text(b.dialect, field);
            format!("coalesce({col} IS NOT NULL AND {col} <> '', FALSE)")
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
        Expr::In { field, values } => match in_term(b, field, values) {
            Some(term) => term.render(drive),
            None if matches!(field, Field::Parent | Field::Child) => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| compare(b, field, Op::Eq, v, false))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            None => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| compare_field(b, field, Op::Eq, v))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
        },
        Expr::Exists(field) => exists(b, field, drive),
    }
}

/// `LEFT JOIN`s and `ORDER BY` terms for `sort`: each key in numeric order
/// for numbers (before text ascending, after it descending), records
/// without it last (ascending or descending), then the default, newest
/// first. The same order on both engines: no term ever compares a NULL.
/// Each term is an expression and its direction (`ASC`, `DESC` or none).
pub(super) fn order(b: &mut Builder, sort: &[SortKey]) -> (String, Vec<(String, &'static str)>) {
    let mut joins = String::new();
    let mut terms = Vec::new();
    for (i, key) in sort.iter().enumerate() {
        let dir = if key.descending { "DESC" } else { "ASC" };
        let (num, text) = match &key.field {
            Field::Param(name) => {
                let k = b.text(name);
                joins.push_str(&format!(
                    " LEFT JOIN record_params s{i} ON s{i}.record_id = r.id AND s{i}.key = {k}"
                ));
                (Some(format!("s{i}.num")), format!("s{i}.text"))
            }
            Field::Dep(name) => {
                let n = b.text(name);
                joins.push_str(&format!(
                    " LEFT JOIN record_deps s{i} ON s{i}.record_id = r.id AND s{i}.name = {n}"
                ));
                (None, format!("s{i}.version"))
            }
            Field::Tag => (
                None,
                "(SELECT min(t.tag) FROM record_tags t WHERE t.record_id = r.id)".into(),
            ),
            fixed => (
                Some(field_number(b.dialect, fixed)),
                field_text(b.dialect, fixed),
            ),
        };
        match num {
            Some(num) => {
                terms.push((format!("({num} IS NULL AND {text} IS NULL)"), ""));
                terms.push((format!("({num} IS NULL)"), dir));
                terms.push((num, dir));
            }
            None => terms.push((format!("({text} IS NULL)"), "")),
        }
        terms.push((text, dir));
    }
    terms.push(("r.timestamp".into(), "DESC"));
    terms.push(("r.label".into(), "DESC"));
    (joins, terms)
}

/// The column of a file condition, and its value: digests are compared
/// as stored, lowercase.
fn file_column(path: bool, value: &Value) -> (&'static str, Value) {
    if path {
        ("f.path", value.clone())
    } else {
        let v = match value {
            Value::Text(t) => Value::Text(t.trim().to_ascii_lowercase()),
            other => other.clone(),
        };
        ("f.digest", v)
    }
}

/// The text a `~` looks for.
fn needle_of(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text folded for `~` by Unicode's rules (the needle, on both engines).
pub(super) fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// Whether `text` (UTF-8, invalid bytes replaced), folded as [`fold`]
/// does, contains `needle` (folded already): the SQLite function
/// `contains_folded`.
pub(super) fn contains_folded(text: &[u8], needle: &str) -> bool {
    fold(&String::from_utf8_lossy(text)).contains(needle)
}

/// The fields of one record read by `contains_field`: its id, and each
/// dotted path with the field folded, or `None` when absent.
type ReadFields = (i64, Vec<(String, Option<String>)>);

/// Registers the SQLite functions of `~` on a connection.
pub(super) fn register_functions(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    // `contains_folded(text, needle)` and `contains_field(id, body,
    // path, needle)`: whether a text, or a field of a record's JSON,
    // case folded by Unicode's rules, contains `needle` (folded
    // already): `~` on SQLite, whose lower() folds ASCII only, as
    // PostgreSQL's ICU lower() folds (`contains_field`).
    conn.create_scalar_function(
        "contains_folded",
        2,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            use rusqlite::types::ValueRef;
            let needle = match ctx.get_raw(1) {
                ValueRef::Text(t) => String::from_utf8_lossy(t),
                _ => return Ok(None),
            };
            let number;
            let text: &[u8] = match ctx.get_raw(0) {
                ValueRef::Text(t) => t,
                ValueRef::Integer(i) => {
                    number = i.to_string();
                    number.as_bytes()
                }
                ValueRef::Real(f) => {
                    number = f.to_string();
                    number.as_bytes()
                }
                ValueRef::Null | ValueRef::Blob(_) => return Ok(None),
            };
            Ok(Some(contains_folded(text, &needle)))
        },
    )?;
    conn.create_scalar_function(
        "contains_field",
        4,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            use rusqlite::types::ValueRef;
            let (
                ValueRef::Integer(id),
                ValueRef::Text(body),
                ValueRef::Text(path),
                ValueRef::Text(needle),
            ) = (
                ctx.get_raw(0),
                ctx.get_raw(1),
                ctx.get_raw(2),
                ctx.get_raw(3),
            )
            else {
                return Ok(None);
            };
            let (path, needle) = (
                String::from_utf8_lossy(path),
                String::from_utf8_lossy(needle),
            );
            Ok(contains_field(id, body, &path, &needle))
        },
    )?;
    Ok(())
}

thread_local! {
    /// The last record's fields read by `contains_field`. Emptied before
    /// every statement (`forget_fields`), so a record changed between two
    /// statements is read again.
    static FIELDS: std::cell::RefCell<ReadFields> =
        const { std::cell::RefCell::new((i64::MIN, Vec::new())) };
}

/// Forgets the fields `contains_field` kept (a new statement begins).
pub(super) fn forget_fields() {
    FIELDS.with(|f| {
        let mut f = f.borrow_mut();
        f.0 = i64::MIN;
        f.1.clear();
    });
}

/// Whether the field at `path` (dotted) of record `id`'s stored JSON
/// `body`, folded, contains `needle` (folded already); `None` when the
/// record has no such field (as `json_extract` gives NULL). The SQLite
/// function `contains_field`: each field of a record is read and folded
/// once, however many `~` of a query name it.
pub(super) fn contains_field(id: i64, body: &[u8], path: &str, needle: &str) -> Option<bool> {
    FIELDS.with(|f| {
        let mut f = f.borrow_mut();
        if f.0 != id {
            f.0 = id;
            f.1.clear();
        }
        if let Some((_, text)) = f.1.iter().find(|(p, _)| p == path) {
            return text.as_ref().map(|t| t.contains(needle));
        }
        let text = read_field(body, path).map(|t| fold(&t));
        let found = text.as_ref().map(|t| t.contains(needle));
        f.1.push((path.to_string(), text));
        found
    })
}

/// The field at a dotted path of a stored record's JSON, as text the way
/// SQLite's `json_extract` gives it (numbers and booleans as their text).
/// Everything else in the record is skipped unread.
fn read_field(body: &[u8], path: &str) -> Option<String> {
    let keys: Vec<&str> = path.split('.').collect();
    let mut de = serde_json::Deserializer::from_slice(body);
    serde::de::DeserializeSeed::deserialize(At(&keys), &mut de).ok()?
}

/// Reads the value at a path of keys, skipping the rest.
struct At<'k>(&'k [&'k str]);

impl<'de> serde::de::DeserializeSeed<'de> for At<'_> {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for At<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            // An object where a text was asked for: its JSON, as json_extract gives it.
            let v: serde_json::Map<String, serde_json::Value> =
                serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            return Ok(Some(serde_json::Value::Object(v).to_string()));
        };
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == *first && found.is_none() {
                found = map.next_value_seed(At(rest))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v: Vec<serde_json::Value> =
            serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(self
            .0
            .is_empty()
            .then(|| serde_json::Value::Array(v).to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then_some(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self
            .0
            .is_empty()
            .then(|| if v { "1" } else { "0" }.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self
            .0
            .is_empty()
            .then(|| serde_json::Value::from(v).to_string()))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (SPEC 7.6): 64 `stdout ~` terms held a copy of a long
    /// output per term (100 MB for 1 MiB outputs). A field is read from the
    /// body once per record and kept folded for the other terms.
    #[test]
    fn a_field_is_read_once_per_record_as_json_extract_reads_it() {
        let body = r#"{"reason": "ÉCOLE", "duration": 1.5, "ok": true, "executable": {"name": "Python"}, "n": null, "l": [1, "a"]}"#.as_bytes();
        assert_eq!(read_field(body, "reason").as_deref(), Some("ÉCOLE"));
        assert_eq!(read_field(body, "duration").as_deref(), Some("1.5"));
        assert_eq!(read_field(body, "ok").as_deref(), Some("1"));
        assert_eq!(
            read_field(body, "executable.name").as_deref(),
            Some("Python")
        );
        assert_eq!(
            read_field(body, "executable").as_deref(),
            Some(r#"{"name":"Python"}"#)
        );
        assert_eq!(read_field(body, "l").as_deref(), Some(r#"[1,"a"]"#));
        assert_eq!(read_field(body, "n"), None);
        assert_eq!(read_field(body, "missing"), None);
        assert_eq!(read_field(body, "reason.deeper"), None);
        assert_eq!(read_field(b"not json", "reason"), None);
        forget_fields();
        assert_eq!(contains_field(7, body, "reason", "école"), Some(true));
        // Kept for the record: a second body under the same id is not read.
        assert_eq!(contains_field(7, b"{}", "reason", "cole"), Some(true));
        assert_eq!(contains_field(8, b"{}", "reason", "cole"), None);
        forget_fields();
        assert_eq!(
            contains_field(7, b"{\"reason\": \"x\"}", "reason", "cole"),
            Some(false)
        );
    }

    /// Regression (SPEC 7.6): `sort=params.k0,duration,...` (16 keys) made
    /// an ORDER BY of 66 terms over a LEFT JOIN, which crashed the process
    /// inside SQLite (Debian's 3.40 crashes on it as well). The bundled
    /// SQLite runs the same statement shape, far past 64 terms.
    #[test]
    fn bundled_sqlite_survives_an_order_by_of_more_than_64_terms_over_a_left_join() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE records (id INTEGER PRIMARY KEY, project_id TEXT, label TEXT, \
               timestamp TEXT, body TEXT);
             CREATE TABLE record_params (record_id INTEGER, key TEXT, num REAL, text TEXT, \
               PRIMARY KEY (record_id, key)) WITHOUT ROWID;",
        )
        .unwrap();
        for i in 0..50 {
            db.execute(
                "INSERT INTO records VALUES (?1, 'P', 'l' || ?1, '2024-01-01', json_object('duration', ?1 * 0.5))",
                [i],
            )
            .unwrap();
            db.execute("INSERT INTO record_params VALUES (?1, 'k0', ?1, ?1)", [i])
                .unwrap();
        }
        let dur = "json_extract(r.body, '$.duration')";
        let mut terms = vec!["s0.num".to_string(), "s0.text".to_string()];
        for _ in 0..70 {
            terms.push(format!(
                "(CASE WHEN typeof({dur}) IN ('integer', 'real') THEN {dur} END)"
            ));
            terms.push(dur.to_string());
        }
        let sql = format!(
            "SELECT r.label FROM records r LEFT JOIN record_params s0 \
             ON s0.record_id = r.id AND s0.key = 'k0' WHERE r.project_id = 'P' ORDER BY {}",
            terms.join(", ")
        );
        let n = db
            .prepare(&sql)
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .count();
        assert_eq!(n, 50);
    }

    /// The most sort keys allowed, of every kind, stay within 64 ORDER BY
    /// terms (the limit past which older SQLite crashed) and 8 joins.
    #[test]
    fn the_largest_sort_allowed_stays_within_64_order_terms() {
        use crate::query::MAX_SORT_KEYS;
        let kinds = ["params.a", "deps.b", "duration", "tag", "label", "reason"];
        for kind in kinds {
            let mut b = Builder::new("P", Dialect::Sqlite);
            let keys: Vec<String> = (0..MAX_SORT_KEYS)
                .map(|i| match kind {
                    k if k.starts_with("params") || k.starts_with("deps") => format!("{k}{i}"),
                    k => k.to_string(),
                })
                .collect();
            let sort = crate::query::parse_sort(&keys.join(",")).unwrap();
            let (joins, terms) = order(&mut b, &sort);
            assert!(terms.len() <= 64, "{kind}: {} terms", terms.len());
            assert!(joins.matches("JOIN").count() <= MAX_SORT_KEYS);
        }
        let every = "params.a,deps.b,duration,tag,label,reason,timestamp,user";
        let sort = crate::query::parse_sort(every).unwrap();
        let (_, terms) = order(&mut Builder::new("P", Dialect::Sqlite), &sort);
        assert!(terms.len() <= 64, "{} terms", terms.len());
    }

    fn sql(q: &str) -> (String, Vec<Arg<'static>>) {
        let mut b = Builder::new("P", Dialect::Sqlite);
        let e = crate::query::parse(q).unwrap();
        let c = condition(&mut b, &e, drivers(&e).first().copied());
        (c, b.args)
    }

    #[test]
    fn query_text_never_reaches_sql() {
        let hostile = r#"label = "x'); DROP TABLE records; --" or params.`a'b` > 1"#;
        let (c, args) = sql(hostile);
        assert!(!c.contains("DROP") && !c.contains("a'b"), "{c}");
        assert!(args.contains(&Arg::from("x'); DROP TABLE records; --")));
        assert!(args.contains(&Arg::from("a'b")));
    }

    #[test]
    fn parameters_are_looked_up_by_key_and_typed_value() {
        let (c, args) = sql("params.n > 500 and tag = x");
        assert_eq!(
            c,
            "(r.id IN (SELECT p.record_id FROM record_params p WHERE p.project_id = ?1 AND p.key = ?2 AND (p.kind = 0 AND p.num > ?3)) \
             AND EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.project_id = ?1 AND t.tag = ?4))"
        );
        assert_eq!(
            args[1..],
            [Arg::from("n"), Arg::Real(500.0), Arg::from("x")]
        );
    }
}
