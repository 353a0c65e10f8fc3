//! The syntax tree produced by the parser, and the field names shared by
//! `?q=`, `?sort=` and `?columns=`.
//!
//! Every type implements `Display` giving canonical query text; for any
//! parsed expression `e`, `parse(&e.to_string()) == Ok(e)`.

use std::fmt;

/// A searchable / sortable / displayable property of a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Label,
    Timestamp,
    Reason,
    Outcome,
    Duration,
    User,
    MainFile,
    Version,
    /// The executable's name.
    Executable,
    ScriptArguments,
    /// The repository's url.
    Repository,
    /// The record's `stdout_stderr`.
    Stdout,
    /// Any of the record's tags.
    Tag,
    /// `params.KEY`: a flattened parameter key such as `model.layers`.
    Param(String),
    /// `deps.NAME`: the version of the dependency named NAME.
    Dep(String),
    /// `input.digest`, `input.path`, `output.digest`, `output.path`: true
    /// when any of the record's input (or output) files matches (SPEC 9.3).
    File {
        output: bool,
        path: bool,
    },
    /// `parent`, `child`: the label of a direct parent or child of the
    /// record in lineage (SPEC 9.2), among the projects the caller reads.
    Parent,
    Child,
}

/// How a field's values behave, for the SQL layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A text column (`label`, `timestamp`, `reason`, ...): values in the
    /// AST are always `Text` (or `None`). `timestamp` is text too.
    Text,
    /// A numeric column (`duration`): values are always `Number` (or `None`),
    /// except after `~`/`!~`, which the parser rejects for this kind.
    Number,
    /// The set of tags: `=` is membership, `~` a substring of some tag;
    /// ordering operators and `none` are rejected by the parser.
    Tags,
    /// A parameter: values keep their lexed type (`Number`, `Text`, `Bool`,
    /// `None`); a `Number` matches only numeric parameter values.
    Param,
    /// A dependency version: values are always `Text` (or `None`); the SQL
    /// layer may compare versions however it likes.
    Dep,
    /// The digests or paths of a record's files, or the labels of its
    /// parents or children: like tags, `=` is membership and `~` a
    /// substring of some one's; no ordering, no `none`, and not a sort key
    /// or a column.
    Files,
}

/// The fixed field names, in the order used by error messages.
pub(super) const FIXED_FIELD_NAMES: [&str; 19] = [
    "label",
    "timestamp",
    "reason",
    "outcome",
    "duration",
    "user",
    "main_file",
    "version",
    "executable",
    "script_arguments",
    "repository",
    "stdout",
    "tag",
    "input.digest",
    "input.path",
    "output.digest",
    "output.path",
    "parent",
    "child",
];

impl Field {
    /// The field with this exact fixed name (`label`, ..., `tag`);
    /// `params.KEY` and `deps.NAME` are not handled here.
    pub fn from_fixed_name(name: &str) -> Option<Field> {
        Some(match name {
            "label" => Field::Label,
            "timestamp" => Field::Timestamp,
            "reason" => Field::Reason,
            "outcome" => Field::Outcome,
            "duration" => Field::Duration,
            "user" => Field::User,
            "main_file" => Field::MainFile,
            "version" => Field::Version,
            "executable" => Field::Executable,
            "script_arguments" => Field::ScriptArguments,
            "repository" => Field::Repository,
            "stdout" => Field::Stdout,
            // `tags`, as the CSV header names the column, too.
            "tag" | "tags" => Field::Tag,
            "input.digest" => Field::File {
                output: false,
                path: false,
            },
            "input.path" => Field::File {
                output: false,
                path: true,
            },
            "output.digest" => Field::File {
                output: true,
                path: false,
            },
            "output.path" => Field::File {
                output: true,
                path: true,
            },
            "parent" => Field::Parent,
            "child" => Field::Child,
            _ => return None,
        })
    }

    /// Canonical text: `duration`, `params.n`, ``params.`odd key` ``,
    /// `deps.numpy`. Suitable for CSV headers; `parse_field` reads it back.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// See [`FieldKind`].
    pub fn kind(&self) -> FieldKind {
        match self {
            Field::Duration => FieldKind::Number,
            Field::Tag => FieldKind::Tags,
            Field::Param(_) => FieldKind::Param,
            Field::Dep(_) => FieldKind::Dep,
            Field::File { .. } | Field::Parent | Field::Child => FieldKind::Files,
            _ => FieldKind::Text,
        }
    }
}

/// True when a `params.`/`deps.` key can be written without backticks:
/// non-empty, only letters, digits, `_`, `-` and `.`.
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn write_key(f: &mut fmt::Formatter<'_>, prefix: &str, key: &str) -> fmt::Result {
    f.write_str(prefix)?;
    if is_plain_key(key) {
        return f.write_str(key);
    }
    f.write_str("`")?;
    for c in key.chars() {
        if c == '`' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("`")
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fixed = match self {
            Field::Label => "label",
            Field::Timestamp => "timestamp",
            Field::Reason => "reason",
            Field::Outcome => "outcome",
            Field::Duration => "duration",
            Field::User => "user",
            Field::MainFile => "main_file",
            Field::Version => "version",
            Field::Executable => "executable",
            Field::ScriptArguments => "script_arguments",
            Field::Repository => "repository",
            Field::Stdout => "stdout",
            Field::Tag => "tag",
            Field::File { output, path } => match (output, path) {
                (false, false) => "input.digest",
                (false, true) => "input.path",
                (true, false) => "output.digest",
                (true, true) => "output.path",
            },
            Field::Parent => "parent",
            Field::Child => "child",
            Field::Param(key) => return write_key(f, "params.", key),
            Field::Dep(name) => return write_key(f, "deps.", name),
        };
        f.write_str(fixed)
    }
}

