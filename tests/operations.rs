//! Running it as a service (SPEC 11): health, the healthcheck command,
//! options from the environment, the database URL from a file, systemd's
//! notifications, TLS reload, metrics and JSON logs. PostgreSQL stopping
//! under `P.health` is in `multi_process.rs`.

use crate::util::*;
use serde_json::json;

#[test]
fn health_answers_anyone_with_the_database_state_and_healthcheck_exits_by_it() {
    let db = TestDb::new();
    let s = Server::start(&db, &[]);
    let r = Client::new(None).get(&s.url(".health")).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/health+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let caching: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "cache-control")
        .collect();
    assert_eq!(caching.len(), 1, "once: {caching:?}");
    let v = r.json();
    assert_eq!(v["status"], json!("pass"));
    assert_eq!(v["checks"]["database"]["status"], json!("pass"));
    assert!(v["checks"]["database"]["time_ms"].as_f64().unwrap() >= 0.0);
    let r = Client::new(None)
        .send("HEAD", &s.url(".health"), &[], None)
        .unwrap();
    assert_eq!(r.status, 200);
    let r = Client::new(None)
        .send("POST", &s.url(".health"), &[], Some(b"x"))
        .unwrap();
    assert_eq!(r.status, 405);

    let ok = db.ok(&["healthcheck", "--url", &s.url(".health")]);
    assert!(ok.starts_with("healthy: "), "{ok}");
    assert!(db.ok(&["healthcheck"]).contains("answered in"));
    // Nothing listening, a page that is not 200, not http://: exit 1 with why.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = db.fails(&[
        "healthcheck",
        "--url",
        &format!("http://127.0.0.1:{dead}/records/.health"),
    ]);
    assert!(err.contains("unhealthy"), "{err}");
    let err = db.fails(&["healthcheck", "--url", &s.url("nothing/")]);
    assert!(err.contains("answered 404"), "{err}");
    let err = db.fails(&[
        "healthcheck",
        "--url",
        "https://example.org/records/.health",
    ]);
    assert!(err.contains("an http:// URL"), "{err}");
}

/// Regression: only one check of the database ran at a time and every
/// probe that came meanwhile was answered 503 ("the previous check has not
/// answered yet"), so two load balancers made a healthy server flap; and a
/// failure's reason named the database (its path or URL) to anyone.
#[test]
fn overlapping_health_probes_share_a_check_and_a_failure_never_names_the_database() {
    let db = TestDb::new();
    let s = Server::start(&db, &[]);
    let url = s.url(".health");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let probes: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| Client::new(None).get(&url).unwrap().status))
            .collect();
        probes.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![200; 16]);

    // A newer schema than this binary's: 503 with the reason, but not where.
    match db.backend {
        Backend::Sqlite => db.query("PRAGMA user_version = 99"),
        Backend::Postgres => db.query("UPDATE sumatra_schema SET version = 99"),
    };
    let r = Client::new(None).get(&url).unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    let why = r.json()["checks"]["database"]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("schema version 99"), "{why}");
    let name = match db.backend {
        Backend::Sqlite => db.path.display().to_string(),
        Backend::Postgres => "postgresql://".to_string(),
    };
    assert!(!r.body.contains(&name), "{name} in {}", r.body);
    assert!(!r.body.contains("127.0.0.1"), "{}", r.body);
}

