//! Finding records (SPEC 7): parameters as data, the query language,
//! order, paging and the representations, over a real socket; and a
//! database written by the release before (schema version 1) migrated by
//! `init` and searched.

use crate::util::*;
use serde_json::json;

/// The database file made by the release before this one (schema version
/// 1): the original's fixtures, and project Params with one record per
/// parameter type (simple, json, yaml, nt, ini) and one whose parameters
/// cannot be read (broken); users testuser/abc123 and alice/apw.
const SCHEMA_V1: &[u8] = include_bytes!("data/schema-v1.db");

struct Env {
    _db: TestDb,
    s: Server,
    alice: Client,
}

/// The schema-version-1 file, migrated by `init`.
fn migrated_file() -> TestDb {
    let db = TestDb::on(Backend::Sqlite);
    std::fs::write(&db.path, SCHEMA_V1).unwrap();
    let out = db.run(&["init"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("migrated from schema version 1 (schema version 8)"),
        "{said}"
    );
    db
}

/// The records of the schema-version-1 file on this test's engine: the file
/// migrated (SQLite), or moved as the README says, `export --with-users`
/// from it and `loaddata` into a new PostgreSQL database.
fn v1_data() -> TestDb {
    let file = migrated_file();
    if backend() == Backend::Sqlite {
        return file;
    }
    let dump = file.dir.path().join("all.json");
    file.ok(&["export", "--with-users", "-o", dump.to_str().unwrap()]);
    let db = TestDb::new();
    db.ok(&["loaddata", dump.to_str().unwrap()]);
    db
}

fn migrated() -> Env {
    let db = v1_data();
    let s = Server::start(&db, &[]);
    let alice = Client::new(Some(basic("alice", "apw")));
    Env { _db: db, s, alice }
}

impl Env {
    fn get(&self, query: &str) -> Resp {
        self.alice
            .send(
                "GET",
                &self.s.url(&format!("Params/{query}")),
                &[("Accept", "application/json")],
                None,
            )
            .unwrap()
    }
    /// Labels matching `q`, in the order served.
    fn labels(&self, q: &str, extra: &str) -> Vec<String> {
        let url = format!("?q={}{extra}", encode(q));
        let r = self.get(&url);
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        labels_of(&r.json())
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn schema_v1_database_is_migrated_and_its_records_found_by_parameters() {
    let e = migrated();
    let find = |q: &str| sorted(e.labels(q, ""));
    // Every parameter type, with Sumatra's quirks.
    assert_eq!(find("params.n > 500"), ["nt", "yaml"]);
    assert_eq!(find("params.n = 50"), ["simple"]);
    assert_eq!(
        find("params.n = 50.0"),
        find("params.n = 50"),
        "50 and 50.0 are one number"
    );
    assert_eq!(
        find("params.distr = 'a#b'"),
        ["simple"],
        "a quoted # is no comment"
    );
    assert_eq!(find("params.flag = true"), ["simple"]);
    assert_eq!(find("params.flag = false"), ["yaml"]);
    assert_eq!(
        find("params.model.layers >= 4"),
        ["nt", "yaml"],
        "nested dicts give dotted keys"
    );
    assert_eq!(
        find("params.sim.steps = 1000 and params.sim.method = euler"),
        ["ini"]
    );
    assert_eq!(
        find("params.tags = '[1,2]'"),
        ["json"],
        "lists are kept as their JSON text"
    );
    assert_eq!(
        find("params.name = normal"),
        ["simple"],
        "an unquoted word is a string"
    );
    assert_eq!(find("params.ratio < 1e-2"), ["simple"]);
    // The unreadable one has no keys, but is found by the rest; its page says so.
    assert_eq!(
        find("params.n exists and label = broken"),
        Vec::<String>::new()
    );
    assert_eq!(find("not params.n exists"), ["broken", "ini"]);
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/broken/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("could not be read"), "{}", page.body);
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/json/"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("could not be read"));
    // Dependencies and fixed fields.
    assert_eq!(find("deps.numpy = 2.0.1"), ["simple"]);
    assert_eq!(
        find("deps.numpy exists and timestamp >= 2024-06-01"),
        ["json", "simple"]
    );
    assert_eq!(find("tag = x"), ["json", "simple"]);
    assert_eq!(
        find("tag ~ Y"),
        ["json", "yaml"],
        "a case-insensitive substring of some tag"
    );
    assert_eq!(find("label in (json, yaml, nope)"), ["json", "yaml"]);
    assert_eq!(
        find("(params.seed = 3 or params.n > 650) and not tag exists"),
        ["nt"],
        "not binds tightest, then and, then or"
    );
    let r = e.get(&format!("?q={}", encode("PARAMS.n > 500")));
    assert_eq!(r.status, 400, "field names are case-sensitive");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown field \"PARAMS.n\""),
        "{}",
        r.body
    );
    assert_eq!(
        find("params.n > 500 AND params.n < 650"),
        ["yaml"],
        "keywords in any case"
    );
}

