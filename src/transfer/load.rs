//! The load engine of `loaddata` (SPEC 5): sources opened and classified,
//! applied in one transaction with counts of what changed. The formats
//! themselves are `super::django` (Django dumps) and `super::dump` (ours).

use super::django;
use super::dump::{self, Fixture, GrantMode, Shape};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::{KeptEntry, KeptProject, KeptRecord, Level, Project, Store, Tx, ANONYMOUS};
use serde_json::Value;
use std::borrow::{Borrow, Cow};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

/// Fixtures built into the binary, by the name `loaddata` knows them by.
const BUILTIN: [(&str, &str); 2] = [
    ("haggling", include_str!("../../fixtures/haggling.json")),
    (
        "permissions",
        include_str!("../../fixtures/permissions.json"),
    ),
];

/// Loads `sources` in one transaction (rolled back when `dry_run`) and says
/// what changed; `tick` is called once per record. `serve --demo` calls
/// this with the built-in names.
///
/// Django dumps are read whole before the transaction (their objects refer
/// to each other in any order, and all of them form one pool, applied where
/// the first of them stands); our own files are only classified then, and
/// streamed inside the transaction, each record applied as it is read.
pub fn load(
    store: &mut Store,
    sources: &[String],
    dry_run: bool,
    ignore_unknown: bool,
    tick: &dyn Fn(),
) -> Result<Report> {
    let inputs = sources
        .iter()
        .map(|s| open_source(s))
        .collect::<Result<Vec<_>>>()?;
    let run = |tx: &Tx<'_>| {
        let mut django_sources = Vec::new();
        let mut steps = Vec::new();
        for input in inputs {
            match input.data {
                Data::Django(objects) => {
                    if django_sources.is_empty() {
                        steps.push(None);
                    }
                    django_sources.push(django::Source {
                        name: input.name,
                        objects,
                    });
                }
                _ => steps.push(Some(input)),
            }
        }
        let mut pool = match django_sources.is_empty() {
            true => None,
            false => Some(django::read(django_sources, tx, ignore_unknown)?),
        };
        let mut report = Report {
            list_changes: dry_run,
            target_was_fresh: tx.is_fresh()?,
            ..Report::default()
        };
        for step in steps {
            match step {
                Some(input) => stream_source(tx, input, &mut report, tick)?,
                None => {
                    if let Some(fx) = pool.take() {
                        apply(tx, &fx, &mut report, tick)?;
                    }
                }
            }
        }
        // The loaded records' parameters, indexed in the same transaction.
        tx.index_pending(None)?;
        // One entry in the history for the load (SPEC 10.3), not one per
        // record of a million.
        let changed = report.total().created + report.total().updated > 0;
        // A file whose history went into an empty one made this store a
        // copy of another: its history is that of the file, which an
        // export gives back byte for byte (SPEC 10.3). Any other load is
        // a change of its own.
        if changed && !(report.carried_history && report.target_was_fresh) {
            tx.log(
                &crate::store::Actor::shell(),
                None,
                "data.load",
                &sources.join(", "),
                serde_json::json!({"summary": report.summary()}),
            )?;
        }
        Ok(report)
    };
    if dry_run {
        return store.rehearse(run);
    }
    let mut report = store.write(run)?;
    if report.records.created + report.records.updated >= SETTLE_AFTER {
        // The load is stored whatever happens here: a failure is said, not
        // an error (autovacuum gets there later).
        if let Err(e) = store.settle() {
            report.notes.push(format!(
                "loaded; the database's statistics were not brought up to date ({e}); \
                 run ANALYZE on it if the first searches are slow"
            ));
        }
    }
    Ok(report)
}

/// Records written by one load from which the store's statistics are
/// brought up to date after it (`Store::settle`).
const SETTLE_AFTER: u64 = 1000;

/// One source, opened: a Django dump already read, or one of ours to stream.
struct Input {
    /// The name to show in messages.
    name: String,
    data: Data,
}

