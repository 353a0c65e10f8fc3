//! The admin command line (issue 2): every command and its errors, with the
//! database checked after each.

use crate::util::*;

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql)[0][0].parse().unwrap()
}

sqlite_only! {
    #[test]
    fn init_is_idempotent_and_sets_up_the_schema() {
        let db = TestDb::uninitialised();
        let err = db.fails(&["users"]);
        assert!(
            err.contains("does not exist") && err.contains("init"),
            "{err}"
        );
        assert!(
            !db.path.exists(),
            "a failed command must not create the database"
        );
        db.ok(&["init"]);
        db.ok(&["init"]);
        assert_eq!(db.query("PRAGMA user_version")[0][0], "8");
        assert_eq!(db.query("PRAGMA journal_mode")[0][0], "wal");
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM users WHERE username = 'anonymous'"
            ),
            1
        );
    }
}

#[test]
fn quick_start_from_the_issue_works_from_any_directory() {
    let db = TestDb::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut c = db.command(&["useradd", "alice", "--password-stdin"]);
    c.current_dir(elsewhere.path());
    let out = {
        use std::io::Write;
        let mut child = c
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(out.status.success());
    db.ok(&["grant", "alice", "Proj"]);
    let table = db.ok(&["projects"]);
    assert!(
        table.contains("Proj") && table.contains("alice (write)"),
        "{table}"
    );
}

#[test]
fn useradd_hashes_with_bcrypt_and_rejects_bad_input() {
    let db = TestDb::new();
    db.useradd("alice", "s3cret");
    let hash = &db.query("SELECT password FROM users WHERE username = 'alice'")[0][0];
    assert!(hash.starts_with("$2"), "bcrypt hash expected, got {hash}");
    assert!(!hash.contains("s3cret"));

    let before = count(&db, "SELECT count(*) FROM users");
    let dup = fails(
        db.run_with_stdin(&["useradd", "alice", "--password-stdin"], "x\n"),
        &["dup"],
    );
    assert!(dup.contains("exists"), "{dup}");
    let empty = fails(
        db.run_with_stdin(&["useradd", "bob", "--password-stdin"], "\n"),
        &["empty"],
    );
    assert!(empty.contains("empty"), "{empty}");
    let bad = fails(
        db.run_with_stdin(&["useradd", "bad name", "--password-stdin"], "x\n"),
        &["bad name"],
    );
    assert!(bad.contains("not a valid user name"), "{bad}");
    let anon = fails(
        db.run_with_stdin(&["useradd", "anonymous", "--password-stdin"], "x\n"),
        &["anon"],
    );
    assert!(anon.contains("reserved"), "{anon}");
    // Without a terminal and without --password-stdin there is nobody to ask.
    let notty = db.fails(&["useradd", "carol"]);
    assert!(notty.contains("--password-stdin"), "{notty}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM users"),
        before,
        "nothing may change"
    );
}

#[test]
fn no_command_takes_a_password_argument() {
    let db = TestDb::new();
    // alice exists (passwd has someone to change), bob does not (useradd
    // has someone to add): the password argument is the only thing wrong.
    db.useradd("alice", "old-pw");
    let users_before = db.query("SELECT username, password FROM users ORDER BY username");
    for args in [
        &["useradd", "bob", "pw"][..],
        &["passwd", "alice", "pw"][..],
    ] {
        let err = db.fails(args);
        assert!(
            err.contains("error: unexpected argument 'pw' found"),
            "{args:?} must refuse the password argument: {err}"
        );
    }
    assert_eq!(
        db.query("SELECT username, password FROM users ORDER BY username"),
        users_before,
        "nothing may change"
    );
}