/// SPEC 11.3: every `serve` option from the environment, and the database
/// from a file (`SUMATRA_DB_FILE`), with nothing on the command line.
#[test]
fn serve_takes_every_option_from_the_environment_and_the_database_from_a_file() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let file = db.dir.path().join("db-url");
    std::fs::write(&file, format!("{}\n", db.location)).unwrap();
    let mut c = std::process::Command::new(BIN);
    c.arg("serve").current_dir(db.dir.path());
    c.env_remove("SUMATRA_DB")
        .env("SUMATRA_BCRYPT_COST", "4")
        .env("SUMATRA_DB_FILE", &file)
        .env("SUMATRA_BIND", "127.0.0.1:0")
        .env("SUMATRA_PREFIX", "/sumatra/")
        .env("SUMATRA_MAX_BODY", "1000")
        .env("SUMATRA_TRASH_DAYS", "0")
        .env("SUMATRA_LOGIN_THROTTLE", "1,1,300");
    let s = Server::start_command(c);
    assert!(s.base.ends_with("/sumatra/"), "{}", s.base);
    let alice = Client::new(Some(basic("alice", "apw")));
    assert_eq!(alice.get(&s.url("P/")).unwrap().status, 200);
    // --max-body from the environment: 413 past 1000 bytes.
    let r = alice
        .put_json(
            &s.url("P/big/"),
            &full_record("big", &"x".repeat(2000), &[]),
        )
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    // --login-throttle 1,1,300: the second wrong password is refused outright.
    let wrong = Client::new(Some(basic("alice", "nope")));
    assert_eq!(wrong.get(&s.url("P/")).unwrap().status, 401);
    assert_eq!(wrong.get(&s.url("P/")).unwrap().status, 429);
    // `serve --help` names the variables.
    let help = db.ok(&["serve", "--help"]);
    for var in [
        "SUMATRA_BIND",
        "SUMATRA_PREFIX",
        "SUMATRA_TLS_CERT",
        "SUMATRA_TRASH_DAYS",
        "SUMATRA_DB_FILE",
    ] {
        assert!(help.contains(var), "{var} not in serve --help");
    }
    // A --db-file that cannot be read, or says nothing: a sentence.
    let err = db.fails(&["--db-file", "/no/such/file", "users"]);
    assert!(err.contains("cannot read --db-file /no/such/file"), "{err}");
    let empty = db.dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let err = db.fails(&["--db-file", empty.to_str().unwrap(), "users"]);
    assert!(err.contains("is empty"), "{err}");
    // Regression: a file an editor saved with a byte-order mark named no
    // database ("database \u{feff}/path does not exist").
    let marked = db.dir.path().join("marked");
    std::fs::write(&marked, format!("\u{feff}{}\r\n", db.location)).unwrap();
    assert!(db
        .ok(&["--db-file", marked.to_str().unwrap(), "users"])
        .contains("alice"));
}

/// Messages a test's notify socket received, as `NOTIFY_SOCKET` for a server.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sock: std::os::unix::net::UnixDatagram,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        NotifySocket {
            _dir: dir,
            path,
            sock,
        }
    }
    /// The next message holding `what`, skipping others (watchdog pings).
    fn expect(&self, what: &str) -> String {
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        loop {
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => panic!("no {what:?} from the server ({e}); got {seen:?}"),
            };
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg.lines().any(|l| l == what) {
                return msg;
            }
            seen.push(msg);
        }
    }
}

