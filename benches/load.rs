//! The load tool (issue 6): starts the real server (release build) on a
//! temporary database, fills it, and measures throughput and latency over
//! keep-alive loopback connections, plus export/loaddata of 100 000 records
//! and the real Python client.
//!
//!     cargo bench --bench load                 # everything (about 2 minutes)
//!     cargo bench --bench load -- --quick      # shorter runs, no 100k / client parts
//!     cargo bench --bench load -- --client     # also the real Python client
//!
//! Load goes only to 127.0.0.1, bounded in time (BENCH_SECS, default 3 s per
//! scenario) and count. Results are printed as a Markdown table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sumatra-server");

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn admin(db: &Path, args: &[&str], stdin: Option<&str>) {
    let mut c = Command::new(BIN);
    c.arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().expect("run sumatra-server");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(db: &Path) -> Server {
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("serve");
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let url = line
        .split("listening on http://")
        .nth(1)
        .expect("listening line")
        .trim()
        .to_string();
    let addr = url[..url.find('/').unwrap()].to_string();
    // Keep draining the request log so the pipe never fills.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Server { child, addr }
}

/// One keep-alive connection speaking just enough HTTP/1.1.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// Sends a request; returns (status, body length).
    fn call(&mut self, req: &[u8]) -> (u16, usize) {
        self.w.write_all(req).expect("send");
        let mut line = String::new();
        self.r.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).expect("body");
        (status, len)
    }
}

fn get(path: &str, auth: &str, accept: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nAccept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

fn put(path: &str, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nContent-Type: application/vnd.sumatra.record-v4+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn record(label: &str, tags: &[&str]) -> String {
    serde_json::json!({
        "label": label, "timestamp": "2026-11-26 05:07:39", "reason": "benchmark", "outcome": "", "duration": 1.25,
        "executable": {"path": "/usr/bin/python3", "version": "3.11.7", "name": "Python", "options": ""},
        "repository": {"url": "/home/alice/proj", "type": "GitRepository", "upstream": null},
        "main_file": "main.py", "version": "4659728da5bc46bbac431dbc4c8eebaffbcde543", "diff": "",
        "parameters": {"content": "a = 1\nb = 2", "type": "SimpleParameterSet"},
        "input_data": [], "script_arguments": "<parameters>",
        "launch_mode": {"type": "SerialLaunchMode", "parameters": {"working_directory": "/home/alice/proj", "options": null}},
        "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/home/alice/proj/Data"}},
        "input_datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/"}},
        "stdout_stderr": "done", "output_data": [{"path": "out.dat", "digest": "43a47cb379df2a7008fdeb38c6172278d000fdc4", "creation": "2026-11-26 05:07:44", "metadata": {"size": 2500, "mimetype": null, "encoding": null}}],
        "tags": tags, "user": "Alice <a@example.org>",
        "dependencies": [{"name": "numpy", "path": "/usr/lib/python3/numpy", "version": "1.26.4", "module": "python", "diff": "", "source": null}],
        "platforms": [{"system_name": "Linux", "ip_addr": "127.0.0.1", "architecture_bits": "64bit", "machine": "x86_64", "architecture_linkage": "ELF", "version": "#1 SMP", "release": "6.1", "network_name": "bench", "processor": ""}],
        "repeats": null,
    })
    .to_string()
}

struct Outcome {
    requests: u64,
    errors: u64,
    secs: f64,
    lat: Vec<u32>,
    starved: usize,
}

/// Runs `conns` connections for `secs`; `make(conn_index, n)` builds each request.
fn run(
    addr: &str,
    conns: usize,
    secs: f64,
    make: Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>,
    ok: &'static [u16],
) -> Outcome {
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|i| {
            let (addr, make, errors) = (addr.to_string(), make.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr);
                let mut lat = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let req = make(i, n);
                    let t = Instant::now();
                    let (status, _) = c.call(&req);
                    lat.push(t.elapsed().as_micros() as u32);
                    if !ok.contains(&status) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                lat
            })
        })
        .collect();
    let per_conn: Vec<Vec<u32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let secs = start.elapsed().as_secs_f64();
    let starved = per_conn.iter().filter(|l| l.is_empty()).count();
    let mut lat: Vec<u32> = per_conn.into_iter().flatten().collect();
    lat.sort_unstable();
    Outcome {
        requests: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs,
        lat,
        starved,
    }
}

