//! Recursive-descent parser for `?q=`, and the field-list parsers for
//! `?sort=` and `?columns=`.
//!
//! Grammar (keywords in any case):
//!
//! ```text
//! query      := or END
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | primary
//! primary    := "(" or ")" | comparison
//! comparison := FIELD OP VALUE
//!             | FIELD "in" "(" VALUE ("," VALUE)* ")"
//!             | FIELD "exists"
//! ```
//!
//! Recursion happens only through `(` and `not`, both bounded by
//! [`MAX_DEPTH`], and every token is looked at a bounded number of times,
//! so parsing is linear and cannot overflow the stack.

use super::ast::{is_plain_key, Expr, Field, FieldKind, Op, SortKey, Value, FIXED_FIELD_NAMES};
use super::error::{ErrorContext, QueryError};
use super::lexer::{describe, excerpt, is_number_syntax, Lexer, Token, TokenKind};

/// Longest accepted text, in characters, for `?q=`, `?sort=` and `?columns=`.
pub const MAX_QUERY_CHARS: usize = 2000;
/// Most comparisons in one query: a comparison and an `exists` count one,
/// an `in (...)` one per value (SPEC 7.6).
pub const MAX_COMPARISONS: usize = 64;
/// Most keys in `?sort=`, after duplicates are dropped (SPEC 7.6).
pub const MAX_SORT_KEYS: usize = 8;
/// Most fields named in `?columns=`, after duplicates are dropped.
pub const MAX_COLUMNS: usize = 32;
/// Deepest nesting: each `(` and each `not` encloses what follows it one
/// level deeper; at most this many may enclose any point of the query.
pub const MAX_DEPTH: usize = 16;

/// Parses a `?q=` expression. Blank text is an error (`empty query`); see
/// [`parse_optional`] to treat it as "no filter".
pub fn parse(text: &str) -> Result<Expr, QueryError> {
    let ctx = ErrorContext::Query;
    check_length(text, ctx)?;
    let mut p = Parser::new(text, ctx)?;
    if p.tok.kind == TokenKind::End {
        return Err(p.error_here("empty query: expected a condition such as label = x"));
    }
    let expr = p.parse_or()?;
    match &p.tok.kind {
        TokenKind::End => Ok(expr),
        TokenKind::RParen => Err(p.error_here("unbalanced \")\": there is no matching \"(\"")),
        _ => Err(p.expected("\"and\", \"or\" or end of query")),
    }
}

/// Like [`parse`], but blank text (empty or only whitespace) gives `Ok(None)`.
pub fn parse_optional(text: &str) -> Result<Option<Expr>, QueryError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

/// Parses one field name (`duration`, `params.n`, ``params.`odd key` ``,
/// `deps.numpy`); surrounding whitespace is ignored. Errors are prefixed
/// `field:`.
#[cfg_attr(not(test), allow(dead_code))] // `sort=`/`columns=` read lists; tests read one
pub fn parse_field(s: &str) -> Result<Field, QueryError> {
    let ctx = ErrorContext::Field;
    check_length(s, ctx)?;
    let mut lx = Lexer::new(s, ctx);
    let tok = lx.next_token()?;
    let field = field_from_token(&tok, ctx)?;
    let next = lx.next_token()?;
    if next.kind != TokenKind::End {
        return Err(QueryError::new(
            ctx,
            next.column,
            format!(
                "expected a single field name, found {} after it",
                describe(&next.kind, ctx)
            ),
        ));
    }
    Ok(field)
}

/// Parses `?sort=KEY[,KEY...]`; a key starting with `-` sorts descending.
/// A field named again is dropped (the first names its place and
/// direction); more than [`MAX_SORT_KEYS`] is an error. Blank text gives an
/// empty list. Errors are prefixed `sort:`.
pub fn parse_sort(s: &str) -> Result<Vec<SortKey>, QueryError> {
    let mut out: Vec<SortKey> = Vec::new();
    parse_field_list(s, ErrorContext::Sort, |tok, ctx| {
        let column = tok.column;
        let (descending, tok) = strip_minus(tok, ctx)?;
        let field = field_from_token(&tok, ctx)?;
        no_files(&field, ctx, column, "sort by")?;
        if out.iter().all(|k| k.field != field) {
            if out.len() == MAX_SORT_KEYS {
                return Err(too_many(ctx, column, MAX_SORT_KEYS, "sort keys"));
            }
            out.push(SortKey { field, descending });
        }
        Ok(())
    })?;
    Ok(out)
}

