//! Everyday use (SPEC 10): the trash, the history, and the pages' forms,
//! over real sockets and from the shell, on both engines. The real
//! client's `smt delete --tag` and `restore --tag` are in
//! `tests/client/test_smt_cli.py`.

use crate::util::*;
use serde_json::{json, Value};

struct Env {
    db: TestDb,
    s: Server,
    alice: Client,
    wanda: Client,
}

/// alice administers P (public); wanda writes to it.
fn env() -> Env {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.useradd("wanda", "wpw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    db.ok(&["grant", "wanda", "P", "--level", "write"]);
    db.ok(&["grant", "anonymous", "P"]);
    let s = Server::start(&db, &[]);
    Env {
        db,
        s,
        alice: Client::new(Some(basic("alice", "apw"))),
        wanda: Client::new(Some(basic("wanda", "wpw"))),
    }
}

impl Env {
    fn put(&self, label: &str, tags: &[&str]) {
        let r = self
            .alice
            .put_json(
                &self.s.url(&format!("P/{label}/")),
                &full_record(label, &format!("reason of {label}"), tags),
            )
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
    fn body(&self, label: &str) -> Resp {
        self.alice.get(&self.s.url(&format!("P/{label}/"))).unwrap()
    }
    fn form(&self, c: &Client, path: &str, form: &str) -> Resp {
        c.send(
            "POST",
            &self.s.url(path),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "text/html"),
            ],
            Some(form.as_bytes()),
        )
        .unwrap()
    }
    fn history(&self) -> Vec<Value> {
        let out = self
            .db
            .ok(&["history", "P", "--format", "json", "--limit", "1000"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    }
    fn trash(&self) -> Vec<Value> {
        let out = self.db.ok(&["trash", "P", "--format", "json"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    }
}

fn actions(h: &[Value], label: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = h
        .iter()
        .filter(|e| e["target"] == label)
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.reverse();
    v
}

/// A client's DELETE moves the record to the trash: the client sees it
/// gone and its label free; the record comes back byte for byte, and a
/// label used again is refused on restore unless `--as`.
#[test]
fn a_deleted_record_goes_to_the_trash_and_comes_back_byte_for_byte() {
    let e = env();
    e.put("r1", &["keep"]);
    let before = e.body("r1").body;
    let r = e.alice.delete(&e.s.url("P/r1/")).unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(e.body("r1").status, 404);
    let trash = e.trash();
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0]["label"], json!("r1"));
    assert_eq!(trash[0]["deleted_by"], json!("alice"));
    assert_eq!(trash[0]["tags"], json!(["keep"]));
    e.db.ok(&["restore", "P", "r1"]);
    assert_eq!(e.body("r1").body, before, "restored byte for byte");
    assert!(e.trash().is_empty());
    // Deleted again, and the label used again meanwhile.
    e.alice.delete(&e.s.url("P/r1/")).unwrap();
    e.put("r1", &["new"]);
    let err = e.db.fails(&["restore", "P", "r1"]);
    assert!(
        err.contains("in use again") && err.contains("--as"),
        "{err}"
    );
    assert_eq!(e.trash().len(), 1, "a refused restore changes nothing");
    e.db.ok(&["restore", "P", "r1", "--as", "r1-old"]);
    let old: Value = e.body("r1-old").json();
    assert_eq!(old["label"], json!("r1-old"));
    assert_eq!(old["tags"], json!(["keep"]));
    assert_eq!(e.body("r1").json()["tags"], json!(["new"]));
    let err = e.db.fails(&["restore", "P", "nothing"]);
    assert!(err.contains("no record \"nothing\" in the trash"), "{err}");
}

/// Delete by tag of 20 records, then `restore --tag` brings all 20 back.
#[test]
fn twenty_records_deleted_by_tag_come_back_with_restore_tag() {
    let e = env();
    let mut bodies = Vec::new();
    for i in 0..20 {
        let l = format!("t{i:02}");
        e.put(&l, &["wrong"]);
        bodies.push((l.clone(), e.body(&l).body));
    }
    e.put("other", &["right"]);
    let r = e.alice.delete(&e.s.url("P/tag/wrong/")).unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "20"));
    assert_eq!(e.trash().len(), 20);
    assert!(e.trash().iter().all(|t| t["how"] == "tag wrong"));
    e.db.ok(&["restore", "P", "--tag", "wrong"]);
    for (l, b) in &bodies {
        assert_eq!(&e.body(l).body, b, "{l}");
    }
    assert!(e.trash().is_empty());
    // Since a time: everything deleted after it.
    e.alice.delete(&e.s.url("P/other/")).unwrap();
    e.db.ok(&["restore", "P", "--since", "2000-01-01"]);
    assert_eq!(e.body("other").status, 200);
    let err = e.db.fails(&["restore", "P", "--since", "yesterday"]);
    assert!(err.contains("--since"), "{err}");
}

