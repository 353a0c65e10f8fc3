//! The HTML pages: handlebars templates from `templates/`, built into the
//! binary. Values are escaped by handlebars (`{{x}}`); only the page body,
//! rendered by us, is inserted raw into the layout.

use crate::error::{Error, Result};
use crate::record::{DataKey, Record};
use handlebars::Handlebars;
use serde_json::{json, Map, Value};

pub const STYLESHEET: &str = include_str!("../../templates/style.css");

const TEMPLATES: [(&str, &str); 15] = [
    ("layout", include_str!("../../templates/layout.hbs")),
    ("projects", include_str!("../../templates/projects.hbs")),
    ("project", include_str!("../../templates/project.hbs")),
    ("record", include_str!("../../templates/record.hbs")),
    (
        "permissions",
        include_str!("../../templates/permissions.hbs"),
    ),
    ("error", include_str!("../../templates/error.hbs")),
    ("compare", include_str!("../../templates/compare.hbs")),
    ("lineage", include_str!("../../templates/lineage.hbs")),
    ("file", include_str!("../../templates/file.hbs")),
    ("files", include_str!("../../templates/files.hbs")),
    ("confirm", include_str!("../../templates/confirm.hbs")),
    ("trash", include_str!("../../templates/trash.hbs")),
    ("history", include_str!("../../templates/history.hbs")),
    ("tokens", include_str!("../../templates/tokens.hbs")),
    ("signed_out", include_str!("../../templates/signed_out.hbs")),
];

/// Pieces that several pages include (`{{> name}}`).
const PARTIALS: [(&str, &str); 1] = [("filepager", include_str!("../../templates/filepager.hbs"))];

pub struct Pages {
    hb: Handlebars<'static>,
}

impl Pages {
    pub fn new() -> Result<Pages> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(false);
        for (name, text) in TEMPLATES {
            hb.register_template_string(name, text)
                .map_err(|e| Error::Database(format!("template {name}: {e}")))?;
        }
        for (name, text) in PARTIALS {
            hb.register_partial(name, text)
                .map_err(|e| Error::Database(format!("template {name}: {e}")))?;
        }
        Ok(Pages { hb })
    }

    /// Renders a page body and wraps it in the layout.
    pub fn render(&self, name: &str, data: &Value) -> Result<String> {
        let body = self
            .hb
            .render(name, data)
            .map_err(|e| Error::Database(format!("rendering {name}: {e}")))?;
        let mut page = data.clone();
        if let Value::Object(m) = &mut page {
            m.insert("body".into(), Value::String(body));
        }
        self.hb
            .render("layout", &page)
            .map_err(|e| Error::Database(format!("rendering the layout: {e}")))
    }

    /// An error page like every other page (SPEC 10.4): the stylesheet,
    /// the header with the signed-in user, and a way back (`back`: a URL
    /// and what it leads to).
    pub fn error(
        &self,
        status: u16,
        message: &str,
        prefix: &str,
        user: Option<&str>,
        back: (&str, &str),
    ) -> String {
        let data = json!({"title": format!("Error {status}"), "status": status, "message": message,
                          "prefix": prefix, "user": user,
                          "back_url": back.0, "back_name": back.1});
        self.render("error", &data).unwrap_or_else(|_| {
            format!("<!DOCTYPE html><title>Error {status}</title><p>Error {status}</p>")
        })
    }
}

/// "0.14 s", "2 min 5 s", "1 h 3 min".
pub fn human_duration(d: Option<f64>) -> String {
    let Some(s) = d else { return String::new() };
    if s < 60.0 {
        let digits = if s < 10.0 { 2 } else { 1 };
        format!("{s:.digits$} s")
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0).floor(), (s % 60.0).round())
    } else {
        format!(
            "{} h {} min",
            (s / 3600.0).floor(),
            ((s % 3600.0) / 60.0).round()
        )
    }
}

