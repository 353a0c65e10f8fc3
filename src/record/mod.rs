//! The wire format of a Sumatra record (v4), as the Python client sends and
//! reads it, with the rules for accepting older shapes and for updating a
//! stored record (SPEC 2.3, 2.4, 2.5).
//!
//! Nothing here knows about HTTP or SQL: the HTTP layer and `loaddata` hand
//! JSON in, the store keeps what comes out. Beside it: the parameter readers
//! (`params`, SPEC 7.1), Python literals (`pyliteral`) and time (`timefmt`).

pub mod params;
pub mod pyliteral;
pub mod summary;
pub mod timefmt;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The client's placeholders for output not captured yet (SPEC 2.5).
pub const STDOUT_PLACEHOLDERS: [&str; 2] = ["Not launched.", "Not yet captured."];

/// Fields that every PUT replaces; all others are written once.
pub const REPLACED_FIELDS: [&str; 3] = ["reason", "outcome", "tags"];

/// Labels that are routes of their own under a project.
pub const RESERVED_LABELS: [&str; 4] = ["last", "permissions", "tag", "tagged"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executable {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub options: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterSet {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A launch mode or a data store: a class name and its constructor's keywords.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataKey {
    pub path: String,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub creation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub diff: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub system_name: Option<String>,
    #[serde(default)]
    pub ip_addr: Option<String>,
    #[serde(default)]
    pub architecture_bits: Option<String>,
    #[serde(default)]
    pub machine: Option<String>,
    #[serde(default)]
    pub architecture_linkage: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub network_name: Option<String>,
    #[serde(default)]
    pub processor: Option<String>,
}

/// One record, in the key order the original server writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub label: String,
    pub timestamp: String,
    #[serde(default = "empty")]
    pub reason: Option<String>,
    #[serde(default)]
    pub duration: Option<f64>,
    pub executable: Executable,
    pub repository: Repository,
    pub main_file: Option<String>,
    pub version: Option<String>,
    pub parameters: ParameterSet,
    #[serde(default)]
    pub input_data: Vec<DataKey>,
    #[serde(default = "empty")]
    pub script_arguments: Option<String>,
    pub launch_mode: Component,
    pub datastore: Component,
    #[serde(default = "root_datastore")]
    pub input_datastore: Component,
    #[serde(default = "empty")]
    pub outcome: Option<String>,
    #[serde(default = "empty")]
    pub stdout_stderr: Option<String>,
    #[serde(default)]
    pub output_data: Vec<DataKey>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "empty")]
    pub diff: Option<String>,
    #[serde(default = "empty")]
    pub user: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub platforms: Vec<Platform>,
    #[serde(default)]
    pub repeats: Option<String>,
}

fn empty() -> Option<String> {
    Some(String::new())
}

fn root_datastore() -> Component {
    let mut parameters = Map::new();
    parameters.insert("root".into(), Value::String("/".into()));
    Component {
        kind: Some("FileSystemDataStore".into()),
        parameters,
    }
}

impl Record {
    /// The record as the API serves it: every key, `project_id` last.
    #[cfg(test)]
    pub fn to_api_value(&self, project_id: &str) -> Value {
        let mut v = serde_json::to_value(self).expect("a record always serialises");
        if let Value::Object(m) = &mut v {
            m.insert("project_id".into(), Value::String(project_id.into()));
        }
        v
    }

    pub fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or("")
    }

    pub fn outcome(&self) -> &str {
        self.outcome.as_deref().unwrap_or("")
    }
}

/// Decodes a record body sent by a client.
///
/// `existing` is the stored record under the same label, if any: a PUT to an
/// existing record may leave fields out (they keep their stored values), and
/// its result follows the write-once rule of SPEC 2.5.
pub fn decode_put(body: &[u8], url_label: &str, existing: Option<&Record>) -> Result<Record> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Error::BadRequest(format!("the request body is not valid UTF-8 ({e})")))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(mut incoming) = value else {
        return Err(Error::BadRequest(
            "the request body must be a JSON object (a Sumatra record)".into(),
        ));
    };
    match incoming.get("label") {
        Some(Value::String(l)) if l != url_label => {
            return Err(Error::BadRequest(format!(
                "the label in the body ({l:?}) differs from the label in the URL ({url_label:?})"
            )))
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(Error::BadRequest("label: expected a string".into())),
        None if existing.is_some() => {
            incoming.insert("label".into(), Value::String(url_label.into()));
        }
        None => return Err(Error::BadRequest("missing field `label`".into())),
    }
    let incoming = normalise_legacy(incoming)?;
    let new = match existing {
        None => from_map(incoming)?,
        Some(old) => {
            let Value::Object(mut merged) = serde_json::to_value(old).expect("serialisable") else {
                unreachable!("a record serialises to an object")
            };
            // Validate what was sent, on top of what is stored.
            let mut candidate = merged.clone();
            for (k, v) in &incoming {
                candidate.insert(k.clone(), v.clone());
            }
            let candidate = serde_json::to_value(from_map(candidate)?).expect("serialisable");
            let Value::Object(candidate) = candidate else {
                unreachable!()
            };
            for (k, v) in candidate {
                if !incoming.contains_key(&k) {
                    continue;
                }
                let keep = merged.get(&k).is_some_and(|old| !is_empty(&k, old));
                if REPLACED_FIELDS.contains(&k.as_str()) || !keep {
                    merged.insert(k, v);
                }
            }
            from_map(merged)?
        }
    };
    Ok(new)
}

