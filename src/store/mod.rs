//! The store: the only module that speaks SQL, on SQLite (the embedded
//! default) or PostgreSQL (SPEC 8).
//!
//! One `Store` is one connection (on PostgreSQL, taken from the process's
//! pool when needed). The server keeps one per worker thread; each command
//! opens its own. Writes go through [`Store::write`]: one transaction,
//! either everything in it is stored, or nothing. On SQLite writers are
//! serialised inside the process (`BEGIN IMMEDIATE`); on PostgreSQL, where
//! several processes write at once, a write locks the rows it reads to
//! change (`Tx::for_update`).
//!
//! Every operation ([`Tx`]'s methods, in the files below) is written once
//! against the [`sql::Sql`] interface, which each engine implements
//! (`sql.rs` for SQLite, `pg.rs` for PostgreSQL); where the dialects
//! differ, the query says it both ways, side by side.

mod dump;
mod files;
mod group;
mod history;
mod index;
mod pg;
mod projects;
mod records;
mod schema;
mod search;
pub(crate) mod sql;
mod tokens;
mod trash;
mod users;

pub use dump::{KeptEntry, KeptProject, KeptRecord, UserRecord};
pub use files::{normalise_digest, Readable, MAX_FILES_PER_RECORD};
pub use history::Actor;
pub use index::read_params;
pub use projects::{Access, Project, ProjectSummary};
pub use records::{parse_params, with_project_id, Indexed, PutOutcome, Selected, Selection};
pub use tokens::{tokens_ended, NewToken, TokenRow};
pub use trash::Restore;
pub use users::{check_username, UserAuth};

use crate::error::{Error, Result};
use pg::PgConn;
use rusqlite::{Connection, OpenFlags};
use sql::{Arg, Dialect, Row, Sql};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

/// What the connections of one database file share inside this process:
/// one writer at a time (other processes wait on SQLite's busy timeout),
/// and the group-commit queue. Another database has its own.
pub struct Shared {
    write_lock: Mutex<()>,
    queue: Mutex<group::Queue>,
}

/// The shared state of the database at `path` (by its canonical path).
fn shared_for(path: &Path) -> Arc<Shared> {
    static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
        return shared;
    }
    registry.retain(|_, w| w.strong_count() > 0);
    let shared = Arc::new(Shared {
        write_lock: Mutex::new(()),
        queue: Mutex::new(group::Queue::default()),
    });
    registry.insert(key, Arc::downgrade(&shared));
    shared
}

/// Access levels, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Read,
    Write,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Result<Level> {
        match s {
            "read" => Ok(Level::Read),
            "write" => Ok(Level::Write),
            "admin" => Ok(Level::Admin),
            other => Err(Error::bad(format!(
                "{other:?} is not an access level (read, write or admin)"
            ))),
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The user whose permissions make a project public.
pub const ANONYMOUS: &str = "anonymous";

/// How a database file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file if it is missing, and bring an older schema up to
    /// date (`init`, `serve --demo`).
    Create,
    /// The database must exist, at this binary's schema: an older one is
    /// refused with what to do (SPEC 11.5: only `init` migrates).
    Existing,
    /// The database must exist, at this schema or an older one, and is
    /// left as it is (`backup`, and `init` looking before it migrates).
    AsIs,
}

/// One check of the database (SPEC 11.2): it opens, its schema is this
/// binary's, and it answers a question; a connection a restart broke is
/// tried again once, as a read is. The reason of a failure never names the
/// database (`P.health` needs no login): its location reads "the database".
pub fn check(db: &Location) -> std::result::Result<(), String> {
    let once = || -> Result<()> {
        let mut s = Store::open(db, OpenMode::AsIs)?;
        let version = s.schema_version()?;
        if version != SCHEMA_VERSION {
            return Err(Error::Database(format!(
                "schema version {version}, not {SCHEMA_VERSION}"
            )));
        }
        s.read().int("SELECT 1", &[])?;
        s.release();
        Ok(())
    };
    let answer = match once() {
        Err(e) if is_connection_lost(&e) => once(),
        answer => answer,
    };
    answer.map_err(|e| {
        let at = db.to_string();
        e.to_string()
            .replace(&format!("database {at}"), "the database")
            .replace(&at, "the database")
    })
}

/// [`check`] on a thread of its own, waited for `within` at most: how
/// long the database took, or why it failed.
pub fn health(
    db: &Location,
    within: std::time::Duration,
) -> std::result::Result<std::time::Duration, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let db = db.clone();
    let start = std::time::Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(check(&db));
    });
    match rx.recv_timeout(within) {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {} ms", within.as_millis())),
    }
}

