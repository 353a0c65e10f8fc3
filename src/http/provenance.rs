//! Provenance on the web (SPEC 9.3): a record's lineage as JSON, a page
//! with its graph, SVG and DOT; the record page's *Made from* and *Used
//! by*; and which records made or used a file, across the projects the
//! caller may read (`P?digest=`). The walk is `crate::lineage`'s; the store
//! answers only for readable projects.

use super::api::{authorize, base_url, caller, json_or_html, json_response, pager, Query};
use super::negotiate::{self, Kind, Rep};
use super::{encode_segment, App, Place};
use crate::error::{Error, Result};
use crate::lineage::{self, Direction, Node};
use crate::record::check_label;
use crate::results::graph;
use crate::store::{Level, Readable, Tx};
use rouille::{Request, Response};
use serde_json::{json, Value};

/// The URL of a record under `base` (the prefix, or an absolute URL).
pub fn record_url(base: &str, n: &Node) -> String {
    format!(
        "{base}{}/{}/",
        encode_segment(&n.project),
        encode_segment(&n.label)
    )
}

/// The page of a file's digest (which records made or used those bytes).
pub fn digest_url(prefix: &str, digest: &str) -> String {
    format!("{prefix}?digest={}", encode_segment(digest))
}

/// The projects the caller of `req` may read.
fn readable<'t, 'a>(app: &App, tx: &'t Tx<'a>, req: &Request) -> Result<Readable<'t, 'a>> {
    let who = caller(app, tx, req)?;
    Ok(Readable {
        projects: Some(who.readable_projects(tx)?),
        tx,
    })
}

/// `P<project>/<label>/lineage/?direction=&depth=`.
pub fn lineage_view(
    app: &App,
    req: &Request,
    q: &Query,
    project: &str,
    label: &str,
) -> Result<Response> {
    check_label(label).map_err(Error::BadRequest)?;
    let rep = negotiate::choose(Kind::Lineage, q.get("format"), req.header("Accept"))?;
    let direction = match q.get("direction") {
        None => Direction::Both,
        Some(d) => Direction::parse(d)
            .ok_or_else(|| Error::bad(format!("direction: up, down or both, not {d:?}")))?,
    };
    let depth = match q.number("depth")? {
        None => lineage::DEFAULT_DEPTH,
        Some(d @ 1..=20) => d as u32,
        Some(d) => {
            return Err(Error::bad(format!(
                "depth: from 1 to {}, not {d}",
                lineage::MAX_DEPTH
            )))
        }
    };
    app.with_store(|store| {
        let (p, who, _) = authorize(app, store, req, project, Level::Read)?;
        // A walk reads across projects: it takes a share of heavy work.
        let share = app.heavy.take()?;
        let tx = store.read();
        let start = tx
            .node(&p.id, label)?
            .ok_or_else(|| Error::not_found(format!("no record {label:?} in project {:?}", p.id)))?;
        let g = readable(app, &tx, req)?;
        let l = lineage::walk(&g, start, direction, depth, lineage::MAX_RECORDS)?;
        let prefix = app.cfg.prefix.as_str();
        match rep {
            Rep::Svg => {
                let (boxes, arrows) = graph::of_lineage(&l, |n| record_url(prefix, n), |d| digest_url(prefix, d));
                Ok(Response::from_data(rep.content_type(), graph::svg(&boxes, &arrows)))
            }
            Rep::Prov | Rep::RoCrate => {
                let ids: Vec<i64> = l.records.iter().map(|(n, _)| n.id).collect();
                let about = About {
                    name: format!("Lineage of {} {label}", p.id),
                    description: format!(
                        "The records {} of record {label} of project {}, to depth {depth}, \
                         linked through the files they read and wrote, as Sumatra recorded them",
                        match direction {
                            Direction::Up => "it was made from",
                            Direction::Down => "that used what it made",
                            Direction::Both => "it was made from and that used what it made",
                        },
                        p.id
                    ),
                };
                let projects = g.projects.clone();
                let mut index: Vec<String> = l.records.iter().map(|(n, _)| n.project.clone()).collect();
                index.sort();
                index.dedup();
                export(app, req, &g, rep, ids, "the lineage", about, projects, share, index)
            }
            Rep::Dot => {
                let (boxes, arrows) = graph::of_lineage(&l, |n| record_url(prefix, n), |d| digest_url(prefix, d));
                Ok(Response::from_data(rep.content_type(), graph::dot(&boxes, &arrows)))
            }
            Rep::Html => {
                let base = format!(
                    "{prefix}{}/{}/lineage/",
                    encode_segment(&p.id),
                    encode_segment(label)
                );
                let directions: Vec<Value> = ["up", "down", "both"]
                    .iter()
                    .map(|d| {
                        json!({"name": d, "url": format!("{base}?direction={d}&depth={depth}"),
                               "current": *d == direction.as_str()})
                    })
                    .collect();
                let (boxes, arrows) = graph::of_lineage(&l, |n| record_url(prefix, n), |d| digest_url(prefix, d));
                let doc = l.to_json(direction, depth, &|n| record_url(prefix, n));
                let html = app.pages.render(
                    "lineage",
                    &json!({
                        "title": format!("{} / {} / lineage", p.display_name(), label),
                        "prefix": prefix, "user": who.user().map(|u| &u.username),
                        "project": {"id": p.id, "name": p.display_name(),
                                    "url": format!("{prefix}{}/", encode_segment(&p.id))},
                        "label": label, "record_url": format!("{prefix}{}/{}/", encode_segment(&p.id), encode_segment(label)),
                        "svg": graph::svg(&boxes, &arrows),
                        "counts": {"records": l.records.len(), "links": l.links.len(),
                                   "external": l.external_inputs.len()},
                        "lineage": doc,
                        "svg_url": format!("{base}?direction={}&depth={depth}&format=svg", direction.as_str()),
                        "dot_url": format!("{base}?direction={}&depth={depth}&format=dot", direction.as_str()),
                        "json_url": format!("{base}?direction={}&depth={depth}&format=json", direction.as_str()),
                        "prov_url": format!("{base}?direction={}&depth={depth}&format=prov", direction.as_str()),
                        "crate_url": format!("{base}?direction={}&depth={depth}&format=ro-crate", direction.as_str()),
                        "directions": directions,
                    }),
                )?;
                Ok(Response::html(html))
            }
            _ => {
                let base = base_url(app, req);
                Ok(json_response(Rep::Json, &l.to_json(direction, depth, &|n| record_url(&base, n))))
            }
        }
    })
}

