//! The search language of `?q=`, and the field lists of `?sort=` and
//! `?columns=`: parsing only, into a small AST that the SQL layer
//! translates.
//!
//! ```text
//! params.lr < 1e-3 and (tag = baseline or not label ~ "tmp") and deps.numpy exists
//! ```
//!
//! * Fields: `label timestamp reason outcome duration user main_file version
//!   executable script_arguments repository stdout tag`, `params.KEY`,
//!   `deps.NAME` (case-sensitive). A key with characters other than
//!   letters, digits, `_ - .` is written in backticks: ``params.`odd key` ``
//!   (`` \` `` and `\\` escape inside).
//! * Operators: `= != < <= > >= ~ !~`, `FIELD in (v, ...)`, `FIELD exists`,
//!   combined with `not` (tightest), `and`, `or` (loosest) and parentheses.
//!   Keywords (`and or not in exists true false none`) in any case.
//! * Values: numbers (`3`, `-2.5`, `.5`, `1e-3`, `1e+3`; no leading `+`,
//!   no `nan`/`inf`), quoted strings (`"..."` or `'...'`; a backslash
//!   escapes the quote or a backslash, other backslashes are literal),
//!   `true`/`false`/`none`, or bare words of letters, digits and `_ - . : /`.
//!   The parser then fits the value to the field, see [`FieldKind`].
//! * Bounds: [`MAX_QUERY_CHARS`], [`MAX_COMPARISONS`], [`MAX_DEPTH`].
//!   Parsing is linear-time, never panics and recurses at most
//!   `MAX_DEPTH` levels.
//! * Errors: [`QueryError`], displayed as `query: column N: message`
//!   (columns are 1-based, in characters).

mod ast;
pub mod columns;
mod error;
mod lexer;
mod parser;

#[cfg(test)]
mod tests;

pub use ast::{Expr, Field, Op, SortKey, Value};
#[cfg(test)]
pub use error::ErrorContext;
pub use error::QueryError;
#[cfg(test)]
pub use parser::{
    parse, parse_field, MAX_COLUMNS, MAX_COMPARISONS, MAX_DEPTH, MAX_QUERY_CHARS, MAX_SORT_KEYS,
};
pub use parser::{parse_columns, parse_fields, parse_optional, parse_sort};