/// The PostgreSQL pool of this process for `db`: (connections open, idle);
/// nothing for SQLite.
pub fn pool_state(db: &Location) -> Option<(u32, u32)> {
    match db {
        Location::File(_) => None,
        Location::Postgres(url) => {
            let state = pg::pool_for(url).ok()?.state();
            Some((state.connections, state.idle_connections))
        }
    }
}

/// Whether an error is a lost database connection (a read may be tried
/// again at once, on another connection: SPEC 11.4).
pub fn is_connection_lost(e: &Error) -> bool {
    // Opening a store names the database first (`database URL: ...`).
    matches!(e, Error::Unavailable(m) if m.starts_with(pg::LOST) || m.contains(&format!(": {}", pg::LOST)))
}

/// Refuses a write to a database that a newer `init` migrated while this
/// process had it open (SPEC 11.5: an old binary never writes to it).
pub(crate) fn still_current(version: i64) -> Result<()> {
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    Err(Error::Unavailable(format!(
        "the database is now at schema version {version} (this sumatra-server uses \
         {SCHEMA_VERSION}): it was migrated while this process ran; restart it with the \
         sumatra-server that migrated it"
    )))
}

/// [`still_current`] of an SQLite file, in the write transaction `conn` is in.
pub(crate) fn lite_still_current(conn: &Connection) -> Result<()> {
    still_current(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// The schema version this binary reads and writes.
pub const SCHEMA_VERSION: i64 = schema::CURRENT;

/// The refusal of a database a newer sumatra-server has migrated.
fn newer_schema(shown: &str, version: i64) -> Error {
    // Unavailable: a server answers 503 (this process cannot serve it).
    Error::Unavailable(format!(
        "database {shown} has schema version {version}, newer than this sumatra-server supports \
         ({SCHEMA_VERSION}); use a newer sumatra-server"
    ))
}

/// The refusal of a database at an older schema (every command but `init`).
fn older_schema(shown: &str, version: i64, pg: bool) -> Error {
    let backup = match pg {
        true => "back it up with pg_dump".to_string(),
        false => format!("back it up (`sumatra-server --db {shown} backup FILE`)"),
    };
    // A PostgreSQL URL as shown has no password: the command to run names
    // the database the way this one was given it.
    let init = match pg {
        true => {
            "`sumatra-server init --yes` with the same --db, SUMATRA_DB or --db-file".to_string()
        }
        false => format!("`sumatra-server --db {shown} init`"),
    };
    Error::Database(format!(
        "database {shown} has schema version {version}, older than this sumatra-server's \
         ({SCHEMA_VERSION}); {backup}, then migrate it with {init} (only init changes the schema)"
    ))
}

/// Write durability (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every acknowledged commit is on disk (the default).
    #[default]
    Full,
    /// Faster; a power cut may lose the last commits (never corrupts).
    Normal,
}

/// Where the database is: an SQLite file, or a PostgreSQL URL (SPEC 8).
/// Shown (`Display`, `Debug`) without a URL's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Postgres(String),
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Location, Self::Err> {
        Ok(
            if s.starts_with("postgres://") || s.starts_with("postgresql://") {
                Location::Postgres(s.to_string())
            } else {
                Location::File(PathBuf::from(s))
            },
        )
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => f.debug_tuple("File").field(p).finish(),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(&pg::shown(url)).finish(),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::File(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::File(p.clone())
    }
}

impl std::fmt::Display for Location {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&pg::shown(url)),
        }
    }
}

