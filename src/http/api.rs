//! The handlers: one function per route and method. They authenticate,
//! authorise, call the store and build JSON or HTML.

use super::auth::Caller;
use super::negotiate::{self, Kind, Rep};
use super::{encode_segment, App, Route};
use crate::error::{Error, Result};
use crate::record::{self, check_label, check_project_id, RESERVED_LABELS};
use crate::results::{self, Search};
use crate::store::{Actor, Level, OpenMode, Project, PutOutcome, Store, Tx};
use rouille::{Request, Response};
use serde_json::{json, Value};
use std::io::Read;

pub fn handle(app: &App, req: &Request, route: &Route, query: &str) -> Result<Response> {
    let q = Query::parse(query)?;
    let method = match req.method() {
        "HEAD" => "GET",
        m => m,
    };
    let not_allowed = || Err(Error::MethodNotAllowed(route.allow()));
    match (route, method) {
        (Route::Stylesheet, "GET") => Ok(Response::from_data(
            "text/css; charset=utf-8",
            super::html::STYLESHEET,
        )),
        (Route::Health, "GET") => Ok(super::health::health(app)),
        (Route::ProjectList, "GET") => match q.get("digest") {
            Some(d) => super::provenance::digest_view(app, req, &q, d, None),
            None => project_list(app, req, &q),
        },
        (Route::Lineage(p, l), "GET") => super::provenance::lineage_view(app, req, &q, p, l),
        (Route::Project(p), "GET") => project_view(app, req, &q, p, None),
        (Route::Tagged(p, t), "GET") => project_view(app, req, &q, p, Some(t)),
        (Route::Project(p), "PUT") => put_project(app, req, p),
        (Route::Project(p), "POST") => super::forms::project_post(app, req, p),
        (Route::Record(p, l), "POST") => super::forms::record_post(app, req, p, l),
        (Route::Permissions(p), "GET") => permissions_view(app, req, &q, p),
        (Route::Permissions(p), "POST") => post_permission(app, req, p),
        (Route::Record(p, l), "GET") => record_view(app, req, &q, p, Some(l)),
        (Route::Last(p), "GET") => record_view(app, req, &q, p, None),
        (Route::Record(p, l), "PUT") => put_record(app, req, p, l),
        (Route::Record(p, l), "DELETE") => delete_record(app, req, p, l),
        (Route::Tag(p, t) | Route::Tagged(p, t), "DELETE") => delete_tag(app, req, p, t),
        (Route::Last(_) | Route::Permissions(_), "PUT") => Err(reserved_label()),
        _ => not_allowed(),
    }
}

/// Before the body: refuses what will be refused whatever the body holds
/// (bad names, a missing project, 401, 403, 405, 415), in the order the
/// handlers check them. `Ok(true)`: read the body and handle the request;
/// `Ok(false)`: the request needs no body (a GET): answer it without.
pub fn admit(app: &App, req: &Request, route: &Route, query: &str) -> Result<bool> {
    Query::parse(query)?;
    if matches!(req.method(), "GET" | "HEAD") {
        return Ok(false);
    }
    if matches!(
        (route, req.method()),
        (Route::Last(_) | Route::Permissions(_), "PUT")
    ) {
        return Err(reserved_label());
    }
    app.with_store(|store| match (route, req.method()) {
        (Route::Project(p), "PUT") => {
            check_project_id(p).map_err(Error::BadRequest)?;
            if store.read().project(p)?.is_some() {
                authorize(app, store, req, p, Level::Admin)?;
            } else if caller(app, &store.read(), req)?.user().is_none() {
                return Err(Error::Unauthorized);
            }
            Ok(())
        }
        (Route::Permissions(p), "POST") => {
            authorize(app, store, req, p, Level::Admin)?;
            form_kind(req).map(|_| ())
        }
        // The pages' forms (SPEC 10.1): every one needs write at least,
        // but the revoke of one's own token (`?action=token-revoke`): a
        // user lowered to read can still end a token made before.
        (Route::Project(p) | Route::Record(p, _), "POST") => {
            if let Route::Record(_, l) = route {
                check_label(l).map_err(Error::BadRequest)?;
            }
            authorize(app, store, req, p, form_level(route, query))?;
            require_form(req)
        }
        (Route::Record(p, l), "PUT" | "DELETE") => {
            check_label(l).map_err(Error::BadRequest)?;
            authorize(app, store, req, p, Level::Write).map(|_| ())
        }
        (Route::Tag(p, _) | Route::Tagged(p, _), "DELETE") => {
            authorize(app, store, req, p, Level::Write).map(|_| ())
        }
        _ => Err(Error::MethodNotAllowed(route.allow())),
    })
    .map(|()| true)
}