/// Parses `?columns=a,b,...`: a field named again is dropped, more than
/// [`MAX_COLUMNS`] is an error. Blank text gives an empty list. Errors are
/// prefixed `columns:`.
pub fn parse_columns(s: &str) -> Result<Vec<Field>, QueryError> {
    let mut out: Vec<Field> = Vec::new();
    parse_field_list(s, ErrorContext::Columns, |tok, ctx| {
        let field = field_from_token(&tok, ctx)?;
        no_files(&field, ctx, tok.column, "show as a column")?;
        if !out.contains(&field) {
            if out.len() == MAX_COLUMNS {
                return Err(too_many(ctx, tok.column, MAX_COLUMNS, "columns"));
            }
            out.push(field);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Parses a list of fields as given, duplicates kept (`plot=X,Y`).
pub fn parse_fields(s: &str) -> Result<Vec<Field>, QueryError> {
    let mut out = Vec::new();
    parse_field_list(s, ErrorContext::Columns, |tok, ctx| {
        out.push(field_from_token(&tok, ctx)?);
        Ok(())
    })?;
    Ok(out)
}

/// A record has many files: `input.*` and `output.*` are conditions only.
fn no_files(field: &Field, ctx: ErrorContext, column: usize, what: &str) -> Result<(), QueryError> {
    if field.kind() == FieldKind::Files {
        return Err(QueryError::new(
            ctx,
            column,
            format!(
                "{field} is a condition on a record's files or lineage (q=...); it cannot {what}"
            ),
        ));
    }
    Ok(())
}

fn too_many(ctx: ErrorContext, column: usize, most: usize, what: &str) -> QueryError {
    QueryError::new(
        ctx,
        column,
        format!("too many {what}: at most {most} different ones are allowed"),
    )
}

fn check_length(text: &str, ctx: ErrorContext) -> Result<(), QueryError> {
    // Byte length bounds the character count from above: cheap fast path.
    if text.len() > MAX_QUERY_CHARS && text.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(QueryError::new(
            ctx,
            MAX_QUERY_CHARS + 1,
            format!(
                "{} is too long: at most {MAX_QUERY_CHARS} characters are allowed",
                ctx.prefix()
            ),
        ));
    }
    Ok(())
}

/// Parses a comma-separated list, handing each item (a word or
/// backtick-key token) to `item` as soon as it is read.
fn parse_field_list(
    s: &str,
    ctx: ErrorContext,
    mut item: impl FnMut(Token, ErrorContext) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    check_length(s, ctx)?;
    let mut lx = Lexer::new(s, ctx);
    let mut tok = lx.next_token()?;
    if tok.kind == TokenKind::End {
        return Ok(());
    }
    let mut first = true;
    loop {
        match tok.kind {
            TokenKind::Word(_) | TokenKind::QuotedKey { .. } => {
                item(tok, ctx)?;
                first = false;
            }
            _ => {
                let after = if first { "" } else { " after \",\"" };
                return Err(QueryError::new(
                    ctx,
                    tok.column,
                    format!(
                        "expected a field name{after}, found {}",
                        describe(&tok.kind, ctx)
                    ),
                ));
            }
        }
        let sep = lx.next_token()?;
        match sep.kind {
            TokenKind::End => return Ok(()),
            TokenKind::Comma => tok = lx.next_token()?,
            _ => {
                return Err(QueryError::new(
                    ctx,
                    sep.column,
                    format!(
                        "expected \",\" or {}, found {}",
                        ctx.end_name(),
                        describe(&sep.kind, ctx)
                    ),
                ));
            }
        }
    }
}

/// Removes a leading `-` (descending sort) from a field token.
fn strip_minus(tok: Token, ctx: ErrorContext) -> Result<(bool, Token), QueryError> {
    let column = tok.column + 1;
    Ok(match tok.kind {
        TokenKind::Word(w) if w == "-" => {
            return Err(QueryError::new(
                ctx,
                column,
                "expected a field name after \"-\"",
            ));
        }
        TokenKind::Word(w) if w.starts_with('-') => (
            true,
            Token {
                kind: TokenKind::Word(w[1..].to_string()),
                column,
            },
        ),
        TokenKind::QuotedKey { prefix, key } if prefix.starts_with('-') => (
            true,
            Token {
                kind: TokenKind::QuotedKey {
                    prefix: prefix[1..].to_string(),
                    key,
                },
                column,
            },
        ),
        kind => (
            false,
            Token {
                kind,
                column: tok.column,
            },
        ),
    })
}

fn field_list_message() -> String {
    format!(
        "fields: {}, params.KEY, deps.NAME",
        FIXED_FIELD_NAMES.join(", ")
    )
}

/// The field named by a word or backtick-key token.
fn field_from_token(tok: &Token, ctx: ErrorContext) -> Result<Field, QueryError> {
    let err = |column: usize, message: String| Err(QueryError::new(ctx, column, message));
    match &tok.kind {
        TokenKind::Word(w) => {
            if let Some(field) = Field::from_fixed_name(w) {
                return Ok(field);
            }
            for (prefix, what, make) in [
                (
                    "params.",
                    "parameter key",
                    Field::Param as fn(String) -> Field,
                ),
                ("deps.", "dependency name", Field::Dep),
            ] {
                if let Some(key) = w.strip_prefix(prefix) {
                    if key.is_empty() {
                        return err(
                            tok.column + prefix.len(),
                            format!("expected a {what} after \"{prefix}\""),
                        );
                    }
                    if !is_plain_key(key) {
                        return err(
                            tok.column + prefix.len(),
                            format!(
                                "{what} \"{}\" must be written in backticks: {prefix}`{}`",
                                excerpt(key),
                                excerpt(key)
                            ),
                        );
                    }
                    return Ok(make(key.to_string()));
                }
            }
            if w == "params" || w == "deps" {
                let what = if w == "params" { "KEY" } else { "NAME" };
                return err(
                    tok.column,
                    format!("expected \"{w}.{what}\", found \"{w}\" alone"),
                );
            }
            err(
                tok.column,
                format!(
                    "unknown field \"{}\" ({})",
                    excerpt(w),
                    field_list_message()
                ),
            )
        }
        TokenKind::QuotedKey { prefix, key } => match prefix.as_str() {
            "params." => Ok(Field::Param(key.clone())),
            "deps." => Ok(Field::Dep(key.clone())),
            _ => err(
                tok.column,
                format!(
                    "unknown field \"{}`{}`\": backticks are only allowed after \"params.\" or \"deps.\"",
                    excerpt(prefix),
                    excerpt(key)
                ),
            ),
        },
        other => err(
            tok.column,
            format!("expected a field name, found {}", describe(other, ctx)),
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
    In,
    Exists,
}

fn keyword(kind: &TokenKind) -> Option<Keyword> {
    let TokenKind::Word(w) = kind else {
        return None;
    };
    let is = |k: &str| w.eq_ignore_ascii_case(k);
    if is("and") {
        Some(Keyword::And)
    } else if is("or") {
        Some(Keyword::Or)
    } else if is("not") {
        Some(Keyword::Not)
    } else if is("in") {
        Some(Keyword::In)
    } else if is("exists") {
        Some(Keyword::Exists)
    } else {
        None
    }
}

fn op_of(kind: &TokenKind) -> Option<Op> {
    Some(match kind {
        TokenKind::Eq => Op::Eq,
        TokenKind::Ne => Op::Ne,
        TokenKind::Lt => Op::Lt,
        TokenKind::Le => Op::Le,
        TokenKind::Gt => Op::Gt,
        TokenKind::Ge => Op::Ge,
        TokenKind::Tilde => Op::Contains,
        TokenKind::NotTilde => Op::NotContains,
        _ => return None,
    })
}

/// A value as lexed, before it is fitted to its field.
struct RawValue {
    value: Value,
    /// The spelling of a bare word (numbers, `true`, text...); `None` for a
    /// quoted string.
    bare: Option<String>,
    /// A bare number too large for an f64 (`value` is then its text); an
    /// error only where the value must be a number.
    too_large: bool,
    column: usize,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The lookahead token.
    tok: Token,
    ctx: ErrorContext,
    comparisons: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, ctx: ErrorContext) -> Result<Self, QueryError> {
        let mut lexer = Lexer::new(text, ctx);
        let tok = lexer.next_token()?;
        Ok(Parser {
            lexer,
            tok,
            ctx,
            comparisons: 0,
            depth: 0,
        })
    }

    /// Consumes the lookahead token and returns it.
    fn advance(&mut self) -> Result<Token, QueryError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.tok, next))
    }

    fn error_at(&self, column: usize, message: impl Into<String>) -> QueryError {
        QueryError::new(self.ctx, column, message)
    }

    fn error_here(&self, message: impl Into<String>) -> QueryError {
        self.error_at(self.tok.column, message)
    }

    /// `expected {what}, found {lookahead}`, with hints for misplaced keywords.
    fn expected(&self, what: &str) -> QueryError {
        let hint = match keyword(&self.tok.kind) {
            Some(Keyword::Exists) | Some(Keyword::In) => {
                " (\"in\" and \"exists\" must directly follow a field name)"
            }
            _ => "",
        };
        self.error_here(format!(
            "expected {what}, found {}{hint}",
            describe(&self.tok.kind, self.ctx)
        ))
    }

    fn at_keyword(&self, k: Keyword) -> bool {
        keyword(&self.tok.kind) == Some(k)
    }

    /// Counts one comparison (an `in` list's value counts one each).
    fn count_comparison(&mut self, column: usize) -> Result<(), QueryError> {
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(self.error_at(
                column,
                format!(
                    "too many comparisons: at most {MAX_COMPARISONS} are allowed \
                     (each value of an \"in\" list counts one)"
                ),
            ));
        }
        Ok(())
    }

    fn enter(&mut self, column: usize) -> Result<(), QueryError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_at(
                column,
                format!(
                    "nested too deeply: at most {MAX_DEPTH} levels of \"(\" and \"not\" are allowed"
                ),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, QueryError> {
        let mut items = Vec::new();
        push_flat(&mut items, self.parse_and()?, true);
        while self.at_keyword(Keyword::Or) {
            self.advance()?;
            push_flat(&mut items, self.parse_and()?, true);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, QueryError> {
        let mut items = Vec::new();
        push_flat(&mut items, self.parse_unary()?, false);
        while self.at_keyword(Keyword::And) {
            self.advance()?;
            push_flat(&mut items, self.parse_unary()?, false);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Expr, QueryError> {
        if self.at_keyword(Keyword::Not) {
            let not = self.advance()?;
            self.enter(not.column)?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, QueryError> {
        const START: &str = "a field name, \"not\" or \"(\"";
        match &self.tok.kind {
            TokenKind::LParen => {
                let open = self.advance()?;
                self.enter(open.column)?;
                if self.tok.kind == TokenKind::RParen {
                    return Err(self.error_here("empty parentheses: expected a condition"));
                }
                let inner = self.parse_or()?;
                match self.tok.kind {
                    TokenKind::RParen => {
                        self.advance()?;
                    }
                    TokenKind::End => {
                        return Err(self.error_here(format!(
                            "unbalanced \"(\": expected \")\" to close the \"(\" at column {}, found end of query",
                            open.column
                        )));
                    }
                    _ => return Err(self.expected("\"and\", \"or\" or \")\"")),
                }
                self.depth -= 1;
                Ok(inner)
            }
            TokenKind::Word(w) if keyword(&self.tok.kind).is_none() && !is_number_syntax(w) => {
                self.parse_comparison()
            }
            TokenKind::QuotedKey { .. } => self.parse_comparison(),
            TokenKind::Word(w) if is_number_syntax(w) => {
                Err(self.error_here(format!("expected {START}, found the number {}", excerpt(w))))
            }
            TokenKind::Str(_) => Err(self.error_here(format!(
                "expected {START}, found {} (field names are not quoted)",
                describe(&self.tok.kind, self.ctx)
            ))),
            _ => {
                if let Some(k @ (Keyword::In | Keyword::Exists)) = keyword(&self.tok.kind) {
                    let kw = if k == Keyword::In { "in" } else { "exists" };
                    return Err(self.error_here(format!("expected a field name before \"{kw}\"")));
                }
                Err(self.expected(START))
            }
        }
    }

    fn parse_comparison(&mut self) -> Result<Expr, QueryError> {
        let field_tok = self.advance()?;
        if field_tok.kind == TokenKind::Word("status".into()) {
            self.count_comparison(field_tok.column)?;
            return self.parse_status();
        }
        let field = field_from_token(&field_tok, self.ctx)?;
        self.count_comparison(field_tok.column)?;
        if let Some(op) = op_of(&self.tok.kind) {
            let op_tok = self.advance()?;
            check_op(&field, op, op_tok.column, self.ctx)?;
            let raw = self.parse_value(&format!("after \"{op}\""))?;
            let value = fit_value(&field, Some(op), raw, self.ctx)?;
            return Ok(Expr::Compare { field, op, value });
        }
        match keyword(&self.tok.kind) {
            Some(Keyword::Exists) => {
                self.advance()?;
                Ok(Expr::Exists(field))
            }
            Some(Keyword::In) => {
                self.advance()?;
                if self.tok.kind != TokenKind::LParen {
                    return Err(self.expected("\"(\" after \"in\""));
                }
                let open = self.advance()?;
                if self.tok.kind == TokenKind::RParen {
                    return Err(self.error_here(
                        "empty \"in ()\" list: expected at least one value",
                    ));
                }
                let mut values = Vec::new();
                let mut after = "after \"(\"";
                loop {
                    // Each value after the first is one more comparison.
                    if !values.is_empty() {
                        self.count_comparison(self.tok.column)?;
                    }
                    let raw = self.parse_value(after)?;
                    values.push(fit_value(&field, None, raw, self.ctx)?);
                    match self.tok.kind {
                        TokenKind::Comma => {
                            self.advance()?;
                            after = "after \",\"";
                        }
                        TokenKind::RParen => {
                            self.advance()?;
                            return Ok(Expr::In { field, values });
                        }
                        TokenKind::End => {
                            return Err(self.error_here(format!(
                                "expected \",\" or \")\" to close the \"in\" list opened at column {}, found end of query",
                                open.column
                            )));
                        }
                        _ => return Err(self.expected("\",\" or \")\" in the \"in\" list")),
                    }
                }
            }
            Some(Keyword::Not) => Err(self.error_here(format!(
                "expected an operator after \"{}\", found \"not\" (to negate, put \"not\" before the field: not {} ...)",
                excerpt(&field.name()),
                excerpt(&field.name())
            ))),
            _ => Err(self.expected(&format!(
                "an operator (=, !=, <, <=, >, >=, ~, !~, in or exists) after \"{}\"",
                excerpt(&field.name())
            ))),
        }
    }

    /// `status = failed`, `status != finished`, `status in (failed,
    /// crashed)`: Sumatra keeps a run's status as one tag, `_failed_`, or
    /// `_finished..._` while its outputs are gathered (SPEC 10.4); a status
    /// comparison is one of the record's tags.
    fn parse_status(&mut self) -> Result<Expr, QueryError> {
        let tags = |raw: RawValue| -> Vec<Value> {
            let word = match raw.bare {
                Some(b) => b,
                None => match raw.value {
                    Value::Text(t) => t,
                    other => other.to_string(),
                },
            };
            let word = word.trim_matches('_').trim_end_matches("...").to_string();
            vec![
                Value::Text(format!("_{word}_")),
                Value::Text(format!("_{word}..._")),
            ]
        };
        if let Some(op) = op_of(&self.tok.kind) {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(self.error_here(format!(
                    "status compares with =, != or in (like status = failed), not \"{op}\""
                )));
            }
            self.advance()?;
            let raw = self.parse_value(&format!("after \"{op}\""))?;
            let any = Expr::In {
                field: Field::Tag,
                values: tags(raw),
            };
            return Ok(if op == Op::Ne {
                Expr::Not(Box::new(any))
            } else {
                any
            });
        }
        if keyword(&self.tok.kind) == Some(Keyword::In) {
            self.advance()?;
            if self.tok.kind != TokenKind::LParen {
                return Err(self.expected("\"(\" after \"in\""));
            }
            self.advance()?;
            let mut values = Vec::new();
            loop {
                if !values.is_empty() {
                    self.count_comparison(self.tok.column)?;
                }
                let raw = self.parse_value("in the \"in\" list")?;
                values.extend(tags(raw));
                match self.tok.kind {
                    TokenKind::Comma => {
                        self.advance()?;
                    }
                    TokenKind::RParen => {
                        self.advance()?;
                        return Ok(Expr::In {
                            field: Field::Tag,
                            values,
                        });
                    }
                    _ => return Err(self.expected("\",\" or \")\" in the \"in\" list")),
                }
            }
        }
        Err(self.expected("=, != or in after \"status\" (like status = failed)"))
    }

    /// Consumes a value token; `after` completes "expected a value ...".
    fn parse_value(&mut self, after: &str) -> Result<RawValue, QueryError> {
        let column = self.tok.column;
        let raw = match &self.tok.kind {
            TokenKind::Str(s) => RawValue {
                value: Value::Text(s.clone()),
                bare: None,
                too_large: false,
                column,
            },
            TokenKind::Word(w) if keyword(&self.tok.kind).is_some() => {
                return Err(self.error_here(format!(
                    "expected a value {after}, found the keyword \"{}\" (quote it to use it as text)",
                    excerpt(w)
                )));
            }
            TokenKind::Word(w) => {
                let (value, too_large) = bare_value(w);
                RawValue {
                    value,
                    bare: Some(w.clone()),
                    too_large,
                    column,
                }
            }
            _ => return Err(self.expected(&format!("a value {after}"))),
        };
        self.advance()?;
        Ok(raw)
    }
}

/// Adds `item` to an `Or` (`or == true`) or `And` list, splicing in the
/// items of a nested list of the same kind.
fn push_flat(items: &mut Vec<Expr>, item: Expr, or: bool) {
    match item {
        Expr::Or(inner) if or => items.extend(inner),
        Expr::And(inner) if !or => items.extend(inner),
        other => items.push(other),
    }
}

/// The value of a bare word: `true`/`false`/`none` (any case), a number, or
/// text; the flag tells a number too large for an f64 (given as text).
fn bare_value(w: &str) -> (Value, bool) {
    if w.eq_ignore_ascii_case("true") {
        return (Value::Bool(true), false);
    }
    if w.eq_ignore_ascii_case("false") {
        return (Value::Bool(false), false);
    }
    if w.eq_ignore_ascii_case("none") {
        return (Value::None, false);
    }
    if is_number_syntax(w) {
        return match w.parse::<f64>() {
            Ok(n) if n.is_finite() => (Value::Number(n), false),
            _ => (Value::Text(w.to_string()), true),
        };
    }
    (Value::Text(w.to_string()), false)
}

/// Rejects operators that make no sense for the field.
fn check_op(field: &Field, op: Op, column: usize, ctx: ErrorContext) -> Result<(), QueryError> {
    let message = match field.kind() {
        FieldKind::Tags | FieldKind::Files if op.is_ordering() => {
            format!("\"{op}\" cannot be used with {field}: use =, !=, ~, !~, in or exists")
        }
        FieldKind::Number if matches!(op, Op::Contains | Op::NotContains) => {
            format!("\"{op}\" needs a text field, but {field} is a number")
        }
        _ => return Ok(()),
    };
    Err(QueryError::new(ctx, column, message))
}

/// Fits a lexed value to its field and operator (`None` = an `in` list
/// item, treated like `=`). See `FieldKind` for the resulting variants.
fn fit_value(
    field: &Field,
    op: Option<Op>,
    raw: RawValue,
    ctx: ErrorContext,
) -> Result<Value, QueryError> {
    let RawValue {
        value,
        bare,
        too_large,
        column,
    } = raw;
    let err = |message: String| Err(QueryError::new(ctx, column, message));
    let is_contains = matches!(op, Some(Op::Contains | Op::NotContains));
    if too_large && !is_contains && matches!(field.kind(), FieldKind::Param | FieldKind::Number) {
        let spelled = bare.as_deref().unwrap_or_default();
        return err(format!("number {} is too large", excerpt(spelled)));
    }
    let as_text = |value: Value| match (&value, &bare) {
        (Value::Number(_) | Value::Bool(_) | Value::None, Some(w)) => Value::Text(w.clone()),
        _ => value,
    };
    // `~` and `!~` always take the value literally as text.
    if is_contains {
        return Ok(as_text(value));
    }
    let value = match field.kind() {
        FieldKind::Param => value,
        FieldKind::Text | FieldKind::Dep | FieldKind::Tags | FieldKind::Files => match value {
            Value::None if matches!(field.kind(), FieldKind::Tags | FieldKind::Files) => {
                let what = if field.kind() == FieldKind::Tags {
                    "tags"
                } else {
                    "such files"
                };
                return err(format!(
                    "{field} cannot be compared with none: use \"not {field} exists\" for records without {what}"
                ));
            }
            Value::None => Value::None,
            other => as_text(other),
        },
        FieldKind::Number => match value {
            Value::Number(_) | Value::None => value,
            Value::Text(s) => {
                return err(format!(
                    "{field} is a number: expected a number, found \"{}\"",
                    excerpt(&s)
                ));
            }
            Value::Bool(b) => {
                return err(format!("{field} is a number: expected a number, found {b}"));
            }
        },
    };
    match (op, &value) {
        (Some(op), Value::Bool(_) | Value::None) if op.is_ordering() => err(format!(
            "\"{op}\" needs a number or text, found {value} (only = and != accept true, false and none)"
        )),
        _ => Ok(value),
    }
}
