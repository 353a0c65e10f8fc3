//! The data `loaddata` applies, whatever file it came from, and the JSON
//! that `export` writes and `loaddata` reads back (SPEC 5).
//!
//! Two shapes, both loadable:
//!
//! * **Records**: a JSON array of records in the API's form (SPEC 2.3, with
//!   `project_id`), oldest first, one record a line. This is what `smt export`
//!   writes (plus `project_id`), so `smt import` reads it too.
//! * **Document**: everything needed to rebuild projects in an empty database:
//!
//! ```text
//! {"sumatra_server_export": 1,
//!  "users": [{"username", "password", "email", "created"}, ...],      (--with-users only)
//!  "projects": [
//!   {"id", "name", "description",
//!    "access": [{"user", "level"}, ...],                              (--with-users only)
//!    "records": [RECORD, ...]}, ...]}
//! ```
//!
//! Users are sorted by name (the built-in `anonymous` is never written),
//! projects by id, access in the order it was granted, records oldest first:
//! exporting what was loaded from an export gives the same bytes.

use crate::error::{Error, Result};
use crate::record::{self, Record};
use crate::store::{Level, Project, Tx, UserRecord};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fmt::Display;
use std::io::Write;

/// The key that marks an export document, and its value (the format version).
pub const FORMAT_KEY: &str = "sumatra_server_export";
pub const FORMAT_VERSION: u64 = 1;

/// How a grant read from a file meets a level already held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    /// Set exactly this level (export documents say what the level was).
    Exact,
    /// Raise to this level, never lower (Django dumps have no levels).
    AtLeast,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub project: String,
    pub user: String,
    pub level: Level,
    pub mode: GrantMode,
}

/// What one load applies, in this order: users, projects, grants, records.
#[derive(Debug, Default)]
pub struct Fixture {
    pub users: Vec<UserRecord>,
    pub projects: Vec<Project>,
    pub grants: Vec<Grant>,
    /// Records with their project id.
    pub records: Vec<(String, Record)>,
    /// Projects that records or grants name and that may be created empty
    /// when missing (a list of records says no more about its projects).
    pub implied_projects: Vec<String>,
    /// Things the operator should know (skipped objects, unusable hashes).
    pub notes: Vec<String>,
}

/// Prefixes a bad-input error with where it happened.
pub fn located(e: Error, at: impl Display) -> Error {
    match e {
        Error::BadRequest(m) => Error::BadRequest(format!("{at}: {m}")),
        other => other,
    }
}

fn bad(at: impl Display, msg: impl Display) -> Error {
    Error::BadRequest(format!("{at}: {msg}"))
}

// ---------------------------------------------------------------- reading

/// Reads a list of records (the first shape above).
pub fn read_records(src: &str, items: Vec<Value>) -> Result<Fixture> {
    let mut fx = Fixture::default();
    let mut seen = HashSet::new();
    let mut projects = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{src}: records[{i}]");
        let project = match item.get("project_id") {
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(bad(&at, "project_id: expected a string")),
            None => {
                return Err(bad(
                    &at,
                    "no project_id: each record of a list must name its project \
                     (`sumatra-server export PROJECT` writes it; `smt export` does not)",
                ))
            }
        };
        crate::record::check_project_id(&project)
            .map_err(|e| bad(&at, format!("project_id: {e}")))?;
        let record = read_record(&at, item)?;
        if !seen.insert((project.clone(), record.label.clone())) {
            return Err(bad(
                &at,
                format!(
                    "record {:?} appears twice in project {project:?}",
                    record.label
                ),
            ));
        }
        if !projects.contains(&project) {
            projects.push(project.clone());
        }
        fx.records.push((project, record));
    }
    fx.implied_projects = projects;
    Ok(fx)
}

fn read_record(at: &str, item: Value) -> Result<Record> {
    let label = item
        .get("label")
        .and_then(Value::as_str)
        .map(str::to_string);
    record::decode_value(item).map_err(|e| match label {
        Some(l) => located(e, format!("{at} (label {l:?})")),
        None => located(e, at),
    })
}

/// Reads an export document (the second shape above).
pub fn read_document(src: &str, doc: Map<String, Value>) -> Result<Fixture> {
    match doc.get(FORMAT_KEY).and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        Some(v) if v > FORMAT_VERSION => {
            return Err(bad(
                src,
                format!("written by a newer sumatra-server (format {v}); use a newer one"),
            ))
        }
        _ => return Err(bad(src, format!("{FORMAT_KEY}: expected {FORMAT_VERSION}"))),
    }
    let mut fx = Fixture::default();
    let mut doc = doc;
    if let Some(users) = doc.remove("users") {
        fx.users = read_users(src, users)?;
    }
    let Some(Value::Array(projects)) = doc.remove("projects") else {
        return Err(bad(src, "projects: expected a list"));
    };
    let mut ids = HashSet::new();
    for (i, p) in projects.into_iter().enumerate() {
        let at = format!("{src}: projects[{i}]");
        let Value::Object(p) = p else {
            return Err(bad(&at, "expected an object"));
        };
        read_project(&at, p, &mut fx, &mut ids)?;
    }
    Ok(fx)
}

