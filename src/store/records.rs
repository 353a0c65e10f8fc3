use super::search::{self, Builder};
use super::sql::{args, Arg, Dialect};
use super::Tx;
use crate::error::{Error, Result};
use crate::query::{Expr, SortKey};
use crate::record::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Updated,
}

/// Which of a project's records, in which order (SPEC 7.2, 7.3): any of
/// `tags` (all when empty), a text search over label, reason and outcome,
/// a query; sorted by `sort`, then newest first.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    pub tags: &'a [String],
    pub search: Option<&'a str>,
    pub query: Option<&'a Expr>,
    pub sort: &'a [SortKey],
    /// Projects whose records count as parents and children (`parent`,
    /// `child`) besides the selection's own: `None` every project (the
    /// shell); by default none other (a caller's readable projects are
    /// given with [`Selection::reading`]).
    pub readable: Option<&'a [String]>,
    /// Where the store starts reading this selection, chosen by counting
    /// on its first query and kept for the others of the same request (a
    /// page counts, samples keys and reads its rows: one choice, not three).
    pub(super) start: std::cell::OnceCell<Start>,
}

impl<'a> Selection<'a> {
    pub fn new(
        tags: &'a [String],
        search: Option<&'a str>,
        query: Option<&'a Expr>,
        sort: &'a [SortKey],
    ) -> Selection<'a> {
        Selection {
            tags,
            search,
            query,
            sort,
            readable: Some(&[]),
            start: std::cell::OnceCell::new(),
        }
    }

    /// The projects whose records may be parents or children (`None`:
    /// every project).
    pub fn reading(mut self, projects: Option<&'a [String]>) -> Selection<'a> {
        self.readable = projects;
        self
    }
}

/// Where the planner is told to start a selection (see `Tx::selection_where`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Start {
    /// The project's records.
    Project,
    /// The records having any of the selection's tags.
    Tags,
    /// The records of one of the query's driving conjuncts (its place
    /// among `search::drivers`).
    Driver(usize),
}

/// A selected record: its label, stored JSON, and parameters as read.
pub struct Selected<'a> {
    pub id: i64,
    pub label: &'a str,
    pub body: &'a str,
    /// `{"key": [kind, num, text], ...}` (kinds in `store::index`).
    pub params: &'a str,
}

/// One parameter value as indexed: typed, and as shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Indexed {
    Number(f64, String),
    /// Text, booleans, None and lists, as shown.
    Other(String),
}

/// Reads the `params` of a [`Selected`] row (typed: a CSV reads one per
/// row, and a tree of values for each would cost more than the query).
pub fn parse_params(json: &str) -> Vec<(String, Indexed)> {
    /// `[kind, num, text]`; `num` as any value (null, or a non-finite
    /// number as text).
    #[derive(serde::Deserialize)]
    struct Entry(i64, serde_json::Value, String);
    let Ok(m) = serde_json::from_str::<std::collections::BTreeMap<String, Entry>>(json) else {
        return Vec::new();
    };
    m.into_iter()
        .map(|(k, Entry(kind, num, text))| {
            let value = match (kind, num.as_f64()) {
                (super::index::NUMBER, Some(n)) => Indexed::Number(n, text),
                _ => Indexed::Other(text),
            };
            (k, value)
        })
        .collect()
}

fn parse_body(label: &str, body: &str) -> Result<Record> {
    serde_json::from_str(body)
        .map_err(|e| Error::Database(format!("stored record {label:?} is unreadable: {e}")))
}

/// Appends `"project_id"` to a stored record's JSON, giving the API's form.
pub fn with_project_id(body: &str, project: &str) -> String {
    let trimmed = body.trim_end();
    let head = trimmed.strip_suffix('}').unwrap_or(trimmed);
    let mut out = String::with_capacity(body.len() + project.len() + 20);
    out.push_str(head);
    out.push_str(",\"project_id\":");
    out.push_str(&serde_json::to_string(project).expect("a string serialises"));
    out.push('}');
    out
}