#[test]
fn passwd_changes_the_hash_and_userdel_keeps_records() {
    let db = TestDb::new();
    db.useradd("alice", "one");
    let old = db.query("SELECT password FROM users WHERE username = 'alice'")[0][0].clone();
    let out = db.run_with_stdin(&["passwd", "alice", "--password-stdin"], "two\n");
    assert!(out.status.success());
    let new = db.query("SELECT password FROM users WHERE username = 'alice'")[0][0].clone();
    assert_ne!(old, new);
    let missing = fails(
        db.run_with_stdin(&["passwd", "nobody", "--password-stdin"], "x\n"),
        &["passwd nobody"],
    );
    assert!(missing.contains("no user"), "{missing}");

    db.ok(&["loaddata", "haggling", "permissions"]);
    db.ok(&["grant", "alice", "TestProject", "--level", "admin"]);
    let records = count(&db, "SELECT count(*) FROM records");
    db.ok(&["userdel", "alice"]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM users WHERE username = 'alice'"),
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM permissions p LEFT JOIN users u ON u.id = p.user_id WHERE u.id IS NULL"),
        0,
        "permissions of a removed user must go"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM records"),
        records,
        "records stay"
    );
    let again = db.fails(&["userdel", "alice"]);
    assert!(again.contains("no user"), "{again}");
    assert!(db.fails(&["userdel", "anonymous"]).contains("built in"));
}

