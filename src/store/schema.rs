//! Schema and numbered migrations, tracked in `PRAGMA user_version`.

use crate::error::{Error, Result};
use rusqlite::Connection;

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first release.
    r#"
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    username   TEXT NOT NULL UNIQUE,
    password   TEXT NOT NULL,          -- bcrypt or Django pbkdf2_sha256; '' never logs in
    email      TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL
);
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created     TEXT NOT NULL
);
CREATE TABLE permissions (
    id         INTEGER PRIMARY KEY,    -- grant order, the order of `access`
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE ON UPDATE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    level      TEXT NOT NULL CHECK (level IN ('read', 'write', 'admin')),
    UNIQUE (project_id, user_id)
);
CREATE INDEX permissions_by_user ON permissions(user_id);
CREATE TABLE records (
    id         INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE ON UPDATE CASCADE,
    label      TEXT NOT NULL,
    timestamp  TEXT NOT NULL,          -- UTC, 'YYYY-MM-DD HH:MM:SS'
    body       TEXT NOT NULL,          -- the record's JSON (SPEC 2.3), without project_id
    UNIQUE (project_id, label)
);
CREATE INDEX records_newest_first ON records(project_id, timestamp DESC, label DESC);
CREATE TABLE record_tags (
    project_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    record_id  INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, tag, record_id)
) WITHOUT ROWID;
CREATE INDEX record_tags_by_record ON record_tags(record_id);
INSERT INTO users (username, password, created) VALUES ('anonymous', '', datetime('now'));
"#,
    // 2: parameters and dependency versions as data (SPEC 7.1), for queries;
    // records written before are read into them by `index::backfill`.
    r#"
ALTER TABLE records ADD COLUMN params_state INTEGER NOT NULL DEFAULT 0; -- 0 not read yet, 1 read, 2 unreadable
CREATE TABLE record_params (
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,          -- flattened: model.layers
    kind      INTEGER NOT NULL,       -- 0 number, 1 text, 2 bool, 3 none, 4 list
    num       REAL,                   -- numbers only
    text      TEXT NOT NULL,          -- the value as shown (numbers too)
    PRIMARY KEY (record_id, key)
) WITHOUT ROWID;
CREATE INDEX record_params_by_number ON record_params(key, num);
CREATE INDEX record_params_by_text ON record_params(key, text);
CREATE TABLE record_deps (
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    PRIMARY KEY (record_id, name)
) WITHOUT ROWID;
CREATE INDEX record_deps_by_name ON record_deps(name, version);
CREATE INDEX records_to_index ON records(project_id) WHERE params_state = 0;
"#,
    // 3: the records waiting to be indexed, in id order within a project,
    // so that indexing walks them a batch at a time from where it stopped
    // (`index::index_pending`) instead of from the start each time.
    r#"
DROP INDEX records_to_index;
CREATE INDEX records_to_index ON records(project_id, id) WHERE params_state = 0;
"#,
    // 4: parameters and dependencies carry their record's project, first in
    // their indexes: a search of one project never reads another's entries
    // (SPEC 7.6: no timing tells what other projects hold).
    r#"
CREATE TABLE record_params_4 (
    project_id TEXT NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    kind      INTEGER NOT NULL,
    num       REAL,
    text      TEXT NOT NULL,
    PRIMARY KEY (record_id, key)
) WITHOUT ROWID;
INSERT INTO record_params_4 (project_id, record_id, key, kind, num, text)
    SELECT r.project_id, p.record_id, p.key, p.kind, p.num, p.text
    FROM record_params p JOIN records r ON r.id = p.record_id;
DROP TABLE record_params;
ALTER TABLE record_params_4 RENAME TO record_params;
CREATE INDEX record_params_by_number ON record_params(project_id, key, num);
CREATE INDEX record_params_by_text ON record_params(project_id, key, text);
CREATE TABLE record_deps_4 (
    project_id TEXT NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    PRIMARY KEY (record_id, name)
) WITHOUT ROWID;
INSERT INTO record_deps_4 (project_id, record_id, name, version)
    SELECT r.project_id, d.record_id, d.name, d.version
    FROM record_deps d JOIN records r ON r.id = d.record_id;
DROP TABLE record_deps;
ALTER TABLE record_deps_4 RENAME TO record_deps;
CREATE INDEX record_deps_by_name ON record_deps(project_id, name, version);
"#,
    // 5: files as data (SPEC 9.1): each input and output entry of a
    // record, for lineage; records written before are read into it by
    // `files::backfill`.
    r#"