enum Data {
    Django(Vec<Value>),
    /// A regular file of ours, read again (streamed) when applied.
    File(PathBuf),
    /// A built-in fixture, or a file that cannot be read twice (a pipe).
    Bytes(Cow<'static, [u8]>),
}

/// Opens a fixture name or a path and tells what it holds; only a Django
/// dump is read whole.
fn open_source(arg: &str) -> Result<Input> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == arg) {
        let name = format!("fixture {name}");
        let bytes = text.as_bytes();
        let data = match dump::shape(&name, serde_json::Deserializer::from_slice(bytes))? {
            Shape::Django(objects) => Data::Django(objects),
            Shape::Ours => Data::Bytes(Cow::Borrowed(bytes)),
        };
        return Ok(Input { name, data });
    }
    let cannot = |e: std::io::Error| {
        let bare = !arg.contains(['/', '\\', '.']);
        if e.kind() == std::io::ErrorKind::NotFound && bare {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            Error::NotFound(format!(
                "no fixture named {arg:?} (built in: {}) and no file {arg}",
                names.join(", ")
            ))
        } else {
            Error::BadRequest(format!("cannot read {arg}: {e}"))
        }
    };
    let mut file = File::open(arg).map_err(cannot)?;
    let name = arg.to_string();
    let data = if file.metadata().map_err(cannot)?.is_file() {
        let reader = BufReader::new(&file);
        match dump::shape(&name, serde_json::Deserializer::from_reader(reader))? {
            Shape::Django(objects) => Data::Django(objects),
            Shape::Ours => Data::File(PathBuf::from(arg)),
        }
    } else {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(cannot)?;
        match dump::shape(&name, serde_json::Deserializer::from_slice(&bytes))? {
            Shape::Django(objects) => Data::Django(objects),
            Shape::Ours => Data::Bytes(Cow::Owned(bytes)),
        }
    };
    Ok(Input { name, data })
}

/// Streams one of our files into the database: projects and records as
/// they are read, then its users and access.
fn stream_source(tx: &Tx<'_>, input: Input, report: &mut Report, tick: &dyn Fn()) -> Result<()> {
    let name = input.name;
    let mut sink = Applier {
        tx,
        report,
        tick,
        opened: None,
        batch: Batch::new(),
        history: None,
    };
    let rest = match input.data {
        Data::File(path) => {
            let file = File::open(&path)
                .map_err(|e| Error::BadRequest(format!("cannot read {name}: {e}")))?;
            let reader = BufReader::with_capacity(1 << 16, file);
            dump::stream(
                &name,
                serde_json::Deserializer::from_reader(reader),
                &mut sink,
            )?
        }
        Data::Bytes(bytes) => dump::stream(
            &name,
            serde_json::Deserializer::from_slice(&bytes),
            &mut sink,
        )?,
        Data::Django(_) => unreachable!("Django dumps are pooled, not streamed"),
    };
    sink.flush()?;
    apply(tx, &rest, report, tick)
}

impl django::Lookup for Tx<'_> {
    fn has_project(&self, id: &str) -> Result<bool> {
        Ok(self.project(id)?.is_some())
    }
    fn has_user(&self, username: &str) -> Result<bool> {
        Ok(self.user(username)?.is_some())
    }
}

/// Applies what a streamed file hands over, as it comes.
struct Applier<'a, 't> {
    tx: &'a Tx<'t>,
    report: &'a mut Report,
    tick: &'a dyn Fn(),
    opened: Option<Opened>,
    /// Records read and not yet written.
    batch: Batch<Record>,
    /// The fingerprints of the history's entries (with how many have each),
    /// read at the first entry of the file's.
    history: Option<HashMap<u128, usize>>,
}

impl Applier<'_, '_> {
    /// Writes the records read so far.
    fn flush(&mut self) -> Result<()> {
        self.batch.flush(self.tx, self.report, self.tick)
    }
}

/// Records waiting to be written together (`Tx::load_records`: a few
/// statements for many records, one round trip each on PostgreSQL): all
/// of one project, each label once, at most [`BATCH`].
struct Batch<R> {
    project: String,
    records: Vec<R>,
    labels: HashSet<String>,
}

/// Records written together at most.
const BATCH: usize = 500;

impl<R: Borrow<Record>> Batch<R> {
    fn new() -> Self {
        Batch {
            project: String::new(),
            records: Vec::new(),
            labels: HashSet::new(),
        }
    }

