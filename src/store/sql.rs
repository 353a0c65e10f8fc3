//! The one interface the store's queries run through, and its SQLite side.
//!
//! Every operation of the store (`Tx`'s methods) is written once, against
//! [`Sql`]: statements with `?N` (or `?`) placeholders, [`Arg`]s bound to
//! them, rows read through [`Row`]. Two engines implement it: SQLite here
//! (rusqlite, the embedded default) and PostgreSQL in `pg.rs`. Where the two
//! dialects differ, a query asks [`Sql::dialect`] and says it both ways, in
//! the store, next to the other.

use crate::error::{Error, Result};
use std::borrow::Cow;

/// The SQL dialect of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(Cow<'a, str>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(s))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(Cow::Borrowed(s))
    }
}
impl From<String> for Arg<'_> {
    fn from(s: String) -> Self {
        Arg::Text(Cow::Owned(s))
    }
}
impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl<'a, T: Into<Arg<'a>>> From<Option<T>> for Arg<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// `args![a, b, ...]`: a slice of [`Arg`]s.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::store::sql::Arg::from($a)),*][..] };
}
pub(crate) use args;

/// One row of a result, by column number.
pub trait Row {
    fn text_opt(&self, i: usize) -> Result<Option<&str>>;
    fn int_opt(&self, i: usize) -> Result<Option<i64>>;
}

impl dyn Row + '_ {
    pub fn text(&self, i: usize) -> Result<&str> {
        self.text_opt(i)?
            .ok_or_else(|| Error::Database(format!("column {i} is unexpectedly NULL")))
    }
    pub fn string(&self, i: usize) -> Result<String> {
        self.text(i).map(String::from)
    }
    pub fn int(&self, i: usize) -> Result<i64> {
        self.int_opt(i)?
            .ok_or_else(|| Error::Database(format!("column {i} is unexpectedly NULL")))
    }
}

/// A connection, or a transaction on one: what every query of the store runs on.
pub trait Sql {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns how many rows it changed.
    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64>;
    /// Runs a query, calling `f` with each row as it arrives (memory stays
    /// flat whatever the number of rows). `f` must not query again.
    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;
    /// A large page cache for writing many rows (SQLite), or nothing.
    fn bulk(&self, _on: bool) -> Result<()> {
        Ok(())
    }
}

/// SQLite through rusqlite: a connection or a transaction (which derefs to one).
pub struct Lite<'a>(pub &'a rusqlite::Connection);

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Arg::Null => ToSqlOutput::Owned(Value::Null),
            Arg::Int(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Arg::Real(v) => ToSqlOutput::Owned(Value::Real(*v)),
            Arg::Bool(v) => ToSqlOutput::Owned(Value::Integer(*v as i64)),
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl Row for rusqlite::Row<'_> {
    fn text_opt(&self, i: usize) -> Result<Option<&str>> {
        use rusqlite::types::ValueRef;
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|e| Error::Database(format!("column {i}: {e}"))),
            other => Err(Error::Database(format!(
                "column {i} holds {:?}, not text",
                other.data_type()
            ))),
        }
    }
    fn int_opt(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
}

impl Sql for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        super::search::forget_fields();
        let n = self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(args))?;
        Ok(n as u64)
    }
    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        super::search::forget_fields();
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        // The fields `contains_field` kept are let go with the statement.
        struct Forget;
        impl Drop for Forget {
            fn drop(&mut self) {
                super::search::forget_fields();
            }
        }
        let _forget = Forget;
        while let Some(row) = rows.next()? {
            f(row)?;
        }
        Ok(())
    }
    fn bulk(&self, on: bool) -> Result<()> {
        let kib = if on {
            super::index::BULK_CACHE_KIB
        } else {
            super::index::DEFAULT_CACHE_KIB
        };
        Ok(self.0.pragma_update(None, "cache_size", kib)?)
    }
}

/// `?N` and `?` placeholders as PostgreSQL writes them (`$N`), outside
/// quoted strings and identifiers.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    next = next.max(digits.parse::<usize>().unwrap_or(0) + 1);
                    out.push_str(&digits);
                }
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT ?1, ? , '?', \"a?\" FROM t WHERE x = ?12 AND y IN (?, ?)"),
            "SELECT $1, $2 , '?', \"a?\" FROM t WHERE x = $12 AND y IN ($13, $14)"
        );
    }
}
