//! The REST API over a real socket (issue 3): every row of the SPEC 2 table,
//! its statuses, negotiation and the bad inputs of SPEC 2.6.

use crate::util::*;
use serde_json::{json, Value};

const CLIENT_RECORD: &str = "application/vnd.sumatra.record-v4+json, application/json";
const CLIENT_PROJECT: &str = "application/vnd.sumatra.project-v4+json, application/json";
const CLIENT_LIST: &str = "application/vnd.sumatra.project-list-v4+json, application/json";

struct Env {
    _db: TestDb,
    s: Server,
    auth: String,
}

/// Fixtures loaded, alice (admin of Alice), bob (no access), testuser.
fn env() -> Env {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    db.useradd("alice", "apw");
    db.useradd("bob", "bpw");
    db.ok(&["grant", "alice", "Alice", "--level", "admin"]);
    let s = Server::start(&db, &[]);
    Env {
        _db: db,
        s,
        auth: basic("testuser", "abc123"),
    }
}

fn record_body(label: &str) -> Value {
    json!({
        "label": label, "timestamp": "2026-11-26 07:07:39+0200", "reason": "r", "duration": null,
        "executable": {"path": "/usr/bin/python", "version": "3.11.7", "name": "Python", "options": ""},
        "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
        "main_file": "main.py", "version": "abc", "diff": "",
        "parameters": {"content": "a = 1", "type": "SimpleParameterSet"},
        "input_data": [], "script_arguments": "<parameters>",
        "launch_mode": {"type": "SerialLaunchMode", "parameters": {"working_directory": "/x", "options": null}},
        "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
        "input_datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/"}},
        "outcome": "", "stdout_stderr": "Not launched.", "output_data": [],
        "tags": ["b tag", "a,tag"], "user": "", "dependencies": [], "platforms": [], "repeats": null,
    })
}

impl Env {
    fn get(&self, path: &str, accept: &str) -> Resp {
        request(
            "GET",
            &self.s.url(path),
            &[("Accept", accept), ("Authorization", &self.auth)],
            None,
        )
    }
    fn put(&self, path: &str, body: &Value) -> Resp {
        self.put_raw(path, serde_json::to_vec(body).unwrap().as_slice())
    }
    fn put_raw(&self, path: &str, body: &[u8]) -> Resp {
        request(
            "PUT",
            &self.s.url(path),
            &[
                ("Authorization", &self.auth),
                ("Content-Type", "application/vnd.sumatra.record-v4+json"),
            ],
            Some(body),
        )
    }
    fn delete(&self, path: &str) -> Resp {
        request(
            "DELETE",
            &self.s.url(path),
            &[("Authorization", &self.auth)],
            None,
        )
    }
}

#[test]
fn project_list_rules() {
    let e = env();
    // A browser or plain JSON caller without credentials: the public projects.
    let r = request("GET", &e.s.url(""), &[("Accept", "application/json")], None);
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["TestProject2"]);
    // The Sumatra client without credentials is challenged.
    let r = request("GET", &e.s.url(""), &[("Accept", CLIENT_LIST)], None);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"Sumatra Server API\"")
    );
    // With credentials: own and public, newest activity first, the documented shape.
    let r = e.get("", CLIENT_LIST);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/vnd.sumatra.project-list-v4+json; charset=utf-8")
    );
    let list = r.json();
    assert_eq!(list[0]["id"], "TestProject2");
    assert_eq!(list[0]["last_updated"], "2014-10-13T17:25:04Z");
    assert_eq!(
        list[1],
        json!({
            "id": "TestProject", "name": "Test Project #1", "description": "Private project",
            "uri": e.s.url("TestProject/"), "last_updated": "2011-10-13T17:25:17Z",
        })
    );
    // ?login challenges until credentials arrive; wrong credentials are challenged.
    assert_eq!(
        request("GET", &e.s.url("?login"), &[("Accept", "text/html")], None).status,
        401
    );
    assert_eq!(
        request(
            "GET",
            &e.s.url(""),
            &[("Authorization", &basic("testuser", "nope"))],
            None
        )
        .status,
        401
    );
}

