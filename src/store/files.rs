//! Files as data (SPEC 9.1): each entry of a record's `input_data` and
//! `output_data` indexed beside it (role, path, digest, size, mimetype,
//! creation), written with the record itself; and the lookups that
//! lineage (`crate::lineage`) walks over. The stored record is unchanged.

use super::sql::{args, Arg};
use super::Tx;
use crate::error::Result;
use crate::lineage::{FileUse, Graph, Node, Role};
use crate::record::{DataKey, Record};

/// Entries of one record indexed at most (a sweep may write thousands);
/// the rest are stored in the record, not indexed, and the record page
/// says how many (SPEC 9.1).
pub const MAX_FILES_PER_RECORD: usize = 100_000;

/// Sumatra's `IGNORE_DIGEST`, and the SHA-1 of the empty file: digests
/// that are kept but never link records.
const IGNORE_DIGEST: &str = "0000000000000000000000000000000000000000";
const EMPTY_FILE: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";

/// The digest as indexed (lowercase hex when it is one), and whether it
/// links records: 40 hexadecimal characters, neither of the two above.
pub fn normalise_digest(d: &str) -> (String, bool) {
    let t = d.trim();
    if t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let lower = t.to_ascii_lowercase();
        let links = lower != IGNORE_DIGEST && lower != EMPTY_FILE;
        (lower, links)
    } else {
        (t.to_string(), false)
    }
}

/// Values of one `record_files` row, in column order (10 per row).
fn row(project: &str, id: i64, role: Role, n: usize, k: &DataKey, out: &mut Vec<Arg<'static>>) {
    let (digest, links) = normalise_digest(k.digest.as_deref().unwrap_or(""));
    let size = k.metadata.get("size").and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let mimetype = k
        .metadata
        .get("mimetype")
        .and_then(|v| v.as_str())
        .map(clean);
    let clean_opt = |s: &Option<String>| s.as_deref().map(clean);
    out.extend([
        Arg::from(project.to_string()),
        Arg::Int(id),
        Arg::Int(role as i64),
        Arg::Int(n as i64),
        Arg::from(clean(&k.path)),
        Arg::from(clean(&digest)),
        Arg::Int(links as i64),
        Arg::from(size),
        Arg::from(mimetype),
        Arg::from(clean_opt(&k.creation)),
    ]);
}