/// The cells of each body row of a table the commands print (comfy-table's
/// UTF8_FULL_CONDENSED: `│` at the edges, `┆` between cells), trimmed; the
/// header row (the first) included.
fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter_map(|l| l.trim().strip_prefix('│')?.strip_suffix('│'))
        .map(|row| row.split('┆').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[test]
fn users_lists_everyone_with_their_projects() {
    let db = TestDb::new();
    db.useradd("alice", "pw");
    db.useradd("bob", "pw");
    db.ok(&["grant", "alice", "P1", "--level", "read"]);
    db.ok(&["grant", "alice", "P0", "--level", "admin"]);
    let created = |user: &str| {
        db.query(&format!(
            "SELECT created FROM users WHERE username = '{user}'"
        ))[0][0]
            .clone()
    };
    let table = db.ok(&["users"]);
    let row = |cells: [&str; 4]| cells.map(String::from).to_vec();
    assert_eq!(
        table_rows(&table),
        [
            row(["user", "can log in", "created", "projects"]),
            row(["alice", "yes", &created("alice"), "P0 (admin), P1 (read)"]),
            row(["anonymous", "no", &created("anonymous"), ""]),
            row(["bob", "yes", &created("bob"), ""]),
        ],
        "{table}"
    );
}

#[test]
fn grant_and_revoke() {
    let db = TestDb::new();
    db.useradd("alice", "pw");
    db.ok(&["grant", "alice", "P", "--level", "read"]);
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    assert_eq!(db.query("SELECT level FROM permissions")[0][0], "admin");
    assert_eq!(
        count(&db, "SELECT count(*) FROM permissions"),
        1,
        "a grant changes the level, no duplicate"
    );
    db.ok(&["grant", "anonymous", "P", "--level", "admin"]);
    assert_eq!(
        db.query("SELECT level FROM permissions p JOIN users u ON u.id = p.user_id WHERE u.username = 'anonymous'")[0][0],
        "read",
        "anonymous is read-only whatever is asked"
    );
    let table = db.ok(&["projects"]);
    assert!(table.contains("anonymous (read)"), "{table}");

    let before = db.query("SELECT * FROM permissions");
    assert!(db.fails(&["grant", "nobody", "P"]).contains("no user"));
    assert!(db
        .fails(&["grant", "alice", "bad/id"])
        .contains("not a valid project id"));
    assert!(db
        .fails(&["grant", "alice", "P", "--level", "owner"])
        .contains("owner"));
    assert!(db
        .fails(&["revoke", "alice", "Nope"])
        .contains("no project"));
    assert_eq!(db.query("SELECT * FROM permissions"), before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM projects WHERE id = 'bad/id'"),
        0
    );

    db.ok(&["revoke", "alice", "P"]);
    assert!(db.fails(&["revoke", "alice", "P"]).contains("no access"));
}

#[test]
fn projects_table_shows_counts_and_last_update() {
    let db = TestDb::new();
    db.ok(&["loaddata", "haggling", "permissions"]);
    let table = db.ok(&["projects"]);
    let line = table
        .lines()
        .find(|l| l.contains("TestProject "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("Test Project #1")
            && line.contains(" 4 ")
            && line.contains("2011-10-13 17:25:17"),
        "{line}"
    );
    assert!(line.contains("testuser (write)"), "{line}");
}

sqlite_only! {
    #[test]
    fn bad_database_files_give_one_clear_line() {
        let db = TestDb::uninitialised();
        std::fs::write(
            &db.path,
            b"this is not a database, just some text that is long enough",
        )
        .unwrap();
        let err = db.fails(&["users"]);
        assert!(err.contains("not a database"), "{err}");

        let db = TestDb::new();
        {
            let conn = rusqlite::Connection::open(&db.path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = db.fails(&["users"]);
        assert!(err.contains("newer"), "{err}");

        let db = TestDb::uninitialised();
        {
            let conn = rusqlite::Connection::open(&db.path).unwrap();
            conn.execute_batch("CREATE TABLE other (x)").unwrap();
        }
        assert!(db
            .fails(&["init"])
            .contains("not a sumatra-server database"));

        let dir = tempfile::tempdir().unwrap();
        let missing_dir = dir.path().join("no/such/dir/x.db");
        let out = std::process::Command::new(BIN)
            .arg("--db")
            .arg(&missing_dir)
            .arg("init")
            .output()
            .unwrap();
        let err = fails(out, &["init in a missing directory"]);
        assert!(
            err.contains("cannot create database") && err.contains("No such file or directory"),
            "{err}"
        );
    }
}

sqlite_only! {
    #[test]
    fn unusable_database_path_is_reported() {
        // A directory where the file should be: nothing can be opened or written.
        let dir = tempfile::tempdir().unwrap();
        for cmd in [&["init"][..], &["users"][..], &["projects"][..]] {
            let out = std::process::Command::new(BIN)
                .arg("--db")
                .arg(dir.path())
                .args(cmd)
                .output()
                .unwrap();
            let err = fails(out, cmd);
            assert!(
                err.contains(&dir.path().display().to_string()),
                "the error names the file: {err}"
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
    }
}

#[test]
fn sumatra_db_environment_variable() {
    let db = TestDb::new();
    let out = std::process::Command::new(BIN)
        .arg("projects")
        .env("SUMATRA_DB", &db.location)
        .current_dir(db.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for cmd in [
        "init", "useradd", "passwd", "userdel", "users", "grant", "revoke", "projects", "loaddata",
        "export", "backup", "serve",
    ] {
        let out = std::process::Command::new(BIN)
            .args([cmd, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            text.contains("Example"),
            "{cmd} --help has no example:\n{text}"
        );
    }
}

sqlite_only! {
    #[test]
    fn backup_makes_a_consistent_copy() {
        let db = TestDb::new();
        db.ok(&["loaddata", "haggling", "permissions"]);
        let copy = db.dir.path().join("copy.db");
        db.ok(&["backup", copy.to_str().unwrap()]);
        let conn = rusqlite::Connection::open(&copy).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 5);
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        assert!(db
            .fails(&["backup", copy.to_str().unwrap()])
            .contains("exists"));
    }
}

/// SPEC 11.5: a database at an older schema is migrated only by `init`;
/// every other command (and `serve`) refuses with what to do; `backup`
/// still copies it; `init` copies an SQLite file first, and waits for
/// `--yes` on PostgreSQL.
#[test]
fn only_init_migrates_and_only_after_a_copy_or_a_yes() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    // Schema version 6: before the trash and the history.
    for t in ["tokens", "trash", "trashed_projects", "history"] {
        db.query(&format!("DROP TABLE {t}"));
    }
    if db.is_pg() {
        db.query("UPDATE sumatra_schema SET version = 6");
    } else {
        db.query("PRAGMA user_version = 6");
    }
    for args in [
        &["users"][..],
        &["grant", "alice", "P"],
        &["serve", "--bind", "127.0.0.1:0"],
    ] {
        let err = db.fails(args);
        let backup = if db.is_pg() { "pg_dump" } else { "backup FILE" };
        assert!(
            err.contains("schema version 6, older than") && err.contains(backup),
            "{args:?}: {err}"
        );
        assert!(err.contains("init"), "{args:?}: {err}");
        // On PostgreSQL the command it names is one that works: with --yes.
        assert!(!db.is_pg() || err.contains("init --yes"), "{args:?}: {err}");
    }
    let version = || {
        if db.is_pg() {
            db.query("SELECT version FROM sumatra_schema")[0][0].clone()
        } else {
            db.query("PRAGMA user_version")[0][0].clone()
        }
    };
    assert_eq!(version(), "6", "a refused command changed nothing");
    if db.is_pg() {
        let err = db.fails(&["init"]);
        assert!(err.contains("pg_dump") && err.contains("--yes"), "{err}");
        assert_eq!(version(), "6");
        let out = db.run(&["init", "--yes"]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("migrated from schema version 6"), "{said}");
    } else {
        let copy = db.dir.path().join("before.db");
        db.ok(&["backup", copy.to_str().unwrap()]);
        assert!(copy.exists());
        let out = db.run(&["init"]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("migrated from schema version 6"), "{said}");
        let name = said
            .split_whitespace()
            .find(|w| w.contains(".schema6-"))
            .expect("the copy's name is said");
        let kept = rusqlite::Connection::open(name).unwrap();
        let v: i64 = kept
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 6, "the copy is the database as it was");
        let users: i64 = kept
            .query_row(
                "SELECT count(*) FROM users WHERE username = 'alice'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(users, 1);
    }
    assert_eq!(version(), "8");
    assert!(db.ok(&["users"]).contains("alice"));
}

/// Regression: `backup` of a database that does not exist (a typo in
/// `--db`, or no `--db` in a cron line) made an empty file there and
/// "backed it up", exiting 0.
#[test]
fn backup_of_a_missing_database_fails_and_creates_nothing() {
    let db = TestDb::on(Backend::Sqlite);
    let copy = db.dir.path().join("copy.db");
    let err = db.fails(&["backup", copy.to_str().unwrap()]);
    assert!(
        err.contains("does not exist") && err.contains("init"),
        "{err}"
    );
    assert!(!db.path.exists(), "the missing database was created");
    assert!(!copy.exists());
}

/// SPEC 11.5: a server still running when a newer sumatra-server migrates
/// its database writes nothing more (503 with why), and reads go on.
#[test]
fn a_running_server_writes_nothing_once_a_newer_init_migrated() {
    let db = TestDb::new();
    db.useradd("alice", "apw");
    db.ok(&["grant", "alice", "P", "--level", "admin"]);
    let s = Server::start(&db, &[]);
    let c = Client::new(Some(basic("alice", "apw")));
    assert_eq!(
        c.put_json(&s.url("P/r1/"), &full_record("r1", "", &[]))
            .unwrap()
            .status,
        201
    );
    // What a newer binary's init would leave: a higher version.
    if db.is_pg() {
        db.query("UPDATE sumatra_schema SET version = 99");
    } else {
        db.query("PRAGMA user_version = 99");
    }
    let r = c
        .put_json(&s.url("P/r2/"), &full_record("r2", "", &[]))
        .unwrap();
    assert_eq!(r.status, 503, "{}\n{}", r.body, s.log());
    // Refused by a connection opened before (migrated while it ran) or
    // after (newer than this binary): either way, the version it found.
    assert!(r.body.contains("schema version 99"), "{}", r.body);
    assert_eq!(c.delete(&s.url("P/r1/")).unwrap().status, 503);
    // Nothing was written, nothing deleted.
    assert_eq!(
        db.query("SELECT label FROM records ORDER BY label"),
        [["r1".to_string()]]
    );
    assert!(!s.log().contains(" 500 "), "{}", s.log());
}
