//! `loaddata` and `export` (SPEC 5), through the real binary.

use crate::util::TestDb;
use serde_json::{json, Value};
use std::collections::HashMap;

const HAGGLING: &str = include_str!("../fixtures/haggling.json");
const PERMISSIONS: &str = include_str!("../fixtures/permissions.json");

fn objects(text: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(text).expect("fixture is a JSON list")
}

/// Writes `content` into the test's directory; returns the path.
fn write_file(db: &TestDb, name: &str, content: &str) -> String {
    let path = db.dir.path().join(name);
    std::fs::write(&path, content).expect("write test file");
    path.to_string_lossy().into_owned()
}

fn dump(objects: &[Value]) -> String {
    serde_json::to_string_pretty(objects).unwrap()
}

/// Everything the database holds, as the export document.
/// The whole store as `export --with-users` writes it, without the history
/// (which says how each store was made, and so differs between two made
/// differently).
fn everything(db: &TestDb) -> String {
    let text = db.ok(&["export", "--with-users"]);
    let at = text
        .rfind(",\n\"history\": [")
        .expect("the history comes last");
    format!("{}}}\n", &text[..at])
}

fn row_counts(db: &TestDb) -> Vec<Vec<String>> {
    db.query(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM projects),
                (SELECT count(*) FROM permissions), (SELECT count(*) FROM records),
                (SELECT count(*) FROM record_tags)",
    )
}

/// The exported records of every project, by label.
fn exported_records(db: &TestDb) -> HashMap<String, Value> {
    let doc: Value = serde_json::from_str(&everything(db)).expect("export is JSON");
    let mut out = HashMap::new();
    for p in doc["projects"].as_array().unwrap() {
        for r in p["records"].as_array().unwrap() {
            assert_eq!(r["project_id"], p["id"]);
            out.insert(r["label"].as_str().unwrap().to_string(), r.clone());
        }
    }
    out
}

/// The fixture's objects by (model, pk).
fn index(objects: &[Value]) -> HashMap<(String, String), &Value> {
    objects
        .iter()
        .map(|o| {
            (
                (
                    o["model"].as_str().unwrap().to_string(),
                    o["pk"].to_string(),
                ),
                &o["fields"],
            )
        })
        .collect()
}

fn related<'a>(ix: &HashMap<(String, String), &'a Value>, model: &str, pk: &Value) -> &'a Value {
    ix[&(format!("django_store.{model}"), pk.to_string())]
}

fn literal(s: &Value) -> Value {
    // The fixture's literals, by hand: what a correct reading must give.
    match s.as_str().unwrap() {
        "{}" => json!({}),
        "{'root': u'/Users/andrew/tmp/SumatraExample/Data'}" => {
            json!({"root": "/Users/andrew/tmp/SumatraExample/Data"})
        }
        "{'root': u'/'}" => json!({"root": "/"}),
        "{'mimetype': None, 'size': 2500, 'encoding': None}" => {
            json!({"mimetype": null, "size": 2500, "encoding": null})
        }
        "{'mimetype': None, 'size': 1276, 'encoding': None}" => {
            json!({"mimetype": null, "size": 1276, "encoding": null})
        }
        other => panic!("literal not in the fixture: {other}"),
    }
}