#[test]
fn bad_queries_are_400s_saying_where() {
    let e = migrated();
    for (q, column, what) in [
        ("params.n >", 11, "expected a value"),
        ("colour = red", 1, "unknown field \"colour\""),
        ("label = 'open", 9, "unterminated"),
        (
            "(label = x",
            11,
            "expected \")\" to close the \"(\" at column 1",
        ),
        ("label = x)", 10, ""),
        ("tag < x", 5, ""),
    ] {
        let r = e.get(&format!("?q={}", encode(q)));
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.starts_with(&format!("query: column {column}: ")),
            "{q}: {msg}"
        );
        assert!(msg.contains(what), "{q}: {msg}");
    }
    let long = "label = x and ".repeat(200) + "label = y";
    assert_eq!(e.get(&format!("?q={}", encode(&long))).status, 400);
    let deep = "(".repeat(40) + "label = x" + &")".repeat(40);
    let r = e.get(&format!("?q={}", encode(&deep)));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("query: column"), "{}", r.body);
    assert_eq!(e.get("?sort=colour").status, 400);
    assert_eq!(e.get("?plot=params.n&format=svg").status, 400);
    // The page answers 400 too, with the sentence beside the box and the
    // query kept in it.
    let r = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/?q=params.n%20%3E"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    let doc = scraper::Html::parse_document(&r.body);
    let err: String = doc
        .select(&scraper::Selector::parse("p.error").unwrap())
        .flat_map(|e| e.text())
        .collect();
    assert!(
        err.starts_with("query: column 11: expected a value"),
        "{err}"
    );
    let kept = doc
        .select(&scraper::Selector::parse("input[name=q]").unwrap())
        .next()
        .unwrap();
    assert_eq!(kept.value().attr("value"), Some("params.n >"));
}

#[test]
fn sort_count_and_paging_keep_the_client_document() {
    let e = migrated();
    assert_eq!(
        e.labels("params.n exists", "&sort=params.n"),
        ["simple", "json", "yaml", "nt"]
    );
    assert_eq!(
        e.labels("params.n exists", "&sort=-params.n,label"),
        ["nt", "yaml", "json", "simple"]
    );
    // Records without the key sort last, either way.
    let all = e.labels("label exists", "&sort=-params.model.layers");
    assert_eq!(all[..3], ["nt", "yaml", "json"]);
    let all_asc = e.labels("label exists", "&sort=params.model.layers");
    assert_eq!(all_asc[..3], ["json", "yaml", "nt"]);
    assert_eq!(all.len(), 6);
    let r = e.get("?q=params.n%20exists&sort=-params.n&limit=2&offset=1");
    let doc = r.json();
    assert_eq!(doc["count"], 4);
    assert_eq!(doc["query"], "params.n exists");
    let urls: Vec<&str> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(urls, [e.s.url("Params/yaml/"), e.s.url("Params/json/")]);
    // Unpaged, the count is that of the records listed (counted from the list).
    let whole = e.get("?q=params.n%20exists").json();
    assert_eq!(whole["count"], 4);
    assert_eq!(whole["records"].as_array().unwrap().len(), 4);
    let sorted = e.get("?sort=label").json();
    assert_eq!(sorted["count"], 6);
    assert_eq!(sorted["records"].as_array().unwrap().len(), 6);
    // Without a query the document is as the client knows it.
    let plain = e.get("");
    assert!(plain.json().get("count").is_none());
    assert_eq!(plain.json()["records"].as_array().unwrap().len(), 6);
}