#[test]
fn project_get_put_and_access_order() {
    let e = env();
    // 404 before authentication; 401 without credentials; 403 without access.
    assert_eq!(
        request(
            "GET",
            &e.s.url("Nope/"),
            &[("Accept", CLIENT_PROJECT)],
            None
        )
        .status,
        404
    );
    let r = request(
        "GET",
        &e.s.url("TestProject/"),
        &[("Accept", CLIENT_PROJECT)],
        None,
    );
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_some());
    let bob = basic("bob", "bpw");
    assert_eq!(
        request(
            "GET",
            &e.s.url("TestProject/"),
            &[("Authorization", &bob)],
            None
        )
        .status,
        403
    );
    // The project document.
    let doc = e.get("TestProject/", CLIENT_PROJECT).json();
    assert_eq!(doc["records"].as_array().unwrap().len(), 4);
    assert_eq!(doc["records"][0], e.s.url("TestProject/haggling_repeat/"));
    assert_eq!(doc["tags"], Value::Null);
    assert_eq!(doc["user"], "testuser");
    assert_eq!(doc["access"], json!(["testuser"]));
    // Anonymous on a public project: no "access".
    let anon = request("GET", &e.s.url("TestProject2/"), &[], None).json();
    assert_eq!(anon["user"], "anonymous");
    assert!(anon.get("access").is_none());
    // Paging.
    let page = e
        .get("TestProject/?limit=2&offset=1", CLIENT_PROJECT)
        .json();
    assert_eq!(
        page["records"],
        json!([
            e.s.url("TestProject/20111013-172514/"),
            e.s.url("TestProject/haggling/")
        ])
    );
    assert_eq!(e.get("TestProject/?limit=x", CLIENT_PROJECT).status, 400);

    // Create (201) needs credentials, and the creator becomes admin; update (200) needs admin.
    let body = br#"{"name": "New", "description": "D"}"#;
    assert_eq!(
        request("PUT", &e.s.url("NewProj/"), &[], Some(body)).status,
        401
    );
    let alice = basic("alice", "apw");
    assert_eq!(
        request(
            "PUT",
            &e.s.url("NewProj/"),
            &[("Authorization", &alice)],
            Some(body)
        )
        .status,
        201
    );
    let perms = request(
        "GET",
        &e.s.url("NewProj/permissions/"),
        &[("Authorization", &alice)],
        None,
    )
    .json();
    assert_eq!(
        perms["permissions"],
        json!([{"user": "alice", "level": "admin"}])
    );
    let upd = br#"{"description": "changed"}"#;
    assert_eq!(
        request(
            "PUT",
            &e.s.url("NewProj/"),
            &[("Authorization", &alice)],
            Some(upd)
        )
        .status,
        200
    );
    assert_eq!(
        request(
            "PUT",
            &e.s.url("NewProj/"),
            &[("Authorization", &bob)],
            Some(upd)
        )
        .status,
        403
    );
    // testuser only has write on TestProject2: renaming it is refused (the original allowed it).
    assert_eq!(
        request(
            "PUT",
            &e.s.url("TestProject2/"),
            &[("Authorization", &e.auth)],
            Some(upd)
        )
        .status,
        403
    );
    let doc = request(
        "GET",
        &e.s.url("NewProj/"),
        &[("Authorization", &alice), ("Accept", "application/json")],
        None,
    )
    .json();
    assert_eq!(
        (doc["name"].as_str(), doc["description"].as_str()),
        (Some("New"), Some("changed"))
    );
    // Bad bodies and ids.
    assert_eq!(
        request(
            "PUT",
            &e.s.url("NewProj/"),
            &[("Authorization", &alice)],
            Some(b"{")
        )
        .status,
        400
    );
    assert_eq!(
        request(
            "PUT",
            &e.s.url("NewProj/"),
            &[("Authorization", &alice)],
            Some(br#"{"name": 3}"#)
        )
        .status,
        400
    );
    assert_eq!(
        request(
            "PUT",
            &e.s.url("Bad.Id/"),
            &[("Authorization", &alice)],
            Some(b"{}")
        )
        .status,
        400
    );
}

