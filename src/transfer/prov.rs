//! W3C PROV-JSON (SPEC 9.3) of a lineage: each record an activity (start
//! and end time), its user an agent, one entity per (record, role, path)
//! with the file's digest as an attribute; `used`, `wasGeneratedBy`,
//! `wasAssociatedWith` (the code, repository at version with the main
//! file, as the plan) and `wasInformedBy` between linked records. Knows no
//! database: it is given the walk's answer and the records' files.

use crate::lineage::{FileUse, Lineage, Node, Role};
use serde_json::{json, Map, Value};

/// Sumatra's own attributes.
const SUMATRA_NS: &str = "https://pypi.org/project/Sumatra/#";

/// A qualified name's local part: every character but letters, digits and
/// `_ - .` percent-encoded, so that any label or path makes a valid name.
fn local(s: &str) -> String {
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
    format!("smt:{}/{}", local(&n.project), local(&n.label))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as xsd:dateTime, `seconds` later.
fn datetime(ts: &str, seconds: f64) -> Option<String> {
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").ok()?;
    let t = t + chrono::Duration::milliseconds((seconds * 1000.0).round() as i64);
    Some(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The lineage as a PROV-JSON document; `base` is the URL prefix of
/// records (`smt:` names are relative to it), `files` every file entry of
/// the lineage's records.
pub fn document(l: &Lineage, files: &[FileUse], base: &str) -> Value {
    let mut activity = Map::new();
    let mut entity = Map::new();
    let mut agent = Map::new();
    let mut used = Map::new();
    let mut generated = Map::new();
    let mut associated = Map::new();
    let mut informed = Map::new();
    for (n, _) in &l.records {
        let id = activity_id(n);
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
        activity.insert(id.clone(), Value::Object(a));
        let plan = format!("{id}/code");
        entity.insert(
            plan.clone(),
            json!({"prov:type": {"$": "prov:Plan", "type": "xsd:QName"},
                   "prov:label": format!("{} at {} ({})", n.repository, n.version, n.main_file),
                   "sumatra:repository": n.repository, "sumatra:version": n.version,
                   "sumatra:main_file": n.main_file}),
        );
        let mut association = json!({"prov:activity": id, "prov:plan": plan});
        if !n.user.is_empty() {
            let who = format!("smt:user/{}", local(&n.user));
            agent.insert(
                who.clone(),
                json!({"prov:type": {"$": "prov:Person", "type": "xsd:QName"}, "prov:label": n.user}),
            );
            association["prov:agent"] = json!(who);
        }
        associated.insert(format!("_:association{}", associated.len()), association);
    }
    let mut place: std::collections::HashMap<(i64, Role), usize> = Default::default();
    for f in files {
        let Some(n) = l.node(f.record) else { continue };
        let k = place.entry((f.record, f.role)).or_insert(0);
        let role = if f.role == Role::Input {
            "input"
        } else {
            "output"
        };
        let id = format!("{}/{role}/{k}", activity_id(n));
        *k += 1;
        let mut e = json!({"prov:label": f.path, "sumatra:path": f.path});
        if !f.digest.is_empty() {
            e["sumatra:sha1"] = json!(f.digest);
        }
        entity.insert(id.clone(), e);
        let act = activity_id(n);
        if f.role == Role::Input {
            used.insert(
                format!("_:used{}", used.len()),
                json!({"prov:activity": act, "prov:entity": id}),
            );
        } else {
            generated.insert(
                format!("_:generated{}", generated.len()),
                json!({"prov:entity": id, "prov:activity": act}),
            );
        }
    }
    for k in &l.links {
        let (Some(from), Some(to)) = (l.node(k.from), l.node(k.to)) else {
            continue;
        };
        informed.insert(
            format!("_:informed{}", informed.len()),
            json!({"prov:informed": activity_id(to), "prov:informant": activity_id(from),
                   "sumatra:sha1": k.digest}),
        );
    }
    let mut doc = Map::new();
    doc.insert(
        "prefix".into(),
        json!({"smt": base, "sumatra": SUMATRA_NS, "xsd": "http://www.w3.org/2001/XMLSchema#"}),
    );
    for (name, map) in [
        ("activity", activity),
        ("entity", entity),
        ("agent", agent),
        ("used", used),
        ("wasGeneratedBy", generated),
        ("wasAssociatedWith", associated),
        ("wasInformedBy", informed),
    ] {
        if !map.is_empty() {
            doc.insert(name.into(), Value::Object(map));
        }
    }
    Value::Object(doc)
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
