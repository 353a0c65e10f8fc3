//! Provenance on the web (SPEC 9.3): a record's lineage as JSON, a page
//! with its graph, SVG and DOT; the record page's *Made from* and *Used
//! by*; and which records made or used a file, across the projects the
//! caller may read (`P?digest=`). The walk is `crate::lineage`'s; the store
//! answers only for readable projects.

use super::api::{authorize, base_url, caller, json_response, Query};
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
        projects: Some(tx.readable_projects(who.user().map(|u| u.id))?),
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

/// `P?digest=SHA1`: every record, in the projects the caller may read,
/// that produced or used those bytes.
pub fn digest_view(app: &App, req: &Request, q: &Query, digest: &str) -> Result<Response> {
    let (digest, links) = crate::store::normalise_digest(digest);
    if !links {
        return Err(Error::bad(format!(
            "digest: a SHA-1 of a file's bytes (40 hexadecimal characters), not {:?} \
             (the all-zero and the empty file's digests link nothing)",
            digest.chars().take(80).collect::<String>()
        )));
    }
    let rep = negotiate::choose(Kind::Lineage, q.get("format"), req.header("Accept"))?;
    if !matches!(rep, Rep::Json | Rep::Html) {
        return Err(Error::NotAcceptable(
            "a file's records are JSON or HTML".into(),
        ));
    }
    app.with_store(|store| {
        let tx = store.read();
        let who = caller(app, &tx, req)?;
        let g = readable(app, &tx, req)?;
        let (uses, cut) = crate::lineage::users_of(&g, &digest, 1000)?;
        let nodes = lineage::Graph::nodes(&g, &uses.iter().map(|u| u.record).collect::<Vec<_>>())?;
        let base = if rep == Rep::Html {
            app.cfg.prefix.clone()
        } else {
            base_url(app, req)
        };
        let entry =
            |role: lineage::Role| -> Vec<Value> {
                uses.iter()
                .filter(|u| u.role == role)
                .filter_map(|u| {
                    let n = nodes.iter().find(|n| n.id == u.record)?;
                    Some(json!({"project": n.project, "label": n.label, "url": record_url(&base, n),
                                "timestamp": n.timestamp, "path": u.path}))
                })
                .collect()
            };
        let doc = json!({
            "digest": digest, "produced_by": entry(lineage::Role::Output),
            "used_by": entry(lineage::Role::Input), "cut": cut,
        });
        if rep == Rep::Html {
            let html = app.pages.render(
                "file",
                &json!({"title": format!("File {}", &digest[..12]), "prefix": app.cfg.prefix,
                        "user": who.user().map(|u| &u.username),
                        "counts": {"produced": doc["produced_by"].as_array().map_or(0, Vec::len),
                                   "used": doc["used_by"].as_array().map_or(0, Vec::len)},
                        "file": doc}),
            )?;
            return Ok(Response::html(html));
        }
        Ok(json_response(Rep::Json, &doc))
    })
}