/// The level a page's form POST needs before its body is read.
pub(super) fn form_level(route: &Route, query: &str) -> Level {
    let revoke = matches!(route, Route::Project(_))
        && Query::parse(query).is_ok_and(|q| q.get("action") == Some("token-revoke"));
    if revoke {
        Level::Read
    } else {
        Level::Write
    }
}

fn reserved_label() -> Error {
    Error::bad(format!(
        "{:?} and {:?} are not usable as record labels: they are routes of their own",
        RESERVED_LABELS[0], RESERVED_LABELS[1]
    ))
}

/// The query string, decoded.
pub(super) struct Query(pub(super) Vec<(String, String)>);

impl Query {
    pub(super) fn parse(q: &str) -> Result<Query> {
        let mut out = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                super::percent_decode(&s.replace('+', " ")).ok_or_else(|| {
                    Error::bad(format!(
                        "the query parameter {s:?} is not valid percent-encoded UTF-8"
                    ))
                })
            };
            out.push((dec(k)?, dec(v)?));
        }
        Ok(Query(out))
    }
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub(super) fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    pub(super) fn number(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| Error::bad(format!("{key} must be a whole number, not {v:?}")))
            })
            .transpose()
    }
}

/// Rows of a paged listing (files, a file's records, trash, history) by
/// default, and at most.
const PAGE_ROWS: u64 = 100;
const MOST_ROWS: u64 = 1000;

impl Query {
    /// `limit` and `offset` of a paged listing (SPEC 9.5, 10.2, 10.3).
    pub(super) fn page(&self) -> Result<(u64, u64)> {
        let limit = match self.number("limit")? {
            None => PAGE_ROWS,
            Some(n @ 1..=MOST_ROWS) => n,
            Some(n) => return Err(Error::bad(format!("limit: from 1 to {MOST_ROWS}, not {n}"))),
        };
        Ok((limit, self.number("offset")?.unwrap_or(0)))
    }
}

/// The links of a paged listing to the pages before and after it (`url`
/// is the page's own, with its other parameters, ending in `?` or `&`).
pub(super) fn pager(url: &str, limit: u64, offset: u64, more: bool) -> Value {
    json!({
        "prev": (offset > 0).then(|| format!("{url}limit={limit}&offset={}", offset.saturating_sub(limit))),
        "next": more.then(|| format!("{url}limit={limit}&offset={}", offset + limit)),
        "from": offset + 1,
    })
}

/// JSON or HTML, nothing else, for a listing that has no other form
/// (`what` names it in the refusal).
pub(super) fn json_or_html(req: &Request, q: &Query, what: &str) -> Result<Rep> {
    let rep = negotiate::choose(Kind::Lineage, q.get("format"), req.header("Accept"))?;
    if !matches!(rep, Rep::Json | Rep::Html) {
        return Err(Error::NotAcceptable(format!("{what} JSON or HTML")));
    }
    Ok(rep)
}

fn choose(req: &Request, q: &Query, kind: Kind) -> Result<Rep> {
    negotiate::choose(kind, q.get("format"), req.header("Accept"))
}

pub(super) fn json_response(rep: Rep, value: &Value) -> Response {
    Response::from_data(
        rep.content_type(),
        serde_json::to_vec(value).expect("JSON serialises"),
    )
}

fn html_response(body: String) -> Response {
    Response::html(body)
}

/// Absolute URLs for links in JSON, from the request's Host and the prefix.
pub(super) fn base_url(app: &App, req: &Request) -> String {
    let host = req
        .header("Host")
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or(&app.cfg.fallback_host);
    format!("{}://{host}{}", super::scheme(req), app.cfg.prefix)
}

