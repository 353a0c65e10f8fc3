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
    let err = db.fails(&["healthcheck", "--url", &format!("http://127.0.0.1:{dead}/records/.health")]);
    assert!(err.contains("unhealthy"), "{err}");
    let err = db.fails(&["healthcheck", "--url", &s.url("nothing/")]);
    assert!(err.contains("answered 404"), "{err}");
    let err = db.fails(&["healthcheck", "--url", "https://example.org/records/.health"]);
    assert!(err.contains("an http:// URL"), "{err}");
}