/// Decodes a record from a JSON object (an export file, or a built body) and
/// normalises it, without the URL checks of a PUT.
pub fn decode_value(value: Value) -> Result<Record> {
    let Value::Object(map) = value else {
        return Err(Error::BadRequest("a record must be a JSON object".into()));
    };
    from_map(normalise_legacy(map)?)
}

fn from_map(map: Map<String, Value>) -> Result<Record> {
    let mut record: Record = serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            Error::BadRequest(inner)
        } else {
            Error::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    normalise(&mut record)?;
    Ok(record)
}

/// Is this stored value "still empty" in the sense of SPEC 2.5?
fn is_empty(key: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => {
            s.is_empty() || (key == "stdout_stderr" && STDOUT_PLACEHOLDERS.contains(&s.as_str()))
        }
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty() || o.iter().all(|(k, v)| is_empty(k, v)),
        _ => false,
    }
}

/// Accepts the shapes of older clients and older dumps (SPEC 2.3).
fn normalise_legacy(mut m: Map<String, Value>) -> Result<Map<String, Value>> {
    if let Some(Value::String(s)) = m.get("tags") {
        let tags: Vec<Value> = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.into()))
            .collect();
        m.insert("tags".into(), Value::Array(tags));
    }
    if let Some(Value::String(s)) = m.get("parameters") {
        let mut p = Map::new();
        p.insert("content".into(), Value::String(s.clone()));
        p.insert("type".into(), Value::String("SimpleParameterSet".into()));
        m.insert("parameters".into(), Value::Object(p));
    }
    for key in ["launch_mode", "datastore", "input_datastore"] {
        if let Some(Value::Object(c)) = m.get_mut(key) {
            literal_to_object(c, "parameters", &format!("{key}.parameters"))?;
        }
    }
    for key in ["input_data", "output_data"] {
        if let Some(Value::Array(keys)) = m.get_mut(key) {
            for (i, k) in keys.iter_mut().enumerate() {
                if let Value::Object(k) = k {
                    literal_to_object(k, "metadata", &format!("{key}[{i}].metadata"))?;
                }
            }
        }
    }
    Ok(m)
}

/// Replaces a Python-literal string (`"{'root': u'/x'}"`) by the object it denotes.
fn literal_to_object(m: &mut Map<String, Value>, key: &str, path: &str) -> Result<()> {
    if let Some(Value::String(s)) = m.get(key) {
        let v = if s.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            pyliteral::parse(s).map_err(|e| Error::BadRequest(format!("{path}: {e}")))?
        };
        if !v.is_object() {
            return Err(Error::BadRequest(format!(
                "{path}: expected an object (a dict literal), got {s:?}"
            )));
        }
        m.insert(key.into(), v);
    }
    Ok(())
}

fn normalise(r: &mut Record) -> Result<()> {
    check_label(&r.label).map_err(|e| Error::BadRequest(format!("label: {e}")))?;
    r.timestamp = crate::record::timefmt::normalise(&r.timestamp)
        .map_err(|e| Error::BadRequest(format!("timestamp: {e}")))?;
    for (name, keys) in [
        ("input_data", &mut r.input_data),
        ("output_data", &mut r.output_data),
    ] {
        for (i, k) in keys.iter_mut().enumerate() {
            if let Some(c) = &k.creation {
                k.creation = Some(
                    crate::record::timefmt::normalise(c)
                        .map_err(|e| Error::BadRequest(format!("{name}[{i}].creation: {e}")))?,
                );
            }
        }
    }
    if let Some(d) = r.duration {
        if !d.is_finite() {
            return Err(Error::BadRequest(
                "duration: must be a finite number".into(),
            ));
        }
    }
    r.tags.sort();
    r.tags.dedup();
    for t in &r.tags {
        if t.is_empty() || t.len() > 255 || t.chars().any(char::is_control) {
            return Err(Error::BadRequest(format!(
                "tags: {t:?} is not a tag (1 to 255 characters, no control characters)"
            )));
        }
    }
    Ok(())
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A label: a word character, then word characters, `-`, `.` or `|`.
pub fn check_label(label: &str) -> std::result::Result<(), String> {
    let mut chars = label.chars();
    let ok = chars.next().is_some_and(is_word_char)
        && chars.all(|c| is_word_char(c) || matches!(c, '-' | '.' | '|'))
        && label.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{label:?} is not a valid record label (a letter, digit or _, then letters, digits, _, -, . or |; at most 255 bytes)"
        ))
    }
}

