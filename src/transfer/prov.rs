//! W3C PROV-JSON (SPEC 9.3) of a lineage, a record or a query's matches:
//! each record an activity (start and end time), its user an agent, one
//! entity per (record, role, path) with the file's digest as an
//! attribute; `used`, `wasGeneratedBy`, `wasAssociatedWith` (the code,
//! repository at version with the main file, as the plan) and
//! `wasInformedBy` between linked records of the export. Knows no
//! database: it reads [`Runs`], one pass for each kind of statement
//! (PROV-JSON groups its document by kind), and writes as it goes.

use crate::error::Result;
use crate::lineage::{FileUse, Node, Role, Run, Runs};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::Write;

/// Sumatra's own attributes.
pub const SUMATRA_NS: &str = "https://pypi.org/project/Sumatra/#";
/// The namespace of people (never under the records' URL, where a
/// project could have the same name).
const PERSON_NS: &str = "urn:sumatra:person:";
/// The namespace of records when no server URL is known (the shell).
pub const RECORD_URN: &str = "urn:sumatra:record:";

/// A qualified name's local part: every character but letters, digits and
/// `_ - .` percent-encoded, so that any label or path makes a valid name.
pub fn local(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn activity_id(n: &Node) -> String {
    record_qname(&n.project, &n.label)
}

fn record_qname(project: &str, label: &str) -> String {
    format!("smt:{}/{}", local(project), local(label))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as xsd:dateTime, `seconds` later.
fn datetime(ts: &str, seconds: f64) -> Option<String> {
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").ok()?;
    let t = t + chrono::Duration::milliseconds((seconds * 1000.0).round() as i64);
    Some(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// Writes `v` as JSON (serde's errors here are the writer's).
pub(super) fn to_writer(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer(out, v).map_err(std::io::Error::from)?;
    Ok(())
}

/// One kind of statement: `"kind": {"id": {...}, ...}`, opened at its
/// first statement (a kind without any is left out).
struct Section<'w> {
    out: &'w mut dyn Write,
    kind: &'static str,
    open: bool,
}

impl Section<'_> {
    fn entry(&mut self, id: &str, v: &Value) -> Result<()> {
        if self.open {
            self.out.write_all(b",")?;
        } else {
            write!(self.out, ",\"{}\":{{", self.kind)?;
            self.open = true;
        }
        to_writer(&mut *self.out, &id)?;
        self.out.write_all(b":")?;
        to_writer(&mut *self.out, v)?;
        Ok(())
    }
    fn close(self) -> Result<()> {
        if self.open {
            self.out.write_all(b"}")?;
        }
        Ok(())
    }
}

/// The statements of one kind made of one run.
type Statements = fn(&Run, &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()>;

/// Writes the PROV-JSON document of `runs`; `base` is the URL prefix of
/// records (`smt:` names are relative to it; [`RECORD_URN`] without a
/// server).
pub fn write(runs: &mut dyn Runs, base: &str, out: &mut dyn Write) -> Result<()> {
    let prefix = json!({"smt": base, "sumatra": SUMATRA_NS, "person": PERSON_NS,
                        "xsd": "http://www.w3.org/2001/XMLSchema#"});
    write!(out, "{{\"prefix\":{prefix}")?;
    let kinds: [(&'static str, Statements); 6] = [
        ("activity", activities),
        ("entity", entities),
        ("used", used),
        ("wasGeneratedBy", generated),
        ("wasAssociatedWith", associations),
        ("wasInformedBy", informed),
    ];
    for (kind, statements) in kinds {
        let mut s = Section {
            out: &mut *out,
            kind,
            open: false,
        };
        let mut n = 0usize;
        runs.each(&mut |run| {
            statements(run, &mut |id, v| {
                // Relations are blank nodes, numbered through the document.
                let id = if id.is_empty() {
                    n += 1;
                    format!("_:{kind}{n}")
                } else {
                    id
                };
                s.entry(&id, &v)
            })
        })?;
        s.close()?;
    }
    // Each person once.
    let mut s = Section {
        out: &mut *out,
        kind: "agent",
        open: false,
    };
    let mut seen: HashSet<String> = HashSet::new();
    runs.each(&mut |run| {
        let who = &run.node.user;
        if !who.is_empty() && seen.insert(who.clone()) {
            s.entry(
                &format!("person:{}", local(who)),
                &json!({"prov:type": {"$": "prov:Person", "type": "xsd:QName"}, "prov:label": who}),
            )?;
        }
        Ok(())
    })?;
    s.close()?;
    out.write_all(b"}")?;
    Ok(())
}

fn activities(run: &Run, emit: &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()> {
    let n = &run.node;
    let mut a = Map::new();
    if let Some(start) = datetime(&n.timestamp, 0.0) {
        a.insert("prov:startTime".into(), json!(start));
        if let Some(end) = n.duration.and_then(|d| datetime(&n.timestamp, d)) {
            a.insert("prov:endTime".into(), json!(end));
        }
    }
    a.insert("prov:label".into(), json!(n.label));
    a.insert("sumatra:project".into(), json!(n.project));
    a.insert("sumatra:reason".into(), json!(n.reason));
    a.insert("sumatra:outcome".into(), json!(n.outcome));
    emit(activity_id(n), Value::Object(a))
}

/// Each file entry's id: the activity's, its role, its place.
fn file_ids(run: &Run) -> impl Iterator<Item = (String, &FileUse)> {
    let act = activity_id(&run.node);
    let (mut inputs, mut outputs) = (0usize, 0usize);
    run.files.iter().map(move |f| {
        let (role, k) = match f.role {
            Role::Input => ("input", &mut inputs),
            Role::Output => ("output", &mut outputs),
        };
        let id = format!("{act}/{role}/{k}");
        *k += 1;
        (id, f)
    })
}

fn entities(run: &Run, emit: &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()> {
    let n = &run.node;
    emit(
        format!("{}/code", activity_id(n)),
        json!({"prov:type": {"$": "prov:Plan", "type": "xsd:QName"},
               "prov:label": format!("{} at {} ({})", n.repository, n.version, n.main_file),
               "sumatra:repository": n.repository, "sumatra:version": n.version,
               "sumatra:main_file": n.main_file}),
    )?;
    for (id, f) in file_ids(run) {
        let mut e = json!({"prov:label": f.path, "sumatra:path": f.path});
        if !f.digest.is_empty() {
            e["sumatra:sha1"] = json!(f.digest);
        }
        if let Some(size) = f.size {
            e["sumatra:size"] = json!(size);
        }
        if let Some(m) = &f.mimetype {
            e["sumatra:mimetype"] = json!(m);
        }
        emit(id, e)?;
    }
    Ok(())
}

fn used(run: &Run, emit: &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()> {
    let act = activity_id(&run.node);
    for (id, f) in file_ids(run) {
        if f.role == Role::Input {
            emit(
                String::new(),
                json!({"prov:activity": act, "prov:entity": id}),
            )?;
        }
    }
    Ok(())
}

fn generated(run: &Run, emit: &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()> {
    let act = activity_id(&run.node);
    for (id, f) in file_ids(run) {
        if f.role == Role::Output {
            emit(
                String::new(),
                json!({"prov:entity": id, "prov:activity": act}),
            )?;
        }
    }
    Ok(())
}

fn associations(run: &Run, emit: &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()> {
    let id = activity_id(&run.node);
    let mut association = json!({"prov:activity": id, "prov:plan": format!("{id}/code")});
    if !run.node.user.is_empty() {
        association["prov:agent"] = json!(format!("person:{}", local(&run.node.user)));
    }
    emit(String::new(), association)
}

fn informed(run: &Run, emit: &mut dyn FnMut(String, Value) -> Result<()>) -> Result<()> {
    for p in &run.parents {
        emit(
            String::new(),
            json!({"prov:informed": activity_id(&run.node),
                   "prov:informant": record_qname(&p.project, &p.label),
                   "sumatra:sha1": p.digest}),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_whatever_the_label_or_path() {
        assert_eq!(local("a b/é|x.y_z-1"), "a%20b%2F%C3%A9%7Cx.y_z-1");
        assert_eq!(
            datetime("2026-12-05 22:02:31", 1.5).as_deref(),
            Some("2026-12-05T22:02:32.500Z")
        );
        assert_eq!(datetime("not a time", 0.0), None);
    }
}