impl Location {
    /// The SQLite file, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

/// Connections a process keeps to PostgreSQL at most (`serve`: its handler
/// threads and a few more); SQLite has one per store.
pub fn set_pool_size(n: usize) {
    pg::set_pool_size(n.min(u32::MAX as usize) as u32);
}

/// The longest a statement may run on PostgreSQL (`serve --query-timeout`);
/// on SQLite each request's budget is checked as statements run.
pub fn set_statement_timeout(limit: Duration) {
    pg::set_statement_timeout(limit);
}

pub struct Store {
    engine: Engine,
    /// The schema version this open migrated from, if it migrated.
    pub migrated_from: Option<i64>,
}

// A store is made once per thread or command: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Lite(LiteDb),
    Pg(PgDb),
}

struct LiteDb {
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
}

struct PgDb {
    pool: Arc<pg::Pool>,
    /// Taken from the pool when first needed; [`Store::release`] gives it back.
    conn: std::cell::RefCell<Option<pg::Pooled>>,
}

impl PgDb {
    /// Runs `f` in a transaction on this store's connection: committed
    /// when `keep` and `f` succeeds, else rolled back.
    fn run<T>(
        &mut self,
        snapshot: bool,
        keep: bool,
        f: impl FnOnce(&Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        pg::on_slot(self.conn.get_mut(), &self.pool, |conn| {
            let tx = pg::InTx::begin(conn, snapshot)?;
            if keep && !snapshot {
                // Held until the commit: a migration by a newer `init` waits
                // for this write, and a write after it is refused (SPEC 11.5).
                let t = Tx(Link::Ref(&tx));
                still_current(t.int("SELECT version FROM sumatra_schema FOR SHARE", &[])?)?;
            }
            let out = f(&Tx(Link::Ref(&tx)));
            match out {
                Ok(v) if keep => tx.commit().map(|()| v),
                Ok(v) => tx.rollback().map(|()| v),
                // Dropping the transaction rolls it back.
                Err(e) => Err(e),
            }
        })
    }
}

impl Store {
    pub fn open(db: &Location, mode: OpenMode) -> Result<Store> {
        Self::open_with(db, mode, Durability::Full)
    }

    pub fn open_with(db: &Location, mode: OpenMode, durability: Durability) -> Result<Store> {
        Self::open_observed(db, mode, durability, None)
    }

    /// Opens, reporting the progress of a migration's back-fill (`init` on a
    /// terminal shows it as a bar).
    pub fn open_observed(
        db: &Location,
        mode: OpenMode,
        durability: Durability,
        progress: Option<schema::Progress<'_>>,
    ) -> Result<Store> {
        match db {
            Location::File(path) => Self::open_file(path, mode, durability, progress),
            Location::Postgres(url) => Self::open_pg(url, mode, progress),
        }
    }

