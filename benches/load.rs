//! The load tool (issues 6, 11, 12): starts the real server (release
//! build) on a temporary database, fills it, and measures throughput and
//! latency over keep-alive loopback connections, then loaddata, export,
//! views, queries and CSV of 100 000 records, and the real Python client.
//! Every scenario runs on both backends, SQLite (a file in a temporary
//! directory) and PostgreSQL (a throw-away cluster with PostgreSQL's
//! default durability, started from `/usr/lib/postgresql/*/bin` as the test
//! suite does), and the tables show them side by side; then two `serve`
//! processes share one PostgreSQL database.
//!
//!     cargo bench --bench load                   # everything (about 8 minutes)
//!     cargo bench --bench load -- --quick        # shorter runs, no 100k part
//!     cargo bench --bench load -- --client       # also the real Python client
//!     cargo bench --bench load -- --sqlite-only  # no PostgreSQL
//!     cargo bench --bench load -- --postgres-only  # no SQLite
//!     cargo bench --bench load -- --provenance [--records N]
//!         # SPEC 9.5 only: N records in chains of ten (default 1 000 000)
//!     cargo bench --bench load -- --record-get [--rounds N]
//!         # SPEC 11.4 only: authenticated record GETs on SQLite and on
//!         # PostgreSQL (by TCP and by its Unix socket), rounds alternating
//!     cargo bench --bench load -- --baseline OLD_BINARY
//!         # also PUTs of new records against OLD_BINARY (an earlier release
//!         # build), alternating with this one: what a change costs a write
//!
//! Load goes only to 127.0.0.1, bounded in time (BENCH_SECS, default 3 s per
//! scenario) and count. Results are printed as Markdown tables.

#[path = "../tests/pg.rs"]
mod pg;

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

fn admin(db: &str, args: &[&str], stdin: Option<&str>) {
    admin_with(BIN, db, args, stdin)
}