#[test]
fn fixtures_load_with_every_value() {
    let db = TestDb::new();
    let out = db.ok(&["loaddata", "haggling", "permissions"]);
    assert!(
        out.contains("total        created 11, updated 0, unchanged 0"),
        "{out}"
    );
    let all = objects(HAGGLING);
    let ix = index(&all);
    let records = exported_records(&db);
    let fixture_records: Vec<&Value> = all
        .iter()
        .filter(|o| o["model"] == "django_store.record")
        .collect();
    assert_eq!(records.len(), fixture_records.len());
    for o in fixture_records {
        let f = &o["fields"];
        let r = &records[f["label"].as_str().unwrap()];
        for key in [
            "label",
            "timestamp",
            "reason",
            "duration",
            "main_file",
            "version",
            "script_arguments",
            "outcome",
            "stdout_stderr",
            "diff",
            "user",
        ] {
            assert_eq!(r[key], f[key], "{} {key}", f["label"]);
        }
        assert_eq!(r["project_id"], f["project"]);
        assert_eq!(r["repeats"], Value::Null);
        let exe = related(&ix, "executable", &f["executable"]);
        assert_eq!(r["executable"], *exe);
        let repo = related(&ix, "repository", &f["repository"]);
        assert_eq!(
            r["repository"],
            json!({"url": repo["url"], "type": repo["type"], "upstream": null})
        );
        assert_eq!(
            r["parameters"],
            *related(&ix, "parameterset", &f["parameters"])
        );
        let lm = related(&ix, "launchmode", &f["launch_mode"]);
        assert_eq!(
            r["launch_mode"],
            json!({"type": lm["type"], "parameters": literal(&lm["parameters"])})
        );
        for (key, fk) in [
            ("datastore", "datastore"),
            ("input_datastore", "input_datastore"),
        ] {
            let ds = related(&ix, "datastore", &f[fk]);
            assert_eq!(
                r[key],
                json!({"type": ds["type"], "parameters": literal(&ds["parameters"])})
            );
        }
        assert_eq!(r["input_data"], json!([]));
        let mut outputs: Vec<Value> = all
            .iter()
            .filter(|k| k["model"] == "django_store.datakey" && k["fields"]["output_from_record"] == o["pk"])
            .map(|k| {
                let k = &k["fields"];
                json!({"path": k["path"], "digest": k["digest"], "metadata": literal(&k["metadata"]), "creation": null})
            })
            .collect();
        outputs.sort_by_key(|k| k["digest"].as_str().unwrap().to_string());
        assert_eq!(r["output_data"], Value::Array(outputs), "{}", f["label"]);
        let mut deps: Vec<Value> = f["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pk| {
                let mut d = related(&ix, "dependency", pk).clone();
                d["source"] = Value::Null;
                d
            })
            .collect();
        deps.sort_by_key(|d| d["name"].as_str().unwrap().to_string());
        let got: Vec<Value> = r["dependencies"].as_array().unwrap().clone();
        assert_eq!(got.len(), deps.len());
        for (g, want) in got.iter().zip(&deps) {
            for key in ["name", "path", "version", "module", "diff", "source"] {
                assert_eq!(g[key], want[key], "{} dependency {key}", f["label"]);
            }
        }
        let platforms: Vec<Value> = f["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pk| related(&ix, "platforminformation", pk).clone())
            .collect();
        assert_eq!(r["platforms"], Value::Array(platforms));
        let want_tags = if f["label"] == "haggling" {
            json!(["foobar"])
        } else {
            json!([])
        };
        assert_eq!(r["tags"], want_tags, "{}", f["label"]);
    }
    // Projects, users and permissions.
    assert_eq!(
        db.query("SELECT id, name, description FROM projects ORDER BY id"),
        vec![
            vec![
                "TestProject".to_string(),
                "Test Project #1".into(),
                "Private project".into()
            ],
            vec![
                "TestProject2".to_string(),
                "Test Project #2".into(),
                "Public project".into()
            ],
        ]
    );
    assert_eq!(
        db.query("SELECT password, created FROM users WHERE username = 'testuser'"),
        vec![vec![
            "pbkdf2_sha256$150000$6NULAzBRXtsZ$jGaw/hF/bxsLzxBMN/IpdoQI7LWSpj7hgatoUJZ+6AE="
                .to_string(),
            "2010-07-10 13:46:59".into()
        ]]
    );
    assert_eq!(
        db.query("SELECT count(*) FROM users WHERE username = 'anonymous'"),
        vec![vec!["1".to_string()]]
    );
    assert_eq!(
        db.query(
            "SELECT p.project_id, u.username, p.level FROM permissions p JOIN users u ON u.id = p.user_id ORDER BY p.id"
        ),
        vec![
            vec!["TestProject".to_string(), "testuser".into(), "write".into()],
            vec!["TestProject2".to_string(), "anonymous".into(), "read".into()],
            vec!["TestProject2".to_string(), "testuser".into(), "write".into()],
        ]
    );
    assert_eq!(
        db.query("SELECT tag FROM record_tags t JOIN records r ON r.id = t.record_id WHERE r.label = 'haggling'"),
        vec![vec!["foobar".to_string()]]
    );
}

