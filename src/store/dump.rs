//! What `loaddata` and `export` need beyond the API's queries: a rehearsal
//! transaction for `--dry-run`, a consistent read snapshot for exports, and
//! the users with their hashes.

use super::index::list;
use super::records::with_project_id;
use super::sql::{args, Arg};
use super::{Engine, Store, Tx, ANONYMOUS};
use crate::error::Result;
use crate::record::Record;
use std::collections::HashMap;

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

    /// Stores records read by `loaddata`, all of `project` and each label
    /// once, unless the stored ones are the same; returns for each (whether
    /// it existed, whether anything changed). A few statements for the
    /// whole batch (one round trip each on PostgreSQL): the records are
    /// inserted at once where their labels are new, with their tags; each
    /// one already stored is looked up alone (by the unique index, however
    /// stale the planner's statistics are inside a long load) and compared
    /// as text first (what an earlier load of it wrote), and parsed and
    /// written only when the texts differ.
    pub fn load_records(&self, project: &str, records: &[&Record]) -> Result<Vec<(bool, bool)>> {
        const ROWS: usize = 500;
        let bodies: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("a record serialises"))
            .collect();
        let mut inserted: HashMap<String, i64> = HashMap::new();
        for (chunk, chunk_bodies) in records.chunks(ROWS).zip(bodies.chunks(ROWS)) {
            let mut values = vec![Arg::from(project)];
            for (r, body) in chunk.iter().zip(chunk_bodies) {
                values.extend([
                    Arg::from(&r.label),
                    Arg::from(&r.timestamp),
                    Arg::from(body.as_str()),
                ]);
            }
            let sql = format!(
                "INSERT INTO records (project_id, label, timestamp, body) VALUES {}
                 ON CONFLICT (project_id, label) DO NOTHING RETURNING id, label",
                list("(?1, ?, ?, ?)", chunk.len())
            );
            self.each(&sql, &values, |r| {
                inserted.insert(r.string(1)?, r.int(0)?);
                Ok(())
            })?;
        }
        let mut tags = Vec::new();
        for record in records {
            if let Some(&id) = inserted.get(record.label.as_str()) {
                for tag in &record.tags {
                    tags.extend([Arg::from(project), Arg::from(tag), Arg::Int(id)]);
                }
            }
        }
        self.insert_tag_rows(&tags)?;
        let files: Vec<(&str, i64, &Record)> = records
            .iter()
            .filter_map(|r| Some((project, *inserted.get(r.label.as_str())?, *r)))
            .collect();
        self.index_files(&files, false)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for (record, body) in records.iter().zip(&bodies) {
            if inserted.contains_key(record.label.as_str()) {
                outcomes.push((false, true));
                continue;
            }
            outcomes.push(match self.record_json(project, &record.label)? {
                Some(stored) if stored == *body => (true, false),
                Some(_) => (true, self.replace_record(project, record)?),
                // Removed by another process since the insert found it.
                None => (false, self.replace_record(project, record)?),
            });
        }
        Ok(outcomes)
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
        let mut other = record.clone();
        other.label = "b".into();
        let steps = store
            .write(|tx| {
                tx.ensure_project("P")?;
                Ok([
                    tx.load_records("P", &[&record])?,
                    tx.load_records("P", &[&record, &other])?,
                    tx.load_records("P", &[&changed, &other])?,
                ])
            })
            .unwrap();
        assert_eq!(
            steps,
            [
                vec![(false, true)],
                vec![(true, false), (false, true)],
                vec![(true, true), (true, false)]
            ]
        );
        assert_eq!(store.read().record("P", "a").unwrap(), Some(changed));
        assert_eq!(store.read().record("P", "b").unwrap(), Some(other));
        let tags = store.read().tag_counts("P").unwrap();
        assert_eq!(tags, vec![("x".to_string(), 1), ("y".to_string(), 1)]);
    }
}