/// Tagged records up to which a filter looks records up by id; above it,
/// it walks the project's index newest first (and stops at the page's end).
const FEW_TAGGED: i64 = 2000;

/// No `LIMIT`: the largest one both engines take.
const ALL: i64 = i64::MAX;

fn limit_arg(limit: Option<u64>) -> i64 {
    limit.map_or(ALL, |l| l.min(i64::MAX as u64) as i64)
}

fn offset_arg(offset: u64) -> i64 {
    offset.min(i64::MAX as u64) as i64
}

/// The condition selecting a project's records having any of `tags`: `?1`
/// is the project, the tags follow as parameters. With `few` tagged records
/// they are looked up by id (on SQLite the `+` keeps the planner off the
/// project index, which it would otherwise walk whole, probing every
/// record; PostgreSQL plans by its statistics).
fn where_clause(tags: &[String], few: bool, dialect: Dialect) -> String {
    if tags.is_empty() {
        return "r.project_id = ?1".into();
    }
    let marks = super::index::list("?", tags.len());
    let plus = if few && dialect == Dialect::Sqlite {
        "+"
    } else {
        ""
    };
    format!(
        "{plus}r.project_id = ?1 AND r.id IN \
         (SELECT t.record_id FROM record_tags t WHERE t.project_id = ?1 AND t.tag IN ({marks}))"
    )
}

/// The project, then the tags, as arguments.
fn tag_args<'a>(project: &'a str, tags: &'a [String]) -> Vec<Arg<'a>> {
    std::iter::once(Arg::from(project))
        .chain(tags.iter().map(Arg::from))
        .collect()
}

