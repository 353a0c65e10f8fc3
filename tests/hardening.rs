//! What a hostile web page, a login flood and careless files broke
//! (SPEC 2.7), each pinned over a real socket against the real binary.

use crate::util::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
sqlite_only! {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::Command;
}
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// alice administers the private project Priv (one record, tagged t) and
/// the public project Pub; reader may read both; bob has no access.
struct Env {
    _db: TestDb,
    s: Server,
    alice: String,
}

fn env(extra: &[&str]) -> Env {
    let db = TestDb::new();
    for u in ["alice", "reader", "bob", "mallory"] {
        db.useradd(u, &format!("pw-{u}"));
    }
    for p in ["Priv", "Pub"] {
        db.ok(&["grant", "alice", p, "--level", "admin"]);
        db.ok(&["grant", "reader", p, "--level", "read"]);
    }
    db.ok(&["grant", "anonymous", "Pub"]);
    let s = Server::start(&db, extra);
    let alice = basic("alice", "pw-alice");
    let r = Client::new(Some(alice.clone()))
        .put_json(&s.url("Priv/rec/"), &full_record("rec", "r", &["t"]))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    Env { _db: db, s, alice }
}

impl Env {
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut all = vec![("Authorization", self.alice.as_str())];
        all.extend_from_slice(headers);
        request(method, &self.s.url(path), &all, body)
    }
    fn anonymous_status(&self, path: &str) -> u16 {
        request(
            "GET",
            &self.s.url(path),
            &[("Accept", "application/json")],
            None,
        )
        .status
    }
    fn permissions(&self, project: &str) -> Value {
        self.send("GET", &format!("{project}/permissions/"), &[], None)
            .json()["permissions"]
            .clone()
    }
}

// ----- cross-site requests -------------------------------------------------

#[test]
fn csrf_a_page_elsewhere_cannot_make_a_private_project_public() {
    let e = env(&[]);
    let evil = [("Origin", "https://evil.example"), FORM];
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &evil,
        Some(b"user=anonymous&level=read"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("cross-site request refused"), "{}", r.body);
    assert_eq!(e.anonymous_status("Priv/"), 401, "Priv stayed private");
    // Without an Origin, a Referer from elsewhere counts; so does the
    // `null` origin of sandboxed frames and another port of the same host.
    let host_port_elsewhere = format!("{}1/", e.s.origin());
    for (header, value) in [
        ("Referer", "https://evil.example/page.html"),
        ("Origin", "null"),
        ("Origin", host_port_elsewhere.as_str()),
        ("Origin", &e.s.origin().replace("http://", "https://")),
    ] {
        let r = e.send(
            "POST",
            "Priv/permissions/",
            &[(header, value), FORM],
            Some(b"user=anonymous&level=read"),
        );
        assert_eq!(r.status, 403, "{header}: {value}: {}", r.body);
    }
    assert_eq!(e.anonymous_status("Priv/"), 401);
    // JSON smuggled in as text/plain (which a page may send without asking
    // the browser first) is refused, not read.
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[("Content-Type", "text/plain")],
        Some(br#"{"user":"mallory","level":"admin"}"#),
    );
    assert_eq!(r.status, 415, "{}", r.body);
    assert!(r.body.contains("application/json"), "{}", r.body);
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[],
        Some(b"user=mallory&level=admin"),
    );
    assert_eq!(r.status, 415, "no Content-Type: {}", r.body);
    assert_eq!(
        e.permissions("Priv"),
        json!([{"user": "alice", "level": "admin"}, {"user": "reader", "level": "read"}])
    );
    // The server's own pages (same origin), and callers that send neither
    // header (the Python client, curl), still grant.
    let own = e.s.origin();
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[("Origin", own.as_str()), FORM],
        Some(b"user=bob&level=read"),
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let referer = e.s.url("Priv/permissions/");
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[("Referer", referer.as_str()), JSON],
        Some(br#"{"user": "bob", "level": "write"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[(
            "Content-Type",
            "application/vnd.sumatra.permissions-v4+json; charset=utf-8",
        )],
        Some(br#"{"user": "bob", "level": "read"}"#),
    );
    assert_eq!(r.status, 201, "a +json type: {}", r.body);
    assert_eq!(e.anonymous_status("Priv/"), 401);
}