/// Every change appears once in the history, with its actor and address.
#[test]
fn every_change_is_in_the_history_once_with_who_and_from_where() {
    let e = env();
    e.put("h1", &[]);
    // An update that changes reason and tags, and one that changes nothing.
    let mut r = full_record("h1", "a better reason", &["good"]);
    r["outcome"] = json!("it worked");
    for _ in 0..2 {
        let resp = e.alice.put_json(&e.s.url("P/h1/"), &r).unwrap();
        assert_eq!(resp.status, 200);
    }
    e.wanda.delete(&e.s.url("P/h1/")).unwrap();
    e.db.ok(&["restore", "P", "h1"]);
    e.db.ok(&["trash", "--purge", "--days", "0"]);
    let h = e.history();
    let user = std::env::var("USER").unwrap_or_default();
    let shell = if user.is_empty() {
        "shell (".to_string()
    } else {
        format!("shell ({user})")
    };
    let acts = actions(&h, "h1");
    assert_eq!(
        acts.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        [
            "record.create",
            "record.update",
            "record.delete",
            "record.restore"
        ],
        "{h:#?}"
    );
    assert_eq!(acts[0].1, "alice");
    assert_eq!(acts[2].1, "wanda");
    assert!(acts[3].1.starts_with(&shell), "{}", acts[3].1);
    let update = h.iter().find(|e| e["action"] == "record.update").unwrap();
    assert_eq!(update["address"], json!("127.0.0.1"));
    assert_eq!(
        update["detail"]["reason"],
        json!({"before": "reason of h1", "after": "a better reason"})
    );
    assert_eq!(
        update["detail"]["tags"],
        json!({"before": [], "after": ["good"]})
    );
    assert_eq!(update["detail"]["outcome"]["after"], json!("it worked"));
    // The grants of the setup, by the shell.
    let grants: Vec<&Value> = h.iter().filter(|e| e["action"] == "access.grant").collect();
    assert_eq!(grants.len(), 3, "{h:#?}");
    assert!(grants
        .iter()
        .all(|g| g["actor"].as_str().unwrap().starts_with("shell (")));
    // Users are in the whole store's history.
    let all: Vec<Value> = serde_json::from_str(&e.db.ok(&["history", "--format", "json"])).unwrap();
    assert!(all
        .iter()
        .any(|x| x["action"] == "user.add" && x["target"] == "wanda"));
    // The page and its JSON: admins only.
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("P/?view=history"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("reason: &quot;reason of h1&quot; → &quot;a better reason&quot;"),
        "{}",
        page.body
    );
    let doc = e
        .alice
        .get(&e.s.url("P/?view=history&limit=2"))
        .unwrap()
        .json();
    assert_eq!(doc["history"].as_array().unwrap().len(), 2);
    assert_eq!(doc["more"], json!(true));
    assert_eq!(
        e.wanda.get(&e.s.url("P/?view=history")).unwrap().status,
        403
    );
    assert_eq!(
        Client::new(None)
            .get(&e.s.url("P/?view=history"))
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        Client::new(None)
            .get(&e.s.url("P/?view=trash"))
            .unwrap()
            .status,
        401
    );
    assert_eq!(e.wanda.get(&e.s.url("P/?view=trash")).unwrap().status, 403);
}

/// The trash is purged after `--trash-days` by `serve`, and by `trash --purge`.
#[test]
fn the_trash_is_purged_on_time() {
    let mut e = env();
    e.put("old", &[]);
    e.put("recent", &[]);
    e.alice.delete(&e.s.url("P/old/")).unwrap();
    e.alice.delete(&e.s.url("P/recent/")).unwrap();
    e.db.query("UPDATE trash SET deleted_at = '2000-01-01 00:00:00' WHERE label = 'old'");
    e.s.stop();
    let s = Server::start(&e.db, &["--trash-days", "30"]);
    let mut left = e.trash();
    for _ in 0..100 {
        if left.len() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = e.trash();
    }
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["label"], json!("recent"));
    let h = e.history();
    let purge = h.iter().find(|x| x["action"] == "record.purge").unwrap();
    assert_eq!(purge["target"], json!("old"));
    assert_eq!(purge["actor"], json!("server (--trash-days 30)"));
    drop(s);
    e.db.ok(&["trash", "--purge", "--days", "0"]);
    assert!(e.trash().is_empty());
}

