//! What a question may cost (SPEC 7.6, issue 19): no URL that a reader can
//! send, alone or many at once, crashes the server, holds it past its
//! deadline, swells its memory or delays a light request. Each test is
//! named after the defect it pins, found by trying the landed release as an
//! attacker would; all run on both engines unless said otherwise.

use crate::util::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Loads `records` into project `id` through `loaddata` of an export file.
fn load(db: &TestDb, id: &str, records: Vec<Value>) {
    let records: Vec<Value> = records
        .into_iter()
        .map(|mut r| {
            r["project_id"] = json!(id);
            r
        })
        .collect();
    let doc = json!({"sumatra_server_export": 1,
        "projects": [{"id": id, "name": id, "description": "", "records": records}]});
    let path = db.dir.path().join(format!("{id}.json"));
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    db.ok(&["loaddata", path.to_str().unwrap()]);
}

/// A record with parameters `n` and `k`, a reason and `stdout_kib` KiB of output.
fn record(i: usize, reason: &str, stdout_kib: usize) -> Value {
    let mut r = full_record(&format!("r{i:05}"), reason, &["t"]);
    r["timestamp"] = json!(format!("2026-01-01 00:{:02}:{:02}", (i / 60) % 60, i % 60));
    r["parameters"] =
        json!({"content": format!("n = {}\nk = {}", i, i % 7), "type": "SimpleParameterSet"});
    r["stdout_stderr"] = json!(format!("run {i}\n{}", "y".repeat(stdout_kib * 1024)));
    r
}

/// A public project `Pub` of `n` records with `stdout_kib` KiB of output each.
fn public_project(db: &TestDb, n: usize, stdout_kib: usize) {
    load(
        db,
        "Pub",
        (0..n).map(|i| record(i, "plain", stdout_kib)).collect(),
    );
    db.ok(&["grant", "anonymous", "Pub"]);
}

/// 64 `~` conditions over the text fields of the body: the heaviest
/// question the bounds allow (each field of each record is read once).
fn heavy_query() -> String {
    let fields = [
        "stdout",
        "reason",
        "outcome",
        "user",
        "main_file",
        "version",
        "executable",
        "script_arguments",
        "repository",
    ];
    let q: Vec<String> = (0..64)
        .map(|i| format!("{} ~ zz{i}", fields[i % fields.len()]))
        .collect();
    encode(&q.join(" or "))
}

fn get(url: &str) -> Resp {
    request("GET", url, &[("Accept", "application/json")], None)
}

fn error_of(r: &Resp) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

/// The server's memory high-water mark, in KiB.
fn peak_kib(pid: u32) -> u64 {
    proc_status(pid, "VmHWM")
}

fn threads_of(pid: u32) -> u64 {
    proc_status(pid, "Threads")
}

/// Sends a GET on a fresh connection and hangs up after `after` without
/// reading the answer (a client that gave up).
fn abandon(addr: &str, path: &str, after: Duration) -> std::thread::JoinHandle<()> {
    let (addr, path) = (addr.to_string(), path.to_string());
    std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n"
        )
        .unwrap();
        std::thread::sleep(after);
    })
}

