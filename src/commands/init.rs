//! `init`: creates the database, or migrates an older one, and only on
//! purpose (SPEC 11.5): an SQLite file is copied beside itself first; a
//! PostgreSQL database waits for `--yes`, after the sysadmin's `pg_dump`.

use super::data;
use crate::error::{Error, Result};
use crate::store::{Location, OpenMode, Store, SCHEMA_VERSION};
use std::path::{Path, PathBuf};

pub fn init(db: &Location, yes: bool) -> Result<()> {
    let existed = db.file().is_none_or(Path::exists);
    let before = match existed {
        true => Some(Store::open(db, OpenMode::AsIs)?.schema_version()?),
        false => None,
    };
    if let Some(v @ 1..) = before.filter(|v| *v < SCHEMA_VERSION) {
        match db.file() {
            Some(path) => {
                let copy = copy_name(path, v);
                Store::open(db, OpenMode::AsIs)?.backup_to(&copy)?;
                eprintln!(
                    "copied {db} (schema version {v}) to {} before migrating; \
                     to go back, stop the server and put that file in its place",
                    copy.display()
                );
            }
            None if !yes => {
                return Err(Error::Conflict(format!(
                    "database {db} has schema version {v}; init migrates it to version \
                     {SCHEMA_VERSION}, which an older sumatra-server cannot read. Back it up \
                     first (pg_dump --format=custom --file=sumatra-schema{v}.dump DBNAME), \
                     then run init again with --yes"
                )))
            }
            None => {}
        }
    }
    // Migrating an older database reads every record's parameters
    // (SPEC 7.1): a bar on a terminal.
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut show = |done: u64, total: u64| {
        let bar = bar.get_or_insert_with(|| data::progress(total, "indexing parameters and files"));
        bar.set_position(done);
    };
    let mut store = Store::open_observed(
        db,
        OpenMode::Create,
        crate::store::Durability::Full,
        Some(&mut show),
    )?;
    if let Some(bar) = bar.take() {
        bar.finish_and_clear();
    }
    if db.file().is_some_and(crate::files::readable_by_others) {
        eprintln!(
            "warning: {db} is readable by other users, and it holds password hashes; \
             make it private with `chmod 600 {db}`"
        );
    }
    let verb = match (existed, store.migrated_from) {
        // A new file, or a PostgreSQL database that had no tables.
        (false, _) | (true, Some(0)) => "created".to_string(),
        (true, Some(v)) if v > 0 => format!("migrated from schema version {v}"),
        (true, _) => "is up to date".to_string(),
    };
    eprintln!(
        "database {db} {verb} (schema version {})",
        store.schema_version()?
    );
    Ok(())
}

/// `records.db` at version 6 is copied to `records.db.schema6-20261206-051500`
/// (a later copy of the same second gets `-2`, ...).
fn copy_name(path: &Path, version: i64) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = format!("{name}.schema{version}-{stamp}");
    let mut copy = path.with_file_name(&base);
    let mut n = 2;
    while copy.exists() {
        copy = path.with_file_name(format!("{base}-{n}"));
        n += 1;
    }
    copy
}
