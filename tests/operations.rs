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
}