/// Regression: `sort=params.k0,duration,duration,...` (16 keys) crashed the
/// process inside SQLite (segfault), and so did `records --sort`. Repeated
/// keys are dropped; more than 8 different keys is a 400 with a sentence;
/// the server lives on.
#[test]
fn sixteen_sort_keys_crashed_the_server() {
    let db = TestDb::new();
    public_project(&db, 30, 0);
    let s = Server::start(&db, &[]);
    let repeated = format!("params.n,{}", ["duration"; 15].join(","));
    for extra in ["", "&format=csv", "&format=table%2Bjson", "&limit=5"] {
        let r = get(&s.url(&format!("Pub/?sort={}{extra}", encode(&repeated))));
        assert_eq!(r.status, 200, "{extra}: {}", r.body);
        match extra {
            "&format=csv" => assert_eq!(r.body.lines().count(), 31, "{}", r.body),
            "&format=table%2Bjson" => {
                assert_eq!(r.json()["count"], json!(30));
                assert_eq!(r.json()["rows"].as_array().unwrap().len(), 30);
            }
            _ => {}
        }
    }
    assert!(!s.log().contains("ended early"), "{}", s.log());
    let r = get(&s.url(&format!("Pub/?sort={}&format=json", encode(&repeated))));
    let labels = labels_of(&r.json());
    assert_eq!(labels.len(), 30);
    assert_eq!(labels[0], "r00000", "sorted by params.n first");
    let nine: Vec<String> = (0..9).map(|i| format!("params.k{i}")).collect();
    let r = get(&s.url(&format!("Pub/?sort={}", encode(&nine.join(",")))));
    assert_eq!(r.status, 400);
    assert!(
        error_of(&r).contains("too many sort keys: at most 8"),
        "{}",
        r.body
    );
    let deps: Vec<String> = (0..33).map(|i| format!("deps.d{i}")).collect();
    let r = get(&s.url(&format!("Pub/?sort={}&format=csv", encode(&deps.join(",")))));
    assert_eq!(r.status, 400);
    // Still serving.
    assert_eq!(get(&s.url("Pub/r00001/")).status, 200);
    // The shell command too: dropped repeats, a sentence past the bound.
    let out = db.ok(&["records", "Pub", "--sort", &repeated, "--format", "csv"]);
    assert_eq!(out.lines().count(), 31, "{out}");
    let err = db.fails(&["records", "Pub", "--sort", &nine.join(",")]);
    assert!(err.contains("too many sort keys"), "{err}");
}

/// Every combination within the bounds (up to 8 sort keys of every kind,
/// up to 32 columns, queries of every operator) is answered: generated
/// requests, each 200, and the server alive after all of them.
#[test]
fn generated_sorts_columns_and_queries_within_the_bounds_are_all_answered() {
    let db = TestDb::new();
    public_project(&db, 40, 0);
    let s = Server::start(&db, &[]);
    let fields = [
        "label",
        "timestamp",
        "reason",
        "outcome",
        "duration",
        "user",
        "main_file",
        "version",
        "executable",
        "script_arguments",
        "repository",
        "stdout",
        "tag",
        "params.n",
        "params.k",
        "params.missing",
        "deps.numpy",
        "deps.x",
    ];
    let conditions = [
        "params.n > 5",
        "params.k in (1, 2, 3)",
        "tag = t",
        "tag ~ T",
        "reason ~ PLAIN",
        "not label ~ r0001",
        "duration >= 1",
        "deps.numpy exists",
        "params.n in (1, 'x', true, none)",
        "stdout !~ zz",
        "timestamp >= 2026-01-01",
    ];
    // A small deterministic generator (no crate needed for this).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for round in 0..120 {
        let sort: Vec<String> = (0..1 + next(8))
            .map(|_| {
                let f = fields[next(fields.len())];
                if next(2) == 0 {
                    format!("-{f}")
                } else {
                    f.to_string()
                }
            })
            .collect();
        let columns: Vec<&str> = (0..1 + next(32))
            .map(|_| fields[next(fields.len())])
            .collect();
        let q: Vec<&str> = (0..next(4))
            .map(|_| conditions[next(conditions.len())])
            .collect();
        let format = ["json", "csv", "table%2Bjson", "html"][next(4)];
        let mut url = format!(
            "Pub/?sort={}&columns={}&format={format}",
            encode(&sort.join(",")),
            encode(&columns.join(","))
        );
        if !q.is_empty() {
            url.push_str(&format!("&q={}", encode(&q.join(" or "))));
        }
        if next(2) == 0 {
            url.push_str("&limit=7");
        }
        let r = get(&s.url(&url));
        assert_eq!(r.status, 200, "round {round}: {url}: {}", r.body);
    }
    assert_eq!(get(&s.url("Pub/r00001/")).status, 200);
    assert!(!s.log().contains(" 500 "), "{}", s.log());
}