/// The record page's form changes reason, outcome and tags, and the client
/// reads the change back; its delete goes through a confirmation page.
#[test]
fn a_record_edited_and_deleted_on_its_page() {
    let e = env();
    e.put("p1", &["a"]);
    let r = e.form(
        &e.wanda,
        "P/p1/",
        "action=edit&reason=checked+by+eye&outcome=fine%2C+converged&tags=good%2C+a%2C+good",
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("Location"), Some("/records/P/p1/"));
    let doc = e.body("p1").json();
    assert_eq!(doc["reason"], json!("checked by eye"));
    assert_eq!(doc["outcome"], json!("fine, converged"));
    assert_eq!(doc["tags"], json!(["a", "good"]));
    let h = e.history();
    let up = h.iter().find(|x| x["action"] == "record.update").unwrap();
    assert_eq!(up["actor"], json!("wanda"));
    // Delete: a confirmation page first, then the trash.
    let r = e.form(&e.wanda, "P/p1/", "action=delete");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Delete record p1 of P?"), "{}", r.body);
    assert!(r.body.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(
        e.body("p1").status,
        200,
        "nothing deleted before the confirmation"
    );
    let r = e.form(&e.wanda, "P/p1/", "action=delete&confirm=yes");
    assert_eq!((r.status, r.header("Location")), (303, Some("/records/P/")));
    assert_eq!(e.body("p1").status, 404);
    assert_eq!(e.trash().len(), 1);
    // Refused: across sites, without write, a JSON body, a missing record.
    let r = e
        .wanda
        .send(
            "POST",
            &e.s.url("P/"),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "http://evil.example"),
            ],
            Some(b"action=delete&label=x&confirm=yes"),
        )
        .unwrap();
    assert_eq!(r.status, 403);
    let reader = Client::new(None);
    assert_eq!(e.form(&reader, "P/", "action=delete&label=x").status, 401);
    assert_eq!(
        e.form(&e.wanda, "P/nope/", "action=edit&reason=x").status,
        404
    );
    assert_eq!(e.form(&e.wanda, "P/", "action=launch").status, 400);
    let r = e
        .wanda
        .send(
            "POST",
            &e.s.url("P/"),
            &[("Content-Type", "application/json")],
            Some(b"{}"),
        )
        .unwrap();
    assert_eq!(r.status, 415);
}

/// The project page deletes the ticked rows and a tag's records, each
/// through a page listing what will go; admins restore from the trash page,
/// rename the project, and delete it (into the trash, restorable).
#[test]
fn the_project_page_deletes_restores_renames_and_deletes_the_project() {
    let e = env();
    for l in ["a", "b", "c"] {
        e.put(l, &["x"]);
    }
    e.put("d", &["y"]);
    let r = e.form(&e.wanda, "P/", "action=delete&compare=a&compare=b");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Delete 2 records of P?"), "{}", r.body);
    assert!(r.body.contains("<li>a</li>") && r.body.contains("<li>b</li>"));
    let r = e.form(&e.wanda, "P/", "action=delete&label=a&label=b&confirm=yes");
    assert_eq!(r.status, 303);
    assert_eq!(e.body("a").status, 404);
    let r = e.form(&e.wanda, "P/", "action=delete-tag&tag=x");
    assert!(
        r.body.contains("Delete the 1 record tagged x?"),
        "{}",
        r.body
    );
    e.form(&e.wanda, "P/", "action=delete-tag&tag=x&confirm=yes");
    assert_eq!(e.body("c").status, 404);
    // The trash page, and restore: admins only.
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("P/?view=trash"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert!(page.body.contains("3 deleted records"), "{}", page.body);
    assert_eq!(e.form(&e.wanda, "P/", "action=restore&label=a").status, 403);
    let r = e.form(&e.alice, "P/", "action=restore&label=a&label=c");
    assert_eq!(
        (r.status, r.header("Location")),
        (303, Some("/records/P/?view=trash"))
    );
    assert_eq!(e.body("a").status, 200);
    assert_eq!(e.body("c").status, 200);
    assert_eq!(e.trash().len(), 1);
    // Name and description.
    assert_eq!(e.form(&e.wanda, "P/", "action=update&name=N").status, 403);
    let r = e.form(
        &e.alice,
        "P/",
        "action=update&name=Market+runs&description=Haggling",
    );
    assert_eq!(r.status, 303);
    let list = e.alice.get(&e.s.url("")).unwrap().json();
    let p = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "P")
        .unwrap();
    assert_eq!(
        (&p["name"], &p["description"]),
        (&json!("Market runs"), &json!("Haggling"))
    );
    // The project itself: confirmation, then gone; restored with its access.
    let r = e.form(&e.alice, "P/", "action=delete-project");
    assert!(
        r.body
            .contains("Delete project Market runs and its 3 records?"),
        "{}",
        r.body
    );
    let r = e.form(&e.alice, "P/", "action=delete-project&confirm=yes");
    assert_eq!((r.status, r.header("Location")), (303, Some("/records/")));
    assert_eq!(e.body("d").status, 404);
    e.db.ok(&["restore", "P", "--since", "2000-01-01"]);
    assert_eq!(e.body("d").status, 200);
    assert_eq!(
        e.wanda.get(&e.s.url("P/d/")).unwrap().status,
        200,
        "access restored"
    );
    let list = e.alice.get(&e.s.url("")).unwrap().json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Market runs"));
    // From the shell too.
    e.db.ok(&["project", "P", "--description", "From the shell"]);
    let out = e.db.ok(&["project", "P"]);
    assert!(out.contains("description: From the shell"), "{out}");
    let h = e.history();
    for a in ["project.update", "project.delete", "project.restore"] {
        assert!(h.iter().any(|x| x["action"] == a), "{a}: {h:#?}");
    }
}

