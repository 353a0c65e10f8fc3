//! RO-Crate (SPEC 9.3): the `ro-crate-metadata.json` of a Process Run
//! Crate 0.5 for a lineage, a record or a query's matches. One
//! `CreateAction` per record (name, description, start and end time,
//! agent), its `instrument` the code, its `object` the input files and the
//! parameters (as `PropertyValue`s), its `result` the output files, each
//! file with its `sha1`, `contentSize`, `encodingFormat` and
//! `dateCreated`; the root dataset lists every action in `mentions`. Files
//! are referenced, never copied: the same bytes (a linking digest) are one
//! entity, so the file one run made and another read joins the two
//! actions. Knows no database; one pass over [`Runs`], written as it goes.

use super::prov::{local, to_writer, SUMATRA_NS};
use crate::error::Result;
use crate::lineage::{FileUse, Node, Role, Run, Runs};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::Write;

pub const CONTEXT: &str = "https://w3id.org/ro/crate/1.1/context";
pub const PROFILE: &str = "https://w3id.org/ro/wfrun/process/0.5";

/// What the crate says of itself.
pub struct Crate<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// ISO 8601, when the crate was made.
    pub published: &'a str,
    /// The `@id` of a record's action: its URL on the server, or a local
    /// `#` identifier.
    pub action_id: &'a dyn Fn(&Node) -> String,
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as ISO 8601 with its offset, `seconds`
/// later (the profile's pattern: `+00:00`, milliseconds when there are).
fn datetime(ts: &str, seconds: f64) -> Option<String> {
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").ok()?;
    let ms = (seconds * 1000.0).round() as i64;
    let t = t + chrono::Duration::milliseconds(ms);
    let fraction = if ms % 1000 == 0 { "" } else { "%.3f" };
    Some(
        t.format(&format!("%Y-%m-%dT%H:%M:%S{fraction}+00:00"))
            .to_string(),
    )
}

/// A file's creation time as the record gave it (Sumatra writes the
/// machine's local time, without a zone): ISO 8601 without an offset.
fn creation(c: &str) -> Option<String> {
    let c = c.trim();
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(c, f).ok())
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// One reference, or a list of them (RO-Crate prefers a single value to
/// a list of one).
fn refs(ids: Vec<String>) -> Option<Value> {
    let mut v: Vec<Value> = ids.into_iter().map(|id| json!({"@id": id})).collect();
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(Value::Array(v)),
    }
}

/// A status tag of Sumatra's (SPEC 10.4) as an action status.
fn status(tags: &[String]) -> Option<&'static str> {
    tags.iter().find_map(|t| match t.as_str() {
        "_failed_" | "_crashed_" | "_killed_" => Some("http://schema.org/FailedActionStatus"),
        "_finished_" | "_succeeded_" => Some("http://schema.org/CompletedActionStatus"),
        _ => None,
    })
}

/// `Name <mail>` as a name and an e-mail address.
fn person(user: &str) -> Value {
    if let Some((name, rest)) = user.split_once('<') {
        if let Some(mail) = rest.strip_suffix('>') {
            if mail.contains('@') && !name.trim().is_empty() {
                return json!({"@type": "Person", "name": name.trim(), "email": mail.trim()});
            }
        }
    }
    json!({"@type": "Person", "name": user})
}

/// Writes entities into the `@graph` array, a comma between each.
struct Graph<'w> {
    out: &'w mut dyn Write,
    first: bool,
}

impl Graph<'_> {
    fn entity(&mut self, id: &str, mut v: Value) -> Result<()> {
        if let Value::Object(m) = &mut v {
            let mut with_id = Map::with_capacity(m.len() + 1);
            with_id.insert("@id".into(), json!(id));
            with_id.append(m);
            v = Value::Object(with_id);
        }
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        to_writer(&mut *self.out, &v)?;
        Ok(())
    }
}

/// The 20 bytes of a linking digest (files already in the crate are
/// remembered by these, not by their text).
fn digest_key(hex: &str) -> Option<[u8; 20]> {
    let mut k = [0u8; 20];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(k)
}

/// Writes the crate's metadata of `runs`.
pub fn write(runs: &mut dyn Runs, c: &Crate<'_>, out: &mut dyn Write) -> Result<()> {
    let context = json!([CONTEXT, {"sha1": format!("{SUMATRA_NS}sha1")}]);
    writeln!(out, "{{\"@context\":{context},\"@graph\":[")?;
    let mut g = Graph { out, first: true };
    g.entity(
        "ro-crate-metadata.json",
        json!({"@type": "CreativeWork", "about": {"@id": "./"},
               "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"}}),
    )?;
    g.entity(
        PROFILE,
        json!({"@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"}),
    )?;
    g.entity(
        "#license",
        json!({"@type": "CreativeWork", "name": "No licence stated",
               "description": "The records do not state a licence: ask the project's owners before reusing them."}),
    )?;
    let mut people: HashSet<String> = HashSet::new();
    let mut files: HashSet<[u8; 20]> = HashSet::new();
    let mut mentions: Vec<String> = Vec::new();
    runs.each(&mut |run| {
        let id = (c.action_id)(&run.node);
        action(&mut g, run, &id, &mut people, &mut files)?;
        mentions.push(id);
        Ok(())
    })?;
    let mut root = json!({"@type": "Dataset", "name": c.name, "description": c.description,
                          "datePublished": c.published, "license": {"@id": "#license"},
                          "conformsTo": {"@id": PROFILE}});
    if let Some(m) = refs(mentions) {
        root["mentions"] = m;
    }
    g.entity("./", root)?;
    g.out.write_all(b"\n]}\n")?;
    Ok(())
}

