//! The HTTP side: routing, authentication, negotiation, the API handlers and
//! the HTML pages, over the transport in `server`.
//!
//! Handlers never write SQL (they call the store) and return `Result`s; every
//! error becomes a response in one place, [`App::error_response`].

mod api;
pub mod auth;
mod forms;
mod health;
mod html;
pub mod metrics;
mod negotiate;
mod pages;
mod provenance;
pub mod server;
mod stream;
mod tokens;

use crate::error::{Error, Result};
use crate::store::{Durability, OpenMode, Store};
use rouille::{Request, Response};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use negotiate::{Kind, Rep};

#[derive(Debug, Clone)]
pub struct Config {
    /// Starts and ends with `/`.
    pub prefix: String,
    pub db: crate::store::Location,
    pub durability: Durability,
    pub throttle: auth::ThrottlePolicy,
    /// Host to use in absolute URLs when a request has no Host header.
    pub fallback_host: String,
    /// Handler threads (a quarter of them may wait for password checks).
    pub workers: usize,
    /// Days deleted records stay in the trash (said on the pages).
    pub trash_days: u32,
}

pub struct App {
    cfg: Config,
    auth: auth::Authenticator,
    pages: html::Pages,
    /// Searches, formats and streams running at once (SPEC 7.6).
    heavy: Arc<Share>,
    /// The database checks of `P.health`, shared by probes that overlap.
    checks: Arc<health::Checks>,
}

/// A bounded share of the handler threads: at most `most` holders at once;
/// past that, 503 with `Retry-After` at once rather than a wait.
pub(crate) struct Share {
    held: AtomicUsize,
    most: usize,
}

/// One place in a [`Share`], given back when dropped (a stream holds it
/// until its last byte).
pub(crate) struct Place(Arc<Share>);

impl Share {
    fn new(most: usize) -> Arc<Share> {
        Arc::new(Share {
            held: AtomicUsize::new(0),
            most: most.max(1),
        })
    }

    fn take(self: &Arc<Self>) -> Result<Place> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.most).then_some(n + 1)
            })
            .map_err(|_| Error::Crowded(1))?;
        Ok(Place(self.clone()))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// One connection per handler thread.
    static STORE: RefCell<Option<Store>> = const { RefCell::new(None) };
}

/// The routes under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ProjectList,
    Project(String),
    Permissions(String),
    Last(String),
    Tag(String, String),
    Tagged(String, String),
    Record(String, String),
    /// A record's lineage (SPEC 9.3).
    Lineage(String, String),
    Stylesheet,
    /// `P.health` (SPEC 11.2): whether the database answers.
    Health,
}

impl Route {
    /// The route's template under the prefix (metrics, logs).
    pub fn template(&self) -> &'static str {
        match self {
            Route::ProjectList => "",
            Route::Project(_) => "{project}/",
            Route::Permissions(_) => "{project}/permissions/",
            Route::Last(_) => "{project}/last/",
            Route::Tag(..) => "{project}/tag/{tag}/",
            Route::Tagged(..) => "{project}/tagged/{tag}/",
            Route::Record(..) => "{project}/{label}/",
            Route::Lineage(..) => "{project}/{label}/lineage/",
            Route::Stylesheet => ".static/style.css",
            Route::Health => ".health",
        }
    }

    /// Methods the route supports, for `Allow`.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::ProjectList
            | Route::Last(_)
            | Route::Stylesheet
            | Route::Lineage(..)
            | Route::Health => "GET, HEAD, OPTIONS",
            Route::Project(_) => "GET, PUT, POST, HEAD, OPTIONS",
            Route::Permissions(_) => "GET, POST, HEAD, OPTIONS",
            Route::Tag(..) => "DELETE, OPTIONS",
            Route::Tagged(..) => "GET, DELETE, HEAD, OPTIONS",
            Route::Record(..) => "GET, PUT, POST, DELETE, HEAD, OPTIONS",
        }
    }
}

/// Normalises `--prefix` to `/.../`.
pub fn normalise_prefix(p: &str) -> Result<String> {
    let trimmed = p.trim_matches('/');
    if trimmed
        .chars()
        .any(|c| c.is_whitespace() || c == '?' || c == '#' || c == '%')
    {
        return Err(Error::bad(format!("{p:?} is not a usable URL prefix")));
    }
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        format!("/{trimmed}/")
    })
}