pub(super) fn caller(app: &App, tx: &Tx<'_>, req: &Request) -> Result<Caller> {
    caller_known(app, tx, req, None)
}

/// [`caller`], with the user the credentials name already read (`Some`)
/// or to be read; who it is is noted for the request's log line.
fn caller_known(
    app: &App,
    tx: &Tx<'_>,
    req: &Request,
    known: Option<Option<crate::store::UserAuth>>,
) -> Result<Caller> {
    let who = app.auth.caller_known(
        tx,
        req.header("Authorization"),
        req.remote_addr().ip(),
        known,
    )?;
    if who.user().is_some() {
        super::note_caller(who.actor_name());
    }
    Ok(who)
}

/// 404 if the project is missing (before anything else), then 401 or 403
/// unless the caller holds `need`.
pub(super) fn authorize(
    app: &App,
    store: &Store,
    req: &Request,
    project: &str,
    need: Level,
) -> Result<(Project, Caller, Level)> {
    authorize_reading(app, store, req, project, need, None)
        .map(|(p, who, level, _)| (p, who, level))
}

/// [`authorize`], reading one record of the project in the same question;
/// the record's stored JSON is handed over only once access is granted.
pub(super) fn authorize_reading(
    app: &App,
    store: &Store,
    req: &Request,
    project: &str,
    need: Level,
    label: Option<&str>,
) -> Result<(Project, Caller, Level, Option<String>)> {
    check_project_id(project).map_err(Error::BadRequest)?;
    let tx = store.read();
    // The project, the user the credentials name and their grant: one
    // question (one round trip on PostgreSQL, SPEC 11.4).
    let header = req.header("Authorization");
    let named = header.and_then(super::auth::parse_basic).map(|(u, _)| u);
    let mut access = tx
        .access_and_record(project, named.as_deref(), label)?
        .ok_or_else(|| Error::not_found(format!("no project {project:?}")))?;
    let record = access.record.take();
    let who = caller_known(app, &tx, req, Some(access.user.clone()))?;
    let p = access.project.clone();
    match who.level_in(&access) {
        Some(level) if level >= need => Ok((p, who, level, record)),
        _ if who.user().is_some() => Err(Error::Forbidden(format!(
            "{} needs {} access to project {project:?}",
            who.name(),
            need
        ))),
        _ => Err(Error::Unauthorized),
    }
}

/// Who makes a change over HTTP, for the history (SPEC 10.3): the
/// caller, from the client's address (a proxy's forwarded address only
/// with `--trust-proxy`: the transport has settled it).
pub(super) fn actor(who: &Caller, req: &Request) -> Actor {
    Actor::caller(&who.actor_name(), req.remote_addr().ip().to_string())
}

/// The history entry of a project's new name or description.
pub(super) fn log_project_update(
    tx: &Tx<'_>,
    by: &Actor,
    p: &Project,
    info: &ProjectInfo,
) -> Result<()> {
    let mut detail = serde_json::Map::new();
    if let Some(n) = info.name.as_ref().filter(|n| **n != p.name) {
        detail.insert("name".into(), json!({"before": p.name, "after": n}));
    }
    if let Some(d) = info.description.as_ref().filter(|d| **d != p.description) {
        detail.insert(
            "description".into(),
            json!({"before": p.description, "after": d}),
        );
    }
    if detail.is_empty() {
        return Ok(());
    }
    tx.log(
        by,
        Some(&p.id),
        "project.update",
        &p.id,
        Value::Object(detail),
    )
}

pub(super) fn read_body(req: &Request) -> Result<Vec<u8>> {
    // The transport has read the body whole and checked its length: one
    // allocation of the right size, not a doubling series.
    let len = req
        .header("Content-Length")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = Vec::with_capacity(len);
    if let Some(mut data) = req.data() {
        data.read_to_end(&mut body)?;
    }
    Ok(body)
}

// ----- project list -----------------------------------------------------