/// A record's action and the entities it names that are not in the crate
/// yet.
fn action(
    g: &mut Graph<'_>,
    run: &Run,
    id: &str,
    people: &mut HashSet<String>,
    files: &mut HashSet<[u8; 20]>,
) -> Result<()> {
    let n = &run.node;
    let own = format!("#{}/{}", local(&n.project), local(&n.label));
    let mut a = json!({"@type": "CreateAction", "name": format!("{} {}", n.project, n.label)});
    if !n.reason.is_empty() {
        a["description"] = json!(n.reason);
    }
    if let Some(start) = datetime(&n.timestamp, 0.0) {
        a["startTime"] = json!(start);
        if let Some(end) = n.duration.and_then(|d| datetime(&n.timestamp, d)) {
            a["endTime"] = json!(end);
        }
    }
    if let Some(s) = status(&n.tags) {
        a["actionStatus"] = json!({"@id": s});
    }
    let person_id = format!("#person-{}", local(&n.user));
    if !n.user.is_empty() {
        a["agent"] = json!({"@id": person_id});
    }
    let code_id = format!("{own}/code");
    a["instrument"] = json!({"@id": code_id});
    // Files: one entity per linking digest; others one per entry.
    let mut entries: Vec<(String, &FileUse, bool)> = Vec::new();
    let (mut inputs, mut outputs) = (0usize, 0usize);
    for f in &run.files {
        let (role, k) = match f.role {
            Role::Input => ("input", &mut inputs),
            Role::Output => ("output", &mut outputs),
        };
        *k += 1;
        let key = f.links.then(|| digest_key(&f.digest)).flatten();
        let (fid, new) = match key {
            Some(key) => (format!("#sha1-{}", f.digest), files.insert(key)),
            None => (format!("{own}/{role}/{k}"), true),
        };
        entries.push((fid, f, new));
    }
    let params: Vec<(String, &(String, Value))> = run
        .params
        .iter()
        .map(|p| (format!("{own}/param/{}", local(&p.0)), p))
        .collect();
    let objects: Vec<String> = entries
        .iter()
        .filter(|(_, f, _)| f.role == Role::Input)
        .map(|(id, _, _)| id.clone())
        .chain(params.iter().map(|(id, _)| id.clone()))
        .collect();
    let results: Vec<String> = entries
        .iter()
        .filter(|(_, f, _)| f.role == Role::Output)
        .map(|(id, _, _)| id.clone())
        .collect();
    if let Some(o) = refs(objects) {
        a["object"] = o;
    }
    if let Some(r) = refs(results) {
        a["result"] = r;
    }
    g.entity(id, a)?;
    let mut code = json!({"@type": "SoftwareSourceCode",
                          "name": if n.main_file.is_empty() { "the code" } else { &n.main_file }});
    if !n.version.is_empty() {
        code["version"] = json!(n.version);
    }
    if !n.repository.is_empty() {
        code["codeRepository"] = json!(n.repository);
    }
    g.entity(&code_id, code)?;
    if !n.user.is_empty() && people.insert(n.user.clone()) {
        g.entity(&person_id, person(&n.user))?;
    }
    for (fid, f, new) in entries {
        if !new {
            continue;
        }
        let mut e = json!({"@type": "File", "name": f.path});
        if !f.digest.is_empty() {
            e["sha1"] = json!(f.digest);
        }
        if let Some(size) = f.size {
            e["contentSize"] = json!(size.to_string());
        }
        if let Some(m) = f.mimetype.as_deref().filter(|m| !m.is_empty()) {
            e["encodingFormat"] = json!(m);
        }
        if let Some(t) = f.creation.as_deref().and_then(creation) {
            e["dateCreated"] = json!(t);
        }
        g.entity(&fid, e)?;
    }
    for (pid, (key, value)) in params {
        g.entity(
            &pid,
            json!({"@type": "PropertyValue", "name": key, "value": value}),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_follow_the_profile_pattern() {
        assert_eq!(
            datetime("2026-12-05 22:02:31", 0.0).as_deref(),
            Some("2026-12-05T22:02:31+00:00")
        );
        assert_eq!(
            datetime("2026-12-05 22:02:31", 1.25).as_deref(),
            Some("2026-12-05T22:02:32.250+00:00")
        );
        assert_eq!(
            creation("2026-12-05 22:02:44.123").as_deref(),
            Some("2026-12-05T22:02:44")
        );
        assert_eq!(creation("yesterday"), None);
    }

    #[test]
    fn a_user_with_a_mail_address_is_a_name_and_an_email() {
        assert_eq!(
            person("Ann Smith <ann@example.org>"),
            json!({"@type": "Person", "name": "Ann Smith", "email": "ann@example.org"})
        );
        assert_eq!(person("ann"), json!({"@type": "Person", "name": "ann"}));
    }
}
