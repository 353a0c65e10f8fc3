//! Tokens (SPEC 11.1) over real sockets, on both engines: what a token
//! opens and what ends it, the history naming it, the page where a user
//! makes and ends their own. The real client with a token is in
//! `tests/client/test_smt_cli.py`; the authorization matrix's token
//! columns in `security.rs`.

use crate::util::*;
use serde_json::{json, Value};

struct Env {
    db: TestDb,
    s: Server,
}

/// alice writes to P (private) and administers Q (private).
fn env() -> Env {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "write"]);
    db.ok(&["grant", "alice", "Q", "--level", "admin"]);
    let s = Server::start(&db, &[]);
    Env { db, s }
}

impl Env {
    fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "create", "alice", "--project", "P"];
        all.extend_from_slice(args);
        let t = self.db.ok(&all).trim().to_string();
        assert!(t.starts_with("smt_") && t.len() == 40, "{t}");
        t
    }
    fn with(&self, token: &str) -> Client {
        Client::new(Some(basic("alice", token)))
    }
    fn put(&self, c: &Client, label: &str) -> u16 {
        c.put_json(
            &self.s.url(&format!("P/{label}/")),
            &full_record(label, "r", &[]),
        )
        .unwrap()
        .status
    }
}

#[test]
fn a_write_token_writes_its_project_and_nothing_else() {
    let e = env();
    let t = e.token(&["--name", "laptop"]);
    let c = e.with(&t);
    assert_eq!(e.put(&c, "r1"), 201);
    assert_eq!(c.get(&e.s.url("P/r1/")).unwrap().status, 200);
    // Another project of alice's, even one she administers: not with this token.
    assert_eq!(c.get(&e.s.url("Q/")).unwrap().status, 403);
    // Never administering: no project changes, no grants, no new projects, no tokens.
    let r = c
        .send("PUT", &e.s.url("P/"), &[], Some(b"{\"name\": \"x\"}"))
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let r = c.send("PUT", &e.s.url("New/"), &[], Some(b"{}")).unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("a token cannot create projects"),
        "{}",
        r.body
    );
    let r = c
        .send(
            "GET",
            &e.s.url("P/?view=tokens"),
            &[("Accept", "text/html")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    // The history names the token, not just the user.
    let h = e.db.ok(&["history", "P", "--format", "json"]);
    let h: Vec<Value> = serde_json::from_str(&h).unwrap();
    let made = h
        .iter()
        .find(|x| x["action"] == "record.create" && x["target"] == "r1")
        .unwrap();
    assert!(
        made["actor"]
            .as_str()
            .unwrap()
            .starts_with("alice (token 1 \"laptop\")"),
        "{made}"
    );
    assert!(h.iter().any(
        |x| x["action"] == "token.create" && x["actor"].as_str().unwrap().starts_with("shell")
    ));
    // Its last use is written (off the request's path, within seconds).
    let mut last = Value::Null;
    for _ in 0..100 {
        let list: Vec<Value> =
            serde_json::from_str(&e.db.ok(&["token", "list", "alice", "--format", "json"]))
                .unwrap();
        last = list[0].clone();
        if !last["last_used"].is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(last["last_address"], json!("127.0.0.1"), "{last}");
    assert!(
        last.get("digest").is_none(),
        "a listing never shows the digest"
    );
}

#[test]
fn a_read_token_reads_and_writes_nothing() {
    let e = env();
    let w = e.with(&e.token(&[]));
    assert_eq!(e.put(&w, "r1"), 201);
    let r = e.with(&e.token(&["--level", "read"]));
    assert_eq!(r.get(&e.s.url("P/r1/")).unwrap().status, 200);
    assert_eq!(e.put(&r, "r2"), 403);
    assert_eq!(r.delete(&e.s.url("P/r1/")).unwrap().status, 403);
}

#[test]
fn expired_revoked_wrong_and_orphaned_tokens_are_refused() {
    let e = env();
    let url = e.s.url("P/");
    let status = |t: &str| e.with(t).get(&url).unwrap().status;
    // Expired: 401 as a wrong password.
    let old = e.token(&["--name", "old"]);
    assert_eq!(status(&old), 200);
    e.db.query("UPDATE tokens SET expires = '2000-01-01 00:00:00' WHERE name = 'old'");
    assert_eq!(status(&old), 401);
    // Revoked by id, and by value (a token found leaked).
    let a = e.token(&[]);
    let b = e.token(&[]);
    assert_eq!((status(&a), status(&b)), (200, 200));
    let list: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["token", "list", "--format", "json"])).unwrap();
    let id_a = list[list.len() - 2]["id"].as_i64().unwrap();
    e.db.ok(&["token", "revoke", &id_a.to_string()]);
    e.db.ok(&["token", "revoke", "--value", &b]);
    assert_eq!((status(&a), status(&b)), (401, 401));
    let err = e.db.fails(&["token", "revoke", "--value", &b]);
    assert!(err.contains("no such token"), "{err}");
    // A typo, another user's name, a token made up: 401.
    let c = e.token(&[]);
    let mut typo = c.clone();
    typo.replace_range(10..11, if &c[10..11] == "a" { "b" } else { "a" });
    assert_eq!(status(&typo), 401);
    e.db.useradd("bob", "bpw");
    e.db.ok(&["grant", "bob", "P"]);
    let r = Client::new(Some(basic("bob", &c))).get(&url).unwrap();
    assert_eq!(r.status, 401, "a token is its own user's only");
    assert_eq!(status(&format!("smt_{}", "A".repeat(36))), 401);
    // Access revoked: the token ends with it (SPEC 11.1), for good: access
    // given back does not bring it back. Regression: it was only refused
    // (403) while the access was gone, and worked again once given back.
    assert_eq!(status(&c), 200);
    let other = e.db.ok(&["token", "create", "alice", "--project", "Q"]);
    e.db.ok(&["revoke", "alice", "P"]);
    assert_eq!(status(&c), 401);
    e.db.ok(&["grant", "alice", "P", "--level", "write"]);
    assert_eq!(
        status(&c),
        401,
        "access given back does not revive the token"
    );
    let left: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["token", "list", "--format", "json"])).unwrap();
    let projects: Vec<&str> = left
        .iter()
        .map(|t| t["project"].as_str().unwrap())
        .collect();
    assert_eq!(projects, ["Q"], "the tokens of other projects stay");
    assert_eq!(
        e.with(other.trim()).get(&e.s.url("Q/")).unwrap().status,
        200
    );
    // Lowered access: never more than the user has now.
    let d = e.token(&[]);
    e.db.ok(&["grant", "alice", "P", "--level", "read"]);
    assert_eq!(status(&d), 200, "read, the user's level now");
    assert_eq!(
        e.put(&e.with(&d), "r9"),
        403,
        "never more than the user has"
    );
    // The user removed: the token goes with them.
    e.db.ok(&["userdel", "alice"]);
    assert_eq!(status(&d), 401);
    assert!(e.db.ok(&["token", "list", "--format", "json"]).trim() == "[]");
}