    fn open_pg(url: &str, mode: OpenMode, progress: Option<schema::Progress<'_>>) -> Result<Store> {
        let shown = pg::shown(url);
        // An outage stays one (503 to a client, "try again"); a refusal
        // or a broken schema is the sysadmin's to mend.
        let context = |e: Error| match e {
            Error::Unavailable(m) => Error::Unavailable(format!("database {shown}: {m}")),
            Error::Database(m) => Error::Database(format!("database {shown}: {m}")),
            other => other,
        };
        let pool = pg::pool_for(url)?;
        let mut conn = pg::get(&pool).map_err(context)?;
        let version = conn.version().map_err(context)?;
        if mode == OpenMode::Existing && version == 0 {
            return Err(Error::Database(format!(
                "database {shown} has no sumatra-server tables yet; create them with \
                 `sumatra-server --db '{shown}' init`"
            )));
        }
        if version > pg::CURRENT {
            return Err(newer_schema(&shown, version));
        }
        if mode == OpenMode::Existing && version < pg::CURRENT {
            return Err(older_schema(&shown, version, true));
        }
        let mut migrated_from = None;
        if version != pg::CURRENT && mode == OpenMode::Create {
            let tx = pg::InTx::begin(&mut conn, false).map_err(context)?;
            let from = tx.raw(pg::migrate).map_err(context)?;
            if from < pg::CURRENT {
                let t = Tx(Link::Ref(&tx));
                let mut progress = progress;
                let mut report = |done: u64, total: u64| {
                    if let Some(p) = progress.as_mut() {
                        p(done, total)
                    }
                };
                index::backfill(&t, Some(&mut report)).map_err(context)?;
                if from < 5 {
                    files::backfill(&t, Some(&mut report)).map_err(context)?;
                }
                migrated_from = Some(from);
            }
            tx.commit().map_err(context)?;
        }
        let mut store = Store {
            engine: Engine::Pg(PgDb {
                pool,
                conn: std::cell::RefCell::new(Some(conn)),
            }),
            migrated_from,
        };
        if migrated_from.is_some_and(|v| v > 0) {
            // The migration is committed: statistics left stale (autovacuum
            // gets there later) are no reason to refuse the database.
            let _ = store.settle();
        }
        Ok(store)
    }

    fn open_file(
        path: &Path,
        mode: OpenMode,
        durability: Durability,
        progress: Option<schema::Progress<'_>>,
    ) -> Result<Store> {
        let shown = path.display();
        if mode != OpenMode::Create && !path.exists() {
            return Err(Error::Database(format!(
                "database {shown} does not exist; create it with `sumatra-server --db {shown} init`"
            )));
        }
        if mode == OpenMode::Create && !path.exists() {
            // The file holds password hashes: owner only. SQLite gives the
            // -wal and -shm files the mode of the database file.
            crate::files::create_new_private(path)
                .map_err(|e| Error::Database(format!("cannot create database {shown}: {e}")))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| Error::Database(format!("cannot open database {shown}: {e}")))?;
        let mut db = LiteDb {
            conn,
            path: path.to_path_buf(),
            shared: shared_for(path),
        };
        db.configure(durability).map_err(|e| db.context(e))?;
        let version = schema::check(&db.conn).map_err(|e| db.context(e))?;
        let shown = shown.to_string();
        let migrated_from = match mode {
            OpenMode::Create => {
                schema::migrate(&mut db.conn, progress).map_err(|e| db.context(e))?
            }
            OpenMode::Existing if version == 0 => {
                return Err(Error::Database(format!(
                    "database {shown} has no sumatra-server tables yet; create them with \
                     `sumatra-server --db {shown} init`"
                )))
            }
            OpenMode::Existing if version < schema::CURRENT => {
                return Err(older_schema(&shown, version, false))
            }
            OpenMode::Existing | OpenMode::AsIs => None,
        };
        Ok(Store {
            engine: Engine::Lite(db),
            migrated_from,
        })
    }

    /// The state shared by an SQLite file's connections (tests of the group
    /// commit reach into its queue).
    #[cfg(test)]
    fn shared(&self) -> &Arc<Shared> {
        match &self.engine {
            Engine::Lite(l) => &l.shared,
            Engine::Pg(_) => panic!("not an SQLite store"),
        }
    }

    /// Gives a PostgreSQL connection back to the pool (a server thread
    /// between requests); the next statement takes one again.
    pub fn release(&mut self) {
        if let Engine::Pg(p) = &mut self.engine {
            p.conn.get_mut().take();
        }
    }

