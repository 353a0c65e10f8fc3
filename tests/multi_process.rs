//! What only PostgreSQL has (SPEC 8): `init` and bad databases on a
//! server, several `serve` processes on one database at once, the database
//! going away and coming back, and moving records between the engines.
//! Everything else runs on PostgreSQL as the rest of the suite does.

use crate::util::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn alice_db() -> (TestDb, String) {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    (db, basic("alice", "apw"))
}

#[test]
fn init_creates_the_schema_once_and_says_so() {
    let db = TestDb::uninitialised();
    let err = db.fails(&["users"]);
    assert!(err.contains("init"), "{err}");
    let out = db.run(&["init"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("created (schema version 8)"), "{said}");
    // The password is never shown.
    assert!(!said.contains("password"), "{said}");
    let out = db.run(&["init"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is up to date (schema version 8)"), "{said}");
    assert_eq!(db.query("SELECT version FROM sumatra_schema"), [["8"]]);
    assert_eq!(
        db.query("SELECT count(*) FROM users WHERE username = 'anonymous'"),
        [["1"]]
    );
}

#[test]
fn bad_databases_give_one_clear_line() {
    // Nothing listens there: refused, said in one line, after a bounded wait.
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .args([
            "--db",
            "postgresql://postgres:secret@127.0.0.1:1/x",
            "users",
        ])
        .output()
        .unwrap();
    let err = fails(out, &["users"]);
    assert!(err.contains("postgresql://postgres@127.0.0.1:1/x"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is never shown: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Not a URL the driver reads.
    let out = std::process::Command::new(BIN)
        .args(["--db", "postgresql://127.0.0.1:notaport/x", "users"])
        .output()
        .unwrap();
    assert!(fails(out, &["users"]).contains("not a PostgreSQL URL"));
    // TLS to the database is not built in: said, not attempted.
    let out = std::process::Command::new(BIN)
        .args([
            "--db",
            "postgresql://u@127.0.0.1:1/x?sslmode=require",
            "users",
        ])
        .output()
        .unwrap();
    assert!(fails(out, &["users"]).contains("TLS to PostgreSQL is not built in"));
    // A database of something else.
    let db = TestDb::uninitialised();
    db.query("CREATE TABLE other (x int)");
    assert!(db
        .fails(&["init"])
        .contains("not a sumatra-server database"));
    // A newer schema.
    let db = TestDb::new();
    db.query("UPDATE sumatra_schema SET version = 99");
    assert!(db.fails(&["users"]).contains("newer"));
}

#[test]
fn backup_explains_pg_dump() {
    let db = TestDb::new();
    let err = db.fails(&["backup", db.dir.path().join("b.db").to_str().unwrap()]);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!db.dir.path().join("b.db").exists());
}

#[test]
fn the_socket_url_form_works() {
    let db = TestDb::new();
    let name = db.location.rsplit('/').next().unwrap().to_string();
    let url = crate::pg::cluster().socket_url(&name);
    let out = std::process::Command::new(BIN)
        .args(["--db", &url, "grant", "anonymous", "Open"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(db.ok(&["projects"]).contains("Open"));
}

/// Two `serve` processes on one database.
fn two_servers(db: &TestDb) -> (Server, Server) {
    (Server::start(db, &[]), Server::start(db, &[]))
}

/// Two processes PUT complementary halves of the same new record at once
/// (the write-once merge, SPEC 2.5): neither half is lost, whichever lands
/// first; the label is created once.
#[test]
fn concurrent_puts_of_one_record_from_two_processes_lose_nothing() {
    let (db, auth) = alice_db();
    let (a, b) = two_servers(&db);
    let c = Client::new(Some(auth));
    for i in 0..40 {
        let label = format!("r{i}");
        let mut first = full_record(&label, "from a", &["a"]);
        first["duration"] = json!(null);
        first["output_data"] = json!([]);
        first["stdout_stderr"] = json!("Not launched.");
        let mut second = full_record(&label, "from b", &["b"]);
        second["user"] = json!("");
        second["platforms"] = json!([]);
        second["dependencies"] = json!([]);
        second["main_file"] = json!("");
        let mut ours = first.clone();
        ours["platforms"] = json!([{"system_name": "Linux", "ip_addr": "127.0.0.1",
            "architecture_bits": "64bit", "machine": "x86_64", "architecture_linkage": "ELF",
            "version": "1", "release": "6", "network_name": "a", "processor": ""}]);
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let statuses = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|scope| {
            for (server, body) in [(&a, &ours), (&b, &second)] {
                let (barrier, statuses, c) = (barrier.clone(), statuses.clone(), c.clone());
                let url = server.url(&format!("P/{label}/"));
                scope.spawn(move || {
                    barrier.wait();
                    let r = c.put_json(&url, body).unwrap();
                    statuses.lock().unwrap().push(r.status);
                });
            }
        });
        let mut statuses = statuses.lock().unwrap().clone();
        statuses.sort();
        assert_eq!(statuses, [200, 201], "{label}: created exactly once");
        let got = c.get(&a.url(&format!("P/{label}/"))).unwrap().json();
        assert_eq!(got["duration"], json!(1.5), "{label}: b's duration lost");
        assert_eq!(got["stdout_stderr"], json!(format!("output of {label}")));
        assert_eq!(got["output_data"].as_array().unwrap().len(), 1, "{label}");
        assert_eq!(got["platforms"][0]["network_name"], json!("a"), "{label}");
        assert_eq!(got["user"], json!("Tester <t@example.org>"), "{label}");
        assert_eq!(got["main_file"], json!("main.py"), "{label}");
    }
    assert_eq!(
        db.query("SELECT count(*) FROM records"),
        [["40"]],
        "one row a label"
    );
    // One history for both processes (SPEC 10.3): each label created once
    // and updated once (the merge), whichever process did which.
    assert_eq!(
        db.query("SELECT action, count(*) FROM history WHERE action LIKE 'record.%' GROUP BY action ORDER BY action"),
        [["record.create", "40"], ["record.update", "40"]]
    );
    for s in [&a, &b] {
        assert!(!s.log().contains(" 500 "), "{}", s.log());
    }
}

/// A password changed or a user removed from the shell is refused at once
/// by every process, though each had the old credentials cached.
#[test]
fn passwd_and_userdel_take_effect_at_once_on_every_process() {
    let (db, auth) = alice_db();
    let (a, b) = two_servers(&db);
    let old = Client::new(Some(auth));
    for s in [&a, &b] {
        // Twice: the second answer comes from the credential cache.
        for _ in 0..2 {
            assert_eq!(old.get(&s.url("P/")).unwrap().status, 200);
        }
    }
    let out = db.run_with_stdin(&["passwd", "alice", "--password-stdin"], "new-pw\n");
    assert!(out.status.success(), "{out:?}");
    let new = Client::new(Some(basic("alice", "new-pw")));
    for s in [&a, &b] {
        assert_eq!(old.get(&s.url("P/")).unwrap().status, 401);
        assert_eq!(new.get(&s.url("P/")).unwrap().status, 200);
    }
    db.ok(&["userdel", "alice"]);
    for s in [&a, &b] {
        assert_eq!(new.get(&s.url("P/")).unwrap().status, 401);
    }
}

/// Writers on two processes; one is killed with SIGKILL mid-load: every
/// record either process acknowledged is stored, complete, nothing else is
/// (but the PUTs cut off by the kill, which may have committed unanswered),
/// and the other process serves on: every write sent to it, before the kill
/// and after, is answered 201.
#[test]
fn sigkill_of_one_process_loses_no_acknowledged_record() {
    /// What the writers saw.
    #[derive(Default)]
    struct Seen {
        /// Labels answered 201.
        acked: HashSet<String>,
        /// Labels whose PUT to the killed process got no answer.
        cut_off: HashSet<String>,
        /// 201s from the surviving process to PUTs sent after the kill.
        acked_after_kill: usize,
        /// Anything else: a failure.
        errors: Vec<String>,
    }
    let (db, auth) = alice_db();
    let (mut a, b) = two_servers(&db);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // Set before the kill: a transport error on `a` seen with it unset is
    // not the kill's doing.
    let killed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for (w, base, on_killed) in [
        (0, a.url("P/"), true),
        (1, a.url("P/"), true),
        (2, b.url("P/"), false),
        (3, b.url("P/"), false),
    ] {
        let (seen, stop, killed) = (seen.clone(), stop.clone(), killed.clone());
        let c = Client::new(Some(auth.clone()));
        handles.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let label = format!("w{w}-{i}");
                i += 1;
                let sent_after_kill = killed.load(Ordering::SeqCst);
                let result =
                    c.put_json(&format!("{base}{label}/"), &full_record(&label, "", &["t"]));
                let mut seen = seen.lock().unwrap();
                match result {
                    Ok(r) if r.status == 201 => {
                        seen.acked.insert(label);
                        if sent_after_kill && !on_killed {
                            seen.acked_after_kill += 1;
                        }
                    }
                    Ok(r) => {
                        let after = if sent_after_kill { "after" } else { "before" };
                        seen.errors.push(format!(
                            "writer {w}, PUT {label} sent {after} the kill: {} {}",
                            r.status, r.body
                        ));
                        return;
                    }
                    // The killed process: this PUT and the rest go unanswered.
                    Err(_) if on_killed && killed.load(Ordering::SeqCst) => {
                        seen.cut_off.insert(label);
                        return;
                    }
                    Err(e) => {
                        seen.errors.push(format!("writer {w}: {e}"));
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().acked.len() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_kill = seen.lock().unwrap().acked.len();
    killed.store(true, Ordering::SeqCst);
    a.kill();
    // The surviving process goes on answering: wait for 40 of its 201s to
    // PUTs sent after the kill (or for a writer to have stopped on an error).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = seen.lock().unwrap();
        if seen.acked_after_kill >= 40 || !seen.errors.is_empty() || Instant::now() > deadline {
            break;
        }
        drop(seen);
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert!(seen.errors.is_empty(), "{:?}\n{}", seen.errors, b.log());
    assert!(
        before_kill >= 60,
        "only {before_kill} writes before the kill"
    );
    assert!(
        seen.acked_after_kill >= 40,
        "the other process answered only {} writes sent after the kill",
        seen.acked_after_kill
    );
    let stored: HashSet<String> = db
        .query("SELECT label FROM records")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    for l in &seen.acked {
        assert!(stored.contains(l), "{l} was acknowledged but is not stored");
    }
    // Beyond those, at most the PUTs the kill cut off (one a writer on `a`).
    let unacknowledged: Vec<&String> = stored.difference(&seen.acked).collect();
    assert!(
        unacknowledged.iter().all(|l| seen.cut_off.contains(*l)),
        "stored, never acknowledged nor cut off: {unacknowledged:?} (cut off: {:?})",
        seen.cut_off
    );
    assert_eq!(
        db.query("SELECT count(*) FROM records")[0][0],
        stored.len().to_string()
    );
    let c = Client::new(Some(auth));
    let listed: HashSet<String> = labels_of(&c.get(&b.url("P/")).unwrap().json())
        .into_iter()
        .collect();
    assert_eq!(listed, stored, "the project lists every stored record");
    for l in &seen.acked {
        let r = c.get(&b.url(&format!("P/{l}/"))).unwrap();
        assert_eq!(r.status, 200, "{l}: {}", r.body);
        let got = r.json();
        assert_eq!(got["stdout_stderr"], json!(format!("output of {l}")), "{l}");
    }
    assert_eq!(db.integrity(), "ok");
}

/// The database stops: requests get 503 with a sentence (not a hang, not
/// a crash); when it is back, the same process serves again.
#[test]
fn database_going_away_gives_503_and_the_server_recovers() {
    let cluster = crate::pg::Cluster::start();
    let db = TestDb::on_cluster(&cluster);
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let s = Server::start(&db, &[]);
    let c = Client::new(Some(basic("alice", "apw")));
    let url = s.url("P/r1/");
    assert_eq!(
        c.put_json(&url, &full_record("r1", "", &[]))
            .unwrap()
            .status,
        201
    );
    assert_eq!(c.get(&url).unwrap().status, 200);
    // P.health (SPEC 11.2): no credentials, the database's state.
    let anyone = Client::new(None);
    let health = || anyone.get(&s.url(".health")).unwrap();
    let h = health();
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.json()["checks"]["database"]["status"], json!("pass"));

    cluster.stop();
    let started = Instant::now();
    let h = health();
    assert_eq!(h.status, 503, "{}", h.body);
    assert_eq!(h.json()["status"], json!("fail"), "{}", h.body);
    assert!(!h.json()["checks"]["database"]["output"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!db.run(&["healthcheck"]).status.success());
    for attempt in 0..3 {
        let started = Instant::now();
        let r = c.get(&url).unwrap();
        assert_eq!(r.status, 503, "attempt {attempt}: {}\n{}", r.body, s.log());
        assert!(r.header("Retry-After").is_some());
        let said = r.json()["error"].as_str().unwrap().to_string();
        assert!(said.contains("database"), "{said}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        let r = c
            .put_json(&s.url("P/r2/"), &full_record("r2", "", &[]))
            .unwrap();
        assert_eq!(r.status, 503, "{}\n{}", r.body, s.log());
    }

    cluster.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    while Instant::now() < deadline {
        last = c.get(&url).unwrap().status;
        if last == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last, 200, "the server did not recover: {}", s.log());
    assert_eq!(health().status, 200);
    assert!(db.run(&["healthcheck"]).status.success());
    assert_eq!(
        c.put_json(&s.url("P/r2/"), &full_record("r2", "", &[]))
            .unwrap()
            .status,
        201
    );
    assert!(!s.log().contains(" 500 "), "{}", s.log());
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// `export --with-users` from SQLite, `loaddata` into an empty PostgreSQL
/// database, export again: the same bytes; and back to a new SQLite file.
#[test]
fn export_moves_between_engines_byte_for_byte() {
    let lite = TestDb::on(Backend::Sqlite);
    lite.ok(&["init"]);
    lite.ok(&["loaddata", "haggling", "permissions"]);
    lite.useradd("alice", "apw");
    lite.ok(&["grant", "alice", "Params", "--level", "admin"]);
    let s = Server::start(&lite, &[]);
    let c = Client::new(Some(basic("alice", "apw")));
    for (i, content) in ["n = 5\nname = 'a # b'", "{\"model\": {\"layers\": 3}}"]
        .iter()
        .enumerate()
    {
        let label = format!("p{i}");
        let mut r = full_record(&label, "é ✓ \u{1F600}", &["x", "y z"]);
        r["parameters"] = json!({"content": content,
            "type": if i == 0 { "SimpleParameterSet" } else { "JSONParameterSet" }});
        assert_eq!(
            c.put_json(&s.url(&format!("Params/{label}/")), &r)
                .unwrap()
                .status,
            201
        );
    }
    drop(s);
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).display().to_string();
    lite.ok(&["export", "--with-users", "-o", &file("from-sqlite.json")]);

    let pg = TestDb::new();
    pg.ok(&["loaddata", &file("from-sqlite.json")]);
    pg.ok(&["export", "--with-users", "-o", &file("from-pg.json")]);
    let a = std::fs::read(file("from-sqlite.json")).unwrap();
    let b = std::fs::read(file("from-pg.json")).unwrap();
    assert!(a.len() > 1000);
    assert!(a == b, "SQLite and PostgreSQL exports differ");

    let back = TestDb::on(Backend::Sqlite);
    back.ok(&["init"]);
    back.ok(&["loaddata", &file("from-pg.json")]);
    back.ok(&["export", "--with-users", "-o", &file("back.json")]);
    assert!(
        std::fs::read(file("back.json")).unwrap() == a,
        "back in SQLite, the export differs"
    );
    // Loaded into PostgreSQL, the records are found by their parameters
    // and their users log in with the passwords they had.
    let s = Server::start(&pg, &[]);
    let r = c.get(&s.url("Params/?q=params.n%20%3D%205")).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["records"].as_array().unwrap().len(), 1);
}

/// PostgreSQL's text cannot hold NUL: a project name with one is refused
/// with a sentence (400), never a 500 (tags with control characters are
/// refused by the record decoder on both engines).
#[test]
fn nul_in_a_project_name_is_a_400_not_a_500() {
    let (db, auth) = alice_db();
    let s = Server::start(&db, &[]);
    let c = Client::new(Some(auth));
    let r = c
        .put_json(&s.url("P/nul/"), &full_record("nul", "", &["a\u{0}b"]))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("not a tag"),
        "{}",
        r.body
    );
    assert_eq!(c.get(&s.url("P/nul/")).unwrap().status, 404);
    let r = c
        .put_json(&s.url("P/"), &json!({"name": "x\u{0}y"}))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("NUL character"), "{}", r.body);
    let p = c.get(&s.url("P/")).unwrap().json();
    assert_eq!(
        p["name"],
        json!("P"),
        "nothing stored (the name falls back to the id)"
    );
    assert!(!s.log().contains(" 500 "), "{}", s.log());
}

/// After `loaddata` of many records, and after `init` migrated a database
/// and back-filled its index, PostgreSQL's planner statistics are current
/// (`VACUUM (ANALYZE)`): the next views are planned for the rows there,
/// not for the empty tables of before (issue 12: the first HTML page of
/// 100 000 loaded records took 490 ms, 60 ms once analysed). A small load
/// does not pay for it.
#[test]
fn large_loads_and_back_fills_leave_the_planner_statistics_current() {
    let db = TestDb::new();
    let analysed = |table: &str| -> i64 {
        db.query(&format!(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = '{table}'"
        ))[0][0]
            .parse()
            .unwrap()
    };
    let small = super::search::many_records_file(db.dir.path(), 10);
    db.ok(&["loaddata", small.to_str().unwrap()]);
    assert_eq!(analysed("records"), 0);
    let file = super::search::many_records_file(db.dir.path(), 1200);
    db.ok(&["loaddata", file.to_str().unwrap()]);
    assert_eq!(analysed("records"), 1);
    assert_eq!(analysed("record_params"), 1);
    // The database as schema version 1 left it, migrated by `init`.
    db.query(
        "DROP TABLE record_params; DROP TABLE record_deps; DROP TABLE record_files; \
         DROP TABLE tokens; DROP TABLE trash; DROP TABLE trashed_projects; DROP TABLE history; \
         ALTER TABLE records DROP COLUMN params_state; UPDATE sumatra_schema SET version = 1",
    );
    let out = db.run(&["init", "--yes"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("migrated from schema version 1"), "{said}");
    assert_eq!(analysed("records"), 2);
    assert_eq!(analysed("record_params"), 1);
    assert_eq!(
        db.query("SELECT count(*) FROM record_params"),
        [[((1200 - 1200 / 7) * 2).to_string()]]
    );
}

/// SPEC 11.3: a PostgreSQL password given in `--db`, `SUMATRA_DB` or
/// `--db-file` appears in no command's output, no log line and no error
/// page, with the database up or down.
#[test]
fn no_output_ever_shows_the_postgresql_password() {
    const SECRET: &str = "pw-SECRET-7731";
    let cluster = crate::pg::Cluster::start();
    let plain = TestDb::on_cluster(&cluster);
    // The test cluster trusts local connections: any password is taken.
    let url = plain
        .location
        .replacen("://postgres@", &format!("://postgres:{SECRET}@"), 1);
    assert!(url.contains(SECRET), "{url}");
    let file = plain.dir.path().join("db-url");
    std::fs::write(&file, &url).unwrap();
    let mut said = String::new();
    let run = |how: &str, args: &[&str]| -> String {
        let mut c = std::process::Command::new(BIN);
        c.env_remove("SUMATRA_DB").env("SUMATRA_BCRYPT_COST", "4");
        match how {
            "--db" => {
                c.args(["--db", &url]);
            }
            "env" => {
                c.env("SUMATRA_DB", &url);
            }
            _ => {
                c.arg("--db-file").arg(&file);
            }
        }
        let out = c
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for how in ["--db", "env", "file"] {
        for args in [
            &["init"][..],
            &["users"],
            &["grant", "nobody", "P"],
            &["records", "Nope"],
            &["healthcheck"],
            &["--help"],
            &["serve", "--help"],
        ] {
            said.push_str(&run(how, args));
        }
    }
    let mut c = std::process::Command::new(BIN);
    c.env_remove("SUMATRA_DB")
        .args(["--db", &url, "serve", "--bind", "127.0.0.1:0"]);
    let s = Server::start_command(c);
    let anyone = Client::new(None);
    for path in ["Nope/", "Nope/x/", ".health", "?login"] {
        let r = anyone.get(&s.url(path)).unwrap();
        said.push_str(&r.body);
    }
    cluster.stop();
    for path in ["Nope/", ".health"] {
        let r = anyone.get(&s.url(path)).unwrap();
        assert_eq!(r.status, 503, "{}", r.body);
        said.push_str(&r.body);
    }
    for how in ["--db", "env", "file"] {
        said.push_str(&run(how, &["users"]));
        said.push_str(&run(how, &["healthcheck"]));
    }
    said.push_str(&s.log());
    assert!(said.contains("database"), "the commands ran: {said}");
    assert!(
        said.contains("answering") || said.contains("connect"),
        "the outage was seen: {said}"
    );
    assert!(!said.contains(SECRET), "the password was shown:\n{said}");
    cluster.start_again();
}

/// Regression: after a database restart, P.health met a pooled connection
/// the restart had broken and answered 503 ("the connection to the
/// database was lost") while every GET was tried again and answered 200:
/// load balancers took a healthy server out. And its reason names no
/// database, user or password.
#[test]
fn health_after_a_database_restart_is_200_at_once() {
    let cluster = crate::pg::Cluster::start();
    let db = TestDb::on_cluster(&cluster);
    let s = Server::start(&db, &["--workers", "8"]);
    let health = || Client::new(None).get(&s.url(".health")).unwrap();
    for _ in 0..3 {
        assert_eq!(health().status, 200);
    }
    // A request's store keeps the process's pool (and its connections).
    assert_eq!(Client::new(None).get(&s.url("")).unwrap().status, 200);
    // The server's connections ended by the database (as a restart ends
    // them), no request in between: the first probe meets a broken one.
    let name = db.location.rsplit('/').next().unwrap();
    let ended = cluster.client("postgres").query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = $1 AND pid <> pg_backend_pid()",
        &[&name],
    );
    assert!(!ended.unwrap().is_empty(), "the server holds a connection");
    let up = health();
    assert_eq!(up.status, 200, "{}\n{}", up.body, s.log());
    // Down: 503, and the reason names no host, user or database.
    cluster.stop();
    let down = health();
    assert_eq!(down.status, 503, "{}", down.body);
    let why = down.json()["checks"]["database"]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !why.contains("127.0.0.1") && !why.contains("postgres") && !why.contains(name),
        "{why}"
    );
    cluster.start_again();
}

/// SPEC 11.4: connections are checked out without a round trip, and a
/// read that meets one broken by a database restart is tried again: once
/// the database is back, no request fails, though every pooled connection
/// died with the old server.
#[test]
fn a_database_restart_costs_no_read_an_error() {
    let cluster = crate::pg::Cluster::start();
    let db = TestDb::on_cluster(&cluster);
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let s = Server::start(&db, &["--workers", "8"]);
    let url = s.url("P/r1/");
    let c = Client::new(Some(basic("alice", "apw")));
    assert_eq!(
        c.put_json(&url, &full_record("r1", "", &[]))
            .unwrap()
            .status,
        201
    );
    // Eight connections in the pool, all to the server about to go.
    let warm = |n: usize| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    scope.spawn(|| {
                        let c = Client::new(Some(basic("alice", "apw")));
                        (0..5)
                            .map(|_| c.get(&url).unwrap().status)
                            .collect::<Vec<u16>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<u16>>()
        })
    };
    assert!(warm(8).iter().all(|&st| st == 200));
    cluster.stop();
    cluster.start_again();
    // `pg_ctl start -w` returns once the database answers again.
    drop(cluster.client("postgres"));
    let statuses = warm(8);
    assert!(
        statuses.iter().all(|&st| st == 200),
        "{statuses:?}\n{}",
        s.log()
    );
    // Writes are not tried again: each finds a connection checked since.
    let puts: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let url = s.url(&format!("P/w{i}/"));
                scope.spawn(move || {
                    Client::new(Some(basic("alice", "apw")))
                        .put_json(&url, &full_record(&format!("w{i}"), "", &[]))
                        .unwrap()
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(puts.iter().all(|&st| st == 201), "{puts:?}\n{}", s.log());
}