fn project_list(app: &App, req: &Request, q: &Query) -> Result<Response> {
    if q.has("logout") {
        // A browser forgets the credentials of a realm that answers 401
        // (SPEC 10.4: no way to log out before).
        let html = app.pages.render(
            "signed_out",
            &json!({"title": "Signed out", "prefix": app.cfg.prefix}),
        )?;
        return Ok(Response::html(html)
            .with_status_code(401)
            .with_additional_header("WWW-Authenticate", "Basic realm=\"Sumatra Server API\""));
    }
    let rep = choose(req, q, Kind::ProjectList)?;
    app.with_store(|store| {
        let tx = store.read();
        let who = caller(app, &tx, req)?;
        // The Python client sends credentials only when challenged; a browser
        // asks for a login with `?login`; wrong credentials are challenged again.
        let sumatra_client = req.header("Authorization").is_none()
            && negotiate::prefers_vendor(req.header("Accept"));
        let challenge = match &who {
            Caller::User(_) | Caller::Token(..) => false,
            Caller::Anonymous { attempted } => *attempted || sumatra_client || q.has("login"),
        };
        if challenge {
            return Err(Error::Unauthorized);
        }
        let mut projects = tx.list_projects(Some(who.user().map(|u| u.id)))?;
        if who.token().is_some() {
            // A token sees its project and what anyone may.
            let readable = who.readable_projects(&tx)?;
            projects.retain(|p| readable.contains(&p.project.id));
        }
        let base = base_url(app, req);
        if rep.is_html() {
            return Ok(html_response(super::pages::projects_page(
                app, &who, &projects,
            )?));
        }
        let list: Vec<Value> = projects
            .iter()
            .map(|p| {
                json!({
                    "id": p.project.id,
                    "name": p.project.display_name(),
                    "description": p.project.description,
                    "uri": format!("{base}{}/", encode_segment(&p.project.id)),
                    "last_updated": p.last_updated.as_deref().map(crate::record::timefmt::iso_utc),
                })
            })
            .collect();
        Ok(json_response(rep, &Value::Array(list)))
    })
}

// ----- one project ----------------------------------------------------------