#[test]
fn loading_twice_changes_nothing() {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    let before = everything(&db);
    let out = db.ok(&["loaddata", "haggling", "permissions"]);
    assert!(
        out.contains("records      created 0, updated 0, unchanged 5"),
        "{out}"
    );
    assert!(
        out.contains("total        created 0, updated 0, unchanged 11"),
        "{out}"
    );
    assert_eq!(everything(&db), before);
    // A fixture from the working directory of another place works too.
    let other = TestDb::new();
    let out = other.ok(&["loaddata", "haggling"]);
    assert!(out.contains("records      created 5"), "{out}");
}

#[test]
fn export_loads_back_byte_identical() {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    db.ok(&["grant", "testuser", "TestProject", "--level", "admin"]);
    let first = everything(&db);
    let doc: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(doc["sumatra_server_export"], 1);
    assert_eq!(doc["users"].as_array().unwrap().len(), 1);
    assert_eq!(
        doc["projects"][0]["access"],
        json!([{"user": "testuser", "level": "admin"}])
    );
    let file = write_file(&db, "all.json", &first);

    let fresh = TestDb::new();
    fresh.ok(&["loaddata", &file]);
    assert_eq!(everything(&fresh), first);
    let out = fresh.ok(&["loaddata", &file]);
    assert!(
        out.contains("total        created 0, updated 0, unchanged"),
        "{out}"
    );

    // Through a file written by -o, too.
    let out_path = db.dir.path().join("out.json");
    db.ok(&["export", "--with-users", "-o", out_path.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        db.ok(&["export", "--with-users"])
    );

    // One project: a plain list of records in the API's form.
    let one = db.ok(&["export", "TestProject2"]);
    let list: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["label"], "20141013-172504");
    assert_eq!(list[0]["project_id"], "TestProject2");
    assert_eq!(
        list[0]
            .as_object()
            .unwrap()
            .keys()
            .next_back()
            .map(String::as_str),
        Some("project_id")
    );
    let file = write_file(&db, "one.json", &one);
    let fresh = TestDb::new();
    fresh.ok(&["loaddata", &file]);
    assert_eq!(fresh.ok(&["export", "TestProject2"]), one);

    // Without users: names and records, no permissions.
    let plain = db.ok(&["export"]);
    let doc: Value = serde_json::from_str(&plain).unwrap();
    assert!(doc.get("users").is_none() && doc["projects"][0].get("access").is_none());
    assert_eq!(doc["projects"][0]["name"], "Test Project #1");
    let file = write_file(&db, "plain.json", &plain);
    let fresh = TestDb::new();
    fresh.ok(&["loaddata", &file]);
    assert_eq!(fresh.ok(&["export"]), plain);
}

#[test]
fn export_edge_cases() {
    let db = TestDb::new();
    assert_eq!(
        db.ok(&["export"]),
        "{\"sumatra_server_export\": 1,\n\"projects\": []}\n"
    );
    let err = db.fails(&["export", "Nope"]);
    assert!(err.contains("Nope"), "{err}");
    db.ok(&["grant", "anonymous", "Empty"]);
    assert_eq!(db.ok(&["export", "Empty"]), "[]\n");
    let doc: Value = serde_json::from_str(&db.ok(&["export", "Empty", "--full"])).unwrap();
    assert_eq!(doc["projects"][0]["id"], "Empty");
}