impl Tx<'_> {
    /// How many of a project's records have any of `tags`.
    fn tagged_count(&self, project: &str, tags: &[String]) -> Result<i64> {
        let marks = super::index::list("?", tags.len());
        let sql = format!(
            "SELECT count(DISTINCT record_id) FROM record_tags WHERE project_id = ?1 AND tag IN ({marks})"
        );
        self.int(&sql, &tag_args(project, tags))
    }

    fn where_for(&self, project: &str, tags: &[String]) -> Result<String> {
        let few = !tags.is_empty() && self.tagged_count(project, tags)? <= FEW_TAGGED;
        Ok(where_clause(tags, few, self.dialect()))
    }

    pub fn record(&self, project: &str, label: &str) -> Result<Option<Record>> {
        self.stored(project, label, false)
    }

    /// The stored JSON of a record (without `project_id`).
    pub fn record_json(&self, project: &str, label: &str) -> Result<Option<String>> {
        self.one(
            "SELECT body FROM records WHERE project_id = ?1 AND label = ?2",
            args![project, label],
            |r| r.string(0),
        )
    }

    /// The stored record; with `lock`, its row locked until the transaction
    /// ends (on PostgreSQL: another process's write of it waits for ours).
    fn stored(&self, project: &str, label: &str, lock: bool) -> Result<Option<Record>> {
        let sql = format!(
            "SELECT body FROM records WHERE project_id = ?1 AND label = ?2{}",
            if lock { self.for_update() } else { "" }
        );
        self.one(&sql, args![project, label], |r| {
            parse_body(label, r.text(0)?)
        })
    }

    /// The newest record's JSON and label.
    pub fn last_record_json(&self, project: &str) -> Result<Option<(String, String)>> {
        self.one(
            "SELECT label, body FROM records WHERE project_id = ?1
              ORDER BY timestamp DESC, label DESC LIMIT 1",
            args![project],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )
    }

    /// Creates or updates a record. `build` gets the stored record, if any,
    /// and returns the record to store (SPEC 2.5 is its business).
    ///
    /// Two writers of one new record at once (two `serve` processes on one
    /// PostgreSQL database): the record is inserted only if it is still
    /// missing; the writer that finds it inserted meanwhile builds again
    /// from the stored record, locked, so that neither write is lost.
    /// The change is appended to the history (SPEC 10.3) as `actor`'s: a
    /// creation, or an update naming the fields that changed (a PUT that
    /// changes nothing leaves no entry).
    pub fn put_record(
        &self,
        project: &str,
        label: &str,
        actor: &super::Actor,
        mut build: impl FnMut(Option<&Record>) -> Result<Record>,
    ) -> Result<PutOutcome> {
        self.require_project(project)?;
        loop {
            let existing = self.stored(project, label, true)?;
            let record = build(existing.as_ref())?;
            if record.label != label {
                return Err(Error::bad(
                    "the record's label differs from the label in the URL",
                ));
            }
            if let Some(old) = &existing {
                if old != &record {
                    self.store_record(project, &record, existing.as_ref())?;
                    let detail = super::history::record_changes(
                        &serde_json::to_value(old).expect("a record serialises"),
                        &serde_json::to_value(&record).expect("a record serialises"),
                    );
                    self.log(actor, Some(project), "record.update", label, detail)?;
                }
                return Ok(PutOutcome::Updated);
            }
            if self.insert_record(project, &record)? {
                self.log(
                    actor,
                    Some(project),
                    "record.create",
                    label,
                    serde_json::json!({}),
                )?;
                return Ok(PutOutcome::Created);
            }
        }
    }

    /// Writes a record as given, replacing any stored one; returns whether
    /// anything changed (loaddata's idempotence).
    pub fn replace_record(&self, project: &str, record: &Record) -> Result<bool> {
        let old = self.stored(project, &record.label, true)?;
        if old.as_ref() == Some(record) {
            return Ok(false);
        }
        self.store_record(project, record, old.as_ref())?;
        Ok(true)
    }

    /// Inserts a new record unless one of its label exists (written by
    /// another process since we looked); returns whether it did.
    pub(super) fn insert_record(&self, project: &str, record: &Record) -> Result<bool> {
        let body = serde_json::to_string(record).expect("a record serialises");
        self.insert_record_body(project, record, &body)
    }

    /// [`Tx::insert_record`] of a record stored as `body` (its JSON, kept
    /// byte for byte: a record back from the trash).
    pub(super) fn insert_record_body(
        &self,
        project: &str,
        record: &Record,
        body: &str,
    ) -> Result<bool> {
        let id = self.one(
            "INSERT INTO records (project_id, label, timestamp, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, label) DO NOTHING
             RETURNING id",
            args![project, &record.label, &record.timestamp, body],
            |r| r.int(0),
        )?;
        let Some(id) = id else {
            return Ok(false);
        };
        self.insert_tags(project, id, record)?;
        self.index_files(&[(project, id, record)], false)?;
        Ok(true)
    }

    /// Stores a record and its tags; `old` is the record as stored before,
    /// if any. A record whose parameters or dependencies are new or changed
    /// is marked to be indexed (`Tx::index_pending`), in batches, before
    /// anything searches them: a PUT does not wait for it.
    fn store_record(&self, project: &str, record: &Record, old: Option<&Record>) -> Result<()> {
        let body = serde_json::to_string(record).expect("a record serialises");
        let stale = !old.is_some_and(|o| {
            o.parameters == record.parameters && o.dependencies == record.dependencies
        });
        let id = self.int(
            "INSERT INTO records (project_id, label, timestamp, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, label) DO UPDATE SET timestamp = excluded.timestamp, body = excluded.body,
               params_state = CASE WHEN ?5 THEN 0 ELSE records.params_state END
             RETURNING id",
            args![project, &record.label, &record.timestamp, body, stale],
        )?;
        if !old.is_some_and(|o| super::files::same_files(o, record)) {
            self.index_files(&[(project, id, record)], true)?;
        }
        self.store_tags(project, id, record)
    }

    fn store_tags(&self, project: &str, id: i64, record: &Record) -> Result<()> {
        self.exec("DELETE FROM record_tags WHERE record_id = ?1", args![id])?;
        self.insert_tags(project, id, record)
    }

    /// The tags of record `id`, which has none stored.
    fn insert_tags(&self, project: &str, id: i64, record: &Record) -> Result<()> {
        let mut rows = Vec::with_capacity(record.tags.len() * 3);
        for tag in &record.tags {
            rows.extend([Arg::from(project), Arg::from(tag), Arg::Int(id)]);
        }
        self.insert_tag_rows(&rows)
    }

    /// Tag rows `(project_id, tag, record_id)`, three values each, many to
    /// a statement (a round trip on PostgreSQL).
    pub(super) fn insert_tag_rows(&self, rows: &[Arg<'_>]) -> Result<()> {
        super::index::chunked(self, rows, 3, |n| {
            format!(
                "INSERT INTO record_tags (project_id, tag, record_id) VALUES {} ON CONFLICT DO NOTHING",
                super::index::list("(?, ?, ?)", n)
            )
        })
    }

    /// Indexes the parameters and dependencies of every record marked to
    /// be (of one project, or all); returns how many.
    pub fn index_pending(&self, project: Option<&str>) -> Result<u64> {
        super::index::index_pending(self, project, None)
    }

    /// Whether records of `project` wait to be indexed.
    pub fn has_pending_index(&self, project: &str) -> Result<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM records WHERE project_id = ?1 AND params_state = 0 LIMIT 1",
                args![project],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn labels_sql(&self, project: &str, tags: &[String]) -> Result<String> {
        Ok(format!(
            "SELECT r.label FROM records r WHERE {} ORDER BY r.timestamp DESC, r.label DESC LIMIT ? OFFSET ?",
            self.where_for(project, tags)?
        ))
    }

    /// Labels, newest first, of the records having any of `tags` (all when empty).
    pub fn labels(
        &self,
        project: &str,
        tags: &[String],
        limit: Option<u64>,
        offset: u64,
    ) -> Result<Vec<String>> {
        let sql = self.labels_sql(project, tags)?;
        let mut args = tag_args(project, tags);
        args.push(Arg::Int(limit_arg(limit)));
        args.push(Arg::Int(offset_arg(offset)));
        self.all(&sql, &args, |r| r.string(0))
    }

    pub fn count_records(&self, project: &str, tags: &[String]) -> Result<i64> {
        if !tags.is_empty() {
            return self.tagged_count(project, tags);
        }
        self.int(
            "SELECT count(*) FROM records WHERE project_id = ?1",
            args![project],
        )
    }

    /// Records in the store, every project.
    pub fn record_count(&self) -> Result<i64> {
        self.int("SELECT count(*) FROM records", &[])
    }

    /// Every tag used in a project, with how many records carry it.
    pub fn tag_counts(&self, project: &str) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT tag, count(*) FROM record_tags WHERE project_id = ?1 GROUP BY tag ORDER BY tag",
            args![project],
            |r| Ok((r.string(0)?, r.int(1)?)),
        )
    }

    /// Calls `f` with each record's stored JSON, oldest first, one row at a
    /// time (export streams: memory stays flat).
    pub fn for_each_record_json(
        &self,
        project: &str,
        mut f: impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        self.each(
            "SELECT body FROM records WHERE project_id = ?1 ORDER BY timestamp, label",
            args![project],
            |r| f(r.text(0)?),
        )
    }
}