#[test]
fn csv_table_json_and_plot() {
    let e = migrated();
    // A record with a formula as its reason, to be defused.
    let mut rec = full_record("formula", "=HYPERLINK(\"http://evil\")", &["x"]);
    rec["parameters"] =
        json!({"type": "SimpleParameterSet", "content": "n = -3\nnote = \"@SUM(A1)\""});
    assert_eq!(
        e.alice
            .put_json(&e.s.url("Params/formula/"), &rec)
            .unwrap()
            .status,
        201
    );
    // The PUT does not wait for the index: the first search reads the
    // parameters of what was written since, so it sees every write.
    let state = || {
        e._db
            .query("SELECT params_state FROM records WHERE label = 'formula'")[0][0]
            .clone()
    };
    assert_eq!(state(), "0", "indexed by the PUT itself");
    let r = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/?q=tag%20%3D%20x&format=csv&sort=label"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(state(), "1", "indexed before the search read the index");
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = r.body.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "label,timestamp,reason,outcome,duration,tags,user,main_file,version,\
         params.distr,params.flag,params.lr,params.model.act,params.model.layers,params.n,params.name,params.note,params.ratio,params.seed,params.tags"
    );
    assert_eq!(lines.len(), 5, "{}", r.body);
    assert!(
        lines[1].starts_with(
            "formula,2026-11-26 07:07:39,\"'=HYPERLINK(\"\"http://evil\"\")\",fine,1.5,x,"
        ),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(",-3,") && lines[1].contains(",'@SUM(A1),"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("json,") && lines[3].starts_with("simple,"));
    // Accept: text/csv, chosen columns.
    let r = e
        .alice
        .send(
            "GET",
            &e.s.url(
                "Params/?q=params.n%20%3E%20500&columns=label,params.n,deps.numpy&sort=params.n",
            ),
            &[("Accept", "text/csv")],
            None,
        )
        .unwrap();
    assert_eq!(
        r.body,
        "label,params.n,deps.numpy\r\nyaml,600,\r\nnt,700,\r\n"
    );
    // Table JSON: values typed.
    let r = e.get(
        "?q=params.n%20%3E%20500&format=table%2Bjson&columns=label,params.n,duration&sort=params.n",
    );
    assert_eq!(
        r.json(),
        json!({"columns": ["label", "params.n", "duration"], "rows": [["yaml", 600, 0.1399848461151123], ["nt", 700, 0.1399848461151123]], "count": 2})
    );
    // The plot alone, and on the page.
    let r = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/?plot=params.n,params.seed&format=svg"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    assert_eq!(
        r.body.matches("<circle").count(),
        2,
        "records with numeric n and seed"
    );
    assert!(
        r.body.contains("href=\"/records/Params/nt/\""),
        "{}",
        &r.body[..500]
    );
    assert!(r.body.contains("<title>nt</title>"));
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/?plot=params.n,params.seed"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg") && page.body.contains("5 had no numeric value"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"));
}

