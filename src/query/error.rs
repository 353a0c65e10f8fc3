//! The error type shared by the query, sort and columns parsers.

use std::fmt;

/// Which parameter the erroneous text came from; decides the message prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub enum ErrorContext {
    /// `?q=` (prefix `query`).
    Query,
    /// `?sort=` (prefix `sort`).
    Sort,
    /// `?columns=` (prefix `columns`).
    Columns,
    /// A lone field name given to [`parse_field`](super::parse_field) (prefix `field`).
    Field,
}

impl ErrorContext {
    /// The word the error message starts with: `query`, `sort`, `columns` or `field`.
    pub fn prefix(self) -> &'static str {
        match self {
            ErrorContext::Query => "query",
            ErrorContext::Sort => "sort",
            ErrorContext::Columns => "columns",
            ErrorContext::Field => "field",
        }
    }

    /// How the end of the text is named in "found ..." messages.
    pub(super) fn end_name(self) -> &'static str {
        match self {
            ErrorContext::Query => "end of query",
            ErrorContext::Sort => "end of sort",
            ErrorContext::Columns => "end of columns",
            ErrorContext::Field => "end of field name",
        }
    }
}

/// A syntax or meaning error, located at a 1-based column counted in
/// characters (not bytes). The column just past the last character denotes
/// the end of the text.
///
/// `Display` gives `"{prefix}: column {column}: {message}"`, e.g.
/// `query: column 9: expected a value after "=", found end of query`;
/// the server puts exactly this text in `{"error": ...}` with status 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub context: ErrorContext,
    pub column: usize,
    pub message: String,
}

impl QueryError {
    pub(super) fn new(context: ErrorContext, column: usize, message: impl Into<String>) -> Self {
        QueryError {
            context,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: column {}: {}",
            self.context.prefix(),
            self.column,
            self.message
        )
    }
}

impl std::error::Error for QueryError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_formats() {
        let e = QueryError::new(ErrorContext::Query, 9, "expected a value");
        assert_eq!(e.to_string(), "query: column 9: expected a value");
        let e = QueryError::new(ErrorContext::Sort, 1, "unknown field \"x\"");
        assert_eq!(e.to_string(), "sort: column 1: unknown field \"x\"");
        let e = QueryError::new(ErrorContext::Columns, 3, "m");
        assert_eq!(e.to_string(), "columns: column 3: m");
        let e = QueryError::new(ErrorContext::Field, 2, "m");
        assert_eq!(e.to_string(), "field: column 2: m");
    }
}