fn read_users(src: &str, users: Value) -> Result<Vec<UserRecord>> {
    let Value::Array(users) = users else {
        return Err(bad(src, "users: expected a list"));
    };
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let at = format!("{src}: users[{i}]");
        let u = as_object(&at, u)?;
        let username =
            str_field(&at, u, "username")?.ok_or_else(|| bad(&at, "username: missing"))?;
        crate::store::check_username(&username).map_err(|e| located(e, &at))?;
        if !names.insert(username.clone()) {
            return Err(bad(&at, format!("user {username:?} appears twice")));
        }
        let created = match str_field(&at, u, "created")? {
            Some(c) => {
                crate::timefmt::normalise(&c).map_err(|e| bad(&at, format!("created: {e}")))?
            }
            None => crate::timefmt::now(),
        };
        out.push(UserRecord {
            username,
            password: str_field(&at, u, "password")?.unwrap_or_default(),
            email: str_field(&at, u, "email")?.unwrap_or_default(),
            created,
        });
    }
    Ok(out)
}

fn read_project(
    at: &str,
    mut p: Map<String, Value>,
    fx: &mut Fixture,
    ids: &mut HashSet<String>,
) -> Result<()> {
    let id = str_field(at, &p, "id")?.ok_or_else(|| bad(at, "id: missing"))?;
    crate::record::check_project_id(&id).map_err(|e| bad(at, format!("id: {e}")))?;
    if !ids.insert(id.clone()) {
        return Err(bad(at, format!("project {id:?} appears twice")));
    }
    let at = format!("{at} (project {id:?})");
    fx.projects.push(Project {
        id: id.clone(),
        name: str_field(&at, &p, "name")?.unwrap_or_default(),
        description: str_field(&at, &p, "description")?.unwrap_or_default(),
    });
    if let Some(access) = p.remove("access") {
        read_access(&at, &id, access, fx)?;
    }
    let records = match p.remove("records") {
        Some(Value::Array(r)) => r,
        None => Vec::new(),
        Some(_) => return Err(bad(&at, "records: expected a list")),
    };
    let mut labels = HashSet::new();
    for (j, r) in records.into_iter().enumerate() {
        let rat = format!("{at}: records[{j}]");
        match r.get("project_id") {
            None => {}
            Some(Value::String(pid)) if *pid == id => {}
            Some(other) => {
                return Err(bad(
                    &rat,
                    format!("project_id {other} differs from the project {id:?}"),
                ))
            }
        }
        let record = read_record(&rat, r)?;
        if !labels.insert(record.label.clone()) {
            return Err(bad(
                &rat,
                format!("record {:?} appears twice in project {id:?}", record.label),
            ));
        }
        fx.records.push((id.clone(), record));
    }
    Ok(())
}

fn read_access(at: &str, project: &str, access: Value, fx: &mut Fixture) -> Result<()> {
    let Value::Array(access) = access else {
        return Err(bad(at, "access: expected a list"));
    };
    for (k, a) in access.iter().enumerate() {
        let aat = format!("{at}: access[{k}]");
        let a = as_object(&aat, a)?;
        let user = str_field(&aat, a, "user")?.ok_or_else(|| bad(&aat, "user: missing"))?;
        let level = str_field(&aat, a, "level")?.ok_or_else(|| bad(&aat, "level: missing"))?;
        let level = Level::parse(&level).map_err(|e| located(e, &aat))?;
        fx.grants.push(Grant {
            project: project.to_string(),
            user,
            level,
            mode: GrantMode::Exact,
        });
    }
    Ok(())
}

fn as_object<'v>(at: &str, v: &'v Value) -> Result<&'v Map<String, Value>> {
    v.as_object().ok_or_else(|| bad(at, "expected an object"))
}

/// A string field of an object: `None` when missing or null.
fn str_field(at: &str, obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(at, format!("{key}: expected a string"))),
    }
}

// ---------------------------------------------------------------- writing

/// Writes one project's records as a JSON array, one record a line;
/// `tick` is called after each record.
pub fn write_records(
    tx: &Tx<'_>,
    project: &str,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    out.write_all(b"[")?;
    write_record_lines(tx, project, out, tick)?;
    out.write_all(b"]\n")?;
    Ok(())
}

