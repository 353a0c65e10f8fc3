//! The pages' forms (SPEC 10.1): a record's reason, outcome and tags; a
//! record, the ticked rows or a tag's records deleted through a page that
//! lists what will go; the trash (restore) and the history of a project
//! for its admins; a project's name, description and deletion. Every form
//! is a POST of `application/x-www-form-urlencoded` (the transport refuses
//! it across sites, SPEC 2.7) answered with a redirect (303) to the page it
//! changed; a refusal is an error page that says why, with a way back.

use super::api::{
    actor, authorize, base_url, json_or_html, json_response, log_project_update, pager, read_body,
    require_form, Query,
};
use super::negotiate::Rep;
use super::{encode_segment, App};
use crate::error::{Error, Result};
use crate::store::{Level, Project, Restore};
use rouille::{Request, Response};
use serde_json::{json, Value};

/// Records one form may delete or restore at once.
const MOST_LABELS: usize = 10_000;
/// Labels a confirmation page lists (the rest are counted).
const LISTED: usize = 200;

/// The form of a POST: `application/x-www-form-urlencoded`, nothing else.
fn form(req: &Request) -> Result<Query> {
    require_form(req)?;
    let body = read_body(req)?;
    let text = std::str::from_utf8(&body).map_err(|_| Error::bad("the form is not valid UTF-8"))?;
    Query::parse(text)
}