#[test]
fn record_put_get_delete_and_write_once() {
    let e = env();
    let url = "TestProject/rec-1.a|b/";
    let r = e.put(url, &record_body("rec-1.a|b"));
    assert_eq!((r.status, r.body.as_str()), (201, "Created"));
    let got = e.get(url, CLIENT_RECORD);
    assert_eq!(
        got.header("Content-Type"),
        Some("application/vnd.sumatra.record-v4+json; charset=utf-8")
    );
    assert!(got.header("ETag").is_none() && got.header("Expires").is_none());
    assert!(!got
        .header("Cache-Control")
        .unwrap_or("")
        .contains("max-age"));
    let v = got.json();
    assert_eq!(
        v["timestamp"], "2026-11-26 05:07:39",
        "stored and served in UTC without offset"
    );
    assert_eq!(
        v["tags"],
        json!(["a,tag", "b tag"]),
        "tags kept exactly, sorted"
    );
    assert_eq!(v["project_id"], "TestProject");
    assert_eq!(
        v.as_object().unwrap().keys().next_back().unwrap(),
        "project_id"
    );
    assert_eq!(
        v["launch_mode"]["parameters"],
        json!({"working_directory": "/x", "options": null})
    );

    // The fifth PUT of `smt run` brings the output; the first values stay.
    let mut later = record_body("rec-1.a|b");
    later["stdout_stderr"] = json!("hello\n");
    later["duration"] = json!(0.13963103294372559);
    later["version"] = json!("changed");
    later["reason"] = json!("new reason");
    later["tags"] = json!(["final"]);
    later["platforms"] = json!([{"system_name": "Linux", "ip_addr": "127.0.0.1", "architecture_bits": "64bit", "machine": "x86_64",
        "architecture_linkage": "ELF", "version": "#1", "release": "6", "network_name": "vm", "processor": ""}]);
    let r = e.put(url, &later);
    assert_eq!(r.status, 200);
    let v = e.get(url, CLIENT_RECORD).json();
    assert_eq!(v["stdout_stderr"], "hello\n");
    assert_eq!(v["duration"], json!(0.13963103294372559));
    assert_eq!(v["version"], "abc", "written once");
    assert_eq!(v["reason"], "new reason");
    assert_eq!(v["tags"], json!(["final"]));
    assert_eq!(v["platforms"][0].as_object().unwrap().len(), 9);

    // last/ is the newest by timestamp.
    assert_eq!(
        e.get("TestProject/last/", CLIENT_RECORD).json()["label"],
        "rec-1.a|b"
    );
    // DELETE: 204, then 404.
    assert_eq!(e.delete(url).status, 204);
    assert_eq!(e.delete(url).status, 404);
    assert_eq!(e.get(url, CLIENT_RECORD).status, 404);
    assert_eq!(
        e.get("TestProject/last/", CLIENT_RECORD).json()["label"],
        "haggling_repeat"
    );
}