fn project_view(
    app: &App,
    req: &Request,
    q: &Query,
    project: &str,
    tagged: Option<&String>,
) -> Result<Response> {
    match q.get("view") {
        None => {}
        Some("files") => return super::provenance::files_view(app, req, q, project),
        Some("trash") => return super::forms::trash_view(app, req, q, project),
        Some("history") => return super::forms::history_view(app, req, q, project),
        Some("tokens") => return super::tokens::tokens_view(app, req, project),
        Some(v) => {
            return Err(Error::bad(format!(
                "view: files, trash, history or tokens, not {v:?}"
            )))
        }
    }
    let rep = choose(req, q, Kind::Project)?;
    let limit = q.number("limit")?;
    let offset = q.number("offset")?.unwrap_or(0);
    app.with_store(|store| {
        let (p, who, level) = authorize(app, store, req, project, Level::Read)?;
        // Searches, formats and comparisons take a share of the handler
        // threads (SPEC 7.6); the plain listing and page do not.
        let share = if is_heavy(rep, q) {
            Some(app.heavy.take()?)
        } else {
            None
        };
        // Whatever reads parameters or dependencies sees every write: the
        // records written since the last search are indexed first.
        let plain = matches!(rep, Rep::Json | Rep::Vendor(_)) && !q.has("q") && !q.has("sort");
        if !plain {
            store.ensure_indexed(&p.id)?;
        }
        let tx = store.read();
        let tags_param: Option<String> = match tagged {
            Some(t) => Some(t.clone()),
            None => q.get("tags").map(String::from),
        };
        let tags: Vec<String> = tags_param
            .as_deref()
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if rep.is_html() {
            let (status, page) = super::pages::project_page(app, &tx, &p, &who, level, &tags, q)?;
            return Ok(html_response(page).with_status_code(status));
        }
        let search = Search::parse(|k| q.get(k))?;
        // Parents and children count in the projects the caller reads.
        let readable = if search.asks_lineage() {
            who.readable_projects(&tx)?
        } else {
            Vec::new()
        };
        let sel = search.selection(&tags, None).reading(Some(&readable));
        let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
        match rep {
            Rep::Csv | Rep::Table => {
                let cols = results::columns_for(&tx, &p.id, &sel, search.columns.as_deref())?;
                // Streamed from a connection of its own, holding the
                // request's share and budget as long as it runs: memory
                // stays flat whatever the number of rows.
                let (db, durability) = (app.cfg.db.clone(), app.cfg.durability);
                let (project, tags, readable) = (p.id.clone(), tags.clone(), readable.clone());
                let budget = crate::deadline::current();
                let body = super::stream::body(move |out| {
                    let _share = share;
                    let mut work = || {
                        let mut store = Store::open_with(&db, OpenMode::Existing, durability)?;
                        store.for_stream()?;
                        let tx = store.read();
                        let sel = search.selection(&tags, None).reading(Some(&readable));
                        if rep == Rep::Csv {
                            results::csv(&tx, &project, &sel, &cols, limit, offset, out)
                        } else {
                            results::table(&tx, &project, &sel, &cols, limit, offset, out)
                        }
                    };
                    match budget {
                        Some(b) => crate::deadline::within(b, work),
                        None => work(),
                    }
                });
                let mut headers = vec![("Content-Type".into(), rep.content_type().into())];
                if rep == Rep::Csv {
                    headers.push(("Content-Disposition".into(), csv_disposition(&p.id).into()));
                }
                return Ok(Response {
                    status_code: 200,
                    headers,
                    data: rouille::ResponseBody::from_reader(body),
                    upgrade: None,
                });
            }
            Rep::Prov | Rep::RoCrate => {
                let most = crate::lineage::runs::MAX_EXPORT_RECORDS as u64 + 1;
                let ids = tx.select_ids(
                    &p.id,
                    &sel,
                    Some(limit.map_or(most, |l| l.min(most))),
                    offset,
                )?;
                let mut said = Vec::new();
                if let Some(t) = &search.text {
                    said.push(format!("matching {t}"));
                }
                if !tags.is_empty() {
                    said.push(format!("tagged {}", tags.join(" or ")));
                }
                let about = super::provenance::About {
                    name: match &search.text {
                        Some(t) => format!("Sumatra records of {}: {t}", p.id),
                        None => format!("Sumatra records of {}", p.id),
                    },
                    description: format!(
                        "The {} records of project {}{}{}, as Sumatra recorded them",
                        ids.len(),
                        p.id,
                        if said.is_empty() { "" } else { " " },
                        said.join(", ")
                    ),
                };
                let projects = Some(vec![p.id.clone()]);
                let g = crate::store::Readable {
                    tx: &tx,
                    projects: projects.clone(),
                };
                let share = match share {
                    Some(s) => s,
                    None => app.heavy.take()?,
                };
                return super::provenance::export(
                    app,
                    req,
                    &g,
                    rep,
                    ids,
                    "the query",
                    about,
                    projects,
                    share,
                    Vec::new(),
                );
            }
            Rep::Svg => {
                let Some((x, y)) = &search.plot else {
                    return Err(Error::bad(
                        "format=svg draws a plot: give plot=X,Y (like plot=params.n,duration)",
                    ));
                };
                let (points, missing) = results::plot_points(&tx, &p.id, &sel, (x, y), |l| {
                    format!("{project_url}{}/", encode_segment(l))
                })?;
                let title = format!("{} records; {missing} without numeric values", points.len());
                let svg = crate::results::plot::svg(&crate::results::plot::Plot {
                    x_name: &x.name(),
                    y_name: &y.name(),
                    points: &points,
                    title: Some(&title),
                });
                return Ok(Response::from_data(rep.content_type(), svg));
            }
            _ => {}
        }
        let asked = !search.is_plain() || limit.is_some() || offset > 0;
        let labels = if search.is_plain() {
            tx.labels(&p.id, &tags, limit, offset)?
        } else {
            tx.select_labels(&p.id, &sel, limit, offset)?
        };
        let base = format!("{}{}/", base_url(app, req), encode_segment(&p.id));
        let records: Vec<String> = labels
            .iter()
            .map(|l| format!("{base}{}/", encode_segment(l)))
            .collect();
        let mut doc = json!({
            "id": p.id, "name": p.display_name(), "description": p.description,
            "records": records, "tags": tags_param, "user": who.name(),
        });
        if who.named_on(&p.id) {
            let access: Vec<String> = tx.access(&p.id)?.into_iter().map(|a| a.username).collect();
            doc["access"] = json!(access);
        }
        if asked {
            // Every match listed: the count is the list's length (the
            // selection is not run a second time to count it).
            let count = if limit.is_none() && offset == 0 {
                labels.len() as i64
            } else {
                tx.select_count(&p.id, &sel)?
            };
            doc["count"] = json!(count);
            doc["query"] = json!(search.text);
        }
        Ok(json_response(rep, &doc))
    })
}