fn decode_segment(s: &str) -> Result<String> {
    percent_decode(s).ok_or_else(|| {
        Error::bad(format!(
            "the URL segment {s:?} is not valid percent-encoded UTF-8"
        ))
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a request path leads.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Route(Route),
    /// The same path with a trailing slash exists.
    AddSlash,
    NotFound,
}

fn resolve(prefix: &str, path: &str) -> Result<Target> {
    let Some(rest) = path.strip_prefix(prefix) else {
        if format!("{path}/") == prefix {
            return Ok(Target::AddSlash);
        }
        return Ok(Target::NotFound);
    };
    if rest.starts_with('/') {
        return Ok(Target::NotFound);
    }
    if rest == ".static/style.css" {
        return Ok(Target::Route(Route::Stylesheet));
    }
    if rest == ".health" {
        return Ok(Target::Route(Route::Health));
    }
    let (rest, slash) = match rest.strip_suffix('/') {
        Some(r) => (r, true),
        None => (rest, rest.is_empty()),
    };
    let segments: Vec<String> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').map(decode_segment).collect::<Result<_>>()?
    };
    if segments.iter().any(String::is_empty) {
        return Ok(Target::NotFound);
    }
    let route = match segments.as_slice() {
        [] => Route::ProjectList,
        [p] => Route::Project(p.clone()),
        [p, s] if s == "permissions" => Route::Permissions(p.clone()),
        [p, s] if s == "last" => Route::Last(p.clone()),
        [p, l] => Route::Record(p.clone(), l.clone()),
        [p, s, t] if s == "tag" => Route::Tag(p.clone(), t.clone()),
        [p, s, t] if s == "tagged" => Route::Tagged(p.clone(), t.clone()),
        [p, l, s] if s == "lineage" => Route::Lineage(p.clone(), l.clone()),
        _ => return Ok(Target::NotFound),
    };
    Ok(if slash {
        Target::Route(route)
    } else {
        Target::AddSlash
    })
}

impl server::Service for App {
    fn admit(&self, head: &Request) -> Option<Response> {
        App::admit(self, head)
    }
    fn handle(&self, req: &Request) -> Response {
        App::handle(self, req)
    }
    fn route(&self, url: &str) -> String {
        let path = url.split('?').next().unwrap_or(url);
        let p = &self.cfg.prefix;
        match resolve(p, path) {
            Ok(Target::Route(r)) => format!("{p}{}", r.template()),
            Ok(Target::AddSlash) => "(add a slash)".into(),
            Ok(Target::NotFound) | Err(_) => "(none)".into(),
        }
    }
}

thread_local! {
    /// Who the request on this handler thread was found to be, for the log.
    static CALLER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Notes who is calling (the user, or which token of theirs).
fn note_caller(name: String) {
    CALLER.with(|c| *c.borrow_mut() = Some(name));
}

/// Who the last request on this thread was found to be (and forgets it).
pub(crate) fn take_caller_name() -> Option<String> {
    CALLER.with(|c| c.borrow_mut().take())
}

/// The headers every answer carries (`server::SECURITY_HEADERS`).
fn finish(resp: Response) -> Response {
    server::SECURITY_HEADERS
        .iter()
        .fold(resp, |r, (k, v)| r.with_additional_header(*k, *v))
}

/// `https` behind our own TLS (the transport says so) or a proxy that says
/// so with `X-Forwarded-Proto`; `http` otherwise.
pub fn scheme(req: &Request) -> &'static str {
    match req.header("X-Forwarded-Proto") {
        Some(p) if p.trim().eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// `scheme://host:port` of a URL or an `Origin`, lower-cased, with the
/// scheme's default port made explicit; `None` for anything else
/// (including the `null` origin of sandboxed pages).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    authority_origin(&scheme, authority, default_port)
}

fn authority_origin(scheme: &str, authority: &str, default_port: &str) -> Option<String> {
    let (host, port) = match authority.rfind(':') {
        // `[::1]` has colons of its own: a port comes after the bracket.
        Some(i) if !authority[i..].contains(']') => (&authority[..i], &authority[i + 1..]),
        _ => (authority, ""),
    };
    let port = if port.is_empty() { default_port } else { port };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

/// The server's own origin, as this request reached it.
fn own_origin(req: &Request) -> Option<String> {
    let scheme = scheme(req);
    let default_port = if scheme == "https" { "443" } else { "80" };
    authority_origin(scheme, req.header("Host")?.trim(), default_port)
}

/// SPEC 2.7: a request that changes something, sent by a page of another
/// origin (its `Origin`, or without one its `Referer`, names another
/// scheme, host or port), is refused. Requests with neither header (the
/// Python client, curl) pass.
fn check_same_origin(req: &Request) -> Result<()> {
    if matches!(req.method(), "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    let Some(claimed) = req.header("Origin").or_else(|| req.header("Referer")) else {
        return Ok(());
    };
    match (origin_of(claimed), own_origin(req)) {
        (Some(theirs), Some(ours)) if theirs == ours => Ok(()),
        _ => Err(Error::Forbidden(format!(
            "cross-site request refused: it comes from {:?}, not from this server's own pages",
            claimed.chars().take(200).collect::<String>()
        ))),
    }
}

impl App {
    pub fn new(cfg: Config) -> Result<App> {
        Ok(App {
            auth: auth::Authenticator::new(cfg.throttle.clone(), cfg.workers),
            pages: html::Pages::new()?,
            // Half the handler threads: with a quarter for password checks,
            // light requests always find one.
            heavy: Share::new(cfg.workers / 2),
            checks: Arc::default(),
            cfg,
        })
    }

    /// Writes the tokens' last uses every few seconds (SPEC 11.1: at most
    /// once a minute per token), on a thread and a connection of its own,
    /// off every request's path; uses that could not be written are said
    /// and kept for the next try.
    pub fn write_token_uses(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let Some(app) = app.upgrade() else { return };
            let uses = app.auth.take_token_uses();
            if uses.is_empty() {
                continue;
            }
            let written = Store::open_with(&app.cfg.db, OpenMode::Existing, app.cfg.durability)
                .and_then(|mut store| store.write(|tx| tx.note_token_uses(&uses)));
            if let Err(e) = written {
                eprintln!(
                    "sumatra-server: tokens' last use not written ({e}); trying again shortly"
                );
                app.auth.give_back_token_uses(uses);
            }
        });
    }

    pub fn handle(&self, req: &Request) -> Response {
        let mut answer = self.dispatch(req);
        // A read that met a connection broken by a database restart is
        // tried once more (on a connection checked first), so that the
        // restart costs no client an error (SPEC 11.4).
        if matches!(req.method(), "GET" | "HEAD")
            && answer.as_ref().is_err_and(crate::store::is_connection_lost)
        {
            answer = self.dispatch(req);
        }
        let resp = answer.unwrap_or_else(|e| self.error_response(req, &e));
        finish(resp)
    }

    /// Called with a request's head before its body is read: the answer
    /// when the request will be refused whatever its body (cross-site,
    /// 401, 403, 404, 405, 415), so that nobody makes the server wait for
    /// and hold a body it will throw away (SPEC 2.7). `None`: read the body
    /// and call [`App::handle`].
    pub fn admit(&self, head: &Request) -> Option<Response> {
        let verdict = (|| {
            let raw = head.raw_url();
            let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
            match resolve(&self.cfg.prefix, path)? {
                Target::Route(route) if head.method() != "OPTIONS" => {
                    check_same_origin(head)?;
                    api::admit(self, head, &route, query)
                }
                // Answered without looking at the body.
                _ => Ok(false),
            }
        })();
        match verdict {
            Ok(true) => None,
            Ok(false) => Some(self.handle(head)),
            Err(e) => Some(finish(self.error_response(head, &e))),
        }
    }

    fn dispatch(&self, req: &Request) -> Result<Response> {
        let raw = req.raw_url();
        let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
        match resolve(&self.cfg.prefix, path)? {
            Target::NotFound => Err(Error::not_found(format!("nothing at {path}"))),
            Target::AddSlash => {
                let to = if query.is_empty() {
                    format!("{path}/")
                } else {
                    format!("{path}/?{query}")
                };
                let status = if matches!(req.method(), "GET" | "HEAD") {
                    301
                } else {
                    308
                };
                Ok(Response::empty_204()
                    .with_status_code(status)
                    .with_additional_header("Location", to))
            }
            Target::Route(route) => {
                if req.method() == "OPTIONS" {
                    return Ok(Response::text("").with_additional_header("Allow", route.allow()));
                }
                check_same_origin(req)?;
                api::handle(self, req, &route, query)
            }
        }
    }

    /// Runs `f` with this thread's connection, opening it on first use.
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        STORE.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(Store::open_with(
                    &self.cfg.db,
                    OpenMode::Existing,
                    self.cfg.durability,
                )?);
            }
            let store = slot.as_mut().expect("opened above");
            let out = f(store);
            // Between requests a PostgreSQL connection goes back to the
            // pool (several processes share the database's connections).
            store.release();
            out
        })
    }

    /// Where an error page leads back to: the project of a URL below a
    /// project's page, else the list of projects.
    fn way_back(&self, req: &Request) -> (String, String) {
        let prefix = &self.cfg.prefix;
        let path = req.url();
        // A page under a project leads back to it; the project's own page
        // (perhaps the missing one) to the list.
        let project = path
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.split_once('/'))
            .filter(|(p, under)| !under.is_empty() && crate::record::check_project_id(p).is_ok())
            .map(|(p, _)| p);
        match project {
            Some(p) => (
                format!("{prefix}{}/", encode_segment(p)),
                format!("project {p}"),
            ),
            None => (prefix.clone(), "the projects".into()),
        }
    }

    /// The one place where errors become statuses.
    fn error_response(&self, req: &Request, e: &Error) -> Response {
        let (status, message) = match e {
            Error::BadRequest(_) => (400, e.to_string()),
            Error::Unauthorized => (401, "authentication required".to_string()),
            Error::Forbidden(_) => (403, e.to_string()),
            Error::NotFound(_) => (404, e.to_string()),
            Error::MethodNotAllowed(_) => (405, e.to_string()),
            Error::NotAcceptable(_) => (406, e.to_string()),
            Error::Conflict(_) => (409, e.to_string()),
            Error::TooManyRequests(_) => (429, e.to_string()),
            Error::UnsupportedMediaType(_) => (415, e.to_string()),
            Error::Busy(_) | Error::Crowded(_) | Error::Stopped(_) => (503, e.to_string()),
            Error::Unavailable(_) => {
                eprintln!(
                    "sumatra-server: database unavailable on {} {}: {e}",
                    req.method(),
                    req.raw_url()
                );
                (503, e.to_string())
            }
            Error::Database(_) | Error::Sqlite(_) | Error::Io(_) => {
                eprintln!(
                    "sumatra-server: internal error on {} {}: {e}",
                    req.method(),
                    req.raw_url()
                );
                (
                    500,
                    "internal error; the server log has the details".to_string(),
                )
            }
        };
        let html =
            negotiate::choose(Kind::Project, None, req.header("Accept")).is_ok_and(Rep::is_html);
        let mut resp = if html {
            let user = self.auth.verified_name(req.header("Authorization"));
            let (back, name) = self.way_back(req);
            Response::html(self.pages.error(
                status,
                &message,
                &self.cfg.prefix,
                user.as_deref(),
                (&back, &name),
            ))
            .with_status_code(status)
        } else {
            Response::from_data(
                "application/json; charset=utf-8",
                serde_json::json!({ "error": message }).to_string(),
            )
            .with_status_code(status)
        };
        match e {
            Error::Unauthorized => {
                resp = resp.with_additional_header(
                    "WWW-Authenticate",
                    "Basic realm=\"Sumatra Server API\"",
                );
            }
            Error::MethodNotAllowed(allow) => resp = resp.with_additional_header("Allow", *allow),
            Error::Stopped(_) => resp = resp.with_additional_header("Retry-After", "10"),
            Error::TooManyRequests(secs) | Error::Busy(secs) | Error::Crowded(secs) => {
                resp = resp.with_additional_header("Retry-After", secs.to_string())
            }
            Error::Unavailable(_) => resp = resp.with_additional_header("Retry-After", "5"),
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| resolve("/records/", p).unwrap();
        assert_eq!(r("/records/"), Target::Route(Route::ProjectList));
        assert_eq!(r("/records"), Target::AddSlash);
        assert_eq!(r("/records/P/"), Target::Route(Route::Project("P".into())));
        assert_eq!(r("/records/P"), Target::AddSlash);
        assert_eq!(
            r("/records/P/last/"),
            Target::Route(Route::Last("P".into()))
        );
        assert_eq!(
            r("/records/P/permissions/"),
            Target::Route(Route::Permissions("P".into()))
        );
        assert_eq!(
            r("/records/P/a%7Cb/"),
            Target::Route(Route::Record("P".into(), "a|b".into()))
        );
        assert_eq!(
            r("/records/P/tag/x%2Fy/"),
            Target::Route(Route::Tag("P".into(), "x/y".into()))
        );
        assert_eq!(
            r("/records/P/tagged/t/"),
            Target::Route(Route::Tagged("P".into(), "t".into()))
        );
        assert_eq!(r("/records/P/a/b/c/"), Target::NotFound);
        assert_eq!(r("/records//"), Target::NotFound);
        assert_eq!(r("/other/"), Target::NotFound);
        assert!(resolve("/records/", "/records/%ff/").is_err());
        assert_eq!(
            resolve("/", "/P/").unwrap(),
            Target::Route(Route::Project("P".into()))
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        for (url, want) in [
            ("http://Example.org", Some("http://example.org:80")),
            (
                "https://u:p@example.org:443/x?y#z",
                Some("https://example.org:443"),
            ),
            ("http://[::1]:8000/records/", Some("http://[::1]:8000")),
            ("http://[::1]/", Some("http://[::1]:80")),
            ("null", None),
            ("ftp://example.org", None),
            ("http://example.org:80x", None),
            ("http:///path", None),
        ] {
            assert_eq!(origin_of(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn prefixes_and_segments() {
        assert_eq!(normalise_prefix("records").unwrap(), "/records/");
        assert_eq!(normalise_prefix("/").unwrap(), "/");
        assert_eq!(normalise_prefix("/a/b/").unwrap(), "/a/b/");
        assert!(normalise_prefix("/a b/").is_err());
        assert_eq!(encode_segment("a|b é"), "a%7Cb%20%C3%A9");
    }
}
