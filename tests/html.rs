//! The HTML pages (issue 5), fetched over a real socket with a browser's
//! Accept header, parsed with scraper and checked against the record data:
//! project list, project page (tags, paging, search, "show all"), record
//! page, permissions page, comparison, login, escaping.

use crate::util::*;
use scraper::{ElementRef, Html, Selector};
use serde_json::{json, Value};

const BROWSER: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
const CLIENT_RECORD: &str = "application/vnd.sumatra.record-v4+json, application/json";
const CLIENT_PROJECT: &str = "application/vnd.sumatra.project-v4+json, application/json";
const CLIENT_LIST: &str = "application/vnd.sumatra.project-list-v4+json, application/json";

struct Env {
    db: TestDb,
    s: Server,
    auth: String,
}

/// Fixtures loaded; testuser has write access to TestProject.
fn env() -> Env {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    let s = Server::start(&db, &[]);
    Env {
        db,
        s,
        auth: basic("testuser", "abc123"),
    }
}

impl Env {
    /// A page as testuser, asserted to be a 200 HTML page.
    fn page(&self, path: &str) -> Html {
        let r = self.get(path, BROWSER, true);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_eq!(
            r.header("Content-Type"),
            Some("text/html; charset=utf-8"),
            "GET {path}"
        );
        Html::parse_document(&r.body)
    }
    fn get(&self, path: &str, accept: &str, auth: bool) -> Resp {
        let mut headers = vec![("Accept", accept)];
        if auth {
            headers.push(("Authorization", self.auth.as_str()));
        }
        request("GET", &self.s.url(path), &headers, None)
    }
    fn json(&self, path: &str) -> Value {
        let r = self.get(path, "application/json", true);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }
    fn put(&self, path: &str, body: &Value) -> Resp {
        request(
            "PUT",
            &self.s.url(path),
            &[("Authorization", self.auth.as_str())],
            Some(body.to_string().as_bytes()),
        )
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("selector {s:?}: {e:?}"))
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect::<String>().trim().to_string()
}

/// Trimmed texts of every element matching `s`.
fn texts(doc: &Html, s: &str) -> Vec<String> {
    doc.select(&sel(s)).map(text).collect()
}

fn attrs(doc: &Html, s: &str, attr: &str) -> Vec<String> {
    doc.select(&sel(s))
        .filter_map(|e| e.value().attr(attr).map(String::from))
        .collect()
}

/// The `dt` → `dd` pairs of the definition lists under `scope`.
fn definitions(doc: &Html, scope: &str) -> Vec<(String, String)> {
    doc.select(&sel(&format!("{scope} dl dt")))
        .map(|dt| {
            let dd = dt
                .next_siblings()
                .find_map(ElementRef::wrap)
                .expect("a dd after each dt");
            (text(dt), text(dd))
        })
        .collect()
}

fn definition(doc: &Html, scope: &str, name: &str) -> String {
    definitions(doc, scope)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name:?} in {scope}"))
        .1
}

/// The record labels of a project page's table, in order.
fn table_labels(doc: &Html) -> Vec<String> {
    texts(doc, "table.records tbody td.label a")
}

fn record(label: &str, i: usize) -> Value {
    json!({
        "label": label, "timestamp": format!("2024-01-01 {:02}:{:02}:{:02}", i / 3600, i / 60 % 60, i % 60),
        "reason": format!("reason {i}"), "duration": i as f64 / 10.0,
        "executable": {"path": "/usr/bin/python", "version": "3.11.7", "name": "Python", "options": ""},
        "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
        "main_file": "main.py", "version": format!("abc{i}"), "diff": "",
        "parameters": {"content": format!("n = {i}\nseed = 7"), "type": "SimpleParameterSet"},
        "input_data": [], "script_arguments": "<parameters>",
        "launch_mode": {"type": "SerialLaunchMode", "parameters": {}},
        "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
        "input_datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/"}},
        "outcome": if i % 100 == 7 { "needle found" } else { "" }, "stdout_stderr": "ok", "output_data": [],
        "tags": if i.is_multiple_of(10) { vec!["tenth"] } else { vec![] }, "user": "", "dependencies": [], "platforms": [], "repeats": null,
    })
}