/// Regression: `params.n in (0, 1, ..., 520)` was one comparison however
/// long, a subquery per value, and held a handler 209 s. Each value counts
/// against the 64 comparisons; a list within the bound is one probe and
/// finds exactly its records.
#[test]
fn an_in_list_of_521_values_held_a_handler_for_minutes() {
    let db = TestDb::new();
    public_project(&db, 100, 0);
    let s = Server::start(&db, &[]);
    let list = |n: usize| {
        let v: Vec<String> = (0..n).map(|i| (i * 3).to_string()).collect();
        format!("params.n in ({})", v.join(", "))
    };
    let all: Vec<String> = (0..=520).map(|i| i.to_string()).collect();
    let q = format!("params.n in ({})", all.join(","));
    assert!(q.len() < 2000, "within the length bound: {}", q.len());
    let r = get(&s.url(&format!("Pub/?q={}", encode(&q))));
    assert_eq!(r.status, 400);
    assert!(error_of(&r).contains("too many comparisons"), "{}", r.body);
    let r = get(&s.url(&format!("Pub/?q={}&format=json", encode(&list(64)))));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut found = labels_of(&r.json());
    found.sort();
    let want: Vec<String> = (0..100).step_by(3).map(|i| format!("r{i:05}")).collect();
    assert_eq!(found, want);
    assert_eq!(r.json()["count"], json!(want.len()));
}

/// Regression: 64 `stdout ~` terms held a handler for 109 s. Every
/// statement has a deadline (`--query-timeout`); past it the answer is a
/// 503 that says so and how to narrow the question.
#[test]
fn a_heavy_query_is_stopped_at_its_deadline() {
    let db = TestDb::new();
    public_project(&db, 300, 64);
    let s = Server::start(&db, &["--query-timeout", "0.3"]);
    let started = Instant::now();
    let r = get(&s.url(&format!("Pub/?q={}&format=json", heavy_query())));
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        error_of(&r).starts_with("the question took longer than 0.3 s and was stopped; narrow it"),
        "{}",
        r.body
    );
    assert_eq!(r.header("Retry-After"), Some("10"));
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // The HTML page says the same.
    let r = request(
        "GET",
        &s.url(&format!("Pub/?q={}", heavy_query())),
        &[("Accept", "text/html")],
        None,
    );
    assert_eq!(r.status, 503);
    assert!(r.body.contains("took longer than"), "{}", r.body);
    // A light question in the same project is answered.
    let r = get(&s.url(&format!("Pub/?q={}&format=json", encode("params.n = 3"))));
    assert_eq!(r.status, 200);
    assert_eq!(labels_of(&r.json()), ["r00003"]);
}

/// Regression: with `--log-format json`, a request whose client went away
/// was logged as a text line with its raw path and query (which the JSON
/// log never carries), without its request id, and was missing from the
/// metrics.
#[test]
fn an_abandoned_request_is_a_json_line_with_its_route_under_log_format_json() {
    let db = TestDb::new();
    public_project(&db, 300, 128);
    let s = Server::start(&db, &["--query-timeout", "30", "--log-format", "json"]);
    let path = format!("/records/Pub/?q={}&format=json", heavy_query());
    abandon(&s.addr(), &path, Duration::from_millis(500))
        .join()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = || {
        s.log()
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["status"] == 499)
    };
    while gone().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = gone().unwrap_or_else(|| panic!("no 499 line:\n{}", s.log()));
    assert_eq!(line["route"], "/records/{project}/", "{line}");
    assert_eq!(line["request_id"].as_str().unwrap().len(), 16, "{line}");
    assert!(
        !s.log().contains("?q="),
        "the raw query is logged:\n{}",
        s.log()
    );
}

