//! Parameters and dependency versions as data (SPEC 7.1): each record's
//! `parameters.content` is read by its type into flat typed keys, and its
//! dependencies into name and version, in tables beside the record that
//! the query language searches by index. The stored record is unchanged.

use crate::error::Result;
use crate::record::params::{self, ParamValue};
use crate::record::Record;
use rusqlite::{params, Connection};

/// The page cache of bulk writes (back-fill, loaddata), and SQLite's default,
/// as `PRAGMA cache_size` takes them (negative: KiB).
pub const BULK_CACHE_KIB: i64 = -65536;
pub const DEFAULT_CACHE_KIB: i64 = -2000;

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
fn index_record(conn: &Connection, id: i64, record: &Record) -> Result<()> {
    conn.prepare_cached("DELETE FROM record_params WHERE record_id = ?1")?
        .execute([id])?;
    let state = match read_params(record) {
        Ok(keys) => {
            let mut ins = conn.prepare_cached(
                "INSERT OR REPLACE INTO record_params (record_id, key, kind, num, text)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (key, value) in &keys {
                let num = match value {
                    ParamValue::Number(n) => Some(*n),
                    _ => None,
                };
                ins.execute(params![
                    id,
                    key,
                    kind_of(value),
                    num,
                    params::display(value)
                ])?;
            }
            READ
        }
        Err(_) => UNREADABLE,
    };
    conn.prepare_cached("DELETE FROM record_deps WHERE record_id = ?1")?
        .execute([id])?;
    let mut ins = conn.prepare_cached(
        "INSERT OR REPLACE INTO record_deps (record_id, name, version) VALUES (?1, ?2, ?3)",
    )?;
    for d in &record.dependencies {
        if let Some(name) = d.name.as_deref().filter(|n| !n.is_empty()) {
            ins.execute(params![id, name, d.version.as_deref().unwrap_or("")])?;
        }
    }
    conn.prepare_cached("UPDATE records SET params_state = ?2 WHERE id = ?1")?
        .execute(params![id, state])?;
    Ok(())
}

/// Reads the parameters of every record not read yet (a database migrated
/// from schema version 1), reporting progress as it goes.
pub fn backfill(conn: &Connection, progress: Option<super::schema::Progress<'_>>) -> Result<()> {
    index_pending(conn, None, progress).map(|_| ())
}

/// Records read per batch by [`index_pending`].
const BATCH: i64 = 1000;

/// Indexes every record marked to be (of `project`, or all): PUTs and
/// loads mark them, searches and migrations index them, all at once in the
/// caller's transaction. Returns how many.
pub fn index_pending(
    conn: &Connection,
    project: Option<&str>,
    mut progress: Option<super::schema::Progress<'_>>,
) -> Result<u64> {
    let total: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM records WHERE params_state = 0 AND (?1 IS NULL OR project_id = ?1)",
        )?
        .query_row([project], |r| r.get(0))?;
    if total == 0 {
        return Ok(0);
    }
    // A large page cache while many records' entries go in.
    let bulk = total > BATCH;
    if bulk {
        conn.pragma_update(None, "cache_size", BULK_CACHE_KIB)?;
    }
    let mut done = 0u64;
    loop {
        // A batch at a time, read whole before it is written: indexing a
        // record takes it out of what the query walks.
        let batch: Vec<(i64, String)> = conn
            .prepare_cached(
                "SELECT id, body FROM records WHERE params_state = 0 AND (?1 IS NULL OR project_id = ?1)
                 LIMIT ?2",
            )?
            .query_map(params![project, BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if batch.is_empty() {
            break;
        }
        for (id, body) in batch {
            match serde_json::from_str::<Record>(&body) {
                Ok(record) => index_record(conn, id, &record)?,
                // A stored record that does not decode has no keys (and
                // its pages say so); it never stops a search or a migration.
                Err(_) => {
                    conn.prepare_cached("UPDATE records SET params_state = ?2 WHERE id = ?1")?
                        .execute(params![id, UNREADABLE])?;
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
        conn.pragma_update(None, "cache_size", DEFAULT_CACHE_KIB)?;
    }
    Ok(done)
}