#[test]
fn tokens_are_refused_beyond_what_their_user_has() {
    let e = env();
    let err = e.db.fails(&[
        "token",
        "create",
        "alice",
        "--project",
        "P",
        "--level",
        "admin",
    ]);
    assert!(err.contains("invalid value 'admin'"), "{err}");
    e.db.ok(&["grant", "alice", "R", "--level", "read"]);
    let err = e.db.fails(&["token", "create", "alice", "--project", "R"]);
    assert!(err.contains("cannot grant write access"), "{err}");
    let err = e.db.fails(&[
        "token",
        "create",
        "alice",
        "--project",
        "P",
        "--expires",
        "soon",
    ]);
    assert!(err.contains("--expires"), "{err}");
    let err = e.db.fails(&["token", "create", "nobody", "--project", "P"]);
    assert!(err.contains("no user \"nobody\""), "{err}");
    // Regression: the tokens of a user who does not exist were "no tokens".
    let err = e.db.fails(&["token", "list", "nobody"]);
    assert!(err.contains("no user \"nobody\""), "{err}");
}

#[test]
fn a_user_makes_lists_and_revokes_their_tokens_on_the_page() {
    let e = env();
    let alice = Client::new(Some(basic("alice", "apw")));
    let html = |c: &Client, path: &str| {
        c.send("GET", &e.s.url(path), &[("Accept", "text/html")], None)
            .unwrap()
    };
    assert_eq!(html(&Client::new(None), "P/?view=tokens").status, 401);
    let page = html(&alice, "P/?view=tokens");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("You have no tokens"));
    let post_to = |path: &str, form: &str| {
        alice
            .send(
                "POST",
                &e.s.url(path),
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Accept", "text/html"),
                ],
                Some(form.as_bytes()),
            )
            .unwrap()
    };
    let post = |form: &str| post_to("P/", form);
    // Regression: an expiry ending in a wide character panicked (500).
    let r = post("action=token-create&name=x&level=write&expires=9%C3%A9");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("expires"), "{}", r.body);
    let made = post("action=token-create&name=cluster&level=write&expires=30d");
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.header("cache-control"), Some("no-store"));
    let doc = scraper::Html::parse_document(&made.body);
    let token: String = doc
        .select(&scraper::Selector::parse("code.secret").unwrap())
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(token.starts_with("smt_"), "{token}");
    // The base is http://127.0.0.1:PORT/records/: the token goes in as the password.
    let store_url =
        e.s.base
            .replacen("http://", &format!("http://alice:{token}@"), 1);
    let init = format!("smt init --store {store_url} P");
    assert!(made.body.contains(&init), "{}", made.body);
    // The token works, and is shown never again.
    assert_eq!(e.put(&e.with(&token), "r1"), 201);
    let page = html(&alice, "P/?view=tokens");
    assert!(page.body.contains("cluster") && !page.body.contains(&token));
    let list: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["token", "list", "alice", "--format", "json"])).unwrap();
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["level"], json!("write"));
    // Revoked from the page: a redirect back, and the token ends.
    let r = post(&format!("action=token-revoke&id={id}"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(e.put(&e.with(&token), "r2"), 401);
    // Someone else's token cannot be revoked from here.
    e.db.useradd("bob", "bpw");
    e.db.ok(&["grant", "bob", "P"]);
    e.db.ok(&["token", "create", "bob", "--project", "P"]);
    let bobs: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["token", "list", "bob", "--format", "json"])).unwrap();
    let r = post(&format!("action=token-revoke&id={}", bobs[0]["id"]));
    assert_eq!(r.status, 404, "{}", r.body);
    // Lowered to read, alice still ends a token she made before (a leak
    // is hers to stop), from any project page she reads.
    let kept = e.token(&["--name", "kept"]);
    e.db.ok(&["grant", "alice", "P", "--level", "read"]);
    assert_eq!(e.with(&kept).get(&e.s.url("P/")).unwrap().status, 200);
    let list: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["token", "list", "alice", "--format", "json"])).unwrap();
    let kept_id = list.iter().find(|t| t["name"] == "kept").unwrap()["id"].clone();
    let r = post_to(
        "P/?action=token-revoke",
        &format!("action=token-revoke&id={kept_id}"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(e.with(&kept).get(&e.s.url("P/")).unwrap().status, 401);
    // At read, the URL's word is the only form taken: no delete slips in.
    let r = post_to("P/?action=token-revoke", "action=delete&label=r1");
    assert_eq!(r.status, 400, "{}", r.body);
    e.db.ok(&["grant", "alice", "P", "--level", "write"]);
    // A reader of a project makes no tokens for it.
    e.db.ok(&["grant", "alice", "R", "--level", "read"]);
    let r = post_to("R/", "action=token-create");
    assert_eq!(r.status, 403, "{}", r.body);
}

/// Tokens meet the failed-login throttle as passwords do: good ones never
/// count (a cluster's jobs with one token), wrong ones do, and past the
/// limit even a good one waits.
#[test]
fn the_login_throttle_counts_wrong_tokens_only() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "write"]);
    let s = Server::start(&db, &["--login-throttle", "2,2,300"]);
    let t = db
        .ok(&["token", "create", "alice", "--project", "P"])
        .trim()
        .to_string();
    let get = |token: &str| {
        Client::new(Some(basic("alice", token)))
            .get(&s.url("P/"))
            .unwrap()
            .status
    };
    for _ in 0..10 {
        assert_eq!(get(&t), 200);
    }
    let wrong = format!("smt_{}", "B".repeat(36));
    assert_eq!(get(&wrong), 401);
    assert_eq!(get(&wrong), 401);
    assert_eq!(get(&wrong), 429);
    assert_eq!(get(&t), 429, "over the limit, a good token waits too");
}