/// Regression: sixteen heavy queries whose clients hung up after half a
/// second left a light GET waiting 55 s, and none of them was in the log.
/// Now each leaves a 499 line, its work stops, and searches take at most
/// half the handler threads (the rest: 503 at once).
#[test]
fn abandoned_heavy_queries_leave_a_log_line_and_never_delay_a_light_get() {
    let db = TestDb::new();
    public_project(&db, 300, 128);
    let s = Server::start(&db, &["--query-timeout", "30", "--workers", "8"]);
    let path = format!("/records/Pub/?q={}&format=json", heavy_query());
    let hangers: Vec<_> = (0..16)
        .map(|_| abandon(&s.addr(), &path, Duration::from_millis(500)))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = get(&s.url("Pub/r00001/"));
    assert_eq!(r.status, 200);
    let light = started.elapsed();
    for h in hangers {
        h.join().unwrap();
    }
    // Within well under a second of an unloaded server's time: the heavy
    // ones never hold every thread.
    assert!(light < Duration::from_secs(2), "light GET took {light:?}");
    // Every abandoned request is in the log, as 499.
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = |log: &str| {
        log.lines()
            .filter(|l| l.contains("GET /records/Pub/?q=") && l.contains(" 499 (client went away)"))
            .count()
    };
    while count(&s.log()) + s.log().matches(" 503 ").count() < 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = s.log();
    let abandoned = count(&log);
    let crowded = log
        .lines()
        .filter(|l| l.contains("GET /records/Pub/?q=") && l.contains(" 503 "))
        .count();
    assert_eq!(abandoned + crowded, 16, "{log}");
    assert!(
        (1..=4).contains(&abandoned),
        "at most half of 8 threads: {log}"
    );
    // The work of the abandoned ones stopped (it would run for seconds
    // more): their places are free again within moments.
    let started = Instant::now();
    let search = s.url(&format!("Pub/?q={}&format=json", encode("params.n = 7")));
    let mut r = get(&search);
    while r.status == 503 && started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
        r = get(&search);
    }
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(labels_of(&r.json()), ["r00007"]);
}

/// Regression: each CSV answer started two threads and held a database
/// connection for as long as its reader trickled; 300 slow readers made
/// 619 threads, 30 took every PostgreSQL connection. Streams now count in
/// the share of heavy work: the rest get 503 at once, the light GET is
/// answered, and threads (and connections) stay bounded.
#[test]
fn slow_csv_readers_took_every_thread_and_connection() {
    let db = TestDb::new();
    public_project(&db, 400, 64);
    let s = Server::start(&db, &["--workers", "8"]);
    // The runtime's own threads, started by a first request.
    assert_eq!(get(&s.url("Pub/r00000/")).status, 200);
    let before = threads_of(s.pid());
    let mut readers = Vec::new();
    for _ in 0..40 {
        let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
        write!(
            c,
            "GET /records/Pub/?format=csv&columns=stdout HTTP/1.1\r\nHost: {}\r\n\r\n",
            s.addr()
        )
        .unwrap();
        readers.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let r = get(&s.url("Pub/r00001/"));
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let during = threads_of(s.pid());
    // Four streams (half of 8 threads), two threads each at most, over the
    // handler pool.
    assert!(
        during <= before + 8 + 8,
        "{before} threads before, {during} with 40 slow readers"
    );
    if db.is_pg() {
        let name = db.location.rsplit('/').next().unwrap().to_string();
        let conns = db.query(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND application_name = 'sumatra-server'"
        ));
        let n: u64 = conns[0][0].parse().unwrap();
        assert!(n <= 8 + 4 + 2, "{n} connections");
    }
    // The readers that got a place stream; the others got 503 at once.
    let mut statuses = Vec::new();
    for mut c in readers {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).unwrap();
        statuses.push(String::from_utf8_lossy(&head[9..12]).to_string());
    }
    let ok = statuses.iter().filter(|s| *s == "200").count();
    let busy = statuses.iter().filter(|s| *s == "503").count();
    assert_eq!(ok + busy, 40, "{statuses:?}");
    assert_eq!(ok, 4, "{statuses:?}");
}