/// Text as both engines store it (PostgreSQL's text cannot hold NUL).
fn clean(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// The rows of a record's files, at most [`MAX_FILES_PER_RECORD`].
fn rows_of(project: &str, id: i64, record: &Record, out: &mut Vec<Arg<'static>>) {
    let entries = record
        .input_data
        .iter()
        .enumerate()
        .map(|(n, k)| (Role::Input, n, k))
        .chain(
            record
                .output_data
                .iter()
                .enumerate()
                .map(|(n, k)| (Role::Output, n, k)),
        )
        .take(MAX_FILES_PER_RECORD);
    for (role, n, k) in entries {
        row(project, id, role, n, k, out);
    }
}

/// Whether two versions of a record list the same files.
pub fn same_files(a: &Record, b: &Record) -> bool {
    a.input_data == b.input_data && a.output_data == b.output_data
}

impl Tx<'_> {
    /// Indexes the files of records just written: (project, record id,
    /// record); `replace` first removes what was indexed for them.
    pub(super) fn index_files(&self, items: &[(&str, i64, &Record)], replace: bool) -> Result<()> {
        if replace {
            let ids: Vec<Arg<'_>> = items.iter().map(|(_, id, _)| Arg::Int(*id)).collect();
            super::index::chunked(self, &ids, 1, |n| {
                format!(
                    "DELETE FROM record_files WHERE record_id IN ({})",
                    super::index::list("?", n)
                )
            })?;
        }
        let mut rows = Vec::new();
        for (project, id, record) in items {
            rows_of(project, *id, record, &mut rows);
        }
        super::index::chunked(self, &rows, 10, |n| {
            format!(
                "INSERT INTO record_files (project_id, record_id, role, n, path, digest, linkable, \
                 size, mimetype, creation) VALUES {}",
                super::index::list("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", n)
            )
        })
    }

    /// The projects a caller may read (`None`: every project, the shell).
    pub fn readable_projects(&self, user: Option<i64>) -> Result<Vec<String>> {
        self.all(
            "SELECT DISTINCT pe.project_id FROM permissions pe JOIN users u ON u.id = pe.user_id
              WHERE u.username = 'anonymous' OR u.id = ?1 ORDER BY pe.project_id",
            args![user],
            |r| r.string(0),
        )
    }

    /// A record of a project as a lineage node.
    pub fn node(&self, project: &str, label: &str) -> Result<Option<Node>> {
        let id = self.one(
            "SELECT id FROM records WHERE project_id = ?1 AND label = ?2",
            args![project, label],
            |r| r.int(0),
        )?;
        Ok(match id {
            Some(id) => self.lineage_nodes(&[id])?.pop(),
            None => None,
        })
    }

    fn lineage_nodes(&self, ids: &[i64]) -> Result<Vec<Node>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            use crate::query::Field;
            let text = |f: &Field| {
                format!(
                    "coalesce(CAST({} AS TEXT), '')",
                    super::search::field_text(self.dialect(), f)
                )
            };
            let sql = format!(
                "SELECT r.id, r.project_id, r.label, r.timestamp, {}, {}, {}, {}, {}, {}, {}
                   FROM records r WHERE r.id IN ({})",
                text(&Field::Reason),
                text(&Field::Duration),
                text(&Field::User),
                text(&Field::Repository),
                text(&Field::Version),
                text(&Field::MainFile),
                text(&Field::Outcome),
                super::index::list("?", chunk.len())
            );
            let a: Vec<Arg<'_>> = chunk.iter().map(|id| Arg::Int(*id)).collect();
            self.each(&sql, &a, |r| {
                out.push(Node {
                    id: r.int(0)?,
                    project: r.string(1)?,
                    label: r.string(2)?,
                    timestamp: r.string(3)?,
                    reason: r.text_opt(4)?.unwrap_or("").to_string(),
                    tags: Vec::new(),
                    duration: r.text_opt(5)?.and_then(|d| d.parse().ok()),
                    user: r.string(6)?,
                    repository: r.string(7)?,
                    version: r.string(8)?,
                    main_file: r.string(9)?,
                    outcome: r.string(10)?,
                });
                Ok(())
            })?;
            let sql = format!(
                "SELECT record_id, tag FROM record_tags WHERE record_id IN ({}) ORDER BY tag",
                super::index::list("?", chunk.len())
            );
            let mut tags: Vec<(i64, String)> = Vec::new();
            self.each(&sql, &a, |r| {
                tags.push((r.int(0)?, r.string(1)?));
                Ok(())
            })?;
            for (id, tag) in tags {
                if let Some(n) = out.iter_mut().find(|n| n.id == id) {
                    n.tags.push(tag);
                }
            }
        }
        Ok(out)
    }

    /// Rows of [`USES`] as file entries.
    fn file_uses(&self, sql: &str, a: &[Arg<'_>]) -> Result<Vec<FileUse>> {
        self.all(sql, a, |r| {
            Ok(FileUse {
                record: r.int(0)?,
                role: if r.int(1)? == Role::Input as i64 {
                    Role::Input
                } else {
                    Role::Output
                },
                path: r.string(2)?,
                digest: r.string(3)?,
                links: r.int(4)? != 0,
                size: r.int_opt(5)?,
                mimetype: r.text_opt(6)?.map(String::from),
                creation: r.text_opt(7)?.map(String::from),
            })
        })
    }
}

/// The columns of a file entry as [`Tx::file_uses`] reads them.
const USES: &str =
    "f.record_id, f.role, f.path, f.digest, f.linkable, f.size, f.mimetype, f.creation";

/// The store as lineage sees it: the records of the projects a caller may
/// read (all of them for the shell).
pub struct Readable<'t, 'a> {
    pub tx: &'t Tx<'a>,
    /// `None`: every project.
    pub projects: Option<Vec<String>>,
}