    /// Adds a record, first writing those waiting when it cannot join them.
    fn add(
        &mut self,
        tx: &Tx<'_>,
        project: &str,
        record: R,
        report: &mut Report,
        tick: &dyn Fn(),
    ) -> Result<()> {
        let label = &record.borrow().label;
        if !self.records.is_empty()
            && (self.project != project
                || self.labels.contains(label)
                || self.records.len() >= BATCH)
        {
            self.flush(tx, report, tick)?;
        }
        if self.records.is_empty() {
            self.project = project.to_string();
        }
        self.labels.insert(label.clone());
        self.records.push(record);
        Ok(())
    }

    /// Writes the records waiting, and notes what each did, in order.
    fn flush(&mut self, tx: &Tx<'_>, report: &mut Report, tick: &dyn Fn()) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let records: Vec<&Record> = self.records.iter().map(Borrow::borrow).collect();
        let outcomes = tx.load_records(&self.project, &records)?;
        for (record, (existed, changed)) in records.iter().zip(outcomes) {
            report.note(
                |r| &mut r.records,
                existed,
                changed,
                || format!("record {}/{}", self.project, record.label),
            );
            tick();
        }
        self.records.clear();
        self.labels.clear();
        Ok(())
    }
}

/// A project of a document between its opening and its end.
struct Opened {
    /// As it was in the database before.
    before: Option<Project>,
    /// As it was written at its opening.
    written: Project,
    /// Where its line goes in the report's changes: before its records.
    line_at: usize,
}

impl dump::Sink for Applier<'_, '_> {
    fn open_project(&mut self, p: &Project) -> Result<()> {
        self.flush()?;
        let before = self.tx.project(&p.id)?;
        self.tx.upsert_project(p)?;
        self.opened = Some(Opened {
            before,
            written: p.clone(),
            line_at: self.report.changes.len(),
        });
        Ok(())
    }

    fn close_project(&mut self, p: &Project) -> Result<()> {
        self.flush()?;
        let Some(o) = self.opened.take().filter(|o| o.written.id == p.id) else {
            unreachable!("a project is opened before it is closed")
        };
        if o.written != *p {
            self.tx.upsert_project(p)?;
        }
        let changed = o.before.as_ref() != Some(p);
        if let Some(verb) = self.report.projects.add(o.before.is_some(), changed) {
            if self.report.list_changes {
                let line = format!("{verb} project {}", p.id);
                self.report.changes.insert(o.line_at, line);
            }
        }
        Ok(())
    }

    fn implied_project(&mut self, id: &str) -> Result<()> {
        self.flush()?;
        let created = self.tx.ensure_project(id)?;
        self.report.note(
            |r| &mut r.projects,
            !created,
            false,
            || format!("project {id}"),
        );
        Ok(())
    }

    fn record(&mut self, project: &str, record: Record) -> Result<()> {
        self.batch
            .add(self.tx, project, record, self.report, self.tick)
    }

    fn trashed(&mut self, record: KeptRecord) -> Result<()> {
        keep_trashed(self.tx, &record, self.report)
    }

    fn deleted_project(&mut self, project: KeptProject) -> Result<()> {
        keep_deleted_project(self.tx, &project, self.report)
    }

    fn history_begins(&mut self) {
        self.report.carried_history = true;
    }

    fn history(&mut self, entry: KeptEntry) -> Result<()> {
        if self.history.is_none() {
            self.history = Some(self.tx.history_fingerprints()?);
        }
        let held = self.history.as_mut().expect("read above");
        keep_entry(self.tx, &entry, held, self.report)
    }
}

fn keep_trashed(tx: &Tx<'_>, k: &KeptRecord, report: &mut Report) -> Result<()> {
    let put = tx.keep_trashed(k)?;
    report.note(
        |r| &mut r.trash,
        !put,
        false,
        || format!("trashed record {}/{}", k.project, k.label),
    );
    Ok(())
}

fn keep_deleted_project(tx: &Tx<'_>, p: &KeptProject, report: &mut Report) -> Result<()> {
    let (existed, changed) = tx.keep_deleted_project(p)?;
    report.note(
        |r| &mut r.deleted_projects,
        existed,
        changed,
        || format!("deleted project {}", p.id),
    );
    Ok(())
}