/// Whether a project view asks for more than the plain listing or page:
/// a query, a sort, chosen columns, a plot, a comparison, a text search or
/// a format that reads every match (SPEC 7.6).
fn is_heavy(rep: Rep, q: &Query) -> bool {
    matches!(
        rep,
        Rep::Csv | Rep::Table | Rep::Svg | Rep::Prov | Rep::RoCrate
    ) || ["q", "sort", "columns", "plot", "compare", "search"]
        .iter()
        .any(|k| q.get(k).is_some_and(|v| !v.trim().is_empty()))
}

/// `Content-Disposition` of a CSV download: an ASCII name for every
/// client, and the project's own name in UTF-8 (RFC 6266 `filename*`).
fn csv_disposition(project: &str) -> String {
    let ascii: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "inline; filename=\"{ascii}.csv\"; filename*=UTF-8''{}.csv",
        encode_segment(project)
    )
}

#[derive(Debug, Default)]
pub(super) struct ProjectInfo {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
}

fn parse_project_info(body: &[u8]) -> Result<ProjectInfo> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ProjectInfo::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(Error::bad("the request body must be a JSON object like {\"name\": \"...\", \"description\": \"...\"}"));
    };
    let field = |k: &str| -> Result<Option<String>> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= 10_000 => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(Error::bad(format!("{k}: longer than 10000 bytes"))),
            Some(_) => Err(Error::bad(format!("{k}: expected a string"))),
        }
    };
    Ok(ProjectInfo {
        name: field("name")?,
        description: field("description")?,
    })
}

fn put_project(app: &App, req: &Request, project: &str) -> Result<Response> {
    check_project_id(project).map_err(Error::BadRequest)?;
    app.with_store(|store| {
        let exists = store.read().project(project)?.is_some();
        if exists {
            let (p, who, _) = authorize(app, store, req, project, Level::Admin)?;
            let info = parse_project_info(&read_body(req)?)?;
            let by = actor(&who, req);
            store.write(|tx| {
                tx.update_project(project, info.name.as_deref(), info.description.as_deref())?;
                log_project_update(tx, &by, &p, &info)
            })?;
            return Ok(Response::text("").with_status_code(200));
        }
        let who = caller(app, &store.read(), req)?;
        let Some(user) = who.user() else {
            return Err(Error::Unauthorized);
        };
        if who.token().is_some() {
            return Err(Error::Forbidden(
                "a token cannot create projects: log in with the password".into(),
            ));
        }
        let info = parse_project_info(&read_body(req)?)?;
        store.write(|tx| {
            tx.create_project(
                project,
                info.name.as_deref().unwrap_or(""),
                info.description.as_deref().unwrap_or(""),
            )?;
            tx.grant(&user.username, project, Level::Admin)?;
            let by = actor(&who, req);
            tx.log(
                &by,
                Some(project),
                "project.create",
                project,
                json!({"name": info.name, "description": info.description}),
            )?;
            tx.log(
                &by,
                Some(project),
                "access.grant",
                &user.username,
                json!({"level": "admin"}),
            )
        })?;
        Ok(Response::text("").with_status_code(201))
    })
}

// ----- permissions ----------------------------------------------------------

fn permissions_doc(tx: &Tx<'_>, p: &Project) -> Result<Value> {
    let access = tx.access(&p.id)?;
    Ok(json!({
        "id": p.id, "name": p.display_name(),
        "access": access.iter().map(|a| a.username.clone()).collect::<Vec<_>>(),
        "permissions": access.iter().map(|a| json!({"user": a.username, "level": a.level.as_str()})).collect::<Vec<_>>(),
    }))
}