CREATE TABLE record_files (
    project_id TEXT NOT NULL,
    record_id  INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    role       INTEGER NOT NULL,      -- 0 input, 1 output
    n          INTEGER NOT NULL,      -- place in the record's list
    path       TEXT NOT NULL,
    digest     TEXT NOT NULL,         -- lowercase hex (as given when not a SHA-1)
    linkable   INTEGER NOT NULL,      -- 1: a SHA-1 that links (not 0*40, not the empty file)
    size       INTEGER,
    mimetype   TEXT,
    creation   TEXT,
    PRIMARY KEY (record_id, role, n)
) WITHOUT ROWID;
CREATE INDEX record_files_by_digest ON record_files(digest, role, project_id);
CREATE INDEX record_files_by_project ON record_files(project_id, role);
"#,
    // 6: a project's files newest first, and a file's records a page at a
    // time, read in index order (SPEC 9.3, 9.5: the file every record reads
    // is paged, never sorted whole).
    r#"
DROP INDEX record_files_by_digest;
CREATE INDEX record_files_by_digest ON record_files(digest, role, project_id, record_id, n);
DROP INDEX record_files_by_project;
CREATE INDEX record_files_by_project ON record_files(project_id, role, record_id, n);
"#, // 7: the trash and the history (SPEC 10.2, 10.3): deleted records
    // kept as stored until purged; every change appended with who, when,
    // from where and what.
    r#"
CREATE TABLE trash (
    id         INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    label      TEXT NOT NULL,
    timestamp  TEXT NOT NULL,          -- the record's, UTC
    body       TEXT NOT NULL,          -- the record as it was stored, byte for byte
    deleted_at TEXT NOT NULL,          -- UTC, 'YYYY-MM-DD HH:MM:SS'
    deleted_by TEXT NOT NULL,
    how        TEXT NOT NULL           -- 'record', 'tag T', 'project'
);
CREATE INDEX trash_by_project ON trash(project_id, deleted_at);
CREATE INDEX trash_by_time ON trash(deleted_at);
CREATE TABLE trashed_projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    access      TEXT NOT NULL,         -- [{"user", "level"}, ...] as it was
    created     TEXT NOT NULL,         -- when the project was made: its history starts there
    deleted_at  TEXT NOT NULL,
    deleted_by  TEXT NOT NULL
);
CREATE TABLE history (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,          -- UTC, 'YYYY-MM-DD HH:MM:SS'
    actor      TEXT NOT NULL,          -- a user, a token, or 'shell (system user)'
    address    TEXT,                   -- the client's address over HTTP
    project_id TEXT,                   -- none for users' changes
    action     TEXT NOT NULL,          -- record.create, record.update, ...
    target     TEXT NOT NULL,          -- a label, a user name, a project
    detail     TEXT NOT NULL           -- JSON: what changed
);
CREATE INDEX history_by_project ON history(project_id, id);
"#, // 8: tokens (SPEC 11.1): a user's scoped stand-ins for the password,
    // kept as SHA-256 digests only.
    r#"
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE ON UPDATE CASCADE,
    level        TEXT NOT NULL CHECK (level IN ('read', 'write')),
    name         TEXT NOT NULL,
    digest       TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the token
    created      TEXT NOT NULL,
    expires      TEXT,                  -- UTC; none: never
    last_used    TEXT,
    last_address TEXT
);
CREATE INDEX tokens_by_user ON tokens(user_id);
"#,
];

pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Called as a migration back-fills: (records done, records in all).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Brings the schema up to date; returns the version it was at when it
/// was older (nothing when it was current already).
pub fn migrate(conn: &mut Connection, mut progress: Option<Progress<'_>>) -> Result<Option<i64>> {
    let version = check(conn)?;
    if version == CURRENT {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the lock.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    // Records from before version 2 get their parameters read, in the same
    // transaction: a migrated database answers queries about all of them.
    let lite = super::sql::Lite(&tx);
    let t = super::Tx::on(&lite);
    let mut report = |done: u64, total: u64| {
        if let Some(p) = progress.as_mut() {
            p(done, total)
        }
    };
    super::index::backfill(&t, Some(&mut report))?;
    // Records from before version 5 get their files indexed (SPEC 9.1).
    if version < 5 {
        super::files::backfill(&t, Some(&mut report))?;
    }
    tx.commit()?;
    Ok(Some(version))
}

/// The file's schema version, refused when newer than this binary's or
/// when the file holds tables of something else.
pub fn check(conn: &Connection) -> Result<i64> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT {
        // Unavailable: a server answers 503 (this process cannot serve it).
        return Err(Error::Unavailable(format!(
            "the database has schema version {version}, newer than this sumatra-server supports ({CURRENT}); \
             use a newer sumatra-server"
        )));
    }
    if version == 0 {
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(Error::Database(
                "this SQLite file holds tables but is not a sumatra-server database".into(),
            ));
        }
    }
    Ok(version)
}
