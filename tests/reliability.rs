//! Reliability under crashes and load (issue 7): every acknowledged write
//! survives SIGKILL and SIGTERM, concurrent clients see no 5xx, no "database
//! is locked", no lost update and no duplicate label, and `backup` works
//! while the server is writing.

use crate::util::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A database with user alice (password "apw"), admin of project P.
fn alice_db() -> (TestDb, String) {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    (db, basic("alice", "apw"))
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// What writers saw: label → highest acknowledged version, and anything wrong.
#[derive(Default)]
struct Ledger {
    acked: HashMap<String, usize>,
    errors: Vec<String>,
}

/// Versions each writer PUTs per label: a create and two updates.
const VERSIONS: usize = 3;

/// Starts `n` writers that PUT records `w{t}-{k}` in versions 0..VERSIONS
/// (reason and tag `v{version}`), until `stop` is set or the server goes away.
/// The test sets `going_away` just before it kills or stops the server: a
/// PUT that gets no answer ends its writer, and is an error in the ledger
/// unless `going_away` was set by then. Any answer but a 2xx is an error.
/// Returns the join handles and the count of 2xx answers.
fn start_writers(
    n: usize,
    s: &Server,
    auth: &str,
    ledger: &Arc<Mutex<Ledger>>,
    stop: &Arc<AtomicBool>,
    going_away: &Arc<AtomicBool>,
) -> (Vec<thread::JoinHandle<()>>, Arc<AtomicUsize>) {
    let acks = Arc::new(AtomicUsize::new(0));
    let handles = (0..n)
        .map(|t| {
            let client = Client::new(Some(auth.to_string()));
            let base = s.url("P/");
            let (ledger, stop, acks) = (ledger.clone(), stop.clone(), acks.clone());
            let going_away = going_away.clone();
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                let error = |e: String| ledger.lock().unwrap().errors.push(e);
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        return;
                    }
                    let (label, version) = (format!("w{t}-{}", i / VERSIONS), i % VERSIONS);
                    let v = format!("v{version}");
                    let body = full_record(&label, &v, &[&v]);
                    match client.put_json(&format!("{base}{label}/"), &body) {
                        Ok(r) if (200..300).contains(&r.status) => {
                            ledger.lock().unwrap().acked.insert(label, version);
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => {
                            error(format!("PUT {label} v{version}: {} {}", r.status, r.body));
                            return;
                        }
                        // Killed or stopped: this PUT was not acknowledged.
                        Err(_) if going_away.load(Ordering::SeqCst) => return,
                        // No answer from a server the test left running.
                        Err(e) => {
                            error(format!("PUT {label} v{version}, server up: {e}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    (handles, acks)
}

/// Every acknowledged record is there, whole, at its acknowledged version or
/// the one after (a PUT in flight when the server died may have committed
/// without its answer arriving); every stored record is whole.
fn check_acknowledged(s: &Server, auth: &str, acked: &HashMap<String, usize>) {
    let client = Client::new(Some(auth.to_string()));
    for (label, &version) in acked {
        let r = client.get(&s.url(&format!("P/{label}/"))).unwrap();
        assert_eq!(
            r.status, 200,
            "acknowledged record {label} is missing: {}",
            r.body
        );
        let v = r.json();
        let reason = v["reason"].as_str().unwrap();
        let stored: usize = reason.trim_start_matches('v').parse().unwrap();
        assert!(
            stored >= version,
            "{label}: acknowledged v{version}, stored {reason}"
        );
        assert_eq!(
            v["tags"],
            serde_json::json!([reason]),
            "{label}: reason and tags from one PUT"
        );
    }
    let project = client.get(&s.url("P/")).unwrap().json();
    let urls = project["records"].as_array().unwrap();
    let unique: HashSet<&str> = urls.iter().map(|u| u.as_str().unwrap()).collect();
    assert_eq!(
        unique.len(),
        urls.len(),
        "duplicate labels in the project listing"
    );
    for url in urls {
        let v = client.get(url.as_str().unwrap()).unwrap().json();
        let label = v["label"].as_str().unwrap();
        let mut expected = full_record(
            label,
            v["reason"].as_str().unwrap(),
            &[v["reason"].as_str().unwrap()],
        );
        expected["project_id"] = Value::from("P");
        assert_eq!(v, expected, "stored record {label} is not whole");
    }
}

/// 8 writers, SIGKILL once `kill_after` PUTs are acknowledged, restart on the
/// same database: integrity_check passes and every acknowledged write is there.
fn crash_under_load(kill_after: usize) {
    let (db, auth) = alice_db();
    let mut s = Server::start(&db, &[]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let going_away = Arc::new(AtomicBool::new(false));
    let (handles, acks) = start_writers(8, &s, &auth, &ledger, &stop, &going_away);
    assert!(
        wait_for(Duration::from_secs(15), || acks.load(Ordering::SeqCst)
            >= kill_after),
        "only {} writes acknowledged: {:?}",
        acks.load(Ordering::SeqCst),
        ledger.lock().unwrap().errors
    );
    going_away.store(true, Ordering::SeqCst);
    s.kill();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.errors.is_empty(),
        "errors under load: {:?}",
        ledger.errors
    );
    // The ledger holds every acknowledged PUT: each label takes at most
    // VERSIONS of them, and at least `kill_after` were acknowledged.
    let acknowledged = acks.load(Ordering::SeqCst);
    assert!(acknowledged >= kill_after, "{acknowledged} acknowledged");
    assert!(
        ledger.acked.len() * VERSIONS >= acknowledged,
        "{} labels for {acknowledged} acknowledged PUTs",
        ledger.acked.len()
    );
    assert_eq!(db.integrity(), "ok");
    let s = Server::start(&db, &[]);
    check_acknowledged(&s, &auth, &ledger.acked);
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn sigkill_early_in_the_load_loses_no_acknowledged_write() {
    crash_under_load(3);
}

#[test]
fn sigkill_mid_load_loses_no_acknowledged_write() {
    crash_under_load(60);
}

#[test]
fn sigkill_late_in_the_load_loses_no_acknowledged_write() {
    crash_under_load(250);
}

/// SIGTERM while 8 writers are busy: exit status 0, and every 2xx that a
/// writer got is stored (none is cut off after an answer it did not honour).
#[test]
fn sigterm_under_load_finishes_in_flight_and_keeps_every_acknowledged_write() {
    let (db, auth) = alice_db();
    let mut s = Server::start(&db, &[]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let going_away = Arc::new(AtomicBool::new(false));
    let (handles, acks) = start_writers(8, &s, &auth, &ledger, &stop, &going_away);
    assert!(
        wait_for(Duration::from_secs(15), || acks.load(Ordering::SeqCst)
            >= 80),
        "only {} writes acknowledged: {:?}",
        acks.load(Ordering::SeqCst),
        ledger.lock().unwrap().errors
    );
    going_away.store(true, Ordering::SeqCst);
    assert_eq!(s.stop(), Some(0), "{}", s.log());
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.errors.is_empty(),
        "errors under load: {:?}",
        ledger.errors
    );
    assert_eq!(db.integrity(), "ok");
    let s2 = Server::start(&db, &[]);
    check_acknowledged(&s2, &auth, &ledger.acked);
}

/// A request whose body is still arriving when SIGTERM comes is finished and
/// answered (and stored); new connections are refused meanwhile.
#[test]
fn sigterm_waits_for_a_slow_upload_in_flight() {
    use std::io::Write;
    let (db, auth) = alice_db();
    let mut s = Server::start(&db, &[]);
    let body = serde_json::to_vec(&full_record("slow", "v0", &["v0"])).unwrap();
    let mut conn = std::net::TcpStream::connect(s.addr()).unwrap();
    let host_and_path = s.base.trim_start_matches("http://");
    let path = &host_and_path[host_and_path.find('/').unwrap()..];
    // `Expect: 100-continue`: the server's 100 says it has read the head,
    // admitted the request and started on the body (no sleep and hope).
    let head = format!(
        "PUT {path}P/slow/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut conn, &mut byte).expect("100 Continue");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    conn.write_all(&body[..body.len() / 2]).unwrap();
    unsafe_kill(s.pid(), "TERM");
    // The server stops accepting at once.
    assert!(wait_for(Duration::from_secs(5), || {
        std::net::TcpStream::connect(s.addr()).is_err()
    }));
    conn.write_all(&body[body.len() / 2..]).unwrap();
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut buf).unwrap();
    let (status, _, answer) = parse_response(&buf);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(s.stop(), Some(0));
    let rows = db.query("SELECT label FROM records WHERE label = 'slow'");
    assert_eq!(rows.len(), 1, "the answered upload was not stored");
}

/// One response per request from 10 clients at once, mixing every kind of
/// request; none may fail for the server's sake.
#[test]
fn ten_concurrent_clients_no_5xx_no_lock_errors_no_lost_updates_no_duplicates() {
    const CLIENTS: usize = 10;
    const ROUNDS: usize = 12;
    let (db, auth) = alice_db();
    let s = Server::start(&db, &[]);
    let setup = Client::new(Some(auth.clone()));
    // A record as the first PUT of `smt run` leaves it: no output yet.
    let mut shared = full_record("shared", "start", &["start"]);
    shared["stdout_stderr"] = "Not launched.".into();
    shared["duration"] = Value::Null;
    shared["output_data"] = serde_json::json!([]);
    assert_eq!(
        setup.put_json(&s.url("P/shared/"), &shared).unwrap().status,
        201
    );

    let created_same: Arc<Mutex<BTreeMap<usize, Vec<u16>>>> = Default::default();
    let problems: Arc<Mutex<Vec<String>>> = Default::default();
    let start = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let c = Client::new(Some(auth.clone()));
            let url = |p: String| s.url(&p);
            let urls: Vec<String> = vec![
                url(String::new()),
                url("P/".into()),
                url("P/shared/".into()),
                url("P/last/".into()),
            ];
            let base = s.url("P/");
            let (created_same, problems) = (created_same.clone(), problems.clone());
            thread::spawn(move || {
                let check = |what: &str, r: Result<Resp, String>, expect: &[u16]| -> Option<Resp> {
                    match r {
                        Ok(r) if expect.contains(&r.status) && !r.body.contains("locked") => {
                            Some(r)
                        }
                        Ok(r) => {
                            problems
                                .lock()
                                .unwrap()
                                .push(format!("{what}: {} {}", r.status, r.body));
                            None
                        }
                        Err(e) => {
                            problems.lock().unwrap().push(format!("{what}: {e}"));
                            None
                        }
                    }
                };
                let mut tmp_since_delete = 0;
                for i in 0..ROUNDS {
                    // A new record of our own.
                    let l = format!("c{t}-{i}");
                    check(
                        &l,
                        c.put_json(&format!("{base}{l}/"), &full_record(&l, "new", &[])),
                        &[201],
                    );
                    // Our own record, updated round after round.
                    let l = format!("own{t}");
                    let r = c.put_json(
                        &format!("{base}{l}/"),
                        &full_record(&l, &format!("{i}"), &[]),
                    );
                    check(&l, r, if i == 0 { &[201] } else { &[200] });
                    // Everyone updates the shared record; some bring its output.
                    let tag = format!("t{t}-{i}");
                    let mut body = full_record("shared", &tag, &[&tag]);
                    if i % 3 != 0 {
                        body["stdout_stderr"] = "Not yet captured.".into();
                        body["duration"] = Value::Null;
                    }
                    check(
                        "shared",
                        c.put_json(&format!("{base}shared/"), &body),
                        &[200],
                    );
                    // Everyone creates the same new label: one 201, the rest 200.
                    let l = format!("same{i}");
                    if let Some(r) = check(
                        &l,
                        c.put_json(&format!("{base}{l}/"), &full_record(&l, &tag, &[])),
                        &[200, 201],
                    ) {
                        created_same
                            .lock()
                            .unwrap()
                            .entry(i)
                            .or_default()
                            .push(r.status);
                    }
                    // Records to delete by tag, and a delete by tag now and then.
                    let l = format!("tmp{t}-{i}");
                    let tmp_tag = format!("tmp{t}");
                    check(
                        &l,
                        c.put_json(&format!("{base}{l}/"), &full_record(&l, "tmp", &[&tmp_tag])),
                        &[201],
                    );
                    tmp_since_delete += 1;
                    if i % 4 == 3 {
                        if let Some(r) = check(
                            "tag delete",
                            c.delete(&format!("{base}tag/{tmp_tag}/")),
                            &[200],
                        ) {
                            if r.body.trim() != tmp_since_delete.to_string() {
                                problems.lock().unwrap().push(format!(
                                    "tag delete {tmp_tag}: {} != {tmp_since_delete}",
                                    r.body
                                ));
                            }
                        }
                        tmp_since_delete = 0;
                    }
                    // Delete the new record of the previous round.
                    if i > 0 {
                        let l = format!("c{t}-{}", i - 1);
                        check(&l, c.delete(&format!("{base}{l}/")), &[204]);
                    }
                    // Listings and reads.
                    for u in &urls {
                        if let Some(r) = check(u, c.get(u), &[200]) {
                            if u.ends_with("/shared/") {
                                let v = r.json();
                                if v["tags"] != serde_json::json!([v["reason"]]) {
                                    problems
                                        .lock()
                                        .unwrap()
                                        .push(format!("shared mixes two PUTs: {v}"));
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed();
    let problems = problems.lock().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    eprintln!("{CLIENTS} clients x {ROUNDS} rounds in {elapsed:?}");

    let c = Client::new(Some(auth.clone()));
    for t in 0..CLIENTS {
        let v = c.get(&s.url(&format!("P/own{t}/"))).unwrap().json();
        assert_eq!(
            v["reason"],
            (ROUNDS - 1).to_string(),
            "own{t}: an update was lost"
        );
    }
    let v = c.get(&s.url("P/shared/")).unwrap().json();
    assert_eq!(v["tags"], serde_json::json!([v["reason"]]));
    assert_eq!(
        v["stdout_stderr"], "output of shared",
        "the output some PUT brought was lost"
    );
    assert_eq!(v["duration"], 1.5);
    for (i, statuses) in created_same.lock().unwrap().iter() {
        assert_eq!(statuses.len(), CLIENTS);
        assert_eq!(
            statuses.iter().filter(|&&s| s == 201).count(),
            1,
            "same{i} created more than once: {statuses:?}"
        );
    }
    let dups = db
        .query("SELECT project_id, label, count(*) FROM records GROUP BY 1, 2 HAVING count(*) > 1");
    assert!(dups.is_empty(), "duplicate labels: {dups:?}");
    // What must be left: own*, shared, same*, the last c* of each client and
    // the tmp* created after each client's last delete by tag.
    let labels: HashSet<String> = db
        .query("SELECT label FROM records")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let mut expected: HashSet<String> = HashSet::from(["shared".to_string()]);
    for t in 0..CLIENTS {
        expected.insert(format!("own{t}"));
        expected.insert(format!("c{t}-{}", ROUNDS - 1));
        // Deleted by tag at rounds 3, 7, 11...: what came after the last stays.
        for i in (0..ROUNDS).filter(|i| *i >= ROUNDS / 4 * 4) {
            expected.insert(format!("tmp{t}-{i}"));
        }
    }
    for i in 0..ROUNDS {
        expected.insert(format!("same{i}"));
    }
    assert_eq!(labels, expected);
    assert!(!s.log().contains(" 500 "), "{}", s.log());
}

sqlite_only! {
    /// `backup FILE` while 4 clients write: it finishes, the copy passes
    /// integrity_check and holds every record acknowledged before it started.
    #[test]
    fn backup_under_write_load_is_consistent() {
        let (db, auth) = alice_db();
        let s = Server::start(&db, &[]);
        // Enough data for the copy to take several steps (SQLite pages).
        let c = Client::new(Some(auth.clone()));
        let big = "x".repeat(8 * 1024);
        for k in 0..60 {
            let l = format!("big{k}");
            let mut r = full_record(&l, "v0", &["v0"]);
            r["stdout_stderr"] = big.clone().into();
            assert_eq!(
                c.put_json(&s.url(&format!("P/{l}/")), &r).unwrap().status,
                201
            );
        }
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let stop = Arc::new(AtomicBool::new(false));
        // The server runs throughout: every PUT must be answered.
        let going_away = Arc::new(AtomicBool::new(false));
        let (handles, acks) = start_writers(4, &s, &auth, &ledger, &stop, &going_away);
        for n in 0..2 {
            assert!(
                wait_for(Duration::from_secs(10), || acks.load(Ordering::SeqCst)
                    >= 30 * (n + 1)),
                "only {} writes acknowledged: {:?}",
                acks.load(Ordering::SeqCst),
                ledger.lock().unwrap().errors
            );
            let before: HashSet<String> = ledger.lock().unwrap().acked.keys().cloned().collect();
            let copy = db.dir.path().join(format!("backup{n}.db"));
            let started = Instant::now();
            let out = db.run(&["backup", copy.to_str().unwrap()]);
            let took = started.elapsed();
            assert!(
                out.status.success(),
                "backup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let during = acks.load(Ordering::SeqCst);
            eprintln!("backup {n} took {took:?} under load ({during} writes acknowledged so far)");
            assert_eq!(integrity(&copy), "ok");
            let rows = crate::util::TestDb {
                dir: tempfile::tempdir().unwrap(),
                path: copy.clone(),
                location: copy.display().to_string(),
                backend: crate::util::Backend::Sqlite,
            }
            .query("SELECT label FROM records");
            let in_copy: HashSet<String> = rows.into_iter().map(|r| r[0].clone()).collect();
            for l in &before {
                assert!(
                    in_copy.contains(l),
                    "{l} was acknowledged before the backup but is not in it"
                );
            }
            for k in 0..60 {
                assert!(in_copy.contains(&format!("big{k}")));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        let ledger = ledger.lock().unwrap();
        assert!(
            ledger.errors.is_empty(),
            "errors under load: {:?}",
            ledger.errors
        );
    }
}