/// What an export says of itself (RO-Crate's root dataset).
pub struct About {
    pub name: String,
    pub description: String,
}

/// Answers the PROV-JSON or RO-Crate (`rep`) of the records `ids`, after
/// checking the export's bounds (`what` names it in the refusal). The
/// body streams from a connection of its own, holding the request's
/// share of heavy work and its budget; parents are linked within the
/// export, among the `projects` the caller reads (`None`: every one);
/// the parameters of the projects in `index` are brought up to date.
#[allow(clippy::too_many_arguments)]
pub fn export(
    app: &App,
    req: &Request,
    g: &Readable<'_, '_>,
    rep: Rep,
    ids: Vec<i64>,
    what: &str,
    about: About,
    projects: Option<Vec<String>>,
    share: Place,
    index: Vec<String>,
) -> Result<Response> {
    lineage::runs::check_bounds(g, &ids, what)?;
    let base = base_url(app, req);
    let (db, durability) = (app.cfg.db.clone(), app.cfg.durability);
    let budget = crate::deadline::current();
    let body = super::stream::body(move |out| {
        let _share = share;
        let work = || {
            let mut store =
                crate::store::Store::open_with(&db, crate::store::OpenMode::Existing, durability)?;
            store.for_stream()?;
            // Parameters written since the last search are read first.
            if rep == Rep::RoCrate {
                for p in &index {
                    store.ensure_indexed(p)?;
                }
            }
            let tx = store.read();
            let g = Readable { tx: &tx, projects };
            let mut runs = lineage::runs::Chunked::new(&g, ids);
            if rep == Rep::Prov {
                crate::transfer::prov::write(&mut runs, &base, out)
            } else {
                let published = chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S+00:00")
                    .to_string();
                let action_id = |n: &Node| record_url(&base, n);
                let c = crate::transfer::rocrate::Crate {
                    name: &about.name,
                    description: &about.description,
                    published: &published,
                    action_id: &action_id,
                };
                crate::transfer::rocrate::write(&mut runs, &c, out)
            }
        };
        match budget {
            Some(b) => crate::deadline::within(b, work),
            None => work(),
        }
    });
    let mut headers = vec![("Content-Type".into(), rep.content_type().into())];
    if rep == Rep::RoCrate {
        headers.push((
            "Content-Disposition".into(),
            "inline; filename=\"ro-crate-metadata.json\"".into(),
        ));
    }
    Ok(Response {
        status_code: 200,
        headers,
        data: rouille::ResponseBody::from_reader(body),
        upgrade: None,
    })
}

/// A record's PROV-JSON or RO-Crate (`P<project>/<label>/?format=prov`).
pub fn record_export(
    app: &App,
    req: &Request,
    store: &crate::store::Store,
    rep: Rep,
    project: &crate::store::Project,
    label: &str,
) -> Result<Response> {
    let share = app.heavy.take()?;
    let tx = store.read();
    let start = tx.node(&project.id, label)?.ok_or_else(|| {
        Error::not_found(format!("no record {label:?} in project {:?}", project.id))
    })?;
    let g = readable(app, &tx, req)?;
    let about = About {
        name: format!("Sumatra record {} {label}", project.id),
        description: if start.reason.is_empty() {
            format!(
                "Record {label} of project {}, as Sumatra recorded it",
                project.id
            )
        } else {
            start.reason.clone()
        },
    };
    let projects = g.projects.clone();
    let index = vec![project.id.clone()];
    export(
        app,
        req,
        &g,
        rep,
        vec![start.id],
        "the record",
        about,
        projects,
        share,
        index,
    )
}