impl Tx<'_> {
    /// The smallest of the tag filter and the query's top-level comparisons
    /// on tags, parameters or dependencies, each counted by its index up to
    /// a cap; or the project's records when none is small.
    fn choose_start(&self, project: &str, sel: &Selection<'_>) -> Result<Start> {
        const CAP: i64 = 20_000;
        let tagged = if sel.tags.is_empty() {
            None
        } else {
            Some(self.tagged_count(project, sel.tags)?)
        };
        let mut best: Option<(i64, Start)> = tagged
            .filter(|&n| n <= FEW_TAGGED)
            .map(|n| (n, Start::Tags));
        if let Some(q) = sel.query {
            for (i, d) in search::drivers(q).into_iter().enumerate() {
                let mut est = Builder::new(project, self.dialect());
                let Some(sql) = search::estimate(&mut est, d, CAP) else {
                    continue;
                };
                let n = self.int(&sql, &est.args)?;
                if n < CAP && best.is_none_or(|(m, _)| n < m) {
                    best = Some((n, Start::Driver(i)));
                }
            }
        }
        Ok(best.map_or(Start::Project, |(_, start)| start))
    }

    /// The `WHERE` condition of a selection. The planner is told where to
    /// start: from the smallest of the tag filter and the query's top-level
    /// comparisons on tags, parameters or dependencies (each counted by its
    /// index, up to a cap), looking the records up by id; or, with none of
    /// them, from the project's records.
    fn selection_where(
        &self,
        project: &str,
        sel: &Selection<'_>,
        b: &mut Builder,
    ) -> Result<String> {
        let start = match sel.start.get() {
            Some(start) => *start,
            None => {
                let start = self.choose_start(project, sel)?;
                *sel.start.get_or_init(|| start)
            }
        };
        let driver = match (start, sel.query) {
            (Start::Driver(i), Some(q)) => search::drivers(q).get(i).copied(),
            _ => None,
        };
        let mut w = String::from(if !matches!(start, Start::Project) && !self.pg() {
            "+r.project_id = ?1"
        } else {
            "r.project_id = ?1"
        });
        if !sel.tags.is_empty() {
            let marks: Vec<String> = sel.tags.iter().map(|t| b.text(t)).collect();
            let cond = format!("t.project_id = ?1 AND t.tag IN ({})", marks.join(", "));
            if driver.is_none() {
                w.push_str(&format!(
                    " AND r.id IN (SELECT t.record_id FROM record_tags t WHERE {cond})"
                ));
            } else {
                w.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND {cond})"
                ));
            }
        }
        if let Some(text) = sel.search {
            let p = b.text(&like_pattern(text));
            let like = if self.pg() { "ILIKE" } else { "LIKE" };
            let (reason, outcome) = (
                search::field_text(self.dialect(), &crate::query::Field::Reason),
                search::field_text(self.dialect(), &crate::query::Field::Outcome),
            );
            w.push_str(&format!(
                " AND (r.label {like} {p} ESCAPE '\\' OR coalesce({reason}, '') {like} {p} ESCAPE '\\' \
                 OR coalesce({outcome}, '') {like} {p} ESCAPE '\\')"
            ));
        }
        if let Some(q) = sel.query {
            b.readable = sel.readable.map(<[String]>::to_vec);
            w.push_str(" AND ");
            w.push_str(&search::condition(b, q, driver));
        }
        Ok(w)
    }

    /// How many records a selection holds.
    pub fn select_count(&self, project: &str, sel: &Selection<'_>) -> Result<i64> {
        let mut b = Builder::new(project, self.dialect());
        let w = self.selection_where(project, sel, &mut b)?;
        let sql = format!("SELECT count(*) FROM records r WHERE {w}");
        self.int(&sql, &b.args)
    }

    /// Calls `f` with each selected record in order, one row at a time
    /// (memory stays flat whatever the number of rows).
    pub fn for_each_selected(
        &self,
        project: &str,
        sel: &Selection<'_>,
        limit: Option<u64>,
        offset: u64,
        with_params: bool,
        mut f: impl FnMut(Selected<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut b = Builder::new(project, self.dialect());
        let (joins, order) = search::order(&mut b, sel.sort);
        let w = self.selection_where(project, sel, &mut b)?;
        let lim = b.arg(Arg::Int(limit_arg(limit)));
        let off = b.arg(Arg::Int(offset_arg(offset)));
        let params = match (with_params, self.dialect()) {
            (false, _) => "''",
            (true, Dialect::Sqlite) => {
                "(SELECT json_group_object(p.key, json_array(p.kind, p.num, p.text)) \
                   FROM record_params p WHERE p.record_id = r.id)"
            }
            (true, Dialect::Postgres) => {
                "(SELECT json_object_agg(p.key, json_build_array(p.kind, p.num, p.text))::text \
                   FROM record_params p WHERE p.record_id = r.id)"
            }
        };
        let sql = if with_params && limit.is_some() {
            // A page of whole records: the matches are ordered by their
            // sort keys alone, and only the page's rows are then read whole
            // (sorting 100 000 stored records to keep 50 carried every
            // body through the sort).
            let keys: Vec<String> = order
                .iter()
                .enumerate()
                .map(|(i, (e, _))| format!("{e} AS o{i}"))
                .collect();
            let inner: Vec<String> = order
                .iter()
                .enumerate()
                .map(|(i, (_, dir))| format!("o{i} {dir}"))
                .collect();
            let outer: Vec<String> = order
                .iter()
                .enumerate()
                .map(|(i, (_, dir))| format!("top.o{i} {dir}"))
                .collect();
            format!(
                "SELECT r.label, r.body, {params}, r.id FROM \
                 (SELECT r.id AS id, {} FROM records r{joins} WHERE {w} \
                  ORDER BY {} LIMIT {lim} OFFSET {off}) AS top \
                 JOIN records r ON r.id = top.id ORDER BY {}",
                keys.join(", "),
                inner.join(", "),
                outer.join(", ")
            )
        } else {
            let order: Vec<String> = order.iter().map(|(e, dir)| format!("{e} {dir}")).collect();
            let body = if with_params { "r.body" } else { "''" };
            format!(
                "SELECT r.label, {body}, {params}, r.id \
                 FROM records r{joins} WHERE {w} ORDER BY {} LIMIT {lim} OFFSET {off}",
                order.join(", ")
            )
        };
        self.each(&sql, &b.args, |row| {
            f(Selected {
                id: row.int(3)?,
                label: row.text_opt(0)?.unwrap_or(""),
                body: row.text_opt(1)?.unwrap_or(""),
                params: row.text_opt(2)?.unwrap_or(""),
            })
        })
    }

    /// Labels of a selection, in order.
    pub fn select_labels(
        &self,
        project: &str,
        sel: &Selection<'_>,
        limit: Option<u64>,
        offset: u64,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.for_each_selected(project, sel, limit, offset, false, |r| {
            out.push(r.label.to_string());
            Ok(())
        })?;
        Ok(out)
    }

    /// Ids of a selection's records, in order.
    pub fn select_ids(
        &self,
        project: &str,
        sel: &Selection<'_>,
        limit: Option<u64>,
        offset: u64,
    ) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        self.for_each_selected(project, sel, limit, offset, false, |r| {
            out.push(r.id);
            Ok(())
        })?;
        Ok(out)
    }

    /// The parameter keys found among a selection's records (or among
    /// `sample` of them, in no particular order), most common first, with
    /// how many records have each.
    pub fn param_keys(
        &self,
        project: &str,
        sel: &Selection<'_>,
        sample: Option<u64>,
    ) -> Result<Vec<(String, i64)>> {
        let mut b = Builder::new(project, self.dialect());
        let w = self.selection_where(project, sel, &mut b)?;
        let matches = match sample {
            None => format!("SELECT r.id FROM records r WHERE {w}"),
            Some(n) => {
                let lim = b.arg(Arg::Int(limit_arg(Some(n))));
                format!("SELECT r.id FROM records r WHERE {w} LIMIT {lim}")
            }
        };
        let sql = format!(
            "SELECT p.key, count(*) FROM record_params p WHERE p.record_id IN ({matches}) \
             GROUP BY p.key ORDER BY count(*) DESC, p.key"
        );
        self.all(&sql, &b.args, |r| Ok((r.string(0)?, r.int(1)?)))
    }

    /// Whether a record's parameters could be read (`None`: no such record).
    pub fn params_readable(&self, project: &str, label: &str) -> Result<Option<bool>> {
        Ok(self
            .one(
                "SELECT params_state FROM records WHERE project_id = ?1 AND label = ?2",
                args![project, label],
                |r| r.int(0),
            )?
            .map(|state| state != 2))
    }
}

