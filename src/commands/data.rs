//! `loaddata` and `export` (SPEC 5): reading files, applying them in one
//! transaction with counts, and streaming exports. The formats themselves
//! live in `crate::django` (Django dumps) and `crate::dump` (our export).

use crate::django;
use crate::dump::{self, Fixture, GrantMode};
use crate::error::{Error, Result};
use crate::store::{Level, Project, Store, Tx, ANONYMOUS};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Fixtures built into the binary, by the name `loaddata` knows them by.
const BUILTIN: [(&str, &str); 2] = [
    ("haggling", include_str!("../../fixtures/haggling.json")),
    (
        "permissions",
        include_str!("../../fixtures/permissions.json"),
    ),
];

// ---------------------------------------------------------------- loaddata

pub fn loaddata(
    store: &mut Store,
    sources: &[String],
    dry_run: bool,
    ignore_unknown: bool,
) -> Result<()> {
    let report = load(store, sources, dry_run, ignore_unknown)?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let mut out = std::io::stdout().lock();
    if dry_run {
        for line in &report.changes {
            writeln!(out, "would {line}")?;
        }
        writeln!(
            out,
            "dry run: nothing was changed; loading {} would give:",
            sources.join(", ")
        )?;
    } else {
        writeln!(out, "loaded {}:", sources.join(", "))?;
    }
    writeln!(out, "{}", report.summary())?;
    Ok(())
}

/// Loads `sources` in one transaction (rolled back when `dry_run`) and says
/// what changed. `serve --demo` may call this with the built-in names.
pub fn load(
    store: &mut Store,
    sources: &[String],
    dry_run: bool,
    ignore_unknown: bool,
) -> Result<Report> {
    let parsed = sources
        .iter()
        .map(|s| read_source(s))
        .collect::<Result<Vec<_>>>()?;
    let run = |tx: &Tx<'_>| {
        let fixtures = assemble(parsed, tx, ignore_unknown)?;
        let mut report = Report::default();
        let total = fixtures.iter().map(|f| f.records.len() as u64).sum();
        let bar = progress(total, "loading");
        for fx in &fixtures {
            apply(tx, fx, &mut report, &bar)?;
        }
        bar.finish_and_clear();
        Ok(report)
    };
    if dry_run {
        store.rehearse(run)
    } else {
        store.write(run)
    }
}

/// One source, parsed.
enum Parsed {
    Django(django::Source),
    Ours(Fixture),
}

fn read_source(arg: &str) -> Result<Parsed> {
    let (name, text) = source_text(arg)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::BadRequest(format!("{name}: not valid JSON ({e})")))?;
    drop(text);
    let looks_django = |items: &[Value]| items.first().is_some_and(|o| o.get("model").is_some());
    match value {
        Value::Array(objects) if looks_django(&objects) || objects.is_empty() => {
            Ok(Parsed::Django(django::Source { name, objects }))
        }
        Value::Array(records) => Ok(Parsed::Ours(dump::read_records(&name, records)?)),
        Value::Object(doc) if doc.contains_key(dump::FORMAT_KEY) => {
            Ok(Parsed::Ours(dump::read_document(&name, doc)?))
        }
        _ => Err(Error::BadRequest(format!(
            "{name}: neither a Django dump (a list of objects with model, pk and fields) \
             nor a file written by `sumatra-server export`"
        ))),
    }
}

/// The name to show in messages and the text of a fixture name or a path.
fn source_text(arg: &str) -> Result<(String, String)> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == arg) {
        return Ok((format!("fixture {name}"), (*text).to_string()));
    }
    let bytes = std::fs::read(arg).map_err(|e| {
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
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::BadRequest(format!("{arg}: not UTF-8 text ({e})")))?;
    Ok((arg.to_string(), text))
}