/// Appends an entry unless the history holds it already (as many times as
/// the file does: two identical entries in a second are two changes).
fn keep_entry(
    tx: &Tx<'_>,
    e: &KeptEntry,
    held: &mut HashMap<u128, usize>,
    report: &mut Report,
) -> Result<()> {
    let new = match held.get_mut(&e.fingerprint()) {
        Some(n) if *n > 0 => {
            *n -= 1;
            false
        }
        _ => true,
    };
    if new {
        tx.keep_history(e)?;
    }
    // Entries are many: counted, never listed one by one.
    let _ = report.history.add(!new, false);
    Ok(())
}

/// Created / updated / unchanged, for one kind of thing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl Counts {
    fn add(&mut self, existed: bool, changed: bool) -> Option<&'static str> {
        if !existed {
            self.created += 1;
            Some("create")
        } else if changed {
            self.updated += 1;
            Some("update")
        } else {
            self.unchanged += 1;
            None
        }
    }
}

/// What a load did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub users: Counts,
    pub projects: Counts,
    pub permissions: Counts,
    pub records: Counts,
    /// Records put into the trash (SPEC 10.2).
    pub trash: Counts,
    pub deleted_projects: Counts,
    /// Entries of the history (SPEC 10.3).
    pub history: Counts,
    /// Tokens (SPEC 11.1).
    pub tokens: Counts,
    /// The file carried a history (a whole-store export).
    pub carried_history: bool,
    /// The store held no project and no history before the load.
    pub target_was_fresh: bool,
    /// One line per creation or change: `create record P/label`; listed
    /// only by a dry run, which prints them (a real load of many records
    /// keeps its memory flat).
    pub changes: Vec<String>,
    pub notes: Vec<String>,
    list_changes: bool,
}

impl Report {
    fn note(
        &mut self,
        counts: fn(&mut Report) -> &mut Counts,
        existed: bool,
        changed: bool,
        what: impl FnOnce() -> String,
    ) {
        if let Some(verb) = counts(self).add(existed, changed) {
            if self.list_changes {
                self.changes.push(format!("{verb} {}", what()));
            }
        }
    }

    pub fn total(&self) -> Counts {
        let all = [
            self.users,
            self.projects,
            self.permissions,
            self.records,
            self.trash,
            self.deleted_projects,
            self.history,
            self.tokens,
        ];
        Counts {
            created: all.iter().map(|c| c.created).sum(),
            updated: all.iter().map(|c| c.updated).sum(),
            unchanged: all.iter().map(|c| c.unchanged).sum(),
        }
    }

    pub fn summary(&self) -> String {
        let mut rows = vec![
            ("records", self.records),
            ("projects", self.projects),
            ("users", self.users),
            ("permissions", self.permissions),
        ];
        // What only whole-store exports carry, when there was any.
        rows.extend(
            [
                ("trash", self.trash),
                ("deleted projects", self.deleted_projects),
                ("tokens", self.tokens),
                ("history", self.history),
            ]
            .into_iter()
            .filter(|(_, c)| *c != Counts::default()),
        );
        rows.push(("total", self.total()));
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(12);
        let lines: Vec<String> = rows
            .iter()
            .map(|(name, c)| {
                format!(
                    "  {name:<width$} created {}, updated {}, unchanged {}",
                    c.created, c.updated, c.unchanged
                )
            })
            .collect();
        lines.join("\n")
    }
}

fn apply(tx: &Tx<'_>, fx: &Fixture, report: &mut Report, tick: &dyn Fn()) -> Result<()> {
    report.notes.extend(fx.notes.iter().cloned());
    for u in &fx.users {
        let existed = tx.user(&u.username)?.is_some();
        let changed = tx.upsert_user(&u.username, &u.password, &u.email, &u.created)?;
        report.note(
            |r| &mut r.users,
            existed,
            changed,
            || format!("user {}", u.username),
        );
    }
    for p in &fx.projects {
        let existed = tx.project(&p.id)?.is_some();
        let changed = tx.upsert_project(p)?;
        report.note(
            |r| &mut r.projects,
            existed,
            changed,
            || format!("project {}", p.id),
        );
    }
    for id in &fx.implied_projects {
        if !fx.projects.iter().any(|p| p.id == *id) {
            let created = tx.ensure_project(id)?;
            report.note(
                |r| &mut r.projects,
                !created,
                false,
                || format!("project {id}"),
            );
        }
    }
    for g in &fx.grants {
        apply_grant(tx, g, report)?;
    }
    for t in &fx.tokens {
        let put = tx.keep_token(t, report.target_was_fresh)?;
        report.note(
            |r| &mut r.tokens,
            !put,
            false,
            || format!("token of {} on {}", t.username, t.project),
        );
    }
    for k in &fx.trash {
        keep_trashed(tx, k, report)?;
    }
    for p in &fx.deleted_projects {
        keep_deleted_project(tx, p, report)?;
    }
    if !fx.history.is_empty() {
        report.carried_history = true;
        let mut held = tx.history_fingerprints()?;
        for e in &fx.history {
            keep_entry(tx, e, &mut held, report)?;
        }
    }
    let mut batch = Batch::new();
    for (project, record) in &fx.records {
        batch.add(tx, project, record, report, tick)?;
    }
    batch.flush(tx, report, tick)
}