/// A project id: a word character, then word characters and `-`.
pub fn check_project_id(id: &str) -> std::result::Result<(), String> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(is_word_char)
        && chars.all(|c| is_word_char(c) || c == '-')
        && id.len() <= 100;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a valid project id (a letter, digit or _, then letters, digits, _ or -; at most 100 bytes)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal(label: &str) -> Value {
        json!({
            "label": label, "timestamp": "2026-11-26 05:07:39+0000",
            "executable": {"path": "/usr/bin/python", "version": "3.11", "name": "Python", "options": ""},
            "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
            "main_file": "main.py", "version": "abc",
            "parameters": {"content": "a = 1", "type": "SimpleParameterSet"},
            "launch_mode": {"type": "SerialLaunchMode", "parameters": {"working_directory": "/x"}},
            "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
            "stdout_stderr": "Not launched.", "tags": ["b", "a", "b"], "duration": null,
        })
    }

    #[test]
    fn minimal_record_fills_defaults_and_sorts_tags() {
        let r = decode_value(minimal("l1")).unwrap();
        assert_eq!(r.timestamp, "2026-11-26 05:07:39");
        assert_eq!(r.tags, vec!["a", "b"]);
        assert_eq!(r.input_datastore.parameters["root"], "/");
        let v = r.to_api_value("P");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 24);
        assert_eq!(keys.last(), Some(&"project_id"));
    }

    #[test]
    fn write_once_keeps_values_and_fills_empty_fields() {
        let first = decode_value(minimal("l1")).unwrap();
        let mut later = minimal("l1");
        later["stdout_stderr"] = json!("real output");
        later["duration"] = json!(1.5);
        later["main_file"] = json!("other.py");
        later["reason"] = json!("because");
        later["tags"] = json!(["z"]);
        let body = serde_json::to_vec(&later).unwrap();
        let merged = decode_put(&body, "l1", Some(&first)).unwrap();
        assert_eq!(merged.stdout_stderr.as_deref(), Some("real output"));
        assert_eq!(merged.duration, Some(1.5));
        assert_eq!(merged.main_file.as_deref(), Some("main.py"));
        assert_eq!(merged.reason(), "because");
        assert_eq!(merged.tags, vec!["z"]);
    }

    #[test]
    fn partial_update_of_existing_record() {
        let first = decode_value(minimal("l1")).unwrap();
        let merged = decode_put(br#"{"outcome": "good"}"#, "l1", Some(&first)).unwrap();
        assert_eq!(merged.outcome(), "good");
        assert_eq!(merged.version.as_deref(), Some("abc"));
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let mut v = minimal("l1");
        v["executable"]["version"] = json!(3);
        let e = decode_put(&serde_json::to_vec(&v).unwrap(), "l1", None).unwrap_err();
        assert!(e.to_string().contains("executable.version"), "{e}");
        let mut v = minimal("l1");
        v.as_object_mut().unwrap().remove("executable");
        let e = decode_put(&serde_json::to_vec(&v).unwrap(), "l1", None).unwrap_err();
        assert!(e.to_string().contains("executable"), "{e}");
        let e = decode_put(&serde_json::to_vec(&minimal("l2")).unwrap(), "l1", None).unwrap_err();
        assert!(e.to_string().contains("differs"), "{e}");
        assert!(decode_put(b"{", "l1", None).is_err());
        assert!(decode_put(b"\xff", "l1", None).is_err());
        assert!(decode_put(b"[]", "l1", None).is_err());
    }

    #[test]
    fn legacy_shapes() {
        let mut v = minimal("l1");
        v["tags"] = json!("a,b , c");
        v["datastore"]["parameters"] = json!("{'root': u'/x'}");
        v["output_data"] =
            json!([{"path": "o", "digest": "d", "metadata": "{'size': 2, 'mimetype': None}"}]);
        let r = decode_value(v).unwrap();
        assert_eq!(r.tags, vec!["a", "b", "c"]);
        assert_eq!(r.datastore.parameters["root"], "/x");
        assert_eq!(r.output_data[0].metadata["size"], 2);
        assert!(r.output_data[0].metadata["mimetype"].is_null());
        assert_eq!(r.output_data[0].creation, None);
    }

    #[test]
    fn labels_and_project_ids() {
        for ok in ["a", "2026-11-26_1", "x.y|z", "é"] {
            assert!(check_label(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "a\u{0}"] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
        assert!(check_project_id("Test-Project_2").is_ok());
        assert!(check_project_id("a.b").is_err());
    }
}