/// A literal in a comparison. Which variants can appear depends on the
/// field's [`FieldKind`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Always finite.
    Number(f64),
    Text(String),
    /// `true` / `false` (any case): Python's True / False.
    Bool(bool),
    /// `none` (any case): Python's None / JSON null / missing.
    None,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::None => f.write_str("none"),
            Value::Text(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~`: contains, case-insensitive. The value is always `Text`.
    Contains,
    /// `!~`: does not contain, case-insensitive. The value is always `Text`.
    NotContains,
}

impl Op {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "~",
            Op::NotContains => "!~",
        }
    }

    /// True for `<`, `<=`, `>`, `>=`.
    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `?q=` expression.
///
/// `Or` and `And` always hold at least two items, and never an item of
/// their own kind (nested groups of the same operator are flattened).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Field,
        op: Op,
        value: Value,
    },
    /// `field in (v1, v2, ...)`: at least one value; same as `field = v1 or
    /// field = v2 ...`.
    In {
        field: Field,
        values: Vec<Value>,
    },
    /// `field exists`: the record has a (non-null) value for the field; for
    /// `tag`, at least one tag.
    Exists(Field),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    if matches!(item, Expr::Or(_)) {
                        write!(f, "({item})")?;
                    } else {
                        write!(f, "{item}")?;
                    }
                }
                Ok(())
            }
            Expr::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    if matches!(item, Expr::Or(_) | Expr::And(_)) {
                        write!(f, "({item})")?;
                    } else {
                        write!(f, "{item}")?;
                    }
                }
                Ok(())
            }
            Expr::Not(inner) => {
                if matches!(**inner, Expr::Or(_) | Expr::And(_)) {
                    write!(f, "not ({inner})")
                } else {
                    write!(f, "not {inner}")
                }
            }
            Expr::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
            Expr::In { field, values } => {
                write!(f, "{field} in (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Expr::Exists(field) => write!(f, "{field} exists"),
        }
    }
}

/// One key of `?sort=`: `-field` sorts descending.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: Field,
    pub descending: bool,
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        write!(f, "{}", self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names() {
        for name in FIXED_FIELD_NAMES {
            let field = Field::from_fixed_name(name).unwrap();
            assert_eq!(field.name(), name);
        }
        assert_eq!(Field::from_fixed_name("Label"), None);
        assert_eq!(Field::Param("n".into()).name(), "params.n");
        assert_eq!(
            Field::Param("model.layers".into()).name(),
            "params.model.layers"
        );
        assert_eq!(Field::Param("odd key".into()).name(), "params.`odd key`");
        assert_eq!(Field::Param("a`b\\c".into()).name(), r"params.`a\`b\\c`");
        assert_eq!(Field::Param("".into()).name(), "params.``");
        assert_eq!(Field::Dep("numpy".into()).name(), "deps.numpy");
        assert_eq!(Field::Dep("a:b".into()).to_string(), "deps.`a:b`");
    }

    #[test]
    fn field_kinds() {
        assert_eq!(Field::Duration.kind(), FieldKind::Number);
        assert_eq!(Field::Timestamp.kind(), FieldKind::Text);
        assert_eq!(Field::Label.kind(), FieldKind::Text);
        assert_eq!(Field::Tag.kind(), FieldKind::Tags);
        assert_eq!(Field::Param("x".into()).kind(), FieldKind::Param);
        assert_eq!(Field::Dep("x".into()).kind(), FieldKind::Dep);
    }

    #[test]
    fn plain_keys() {
        assert!(is_plain_key("a.b-c_d9"));
        assert!(is_plain_key("é"));
        assert!(!is_plain_key(""));
        assert!(!is_plain_key("a b"));
        assert!(!is_plain_key("a:b"));
        assert!(!is_plain_key("a/b"));
    }

    #[test]
    fn value_and_expr_display() {
        assert_eq!(Value::Number(50.0).to_string(), "50");
        assert_eq!(Value::Number(-2.5).to_string(), "-2.5");
        assert_eq!(Value::Text("a\"b\\".into()).to_string(), r#""a\"b\\""#);
        assert_eq!(Value::Bool(true).to_string(), "true");
        assert_eq!(Value::None.to_string(), "none");
        let c = |n: f64| Expr::Compare {
            field: Field::Param("n".into()),
            op: Op::Eq,
            value: Value::Number(n),
        };
        let e = Expr::Or(vec![
            c(1.0),
            Expr::And(vec![
                c(2.0),
                Expr::Not(Box::new(Expr::Or(vec![c(3.0), c(4.0)]))),
            ]),
        ]);
        assert_eq!(
            e.to_string(),
            "params.n = 1 or params.n = 2 and not (params.n = 3 or params.n = 4)"
        );
        let e = Expr::And(vec![
            Expr::Or(vec![c(1.0), c(2.0)]),
            Expr::In {
                field: Field::Tag,
                values: vec![Value::Text("a".into()), Value::None],
            },
            Expr::Exists(Field::Dep("numpy".into())),
        ]);
        assert_eq!(
            e.to_string(),
            "(params.n = 1 or params.n = 2) and tag in (\"a\", none) and deps.numpy exists"
        );
        let k = SortKey {
            field: Field::Duration,
            descending: true,
        };
        assert_eq!(k.to_string(), "-duration");
    }
}
