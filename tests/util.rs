//! Shared test fixtures: a temporary database, the binary, a running server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sumatra-server");

/// The database engine a test runs on: the first part of its name, the
/// module of `tests.rs` that includes its file (`sqlite::api::...` or
/// `postgres::api::...`). The test harness names each test's thread so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("");
    if name.starts_with("postgres::") {
        Backend::Postgres
    } else if name.starts_with("sqlite::") {
        Backend::Sqlite
    } else {
        panic!("a TestDb is made on a test's own thread (this one is {name:?})")
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A number of a process's `/proc/PID/status` (`VmHWM` in KiB, `Threads`).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// A database in a temporary directory (SQLite), or a new database of the
/// test cluster (PostgreSQL), and the binary pointed at it.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    /// The SQLite file (unused on PostgreSQL).
    pub path: PathBuf,
    /// What `--db` is given: the file, or the database's URL.
    pub location: String,
    pub backend: Backend,
}

impl TestDb {
    /// A fresh, initialised database.
    pub fn new() -> TestDb {
        let db = TestDb::uninitialised();
        db.ok(&["init"]);
        db
    }

    /// A fresh, initialised database on a cluster of the test's own (one
    /// the test stops and starts).
    pub fn on_cluster(cluster: &crate::pg::Cluster) -> TestDb {
        let db = TestDb {
            dir: tempfile::tempdir().expect("temp dir"),
            path: Default::default(),
            location: cluster.new_database(),
            backend: Backend::Postgres,
        };
        db.ok(&["init"]);
        db
    }

    pub fn uninitialised() -> TestDb {
        TestDb::on(backend())
    }

    /// An uninitialised database on a chosen engine.
    pub fn on(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        let location = match backend {
            Backend::Sqlite => path.display().to_string(),
            Backend::Postgres => crate::pg::cluster().new_database(),
        };
        TestDb {
            dir,
            path,
            location,
            backend,
        }
    }

    pub fn is_pg(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// The binary with `--db` set and a cheap bcrypt cost, run in the temp dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--db").arg(&self.location).args(args);
        c.current_dir(self.dir.path());
        c.env("SUMATRA_BCRYPT_COST", "4");
        c.env_remove("SUMATRA_DB");
        c
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sumatra-server");
        // The command may exit before reading (bad input): a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().expect("wait")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with one clear line on stderr; returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        fails(self.run(args), args)
    }