/// Every value of `key` (and of `also`), each once, in order.
fn values(f: &Query, keys: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (k, v) in &f.0 {
        if keys.contains(&k.as_str()) {
            for v in v.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                if !out.iter().any(|o| o == v) {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

fn see_other(url: String) -> Response {
    Response::redirect_303(url)
}

fn project_url(app: &App, p: &Project) -> String {
    format!("{}{}/", app.cfg.prefix, encode_segment(&p.id))
}

/// A page asking to confirm a delete: what will go, a button that sends
/// the same form with `confirm=yes`, and a way back.
#[allow(clippy::too_many_arguments)]
fn confirm_page(
    app: &App,
    who: &str,
    p: &Project,
    heading: String,
    labels: &[String],
    fields: &[(&str, String)],
    action_url: String,
    button: &str,
    back: String,
) -> Result<Response> {
    let listed: Vec<&String> = labels.iter().take(LISTED).collect();
    let html = app.pages.render(
        "confirm",
        &json!({
            "title": heading, "heading": heading, "prefix": app.cfg.prefix, "user": who,
            "project": {"name": p.display_name(), "url": project_url(app, p)},
            "labels": listed, "more": labels.len().saturating_sub(LISTED),
            "fields": fields.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "action_url": action_url, "button": button, "back_url": back,
            "trash_days": app.cfg.trash_days,
        }),
    )?;
    Ok(Response::html(html))
}

/// POST `P<project>/`: delete ticked records or a tag's (write), restore
/// from the trash, change the name and description, delete the project
/// (admin).
pub fn project_post(app: &App, req: &Request, project: &str) -> Result<Response> {
    let query = req.raw_url().split_once('?').map_or("", |(_, q)| q);
    let need = super::api::form_level(&super::Route::Project(project.to_string()), query);
    app.with_store(|store| {
        let (p, who, level) = authorize(app, store, req, project, need)?;
        let f = form(req)?;
        if need < Level::Write {
            // Only the revoke of one's own token is taken at read.
            if f.get("action") != Some("token-revoke") {
                return Err(Error::bad("action: the URL says token-revoke"));
            }
            return super::tokens::token_post(app, req, store, &p, &who, level, &f);
        }
        let by = actor(&who, req);
        let name = who.name();
        let confirmed = f.get("confirm") == Some("yes");
        let admin = || -> Result<()> {
            if level < Level::Admin {
                return Err(Error::Forbidden(format!(
                    "{name} needs admin access to project {:?} for this",
                    p.id
                )));
            }
            Ok(())
        };
        let here = project_url(app, &p);
        if f.get("action").is_some_and(|a| a.starts_with("token-")) {
            return super::tokens::token_post(app, req, store, &p, &who, level, &f);
        }
        match f.get("action").unwrap_or("") {
            "delete" => {
                let labels = values(&f, &["label", "compare"]);
                if labels.is_empty() {
                    return Err(Error::bad("tick the records to delete"));
                }
                if labels.len() > MOST_LABELS {
                    return Err(Error::bad(format!(
                        "at most {MOST_LABELS} records at once, not {}",
                        labels.len()
                    )));
                }
                if !confirmed {
                    let fields: Vec<(&str, String)> =
                        std::iter::once(("action", "delete".to_string()))
                            .chain(labels.iter().map(|l| ("label", l.clone())))
                            .collect();
                    return confirm_page(
                        app,
                        name,
                        &p,
                        format!(
                            "Delete {} record{} of {}?",
                            labels.len(),
                            plural(labels.len()),
                            p.display_name()
                        ),
                        &labels,
                        &fields,
                        here.clone(),
                        "Delete",
                        here,
                    );
                }
                store.write(|tx| tx.delete_labels(&p.id, &labels, &by))?;
                Ok(see_other(here))
            }
            "delete-tag" => {
                let tag = f
                    .get("tag")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Error::bad("tag: missing"))?;
                if !confirmed {
                    let tx = store.read();
                    let labels =
                        tx.labels(&p.id, &[tag.to_string()], Some(LISTED as u64 + 1), 0)?;
                    let n = tx.count_records(&p.id, &[tag.to_string()])? as usize;
                    let back = format!("{here}tagged/{}/", encode_segment(tag));
                    let mut shown = labels;
                    shown.truncate(LISTED);
                    return confirm_page(
                        app,
                        name,
                        &p,
                        format!("Delete the {n} record{} tagged {tag}?", plural(n)),
                        &shown,
                        &[("action", "delete-tag".into()), ("tag", tag.to_string())],
                        here.clone(),
                        "Delete them",
                        back,
                    );
                }
                store.write(|tx| tx.delete_by_tag(&p.id, tag, &by))?;
                Ok(see_other(here))
            }
            "restore" => {
                admin()?;
                // By trash id (the same label may be there more than once),
                // or by label (the latest deleted record of each).
                let mut ids = Vec::new();
                for v in values(&f, &["id"]) {
                    ids.push(
                        v.parse::<i64>()
                            .map_err(|_| Error::bad(format!("id: a number, not {v:?}")))?,
                    );
                }
                let labels = values(&f, &["label"]);
                if ids.is_empty() && labels.is_empty() {
                    return Err(Error::bad("tick the records to restore"));
                }
                if ids.len() + labels.len() > MOST_LABELS {
                    return Err(Error::bad(format!("at most {MOST_LABELS} records at once")));
                }
                store.write(|tx| {
                    if !ids.is_empty() {
                        tx.restore(&p.id, Restore::Ids(&ids), None, &by)?;
                    }
                    if !labels.is_empty() {
                        tx.restore(&p.id, Restore::Labels(&labels), None, &by)?;
                    }
                    Ok(())
                })?;
                Ok(see_other(format!("{here}?view=trash")))
            }
            "update" => {
                admin()?;
                // A field the user did not change stays as stored: the
                // browser sends line ends as CRLF, and the form trims.
                let plain = |s: &str| s.replace("\r\n", "\n").trim().to_string();
                let changed =
                    |given: Option<&str>, now: &str| given.map(plain).filter(|g| *g != plain(now));
                let info = super::api::ProjectInfo {
                    name: changed(f.get("name"), &p.name),
                    description: changed(f.get("description"), &p.description),
                };
                for v in [&info.name, &info.description].into_iter().flatten() {
                    if v.len() > 10_000 {
                        return Err(Error::bad("at most 10000 bytes of name or description"));
                    }
                }
                store.write(|tx| {
                    tx.update_project(&p.id, info.name.as_deref(), info.description.as_deref())?;
                    log_project_update(tx, &by, &p, &info)
                })?;
                Ok(see_other(here))
            }
            "delete-project" => {
                admin()?;
                if !confirmed {
                    let n = store.read().count_records(&p.id, &[])? as usize;
                    return confirm_page(
                        app,
                        name,
                        &p,
                        format!(
                            "Delete project {} and its {n} record{}?",
                            p.display_name(),
                            plural(n)
                        ),
                        &[],
                        &[("action", "delete-project".into())],
                        here.clone(),
                        "Delete the project",
                        here,
                    );
                }
                store.write(|tx| tx.delete_project(&p.id, &by))?;
                Ok(see_other(app.cfg.prefix.clone()))
            }
            other => Err(Error::bad(format!(
                "action: delete, delete-tag, restore, update or delete-project, not {other:?}"
            ))),
        }
    })
}

/// POST `P<project>/<label>/`: change reason, outcome and tags, or delete
/// the record (write).
pub fn record_post(app: &App, req: &Request, project: &str, label: &str) -> Result<Response> {
    crate::record::check_label(label).map_err(Error::BadRequest)?;
    app.with_store(|store| {
        let (p, who, _) = authorize(app, store, req, project, Level::Write)?;
        let f = form(req)?;
        let by = actor(&who, req);
        let here = format!("{}{}/", project_url(app, &p), encode_segment(label));
        if store.read().record_json(&p.id, label)?.is_none() {
            return Err(Error::not_found(format!(
                "no record {label:?} in project {:?}",
                p.id
            )));
        }
        match f.get("action").unwrap_or("") {
            "edit" => {
                let text = |k: &str| -> Result<Option<String>> {
                    match f.get(k) {
                        Some(v) if v.len() > 100_000 => {
                            Err(Error::bad(format!("{k}: at most 100000 bytes")))
                        }
                        Some(v) => Ok(Some(v.replace("\r\n", "\n"))),
                        None => Ok(None),
                    }
                };
                let (reason, outcome) = (text("reason")?, text("outcome")?);
                let tag_list = |t: &str| {
                    let mut v: Vec<String> = t
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                };
                let tags = f.get("tags").map(tag_list);
                let label_owned = label.to_string();
                store.write(|tx| {
                    tx.put_record(&p.id, &label_owned, &by, |old| {
                        let mut r = old
                            .cloned()
                            .ok_or_else(|| Error::not_found("the record was deleted meanwhile"))?;
                        // A field changes only when its text does (an empty
                        // form field is not a change of a missing value).
                        let same = |now: &Option<String>, given: &str| {
                            now.as_deref().unwrap_or("").replace("\r\n", "\n") == given
                        };
                        if let Some(v) = reason.as_ref().filter(|v| !same(&r.reason, v)) {
                            r.reason = Some(v.clone());
                        }
                        if let Some(v) = outcome.as_ref().filter(|v| !same(&r.outcome, v)) {
                            r.outcome = Some(v.clone());
                        }
                        // Tags as the form shows them (joined with ", "): only
                        // an edited list replaces them, so a tag holding a
                        // comma survives an edit of the reason.
                        // Read back as the form reads them: a list shown and
                        // sent unchanged changes nothing (" lead" stays).
                        if let Some(t) = tags.as_ref().filter(|t| **t != tag_list(&r.tags.join(", "))) {
                            for tag in t {
                                if tag.len() > 255 || tag.chars().any(char::is_control) {
                                    return Err(Error::bad(format!(
                                        "tags: {:?} is not a tag (1 to 255 bytes, no control characters)",
                                        tag.chars().take(40).collect::<String>()
                                    )));
                                }
                            }
                            r.tags = t.clone();
                        }
                        Ok(r)
                    })
                })?;
                Ok(see_other(here))
            }
            "delete" => {
                if f.get("confirm") != Some("yes") {
                    return confirm_page(
                        app,
                        who.name(),
                        &p,
                        format!("Delete record {label} of {}?", p.display_name()),
                        &[label.to_string()],
                        &[("action", "delete".into())],
                        here.clone(),
                        "Delete",
                        here,
                    );
                }
                store.write(|tx| tx.delete_record(&p.id, label, &by))?;
                Ok(see_other(project_url(app, &p)))
            }
            other => Err(Error::bad(format!("action: edit or delete, not {other:?}"))),
        }
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `P<project>/?view=trash`: what was deleted, by whom and when, with a
/// way to restore it (admins).
pub fn trash_view(app: &App, req: &Request, q: &Query, project: &str) -> Result<Response> {
    let rep = json_or_html(req, q, "the trash is")?;
    let (limit, offset) = q.page()?;
    app.with_store(|store| {
        let (p, who, _) = authorize(app, store, req, project, Level::Admin)?;
        let tx = store.read();
        let mut items = tx.trash(Some(&p.id), limit + 1, offset)?;
        let more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        let total = tx.trash_count(Some(&p.id))?;
        if rep == Rep::Json {
            let list: Vec<Value> = items.iter().map(|t| t.to_json()).collect();
            return Ok(json_response(
                Rep::Json,
                &json!({"project": p.id, "count": total, "trash": list, "limit": limit,
                        "offset": offset, "more": more}),
            ));
        }
        let url = project_url(app, &p);
        let html = app.pages.render(
            "trash",
            &json!({"title": format!("{} / trash", p.display_name()), "prefix": app.cfg.prefix,
                    "user": who.name(), "project": {"name": p.display_name(), "url": url},
                    "count": total, "trash_days": app.cfg.trash_days,
                    "items": items.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
                    "pager": pager(&format!("{url}?view=trash&"), limit, offset, more),
                    "history_url": format!("{url}?view=history")}),
        )?;
        Ok(Response::html(html))
    })
}

/// `P<project>/?view=history`: every change of a project, newest first
/// (admins).
pub fn history_view(app: &App, req: &Request, q: &Query, project: &str) -> Result<Response> {
    let rep = json_or_html(req, q, "the history is")?;
    let (limit, offset) = q.page()?;
    app.with_store(|store| {
        let (p, who, _) = authorize(app, store, req, project, Level::Admin)?;
        let tx = store.read();
        let mut entries = tx.history(Some(&p.id), None, limit + 1, offset)?;
        let more = entries.len() as u64 > limit;
        entries.truncate(limit as usize);
        if rep == Rep::Json {
            let list: Vec<Value> = entries.iter().map(|e| e.to_json()).collect();
            return Ok(json_response(
                Rep::Json,
                &json!({"project": p.id, "history": list, "limit": limit, "offset": offset,
                        "more": more, "url": format!("{}{}/", base_url(app, req), encode_segment(&p.id))}),
            ));
        }
        let url = project_url(app, &p);
        let rows: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut j = e.to_json();
                j["detail_text"] = json!(describe(&e.detail));
                j
            })
            .collect();
        let html = app.pages.render(
            "history",
            &json!({"title": format!("{} / history", p.display_name()), "prefix": app.cfg.prefix,
                    "user": who.name(), "project": {"name": p.display_name(), "url": url},
                    "entries": rows,
                    "pager": pager(&format!("{url}?view=history&"), limit, offset, more),
                    "trash_url": format!("{url}?view=trash")}),
        )?;
        Ok(Response::html(html))
    })
}

/// A change's detail in words: `outcome: "" → "ok"; fields: duration`.
fn describe(detail: &Value) -> String {
    let Value::Object(m) = detail else {
        return String::new();
    };
    let short = |v: &Value| -> String {
        let s = match v {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        if s.chars().count() > 80 {
            s.chars().take(79).collect::<String>() + "…"
        } else {
            s
        }
    };
    let mut parts = Vec::new();
    for (k, v) in m {
        match v {
            Value::Object(ba) if ba.contains_key("before") => parts.push(format!(
                "{k}: {} → {}",
                short(&ba["before"]),
                short(&ba["after"])
            )),
            Value::Array(a) if k == "fields" => {
                if !a.is_empty() {
                    let names: Vec<String> = a
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect();
                    parts.push(format!("fields: {}", names.join(", ")));
                }
            }
            other => parts.push(format!("{k}: {}", short(other))),
        }
    }
    parts.join("; ")
}