/// *Made from* and *Used by* of a record page: its direct parents and
/// children, each with the file the link came through.
pub fn neighbours(
    app: &App,
    tx: &Tx<'_>,
    req: &Request,
    project: &str,
    label: &str,
) -> Result<Value> {
    let Some(start) = tx.node(project, label)? else {
        return Ok(Value::Null);
    };
    let g = readable(app, tx, req)?;
    let l = lineage::walk(&g, start, Direction::Both, 1, lineage::MAX_RECORDS)?;
    let prefix = app.cfg.prefix.as_str();
    let side = |parents: bool| -> Vec<Value> {
        l.links
            .iter()
            .filter(|k| if parents { k.to == l.start } else { k.from == l.start })
            .filter_map(|k| {
                let other = l.node(if parents { k.from } else { k.to })?;
                Some(json!({
                    "project": other.project, "label": other.label, "url": record_url(prefix, other),
                    "timestamp": other.timestamp, "reason": other.reason,
                    "file": graph::file_name(if parents { &k.to_path } else { &k.from_path }),
                    "path": if parents { &k.to_path } else { &k.from_path },
                    "digest_url": digest_url(prefix, &k.digest),
                    "out_of_order": k.out_of_order,
                    "several": l.several_producers.contains(&k.digest),
                }))
            })
            .collect()
    };
    let (made_from, used_by) = (side(true), side(false));
    Ok(json!({
        "made_from_count": made_from.len(), "used_by_count": used_by.len(),
        "made_from": made_from, "used_by": used_by, "cut": l.cut,
        "lineage_url": format!("{prefix}{}/{}/lineage/", encode_segment(project), encode_segment(label)),
    }))
}

/// Runs counted for one file at most (past it: "more than").
const MOST_COUNTED: u64 = 10_000;

/// A count up to [`MOST_COUNTED`], as JSON: the number, or the text
/// "more than N".
fn counted(n: u64) -> Value {
    if n > MOST_COUNTED {
        json!(format!("more than {MOST_COUNTED}"))
    } else {
        json!(n)
    }
}

/// `P?digest=SHA1` and `P<project>/?view=files&digest=SHA1`: every record,
/// in the projects the caller may read, that produced or used those
/// bytes, a page at a time (a file every record reads has a million).
pub fn digest_view(
    app: &App,
    req: &Request,
    q: &Query,
    digest: &str,
    project: Option<&str>,
) -> Result<Response> {
    let (digest, links) = crate::store::normalise_digest(digest);
    if !links {
        return Err(Error::bad(format!(
            "digest: a SHA-1 of a file's bytes (40 hexadecimal characters), not {:?} \
             (the all-zero and the empty file's digests link nothing)",
            digest.chars().take(80).collect::<String>()
        )));
    }
    let rep = json_or_html(req, q, "a file's records are")?;
    let (limit, offset) = q.page()?;
    app.with_store(|store| {
        // Under a project (its files' page), the caller must read it.
        let project = match project {
            Some(id) => Some(authorize(app, store, req, id, Level::Read)?.0),
            None => None,
        };
        let tx = store.read();
        let who = caller(app, &tx, req)?;
        let g = readable(app, &tx, req)?;
        let base = if rep == Rep::Html {
            app.cfg.prefix.clone()
        } else {
            base_url(app, req)
        };
        let mut more = false;
        let mut lists = Vec::new();
        let mut counts = Vec::new();
        for role in [lineage::Role::Output, lineage::Role::Input] {
            let mut uses = g.holders_page(&digest, role, limit + 1, offset)?;
            more |= uses.len() as u64 > limit;
            uses.truncate(limit as usize);
            let nodes = lineage::Graph::nodes(&g, &uses.iter().map(|u| u.record).collect::<Vec<_>>())?;
            let list: Vec<Value> = uses
                .iter()
                .filter_map(|u| {
                    let n = nodes.iter().find(|n| n.id == u.record)?;
                    Some(json!({"project": n.project, "label": n.label, "url": record_url(&base, n),
                                "timestamp": n.timestamp, "path": u.path}))
                })
                .collect();
            lists.push(list);
            counts.push(g.count_holders(&digest, role, MOST_COUNTED)?);
        }
        let used_by = lists.pop().unwrap_or_default();
        let produced_by = lists.pop().unwrap_or_default();
        let doc = json!({
            "digest": digest, "produced_by": produced_by, "used_by": used_by,
            "produced_count": counted(counts[0]), "used_count": counted(counts[1]),
            "limit": limit, "offset": offset, "cut": more,
        });
        if rep == Rep::Html {
            let url = match &project {
                Some(p) => format!("{}{}/?view=files&digest={digest}&", app.cfg.prefix, encode_segment(&p.id)),
                None => format!("{}?digest={digest}&", app.cfg.prefix),
            };
            let html = app.pages.render(
                "file",
                &json!({"title": format!("File {}", &digest[..12]), "prefix": app.cfg.prefix,
                        "user": who.user().map(|u| &u.username),
                        "project": project.as_ref().map(|p| json!({"name": p.display_name(),
                            "url": format!("{}{}/", app.cfg.prefix, encode_segment(&p.id)),
                            "files_url": format!("{}{}/?view=files", app.cfg.prefix, encode_segment(&p.id))})),
                        "counts": {"produced": doc["produced_count"], "used": doc["used_count"]},
                        "pager": pager(&url, limit, offset, more),
                        "file": doc}),
            )?;
            return Ok(Response::html(html));
        }
        Ok(json_response(Rep::Json, &doc))
    })
}

