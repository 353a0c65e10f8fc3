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

/// Rows per statement of a batch (at most 5 values each: 5 000 values,
/// well under both engines' limits on bound values).
const ROWS_PER_STATEMENT: usize = 1000;

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

/// One record's entries: parameter rows `(key, (kind, num, shown))`, each
/// key once (the last value of a key read twice wins), or `None` when its
/// parameters cannot be read; and its dependencies `(name, version)`, each
/// name once (the last wins). PostgreSQL's text holds no NUL: a parameter
/// never makes a write fail, so such a character is shown replaced.
type Entries = (
    Option<Vec<(String, (i64, Option<f64>, String))>>,
    Vec<(String, String)>,
);

fn entries(record: &Record) -> Entries {
    let clean = |s: &str| s.replace('\0', "\u{FFFD}");
    let params = read_params(record).ok().map(|keys| {
        last_wins(keys.iter().map(|(key, value)| {
            let num = match value {
                ParamValue::Number(n) => Some(*n),
                _ => None,
            };
            let shown = clean(&params::display(value));
            (clean(key), (kind_of(value), num, shown))
        }))
    });
    let deps = last_wins(record.dependencies.iter().filter_map(|d| {
        let name = d.name.as_deref().filter(|n| !n.is_empty())?;
        Some((clean(name), clean(d.version.as_deref().unwrap_or(""))))
    }));
    (params, deps)
}

/// Each key once, in the order first seen, with the last value given for
/// it (in linear time: a record may name many thousands).
fn last_wins<V>(items: impl Iterator<Item = (String, V)>) -> Vec<(String, V)> {
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<(String, V)> = Vec::new();
    for (key, value) in items {
        match at.get(&key) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(key.clone(), out.len());
                out.push((key, value));
            }
        }
    }
    out
}

/// Runs `sql_for(n)` once per chunk of `values`, `n` rows of `width` values
/// each at a time: many rows to a statement, one round trip per chunk on
/// PostgreSQL, well under both engines' limits on bound values.
pub(super) fn chunked(
    tx: &Tx<'_>,
    values: &[Arg<'_>],
    width: usize,
    sql_for: impl Fn(usize) -> String,
) -> Result<()> {
    for chunk in values.chunks(ROWS_PER_STATEMENT * width) {
        tx.exec(&sql_for(chunk.len() / width), chunk)?;
    }
    Ok(())
}

/// `item` `n` times, as an SQL list: `list("?", 3)` is `?, ?, ?`, and
/// `list("(?, ?)", 2)` the rows `(?, ?), (?, ?)` of a multi-row insert.
pub(super) fn list(item: &str, n: usize) -> String {
    vec![item; n].join(", ")
}

/// (Re)indexes a batch of records: their entries become what their
/// parameters and dependencies read now. A few statements for the whole
/// batch (deleting, inserting and marking many records' rows at once),
/// not a few for each record: on PostgreSQL each is a round trip.
fn index_records(tx: &Tx<'_>, project: &str, batch: &[(i64, Option<Record>)]) -> Result<()> {
    let ids: Vec<Arg<'_>> = batch.iter().map(|(id, _)| Arg::Int(*id)).collect();
    for table in ["record_params", "record_deps"] {
        chunked(tx, &ids, 1, |n| {
            format!("DELETE FROM {table} WHERE record_id IN ({})", list("?", n))
        })?;
    }
    let (mut param_rows, mut dep_rows) = (Vec::new(), Vec::new());
    let (mut read, mut unreadable) = (Vec::new(), Vec::new());
    for (id, record) in batch {
        let Some(record) = record else {
            // A stored record that does not decode has no keys (and its
            // pages say so); it never stops a search or a migration.
            unreadable.push(Arg::Int(*id));
            continue;
        };
        let (params, deps) = entries(record);
        match params {
            Some(rows) => {
                read.push(Arg::Int(*id));
                for (key, (kind, num, shown)) in rows {
                    param_rows.extend([
                        Arg::from(project),
                        Arg::Int(*id),
                        Arg::from(key),
                        Arg::Int(kind),
                        Arg::from(num),
                        Arg::from(shown),
                    ]);
                }
            }
            None => unreadable.push(Arg::Int(*id)),
        }
        for (name, version) in deps {
            dep_rows.extend([
                Arg::from(project),
                Arg::Int(*id),
                Arg::from(name),
                Arg::from(version),
            ]);
        }
    }
    chunked(tx, &param_rows, 6, |n| {
        format!(
            "INSERT INTO record_params (project_id, record_id, key, kind, num, text) VALUES {}",
            list("(?, ?, ?, ?, ?, ?)", n)
        )
    })?;
    chunked(tx, &dep_rows, 4, |n| {
        format!(
            "INSERT INTO record_deps (project_id, record_id, name, version) VALUES {}",
            list("(?, ?, ?, ?)", n)
        )
    })?;
    for (state, ids) in [(READ, read), (UNREADABLE, unreadable)] {
        chunked(tx, &ids, 1, |n| {
            format!(
                "UPDATE records SET params_state = {state} WHERE id IN ({})",
                list("?", n)
            )
        })?;
    }
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
    // On PostgreSQL another process may be indexing the same records: a
    // project at a time, each batch is locked in id order (the same order
    // for every process), and a record indexed meanwhile drops out of the
    // batch (its state is no longer 0 once the lock is ours). Each batch
    // starts after the last one's ids, where `records_to_index` stands: a
    // walk from where it stopped, not from the start past every record
    // already indexed.
    let projects: Vec<String> = match project {
        Some(p) => vec![p.to_string()],
        None => tx.all(
            "SELECT DISTINCT project_id FROM records WHERE params_state = 0 ORDER BY project_id",
            args![],
            |r| r.string(0),
        )?,
    };
    let sql = format!(
        "SELECT id, body FROM records WHERE project_id = ?1 AND params_state = 0 AND id > ?2
         ORDER BY id LIMIT ?3{}",
        tx.for_update()
    );
    let mut done = 0u64;
    for project in &projects {
        let mut after = i64::MIN;
        loop {
            // A batch at a time, read whole before it is written.
            let batch: Vec<(i64, String)> = tx.all(&sql, args![project, after, BATCH], |r| {
                Ok((r.int(0)?, r.string(1)?))
            })?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            after = last;
            let batch: Vec<(i64, Option<Record>)> = batch
                .into_iter()
                .map(|(id, body)| (id, serde_json::from_str::<Record>(&body).ok()))
                .collect();
            index_records(tx, project, &batch)?;
            done += batch.len() as u64;
            if let Some(p) = progress.as_mut() {
                p(done, total as u64);
            }
        }
    }
    if bulk {
        tx.sql().bulk(false)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::last_wins;

    /// Each key once, where it first stood, with its last value: what a
    /// record naming a parameter or a dependency twice is indexed with
    /// (the database refuses a key twice for one record).
    #[test]
    fn a_key_given_twice_keeps_its_place_and_its_last_value() {
        let items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let got = last_wins(items.iter().map(|(k, v)| (k.to_string(), *v)));
        assert_eq!(
            got,
            [
                ("a".to_string(), 3),
                ("b".to_string(), 5),
                ("c".to_string(), 4)
            ]
        );
        // Many names, each twice: one entry each (linear: a quadratic
        // search here would take minutes for a hostile record).
        let many = (0..200_000).map(|i| (format!("d{}", i % 100_000), i));
        let got = last_wins(many);
        assert_eq!(got.len(), 100_000);
        assert_eq!(got[7], ("d7".to_string(), 100_007));
    }
}