/// Each bad input: one clear line naming the place, and nothing stored.
#[test]
fn bad_input_changes_nothing() {
    let db = TestDb::new();
    db.ok(&["loaddata", "permissions", "haggling"]);
    let before = everything(&db);
    let counts = row_counts(&db);

    let all = objects(HAGGLING);
    let record_at = all
        .iter()
        .position(|o| o["model"] == "django_store.record")
        .unwrap();
    let mut renamed = all.clone();
    for o in &mut renamed {
        if o["model"] == "django_store.record" {
            o["fields"]["reason"] = json!("changed, must not stick");
        }
    }
    let with = |f: &dyn Fn(&mut Vec<Value>)| {
        let mut v = renamed.clone();
        f(&mut v);
        dump(&v)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("notjson.json", "this is not JSON".into(), "not valid JSON"),
        (
            "truncated.json",
            HAGGLING[..HAGGLING.len() / 2].into(),
            "not valid JSON",
        ),
        ("shape.json", "{\"a\": 1}".into(), "neither a Django dump"),
        ("number.json", "42".into(), "neither a Django dump"),
        (
            "unknown.json",
            with(&|v| v.push(json!({"model": "blog.post", "pk": 1, "fields": {}}))),
            "--ignore-unknown",
        ),
        (
            "dangling.json",
            with(&|v| v[record_at]["fields"]["parameters"] = json!(99)),
            "field parameters: no django_store.parameterset with pk 99",
        ),
        (
            "duplicate.json",
            with(&|v| {
                let mut twin = v[record_at].clone();
                twin["pk"] = json!(1000);
                v.push(twin);
            }),
            "appears twice in project",
        ),
        (
            "literal.json",
            with(&|v| {
                let i = v
                    .iter()
                    .position(|o| o["model"] == "django_store.datastore")
                    .unwrap();
                v[i]["fields"]["parameters"] = json!("{'root': __import__('os').system('true')}");
            }),
            "(django_store.datastore pk 1): field parameters: not a Python literal",
        ),
        (
            "timestamp.json",
            with(&|v| v[record_at]["fields"]["timestamp"] = json!("yesterday")),
            "field timestamp:",
        ),
        (
            "fields.json",
            with(&|v| v[0]["fields"] = json!("x")),
            "objects[0] (django_store.project): fields: expected an object",
        ),
        (
            "records.json",
            "[{\"label\": \"x\"}]".into(),
            "records[0]: no project_id",
        ),
        (
            "doc.json",
            "{\"sumatra_server_export\": 1, \"projects\": [{\"id\": \"a b\"}]}".into(),
            "projects[0]: id:",
        ),
    ];
    for (name, content, expected) in &cases {
        let path = write_file(&db, name, content);
        // Valid data first, in the same load: all or nothing.
        let err = db.fails(&["loaddata", "haggling", &path]);
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in: {err}"
        );
        assert!(
            err.contains(name),
            "{name}: the error should name the file: {err}"
        );
        assert_eq!(everything(&db), before, "{name} changed the database");
        assert_eq!(row_counts(&db), counts, "{name}");
    }
    let err = db.fails(&["loaddata", "hagling"]);
    assert!(err.contains("no fixture named \"hagling\""), "{err}");
    let err = db.fails(&["loaddata", "haggling", "/nonexistent/x.json"]);
    assert!(err.contains("/nonexistent/x.json"), "{err}");
    assert_eq!(everything(&db), before);

    // The original's anonymous write bug does not come back via a grant file.
    let doc = json!({"sumatra_server_export": 1, "projects": [
        {"id": "TestProject2", "name": "Test Project #2", "description": "Public project",
         "access": [{"user": "ghost", "level": "write"}], "records": []}]});
    let path = write_file(&db, "ghost.json", &doc.to_string());
    let err = db.fails(&["loaddata", &path]);
    assert!(err.contains("\"ghost\""), "{err}");
    assert_eq!(everything(&db), before);
}