/// `P<project>/?view=files[&role=input][&search=TEXT]`: the files a
/// project's runs wrote (or read), newest first, a page at a time; each
/// with the runs that made and used the same bytes, counted.
pub fn files_view(app: &App, req: &Request, q: &Query, project: &str) -> Result<Response> {
    let rep = json_or_html(req, q, "a project's files are")?;
    let role = match q.get("role") {
        None | Some("output") => lineage::Role::Output,
        Some("input") => lineage::Role::Input,
        Some(r) => return Err(Error::bad(format!("role: output or input, not {r:?}"))),
    };
    let search = q.get("search").map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200) {
        return Err(Error::bad("search: at most 200 characters of a path"));
    }
    let (limit, offset) = q.page()?;
    if let Some(d) = q.get("digest") {
        return digest_view(app, req, q, d, Some(project));
    }
    app.with_store(|store| {
        let (p, who, _) = authorize(app, store, req, project, Level::Read)?;
        let tx = store.read();
        let g = readable(app, &tx, req)?;
        let mut entries = tx.project_files(&p.id, role, search, limit + 1, offset)?;
        let more = entries.len() as u64 > limit;
        entries.truncate(limit as usize);
        let nodes = lineage::Graph::nodes(&g, &entries.iter().map(|f| f.record).collect::<Vec<_>>())?;
        let base = if rep == Rep::Html {
            app.cfg.prefix.clone()
        } else {
            base_url(app, req)
        };
        let mut rows = Vec::with_capacity(entries.len());
        for f in &entries {
            let Some(n) = nodes.iter().find(|n| n.id == f.record) else { continue };
            let (made, used) = if f.links {
                (
                    counted(g.count_holders(&f.digest, lineage::Role::Output, MOST_COUNTED)?),
                    counted(g.count_holders(&f.digest, lineage::Role::Input, MOST_COUNTED)?),
                )
            } else {
                (Value::Null, Value::Null)
            };
            rows.push(json!({
                "path": f.path, "digest": f.digest, "links": f.links,
                "short": f.digest.chars().take(12).collect::<String>(),
                "digest_url": f.links.then(|| format!("{base}{}/?view=files&digest={}", encode_segment(&p.id), f.digest)),
                "size": f.size, "mimetype": f.mimetype, "creation": f.creation,
                "record": {"label": n.label, "url": record_url(&base, n), "timestamp": n.timestamp},
                "produced_by": made, "used_by": used,
            }));
        }
        let role_name = if role == lineage::Role::Output { "output" } else { "input" };
        let doc = json!({
            "project": p.id, "role": role_name, "search": search, "files": rows,
            "limit": limit, "offset": offset, "more": more,
        });
        if rep == Rep::Html {
            let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
            let mut own = format!("{project_url}?view=files&role={role_name}&");
            if let Some(s) = search {
                own.push_str(&format!("search={}&", encode_segment(s)));
            }
            let html = app.pages.render(
                "files",
                &json!({"title": format!("{} / files", p.display_name()), "prefix": app.cfg.prefix,
                        "user": who.user().map(|u| &u.username),
                        "project": {"name": p.display_name(), "url": project_url, "id": p.id},
                        "outputs": role == lineage::Role::Output,
                        "outputs_url": format!("{project_url}?view=files&role=output"),
                        "inputs_url": format!("{project_url}?view=files&role=input"),
                        "search": search, "count": rows.len(),
                        "pager": pager(&own, limit, offset, more),
                        "files": doc["files"]}),
            )?;
            return Ok(Response::html(html));
        }
        Ok(json_response(Rep::Json, &doc))
    })
}
