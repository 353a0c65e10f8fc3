//! The SQLite store: the only module that speaks SQL.
//!
//! One `Store` is one connection. The server keeps one per worker thread;
//! each command opens its own. Writes go through [`Store::write`], which
//! serialises writers inside the process and runs one `BEGIN IMMEDIATE`
//! transaction: either everything in it is stored, or nothing.

mod dump;
mod group;
mod index;
mod projects;
mod records;
mod schema;
mod search;
mod users;

pub use dump::UserRecord;
pub use index::read_params;
pub use projects::{Project, ProjectSummary};
pub use records::{parse_params, with_project_id, Indexed, PutOutcome, Selected, Selection};
pub use users::{check_username, UserAuth};

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, Transaction};
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
    /// Create the file if it is missing (`init`, `serve --demo`).
    Create,
    /// The file must exist already.
    Existing,
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

pub struct Store {
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    /// The schema version this open migrated from, if it migrated.
    pub migrated_from: Option<i64>,
}

impl Store {
    pub fn open(path: &Path, mode: OpenMode) -> Result<Store> {
        Self::open_with(path, mode, Durability::Full)
    }

    pub fn open_with(path: &Path, mode: OpenMode, durability: Durability) -> Result<Store> {
        Self::open_observed(path, mode, durability, None)
    }

    /// Opens, reporting the progress of a migration's back-fill (`init` on a
    /// terminal shows it as a bar).
    pub fn open_observed(
        path: &Path,
        mode: OpenMode,
        durability: Durability,
        progress: Option<schema::Progress<'_>>,
    ) -> Result<Store> {
        let shown = path.display();
        if mode == OpenMode::Existing && !path.exists() {
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
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            shared: shared_for(path),
            migrated_from: None,
        };
        store.configure(durability).map_err(|e| store.context(e))?;
        store.migrated_from =
            schema::migrate(&mut store.conn, progress).map_err(|e| store.context(e))?;
        Ok(store)
    }

    fn configure(&self, durability: Durability) -> Result<()> {
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
        Ok(())
    }

    /// Adds the database path to low-level errors, so a sysadmin sees which file.
    fn context(&self, e: Error) -> Error {
        match e {
            Error::Sqlite(e) => Error::Database(format!("database {}: {e}", self.path.display())),
            other => other,
        }
    }

    /// Indexes the records of `project` whose parameters or dependencies
    /// changed since they were last read (SPEC 7.1), before a search reads
    /// the index: writes do not wait for it, searches see every write.
    pub fn ensure_indexed(&mut self, project: &str) -> Result<()> {
        if self.read().has_pending_index(project)? {
            self.write(|tx| tx.index_pending(Some(project)))?;
        }
        Ok(())
    }

    /// A large page cache for this connection, for writing many records
    /// (`loaddata`): their index entries go in faster.
    pub fn for_bulk_writes(&self) -> Result<()> {
        Ok(self
            .conn
            .pragma_update(None, "cache_size", index::BULK_CACHE_KIB)?)
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let _guard = self
            .shared
            .write_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::Database(format!("database {}: {e}", self.path.display())))?;
        let out = f(&Tx(tx_ref(&tx)))?;
        tx.commit()?;
        Ok(out)
    }

    /// Read access outside a transaction (each query sees a consistent snapshot).
    pub fn read(&self) -> Tx<'_> {
        Tx(&self.conn)
    }

    /// A consistent copy of the live database (SQLite online backup).
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        // Created here, owner only (it holds password hashes), and never
        // over an existing file.
        crate::files::create_new_private(dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::bad(format!(
                "{} exists already; choose a new file",
                dest.display()
            )),
            _ => Error::bad(format!("cannot create {}: {e}", dest.display())),
        })?;
        self.conn
            .backup(rusqlite::DatabaseName::Main, dest, None)
            .map_err(|e| {
                let _ = std::fs::remove_file(dest);
                Error::Database(format!("backup to {}: {e}", dest.display()))
            })
    }
}

fn tx_ref<'a>(tx: &'a Transaction<'_>) -> &'a Connection {
    tx
}

/// A view of the database for queries and (inside [`Store::write`]) changes.
pub struct Tx<'a>(&'a Connection);

impl Tx<'_> {
    fn conn(&self) -> &Connection {
        self.0
    }
}
