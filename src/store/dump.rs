//! What `loaddata` and `export` need beyond the API's queries: a rehearsal
//! transaction for `--dry-run`, a consistent read snapshot for exports,
//! the users with their hashes, and what a whole-store export carries
//! beside the records (SPEC 10.3): the trash, deleted projects and the
//! history, read in order and written back once each.

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

/// A record in the trash as an export carries it: the record as stored,
/// and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRecord {
    pub project: String,
    pub label: String,
    pub timestamp: String,
    /// The record's JSON, as stored.
    pub body: String,
    pub deleted_at: String,
    pub deleted_by: String,
    pub how: String,
}

/// A deleted project as an export carries it (its records are in the trash).
#[derive(Debug, Clone, PartialEq)]
pub struct KeptProject {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `[{"user", "level"}, ...]` as it was, JSON.
    pub access: String,
    pub created: String,
    pub deleted_at: String,
    pub deleted_by: String,
}

/// An entry of the history as an export carries it (its place in the file
/// is its order).
#[derive(Debug, Clone, PartialEq)]
pub struct KeptEntry {
    pub at: String,
    pub actor: String,
    pub address: Option<String>,
    pub project: Option<String>,
    pub action: String,
    pub target: String,
    /// JSON.
    pub detail: String,
}

impl KeptEntry {
    /// What tells two entries apart: every field (a load skips an entry
    /// the history holds already, so loading a file twice adds it once).
    pub fn fingerprint(&self) -> u128 {
        use sha2::Digest;
        let text = serde_json::json!([
            self.at,
            self.actor,
            self.address,
            self.project,
            self.action,
            self.target,
            self.detail
        ])
        .to_string();
        let d = sha2::Sha256::digest(text.as_bytes());
        u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
    }
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

    /// Calls `f` with each record of a project's trash, in the order they
    /// went (ids are not kept: a load appends).
    pub fn for_each_trashed(
        &self,
        project: &str,
        mut f: impl FnMut(KeptRecord) -> Result<()>,
    ) -> Result<()> {
        self.each(
            "SELECT project_id, label, timestamp, body, deleted_at, deleted_by, how FROM trash
              WHERE project_id = ?1 ORDER BY id",
            args![project],
            |r| {
                f(KeptRecord {
                    project: r.string(0)?,
                    label: r.string(1)?,
                    timestamp: r.string(2)?,
                    body: r.string(3)?,
                    deleted_at: r.string(4)?,
                    deleted_by: r.string(5)?,
                    how: r.string(6)?,
                })
            },
        )
    }

    /// Puts a record read from an export into the trash, unless the same
    /// one (project, label, time of the delete, body) is there already;
    /// whether it was put.
    pub fn keep_trashed(&self, k: &KeptRecord) -> Result<bool> {
        let there = self.one(
            "SELECT 1 FROM trash WHERE project_id = ?1 AND deleted_at = ?2 AND label = ?3 AND body = ?4",
            args![k.project.as_str(), k.deleted_at.as_str(), k.label.as_str(), k.body.as_str()],
            |r| r.int(0),
        )?;
        if there.is_some() {
            return Ok(false);
        }
        self.exec(
            "INSERT INTO trash (project_id, label, timestamp, body, deleted_at, deleted_by, how)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                k.project.as_str(),
                k.label.as_str(),
                k.timestamp.as_str(),
                k.body.as_str(),
                k.deleted_at.as_str(),
                k.deleted_by.as_str(),
                k.how.as_str()
            ],
        )?;
        Ok(true)
    }

    /// The deleted projects, by id.
    pub fn deleted_projects(&self) -> Result<Vec<KeptProject>> {
        self.deleted_projects_where("1 = 1", &[])
    }

    fn deleted_projects_where(&self, cond: &str, a: &[Arg<'_>]) -> Result<Vec<KeptProject>> {
        self.all(
            &format!(
                "SELECT id, name, description, access, created, deleted_at, deleted_by
                   FROM trashed_projects WHERE {cond} ORDER BY id"
            ),
            a,
            |r| {
                Ok(KeptProject {
                    id: r.string(0)?,
                    name: r.string(1)?,
                    description: r.string(2)?,
                    access: r.string(3)?,
                    created: r.string(4)?,
                    deleted_at: r.string(5)?,
                    deleted_by: r.string(6)?,
                })
            },
        )
    }

    /// Keeps a deleted project read from an export; whether it was there
    /// already, and whether anything changed. A live project of the same id is a conflict.
    pub fn keep_deleted_project(&self, k: &KeptProject) -> Result<(bool, bool)> {
        if self.project(&k.id)?.is_some() {
            return Err(crate::error::Error::Conflict(format!(
                "project {:?} is deleted in the file and live in the database: \
                 delete it here first (`sumatra-server project {} --delete`), or leave it out",
                k.id, k.id
            )));
        }
        let held = self.deleted_projects_where("id = ?1", args![k.id.as_str()])?;
        if held.first() == Some(k) {
            return Ok((true, false));
        }
        self.exec(
            "DELETE FROM trashed_projects WHERE id = ?1",
            args![k.id.as_str()],
        )?;
        self.exec(
            "INSERT INTO trashed_projects (id, name, description, access, created, deleted_at, deleted_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                k.id.as_str(),
                k.name.as_str(),
                k.description.as_str(),
                k.access.as_str(),
                k.created.as_str(),
                k.deleted_at.as_str(),
                k.deleted_by.as_str()
            ],
        )?;
        Ok((!held.is_empty(), true))
    }

    /// Calls `f` with each entry of the history, oldest first.
    pub fn for_each_history(&self, mut f: impl FnMut(KeptEntry) -> Result<()>) -> Result<()> {
        self.each(
            "SELECT at, actor, address, project_id, action, target, detail FROM history ORDER BY id",
            &[],
            |r| {
                f(KeptEntry {
                    at: r.string(0)?,
                    actor: r.string(1)?,
                    address: r.text_opt(2)?.map(String::from),
                    project: r.text_opt(3)?.map(String::from),
                    action: r.string(4)?,
                    target: r.string(5)?,
                    detail: r.string(6)?,
                })
            },
        )
    }

    /// The fingerprints of the entries in the history, each with how many
    /// entries have it (read once by a load that carries a history).
    pub fn history_fingerprints(&self) -> Result<HashMap<u128, usize>> {
        let mut out = HashMap::new();
        self.for_each_history(|e| {
            *out.entry(e.fingerprint()).or_insert(0) += 1;
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether the store holds nothing yet: no project and no history.
    pub fn is_fresh(&self) -> Result<bool> {
        let any = self.one(
            "SELECT 1 FROM projects UNION ALL SELECT 1 FROM history LIMIT 1",
            &[],
            |r| r.int(0),
        )?;
        Ok(any.is_none())
    }

    /// Appends an entry read from an export, as it was.
    pub fn keep_history(&self, e: &KeptEntry) -> Result<()> {
        self.exec(
            "INSERT INTO history (at, actor, address, project_id, action, target, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                e.at.as_str(),
                e.actor.as_str(),
                e.address.as_deref(),
                e.project.as_deref(),
                e.action.as_str(),
                e.target.as_str(),
                e.detail.as_str()
            ],
        )?;
        Ok(())
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