#[test]
fn record_bad_inputs_are_4xx_and_store_nothing() {
    let e = env();
    let count = || {
        e.get("TestProject/", CLIENT_PROJECT).json()["records"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    let mut missing = record_body("x1");
    missing.as_object_mut().unwrap().remove("executable");
    let mut wrong = record_body("x1");
    wrong["duration"] = json!("long");
    let mut bad_time = record_body("x1");
    bad_time["timestamp"] = json!("yesterday");
    let mut nested = record_body("x3");
    nested["launch_mode"]["parameters"] = json!({"a": {"b": [[[[]]]]}});
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("TestProject/x1/", b"{not json".to_vec(), "JSON"),
        ("TestProject/x1/", b"\xff\xfe".to_vec(), "UTF-8"),
        ("TestProject/x1/", b"[1, 2]".to_vec(), "object"),
        ("TestProject/x1/", deep.into_bytes(), "JSON"),
        (
            "TestProject/x1/",
            serde_json::to_vec(&missing).unwrap(),
            "executable",
        ),
        (
            "TestProject/x1/",
            serde_json::to_vec(&wrong).unwrap(),
            "duration",
        ),
        (
            "TestProject/x1/",
            serde_json::to_vec(&bad_time).unwrap(),
            "timestamp",
        ),
        (
            "TestProject/x2/",
            serde_json::to_vec(&record_body("x1")).unwrap(),
            "differs",
        ),
        (
            "TestProject/last/",
            serde_json::to_vec(&record_body("last")).unwrap(),
            "not usable",
        ),
        (
            "TestProject/permissions/",
            serde_json::to_vec(&record_body("permissions")).unwrap(),
            "not usable",
        ),
        (
            "TestProject/-bad/",
            serde_json::to_vec(&record_body("-bad")).unwrap(),
            "label",
        ),
        (
            "TestProject/a%20b/",
            serde_json::to_vec(&record_body("a b")).unwrap(),
            "label",
        ),
    ];
    for (path, body, needle) in cases {
        let r = e.put_raw(path, &body);
        assert_eq!(r.status, 400, "{path} {needle}: {}", r.body);
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.contains(needle),
            "{path}: error {msg:?} should mention {needle:?}"
        );
    }
    // A nested object in parameters is fine (echoed exactly).
    assert_eq!(e.put("TestProject/x3/", &nested).status, 201);
    assert_eq!(
        e.get("TestProject/x3/", CLIENT_RECORD).json()["launch_mode"]["parameters"],
        nested["launch_mode"]["parameters"]
    );
    assert_eq!(count(), before + 1, "only the valid record was stored");
    // A record PUT into a project that does not exist: 404.
    assert_eq!(e.put("NoSuchProj/x1/", &record_body("x1")).status, 404);
}