/// Regression: `format=table+json&columns=stdout,stdout,stdout,stdout` held
/// every row four times (3.6 GB). Columns are deduplicated and the table
/// streams: the server grows by a few tens of megabytes at most.
#[test]
fn repeated_stdout_columns_took_gigabytes() {
    let db = TestDb::new();
    public_project(&db, 100, 1024);
    let s = Server::start(&db, &[]);
    // Warm up (the first request opens connections and caches).
    assert_eq!(get(&s.url("Pub/?format=table%2Bjson&limit=1")).status, 200);
    let before = peak_kib(s.pid());
    let resp =
        ureq::get(&s.url("Pub/?format=table%2Bjson&columns=stdout,stdout,stdout,stdout,label"))
            .call()
            .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["columns"], json!(["stdout", "label"]));
    assert_eq!(doc["count"], json!(100));
    assert_eq!(doc["rows"].as_array().unwrap().len(), 100);
    let grew = peak_kib(s.pid()).saturating_sub(before);
    assert!(
        grew < 40 * 1024,
        "the server grew by {grew} KiB for a 100 MiB table"
    );
}

/// Regression: `?compare=huge,huge,...` of one 15.5 MB record ten times
/// took 1.45 GB, four at once 5.1 GB. A comparison is of distinct records,
/// long texts are cut (the whole text a link away), and four comparisons
/// of ten large records grow the server by tens of megabytes at most.
#[test]
fn repeated_comparisons_of_a_huge_record_took_gigabytes() {
    let db = TestDb::new();
    public_project(&db, 12, 4096);
    let s = Server::start(&db, &[]);
    let html = |q: &str| {
        request(
            "GET",
            &s.url(&format!("Pub/?{q}")),
            &[("Accept", "text/html")],
            None,
        )
    };
    // Warm up with a light request (threads and connections exist).
    assert_eq!(get(&s.url("Pub/?limit=1")).status, 200);
    let ten = (0..10)
        .map(|i| format!("r{i:05}"))
        .collect::<Vec<_>>()
        .join(",");
    let before = peak_kib(s.pid());
    let pages: Vec<_> = (0..4)
        .map(|_| {
            let url = s.url(&format!("Pub/?compare={ten}"));
            std::thread::spawn(move || request("GET", &url, &[("Accept", "text/html")], None))
        })
        .collect();
    for p in pages {
        let r = p.join().unwrap();
        assert_eq!(r.status, 200);
        assert!(
            r.body
                .contains("more characters: the record&#x27;s page shows the whole text"),
            "cut texts say so"
        );
        assert!(r.body.len() < 2 * 1024 * 1024, "{} bytes", r.body.len());
    }
    let grew = peak_kib(s.pid()).saturating_sub(before);
    eprintln!("four comparisons of ten 4 MiB records: +{grew} KiB");
    // One record read at a time (its text, its parse), about four times
    // its size while it is read; 5.1 GB before.
    assert!(
        grew < 96 * 1024,
        "four comparisons of ten 4 MiB records grew the server by {grew} KiB"
    );
    // The same record ten times is one record: nothing to compare.
    let r = html(&format!("compare={}", ["r00001"; 10].join(",")));
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("tick two to 10 different ones (you ticked 1)"),
        "{}",
        r.body
    );
    let r = html(&format!(
        "compare={}",
        (0..11)
            .map(|i| format!("r{i:05}"))
            .collect::<Vec<_>>()
            .join(",")
    ));
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("at most 10 different records"),
        "{}",
        r.body
    );
}

/// Regression: after SIGTERM the server said "stopped" and kept burning CPU
/// for minutes. Work still running when the grace period ends is stopped,
/// and the process exits.
#[test]
fn sigterm_with_heavy_work_running_ends_the_process_within_its_grace() {
    let db = TestDb::new();
    public_project(&db, 300, 128);
    let mut s = Server::start(&db, &["--query-timeout", "120", "--shutdown-grace", "0.1"]);
    let path = format!("/records/Pub/?q={}&format=json", heavy_query());
    let waiting: Vec<_> = (0..3)
        .map(|_| abandon(&s.addr(), &path, Duration::from_secs(20)))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(s.stop(), Some(0));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "exited after {took:?}");
    let log = s.log();
    assert!(log.contains("sumatra-server: stopped"), "{log}");
    // The heavy work was stopped, not finished: none of it answered 200.
    assert!(
        !log.lines()
            .any(|l| l.contains("/records/Pub/?q=") && l.contains(" 200 ")),
        "{log}"
    );
    drop(waiting);
}