#[test]
fn project_list_shows_projects_and_who_you_are() {
    let e = env();
    let anon = Html::parse_document(&e.get("", BROWSER, false).body);
    let names = texts(&anon, "table.list tbody td:first-child a");
    assert_eq!(
        names,
        ["Test Project #2"],
        "anonymous sees the public project"
    );
    assert!(attrs(&anon, "header a", "href").contains(&"/records/?login".to_string()));
    assert!(texts(&anon, "header .who").concat().contains("log in"));

    // `?login` challenges until credentials come; then says who you are.
    let r = e.get("?login", BROWSER, false);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"Sumatra Server API\"")
    );
    let doc = e.page("?login");
    assert_eq!(texts(&doc, "header .who strong"), ["testuser"]);

    let doc = e.page("");
    let list = e.json("");
    let rows: Vec<ElementRef<'_>> = doc.select(&sel("table.list tbody tr")).collect();
    assert_eq!(rows.len(), list.as_array().unwrap().len());
    let first = rows
        .iter()
        .find(|r| text(**r).contains("Test Project #1"))
        .expect("TestProject listed");
    let cells: Vec<String> = first.select(&sel("td")).map(text).collect();
    assert!(cells[0].contains("TestProject"));
    assert_eq!(cells[1], "Private project");
    assert_eq!(cells[2], "4", "record count");
    let iso = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "TestProject")
        .unwrap()["last_updated"]
        .as_str()
        .unwrap()
        .replace('T', " ");
    assert_eq!(cells[3], iso[..19], "last updated, UTC");
    let link = first.select(&sel("a")).next().unwrap().value().attr("href");
    assert_eq!(link, Some("/records/TestProject/"));
}

#[test]
fn project_page_lists_records_with_tag_links() {
    let e = env();
    let doc = e.page("TestProject/");
    let data = e.json("TestProject/");
    assert_eq!(texts(&doc, "h1"), ["Test Project #1"]);
    assert_eq!(texts(&doc, "p.description"), ["Private project"]);
    let expected = labels_of(&data);
    assert_eq!(table_labels(&doc), expected, "newest first, as in the JSON");
    // The code columns are shown on request (SPEC 10.4: the table fits the
    // window without them).
    assert!(doc.select(&sel("td.wide")).next().is_none());
    let doc = e.page("TestProject/?code=1");
    // Each row against its record.
    for row in doc.select(&sel("table.records tbody tr")) {
        // The usual columns (the parameter columns stand beside them).
        let cells: Vec<String> = row.select(&sel("td:not(.param)")).map(text).collect();
        let label = &cells[1];
        let r = e.json(&format!("TestProject/{label}/"));
        assert_eq!(cells[2], r["timestamp"].as_str().unwrap());
        assert_eq!(cells[3], "", "no status tag in the fixtures");
        assert_eq!(cells[4], r["reason"].as_str().unwrap());
        assert_eq!(cells[5], r["outcome"].as_str().unwrap());
        assert!(
            cells[6].ends_with(" s"),
            "duration with a unit: {:?}",
            cells[6]
        );
        assert_eq!(cells[7], "Python 2.7.2");
        assert!(r["version"].as_str().unwrap().starts_with(&cells[8]));
        assert_eq!(cells[9], r["main_file"].as_str().unwrap());
        assert_eq!(cells[10], r["script_arguments"].as_str().unwrap());
        let tags: Vec<String> = row.select(&sel("td.tagcell a.tag")).map(text).collect();
        assert_eq!(json!(tags), r["tags"]);
        let pick = row.select(&sel("input[type=checkbox]")).next().unwrap();
        assert_eq!(pick.value().attr("name"), Some("compare"));
        assert_eq!(pick.value().attr("value"), Some(label.as_str()));
    }
    // Tag filter links, and "show all" once filtered.
    let tag_links = attrs(&doc, "p.tags a.tag", "href");
    assert_eq!(tag_links, ["/records/TestProject/tagged/foobar/"]);
    assert!(texts(&doc, "p.filter").is_empty());
    let doc = e.page("TestProject/tagged/foobar/");
    assert_eq!(table_labels(&doc), ["haggling"]);
    assert_eq!(attrs(&doc, "p.filter a", "href"), ["/records/TestProject/"]);
    assert_eq!(texts(&doc, "p.filter a"), ["Show all"]);
    let doc = e.page("TestProject/?tags=foobar");
    assert_eq!(table_labels(&doc), ["haggling"]);
    // Who has access, and the permissions link.
    assert!(texts(&doc, "p.meta .badge").contains(&"testuser (write)".to_string()));
}