/// SPEC 10.4: the pages a scientist reads every day, each defect found by
/// using them, pinned.
#[test]
fn a_failed_run_stands_out_in_a_status_column_and_status_is_a_query_field() {
    let e = env();
    e.put("ok1", &["_finished_", "good"]);
    e.put("bad1", &["_failed_"]);
    e.put("bad2", &["_crashed_"]);
    e.put("run1", &["_finished..._"]);
    let page = e
        .alice
        .send("GET", &e.s.url("P/"), &[("Accept", "text/html")], None)
        .unwrap();
    assert!(page.body.contains("<th>Status</th>"), "{}", page.body);
    assert!(page.body.contains("class=\"status bad\""), "{}", page.body);
    assert!(page.body.contains("✗ failed</a>"));
    // Status tags are not shown again as tag chips.
    assert!(!page
        .body
        .contains("<td class=\"tagcell\"><a class=\"tag\" href=\"/records/P/tagged/_failed_/\""));
    // The code columns are asked for, not shown by default.
    assert!(!page.body.contains(">Main file</a>"));
    let page = e
        .alice
        .send(
            "GET",
            &e.s.url("P/?code=1"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert!(page.body.contains(">Main file</a>"));
    let q = |query: &str| {
        let r = e
            .alice
            .get(&e.s.url(&format!("P/?q={}", encode(query))))
            .unwrap();
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        let mut l = labels_of(&r.json());
        l.sort();
        l
    };
    assert_eq!(q("status = failed"), ["bad1"]);
    assert_eq!(q("status in (failed, crashed)"), ["bad1", "bad2"]);
    assert_eq!(q("status = finished"), ["ok1", "run1"]);
    assert_eq!(q("status != failed and tag = good"), ["ok1"]);
    let r = e
        .alice
        .get(&e.s.url(&format!("P/?q={}", encode("status ~ fail"))))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("status compares with =, != or in"),
        "{}",
        r.body
    );
}

#[test]
fn error_pages_look_like_every_page_and_lead_back() {
    let e = env();
    let r = e
        .alice
        .send("GET", &e.s.url("P/nope/"), &[("Accept", "text/html")], None)
        .unwrap();
    assert_eq!(r.status, 404);
    // The stylesheet under the prefix (it was a relative link), the user
    // signed in (it said "log in"), and a way back.
    assert!(
        r.body.contains("href=\"/records/.static/style.css\""),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("signed in as <strong>alice</strong>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<a href=\"/records/P/\">Back to project P</a>"),
        "{}",
        r.body
    );
    let r = Client::new(None)
        .send("GET", &e.s.url("Nope/"), &[("Accept", "text/html")], None)
        .unwrap();
    assert!(
        r.body
            .contains("<a href=\"/records/\">Back to the projects</a>"),
        "{}",
        r.body
    );
    // Log out: a 401 the browser takes as the end of its credentials.
    let r = e
        .alice
        .send("GET", &e.s.url("?logout"), &[("Accept", "text/html")], None)
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_some());
    assert!(r.body.contains("Signed out"));
    let page = e
        .alice
        .send("GET", &e.s.url(""), &[("Accept", "text/html")], None)
        .unwrap();
    assert!(page.body.contains("?logout\">log out</a>"), "{}", page.body);
}

#[test]
fn the_pager_names_its_direction_by_the_sort() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.json");
    let records: Vec<Value> = (0..60)
        .map(|i| {
            let mut r = full_record(&format!("m{i:02}"), "", &[]);
            r["project_id"] = json!("P");
            r
        })
        .collect();
    std::fs::write(&file, serde_json::to_vec(&records).unwrap()).unwrap();
    e.db.ok(&["loaddata", file.to_str().unwrap()]);
    let page = |q: &str| {
        e.alice
            .send(
                "GET",
                &e.s.url(&format!("P/{q}")),
                &[("Accept", "text/html")],
                None,
            )
            .unwrap()
            .body
    };
    assert!(page("").contains("older ›"));
    assert!(page("?sort=timestamp").contains("newer ›"));
    let by_label = page("?sort=label");
    assert!(
        by_label.contains("next ›") && !by_label.contains("older ›"),
        "{by_label}"
    );
}