fn admin_with(bin: &str, db: &str, args: &[&str], stdin: Option<&str>) {
    let mut c = Command::new(bin);
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

fn start(db: &str) -> Server {
    start_with(BIN, db)
}

fn start_with(bin: &str, db: &str) -> Server {
    let mut child = Command::new(bin)
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
    record_with(label, tags, "a = 1\nb = 2")
}

fn record_with(label: &str, tags: &[&str], params: &str) -> String {
    serde_json::json!({
        "label": label, "timestamp": "2026-11-26 05:07:39", "reason": "benchmark", "outcome": "", "duration": 1.25,
        "executable": {"path": "/usr/bin/python3", "version": "3.11.7", "name": "Python", "options": ""},
        "repository": {"url": "/home/alice/proj", "type": "GitRepository", "upstream": null},
        "main_file": "main.py", "version": "4659728da5bc46bbac431dbc4c8eebaffbcde543", "diff": "",
        "parameters": {"content": params, "type": "SimpleParameterSet"},
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

/// Runs `conns` connections for `secs`, connection `i` to `addrs[i % len]`;
/// `make(conn_index, n)` builds each request.
fn run(
    addrs: &[&str],
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
            let addr = addrs[i % addrs.len()].to_string();
            let (make, errors) = (make.clone(), errors.clone());
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

/// One scenario's figures, as table cells: req/s, p50, p99, max.
fn cells(o: &Outcome) -> String {
    format!(
        "{:.0} | {:.2} | {:.2} | {:.2}",
        o.rate(),
        pct(&o.lat, 0.5),
        pct(&o.lat, 0.99),
        pct(&o.lat, 1.0)
    )
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }
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
fn timed(db: &str, args: &[&str]) -> (f64, f64) {
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
        if i.is_multiple_of(2) { "normal" } else { "uniform" },
        if i.is_multiple_of(3) { "True" } else { "False" },
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

/// The digest of the calibration file that every chained record reads.
fn calibration() -> String {
    format!("ca1b{:036x}", 1)
}

/// The digest of what the `i`-th chained record writes (never all zeros).
fn chain_digest(i: usize) -> String {
    format!("{:040x}", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15)
}

/// A data key as the client sends it.
fn data_key(path: &str, digest: &str) -> String {
    serde_json::json!({"path": path, "digest": digest, "creation": "2026-01-01 00:00:00",
                       "metadata": {"size": 2500, "mimetype": "application/octet-stream", "encoding": null}})
    .to_string()
}

/// SPEC 9.5's data: `n` records of 10 parameters in project `project`,
/// each reading the shared calibration file and its predecessor's output,
/// in chains of ten (record `i` is link `i % 10` of chain `i / 10`).
fn write_chains(path: &Path, project: &str, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(f, "{{\"sumatra_server_export\": 1, \"projects\": [{{\"id\": \"{project}\", \"name\": \"\", \"description\": \"\", \"records\": [").unwrap();
    for i in 0..n {
        let tags: &[&str] = if i % 100 == 0 { &["rare"] } else { &["common"] };
        let label = format!("r{i:07}");
        let mut inputs = vec![data_key("/data/calibration.h5", &calibration())];
        if i % 10 > 0 {
            inputs.push(data_key(
                &format!("/home/alice/proj/Data/r{:07}.dat", i - 1),
                &chain_digest(i - 1),
            ));
        }
        let r = record_with(&label, tags, "")
            .replace(
                "2026-11-26 05:07:39",
                &format!(
                    "2026-01-{:02} {:02}:{:02}:{:02}",
                    1 + i / 86_400,
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60
                ),
            )
            .replace(
                "\"content\":\"\"",
                &format!("\"content\":\"{}\"", params10(i)),
            )
            .replace(
                "\"input_data\":[]",
                &format!("\"input_data\":[{}]", inputs.join(",")),
            )
            .replace(
                "{\"path\":\"out.dat\",\"digest\":\"43a47cb379df2a7008fdeb38c6172278d000fdc4\"",
                &format!(
                    "{{\"path\":\"{label}.dat\",\"digest\":\"{}\"",
                    chain_digest(i)
                ),
            );
        if i > 0 {
            f.write_all(b",\n").unwrap();
        }
        f.write_all(r.as_bytes()).unwrap();
    }
    f.write_all(b"]}]}\n").unwrap();
}

/// The whole answer to a GET sent with `Connection: close` (a streamed
/// body is read to its end).
fn read_closing(addr: &str, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {AUTH}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    all
}

/// SPEC 9.5 on one backend: `n` chained records (the export `file`):
/// loaddata, lineage, file lookups, the record page, the files page,
/// SPEC 7.5's questions at this size, and the migration that indexes the
/// files of every record.
fn provenance(b: &Backend, n: usize, file: &Path) -> Vec<(String, String)> {
    let size = std::fs::metadata(file).unwrap().len() as f64 / 1e6;
    let db = b.new_db("chain");
    admin(&db, &["init"], None);
    admin(
        &db,
        &["useradd", "alice", "--password-stdin"],
        Some("alicepw\n"),
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, value: String| rows.push((name.to_string(), value));
    let (load_s, load_mb) = timed(&db, &["loaddata", file.to_str().unwrap()]);
    add(
        &format!("`loaddata` of the {size:.0} MB export (parameters and files indexed)"),
        format!("{load_s:.1} s, {load_mb:.0} MB"),
    );
    admin(&db, &["grant", "alice", "Chain", "--level", "read"], None);
    // A project whose records list the same files, with digests that link
    // nothing: the record page without Made from / Used by to show.
    let plain = b.dir.join("plain.json");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&plain).unwrap());
        let records: Vec<String> = (0..100)
            .map(|i| {
                record_with(&format!("p{i:03}"), &["common"], &params10(i))
                    .replace(
                        "\"input_data\":[]",
                        &format!(
                            "\"input_data\":[{},{}]",
                            data_key("/data/calibration.h5", &format!("{:040x}", 7_000_000 + i)),
                            data_key(
                                "/home/alice/proj/Data/prev.dat",
                                &format!("{:040x}", 8_000_000 + i)
                            )
                        ),
                    )
                    .replace(
                        "43a47cb379df2a7008fdeb38c6172278d000fdc4",
                        &format!("{:040x}", 9_000_000 + i),
                    )
                    .replace(
                        "\"repeats\":null",
                        "\"repeats\":null,\"project_id\":\"Plain\"",
                    )
            })
            .collect();
        write!(f, "[{}]", records.join(",\n")).unwrap();
    }
    admin(&db, &["loaddata", plain.to_str().unwrap()], None);
    admin(&db, &["grant", "alice", "Plain", "--level", "read"], None);
    let server = start(&db);
    let mut c = Conn::open(&server.addr);
    // The median of 21 calls, after one to warm up; an answer other than
    // 200 is the row's figure (with how long it took).
    let mut time = |path: &str, accept: &str| -> Result<f64, String> {
        let req = get(path, AUTH, accept);
        let t = Instant::now();
        let (s, _) = c.call(&req);
        if s != 200 {
            return Err(format!("{s} after {:.1} s", t.elapsed().as_secs_f64()));
        }
        let mut t: Vec<f64> = (0..21)
            .map(|_| {
                let t = Instant::now();
                let (s, _) = c.call(&req);
                assert_eq!(s, 200, "{path}");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    };
    let ms = |t: f64| format!("{t:.2} ms");
    // A record at the end of a chain in the middle of the store: 9 links
    // up to the chain's first record, and the shared file.
    let end = (n / 2) / 10 * 10 + 9;
    let mid = end - 4;
    let json = "application/json";
    let html = "text/html";
    let views: Vec<(String, String, &str)> = vec![
        (
            "lineage of a chain's last record, `direction=up&depth=10` (10 records, JSON)".into(),
            format!("/records/Chain/r{end:07}/lineage/?direction=up&depth=10"),
            json,
        ),
        (
            "lineage of a chain's middle record, both ways, `depth=10` (JSON)".into(),
            format!("/records/Chain/r{mid:07}/lineage/?depth=10"),
            json,
        ),
        (
            "the lineage page (graph drawn as SVG), the same".into(),
            format!("/records/Chain/r{mid:07}/lineage/?depth=10"),
            html,
        ),
        (
            "`P?digest=` of a chain's file (one producer, one user, JSON)".into(),
            format!("/records/?digest={}", chain_digest(mid)),
            json,
        ),
        (
            format!("`P?digest=` of the calibration file (read by all {n}: first page of 100, counted to 10 000)"),
            format!("/records/?digest={}", calibration()),
            json,
        ),
        (
            format!("the same, the page at offset {}", n / 2),
            format!("/records/?digest={}&offset={}", calibration(), n / 2),
            json,
        ),
        (
            "record page with Made from / Used by (HTML)".into(),
            format!("/records/Chain/r{mid:07}/"),
            html,
        ),
        (
            "record page of the same shape whose files link nothing (HTML)".into(),
            "/records/Plain/p050/".into(),
            html,
        ),
        (
            "the project's files, first page (HTML)".into(),
            "/records/Chain/?view=files".into(),
            html,
        ),
        (
            "query `parent exists and params.n = 5` (JSON, `limit=10`, with the count)".into(),
            "/records/Chain/?q=parent%20exists%20and%20params.n%20%3D%205&limit=10".into(),
            json,
        ),
        (
            "query `params.n > 500 and tag = rare` (JSON, `limit=10`, with the count)".into(),
            "/records/Chain/?q=params.n%20%3E%20500%20and%20tag%20%3D%20rare&limit=10".into(),
            json,
        ),
        (
            "first HTML page sorted by `-params.n`".into(),
            "/records/Chain/?sort=-params.n".into(),
            html,
        ),
    ];
    for (name, path, accept) in &views {
        match time(path, accept) {
            Ok(t) => add(name, ms(t)),
            Err(e) => add(name, e),
        }
    }
    drop(c);
    // Streamed answers, each on a connection of its own read to its end.
    let streamed = [
        (
            "PROV-JSON of a chain's lineage (10 records, streamed)",
            format!("/records/Chain/r{end:07}/lineage/?direction=up&depth=10&format=prov"),
        ),
        (
            "RO-Crate of a chain's lineage (10 records, streamed)",
            format!("/records/Chain/r{end:07}/lineage/?direction=up&depth=10&format=ro-crate"),
        ),
        (
            "RO-Crate of a query's 1 000 matches (`tag = rare`, limit=1000)",
            "/records/Chain/?q=tag%20%3D%20rare&limit=1000&format=ro-crate".to_string(),
        ),
    ];
    for (name, path) in streamed {
        let mut t: Vec<f64> = (0..11)
            .map(|_| {
                let t = Instant::now();
                let all = read_closing(&server.addr, &path);
                assert!(all.starts_with(b"HTTP/1.1 200"), "{path}");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        t.sort_by(f64::total_cmp);
        add(name, ms(t[t.len() / 2]));
    }
    let rss_before = rss_kb(server.child.id());
    let t = Instant::now();
    let lines = {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let head = format!(
            "GET /records/Chain/?format=csv HTTP/1.1\r\nHost: bench\r\nAuthorization: {AUTH}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = Vec::new();
        let mut lines = 0usize;
        while r.read_until(b'\n', &mut line).unwrap() > 0 {
            if line.ends_with(b"\r\n") {
                lines += 1;
            }
            line.clear();
        }
        lines
    };
    let csv_s = t.elapsed().as_secs_f64();
    let csv_rss = rss_kb(server.child.id());
    assert!(lines > n, "CSV: {lines} lines");
    add(
        &format!("CSV of all {n} records (streamed)"),
        format!(
            "{csv_s:.1} s, {:.0} rows/s; server memory {:.0} MB before, {:.0} MB after",
            n as f64 / csv_s,
            rss_before as f64 / 1024.0,
            csv_rss as f64 / 1024.0
        ),
    );
    drop(server);
    // The migration: the same database as schema 4 left it (no file
    // index), brought to this schema by `init`.
    match &b.cluster {
        None => {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute_batch("DROP TABLE record_files; DROP TABLE tokens; DROP TABLE trash; DROP TABLE trashed_projects; DROP TABLE history; PRAGMA user_version = 4;")
                .unwrap();
        }
        Some(_) => {
            let mut client = postgres::Client::connect(&db, postgres::NoTls).unwrap();
            client
                .batch_execute("DROP TABLE record_files; DROP TABLE tokens; DROP TABLE trash; DROP TABLE trashed_projects; DROP TABLE history; UPDATE sumatra_schema SET version = 4;")
                .unwrap();
        }
    }
    let (migrate_s, migrate_mb) = timed(&db, &["init", "--yes"]);
    add(
        "migration indexing every record's files (`init` of a schema-4 database)",
        format!("{migrate_s:.1} s, {migrate_mb:.0} MB"),
    );
    rows
}

/// Where one backend's databases are made.
struct Backend {
    name: &'static str,
    dir: PathBuf,
    cluster: Option<pg::Cluster>,
}

impl Backend {
    /// A new, empty database: its `--db`.
    fn new_db(&self, name: &str) -> String {
        match &self.cluster {
            None => self.dir.join(format!("{name}.db")).display().to_string(),
            Some(c) => c.new_database(),
        }
    }
}

/// What one backend measured: load rows, memory, 100k rows, client rows.
#[derive(Default)]
struct Measured {
    load: Vec<(String, usize, Outcome)>,
    memory: (f64, f64),
    big: Vec<(String, String)>,
    client: Vec<(String, String)>,
}

const AUTH: &str = "Basic YWxpY2U6YWxpY2Vwdw=="; // alice:alicepw

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    let (quick, client, sqlite_only) = (has("--quick"), has("--client"), has("--sqlite-only"));
    // `--write-export FILE`: only write the 100 000-record export (to load by hand).
    if let Some(i) = args.iter().position(|a| a == "--write-export") {
        let file = args.get(i + 1).expect("--write-export FILE");
        write_export(Path::new(file), "Big", 100_000);
        return;
    }
    // `--provenance [--records N]`: SPEC 9.5 (N chained records, default
    // one million), then `--baseline` if given; nothing else.
    let chains = has("--provenance").then(|| {
        args.iter()
            .position(|a| a == "--records")
            .map_or(1_000_000, |i| {
                args.get(i + 1)
                    .and_then(|n| n.parse().ok())
                    .expect("--records N")
            })
    });
    // `--write-chains FILE N`: only write N chained records (to load by hand).
    if let Some(i) = args.iter().position(|a| a == "--write-chains") {
        let file = args.get(i + 1).expect("--write-chains FILE N");
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .expect("--write-chains FILE N");
        write_chains(Path::new(file), "Chain", n);
        return;
    }
    let baseline = args
        .iter()
        .position(|a| a == "--baseline")
        .map(|i| args.get(i + 1).expect("--baseline OLD_BINARY").clone());
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 1.0 } else { 3.0 });
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![Backend {
        name: "SQLite",
        dir: dir.path().to_path_buf(),
        cluster: None,
    }];
    if has("--postgres-only") {
        backends.clear();
    }
    if !sqlite_only {
        backends.push(Backend {
            name: "PostgreSQL",
            dir: dir.path().to_path_buf(),
            cluster: Some(pg::Cluster::start_durable()),
        });
    }
    if let Some(n) = chains {
        let file = dir.path().join("chains.json");
        eprintln!("load tool: writing {n} chained records ...");
        write_chains(&file, "Chain", n);
        let measured: Vec<Vec<(String, String)>> = backends
            .iter()
            .map(|b| {
                eprintln!("load tool: provenance on {} ...", b.name);
                let rows = provenance(b, n, &file);
                // Each backend's figures as soon as they are known.
                for (k, v) in &rows {
                    eprintln!("  {} | {k} | {v}", b.name);
                }
                rows
            })
            .collect();
        let names: Vec<&str> = backends.iter().map(|b| b.name).collect();
        print_pairs(
            &format!("{n} records in chains of ten (SPEC 9.5)"),
            "operation",
            &names,
            measured.iter(),
        );
        if let Some(old) = baseline {
            for b in &backends {
                put_cost(&old, b, secs);
            }
        }
        return;
    }
    if has("--record-get") {
        let rounds = args
            .iter()
            .position(|a| a == "--rounds")
            .map_or(3, |i| args[i + 1].parse().expect("--rounds N"));
        record_get(&backends, secs, rounds);
        return;
    }
    let mut all = Vec::new();
    let mut two = None;
    for b in &backends {
        eprintln!("load tool: {} ...", b.name);
        let (mut m, db) = load(b, secs);
        if b.cluster.is_some() {
            two = Some(two_processes(&db, secs));
        }
        if !quick {
            m.big = big(b);
        }
        if client {
            m.client = python_client(&db);
        }
        all.push(m);
    }
    let names: Vec<&str> = backends.iter().map(|b| b.name).collect();
    print_load(&names, &all, secs);
    if let Some(rows) = two {
        println!("\n### Two `serve` processes on one PostgreSQL database ({secs} s per row)\n");
        println!("Connections alternate between the two processes; the same machine's 2 cores serve both, the database and the load.\n");
        println!("| scenario | connections | req/s | p50 ms | p99 ms | max ms | errors |");
        println!("|---|---|---|---|---|---|---|");
        for (name, conns, o) in &rows {
            println!("| {name} | {conns} | {} | {} |", cells(o), o.errors);
        }
    }
    if !quick {
        print_pairs(
            "100 000 records",
            "operation",
            &names,
            all.iter().map(|m| &m.big),
        );
    }
    if all.iter().any(|m| !m.client.is_empty()) {
        print_pairs(
            "The real Python client (Sumatra 0.8.1)",
            "call",
            &names,
            all.iter().map(|m| &m.client),
        );
    }
    if let Some(old) = baseline {
        for b in &backends {
            put_cost(&old, b, secs);
        }
    }
}

fn print_load(names: &[&str], all: &[Measured], secs: f64) {
    println!("\n### Load (release build, {secs} s per row, load generator on the same 2 cores)\n");
    let mut head = "| scenario | connections |".to_string();
    let mut rule = "|---|---|".to_string();
    for n in names {
        head += &format!(" {n} req/s | p50 ms | p99 ms | max ms |");
        rule += "---|---|---|---|";
    }
    println!("{head} errors |\n{rule}---|");
    for (i, (name, conns, _)) in all[0].load.iter().enumerate() {
        let mut line = format!("| {name} | {conns} |");
        let mut errors = 0;
        for m in all {
            let o = &m.load[i].2;
            line += &format!(" {} |", cells(o));
            errors += o.errors + o.starved as u64;
        }
        println!("{line} {errors} |");
    }
    println!();
    for (n, m) in names.iter().zip(all) {
        println!(
            "Server memory on {n}: {:.1} MB idle, {:.1} MB after the runs above.",
            m.memory.0, m.memory.1
        );
    }
}

/// A table of (name, value) rows, one value column per backend.
fn print_pairs<'a>(
    title: &str,
    what: &str,
    names: &[&str],
    all: impl Iterator<Item = &'a Vec<(String, String)>>,
) {
    let all: Vec<_> = all.collect();
    println!("\n### {title}\n");
    println!("| {what} | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (i, (name, _)) in all[0].iter().enumerate() {
        let values: Vec<&str> = all
            .iter()
            .map(|rows| rows.get(i).map_or("", |r| r.1.as_str()))
            .collect();
        println!("| {name} | {} |", values.join(" | "));
    }
}

/// A new database with alice (a real bcrypt cost, 12: the credentials
/// cache is what makes requests fast), admin of P1k.
fn alice_db(b: &Backend, name: &str) -> String {
    let db = b.new_db(name);
    admin(&db, &["init"], None);
    admin(
        &db,
        &["useradd", "alice", "--password-stdin"],
        Some("alicepw\n"),
    );
    admin(&db, &["grant", "alice", "P1k", "--level", "admin"], None);
    db
}

/// Puts P1k's 1 000 records over HTTP, a tenth of them tagged `tenth`.
fn fill_p1k(addr: &str) {
    let mut c = Conn::open(addr);
    for i in 0..1000 {
        let tags: &[&str] = if i % 10 == 0 { &["tenth"] } else { &["other"] };
        let (s, _) = c.call(&put(
            &format!("/records/P1k/r{i:04}/"),
            AUTH,
            &record(&format!("r{i:04}"), tags),
        ));
        assert_eq!(s, 201);
    }
}

/// A database like `load`'s: alice, admin of P1k, which holds 1 000
/// records put over HTTP.
fn filled(b: &Backend) -> String {
    let db = alice_db(b, "get");
    fill_p1k(&start(&db).addr);
    db
}

/// SPEC 11.4's figure: authenticated record GETs at 1, 16 and 64
/// connections on each backend (PostgreSQL by TCP on loopback and by its
/// Unix socket), one server of each running throughout and measured in
/// turn, `rounds` times; the medians and PostgreSQL's ratio to SQLite.
fn record_get(backends: &[Backend], secs: f64, rounds: usize) {
    let mut targets: Vec<(String, Server)> = Vec::new();
    for b in backends {
        let db = filled(b);
        if let Some(cluster) = &b.cluster {
            let name = &db[db.rfind('/').unwrap() + 1..];
            let socket = cluster.socket_url(name);
            targets.push((format!("{} (TCP)", b.name), start(&db)));
            targets.push((format!("{} (socket)", b.name), start(&socket)));
        } else {
            targets.push((b.name.to_string(), start(&db)));
        }
    }
    let conns = [1, 16, 64];
    // rates[target][conns] = req/s of each round
    let mut rates = vec![vec![Vec::new(); conns.len()]; targets.len()];
    for round in 0..rounds {
        for (t, (name, server)) in targets.iter().enumerate() {
            for (k, &n) in conns.iter().enumerate() {
                let o = run(&[server.addr.as_str()], n, secs, get_record(), &[200]);
                assert_eq!(o.errors + o.starved as u64, 0, "{name}: errors");
                eprintln!("round {round}: {name} x{n}: {:.0} req/s", o.rate());
                rates[t][k].push(o.rate());
            }
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!("\n### Authenticated record GET ({rounds} rounds of {secs} s, medians in req/s)\n");
    let names: Vec<&str> = targets.iter().map(|t| t.0.as_str()).collect();
    println!("| connections | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (k, n) in conns.iter().enumerate() {
        let base = median(&rates[0][k]);
        let cells: Vec<String> = (0..targets.len())
            .map(|t| {
                let m = median(&rates[t][k]);
                if t == 0 {
                    format!("{m:.0}")
                } else {
                    format!("{m:.0} ({:.2}x)", base / m)
                }
            })
            .collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
}

/// The load scenarios on one backend; its database's `--db` is returned
/// (the client and the second process use it).
fn load(b: &Backend, secs: f64) -> (Measured, String) {
    let db = alice_db(b, "bench");
    admin(&db, &["grant", "alice", "Writes", "--level", "admin"], None);
    let server = start(&db);
    let addr = server.addr.clone();
    let addrs = [addr.as_str()];
    let idle_rss = rss_kb(server.child.id());

    fill_p1k(&addr);

    let mut rows = Vec::new();
    for conns in [1, 16, 64] {
        let o = run(&addrs, conns, secs, get_record(), &[200]);
        rows.push(("GET record (authenticated)".to_string(), conns, o));
    }
    let views = [
        (
            "GET project, 1 000 records (JSON)",
            "/records/P1k/",
            VENDOR_PROJ,
        ),
        (
            "GET project ?tags= (100 of 1 000)",
            "/records/P1k/?tags=tenth",
            VENDOR_PROJ,
        ),
        (
            "GET project page (HTML, 50 rows)",
            "/records/P1k/",
            "text/html",
        ),
    ];
    for (name, path, accept) in views {
        let o = run(
            &addrs,
            8,
            secs,
            Arc::new(move |_, _| get(path, AUTH, accept)),
            &[200],
        );
        rows.push((name.to_string(), 8, o));
    }
    for conns in [1, 8] {
        let o = run(&addrs, conns, secs, put_new(&format!("c{conns}")), &[201]);
        rows.push(("PUT new record".to_string(), conns, o));
    }
    let o = run(&addrs, 8, secs, put_update(), &[200]);
    rows.push(("PUT update of existing record".to_string(), 8, o));
    let busy_rss = rss_kb(server.child.id());
    drop(server);
    let m = Measured {
        load: rows,
        memory: (idle_rss as f64 / 1024.0, busy_rss as f64 / 1024.0),
        ..Measured::default()
    };
    (m, db)
}

const VENDOR_REC: &str = "application/vnd.sumatra.record-v4+json, application/json";
const VENDOR_PROJ: &str = "application/vnd.sumatra.project-v4+json, application/json";

type Make = Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>;

fn get_record() -> Make {
    Arc::new(move |_, n| get(&format!("/records/P1k/r{:04}/", n % 1000), AUTH, VENDOR_REC))
}

/// PUTs of new records, labels starting with `prefix`.
fn put_new(prefix: &str) -> Make {
    let prefix = prefix.to_string();
    Arc::new(move |i, n| {
        let label = format!("{prefix}-{i}-{n}");
        put(
            &format!("/records/Writes/{label}/"),
            AUTH,
            &record(&label, &["new"]),
        )
    })
}

fn put_update() -> Make {
    Arc::new(move |i, n| {
        let label = format!("r{:04}", (i as u64 * 125 + n) % 1000);
        put(
            &format!("/records/P1k/{label}/"),
            AUTH,
            &record(&label, &["tenth"]),
        )
    })
}

/// Two `serve` processes on one PostgreSQL database (SPEC 8), connections
/// alternating between them.
fn two_processes(db: &str, secs: f64) -> Vec<(String, usize, Outcome)> {
    let (one, two) = (start(db), start(db));
    let addrs = [one.addr.as_str(), two.addr.as_str()];
    let mut rows = Vec::new();
    for conns in [16, 64] {
        let o = run(&addrs, conns, secs, get_record(), &[200]);
        rows.push(("GET record (authenticated)".to_string(), conns, o));
    }
    let o = run(&addrs, 8, secs, put_new("two"), &[201]);
    rows.push(("PUT new record".to_string(), 8, o));
    let o = run(&addrs, 8, secs, put_update(), &[200]);
    rows.push(("PUT update of existing record".to_string(), 8, o));
    rows
}

/// PUTs of new records with 10 parameters, authenticated record GETs and
/// an indexed search, by `old` (an earlier release build) and by this
/// build, alternating, each on a database of its own: what the changes
/// between them cost an ordinary request (SPEC 7.5: the index; 7.6: the
/// deadline and share machinery).
fn put_cost(old: &str, b: &Backend, secs: f64) {
    // (binary, scenario, connections, req/s)
    let mut runs: Vec<(usize, &'static str, usize, f64)> = Vec::new();
    for round in 0..3 {
        for (which, bin) in [old, BIN].into_iter().enumerate() {
            let db = b.new_db(&format!("cost-{round}-{which}"));
            admin_with(bin, &db, &["init"], None);
            admin_with(
                bin,
                &db,
                &["useradd", "alice", "--password-stdin"],
                Some("alicepw\n"),
            );
            admin_with(
                bin,
                &db,
                &["grant", "alice", "Writes", "--level", "admin"],
                None,
            );
            let server = start_with(bin, &db);
            for conns in [1, 8] {
                let make: Make = Arc::new(move |i, n| {
                    let label = format!("p{conns}-{i}-{n}");
                    let k = (i * 100_000 + n as usize) % 100_000;
                    // Two inputs and an output, as a run in a chain reads
                    // and writes (SPEC 9.5: what the file index costs).
                    let body = record_with(&label, &["new"], &params10(k)).replace(
                        "\"input_data\":[]",
                        &format!(
                            "\"input_data\":[{},{}]",
                            data_key("/data/calibration.h5", &calibration()),
                            data_key("/home/alice/proj/Data/prev.dat", &chain_digest(k))
                        ),
                    );
                    put(&format!("/records/Writes/{label}/"), AUTH, &body)
                });
                let o = run(&[server.addr.as_str()], conns, secs, make, &[201]);
                assert_eq!(o.errors, 0, "PUTs failed");
                runs.push((which, "PUT of a new record", conns, o.rate()));
            }
            // The record written first by the single connection.
            let first = "/records/Writes/p1-0-0/";
            for conns in [1, 16] {
                let make: Make = Arc::new(move |_, _| get(first, AUTH, VENDOR_REC));
                let o = run(&[server.addr.as_str()], conns, secs, make, &[200]);
                assert_eq!(o.errors, 0, "GETs failed");
                runs.push((which, "authenticated record GET", conns, o.rate()));
            }
            let search = format!(
                "/records/Writes/?q={}&format=json&limit=20",
                "params.n%20%3E%20500%20and%20tag%20%3D%20new"
            );
            for conns in [1, 8] {
                let path = search.clone();
                let make: Make = Arc::new(move |_, _| get(&path, AUTH, "application/json"));
                let o = run(&[server.addr.as_str()], conns, secs, make, &[200]);
                assert_eq!(o.errors, 0, "searches failed");
                runs.push((which, "indexed search, first 20", conns, o.rate()));
            }
        }
    }
    println!(
        "\n### `{old}` against this build ({secs} s per run, 3 rounds alternating, {})\n",
        b.name
    );
    println!("| scenario | connections | before: req/s per round | after: req/s per round | after / before (medians) |");
    println!("|---|---|---|---|---|");
    let mut scenarios: Vec<(&str, usize)> = Vec::new();
    for r in &runs {
        if !scenarios.contains(&(r.1, r.2)) {
            scenarios.push((r.1, r.2));
        }
    }
    for (scenario, conns) in scenarios {
        let of = |which| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter(|r| r.0 == which && r.1 == scenario && r.2 == conns)
                .map(|r| r.3)
                .collect();
            let shown: Vec<String> = v.iter().map(|r| format!("{r:.0}")).collect();
            v.sort_by(f64::total_cmp);
            (shown.join(", "), v[v.len() / 2])
        };
        let ((before, b), (after, a)) = (of(0), of(1));
        println!(
            "| {scenario} | {conns} | {before} | {after} | {:.2} |",
            a / b
        );
    }
}

/// 100 000 records: loaddata, export, the project views, queries, CSV and
/// the back-fill of the parameter index.
fn big(b: &Backend) -> Vec<(String, String)> {
    let file = b.dir.join("big.json");
    if !file.exists() {
        write_export(&file, "Big", 100_000);
    }
    let size = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    let db = b.new_db("big");
    admin(&db, &["init"], None);
    admin(
        &db,
        &["useradd", "alice", "--password-stdin"],
        Some("alicepw\n"),
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, value: String| rows.push((name.to_string(), value));
    let (load_s, load_mb) = timed(&db, &["loaddata", file.to_str().unwrap()]);
    add(
        &format!(
            "`loaddata` of the {size:.0} MB export (parameters indexed in the same transaction)"
        ),
        format!("{load_s:.1} s, {load_mb:.0} MB"),
    );
    admin(&db, &["grant", "alice", "Big", "--level", "read"], None);
    let out = b.dir.join("out.json");
    let (export_s, export_mb) = timed(&db, &["export", "Big", "-o", out.to_str().unwrap()]);
    add("`export`", format!("{export_s:.1} s, {export_mb:.0} MB"));
    let server = start(&db);
    let mut c = Conn::open(&server.addr);
    let mut time = |path: &str, accept: &str| {
        let req = get(path, AUTH, accept);
        let mut best = f64::MAX;
        let mut len = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let (s, l) = c.call(&req);
            assert_eq!(s, 200, "{path}");
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
            len = l;
        }
        (best, len)
    };
    let ms = |t: f64| format!("{t:.1} ms");
    let (t, len) = time("/records/Big/", "application/json");
    add(
        &format!("GET project (JSON, {:.1} MB)", len as f64 / 1e6),
        ms(t),
    );
    let views = [
        ("GET project ?tags= (1 000 records, JSON)", "/records/Big/?tags=rare", "application/json"),
        ("first HTML page of the project", "/records/Big/", "text/html"),
        ("HTML tag filter (tagged/rare/)", "/records/Big/tagged/rare/", "text/html"),
        ("GET last/", "/records/Big/last/", "application/json"),
        // Finding records (SPEC 7.5): 100 000 records of 10 parameters each.
        (
            "query `params.n > 500 and tag = rare` (JSON, 500 matches)",
            "/records/Big/?q=params.n%20%3E%20500%20and%20tag%20%3D%20rare",
            "application/json",
        ),
        (
            "the same, `limit=10` (with the count)",
            "/records/Big/?q=params.n%20%3E%20500%20and%20tag%20%3D%20rare&limit=10",
            "application/json",
        ),
        ("first HTML page sorted by `-params.n`", "/records/Big/?sort=-params.n", "text/html"),
        (
            "HTML page of `params.seed = 3 and params.distr = normal`, sorted by `-params.lr`",
            "/records/Big/?q=params.seed%20%3D%203%20and%20params.distr%20%3D%20normal&sort=-params.lr",
            "text/html",
        ),
        (
            "query on a field: `params.seed = 3 and reason ~ bench` (JSON, `limit=10`, with the count)",
            "/records/Big/?q=params.seed%20%3D%203%20and%20reason%20~%20bench&limit=10",
            "application/json",
        ),
    ];
    for (name, path, accept) in views {
        let (t, _) = time(path, accept);
        add(name, ms(t));
    }
    let rss_before = rss_kb(server.child.id());
    let t = Instant::now();
    // The CSV streams (chunked): read to the end of a closing connection.
    let csv_len = {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let head = format!(
            "GET /records/Big/?format=csv HTTP/1.1\r\nHost: bench\r\nAuthorization: {AUTH}\r\nConnection: close\r\n\r\n"
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
    add(
        &format!(
            "CSV of all 100 000 records ({:.0} MB, streamed)",
            csv_len as f64 / 1e6
        ),
        format!(
            "{csv_s:.2} s; server memory {:.0} MB before, {:.0} MB after",
            rss_before as f64 / 1024.0,
            csv_rss as f64 / 1024.0
        ),
    );
    drop(c);
    drop(server);
    // Back-fill: the same database as schema version 1 left it (no
    // parameter index), migrated by `init`.
    match &b.cluster {
        None => {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute_batch(
                "DROP INDEX records_to_index; DROP TABLE record_params; DROP TABLE record_deps; \
                 DROP TABLE record_files; DROP TABLE tokens; DROP TABLE trash; DROP TABLE trashed_projects; DROP TABLE history; \
                 ALTER TABLE records DROP COLUMN params_state; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        Some(_) => {
            let mut client = postgres::Client::connect(&db, postgres::NoTls).unwrap();
            client
                .batch_execute(
                    "DROP TABLE record_params; DROP TABLE record_deps; \
                     DROP TABLE record_files; DROP TABLE tokens; DROP TABLE trash; DROP TABLE trashed_projects; DROP TABLE history; \
                     ALTER TABLE records DROP COLUMN params_state; UPDATE sumatra_schema SET version = 1;",
                )
                .unwrap();
        }
    }
    let (backfill_s, backfill_mb) = timed(&db, &["init", "--yes"]);
    add(
        "back-fill of the parameter and file indexes (`init` of a schema-1 database)",
        format!("{backfill_s:.1} s, {backfill_mb:.0} MB"),
    );
    rows
}

/// The real Python client against a server on `db`: labels() and save().
fn python_client(db: &str) -> Vec<(String, String)> {
    // The venv that `cargo test` makes (target/tmp/client-venv).
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/client-venv/bin/python");
    if !venv.exists() {
        eprintln!(
            "(real client skipped: run `cargo test` once to make {})",
            venv.display()
        );
        return Vec::new();
    }
    let server = start(db);
    let script = r#"
import sys, time, os, tempfile
os.chdir(tempfile.mkdtemp())
from sumatra.recordstore.http_store import HttpRecordStore
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
print("`labels()` on 1 000 records\t%.2f s" % t_labels)
print("`save()` of 200 records\t%.1f ms each" % (t_save * 1000))
"#;
    let out = Command::new(venv)
        .args(["-c", script, &format!("http://{}/records/", server.addr)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