fn text(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn short_version(r: &Record) -> String {
    let v = text(&r.version);
    let short: String = v.chars().take(12).collect();
    if text(&r.diff).is_empty() {
        short
    } else {
        format!("{short}*")
    }
}

fn tags(project_url: &str, r: &Record) -> Vec<Value> {
    r.tags
        .iter()
        .filter(|t| status_of(t).is_none())
        .map(|t| json!({"tag": t, "url": format!("{project_url}tagged/{}/", super::encode_segment(t))}))
        .collect()
}

/// The status a Sumatra status tag holds (`sumatra/core.py`:
/// `_(([^.]*)(\.\.\.)?)_`): `_failed_` is `failed`, `_finished..._` is
/// `finished...`.
pub fn status_of(tag: &str) -> Option<&str> {
    let inner = tag.strip_prefix('_')?.strip_suffix('_')?;
    let word = inner.strip_suffix("...").unwrap_or(inner);
    (!word.is_empty() && !word.contains('.')).then_some(inner)
}

/// A record's status for the table (SPEC 10.4): its word, and how it
/// stands out (not by colour alone: the word says it).
fn status(project_url: &str, r: &Record) -> Value {
    let Some((tag, word)) = r.tags.iter().find_map(|t| status_of(t).map(|w| (t, w))) else {
        return Value::Null;
    };
    let kind = match word.trim_end_matches("...") {
        "failed" | "killed" | "crashed" => "bad",
        "finished" | "succeeded" if !word.ends_with("...") => "good",
        _ => "running",
    };
    json!({"word": word, "kind": kind,
           "url": format!("{project_url}tagged/{}/", super::encode_segment(tag))})
}

/// One row of the project page's records table.
pub fn record_row(project_url: &str, r: &Record) -> Value {
    json!({
        "label": r.label,
        "url": format!("{project_url}{}/", super::encode_segment(&r.label)),
        "timestamp": r.timestamp,
        "reason": r.reason(), "outcome": r.outcome(),
        "duration": human_duration(r.duration),
        "executable": format!("{} {}", text(&r.executable.name), text(&r.executable.version)).trim().to_string(),
        "version": short_version(r),
        "main_file": text(&r.main_file),
        "arguments": text(&r.script_arguments),
        "tags": tags(project_url, r),
        "status": status(project_url, r),
    })
}

/// A parameter value as a person reads it: strings bare, null as Python's
/// `None` (these are Python keyword arguments), the rest as JSON.
pub fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn key_values(m: &Map<String, Value>) -> Vec<Value> {
    m.iter()
        .map(|(k, v)| json!({"key": k, "value": shown(v)}))
        .collect()
}

/// Files of each list the record page shows at most (a sweep may write
/// a hundred thousand: the page stays a few hundred kilobytes).
const FILES_SHOWN: usize = 1000;

fn data_keys(keys: &[DataKey]) -> Vec<Value> {
    keys.iter()
        .map(|k| {
            let (digest, links) = crate::store::normalise_digest(k.digest.as_deref().unwrap_or(""));
            json!({
                "path": k.path, "digest": k.digest.as_deref().unwrap_or(""),
                "links": links, "digest_query": super::encode_segment(&digest),
                "short_digest": k.digest.as_deref().unwrap_or("").chars().take(12).collect::<String>(),
                "creation": k.creation, "metadata": key_values(&k.metadata),
            })
        })
        .collect()
}

/// Everything the record page shows.
pub fn record_detail(project_url: &str, r: &Record) -> Value {
    let mut v = record_row(project_url, r);
    let extra = json!({
        "user": text(&r.user),
        "repeats": r.repeats,
        "launch_mode": {"type": text(&r.launch_mode.kind), "parameters": key_values(&r.launch_mode.parameters)},
        "datastore": {"type": text(&r.datastore.kind), "parameters": key_values(&r.datastore.parameters)},
        "input_datastore": {"type": text(&r.input_datastore.kind), "parameters": key_values(&r.input_datastore.parameters)},
        "executable_path": text(&r.executable.path),
        "executable_options": text(&r.executable.options),
        "repository": {"url": text(&r.repository.url), "type": text(&r.repository.kind), "upstream": r.repository.upstream},
        "full_version": text(&r.version),
        "diff": text(&r.diff),
        "parameters": {"type": text(&r.parameters.kind), "content": text(&r.parameters.content)},
        "input_data": data_keys(&r.input_data[..r.input_data.len().min(FILES_SHOWN)]),
        "output_data": data_keys(&r.output_data[..r.output_data.len().min(FILES_SHOWN)]),
        "inputs_not_shown": r.input_data.len().saturating_sub(FILES_SHOWN),
        "outputs_not_shown": r.output_data.len().saturating_sub(FILES_SHOWN),
        "stdout_stderr": text(&r.stdout_stderr),
        "dependencies": r.dependencies,
        "dependency_count": r.dependencies.len(),
        "platforms": r.platforms,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
        a.extend(b);
    }
    v
}

#[cfg(test)]
mod status_tests {
    use super::status_of;

    #[test]
    fn sumatra_status_tags_are_read_as_sumatra_writes_them() {
        assert_eq!(status_of("_failed_"), Some("failed"));
        assert_eq!(status_of("_finished..._"), Some("finished..."));
        assert_eq!(status_of("_pre_run_"), Some("pre_run"));
        assert_eq!(status_of("baseline"), None);
        assert_eq!(status_of("__"), None);
        assert_eq!(status_of("_a.b_"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(None), "");
        assert_eq!(human_duration(Some(0.14345)), "0.14 s");
        assert_eq!(human_duration(Some(42.0)), "42.0 s");
        assert_eq!(human_duration(Some(125.0)), "2 min 5 s");
        assert_eq!(human_duration(Some(3780.0)), "1 h 3 min");
    }

    #[test]
    fn templates_parse_and_escape() {
        let pages = Pages::new().unwrap();
        let html = pages.error(
            404,
            "<script>alert(1)</script>",
            "/records/",
            None,
            ("/records/", "the projects"),
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>alert"));
    }
}