/// Regression: `reason ~ 'école'` did not find "ÉCOLE", and the two
/// engines disagreed. `~` folds case by Unicode's rules on both.
#[test]
fn contains_folds_case_by_unicode_rules() {
    let db = TestDb::new();
    load(
        &db,
        "Pub",
        vec![
            record(1, "ÉCOLE normale", 0),
            record(2, "école d'été", 0),
            record(3, "Straße", 0),
            record(4, "ecole", 0),
        ],
    );
    db.ok(&["grant", "anonymous", "Pub"]);
    let s = Server::start(&db, &[]);
    let find = |q: &str| {
        let r = get(&s.url(&format!("Pub/?q={}&format=json&sort=label", encode(q))));
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        labels_of(&r.json())
    };
    assert_eq!(find("reason ~ école"), ["r00001", "r00002"]);
    assert_eq!(find("reason ~ 'ÉCOLE'"), ["r00001", "r00002"]);
    assert_eq!(find("reason ~ STRASSE"), Vec::<String>::new());
    assert_eq!(find("reason ~ STRAßE"), ["r00003"]);
    assert_eq!(find("reason !~ École"), ["r00003", "r00004"]);
    assert_eq!(find("tag ~ T"), ["r00001", "r00002", "r00003", "r00004"]);
}

/// Regression: a search of a small project read other projects' index
/// entries (`params.secret_flag = 1` took 7.3 ms against 0.44 ms when an
/// unreadable project held the value): a timing oracle. Entries carry their
/// project and every search reads its own only.
#[test]
fn a_search_never_reads_another_projects_index_entries() {
    let db = TestDb::new();
    let mut secret: Vec<Value> = (0..300).map(|i| record(i, "s", 0)).collect();
    for r in &mut secret {
        r["parameters"] = json!({"content": "secret_flag = 1", "type": "SimpleParameterSet"});
    }
    load(&db, "Secret", secret);
    public_project(&db, 5, 0);
    let s = Server::start(&db, &[]);
    let r = get(&s.url(&format!(
        "Pub/?q={}&format=json",
        encode("params.secret_flag = 1")
    )));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["count"], json!(0));
    // Indexed under their own project, as the searches read them.
    let rows = db.query(
        "SELECT project_id, count(*) FROM record_params WHERE key = 'secret_flag' GROUP BY project_id",
    );
    assert_eq!(rows, vec![vec!["Secret".to_string(), "300".to_string()]]);
}

