//! What `loaddata` and `export` need beyond the API's queries: a rehearsal
//! transaction for `--dry-run`, a consistent read snapshot for exports, and
//! the users with their hashes.

use super::records::with_project_id;
use super::sql::args;
use super::{Engine, Store, Tx, ANONYMOUS};
use crate::error::Result;
use crate::record::Record;

/// A user as `export --with-users` writes it and `loaddata` reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub username: String,
    pub password: String,
    pub email: String,
    pub created: String,
}

impl Store {
    /// Runs `f` in a write transaction that is always rolled back
    /// (`loaddata --dry-run`): what it would do, with nothing changed.
    pub fn rehearse<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &mut self.engine {
            Engine::Lite(l) => l.transaction(false, f),
            Engine::Pg(p) => p.run(false, false, f),
        }
    }

    /// Runs `f` on one consistent snapshot of the database (an export sees
    /// no write that lands while it runs).
    pub fn snapshot<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &mut self.engine {
            Engine::Lite(l) => {
                let tx = l.conn.unchecked_transaction()?;
                let out = f(&Tx::on(&super::sql::Lite(&tx)));
                // Nothing was written: ending the transaction either way is the same.
                tx.rollback()?;
                out
            }
            Engine::Pg(p) => p.run(true, false, f),
        }
    }
}

impl Tx<'_> {
    /// Every user except the built-in anonymous one, by name.
    pub fn users_with_hashes(&self) -> Result<Vec<UserRecord>> {
        self.all(
            "SELECT username, password, email, created FROM users WHERE username <> ?1 ORDER BY username",
            args![ANONYMOUS],
            |r| {
                Ok(UserRecord {
                    username: r.string(0)?,
                    password: r.string(1)?,
                    email: r.string(2)?,
                    created: r.string(3)?,
                })
            },
        )
    }

    /// Stores a record read by `loaddata` unless the stored one is the same;
    /// returns (whether it existed, whether anything changed). One lookup;
    /// the stored JSON is compared as text first (what an earlier load of
    /// the same record wrote), and parsed only when the texts differ.
    pub fn load_record(&self, project: &str, record: &Record) -> Result<(bool, bool)> {
        let Some(stored) = self.record_json(project, &record.label)? else {
            // New: inserted without reading it again (unless another
            // process wrote it since we looked).
            if !self.insert_record(project, record)? {
                self.replace_record(project, record)?;
            }
            return Ok((false, true));
        };
        let body = serde_json::to_string(record).expect("a record serialises");
        if stored == body {
            return Ok((true, false));
        }
        Ok((true, self.replace_record(project, record)?))
    }

    /// Calls `f` with each record of a project in the API's JSON (with
    /// `project_id`), oldest first, one at a time.
    pub fn for_each_api_record(
        &self,
        project: &str,
        mut f: impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        self.for_each_record_json(project, |body| f(&with_project_id(body, project)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenMode;

    #[test]
    fn rehearsal_changes_nothing_and_snapshot_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(
            &crate::store::Location::from(&dir.path().join("t.db")),
            OpenMode::Create,
        )
        .unwrap();
        let created = store.rehearse(|tx| tx.ensure_project("P")).unwrap();
        assert!(created);
        assert!(store.read().project("P").unwrap().is_none());
        store
            .write(|tx| tx.upsert_user("bob", "h", "b@x", "2020-01-01 00:00:00"))
            .unwrap();
        let users = store.snapshot(|tx| tx.users_with_hashes()).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].password, "h");
        assert!(store.read().record_json("P", "l").unwrap().is_none());
    }

    #[test]
    fn loading_a_record_says_what_it_did() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(
            &crate::store::Location::from(&dir.path().join("t.db")),
            OpenMode::Create,
        )
        .unwrap();
        let body = serde_json::json!({
            "label": "a", "timestamp": "2020-01-01 00:00:00", "tags": ["x"],
            "executable": {"path": "/p", "version": "1", "name": "P", "options": ""},
            "repository": {"url": "/r", "type": "GitRepository", "upstream": null},
            "main_file": "m.py", "version": "1",
            "parameters": {"content": "", "type": "SimpleParameterSet"},
            "launch_mode": {"type": "SerialLaunchMode", "parameters": {}},
            "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/d"}},
        });
        let record = crate::record::decode_value(body).unwrap();
        let mut changed = record.clone();
        changed.tags = vec!["y".into()];
        let steps = store
            .write(|tx| {
                tx.ensure_project("P")?;
                Ok([
                    tx.load_record("P", &record)?,
                    tx.load_record("P", &record)?,
                    tx.load_record("P", &changed)?,
                ])
            })
            .unwrap();
        assert_eq!(steps, [(false, true), (true, false), (true, true)]);
        assert_eq!(store.read().record("P", "a").unwrap(), Some(changed));
        let tags = store.read().tag_counts("P").unwrap();
        assert_eq!(tags, vec![("y".to_string(), 1)]);
    }
}