fn signal(s: &Server, sig: libc::c_int) {
    let pid = s.child.as_ref().unwrap().id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// SPEC 11.3: READY=1 once listening, WATCHDOG=1 at half `WATCHDOG_USEC`,
/// RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
#[test]
fn serve_tells_systemd_ready_watchdog_reloading_and_stopping() {
    let db = TestDb::new();
    let notify = NotifySocket::new();
    // systemd names the process the watchdog is for: this one, which the
    // shell becomes by exec.
    let mut c = std::process::Command::new("sh");
    c.args([
        "-c",
        "WATCHDOG_PID=$$ exec \"$0\" \"$@\"",
        BIN,
        "--db",
        &db.location,
    ])
    .args(["serve", "--bind", "127.0.0.1:0"])
    .current_dir(db.dir.path())
    .env_remove("SUMATRA_DB")
    .env("NOTIFY_SOCKET", &notify.path)
    .env("WATCHDOG_USEC", "200000");
    let mut s = Server::start_command(c);
    notify.expect("READY=1");
    assert_eq!(Client::new(None).get(&s.url("")).unwrap().status, 200);
    notify.expect("WATCHDOG=1");
    notify.expect("WATCHDOG=1");
    signal(&s, libc::SIGHUP);
    let reloading = notify.expect("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    notify.expect("READY=1");
    // Still serving after the reload (SIGHUP does not end the process).
    assert_eq!(Client::new(None).get(&s.url("")).unwrap().status, 200);
    assert!(s.log().contains("no TLS pair to reload"), "{}", s.log());
    signal(&s, libc::SIGTERM);
    notify.expect("STOPPING=1");
    assert_eq!(s.stop(), Some(0));
}

/// A TLS client that trusts the certificates given, and sees which one a
/// connection gets.
mod tls {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;

    pub type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

    pub struct Pair {
        pub cert_pem: String,
        pub key_pem: String,
        pub der: Vec<u8>,
    }

    pub fn pair() -> Pair {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        Pair {
            cert_pem: ck.cert.pem(),
            key_pem: ck.key_pair.serialize_pem(),
            der: ck.cert.der().to_vec(),
        }
    }

    pub fn client(trusted: &[&Pair]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for p in trusted {
            roots
                .add(rustls_pki_types::CertificateDer::from(p.der.clone()))
                .unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    pub fn connect(addr: &str, client: &Arc<rustls::ClientConfig>) -> Stream {
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(client.clone(), name).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.flush().unwrap();
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).unwrap();
        }
        s
    }

    /// The certificate the server showed this connection.
    pub fn served(s: &Stream) -> Vec<u8> {
        s.conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// GET on a kept-alive connection: the status.
    pub fn get(s: &mut Stream, path: &str) -> u16 {
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        head.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// SPEC 11.3: SIGHUP swaps the certificate under a running server: the
/// next connection gets the new one while a connection made before goes on
/// with the old; a bad new pair is refused and the last good one kept.
#[test]
fn sighup_reloads_the_tls_pair_without_dropping_a_connection() {
    let (a, b) = (tls::pair(), tls::pair());
    let db = TestDb::new();
    let cert = db.dir.path().join("cert.pem");
    let key = db.dir.path().join("key.pem");
    std::fs::write(&cert, &a.cert_pem).unwrap();
    std::fs::write(&key, &a.key_pem).unwrap();
    let notify = NotifySocket::new();
    let mut c = db.command(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    c.env("NOTIFY_SOCKET", &notify.path);
    let mut s = Server::start_command(c);
    notify.expect("READY=1");
    let addr = s
        .base
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let client = tls::client(&[&a, &b]);
    let mut old = tls::connect(&addr, &client);
    assert_eq!(tls::served(&old), a.der);
    assert_eq!(tls::get(&mut old, "/records/"), 200);

    // certbot renews: the files change, then SIGHUP.
    std::fs::write(&cert, &b.cert_pem).unwrap();
    std::fs::write(&key, &b.key_pem).unwrap();
    signal(&s, libc::SIGHUP);
    notify.expect("RELOADING=1");
    notify.expect("READY=1");
    let mut new = tls::connect(&addr, &client);
    assert_eq!(
        tls::served(&new),
        b.der,
        "the next connection gets the new pair"
    );
    assert_eq!(tls::get(&mut new, "/records/"), 200);
    assert_eq!(
        tls::get(&mut old, "/records/"),
        200,
        "the old connection goes on"
    );
    assert_eq!(tls::served(&old), a.der);

    // A bad pair (a key that is not the certificate's): refused, B kept.
    std::fs::write(&key, &a.key_pem).unwrap();
    signal(&s, libc::SIGHUP);
    notify.expect("RELOADING=1");
    notify.expect("READY=1");
    let mut after = tls::connect(&addr, &client);
    assert_eq!(tls::served(&after), b.der, "the bad pair was not taken");
    assert_eq!(tls::get(&mut after, "/records/"), 200);
    assert!(
        s.log().contains("the new TLS pair is refused"),
        "{}",
        s.log()
    );
    std::fs::write(&cert, "not a certificate").unwrap();
    signal(&s, libc::SIGHUP);
    notify.expect("READY=1");
    assert_eq!(tls::served(&tls::connect(&addr, &client)), b.der);
    drop((old, new, after));
    assert_eq!(s.stop(), Some(0));
}

/// The metrics listener's text, read as Prometheus reads it: every sample
/// `name{labels} value`, by name and labels.
fn scrape(addr: &str) -> std::collections::HashMap<String, f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    let mut samples = std::collections::HashMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = key.split('{').next().unwrap();
        assert!(
            name.starts_with("sumatra_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        if let Some(labels) = key.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        assert!(
            samples.insert(key.to_string(), value).is_none(),
            "twice: {line}"
        );
    }
    samples
}

/// SPEC 11.2: `--metrics-bind` serves Prometheus text on its own listener;
/// the counters move with the requests made, by route template (never the
/// raw path); the main listener has no /metrics.
#[test]
fn metrics_parse_as_prometheus_text_and_move_with_requests() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    db.ok(&["loaddata", "haggling"]);
    let s = Server::start(&db, &["--metrics-bind", "127.0.0.1:0"]);
    let log = s.log();
    let addr = log
        .split("metrics at http://")
        .nth(1)
        .and_then(|r| r.split("/metrics").next())
        .unwrap_or_else(|| panic!("no metrics address in the log: {log}"))
        .to_string();
    let alice = Client::new(Some(basic("alice", "apw")));
    let r = alice
        .put_json(
            &s.url("P/secret-label/"),
            &full_record("secret-label", "", &[]),
        )
        .unwrap();
    assert_eq!(r.status, 201);
    let get = r#"sumatra_http_requests_total{method="GET",route="/records/{project}/{label}/",status="200"}"#;
    let before = scrape(&addr);
    for _ in 0..3 {
        assert_eq!(alice.get(&s.url("P/secret-label/")).unwrap().status, 200);
    }
    assert_eq!(
        Client::new(None)
            .get(&s.url("P/secret-label/"))
            .unwrap()
            .status,
        401
    );
    let after = scrape(&addr);
    assert_eq!(
        after[get] - before.get(get).copied().unwrap_or(0.0),
        3.0,
        "{after:?}"
    );
    let refused = r#"sumatra_http_requests_total{method="GET",route="/records/{project}/{label}/",status="401"}"#;
    assert_eq!(after[refused], 1.0);
    let n = r#"sumatra_http_request_duration_seconds_count{route="/records/{project}/{label}/"}"#;
    assert!(after[n] >= 4.0, "{after:?}");
    assert_eq!(after[r#"sumatra_build_info{version="0.1.0"}"#], 1.0);
    assert!(after.contains_key("sumatra_http_requests_in_flight"));
    assert!(after.contains_key("sumatra_body_budget_in_use_bytes"));
    assert!(after.contains_key("sumatra_login_throttle_refusals_total"));
    assert!(after.contains_key("sumatra_group_commit_batch_size_count") || db.is_pg());
    // Read at the start (the five loaded), then every minute.
    assert_eq!(after["sumatra_records"], 5.0);
    assert!(
        after.keys().all(|k| !k.contains("secret-label")),
        "a raw path in the metrics"
    );
    if db.is_pg() {
        assert!(
            after.contains_key(r#"sumatra_db_pool_connections{state="idle"}"#),
            "{after:?}"
        );
    }
    // SPEC 11.2's "pool ... waiting": nobody waits for a connection at rest.
    assert_eq!(after["sumatra_db_pool_waiting"], 0.0, "{after:?}");
    // Not on the main listener.
    assert_eq!(
        Client::new(None)
            .get(&format!("{}metrics", s.origin() + "/"))
            .unwrap()
            .status,
        404
    );
}

/// SPEC 11.3: `--log-format json`, one object per request, with the route
/// template, the user and a request id passed on or made.
#[test]
fn json_logs_carry_route_user_and_request_id() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let s = Server::start(&db, &["--log-format", "json"]);
    let alice = Client::new(Some(basic("alice", "apw")));
    let r = alice
        .send(
            "GET",
            &s.url("P/"),
            &[("X-Request-Id", "trace-42"), ("Accept", "application/json")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    let r = Client::new(None).get(&s.url("P/hidden/")).unwrap();
    assert_eq!(r.status, 401);
    let made = r.header("x-request-id").unwrap().to_string();
    assert_eq!(made.len(), 16, "{made}");
    // A hostile id is not passed on.
    let r = Client::new(None)
        .send("GET", &s.url(""), &[("X-Request-Id", "a\"b{}")], None)
        .unwrap();
    assert_ne!(r.header("x-request-id"), Some("a\"b{}"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines: Vec<serde_json::Value> = s
        .log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let mine = lines
        .iter()
        .find(|l| l["request_id"] == "trace-42")
        .unwrap();
    assert_eq!(mine["route"], json!("/records/{project}/"));
    assert_eq!(mine["user"], json!("alice"));
    assert_eq!(mine["method"], json!("GET"));
    assert_eq!(mine["status"], json!(200));
    assert_eq!(mine["address"], json!("127.0.0.1"));
    assert!(mine["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(mine["time"].as_str().unwrap().ends_with('Z'));
    let theirs = lines
        .iter()
        .find(|l| l["request_id"] == json!(made))
        .unwrap();
    assert_eq!(theirs["user"], json!(null));
    assert_eq!(theirs["route"], json!("/records/{project}/{label}/"));
    assert!(!s.log().contains("hidden"), "the raw path is not logged");
}

/// The shipped unit and settings file name only variables `serve` reads,
/// and the unit runs the binary as the README installs it.
#[test]
fn the_systemd_files_name_only_real_settings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let unit = std::fs::read_to_string(root.join("sumatra-server.service")).unwrap();
    let env = std::fs::read_to_string(root.join("sumatra-server.env.example")).unwrap();
    let db = TestDb::new();
    let help = format!("{}{}", db.ok(&["serve", "--help"]), db.ok(&["--help"]));
    let mut named = 0;
    for text in [&unit, &env] {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("SUMATRA_") && word.len() > 8 {
                assert!(help.contains(word), "{word} is no option of sumatra-server");
                named += 1;
            }
        }
    }
    assert!(named >= 10, "{named}");
    for line in [
        "Type=notify",
        "ExecStart=/usr/local/bin/sumatra-server serve",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(line), "{line}");
    }
    assert!(
        !unit.contains("ExecStartPre"),
        "only init migrates, on purpose: not at every start"
    );
}