fn permissions_view(app: &App, req: &Request, q: &Query, project: &str) -> Result<Response> {
    let rep = choose(req, q, Kind::Permissions)?;
    app.with_store(|store| {
        let (p, who, level) = authorize(app, store, req, project, Level::Read)?;
        // Who has access is for users with access, never for anonymous
        // visitors of a public project (SPEC 2.7).
        if !who.named_on(&p.id) {
            return Err(match who.token() {
                Some(_) => {
                    Error::Forbidden("a token shows who has access only on its own project".into())
                }
                None => Error::Unauthorized,
            });
        }
        let tx = store.read();
        let doc = permissions_doc(&tx, &p)?;
        if rep.is_html() {
            return Ok(html_response(super::pages::permissions_page(
                app, &p, &who, level, &doc,
            )?));
        }
        Ok(json_response(rep, &doc))
    })
}

fn post_permission(app: &App, req: &Request, project: &str) -> Result<Response> {
    app.with_store(|store| {
        let (p, who, _) = authorize(app, store, req, project, Level::Admin)?;
        let is_json = form_kind(req)? == FormKind::Json;
        let body = read_body(req)?;
        let (user, level) = if is_json {
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| Error::bad(format!("the request body is not valid JSON: {e}")))?;
            let user = match v.get("user") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(Error::bad("user: expected a user name")),
            };
            let level = match v.get("level") {
                None | Some(Value::Null) => "write".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(Error::bad("level: expected read, write, admin or none")),
            };
            (user, level)
        } else {
            let text = std::str::from_utf8(&body)
                .map_err(|_| Error::bad("the form is not valid UTF-8"))?;
            let form = Query::parse(text)?;
            let user = form
                .get("user")
                .filter(|u| !u.is_empty())
                .ok_or_else(|| Error::bad("user: missing"))?
                .to_string();
            (
                user,
                form.get("level")
                    .filter(|l| !l.is_empty())
                    .unwrap_or("write")
                    .to_string(),
            )
        };
        let tx = store.read();
        let target = match tx.user(&user)? {
            Some(u) => u,
            None => match user.parse::<i64>() {
                Ok(id) => tx
                    .user_by_id(id)?
                    .ok_or_else(|| Error::bad(format!("user: no user with id {id}")))?,
                Err(_) => return Err(Error::bad(format!("user: no user {user:?}"))),
            },
        };
        let level = match level.as_str() {
            "none" => None,
            other => Some(Level::parse(other)?),
        };
        store.write(|tx| {
            // A project keeps an admin (SPEC 2.7): checked inside the write,
            // with the project locked, so that two admins removing each
            // other cannot both succeed (on any number of processes).
            tx.lock_project(&p.id)?;
            if level < Some(Level::Admin) && tx.sole_admin_of(&target.username)?.contains(&p.id) {
                return Err(Error::Conflict(format!(
                    "{} is the only admin of project {:?}; make someone else admin first",
                    target.username, p.id
                )));
            }
            let by = actor(&who, req);
            match level {
                None => {
                    let ended = tx.revoke(&target.username, &p.id)?;
                    tx.log(
                        &by,
                        Some(&p.id),
                        "access.revoke",
                        &target.username,
                        crate::store::tokens_ended(&ended),
                    )
                }
                Some(level) => {
                    if tx.grant(&target.username, &p.id, level)? {
                        tx.log(
                            &by,
                            Some(&p.id),
                            "access.grant",
                            &target.username,
                            json!({"level": level.as_str()}),
                        )?;
                    }
                    Ok(())
                }
            }
        })?;
        if is_json {
            let doc = permissions_doc(&store.read(), &p)?;
            Ok(json_response(Rep::Json, &doc).with_status_code(201))
        } else {
            let to = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
            Ok(Response::empty_204()
                .with_status_code(302)
                .with_additional_header("Location", to))
        }
    })
}