    /// Makes this store's connection one for a stream (a download that runs
    /// as long as its client reads, SPEC 9.5): on PostgreSQL its statements
    /// run without `statement_timeout` (the request's budget stops them
    /// when the stream stalls) and the connection is not pooled again.
    pub fn for_stream(&mut self) -> Result<()> {
        if let Engine::Pg(p) = &mut self.engine {
            pg::on_slot(p.conn.get_mut(), &p.pool, |c| c.unbounded())?;
        }
        Ok(())
    }

    /// Indexes the records of `project` whose parameters or dependencies
    /// changed since they were last read (SPEC 7.1), before a search reads
    /// the index: writes do not wait for it, searches see every write.
    pub fn ensure_indexed(&mut self, project: &str) -> Result<()> {
        if self.read().has_pending_index(project)? {
            // Indexing must finish once started: under a request's
            // deadline a large backlog would be rolled back every time.
            crate::deadline::unbounded(|| self.write(|tx| tx.index_pending(Some(project))))?;
        }
        Ok(())
    }

    /// After many records were written at once (`loaddata`, a migration's
    /// back-fill): on PostgreSQL, `VACUUM (ANALYZE)` of the record tables,
    /// so that the next queries are planned for the rows now there (not for
    /// the empty tables of before) and can read indexes alone; autovacuum
    /// would get there only later. SQLite plans without statistics.
    pub fn settle(&mut self) -> Result<()> {
        match &mut self.engine {
            Engine::Lite(_) => Ok(()),
            Engine::Pg(p) => pg::on_slot(p.conn.get_mut(), &p.pool, |c| {
                c.batch("VACUUM (ANALYZE) records, record_tags, record_params, record_deps, record_files")
            }),
        }
    }

    /// A large page cache for this connection, for writing many records
    /// (`loaddata`): their index entries go in faster.
    pub fn for_bulk_writes(&self) -> Result<()> {
        self.read().sql().bulk(true)
    }

    pub fn schema_version(&mut self) -> Result<i64> {
        match &mut self.engine {
            Engine::Lite(l) => Ok(l.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?),
            Engine::Pg(p) => pg::on_slot(p.conn.get_mut(), &p.pool, PgConn::version),
        }
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &mut self.engine {
            Engine::Lite(l) => l.transaction(true, f),
            Engine::Pg(p) => p.run(false, true, f),
        }
    }

    /// Read access outside a transaction (each query sees a consistent snapshot).
    pub fn read(&self) -> Tx<'_> {
        match &self.engine {
            Engine::Lite(l) => Tx(Link::Lite(sql::Lite(&l.conn))),
            Engine::Pg(p) => Tx(Link::Auto(pg::Auto {
                pool: &p.pool,
                conn: &p.conn,
            })),
        }
    }

    /// A consistent copy of the live database (SQLite online backup); a
    /// PostgreSQL database is backed up by its own tools.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let Engine::Lite(l) = &self.engine else {
            return Err(Error::bad(
                "a PostgreSQL database is backed up with PostgreSQL's own tools: \
                 `pg_dump --format=custom --file=sumatra.dump DBNAME` (restore with pg_restore), \
                 or continuous archiving for point-in-time recovery; \
                 `sumatra-server export --with-users` writes a portable copy of the records",
            ));
        };
        // Created here, owner only (it holds password hashes), and never
        // over an existing file.
        crate::files::create_new_private(dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::bad(format!(
                "{} exists already; choose a new file",
                dest.display()
            )),
            _ => Error::bad(format!("cannot create {}: {e}", dest.display())),
        })?;
        l.conn
            .backup(
                rusqlite::MAIN_DB,
                dest,
                None::<fn(rusqlite::backup::Progress)>,
            )
            .map_err(|e| {
                let _ = std::fs::remove_file(dest);
                Error::Database(format!("backup to {}: {e}", dest.display()))
            })
    }
}

