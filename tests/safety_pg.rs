//! What a question may cost on PostgreSQL alone (SPEC 7.6, 8; issue 19):
//! NUL in a stored record, outages on old and new connections, a database
//! that refuses the login.

use crate::util::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Regression: one record with `\u0000` in its body made every field
/// query, sort and search box of its project answer 400 "cannot be stored"
/// (PostgreSQL's text cannot hold NUL, and the search read the body as
/// text). The record is stored and read back whole; searches work.
#[test]
fn a_nul_in_one_record_broke_every_search_of_its_project() {
    let db = TestDb::new();
    db.useradd("alice", "pw");
    db.ok(&["grant", "alice", "P", "--level", "write"]);
    let s = Server::start(&db, &[]);
    let c = Client::new(Some(basic("alice", "pw")));
    let mut nul = full_record("nul", "has \u{0} inside", &["x"]);
    nul["stdout_stderr"] = json!("before\u{0}after");
    assert_eq!(c.put_json(&s.url("P/nul/"), &nul).unwrap().status, 201);
    // The six characters `\u0000` as text (a program printing an escape):
    // kept as they are, never taken for a NUL, never breaking the JSON.
    let mut literal = full_record("literal", "printed literally", &["x"]);
    literal["stdout_stderr"] = json!("an escape: \\u0000 as text");
    assert_eq!(
        c.put_json(&s.url("P/literal/"), &literal).unwrap().status,
        201
    );
    let plain = full_record("plain", "the reason", &["x"]);
    assert_eq!(c.put_json(&s.url("P/plain/"), &plain).unwrap().status, 201);
    let got = c.get(&s.url("P/nul/?format=json")).unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["stdout_stderr"], json!("before\u{0}after"));
    for (q, want) in [
        ("q=reason+~+reason&format=json", vec!["plain"]),
        ("q=reason+~+inside&format=json", vec!["nul"]),
        ("q=stdout+~+after&format=json", vec!["nul"]),
        ("q=stdout+~+%27%5Cu0000%27&format=json", vec!["literal"]),
        (
            "q=tag+%3D+x&sort=reason&format=json",
            vec!["nul", "literal", "plain"],
        ),
        (
            "q=tag+%3D+x&sort=-stdout&format=json",
            vec!["plain", "nul", "literal"],
        ),
    ] {
        let r = c.get(&s.url(&format!("P/?{q}"))).unwrap();
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        assert_eq!(labels_of(&r.json()), want, "{q}");
    }
    let page = c
        .send(
            "GET",
            &s.url("P/?search=reason"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("/P/plain/"), "{}", page.body);
}

/// Regression: with the database down, 19 of 20 requests got 500
/// "internal error" after 5-10 s (a handler thread opening its first
/// connection turned the outage into a database error). Every request,
/// on connections old and new, gets 503 with a sentence.
#[test]
fn an_outage_answered_500_to_requests_on_new_connections() {
    let cluster = crate::pg::Cluster::start();
    let db = TestDb::on_cluster(&cluster);
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let s = Server::start(&db, &["--workers", "8"]);
    let c = Client::new(Some(basic("alice", "apw")));
    let url = s.url("P/r1/");
    assert_eq!(
        c.put_json(&url, &full_record("r1", "", &[]))
            .unwrap()
            .status,
        201
    );
    cluster.stop();
    // Twenty at once, eight at a time: handler threads that never had a
    // connection open one during the outage.
    let started = Instant::now();
    let statuses: Vec<(u16, String)> = (0..20)
        .collect::<Vec<_>>()
        .chunks(8)
        .flat_map(|chunk| {
            let threads: Vec<_> = chunk
                .iter()
                .map(|_| {
                    let (url, auth) = (url.clone(), basic("alice", "apw"));
                    std::thread::spawn(move || {
                        let r = Client::new(Some(auth)).get(&url).unwrap();
                        (r.status, r.body)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    for (status, body) in &statuses {
        assert_eq!(*status, 503, "{body}\n{}", s.log());
        assert!(body.contains("database"), "{body}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!s.log().contains(" 500 "), "{}", s.log());
    cluster.start_again();
}

/// A database that is not there (or a login it refuses) is said as such,
/// not as "not answering".
#[test]
fn a_missing_database_is_said_not_reported_as_an_outage() {
    let url = crate::pg::cluster().url("no_such_database");
    let out = std::process::Command::new(BIN)
        .args(["--db", &url, "users"])
        .output()
        .unwrap();
    let err = fails(out, &["users"]);
    assert!(
        err.contains("the database refused the connection")
            && err.contains("\"no_such_database\" does not exist"),
        "{err}"
    );
    assert!(!err.contains("not answering"), "{err}");
}