fn pct(lat: &[u32], p: f64) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    lat[((lat.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn row(name: &str, conns: usize, o: &Outcome) -> String {
    format!(
        "| {name} | {conns} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
        o.requests as f64 / o.secs,
        pct(&o.lat, 0.5),
        pct(&o.lat, 0.99),
        pct(&o.lat, 1.0),
        o.errors,
        o.starved
    )
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

/// Runs a command to completion; returns (seconds, peak RSS in MB).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also reports its peak memory
fn timed(db: &Path, args: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    let child = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 gives this child's own peak RSS (ru_maxrss, KiB).
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(rc > 0 && status == 0, "{args:?} failed");
    (t.elapsed().as_secs_f64(), usage.ru_maxrss as f64 / 1024.0)
}

/// Ten parameters of record `i`, as Sumatra's SimpleParameterSet writes them.
fn params10(i: usize) -> String {
    format!(
        "n = {}\\nseed = {}\\nlr = {}\\ndistr = \\\"{}\\\"\\nflag = {}\\nsteps = {}\\ndt = {}\\nmodel = \\\"m{}\\\"\\nwidth = {}\\ndepth = {}",
        i % 1000,
        i % 17,
        (i % 10) as f64 / 1000.0,
        if i % 2 == 0 { "normal" } else { "uniform" },
        if i % 3 == 0 { "True" } else { "False" },
        100 * (i % 50),
        0.01 * (i % 7) as f64,
        i % 5,
        i % 64,
        i % 12
    )
}

fn write_export(path: &Path, project: &str, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(f, "{{\"sumatra_server_export\": 1, \"projects\": [{{\"id\": \"{project}\", \"name\": \"\", \"description\": \"\", \"records\": [").unwrap();
    for i in 0..n {
        let tags: &[&str] = if i % 100 == 0 { &["rare"] } else { &["common"] };
        let r = record(&format!("r{i:06}"), tags)
            .replace(
                "2026-11-26 05:07:39",
                &format!(
                    "2026-01-01 {:02}:{:02}:{:02}",
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60
                ),
            )
            .replace("a = 1\\nb = 2", &params10(i));
        if i > 0 {
            f.write_all(b",\n").unwrap();
        }
        f.write_all(r.as_bytes()).unwrap();
    }
    f.write_all(b"]}]}\n").unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let client = args.iter().any(|a| a == "--client");
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 1.0 } else { 3.0 });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    admin(&db, &["init"], None);
    // A real bcrypt cost (12): the credentials cache is what makes this fast.
    admin(
        &db,
        &["useradd", "alice", "--password-stdin"],
        Some("alicepw\n"),
    );
    admin(&db, &["grant", "alice", "P1k", "--level", "admin"], None);
    admin(&db, &["grant", "alice", "Writes", "--level", "admin"], None);
    let auth = "Basic YWxpY2U6YWxpY2Vwdw=="; // alice:alicepw
    let server = start(&db);
    let addr = server.addr.clone();
    let idle_rss = rss_kb(server.child.id());

    // Fill a 1 000-record project over HTTP.
    let mut c = Conn::open(&addr);
    for i in 0..1000 {
        let tags: &[&str] = if i % 10 == 0 { &["tenth"] } else { &["other"] };
        let (s, _) = c.call(&put(
            &format!("/records/P1k/r{i:04}/"),
            auth,
            &record(&format!("r{i:04}"), tags),
        ));
        assert_eq!(s, 201);
    }

    let mut rows = Vec::new();
    let vendor_rec = "application/vnd.sumatra.record-v4+json, application/json";
    let vendor_proj = "application/vnd.sumatra.project-v4+json, application/json";
    for conns in [1, 16, 64] {
        let a = auth.to_string();
        let o = run(
            &addr,
            conns,
            secs,
            Arc::new(move |_, n| get(&format!("/records/P1k/r{:04}/", n % 1000), &a, vendor_rec)),
            &[200],
        );
        rows.push(row("GET record (authenticated)", conns, &o));
    }
    let a = auth.to_string();
    let o = run(
        &addr,
        8,
        secs,
        Arc::new(move |_, _| get("/records/P1k/", &a, vendor_proj)),
        &[200],
    );
    rows.push(row("GET project, 1 000 records (JSON)", 8, &o));
    let a = auth.to_string();
    let o = run(
        &addr,
        8,
        secs,
        Arc::new(move |_, _| get("/records/P1k/?tags=tenth", &a, vendor_proj)),
        &[200],
    );
    rows.push(row("GET project ?tags= (100 of 1 000)", 8, &o));
    let a = auth.to_string();
    let o = run(
        &addr,
        8,
        secs,
        Arc::new(move |_, _| get("/records/P1k/", &a, "text/html")),
        &[200],
    );
    rows.push(row("GET project page (HTML, 50 rows)", 8, &o));
    for conns in [1, 8] {
        let a = auth.to_string();
        let o = run(
            &addr,
            conns,
            secs,
            Arc::new(move |i, n| {
                let label = format!("c{conns}-{i}-{n}");
                put(
                    &format!("/records/Writes/{label}/"),
                    &a,
                    &record(&label, &["new"]),
                )
            }),
            &[201],
        );
        rows.push(row("PUT new record", conns, &o));
    }
    let a = auth.to_string();
    let o = run(
        &addr,
        8,
        secs,
        Arc::new(move |i, n| {
            let label = format!("r{:04}", (i as u64 * 125 + n) % 1000);
            put(
                &format!("/records/P1k/{label}/"),
                &a,
                &record(&label, &["tenth"]),
            )
        }),
        &[200],
    );
    rows.push(row("PUT update of existing record", 8, &o));
    let busy_rss = rss_kb(server.child.id());

    println!("\n### Load (release build, {secs} s per row, load generator on the same 2 cores)\n");
    println!("| scenario | connections | req/s | p50 ms | p99 ms | max ms | errors | connections never served |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nServer memory: {:.1} MB idle, {:.1} MB after the runs above.",
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0
    );

    if !quick {
        big(dir.path(), auth);
    }
    if client {
        python_client(&addr);
    }
    drop(server);
}

/// 100 000 records: loaddata, export, and the project views.
fn big(dir: &Path, auth: &str) {
    let file = dir.join("big.json");
    write_export(&file, "Big", 100_000);
    let db = dir.join("big.db");
    admin(&db, &["init"], None);
    admin(
        &db,
        &["useradd", "alice", "--password-stdin"],
        Some("alicepw\n"),
    );
    let (load_s, load_mb) = timed(&db, &["loaddata", file.to_str().unwrap()]);
    admin(&db, &["grant", "alice", "Big", "--level", "read"], None);
    let out = dir.join("out.json");
    let (export_s, export_mb) = timed(&db, &["export", "Big", "-o", out.to_str().unwrap()]);
    let size = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    let server = start(&db);
    let mut c = Conn::open(&server.addr);
    let mut time = |req: Vec<u8>| {
        let mut best = f64::MAX;
        let mut len = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let (s, l) = c.call(&req);
            assert_eq!(s, 200);
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
            len = l;
        }
        (best, len)
    };
    let (json_ms, json_len) = time(get("/records/Big/", auth, "application/json"));
    let (html_ms, _) = time(get("/records/Big/", auth, "text/html"));
    let (tag_ms, _) = time(get("/records/Big/?tags=rare", auth, "application/json"));
    let (tag_html_ms, _) = time(get("/records/Big/tagged/rare/", auth, "text/html"));
    let (last_ms, _) = time(get("/records/Big/last/", auth, "application/json"));
    // Finding records (SPEC 7.5): 100 000 records of 10 parameters each.
    let q = "/records/Big/?q=params.n%20%3E%20500%20and%20tag%20%3D%20rare";
    let (query_ms, _) = time(get(q, auth, "application/json"));
    let (count_ms, _) = time(get(&format!("{q}&limit=10"), auth, "application/json"));
    let (sort_html_ms, _) = time(get("/records/Big/?sort=-params.n", auth, "text/html"));
    let (query_html_ms, _) = time(get(
        "/records/Big/?q=params.seed%20%3D%203%20and%20params.distr%20%3D%20normal&sort=-params.lr",
        auth,
        "text/html",
    ));
    let rss_before = rss_kb(server.child.id());
    let t = Instant::now();
    // The CSV streams (chunked): read to the end of a closing connection.
    let csv_len = {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let head = format!(
            "GET /records/Big/?format=csv HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert!(
            all.starts_with(b"HTTP/1.1 200"),
            "CSV: {:?}",
            String::from_utf8_lossy(&all[..all.len().min(200)])
        );
        let lines = all
            .split(|&b| b == b'\n')
            .filter(|l| l.ends_with(b"\r"))
            .count();
        assert!(lines > 100_000, "CSV: {lines} lines");
        all.len()
    };
    let csv_s = t.elapsed().as_secs_f64();
    let csv_rss = rss_kb(server.child.id());
    drop(c);
    drop(server);
    // Back-fill: the same database as schema version 1 left it (no
    // parameter index), migrated by `init`.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP INDEX records_to_index; DROP TABLE record_params; DROP TABLE record_deps; \
             ALTER TABLE records DROP COLUMN params_state; PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let (backfill_s, backfill_mb) = timed(&db, &["init"]);
    println!("\n### 100 000 records ({size:.0} MB export file)\n");
    println!("| operation | time | peak memory |");
    println!("|---|---|---|");
    println!("| loaddata | {load_s:.1} s | {load_mb:.0} MB |");
    println!("| export | {export_s:.1} s | {export_mb:.0} MB |");
    println!(
        "| GET project (JSON, {:.1} MB) | {json_ms:.0} ms | |",
        json_len as f64 / 1e6
    );
    println!("| GET project ?tags= (1 000 records, JSON) | {tag_ms:.1} ms | |");
    println!("| first HTML page of the project | {html_ms:.1} ms | |");
    println!("| HTML tag filter (tagged/rare/) | {tag_html_ms:.1} ms | |");
    println!("| GET last/ | {last_ms:.1} ms | |");
    println!("| query `params.n > 500 and tag = rare` (JSON, 500 matches) | {query_ms:.1} ms | |");
    println!("| the same, `limit=10` (with the count) | {count_ms:.1} ms | |");
    println!("| first HTML page sorted by `-params.n` | {sort_html_ms:.1} ms | |");
    println!("| HTML page of `params.seed = 3 and params.distr = normal`, sorted by `-params.lr` | {query_html_ms:.1} ms | |");
    println!(
        "| CSV of all 100 000 records ({:.0} MB) | {csv_s:.2} s | server RSS {:.0} MB before, {:.0} MB after |",
        csv_len as f64 / 1e6,
        rss_before as f64 / 1024.0,
        csv_rss as f64 / 1024.0
    );
    println!("| back-fill of the parameter index (`init` of a schema-1 database) | {backfill_s:.1} s | {backfill_mb:.0} MB |");
}

/// The real Python client against the server: labels() and save().
fn python_client(addr: &str) {
    // The venv that `cargo test` makes (target/tmp/client-venv).
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/client-venv/bin/python");
    if !venv.exists() {
        println!(
            "\n(real client skipped: run `cargo test` once to make {})",
            venv.display()
        );
        return;
    }
    let script = r#"
import sys, time, os, tempfile
os.chdir(tempfile.mkdtemp())
from sumatra.recordstore.http_store import HttpRecordStore
from sumatra.recordstore import serialization
url = sys.argv[1]
s = HttpRecordStore(url, "alice", "alicepw")
t = time.time(); labels = s.labels("P1k"); t_labels = time.time() - t
assert len(labels) == 1000, len(labels)
rec = s.get("P1k", "r0000")
t = time.time()
for i in range(200):
    rec.label = "client%03d" % i
    s.save("ClientSaves", rec)  # a project of its own: has_project() lists it each time
t_save = (time.time() - t) / 200
print("| `labels()` on 1 000 records | %.2f s |" % t_labels)
print("| `save()` of 200 records | %.1f ms each |" % (t_save * 1000))
"#;
    println!("\n### The real Python client (Sumatra 0.8.1)\n");
    println!("| call | time |");
    println!("|---|---|");
    let out = Command::new(venv)
        .args(["-c", script, &format!("http://{addr}/records/")])
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        println!("client failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}