fn apply_grant(tx: &Tx<'_>, g: &dump::Grant, report: &mut Report) -> Result<()> {
    let user = tx.user(&g.user)?.ok_or_else(|| {
        Error::BadRequest(format!(
            "access of {:?} to project {:?}: no such user in the database or the data loaded \
             (export with --with-users, or add the user first)",
            g.user, g.project
        ))
    })?;
    let held = tx.level(&g.project, user.id)?;
    let wanted = match (g.mode, held) {
        (GrantMode::AtLeast, Some(h)) => h.max(g.level),
        _ => g.level,
    };
    let wanted = if g.user == ANONYMOUS {
        Level::Read
    } else {
        wanted
    };
    let changed = tx.grant(&g.user, &g.project, wanted)?;
    report.note(
        |r| &mut r.permissions,
        held.is_some(),
        changed,
        || format!("permission {} {} on {}", g.user, wanted, g.project),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenMode;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &crate::store::Location::from(&dir.path().join("t.db")),
            OpenMode::Create,
        )
        .unwrap();
        (dir, store)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fixtures_load_once_then_change_nothing() {
        let (_dir, mut store) = store();
        let sources = names(&["haggling", "permissions"]);
        let first = load(&mut store, &sources, false, false, &|| {}).unwrap();
        assert_eq!(
            first.records,
            Counts {
                created: 5,
                updated: 0,
                unchanged: 0
            }
        );
        assert_eq!(first.projects.created, 2);
        assert_eq!(first.users.created, 1);
        assert_eq!(first.permissions.created, 3);
        let again = load(&mut store, &sources, false, false, &|| {}).unwrap();
        assert_eq!(
            again.total(),
            Counts {
                created: 0,
                updated: 0,
                unchanged: 11
            }
        );
        assert!(again.changes.is_empty(), "a real load lists no lines");
        let dry = load(&mut store, &sources, true, false, &|| {}).unwrap();
        assert_eq!(dry.total().unchanged, 11);
        assert!(dry.changes.is_empty(), "{:?}", dry.changes);
    }

    #[test]
    fn a_dry_run_reports_and_changes_nothing() {
        let (_dir, mut store) = store();
        let report = load(&mut store, &names(&["haggling"]), true, false, &|| {}).unwrap();
        assert_eq!(report.records.created, 5);
        assert!(report
            .changes
            .contains(&"create record TestProject/haggling".to_string()));
        assert!(store.read().project("TestProject").unwrap().is_none());
    }

    #[test]
    fn levels_already_held_are_not_lowered_by_django_dumps() {
        let (_dir, mut store) = store();
        let sources = names(&["haggling", "permissions"]);
        load(&mut store, &sources, false, false, &|| {}).unwrap();
        store
            .write(|tx| tx.grant("testuser", "TestProject", Level::Admin))
            .unwrap();
        let again = load(&mut store, &sources, false, false, &|| {}).unwrap();
        assert_eq!(again.permissions.updated, 0);
        let uid = store.read().user("testuser").unwrap().unwrap().id;
        assert_eq!(
            store.read().level("TestProject", uid).unwrap(),
            Some(Level::Admin)
        );
    }

    #[test]
    fn missing_fixture_names_are_explained() {
        let Err(e) = open_source("hagling") else {
            panic!("should fail")
        };
        assert!(
            e.to_string()
                .contains("no fixture named \"hagling\" (built in: haggling, permissions)"),
            "{e}"
        );
    }
}
