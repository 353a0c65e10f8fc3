//! A throw-away PostgreSQL cluster for the tests (SPEC 8): made with the
//! Debian binaries (`/usr/lib/postgresql/*/bin`) in a temporary directory,
//! run as the `postgres` system user when the tests run as root, on a free
//! loopback port and a Unix socket in that directory, with trust
//! authentication. It starts when the first test needs it and is stopped
//! and removed when the test binary exits, however it exits: a watcher
//! process waits for the end of a pipe that only this process holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub struct Cluster {
    pub port: u16,
    pub socket_dir: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    durable: bool,
    /// Closing it (the process ending) stops and removes the cluster.
    _watch: Mutex<(Child, ChildStdin)>,
}

/// The newest `/usr/lib/postgresql/N/bin` (or `$PG_BIN`).
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries in /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/N/bin/initdb")
        .1
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// A PostgreSQL tool, as the `postgres` user when we are root (the server
/// refuses to run as root).
fn tool(bin: &Path, name: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(name));
        c
    } else {
        Command::new(bin.join(name))
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the server of the cluster in `data`: on loopback `port` and a
/// socket in `dir` (its log there too); durability off for a test
/// cluster, PostgreSQL's defaults for one the load tool measures.
fn pg_ctl_start(bin: &Path, data: &Path, port: u16, dir: &Path, durable: bool) {
    let mut options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=500",
        dir.display()
    );
    if !durable {
        options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    let mut start = tool(bin, "pg_ctl");
    start
        .arg("-D")
        .arg(data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "start"]);
    run(start, "pg_ctl start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// A cluster of its own (a test that stops and starts it; the shared one
    /// is [`cluster`]).
    pub fn start() -> Cluster {
        Cluster::start_with(false)
    }

    /// A cluster that keeps PostgreSQL's durability settings (fsync on):
    /// the one the load tool measures.
    pub fn start_durable() -> Cluster {
        Cluster::start_with(true)
    }

    fn start_with(durable: bool) -> Cluster {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let bin = bin_dir();
        let root = std::env::temp_dir().join(format!(
            "sumatra-test-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:postgres").arg(&root);
                    c
                },
                "chown postgres",
            );
        }
        let data = root.join("data");
        let mut init = tool(&bin, "initdb");
        init.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C.UTF-8"]);
        run(init, "initdb");
        let port = free_port();
        pg_ctl_start(&bin, &data, port, &root, durable);
        // The watcher: when our end of its stdin closes, the cluster goes.
        let runuser = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let stop = format!(
            "{runuser}{} -D {} -m immediate stop >/dev/null 2>&1",
            bin.join("pg_ctl").display(),
            data.display()
        );
        let mut watch = Command::new("sh")
            .arg("-c")
            .arg(format!("cat >/dev/null; {stop}; rm -rf {}", root.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the cluster's watcher");
        let stdin = watch.stdin.take().unwrap();
        Cluster {
            port,
            socket_dir: root,
            bin,
            data,
            durable,
            _watch: Mutex::new((watch, stdin)),
        }
    }

    /// A new, empty database; its URL (TCP on loopback).
    pub fn new_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = self.client("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        self.url(&name)
    }

    /// The `createdb` client tool (the client suite makes its databases with it).
    pub fn createdb(&self) -> PathBuf {
        self.bin.join("createdb")
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The same database by the Unix socket (`?host=/dir`).
    pub fn socket_url(&self, name: &str) -> String {
        format!(
            "postgresql:///{name}?host={}&port={}&user=postgres",
            self.socket_dir.display(),
            self.port
        )
    }

    pub fn client(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(name), postgres::NoTls)
            .expect("connect to test cluster")
    }

    /// `pg_ctl stop` (fast) / `start`: the database going away and coming back.
    pub fn stop(&self) {
        let mut c = tool(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    pub fn start_again(&self) {
        pg_ctl_start(
            &self.bin,
            &self.data,
            self.port,
            &self.socket_dir,
            self.durable,
        );
    }
}

/// The cluster of this test run, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// Runs a query on its own connection; every value as text (NULL as "NULL").
pub fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect for checks");
    // The simple protocol gives every value as text, as the SQLite helper does.
    let messages = client.simple_query(sql).expect("run check query");
    messages
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