impl django::Lookup for Tx<'_> {
    fn has_project(&self, id: &str) -> Result<bool> {
        Ok(self.project(id)?.is_some())
    }
    fn has_user(&self, username: &str) -> Result<bool> {
        Ok(self.user(username)?.is_some())
    }
}

/// Fixtures in the order of the sources; all Django files form one pool,
/// applied where the first of them stands.
fn assemble(parsed: Vec<Parsed>, tx: &Tx<'_>, ignore_unknown: bool) -> Result<Vec<Fixture>> {
    let mut out = Vec::new();
    let mut django_at = None;
    let mut django_sources = Vec::new();
    for p in parsed {
        match p {
            Parsed::Ours(fx) => out.push(Some(fx)),
            Parsed::Django(src) => {
                django_at.get_or_insert(out.len());
                if django_at == Some(out.len()) {
                    out.push(None);
                }
                django_sources.push(src);
            }
        }
    }
    if let Some(at) = django_at {
        out[at] = Some(django::read(django_sources, tx, ignore_unknown)?);
    }
    Ok(out.into_iter().flatten().collect())
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
    /// One line per creation or change: `create record P/label`.
    pub changes: Vec<String>,
    pub notes: Vec<String>,
}

impl Report {
    fn note(
        &mut self,
        counts: fn(&mut Report) -> &mut Counts,
        existed: bool,
        changed: bool,
        what: String,
    ) {
        if let Some(verb) = counts(self).add(existed, changed) {
            self.changes.push(format!("{verb} {what}"));
        }
    }

    pub fn total(&self) -> Counts {
        let all = [self.users, self.projects, self.permissions, self.records];
        Counts {
            created: all.iter().map(|c| c.created).sum(),
            updated: all.iter().map(|c| c.updated).sum(),
            unchanged: all.iter().map(|c| c.unchanged).sum(),
        }
    }

    pub fn summary(&self) -> String {
        let line = |name: &str, c: Counts| {
            format!(
                "  {name:<12} created {}, updated {}, unchanged {}",
                c.created, c.updated, c.unchanged
            )
        };
        [
            line("records", self.records),
            line("projects", self.projects),
            line("users", self.users),
            line("permissions", self.permissions),
            line("total", self.total()),
        ]
        .join("\n")
    }
}

fn apply(tx: &Tx<'_>, fx: &Fixture, report: &mut Report, bar: &ProgressBar) -> Result<()> {
    report.notes.extend(fx.notes.iter().cloned());
    for u in &fx.users {
        let existed = tx.user(&u.username)?.is_some();
        let changed = tx.upsert_user(&u.username, &u.password, &u.email, &u.created)?;
        report.note(
            |r| &mut r.users,
            existed,
            changed,
            format!("user {}", u.username),
        );
    }
    for p in &fx.projects {
        let existed = tx.project(&p.id)?.is_some();
        let changed = tx.upsert_project(p)?;
        report.note(
            |r| &mut r.projects,
            existed,
            changed,
            format!("project {}", p.id),
        );
    }
    for id in &fx.implied_projects {
        if !fx.projects.iter().any(|p| p.id == *id) {
            let created = tx.ensure_project(id)?;
            report.note(
                |r| &mut r.projects,
                !created,
                false,
                format!("project {id}"),
            );
        }
    }
    for g in &fx.grants {
        apply_grant(tx, g, report)?;
    }
    for (project, record) in &fx.records {
        let existed = tx.record_exists(project, &record.label)?;
        let changed = tx.replace_record(project, record)?;
        report.note(
            |r| &mut r.records,
            existed,
            changed,
            format!("record {project}/{}", record.label),
        );
        bar.inc(1);
    }
    Ok(())
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
        format!("permission {} {} on {}", g.user, wanted, g.project),
    );
    Ok(())
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress(total: u64, what: &str) -> ProgressBar {
    if total < 100 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} records ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

// ---------------------------------------------------------------- export