#[test]
fn csrf_cross_origin_puts_and_deletes_change_nothing() {
    let e = env(&[]);
    let evil = ("Origin", "http://evil.example");
    let body = serde_json::to_vec(&full_record("new", "planted", &[])).unwrap();
    let r = e.send("PUT", "Priv/new/", &[evil], Some(&body));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = e.send(
        "PUT",
        "Priv/",
        &[evil],
        Some(br#"{"description": "defaced"}"#),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = e.send("PUT", "Planted/", &[evil], Some(b"{}"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(e.send("DELETE", "Priv/rec/", &[evil], None).status, 403);
    assert_eq!(e.send("DELETE", "Priv/tag/t/", &[evil], None).status, 403);
    let get = |path: &str| e.send("GET", path, &[("Accept", "application/json")], None);
    assert_eq!(get("Priv/new/").status, 404);
    assert_eq!(get("Planted/").status, 404);
    assert_eq!(get("Priv/rec/").status, 200);
    assert_eq!(get("Priv/").json()["description"], "");
    // Behind a TLS proxy the origin is https: the proxy says so.
    let host = e.s.addr();
    let proxied_origin = format!("https://{host}");
    let r = e.send(
        "DELETE",
        "Priv/rec/",
        &[
            ("Origin", proxied_origin.as_str()),
            ("X-Forwarded-Proto", "http"),
        ],
        None,
    );
    assert_eq!(r.status, 403, "https page, plain request: {}", r.body);
    let r = e.send(
        "DELETE",
        "Priv/rec/",
        &[
            ("Origin", proxied_origin.as_str()),
            ("X-Forwarded-Proto", "https"),
        ],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
}

#[test]
fn framing_html_answers_forbid_framing_and_plain_http_sends_no_hsts() {
    let e = env(&[]);
    for (path, accept) in [
        ("Priv/", "text/html"),
        ("Priv/", "application/json"),
        ("", "text/html"),
    ] {
        let r = e.send("GET", path, &[("Accept", accept)], None);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path} {accept}");
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(r.header("strict-transport-security"), None);
    }
    // An error page too.
    let r = request("GET", &e.s.url("Priv/"), &[("Accept", "text/html")], None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

// ----- who sees whom ----------------------------------------------------------

#[test]
fn anonymous_visitors_of_a_public_project_see_no_user_names() {
    let e = env(&[]);
    let r = request(
        "GET",
        &e.s.url("Pub/permissions/"),
        &[("Accept", "application/json")],
        None,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"Sumatra Server API\"")
    );
    let r = request(
        "GET",
        &e.s.url("Pub/permissions/"),
        &[("Accept", "text/html")],
        None,
    );
    assert_eq!(r.status, 401);
    let page = request("GET", &e.s.url("Pub/"), &[("Accept", "text/html")], None);
    assert_eq!(page.status, 200);
    for name in ["alice", "reader", "Access:"] {
        assert!(!page.body.contains(name), "anonymous page shows {name:?}");
    }
    // Users with access still see who else has it.
    let page = e.send("GET", "Pub/", &[("Accept", "text/html")], None);
    assert!(page.body.contains("alice (admin)") && page.body.contains("reader (read)"));
    let perms = e.send("GET", "Pub/permissions/", &[("Accept", "text/html")], None);
    assert_eq!(perms.status, 200);
    // The grant form asks for a name; it lists no accounts (bob, mallory).
    assert!(perms.body.contains("name=\"user\""));
    assert!(!perms.body.contains("mallory") && !perms.body.contains("bob"));
}

// ----- a project keeps an admin -----------------------------------------------

#[test]
fn last_admin_cannot_be_removed_over_http() {
    let e = env(&[]);
    for body in [
        &br#"{"user": "alice", "level": "read"}"#[..],
        br#"{"user": "alice", "level": "write"}"#,
        br#"{"user": "alice", "level": "none"}"#,
    ] {
        let r = e.send("POST", "Priv/permissions/", &[JSON], Some(body));
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(r.body.contains("only admin of project"), "{}", r.body);
    }
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[FORM, ("Accept", "text/html")],
        Some(b"user=alice&level=none"),
    );
    assert_eq!(r.status, 409);
    assert!(
        r.body.contains("make someone else admin first"),
        "{}",
        r.body
    );
    assert_eq!(
        e.permissions("Priv")[0],
        json!({"user": "alice", "level": "admin"})
    );
    // With a second admin, alice may step down, and then bob is the last.
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[JSON],
        Some(br#"{"user": "bob", "level": "admin"}"#),
    );
    assert_eq!(r.status, 201);
    let r = e.send(
        "POST",
        "Priv/permissions/",
        &[JSON],
        Some(br#"{"user": "alice", "level": "read"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let bob = basic("bob", "pw-bob");
    let r = request(
        "POST",
        &e.s.url("Priv/permissions/"),
        &[("Authorization", &bob), JSON],
        Some(br#"{"user": "bob", "level": "none"}"#),
    );
    assert_eq!(r.status, 409, "{}", r.body);
}

#[test]
fn the_shell_may_leave_a_project_without_admin_but_says_so() {
    let db = TestDb::new();
    for u in ["alice", "bob"] {
        db.useradd(u, "pw");
    }
    for p in ["A", "B", "C"] {
        db.ok(&["grant", "alice", p, "--level", "admin"]);
    }
    db.ok(&["grant", "bob", "C", "--level", "admin"]);
    let stderr = |args: &[&str]| {
        let out = db.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let said = stderr(&["grant", "alice", "A", "--level", "write"]);
    assert!(
        said.contains("warning: project A has no admin left"),
        "{said}"
    );
    let said = stderr(&["grant", "alice", "C", "--level", "write"]);
    assert!(!said.contains("warning"), "bob administers C: {said}");
    db.ok(&["grant", "alice", "A", "--level", "admin"]);
    let said = stderr(&["revoke", "alice", "A"]);
    assert!(
        said.contains("warning: project A has no admin left"),
        "{said}"
    );
    let said = stderr(&["userdel", "alice"]);
    assert!(
        said.contains("warning: project B has no admin left"),
        "{said}"
    );
    assert!(
        !said.contains("project A") && !said.contains("project C"),
        "{said}"
    );
}

// ----- a login flood ----------------------------------------------------------

/// 50 wrong passwords at once, each needing a real bcrypt check (cost 12),
/// used to hold every handler thread for seconds: a caller whose
/// credentials were verified, and the stylesheet, waited 7 to 8.6 s.
#[test]
fn login_flood_does_not_hold_up_verified_callers() {
    let db = TestDb::new();
    db.useradd("alice", "pw-alice");
    let out = db
        .command(&["useradd", "victim", "--password-stdin"])
        .env("SUMATRA_BCRYPT_COST", "12")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"the-real-one\n")?;
            c.wait()
        })
        .unwrap();
    assert!(out.success());
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    db.ok(&["grant", "victim", "P", "--level", "write"]);
    // No throttle in the way: the queue of password checks alone is tested.
    let s = Server::start(&db, &["--login-throttle", "100000,100000,300"]);
    let alice = Client::new(Some(basic("alice", "pw-alice")));
    assert_eq!(alice.get(&s.url("P/")).unwrap().status, 200);

    let n = 50;
    let barrier = Arc::new(Barrier::new(n + 1));
    let flood: Vec<_> = (0..n)
        .map(|i| {
            let (url, barrier) = (s.url("P/"), barrier.clone());
            thread::spawn(move || {
                let c = Client::new(Some(basic("victim", &format!("guess-{i}"))));
                barrier.wait();
                let r = c.get(&url).unwrap();
                (r.status, r.header("retry-after").map(String::from))
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while !flood.iter().all(|h| h.is_finished()) && start.elapsed() < Duration::from_secs(60) {
        for path in ["P/", ".static/style.css"] {
            let t = Instant::now();
            let r = alice.get(&s.url(path)).unwrap();
            assert_eq!(r.status, 200, "{path}");
            slowest = slowest.max(t.elapsed());
        }
        rounds += 1;
    }
    let flood: Vec<(u16, Option<String>)> = flood.into_iter().map(|h| h.join().unwrap()).collect();
    eprintln!(
        "login flood of {n}: over after {:?}; {rounds} rounds of other requests, slowest {slowest:?}; {:?}",
        start.elapsed(),
        flood.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert!(rounds > 0);
    assert!(
        slowest < Duration::from_millis(500),
        "a verified caller waited {slowest:?} behind the flood"
    );
    assert!(
        flood.iter().all(|(status, _)| [401, 503].contains(status)),
        "{flood:?}"
    );
    let refused: Vec<_> = flood.iter().filter(|f| f.0 == 503).collect();
    assert!(
        !refused.is_empty(),
        "50 checks at once should overflow the queue: {flood:?}"
    );
    assert!(
        refused.iter().all(|f| f.1.as_deref() == Some("1")),
        "{refused:?}"
    );
    // The victim still gets in with the right password.
    let r = Client::new(Some(basic("victim", "the-real-one")))
        .get(&s.url("P/"))
        .unwrap();
    assert_eq!(r.status, 200);
}

/// Many requests with the same credentials at once (a cluster's jobs
/// starting together) share one password check: none is refused.
#[test]
fn same_credentials_at_once_share_one_check() {
    let db = TestDb::new();
    db.useradd("alice", "pw-alice");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let s = Server::start(&db, &["--workers", "4"]);
    let barrier = Arc::new(Barrier::new(24));
    let all: Vec<_> = (0..24)
        .map(|_| {
            let (url, barrier) = (s.url("P/"), barrier.clone());
            thread::spawn(move || {
                let c = Client::new(Some(basic("alice", "pw-alice")));
                barrier.wait();
                c.get(&url).unwrap().status
            })
        })
        .collect();
    let statuses: Vec<u16> = all.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(statuses, vec![200; 24]);
}

// ----- bodies -------------------------------------------------------------------

/// Sends a request head on a fresh connection and waits (at most `wait`)
/// for the status line, without sending any body.
fn status_before_body(addr: &str, head: &str, wait: Duration) -> Option<u16> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(wait)).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

#[test]
fn bodies_of_refused_requests_are_not_waited_for() {
    let e = env(&[]);
    let addr = e.s.addr();
    let reader = basic("reader", "pw-reader");
    let cases = [
        ("no credentials", "Priv/x/", None, 401),
        ("no credentials, public project", "Pub/x/", None, 401),
        ("read access only", "Priv/x/", Some(reader.as_str()), 403),
        ("no such project", "Nope/x/", Some(e.alice.as_str()), 404),
        ("bad label", "Priv/a%20b/", Some(e.alice.as_str()), 400),
    ];
    for (name, path, auth, want) in cases {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "PUT /records/{path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 8000000\r\n\r\n"
        );
        let start = Instant::now();
        let got = status_before_body(&addr, &head, Duration::from_secs(5));
        assert_eq!(got, Some(want), "{name}: answered before the body");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            start.elapsed()
        );
    }
    // A refused POST to the permissions too, and a PATCH.
    let head = format!(
        "POST /records/Priv/permissions/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {reader}\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\n\r\n"
    );
    assert_eq!(
        status_before_body(&addr, &head, Duration::from_secs(5)),
        Some(403)
    );
    let head = format!(
        "PATCH /records/Priv/rec/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 8000000\r\n\r\n"
    );
    assert_eq!(
        status_before_body(&addr, &head, Duration::from_secs(5)),
        Some(405)
    );
}

/// The Python client sends a whole body before it reads the answer: an
/// answer given early must leave the connection open while the rest of the
/// body arrives, or the client sees a broken pipe instead of the status.
fn send_whole_then_read(addr: &str, head: &str, body_len: usize) -> Result<(u16, String), String> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(head.as_bytes())
        .map_err(|e| format!("head: {e}"))?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        c.write_all(&chunk[..n])
            .map_err(|e| format!("body after {sent} bytes: {e}"))?;
        sent += n;
    }
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    // The answer, then (keep-alive) nothing more: read until a complete response.
    loop {
        let n = c
            .read(&mut tmp)
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let (status, _, body) = parse_response(&buf);
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn oversized_body_gets_a_413_the_client_can_read() {
    let e = env(&[]);
    let addr = e.s.addr();
    let big = 20 * 1024 * 1024;
    let head = format!(
        "PUT /records/Priv/big/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nContent-Length: {big}\r\n\r\n",
        e.alice
    );
    let (status, body) = send_whole_then_read(&addr, &head, big).expect("a readable answer");
    assert_eq!(status, 413);
    assert!(body.contains("too large"), "{body}");
    // Chunked, over the limit part way.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        c,
        "PUT /records/Priv/big/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        e.alice
    )
    .unwrap();
    let chunk = vec![b'y'; 1024 * 1024];
    for i in 0..18 {
        write!(c, "{:x}\r\n", chunk.len()).unwrap();
        c.write_all(&chunk)
            .unwrap_or_else(|err| panic!("chunk {i}: {err}"));
        c.write_all(b"\r\n").unwrap();
    }
    c.write_all(b"0\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert_eq!(parse_response(&buf).0, 413);
    // An unauthenticated first try with a 2 MiB record (as httplib2 sends
    // every first request): the 401 is readable after the whole body.
    let len = 2 * 1024 * 1024;
    let head =
        format!("PUT /records/Priv/big/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\n\r\n");
    let (status, _) = send_whole_then_read(&addr, &head, len).expect("a readable 401");
    assert_eq!(status, 401);
    assert_eq!(
        request(
            "GET",
            &e.s.url("Priv/big/"),
            &[("Authorization", &e.alice)],
            None
        )
        .status,
        404
    );
}

/// 200 connections upload at once: the bodies held in memory share one
/// budget, so the server's peak memory grows by about the budget, not by
/// 200 bodies.
#[test]
fn bodies_in_flight_share_one_memory_budget() {
    let e = env(&["--max-body", "262144", "--body-budget", "2097152"]);
    let addr = e.s.addr();
    let before = proc_status(e.s.pid(), "VmHWM");
    let n = 200;
    let len = 250_000;
    let barrier = Arc::new(Barrier::new(n));
    let uploads: Vec<_> = (0..n)
        .map(|i| {
            let (addr, auth, barrier) = (addr.clone(), e.alice.clone(), barrier.clone());
            thread::spawn(move || {
                // Not JSON (it never closes): read whole, then refused with 400.
                let head = format!(
                    "PUT /records/Priv/up{i}/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: {len}\r\n\r\n"
                );
                barrier.wait();
                send_whole_then_read(&addr, &head, len)
            })
        })
        .collect();
    let results: Vec<_> = uploads.into_iter().map(|h| h.join().unwrap()).collect();
    let after = proc_status(e.s.pid(), "VmHWM");
    eprintln!(
        "{n} uploads of {len} bytes at once: peak RSS {before} kB before, {after} kB after (+{} kB)",
        after - before
    );
    for r in &results {
        let (status, body) = r.as_ref().expect("an answer");
        assert_eq!(*status, 400, "{body}");
    }
    // 200 bodies are 50 MB; the budget is 2 MiB.
    assert!(
        after - before < 25_000,
        "peak memory grew by {} kB for {n} uploads",
        after - before
    );
}

// ----- work per request ---------------------------------------------------------

#[test]
fn quadratic_comparison_of_records_with_40000_parameters() {
    let e = env(&[]);
    let params = |seed: u32| -> String {
        (0..40_000)
            .map(|i| format!("p{i} = {}\n", if i % 1000 == 0 { i + seed } else { i }))
            .collect()
    };
    let alice = Client::new(Some(e.alice.clone()));
    for (label, seed) in [("a", 0), ("b", 1)] {
        let mut rec = full_record(label, "big", &[]);
        rec["parameters"] = json!({"type": "SimpleParameterSet", "content": params(seed)});
        assert_eq!(
            alice
                .put_json(&e.s.url(&format!("Priv/{label}/")), &rec)
                .unwrap()
                .status,
            201
        );
    }
    let start = Instant::now();
    let r = alice
        .send(
            "GET",
            &e.s.url("Priv/?compare=a,b&only=differences"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    let took = start.elapsed();
    eprintln!("comparison of two records with 40 000 parameters (debug build): {took:?}");
    assert_eq!(r.status, 200);
    // The rows of the Parameters section: (name, A, B, marked as different).
    let parameter_rows = |html: &str| -> Vec<(String, String, String, bool)> {
        let doc = scraper::Html::parse_document(html);
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        let text = |e: scraper::ElementRef| e.text().collect::<String>().trim().to_string();
        let section = doc
            .select(&sel("section.compare-section"))
            .find(|s| {
                s.select(&sel("h2"))
                    .next()
                    .is_some_and(|h| text(h).starts_with("Parameters"))
            })
            .expect("a Parameters section");
        section
            .select(&sel("tbody tr"))
            .map(|tr| {
                let cell = |s: &str| text(tr.select(&sel(s)).next().unwrap());
                let marked = tr.value().classes().any(|c| c == "differs");
                (cell("th"), cell("td.a"), cell("td.b"), marked)
            })
            .collect()
    };
    // 40 differing parameters (every thousandth) are the rows shown, and
    // only they, each with its two values.
    let differing: Vec<(String, String, String, bool)> = (0..40_000)
        .step_by(1000)
        .map(|i| (format!("p{i}"), i.to_string(), (i + 1).to_string(), true))
        .collect();
    let mut rows = parameter_rows(&r.body);
    rows.sort();
    let mut expected = differing.clone();
    expected.sort();
    assert_eq!(rows, expected);
    // Quadratic pairing took 8.2 s in a release build for this size.
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Everything: a section this large shows its differences and says what
    // it leaves out, instead of rendering 40 000 equal rows.
    let r = alice
        .send(
            "GET",
            &e.s.url("Priv/?compare=a,b"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let note = r
        .body
        .find("not shown")
        .map(|i| &r.body[i.saturating_sub(80)..i + 60]);
    assert!(
        r.body
            .contains("39961 equal rows not shown (the section has 40001 rows)"),
        "{note:?}"
    );
    assert!(r.body.contains(">p39000<") && !r.body.contains(">p39001<"));
    let mut marked: Vec<_> = parameter_rows(&r.body)
        .into_iter()
        .filter(|row| row.3)
        .collect();
    marked.sort();
    assert_eq!(marked, expected);
}

// ----- files on disk ------------------------------------------------------------

sqlite_only! {
    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    }
}

sqlite_only! {
    /// The binary under `umask 000`, where a file created without care is 0666.
    fn permissive(db: &TestDb, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("umask 000; exec \"$0\" \"$@\"")
            .arg(BIN)
            .arg("--db")
            .arg(&db.path)
            .args(args)
            .current_dir(db.dir.path())
            .env("SUMATRA_BCRYPT_COST", "4")
            .env_remove("SUMATRA_DB");
        c
    }
}

sqlite_only! {
    #[test]
    fn world_readable_files_database_backup_and_export_are_0600() {
        let db = TestDb::uninitialised();
        assert!(permissive(&db, &["init"]).status().unwrap().success());
        assert_eq!(mode(&db.path), 0o600, "database");
        db.useradd("alice", "pw");
        db.ok(&["grant", "alice", "P", "--level", "admin"]);
        let s = Server::start_command(permissive(&db, &["serve", "--bind", "127.0.0.1:0"]));
        let r = Client::new(Some(basic("alice", "pw")))
            .put_json(&s.url("P/r/"), &full_record("r", "", &[]))
            .unwrap();
        assert_eq!(r.status, 201);
        let side = |suffix: &str| {
            let mut p = db.path.clone().into_os_string();
            p.push(suffix);
            std::path::PathBuf::from(p)
        };
        assert_eq!(mode(&side("-wal")), 0o600, "-wal");
        assert_eq!(mode(&side("-shm")), 0o600, "-shm");
        let backup = db.dir.path().join("backup.db");
        let out = permissive(&db, &["backup", backup.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(mode(&backup), 0o600, "backup");
        let export = db.dir.path().join("users.json");
        // A file that was there, world-readable, is no longer once written.
        std::fs::write(&export, "old").unwrap();
        std::fs::set_permissions(&export, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = permissive(
            &db,
            &["export", "--with-users", "-o", export.to_str().unwrap(), "--force"],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(mode(&export), 0o600, "export");
        assert!(std::fs::read_to_string(&export)
            .unwrap()
            .contains("\"password\""));
    }
}

/// A GET with a declared body (which no GET needs) used to take that much
/// of the upload budget before anyone was known: four such requests with
/// nothing sent held it all, and every real upload waited, then got 503.
#[test]
fn budget_held_by_bodies_nobody_needs() {
    let e = env(&[
        "--max-body",
        "1048576",
        "--body-budget",
        "1048576",
        "--body-timeout",
        "20",
    ]);
    let addr = e.s.addr();
    let mut hogs = Vec::new();
    for path in ["", "Pub/", "Priv/last/", "Pub/permissions/"] {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(c, "GET /records/{path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nContent-Length: 1048576\r\n\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(c.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "{path}: {line}");
        hogs.push(c);
    }
    let head =
        format!("PUT /records/last/x/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1048576\r\n\r\n");
    assert_eq!(
        status_before_body(&addr, &head, Duration::from_secs(5)),
        Some(404)
    );
    let head = format!(
        "PUT /records/Priv/last/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nContent-Length: 1048576\r\n\r\n",
        e.alice
    );
    assert_eq!(
        status_before_body(&addr, &head, Duration::from_secs(5)),
        Some(400)
    );
    // With the hogs still connected, a real upload goes through at once.
    let start = Instant::now();
    let r = Client::new(Some(e.alice.clone()))
        .put_json(&e.s.url("Priv/after/"), &full_record("after", "r", &[]))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    drop(hogs);
}

/// Uploads of unknown length took the budget chunk by chunk and held it
/// while waiting for more: two of them could each hold part and wait for
/// each other until both failed. Each now takes its share whole, first.
#[test]
fn chunked_uploads_never_wait_on_each_other_for_budget() {
    let e = env(&[
        "--max-body",
        "1048576",
        "--body-budget",
        "1048576",
        "--body-timeout",
        "20",
    ]);
    let addr = e.s.addr();
    let barrier = Arc::new(Barrier::new(2));
    let uploads: Vec<_> = (0..2)
        .map(|i| {
            let (addr, auth, barrier) = (addr.clone(), e.alice.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                // 600 KB of padding in the reason: two are more than the budget.
                let pad = "p".repeat(600_000);
                let body = serde_json::to_vec(&full_record(&format!("c{i}"), &pad, &[])).unwrap();
                write!(c, "PUT /records/Priv/c{i}/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
                barrier.wait();
                for piece in body.chunks(50_000) {
                    write!(c, "{:x}\r\n", piece.len()).unwrap();
                    c.write_all(piece).unwrap();
                    c.write_all(b"\r\n").unwrap();
                    thread::sleep(Duration::from_millis(10));
                }
                c.write_all(b"0\r\n\r\n").unwrap();
                let mut buf = Vec::new();
                let _ = c.read_to_end(&mut buf);
                parse_response(&buf).0
            })
        })
        .collect();
    let statuses: Vec<u16> = uploads.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(statuses, [201, 201]);
}