impl LiteDb {
    fn configure(&mut self, durability: Durability) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(30))?;
        // Reading the schema first makes a file that is not a database fail here.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Database(format!(
                "could not switch to WAL mode (got {mode})"
            )));
        }
        self.conn.pragma_update(None, "foreign_keys", true)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        self.conn.pragma_update(None, "synchronous", sync)?;
        self.conn.set_prepared_statement_cache_capacity(64);
        // One plan per statement whatever its values (SQLite's query
        // planner stability guarantee): with the bundled SQLite 3.54 a
        // statement with a join or a LIMIT was otherwise planned again each
        // time its values were bound, which cost a third of the
        // authenticated GETs at 16 connections (measured: 17 000 against
        // 27 000 req/s with SQLite 3.46); the plans are those of before.
        self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        search::register_functions(&self.conn)?;
        // Every statement stops when its request's budget says so (SPEC
        // 7.6): past the deadline, its client gone, or the server stopping.
        self.conn
            .progress_handler(100, Some(|| crate::deadline::check().is_some()))?;
        Ok(())
    }

    /// Adds the database path to low-level errors, so a sysadmin sees which file.
    fn context(&self, e: Error) -> Error {
        match e {
            Error::Sqlite(e) => Error::Database(format!("database {}: {e}", self.path.display())),
            other => other,
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (one writer at a time
    /// in this process), committed when `keep` and `f` succeeds.
    fn transaction<T>(&mut self, keep: bool, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let _guard = self
            .shared
            .write_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::Database(format!("database {}: {e}", self.path.display())))?;
        if keep {
            lite_still_current(&tx)?;
        }
        let out = f(&Tx(Link::Lite(sql::Lite(&tx))));
        match out {
            Ok(v) if keep => {
                tx.commit()?;
                Ok(v)
            }
            Ok(v) => {
                tx.rollback()?;
                Ok(v)
            }
            Err(e) => Err(e),
        }
    }
}

/// What a [`Tx`] runs its statements on.
enum Link<'a> {
    Lite(sql::Lite<'a>),
    Auto(pg::Auto<'a>),
    Ref(&'a dyn Sql),
}

/// A view of the database for queries and (inside [`Store::write`]) changes:
/// every operation of the store, written once for both engines.
pub struct Tx<'a>(Link<'a>);

impl<'a> Tx<'a> {
    pub(super) fn on(sql: &'a dyn Sql) -> Tx<'a> {
        Tx(Link::Ref(sql))
    }

    fn sql(&self) -> &dyn Sql {
        match &self.0 {
            Link::Lite(l) => l,
            Link::Auto(a) => a,
            Link::Ref(r) => *r,
        }
    }

    fn dialect(&self) -> Dialect {
        self.sql().dialect()
    }

    fn pg(&self) -> bool {
        self.dialect() == Dialect::Postgres
    }

    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        self.sql().exec(sql, args)
    }

    /// Calls `f` with each row, as it arrives.
    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        self.sql().each(sql, args, &mut f)
    }

    /// The first row, read by `f`.
    fn one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&dyn Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.sql().each(sql, args, &mut |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row, each read by `f`.
    fn all<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&dyn Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.sql().each(sql, args, &mut |row| {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The integer in the first column of the one row of `sql`.
    fn int(&self, sql: &str, args: &[Arg<'_>]) -> Result<i64> {
        self.one(sql, args, |r| r.int(0))?
            .ok_or_else(|| Error::Database("a count returned no row".into()))
    }

    /// `FOR UPDATE` where rows are locked (PostgreSQL, several processes
    /// writing); SQLite has one writer at a time, and no such clause.
    fn for_update(&self) -> &'static str {
        if self.pg() {
            " FOR UPDATE"
        } else {
            ""
        }
    }

    #[cfg(test)]
    fn conn(&self) -> &Connection {
        match &self.0 {
            Link::Lite(l) => l.0,
            _ => panic!("not an SQLite connection"),
        }
    }
}