/// A `LIKE` pattern matching `text` anywhere, `%`, `_` and `\` as themselves.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use crate::record::decode_value;
    use crate::store::{OpenMode, Store};
    use serde_json::json;

    fn record(label: &str, tag: &str, second: u32) -> crate::record::Record {
        decode_value(json!({
            "label": label, "timestamp": format!("2026-01-01 00:{:02}:{:02}", second / 60 % 60, second % 60),
            "executable": {}, "repository": {}, "main_file": "m.py", "version": "1",
            "parameters": {}, "launch_mode": {}, "datastore": {}, "tags": [tag],
        }))
        .unwrap()
    }

    /// Listing and filtering are served by indexes (issue 6): no full scan of
    /// records, no correlated subquery, whichever way a tag filter is planned.
    /// A store with project P of `n` records, every `rare`th tagged `rare`
    /// and the others `common`.
    fn store_of(dir: &tempfile::TempDir, n: u32, rare: u32) -> Store {
        let mut store = Store::open(
            &crate::store::Location::from(&dir.path().join("t.db")),
            OpenMode::Create,
        )
        .unwrap();
        store
            .write(|tx| {
                tx.create_project("P", "", "")?;
                for i in 0..n {
                    let tag = if i % rare == 0 { "rare" } else { "common" };
                    tx.replace_record("P", &record(&format!("r{i}"), tag, i))?;
                }
                Ok(())
            })
            .unwrap();
        store
    }

    #[test]
    fn listing_and_filtering_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(&dir, 3000, 1000);
        let tx = store.read();
        for tags in [vec![], vec!["rare".to_string()], vec!["common".to_string()]] {
            let sql = tx.labels_sql("P", &tags).unwrap();
            let mut stmt = tx
                .conn()
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let n = 2 + tags.len();
            let params: Vec<rusqlite::types::Value> = std::iter::once("P".to_string())
                .chain(tags.iter().cloned())
                .map(rusqlite::types::Value::Text)
                .chain(std::iter::repeat(rusqlite::types::Value::Integer(10)))
                .take(n + 1)
                .collect();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let text = plan.join(" | ");
            assert!(
                !text.contains("SCAN r ") && !text.ends_with("SCAN r"),
                "{tags:?}: {text}"
            );
            assert!(!text.contains("CORRELATED"), "{tags:?}: {text}");
            assert!(
                text.contains("INDEX") || text.contains("PRIMARY KEY"),
                "{tags:?}: {text}"
            );
            let labels = tx.labels("P", &tags, None, 0).unwrap();
            let want = match tags.first().map(String::as_str) {
                None => 3000,
                Some("rare") => 3,
                _ => 2997,
            };
            assert_eq!(labels.len(), want);
            assert_eq!(tx.count_records("P", &tags).unwrap(), want as i64);
        }
        assert_eq!(
            tx.labels("P", &["rare".into()], None, 0).unwrap(),
            vec!["r2000", "r1000", "r0"]
        );
    }

    /// A request that counts a selection and then reads its rows chooses
    /// where to start once (issue 11: the paged document counted the
    /// drivers' records again for its count).
    #[test]
    fn a_selection_chooses_where_to_start_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(&dir, 300, 100);
        let q = crate::query::parse("tag exists and tag = rare").unwrap();
        let sel = super::Selection::new(&[], None, Some(&q), &[]);
        assert!(sel.start.get().is_none());
        let tx = store.read();
        assert_eq!(tx.select_count("P", &sel).unwrap(), 3);
        assert!(
            matches!(sel.start.get(), Some(super::Start::Driver(1))),
            "{:?}",
            sel.start.get()
        );
        // The rare tag gone, a new choice would start elsewhere; this
        // selection keeps its own, and its rows agree with its count.
        tx.conn()
            .execute(
                "DELETE FROM record_tags WHERE tag = 'rare' AND record_id > 1",
                [],
            )
            .unwrap();
        let labels = tx.select_labels("P", &sel, None, 0).unwrap();
        assert_eq!(labels, ["r0"]);
        assert!(matches!(sel.start.get(), Some(super::Start::Driver(1))));
    }
}
