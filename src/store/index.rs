//! Parameters and dependency versions as data (SPEC 7.1): each record's
//! `parameters.content` is read by its type into flat typed keys, and its
//! dependencies into name and version, in tables beside the record that
//! the query language searches by index. The stored record is unchanged.

use super::sql::{args, Arg};
use super::Tx;
use crate::error::Result;
use crate::record::params::{self, ParamValue};
use crate::record::Record;

/// The page cache of bulk writes (back-fill, loaddata), and SQLite's default,
/// as `PRAGMA cache_size` takes them (negative: KiB).
pub const BULK_CACHE_KIB: i64 = -65536;
pub const DEFAULT_CACHE_KIB: i64 = -2000;

/// Parameter rows per `INSERT` (5 values each, well under both engines'
/// limits on bound values).
const ROWS_PER_INSERT: usize = 200;

/// `records.params_state`: the parameters were read, or could not be.
const READ: i64 = 1;
const UNREADABLE: i64 = 2;

/// `record_params.kind` of a value.
pub const NUMBER: i64 = 0;
pub const TEXT: i64 = 1;
pub const BOOL: i64 = 2;
pub const NONE: i64 = 3;
pub const LIST: i64 = 4;

fn kind_of(v: &ParamValue) -> i64 {
    match v {
        ParamValue::Number(_) => NUMBER,
        ParamValue::Text(_) => TEXT,
        ParamValue::Bool(_) => BOOL,
        ParamValue::None => NONE,
        ParamValue::List(_) => LIST,
    }
}

/// The flat keys of a record's parameters, or why they cannot be read.
pub fn read_params(record: &Record) -> std::result::Result<Vec<(String, ParamValue)>, String> {
    let content = record.parameters.content.as_deref().unwrap_or("");
    params::read(record.parameters.kind.as_deref(), content)
}

/// (Re)indexes record `id`: its entries become what its parameters and
/// dependencies read now.
fn index_record(tx: &Tx<'_>, id: i64, record: &Record) -> Result<()> {
    tx.exec("DELETE FROM record_params WHERE record_id = ?1", args![id])?;
    let state = match read_params(record) {
        Ok(keys) => {
            // The last value of a key read twice wins; rows go in many to a
            // statement (one round trip per batch on PostgreSQL).
            let mut seen = std::collections::HashMap::new();
            for (i, (key, _)) in keys.iter().enumerate() {
                seen.insert(key.as_str(), i);
            }
            let rows: Vec<&(String, ParamValue)> = keys
                .iter()
                .enumerate()
                .filter(|(i, (key, _))| seen[key.as_str()] == *i)
                .map(|(_, kv)| kv)
                .collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let marks = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut values = Vec::with_capacity(chunk.len() * 5);
                for (key, value) in chunk {
                    let num = match value {
                        ParamValue::Number(n) => Some(*n),
                        _ => None,
                    };
                    // PostgreSQL's text holds no NUL: a parameter never
                    // makes a write fail, so such a character is shown replaced.
                    let shown = params::display(value).replace('\0', "\u{FFFD}");
                    values.push(Arg::Int(id));
                    values.push(Arg::from(key.replace('\0', "\u{FFFD}")));
                    values.push(Arg::Int(kind_of(value)));
                    values.push(Arg::from(num));
                    values.push(Arg::from(shown));
                }
                tx.exec(
                    &format!(
                        "INSERT INTO record_params (record_id, key, kind, num, text) VALUES {marks}"
                    ),
                    &values,
                )?;
            }
            READ
        }
        Err(_) => UNREADABLE,
    };
    tx.exec("DELETE FROM record_deps WHERE record_id = ?1", args![id])?;
    for d in &record.dependencies {
        if let Some(name) = d.name.as_deref().filter(|n| !n.is_empty()) {
            tx.exec(
                "INSERT INTO record_deps (record_id, name, version) VALUES (?1, ?2, ?3)
                 ON CONFLICT (record_id, name) DO UPDATE SET version = excluded.version",
                args![
                    id,
                    name.replace('\0', "\u{FFFD}"),
                    d.version.as_deref().unwrap_or("").replace('\0', "\u{FFFD}")
                ],
            )?;
        }
    }
    tx.exec(
        "UPDATE records SET params_state = ?2 WHERE id = ?1",
        args![id, state],
    )?;
    Ok(())
}

/// Reads the parameters of every record not read yet (a database migrated
/// from schema version 1), reporting progress as it goes.
pub fn backfill(tx: &Tx<'_>, progress: Option<super::schema::Progress<'_>>) -> Result<()> {
    index_pending(tx, None, progress).map(|_| ())
}

/// Records read per batch by [`index_pending`].
const BATCH: i64 = 1000;

/// Indexes every record marked to be (of `project`, or all): PUTs and
/// loads mark them, searches and migrations index them, all at once in the
/// caller's transaction. Returns how many.
pub fn index_pending(
    tx: &Tx<'_>,
    project: Option<&str>,
    mut progress: Option<super::schema::Progress<'_>>,
) -> Result<u64> {
    let total = tx.int(
        "SELECT count(*) FROM records WHERE params_state = 0 AND (CAST(?1 AS TEXT) IS NULL OR project_id = ?1)",
        args![project],
    )?;
    if total == 0 {
        return Ok(0);
    }
    // A large page cache while many records' entries go in.
    let bulk = total > BATCH;
    if bulk {
        tx.sql().bulk(true)?;
    }
    // On PostgreSQL another process may be indexing the same records: the
    // batch is locked in id order, and a record it indexed meanwhile drops
    // out of the batch (its state is no longer 0 once the lock is ours).
    let sql = format!(
        "SELECT id, body FROM records WHERE params_state = 0 AND (CAST(?1 AS TEXT) IS NULL OR project_id = ?1)
         ORDER BY id LIMIT ?2{}",
        tx.for_update()
    );
    let mut done = 0u64;
    loop {
        // A batch at a time, read whole before it is written: indexing a
        // record takes it out of what the query walks.
        let batch: Vec<(i64, String)> = tx.all(&sql, args![project, BATCH], |r| {
            Ok((r.int(0)?, r.string(1)?))
        })?;
        if batch.is_empty() {
            break;
        }
        for (id, body) in batch {
            match serde_json::from_str::<Record>(&body) {
                Ok(record) => index_record(tx, id, &record)?,
                // A stored record that does not decode has no keys (and
                // its pages say so); it never stops a search or a migration.
                Err(_) => {
                    tx.exec(
                        "UPDATE records SET params_state = ?2 WHERE id = ?1",
                        args![id, UNREADABLE],
                    )?;
                }
            }
            done += 1;
            if let Some(p) = progress.as_mut() {
                if done % 512 == 0 || done == total as u64 {
                    p(done, total as u64);
                }
            }
        }
    }
    if bulk {
        tx.sql().bulk(false)?;
    }
    Ok(done)
}