/// Regression: CSV let formulas through behind a space, a non-breaking
/// space, a full-width `＝` or a `;`, and named a non-ASCII project's file
/// in raw UTF-8.
#[test]
fn csv_defuses_hidden_formulas_and_names_files_for_every_client() {
    let db = TestDb::new();
    let hostile = [" =1+1", "\u{a0}=cmd()", "\u{FF1D}HYPERLINK(1)", "x;=2+2"];
    load(
        &db,
        "Écoles",
        hostile
            .iter()
            .enumerate()
            .map(|(i, r)| record(i, r, 0))
            .collect(),
    );
    db.ok(&["grant", "anonymous", "Écoles"]);
    let s = Server::start(&db, &[]);
    let r = get(&s.url("%C3%89coles/?format=csv&columns=label,reason&sort=label"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "label,reason\r\nr00000,' =1+1\r\nr00001,'\u{a0}=cmd()\r\nr00002,'\u{FF1D}HYPERLINK(1)\r\nr00003,\"'x;=2+2\"\r\n"
    );
    assert_eq!(
        r.header("Content-Disposition"),
        Some("inline; filename=\"_coles.csv\"; filename*=UTF-8''%C3%89coles.csv")
    );
}

/// Regression: the transport's own answers (408, 413, 503) lacked the
/// security headers every other answer has.
#[test]
fn the_transports_own_answers_carry_the_security_headers() {
    let db = TestDb::new();
    let s = Server::start(&db, &["--max-body", "100"]);
    let (status, headers, _) = raw(
        &s.addr(),
        format!(
            "PUT /records/P/x/ HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\n\
             Expect: 100-continue\r\n\r\n",
            s.addr()
        )
        .as_bytes(),
    );
    assert_eq!(status, 413);
    for name in [
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "cache-control",
    ] {
        assert!(
            headers.iter().any(|(k, _)| k == name),
            "{name}: {headers:?}"
        );
    }
}

/// Regression: `--help` printed `SUMATRA_DB` with its password, and a URL
/// with `?password=` was printed whole in errors.
#[test]
fn a_database_password_is_never_printed() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .env("SUMATRA_DB", "postgresql://alice:hunter2@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("SUMATRA_DB"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
    for url in [
        "postgresql://alice:hunter2@127.0.0.1:1/x",
        "postgresql://alice@127.0.0.1:1/x?password=hunter2",
        // A password with `?` in it ended the credentials too early.
        "postgresql://alice:hunter2?no@127.0.0.1:1/x",
    ] {
        let out = std::process::Command::new(BIN)
            .args(["--db", url, "users"])
            .output()
            .unwrap();
        let err = fails(out, &["users"]);
        assert!(err.contains("postgresql://alice@127.0.0.1:1/x"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

/// Regression: behind the README's nginx every client was 127.0.0.1, so
/// five wrong passwords under other names made the right password get 429
/// for five minutes. With `--trust-proxy`, the forwarded address counts: a
/// guesser at one address never locks out the right password at another.
#[test]
fn a_guesser_behind_the_proxy_locked_out_everyone() {
    let db = TestDb::new();
    db.useradd("alice", "right");
    db.ok(&["grant", "alice", "P", "--level", "read"]);
    let s = Server::start(
        &db,
        &["--trust-proxy", "127.0.0.1", "--login-throttle", "3,5,300"],
    );
    let url = s.url("P/");
    let from = |addr: &str, user: &str, pw: &str| {
        request(
            "GET",
            &url,
            &[
                ("Accept", "application/json"),
                ("Authorization", &basic(user, pw)),
                ("X-Forwarded-For", &format!("{addr}, 127.0.0.1")),
            ],
            None,
        )
        .status
    };
    for i in 0..8 {
        let st = from(
            "203.0.113.9",
            if i % 2 == 0 { "alice" } else { "bob" },
            "wrong",
        );
        assert_eq!(st, if i < 5 { 401 } else { 429 }, "guess {i}");
    }
    assert_eq!(
        from("203.0.113.9", "alice", "right"),
        429,
        "the guesser's address is slowed"
    );
    assert_eq!(
        from("198.51.100.7", "alice", "right"),
        200,
        "elsewhere the right password works"
    );
    // The log is read from the server's stderr as it comes.
    let logged = |line: &str| {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !s.log().contains(line) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        s.log().contains(line)
    };
    assert!(logged("203.0.113.9 GET /records/P/ 429"), "{}", s.log());
    assert!(logged("198.51.100.7 GET /records/P/ 200"), "{}", s.log());
}

/// Without `--trust-proxy`, X-Forwarded-For is ignored (anyone can send it)
/// and the server says once that it seems to be behind a proxy.
#[test]
fn forwarded_addresses_are_ignored_unless_the_proxy_is_trusted() {
    let db = TestDb::new();
    db.useradd("alice", "right");
    db.ok(&["grant", "alice", "P", "--level", "read"]);
    let s = Server::start(&db, &["--login-throttle", "3,3,300"]);
    let url = s.url("P/");
    let status = |fwd: &str, pw: &str| {
        request(
            "GET",
            &url,
            &[
                ("Accept", "application/json"),
                ("Authorization", &basic("alice", pw)),
                ("X-Forwarded-For", fwd),
            ],
            None,
        )
        .status
    };
    for i in 0..3 {
        assert_eq!(status(&format!("192.0.2.{i}"), "wrong"), 401);
    }
    // A forged new address does not reset the count.
    assert_eq!(status("192.0.2.99", "right"), 429);
    let log = s.log();
    assert_eq!(
        log.matches("seems to be behind a proxy").count(),
        1,
        "{log}"
    );
    assert!(log.contains("--trust-proxy 127.0.0.1"), "{log}");
    assert!(!log.contains("192.0.2."), "{log}");
}