#[test]
fn record_page_shows_every_part_of_the_record() {
    let e = env();
    let r = e.json("TestProject/haggling/");
    let doc = e.page("TestProject/haggling/");
    assert_eq!(texts(&doc, "h1"), ["haggling"]);
    let s = |name: &str| definition(&doc, "#summary", name);
    assert_eq!(s("Label"), "haggling");
    assert_eq!(s("Reason"), r["reason"].as_str().unwrap());
    assert_eq!(s("Outcome"), r["outcome"].as_str().unwrap());
    assert_eq!(
        s("Date/time"),
        format!("{} UTC", r["timestamp"].as_str().unwrap())
    );
    assert!(s("Duration").ends_with(" s"));
    assert_eq!(s("Tags"), "foobar");
    assert!(s("Launch mode").starts_with(r["launch_mode"]["type"].as_str().unwrap()));
    let c = |name: &str| definition(&doc, "#code", name);
    assert!(c("Executable").starts_with("Python 2.7.2"));
    assert!(c("Executable").contains(r["executable"]["path"].as_str().unwrap()));
    assert!(c("Repository").starts_with(r["repository"]["url"].as_str().unwrap()));
    assert!(c("Version").starts_with(r["version"].as_str().unwrap()));
    assert_eq!(c("Main file"), r["main_file"].as_str().unwrap());
    assert_eq!(c("Arguments"), r["script_arguments"].as_str().unwrap());
    // Dependencies: every name and version.
    let dep_rows: Vec<Vec<String>> = doc
        .select(&sel("#dependencies tbody tr"))
        .map(|tr| tr.select(&sel("td")).map(text).collect())
        .collect();
    let deps = r["dependencies"].as_array().unwrap();
    assert_eq!(dep_rows.len(), deps.len());
    for (row, d) in dep_rows.iter().zip(deps) {
        assert_eq!(row[0], d["name"].as_str().unwrap());
        assert!(row[1].starts_with(d["version"].as_str().unwrap()));
        assert_eq!(row[2], d["module"].as_str().unwrap());
        assert_eq!(row[3], d["path"].as_str().unwrap());
    }
    // Inputs: parameters verbatim; outputs: each file.
    assert_eq!(
        doc.select(&sel("#inputs pre"))
            .next()
            .map(|p| p.text().collect::<String>()),
        Some(r["parameters"]["content"].as_str().unwrap().to_string())
    );
    let outputs = texts(&doc, "#outputs tbody td.path");
    let expected: Vec<&str> = r["output_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["path"].as_str().unwrap())
        .collect();
    assert_eq!(outputs, expected);
    let digests = attrs(&doc, "#outputs tbody code", "title");
    let expected: Vec<&str> = r["output_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, expected);
    assert!(texts(&doc, "#outputs p.sub")
        .concat()
        .contains(r["datastore"]["parameters"]["root"].as_str().unwrap()));
    // Standard output and platform.
    let out = doc
        .select(&sel("#stdout pre"))
        .next()
        .map(|p| p.text().collect::<String>());
    let stdout = r["stdout_stderr"].as_str().unwrap();
    if stdout.is_empty() {
        assert!(out.is_none());
    } else {
        assert_eq!(out.as_deref(), Some(stdout));
    }
    let p = &r["platforms"][0];
    let machine = definition(&doc, "#platform", "Machine");
    assert!(
        machine.contains(p["network_name"].as_str().unwrap())
            && machine.contains(p["ip_addr"].as_str().unwrap())
    );
    let system = definition(&doc, "#platform", "System");
    assert!(
        system.contains(p["system_name"].as_str().unwrap())
            && system.contains(p["release"].as_str().unwrap())
    );
    assert!(definition(&doc, "#platform", "Architecture").contains(p["machine"].as_str().unwrap()));
    // `last/` is the newest record's page; the compare-with form names this record.
    let last = e.page("TestProject/last/");
    assert_eq!(texts(&last, "h1"), ["haggling_repeat"]);
    assert_eq!(
        attrs(&doc, "form.compare-with input[type=hidden]", "value"),
        ["haggling"]
    );
}

#[test]
fn values_are_escaped_everywhere() {
    let e = env();
    let evil = "<script>alert('x')</script>";
    let mut r = record("evil", 1);
    r["reason"] = json!(evil);
    r["outcome"] = json!("<b onmouseover=\"alert(1)\">bold</b> & \"quoted\"");
    r["tags"] = json!(["<i>t</i>", "a\"b'c"]);
    r["parameters"]["content"] = json!("x = <img src=y onerror=alert(1)>");
    r["stdout_stderr"] = json!("</pre><script>alert(2)</script>");
    r["main_file"] = json!("<main>.py");
    r["dependencies"] = json!([{"name": "<svg onload=alert(3)>", "path": "/p", "version": "1", "module": "python", "diff": "", "source": null}]);
    assert_eq!(e.put("TestProject/evil/", &r).status, 201);
    e.db.ok(&["grant", "testuser", "TestProject", "--level", "admin"]);
    let other_name = json!({"name": "<script>alert('name')</script>", "description": "<em>d</em>"});
    assert_eq!(e.put("TestProject/", &other_name).status, 200);

    let pages = [
        "",
        "TestProject/",
        "TestProject/evil/",
        "TestProject/tagged/%3Ci%3Et%3C%2Fi%3E/",
        "TestProject/?search=%3Cscript%3E",
        "TestProject/?compare=evil,haggling",
        "TestProject/permissions/",
    ];
    for path in pages {
        let r = e.get(path, BROWSER, true);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let body = r.body;
        let doc = Html::parse_document(&body);
        for tag in ["script", "img", "svg", "b", "i"] {
            assert_eq!(
                doc.select(&sel(tag)).count(),
                0,
                "{path}: a <{tag}> element got through"
            );
        }
        assert!(
            doc.select(&sel("[onmouseover], [onerror], [onload]"))
                .next()
                .is_none(),
            "{path}"
        );
        assert!(!body.contains("<script"), "{path}");
    }
    // And the text reads as given.
    let doc = e.page("TestProject/evil/");
    assert_eq!(definition(&doc, "#summary", "Reason"), evil);
    assert_eq!(
        definition(&doc, "#summary", "Outcome"),
        r["outcome"].as_str().unwrap()
    );
    assert_eq!(texts(&doc, "#summary a.tag"), ["<i>t</i>", "a\"b'c"]);
    assert_eq!(definition(&doc, "#code", "Main file"), "<main>.py");
    assert_eq!(
        texts(&doc, "#dependencies tbody td:first-child"),
        ["<svg onload=alert(3)>"]
    );
    assert_eq!(
        texts(&doc, "#stdout pre"),
        ["</pre><script>alert(2)</script>"]
    );
    assert_eq!(
        texts(&doc, "nav.crumbs a")[1],
        "<script>alert('name')</script>"
    );
    let doc = e.page("TestProject/");
    let row = doc
        .select(&sel("table.records tbody tr"))
        .find(|tr| text(*tr).contains("evil"))
        .unwrap();
    let cells: Vec<String> = row.select(&sel("td")).map(text).collect();
    assert_eq!(cells[4], evil);
    assert_eq!(texts(&doc, "h1"), ["<script>alert('name')</script>"]);
    assert_eq!(texts(&doc, "p.description"), ["<em>d</em>"]);
    // Tag links are percent-encoded URLs that lead to the tag.
    let href = attrs(&doc, "p.tags a.tag", "href")
        .into_iter()
        .find(|h| h.contains("%3Ci%3E"))
        .unwrap();
    assert_eq!(href, "/records/TestProject/tagged/%3Ci%3Et%3C%2Fi%3E/");
    let doc = e.page("TestProject/?search=%3Cscript%3E");
    assert_eq!(table_labels(&doc), ["evil"]);
    assert_eq!(
        attrs(&doc, "form.search input[name=search]", "value"),
        ["<script>"]
    );
}

#[test]
fn a_thousand_records_are_paged_searched_and_filtered() {
    let e = env();
    let records: Vec<Value> = (0..1000)
        .map(|i| record(&format!("rec-{i:04}"), i))
        .collect();
    let doc = json!({"sumatra_server_export": 1, "projects": [
        {"id": "Big", "name": "Big project", "description": "1000 records", "records": records}]});
    let file = e.db.dir.path().join("big.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    e.db.ok(&["loaddata", file.to_str().unwrap()]);
    e.db.ok(&["grant", "testuser", "Big", "--level", "read"]);

    let page1 = e.page("Big/");
    let labels = table_labels(&page1);
    assert_eq!(labels.len(), 50);
    assert_eq!(labels[0], "rec-0999", "newest first");
    assert_eq!(labels[49], "rec-0950");
    let pager = texts(&page1, "nav.pager .where").concat();
    assert!(
        pager.contains("page 1 of 20") && pager.contains("1–50 of 1000"),
        "{pager}"
    );
    let next = attrs(&page1, "nav.pager a[rel=next]", "href");
    assert_eq!(next, ["/records/Big/?page=2"]);
    assert!(attrs(&page1, "nav.pager a[rel=prev]", "href").is_empty());

    let page2 = e.page("Big/?page=2");
    assert_eq!(table_labels(&page2)[0], "rec-0949");
    assert_eq!(
        attrs(&page2, "nav.pager a[rel=prev]", "href"),
        ["/records/Big/?page=1"]
    );
    let last = e.page("Big/?page=20");
    let labels = table_labels(&last);
    assert_eq!((labels.len(), labels[49].as_str()), (50, "rec-0000"));
    assert!(attrs(&last, "nav.pager a[rel=next]", "href").is_empty());
    // Pages past the end show the last one.
    assert_eq!(table_labels(&e.page("Big/?page=99")), labels);
    // Every record appears exactly once across the pages.
    let mut seen = Vec::new();
    for n in 1..=20 {
        seen.extend(table_labels(&e.page(&format!("Big/?page={n}"))));
    }
    let json_labels: Vec<String> = e.json("Big/")["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            u.as_str()
                .unwrap()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(seen, json_labels);

    // Filtered by tag: 100 records, paged, with "show all".
    let tagged = e.page("Big/tagged/tenth/");
    assert_eq!(table_labels(&tagged)[0], "rec-0990");
    assert!(texts(&tagged, "p.filter")
        .concat()
        .contains("Showing 100 records tagged tenth"));
    assert_eq!(attrs(&tagged, "p.filter a", "href"), ["/records/Big/"]);
    assert_eq!(
        attrs(&tagged, "nav.pager a[rel=next]", "href"),
        ["/records/Big/?tags=tenth&page=2"]
    );
    assert_eq!(
        table_labels(&e.page("Big/?tags=tenth&page=2"))[49],
        "rec-0000"
    );

    // Search: label, reason and outcome; within a tag filter too.
    assert_eq!(table_labels(&e.page("Big/?search=rec-0042")), ["rec-0042"]);
    assert_eq!(
        table_labels(&e.page("Big/?search=REASON+512")),
        ["rec-0512"]
    );
    let needles = table_labels(&e.page("Big/?search=needle"));
    assert_eq!(needles.len(), 10);
    assert_eq!(needles[0], "rec-0907");
    let doc = e.page("Big/?search=reason+1");
    assert!(texts(&doc, "p.filter")
        .concat()
        .contains("Showing 111 records matching"));
    assert_eq!(
        attrs(&doc, "nav.pager a[rel=next]", "href"),
        ["/records/Big/?search=reason%201&page=2"]
    );
    assert_eq!(
        table_labels(&e.page("Big/?search=reason%201&page=3")).len(),
        11
    );
    assert_eq!(
        table_labels(&e.page("Big/?tags=tenth&search=reason+10")),
        ["rec-0100", "rec-0010"]
    );
    assert!(
        table_labels(&e.page("Big/?search=%25")).is_empty(),
        "% matches itself"
    );
    assert_eq!(
        texts(&e.page("Big/?search=zzz"), "p.empty"),
        ["No records match."]
    );
}

#[test]
fn comparison_marks_the_differences() {
    let e = env();
    let doc = e.page("TestProject/?compare=haggling,20111013-172514");
    assert_eq!(texts(&doc, "h1"), ["Comparing two records"]);
    assert_eq!(
        attrs(&doc, "p.meta a", "href"),
        [
            "/records/TestProject/haggling/",
            "/records/TestProject/20111013-172514/"
        ]
    );
    // Section → rows of (name, A, B, marked as different).
    let section = |title: &str| -> Vec<(String, String, String, bool)> {
        let s = doc
            .select(&sel("section.compare-section"))
            .find(|s| {
                s.select(&sel("h2"))
                    .next()
                    .map(text)
                    .is_some_and(|t| t.starts_with(title))
            })
            .unwrap_or_else(|| panic!("no section {title}"));
        s.select(&sel("tbody tr"))
            .map(|tr| {
                let name = text(tr.select(&sel("th")).next().unwrap());
                let a = text(tr.select(&sel("td.a")).next().unwrap());
                let b = text(tr.select(&sel("td.b")).next().unwrap());
                let marked = tr.value().classes().any(|c| c == "differs");
                assert_eq!(
                    marked,
                    text(tr.select(&sel("td.mark")).next().unwrap()) == "≠"
                );
                (name, a, b, marked)
            })
            .collect()
    };
    let params = section("Parameters");
    let row = |rows: &[(String, String, String, bool)], n: &str| {
        rows.iter()
            .find(|r| r.0 == n)
            .cloned()
            .unwrap_or_else(|| panic!("no row {n}"))
    };
    assert_eq!(
        row(&params, "n"),
        ("n".into(), "50".into(), "100".into(), true)
    );
    assert_eq!(
        row(&params, "tau_m"),
        ("tau_m".into(), "absent".into(), "10".into(), true)
    );
    assert!(!row(&params, "Type").3);
    let summary = section("Summary");
    assert!(row(&summary, "Reason").3);
    assert_eq!(
        row(&summary, "Tags"),
        ("Tags".into(), "foobar".into(), "".into(), true)
    );
    assert!(!row(&section("Code"), "Version").3);
    // Both records have the same six dependencies: six rows, none marked.
    let mut deps = section("Dependencies");
    deps.sort();
    let same = |name: &str, version: &str| (name.into(), version.into(), version.into(), false);
    assert_eq!(
        deps,
        [
            same("Carbon", "unknown"),
            same("Finder", "unknown"),
            same("StdSuites", "unknown"),
            same("_builtinSuites", "unknown"),
            same("numpy", "1.6.1"),
            same("scipy", "0.10.0b2"),
        ]
    );
    assert!(!row(&section("Platform"), "System").3);
    let outputs = section("Output data");
    assert_eq!(row(&outputs, "example2.dat").1, "43a47cb379df");
    assert_eq!(row(&outputs, "example2.dat").2, "absent");
    assert!(row(&outputs, "example2.dat (2)").3);
    let total: usize = [
        "Summary",
        "Code",
        "Parameters",
        "Dependencies",
        "Platform",
        "Input data",
        "Output data",
    ]
    .iter()
    .map(|t| section(t).iter().filter(|r| r.3).count())
    .sum();
    assert_eq!(texts(&doc, ".diffcount"), [format!("{total} differences")]);

    // Only the differences; the form's repeated parameter works the same.
    let only = e.page("TestProject/?compare=haggling&compare=20111013-172514&only=differences");
    let rows = only.select(&sel("table.compare tbody tr")).count();
    assert_eq!(rows, total);
    assert_eq!(only.select(&sel("table.compare tbody tr.same")).count(), 0);

    // Code differences: version and diff.
    let mut r = e.json("TestProject/haggling/");
    r.as_object_mut().unwrap().remove("project_id");
    r["label"] = json!("modified");
    r["version"] = json!("ffff");
    r["diff"] = json!("--- a\n+++ b\n");
    r["dependencies"][0]["version"] = json!("9.9");
    r["platforms"][0]["release"] = json!("12.0");
    r["output_data"] = json!([]);
    r["input_data"] =
        json!([{"path": "in.dat", "digest": "abc", "metadata": {}, "creation": null}]);
    assert_eq!(e.put("TestProject/modified/", &r).status, 201);
    let doc = e.page("TestProject/?compare=haggling,modified&only=differences");
    let names = texts(&doc, "table.compare tbody tr.differs th");
    for n in [
        "Version",
        "Modified",
        "Diff",
        "Carbon",
        "Release",
        "in.dat",
        "example2.dat",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not marked: {names:?}");
    }

    // Not two records: a notice on the project page; unknown label: 404.
    let doc = e.page("TestProject/?compare=haggling");
    assert!(texts(&doc, "p.notice")
        .concat()
        .contains("tick two to 10 different ones (you ticked 1)"));
    assert_eq!(table_labels(&doc).len(), 5);
    let r = e.get("TestProject/?compare=haggling,nope", BROWSER, true);
    assert_eq!(r.status, 404);
    assert!(Html::parse_document(&r.body)
        .select(&sel("h1"))
        .map(text)
        .any(|t| t == "Error 404"));
    assert_eq!(
        e.get("TestProject/?compare=haggling,a%2Fb", BROWSER, true)
            .status,
        400
    );
}

#[test]
fn permissions_page_has_a_grant_form_for_admins() {
    let e = env();
    e.db.useradd("alice", "apw");
    let doc = e.page("TestProject/permissions/");
    let rows: Vec<String> = doc.select(&sel("table.list tbody tr")).map(text).collect();
    let data = e.json("TestProject/permissions/");
    assert_eq!(rows.len(), data["permissions"].as_array().unwrap().len());
    assert!(rows[0].contains("testuser") && rows[0].contains("write"));
    assert!(
        doc.select(&sel("form.grant")).next().is_none(),
        "no form for a writer"
    );

    e.db.ok(&["grant", "testuser", "TestProject", "--level", "admin"]);
    let doc = e.page("TestProject/permissions/");
    let form = doc.select(&sel("form.grant")).next().expect("grant form");
    assert_eq!(form.value().attr("method"), Some("post"));
    assert_eq!(
        form.value().attr("action"),
        Some("/records/TestProject/permissions/")
    );
    // A typed user name: the form lists no accounts (SPEC 2.7).
    let input = form
        .select(&sel("input[name=user]"))
        .next()
        .expect("a user name field");
    assert_eq!(input.value().attr("required"), Some(""));
    assert!(form.select(&sel("select[name=user]")).next().is_none());
    let html = doc.html();
    assert!(
        !html.contains("alice"),
        "the page names an account without access: {html}"
    );
    let levels: Vec<String> = attrs(&doc, "select[name=level] option", "value");
    assert_eq!(levels, ["read", "write", "admin", "none"]);
    // Posting the form as a browser does.
    let r = request(
        "POST",
        &e.s.url("TestProject/permissions/"),
        &[
            ("Authorization", e.auth.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(b"user=alice&level=read"),
    );
    assert_eq!(r.status, 302);
    let rows = texts(&e.page("TestProject/permissions/"), "table.list tbody tr");
    assert!(
        rows.iter()
            .any(|r| r.contains("alice") && r.contains("read")),
        "{rows:?}"
    );
}

#[test]
fn browsers_get_html_and_the_client_gets_json_on_every_url() {
    let e = env();
    let urls = [
        (
            "",
            CLIENT_LIST,
            "application/vnd.sumatra.project-list-v4+json",
        ),
        (
            "TestProject/",
            CLIENT_PROJECT,
            "application/vnd.sumatra.project-v4+json",
        ),
        (
            "TestProject/tagged/foobar/",
            CLIENT_PROJECT,
            "application/vnd.sumatra.project-v4+json",
        ),
        (
            "TestProject/?compare=haggling,20111013-172514",
            CLIENT_PROJECT,
            "application/vnd.sumatra.project-v4+json",
        ),
        (
            "TestProject/?search=hag",
            CLIENT_PROJECT,
            "application/vnd.sumatra.project-v4+json",
        ),
        (
            "TestProject/haggling/",
            CLIENT_RECORD,
            "application/vnd.sumatra.record-v4+json",
        ),
        (
            "TestProject/last/",
            CLIENT_RECORD,
            "application/vnd.sumatra.record-v4+json",
        ),
        (
            "TestProject/permissions/",
            "application/json",
            "application/json",
        ),
    ];
    for (path, client, kind) in urls {
        let html = e.get(path, BROWSER, true);
        assert_eq!(html.status, 200, "{path}");
        assert_eq!(
            html.header("Content-Type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        let doc = Html::parse_document(&html.body);
        assert_eq!(
            attrs(&doc, "link[rel=stylesheet]", "href"),
            ["/records/.static/style.css"]
        );
        assert_eq!(
            doc.select(&sel("script")).count(),
            0,
            "{path}: no JavaScript"
        );
        let json = e.get(path, client, true);
        assert_eq!(json.status, 200, "{path}");
        assert_eq!(
            json.header("Content-Type"),
            Some(format!("{kind}; charset=utf-8").as_str()),
            "{path}"
        );
        json.json();
    }
    let css = e.get(".static/style.css", BROWSER, false);
    assert_eq!(css.status, 200);
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert!(
        css.body.contains("@media"),
        "the stylesheet adapts to phones"
    );
    // A private project asks a browser to log in.
    let r = e.get("TestProject/", BROWSER, false);
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_some());
}