#[test]
fn the_page_has_a_query_box_parameter_columns_sort_links_and_csv() {
    let e = migrated();
    let r = e
        .alice
        .send(
            "GET",
            &e.s.url("Params/?q=params.n%20%3E%3D%20500&sort=-params.n"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let doc = scraper::Html::parse_document(&r.body);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let q = doc.select(&sel("form.query input[name=q]")).next().unwrap();
    assert_eq!(q.value().attr("value"), Some("params.n >= 500"));
    let labels: Vec<String> = doc
        .select(&sel("table.records td.label a"))
        .map(|a| a.text().collect())
        .collect();
    assert_eq!(labels, ["nt", "yaml", "json"]);
    // A parameter's header shows its key, the full name as its title.
    let headers: Vec<(String, String)> = doc
        .select(&sel("th.param a"))
        .map(|a| {
            (
                a.text().collect(),
                a.value().attr("title").unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        headers.contains(&("n".to_string(), "params.n".to_string())),
        "{headers:?}"
    );
    // Sorted descending by params.n: its header sorts ascending next.
    let n_link = doc
        .select(&sel("th.param a"))
        .find(|a| a.value().attr("title") == Some("params.n"))
        .unwrap();
    assert!(
        n_link
            .value()
            .attr("href")
            .unwrap()
            .contains("sort=params.n"),
        "{:?}",
        n_link.value().attr("href")
    );
    let csv = doc
        .select(&sel("p.results a"))
        .find(|a| a.text().collect::<String>() == "Download CSV")
        .unwrap();
    let href = csv.value().attr("href").unwrap();
    assert!(
        href.contains("format=csv") && href.contains("q=params.n"),
        "{href}"
    );
    let r = e
        .alice
        .send("GET", &format!("{}{}", e.s.origin(), href), &[], None)
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.lines().count(), 4, "{}", r.body);
    assert!(doc
        .select(&sel("p.filter"))
        .next()
        .unwrap()
        .text()
        .collect::<String>()
        .contains("Showing 3 records"));
}

#[test]
fn records_command_finds_with_the_same_language() {
    let db = v1_data();
    let table = db.ok(&[
        "records",
        "Params",
        "params.n > 100",
        "--sort",
        "-params.n",
        "--columns",
        "label,params.n,params.model.layers,deps.numpy",
    ]);
    let rows: Vec<Vec<String>> = table
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.trim_matches('│')
                .split('┆')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        [
            ["label", "params.n", "params.model.layers", "deps.numpy"],
            ["nt", "700", "5", ""],
            ["yaml", "600", "4", ""],
            ["json", "500", "3", "1.26.4"],
        ]
    );
    let csv = db.ok(&[
        "records",
        "Params",
        "tag = x",
        "--format",
        "csv",
        "--columns",
        "label,tags",
        "--sort",
        "label",
    ]);
    assert_eq!(csv, "label,tags\r\njson,\"x,y\"\r\nsimple,x\r\n");
    let json = db.ok(&[
        "records",
        "Params",
        "--format",
        "json",
        "--limit",
        "1",
        "--columns",
        "label,params.n",
        "--sort",
        "-params.n",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v,
        json!({"columns": ["label", "params.n"], "rows": [["nt", 700]], "count": 6})
    );
    let err = db.fails(&["records", "Params", "params.n >"]);
    assert!(err.contains("query: column 11: expected a value"), "{err}");
    let err = db.fails(&["records", "Nope"]);
    assert!(err.contains("Nope"), "{err}");
}

#[test]
fn comparison_of_up_to_ten_records_aligns_parameters_by_key() {
    let e = migrated();
    let page = |q: &str| {
        let r = e
            .alice
            .send(
                "GET",
                &e.s.url(&format!("Params/{q}")),
                &[("Accept", "text/html")],
                None,
            )
            .unwrap();
        (r.status, scraper::Html::parse_document(&r.body))
    };
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let (status, doc) = page("?compare=simple,json,yaml");
    assert_eq!(status, 200);
    let h1: String = doc.select(&sel("h1")).flat_map(|h| h.text()).collect();
    assert_eq!(h1, "Comparing 3 records");
    let params = doc
        .select(&sel("section.compare-section"))
        .find(|s| {
            s.select(&sel("h2"))
                .flat_map(|h| h.text())
                .collect::<String>()
                .starts_with("Parameters")
        })
        .unwrap();
    let row = |name: &str| -> (Vec<String>, bool) {
        let tr = params
            .select(&sel("tbody tr"))
            .find(|tr| {
                tr.select(&sel("th"))
                    .flat_map(|t| t.text())
                    .collect::<String>()
                    == name
            })
            .unwrap_or_else(|| panic!("no row {name}"));
        let cells = ["td.a", "td.b", "td.c"]
            .iter()
            .map(|c| {
                tr.select(&sel(c))
                    .next()
                    .unwrap()
                    .text()
                    .collect::<String>()
            })
            .collect();
        (cells, tr.value().classes().any(|c| c == "differs"))
    };
    assert_eq!(
        row("n"),
        (vec!["50".to_string(), "500".into(), "600".into()], true)
    );
    assert_eq!(
        row("model.layers"),
        (vec!["absent".to_string(), "3".into(), "4".into()], true)
    );
    // Ten different records at most (SPEC 7.6): a label named again counts
    // once, so these eleven are the six records compared...
    let eleven = [
        "simple", "json", "yaml", "nt", "ini", "broken", "simple", "json", "yaml", "nt", "ini",
    ]
    .join(",");
    let (status, doc) = page(&format!("?compare={eleven}"));
    assert_eq!(status, 200);
    let sides: Vec<String> = doc
        .select(&sel("p.meta a"))
        .map(|a| a.text().collect())
        .collect();
    assert_eq!(sides, ["simple", "json", "yaml", "nt", "ini", "broken"]);
    // ... and eleven different ones are refused with the bound.
    let distinct: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
    let (status, doc) = page(&format!("?compare={}", distinct.join(",")));
    assert_eq!(status, 400);
    let text: String = doc.root_element().text().collect();
    assert!(
        text.contains("compare: at most 10 different records at once, not 11"),
        "{text}"
    );
}

/// An export document of `n` records in project `Many`: record `i` has
/// `n = i` (SimpleParameterSet), every 7th a JSON content that cannot be
/// read, and record 3 names numpy twice (the last version counts).
pub fn many_records_file(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let label = format!("r{i:04}");
            let mut r = full_record(&label, "many", &["x"]);
            r["timestamp"] = json!(format!("2026-01-01 {:02}:{:02}:{:02}", i / 3600, i / 60 % 60, i % 60));
            r["parameters"] = if i % 7 == 6 {
                json!({"content": "{not json", "type": "JSONParameterSet"})
            } else {
                json!({"content": format!("n = {i}\nhalf = {}", i / 2), "type": "SimpleParameterSet"})
            };
            let dep = |v: &str| json!({"name": "numpy", "path": "/np", "version": v, "module": "python", "diff": "", "source": null});
            r["dependencies"] = match i {
                3 => json!([dep("1.0"), dep("2.0")]),
                _ => json!([dep("1.0")]),
            };
            r
        })
        .collect();
    let doc = json!({"sumatra_server_export": 1, "projects": [
        {"id": "Many", "name": "", "description": "", "records": records}]});
    let file = dir.join("many.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    file
}

/// Parameters are indexed a batch of records at a time (one statement for
/// many records' rows): each record still gets exactly its own entries,
/// across the end of a batch, with unreadable contents and a dependency
/// named twice among them; and an update re-reads one record alone.
#[test]
fn records_indexed_a_batch_at_a_time_keep_their_own_entries() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    let file = many_records_file(db.dir.path(), 1500);
    db.ok(&["loaddata", file.to_str().unwrap()]);
    db.ok(&["grant", "alice", "Many", "--level", "write"]);
    let s = Server::start(&db, &[]);
    let alice = Client::new(Some(basic("alice", "apw")));
    let find = |q: &str| -> Vec<String> {
        let r = alice
            .get(&s.url(&format!("Many/?q={}&sort=label", encode(q))))
            .unwrap();
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        labels_of(&r.json())
    };
    let unreadable = (0..1500).filter(|i| i % 7 == 6).count();
    assert_eq!(find("params.n exists").len(), 1500 - unreadable);
    assert_eq!(find("not params.n exists").len(), unreadable);
    assert_eq!(find("params.n = 1234"), ["r1234"]);
    assert_eq!(find("params.half = 617"), ["r1234", "r1235"]);
    assert_eq!(find("params.n = 1238"), Vec::<String>::new(), "unreadable");
    // Across the end of the first batch; 1000 cannot be read.
    assert_eq!(
        find("params.n >= 998 and params.n <= 1001"),
        ["r0998", "r0999", "r1001"]
    );
    assert_eq!(find("deps.numpy = 2.0"), ["r0003"]);
    assert_eq!(find("deps.numpy = 1.0").len(), 1499);
    // Each record has its two keys and one dependency, no more.
    let rows = db.query("SELECT count(*) FROM record_params");
    assert_eq!(rows[0][0], ((1500 - unreadable) * 2).to_string());
    let rows = db.query("SELECT count(*) FROM record_deps");
    assert_eq!(rows[0][0], "1500");
    // A new record over HTTP is indexed before the next search.
    let mut r = alice.get(&s.url("Many/r0005/")).unwrap().json();
    assert_eq!(r["parameters"]["content"], "n = 5\nhalf = 2");
    r.as_object_mut().unwrap().remove("project_id");
    r["label"] = json!("fresh");
    r["parameters"] = json!({"content": "n = 9999", "type": "SimpleParameterSet"});
    assert_eq!(
        alice.put_json(&s.url("Many/fresh/"), &r).unwrap().status,
        201
    );
    assert_eq!(find("params.n = 9999"), ["fresh"]);
    // A record whose parameters a later load changes is read again, alone.
    r["label"] = json!("r0005");
    r["parameters"] = json!({"content": "n = 5555", "type": "SimpleParameterSet"});
    let doc = json!({"sumatra_server_export": 1, "projects": [
        {"id": "Many", "name": "", "description": "", "records": [r]}]});
    let again = db.dir.path().join("again.json");
    std::fs::write(&again, doc.to_string()).unwrap();
    db.ok(&["loaddata", again.to_str().unwrap()]);
    assert_eq!(find("params.n = 5555"), ["r0005"]);
    assert_eq!(find("params.n = 5"), Vec::<String>::new());
    assert_eq!(find("params.half = 2"), ["r0004"]);
    assert_eq!(find("params.n = 4"), ["r0004"]);
}

/// A page of whole records (table JSON or CSV with `limit`, the HTML page)
/// is ordered by its sort keys alone and only then read whole: it keeps
/// the order of the list of labels, for every kind of sort key.
#[test]
fn pages_of_whole_records_keep_the_order_of_the_whole_list() {
    let e = migrated();
    for sort in [
        "-params.n",
        "params.model.layers",
        "tag",
        "-duration",
        "label",
        "executable,-label",
        "-deps.numpy,params.n",
        "-timestamp",
    ] {
        let whole = e.labels("label exists", &format!("&sort={sort}"));
        assert_eq!(whole.len(), 6, "{sort}");
        for (limit, offset) in [(2, 0), (3, 2), (6, 0), (4, 5)] {
            let r = e.get(&format!(
                "?q=label%20exists&format=table%2Bjson&columns=label&sort={sort}&limit={limit}&offset={offset}"
            ));
            assert_eq!(r.status, 200, "{sort}: {}", r.body);
            let rows: Vec<String> = r.json()["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row[0].as_str().unwrap().to_string())
                .collect();
            let end = (offset + limit).min(whole.len());
            assert_eq!(
                rows,
                whole[offset..end],
                "{sort} limit {limit} offset {offset}"
            );
        }
        let page = e
            .alice
            .send(
                "GET",
                &e.s.url(&format!("Params/?q=label%20exists&sort={sort}")),
                &[("Accept", "text/html")],
                None,
            )
            .unwrap();
        assert_eq!(page.status, 200);
        let doc = scraper::Html::parse_document(&page.body);
        let sel = scraper::Selector::parse("table.records td.label a").unwrap();
        let shown: Vec<String> = doc.select(&sel).map(|a| a.text().collect()).collect();
        assert_eq!(shown, whole, "{sort}: the HTML page");
    }
}

/// A database of schema version 2 (the release before this one: its
/// waiting records indexed by project only) is migrated by `init` to 3, and
/// records written but not yet indexed when it stopped are indexed by the
/// migration and found.
#[test]
fn schema_v2_database_is_migrated_and_its_waiting_records_indexed() {
    let db = TestDb::new();
    let file = many_records_file(db.dir.path(), 30);
    db.ok(&["loaddata", file.to_str().unwrap()]);
    // As release 2 left it: records 0-9 written since the last search.
    db.query("DELETE FROM record_params WHERE record_id IN (SELECT id FROM records WHERE label < 'r0010')");
    db.query("UPDATE records SET params_state = 0 WHERE label < 'r0010'");
    db.query("DROP INDEX records_to_index");
    db.query("CREATE INDEX records_to_index ON records(project_id) WHERE params_state = 0");
    // Index entries without their project (schema 4 added it), and no
    // files indexed (schema 5).
    for sql in [
        "DROP TABLE record_files",
        "DROP TABLE trash",
        "DROP TABLE trashed_projects",
        "DROP TABLE history",
        "DROP TABLE tokens",
        "DROP INDEX record_params_by_number",
        "DROP INDEX record_params_by_text",
        "DROP INDEX record_deps_by_name",
        "ALTER TABLE record_params DROP COLUMN project_id",
        "ALTER TABLE record_deps DROP COLUMN project_id",
        "CREATE INDEX record_params_by_number ON record_params(key, num)",
        "CREATE INDEX record_params_by_text ON record_params(key, text)",
        "CREATE INDEX record_deps_by_name ON record_deps(name, version)",
    ] {
        db.query(sql);
    }
    if db.is_pg() {
        db.query("UPDATE sumatra_schema SET version = 2");
    } else {
        db.query("PRAGMA user_version = 2");
    }
    let out = db.run(&["init", "--yes"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("migrated from schema version 2 (schema version 8)"),
        "{said}"
    );
    assert_eq!(
        db.query("SELECT count(*) FROM records WHERE params_state = 0"),
        [["0"]]
    );
    let readable = (0..10).filter(|i| i % 7 != 6).count();
    assert_eq!(
        db.query(
            "SELECT count(*) FROM record_params p JOIN records r ON r.id = p.record_id WHERE r.label < 'r0010'"
        ),
        [[(readable * 2).to_string()]]
    );
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "Many", "--level", "read"]);
    let s = Server::start(&db, &[]);
    let alice = Client::new(Some(basic("alice", "apw")));
    let r = alice
        .get(&s.url(&format!("Many/?q={}&sort=label", encode("params.n < 3"))))
        .unwrap();
    assert_eq!(labels_of(&r.json()), ["r0000", "r0001", "r0002"]);
}