impl Readable<'_, '_> {
    /// `AND f.project_id IN (...)` for the readable projects (nothing for
    /// every project), its arguments appended to `a`; `None` when the
    /// caller reads no project at all.
    fn within<'s>(&'s self, a: &mut Vec<Arg<'s>>) -> Option<String> {
        match &self.projects {
            None => Some(String::new()),
            Some(p) if p.is_empty() => None,
            Some(p) => {
                a.extend(p.iter().map(|p| Arg::from(p.as_str())));
                Some(format!(
                    " AND f.project_id IN ({})",
                    super::index::list("?", p.len())
                ))
            }
        }
    }

    /// A digest's place in a statement, `?` or `?N`. On PostgreSQL it is
    /// read as the value of a sub-select: a value the planner knows it
    /// estimates from the column's statistics, and the calibration file
    /// read by every record (half of all entries) made it walk the
    /// project's index past every entry of the project to find the few
    /// (or no) producers of that digest, 0.4 s at a million records. A
    /// value it does not know is taken for one of many digests, looked up
    /// by the digest index (0.06 ms).
    fn digest_at(&self, mark: &str) -> String {
        match self.tx.pg() {
            true => format!("(SELECT CAST({mark} AS TEXT))"),
            false => mark.to_string(),
        }
    }

    /// A page of the entries that hold a linking `digest` in `role`, in
    /// the index's order (project, record): a file every record reads is
    /// paged, never sorted whole.
    pub fn holders_page(
        &self,
        digest: &str,
        role: Role,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<FileUse>> {
        let mut a: Vec<Arg<'_>> = vec![Arg::from(digest), Arg::Int(role as i64)];
        let Some(within) = self.within(&mut a) else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {USES}
               FROM record_files f WHERE f.digest = {} AND f.role = ?2 AND f.linkable = 1{within}
              ORDER BY f.digest, f.role, f.project_id, f.record_id, f.n LIMIT {} OFFSET {}",
            self.digest_at("?1"),
            limit.min(i64::MAX as u64),
            offset.min(i64::MAX as u64)
        );
        self.tx.file_uses(&sql, &a)
    }

    /// How many entries hold a linking `digest` in `role`, counted up to
    /// `cap` (past it, `cap + 1`).
    pub fn count_holders(&self, digest: &str, role: Role, cap: u64) -> Result<u64> {
        let mut a: Vec<Arg<'_>> = vec![Arg::from(digest), Arg::Int(role as i64)];
        let Some(within) = self.within(&mut a) else {
            return Ok(0);
        };
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM record_files f
               WHERE f.digest = {} AND f.role = ?2 AND f.linkable = 1{within} LIMIT {}) AS held",
            self.digest_at("?1"),
            cap.saturating_add(1).min(i64::MAX as u64)
        );
        Ok(self.tx.int(&sql, &a)? as u64)
    }
}

impl Tx<'_> {
    /// A page of a project's file entries of `role`, newest record first;
    /// `search`: a part of the path.
    pub fn project_files(
        &self,
        project: &str,
        role: Role,
        search: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<FileUse>> {
        let mut a: Vec<Arg<'_>> = vec![Arg::from(project), Arg::Int(role as i64)];
        let filter = match search {
            None => "",
            Some(s) => {
                a.push(Arg::from(s));
                match self.dialect() {
                    super::sql::Dialect::Sqlite => " AND instr(f.path, ?3) > 0",
                    super::sql::Dialect::Postgres => " AND strpos(f.path, ?3) > 0",
                }
            }
        };
        let sql = format!(
            "SELECT {USES}
               FROM record_files f WHERE f.project_id = ?1 AND f.role = ?2{filter}
              ORDER BY f.record_id DESC, f.n DESC LIMIT {} OFFSET {}",
            limit.min(i64::MAX as u64),
            offset.min(i64::MAX as u64)
        );
        self.file_uses(&sql, &a)
    }
}

impl Graph for Readable<'_, '_> {
    fn files(&self, records: &[i64]) -> Result<Vec<FileUse>> {
        let mut out = Vec::new();
        for chunk in records.chunks(500) {
            let sql = format!(
                "SELECT {USES} FROM record_files f
                  WHERE record_id IN ({}) ORDER BY record_id, role, n",
                super::index::list("?", chunk.len())
            );
            let a: Vec<Arg<'_>> = chunk.iter().map(|id| Arg::Int(*id)).collect();
            out.extend(self.tx.file_uses(&sql, &a)?);
        }
        Ok(out)
    }