    pub fn useradd(&self, user: &str, password: &str) {
        let out = self.run_with_stdin(
            &["useradd", user, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "useradd {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL against the database with its own connection, for checks.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        match self.backend {
            Backend::Sqlite => sql_query(&self.path, sql),
            Backend::Postgres => crate::pg::query(&self.location, sql),
        }
    }

    /// Whether the stored data is sound: "ok", or what is wrong.
    ///
    /// On SQLite, `PRAGMA integrity_check` and `PRAGMA foreign_key_check`
    /// first (the file, and the references SQLite enforces only on the
    /// connections that ask it to). On both engines, then, what no
    /// constraint of the schema guarantees: every record's body is a JSON
    /// record whose label and timestamp are those of its row, the tag rows
    /// of each record (`record_tags`, which the tag searches and the tag
    /// counts read) are exactly the tags of its body, in its own project,
    /// and no tag row belongs to no record; every `params_state` is one of
    /// 0 (not indexed yet), 1 (indexed) and 2 (unreadable).
    pub fn integrity(&self) -> String {
        if self.backend == Backend::Sqlite {
            let file = integrity(&self.path);
            if file != "ok" {
                return file;
            }
            let broken = sql_query(&self.path, "PRAGMA foreign_key_check");
            if !broken.is_empty() {
                return format!("references to rows that are gone: {broken:?}");
            }
        }
        let mut problems = Vec::new();
        // record id -> (project, label, tags in the body)
        let mut bodies = std::collections::BTreeMap::new();
        for row in
            self.query("SELECT id, project_id, label, timestamp, params_state, body FROM records")
        {
            let [id, project, label, timestamp, state, body] = &row[..] else {
                unreachable!("six columns")
            };
            if !["0", "1", "2"].contains(&state.as_str()) {
                problems.push(format!("{project}/{label}: params_state {state}"));
            }
            let doc: serde_json::Value = match serde_json::from_str(body) {
                Ok(doc) => doc,
                Err(e) => {
                    problems.push(format!("{project}/{label}: the body is not JSON ({e})"));
                    continue;
                }
            };
            if doc["label"].as_str() != Some(label.as_str()) {
                problems.push(format!(
                    "{project}/{label}: the body's label is {}",
                    doc["label"]
                ));
            }
            if doc["timestamp"].as_str() != Some(timestamp.as_str()) {
                problems.push(format!(
                    "{project}/{label}: timestamp {timestamp} in the row, {} in the body",
                    doc["timestamp"]
                ));
            }
            let tags: Option<std::collections::BTreeSet<String>> = doc["tags"]
                .as_array()
                .and_then(|a| a.iter().map(|t| t.as_str().map(String::from)).collect());
            let Some(tags) = tags else {
                problems.push(format!(
                    "{project}/{label}: the body's tags are {}",
                    doc["tags"]
                ));
                continue;
            };
            bodies.insert(id.clone(), (project.clone(), label.clone(), tags));
        }
        let mut rows: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for row in self.query("SELECT record_id, project_id, tag FROM record_tags") {
            let [id, project, tag] = &row[..] else {
                unreachable!("three columns")
            };
            match bodies.get(id) {
                None => problems.push(format!(
                    "tag row {tag:?} of record id {id}, which is not stored"
                )),
                Some((p, label, _)) if p != project => problems.push(format!(
                    "{p}/{label}: tag row {tag:?} filed under project {project}"
                )),
                Some(_) => {
                    rows.entry(id.clone()).or_default().insert(tag.clone());
                }
            }
        }
        for (id, (project, label, tags)) in &bodies {
            let indexed = rows.remove(id).unwrap_or_default();
            if indexed != *tags {
                problems.push(format!(
                    "{project}/{label}: tags {tags:?} in the body, {indexed:?} in record_tags"
                ));
            }
        }
        if problems.is_empty() {
            "ok".to_string()
        } else {
            let n = problems.len();
            problems.truncate(10);
            format!("{n} problems: {}", problems.join("; "))
        }
    }
}

/// Asserts a failed run with a one-line error and no backtrace; returns stderr.
pub fn fails(out: Output, what: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what:?} should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what:?} panicked: {err}"
    );
    // Our errors are one line; clap's usage errors add a hint and a help line.
    assert!(
        err.trim_end().lines().count() <= 6,
        "{what:?}: error should be short: {err}"
    );
    assert!(!err.trim().is_empty(), "{what:?}: no error message");
    err
}

/// Runs a query on its own connection; every value as text (NULL as "NULL").
fn sql_query(path: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(path).expect("open db for checks");
    let mut stmt = conn.prepare(sql).expect("prepare check query");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    let v: rusqlite::types::Value = r.get(i)?;
                    Ok(match v {
                        rusqlite::types::Value::Null => "NULL".to_string(),
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Real(f) => f.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        rusqlite::types::Value::Blob(_) => "<blob>".to_string(),
                    })
                })
                .collect()
        })
        .expect("run check query");
    rows.map(|r| r.unwrap()).collect()
}

/// A running `serve` on a free loopback port; stopped with SIGTERM on drop.
pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(db: &TestDb, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Server::start_command(db.command(&args))
    }

    /// Starts a `serve` command made by the caller (another environment,
    /// a wrapper); it must bind a free port and log where it listens.
    pub fn start_command(mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut sent = false;
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if !sent {
                    if let Some(url) = line.split("listening on ").nth(1) {
                        let _ = tx.send(url.trim().to_string());
                        sent = true;
                    }
                }
                log2.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {}", log.lock().unwrap());
            }
        };
        Server {
            child: Some(child),
            base,
            log,
        }
    }

    /// `http://127.0.0.1:PORT` without the prefix.
    pub fn origin(&self) -> String {
        let rest = self.base.strip_prefix("http://").unwrap();
        format!("http://{}", &rest[..rest.find('/').unwrap()])
    }

    pub fn addr(&self) -> String {
        self.origin().strip_prefix("http://").unwrap().to_string()
    }

    /// Full URL of a path under the prefix (`url("P/")`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe_kill(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// A raw HTTP/1.1 exchange over one fresh connection, for requests no
