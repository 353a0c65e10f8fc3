//! Provenance (SPEC 9): records linked through the digests of the files
//! they read and wrote, over a real socket and from the shell, on both
//! engines. The real client's chain is in `tests/client/test_provenance.py`.

use crate::util::*;
use serde_json::{json, Value};

/// A 40-hex digest made from a short name (distinct names, distinct digests).
fn sha(name: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in name.bytes().cycle().take(20) {
        let _ = write!(out, "{:02x}", b);
    }
    out
}

fn key(path: &str, digest: &str) -> Value {
    json!({"path": path, "digest": digest, "creation": "2026-12-05 22:02:31",
           "metadata": {"size": 13, "mimetype": "text/plain"}})
}

/// A record reading `inputs` and writing `outputs` (paths, digests).
fn run(label: &str, ts: &str, inputs: &[(&str, &str)], outputs: &[(&str, &str)]) -> Value {
    let mut r = full_record(label, &format!("reason of {label}"), &[]);
    r["timestamp"] = json!(ts);
    r["input_data"] = inputs.iter().map(|(p, d)| key(p, d)).collect();
    r["output_data"] = outputs.iter().map(|(p, d)| key(p, d)).collect();
    r
}

struct Env {
    db: TestDb,
    s: Server,
    alice: Client,
}

/// alice administers Sim and Ana; bob reads Ana only; Pub is public.
fn env() -> Env {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.useradd("bob", "bpw");
    for p in ["Sim", "Ana", "Pub"] {
        db.ok(&["grant", "alice", p, "--level", "admin"]);
    }
    db.ok(&["grant", "bob", "Ana", "--level", "read"]);
    db.ok(&["grant", "anonymous", "Pub"]);
    let s = Server::start(&db, &[]);
    let alice = Client::new(Some(basic("alice", "apw")));
    Env { db, s, alice }
}