/// Regression: every password starting `smt_` was taken for a token, so a
/// user with such a password (loaded from Django, or set before tokens
/// existed) could never log in, and each try counted as a failed login.
/// Only a well-formed token (prefix, length, checksum) is one; a new
/// password may not start as tokens do.
#[test]
fn a_password_that_starts_as_a_token_does_is_still_a_password() {
    let e = env();
    e.db.useradd("carol", "cpw");
    e.db.ok(&["grant", "carol", "P", "--level", "read"]);
    let hash = bcrypt::hash("smt_mypassword", 4).unwrap();
    e.db.query(&format!(
        "UPDATE users SET password = '{hash}' WHERE username = 'carol'"
    ));
    let carol = Client::new(Some(basic("carol", "smt_mypassword")));
    assert_eq!(carol.get(&e.s.url("P/")).unwrap().status, 200);
    let out =
        e.db.run_with_stdin(&["passwd", "carol", "--password-stdin"], "smt_other\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot begin with \"smt_\""), "{err}");
    assert_eq!(carol.get(&e.s.url("P/")).unwrap().status, 200, "unchanged");
}

/// Regression: on SQLite a new token took the id of the last one revoked,
/// so the history's "token 12" named two tokens, and a revoke form left
/// open could end the newer one. Ids are never given twice: not after a
/// revoke, not in a copy (which keeps the ids its history names), not
/// after a load into a store with tokens of its own, and not by two
/// processes at once.
#[test]
fn a_token_id_is_never_given_twice_and_a_copy_keeps_them() {
    let e = env();
    let ids = |db: &TestDb| -> Vec<i64> {
        let list: Vec<Value> =
            serde_json::from_str(&db.ok(&["token", "list", "--format", "json"])).unwrap();
        list.iter().map(|t| t["id"].as_i64().unwrap()).collect()
    };
    let one = e.token(&["--name", "one"]);
    e.token(&["--name", "two"]);
    e.token(&["--name", "three"]);
    let made = ids(&e.db);
    assert_eq!(made.len(), 3);
    // The highest revoked: the next is past it.
    e.db.ok(&["token", "revoke", &made[2].to_string()]);
    e.token(&["--name", "four"]);
    let now = ids(&e.db);
    assert_eq!(&now[..2], &made[..2]);
    assert!(now[2] > made[2], "{made:?} then {now:?}");
    // The two highest revoked, then a copy: the same ids, and the copy's
    // next token is past every id its history names.
    e.db.ok(&["token", "revoke", &now[2].to_string()]);
    e.db.ok(&["token", "revoke", &now[1].to_string()]);
    let file = e.db.dir.path().join("all.json");
    e.db.ok(&["export", "--with-users", "-o", file.to_str().unwrap()]);
    let copy = TestDb::uninitialised();
    copy.ok(&["init"]);
    copy.ok(&["loaddata", file.to_str().unwrap()]);
    assert_eq!(ids(&copy), [made[0]]);
    copy.ok(&[
        "token",
        "create",
        "alice",
        "--project",
        "P",
        "--name",
        "five",
    ]);
    let after = ids(&copy);
    assert!(after[1] > now[2], "{now:?} then {after:?}");
    let s = Server::start(&copy, &[]);
    let r = Client::new(Some(basic("alice", &one)))
        .get(&s.url("P/"))
        .unwrap();
    assert_eq!(r.status, 200, "the copied token works: {}", r.body);
    // Loaded into a store with a history of its own, a token takes a new
    // id, past everything that store's history names.
    let other = TestDb::new();
    other.useradd("bob", "bpw");
    other.ok(&["grant", "bob", "P", "--level", "write"]);
    other.ok(&["token", "create", "bob", "--project", "P"]);
    let theirs = other.dir.path().join("theirs.json");
    other.ok(&["export", "--with-users", "-o", theirs.to_str().unwrap()]);
    e.db.ok(&["loaddata", theirs.to_str().unwrap()]);
    let merged = ids(&e.db);
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert!(merged[1] > now[2], "{now:?} then {merged:?}");
    // Two processes making tokens at once: both succeed, with ids of
    // their own.
    let made: Vec<std::process::Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..6)
            .map(|i| {
                let db = &e.db;
                scope.spawn(move || {
                    let name = format!("c{i}");
                    db.run(&[
                        "token",
                        "create",
                        "alice",
                        "--project",
                        "P",
                        "--name",
                        &name,
                    ])
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for out in &made {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all = ids(&e.db);
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(all.len(), 8, "{all:?}");
    assert_eq!(unique, all, "ids given twice");
}

/// Regression: removing a user logged only `user.remove`, with no project:
/// a project's history (all its admins read) never said that the user's
/// access and tokens there ended.
#[test]
fn a_removed_user_leaves_an_entry_in_each_project_history() {
    let e = env();
    let made = e.token(&["--name", "laptop"]);
    assert!(made.starts_with("smt_"));
    let list: Vec<Value> =
        serde_json::from_str(&e.db.ok(&["token", "list", "alice", "--format", "json"])).unwrap();
    let id = list[0]["id"].as_i64().unwrap();
    e.db.useradd("root2", "rpw");
    e.db.ok(&["grant", "root2", "P", "--level", "admin"]);
    e.db.ok(&["grant", "root2", "Q", "--level", "admin"]);
    e.db.ok(&["userdel", "alice"]);
    let history = |p: &str| -> Vec<Value> {
        serde_json::from_str(&e.db.ok(&["history", p, "--format", "json"])).unwrap()
    };
    let on_p: Vec<Value> = history("P")
        .into_iter()
        .filter(|x| x["action"] == "access.revoke" && x["target"] == "alice")
        .collect();
    assert_eq!(on_p.len(), 1, "{on_p:?}");
    assert_eq!(on_p[0]["detail"]["tokens_ended"], json!([id]));
    assert_eq!(on_p[0]["detail"]["user_removed"], json!(true));
    let on_q: Vec<Value> = history("Q")
        .into_iter()
        .filter(|x| x["action"] == "access.revoke" && x["target"] == "alice")
        .collect();
    assert_eq!(on_q.len(), 1, "{on_q:?}");
    assert!(on_q[0]["detail"].get("tokens_ended").is_none());
}