    fn holders(&self, digests: &[String], role: Role, limit: usize) -> Result<Vec<FileUse>> {
        let mut out = Vec::new();
        for chunk in digests.chunks(500) {
            if out.len() >= limit {
                break;
            }
            let mut a: Vec<Arg<'_>> = vec![Arg::Int(role as i64)];
            a.extend(chunk.iter().map(|d| Arg::from(d.as_str())));
            // `IN ((SELECT ?))` of one would be a sub-query the planner
            // folds back into the value: an array of sub-selects stays.
            let list = super::index::list(&self.digest_at("?"), chunk.len());
            let among = match self.tx.pg() {
                true => format!("= ANY(ARRAY[{list}])"),
                false => format!("IN ({list})"),
            };
            let Some(within) = self.within(&mut a) else {
                return Ok(Vec::new());
            };
            // In the index's order: the first rows answer, never a sort of
            // every holder (a file every record reads has a million).
            let sql = format!(
                "SELECT {USES}
                   FROM record_files f WHERE f.linkable = 1 AND f.role = ?1 AND f.digest {among}{within}
                  ORDER BY f.digest, f.project_id, f.record_id, f.n LIMIT {}",
                limit - out.len()
            );
            out.extend(self.tx.file_uses(&sql, &a)?);
        }
        Ok(out)
    }

    fn nodes(&self, ids: &[i64]) -> Result<Vec<Node>> {
        self.tx.lineage_nodes(ids)
    }

    fn params(&self, records: &[i64]) -> Result<Vec<(i64, String, serde_json::Value)>> {
        let mut out = Vec::new();
        for chunk in records.chunks(500) {
            let sql = format!(
                "SELECT record_id, key, kind, text FROM record_params
                  WHERE record_id IN ({}) ORDER BY record_id, key",
                super::index::list("?", chunk.len())
            );
            let a: Vec<Arg<'_>> = chunk.iter().map(|id| Arg::Int(*id)).collect();
            out.extend(self.tx.all(&sql, &a, |r| {
                let text = r.text_opt(3)?.unwrap_or("");
                let value = if r.int(2)? == super::index::NUMBER {
                    number(text)
                } else {
                    serde_json::Value::String(text.to_string())
                };
                Ok((r.int(0)?, r.string(1)?, value))
            })?);
        }
        Ok(out)
    }

    fn count_files(&self, records: &[i64]) -> Result<u64> {
        let mut n = 0;
        for chunk in records.chunks(500) {
            let sql = format!(
                "SELECT count(*) FROM record_files WHERE record_id IN ({})",
                super::index::list("?", chunk.len())
            );
            let a: Vec<Arg<'_>> = chunk.iter().map(|id| Arg::Int(*id)).collect();
            n += self.tx.int(&sql, &a)? as u64;
        }
        Ok(n)
    }
}

/// A parameter's number as shown, as a JSON number (an integer when it
/// is one), or as the text when JSON has no such number.
fn number(text: &str) -> serde_json::Value {
    if let Ok(i) = text.parse::<i64>() {
        return serde_json::Value::from(i);
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or_else(
            || serde_json::Value::String(text.into()),
            serde_json::Value::Number,
        )
}

/// Indexes the files of every record (a migration to schema 5), a
/// thousand records at a time, reporting progress.
pub fn backfill(tx: &Tx<'_>, mut progress: Option<super::schema::Progress<'_>>) -> Result<()> {
    let total = tx.int("SELECT count(*) FROM records", args![])? as u64;
    let mut after = i64::MIN;
    let mut done = 0u64;
    loop {
        let batch: Vec<(i64, String, String)> = tx.all(
            "SELECT id, project_id, body FROM records WHERE id > ?1 ORDER BY id LIMIT 1000",
            args![after],
            |r| Ok((r.int(0)?, r.string(1)?, r.string(2)?)),
        )?;
        let Some(&(last, _, _)) = batch.last() else {
            break;
        };
        after = last;
        let parsed: Vec<(i64, String, Record)> = batch
            .into_iter()
            .filter_map(|(id, p, body)| Some((id, p, serde_json::from_str(&body).ok()?)))
            .collect();
        let items: Vec<(&str, i64, &Record)> = parsed
            .iter()
            .map(|(id, p, r)| (p.as_str(), *id, r))
            .collect();
        tx.index_files(&items, false)?;
        done += items.len() as u64;
        if let Some(p) = progress.as_mut() {
            p(done, total);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalise_digest;

    #[test]
    fn placeholder_empty_and_malformed_digests_never_link() {
        let real = "E56EF4AF36FC0123456789ABCDEF0123456789AB";
        assert_eq!(normalise_digest(real), (real.to_ascii_lowercase(), true));
        assert!(!normalise_digest(&"0".repeat(40)).1);
        assert!(!normalise_digest("da39a3ee5e6b4b0d3255bfef95601890afd80709").1);
        assert_eq!(normalise_digest("abc"), ("abc".to_string(), false));
        assert!(!normalise_digest(&"g".repeat(40)).1);
        assert!(!normalise_digest("").1);
    }
}