impl Env {
    fn put(&self, project: &str, r: &Value) {
        let label = r["label"].as_str().unwrap();
        let resp = self
            .alice
            .put_json(&self.s.url(&format!("{project}/{label}/")), r)
            .unwrap();
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    fn lineage(&self, c: &Client, path: &str) -> Resp {
        c.send(
            "GET",
            &self.s.url(path),
            &[("Accept", "application/json")],
            None,
        )
        .unwrap()
    }
}

fn labels(doc: &Value) -> Vec<(String, i64)> {
    doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["project"].as_str().unwrap(),
                    r["label"].as_str().unwrap()
                ),
                r["depth"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A simulation in one project writes a file that an analysis in another
/// reads (under another path, its digest in capitals): linked, both ways.
#[test]
fn runs_are_linked_through_file_digests_across_projects() {
    let e = env();
    let d = sha("result");
    e.put(
        "Sim",
        &run(
            "sim",
            "2026-12-05 22:02:31",
            &[],
            &[("Data/x/result.txt", &d)],
        ),
    );
    e.put(
        "Ana",
        &run(
            "ana",
            "2026-12-05 22:10:00",
            &[("/home/a/Data/x/result.txt", &d.to_uppercase())],
            &[],
        ),
    );
    let r = e.lineage(&e.alice, "Ana/ana/lineage/");
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    assert_eq!(
        labels(&doc),
        [("Ana/ana".into(), 0), ("Sim/sim".into(), -1)]
    );
    assert_eq!(
        doc["links"],
        json!([{"from": {"project": "Sim", "label": "sim", "url": e.s.url("Sim/sim/")},
                "to": {"project": "Ana", "label": "ana", "url": e.s.url("Ana/ana/")},
                "digest": d, "from_path": "Data/x/result.txt",
                "to_path": "/home/a/Data/x/result.txt", "out_of_order": false}])
    );
    assert_eq!(doc["cut"], json!(false));
    assert_eq!(doc["external_inputs"], json!([]));
    // The page: the graph drawn as SVG, each box a link to its record.
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Ana/ana/lineage/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg"), "{}", page.body);
    assert!(page
        .body
        .contains("<a href=\"/records/Sim/sim/\"><title>Sim/sim</title>"));
    assert!(page
        .body
        .contains(&format!("href=\"/records/?digest={d}\"")));
    let svg = e.lineage(&e.alice, "Ana/ana/lineage/?format=svg");
    assert_eq!(
        svg.header("Content-Type"),
        Some("image/svg+xml; charset=utf-8")
    );
    assert!(svg.body.starts_with("<svg"));
    let dot = e.lineage(&e.alice, "Ana/ana/lineage/?format=dot");
    assert_eq!(dot.status, 200);
    assert!(
        dot.body
            .contains("\"Sim/sim\" -> \"Ana/ana\" [label=\"result.txt\"];"),
        "{}",
        dot.body
    );
    // The record pages: Made from and Used by.
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Ana/ana/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    let made_from = page.body.split("<h3>Made from").nth(1).unwrap();
    let made_from = made_from.split("<h3>Used by").next().unwrap();
    assert!(
        made_from.contains("<a href=\"/records/Sim/sim/\">sim</a>"),
        "{made_from}"
    );
    // Which runs made or used those bytes.
    let file = e.lineage(&e.alice, &format!("?digest={d}"));
    assert_eq!(file.status, 200);
    let f = file.json();
    assert_eq!(f["produced_by"][0]["label"], json!("sim"));
    assert_eq!(f["used_by"][0]["label"], json!("ana"));
    // The shell sees every project.
    let out = e.db.ok(&["lineage", "Sim", "sim", "--format", "json"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(labels(&doc), [("Sim/sim".into(), 0), ("Ana/ana".into(), 1)]);
    let out = e.db.ok(&["whence", "--digest", &d, "--format", "json"]);
    let w: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(w[0]["records"].as_array().unwrap().len(), 2, "{w}");
    let path = e.db.dir.path().join("empty.txt");
    std::fs::write(&path, b"").unwrap();
    let out =
        e.db.ok(&["whence", path.to_str().unwrap(), "--format", "json"]);
    let w: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        w[0]["digest"],
        json!("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(w[0]["records"], json!([]), "the empty file links nothing");
    assert!(e
        .db
        .fails(&["whence", "--digest", "abc"])
        .contains("40 hexadecimal"));
}

/// The all-zero digest (IGNORE_DIGEST), the empty file's and malformed
/// digests are kept but never link records.
#[test]
fn placeholder_empty_and_malformed_digests_never_link() {
    let e = env();
    let bad = [
        "0000000000000000000000000000000000000000",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "not-a-digest",
        "",
    ];
    let files: Vec<(&str, &str)> = bad.iter().map(|d| ("f.txt", *d)).collect();
    e.put("Sim", &run("w", "2026-01-01 00:00:00", &[], &files));
    e.put("Sim", &run("r", "2026-01-02 00:00:00", &files, &[]));
    let doc = e.lineage(&e.alice, "Sim/r/lineage/").json();
    assert_eq!(labels(&doc), [("Sim/r".into(), 0)]);
    assert_eq!(doc["links"], json!([]));
    assert_eq!(doc["external_inputs"].as_array().unwrap().len(), 4);
    let r = e.lineage(&e.alice, &format!("?digest={}", bad[0]));
    assert_eq!(r.status, 400);
}

/// Several producers of one digest, an out-of-order pair, a cycle, and
/// the bounds of a walk.
#[test]
fn several_producers_out_of_order_cycles_and_bounds() {
    let e = env();
    let d = sha("shared");
    let back = sha("back");
    e.put(
        "Sim",
        &run(
            "a",
            "2026-01-01 00:00:00",
            &[("back.txt", &back)],
            &[("d.txt", &d)],
        ),
    );
    e.put(
        "Sim",
        &run("b", "2026-01-05 00:00:00", &[], &[("d.txt", &d)]),
    );
    e.put(
        "Sim",
        &run(
            "c",
            "2026-01-03 00:00:00",
            &[("d.txt", &d)],
            &[("back.txt", &back)],
        ),
    );
    let doc = e.lineage(&e.alice, "Sim/c/lineage/?depth=20").json();
    let mut got = labels(&doc);
    got.sort();
    assert_eq!(got.len(), 3, "{doc}");
    assert_eq!(doc["several_producers"], json!([d]));
    let late: Vec<&Value> = doc["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["out_of_order"] == json!(true))
        .collect();
    // b started after c read d; c started after a read back.txt.
    let late: Vec<(&str, &str)> = late
        .iter()
        .map(|l| {
            (
                l["from"]["label"].as_str().unwrap(),
                l["to"]["label"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(late, [("b", "c"), ("c", "a")], "{doc}");
    for bad in ["depth=21", "depth=0", "depth=x", "direction=sideways"] {
        let r = e.lineage(&e.alice, &format!("Sim/c/lineage/?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // A chain longer than the depth: cut at the depth, not marked as cut.
    let mut prev = sha("start");
    for i in 0..6 {
        let next = sha(&format!("chain{i}"));
        let ts = format!("2026-02-0{} 00:00:00", i + 1);
        e.put(
            "Sim",
            &run(&format!("k{i}"), &ts, &[("in", &prev)], &[("out", &next)]),
        );
        prev = next;
    }
    let doc = e
        .lineage(&e.alice, "Sim/k5/lineage/?direction=up&depth=2")
        .json();
    assert_eq!(
        labels(&doc),
        [
            ("Sim/k5".into(), 0),
            ("Sim/k4".into(), -1),
            ("Sim/k3".into(), -2)
        ]
    );
    assert_eq!(e.lineage(&e.alice, "Sim/nope/lineage/").status, 404);
}

/// One file read by 600 runs: the walk stops at 500 records and says so.
#[test]
fn a_file_read_by_many_runs_is_cut_at_the_size_bound() {
    let e = env();
    let d = sha("calibration");
    let mut records = vec![run("maker", "2026-01-01 00:00:00", &[], &[("cal.dat", &d)])];
    for i in 0..600 {
        records.push(run(
            &format!("u{i:03}"),
            "2026-01-02 00:00:00",
            &[("cal.dat", &d)],
            &[],
        ));
    }
    let path = e.db.dir.path().join("many.json");
    let records: Vec<Value> = records
        .into_iter()
        .map(|mut r| {
            r["project_id"] = json!("Sim");
            r
        })
        .collect();
    let doc = json!({"sumatra_server_export": 1,
        "projects": [{"id": "Sim", "name": "Sim", "description": "", "records": records}]});
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    e.db.ok(&["loaddata", path.to_str().unwrap()]);
    let doc = e
        .lineage(&e.alice, "Sim/maker/lineage/?direction=down")
        .json();
    assert_eq!(doc["records"].as_array().unwrap().len(), 500);
    assert_eq!(doc["cut"], json!(true));
    assert_eq!(doc["links"].as_array().unwrap().len(), 499);
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Sim/maker/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("More runs are linked than shown here"));
    // Its file page is paged: 100 runs a page, counted, the next a link away.
    let f = e.lineage(&e.alice, &format!("?digest={d}")).json();
    assert_eq!(f["used_by"].as_array().unwrap().len(), 100);
    assert_eq!(f["used_count"], json!(600));
    assert_eq!(f["produced_count"], json!(1));
    assert_eq!(f["cut"], json!(true));
    let last = e
        .lineage(&e.alice, &format!("?digest={d}&limit=1000&offset=550"))
        .json();
    let labels: Vec<&str> = last["used_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 50);
    assert_eq!((labels[0], labels[49]), ("u550", "u599"));
    assert_eq!(last["cut"], json!(false));
    let r = e.lineage(&e.alice, &format!("?digest={d}&limit=1001"));
    assert_eq!(r.status, 400, "{}", r.body);
    let html = e
        .alice
        .send(
            "GET",
            &e.s.url(&format!("Sim/?view=files&digest={d}&offset=100")),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(html.status, 200);
    assert!(html.body.contains(">u100</a>") && !html.body.contains(">u099</a>"));
    assert!(html.body.contains(&format!(
        "?view&#x3D;files&amp;digest&#x3D;{d}&amp;limit&#x3D;100&amp;offset&#x3D;200"
    )));
}

/// `P<project>/?view=files`: the files its runs wrote (or read), newest
/// first, paged, searchable by path, each with the runs of the same bytes.
#[test]
fn a_projects_files_are_listed_newest_first_paged_and_searchable() {
    let e = env();
    let (a, b, c) = (sha("files-a"), sha("files-b"), sha("files-c"));
    e.put(
        "Sim",
        &run("one", "2026-01-01 00:00:00", &[], &[("out/a.txt", &a)]),
    );
    e.put(
        "Sim",
        &run(
            "two",
            "2026-01-02 00:00:00",
            &[("out/a.txt", &a)],
            &[("out/b.csv", &b)],
        ),
    );
    e.put(
        "Sim",
        &run(
            "three",
            "2026-01-03 00:00:00",
            &[("out/a.txt", &a)],
            &[("fig/c.png", &c), ("x.tmp", &"0".repeat(40))],
        ),
    );
    let list = |q: &str| {
        let r = e.lineage(&e.alice, &format!("Sim/?view=files{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.json()
    };
    let paths = |doc: &Value| -> Vec<String> {
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect()
    };
    let doc = list("");
    assert_eq!(
        paths(&doc),
        ["x.tmp", "fig/c.png", "out/b.csv", "out/a.txt"]
    );
    let first = &doc["files"][3];
    assert_eq!(first["record"]["label"], json!("one"));
    assert_eq!(first["produced_by"], json!(1));
    assert_eq!(first["used_by"], json!(2));
    assert_eq!(first["size"], json!(13));
    assert_eq!(doc["files"][0]["links"], json!(false));
    assert_eq!(doc["files"][0]["used_by"], Value::Null);
    let doc = list("&limit=2");
    assert_eq!(paths(&doc), ["x.tmp", "fig/c.png"]);
    assert_eq!(doc["more"], json!(true));
    let doc = list("&limit=2&offset=2");
    assert_eq!(paths(&doc), ["out/b.csv", "out/a.txt"]);
    assert_eq!(doc["more"], json!(false));
    assert_eq!(paths(&list("&search=out/")), ["out/b.csv", "out/a.txt"]);
    assert_eq!(paths(&list("&role=input")), ["out/a.txt", "out/a.txt"]);
    let html = e
        .alice
        .send(
            "GET",
            &e.s.url("Sim/?view=files&search=%3Cb%3E"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(html.status, 200);
    assert!(
        html.body
            .contains("No files with “&lt;b&gt;” in their path"),
        "{}",
        html.body
    );
    let html = e
        .alice
        .send(
            "GET",
            &e.s.url("Sim/?view=files"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert!(
        html.body
            .contains(&format!("?view&#x3D;files&amp;digest&#x3D;{a}")),
        "{}",
        html.body
    );
    for bad in ["&role=both", "&limit=0", "&limit=1001", "&offset=-1"] {
        let r = e.lineage(&e.alice, &format!("Sim/?view=files{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = e.lineage(&e.alice, "Sim/?view=bogus");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(e.lineage(&Client::new(None), "Sim/?view=files").status, 401);
    let bob = Client::new(Some(basic("bob", "bpw")));
    assert_eq!(e.lineage(&bob, "Sim/?view=files").status, 403);
}

/// A record of a project the caller cannot read is never shown, counted
/// or hinted at: not in lineage, not on the record page, not by digest.
#[test]
fn a_project_the_caller_cannot_read_is_never_shown() {
    let e = env();
    let d = sha("public-output");
    e.put(
        "Pub",
        &run("open", "2026-01-01 00:00:00", &[], &[("o.txt", &d)]),
    );
    e.put(
        "Sim",
        &run("secret", "2026-01-02 00:00:00", &[("o.txt", &d)], &[]),
    );
    e.put(
        "Ana",
        &run("shared", "2026-01-03 00:00:00", &[("o.txt", &d)], &[]),
    );
    let anon = Client::new(None);
    let doc = e.lineage(&anon, "Pub/open/lineage/").json();
    assert_eq!(labels(&doc), [("Pub/open".into(), 0)]);
    assert!(!doc.to_string().contains("secret") && !doc.to_string().contains("Sim"));
    let bob = Client::new(Some(basic("bob", "bpw")));
    let doc = e.lineage(&bob, "Pub/open/lineage/").json();
    assert_eq!(
        labels(&doc),
        [("Pub/open".into(), 0), ("Ana/shared".into(), 1)]
    );
    assert!(!doc.to_string().contains("secret"), "{doc}");
    let f = e.lineage(&bob, &format!("?digest={d}")).json();
    assert_eq!(f["used_by"].as_array().unwrap().len(), 1, "{f}");
    let page = anon
        .send(
            "GET",
            &e.s.url("Pub/open/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert!(!page.body.contains("secret") && !page.body.contains("shared"));
    assert!(page.body.contains("No readable run used this record"));
    // Lineage of a private record: the usual 401 and 403.
    assert_eq!(e.lineage(&anon, "Sim/secret/lineage/").status, 401);
    assert_eq!(e.lineage(&bob, "Sim/secret/lineage/").status, 403);
}

/// File names are the scientists' own: escaped in the page, the SVG, the
/// DOT text and the JSON, never executed, never breaking the format.
#[test]
fn hostile_file_names_are_escaped_in_every_format() {
    let e = env();
    let d = sha("hostile");
    let name = "a\"><script>alert(1)</script>\n}\".dat";
    e.put("Sim", &run("w", "2026-01-01 00:00:00", &[], &[(name, &d)]));
    e.put("Sim", &run("r", "2026-01-02 00:00:00", &[(name, &d)], &[]));
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Sim/r/lineage/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(
        page.body
            .contains("a&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    let svg = e.lineage(&e.alice, "Sim/r/lineage/?format=svg").body;
    assert!(!svg.contains("<script>"));
    // The arrow names the file (the last part of its path), escaped.
    assert!(svg.contains(">script&gt;\n}&quot;.dat</text>"), "{svg}");
    let dot = e.lineage(&e.alice, "Sim/r/lineage/?format=dot").body;
    assert_eq!(dot.lines().count(), 3 + 2 + 1 + 1, "{dot}");
    let doc = e.lineage(&e.alice, "Sim/r/lineage/").json();
    assert_eq!(doc["links"][0]["from_path"], json!(name));
    // Both standards keep the name whole, as data: the documents parse.
    let prov = e.lineage(&e.alice, "Sim/r/lineage/?format=prov").json();
    let paths: Vec<&Value> = prov["entity"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|e| e.get("sumatra:path"))
        .collect();
    assert_eq!(paths, [&json!(name), &json!(name)], "{prov}");
    let krate = e.lineage(&e.alice, "Sim/r/lineage/?format=ro-crate").json();
    let files: Vec<&Value> = krate["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["@type"] == "File")
        .collect();
    // One entity for the bytes one run wrote and the other read.
    assert_eq!(files.len(), 1, "{krate}");
    assert_eq!(files[0]["name"], json!(name));
    assert_eq!(files[0]["@id"], json!(format!("#sha1-{d}")));
}

/// A record, a lineage and a query's matches as PROV-JSON and RO-Crate
/// (SPEC 9.3; the validators run in the client suite): each record once,
/// links only between records of the export, the caller's projects only.
#[test]
fn records_lineages_and_queries_export_as_prov_and_ro_crate() {
    let e = env();
    let (a, b) = (sha("exp-a"), sha("exp-b"));
    e.put(
        "Pub",
        &run("first", "2026-01-01 00:00:00", &[], &[("a.txt", &a)]),
    );
    e.put(
        "Pub",
        &run(
            "second",
            "2026-01-02 00:00:00",
            &[("a.txt", &a)],
            &[("b.txt", &b)],
        ),
    );
    e.put(
        "Sim",
        &run("hidden", "2026-01-03 00:00:00", &[("b.txt", &b)], &[]),
    );
    let anon = Client::new(None);
    let get = |c: &Client, path: &str| {
        let r = e.lineage(c, path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r
    };
    let actions = |doc: &Value| -> Vec<String> {
        let mut v: Vec<String> = doc["@graph"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["@type"] == "CreateAction")
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // The lineage of `first`, as an anonymous caller sees it.
    let r = get(&anon, "Pub/first/lineage/?format=ro-crate");
    assert_eq!(
        r.header("Content-Type"),
        Some("application/ld+json; charset=utf-8")
    );
    let doc = r.json();
    assert_eq!(actions(&doc), ["Pub first", "Pub second"]);
    assert!(
        !r.body.contains("hidden") && !r.body.contains("Sim"),
        "{}",
        r.body
    );
    // Alice sees the run of Sim that read `second`'s output.
    let doc = get(&e.alice, "Pub/first/lineage/?format=ro-crate").json();
    assert_eq!(actions(&doc), ["Pub first", "Pub second", "Sim hidden"]);
    // A query's matches: the links between them, parameters as values.
    let doc = get(&anon, "Pub/?q=label%20~%20s&format=prov").json();
    let informed: Vec<&Value> = doc["wasInformedBy"].as_object().unwrap().values().collect();
    assert_eq!(informed.len(), 1, "{doc}");
    assert_eq!(informed[0]["prov:informant"], json!("smt:Pub/first"));
    assert_eq!(informed[0]["prov:informed"], json!("smt:Pub/second"));
    let doc = get(&anon, "Pub/?q=label%20=%20second&format=ro-crate").json();
    assert_eq!(actions(&doc), ["Pub second"]);
    let params: Vec<&Value> = doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["@type"] == "PropertyValue")
        .collect();
    assert!(!params.is_empty(), "{doc}");
    assert!(params.iter().all(|p| p["name"].is_string()), "{doc}");
    // The root dataset says what was asked.
    let root = doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["@id"] == "./")
        .unwrap();
    assert_eq!(
        root["name"],
        json!("Sumatra records of Pub: label = second")
    );
    // One record alone: no link to its producer, which is not in it.
    let doc = get(&anon, "Pub/second/?format=prov").json();
    assert_eq!(doc["activity"].as_object().unwrap().len(), 1);
    assert!(doc.get("wasInformedBy").is_none(), "{doc}");
    assert_eq!(doc["used"].as_object().unwrap().len(), 1);
    assert_eq!(doc["wasGeneratedBy"].as_object().unwrap().len(), 1);
    // Formats are for what they describe.
    let r = e.lineage(&anon, "Pub/?format=dot");
    assert_eq!(r.status, 406, "{}", r.body);
    let r = e.lineage(&anon, "?format=ro-crate");
    assert_eq!(r.status, 406, "{}", r.body);
    // The shell's lineage (every project) in both formats.
    let out = e.db.ok(&["lineage", "Pub", "first", "--format", "prov"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc["activity"]
        .as_object()
        .unwrap()
        .contains_key("smt:Sim/hidden"));
    assert_eq!(doc["prefix"]["smt"], json!("urn:sumatra:record:"));
    let out =
        e.db.ok(&["lineage", "Pub", "first", "--format", "ro-crate"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(actions(&doc), ["Pub first", "Pub second", "Sim hidden"]);
}

/// An export of a whole project is bounded like every other question
/// (SPEC 7.6): past 10 000 records, 400 with how to narrow it; a page of
/// it answers.
#[test]
fn an_export_of_more_than_10000_records_is_refused_with_how_to_narrow_it() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    let mut records = Vec::new();
    for i in 0..10_001 {
        let mut r = full_record(&format!("r{i}"), "", &[]);
        r["project_id"] = json!("Pub");
        records.push(r);
    }
    std::fs::write(&file, serde_json::to_vec(&records).unwrap()).unwrap();
    e.db.ok(&["loaddata", file.to_str().unwrap()]);
    let anon = Client::new(None);
    for format in ["prov", "ro-crate"] {
        let r = e.lineage(&anon, &format!("Pub/?format={format}"));
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("more than 10000 records"), "{}", r.body);
        assert!(r.body.contains("limit= and offset="), "{}", r.body);
        let r = e.lineage(&anon, &format!("Pub/?format={format}&limit=3&offset=10"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let doc = e.lineage(&anon, "Pub/?format=prov&limit=3").json();
    assert_eq!(doc["activity"].as_object().unwrap().len(), 3);
}

/// A record naming more than 100 000 files is stored; the first 100 000
/// are indexed and the page says how many were not.
#[test]
fn a_record_naming_100001_files_is_stored_and_says_what_was_not_indexed() {
    let e = env();
    let files: Vec<Value> = (0..100_001)
        .map(|i| json!({"path": format!("f{i}"), "digest": sha(&format!("f{i}")), "creation": null, "metadata": {}}))
        .collect();
    let mut r = run("sweep", "2026-01-01 00:00:00", &[], &[]);
    r["output_data"] = Value::Array(files);
    e.put("Sim", &r);
    let n = e.db.query("SELECT count(*) FROM record_files");
    assert_eq!(n, [["100000"]]);
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Sim/sweep/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    let said = page
        .body
        .split("<section id=\"provenance\">")
        .nth(1)
        .unwrap_or(&page.body);
    assert!(
        said.contains("1 of this record's files were not indexed"),
        "{}",
        &said[..said.len().min(3000)]
    );
    assert!(page
        .body
        .contains("99001 more output files are not listed here"));
    assert!(page.body.len() < 2_000_000, "{} bytes", page.body.len());
}

/// A database of the release before (schema 4: no files indexed) is
/// migrated by `init`, which indexes every record's files: linked after.
#[test]
fn a_schema_4_database_is_migrated_and_its_records_linked() {
    let e = env();
    let d = sha("before");
    e.put(
        "Sim",
        &run("w", "2026-01-01 00:00:00", &[], &[("o.txt", &d)]),
    );
    e.put(
        "Ana",
        &run("r", "2026-01-02 00:00:00", &[("o.txt", &d)], &[]),
    );
    e.db.query("DROP TABLE record_files");
    for t in ["tokens", "trash", "trashed_projects", "history"] {
        e.db.query(&format!("DROP TABLE {t}"));
    }
    if e.db.is_pg() {
        e.db.query("UPDATE sumatra_schema SET version = 4");
    } else {
        e.db.query("PRAGMA user_version = 4");
    }
    let out = e.db.run(&["init", "--yes"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("migrated from schema version 4 (schema version 8)"),
        "{said}"
    );
    assert_eq!(e.db.query("SELECT count(*) FROM record_files"), [["2"]]);
    let doc = e.lineage(&e.alice, "Ana/r/lineage/").json();
    assert_eq!(labels(&doc), [("Ana/r".into(), 0), ("Sim/w".into(), -1)]);
}

/// The query language's file fields (SPEC 9.3): `input.digest`,
/// `input.path`, `output.digest`, `output.path`, true when any of the
/// record's files matches.
#[test]
fn the_query_language_finds_records_by_their_files() {
    let e = env();
    let d = sha("made");
    let other = sha("other");
    e.put(
        "Sim",
        &run(
            "w",
            "2026-01-01 00:00:00",
            &[],
            &[("Data/x/result.txt", &d)],
        ),
    );
    e.put(
        "Sim",
        &run(
            "r",
            "2026-01-02 00:00:00",
            &[("in/result.txt", &d)],
            &[("fig.png", &other)],
        ),
    );
    e.put("Sim", &run("n", "2026-01-03 00:00:00", &[], &[]));
    let find = |q: &str| -> Vec<String> {
        let r = e.lineage(
            &e.alice,
            &format!("Sim/?q={}&sort=label&format=json", encode(q)),
        );
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        labels_of(&r.json())
    };
    assert_eq!(find(&format!("input.digest = {}", d.to_uppercase())), ["r"]);
    assert_eq!(find(&format!("output.digest = {d}")), ["w"]);
    assert_eq!(find("output.path ~ RESULT"), ["w"]);
    assert_eq!(find("input.path ~ in/"), ["r"]);
    assert_eq!(
        find(&format!("output.digest in ({d}, {other})")),
        ["r", "w"]
    );
    assert_eq!(find("output.digest exists"), ["r", "w"]);
    assert_eq!(find("not input.digest exists"), ["n", "w"]);
    assert_eq!(find(&format!("output.digest != {d}")), ["n", "r"]);
    for (bad, says) in [
        ("q=input.digest+%3E+a", "cannot be used with input.digest"),
        ("q=input.path+%3D+none", "not input.path exists"),
        ("sort=input.path", "cannot sort by"),
        ("columns=label,output.digest", "cannot show as a column"),
    ] {
        let r = e.lineage(&e.alice, &format!("Sim/?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{bad}: {}",
            r.body
        );
    }
}

/// `parent` and `child` (SPEC 9.3): the label of a direct parent or child,
/// counted only in projects the caller may read.
#[test]
fn the_query_language_finds_starting_points_and_runs_that_fed_another() {
    let e = env();
    let (a, b) = (sha("ab"), sha("bc"));
    e.put(
        "Sim",
        &run("first", "2026-01-01 00:00:00", &[], &[("a.txt", &a)]),
    );
    e.put(
        "Sim",
        &run(
            "middle",
            "2026-01-02 00:00:00",
            &[("a.txt", &a)],
            &[("b.txt", &b)],
        ),
    );
    e.put(
        "Sim",
        &run("final", "2026-01-03 00:00:00", &[("b.txt", &b)], &[]),
    );
    // A reader of Sim's output in a project bob cannot see... and alice can.
    let p = sha("pub");
    e.put(
        "Pub",
        &run("open", "2026-01-01 00:00:00", &[], &[("p.txt", &p)]),
    );
    e.put(
        "Sim",
        &run("hidden", "2026-01-02 00:00:00", &[("p.txt", &p)], &[]),
    );
    let find = |c: &Client, project: &str, q: &str| -> Vec<String> {
        let r = e.lineage(
            c,
            &format!("{project}/?q={}&sort=label&format=json", encode(q)),
        );
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        labels_of(&r.json())
    };
    let alice = &e.alice;
    assert_eq!(find(alice, "Sim", "child exists"), ["first", "middle"]);
    assert_eq!(
        find(alice, "Sim", "not parent exists and child exists"),
        ["first"]
    );
    assert_eq!(find(alice, "Sim", "parent = middle"), ["final"]);
    assert_eq!(
        find(alice, "Sim", "parent in (first, middle)"),
        ["final", "middle"]
    );
    assert_eq!(find(alice, "Sim", "child ~ FIN"), ["middle"]);
    assert_eq!(
        find(alice, "Sim", "parent != first and parent exists"),
        ["final", "hidden"]
    );
    // Across projects, as far as the caller reads.
    assert_eq!(find(alice, "Pub", "child exists"), ["open"]);
    let anon = Client::new(None);
    assert_eq!(find(&anon, "Pub", "child exists"), Vec::<String>::new());
    assert_eq!(find(&anon, "Pub", "not child exists"), ["open"]);
    // The shell sees every project.
    let out = e.db.ok(&[
        "records",
        "Pub",
        "child = hidden",
        "--format",
        "csv",
        "--columns",
        "label",
    ]);
    assert_eq!(out, "label\r\nopen\r\n");
}