/// A page's form POST takes a urlencoded form and nothing else (SPEC 2.7).
pub(super) fn require_form(req: &Request) -> Result<()> {
    match form_kind(req) {
        Ok(FormKind::Form) => Ok(()),
        _ => Err(Error::UnsupportedMediaType(
            "the pages' forms are application/x-www-form-urlencoded".into(),
        )),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum FormKind {
    Json,
    Form,
}

/// What a permissions POST carries, by its Content-Type alone: a JSON body
/// only with a JSON type, a form only as a URL-encoded form (SPEC 2.7: a
/// page elsewhere can send `text/plain` without asking the browser first).
fn form_kind(req: &Request) -> Result<FormKind> {
    let given = req.header("Content-Type").unwrap_or("");
    let media = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
    {
        Ok(FormKind::Json)
    } else if media == "application/x-www-form-urlencoded" {
        Ok(FormKind::Form)
    } else {
        Err(Error::UnsupportedMediaType(format!(
            "a permissions POST takes application/json or application/x-www-form-urlencoded, not {:?}",
            given.chars().take(100).collect::<String>()
        )))
    }
}

// ----- records --------------------------------------------------------------

fn record_view(
    app: &App,
    req: &Request,
    q: &Query,
    project: &str,
    label: Option<&String>,
) -> Result<Response> {
    if let Some(l) = label {
        check_label(l).map_err(Error::BadRequest)?;
    }
    let rep = choose(req, q, Kind::Record)?;
    app.with_store(|store| {
        let (p, who, level, record) = authorize_reading(
            app,
            store,
            req,
            project,
            Level::Read,
            label.map(String::as_str),
        )?;
        let found = match label {
            Some(l) => record.map(|body| (l.clone(), body)),
            None => store.read().last_record_json(&p.id)?,
        };
        let Some((label, body)) = found else {
            return Err(Error::not_found(match label {
                Some(l) => format!("no record {l:?} in project {:?}", p.id),
                None => format!("project {:?} has no records", p.id),
            }));
        };
        if matches!(rep, Rep::Prov | Rep::RoCrate) {
            return super::provenance::record_export(app, req, store, rep, &p, &label);
        }
        let tx = store.read();
        if rep.is_html() {
            let provenance = super::provenance::neighbours(app, &tx, req, &p.id, &label)?;
            return Ok(html_response(super::pages::record_page(
                app, &tx, &p, &who, &label, &body, provenance, level,
            )?));
        }
        let out = crate::store::with_project_id(&body, &p.id);
        Ok(Response::from_data(rep.content_type(), out))
    })
}

fn put_record(app: &App, req: &Request, project: &str, label: &str) -> Result<Response> {
    check_label(label).map_err(Error::BadRequest)?;
    app.with_store(|store| {
        let (_, who, _) = authorize(app, store, req, project, Level::Write)?;
        let by = actor(&who, req);
        let body = read_body(req)?;
        let (project, label) = (project.to_string(), label.to_string());
        // Concurrent PUTs share one commit (and one fsync): see store::group.
        let outcome = store.write_grouped(move |tx| {
            tx.put_record(&project, &label, &by, |old| {
                record::decode_put(&body, &label, old)
            })
        })?;
        Ok(match outcome {
            PutOutcome::Created => Response::text("Created").with_status_code(201),
            PutOutcome::Updated => Response::text("").with_status_code(200),
        })
    })
}

fn delete_record(app: &App, req: &Request, project: &str, label: &str) -> Result<Response> {
    check_label(label).map_err(Error::BadRequest)?;
    app.with_store(|store| {
        let (_, who, _) = authorize(app, store, req, project, Level::Write)?;
        let by = actor(&who, req);
        if store.write(|tx| tx.delete_record(project, label, &by))? {
            Ok(Response::empty_204())
        } else {
            Err(Error::not_found(format!(
                "no record {label:?} in project {project:?}"
            )))
        }
    })
}

fn delete_tag(app: &App, req: &Request, project: &str, tag: &str) -> Result<Response> {
    app.with_store(|store| {
        let (_, who, _) = authorize(app, store, req, project, Level::Write)?;
        let by = actor(&who, req);
        let n = store.write(|tx| tx.delete_by_tag(project, tag, &by))?;
        Ok(Response::text(n.to_string()))
    })
}