#[test]
fn unknown_models_can_be_skipped() {
    let db = TestDb::new();
    let mut all = objects(HAGGLING);
    all.push(json!({"model": "blog.post", "pk": 1, "fields": {"title": "x"}}));
    all.push(json!({"model": "contenttypes.contenttype", "pk": 18, "fields": {"app_label": "django_store", "model": "record"}}));
    all.push(json!({"model": "sessions.session", "pk": "abc", "fields": {"session_data": "x", "expire_date": "2020-01-01T00:00:00Z"}}));
    let path = write_file(&db, "extra.json", &dump(&all));
    let out = db.run(&["loaddata", &path, "--ignore-unknown"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 blog.post"), "{err}");
    assert!(
        err.contains("1 contenttypes.contenttype, 1 sessions.session"),
        "{err}"
    );
    assert_eq!(
        db.query("SELECT count(*) FROM records"),
        vec![vec!["5".to_string()]]
    );
    assert_eq!(exported_records(&db)["haggling"]["tags"], json!(["foobar"]));
}

#[test]
fn a_dry_run_changes_nothing() {
    let db = TestDb::new();
    let before = everything(&db);
    let counts = row_counts(&db);
    let out = db.ok(&["loaddata", "--dry-run", "haggling", "permissions"]);
    assert!(
        out.contains("would create record TestProject/haggling"),
        "{out}"
    );
    assert!(
        out.contains("would create permission anonymous read on TestProject2"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(out.contains("total        created 11"), "{out}");
    assert_eq!(everything(&db), before);
    assert_eq!(row_counts(&db), counts);

    // Against loaded data, a changed record shows as an update.
    db.ok(&["loaddata", "haggling", "permissions"]);
    let loaded = everything(&db);
    let mut all = objects(HAGGLING);
    for o in &mut all {
        if o["model"] == "django_store.record" && o["fields"]["label"] == "haggling" {
            o["fields"]["outcome"] = json!("worth 4 shekels");
        }
    }
    let path = write_file(&db, "changed.json", &dump(&all));
    let out = db.ok(&["loaddata", "--dry-run", &path]);
    assert!(
        out.contains("would update record TestProject/haggling"),
        "{out}"
    );
    assert!(
        out.contains("records      created 0, updated 1, unchanged 4"),
        "{out}"
    );
    assert_eq!(everything(&db), loaded);
}

#[test]
fn newer_django_store_tags() {
    let db = TestDb::new();
    let mut all: Vec<Value> = objects(HAGGLING)
        .into_iter()
        .filter(|o| !o["model"].as_str().unwrap().starts_with("tagging."))
        .collect();
    all.extend([
        json!({"model": "contenttypes.contenttype", "pk": 9, "fields": {"app_label": "django_store", "model": "record"}}),
        json!({"model": "django_store.tag", "pk": 1, "fields": {"name": "first"}}),
        json!({"model": "django_store.tag", "pk": 2, "fields": {"name": "with space"}}),
        json!({"model": "django_store.taggeditem", "pk": 1, "fields": {"tag": 1, "content_type": 9, "object_id": 2}}),
        json!({"model": "django_store.taggeditem", "pk": 2, "fields": {"tag": 2, "content_type": 9, "object_id": 2}}),
        json!({"model": "django_store.taggeditem", "pk": 3, "fields": {"tag": 1, "content_type": 9, "object_id": 6}}),
    ]);
    // A newer dump: timestamps with a zone, as Django writes them with USE_TZ.
    for o in &mut all {
        if o["model"] == "django_store.record" {
            let t = o["fields"]["timestamp"].as_str().unwrap().replace(' ', "T") + ".123456+02:00";
            o["fields"]["timestamp"] = json!(t);
        }
    }
    let path = write_file(&db, "newer.json", &dump(&all));
    db.ok(&["loaddata", &path, "permissions"]);
    let records = exported_records(&db);
    assert_eq!(
        records["20111013-172503"]["tags"],
        json!(["first", "with space"])
    );
    assert_eq!(
        records["20111013-172503"]["timestamp"],
        "2011-10-13 15:25:03"
    );
    assert_eq!(records["20141013-172504"]["tags"], json!(["first"]));
    assert_eq!(
        records["haggling"]["tags"],
        json!(["foobar"]),
        "the record's own tags field still counts"
    );
}

#[test]
fn objects_in_reverse_order() {
    let forward = TestDb::new();
    forward.ok(&["loaddata", "haggling", "permissions"]);
    let backward = TestDb::new();
    let mut all = objects(PERMISSIONS);
    all.extend(objects(HAGGLING));
    all.reverse();
    let path = write_file(&backward, "reversed.json", &dump(&all));
    backward.ok(&["loaddata", &path]);
    // Users carry the dump's date_joined, so the documents match byte for byte.
    assert_eq!(everything(&backward), everything(&forward));
}

/// A document of `n` copies of the fixture's record "haggling" (one a
/// line, labels `r0000`...), as `export` writes it; returns the text.
fn big_document(n: usize) -> String {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling"]);
    let list: Value = serde_json::from_str(&db.ok(&["export", "TestProject"])).unwrap();
    let template = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "haggling")
        .unwrap()
        .clone();
    let mut text = String::from(
        "{\"sumatra_server_export\": 1,\n\"projects\": [\n{\"id\": \"Big\", \"name\": \"big\", \"description\": \"\", \"records\": [\n",
    );
    for i in 0..n {
        let mut r = template.clone();
        r["label"] = json!(format!("r{i:04}"));
        r["project_id"] = json!("Big");
        r["timestamp"] = json!(format!(
            "2020-01-01 {:02}:{:02}:{:02}",
            i / 3600,
            i / 60 % 60,
            i % 60
        ));
        if i > 0 {
            text.push_str(",\n");
        }
        text.push_str(&r.to_string());
    }
    text.push_str("\n]}]}\n");
    text
}

/// Records stream in: a file cut short after thousands of good records
/// stores nothing, and the error says where the text broke.
#[test]
fn a_long_file_cut_short_stores_nothing() {
    let n = 3000;
    let text = big_document(n);
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    let before = everything(&db);
    let counts = row_counts(&db);

    // Cut in the middle of the line of record 2500 (after three of head).
    let lines: Vec<&str> = text.lines().collect();
    let at = 3 + 2500;
    assert!(lines[at].contains("\"label\":\"r2500\""));
    let start: usize = lines[..at].iter().map(|l| l.len() + 1).sum();
    let cut = &text[..start + lines[at].len() / 2];
    let path = write_file(&db, "cut.json", cut);
    let err = db.fails(&["loaddata", &path]);
    assert!(err.contains("cut.json"), "{err}");
    assert!(
        err.contains("projects[0] (project \"Big\"): records[2500]: not valid JSON"),
        "{err}"
    );
    assert_eq!(everything(&db), before);
    assert_eq!(row_counts(&db), counts);

    // A bad record late in the file: the same, named by index and label.
    let bad = text.replacen(
        "\"label\":\"r2900\",\"timestamp\":\"2020-01-01 00:48:20\"",
        "\"label\":\"r2900\",\"timestamp\":\"later\"",
        1,
    );
    assert_ne!(bad, text);
    let path = write_file(&db, "late.json", &bad);
    let err = db.fails(&["loaddata", &path]);
    assert!(
        err.contains(
            "late.json: projects[0] (project \"Big\"): records[2900] (label \"r2900\"): timestamp:"
        ),
        "{err}"
    );
    assert_eq!(row_counts(&db), counts);

    // The whole file loads, then changes nothing.
    let path = write_file(&db, "big.json", &text);
    let out = db.ok(&["loaddata", &path]);
    assert!(
        out.contains(&format!("records      created {n}, updated 0, unchanged 0")),
        "{out}"
    );
    assert!(out.contains("projects     created 1,"), "{out}");
    let exported = db.ok(&["export", "Big", "--full"]);
    let out = db.ok(&["loaddata", &path]);
    assert!(
        out.contains(&format!("records      created 0, updated 0, unchanged {n}")),
        "{out}"
    );
    assert_eq!(db.ok(&["export", "Big", "--full"]), exported);
}

/// JSON objects have no order: users after the projects that grant them
/// access, the format mark last, records before a project's id and name.
#[test]
fn document_keys_in_any_order() {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    db.ok(&["grant", "testuser", "TestProject", "--level", "admin"]);
    let doc: Value = serde_json::from_str(&everything(&db)).unwrap();
    let users = doc["users"].clone();
    let mut projects = Vec::new();
    for p in doc["projects"].as_array().unwrap() {
        // "records" first, then the rest of the project reversed.
        let mut keys: Vec<String> = p.as_object().unwrap().keys().cloned().collect();
        keys.retain(|k| k != "records");
        keys.reverse();
        let mut text = format!("{{\"records\": {}", p["records"]);
        for k in keys {
            text.push_str(&format!(", {}: {}", json!(k), p[&k]));
        }
        text.push('}');
        projects.push(text);
    }
    let text = format!(
        "{{\"projects\": [{}], \"users\": {users}, \"sumatra_server_export\": 1}}",
        projects.join(", ")
    );
    let path = write_file(&db, "shuffled.json", &text);

    let fresh = TestDb::new();
    let out = fresh.ok(&["loaddata", &path]);
    assert!(
        out.contains("total        created 11, updated 0, unchanged 0"),
        "{out}"
    );
    assert_eq!(everything(&fresh), everything(&db));
    let out = fresh.ok(&["loaddata", "--dry-run", &path]);
    assert!(
        out.contains("total        created 0, updated 0, unchanged 11"),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("would ")), "{out}");

    // A name after the records still counts as a change of the project.
    let renamed = text.replace("\"Test Project #1\"", "\"Renamed\"");
    let path = write_file(&db, "renamed.json", &renamed);
    let out = fresh.ok(&["loaddata", "--dry-run", &path]);
    assert!(out.contains("would update project TestProject\n"), "{out}");
    assert!(
        out.contains("projects     created 0, updated 1, unchanged 1"),
        "{out}"
    );
}

/// A Django database where the real client deleted a record: Django's tagged
/// items are generic relations, so the record's tagged items stay behind.
/// Such a dump loads; the items are skipped and counted (SPEC 5), in a dry
/// run too. Both tagging apps.
#[test]
fn tagged_items_of_deleted_records_are_skipped_and_counted() {
    for (tag_model, item_model) in [
        ("tagging.tag", "tagging.taggeditem"),
        ("django_store.tag", "django_store.taggeditem"),
    ] {
        let db = TestDb::new();
        let mut all: Vec<Value> = objects(HAGGLING)
            .into_iter()
            .filter(|o| !o["model"].as_str().unwrap().contains("tag"))
            // Record pk 4 was deleted with `smt delete`.
            .filter(|o| !(o["model"] == "django_store.record" && o["pk"] == 4))
            .collect();
        all.extend([
            json!({"model": tag_model, "pk": 1, "fields": {"name": "kept"}}),
            json!({"model": tag_model, "pk": 2, "fields": {"name": "gone"}}),
            json!({"model": item_model, "pk": 1, "fields": {"tag": 1, "content_type": 18, "object_id": 3}}),
            json!({"model": item_model, "pk": 2, "fields": {"tag": 2, "content_type": 18, "object_id": 4}}),
            json!({"model": item_model, "pk": 3, "fields": {"tag": 1, "content_type": 18, "object_id": "4"}}),
            json!({"model": item_model, "pk": 4, "fields": {"tag": 2, "content_type": 18, "object_id": 99}}),
        ]);
        let path = write_file(&db, "deleted.json", &dump(&all));
        let both = |args: &[&str]| {
            let out = db.run(args);
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        };
        let dry = both(&["loaddata", "--dry-run", &path]);
        assert!(
            dry.contains("skipped 3 tagged item(s) of records that are not in the data"),
            "{item_model}: {dry}"
        );
        assert!(
            dry.contains("records      created 4"),
            "{item_model}: {dry}"
        );
        assert_eq!(db.query("SELECT count(*) FROM records")[0][0], "0");
        let out = both(&["loaddata", &path]);
        assert!(
            out.contains("skipped 3 tagged item(s)"),
            "{item_model}: {out}"
        );
        let records = exported_records(&db);
        assert_eq!(records.len(), 4, "{item_model}");
        let with = |tag: &str| -> Vec<&String> {
            records
                .iter()
                .filter(|(_, r)| r["tags"].as_array().unwrap().contains(&json!(tag)))
                .map(|(label, _)| label)
                .collect()
        };
        assert_eq!(with("kept").len(), 1, "{item_model}: {records:?}");
        assert!(with("gone").is_empty(), "{item_model}: {records:?}");
    }
}

/// A whole-store export's history is loaded as it is, twice-written
/// entries included (two identical changes in one second are two), once
/// however often the file is loaded; and a copy into a fresh store is no
/// change of its own, even of a store whose history was empty.
#[test]
fn a_history_is_loaded_entry_for_entry_and_once() {
    let entry = json!({"at": "2026-12-01 10:00:00", "actor": "alice", "address": "127.0.0.1",
                       "project": "P", "action": "record.create", "target": "a", "detail": {}});
    let doc = json!({"sumatra_server_export": 1, "projects": [{"id": "P", "records": []}],
                     "history": [entry, entry]});
    let db = TestDb::new();
    let path = write_file(&db, "h.json", &doc.to_string());
    let history_line = |out: &str| -> String {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("history "))
            .unwrap();
        line.split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let out = db.ok(&["loaddata", &path]);
    assert_eq!(
        history_line(&out),
        "created 2, updated 0, unchanged 0",
        "{out}"
    );
    let again = db.ok(&["loaddata", &path]);
    assert_eq!(
        history_line(&again),
        "created 0, updated 0, unchanged 2",
        "{again}"
    );
    let h: Vec<Value> =
        serde_json::from_str(&db.ok(&["history", "--format", "json", "--limit", "100"])).unwrap();
    assert_eq!(h.len(), 2, "the copy's history, nothing of its own: {h:?}");
    // An empty history copied into a fresh store: still a copy.
    let empty = json!({"sumatra_server_export": 1, "projects": [{"id": "Q", "records": []}],
                       "history": []});
    let fresh = TestDb::new();
    let path = write_file(&fresh, "e.json", &empty.to_string());
    fresh.ok(&["loaddata", &path]);
    assert_eq!(fresh.ok(&["history", "--format", "json"]).trim(), "[]");
}