#[test]
fn export_refuses_to_overwrite_and_keeps_password_hashes_private() {
    use std::os::unix::fs::PermissionsExt;
    let e = env();
    let file = e.db.dir.path().join("out.json");
    std::fs::write(&file, "precious").unwrap();
    let err = e.db.fails(&["export", "-o", file.to_str().unwrap()]);
    assert!(
        err.contains("exists already") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    e.db.ok(&["export", "-o", file.to_str().unwrap(), "--force"]);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("\"projects\""));
    // `export --with-users > file`: the shell made the file 0644; it holds
    // password hashes, so it is made the owner's alone.
    let shell_file = e.db.dir.path().join("users.json");
    let out = std::fs::File::create(&shell_file).unwrap();
    std::fs::set_permissions(&shell_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run =
        e.db.command(&["export", "--with-users"])
            .stdout(out)
            .output()
            .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mode = std::fs::metadata(&shell_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(String::from_utf8_lossy(&run.stderr).contains("password hashes"));
    assert!(std::fs::read_to_string(&shell_file)
        .unwrap()
        .contains("\"users\""));
}

#[test]
fn serve_binds_a_host_name() {
    let e = env();
    let s = Server::start_command(e.db.command(&["serve", "--bind", "localhost:0"]));
    let r = Client::new(None).get(&s.url("")).unwrap();
    assert_eq!(r.status, 200);
}

/// Review findings, pinned: a deleted project's id is not taken over by a
/// new project (its trash and history stay its own); the page restores a
/// chosen version of a label; an edit changes only what it changes.
#[test]
fn a_deleted_projects_id_is_not_taken_over_and_edits_change_only_what_changed() {
    let e = env();
    e.put("v", &["a,b", "x"]);
    // An edit of the reason alone keeps a tag holding a comma, and leaves
    // no change of the outcome (null) in the history.
    let r = e.form(
        &e.alice,
        "P/v/",
        "action=edit&reason=new+reason&outcome=fine&tags=a%2Cb%2C+x",
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let doc = e.body("v").json();
    assert_eq!(doc["tags"], json!(["a,b", "x"]));
    assert_eq!(doc["reason"], json!("new reason"));
    let h = e.history();
    let up = h.iter().find(|x| x["action"] == "record.update").unwrap();
    assert_eq!(up["detail"]["fields"], json!(["reason"]), "{up}");
    // A tag with a control character is refused, the record unchanged.
    let r = e.form(&e.alice, "P/v/", "action=edit&tags=ok%2C+bad%01tag");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(e.body("v").json()["tags"], json!(["a,b", "x"]));
    // Two versions of one label in the trash: the page restores the older.
    e.alice.delete(&e.s.url("P/v/")).unwrap();
    e.put("v", &["second"]);
    e.alice.delete(&e.s.url("P/v/")).unwrap();
    let trash = e.trash();
    let older = trash
        .iter()
        .find(|t| t["tags"] == json!(["a,b", "x"]))
        .unwrap();
    let r = e.form(
        &e.alice,
        "P/",
        &format!("action=restore&id={}", older["id"]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(e.body("v").json()["tags"], json!(["a,b", "x"]));
    let err = e.db.fails(&["restore", "P", "v", "--as", "last"]);
    assert!(err.contains("route of its own"), "{err}");
    // The project deleted: its id is not free for a new project.
    e.db.ok(&["project", "P", "--delete"]);
    let r = e
        .alice
        .send("PUT", &e.s.url("P/"), &[], Some(b"{}"))
        .unwrap();
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("in the trash"), "{}", r.body);
    let err = e.db.fails(&["grant", "wanda", "P"]);
    assert!(err.contains("in the trash"), "{err}");
    // Purged, the id is free again, and the new project's history starts
    // with it.
    e.db.ok(&["trash", "P", "--purge", "--days", "0"]);
    let r = e
        .wanda
        .send("PUT", &e.s.url("P/"), &[], Some(b"{}"))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let wanda_history = e.wanda.get(&e.s.url("P/?view=history")).unwrap().json();
    let seen: Vec<&Value> = wanda_history["history"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(seen.iter().all(|x| x["target"] != "v"), "{seen:#?}");
}

/// SPEC 10.3: a whole-store export carries the trash, the deleted projects
/// and the history to the other engine; exported again there it is the
/// same file, loaded again it changes nothing, and a record restored there
/// is the record that was deleted here.
#[test]
fn a_whole_store_export_carries_trash_and_history_to_the_other_engine_byte_for_byte() {
    let e = env();
    for l in ["r1", "r2", "r3"] {
        e.put(l, &["t"]);
    }
    let r1 = e.body("r1").body;
    assert_eq!(e.alice.delete(&e.s.url("P/r1/")).unwrap().status, 204);
    e.db.ok(&["grant", "alice", "Q", "--level", "admin"]);
    let q = e
        .alice
        .put_json(&e.s.url("Q/q1/"), &full_record("q1", "in Q", &[]))
        .unwrap();
    assert_eq!(q.status, 201, "{}", q.body);
    e.db.ok(&["project", "Q", "--delete"]);
    let token = e.db.ok(&[
        "token",
        "create",
        "alice",
        "--project",
        "P",
        "--name",
        "laptop",
    ]);
    let token = token.trim();
    let dir = e.db.dir.path();
    let a = dir.join("a.json");
    e.db.ok(&["export", "--with-users", "-o", a.to_str().unwrap()]);
    let text = std::fs::read_to_string(&a).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["projects"][0]["trash"][0]["record"]["label"],
        json!("r1")
    );
    assert_eq!(doc["projects"][0]["trash"][0]["deleted_by"], json!("alice"));
    assert_eq!(doc["deleted_projects"][0]["id"], json!("Q"));
    assert_eq!(
        doc["deleted_projects"][0]["trash"][0]["record"]["label"],
        json!("q1")
    );
    assert_eq!(doc["tokens"][0]["name"], json!("laptop"));
    assert_eq!(doc["tokens"][0]["digest"].as_str().unwrap().len(), 64);
    assert!(!text.contains(token), "never the token itself");
    let history = doc["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["action"] == "record.delete" && h["target"] == "r1"),
        "{history:?}"
    );

    // A plain export of one project leaves the trash out; --with-trash not.
    assert!(!e.db.ok(&["export", "P"]).contains("\"trash\""));
    let with_trash: Value =
        serde_json::from_str(&e.db.ok(&["export", "P", "--with-trash"])).unwrap();
    assert_eq!(
        with_trash["projects"][0]["trash"][0]["record"]["label"],
        json!("r1")
    );
    assert!(with_trash.get("history").is_none() && with_trash.get("users").is_none());

    let other = TestDb::on(match e.db.is_pg() {
        true => Backend::Sqlite,
        false => Backend::Postgres,
    });
    other.ok(&["init"]);
    let loaded = other.ok(&["loaddata", a.to_str().unwrap()]);
    assert!(loaded.contains("trash            created 2"), "{loaded}");
    assert!(loaded.contains("deleted projects created 1"), "{loaded}");
    let b = other.dir.path().join("b.json");
    other.ok(&["export", "--with-users", "-o", b.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&b).unwrap(), text, "byte for byte");
    // Loaded again: nothing new, not even in the history.
    let again = other.ok(&["loaddata", a.to_str().unwrap()]);
    assert!(again.contains("created 0, updated 0, unchanged"), "{again}");
    assert!(!again.contains("created 1"), "{again}");
    let h = other.ok(&["history", "--format", "json", "--limit", "1000"]);
    let h: Vec<Value> = serde_json::from_str(&h).unwrap();
    assert_eq!(
        h.len(),
        history.len(),
        "the history once, and the copy is no change of its own"
    );

    // What was deleted there comes back here as it was.
    other.ok(&["restore", "P", "r1"]);
    other.ok(&["restore", "Q", "q1"]);
    let s = Server::start(&other, &[]);
    let alice = Client::new(Some(basic("alice", "apw")));
    assert_eq!(alice.get(&s.url("P/r1/")).unwrap().body, r1);
    // The token works in the copy too.
    let by_token = Client::new(Some(basic("alice", token)));
    assert_eq!(by_token.get(&s.url("P/r1/")).unwrap().status, 200);
    assert_eq!(
        alice.get(&s.url("Q/q1/")).unwrap().json()["reason"],
        json!("in Q")
    );
}

/// SPEC 10.4: twelve parameters make twelve columns no window holds; the
/// page shows the five most common and a chooser offers the rest.
#[test]
fn a_project_of_many_parameters_shows_five_columns_and_a_chooser() {
    let e = env();
    let mut rec = full_record("wide", "many parameters", &[]);
    let content: Vec<String> = (1..=12).map(|i| format!("k{i:02} = {i}")).collect();
    rec["parameters"]["content"] = json!(content.join("\n"));
    let r = e.alice.put_json(&e.s.url("P/wide/"), &rec).unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let page = |query: &str| {
        let r = e
            .alice
            .send(
                "GET",
                &e.s.url(&format!("P/{query}")),
                &[("Accept", "text/html")],
                None,
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let doc = scraper::Html::parse_document(&r.body);
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        let headers: Vec<String> = doc
            .select(&sel("th.param a"))
            .map(|a| a.value().attr("title").unwrap().to_string())
            .collect();
        let offered: Vec<(String, bool)> = doc
            .select(&sel("details.columns input[name=col]"))
            .map(|i| {
                let v = i.value();
                (
                    v.attr("value").unwrap().to_string(),
                    v.attr("checked").is_some(),
                )
            })
            .collect();
        (headers, offered)
    };
    let (headers, offered) = page("");
    assert_eq!(headers.len(), 5, "{headers:?}");
    assert_eq!(offered.len(), 12, "{offered:?}");
    assert_eq!(offered.iter().filter(|(_, c)| *c).count(), 5);
    assert!(offered.iter().any(|(k, c)| k == "params.k12" && !c));
    // The chooser's ticks, as the form sends them, with the query kept.
    let (headers, offered) = page("?q=params.k01+%3D+1&col=params.k12&col=params.k03");
    assert_eq!(headers, ["params.k12", "params.k03"]);
    assert_eq!(
        offered
            .iter()
            .filter(|(_, c)| *c)
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["params.k12", "params.k03"]
    );
}

/// A user removed while their project is in the trash, and another made
/// under the same name: the restored project does not give the newcomer
/// the old user's access.
#[test]
fn a_restored_project_gives_no_access_to_a_new_user_of_a_removed_name() {
    let e = env();
    e.put("r1", &[]);
    e.db.ok(&["project", "P", "--delete"]);
    e.db.ok(&["userdel", "wanda"]);
    e.db.useradd("wanda", "other");
    e.db.ok(&["restore", "P", "r1"]);
    let users = e.db.ok(&["users"]);
    let wanda = users.lines().find(|l| l.contains("wanda")).unwrap();
    assert!(!wanda.contains("P ("), "{users}");
    let alice = users.lines().find(|l| l.contains("alice")).unwrap();
    assert!(alice.contains("P (admin)"), "{users}");
    let r = Client::new(Some(basic("wanda", "other")))
        .get(&e.s.url("P/r1/"))
        .unwrap();
    assert_eq!(r.status, 200, "P is public: read, not write");
    let r = Client::new(Some(basic("wanda", "other")))
        .put_json(&e.s.url("P/r2/"), &full_record("r2", "", &[]))
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
}

/// Regression: a project made again by `loaddata` after an older project
/// of the same id was deleted and purged showed that older project's
/// history (its records, who changed what) to the new project's admins:
/// `loaddata` logs no project.create, where the history of a project began.
#[test]
fn a_project_loaded_under_a_purged_id_does_not_inherit_its_history() {
    let e = env();
    e.db.ok(&["grant", "alice", "R", "--level", "admin"]);
    let r = e
        .alice
        .put_json(&e.s.url("R/secret/"), &full_record("secret", "", &[]))
        .unwrap();
    assert_eq!(r.status, 201);
    e.db.ok(&["project", "R", "--delete"]);
    e.db.ok(&["trash", "R", "--purge", "--days", "0"]);
    // The purged project's history stays readable in the shell.
    let old: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["history", "R", "--format", "json"])).unwrap();
    assert!(old.iter().any(|x| x["target"] == "secret"), "{old:?}");
    // A file that holds a project R with no records.
    let other = TestDb::new();
    other.ok(&["grant", "anonymous", "R"]);
    let file = other.dir.path().join("r.json");
    other.ok(&["export", "-o", file.to_str().unwrap()]);
    e.db.ok(&["loaddata", file.to_str().unwrap()]);
    e.db.useradd("bob", "bpw");
    e.db.ok(&["grant", "bob", "R", "--level", "admin"]);
    let bob = Client::new(Some(basic("bob", "bpw")));
    let r = bob.get(&e.s.url("R/?view=history")).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let entries = r.json()["history"].as_array().unwrap().clone();
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|x| x["target"] != "secret" && x["action"] != "project.delete"),
        "{entries:?}"
    );
}

/// Regression: `trash --purge --days 100000000` panicked (date arithmetic
/// overflowed), and `serve --trash-days` as large left the purge thread
/// dead; `history` of no project printed an empty table.
#[test]
fn odd_days_and_projects_get_a_sentence() {
    let db = TestDb::new();
    let err = db.fails(&["trash", "--purge", "--days", "100000000"]);
    assert!(err.contains("--days") && err.contains("36500"), "{err}");
    let err = db.fails(&["serve", "--trash-days", "100000000"]);
    assert!(err.contains("--trash-days"), "{err}");
    db.ok(&["trash", "--purge", "--days", "36500"]);
    let err = db.fails(&["history", "Nope"]);
    assert!(err.contains("no project \"Nope\""), "{err}");
}

/// Regression: saving the edit form changed text the user never touched:
/// the browser drops a newline just after `<textarea>` (a reason starting
/// with one lost it), sends line ends as CRLF (an outcome stored with LF
/// was "changed"), tags were trimmed by an edit of the reason, and the
/// project form trimmed the description; each logged as the user's change.
#[test]
fn saving_a_form_unchanged_changes_nothing() {
    let e = env();
    let mut rec = full_record("r5", "\nline two", &[" lead", "trail "]);
    rec["outcome"] = json!("ok\nwindows");
    let r = e.alice.put_json(&e.s.url("P/r5/"), &rec).unwrap();
    assert_eq!(r.status, 201);
    let before = e.body("r5").body;
    // The page shows the reason after a newline of the form's own.
    let page = e
        .alice
        .send("GET", &e.s.url("P/r5/"), &[("Accept", "text/html")], None)
        .unwrap();
    assert!(
        page.body
            .contains("<textarea name=\"reason\" rows=\"2\">\n\nline two"),
        "{}",
        page.body
    );
    // What a browser sends back for that form, untouched.
    let r = e.form(
        &e.alice,
        "P/r5/",
        "action=edit&reason=%0Aline+two&outcome=ok%0D%0Awindows&tags=+lead%2C+trail+",
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        e.body("r5").body,
        before,
        "an untouched form changed the record"
    );
    assert!(
        !e.history().iter().any(|x| x["action"] == "record.update"),
        "{:?}",
        e.history()
    );
    // The project's form, untouched: nothing changes either.
    let r = e
        .alice
        .put_json(
            &e.s.url("P/"),
            &json!({"name": "Pname", "description": "line1\nline2\n"}),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let updates = |e: &Env| {
        e.history()
            .iter()
            .filter(|x| x["action"] == "project.update")
            .count()
    };
    let n = updates(&e);
    let r = e.form(
        &e.alice,
        "P/",
        "action=update&name=Pname&description=line1%0D%0Aline2%0D%0A",
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        updates(&e),
        n,
        "an untouched project form was logged as a change"
    );
    let p = e.alice.get(&e.s.url("P/")).unwrap().json();
    assert_eq!(p["description"], json!("line1\nline2\n"));
}

/// Regression: `restore --tag` looked for the tag's raw text in the stored
/// JSON, where a `"` or `\` is escaped: such tags were never found.
#[test]
fn restore_by_tag_finds_tags_with_quotes_backslashes_and_accents() {
    let e = env();
    for (label, tag, url_tag) in [
        ("q1", "q\"x", "q%22x"),
        ("b1", "x\\y", "x%5Cy"),
        ("u1", "café", "caf%C3%A9"),
    ] {
        e.put(label, &[tag]);
        let before = e.body(label).body;
        let r = e
            .alice
            .delete(&e.s.url(&format!("P/tag/{url_tag}/")))
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "1"), "{tag}");
        e.db.ok(&["restore", "P", "--tag", tag]);
        assert_eq!(e.body(label).body, before, "{tag}");
    }
    assert!(e.trash().is_empty());
}