/// Writes `projects` (all when empty) to `output` or standard output: one
/// named project as a plain list of records, unless `full` or `with_users`
/// ask for the export document (see `crate::dump`).
pub fn export(
    store: &Store,
    projects: &[String],
    output: Option<&Path>,
    with_users: bool,
    full: bool,
) -> Result<()> {
    let plain = projects.len() == 1 && !full && !with_users;
    let (count, records) = store.snapshot(|tx| {
        let chosen = choose_projects(tx, projects)?;
        let mut total = 0;
        for p in &chosen {
            total += tx.count_records(&p.id, &[])? as u64;
        }
        let bar = progress(total, "exporting");
        let mut tick = || bar.inc(1);
        with_output(output, |out| match chosen.first() {
            Some(p) if plain => dump::write_records(tx, &p.id, out, &mut tick),
            _ => dump::write_document(tx, &chosen, with_users, out, &mut tick),
        })?;
        bar.finish_and_clear();
        Ok((chosen.len(), total))
    })?;
    if let Some(path) = output {
        eprintln!(
            "exported {records} records of {count} project(s) to {}",
            path.display()
        );
    }
    Ok(())
}

/// The named projects (each once, in the order given), or all by id.
fn choose_projects(tx: &Tx<'_>, names: &[String]) -> Result<Vec<Project>> {
    if names.is_empty() {
        let mut all: Vec<Project> = tx
            .list_projects(None)?
            .into_iter()
            .map(|s| s.project)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        return Ok(all);
    }
    let mut out: Vec<Project> = Vec::new();
    for name in names {
        if !out.iter().any(|p| p.id == *name) {
            out.push(tx.require_project(name)?);
        }
    }
    Ok(out)
}

/// Runs `write` on a buffered standard output, or on a file that appears
/// under its name only once complete.
fn with_output(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(path) = output else {
        let mut out = BufWriter::new(std::io::stdout().lock());
        write(&mut out)?;
        return Ok(out.flush()?);
    };
    let partial = partial_path(path);
    let file = std::fs::File::create(&partial)
        .map_err(|e| Error::BadRequest(format!("cannot write {}: {e}", partial.display())))?;
    let mut out = BufWriter::new(file);
    let result = write(&mut out).and_then(|()| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
            .map_err(|e| Error::BadRequest(format!("cannot write {}: {e}", path.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenMode;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), OpenMode::Create).unwrap();
        (dir, store)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fixtures_load_once_then_change_nothing() {
        let (_dir, mut store) = store();
        let sources = names(&["haggling", "permissions"]);
        let first = load(&mut store, &sources, false, false).unwrap();
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
        let again = load(&mut store, &sources, false, false).unwrap();
        assert_eq!(
            again.total(),
            Counts {
                created: 0,
                updated: 0,
                unchanged: 11
            }
        );
        assert!(again.changes.is_empty());
    }

    #[test]
    fn a_dry_run_reports_and_changes_nothing() {
        let (_dir, mut store) = store();
        let report = load(&mut store, &names(&["haggling"]), true, false).unwrap();
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
        load(&mut store, &sources, false, false).unwrap();
        store
            .write(|tx| tx.grant("testuser", "TestProject", Level::Admin))
            .unwrap();
        let again = load(&mut store, &sources, false, false).unwrap();
        assert_eq!(again.permissions.updated, 0);
        let uid = store.read().user("testuser").unwrap().unwrap().id;
        assert_eq!(
            store.read().level("TestProject", uid).unwrap(),
            Some(Level::Admin)
        );
    }

    #[test]
    fn missing_fixture_names_are_explained() {
        let Err(e) = read_source("hagling") else {
            panic!("should fail")
        };
        assert!(
            e.to_string()
                .contains("no fixture named \"hagling\" (built in: haggling, permissions)"),
            "{e}"
        );
    }

    #[test]
    fn partial_file_name() {
        assert_eq!(
            partial_path(Path::new("/x/out.json")),
            Path::new("/x/out.json.partial")
        );
    }
}