/// The records of a project, each on its own line, separated by commas.
fn write_record_lines(
    tx: &Tx<'_>,
    project: &str,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    let mut first = true;
    tx.for_each_api_record(project, |json| {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        out.write_all(json.as_bytes())?;
        first = false;
        tick();
        Ok(())
    })?;
    if !first {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes the export document for `projects` (in the order given).
pub fn write_document(
    tx: &Tx<'_>,
    projects: &[Project],
    with_users: bool,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    write!(out, "{{{}: {FORMAT_VERSION}", json!(FORMAT_KEY))?;
    if with_users {
        out.write_all(b",\n\"users\": [")?;
        for (i, u) in tx.users_with_hashes()?.iter().enumerate() {
            let sep: &[u8] = if i == 0 { b"\n" } else { b",\n" };
            out.write_all(sep)?;
            let v = json!({"username": u.username, "password": u.password, "email": u.email, "created": u.created});
            out.write_all(v.to_string().as_bytes())?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b",\n\"projects\": [")?;
    for (i, p) in projects.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        write_project(tx, p, with_users, out, tick)?;
    }
    out.write_all(b"]}\n")?;
    Ok(())
}

fn write_project(
    tx: &Tx<'_>,
    p: &Project,
    with_access: bool,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    let mut head = Map::new();
    head.insert("id".into(), Value::String(p.id.clone()));
    head.insert("name".into(), Value::String(p.name.clone()));
    head.insert("description".into(), Value::String(p.description.clone()));
    if with_access {
        let access: Vec<Value> = tx
            .access(&p.id)?
            .into_iter()
            .map(|a| json!({"user": a.username, "level": a.level.as_str()}))
            .collect();
        head.insert("access".into(), Value::Array(access));
    }
    let head = Value::Object(head).to_string();
    // The object without its closing brace, then the records.
    out.write_all(&head.as_bytes()[..head.len() - 1])?;
    out.write_all(b", \"records\": [")?;
    write_record_lines(tx, &p.id, out, tick)?;
    out.write_all(b"]}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(label: &str) -> Value {
        json!({
            "label": label, "timestamp": "2026-11-26 05:07:39",
            "executable": {"path": "/usr/bin/python", "version": "3.11", "name": "Python", "options": ""},
            "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
            "main_file": "main.py", "version": "abc",
            "parameters": {"content": "a = 1", "type": "SimpleParameterSet"},
            "launch_mode": {"type": "SerialLaunchMode", "parameters": {}},
            "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
        })
    }

    fn with_pid(mut v: Value, p: &str) -> Value {
        v["project_id"] = json!(p);
        v
    }

    #[test]
    fn records_need_a_project_and_distinct_labels() {
        let fx = read_records("f", vec![with_pid(rec("a"), "P"), with_pid(rec("b"), "Q")]).unwrap();
        assert_eq!(fx.records.len(), 2);
        assert_eq!(fx.implied_projects, vec!["P", "Q"]);
        let e = read_records("f", vec![rec("a")]).unwrap_err().to_string();
        assert!(e.starts_with("f: records[0]: no project_id"), "{e}");
        let e =
            read_records("f", vec![with_pid(rec("a"), "P"), with_pid(rec("a"), "P")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("records[1]: record \"a\" appears twice"),
            "{e}"
        );
        let mut broken = with_pid(rec("a"), "P");
        broken["timestamp"] = json!("soon");
        let e = read_records("f", vec![broken]).unwrap_err().to_string();
        assert!(
            e.starts_with("f: records[0] (label \"a\"): timestamp:"),
            "{e}"
        );
    }

    #[test]
    fn documents_are_checked() {
        let doc = json!({FORMAT_KEY: 1, "users": [{"username": "bob", "password": "x", "email": "", "created": "2020-01-01 00:00:00"}],
            "projects": [{"id": "P", "name": "n", "description": "d", "access": [{"user": "bob", "level": "admin"}],
                          "records": [with_pid(rec("a"), "P")]}]});
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        let fx = read_document("f", doc.clone()).unwrap();
        assert_eq!(fx.users[0].username, "bob");
        assert_eq!(fx.grants[0].level, Level::Admin);
        assert_eq!(fx.records[0].0, "P");

        let mut newer = doc.clone();
        newer.insert(FORMAT_KEY.into(), json!(2));
        assert!(read_document("f", newer)
            .unwrap_err()
            .to_string()
            .contains("newer"));
        let mut wrong = doc.clone();
        wrong["projects"][0]["records"][0]["project_id"] = json!("Q");
        let e = read_document("f", wrong).unwrap_err().to_string();
        assert!(
            e.contains("projects[0] (project \"P\"): records[0]: project_id"),
            "{e}"
        );
        let mut level = doc;
        level["projects"][0]["access"][0]["level"] = json!("god");
        assert!(read_document("f", level)
            .unwrap_err()
            .to_string()
            .contains("access[0]"));
    }
}