/// Regression: a deleted project that had no records could be neither
/// restored (`restore E --since ...`, the command the delete prints, found
/// nothing), nor purged by name, nor made again until the 30-day purge.
#[test]
fn a_deleted_project_without_records_can_be_restored_or_purged() {
    let db = TestDb::new();
    db.useradd("dave", "dpw");
    db.ok(&["grant", "dave", "E", "--level", "admin"]);
    db.ok(&["project", "E", "--delete"]);
    let said = String::from_utf8_lossy(&db.run(&["restore", "E", "--since", "2000-01-01"]).stderr)
        .to_string();
    assert!(said.contains("restored project E"), "{said}");
    assert!(db.ok(&["project", "E"]).contains("id: E"));
    db.ok(&["project", "E", "--delete"]);
    db.ok(&["trash", "E"]);
    db.ok(&["trash", "E", "--purge", "--days", "0"]);
    // Gone for good: the id is free again.
    db.ok(&["grant", "dave", "E", "--level", "admin"]);
    assert!(db.ok(&["project", "E"]).contains("id: E"));
}

/// Regression: the restore a project delete printed (`--since 2000-01-01`)
/// restored every copy of a label oldest first, so a label deleted, put
/// again and then deleted with the project failed with "in use again", and
/// records deleted on purpose before the project came back with it.
#[test]
fn restoring_a_deleted_project_brings_it_back_as_it_was() {
    let e = env();
    e.db.ok(&["grant", "alice", "R", "--level", "admin"]);
    let put = |label: &str, reason: &str| {
        let r = e
            .alice
            .put_json(
                &e.s.url(&format!("R/{label}/")),
                &full_record(label, reason, &[]),
            )
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    };
    put("L", "first L");
    put("M", "M");
    put("gone", "deleted on purpose");
    assert_eq!(e.alice.delete(&e.s.url("R/L/")).unwrap().status, 204);
    assert_eq!(e.alice.delete(&e.s.url("R/gone/")).unwrap().status, 204);
    put("L", "second L");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = e.db.run(&["project", "R", "--delete"]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    let command = said
        .split("(sumatra-server ")
        .nth(1)
        .and_then(|c| c.split(" brings").next())
        .unwrap_or_else(|| panic!("{said}"));
    // The command as printed: restore R --since "TIME".
    let time = command.split('"').nth(1).unwrap();
    e.db.ok(&["restore", "R", "--since", time]);
    let r = e.alice.get(&e.s.url("R/L/")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["reason"], json!("second L"));
    assert_eq!(e.alice.get(&e.s.url("R/M/")).unwrap().status, 200);
    assert_eq!(
        e.alice.get(&e.s.url("R/gone/")).unwrap().status,
        404,
        "deleted on purpose before the project: stays in the trash"
    );
    let trash: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["trash", "R", "--format", "json"])).unwrap();
    assert_eq!(trash.len(), 2, "the first L and gone stay: {trash:?}");
}