/// ordinary client sends. Returns (status, headers lower-cased, body).
pub fn raw(addr: &str, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, buf[end + 4..].to_vec())
}

/// A response as tests see it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// Status, headers (names lower-cased) and body of a ureq response.
    pub fn from_ureq(resp: ureq::Response) -> std::io::Result<Resp> {
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|k| {
                let v = resp.header(&k).unwrap_or("").to_string();
                (k.to_ascii_lowercase(), v)
            })
            .collect();
        let body = resp.into_string()?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// An HTTP request on a fresh connection, any status accepted; a transport
/// failure panics (see [`Client`] for one that returns it).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    Client::new(None)
        .send(method, url, headers, body)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

// ----- helpers for the reliability and security tests (issue 7) -----

impl Server {
    /// Kills the server with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }
}

/// A keep-alive HTTP client whose transport failures come back as `Err`
/// (a server that was killed or stopped), not as panics.
#[derive(Clone)]
pub struct Client {
    pub agent: ureq::Agent,
    pub auth: Option<String>,
}

impl Client {
    pub fn new(auth: Option<String>) -> Client {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(30))
            .build();
        Client { agent, auth }
    }

    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, String> {
        let mut req = self.agent.request(method, url);
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(format!("{method} {url}: {e}")),
        };
        Resp::from_ureq(resp).map_err(|e| format!("{method} {url}: body: {e}"))
    }

    pub fn get(&self, url: &str) -> Result<Resp, String> {
        self.send("GET", url, &[("Accept", "application/json")], None)
    }

    pub fn put_json(&self, url: &str, body: &serde_json::Value) -> Result<Resp, String> {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send(
            "PUT",
            url,
            &[("Content-Type", "application/vnd.sumatra.record-v4+json")],
            Some(&bytes),
        )
    }

    pub fn delete(&self, url: &str) -> Result<Resp, String> {
        self.send("DELETE", url, &[], None)
    }
}

/// The labels of a project document's `records` URLs, in order.
pub fn labels_of(doc: &serde_json::Value) -> Vec<String> {
    doc["records"]
        .as_array()
        .expect("a project document lists its records")
        .iter()
        .map(|u| {
            let url = u.as_str().expect("record URLs are strings");
            let last = url.trim_end_matches('/').rsplit('/').next();
            last.unwrap_or_default().to_string()
        })
        .collect()
}

/// A complete v4 record as the Python client sends it after a run.
pub fn full_record(label: &str, reason: &str, tags: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "label": label, "timestamp": "2026-11-26 07:07:39", "reason": reason, "outcome": "fine",
        "duration": 1.5,
        "executable": {"path": "/usr/bin/python", "version": "3.11.7", "name": "Python", "options": ""},
        "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
        "main_file": "main.py", "version": "4659728d", "diff": "",
        "parameters": {"content": format!("label = {label:?}"), "type": "SimpleParameterSet"},
        "input_data": [], "script_arguments": "<parameters>",
        "launch_mode": {"type": "SerialLaunchMode", "parameters": {"working_directory": "/x", "options": null}},
        "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
        "input_datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/"}},
        "stdout_stderr": format!("output of {label}"),
        "output_data": [{"path": format!("{label}.dat"), "digest": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                         "creation": "2026-11-26 07:07:44", "metadata": {"size": 2500, "mimetype": "text/plain"}}],
        "tags": tags, "user": "Tester <t@example.org>", "dependencies": [], "platforms": [], "repeats": null,
    })
}

/// `PRAGMA integrity_check` on the database file: "ok" when sound.
pub fn integrity(path: &Path) -> String {
    sql_query(path, "PRAGMA integrity_check")
        .into_iter()
        .map(|r| r.join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}