#[test]
fn tags_filter_and_delete_by_tag() {
    let e = env();
    for (label, tags) in [
        ("t1", json!(["foo"])),
        ("t2", json!(["foobar", "x"])),
        ("t3", json!(["x"])),
    ] {
        let mut b = record_body(label);
        b["tags"] = tags;
        assert_eq!(e.put(&format!("TestProject/{label}/"), &b).status, 201);
    }
    let labels = |q: &str| -> Vec<String> {
        let doc = e.get(&format!("TestProject/{q}"), CLIENT_PROJECT).json();
        doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().rsplit('/').nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        labels("?tags=foo"),
        vec!["t1"],
        "exact match: foobar is not foo"
    );
    let mut both = labels("?tags=foo,x");
    both.sort();
    assert_eq!(both, vec!["t1", "t2", "t3"], "any of the tags");
    assert_eq!(labels("tagged/foobar/"), vec!["t2", "haggling"]);
    assert_eq!(
        e.get("TestProject/?tags=foo", CLIENT_PROJECT).json()["tags"],
        "foo"
    );
    // DELETE tag/<t>/ answers the count; tagged/<t>/ too.
    let r = e.delete("TestProject/tag/x/");
    assert_eq!((r.status, r.body.as_str()), (200, "2"));
    let r = e.delete("TestProject/tagged/foo/");
    assert_eq!((r.status, r.body.as_str()), (200, "1"));
    assert_eq!(e.delete("TestProject/tag/none/").body, "0");
    assert_eq!(e.delete("Nope/tag/x/").status, 404);
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[test]
fn permissions_get_and_post() {
    let e = env();
    let alice = basic("alice", "apw");
    let r = request(
        "GET",
        &e.s.url("Alice/permissions/"),
        &[("Authorization", &alice)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        r.json(),
        json!({"id": "Alice", "name": "Alice", "access": ["alice"], "permissions": [{"user": "alice", "level": "admin"}]})
    );
    // Form POST (as the original's HTML form): 302 to the project page; default level write.
    let r = request(
        "POST",
        &e.s.url("Alice/permissions/"),
        &[
            ("Authorization", &alice),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(b"user=bob"),
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("/records/Alice/"));
    // JSON POST: 201 with the document.
    let r = request(
        "POST",
        &e.s.url("Alice/permissions/"),
        &[
            ("Authorization", &alice),
            ("Content-Type", "application/json"),
        ],
        Some(br#"{"user": "testuser", "level": "read"}"#),
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json()["permissions"],
        json!([{"user": "alice", "level": "admin"}, {"user": "bob", "level": "write"}, {"user": "testuser", "level": "read"}])
    );
    // Unknown user: 400; bob (write) may not grant: 403; no credentials: 401.
    let r = request(
        "POST",
        &e.s.url("Alice/permissions/"),
        &[("Authorization", &alice), FORM],
        Some(b"user=999"),
    );
    assert_eq!(r.status, 400);
    let bob = basic("bob", "bpw");
    assert_eq!(
        request(
            "POST",
            &e.s.url("Alice/permissions/"),
            &[("Authorization", &bob), FORM],
            Some(b"user=bob&level=admin")
        )
        .status,
        403
    );
    assert_eq!(
        request(
            "POST",
            &e.s.url("Alice/permissions/"),
            &[FORM],
            Some(b"user=bob")
        )
        .status,
        401
    );
    assert_eq!(
        request(
            "POST",
            &e.s.url("Alice/permissions/"),
            &[("Authorization", &alice), FORM],
            Some(b"user=bob&level=owner")
        )
        .status,
        400
    );
}

#[test]
fn negotiation() {
    let e = env();
    let cases = [
        (
            "TestProject/",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            200,
            "text/html; charset=utf-8",
        ),
        (
            "TestProject/",
            "application/json; charset=utf-8",
            200,
            "application/json; charset=utf-8",
        ),
        (
            "TestProject/",
            "*/*",
            200,
            "application/vnd.sumatra.project-v4+json; charset=utf-8",
        ),
        (
            "TestProject/",
            "",
            200,
            "application/vnd.sumatra.project-v4+json; charset=utf-8",
        ),
        (
            "TestProject/",
            "text/plain",
            406,
            "application/json; charset=utf-8",
        ),
        (
            "TestProject/?format=json",
            "text/html",
            200,
            "application/json; charset=utf-8",
        ),
        (
            "TestProject/?format=html",
            CLIENT_PROJECT,
            200,
            "text/html; charset=utf-8",
        ),
        (
            "TestProject/?format=project-v4%2Bjson",
            "text/html",
            200,
            "application/vnd.sumatra.project-v4+json; charset=utf-8",
        ),
        (
            "TestProject/?format=bogus",
            "*/*",
            400,
            "application/json; charset=utf-8",
        ),
        (
            "TestProject/haggling/",
            "text/html",
            200,
            "text/html; charset=utf-8",
        ),
        (
            "TestProject/haggling/",
            CLIENT_RECORD,
            200,
            "application/vnd.sumatra.record-v4+json; charset=utf-8",
        ),
        (
            "TestProject/last/",
            "text/html",
            200,
            "text/html; charset=utf-8",
        ),
        (
            "TestProject/tagged/foobar/",
            "text/html",
            200,
            "text/html; charset=utf-8",
        ),
        (
            "TestProject/permissions/",
            "text/html",
            200,
            "text/html; charset=utf-8",
        ),
        (
            "TestProject/permissions/",
            "*/*",
            200,
            "application/json; charset=utf-8",
        ),
        ("", "text/html", 200, "text/html; charset=utf-8"),
    ];
    for (path, accept, status, ctype) in cases {
        let mut headers = vec![("Authorization", e.auth.as_str())];
        if !accept.is_empty() {
            headers.push(("Accept", accept));
        }
        let r = request("GET", &e.s.url(path), &headers, None);
        assert_eq!(
            (r.status, r.header("Content-Type")),
            (status, Some(ctype)),
            "GET {path} Accept {accept}: {}",
            r.body
        );
    }
}

#[test]
fn methods_redirects_head_options() {
    let e = env();
    let a = e.auth.as_str();
    let r = request(
        "PATCH",
        &e.s.url("TestProject/haggling/"),
        &[("Authorization", a)],
        Some(b""),
    );
    assert_eq!(
        (r.status, r.header("Allow")),
        (405, Some("GET, PUT, POST, DELETE, HEAD, OPTIONS"))
    );
    // A POST is a page's form: nothing else is taken.
    let r = request(
        "POST",
        &e.s.url("TestProject/haggling/"),
        &[("Authorization", a)],
        Some(b""),
    );
    assert_eq!(r.status, 415, "{}", r.body);
    let r = request(
        "DELETE",
        &e.s.url("TestProject/"),
        &[("Authorization", a)],
        None,
    );
    assert_eq!(
        (r.status, r.header("Allow")),
        (405, Some("GET, PUT, POST, HEAD, OPTIONS"))
    );
    let r = request("OPTIONS", &e.s.url("TestProject/haggling/"), &[], None);
    assert_eq!(
        (r.status, r.header("Allow")),
        (200, Some("GET, PUT, POST, DELETE, HEAD, OPTIONS"))
    );
    let r = request(
        "GET",
        &e.s.url("TestProject"),
        &[("Authorization", a)],
        None,
    );
    assert_eq!(
        (r.status, r.header("Location")),
        (301, Some("/records/TestProject/"))
    );
    let r = request("GET", &e.s.url("TestProject?tags=x"), &[], None);
    assert_eq!(r.header("Location"), Some("/records/TestProject/?tags=x"));
    let r = request("GET", &format!("{}/records", e.s.origin()), &[], None);
    assert_eq!(r.status, 301);
    // HEAD: the GET's headers, no body.
    let (status, headers, body) = raw(&e.s.addr(), format!("HEAD /records/TestProject/haggling/ HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(headers.iter().any(
        |(k, v)| k == "content-type" && v.starts_with("application/vnd.sumatra.record-v4+json")
    ));
    // No route there: 404; a segment that is not UTF-8 names nothing: 400.
    // (`../etc/passwd` is resolved by the client's URL parser to
    // `/etc/passwd`, outside the prefix.)
    for (p, want) in [
        ("TestProject/a/b/c/", 404),
        ("TestProject//", 404),
        ("../etc/passwd", 404),
        ("%ff/", 400),
    ] {
        let r = request("GET", &e.s.url(p), &[("Authorization", a)], None);
        assert_eq!(r.status, want, "{p}: {}", r.body);
    }
    assert_eq!(
        request("GET", &format!("{}/elsewhere/", e.s.origin()), &[], None).status,
        404
    );
}

#[test]
fn authentication_rules() {
    let e = env();
    // The Django pbkdf2 hash from the fixtures verifies; a wrong password is no login.
    assert_eq!(e.get("TestProject/haggling/", CLIENT_RECORD).status, 200);
    let wrong = basic("testuser", "abc124");
    assert_eq!(
        request(
            "GET",
            &e.s.url("TestProject/"),
            &[("Authorization", &wrong)],
            None
        )
        .status,
        401
    );
    assert_eq!(
        request(
            "GET",
            &e.s.url("TestProject/"),
            &[("Authorization", "Basic !!!")],
            None
        )
        .status,
        401
    );
    assert_eq!(
        request(
            "GET",
            &e.s.url("TestProject/"),
            &[("Authorization", &basic("anonymous", ""))],
            None
        )
        .status,
        401
    );
    // Public: anyone reads, nobody anonymous writes (the original allowed it).
    assert_eq!(
        request("GET", &e.s.url("TestProject2/20141013-172504/"), &[], None).status,
        200
    );
    let r = request(
        "PUT",
        &e.s.url("TestProject2/20141013-172504/"),
        &[],
        Some(br#"{"reason": "r"}"#),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        request(
            "DELETE",
            &e.s.url("TestProject2/20141013-172504/"),
            &[],
            None
        )
        .status,
        401
    );
    let bob = basic("bob", "bpw");
    assert_eq!(
        request(
            "DELETE",
            &e.s.url("TestProject2/20141013-172504/"),
            &[("Authorization", &bob)],
            None
        )
        .status,
        403
    );
    // A partial update by a writer keeps the rest.
    let r = request(
        "PUT",
        &e.s.url("TestProject2/20141013-172504/"),
        &[("Authorization", &e.auth)],
        Some(br#"{"outcome": "o"}"#),
    );
    assert_eq!(r.status, 200);
    let v = e.get("TestProject2/20141013-172504/", CLIENT_RECORD).json();
    assert_eq!(
        (v["outcome"].as_str(), v["version"].as_str()),
        (Some("o"), Some("9164b57cd8dd"))
    );
}

#[test]
fn password_change_invalidates_cached_credentials() {
    let db = TestDb::new();
    db.useradd("carol", "one");
    db.ok(&["grant", "carol", "C"]);
    let s = Server::start(&db, &[]);
    let one = basic("carol", "one");
    assert_eq!(
        request("GET", &s.url("C/"), &[("Authorization", &one)], None).status,
        200
    );
    let out = db.run_with_stdin(&["passwd", "carol", "--password-stdin"], "two\n");
    assert!(out.status.success());
    assert_eq!(
        request("GET", &s.url("C/"), &[("Authorization", &one)], None).status,
        401
    );
    assert_eq!(
        request(
            "GET",
            &s.url("C/"),
            &[("Authorization", &basic("carol", "two"))],
            None
        )
        .status,
        200
    );
    db.ok(&["userdel", "carol"]);
    assert_eq!(
        request(
            "GET",
            &s.url("C/"),
            &[("Authorization", &basic("carol", "two"))],
            None
        )
        .status,
        401
    );
}

#[test]
fn body_limits_and_prefix() {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    let s = Server::start(&db, &["--max-body", "10000", "--prefix", "/"]);
    let auth = basic("testuser", "abc123");
    let big = vec![b' '; 20_000];
    let r = request(
        "PUT",
        &format!("{}TestProject/big/", s.base),
        &[("Authorization", &auth)],
        Some(&big),
    );
    assert_eq!(r.status, 413);
    // A huge Content-Length is refused at once, and the server lives on.
    let (status, _, _) = raw(
        &s.addr(),
        b"PUT /TestProject/x/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n",
    );
    assert_eq!(status, 413);
    let r = request(
        "GET",
        &format!("{}TestProject/haggling/", s.base),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["project_id"], "TestProject");
}

#[test]
fn requests_are_logged_and_sigterm_exits_cleanly() {
    let db = TestDb::new();
    let mut s = Server::start(&db, &[]);
    assert_eq!(request("GET", &s.url("nothing/"), &[], None).status, 404);
    assert_eq!(s.stop(), Some(0));
    let log = s.log();
    assert!(
        log.lines().any(|l| l.contains("GET /records/nothing/ 404")),
        "{log}"
    );
}

#[test]
fn serve_refuses_a_missing_database() {
    let db = TestDb::uninitialised();
    let err = db.fails(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(err.contains("init"), "{err}");
}
